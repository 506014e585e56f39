//! Redaction: what may reach a record, and in which form.
//!
//! The record is built from an allow-list of facts (it never copies request or response headers
//! wholesale, so `Authorization`, `Cookie`, `Set-Cookie` and `X-Api-Key` cannot reach it). The
//! places a secret can still travel are handled here: query parameters, path segments that carry
//! a bearer token, field names in other filters' decision details, and identifiers, which can be
//! replaced by a keyed hash.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::json::Json;

pub const REDACTED: &str = "[redacted]";

/// Longest value kept for any free-text field (path, user agent ...); longer ones are cut.
pub const MAX_TEXT: usize = 1024;

/// The path with the value of every sensitive query parameter replaced, and path segments that
/// look like a JWT replaced. Parameter names are compared case-insensitively, after
/// percent-decoding, so `%74oken=` is caught like `token=`. A path with nothing to hide (almost
/// every one) is returned as it is, without a copy.
pub fn redact_path<'a>(path: &'a str, sensitive: &BTreeSet<String>) -> Cow<'a, str> {
    let (base, query) = match path.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (path, None),
    };
    let hidden = |pair: &str| {
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        is_sensitive(sensitive, decode(name).trim())
            || value.is_some_and(|v| looks_like_jwt(&decode(v)))
    };
    let clean =
        !base.split('/').any(looks_like_jwt) && query.is_none_or(|q| !q.split('&').any(hidden));
    if clean {
        return match path.len() <= MAX_TEXT {
            true => Cow::Borrowed(path),
            false => Cow::Owned(truncate(path, MAX_TEXT)),
        };
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in base.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if looks_like_jwt(seg) { REDACTED } else { seg });
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            if hidden(pair) {
                out.push_str(pair.split_once('=').map_or(pair, |(name, _)| name));
                out.push('=');
                out.push_str(REDACTED);
            } else {
                out.push_str(pair);
            }
        }
    }
    Cow::Owned(truncate(&out, MAX_TEXT))
}

/// A compact JWS/JWT: three base64url parts, the first a JSON header (`eyJ` is `{"`).
pub fn looks_like_jwt(s: &str) -> bool {
    let s = s.strip_prefix("Bearer ").unwrap_or(s);
    if !s.starts_with("eyJ") {
        return false;
    }
    let mut parts = 0;
    for part in s.split('.') {
        parts += 1;
        let base64url = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=');
        if parts > 3 || (parts <= 2 && part.len() < 4) || !base64url {
            return false;
        }
    }
    parts == 3
}

/// Whether `name` is in `sensitive` (lower-cased names), ignoring ASCII case; lower-cases a
/// copy only for a name that has capitals.
fn is_sensitive(sensitive: &BTreeSet<String>, name: &str) -> bool {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        sensitive.contains(&name.to_ascii_lowercase())
    } else {
        sensitive.contains(name)
    }
}

/// Writes `details` as a JSON object, redacting at any depth the value of every key in
/// `sensitive` (case-insensitive) and any string that looks like a token; other strings are cut
/// at [`MAX_TEXT`].
pub fn write_details(out: &mut Json, details: &Map<String, Value>, sensitive: &BTreeSet<String>) {
    out.open();
    for (k, v) in details {
        out.key_escaped(k);
        if is_sensitive(sensitive, k) {
            out.string(REDACTED);
        } else {
            write_value(out, v, sensitive);
        }
    }
    out.close();
}

fn write_value(out: &mut Json, v: &Value, sensitive: &BTreeSet<String>) {
    match v {
        Value::Object(m) => write_details(out, m, sensitive),
        Value::Array(a) => {
            out.open_array();
            for x in a {
                out.item();
                write_value(out, x, sensitive);
            }
            out.close_array();
        }
        Value::String(s) if looks_like_jwt(s) => out.string(REDACTED),
        Value::String(s) => out.cut(s, MAX_TEXT),
        scalar => out.scalar(scalar),
    }
}

/// How identifiers are hashed: HMAC-SHA-256 with the configured key, or plain SHA-256 without
/// one; 128 bits, hex, prefixed so a reader knows it is not the identifier itself.
#[derive(Clone)]
pub struct IdentifierHasher {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for IdentifierHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        write!(f, "IdentifierHasher {{ keyed: {} }}", self.key.is_some())
    }
}

impl IdentifierHasher {
    pub fn new(key: Option<Vec<u8>>) -> IdentifierHasher {
        IdentifierHasher {
            key: key.filter(|k| !k.is_empty()),
        }
    }

    pub fn hash(&self, value: &str) -> String {
        let digest = match &self.key {
            Some(k) => hmac_sha256::HMAC::mac(value.as_bytes(), k),
            None => hmac_sha256::Hash::hash(value.as_bytes()),
        };
        let prefix = if self.key.is_some() {
            "hmac:"
        } else {
            "sha256:"
        };
        format!(
            "{prefix}{}",
            crate::chain::hex(digest.get(..16).unwrap_or(&digest))
        )
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

/// `s` percent-decoded (`+` as a space); borrowed when there is nothing to decode.
fn decode(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b == b'%' || b == b'+') {
        Cow::Owned(percent_decode(s))
    } else {
        Cow::Borrowed(s)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        } else if b == b'+' {
            out.push(b' ');
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuditConfig;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA";

    fn cfg() -> AuditConfig {
        AuditConfig::parse(br#"{"redact_query_params":["promo"],"redact_fields":["iban"]}"#)
            .unwrap()
    }

    #[test]
    fn sensitive_query_values_are_replaced_and_the_rest_kept() {
        let c = cfg();
        let p = redact_path(
            "/search?q=shoes&token=s3cr3t&Password=hunter2&page=2&flag&promo=X1&iban=DE89",
            &c.redact_query_params,
        );
        assert_eq!(
            p,
            "/search?q=shoes&token=[redacted]&Password=[redacted]&page=2&flag&promo=[redacted]&iban=[redacted]"
        );
    }

    #[test]
    fn encoded_names_and_token_values_are_caught() {
        let c = cfg();
        let path = format!("/a?%74oken=abc&access%5Ftoken=def&next={JWT}&x=1");
        let p = redact_path(&path, &c.redact_query_params);
        assert_eq!(
            p,
            "/a?%74oken=[redacted]&access%5Ftoken=[redacted]&next=[redacted]&x=1"
        );
        assert!(!p.contains("abc") && !p.contains("def") && !p.contains("eyJ"));
    }

    #[test]
    fn a_token_in_the_path_itself_is_replaced() {
        let c = cfg();
        assert_eq!(
            redact_path(&format!("/reset/{JWT}/confirm"), &c.redact_query_params),
            "/reset/[redacted]/confirm"
        );
        assert_eq!(
            redact_path("/a.b.c/v1.2.3", &c.redact_query_params),
            "/a.b.c/v1.2.3"
        );
    }

    #[test]
    fn details_are_redacted_at_any_depth() {
        let c = cfg();
        let details: Map<String, Value> = serde_json::from_str(&format!(
            r#"{{"field":"password","rule":"sqli-1","Password":"hunter2",
                "matched":{{"card_number":"4111111111111111","ok":[1,"{JWT}"]}},
                "cookie":"sid=1","iban":"DE89"}}"#
        ))
        .unwrap();
        let mut json = Json::with_capacity(0);
        write_details(&mut json, &details, &c.redact_fields);
        let out = String::from_utf8(json.buf).unwrap();
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["Password"], REDACTED);
        assert!(
            out.contains(r#""field":"password""#),
            "a field *name* is fine: {out}"
        );
        assert!(out.contains(r#""rule":"sqli-1""#));
        for secret in ["hunter2", "4111111111111111", "eyJ", "sid=1", "DE89"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
    }

    #[test]
    fn hashing_is_stable_keyed_and_never_the_value() {
        let plain = IdentifierHasher::new(None);
        let keyed = IdentifierHasher::new(Some(b"k1".to_vec()));
        let other = IdentifierHasher::new(Some(b"k2".to_vec()));
        assert_eq!(plain.hash("alice"), plain.hash("alice"));
        assert!(plain.hash("alice").starts_with("sha256:"));
        assert_eq!(plain.hash("alice").len(), "sha256:".len() + 32);
        assert!(keyed.hash("alice").starts_with("hmac:"));
        assert_ne!(keyed.hash("alice"), other.hash("alice"));
        assert!(!keyed.hash("alice").contains("alice"));
        assert!(!format!("{keyed:?}").contains("k1"));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a+b%41"), "a bA");
    }
}
