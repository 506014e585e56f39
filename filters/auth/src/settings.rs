//! The filter's JSON configuration and its compilation into a [`Policy`]. Every error names its
//! field; secrets are read from environment variables (through `env`), never from the JSON.

use std::collections::BTreeMap;

use portcullis_common::config::{ConfigError, Mode};
use portcullis_common::route::{method_is_canonical, method_is_known, PathParameters};
use portcullis_common::slots::HashKey;
use serde::Deserialize;
use serde_json::Value;

use crate::apikey::{self, ApiKey, ApiKeySpec};
use crate::jwt::Provider;
use crate::keys::{parse_jwks, Alg, Key};
use crate::rbac::{RoleSpec, Roles, RuleSpec, Rules};
use crate::remote::RemoteSpec;
use crate::revocation::{RevocationSpec, Table, SAFE_LOAD_PERCENT};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    #[serde(default = "default_token_sources")]
    pub token_sources: Vec<Source>,
    /// Remove the token (every configured token source) from the request before it goes
    /// upstream. On by default: an upstream never needs the bearer credential auth checked.
    #[serde(default = "yes")]
    pub remove_token: bool,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default)]
    pub api_keys: Option<ApiKeysSpec>,
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// What an authenticated request matching no rule gets: `deny` (default) or `allow`.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// Removed: a request that looks like a CORS preflight is decided like any other. Kept as a
    /// field only to refuse old configurations with a message saying what to do instead.
    #[serde(default)]
    pub allow_cors_preflight: Option<Value>,
    /// `;` path parameters: `refuse` (400 `path_parameters`, default) or `strip` (cut per
    /// segment before matching, for upstreams known to strip them).
    #[serde(default)]
    pub path_parameters: PathParameters,
    /// Methods accepted besides the known ones (`route::METHODS`), e.g. WebDAV's `PROPFIND`;
    /// any other method is refused (400 `method_invalid`).
    #[serde(default)]
    pub extra_methods: Vec<String>,
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default)]
    pub token_cache: CacheSpec,
    #[serde(default)]
    pub revocation: RevocationConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: String,
    pub issuer: String,
    /// Required unless `allow_any_audience`: a token for another API is not a token for ours.
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub allow_any_audience: bool,
    /// What JWKS keys (inline and remote) may verify; default: every asymmetric algorithm.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Try a token without `kid` against keys that have one (default: only keys without).
    #[serde(default)]
    pub kidless_tokens_any_key: bool,
    /// Prepended to this issuer's roles, e.g. `partner:`.
    #[serde(default)]
    pub role_prefix: Option<String>,
    /// Dotted path of a claim whose values (space-separated string or array) are permissions.
    #[serde(default)]
    pub scopes_claim: Option<String>,
    /// What this provider's tokens get while the revocation table is full.
    #[serde(default)]
    pub revocation_table_full: WhenRevocationFull,
    /// An inline JWKS document.
    #[serde(default)]
    pub jwks: Option<Value>,
    #[serde(default)]
    pub hmac_keys: Vec<HmacKeySpec>,
    #[serde(default)]
    pub remote_jwks: Option<RemoteSpec>,
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    #[serde(default)]
    pub max_lifetime_secs: Option<u64>,
    #[serde(default = "default_required_claims")]
    pub required_claims: Vec<String>,
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default)]
    pub roles_claim: Option<String>,
    #[serde(default)]
    pub tenant_claim: Option<String>,
}

/// A provider's answer to a revocation it could not store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenRevocationFull {
    /// Refuse its tokens (503) until the revocations fit again.
    #[default]
    FailClosed,
    /// Keep accepting its tokens (the refused revocation is not enforced), with the alarm.
    FailOpen,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacKeySpec {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// Name of the environment variable (passed to the VM) holding the secret.
    pub secret_env: String,
    #[serde(default)]
    pub encoding: SecretEncoding,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// The variable's bytes are the secret.
    #[default]
    Raw,
    /// Base64url (padding optional), as in a JWK `k`.
    Base64url,
}

/// Where a credential is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A header; for `authorization`, the `Bearer` scheme is required (RFC 6750 §2.1).
    Header(String),
    Cookie(String),
    Query(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysSpec {
    #[serde(default = "default_api_key_sources")]
    pub sources: Vec<Source>,
    pub pepper_env: String,
    #[serde(default)]
    pub keys: Vec<ApiKeySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityHeaders {
    #[serde(default = "h_subject")]
    pub subject: String,
    #[serde(default = "h_roles")]
    pub roles: String,
    #[serde(default = "h_tenant")]
    pub tenant: String,
    #[serde(default = "h_method")]
    pub method: String,
    #[serde(default = "h_key_id")]
    pub key_id: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: h_subject(),
            roles: h_roles(),
            tenant: h_tenant(),
            method: h_method(),
            key_id: h_key_id(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    #[serde(default = "default_cache_capacity")]
    pub capacity: usize,
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            capacity: default_cache_capacity(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// Default: enough for `entries` and `poll.max_entries` at half load.
    #[serde(default)]
    pub slots: Option<u32>,
    #[serde(default = "default_ways")]
    pub ways: u8,
    /// Lifetime of an entry that does not say when it can go.
    #[serde(default = "default_revocation_ttl")]
    pub default_ttl_secs: u64,
    #[serde(default)]
    pub entries: Vec<RevocationSpec>,
    #[serde(default)]
    pub poll: Option<PollSpec>,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            slots: None,
            ways: default_ways(),
            default_ttl_secs: default_revocation_ttl(),
            entries: Vec::new(),
            poll: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    pub cluster: String,
    #[serde(default = "default_authority")]
    pub authority: String,
    pub path: String,
    #[serde(default = "default_poll_interval")]
    pub interval_secs: u64,
    #[serde(default = "default_poll_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_poll_max_entries")]
    pub max_entries: usize,
}

fn yes() -> bool {
    true
}
fn default_token_sources() -> Vec<Source> {
    vec![Source::Header("authorization".into())]
}
fn default_api_key_sources() -> Vec<Source> {
    vec![Source::Header("x-api-key".into())]
}
fn default_max_token_bytes() -> usize {
    // Tokens with group claims pass 8 KiB routinely; Envoy's own header limit is 60 KiB.
    16 * 1024
}
fn default_realm() -> String {
    "portcullis".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_required_claims() -> Vec<String> {
    vec!["exp".into()]
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn h_subject() -> String {
    "x-portcullis-subject".into()
}
fn h_roles() -> String {
    "x-portcullis-roles".into()
}
fn h_tenant() -> String {
    "x-portcullis-tenant".into()
}
fn h_method() -> String {
    "x-portcullis-auth-method".into()
}
fn h_key_id() -> String {
    "x-portcullis-key-id".into()
}
fn default_cache_capacity() -> usize {
    1024
}
/// The smallest table made when nothing asks for more.
const MIN_SLOTS: u32 = 256;
fn default_ways() -> u8 {
    8
}
fn default_revocation_ttl() -> u64 {
    86_400
}
fn default_authority() -> String {
    "idp".into()
}
fn default_poll_interval() -> u64 {
    10
}
fn default_poll_timeout() -> u64 {
    2000
}
fn default_poll_max_entries() -> usize {
    10_000
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Policy {
    pub mode: Mode,
    pub providers: Vec<Provider>,
    /// Per provider: its remote key source, if any.
    pub remotes: Vec<Option<RemoteSpec>>,
    pub token_sources: Vec<Source>,
    pub remove_token: bool,
    pub max_token_bytes: usize,
    pub api_key_sources: Vec<Source>,
    pub api_keys: Vec<ApiKey>,
    pub pepper: Vec<u8>,
    pub roles: Roles,
    pub rules: Rules,
    pub unmatched: Unmatched,
    pub path_parameters: PathParameters,
    /// Accepted besides `route::METHODS`; upper-case tokens.
    pub extra_methods: Vec<String>,
    pub identity_headers: IdentityHeaders,
    pub realm: String,
    pub cache_capacity: usize,
    pub revocation: Table,
    /// Per provider: refuse its tokens while the revocation table is full.
    pub fail_closed_when_full: Vec<bool>,
    /// Inline JWKS keys skipped at load (`provider: note`), for the adapter to log and count.
    pub skipped_keys: Vec<String>,
    pub revocation_ttl: u64,
    pub revocation_entries: Vec<RevocationSpec>,
    pub poll: Option<PollSpec>,
}

/// Largest token accepted by configuration: bounds what the per-request work can be.
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
const MAX_SLOTS: u32 = 65_536;
const MAX_WAYS: u8 = 64;

fn header_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_sources(sources: &[Source], at: &str) -> Result<(), ConfigError> {
    for (i, s) in sources.iter().enumerate() {
        let ok = match s {
            Source::Header(h) => header_name_ok(h),
            Source::Cookie(n) | Source::Query(n) => {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"=;&".contains(&b))
            }
        };
        if !ok {
            return Err(ConfigError::new(
                format!("{at}[{i}]"),
                "header names must be lower-case tokens; cookie and query names non-empty",
            ));
        }
    }
    Ok(())
}

fn decode_secret(raw: &[u8], encoding: SecretEncoding) -> Result<Vec<u8>, String> {
    use ct_codecs::{Base64UrlSafe, Base64UrlSafeNoPadding, Decoder};
    let text = raw.trim_ascii();
    match encoding {
        SecretEncoding::Raw => Ok(text.to_vec()),
        SecretEncoding::Base64url => Base64UrlSafeNoPadding::decode_to_vec(text, None)
            .or_else(|_| Base64UrlSafe::decode_to_vec(text, None))
            .map_err(|_| "is not base64url".to_string()),
    }
}

fn compile_algorithms(names: &Option<Vec<String>>) -> Result<Vec<Alg>, ConfigError> {
    let Some(names) = names else {
        return Ok(Alg::ASYMMETRIC.to_vec());
    };
    if names.is_empty() {
        return Err(ConfigError::new(
            "algorithms",
            "must name at least one algorithm",
        ));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Alg::from_name(name)
                .filter(|a| !a.is_hmac())
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("algorithms[{i}]"),
                        format!(
                            "{name:?} is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 \
                             ES512 EdDSA (HMAC keys are configured in `hmac_keys`)"
                        ),
                    )
                })
        })
        .collect()
}

/// A claim path as `lookup` reads it: dot-separated, no empty segment.
fn check_claim_path(path: &Option<String>, field: &str) -> Result<(), ConfigError> {
    match path {
        Some(p) if p.is_empty() || p.split('.').any(str::is_empty) => Err(ConfigError::new(
            field,
            "must be a claim name or a dotted path such as `realm_access.roles`",
        )),
        _ => Ok(()),
    }
}

fn compile_provider(
    spec: &ProviderSpec,
    env: &dyn Fn(&str) -> Option<Vec<u8>>,
    skipped_keys: &mut Vec<String>,
) -> Result<Provider, ConfigError> {
    if spec.issuer.is_empty() {
        return Err(ConfigError::new("issuer", "must not be empty"));
    }
    if spec.audiences.is_empty() && !spec.allow_any_audience {
        return Err(ConfigError::new(
            "audiences",
            "name the audiences this API accepts (or set `allow_any_audience: true`)",
        ));
    }
    if spec.allow_any_audience && !spec.audiences.is_empty() {
        return Err(ConfigError::new(
            "allow_any_audience",
            "cannot be combined with `audiences`",
        ));
    }
    if spec.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            "audiences",
            "must not hold an empty audience",
        ));
    }
    let algorithms = compile_algorithms(&spec.algorithms)?;
    check_claim_path(&spec.scopes_claim, "scopes_claim")?;
    check_claim_path(&spec.roles_claim, "roles_claim")?;
    if let Some(prefix) = &spec.role_prefix {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_graphic() && c != ',') {
            return Err(ConfigError::new(
                "role_prefix",
                "must be non-empty printable ASCII without `,` (e.g. `partner:`)",
            ));
        }
    }
    let mut keys: Vec<Key> = Vec::new();
    if let Some(jwks) = &spec.jwks {
        let (parsed, skipped) = parse_jwks(jwks.to_string().as_bytes(), 256, &algorithms)
            .map_err(|e| ConfigError::new("jwks", e))?;
        // A pasted IdP key set may hold keys we cannot use (encryption keys, other curves):
        // those are skipped and reported, as for a fetched set; the usable ones load.
        skipped_keys.extend(
            skipped
                .into_iter()
                .map(|s| format!("{}: jwks {s}", spec.name)),
        );
        keys.extend(parsed);
    }
    for (i, h) in spec.hmac_keys.iter().enumerate() {
        let at = format!("hmac_keys[{i}]");
        let alg = Alg::from_name(&h.alg)
            .filter(|a| a.is_hmac())
            .ok_or_else(|| {
                ConfigError::new(format!("{at}.alg"), "must be HS256, HS384 or HS512")
            })?;
        let raw = env(&h.secret_env).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.secret_env"),
                format!(
                    "environment variable {} is not set for the VM (vm_config.environment_variables)",
                    h.secret_env
                ),
            )
        })?;
        let secret = decode_secret(&raw, h.encoding).map_err(|e| {
            ConfigError::new(format!("{at}.secret_env"), format!("{} {e}", h.secret_env))
        })?;
        let key = Key::hmac(alg, h.kid.clone(), &secret).map_err(|e| {
            ConfigError::new(format!("{at}.secret_env"), format!("{}: {e}", h.secret_env))
        })?;
        keys.push(key);
    }
    if let Some(remote) = &spec.remote_jwks {
        if remote.path.is_some() == remote.discovery_path.is_some() {
            return Err(ConfigError::new(
                "remote_jwks",
                "set exactly one of `path` and `discovery_path`",
            ));
        }
        for (name, p) in [
            ("path", &remote.path),
            ("discovery_path", &remote.discovery_path),
        ] {
            if p.as_ref().is_some_and(|p| !p.starts_with('/')) {
                return Err(ConfigError::new(
                    format!("remote_jwks.{name}"),
                    "must start with '/'",
                ));
            }
        }
        if remote.cluster.is_empty() {
            return Err(ConfigError::new("remote_jwks.cluster", "must not be empty"));
        }
        if remote.jwks_cluster.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::new(
                "remote_jwks.jwks_cluster",
                "must name an Envoy cluster",
            ));
        }
        if remote.jwks_cluster.is_some() && remote.discovery_path.is_none() {
            return Err(ConfigError::new(
                "remote_jwks.jwks_cluster",
                "only applies with `discovery_path` (where the JWKS host comes from `jwks_uri`)",
            ));
        }
        if remote.allow_insecure_http && remote.discovery_path.is_none() {
            return Err(ConfigError::new(
                "remote_jwks.allow_insecure_http",
                "only applies with `discovery_path` (a `jwks_uri` over http://)",
            ));
        }
        if remote.refresh_secs == 0 || remote.retry_secs == 0 {
            return Err(ConfigError::new(
                "remote_jwks.refresh_secs",
                "intervals must be at least 1 s",
            ));
        }
    }
    if keys.is_empty() && spec.remote_jwks.is_none() {
        return Err(ConfigError::new(
            "",
            "needs `jwks`, `hmac_keys` or `remote_jwks`",
        ));
    }
    Ok(Provider {
        name: spec.name.clone(),
        issuer: spec.issuer.clone(),
        audiences: spec.audiences.clone(),
        algorithms,
        kidless_tokens_any_key: spec.kidless_tokens_any_key,
        role_prefix: spec.role_prefix.clone(),
        scopes_claim: spec.scopes_claim.clone(),
        static_keys: keys,
        remote: spec.remote_jwks.is_some(),
        leeway_secs: spec.leeway_secs,
        max_lifetime_secs: spec.max_lifetime_secs,
        required_claims: spec.required_claims.clone(),
        subject_claim: spec.subject_claim.clone(),
        roles_claim: spec.roles_claim.clone(),
        tenant_claim: spec.tenant_claim.clone(),
    })
}

impl Config {
    /// `slot_key` keys the revocation table's bucket hash (`HashKey::shared`).
    pub fn compile(
        self,
        env: &dyn Fn(&str) -> Option<Vec<u8>>,
        slot_key: HashKey,
    ) -> Result<Policy, ConfigError> {
        let mut providers = Vec::with_capacity(self.providers.len());
        let mut remotes = Vec::with_capacity(self.providers.len());
        let mut skipped_keys = Vec::new();
        for (i, spec) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            if self.providers[..i].iter().any(|p| p.issuer == spec.issuer) {
                return Err(ConfigError::new(format!("{at}.issuer"), "duplicate issuer"));
            }
            providers
                .push(compile_provider(spec, env, &mut skipped_keys).map_err(|e| e.within(&at))?);
            remotes.push(spec.remote_jwks.clone());
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(ConfigError::new(
                "max_token_bytes",
                format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        }
        check_sources(&self.token_sources, "token_sources")?;
        let (api_key_sources, api_keys, pepper) = match &self.api_keys {
            None => (Vec::new(), Vec::new(), Vec::new()),
            Some(a) => {
                check_sources(&a.sources, "api_keys.sources")?;
                let pepper = env(&a.pepper_env)
                    .map(|p| p.trim_ascii().to_vec())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "api_keys.pepper_env",
                            format!(
                                "environment variable {} is not set for the VM",
                                a.pepper_env
                            ),
                        )
                    })?;
                if pepper.len() < 16 {
                    return Err(ConfigError::new(
                        "api_keys.pepper_env",
                        format!("{} must hold at least 16 bytes", a.pepper_env),
                    ));
                }
                (a.sources.clone(), apikey::compile(&a.keys)?, pepper)
            }
        };
        if self.allow_cors_preflight.is_some() {
            return Err(ConfigError::new(
                "allow_cors_preflight",
                "removed: a request that looks like a CORS preflight is no longer let through \
                 without credentials (anyone can send one); let Envoy's CORS filter answer \
                 preflights (`forward_not_matching_preflights: false`), or make the route public",
            ));
        }
        for (i, m) in self.extra_methods.iter().enumerate() {
            let at = format!("extra_methods[{i}]");
            if !method_is_canonical(m) {
                return Err(ConfigError::new(
                    at,
                    format!("`{m}` is not an upper-case method token"),
                ));
            }
            if method_is_known(m) {
                return Err(ConfigError::new(
                    at,
                    format!("`{m}` is already accepted; list only other methods"),
                ));
            }
        }
        let roles = Roles::compile(&self.roles).map_err(|e| e.within("roles"))?;
        let rules = Rules::compile(&self.rules)?;
        for (name, value) in [
            ("identity_headers.subject", &self.identity_headers.subject),
            ("identity_headers.roles", &self.identity_headers.roles),
            ("identity_headers.tenant", &self.identity_headers.tenant),
            ("identity_headers.method", &self.identity_headers.method),
            ("identity_headers.key_id", &self.identity_headers.key_id),
        ] {
            if !header_name_ok(value) {
                return Err(ConfigError::new(name, "must be a lower-case header name"));
            }
        }
        let r = &self.revocation;
        if r.ways == 0 || r.ways > MAX_WAYS {
            return Err(ConfigError::new(
                "revocation.ways",
                format!("must be 1..={MAX_WAYS}"),
            ));
        }
        let slots = revocation_slots(r)?;
        for (i, e) in r.entries.iter().enumerate() {
            e.target()
                .map_err(|m| ConfigError::new(format!("revocation.entries[{i}]"), m))?;
        }
        if let Some(p) = &r.poll {
            if !p.path.starts_with('/') {
                return Err(ConfigError::new(
                    "revocation.poll.path",
                    "must start with '/'",
                ));
            }
            if p.interval_secs == 0 {
                return Err(ConfigError::new(
                    "revocation.poll.interval_secs",
                    "must be at least 1",
                ));
            }
        }
        let fail_closed_when_full = self
            .providers
            .iter()
            .map(|p| p.revocation_table_full == WhenRevocationFull::FailClosed)
            .collect();
        Ok(Policy {
            mode: self.mode,
            providers,
            remotes,
            token_sources: self.token_sources,
            remove_token: self.remove_token,
            max_token_bytes: self.max_token_bytes,
            api_key_sources,
            api_keys,
            pepper,
            roles,
            rules,
            unmatched: self.unmatched,
            path_parameters: self.path_parameters,
            extra_methods: self.extra_methods,
            identity_headers: self.identity_headers,
            realm: self.realm,
            cache_capacity: self.token_cache.capacity,
            revocation: Table::new(slots, r.ways, slot_key),
            fail_closed_when_full,
            skipped_keys,
            revocation_ttl: r.default_ttl_secs,
            revocation_entries: r.entries.clone(),
            poll: r.poll.clone(),
        })
    }
}

/// The revocation table's bucket count: what `slots` says, or enough for every configured
/// entry plus the most a poll may bring at a safe load. A table too small for that is refused:
/// a live revocation is never evicted, so a table that cannot hold the list would fail closed.
fn revocation_slots(r: &RevocationConfig) -> Result<u32, ConfigError> {
    let max_entries = r.poll.as_ref().map_or(0, |p| p.max_entries);
    if r.poll.is_some() && max_entries == 0 {
        return Err(ConfigError::new(
            "revocation.poll.max_entries",
            "must be at least 1",
        ));
    }
    let needed = (r.entries.len() as u64).saturating_add(max_entries as u64);
    let ways = u64::from(r.ways);
    // Entries that fit at SAFE_LOAD_PERCENT of `slots` buckets of `ways` entries.
    let fits = |slots: u64| slots.saturating_mul(ways).saturating_mul(SAFE_LOAD_PERCENT) / 100;
    match r.slots {
        Some(slots) => {
            if slots == 0 || slots > MAX_SLOTS {
                return Err(ConfigError::new(
                    "revocation.slots",
                    format!("must be 1..={MAX_SLOTS}"),
                ));
            }
            if fits(u64::from(slots)) < needed {
                return Err(ConfigError::new(
                    "revocation.slots",
                    format!(
                        "{slots} slots of {ways} ways hold {} revocations at a safe load \
                         ({SAFE_LOAD_PERCENT}%), but `entries` and `poll.max_entries` may bring \
                         {needed}; raise `slots` (or leave it out to size the table)",
                        fits(u64::from(slots))
                    ),
                ));
            }
            Ok(slots)
        }
        None => {
            let per_slot = (ways * SAFE_LOAD_PERCENT / 100).max(1);
            let slots = needed.div_ceil(per_slot).max(u64::from(MIN_SLOTS));
            u32::try_from(slots)
                .ok()
                .filter(|s| *s <= MAX_SLOTS)
                .ok_or_else(|| {
                    ConfigError::new(
                        "revocation.poll.max_entries",
                        format!(
                            "{needed} revocations need more than {MAX_SLOTS} slots of {ways} ways; \
                             lower `poll.max_entries` or raise `ways`"
                        ),
                    )
                })
        }
    }
}

/// Parses and compiles in one step (what `on_configure` does).
pub fn load(
    raw: &[u8],
    env: &dyn Fn(&str) -> Option<Vec<u8>>,
    slot_key: HashKey,
) -> Result<Policy, ConfigError> {
    portcullis_common::config::parse::<Config>(raw)?.compile(env, slot_key)
}
