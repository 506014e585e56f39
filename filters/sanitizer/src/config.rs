//! The configuration as written (serde, unknown fields refused) and its compiled form: one
//! [`Policy`] per route plus the default, every override already merged, so a request only picks
//! its policy and never merges anything.

use portcullis_common::config::{ConfigError, Mode};
use portcullis_common::route::{self, RouteSpec, RouteTable};
use serde::Deserialize;
use serde_json::Value;

use crate::detect::Category;
use crate::schema::{self, Schema};

/// What to do with a body whose content type has no parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownContentType {
    /// Inspect it as text.
    InspectAsText,
    /// Let it through uninspected.
    Allow,
    /// Refuse with 415.
    Refuse,
}

/// Which request headers are inspected: every one except those named in `skip` (exact, or a
/// prefix when the entry ends with `*`). Pseudo-headers are never inspected as headers: the
/// path, query and method are inspected as such.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderPolicy {
    #[serde(default = "default_skip_headers")]
    pub skip: Vec<String>,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy {
            skip: default_skip_headers(),
        }
    }
}

/// What to do with a request body sent with `Content-Encoding: gzip` or `deflate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compressed {
    /// Inflate a copy (within `body_limit` and `max_decompression_ratio`) and inspect that.
    Decompress,
    /// Refuse with 415.
    Refuse,
}

/// What to do with a body whose declared `charset` is not UTF-8 (or ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charsets {
    /// Decode UTF-16, UTF-32 and ISO-8859-1 to UTF-8 before inspecting; refuse any other.
    Decode,
    /// Refuse (415) every charset but UTF-8 and US-ASCII.
    Utf8Only,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLimits {
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Keys plus values, over the whole document.
    #[serde(default = "default_max_fields")]
    pub max_fields: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits {
            max_depth: default_max_depth(),
            max_fields: default_max_fields(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadPolicy {
    /// File-name extensions accepted in multipart file parts (lower case, no dot). Empty: any.
    #[serde(default = "default_extensions")]
    pub allowed_extensions: Vec<String>,
    /// Check that the declared content type fits the extension and the first bytes fit the type.
    #[serde(default = "yes")]
    pub check_content: bool,
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            allowed_extensions: default_extensions(),
            check_content: true,
            max_parts: default_max_parts(),
        }
    }
}

/// A field exclusion: findings in `field` (exact, or a prefix when it ends with `*`) are ignored,
/// for the listed categories or all of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExclusionSpec {
    pub field: String,
    #[serde(default)]
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteOverride {
    #[serde(rename = "match")]
    pub route: RouteSpec,
    /// `false` turns the sanitizer off for this route.
    #[serde(default = "yes")]
    pub inspect: bool,
    pub mode: Option<Mode>,
    pub paranoia: Option<u8>,
    pub threshold: Option<u32>,
    pub body_limit: Option<usize>,
    pub allowed_methods: Option<Vec<String>>,
    pub allowed_content_types: Option<Vec<String>>,
    pub unknown_content_type: Option<UnknownContentType>,
    /// Refuse GraphQL documents that ask for the schema (`__schema`, `__type`).
    pub refuse_graphql_introspection: Option<bool>,
    #[serde(default)]
    pub exclude: Vec<ExclusionSpec>,
    /// JSON-schema subset the request body must satisfy.
    pub schema: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_paranoia")]
    pub paranoia: u8,
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    #[serde(default = "default_passes")]
    pub decode_passes: u8,
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    #[serde(default)]
    pub json: JsonLimits,
    #[serde(default)]
    pub uploads: UploadPolicy,
    /// Request headers inspected: all but `skip` (`cookie` is split into its values).
    #[serde(default, deserialize_with = "header_policy")]
    pub headers: HeaderPolicy,
    /// `Content-Encoding: gzip|deflate` request bodies: inflated and inspected, or refused.
    #[serde(default = "default_compressed")]
    pub compressed_bodies: Compressed,
    /// The largest inflated-to-compressed size ratio accepted (a larger one is a bomb: 413).
    #[serde(default = "default_ratio")]
    pub max_decompression_ratio: u32,
    #[serde(default = "default_charsets")]
    pub charsets: Charsets,
    /// `true`: the headers wait for the body's verdict (needs Envoy's
    /// `allow_on_headers_stop_iteration`). `false`: the headers go on and only the body is held
    /// (Istio's `WasmPlugin`, which cannot set that option); a refused body resets the stream.
    #[serde(default = "yes")]
    pub hold_headers: bool,
    /// With `hold_headers`: how long the headers may wait for the first body bytes before the
    /// filter concludes the host withholds the body (Envoy without
    /// `allow_on_headers_stop_iteration`) and refuses the request (500) instead of hanging.
    #[serde(default = "default_body_wait_ms")]
    pub body_wait_ms: u64,
    #[serde(default)]
    pub refuse_graphql_introspection: bool,
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_content_types: Vec<String>,
    #[serde(default = "default_unknown")]
    pub unknown_content_type: UnknownContentType,
    #[serde(default)]
    pub exclude: Vec<ExclusionSpec>,
    #[serde(default)]
    pub routes: Vec<RouteOverride>,
}

/// `headers` was a list of the headers to inspect; a struct would also accept a list (serde's
/// tuple form) and read it as `skip`, the opposite meaning, so a list is refused by name.
fn header_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HeaderPolicy, D::Error> {
    use serde::de::Error;
    let v = Value::deserialize(d)?;
    if !v.is_object() {
        return Err(D::Error::custom(
            "expected an object such as {\"skip\": [\"authorization\"]}: every request header \
             is inspected but those in `skip` (a list of headers to inspect is no longer accepted)",
        ));
    }
    HeaderPolicy::deserialize(v).map_err(D::Error::custom)
}

fn yes() -> bool {
    true
}
fn default_max_depth() -> usize {
    32
}
fn default_max_fields() -> usize {
    10_000
}
fn default_max_parts() -> usize {
    50
}
fn default_extensions() -> Vec<String> {
    [
        "png", "jpg", "jpeg", "gif", "webp", "pdf", "txt", "csv", "json",
    ]
    .map(String::from)
    .to_vec()
}
fn default_paranoia() -> u8 {
    1
}
fn default_threshold() -> u32 {
    5
}
fn default_passes() -> u8 {
    3
}
fn default_body_limit() -> usize {
    1024 * 1024
}
/// Headers whose values are structurally safe AND checked before the upstream reads them
/// (docs/sanitizer.md, "Headers", gives the reason for each): credentials (the auth filter
/// verifies them; their bytes are opaque secrets that would only trip detectors), and the
/// message framing (`content-length`, `transfer-encoding`), which Envoy's codec parses and
/// refuses when it does not parse. Everything else a server may parse or log is inspected:
/// `content-type` (the Struts OGNL shape), `content-encoding` (unchecked on a request without
/// a body), `accept*`, and the trace context.
fn default_skip_headers() -> Vec<String> {
    [
        "authorization",
        "proxy-authorization",
        "content-length",
        "transfer-encoding",
    ]
    .map(String::from)
    .to_vec()
}
fn default_body_wait_ms() -> u64 {
    10_000
}
fn default_compressed() -> Compressed {
    Compressed::Decompress
}
fn default_ratio() -> u32 {
    100
}
fn default_charsets() -> Charsets {
    Charsets::Decode
}
fn default_unknown() -> UnknownContentType {
    UnknownContentType::InspectAsText
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    field: String,
    prefix: bool,
    /// Empty: every category.
    categories: Vec<Category>,
}

impl Exclusion {
    pub fn covers(&self, field: &str, category: Category) -> bool {
        let field_ok = if self.prefix {
            field.starts_with(&self.field)
        } else {
            field == self.field
        };
        field_ok && (self.categories.is_empty() || self.categories.contains(&category))
    }
}

/// Everything one request's inspection needs, with route overrides merged in.
#[derive(Debug, Clone)]
pub struct Policy {
    pub inspect: bool,
    pub mode: Mode,
    pub paranoia: u8,
    pub threshold: u32,
    pub decode_passes: u8,
    pub body_limit: usize,
    pub json: JsonLimits,
    pub uploads: UploadPolicy,
    /// Lower-case header names (a trailing `*`: a prefix) not inspected.
    pub skip_headers: Vec<String>,
    pub compressed_bodies: Compressed,
    pub max_decompression_ratio: u32,
    pub charsets: Charsets,
    pub refuse_graphql_introspection: bool,
    /// Upper-case methods; empty: any.
    pub allowed_methods: Vec<String>,
    /// Lower-case media types, `type/*` allowed; empty: any.
    pub allowed_content_types: Vec<String>,
    pub unknown_content_type: UnknownContentType,
    pub exclusions: Vec<Exclusion>,
    pub schema: Option<Schema>,
    /// For logs: which route this policy came from.
    pub route: String,
}

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub default: Policy,
    pub routes: RouteTable<Policy>,
    /// Whether the headers wait for the body's verdict (see [`Config::hold_headers`]).
    pub hold_headers: bool,
    pub body_wait_ms: u64,
}

impl Compiled {
    pub fn policy_for<'a>(&'a self, method: &str, authority: &str, path: &'a str) -> &'a Policy {
        self.routes
            .first_match(method, authority, path)
            .map_or(&self.default, |(p, _)| p)
    }
}

fn check_paranoia(p: u8, field: &str) -> Result<u8, ConfigError> {
    if (1..=4).contains(&p) {
        Ok(p)
    } else {
        Err(ConfigError::new(field, "must be 1, 2, 3 or 4"))
    }
}

fn check_threshold(t: u32, field: &str) -> Result<u32, ConfigError> {
    if t == 0 {
        Err(ConfigError::new(field, "must be at least 1"))
    } else {
        Ok(t)
    }
}

fn check_body_limit(n: usize, field: &str) -> Result<usize, ConfigError> {
    if n == 0 || n > 64 * 1024 * 1024 {
        Err(ConfigError::new(field, "must be between 1 byte and 64 MiB"))
    } else {
        Ok(n)
    }
}

fn methods(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let up = m.to_ascii_uppercase();
            if KNOWN.contains(&up.as_str()) {
                Ok(up)
            } else {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("unknown method `{m}`"),
                ))
            }
        })
        .collect()
}

fn media_types(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let lower = t.trim().to_ascii_lowercase();
            let ok = lower.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && !lower.contains(';') && !lower.contains(' ')
            });
            if ok {
                Ok(lower)
            } else {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{t}` is not a media type such as `application/json` or `text/*`"),
                ))
            }
        })
        .collect()
}

fn exclusions(list: &[ExclusionSpec], field: &str) -> Result<Vec<Exclusion>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let at = format!("{field}[{i}]");
            if e.field.is_empty() {
                return Err(ConfigError::new(format!("{at}.field"), "must not be empty"));
            }
            let mut categories = Vec::new();
            for (j, c) in e.categories.iter().enumerate() {
                categories.push(Category::from_name(c).ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.categories[{j}]"),
                        format!(
                            "unknown category `{c}`; expected one of {}",
                            Category::ALL.map(Category::name).join(", ")
                        ),
                    )
                })?);
            }
            let (field, prefix) = match e.field.strip_suffix('*') {
                Some(p) => (p.to_string(), true),
                None => (e.field.clone(), false),
            };
            Ok(Exclusion {
                field,
                prefix,
                categories,
            })
        })
        .collect()
}

fn extensions(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let lower = e.trim_start_matches('.').to_ascii_lowercase();
            if lower.is_empty() || !lower.bytes().all(|c| c.is_ascii_alphanumeric()) {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{e}` is not a file extension"),
                ))
            } else {
                Ok(lower)
            }
        })
        .collect()
}

fn header_names(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let lower = h.trim().to_ascii_lowercase();
            let name = lower.strip_suffix('*').unwrap_or(&lower);
            let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&c);
            if name.is_empty() || !name.bytes().all(token) {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{h}` is not a header name (or a prefix ending with `*`)"),
                ))
            } else {
                Ok(lower)
            }
        })
        .collect()
}

fn check_ratio(r: u32) -> Result<u32, ConfigError> {
    if (1..=10_000).contains(&r) {
        Ok(r)
    } else {
        Err(ConfigError::new(
            "max_decompression_ratio",
            "must be between 1 and 10000",
        ))
    }
}

/// Validates and compiles the whole configuration.
pub fn compile(cfg: &Config) -> Result<Compiled, ConfigError> {
    if cfg.decode_passes == 0 || cfg.decode_passes > 8 {
        return Err(ConfigError::new("decode_passes", "must be between 1 and 8"));
    }
    if cfg.json.max_depth == 0 || cfg.json.max_depth > 100 {
        return Err(ConfigError::new(
            "json.max_depth",
            "must be between 1 and 100",
        ));
    }
    if cfg.json.max_fields == 0 {
        return Err(ConfigError::new("json.max_fields", "must be at least 1"));
    }
    if cfg.uploads.max_parts == 0 {
        return Err(ConfigError::new("uploads.max_parts", "must be at least 1"));
    }
    let mut uploads = cfg.uploads.clone();
    uploads.allowed_extensions = extensions(
        &cfg.uploads.allowed_extensions,
        "uploads.allowed_extensions",
    )?;
    let default = Policy {
        inspect: true,
        mode: cfg.mode,
        paranoia: check_paranoia(cfg.paranoia, "paranoia")?,
        threshold: check_threshold(cfg.threshold, "threshold")?,
        decode_passes: cfg.decode_passes,
        body_limit: check_body_limit(cfg.body_limit, "body_limit")?,
        json: cfg.json.clone(),
        uploads,
        skip_headers: header_names(&cfg.headers.skip, "headers.skip")?,
        compressed_bodies: cfg.compressed_bodies,
        max_decompression_ratio: check_ratio(cfg.max_decompression_ratio)?,
        charsets: cfg.charsets,
        refuse_graphql_introspection: cfg.refuse_graphql_introspection,
        allowed_methods: methods(&cfg.allowed_methods, "allowed_methods")?,
        allowed_content_types: media_types(&cfg.allowed_content_types, "allowed_content_types")?,
        unknown_content_type: cfg.unknown_content_type,
        exclusions: exclusions(&cfg.exclude, "exclude")?,
        schema: None,
        route: "default".to_string(),
    };
    let mut routes = RouteTable::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        // A route that turns inspection off exempts: it matches exactly as sent, never an
        // ambiguous path. Every other route guards: it cannot be dodged by case or encoding.
        let kind = if r.inspect {
            route::Kind::Guard
        } else {
            route::Kind::Exempt
        };
        let compiled =
            route::compile_as(&r.route, kind).map_err(|e| e.within(&format!("{at}.match")))?;
        let mut p = default.clone();
        p.route = r.route.path.clone();
        p.inspect = r.inspect;
        if let Some(m) = r.mode {
            p.mode = m;
        }
        if let Some(x) = r.paranoia {
            p.paranoia = check_paranoia(x, &format!("{at}.paranoia"))?;
        }
        if let Some(x) = r.threshold {
            p.threshold = check_threshold(x, &format!("{at}.threshold"))?;
        }
        if let Some(x) = r.body_limit {
            p.body_limit = check_body_limit(x, &format!("{at}.body_limit"))?;
        }
        if let Some(x) = &r.allowed_methods {
            p.allowed_methods = methods(x, &format!("{at}.allowed_methods"))?;
        }
        if let Some(x) = &r.allowed_content_types {
            p.allowed_content_types = media_types(x, &format!("{at}.allowed_content_types"))?;
        }
        if let Some(x) = r.unknown_content_type {
            p.unknown_content_type = x;
        }
        if let Some(x) = r.refuse_graphql_introspection {
            p.refuse_graphql_introspection = x;
        }
        p.exclusions
            .extend(exclusions(&r.exclude, &format!("{at}.exclude"))?);
        if let Some(s) = &r.schema {
            p.schema = Some(schema::compile(s).map_err(|e| e.within(&format!("{at}.schema")))?);
        }
        routes.push(compiled, p);
    }
    Ok(Compiled {
        default,
        routes,
        hold_headers: cfg.hold_headers,
        body_wait_ms: if (100..=600_000).contains(&cfg.body_wait_ms) {
            cfg.body_wait_ms
        } else {
            return Err(ConfigError::new(
                "body_wait_ms",
                "must be between 100 and 600000 (milliseconds)",
            ));
        },
    })
}

/// Parses and compiles a configuration document.
pub fn load(raw: &[u8]) -> Result<Compiled, ConfigError> {
    let cfg: Config = portcullis_common::config::parse(raw)?;
    compile(&cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = load(b"").unwrap();
        let p = &c.default;
        assert_eq!((p.paranoia, p.threshold, p.body_limit), (1, 5, 1 << 20));
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.unknown_content_type, UnknownContentType::InspectAsText);
        assert!(p.skip_headers.contains(&"authorization".to_string()));
        assert!(p.skip_headers.contains(&"transfer-encoding".to_string()));
        for inspected in [
            "content-type",
            "accept-language",
            "traceparent",
            "content-encoding",
        ] {
            assert!(
                !p.skip_headers.iter().any(|h| h == inspected),
                "{inspected}"
            );
        }
        assert_eq!(p.compressed_bodies, Compressed::Decompress);
        assert_eq!(p.max_decompression_ratio, 100);
        assert_eq!(p.charsets, Charsets::Decode);
        assert!(c.hold_headers);
        assert_eq!(c.body_wait_ms, 10_000);
        assert!(!p.refuse_graphql_introspection);
    }

    #[test]
    fn route_overrides_merge() {
        let c = load(
            br#"{"threshold": 7, "routes": [{"match": {"path": "/cms/**"}, "mode": "shadow",
                 "exclude": [{"field": "body.html*", "categories": ["xss"]}]}]}"#,
        )
        .unwrap();
        let p = c.policy_for("POST", "h", "/cms/page");
        assert_eq!((p.mode, p.threshold), (Mode::Shadow, 7));
        assert!(p.exclusions[0].covers("body.html.x", Category::Xss));
        assert!(!p.exclusions[0].covers("body.html.x", Category::Sqli));
        assert_eq!(c.policy_for("GET", "h", "/other").mode, Mode::Enforce);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 19] = [
            (br#"{"body_wait_ms": 50}"#, "body_wait_ms"),
            (
                br#"{"refuse_graphql_introspection": "yes"}"#,
                "refuse_graphql_introspection",
            ),
            (br#"{"headers": ["x-a"]}"#, "headers"),
            (br#"{"headers": {"skip": ["bad name"]}}"#, "headers.skip[0]"),
            (br#"{"headers": {"skpi": []}}"#, "headers"),
            (br#"{"compressed_bodies": "inflate"}"#, "compressed_bodies"),
            (
                br#"{"max_decompression_ratio": 0}"#,
                "max_decompression_ratio",
            ),
            (br#"{"charsets": "latin1"}"#, "charsets"),
            (br#"{"hold_headers": "no"}"#, "hold_headers"),
            (
                br#"{"routes": [{"match": {"path": "/g"}, "refuse_graphql_introspection": 1}]}"#,
                "routes[0].refuse_graphql_introspection",
            ),
            (br#"{"paranoia": 5}"#, "paranoia"),
            (br#"{"threshold": 0}"#, "threshold"),
            (br#"{"body_limit": 0}"#, "body_limit"),
            (
                br#"{"allowed_methods": ["GET", "FETCH"]}"#,
                "allowed_methods[1]",
            ),
            (
                br#"{"allowed_content_types": ["json"]}"#,
                "allowed_content_types[0]",
            ),
            (
                br#"{"exclude": [{"field": "query.q", "categories": ["sql"]}]}"#,
                "exclude[0].categories[0]",
            ),
            (
                br#"{"routes": [{"match": {"path": "nope"}}]}"#,
                "routes[0].match.path",
            ),
            (
                br#"{"routes": [{"match": {"path": "/a"}, "schema": {"type": "strnig"}}]}"#,
                "routes[0].schema.type",
            ),
            (
                br#"{"uploads": {"allowed_extensions": ["p.ng"]}}"#,
                "uploads.allowed_extensions[0]",
            ),
        ];
        for (raw, field) in cases {
            let e = load(raw).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        assert_eq!(load(br#"{"paranioa": 2}"#).unwrap_err().field, "paranioa");
    }
}
