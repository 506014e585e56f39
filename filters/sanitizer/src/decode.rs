//! Turning what a client sent into the text the detectors look at: URL decoding (`+` as space,
//! `%uXXXX`), repeated decoding for double-encoded input, HTML character references, JavaScript
//! escapes, and UTF-8 decoding that recognises overlong forms instead of letting them through.
//!
//! Every step is a single forward pass over its input, so the total work is bounded by
//! `passes × length`.

/// What decoding noticed on the way; evasion signals in their own right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// An overlong UTF-8 form (`%c0%af` for `/`): no honest client sends one.
    pub overlong_utf8: bool,
    /// Bytes that are not UTF-8 at all (replaced by U+FFFD).
    pub invalid_utf8: bool,
    /// A NUL character after decoding.
    pub nul: bool,
    /// How many decoding passes changed the text (1 = plainly encoded, 2+ = double encoded).
    pub layers: u8,
    /// Still changing after the last allowed pass.
    pub too_many_layers: bool,
}

/// A value ready for the detectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Fully decoded text, ASCII-lower-cased (detectors are case-insensitive).
    pub lower: String,
    pub flags: Flags,
}

/// Percent-decodes `input`. `plus_as_space` is for query strings and form bodies. `%uXXXX` (an old
/// IIS form still used to evade filters) becomes the character's UTF-8. A `%` not followed by two
/// hex digits is kept as is.
pub fn percent_decode(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input.get(i).copied().unwrap_or(0);
        if b == b'%' {
            if let (Some(h), Some(l)) = (hex_at(input, i + 1), hex_at(input, i + 2)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                if let Some(cp) = hex_run(input, i + 2, 4) {
                    push_char(&mut out, cp);
                    i += 6;
                    continue;
                }
            }
            out.push(b);
        } else if b == b'+' && plus_as_space {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_at(input: &[u8], i: usize) -> Option<u8> {
    input.get(i).copied().and_then(hex_val)
}

/// `n` hex digits starting at `i`, as a number.
fn hex_run(input: &[u8], i: usize, n: usize) -> Option<u32> {
    let mut v: u32 = 0;
    for k in 0..n {
        v = v << 4 | u32::from(hex_at(input, i + k)?);
    }
    Some(v)
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Decodes UTF-8, mapping overlong two- and three-byte forms to the character they spell (that is
/// what lenient decoders behind us might do) and anything else invalid to U+FFFD.
pub fn utf8_lossy(bytes: &[u8], flags: &mut Flags) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = bytes.get(i..).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                if let Some(Ok(s)) = rest.get(..good).map(std::str::from_utf8) {
                    out.push_str(s);
                }
                i += good;
                let b0 = bytes.get(i).copied().unwrap_or(0);
                let b1 = bytes.get(i + 1).copied().unwrap_or(0);
                let b2 = bytes.get(i + 2).copied().unwrap_or(0);
                let cont = |b: u8| b & 0xC0 == 0x80;
                if (b0 == 0xC0 || b0 == 0xC1) && cont(b1) {
                    flags.overlong_utf8 = true;
                    out.push(char::from((b0 & 0x1F) << 6 | (b1 & 0x3F)));
                    i += 2;
                } else if b0 == 0xE0 && b1 < 0xA0 && cont(b1) && cont(b2) {
                    flags.overlong_utf8 = true;
                    let cp = u32::from(b1 & 0x3F) << 6 | u32::from(b2 & 0x3F);
                    out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                    i += 3;
                } else {
                    flags.invalid_utf8 = true;
                    out.push(char::REPLACEMENT_CHARACTER);
                    i += e.error_len().unwrap_or(rest.len() - good).max(1);
                }
            }
        }
    }
    out
}

/// Named character references browsers resolve that matter for injection; numeric ones are
/// handled generically.
const ENTITIES: [(&str, char); 16] = [
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("amp", '&'),
    ("colon", ':'),
    ("lpar", '('),
    ("rpar", ')'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("semi", ';'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("equals", '='),
    ("grave", '`'),
    ("nbsp", ' '),
];

/// Resolves HTML character references: `&lt;`, `&#60;`, `&#x3c;` (the `;` optional for numeric
/// ones, as browsers accept), in one pass.
pub fn html_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut plain_from = 0;
    while i < b.len() {
        if b.get(i) != Some(&b'&') {
            i += 1;
            continue;
        }
        if let Some((c, len)) = entity_at(b, i + 1) {
            out.push_str(s.get(plain_from..i).unwrap_or_default());
            out.push(c);
            i += 1 + len;
            plain_from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(s.get(plain_from..).unwrap_or_default());
    out
}

/// The character a reference starting at `i` (just after `&`) spells, and its length.
fn entity_at(b: &[u8], i: usize) -> Option<(char, usize)> {
    if b.get(i) == Some(&b'#') {
        let (hex, start) = match b.get(i + 1) {
            Some(b'x' | b'X') => (true, i + 2),
            _ => (false, i + 1),
        };
        let mut v: u32 = 0;
        let mut j = start;
        // Leading zeros are a classic padding trick; allow them, bound the value.
        while let Some(&d) = b.get(j) {
            let digit = if hex {
                hex_val(d).map(u32::from)
            } else if d.is_ascii_digit() {
                Some(u32::from(d - b'0'))
            } else {
                None
            };
            let Some(digit) = digit else { break };
            v = v
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(digit);
            j += 1;
        }
        if j == start {
            return None;
        }
        if b.get(j) == Some(&b';') {
            j += 1;
        }
        let c = char::from_u32(v.min(0x10FFFF)).unwrap_or(char::REPLACEMENT_CHARACTER);
        return Some((c, j - i));
    }
    let end = (i..b.len().min(i + 10)).find(|&k| b.get(k) == Some(&b';'))?;
    let name = std::str::from_utf8(b.get(i..end)?).ok()?;
    ENTITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, c)| (c, end + 1 - i))
}

/// Resolves JavaScript/CSS-style escapes: `\xHH`, `\uHHHH`, `\u{H…}`, in one pass. Other
/// backslashes stay (they matter to the shell and SQL detectors).
pub fn js_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c == b'\\' {
            match b.get(i + 1) {
                Some(b'x' | b'X') => {
                    if let Some(v) = hex_run(b, i + 2, 2) {
                        push_char(&mut out, v);
                        i += 4;
                        continue;
                    }
                }
                Some(b'u' | b'U') => {
                    if b.get(i + 2) == Some(&b'{') {
                        let close = (i + 3..b.len().min(i + 12)).find(|&k| b.get(k) == Some(&b'}'));
                        if let Some(close) = close {
                            if let Some(v) = hex_run(b, i + 3, close - (i + 3)) {
                                if close > i + 3 {
                                    push_char(&mut out, v);
                                    i = close + 1;
                                    continue;
                                }
                            }
                        }
                    } else if let Some(v) = hex_run(b, i + 2, 4) {
                        push_char(&mut out, v);
                        i += 6;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Fully decodes a value that has already had its transport decoding (the query string's own
/// percent-decoding, or JSON string unescaping): repeats percent-decoding, character references and
/// escapes until nothing changes or `max_passes` is reached, then lower-cases.
pub fn canonicalize(value: &[u8], max_passes: u8) -> Canonical {
    // Fast path for the common case: valid UTF-8 without `%`, `&` or `\`. Percent-decoding
    // (without `+` as space), entity decoding and JS escapes all leave such text as it is, so the
    // loop below would stop after one pass with no layer counted: skip its allocations.
    if !value.iter().any(|b| matches!(b, b'%' | b'&' | b'\\')) {
        if let Ok(text) = std::str::from_utf8(value) {
            return Canonical {
                lower: text.to_ascii_lowercase(),
                flags: Flags {
                    nul: value.contains(&0),
                    ..Flags::default()
                },
            };
        }
    }
    let mut flags = Flags::default();
    let mut text = utf8_lossy(value, &mut flags);
    for _ in 0..max_passes {
        let mut pass_flags = Flags::default();
        let decoded = percent_decode(text.as_bytes(), false);
        let decoded = utf8_lossy(&decoded, &mut pass_flags);
        let decoded = js_escapes(&html_entities(&decoded));
        flags.overlong_utf8 |= pass_flags.overlong_utf8;
        flags.invalid_utf8 |= pass_flags.invalid_utf8;
        if decoded == text {
            break;
        }
        flags.layers = flags.layers.saturating_add(1);
        text = decoded;
    }
    if flags.layers >= max_passes && max_passes > 0 {
        // One more look: if it would still change, someone is stacking encodings on purpose.
        let mut scratch = Flags::default();
        let again = utf8_lossy(&percent_decode(text.as_bytes(), false), &mut scratch);
        flags.too_many_layers = js_escapes(&html_entities(&again)) != text;
    }
    flags.nul = text.contains('\0');
    Canonical {
        lower: text.to_ascii_lowercase(),
        flags,
    }
}

/// Splits a query string or urlencoded form into decoded `(name, value)` pairs (`+` as space).
/// The pairs are raw bytes: the canonical decoding happens per value afterwards.
pub fn form_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    input
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut kv = part.splitn(2, |&b| b == b'=');
            let k = kv.next().unwrap_or_default();
            let v = kv.next().unwrap_or_default();
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_plus() {
        assert_eq!(percent_decode(b"a+b%20c%2", true), b"a b c%2");
        assert_eq!(percent_decode(b"a+b", false), b"a+b");
        assert_eq!(percent_decode(b"%u003cx%zz", false), b"<x%zz");
        assert_eq!(percent_decode(b"%", false), b"%");
    }

    #[test]
    fn repeated_decoding_counts_layers() {
        let c = canonicalize(b"%253Cscript%253E", 4);
        assert_eq!(c.lower, "<script>");
        assert_eq!(c.flags.layers, 2);
        assert!(!c.flags.too_many_layers);
        let c = canonicalize(b"%2525252e", 2);
        assert!(c.flags.too_many_layers);
        let plain = canonicalize(b"Hello World", 4);
        assert_eq!(plain.lower, "hello world");
        assert_eq!(plain.flags, Flags::default());
    }

    #[test]
    fn overlong_and_invalid_utf8() {
        let mut f = Flags::default();
        assert_eq!(utf8_lossy(b"..\xc0\xaf..", &mut f), "../..");
        assert!(f.overlong_utf8 && !f.invalid_utf8);
        let mut f = Flags::default();
        assert_eq!(utf8_lossy(b"\xe0\x80\xae", &mut f), ".");
        assert!(f.overlong_utf8);
        let mut f = Flags::default();
        assert_eq!(utf8_lossy(b"a\xffb\xc3", &mut f), "a\u{fffd}b\u{fffd}");
        assert!(f.invalid_utf8 && !f.overlong_utf8);
        let c = canonicalize(b"%c0%ae%c0%ae%c0%af", 3);
        assert_eq!(c.lower, "../");
        assert!(c.flags.overlong_utf8);
    }

    #[test]
    fn entities_and_escapes() {
        assert_eq!(html_entities("&lt;a&#62;&#x3C;&#0000060&colon;"), "<a><<:");
        assert_eq!(
            html_entities("AT&T &amp; co &unknown;"),
            "AT&T & co &unknown;"
        );
        assert_eq!(js_escapes(r"\x3cs\u0063ript\u{3e}\n"), r"<script>\n");
        assert_eq!(js_escapes(r"\u{zz} \x"), r"\u{zz} \x");
        let c = canonicalize(b"&#x6A;avascript&colon;alert(1)", 4);
        assert_eq!(c.lower, "javascript:alert(1)");
        let c = canonicalize(b"a%00b", 2);
        assert!(c.flags.nul);
    }

    #[test]
    fn pairs() {
        let p = form_pairs(b"a=1&b=x+y&&c&d=%26=");
        assert_eq!(
            p,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"x y".to_vec()),
                (b"c".to_vec(), vec![]),
                (b"d".to_vec(), b"&=".to_vec()),
            ]
        );
    }
}
