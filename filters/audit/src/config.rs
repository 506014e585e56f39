//! The audit configuration: parsed with serde (unknown fields refused), then checked and compiled
//! once, in `on_configure`. Every error names its field.

use std::collections::BTreeSet;

use portcullis_common::config::{self, ConfigError, Mode};
use portcullis_common::route::{PathParameters, RequestPath};

use crate::chain::{is_key_id, Seal, SealKey, MIN_KEY_LEN};
use serde::Deserialize;

/// Decision instances read by default, in chain order.
pub const DEFAULT_DECISIONS: [&str; 5] = [
    "ratelimit-client",
    "auth",
    "ratelimit-identity",
    "sanitizer",
    "cache",
];

/// Query parameters that are always redacted, whatever the configuration adds.
pub const BUILTIN_QUERY_PARAMS: [&str; 18] = [
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "client_secret",
    "code",
    "id_token",
    "jwt",
    "key",
    "passwd",
    "password",
    "refresh_token",
    "secret",
    "session",
    "sessionid",
    "sig",
    "signature",
    "token",
];

/// Field names whose values never appear in a record (decision details, and as query
/// parameters), whatever the configuration adds.
pub const BUILTIN_FIELDS: [&str; 16] = [
    "api_key",
    "apikey",
    "authorization",
    "card_number",
    "cardnumber",
    "cookie",
    "credentials",
    "cvv",
    "passwd",
    "password",
    "proxy-authorization",
    "secret",
    "set-cookie",
    "ssn",
    "token",
    "x-api-key",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Audit never denies; accepted so every filter has the same `mode` field.
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub sink: SinkKind,
    #[serde(default)]
    pub http: Option<RawHttpSink>,
    /// Fraction of allowed requests recorded; denies, errors and security events always are.
    #[serde(default = "one")]
    pub sample_rate: f64,
    /// Paths whose routine requests are not recorded: exact, or a prefix ending in `*`. None by
    /// default; a request with a query string, a denial, an error, a shadow deny or a security
    /// event on them always is.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// Filter instances whose published decision goes into the record.
    #[serde(default = "default_decisions")]
    pub decisions: Vec<String>,
    /// Added to the built-in list of redacted query parameters (case-insensitive).
    #[serde(default)]
    pub redact_query_params: Vec<String>,
    /// Added to the built-in list of redacted field names (body fields reported in decision
    /// details, and the same names as query parameters).
    #[serde(default)]
    pub redact_fields: Vec<String>,
    /// Identifiers recorded as a keyed hash instead of in clear.
    #[serde(default)]
    pub hash_identifiers: Vec<Identifier>,
    /// Environment variable (passed to the VM by `vm_config.environment_variables`) holding the
    /// HMAC key for hashed identifiers; without it they are plain SHA-256 (pseudonymous only).
    #[serde(default)]
    pub hash_key_env: Option<String>,
    /// The auth instance whose denies count as authentication failures.
    #[serde(default = "default_auth_instance")]
    pub auth_instance: String,
    /// This many auth failures from one client address within the window flag a security event.
    #[serde(default = "default_auth_threshold")]
    pub auth_failure_threshold: u32,
    #[serde(default = "default_auth_window")]
    pub auth_failure_window_ms: u64,
    /// Client addresses tracked for repeated auth failures (per worker; oldest evicted).
    #[serde(default = "default_tracked_clients")]
    pub auth_failure_tracked_clients: usize,
    /// How records are sealed: HMAC-SHA-256 under a key from an environment variable by default.
    #[serde(default)]
    pub seal: RawSeal,
}

/// The environment variable holding the sealing key unless `seal.key_env` names another.
pub const DEFAULT_KEY_ENV: &str = "PORTCULLIS_AUDIT_KEY";
/// The key id written into records unless `seal.key_id` names another.
pub const DEFAULT_KEY_ID: &str = "1";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealMode {
    #[default]
    HmacSha256,
    /// Plain SHA-256: anyone who can write the log can reseal it. Only by explicit choice.
    UnkeyedSha256,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeal {
    #[serde(default)]
    pub mode: SealMode,
    /// Environment variable (passed to the VM by `vm_config.environment_variables`) holding the
    /// key: at least 32 bytes, used as they are.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Written into every record so a verifier knows which key to use: change it with the key.
    #[serde(default)]
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// One line per record in Envoy's log.
    #[default]
    Log,
    /// NDJSON batches POSTed to a cluster.
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    ClientAddress,
    Subject,
    KeyId,
    Tenant,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSink {
    /// Envoy cluster of the collector.
    pub cluster: String,
    #[serde(default = "default_authority")]
    pub authority: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// A batch is sent when it holds this many records ...
    #[serde(default = "default_batch")]
    pub batch_max_records: usize,
    /// ... or when its oldest record has waited this long.
    #[serde(default = "default_flush")]
    pub flush_interval_ms: u64,
    /// Records waiting in the shared queue, all workers together; beyond it records are dropped
    /// (and counted).
    #[serde(default = "default_queue")]
    pub queue_capacity: u64,
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
}

fn one() -> f64 {
    1.0
}
fn default_decisions() -> Vec<String> {
    DEFAULT_DECISIONS.iter().map(|s| s.to_string()).collect()
}
fn default_auth_instance() -> String {
    "auth".into()
}
fn default_auth_threshold() -> u32 {
    5
}
fn default_auth_window() -> u64 {
    60_000
}
fn default_tracked_clients() -> usize {
    4096
}
fn default_authority() -> String {
    "audit-collector".into()
}
fn default_path() -> String {
    "/ingest".into()
}
fn default_timeout() -> u64 {
    2_000
}
fn default_batch() -> usize {
    100
}
fn default_flush() -> u64 {
    1_000
}
fn default_queue() -> u64 {
    10_000
}
fn default_retry_base() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    10_000
}

/// The compiled configuration the core runs on.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub mode: Mode,
    pub sink: Sink,
    pub sample_rate: f64,
    pub exclude: Vec<PathPattern>,
    pub decisions: Vec<String>,
    /// Lower-cased.
    pub redact_query_params: BTreeSet<String>,
    /// Lower-cased.
    pub redact_fields: BTreeSet<String>,
    pub hash_identifiers: BTreeSet<Identifier>,
    pub hash_key_env: Option<String>,
    pub auth_instance: String,
    pub auth_failure_threshold: u32,
    pub auth_failure_window_ms: u64,
    pub auth_failure_tracked_clients: usize,
    pub seal: SealConfig,
}

/// The compiled `seal`: where the key comes from, not the key (read by the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealConfig {
    Hmac { key_env: String, key_id: String },
    Unkeyed,
}

impl SealConfig {
    /// The sealing key from the value of the environment variable (`None`: not set), or an
    /// error naming the field and the variable, never the value.
    pub fn load(&self, value: Option<&[u8]>) -> Result<Seal, ConfigError> {
        let (key_env, key_id) = match self {
            SealConfig::Unkeyed => return Ok(Seal::Unkeyed),
            SealConfig::Hmac { key_env, key_id } => (key_env, key_id),
        };
        let value = value.filter(|v| !v.is_empty()).ok_or_else(|| {
            ConfigError::new(
                "seal.key_env",
                format!(
                    "environment variable `{key_env}` is not set for the VM \
                     (vm_config.environment_variables); set it to a key of at least \
                     {MIN_KEY_LEN} bytes, or choose \"seal\": {{\"mode\": \"unkeyed_sha256\"}}"
                ),
            )
        })?;
        SealKey::new(key_id, value)
            .map(Seal::Keyed)
            .map_err(|why| ConfigError::new("seal.key_env", format!("`{key_env}`: {why}")))
    }
}

fn compile_seal(raw: RawSeal) -> Result<SealConfig, ConfigError> {
    match raw.mode {
        SealMode::UnkeyedSha256 => {
            if raw.key_env.is_some() {
                return Err(ConfigError::new(
                    "key_env",
                    "only with \"mode\": \"hmac_sha256\"",
                ));
            }
            if raw.key_id.is_some() {
                return Err(ConfigError::new(
                    "key_id",
                    "only with \"mode\": \"hmac_sha256\"",
                ));
            }
            Ok(SealConfig::Unkeyed)
        }
        SealMode::HmacSha256 => {
            let key_env = raw.key_env.unwrap_or_else(|| DEFAULT_KEY_ENV.into());
            if key_env.trim().is_empty() {
                return Err(ConfigError::new("key_env", "empty variable name"));
            }
            let key_id = raw.key_id.unwrap_or_else(|| DEFAULT_KEY_ID.into());
            if !is_key_id(&key_id) {
                return Err(ConfigError::new(
                    "key_id",
                    "1 to 64 of letters, digits, `.`, `_` and `-`",
                ));
            }
            Ok(SealConfig::Hmac { key_env, key_id })
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    Log,
    Http(HttpSink),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSink {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub batch_max_records: usize,
    pub flush_interval_ms: u64,
    pub queue_capacity: u64,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    Prefix(String),
}

impl PathPattern {
    /// A request with a query string is never excluded: a probe sends none, and a query is
    /// where a payload travels (`/healthz?q=...` must not pass unrecorded).
    pub fn matches(&self, path: &str) -> bool {
        if path.contains('?') {
            return false;
        }
        match self {
            PathPattern::Exact(p) => path == p,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

impl AuditConfig {
    pub fn parse(raw: &[u8]) -> Result<AuditConfig, ConfigError> {
        AuditConfig::compile(config::parse::<RawConfig>(raw)?)
    }

    pub fn compile(raw: RawConfig) -> Result<AuditConfig, ConfigError> {
        if !(0.0..=1.0).contains(&raw.sample_rate) {
            return Err(ConfigError::new("sample_rate", "must be between 0 and 1"));
        }
        let sink = match (raw.sink, raw.http) {
            (SinkKind::Log, None) => Sink::Log,
            (SinkKind::Log, Some(_)) => {
                return Err(ConfigError::new(
                    "http",
                    "only used with \"sink\": \"http\"",
                ))
            }
            (SinkKind::Http, None) => {
                return Err(ConfigError::new(
                    "http",
                    "required with \"sink\": \"http\" (at least its cluster)",
                ))
            }
            (SinkKind::Http, Some(h)) => Sink::Http(compile_http(h).map_err(|e| e.within("http"))?),
        };
        let mut exclude = Vec::new();
        for (i, p) in raw.exclude_paths.iter().enumerate() {
            exclude.push(compile_pattern(p).map_err(|e| e.within(&format!("exclude_paths[{i}]")))?);
        }
        for (i, d) in raw.decisions.iter().enumerate() {
            if !is_instance_name(d) {
                return Err(ConfigError::new(
                    format!("decisions[{i}]"),
                    "an instance name: letters, digits, `-` and `_`",
                ));
            }
        }
        if !is_instance_name(&raw.auth_instance) {
            return Err(ConfigError::new(
                "auth_instance",
                "an instance name: letters, digits, `-` and `_`",
            ));
        }
        let lower_set = |field: &str, builtin: &[&str], extra: &[String]| {
            let mut set: BTreeSet<String> = builtin.iter().map(|s| s.to_string()).collect();
            for (i, name) in extra.iter().enumerate() {
                if name.trim().is_empty() {
                    return Err(ConfigError::new(format!("{field}[{i}]"), "empty name"));
                }
                set.insert(name.trim().to_ascii_lowercase());
            }
            Ok(set)
        };
        let redact_fields = lower_set("redact_fields", &BUILTIN_FIELDS, &raw.redact_fields)?;
        let mut redact_query_params = lower_set(
            "redact_query_params",
            &BUILTIN_QUERY_PARAMS,
            &raw.redact_query_params,
        )?;
        // A body field worth hiding is worth hiding when it travels in the query.
        redact_query_params.extend(redact_fields.iter().cloned());
        if raw.auth_failure_threshold == 0 {
            return Err(ConfigError::new(
                "auth_failure_threshold",
                "must be at least 1",
            ));
        }
        if raw.auth_failure_window_ms == 0 {
            return Err(ConfigError::new(
                "auth_failure_window_ms",
                "must be at least 1",
            ));
        }
        if !(1..=1_000_000).contains(&raw.auth_failure_tracked_clients) {
            return Err(ConfigError::new(
                "auth_failure_tracked_clients",
                "must be between 1 and 1000000",
            ));
        }
        if let Some(env) = &raw.hash_key_env {
            if env.trim().is_empty() {
                return Err(ConfigError::new("hash_key_env", "empty variable name"));
            }
        }
        let seal = compile_seal(raw.seal).map_err(|e| e.within("seal"))?;
        Ok(AuditConfig {
            seal,
            mode: raw.mode,
            sink,
            sample_rate: raw.sample_rate,
            exclude,
            decisions: raw.decisions,
            redact_query_params,
            redact_fields,
            hash_identifiers: raw.hash_identifiers.into_iter().collect(),
            hash_key_env: raw.hash_key_env,
            auth_instance: raw.auth_instance,
            auth_failure_threshold: raw.auth_failure_threshold,
            auth_failure_window_ms: raw.auth_failure_window_ms,
            auth_failure_tracked_clients: raw.auth_failure_tracked_clients,
        })
    }

    /// Only a path every upstream reads as written can be excluded: one with a dot-segment, a
    /// `;` parameter, an encoded separator, `//` or any percent-escape (see
    /// [`RequestPath::ambiguity`]) may resolve to another resource behind the excluded prefix
    /// (`/internal/..;/admin`), so it is always recorded.
    pub fn is_excluded(&self, path: &str) -> bool {
        // `..` inside a segment too: nginx's `location /internal { alias /srv/internal/; }`
        // serves `/internal../admin` from `/srv/admin` (found by review).
        let plain = !path.contains('%')
            && !path.contains("..")
            && RequestPath::parse(path, PathParameters::Refuse)
                .is_some_and(|p| p.ambiguity().is_none());
        plain && self.exclude.iter().any(|p| p.matches(path))
    }
}

fn compile_http(h: RawHttpSink) -> Result<HttpSink, ConfigError> {
    if h.cluster.trim().is_empty() {
        return Err(ConfigError::new("cluster", "empty cluster name"));
    }
    if h.authority.trim().is_empty() {
        return Err(ConfigError::new("authority", "empty authority"));
    }
    if !h.path.starts_with('/') {
        return Err(ConfigError::new("path", "must start with `/`"));
    }
    let range = |field: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(ConfigError::new(
                field,
                format!("must be between {lo} and {hi}"),
            ))
        }
    };
    range("timeout_ms", h.timeout_ms, 10, 60_000)?;
    range("batch_max_records", h.batch_max_records as u64, 1, 10_000)?;
    range("flush_interval_ms", h.flush_interval_ms, 10, 600_000)?;
    range("queue_capacity", h.queue_capacity, 1, 1_000_000)?;
    range("retry_base_ms", h.retry_base_ms, 10, 600_000)?;
    range("retry_max_ms", h.retry_max_ms, h.retry_base_ms, 3_600_000)?;
    Ok(HttpSink {
        cluster: h.cluster,
        authority: h.authority,
        path: h.path,
        timeout_ms: h.timeout_ms,
        batch_max_records: h.batch_max_records,
        flush_interval_ms: h.flush_interval_ms,
        queue_capacity: h.queue_capacity,
        retry_base_ms: h.retry_base_ms,
        retry_max_ms: h.retry_max_ms,
    })
}

fn compile_pattern(p: &str) -> Result<PathPattern, ConfigError> {
    if !p.starts_with('/') {
        return Err(ConfigError::new("", "must start with `/`"));
    }
    match p.strip_suffix('*') {
        Some(prefix) if prefix.contains('*') => {
            Err(ConfigError::new("", "`*` only at the end (a prefix)"))
        }
        Some(prefix) => Ok(PathPattern::Prefix(prefix.to_string())),
        None if p.contains('*') => Err(ConfigError::new("", "`*` only at the end (a prefix)")),
        None => Ok(PathPattern::Exact(p.to_string())),
    }
}

fn is_instance_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        AuditConfig::parse(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_log_sink_and_everything_recorded() {
        let c = AuditConfig::parse(b"").unwrap();
        assert_eq!(c.sink, Sink::Log);
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.decisions, DEFAULT_DECISIONS);
        assert!(
            c.exclude.is_empty(),
            "every request is recorded unless excluded"
        );
        assert!(!c.is_excluded("/healthz"));
        assert!(c.redact_query_params.contains("access_token"));
        assert!(c.redact_query_params.contains("card_number"));
        assert!(c.redact_fields.contains("password"));
    }

    #[test]
    fn http_sink_with_defaults() {
        let c =
            AuditConfig::parse(br#"{"sink":"http","http":{"cluster":"audit_collector"}}"#).unwrap();
        let Sink::Http(h) = c.sink else {
            panic!("http sink expected")
        };
        assert_eq!(h.cluster, "audit_collector");
        assert_eq!(h.path, "/ingest");
        assert_eq!(h.batch_max_records, 100);
        assert_eq!(h.queue_capacity, 10_000);
    }

    #[test]
    fn additions_extend_but_never_replace_the_builtins() {
        let c =
            AuditConfig::parse(br#"{"redact_query_params":["Promo"],"redact_fields":["iban"]}"#)
                .unwrap();
        assert!(c.redact_query_params.contains("promo"));
        assert!(c.redact_query_params.contains("iban"));
        assert!(c.redact_query_params.contains("token"));
        assert!(c.redact_fields.contains("iban"));
        assert!(c.redact_fields.contains("password"));
    }

    #[test]
    fn prefixes() {
        let c = AuditConfig::parse(br#"{"exclude_paths":["/internal/*","/ping"]}"#).unwrap();
        assert!(c.is_excluded("/internal/metrics"));
        assert!(c.is_excluded("/ping"));
        assert!(
            !c.is_excluded("/ping?verbose=1"),
            "a query is never excluded"
        );
        assert!(!c.is_excluded("/internal/metrics?x=1"));
        assert!(!c.is_excluded("/ping?"));
        assert!(!c.is_excluded("/ping/deep"));
        assert!(!c.is_excluded("/healthz"));
    }

    #[test]
    fn a_prefix_without_slash_does_not_hide_an_alias_traversal() {
        // nginx `location /internal { alias /srv/internal/; }` serves /internal../admin as
        // /srv/admin (off-by-slash alias traversal); the segment `internal..` is not a dot-segment.
        let c = AuditConfig::parse(br#"{"exclude_paths":["/internal*"]}"#).unwrap();
        assert!(!c.is_excluded("/internal../admin/users"));
        assert!(!c.is_excluded("/internal.../x"));
        // What the operator wrote still holds.
        assert!(c.is_excluded("/internal-status"));
    }

    #[test]
    fn a_path_another_resource_hides_behind_is_never_excluded() {
        // Upstreams resolve these to another resource (`/admin`, `/internal/../admin`), or read
        // them differently: the raw prefix must not hide them from the record.
        let c = AuditConfig::parse(br#"{"exclude_paths":["/internal/*","/ping"]}"#).unwrap();
        for path in [
            "/internal/../admin",
            "/internal/%2e%2e/admin",
            "/internal/%2E%2E/admin",
            "/internal/..;/admin",
            "/internal/.%2e/admin",
            "/internal/x%2f..%2fadmin",
            "/internal//../admin",
            "/internal/a\\..\\admin",
            "/ping;jsessionid=1",
            "/ping%3Bx",
            "/ping#frag",
            "/internal/%00",
            "/internal/%252e%252e/admin",
            "/ping/.",
        ] {
            assert!(!c.is_excluded(path), "{path} must be recorded");
        }
        // Plain spellings still are excluded.
        assert!(c.is_excluded("/internal/metrics/cpu"));
        assert!(c.is_excluded("/internal/"));
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            err(r#"{"sample_rate":1.5}"#),
            "sample_rate: must be between 0 and 1"
        );
        assert_eq!(
            err(r#"{"sink":"http"}"#),
            "http: required with \"sink\": \"http\" (at least its cluster)"
        );
        assert_eq!(
            err(r#"{"http":{"cluster":"c"}}"#),
            "http: only used with \"sink\": \"http\""
        );
        assert_eq!(
            err(r#"{"sink":"http","http":{"cluster":"c","batch_max_records":0}}"#),
            "http.batch_max_records: must be between 1 and 10000"
        );
        assert_eq!(
            err(r#"{"sink":"http","http":{"cluster":"c","path":"ingest"}}"#),
            "http.path: must start with `/`"
        );
        assert_eq!(
            err(r#"{"sink":"http","http":{"cluster":"c","retry_base_ms":500,"retry_max_ms":100}}"#),
            "http.retry_max_ms: must be between 500 and 3600000"
        );
        assert_eq!(
            err(r#"{"sink":"http","http":{"cluster":"c","queue":5}}"#),
            "http.queue: unknown field `queue`, expected one of `cluster`, `authority`, `path`, `timeout_ms`, `batch_max_records`, `flush_interval_ms`, `queue_capacity`, `retry_base_ms`, `retry_max_ms`"
        );
        assert_eq!(
            err(r#"{"exclude_paths":["/a","/b*c"]}"#),
            "exclude_paths[1]: `*` only at the end (a prefix)"
        );
        assert_eq!(
            err(r#"{"exclude_paths":["healthz"]}"#),
            "exclude_paths[0]: must start with `/`"
        );
        assert_eq!(
            err(r#"{"decisions":["auth","bad name"]}"#),
            "decisions[1]: an instance name: letters, digits, `-` and `_`"
        );
        assert_eq!(
            err(r#"{"redact_fields":["ok"," "]}"#),
            "redact_fields[1]: empty name"
        );
        assert_eq!(
            err(r#"{"hash_identifiers":["email"]}"#),
            "hash_identifiers[0]: unknown variant `email`, expected one of `client_address`, `subject`, `key_id`, `tenant`"
        );
        assert_eq!(
            err(r#"{"auth_failure_threshold":0}"#),
            "auth_failure_threshold: must be at least 1"
        );
        assert_eq!(
            err(r#"{"seal":{"mode":"unkeyed_sha256","key_env":"X"}}"#),
            "seal.key_env: only with \"mode\": \"hmac_sha256\""
        );
        assert_eq!(
            err(r#"{"seal":{"mode":"unkeyed_sha256","key_id":"2"}}"#),
            "seal.key_id: only with \"mode\": \"hmac_sha256\""
        );
        assert_eq!(
            err(r#"{"seal":{"key_env":" "}}"#),
            "seal.key_env: empty variable name"
        );
        assert_eq!(
            err(r#"{"seal":{"key_id":"2026 01"}}"#),
            "seal.key_id: 1 to 64 of letters, digits, `.`, `_` and `-`"
        );
        assert!(err(r#"{"seal":{"mode":"sha1"}}"#).starts_with("seal.mode: unknown variant `sha1`"));
        assert!(err(r#"{"seal":{"key":"x"}}"#).starts_with("seal.key: unknown field `key`"));
        assert_eq!(
            err(r#"{"sink":"file"}"#),
            "sink: unknown variant `file`, expected `log` or `http`"
        );
    }

    #[test]
    fn the_seal_is_keyed_by_default_and_the_key_is_checked_at_load() {
        let c = AuditConfig::parse(b"").unwrap();
        assert_eq!(
            c.seal,
            SealConfig::Hmac {
                key_env: "PORTCULLIS_AUDIT_KEY".into(),
                key_id: "1".into()
            }
        );
        let e = c.seal.load(None).unwrap_err().to_string();
        assert!(
            e.starts_with("seal.key_env: environment variable `PORTCULLIS_AUDIT_KEY` is not set"),
            "{e}"
        );
        assert!(c.seal.load(Some(b"")).is_err(), "empty is not set");
        let short = b"a-secret-too-short";
        let e = c.seal.load(Some(short)).unwrap_err().to_string();
        assert_eq!(
            e,
            "seal.key_env: `PORTCULLIS_AUDIT_KEY`: the key is 18 bytes; at least 32 are required"
        );
        let Ok(Seal::Keyed(key)) = c.seal.load(Some(&[b'k'; 32])) else {
            panic!("a 32-byte key loads")
        };
        assert_eq!(key.id(), "1");

        let c =
            AuditConfig::parse(br#"{"seal":{"key_env":"AUDIT_K","key_id":"2026-12.a"}}"#).unwrap();
        let Ok(Seal::Keyed(key)) = c.seal.load(Some(&[b'k'; 64])) else {
            panic!("a 64-byte key loads")
        };
        assert_eq!(key.id(), "2026-12.a");
        let e = c.seal.load(None).unwrap_err().to_string();
        assert!(e.contains("`AUDIT_K` is not set"), "{e}");

        let c = AuditConfig::parse(br#"{"seal":{"mode":"unkeyed_sha256"}}"#).unwrap();
        assert_eq!(c.seal, SealConfig::Unkeyed);
        assert!(matches!(c.seal.load(None), Ok(Seal::Unkeyed)));
    }
}
