//! A JSON writer into one growing buffer, for the record: building a `serde_json::Value` tree or
//! serializing structs field by field costs an allocation per string and per map, which in wasm
//! is most of what a record costs. Output is byte-for-byte what `serde_json` writes (same string
//! escaping, same number formatting), so the schema and existing records are unchanged.
//!
//! Commas are placed by the writer: [`Json::key`] and [`Json::item`] write one before every
//! member but the first of the innermost open object or array.

use serde_json::Value;

pub struct Json {
    pub buf: Vec<u8>,
    /// No member written yet in the innermost open object or array.
    first: bool,
}

impl Json {
    pub fn with_capacity(n: usize) -> Json {
        Json {
            buf: Vec::with_capacity(n),
            first: true,
        }
    }

    pub fn open(&mut self) {
        self.buf.push(b'{');
        self.first = true;
    }

    pub fn close(&mut self) {
        self.buf.push(b'}');
        self.first = false;
    }

    pub fn open_array(&mut self) {
        self.buf.push(b'[');
        self.first = true;
    }

    pub fn close_array(&mut self) {
        self.buf.push(b']');
        self.first = false;
    }

    fn comma(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    /// `"name":` for a name that needs no escaping (the schema's own field names).
    pub fn key(&mut self, name: &str) {
        self.comma();
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// `"name":` for a name from elsewhere (decision instances, detail keys).
    pub fn key_escaped(&mut self, name: &str) {
        self.comma();
        self.string(name);
        self.buf.push(b':');
    }

    /// Before an array element.
    pub fn item(&mut self) {
        self.comma();
    }

    pub fn string(&mut self, s: &str) {
        self.buf.push(b'"');
        self.escaped(s);
        self.buf.push(b'"');
    }

    /// `s` cut to at most `max` bytes on a character boundary, the cut marked with `…` (as
    /// [`crate::redact::truncate`] does), without copying it first.
    pub fn cut(&mut self, s: &str, max: usize) {
        self.buf.push(b'"');
        if s.len() <= max {
            self.escaped(s);
        } else {
            let mut end = max;
            while end > 0 && !s.is_char_boundary(end) {
                end -= 1;
            }
            self.escaped(s.get(..end).unwrap_or_default());
            self.buf.extend_from_slice("…".as_bytes());
        }
        self.buf.push(b'"');
    }

    pub fn uint(&mut self, n: u64) {
        decimal(&mut self.buf, n, 1);
    }

    pub fn bool(&mut self, b: bool) {
        self.buf
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// A number, boolean or null exactly as `serde_json` writes it.
    pub fn scalar(&mut self, v: &Value) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, v);
    }

    /// The contents of a JSON string: `"` and `\` escaped, control characters as `serde_json`
    /// writes them (`\n`, `\t` … or `\u00XX`); everything else, UTF-8 included, as is.
    fn escaped(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            // Almost every byte: one comparison chain, then on to the next.
            if b >= 0x20 && b != b'"' && b != b'\\' {
                continue;
            }
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                _ => b'u',
            };
            self.buf
                .extend_from_slice(bytes.get(start..i).unwrap_or_default());
            self.buf.push(b'\\');
            self.buf.push(short);
            if short == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.buf.extend_from_slice(b"00");
                self.buf.push(HEX[usize::from(b >> 4)]);
                self.buf.push(HEX[usize::from(b & 0x0f)]);
            }
            start = i + 1;
        }
        self.buf
            .extend_from_slice(bytes.get(start..).unwrap_or_default());
    }
}

/// `n` in decimal, zero-padded to `width`; a wider number keeps all its digits.
pub fn decimal(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut n = n;
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut every: String = (0u8..0x80).map(char::from).collect();
        every.push_str("é😀\u{2028}…");
        let mut j = Json::with_capacity(0);
        j.string(&every);
        assert_eq!(j.buf, serde_json::to_vec(&every).unwrap());
    }

    #[test]
    fn numbers_and_nesting() {
        let mut j = Json::with_capacity(0);
        j.open();
        for (k, n) in [("zero", 0), ("one", 1), ("max", u64::MAX)] {
            j.key(k);
            j.uint(n);
        }
        j.key_escaped("a\"b");
        j.open_array();
        for v in [
            serde_json::json!(-1.5),
            serde_json::json!(null),
            serde_json::json!(7),
        ] {
            j.item();
            j.scalar(&v);
        }
        j.item();
        j.open();
        j.close();
        j.close_array();
        j.key("t");
        j.bool(true);
        j.close();
        assert_eq!(
            String::from_utf8(j.buf).unwrap(),
            format!(
                r#"{{"zero":0,"one":1,"max":{},"a\"b":[-1.5,null,7,{{}}],"t":true}}"#,
                u64::MAX
            )
        );
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        let mut j = Json::with_capacity(0);
        j.cut("ééé", 3);
        j.cut("abc", 3);
        assert_eq!(String::from_utf8(j.buf).unwrap(), "\"é…\"\"abc\"");
    }
}
