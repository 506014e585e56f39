//! When to fetch a provider's remote keys, and what a fetched document changes. Pure state: the
//! adapter performs the HTTP call and feeds the answer back.
//!
//! - a timer refresh every `refresh_secs` (sooner, `retry_secs`, after a failure);
//! - a refetch when a token names an unknown `kid`, at most once per `min_refetch_secs`, so a
//!   flood of made-up kids cannot turn into a flood of requests to the IdP;
//! - a failed or invalid fetch keeps the last good keys; before any fetch succeeded there are no
//!   keys and tokens are refused (fail closed);
//! - with OIDC discovery, the discovery document is fetched first and its `jwks_uri` followed:
//!   to `cluster` when its host is `authority`, to `jwks_cluster` (with the URI's host as
//!   `:authority`) when it is another host (Google: keys on www.googleapis.com); a `jwks_uri` on
//!   another host with no `jwks_cluster`, or over `http://` without `allow_insecure_http`, is
//!   refused and the last good keys stay.

use serde::Deserialize;
use serde_json::Value;

use crate::keys::{parse_jwks, Alg, Key};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// Envoy cluster serving the JWKS (or discovery document).
    pub cluster: String,
    /// `:authority` sent to it.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// Path of the JWKS document. Exactly one of `path` and `discovery_path`.
    #[serde(default)]
    pub path: Option<String>,
    /// Path of the OIDC discovery document, e.g. `/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery_path: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    #[serde(default = "default_retry")]
    pub retry_secs: u64,
    #[serde(default = "default_min_refetch")]
    pub min_refetch_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Envoy cluster for a discovered `jwks_uri` on another host than `authority`.
    #[serde(default)]
    pub jwks_cluster: Option<String>,
    /// Accept a discovered `jwks_uri` over plain `http://` (keys an on-path attacker could
    /// replace): only for tests and closed networks.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_authority() -> String {
    "idp".into()
}
fn default_refresh() -> u64 {
    300
}
fn default_retry() -> u64 {
    5
}
fn default_min_refetch() -> u64 {
    30
}
fn default_timeout() -> u64 {
    2000
}

/// Most keys accepted from one JWKS document.
pub const MAX_JWKS_KEYS: usize = 32;
/// Largest JWKS or discovery body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the adapter should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub discovery: bool,
}

/// The result of feeding a response in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    /// New keys are in place (count, skipped-key notes).
    Keys(usize, Vec<String>),
    /// Discovery resolved; fetch this JWKS path next.
    Next(Fetch),
    /// The fetch failed; last good keys (if any) stay.
    Failed(String),
    /// The discovery document names a `jwks_uri` we will not follow (plain HTTP, or a host with
    /// no configured cluster); last good keys (if any) stay.
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct RemoteState {
    pub spec: RemoteSpec,
    pub keys: Option<Vec<Key>>,
    /// The provider's `algorithms`: what keys of a fetched JWKS may verify.
    algorithms: Vec<Alg>,
    /// Where the JWKS is: `path` on `cluster`, or what discovery found.
    jwks: Option<Fetch>,
    next_refresh: u64,
    last_kid_refetch: Option<u64>,
    /// When the fetch in flight started; a fetch whose requester vanished (a client that hung
    /// up while its request waited) stops counting after its timeout plus a margin.
    in_flight: Option<u64>,
}

impl RemoteState {
    pub fn new(spec: RemoteSpec, algorithms: Vec<Alg>) -> RemoteState {
        RemoteState {
            jwks: spec.path.clone().map(|path| Fetch {
                cluster: spec.cluster.clone(),
                authority: spec.authority.clone(),
                path,
                discovery: false,
            }),
            algorithms,
            spec,
            keys: None,
            next_refresh: 0,
            last_kid_refetch: None,
            in_flight: None,
        }
    }

    fn next_fetch(&self) -> Option<Fetch> {
        match (&self.jwks, &self.spec.discovery_path) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(d)) => Some(Fetch {
                cluster: self.spec.cluster.clone(),
                authority: self.spec.authority.clone(),
                path: d.clone(),
                discovery: true,
            }),
            (None, None) => None,
        }
    }

    fn busy(&self, now: u64) -> bool {
        let stale_after = self.spec.timeout_ms / 1000 + 5;
        self.in_flight
            .is_some_and(|started| now < started.saturating_add(stale_after))
    }

    /// A timer tick: the fetch to start now, if one is due.
    pub fn due(&mut self, now: u64) -> Option<Fetch> {
        if self.busy(now) || now < self.next_refresh {
            return None;
        }
        self.in_flight = Some(now);
        self.next_fetch()
    }

    /// A token named an unknown kid: the fetch to start now, if the rate limit allows one.
    pub fn unknown_kid(&mut self, now: u64) -> Option<Fetch> {
        if self.busy(now)
            || self
                .last_kid_refetch
                .is_some_and(|t| now < t.saturating_add(self.spec.min_refetch_secs))
        {
            return None;
        }
        self.last_kid_refetch = Some(now);
        self.in_flight = Some(now);
        self.next_fetch()
    }

    /// The dispatch itself failed (no such cluster...): try again after `retry_secs`.
    pub fn dispatch_failed(&mut self, now: u64) {
        self.in_flight = None;
        self.next_refresh = now.saturating_add(self.spec.retry_secs);
    }

    /// Feeds an HTTP answer (`status` None: no answer, e.g. timeout or connection refused).
    pub fn feed(
        &mut self,
        fetch: &Fetch,
        status: Option<u16>,
        body: &[u8],
        issuer: &str,
        now: u64,
    ) -> Fed {
        self.in_flight = None;
        let failed = |state: &mut RemoteState, why: String| {
            state.next_refresh = now.saturating_add(state.spec.retry_secs);
            Fed::Failed(why)
        };
        match status {
            Some(200) => {}
            Some(s) => return failed(self, format!("HTTP {s}")),
            None => return failed(self, "no response".into()),
        }
        if body.len() > MAX_BODY_BYTES {
            return failed(self, format!("body of {} bytes is too large", body.len()));
        }
        if fetch.discovery {
            let uri = match jwks_uri_from_discovery(body, issuer) {
                Ok(uri) => uri,
                Err(e) => return failed(self, e),
            };
            return match self.follow(&uri) {
                Ok(next) => {
                    self.jwks = Some(next.clone());
                    self.in_flight = Some(now);
                    Fed::Next(next)
                }
                Err(why) => {
                    self.next_refresh = now.saturating_add(self.spec.retry_secs);
                    Fed::Refused(why)
                }
            };
        }
        match parse_jwks(body, MAX_JWKS_KEYS, &self.algorithms) {
            Ok((keys, skipped)) => {
                let n = keys.len();
                self.keys = Some(keys);
                self.next_refresh = now.saturating_add(self.spec.refresh_secs);
                Fed::Keys(n, skipped)
            }
            Err(e) => failed(self, e),
        }
    }
}

impl RemoteState {
    /// Where a discovered `jwks_uri` is fetched from, or why it is not.
    fn follow(&self, uri: &str) -> Result<Fetch, String> {
        let (secure, rest) = match (uri.strip_prefix("https://"), uri.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => return Err(format!("`jwks_uri` {uri:?} is not an http(s) URL")),
        };
        if !secure && !self.spec.allow_insecure_http {
            return Err(format!(
                "`jwks_uri` {uri:?} is plain HTTP, where anyone on the path can swap the keys; \
                 serve it over HTTPS (or set remote_jwks.allow_insecure_http: true for a test IdP)"
            ));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i..).unwrap_or("/"),
            ),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        // Hand-written because a URL crate is heavy for one authority check: the host[:port]
        // must be plain (no userinfo, no spaces), so it names one place unambiguously.
        if authority.is_empty()
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return Err(format!("`jwks_uri` {uri:?} has no plain host"));
        }
        if authority.eq_ignore_ascii_case(&self.spec.authority) {
            return Ok(Fetch {
                cluster: self.spec.cluster.clone(),
                authority: self.spec.authority.clone(),
                path,
                discovery: false,
            });
        }
        match &self.spec.jwks_cluster {
            Some(cluster) => Ok(Fetch {
                cluster: cluster.clone(),
                authority: authority.to_ascii_lowercase(),
                path,
                discovery: false,
            }),
            None => Err(format!(
                "`jwks_uri` {uri:?} is on host {authority}, not {}: set remote_jwks.jwks_cluster \
                 to an Envoy cluster that reaches {authority}",
                self.spec.authority
            )),
        }
    }
}

/// The `jwks_uri` of an OIDC discovery document (OpenID Connect Discovery 1.0 §3), after
/// checking that it describes our issuer (§4.3).
pub fn jwks_uri_from_discovery(body: &[u8], issuer: &str) -> Result<String, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("discovery is not JSON: {e}"))?;
    let found = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != issuer {
        return Err(format!(
            "discovery document is for issuer {found:?}, not ours"
        ));
    }
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "discovery document has no `jwks_uri`".into())
}
