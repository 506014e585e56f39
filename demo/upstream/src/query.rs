//! Splitting a raw request target into path and query, and decoding the query.
//!
//! Written by hand (instead of pulling in `url`) because the echo route must
//! show exactly what reached the origin: malformed escapes are kept as they
//! are rather than rejected, so a test can see what a filter let through.

/// Splits a request target into its raw path and its parsed query.
///
/// Absolute-form targets (`http://host/path?q`) are reduced to their path, and
/// any `#fragment` is dropped. The path itself is left undecoded on purpose.
pub(crate) fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let target = strip_scheme_and_authority(target);
    let target = target.split('#').next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = if path.is_empty() { "/" } else { path };
    (path.to_string(), parse_query(query))
}

fn strip_scheme_and_authority(target: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            // The path starts at the first '/' (or '?') after the authority.
            return rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        }
    }
    target
}

/// Parses `a=1&b=two+words&flag` into pairs; a key without `=` gets an empty value.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Form-style percent-decoding: `+` is a space, `%XX` a byte, and a `%` not
/// followed by two hex digits stays literal. Invalid UTF-8 becomes U+FFFD.
pub(crate) fn decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? * 16 + hex_value(hex[1])?));
                if let Some(byte) = escaped {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_escapes_plus_and_keeps_malformed_escapes() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("%E2%9C%93"), "✓");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%2B"), "+");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn parses_query_pairs_in_order() {
        assert_eq!(
            parse_query("b=2&a=1&&flag&x=a=b&q=hello+world%21"),
            pairs(&[
                ("b", "2"),
                ("a", "1"),
                ("flag", ""),
                ("x", "a=b"),
                ("q", "hello world!")
            ])
        );
        assert!(parse_query("").is_empty());
    }

    #[test]
    fn splits_origin_and_absolute_form_targets() {
        assert_eq!(split_target("/echo"), ("/echo".to_string(), vec![]));
        assert_eq!(
            split_target("/echo/x%2Fy?k=v#frag"),
            ("/echo/x%2Fy".to_string(), pairs(&[("k", "v")]))
        );
        assert_eq!(
            split_target("http://example.test:8080/a/b?x=1"),
            ("/a/b".to_string(), pairs(&[("x", "1")]))
        );
        assert_eq!(
            split_target("https://example.test?x=1"),
            ("/".to_string(), pairs(&[("x", "1")]))
        );
    }
}
