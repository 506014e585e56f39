//! Configuration parsing shared by every filter: JSON in, a typed config out, and on any error one
//! message that names the offending field (`rules[2].path: invalid regex`), so the operator can
//! fix the YAML without reading code.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A configuration error, always tied to the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field (`rules[2].path`); empty for the document itself.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Re-roots an error found while compiling a nested value: `path` inside `rules[2]` becomes
    /// `rules[2].path`; an index (`[3]`) is appended without a dot.
    pub fn within(self, prefix: &str) -> Self {
        let field = match (prefix.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => prefix.to_string(),
            (false, false) if self.field.starts_with('[') => format!("{prefix}{}", self.field),
            (false, false) => format!("{prefix}.{}", self.field),
        };
        ConfigError { field, ..self }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "configuration: {}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a filter's JSON configuration. An absent or blank configuration means `{}`, so a filter
/// whose fields all have defaults needs none.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ConfigError> {
    let raw = if raw.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        raw
    };
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        // serde_path_to_error renders the root as "."; we use "" for the document itself.
        let field = if field == "." { String::new() } else { field };
        ConfigError::new(field, without_position(&e.into_inner()))
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", without_position(&e)))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17"; the field name is the useful locator, and the
/// position into a one-line string embedded in YAML only confuses.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) if e.line() > 0 => text[..cut].to_string(),
        _ => text,
    }
}

/// Every filter has the same two modes: enforce its decisions, or only record and signal them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    /// Decide, count and signal (`would-deny`), but let the request through.
    Shadow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        #[allow(dead_code)]
        path: String,
        #[allow(dead_code)]
        #[serde(default)]
        limit: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        #[serde(default)]
        mode: Mode,
        #[allow(dead_code)]
        #[serde(default)]
        rules: Vec<Rule>,
    }

    /// A filter configuration whose fields all have defaults.
    #[derive(Debug, Default, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ModeOnly {
        #[serde(default)]
        mode: Mode,
    }

    #[test]
    fn blank_configuration_means_defaults() {
        assert_eq!(parse::<ModeOnly>(b"").unwrap().mode, Mode::Enforce);
        assert_eq!(parse::<ModeOnly>(b" \n ").unwrap(), ModeOnly::default());
    }

    #[test]
    fn modes_parse() {
        let c: ModeOnly = parse(br#"{"mode":"shadow"}"#).unwrap();
        assert_eq!(c.mode, Mode::Shadow);
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse::<ModeOnly>(br#"{"mdoe":"shadow"}"#).unwrap_err();
        assert_eq!(e.field, "mdoe");
        assert!(e.message.contains("unknown field `mdoe`"), "{e}");
        assert!(!e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn bad_enum_value_names_field() {
        let e = parse::<ModeOnly>(br#"{"mode":"block"}"#).unwrap_err();
        assert_eq!(e.field, "mode");
        assert_eq!(
            e.to_string(),
            "mode: unknown variant `block`, expected `enforce` or `shadow`"
        );
    }

    #[test]
    fn nested_field_path_is_named() {
        let e =
            parse::<Doc>(br#"{"rules":[{"path":"/a"},{"path":"/b","limit":"ten"}]}"#).unwrap_err();
        assert_eq!(e.field, "rules[1].limit");
        assert!(e.message.starts_with("invalid type: string \"ten\""), "{e}");
    }

    #[test]
    fn malformed_json_is_refused() {
        let e = parse::<Doc>(br#"{"mode": "#).unwrap_err();
        assert!(e.message.contains("EOF"), "{e}");
        let e = parse::<Doc>(b"42").unwrap_err();
        assert!(e.message.contains("expected struct Doc"), "{e}");
        assert_eq!(e.to_string(), format!("configuration: {}", e.message));
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let e = parse::<Doc>(br#"{} {}"#).unwrap_err();
        assert_eq!(e.field, "");
        assert!(e.message.contains("trailing characters"), "{e}");
    }

    #[test]
    fn within_prefixes_fields() {
        let e = ConfigError::new("path", "must start with '/'");
        assert_eq!(e.clone().within("rules[2]").field, "rules[2].path");
        assert_eq!(e.clone().within("").field, "path");
        assert_eq!(
            ConfigError::new("", "x").within("rules[0]").field,
            "rules[0]"
        );
        assert_eq!(
            ConfigError::new("[3]", "x").within("allow").field,
            "allow[3]"
        );
    }
}
