//! The filter's JSON configuration and its compilation into a [`Policy`]. Every field has a
//! default except each limit's `name`, `limit`, `window` and `key`; unknown fields are refused,
//! and every error names its field (`limits[1].window: ...`).

use portcullis_common::client::CidrSet;
use portcullis_common::config::{ConfigError, Mode};
use portcullis_common::route::{compile, Route, RouteSpec};
use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::key::{is_header_name, KeyPart};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub limits: Vec<RawLimit>,
    /// Clients in these networks are never limited nor banned.
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
    #[serde(default)]
    pub cost: RawCost,
    #[serde(default)]
    pub penalties: Option<RawPenalties>,
    #[serde(default)]
    pub table: RawTable,
    /// Compare-and-swap attempts per update before giving up.
    #[serde(default = "default_cas_attempts")]
    pub cas_attempts: u32,
    /// What a request gets when every CAS attempt lost (or the host refused shared data).
    #[serde(default)]
    pub on_contention: FailMode,
    /// What a new key does when its slot bucket is full of live entries.
    #[serde(default)]
    pub when_full: WhenFullMode,
    /// Envoy instances sharing one global budget: each enforces `limit / fleet_size`.
    #[serde(default = "one")]
    pub fleet_size: u32,
    #[serde(default)]
    pub headers: RawHeaders,
    /// How much of the client address `client_ip` keys (limits and bans) count by.
    #[serde(default)]
    pub client_prefix: ClientPrefix,
}

/// The network prefix of the client address that `client_ip` stands for, per family. A host
/// is usually given a whole IPv6 /64 and can rotate through it at will, so the default counts
/// the /64; IPv4 addresses count one by one (/32). The allow-list still sees the full address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPrefix {
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4: u8,
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6: u8,
}

impl Default for ClientPrefix {
    fn default() -> Self {
        ClientPrefix {
            ipv4: default_ipv4_prefix(),
            ipv6: default_ipv6_prefix(),
        }
    }
}

fn default_ipv4_prefix() -> u8 {
    32
}
fn default_ipv6_prefix() -> u8 {
    64
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFullMode {
    /// Replace the entry closest to expiry (counted as an eviction).
    #[default]
    Evict,
    Deny,
    Allow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawAlgorithm {
    #[default]
    TokenBucket,
    SlidingWindow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub name: String,
    #[serde(default)]
    pub algorithm: RawAlgorithm,
    /// Requests (cost units) per `window`.
    pub limit: u64,
    /// Seconds.
    pub window: u64,
    /// Token bucket: the most tokens held (default `limit`).
    #[serde(default)]
    pub burst: Option<u64>,
    pub key: Vec<String>,
    /// Only requests matching this route count against the limit.
    #[serde(default)]
    pub route: Option<RouteSpec>,
    /// Per-role numbers; the first tier whose role the identity has wins.
    #[serde(default)]
    pub tiers: Vec<RawTier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub role: String,
    pub limit: u64,
    #[serde(default)]
    pub burst: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// A request header carrying the cost (1..=`max`), set by a trusted component in front.
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default = "default_max_cost")]
    pub max: u64,
    /// Cost by route, first match wins; other requests cost 1.
    #[serde(default)]
    pub routes: Vec<RawRouteCost>,
}

impl Default for RawCost {
    fn default() -> Self {
        RawCost {
            header: None,
            max: default_max_cost(),
            routes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCost {
    pub route: RouteSpec,
    pub cost: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPenalties {
    #[serde(default = "default_penalty_key")]
    pub key: Vec<String>,
    /// Strikes within `strike_window` seconds that start a ban.
    #[serde(default = "default_strikes")]
    pub strikes: u32,
    #[serde(default = "default_strike_window")]
    pub strike_window: u64,
    /// A request denied by a limit is a strike.
    #[serde(default = "yes")]
    pub from_limits: bool,
    /// Responses with these statuses are strikes (e.g. failed logins).
    #[serde(default = "default_statuses")]
    pub from_statuses: Vec<u16>,
    /// Ban lengths in seconds, escalating with each ban.
    #[serde(default = "default_bans")]
    pub bans: Vec<u64>,
    /// Seconds without a new ban after which the ban level drops by one.
    #[serde(default = "default_decay")]
    pub decay: u64,
    /// 429 or 403.
    #[serde(default = "default_ban_status")]
    pub status: u16,
    #[serde(default = "default_penalty_table")]
    pub table: RawTable,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    /// Shared-data keys of the table.
    #[serde(default = "default_buckets")]
    pub buckets: u32,
    /// Entries per bucket.
    #[serde(default = "default_ways")]
    pub ways: u8,
}

impl Default for RawTable {
    fn default() -> Self {
        RawTable {
            buckets: default_buckets(),
            ways: default_ways(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// `RateLimit` / `RateLimit-Policy` on allowed responses too (always on 429s).
    #[serde(default = "yes")]
    pub on_allowed: bool,
    /// `X-RateLimit-Limit` / `-Remaining` / `-Reset` as well.
    #[serde(default)]
    pub legacy: bool,
}

impl Default for RawHeaders {
    fn default() -> Self {
        RawHeaders {
            on_allowed: true,
            legacy: false,
        }
    }
}

fn default_cas_attempts() -> u32 {
    16
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_max_cost() -> u64 {
    100
}
fn default_penalty_key() -> Vec<String> {
    vec!["client_ip".into()]
}
fn default_strikes() -> u32 {
    10
}
fn default_strike_window() -> u64 {
    60
}
fn default_statuses() -> Vec<u16> {
    vec![401, 403]
}
fn default_bans() -> Vec<u64> {
    vec![60, 300, 1800]
}
fn default_decay() -> u64 {
    3600
}
fn default_ban_status() -> u16 {
    429
}
fn default_buckets() -> u32 {
    8192
}
fn default_ways() -> u8 {
    8
}
fn default_penalty_table() -> RawTable {
    RawTable {
        buckets: 2048,
        ways: 8,
    }
}

/// Largest quota, burst or cost: keeps every product in the arithmetic far from overflow.
pub const MAX_QUANTITY: u64 = 1_000_000_000;
/// A week.
pub const MAX_WINDOW_S: u64 = 604_800;

/// A compiled limit.
#[derive(Debug, Clone)]
pub struct Limit {
    pub name: String,
    pub algorithm: Algorithm,
    pub limit: u64,
    pub window_ms: u64,
    pub burst: u64,
    pub key: Vec<KeyPart>,
    pub route: Option<Route>,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub role: String,
    pub limit: u64,
    pub burst: u64,
}

#[derive(Debug, Clone)]
pub struct Cost {
    pub header: Option<String>,
    pub max: u64,
    pub routes: Vec<(Route, u64)>,
}

#[derive(Debug, Clone)]
pub struct Penalties {
    pub key: Vec<KeyPart>,
    pub strikes: u32,
    pub strike_window_ms: u64,
    pub from_limits: bool,
    pub from_statuses: Vec<u16>,
    pub bans_ms: Vec<u64>,
    pub decay_ms: u64,
    pub status: u16,
    pub table: RawTable,
}

/// The whole compiled configuration of one filter instance.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub limits: Vec<Limit>,
    pub allow: CidrSet,
    pub cost: Cost,
    pub penalties: Option<Penalties>,
    pub table: RawTable,
    pub cas_attempts: u32,
    pub on_contention: FailMode,
    pub when_full: WhenFullMode,
    pub fleet_size: u32,
    pub headers: RawHeaders,
    pub client_prefix: ClientPrefix,
}

impl Policy {
    pub fn parse(raw: &[u8]) -> Result<Policy, ConfigError> {
        compile_config(portcullis_common::config::parse::<RawConfig>(raw)?)
    }

    /// Request headers the policy reads (cost header, header key parts).
    pub fn wanted_headers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.cost.header.iter().cloned().collect();
        for part in self.key_parts() {
            if let KeyPart::Header(name) = part {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// Every key part of every limit and of the penalties.
    fn key_parts(&self) -> impl Iterator<Item = &KeyPart> {
        self.limits
            .iter()
            .flat_map(|l| l.key.iter())
            .chain(self.penalties.iter().flat_map(|p| p.key.iter()))
    }

    /// Whether deciding needs the method, authority and path: a route to match or a key part
    /// made of them. Without it the adapter does not read them.
    pub fn needs_request_line(&self) -> bool {
        self.limits.iter().any(|l| l.route.is_some())
            || !self.cost.routes.is_empty()
            || self
                .key_parts()
                .any(|p| matches!(p, KeyPart::Route | KeyPart::Method))
    }

    /// Whether deciding needs the client address: an allow-list or a key part made of it.
    pub fn needs_client_ip(&self) -> bool {
        !self.allow.is_empty() || self.key_parts().any(|p| *p == KeyPart::ClientIp)
    }

    /// Whether a response status can be a strike, so the response phase has anything to do.
    pub fn strikes_on_response(&self) -> bool {
        self.penalties
            .as_ref()
            .is_some_and(|p| !p.from_statuses.is_empty())
    }

    pub fn needs_identity(&self) -> bool {
        !self.limits.iter().all(|l| l.tiers.is_empty())
            || self.key_parts().any(KeyPart::needs_identity)
    }
}

fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            field,
            format!("{value} is out of range {min}..={max}"),
        ));
    }
    Ok(value)
}

fn compile_key(parts: &[String]) -> Result<Vec<KeyPart>, ConfigError> {
    if parts.is_empty() {
        return Err(ConfigError::new(
            "",
            "must name at least one part (e.g. [\"client_ip\"])",
        ));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let part = KeyPart::parse(p).map_err(|e| e.within(&format!("[{i}]")))?;
        if out.contains(&part) {
            return Err(ConfigError::new(
                format!("[{i}]"),
                format!("`{p}` appears twice"),
            ));
        }
        out.push(part);
    }
    Ok(out)
}

fn compile_table(t: RawTable) -> Result<RawTable, ConfigError> {
    check_range("buckets", u64::from(t.buckets), 1, 1 << 20)?;
    check_range("ways", u64::from(t.ways), 1, 16)?;
    Ok(t)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn compile_limit(raw: &RawLimit, fleet: u64) -> Result<Limit, ConfigError> {
    if !valid_name(&raw.name) {
        return Err(ConfigError::new(
            "name",
            format!(
                "`{}` must be 1 to 48 of a-z, 0-9, '_' and '-' (it names metrics and headers)",
                raw.name
            ),
        ));
    }
    let algorithm = match raw.algorithm {
        RawAlgorithm::TokenBucket => Algorithm::TokenBucket,
        RawAlgorithm::SlidingWindow => Algorithm::SlidingWindow,
    };
    let window = check_range("window", raw.window, 1, MAX_WINDOW_S)?;
    let (limit, burst) = share(raw.limit, raw.burst, algorithm, fleet)?;
    let key = compile_key(&raw.key).map_err(|e| e.within("key"))?;
    let route = raw
        .route
        .as_ref()
        .map(compile)
        .transpose()
        .map_err(|e| e.within("route"))?;
    let mut tiers = Vec::with_capacity(raw.tiers.len());
    for (i, t) in raw.tiers.iter().enumerate() {
        let at = format!("tiers[{i}]");
        if t.role.is_empty() {
            return Err(ConfigError::new(format!("{at}.role"), "must not be empty"));
        }
        if tiers.iter().any(|x: &Tier| x.role == t.role) {
            return Err(ConfigError::new(
                format!("{at}.role"),
                format!("`{}` has a tier already", t.role),
            ));
        }
        let (limit, burst) =
            share(t.limit, t.burst, algorithm, fleet).map_err(|e| e.within(&at))?;
        tiers.push(Tier {
            role: t.role.clone(),
            limit,
            burst,
        });
    }
    Ok(Limit {
        name: raw.name.clone(),
        algorithm,
        limit,
        window_ms: window * 1000,
        burst,
        key,
        route,
        tiers,
    })
}

/// This instance's share of a limit and burst in fleet mode (at least 1 each, checked).
fn share(
    limit: u64,
    burst: Option<u64>,
    algorithm: Algorithm,
    fleet: u64,
) -> Result<(u64, u64), ConfigError> {
    let limit = check_range("limit", limit, 1, MAX_QUANTITY)?;
    if algorithm == Algorithm::SlidingWindow && burst.is_some() {
        return Err(ConfigError::new(
            "burst",
            "applies to the token_bucket algorithm only",
        ));
    }
    let burst = check_range("burst", burst.unwrap_or(limit), 1, MAX_QUANTITY)?;
    if limit < fleet || burst < fleet {
        return Err(ConfigError::new(
            "limit",
            format!("{limit} (burst {burst}) cannot be shared by a fleet of {fleet} instances"),
        ));
    }
    Ok((limit / fleet, burst / fleet))
}

fn compile_penalties(raw: &RawPenalties) -> Result<Penalties, ConfigError> {
    let key = compile_key(&raw.key).map_err(|e| e.within("key"))?;
    check_range("strikes", u64::from(raw.strikes), 1, 1_000_000)?;
    let window = check_range("strike_window", raw.strike_window, 1, MAX_WINDOW_S)?;
    for (i, s) in raw.from_statuses.iter().enumerate() {
        check_range(&format!("from_statuses[{i}]"), u64::from(*s), 400, 599)?;
    }
    if raw.bans.is_empty() || raw.bans.len() > 16 {
        return Err(ConfigError::new("bans", "must list 1 to 16 ban lengths"));
    }
    let mut bans_ms = Vec::with_capacity(raw.bans.len());
    for (i, b) in raw.bans.iter().enumerate() {
        bans_ms.push(check_range(&format!("bans[{i}]"), *b, 1, MAX_WINDOW_S)? * 1000);
    }
    let decay = check_range("decay", raw.decay, 1, MAX_WINDOW_S)?;
    if raw.status != 429 && raw.status != 403 {
        return Err(ConfigError::new(
            "status",
            format!("{} must be 429 or 403", raw.status),
        ));
    }
    let table = compile_table(raw.table).map_err(|e| e.within("table"))?;
    Ok(Penalties {
        key,
        strikes: raw.strikes,
        strike_window_ms: window * 1000,
        from_limits: raw.from_limits,
        from_statuses: raw.from_statuses.clone(),
        bans_ms,
        decay_ms: decay * 1000,
        status: raw.status,
        table,
    })
}

fn compile_cost(raw: &RawCost) -> Result<Cost, ConfigError> {
    let max = check_range("max", raw.max, 1, MAX_QUANTITY)?;
    let header = match &raw.header {
        Some(h) if is_header_name(h) => Some(h.to_ascii_lowercase()),
        Some(h) => {
            return Err(ConfigError::new(
                "header",
                format!("`{h}` is not a valid header name"),
            ))
        }
        None => None,
    };
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, rc) in raw.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let route = compile(&rc.route).map_err(|e| e.within(&format!("{at}.route")))?;
        let cost = check_range(&format!("{at}.cost"), rc.cost, 1, max)?;
        routes.push((route, cost));
    }
    Ok(Cost {
        header,
        max,
        routes,
    })
}

fn compile_config(raw: RawConfig) -> Result<Policy, ConfigError> {
    let fleet = check_range("fleet_size", u64::from(raw.fleet_size), 1, 10_000)?;
    let mut limits: Vec<Limit> = Vec::with_capacity(raw.limits.len());
    for (i, l) in raw.limits.iter().enumerate() {
        let at = format!("limits[{i}]");
        let limit = compile_limit(l, fleet).map_err(|e| e.within(&at))?;
        if limits.iter().any(|x| x.name == limit.name) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("`{}` names another limit already", limit.name),
            ));
        }
        limits.push(limit);
    }
    if limits.len() > 32 {
        return Err(ConfigError::new("limits", "at most 32 limits"));
    }
    let allow = CidrSet::parse(&raw.allow_cidrs).map_err(|e| e.within("allow_cidrs"))?;
    let cost = compile_cost(&raw.cost).map_err(|e| e.within("cost"))?;
    let penalties = raw
        .penalties
        .as_ref()
        .map(compile_penalties)
        .transpose()
        .map_err(|e| e.within("penalties"))?;
    let table = compile_table(raw.table).map_err(|e| e.within("table"))?;
    check_range("cas_attempts", u64::from(raw.cas_attempts), 1, 100)?;
    Ok(Policy {
        mode: raw.mode,
        limits,
        allow,
        cost,
        penalties,
        table,
        cas_attempts: raw.cas_attempts,
        on_contention: raw.on_contention,
        when_full: raw.when_full,
        fleet_size: raw.fleet_size,
        headers: raw.headers,
        client_prefix: compile_client_prefix(raw.client_prefix)
            .map_err(|e| e.within("client_prefix"))?,
    })
}

/// A prefix shorter than /8 or /16 would put unrelated networks (whole providers) under one
/// budget and one ban: refused as a likely typo.
fn compile_client_prefix(p: ClientPrefix) -> Result<ClientPrefix, ConfigError> {
    check_range("ipv4", u64::from(p.ipv4), 8, 32)?;
    check_range("ipv6", u64::from(p.ipv6), 16, 128)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Policy::parse(json.as_bytes()).unwrap_err().to_string()
    }

    const LIMIT: &str = r#"{"name":"per-ip","limit":10,"window":1,"key":["client_ip"]}"#;

    #[test]
    fn defaults() {
        let p = Policy::parse(b"").unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.limits.is_empty());
        assert!(p.penalties.is_none());
        assert_eq!((p.table.buckets, p.table.ways), (8192, 8));
        assert_eq!((p.client_prefix.ipv4, p.client_prefix.ipv6), (32, 64));
        assert_eq!(p.cas_attempts, 16);
        assert_eq!(p.on_contention, FailMode::Deny);
        assert_eq!(p.when_full, WhenFullMode::Evict);
        assert!(p.headers.on_allowed && !p.headers.legacy);
        let p = Policy::parse(format!(r#"{{"limits":[{LIMIT}],"penalties":{{}}}}"#).as_bytes())
            .unwrap();
        let l = &p.limits[0];
        assert_eq!((l.limit, l.burst, l.window_ms), (10, 10, 1000));
        assert_eq!(l.algorithm, Algorithm::TokenBucket);
        let pen = p.penalties.unwrap();
        assert_eq!(pen.bans_ms, vec![60_000, 300_000, 1_800_000]);
        assert_eq!(pen.from_statuses, vec![401, 403]);
        assert_eq!(pen.key, vec![KeyPart::ClientIp]);
        assert_eq!(pen.status, 429);
    }

    #[test]
    fn the_shipped_configs_compile() {
        // Embedded at build time: the wasm test run has no file system.
        for (f, json) in [
            (
                "ratelimit-client",
                include_str!("../../../envoy/filters/ratelimit-client.json"),
            ),
            (
                "ratelimit-identity",
                include_str!("../../../envoy/filters/ratelimit-identity.json"),
            ),
        ] {
            let p = Policy::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(!p.limits.is_empty(), "{f}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(r#"{"limits":[{"name":"a","limit":0,"window":1,"key":["client_ip"]}]}"#),
            "limits[0].limit: 0 is out of range 1..=1000000000"
        );
        assert_eq!(
            err(r#"{"limits":[{"name":"a","limit":1,"window":0,"key":["client_ip"]}]}"#),
            "limits[0].window: 0 is out of range 1..=604800"
        );
        assert!(
            err(r#"{"limits":[{"name":"A b","limit":1,"window":1,"key":["client_ip"]}]}"#)
                .starts_with("limits[0].name: `A b` must be")
        );
        assert!(
            err(r#"{"limits":[{"name":"a","limit":1,"window":1,"key":["ip"]}]}"#)
                .starts_with("limits[0].key[0]: unknown key part `ip`")
        );
        assert_eq!(
            err(r#"{"limits":[{"name":"a","limit":1,"window":1,"key":[]}]}"#),
            "limits[0].key: must name at least one part (e.g. [\"client_ip\"])"
        );
        assert_eq!(
            err(&format!(r#"{{"limits":[{LIMIT},{LIMIT}]}}"#)),
            "limits[1].name: `per-ip` names another limit already"
        );
        assert_eq!(
            err(
                r#"{"limits":[{"name":"a","algorithm":"sliding_window","limit":1,"window":1,"burst":5,"key":["client_ip"]}]}"#
            ),
            "limits[0].burst: applies to the token_bucket algorithm only"
        );
        assert!(err(r#"{"limits":[{"name":"a","algorithm":"gcra","limit":1,"window":1,"key":["client_ip"]}]}"#)
            .starts_with("limits[0].algorithm: unknown variant `gcra`"));
        assert!(err(r#"{"limits":[{"name":"a","limit":1,"window":1,"key":["client_ip"],"route":{"path":"login"}}]}"#)
            .starts_with("limits[0].route.path: `login` must start with '/'"));
        assert_eq!(
            err(
                r#"{"limits":[{"name":"a","limit":1,"window":1,"key":["subject"],"tiers":[{"role":"x","limit":0}]}]}"#
            ),
            "limits[0].tiers[0].limit: 0 is out of range 1..=1000000000"
        );
        assert_eq!(
            err(r#"{"allow_cidrs":["10.0.0.1/8"]}"#),
            "allow_cidrs[0]: `10.0.0.1/8` has host bits set; the network is 10.0.0.0/8"
        );
        assert_eq!(
            err(r#"{"penalties":{"status":500}}"#),
            "penalties.status: 500 must be 429 or 403"
        );
        assert_eq!(
            err(r#"{"penalties":{"bans":[]}}"#),
            "penalties.bans: must list 1 to 16 ban lengths"
        );
        assert_eq!(
            err(r#"{"penalties":{"from_statuses":[200]}}"#),
            "penalties.from_statuses[0]: 200 is out of range 400..=599"
        );
        assert_eq!(
            err(r#"{"table":{"buckets":0}}"#),
            "table.buckets: 0 is out of range 1..=1048576"
        );
        assert_eq!(
            err(r#"{"cost":{"header":"bad header"}}"#),
            "cost.header: `bad header` is not a valid header name"
        );
        assert_eq!(
            err(r#"{"cost":{"routes":[{"route":{"path":"/x"},"cost":500}]}}"#),
            "cost.routes[0].cost: 500 is out of range 1..=100"
        );
        assert_eq!(
            err(
                r#"{"fleet_size":3,"limits":[{"name":"a","limit":2,"window":1,"key":["client_ip"]}]}"#
            ),
            "limits[0].limit: 2 (burst 2) cannot be shared by a fleet of 3 instances"
        );
        assert_eq!(
            err(r#"{"client_prefix":{"ipv6":8}}"#),
            "client_prefix.ipv6: 8 is out of range 16..=128"
        );
        assert_eq!(
            err(r#"{"client_prefix":{"ipv4":33}}"#),
            "client_prefix.ipv4: 33 is out of range 8..=32"
        );
        assert!(err(r#"{"client_prefix":{"v6":64}}"#)
            .starts_with("client_prefix.v6: unknown field `v6`"));
        assert!(err(r#"{"limts":[]}"#).starts_with("limts: unknown field `limts`"));
        assert!(err(r#"{"on_contention":"maybe"}"#).starts_with("on_contention: unknown variant"));
    }

    #[test]
    fn fleet_mode_shares_the_budget() {
        let p = Policy::parse(
            br#"{"fleet_size":4,"limits":[{"name":"a","limit":100,"burst":40,"window":60,"key":["client_ip"],
                "tiers":[{"role":"admin","limit":1000}]}]}"#,
        )
        .unwrap();
        let l = &p.limits[0];
        assert_eq!((l.limit, l.burst), (25, 10));
        assert_eq!((l.tiers[0].limit, l.tiers[0].burst), (250, 250));
    }

    #[test]
    fn wanted_headers_and_identity() {
        let p = Policy::parse(
            br#"{"cost":{"header":"X-Cost"},"limits":[{"name":"a","limit":1,"window":1,"key":["header:x-team","client_ip"]}],
                "penalties":{"key":["header:x-team"]}}"#,
        )
        .unwrap();
        assert_eq!(p.wanted_headers(), vec!["x-cost", "x-team"]);
        assert!(!p.needs_identity());
        let p =
            Policy::parse(br#"{"limits":[{"name":"a","limit":1,"window":1,"key":["subject"]}]}"#)
                .unwrap();
        assert!(p.needs_identity());
    }
}
