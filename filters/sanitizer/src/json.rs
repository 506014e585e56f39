//! JSON bodies parsed strictly: an object that names the same key twice is refused. Parsers
//! disagree on which of the two values wins (serde_json keeps the last, others the first), so a
//! payload in the value the sanitizer does not keep would reach an upstream that reads that one:
//! a parser differential, and a known way around a WAF.
//!
//! serde_json does the parsing (its grammar, escapes and recursion limit); the visitor here builds
//! a light tree of its own instead of a `serde_json::Value`: strings without escapes borrow the
//! body, objects are vectors. The inspection only needs the strings and the shape, and a `Value`
//! (a `String` per string, a `BTreeMap` node per few keys) was most of the cost of a JSON body.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a body is not a document we inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Deeper than serde_json's recursion limit (128).
    TooDeep,
    /// An object names the same key twice.
    DuplicateKey,
    Malformed,
}

/// A parsed JSON value: what the inspection needs of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'de> {
    String(Cow<'de, str>),
    Array(Vec<Node<'de>>),
    /// Members sorted by key (byte order, as a `BTreeMap<String, _>` iterates), keys unique.
    Object(Vec<(Cow<'de, str>, Node<'de>)>),
    /// A number, `true`, `false` or `null`.
    Scalar,
}

impl<'de> Node<'de> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Node<'de>> {
        match self {
            Node::Object(members) => members
                .binary_search_by(|(k, _)| k.as_ref().cmp(key))
                .ok()
                .and_then(|i| members.get(i))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }
}

const DUPLICATE: &str = "duplicate key in an object";

/// Objects with up to this many keys are checked for a repeat by comparing with each earlier key;
/// larger ones through a set, so that a large object stays O(n log n).
const LINEAR_KEYS: usize = 16;

pub fn parse(body: &[u8]) -> Result<Node<'_>, JsonError> {
    match serde_json::from_slice::<Strict>(body) {
        Ok(Strict(doc)) => Ok(doc),
        Err(e) => {
            // serde_json reports a visitor's error as its message plus a position.
            let text = e.to_string();
            Err(if text.starts_with(DUPLICATE) {
                JsonError::DuplicateKey
            } else if text.contains("recursion limit") {
                JsonError::TooDeep
            } else {
                JsonError::Malformed
            })
        }
    }
}

struct Strict<'de>(Node<'de>);

impl<'de> Deserialize<'de> for Strict<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

/// The shape of serde_json's own `Value` visitor, with the duplicate check in `visit_map`.
struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node<'de>, E> {
        Ok(Node::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar)
    }

    /// A string without escapes: borrowed from the body.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Scalar)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        // The keys of a large object, once it has more than `LINEAR_KEYS`.
        let mut seen: Option<BTreeSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let repeated = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => members.iter().any(|(k, _)| *k == key),
            };
            if repeated {
                // The key is the client's text: it stays out of the error.
                return Err(de::Error::custom(DUPLICATE));
            }
            if seen.is_none() && members.len() >= LINEAR_KEYS {
                let mut set: BTreeSet<Cow<'de, str>> =
                    members.iter().map(|(k, _)| k.clone()).collect();
                set.insert(key.clone());
                seen = Some(set);
            }
            let Strict(value) = map.next_value()?;
            members.push((key, value));
        }
        // The order a `BTreeMap` gave: findings and limits are met in the same order as before.
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// `Node` and serde_json's `Value` of the same document hold the same strings, shape and key
    /// order.
    fn same(n: &Node<'_>, v: &Value) -> bool {
        match (n, v) {
            (Node::String(a), Value::String(b)) => a == b,
            (Node::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Node::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, x), (kb, y))| ka == kb && same(x, y))
            }
            (Node::Scalar, Value::Number(_) | Value::Bool(_) | Value::Null) => true,
            _ => false,
        }
    }

    #[test]
    fn parses_like_serde_json() {
        for doc in [
            r#"{"a":1,"b":[true,null,-2,3.5,"x\u00e9"],"c":{"d":{}},"e":[]}"#,
            r#"[1,{"a":"b"},[[]]]"#,
            r#""text""#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e308",
            r#"{"z":1,"b":{"y":"\"q\"","a":2},"\u00e9":3,"A":"x","aa":[{"k":"v","j":"w"}]}"#,
        ] {
            let expected: Value = serde_json::from_str(doc).unwrap();
            assert!(same(&parse(doc.as_bytes()).unwrap(), &expected), "{doc}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for doc in [
            r#"{"a":"<script>alert(1)</script>","a":"x"}"#,
            r#"{"outer":{"k":1,"j":2,"k":3}}"#,
            r#"[{"ok":1},{"id":1,"id":1}]"#,
            r#"{"a":{},"a":{}}"#,
        ] {
            assert_eq!(parse(doc.as_bytes()), Err(JsonError::DuplicateKey), "{doc}");
        }
        // The same key in sibling objects is not a repeat.
        assert!(parse(br#"[{"id":1},{"id":2}]"#).is_ok());
        // Large objects are checked through a set: a repeat far apart is still one.
        let mut big: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
        assert!(parse(format!("{{{}}}", big.join(",")).as_bytes()).is_ok());
        big.push(r#""k3":0"#.to_string());
        let doc = format!("{{{}}}", big.join(","));
        assert_eq!(parse(doc.as_bytes()), Err(JsonError::DuplicateKey));
        let doc = format!(r#"{{{},"k\u0033":0}}"#, big[..40].join(","));
        assert_eq!(parse(doc.as_bytes()), Err(JsonError::DuplicateKey));
        // Keys that differ only after escapes are decoded are the same key.
        assert_eq!(
            parse(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateKey)
        );
    }

    #[test]
    fn malformed_and_too_deep_stay_apart() {
        assert_eq!(parse(b"{\"a\":"), Err(JsonError::Malformed));
        assert_eq!(parse(b"{\"a\" 1}"), Err(JsonError::Malformed));
        assert_eq!(parse(b"\xff"), Err(JsonError::Malformed));
        assert_eq!(parse("[".repeat(200).as_bytes()), Err(JsonError::TooDeep));
        // A string that merely contains the duplicate message is data, not an error.
        assert!(parse(br#"{"note":"duplicate key in an object"}"#).is_ok());
    }
}
