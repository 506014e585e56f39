//! The cache's configuration: what the operator writes (JSON, unknown fields refused) and the
//! compiled form used per request. Every error names its field.

use portcullis_common::config::{ConfigError, Mode};
use portcullis_common::route::{compile_as, Kind, Route, RouteSpec, RouteTable};
use serde::Deserialize;

use crate::freshness::Heuristic;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default)]
    pub mode: Mode,
    /// Only these routes are cached; everything else passes through (`Cache-Status: fwd=uri-miss`).
    #[serde(default)]
    pub routes: Vec<CacheRoute>,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub key: KeyConfig,
    /// Heuristic freshness (RFC 9111 §4.2.2) for responses without explicit freshness; off when
    /// absent.
    #[serde(default)]
    pub heuristic: Option<HeuristicConfig>,
    /// Store responses carrying `Set-Cookie` (off: a cookie is almost always per user).
    #[serde(default)]
    pub store_set_cookie: bool,
    /// Request headers that can change a response but are not in the key; removed from requests
    /// to cacheable routes so they cannot poison the cache.
    #[serde(default = "default_unkeyed")]
    pub strip_request_headers: Vec<String>,
    /// Where requests carry credentials (as auth's `token_sources`): a request carrying one, or
    /// with an identity published by auth, counts as authenticated for RFC 9111 §3.5 even when
    /// auth has removed the credential or verified none (public routes).
    #[serde(default = "default_credential_sources")]
    pub credential_sources: Vec<CredentialSource>,
    /// The targeted cache-control field this cache obeys in preference to `Cache-Control`
    /// (RFC 9213); `null` turns it off.
    #[serde(default = "default_targeted_field")]
    pub targeted_field: Option<String>,
    #[serde(default)]
    pub purge: PurgeConfig,
    /// Response header listing the entry's tags (space or comma separated), for purge by tag.
    #[serde(default = "default_tag_header")]
    pub tag_header: String,
    /// The name this cache uses in `Cache-Status` (RFC 9211).
    #[serde(default = "default_status_name")]
    pub status_name: String,
    /// Add `key="..."` to `Cache-Status` (debugging; the key can contain the user).
    #[serde(default)]
    pub status_key: bool,
    /// Cluster for background refreshes (stale-while-revalidate).
    #[serde(default = "default_cluster")]
    pub refresh_cluster: String,
    /// Timeout of a background refresh, milliseconds.
    #[serde(default = "default_refresh_timeout")]
    pub refresh_timeout_ms: u64,
}

/// Where a request may carry a credential.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSource {
    Header(String),
    Cookie(String),
    Query(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRoute {
    pub path: String,
    /// GET and HEAD when empty (the only methods whose responses are stored). A route naming
    /// GET also takes HEAD: a HEAD is answered from, and updates, the GET's entry.
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// Key entries by the verified identity (auth's `portcullis.identity`); requests without one
    /// are not cached.
    #[serde(default)]
    pub per_user: bool,
    /// Content-type prefixes a response must have to be stored (deception protection).
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Shared-data keys holding the directory; each holds `ways` entries.
    #[serde(default = "default_buckets")]
    pub buckets: u32,
    #[serde(default = "default_ways")]
    pub ways: u8,
    /// Byte budget for all stored objects; each bucket owns `max_bytes / buckets` of it.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Largest stored object (encoded headers + body); larger responses pass uncached.
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            buckets: default_buckets(),
            ways: default_ways(),
            max_bytes: default_max_bytes(),
            max_object_bytes: default_max_object_bytes(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Sort query parameters so `?a=1&b=2` and `?b=2&a=1` share an entry.
    #[serde(default)]
    pub sort_query: bool,
    /// Query parameters left out of the key (tracking parameters and the like).
    #[serde(default)]
    pub ignore_params: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeuristicConfig {
    #[serde(default = "default_fraction")]
    pub fraction: f64,
    #[serde(default = "default_heuristic_max")]
    pub max_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeConfig {
    /// Accept the `PURGE` method on a URL.
    #[serde(default = "default_true")]
    pub method: bool,
    /// `POST <path>?url=/x` or `?tag=t` also purges; absent: no admin path. Matched as a
    /// guarding route (any method, any case, percent-decoded, `;` parameters cut, with or without
    /// a trailing slash), so no spelling an upstream would read as this path slips past it.
    #[serde(default)]
    pub path: Option<String>,
    /// Identity roles allowed to purge; empty: nobody may.
    #[serde(default = "default_purge_roles")]
    pub roles: Vec<String>,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            method: true,
            path: None,
            roles: default_purge_roles(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_purge_roles() -> Vec<String> {
    vec!["admin".into()]
}
fn default_unkeyed() -> Vec<String> {
    [
        "x-forwarded-host",
        "x-forwarded-server",
        "x-host",
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-forwarded-prefix",
        "forwarded",
        // Scheme, port and TLS hints frameworks build redirects and absolute URLs from (Rails,
        // Rack, Symfony, Werkzeug, gunicorn, IIS). `X-Forwarded-Proto` is not here: Envoy sets
        // it itself at the edge (`use_remote_address`).
        "x-forwarded-port",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-forwarded-protocol",
        "x-url-scheme",
        "front-end-https",
        // Path hints (Traefik, nginx auth_request and the like).
        "x-forwarded-uri",
        "x-forwarded-path",
        "x-original-uri",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn default_credential_sources() -> Vec<CredentialSource> {
    vec![
        CredentialSource::Header("authorization".into()),
        CredentialSource::Header("x-api-key".into()),
    ]
}
fn default_targeted_field() -> Option<String> {
    Some("cdn-cache-control".into())
}
fn default_tag_header() -> String {
    "surrogate-key".into()
}
fn default_status_name() -> String {
    "portcullis".into()
}
fn default_cluster() -> String {
    "demo_upstream".into()
}
fn default_refresh_timeout() -> u64 {
    5000
}
fn default_content_types() -> Vec<String> {
    vec!["application/json".into()]
}
fn default_buckets() -> u32 {
    256
}
fn default_ways() -> u8 {
    16
}
fn default_max_bytes() -> u64 {
    64 << 20
}
fn default_max_object_bytes() -> u64 {
    256 << 10
}
fn default_fraction() -> f64 {
    0.1
}
fn default_heuristic_max() -> u64 {
    86_400
}

/// One compiled cacheable route.
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub per_user: bool,
    pub content_types: Vec<String>,
}

/// The configuration, checked and compiled once at configure time.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub mode: Mode,
    pub routes: RouteTable<RouteRule>,
    pub buckets: u32,
    pub ways: u8,
    pub max_bytes: u64,
    pub max_object_bytes: u64,
    pub sort_query: bool,
    pub ignore_params: Vec<String>,
    pub heuristic: Option<Heuristic>,
    pub store_set_cookie: bool,
    /// Lower-cased.
    pub strip_request_headers: Vec<String>,
    pub credential_sources: Vec<CredentialSource>,
    /// Lower-cased.
    pub targeted_field: Option<String>,
    pub purge_method: bool,
    /// The admin purge path as guarding routes (the path, and with a trailing slash); empty when
    /// there is none. Not a first-match table: a request is a purge when any of them matches,
    /// under any reading of an ambiguous path the matcher knows (fail closed).
    pub purge_path: Vec<Route>,
    pub purge_roles: Vec<String>,
    pub tag_header: String,
    pub status_name: String,
    pub status_key: bool,
    pub refresh_cluster: String,
    pub refresh_timeout_ms: u64,
}

/// Shared-data keys are created per slot, so the product is the number of keys Envoy keeps.
const MAX_SLOTS: u64 = 1 << 20;

impl CacheConfig {
    pub fn compile(self) -> Result<Compiled, ConfigError> {
        let mut routes = RouteTable::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            let mut spec = RouteSpec {
                path: r.path.clone(),
                methods: r.methods.clone(),
                host: r.host.clone(),
                case_sensitive: false,
            };
            if spec.methods.is_empty() {
                spec.methods = vec!["GET".into(), "HEAD".into()];
            }
            // HEAD is answered from the GET entry (and a HEAD response updates it, RFC 9111
            // §4.3.5), so a route cacheable for GET is one for HEAD: exempting routes match the
            // method exactly, so it is added here rather than left to the matcher.
            let names = |m: &str| spec.methods.iter().any(|x| x.eq_ignore_ascii_case(m));
            if names("GET") && !names("HEAD") {
                spec.methods.push("HEAD".into());
            }
            for (m, method) in spec.methods.iter().enumerate() {
                if !matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD") {
                    return Err(ConfigError::new(
                        format!("methods[{m}]"),
                        "only GET and HEAD responses are cached",
                    )
                    .within(&at));
                }
            }
            // Caching is opt-in: the route matches exactly as sent, never an ambiguous path.
            let route = compile_as(&spec, Kind::Exempt).map_err(|e| e.within(&at))?;
            if r.content_types.is_empty() {
                return Err(ConfigError::new(
                    "content_types",
                    "must name at least one content type (it guards against cache deception)",
                )
                .within(&at));
            }
            routes.push(
                route,
                RouteRule {
                    per_user: r.per_user,
                    content_types: r
                        .content_types
                        .iter()
                        .map(|c| c.to_ascii_lowercase())
                        .collect(),
                },
            );
        }
        let s = &self.storage;
        if s.buckets == 0 {
            return Err(ConfigError::new("storage.buckets", "must be at least 1"));
        }
        if s.ways == 0 {
            return Err(ConfigError::new("storage.ways", "must be at least 1"));
        }
        if u64::from(s.buckets) * u64::from(s.ways) > MAX_SLOTS {
            return Err(ConfigError::new(
                "storage.buckets",
                format!("buckets * ways must not exceed {MAX_SLOTS}"),
            ));
        }
        if s.max_object_bytes == 0 {
            return Err(ConfigError::new(
                "storage.max_object_bytes",
                "must be at least 1",
            ));
        }
        let share = s.max_bytes / u64::from(s.buckets);
        if s.max_object_bytes > share {
            return Err(ConfigError::new(
                "storage.max_object_bytes",
                format!(
                    "{} exceeds a bucket's share of max_bytes ({share} = max_bytes / buckets); \
                     raise max_bytes or lower buckets",
                    s.max_object_bytes
                ),
            ));
        }
        let heuristic = match &self.heuristic {
            None => None,
            Some(h) => {
                if !(h.fraction > 0.0 && h.fraction <= 1.0) {
                    return Err(ConfigError::new("heuristic.fraction", "must be in (0, 1]"));
                }
                Some(Heuristic {
                    fraction: h.fraction,
                    max_secs: h.max_secs,
                })
            }
        };
        let purge_path = match &self.purge.path {
            None => Vec::new(),
            Some(p) => purge_routes(p)?,
        };
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
                })
        };
        for (i, src) in self.credential_sources.iter().enumerate() {
            let ok = match src {
                CredentialSource::Header(n) => token(n),
                CredentialSource::Cookie(n) | CredentialSource::Query(n) => !n.is_empty(),
            };
            if !ok {
                return Err(ConfigError::new(
                    format!("credential_sources[{i}]"),
                    "header names must be lower-case tokens; cookie and query names non-empty",
                ));
            }
        }
        if let Some(f) = &self.targeted_field {
            if !token(f) {
                return Err(ConfigError::new(
                    "targeted_field",
                    "must be a lower-case header name (or null to ignore targeted fields)",
                ));
            }
        }
        if self.tag_header.is_empty() {
            return Err(ConfigError::new("tag_header", "must not be empty"));
        }
        if self.status_name.is_empty()
            || !self
                .status_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(ConfigError::new(
                "status_name",
                "must be a token (letters, digits, '-', '.', '_')",
            ));
        }
        Ok(Compiled {
            mode: self.mode,
            routes,
            buckets: s.buckets,
            ways: s.ways,
            max_bytes: s.max_bytes,
            max_object_bytes: s.max_object_bytes,
            sort_query: self.key.sort_query,
            ignore_params: self.key.ignore_params,
            heuristic,
            store_set_cookie: self.store_set_cookie,
            strip_request_headers: self
                .strip_request_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            credential_sources: self.credential_sources,
            targeted_field: self.targeted_field,
            purge_method: self.purge.method,
            purge_path,
            purge_roles: self.purge.roles,
            tag_header: self.tag_header.to_ascii_lowercase(),
            status_name: self.status_name,
            status_key: self.status_key,
            refresh_cluster: self.refresh_cluster,
            refresh_timeout_ms: self.refresh_timeout_ms,
        })
    }
}

/// The admin purge path compiled as guarding routes: every spelling an upstream would read as
/// the path (case, percent-encoding, `;` parameters, `//`, dot-segments, a trailing slash) is the
/// purge endpoint, so none of them is looked up, stored or forwarded as an ordinary request.
fn purge_routes(path: &str) -> Result<Vec<Route>, ConfigError> {
    if !path.starts_with('/') {
        return Err(ConfigError::new("purge.path", "must start with '/'"));
    }
    if path.contains(['*', '{', '}']) {
        return Err(ConfigError::new(
            "purge.path",
            "must be a literal path (no '*', '**' or '{name}')",
        ));
    }
    let base = path.trim_end_matches('/');
    if base.is_empty() {
        return Err(ConfigError::new(
            "purge.path",
            "must not be '/' (every request would be a purge)",
        ));
    }
    [base.to_string(), format!("{base}/")]
        .into_iter()
        .map(|p| {
            let spec = RouteSpec {
                path: p,
                methods: Vec::new(),
                host: None,
                case_sensitive: false,
            };
            compile_as(&spec, Kind::Guard).map_err(|e| e.within("purge"))
        })
        .collect()
}

/// Parses and compiles the JSON configuration.
pub fn load(raw: &[u8]) -> Result<Compiled, ConfigError> {
    portcullis_common::config::parse::<CacheConfig>(raw)?.compile()
}

/// The route rule for a request, if the route is cacheable.
pub fn rule_for<'a>(
    c: &'a Compiled,
    method: &str,
    host: &str,
    path: &'a str,
) -> Option<&'a RouteRule> {
    // A route naming GET also names HEAD (see `compile`), so HEAD finds the GET's route.
    c.routes
        .first_match(method, host, path)
        .map(|(rule, _)| rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_routes() {
        let c = load(br#"{"routes":[{"path":"/api/products"},{"path":"/me","per_user":true}]}"#)
            .unwrap();
        assert_eq!(c.buckets, 256);
        assert!(rule_for(&c, "GET", "h", "/api/products").is_some());
        assert!(rule_for(&c, "HEAD", "h", "/api/products").is_some());
        // A GET-only route takes HEAD too; a HEAD-only route does not take GET.
        let c = load(
            br#"{"routes":[{"path":"/g","methods":["GET"]},{"path":"/h","methods":["HEAD"]}]}"#,
        )
        .unwrap();
        assert!(rule_for(&c, "HEAD", "h", "/g").is_some());
        assert!(rule_for(&c, "GET", "h", "/h").is_none());
        let c = load(br#"{"routes":[{"path":"/api/products"},{"path":"/me","per_user":true}]}"#)
            .unwrap();
        assert!(rule_for(&c, "POST", "h", "/api/products").is_none());
        assert!(rule_for(&c, "GET", "h", "/api/products.css").is_none());
        assert!(rule_for(&c, "GET", "h", "/me").unwrap().per_user);
        assert!(c
            .strip_request_headers
            .contains(&"x-forwarded-host".to_string()));
        assert!(load(b"").unwrap().routes.is_empty());
        for h in [
            "x-forwarded-port",
            "x-forwarded-scheme",
            "x-forwarded-ssl",
            "front-end-https",
        ] {
            assert!(c.strip_request_headers.contains(&h.to_string()), "{h}");
        }
        assert_eq!(c.targeted_field.as_deref(), Some("cdn-cache-control"));
        assert!(c
            .credential_sources
            .contains(&CredentialSource::Header("x-api-key".into())));
        let off =
            load(br#"{"targeted_field":null,"credential_sources":[{"cookie":"sid"}]}"#).unwrap();
        assert_eq!(off.targeted_field, None);
        assert_eq!(
            off.credential_sources,
            vec![CredentialSource::Cookie("sid".into())]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 16] = [
            (
                br#"{"credential_sources":[{"header":"X-Key"}]}"#,
                "credential_sources[0]",
            ),
            (
                br#"{"credential_sources":[{"cookie":""}]}"#,
                "credential_sources[0]",
            ),
            (
                br#"{"targeted_field":"CDN Cache-Control"}"#,
                "targeted_field",
            ),
            (br#"{"ttl":5}"#, "ttl"),
            (br#"{"routes":[{"path":"api"}]}"#, "routes[0].path"),
            (
                br#"{"routes":[{"path":"/a","methods":["POST"]}]}"#,
                "routes[0].methods[0]",
            ),
            (
                br#"{"routes":[{"path":"/a","content_types":[]}]}"#,
                "routes[0].content_types",
            ),
            (br#"{"storage":{"buckets":0}}"#, "storage.buckets"),
            (
                br#"{"storage":{"max_bytes":1000}}"#,
                "storage.max_object_bytes",
            ),
            (br#"{"heuristic":{"fraction":2}}"#, "heuristic.fraction"),
            (br#"{"purge":{"path":"x"}}"#, "purge.path"),
            (br#"{"purge":{"path":"/"}}"#, "purge.path"),
            (br#"{"purge":{"path":"/_cache/*"}}"#, "purge.path"),
            (br#"{"purge":{"path":"/a/../b"}}"#, "purge.path"),
            (br#"{"purge":{"path":"/a?x=1"}}"#, "purge.path"),
            (br#"{"status_name":"a b"}"#, "status_name"),
        ];
        for (json, field) in cases {
            let e = load(json).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }
}
