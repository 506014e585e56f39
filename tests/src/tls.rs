//! TLS clients for the tests: rustls trusting the dev CA, and a hand-built ClientHello for the
//! versions rustls refuses to speak (we must prove the server refuses them, too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

/// rustls trusting only the dev CA in `certs/ca.crt`.
pub fn client_config(
    certs: &Path,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(certs.join("ca.crt"))
        .unwrap_or_else(|e| panic!("ca.crt: {e}"));
    roots.add(ca).unwrap_or_else(|e| panic!("ca.crt: {e}"));
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A completed handshake to `localhost:port`.
pub fn handshake(
    port: u16,
    config: ClientConfig,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// Sends a minimal ClientHello claiming `version` (0x0302 = TLS 1.1, 0x0303 = TLS 1.2) with the
/// given cipher suites and returns the first bytes of the server's answer: a handshake record
/// (0x16, ServerHello) or an alert record (0x15, level, description).
pub fn raw_hello(port: u16, version: u16, suites: &[u16]) -> Vec<u8> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    sock.write_all(&client_hello(version, suites))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = vec![0u8; 7];
    let mut got = 0;
    while got < answer.len() {
        match sock.read(&mut answer[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    answer.truncate(got);
    answer
}

fn client_hello(version: u16, suites: &[u16]) -> Vec<u8> {
    let with_len16 = |body: Vec<u8>| {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend(body);
        v
    };
    let extension = |kind: u16, body: Vec<u8>| {
        let mut v = kind.to_be_bytes().to_vec();
        v.extend(with_len16(body));
        v
    };
    let mut sni = vec![0u8]; // host_name
    sni.extend(with_len16(b"localhost".to_vec()));
    let mut extensions = extension(0x0000, with_len16(sni));
    // supported_groups: x25519, secp256r1
    extensions.extend(extension(0x000a, with_len16(vec![0x00, 0x1d, 0x00, 0x17])));
    // ec_point_formats: uncompressed
    extensions.extend(extension(0x000b, vec![1, 0]));
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    extensions.extend(extension(
        0x000d,
        with_len16(vec![0x04, 0x03, 0x08, 0x04, 0x04, 0x01]),
    ));

    let mut hello = version.to_be_bytes().to_vec();
    hello.extend([0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend(with_len16(
        suites.iter().flat_map(|s| s.to_be_bytes()).collect(),
    ));
    hello.extend([1, 0]); // compression: null
    hello.extend(with_len16(extensions));

    let len = hello.len() as u32;
    let mut handshake = vec![1u8]; // client_hello
    handshake.extend(&len.to_be_bytes()[1..]);
    handshake.extend(hello);

    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_len16(handshake));
    record
}
