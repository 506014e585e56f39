//! The configuration of a `chain` instance: the stages it runs, in order, each a filter instance
//! with its own configuration.
//!
//! ```json
//! {"stages": [{"instance": "audit", "config": {"sink": "log"}},
//!             {"instance": "auth", "config": {...}}]}
//! ```

use portcullis_common::config::{self, ConfigError};
use serde::Deserialize;

use crate::{filter_for, Filter};

/// More stages than any chain of the five filters needs; a bound on the per-request work.
pub const MAX_STAGES: usize = 8;

/// One stage: the instance name (`ratelimit-client`) that stands in for its `root_id`, the filter
/// it names, and its configuration (required: `{}` for a filter's defaults) as the JSON text the
/// filter parses.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub instance: String,
    pub filter: Filter,
    pub config: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    stages: Vec<RawStage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    instance: String,
    /// Passed on verbatim, so the filter itself refuses what it refuses on its own (a key
    /// named twice, which a parsed map would silently reduce to its last value).
    config: Box<serde_json::value::RawValue>,
}

/// Parses and checks a chain's configuration; each stage's own configuration is checked by its
/// filter when the chain configures it.
pub fn parse(raw: &[u8]) -> Result<Vec<StageSpec>, ConfigError> {
    let chain: RawChain = config::parse(raw)?;
    if chain.stages.is_empty() {
        return Err(ConfigError::new(
            "stages",
            "a chain needs at least one stage",
        ));
    }
    if chain.stages.len() > MAX_STAGES {
        return Err(ConfigError::new(
            "stages",
            format!("at most {MAX_STAGES} stages, found {}", chain.stages.len()),
        ));
    }
    let mut specs: Vec<StageSpec> = Vec::with_capacity(chain.stages.len());
    for (i, stage) in chain.stages.into_iter().enumerate() {
        let field = format!("stages[{i}].instance");
        let filter = filter_for(&stage.instance).map_err(|e| ConfigError::new(&field, e))?;
        if filter == Filter::Chain {
            return Err(ConfigError::new(field, "a chain cannot hold a chain"));
        }
        if let Some(j) = specs.iter().position(|s| s.instance == stage.instance) {
            return Err(ConfigError::new(
                field,
                format!("`{}` is already stages[{j}]", stage.instance),
            ));
        }
        let config = stage.config.get();
        if !config.starts_with('{') {
            return Err(ConfigError::new(
                format!("stages[{i}].config"),
                "expected a JSON object",
            ));
        }
        specs.push(StageSpec {
            instance: stage.instance,
            filter,
            config: config.as_bytes().to_vec(),
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(raw: &str) -> String {
        parse(raw.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn stages_keep_their_order_names_and_configurations() {
        let specs = parse(
            br#"{"stages": [{"instance": "audit", "config": {"sink": "log"}},
                            {"instance": "ratelimit-client", "config": {}}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.instance.as_str()).collect();
        assert_eq!(names, ["audit", "ratelimit-client"]);
        assert_eq!(specs[0].filter, Filter::Audit);
        assert_eq!(specs[1].filter, Filter::Ratelimit);
        assert_eq!(specs[0].config, br#"{"sink": "log"}"#);
        assert_eq!(specs[1].config, b"{}");
    }

    #[test]
    fn bad_chains_are_refused_naming_the_field() {
        assert_eq!(err("{}"), "configuration: missing field `stages`");
        assert_eq!(
            err(r#"{"stages": []}"#),
            "stages: a chain needs at least one stage"
        );
        let nine: Vec<String> = (0..9)
            .map(|i| format!(r#"{{"instance": "auth-{i}", "config": {{}}}}"#))
            .collect();
        assert_eq!(
            err(&format!(r#"{{"stages": [{}]}}"#, nine.join(","))),
            "stages: at most 8 stages, found 9"
        );
        assert!(err(r#"{"stages": [{"instance": "authz", "config": {}}]}"#)
            .starts_with("stages[0].instance: root_id `authz`: expected a filter name"));
        assert_eq!(
            err(
                r#"{"stages": [{"instance": "auth", "config": {}}, {"instance": "chain-x", "config": {}}]}"#
            ),
            "stages[1].instance: a chain cannot hold a chain"
        );
        assert_eq!(
            err(
                r#"{"stages": [{"instance": "auth", "config": {}}, {"instance": "auth", "config": {}}]}"#
            ),
            "stages[1].instance: `auth` is already stages[0]"
        );
        assert_eq!(
            err(r#"{"stages": [{"instance": "auth", "config": []}]}"#),
            "stages[0].config: expected a JSON object"
        );
        // Verbatim: the filter sees (and refuses) a key named twice.
        let specs =
            parse(br#"{"stages": [{"instance": "auth", "config": {"mode": "a", "mode": "b"}}]}"#)
                .unwrap();
        assert_eq!(specs[0].config, br#"{"mode": "a", "mode": "b"}"#);
        assert!(err(r#"{"stages": [{"instance": "auth", "cfg": {}}]}"#)
            .starts_with("stages[0].cfg: unknown field `cfg`"));
        assert!(err(r#"{"stages": [{"instance": "auth"}]}"#)
            .starts_with("stages[0]: missing field `config`"));
        assert!(err(r#"{"stages": [], "extra": 1}"#).contains("unknown field `extra`"));
        let e = err("not json");
        assert!(e.starts_with("configuration: expected"), "{e}");
    }
}
