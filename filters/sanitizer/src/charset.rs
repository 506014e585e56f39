//! Request bodies in a charset other than UTF-8, decoded to UTF-8 before they are inspected: a
//! payload in UTF-16 is a string of NULs and ASCII to every detector, and invisible to them.
//! Hand-written: UTF-16/32 and ISO-8859-1 are a few lines each with `char::decode_utf16` and
//! `char::from_u32`; an encoding crate would bring dozens of legacy tables we refuse anyway.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    /// UTF-16 with the byte order from its BOM, big-endian without one (RFC 2781 4.3).
    Utf16,
    Utf16Le,
    Utf16Be,
    /// UTF-32 with the byte order from its BOM, big-endian without one.
    Utf32,
    Utf32Le,
    Utf32Be,
}

impl Charset {
    /// The charset a label names; `None` for one we do not decode.
    pub fn from_label(label: &str) -> Option<Charset> {
        Some(match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Charset::Utf8,
            "iso-8859-1" | "latin1" | "iso_8859-1" | "l1" => Charset::Latin1,
            "utf-16" => Charset::Utf16,
            "utf-16le" => Charset::Utf16Le,
            "utf-16be" => Charset::Utf16Be,
            "utf-32" => Charset::Utf32,
            "utf-32le" => Charset::Utf32Le,
            "utf-32be" => Charset::Utf32Be,
            _ => return None,
        })
    }

    /// A UTF-16 or UTF-32 byte-order mark at the start of a body that declares no other charset:
    /// servers that sniff it read the body in that charset, so the sanitizer does too.
    pub fn sniff(body: &[u8]) -> Charset {
        if body.starts_with(&[0xff, 0xfe, 0, 0]) || body.starts_with(&[0, 0, 0xfe, 0xff]) {
            Charset::Utf32
        } else if body.starts_with(&[0xff, 0xfe]) || body.starts_with(&[0xfe, 0xff]) {
            Charset::Utf16
        } else {
            Charset::Utf8
        }
    }

    /// [`Charset::sniff`], and for a text body without a BOM the NUL pattern of its first four
    /// bytes (RFC 4627 section 3, XML 1.0 appendix F): `xx 00 xx 00` is UTF-16LE, `00 xx 00 xx`
    /// UTF-16BE, `xx 00 00 00` UTF-32LE, `00 00 00 xx` UTF-32BE. Honest UTF-8 text has no NUL in
    /// its first bytes; a UTF-16 payload without a BOM is NULs and ASCII to every detector, yet
    /// servers and runtimes that sniff read it as text.
    pub fn sniff_text(body: &[u8]) -> Charset {
        match (Charset::sniff(body), body) {
            (Charset::Utf8, [a, 0, 0, 0, ..]) if *a != 0 => Charset::Utf32Le,
            (Charset::Utf8, [0, 0, 0, d, ..]) if *d != 0 => Charset::Utf32Be,
            (Charset::Utf8, [a, 0, c, 0, ..]) if *a != 0 && *c != 0 => Charset::Utf16Le,
            (Charset::Utf8, [0, b, 0, d, ..]) if *b != 0 && *d != 0 => Charset::Utf16Be,
            (cs, _) => cs,
        }
    }
}

/// A body that does not decode in its declared charset (odd length, a lone surrogate, a code
/// point beyond U+10FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Decodes `body` to UTF-8 (a UTF-8 body is borrowed unchanged, valid or not: the parsers judge).
pub fn decode(charset: Charset, body: &[u8]) -> Result<Cow<'_, [u8]>, Malformed> {
    let text: String = match charset {
        Charset::Utf8 => return Ok(Cow::Borrowed(body)),
        Charset::Latin1 => body.iter().map(|&b| char::from(b)).collect(),
        Charset::Utf16 => match body {
            [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes)?,
            [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes)?,
            _ => utf16(body, u16::from_be_bytes)?,
        },
        Charset::Utf16Le => utf16(body, u16::from_le_bytes)?,
        Charset::Utf16Be => utf16(body, u16::from_be_bytes)?,
        Charset::Utf32 => match body {
            [0xff, 0xfe, 0, 0, rest @ ..] => utf32(rest, u32::from_le_bytes)?,
            [0, 0, 0xfe, 0xff, rest @ ..] => utf32(rest, u32::from_be_bytes)?,
            _ => utf32(body, u32::from_be_bytes)?,
        },
        Charset::Utf32Le => utf32(body, u32::from_le_bytes)?,
        Charset::Utf32Be => utf32(body, u32::from_be_bytes)?,
    };
    Ok(Cow::Owned(text.into_bytes()))
}

fn utf16(body: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, Malformed> {
    let chunks = body.chunks_exact(2);
    if !chunks.remainder().is_empty() {
        return Err(Malformed);
    }
    let units = chunks.map(|c| {
        unit([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| Malformed)
}

fn utf32(body: &[u8], unit: fn([u8; 4]) -> u32) -> Result<String, Malformed> {
    let chunks = body.chunks_exact(4);
    if !chunks.remainder().is_empty() {
        return Err(Malformed);
    }
    chunks
        .map(|c| {
            let mut b = [0u8; 4];
            b.copy_from_slice(c);
            char::from_u32(unit(b)).ok_or(Malformed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_boms_and_errors() {
        assert_eq!(Charset::from_label(" UTF-16LE"), Some(Charset::Utf16Le));
        assert_eq!(Charset::from_label("shift_jis"), None);
        assert_eq!(Charset::sniff(&[0xff, 0xfe, b'a', 0]), Charset::Utf16);
        assert_eq!(Charset::sniff(&[0xff, 0xfe, 0, 0]), Charset::Utf32);
        assert_eq!(Charset::sniff(b"{}"), Charset::Utf8);
        assert_eq!(Charset::sniff_text(b"a\0b\0"), Charset::Utf16Le);
        assert_eq!(Charset::sniff_text(b"\0a\0b"), Charset::Utf16Be);
        assert_eq!(Charset::sniff_text(b"a\0\0\0"), Charset::Utf32Le);
        assert_eq!(Charset::sniff_text(b"\0\0\0a"), Charset::Utf32Be);
        assert_eq!(Charset::sniff_text(&[0xff, 0xfe, b'a', 0]), Charset::Utf16);
        assert_eq!(Charset::sniff_text(b"a=1&"), Charset::Utf8);
        assert_eq!(Charset::sniff_text(b"a\0"), Charset::Utf8);
        let le: Vec<u8> = "é<".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(&*decode(Charset::Utf16Le, &le).unwrap(), "é<".as_bytes());
        let mut bom = vec![0xfe, 0xff];
        bom.extend("a😀".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(&*decode(Charset::Utf16, &bom).unwrap(), "a😀".as_bytes());
        assert_eq!(decode(Charset::Utf16Le, &[0x00, 0xd8]), Err(Malformed));
        assert_eq!(decode(Charset::Utf16Le, &[0x41]), Err(Malformed));
        assert_eq!(decode(Charset::Utf32Be, &[0, 0x11, 0, 0]), Err(Malformed));
        assert_eq!(
            &*decode(Charset::Latin1, b"caf\xe9").unwrap(),
            "café".as_bytes()
        );
    }
}
