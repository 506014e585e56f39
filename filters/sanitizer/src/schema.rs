//! Request validation against a JSON-schema subset: `type`, `properties`, `required`, `items`,
//! `minLength`/`maxLength`, `minimum`/`maximum`, `pattern`, `enum`, `minItems`/`maxItems`.
//! Compiled once at configure time (patterns with `regex-lite`, which runs in linear time); an
//! unknown keyword is a configuration error, so a typo cannot silently disable a check.

use portcullis_common::config::ConfigError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Object,
    Array,
    String,
    Number,
    Integer,
    Boolean,
    Null,
}

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "number" => Type::Number,
            "integer" => Type::Integer,
            "boolean" => Type::Boolean,
            "null" => Type::Null,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Number => "number",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::Null => "null",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Type::Object => v.is_object(),
            Type::Array => v.is_array(),
            Type::String => v.is_string(),
            Type::Number => v.is_number(),
            Type::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            Type::Boolean => v.is_boolean(),
            Type::Null => v.is_null(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    types: Vec<Type>,
    properties: Vec<(String, Schema)>,
    required: Vec<String>,
    items: Option<Box<Schema>>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    pattern: Option<regex_lite::Regex>,
    enumeration: Option<Vec<Value>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
}

/// Why a document does not match: the JSON path of the failing value and what was expected. Never
/// the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

fn count(v: &Value, field: &str) -> Result<u64, ConfigError> {
    v.as_u64()
        .ok_or_else(|| ConfigError::new(field, "must be a non-negative integer"))
}

fn number(v: &Value, field: &str) -> Result<f64, ConfigError> {
    v.as_f64()
        .ok_or_else(|| ConfigError::new(field, "must be a number"))
}

/// Compiles a schema; error fields are relative to the schema (`properties.name.maxLength`).
pub fn compile(spec: &Value) -> Result<Schema, ConfigError> {
    compile_at(spec, 0)
}

fn compile_at(spec: &Value, depth: usize) -> Result<Schema, ConfigError> {
    if depth > 32 {
        return Err(ConfigError::new("", "schema nested deeper than 32 levels"));
    }
    let obj: &Map<String, Value> = spec
        .as_object()
        .ok_or_else(|| ConfigError::new("", "a schema must be a JSON object"))?;
    let mut s = Schema::default();
    for (key, v) in obj {
        match key.as_str() {
            "type" => {
                let names: Vec<&str> = match v {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if names.is_empty() {
                    return Err(ConfigError::new(
                        "type",
                        "must be a type name or a list of them",
                    ));
                }
                for n in names {
                    s.types.push(
                        Type::parse(n).ok_or_else(|| {
                            ConfigError::new("type", format!("unknown type `{n}`"))
                        })?,
                    );
                }
            }
            "properties" => {
                let props = v
                    .as_object()
                    .ok_or_else(|| ConfigError::new("properties", "must be an object"))?;
                for (name, sub) in props {
                    let compiled = compile_at(sub, depth + 1)
                        .map_err(|e| e.within(&format!("properties.{name}")))?;
                    s.properties.push((name.clone(), compiled));
                }
            }
            "required" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| ConfigError::new("required", "must be a list of names"))?;
                for (i, n) in list.iter().enumerate() {
                    s.required.push(
                        n.as_str()
                            .ok_or_else(|| {
                                ConfigError::new(format!("required[{i}]"), "must be a string")
                            })?
                            .to_string(),
                    );
                }
            }
            "items" => {
                s.items = Some(Box::new(
                    compile_at(v, depth + 1).map_err(|e| e.within("items"))?,
                ));
            }
            "minLength" => s.min_length = Some(count(v, key)?),
            "maxLength" => s.max_length = Some(count(v, key)?),
            "minItems" => s.min_items = Some(count(v, key)?),
            "maxItems" => s.max_items = Some(count(v, key)?),
            "minimum" => s.minimum = Some(number(v, key)?),
            "maximum" => s.maximum = Some(number(v, key)?),
            "pattern" => {
                let p = v
                    .as_str()
                    .ok_or_else(|| ConfigError::new("pattern", "must be a string"))?;
                let re = regex_lite::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ConfigError::new("pattern", format!("invalid pattern: {e}")))?;
                s.pattern = Some(re);
            }
            "enum" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| ConfigError::new("enum", "must be a list"))?;
                s.enumeration = Some(list.clone());
            }
            // Annotations that change nothing.
            "title" | "description" | "$comment" => {}
            other => {
                return Err(ConfigError::new(
                    other,
                    "unsupported schema keyword (supported: type, properties, required, items, \
                     minLength, maxLength, minimum, maximum, pattern, enum, minItems, maxItems)",
                ))
            }
        }
    }
    Ok(s)
}

impl Schema {
    /// The first violation, depth first, or `None`.
    pub fn validate(&self, v: &Value) -> Option<Violation> {
        let mut path = String::from("$");
        self.check(v, &mut path)
    }

    fn check(&self, v: &Value, path: &mut String) -> Option<Violation> {
        let fail = |path: &String, message: String| {
            Some(Violation {
                path: path.clone(),
                message,
            })
        };
        if !self.types.is_empty() && !self.types.iter().any(|t| t.accepts(v)) {
            let names: Vec<&str> = self.types.iter().map(|t| t.name()).collect();
            return fail(path, format!("must be of type {}", names.join(" or ")));
        }
        if let Some(allowed) = &self.enumeration {
            if !allowed.contains(v) {
                return fail(path, "must be one of the allowed values".to_string());
            }
        }
        match v {
            Value::String(text) => {
                let len = text.chars().count() as u64;
                if self.min_length.is_some_and(|m| len < m) {
                    return fail(
                        path,
                        format!(
                            "must be at least {} characters",
                            self.min_length.unwrap_or(0)
                        ),
                    );
                }
                if self.max_length.is_some_and(|m| len > m) {
                    return fail(
                        path,
                        format!(
                            "must be at most {} characters",
                            self.max_length.unwrap_or(0)
                        ),
                    );
                }
                if let Some(re) = &self.pattern {
                    if !re.is_match(text) {
                        return fail(path, "does not match the required pattern".to_string());
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = self.minimum {
                    if x.is_nan() || x < min {
                        return fail(path, format!("must be ≥ {min}"));
                    }
                }
                if let Some(max) = self.maximum {
                    if x.is_nan() || x > max {
                        return fail(path, format!("must be ≤ {max}"));
                    }
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if self.min_items.is_some_and(|m| n < m) {
                    return fail(
                        path,
                        format!("must have at least {} items", self.min_items.unwrap_or(0)),
                    );
                }
                if self.max_items.is_some_and(|m| n > m) {
                    return fail(
                        path,
                        format!("must have at most {} items", self.max_items.unwrap_or(0)),
                    );
                }
                if let Some(item_schema) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        let r = item_schema.check(item, path);
                        path.truncate(len);
                        if r.is_some() {
                            return r;
                        }
                    }
                }
            }
            Value::Object(map) => {
                for name in &self.required {
                    if !map.contains_key(name) {
                        return fail(path, format!("is missing required property `{name}`"));
                    }
                }
                for (name, sub) in &self.properties {
                    if let Some(child) = map.get(name) {
                        let len = path.len();
                        path.push('.');
                        path.push_str(name);
                        let r = sub.check(child, path);
                        path.truncate(len);
                        if r.is_some() {
                            return r;
                        }
                    }
                }
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Schema {
        compile(&json!({
            "type": "object",
            "required": ["sku", "qty"],
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                "note": {"type": "string", "maxLength": 10},
                "color": {"enum": ["red", "blue"]},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "minLength": 2}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn valid_and_each_violation() {
        let s = order();
        assert_eq!(s.validate(&json!({"sku": "ABC-1234", "qty": 3})), None);
        let v = |doc: Value| s.validate(&doc).unwrap();
        assert_eq!(v(json!([])).message, "must be of type object");
        assert_eq!(
            v(json!({"sku": "ABC-1234"})).message,
            "is missing required property `qty`"
        );
        assert_eq!(v(json!({"sku": "abc", "qty": 1})).path, "$.sku");
        let e = v(json!({"sku": "ABC-1234", "qty": 101}));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("$.qty", "must be ≤ 100")
        );
        assert_eq!(
            v(json!({"sku": "ABC-1234", "qty": 1.5})).message,
            "must be of type integer"
        );
        assert_eq!(
            v(json!({"sku": "ABC-1234", "qty": 1, "note": "01234567890"})).path,
            "$.note"
        );
        assert_eq!(
            v(json!({"sku": "ABC-1234", "qty": 1, "color": "green"})).path,
            "$.color"
        );
        assert_eq!(
            v(json!({"sku": "ABC-1234", "qty": 1, "tags": ["ok", "x"]})).path,
            "$.tags[1]"
        );
        assert_eq!(
            v(json!({"sku": "ABC-1234", "qty": 1, "tags": ["ab", "cd", "ef"]})).message,
            "must have at most 2 items"
        );
    }

    #[test]
    fn bad_schemas_name_the_keyword() {
        let e = compile(&json!({"properties": {"a": {"maxLenght": 3}}})).unwrap_err();
        assert_eq!(e.field, "properties.a.maxLenght");
        let e = compile(&json!({"pattern": "(unclosed"})).unwrap_err();
        assert_eq!(e.field, "pattern");
        let e = compile(&json!({"type": "strnig"})).unwrap_err();
        assert!(e.message.contains("strnig"));
        assert!(compile(&json!(3)).is_err());
    }
}
