//! A minimal HTTP/2 client over TLS, for what `ureq` cannot send: a request with trailers. One
//! request per connection; header blocks are sent as HPACK literals (no table, no Huffman), and
//! the response's header block is skipped: tests read the body (a problem+json reply names its
//! status and reason).

use std::io::{Read, Write};
use std::time::Duration;

use crate::tls::{client_config, handshake};
use crate::Chain;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// The default SETTINGS_MAX_FRAME_SIZE.
const MAX_FRAME: usize = 16_384;

/// The response to one request: its body.
#[derive(Debug)]
pub struct H2Reply {
    pub body: Vec<u8>,
}

impl H2Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// POSTs `body` to `path` on the chain's HTTPS listener over HTTP/2, then sends `trailers`.
pub fn post_with_trailers(
    chain: &Chain,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    trailers: &[(&str, &str)],
) -> Result<H2Reply, String> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    let mut head = vec![
        (":method", "POST"),
        (":scheme", "https"),
        (":path", path),
        (":authority", "localhost"),
    ];
    head.extend_from_slice(headers);
    frame(&mut out, HEADERS, END_HEADERS, 1, &literals(&head));
    for chunk in body.chunks(MAX_FRAME) {
        frame(&mut out, DATA, 0, 1, chunk);
    }
    frame(
        &mut out,
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &literals(trailers),
    );
    exchange(chain, out)
}

/// Sends one request without a body (`method` verbatim, e.g. a lower-case `delete`, which an
/// HTTP/1 client library would not send) over HTTP/2 and returns the response body.
pub fn request(
    chain: &Chain,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<H2Reply, String> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    let mut head = vec![
        (":method", method),
        (":scheme", "https"),
        (":path", path),
        (":authority", "localhost"),
    ];
    head.extend_from_slice(headers);
    frame(
        &mut out,
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &literals(&head),
    );
    exchange(chain, out)
}

/// Opens a connection, writes `out` (preface, settings, stream 1) and reads stream 1's body.
fn exchange(chain: &Chain, out: Vec<u8>) -> Result<H2Reply, String> {
    let config = client_config(&chain.certs, &[&rustls::version::TLS13], &[b"h2"]);
    let mut tls = handshake(chain.https_port, config)?;
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    tls.write_all(&out).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;

    let mut reply = H2Reply { body: Vec::new() };
    loop {
        let mut header = [0u8; 9];
        tls.read_exact(&mut header).map_err(|e| e.to_string())?;
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        tls.read_exact(&mut payload).map_err(|e| e.to_string())?;
        match kind {
            SETTINGS if flags & ACK == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                tls.write_all(&ack).map_err(|e| e.to_string())?;
            }
            DATA if stream == 1 => reply.body.extend_from_slice(&payload),
            RST_STREAM if stream == 1 => return Err(format!("stream reset: {payload:?}")),
            GOAWAY => return Err(format!("GOAWAY: {payload:?}")),
            _ => {}
        }
        if stream == 1 && matches!(kind, DATA | HEADERS) && flags & END_STREAM != 0 {
            return Ok(reply);
        }
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A header block of "literal header field without indexing — new name" entries (RFC 7541 §6.2.2).
fn literals(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(0);
        for text in [name.as_bytes(), value.as_bytes()] {
            integer(&mut block, text.len());
            block.extend_from_slice(text);
        }
    }
    block
}

/// An HPACK integer with a 7-bit prefix and the Huffman bit clear (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_and_literals_follow_rfc_7541() {
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix is 31, 154, 10; with 7 bits: 127, 186, 9.
        let mut out = Vec::new();
        integer(&mut out, 1337);
        assert_eq!(out, [127, 0xba, 0x09]);
        assert_eq!(literals(&[("a", "bc")]), [0, 1, b'a', 2, b'b', b'c']);
        let mut f = Vec::new();
        frame(&mut f, HEADERS, END_HEADERS, 1, &[9]);
        assert_eq!(f, [0, 0, 1, 1, 4, 0, 0, 0, 1, 9]);
    }
}
