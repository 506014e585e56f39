//! JSON bodies parsed into a `serde_json::Value`, but strictly: an object that names the same key
//! twice is refused. Parsers disagree on which of the two values wins (serde_json keeps the last,
//! others the first), so a payload in the value the sanitizer does not keep would reach an
//! upstream that reads that one: a parser differential, and a known way around a WAF.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not a document we inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Deeper than serde_json's recursion limit (128).
    TooDeep,
    /// An object names the same key twice.
    DuplicateKey,
    Malformed,
}

const DUPLICATE: &str = "duplicate key in an object";

pub fn parse(body: &[u8]) -> Result<Value, JsonError> {
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

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

/// serde_json's own `Value` visitor, with the duplicate check in `visit_map`.
struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                // The key is the client's text: it stays out of the error.
                return Err(de::Error::custom(DUPLICATE));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json() {
        for doc in [
            r#"{"a":1,"b":[true,null,-2,3.5,"x\u00e9"],"c":{"d":{}},"e":[]}"#,
            r#"[1,{"a":"b"},[[]]]"#,
            r#""text""#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e308",
        ] {
            let expected: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(parse(doc.as_bytes()), Ok(expected), "{doc}");
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
