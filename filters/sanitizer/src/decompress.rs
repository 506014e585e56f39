//! `Content-Encoding: gzip|deflate` request bodies, inflated into a copy the sanitizer inspects
//! (the upstream still gets the bytes the client sent). Bounded twice: never more than the
//! route's `body_limit`, and never more than `max_decompression_ratio` times the compressed size,
//! so a small bomb is refused early (413) without inflating a limit's worth of it.

use std::io::Read;

use flate2::read::{MultiGzDecoder, ZlibDecoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate` is the zlib format (RFC 9110 8.4.1.2).
    Deflate,
}

/// The encoding a `Content-Encoding` header names; `None` for one we cannot (or will not)
/// decode: `br`, `zstd`, `compress`, and stacked encodings (`gzip, gzip`), which have no honest
/// use in a request and multiply the work.
pub fn encoding(header: Option<&str>) -> Option<Encoding> {
    let Some(header) = header else {
        return Some(Encoding::Identity);
    };
    let codings: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    match codings.as_slice() {
        [] => Some(Encoding::Identity),
        [one] if one == "gzip" || one == "x-gzip" => Some(Encoding::Gzip),
        [one] if one == "deflate" => Some(Encoding::Deflate),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Larger than the body limit once inflated.
    TooLarge,
    /// Inflates more than the ratio allows.
    Bomb,
    Malformed,
}

/// Inflates `body`. Gzip members are all read (a server that reads only the first sees less than
/// the sanitizer did, never more).
pub fn inflate(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
    max_ratio: u32,
) -> Result<Vec<u8>, InflateError> {
    let by_ratio = body.len().saturating_mul(max_ratio as usize).max(1024);
    let cap = limit.min(by_ratio);
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(body.to_vec()),
        Encoding::Gzip => Box::new(MultiGzDecoder::new(body)),
        Encoding::Deflate => Box::new(ZlibDecoder::new(body)),
    };
    let mut out = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "beyond it".
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| InflateError::Malformed)?;
    if out.len() > cap {
        return Err(if cap < limit {
            InflateError::Bomb
        } else {
            InflateError::TooLarge
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn encodings() {
        assert_eq!(encoding(None), Some(Encoding::Identity));
        assert_eq!(encoding(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(encoding(Some("identity, deflate")), Some(Encoding::Deflate));
        assert_eq!(encoding(Some("gzip, gzip")), None);
        assert_eq!(encoding(Some("br")), None);
    }

    #[test]
    fn limits_ratio_and_members() {
        let data = b"hello world ".repeat(10);
        assert_eq!(
            inflate(Encoding::Gzip, &gz(&data), 1000, 100).unwrap(),
            data
        );
        // Exactly at the limit is accepted; one byte more is not.
        assert_eq!(
            inflate(Encoding::Gzip, &gz(&data), 120, 100).unwrap().len(),
            120
        );
        assert_eq!(
            inflate(Encoding::Gzip, &gz(&data), 119, 100),
            Err(InflateError::TooLarge)
        );
        let bomb = gz(&vec![0; 1 << 20]);
        assert_eq!(
            inflate(Encoding::Gzip, &bomb, 1 << 20, 100),
            Err(InflateError::Bomb)
        );
        let mut two = gz(b"a=1&");
        two.extend(gz(b"b=2"));
        assert_eq!(
            inflate(Encoding::Gzip, &two, 1000, 100).unwrap(),
            b"a=1&b=2"
        );
        let mut cut = gz(&data);
        cut.truncate(cut.len() - 9);
        assert_eq!(
            inflate(Encoding::Gzip, &cut, 1000, 100),
            Err(InflateError::Malformed)
        );
    }
}
