//! The cache's decisions: per request (serve, forward with edits, purge, refuse) and per
//! upstream response (store, merge a 304, serve stale on error, invalidate). Plain Rust: the
//! adapter hands in headers, the identity, the clock and shared data; tests hand in fakes.

use portcullis_common::config::Mode;
use portcullis_common::decision::{Decision, Outcome};
use portcullis_common::identity::Identity;
use portcullis_common::slots::SharedData;

use crate::config::{rule_for, Compiled, CredentialSource, RouteRule};
use crate::directives::{
    parse_request, parse_response, parse_targeted, RequestDirectives, ResponseDirectives,
};
use crate::entry::Entry;
use crate::freshness::{self, current_age, http_date, initial_age};
use crate::key::{
    accepts_coding, normalise_field, normalise_query, primary_key, split_target, url_key,
    variant_fingerprint, vary_names, CODING_KEY,
};
use crate::status::{cache_status, Handling};
use crate::store::{Found, Store, StoreFailure};
use merge::{head_verdict, other_representation, selects, vary_changed, HeadVerdict};

pub type Headers = Vec<(String, String)>;

/// One request as the cache sees it. Header names are lower-case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    /// Path and query.
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub identity: Option<&'a Identity>,
    pub now: u64,
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Events the adapter counts (`portcullis_cache_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Hit,
    StaleHit,
    Miss,
    Revalidated,
    Stored,
    NotStorable,
    TooLarge,
    Evicted(u32),
    Invalidated(u32),
    Purged(u32),
    PurgeDenied,
    OnlyIfCachedMiss,
    StaleIfError,
    StoreConflict,
    ShadowHit,
    Bypass,
}

/// A reply the cache sends itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Response {
        status: u16,
        headers: Headers,
        body: Vec<u8>,
    },
    /// An `application/problem+json` deny.
    Problem {
        status: u16,
        title: &'static str,
        detail: String,
        reason: &'static str,
        headers: Headers,
    },
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestAction {
    Respond {
        reply: Reply,
        decision: Decision,
        events: Vec<Event>,
        /// Background refresh to start (stale-while-revalidate).
        refresh: Option<Refresh>,
    },
    Forward {
        remove: Vec<String>,
        set: Headers,
        pending: Box<Pending>,
        /// Shadow mode: the deny this would have been (outcome `shadow_deny`).
        would_deny: Option<Decision>,
        events: Vec<Event>,
    },
}

/// A background revalidation of a stale entry: the request to send and what to do with the
/// answer (`Engine::on_response` with `pending`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refresh {
    pub headers: Headers,
    pub pending: Box<Pending>,
}

/// What the request phase knows that the response phase needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    kind: Kind,
    request_time: u64,
    /// Upstream-bound Cache-Status handling before the response is known.
    fwd: &'static str,
    detail: Option<&'static str>,
    key_shown: Option<String>,
}

impl Pending {
    /// Whether [`Engine::on_response`] looks at the response's status and headers; when not,
    /// the adapter need not read them.
    pub fn reads_response(&self) -> bool {
        !matches!(self.kind, Kind::Pass)
    }
}

/// How [`Engine::on_request`] handles a request, decided from its request line alone.
enum Route<'a> {
    /// Forwarded untouched whatever its headers and identity, with this Cache-Status `fwd`:
    /// not GET/HEAD (`method`), or on no cacheable route (`uri-miss`).
    Pass(&'static str),
    /// A purge, or an unsafe method (which invalidates): needs the whole request.
    Special,
    /// A GET or HEAD on a cacheable route.
    Cacheable(&'a RouteRule),
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Not cacheable; only Cache-Status is added.
    Pass,
    /// A cacheable GET/HEAD sent upstream.
    Lookup(Box<Lookup>),
    /// An unsafe method: invalidate on success.
    Unsafe {
        scheme: String,
        authority: String,
        url_key: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Lookup {
    url_key: String,
    primary_key: String,
    /// The request's headers, for Vary values.
    request_headers: Headers,
    /// Authenticated (identity published, a credential source present, or `Authorization`):
    /// RFC 9111 §3.5. Such a response is stored on a shared entry only when it allows it, and
    /// such a HEAD or revalidation never updates nor invalidates a shared entry.
    authenticated: bool,
    may_store: bool,
    /// Keyed by the verified user: the entry is that user's private cache.
    per_user: bool,
    head: bool,
    content_types: Vec<String>,
    /// The stale entry being revalidated (304 merge, stale-if-error).
    stale: Option<Entry>,
    /// Whether the validators sent upstream are ours (so a 304 is for us, not the client).
    revalidating: bool,
}

/// What to do with the upstream's response headers.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseAction {
    /// Replace the upstream response with this reply (merged 304, stale-if-error).
    Replace {
        reply: Reply,
        decision: Decision,
        events: Vec<Event>,
    },
    /// Let it through with `Cache-Status` added; collect the body for `finish` when `capture`.
    Pass {
        cache_status: String,
        decision: Decision,
        events: Vec<Event>,
        capture: Option<Box<Capture>>,
    },
}

/// A response being stored once its body is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    entry: Entry,
    /// Bodies above this are not stored.
    pub max_body: u64,
}

pub struct Engine {
    pub config: Compiled,
    pub store: Store,
}

/// Response headers never stored: per-hop fields, ones recomputed on every reply, and Envoy's.
fn unstored(name: &str, connection_named: &[String]) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "age"
            | "cache-status"
    ) || name.starts_with(':')
        || name.starts_with("x-envoy-")
        || connection_named.iter().any(|c| c == name)
}

/// Statuses this cache stores (RFC 9110 §15.1 heuristically cacheable, plus redirects that carry
/// explicit freshness).
fn storable_status(status: u16) -> bool {
    freshness::HEURISTICALLY_CACHEABLE.contains(&status) || matches!(status, 302 | 307)
}

/// RFC 9111 §4.4: every method not known to be safe invalidates (unknown methods included).
fn unsafe_method(m: &str) -> bool {
    !matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "CONNECT")
}

/// The caching policy of a response for this cache.
struct Policy {
    d: ResponseDirectives,
    /// The targeted field (RFC 9213) governs: `Cache-Control` and `Expires` are ignored.
    targeted: bool,
}

/// Response fields a 304 or HEAD response does not update (RFC 9111 §3.2): besides the ones never
/// stored, those describing the stored body's bytes.
fn describes_body(name: &str) -> bool {
    matches!(
        name,
        "content-length" | "content-encoding" | "content-range" | "transfer-encoding"
    )
}

/// Weak comparison of entity tags (RFC 9110 §8.8.3.2) against an If-None-Match list.
fn etag_matches(if_none_match: &[&str], etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let tag = strip(etag);
    if_none_match
        .iter()
        .flat_map(|v| v.split(','))
        .any(|c| c.trim() == "*" || strip(c) == tag)
}

impl Engine {
    pub fn new(config: Compiled, instance: &str) -> Engine {
        let store = Store::new(instance, config.buckets, config.ways, config.max_bytes);
        Engine { config, store }
    }

    /// The directives that govern a response (RFC 9213: the configured targeted field when it
    /// is present and valid, else `Cache-Control`).
    fn policy(&self, headers: &[(String, String)]) -> Policy {
        if let Some(name) = &self.config.targeted_field {
            if let Some(d) = parse_targeted(&values(headers, name)) {
                return Policy { d, targeted: true };
            }
        }
        Policy {
            d: parse_response(&values(headers, "cache-control")),
            targeted: false,
        }
    }

    /// Whether the request carries a credential from a configured source.
    fn carries_credential(&self, headers: &[(String, String)], query: &str) -> bool {
        self.config.credential_sources.iter().any(|src| match src {
            CredentialSource::Header(n) => values(headers, n).iter().any(|v| !v.trim().is_empty()),
            CredentialSource::Cookie(n) => values(headers, "cookie")
                .iter()
                .flat_map(|v| v.split(';'))
                .any(|pair| pair.trim().split_once('=').is_some_and(|(k, _)| k == n)),
            CredentialSource::Query(n) => query
                .split('&')
                .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == n),
        })
    }

    fn status(&self, h: &Handling, key: Option<&str>, detail: Option<&str>) -> String {
        let key = if self.config.status_key { key } else { None };
        cache_status(&self.config.status_name, h, key, detail)
    }

    fn shown_key(&self, key: &str) -> Option<String> {
        self.config.status_key.then(|| key.to_string())
    }

    fn forward_pass(&self, fwd: &'static str, now: u64, events: Vec<Event>) -> RequestAction {
        RequestAction::Forward {
            remove: Vec::new(),
            set: Vec::new(),
            pending: Box::new(Pending {
                kind: Kind::Pass,
                request_time: now,
                fwd,
                detail: None,
                key_shown: None,
            }),
            would_deny: None,
            events,
        }
    }

    /// The request phase.
    pub fn on_request<S: SharedData>(&self, s: &mut S, req: &Request) -> RequestAction {
        let action = self.decide_request(s, req);
        if self.config.mode == Mode::Enforce {
            return action;
        }
        // Shadow: never answer from cache; a deny becomes a would-deny signal.
        match action {
            RequestAction::Respond {
                reply: Reply::Problem { .. },
                mut decision,
                events,
                ..
            } => {
                decision.outcome = Outcome::ShadowDeny;
                let mut a = self.forward_pass("request", req.now, events);
                if let RequestAction::Forward { would_deny, .. } = &mut a {
                    *would_deny = Some(decision);
                }
                a
            }
            // An authorised purge is an admin action, not a cache answer: it runs in shadow too.
            a @ RequestAction::Respond { .. } if is_purge(&a) => a,
            RequestAction::Respond { .. } => {
                let mut a = self.forward_pass("request", req.now, vec![Event::ShadowHit]);
                if let RequestAction::Forward { pending, .. } = &mut a {
                    pending.detail = Some("shadow");
                }
                a
            }
            other => other,
        }
    }

    /// The Cache-Status `fwd` of a request that [`Engine::on_request`] forwards untouched
    /// whatever its headers and identity (see [`Route::Pass`]). The adapter then reads neither
    /// the request's headers nor the identity: most requests are such.
    pub fn pass_through(
        &self,
        method: &str,
        authority: &str,
        target: &str,
    ) -> Option<&'static str> {
        match self.route(method, authority, split_target(target).0) {
            Route::Pass(fwd) => Some(fwd),
            Route::Special | Route::Cacheable(_) => None,
        }
    }

    /// What [`Engine::on_request`] answers for a pass-through request (`fwd` from
    /// [`Engine::pass_through`]), so the adapter, which has asked already, need not match the
    /// routes again. Untimed: its response is not read (see [`Pending::reads_response`]).
    pub fn passed_through(&self, fwd: &'static str) -> RequestAction {
        self.forward_pass(fwd, 0, Vec::new())
    }

    /// Whether the request is for the admin purge path, however spelled (see
    /// `config::purge_routes`).
    fn is_purge_path(&self, method: &str, authority: &str, path: &str) -> bool {
        self.config
            .purge_path
            .iter()
            .any(|r| r.matches(method, authority, path).is_some())
    }

    /// How a request is handled, from its request line alone (one route match).
    fn route<'a>(&'a self, method: &str, authority: &str, path: &'a str) -> Route<'a> {
        let c = &self.config;
        if (c.purge_method && method == "PURGE")
            || self.is_purge_path(method, authority, path)
            || unsafe_method(method)
        {
            return Route::Special;
        }
        if !matches!(method, "GET" | "HEAD") {
            return Route::Pass("method");
        }
        match rule_for(c, method, authority, path) {
            Some(rule) => Route::Cacheable(rule),
            None => Route::Pass("uri-miss"),
        }
    }

    fn decide_request<S: SharedData>(&self, s: &mut S, req: &Request) -> RequestAction {
        let c = &self.config;
        let (path, query) = split_target(req.target);
        let rule = match self.route(req.method, req.authority, path) {
            Route::Pass(fwd) => return self.passed_through(fwd),
            Route::Cacheable(rule) => rule,
            // A purge, or else an unsafe method, which invalidates what it changes.
            Route::Special => {
                let is_purge_path = self.is_purge_path(req.method, req.authority, path);
                if (c.purge_method && req.method == "PURGE") || is_purge_path {
                    return self.purge(s, req, is_purge_path);
                }
                let query = normalise_query(query, c.sort_query, &c.ignore_params);
                let url = url_key(req.scheme, req.authority, path, &query);
                let mut a = self.forward_pass("method", req.now, Vec::new());
                if let RequestAction::Forward { pending, .. } = &mut a {
                    pending.kind = Kind::Unsafe {
                        scheme: req.scheme.to_string(),
                        authority: req.authority.to_string(),
                        url_key: url,
                    };
                }
                return a;
            }
        };
        // Headers that could change the response without being in the key go.
        let remove: Vec<String> = c
            .strip_request_headers
            .iter()
            .filter(|h| req.headers.iter().any(|(n, _)| n == *h))
            .cloned()
            .collect();
        let headers: Headers = req
            .headers
            .iter()
            .filter(|(n, _)| !remove.contains(n))
            .cloned()
            .collect();
        let user = if rule.per_user {
            match req.identity {
                Some(id) => Some(id),
                None => {
                    let mut a = self.forward_pass("bypass", req.now, vec![Event::Bypass]);
                    if let RequestAction::Forward {
                        pending, remove: r, ..
                    } = &mut a
                    {
                        pending.detail = Some("no-identity");
                        *r = remove;
                    }
                    return a;
                }
            }
        } else {
            None
        };
        let query = normalise_query(query, c.sort_query, &c.ignore_params);
        let url = url_key(req.scheme, req.authority, path, &query);
        let primary = primary_key(&url, user);
        let rd = parse_request(
            &values(&headers, "cache-control"),
            &values(&headers, "pragma"),
        );

        let variants = self.store.variants(s, &url);
        let candidates: Vec<&Found> = variants
            .iter()
            .filter(|f| f.entry.primary_key == primary)
            .collect();
        let matching = candidates.iter().find(|f| {
            f.entry.vary.iter().all(|(n, v)| {
                if n == CODING_KEY {
                    accepts_coding(&values(&headers, "accept-encoding"), v)
                } else {
                    normalise_field(&values(&headers, n)) == *v
                }
            })
        });
        let mut lookup = Lookup {
            url_key: url.clone(),
            primary_key: primary.clone(),
            request_headers: headers.clone(),
            authenticated: req.identity.is_some()
                || first(req.headers, "authorization").is_some()
                || self.carries_credential(req.headers, split_target(req.target).1),
            may_store: !rd.no_store,
            per_user: user.is_some(),
            head: req.method == "HEAD",
            content_types: rule.content_types.clone(),
            stale: None,
            revalidating: false,
        };
        let key_shown = self.shown_key(&primary);
        let Some(found) = matching else {
            if rd.only_if_cached {
                return self.not_cached(req, "no stored response for this request");
            }
            let fwd = if candidates.is_empty() {
                "miss"
            } else {
                "vary-miss"
            };
            return RequestAction::Forward {
                remove,
                set: Vec::new(),
                pending: Box::new(Pending {
                    kind: Kind::Lookup(Box::new(lookup)),
                    request_time: req.now,
                    fwd,
                    detail: None,
                    key_shown,
                }),
                would_deny: None,
                events: vec![Event::Miss],
            };
        };
        let entry = &found.entry;
        let policy = self.policy(&entry.headers);
        let rsd = &policy.d;
        let lifetime = self.lifetime_of(entry, &policy);
        let age = current_age(entry.initial_age, entry.response_time, req.now);
        let ttl = lifetime as i64 - age as i64;
        let mut usable = self.usable(&rd, rsd, lifetime, age);
        // A background refresh carries no credentials, so it cannot fetch a user's own copy:
        // per-user entries are revalidated by the user's request instead.
        if usable == Usable::StaleWhileRevalidate && lookup.per_user {
            usable = Usable::Revalidate;
        }
        match usable {
            Usable::Fresh | Usable::StaleAllowed => {
                self.store.touch(s, found, req.now);
                let stale = ttl <= 0;
                let reply = self.serve(
                    entry,
                    &headers,
                    age,
                    lookup.head,
                    self.status(
                        &Handling::Hit { ttl },
                        Some(&primary),
                        stale.then_some("stale"),
                    ),
                );
                RequestAction::Respond {
                    reply,
                    decision: Decision::allow()
                        .with("cache_status", if stale { "hit-stale" } else { "hit" }),
                    events: vec![if stale { Event::StaleHit } else { Event::Hit }],
                    refresh: None,
                }
            }
            Usable::StaleWhileRevalidate => {
                self.store.touch(s, found, req.now);
                let reply = self.serve(
                    entry,
                    &headers,
                    age,
                    lookup.head,
                    self.status(
                        &Handling::Hit { ttl },
                        Some(&primary),
                        Some("stale-while-revalidate"),
                    ),
                );
                lookup.stale = Some(entry.clone());
                lookup.revalidating = true;
                lookup.head = false;
                let mut refresh_headers: Headers = vec![
                    (":method".into(), "GET".into()),
                    (":path".into(), req.target.to_string()),
                    (":authority".into(), req.authority.to_string()),
                    (":scheme".into(), req.scheme.to_string()),
                ];
                for (n, _) in &entry.vary {
                    for v in values(&headers, n) {
                        refresh_headers.push((n.clone(), v.to_string()));
                    }
                }
                refresh_headers.extend(validators(entry));
                // The refresh carries no credentials of the client's, unless the entry varies
                // on a field that holds one.
                lookup.authenticated = first(&refresh_headers, "authorization").is_some()
                    || self.carries_credential(&refresh_headers, split_target(req.target).1);
                RequestAction::Respond {
                    reply,
                    decision: Decision::allow().with("cache_status", "hit-stale-while-revalidate"),
                    events: vec![Event::StaleHit],
                    refresh: Some(Refresh {
                        headers: refresh_headers,
                        pending: Box::new(Pending {
                            kind: Kind::Lookup(Box::new(lookup)),
                            request_time: req.now,
                            fwd: "stale",
                            detail: Some("background"),
                            key_shown,
                        }),
                    }),
                }
            }
            Usable::Revalidate => {
                if rd.only_if_cached {
                    return self.not_cached(req, "the stored response must be revalidated");
                }
                let set = validators(entry);
                // Our validators replace the client's: the 304 answers us, and we answer the
                // client from the merged entry (with a 304 of our own if its validators match).
                let mut remove = remove;
                if !set.is_empty() {
                    for h in ["if-none-match", "if-modified-since"] {
                        if headers.iter().any(|(n, _)| n == h) && !remove.iter().any(|r| r == h) {
                            remove.push(h.to_string());
                        }
                    }
                }
                lookup.revalidating = !set.is_empty();
                lookup.stale = Some(entry.clone());
                RequestAction::Forward {
                    remove,
                    set,
                    pending: Box::new(Pending {
                        kind: Kind::Lookup(Box::new(lookup)),
                        request_time: req.now,
                        fwd: "stale",
                        detail: None,
                        key_shown,
                    }),
                    would_deny: None,
                    events: vec![],
                }
            }
        }
    }

    fn lifetime_of(&self, e: &Entry, p: &Policy) -> u64 {
        if p.d.no_cache {
            return 0;
        }
        freshness::lifetime(
            &p.d,
            e.status,
            e.header("date").and_then(http_date),
            if p.targeted {
                None
            } else {
                e.header("expires")
            },
            e.header("last-modified").and_then(http_date),
            e.response_time,
            self.config.heuristic,
        )
        .unwrap_or(0)
    }

    /// Whether a stored response may be used for this request (RFC 9111 §4.2, §5.2.1, RFC 5861).
    fn usable(
        &self,
        rd: &RequestDirectives,
        d: &ResponseDirectives,
        lifetime: u64,
        age: u64,
    ) -> Usable {
        if rd.no_cache || d.no_cache {
            return Usable::Revalidate;
        }
        // `max-age=0` asks for a response validated now, whatever its whole-second age.
        if rd.max_age.is_some_and(|m| age > m || m == 0) {
            return Usable::Revalidate;
        }
        if let Some(min) = rd.min_fresh {
            if lifetime.saturating_sub(age) < min || age >= lifetime {
                return Usable::Revalidate;
            }
        }
        if age < lifetime {
            return Usable::Fresh;
        }
        if d.forbids_stale() {
            return Usable::Revalidate;
        }
        let staleness = age - lifetime;
        match rd.max_stale {
            Some(None) => return Usable::StaleAllowed,
            Some(Some(n)) if staleness <= n => return Usable::StaleAllowed,
            _ => {}
        }
        if d.stale_while_revalidate.is_some_and(|n| staleness <= n) && rd.max_age.is_none() {
            return Usable::StaleWhileRevalidate;
        }
        Usable::Revalidate
    }

    /// A reply from a stored entry: its headers, `Age`, `Cache-Status`; a 304 when the client's
    /// own validators match; no body for HEAD.
    fn serve(
        &self,
        e: &Entry,
        req_headers: &[(String, String)],
        age: u64,
        head: bool,
        status_line: String,
    ) -> Reply {
        let inm = values(req_headers, "if-none-match");
        let not_modified = match e.header("etag") {
            Some(tag) if !inm.is_empty() => etag_matches(&inm, tag),
            _ if inm.is_empty() => match (
                first(req_headers, "if-modified-since").and_then(http_date),
                e.header("last-modified").and_then(http_date),
            ) {
                (Some(since), Some(lm)) => e.status == 200 && lm <= since,
                _ => false,
            },
            _ => false,
        };
        let mut headers: Headers = if not_modified {
            e.headers
                .iter()
                .filter(|(n, _)| {
                    matches!(
                        n.as_str(),
                        "cache-control"
                            | "content-location"
                            | "date"
                            | "etag"
                            | "expires"
                            | "vary"
                            | "last-modified"
                    )
                })
                .cloned()
                .collect()
        } else {
            e.headers.clone()
        };
        headers.push(("age".into(), age.to_string()));
        headers.push(("cache-status".into(), status_line));
        let (status, body) = if not_modified {
            (304, Vec::new())
        } else if head {
            (e.status, Vec::new())
        } else {
            (e.status, e.body.clone())
        };
        Reply::Response {
            status,
            headers,
            body,
        }
    }

    fn not_cached(&self, req: &Request, detail: &str) -> RequestAction {
        let _ = req;
        RequestAction::Respond {
            reply: Reply::Problem {
                status: 504,
                title: "Not Cached",
                detail: format!("only-if-cached: {detail}"),
                reason: "not_cached",
                headers: vec![(
                    "cache-status".into(),
                    self.status(
                        &Handling::Forward {
                            fwd: "miss",
                            fwd_status: None,
                            stored: false,
                            ttl: None,
                        },
                        None,
                        Some("only-if-cached"),
                    ),
                )],
            },
            decision: Decision::deny(504, "not_cached").with("cache_status", "only-if-cached-miss"),
            events: vec![Event::OnlyIfCachedMiss],
            refresh: None,
        }
    }

    fn purge<S: SharedData>(&self, s: &mut S, req: &Request, admin_path: bool) -> RequestAction {
        let c = &self.config;
        let allowed = req
            .identity
            .is_some_and(|id| id.roles.iter().any(|r| c.purge_roles.contains(r)));
        let status_hdr = |detail| {
            vec![(
                "cache-status".to_string(),
                self.status(
                    &Handling::Forward {
                        fwd: "request",
                        fwd_status: None,
                        stored: false,
                        ttl: None,
                    },
                    None,
                    Some(detail),
                ),
            )]
        };
        if !allowed {
            let status = if req.identity.is_none() { 401 } else { 403 };
            return RequestAction::Respond {
                reply: Reply::Problem {
                    status,
                    title: if status == 401 {
                        "Unauthorized"
                    } else {
                        "Forbidden"
                    },
                    detail: "purging the cache needs an identity with a purge role".into(),
                    reason: "purge_forbidden",
                    headers: status_hdr("purge-denied"),
                },
                decision: Decision::deny(status, "purge_forbidden"),
                events: vec![Event::PurgeDenied],
                refresh: None,
            };
        }
        let (path, query) = split_target(req.target);
        let result = if admin_path {
            let param = |name: &str| {
                query.split('&').find_map(|p| {
                    p.split_once('=')
                        .filter(|(n, _)| *n == name)
                        .map(|(_, v)| v.to_string())
                })
            };
            match (param("url"), param("tag")) {
                (Some(u), _)
                    if u.starts_with("%2F") || u.starts_with("%2f") || u.starts_with('/') =>
                {
                    let target = percent_decode(&u);
                    let (p, q) = split_target(&target);
                    let q = normalise_query(q, c.sort_query, &c.ignore_params);
                    self.store
                        .remove_url(s, &url_key(req.scheme, req.authority, p, &q))
                }
                (_, Some(tag)) if !tag.is_empty() => {
                    self.store.remove_tag(s, &percent_decode(&tag))
                }
                _ => {
                    return RequestAction::Respond {
                        reply: Reply::Problem {
                            status: 400,
                            title: "Bad Request",
                            detail: "purge needs ?url=/path or ?tag=name".into(),
                            reason: "purge_target_missing",
                            headers: status_hdr("purge-invalid"),
                        },
                        decision: Decision::deny(400, "purge_target_missing"),
                        events: vec![],
                        refresh: None,
                    }
                }
            }
        } else if let Some(tag) = first(req.headers, &c.tag_header) {
            self.store.remove_tag(s, tag.trim())
        } else {
            let q = normalise_query(query, c.sort_query, &c.ignore_params);
            self.store
                .remove_url(s, &url_key(req.scheme, req.authority, path, &q))
        };
        let (status, n, outcome) = match result {
            Ok(r) => (200, r.removed, "purged"),
            Err(_) => (503, 0, "purge-failed"),
        };
        RequestAction::Respond {
            reply: Reply::Response {
                status,
                headers: {
                    let mut h = status_hdr(outcome);
                    h.push(("content-type".into(), "application/json".into()));
                    h.push(("cache-control".into(), "no-store".into()));
                    h
                },
                body: format!("{{\"purged\":{n},\"status\":\"{outcome}\"}}").into_bytes(),
            },
            decision: Decision::allow()
                .with("cache_status", outcome)
                .with("purged", n),
            events: vec![Event::Purged(n)],
            refresh: None,
        }
    }

    /// The response phase: `status` and `headers` (lower-case names) from the upstream.
    pub fn on_response<S: SharedData>(
        &self,
        s: &mut S,
        p: &Pending,
        status: u16,
        headers: &[(String, String)],
        now: u64,
    ) -> ResponseAction {
        let pass =
            |fwd: &'static str, detail: Option<&str>, events: Vec<Event>| ResponseAction::Pass {
                cache_status: self.status(
                    &Handling::Forward {
                        fwd,
                        fwd_status: None,
                        stored: false,
                        ttl: None,
                    },
                    p.key_shown.as_deref(),
                    detail.or(p.detail),
                ),
                decision: Decision::allow().with("cache_status", fwd),
                events,
                capture: None,
            };
        match &p.kind {
            Kind::Pass => pass(p.fwd, None, vec![]),
            Kind::Unsafe {
                scheme,
                authority,
                url_key: target,
            } => {
                if !(200..400).contains(&status) {
                    return pass(p.fwd, None, vec![]);
                }
                let mut removed = 0;
                let mut urls = vec![target.clone()];
                for h in ["location", "content-location"] {
                    if let Some(v) = first(headers, h) {
                        if let Some(u) = same_origin_url(v, scheme, authority, &self.config) {
                            urls.push(u);
                        }
                    }
                }
                for u in urls {
                    if let Ok(r) = self.store.remove_url(s, &u) {
                        removed += r.removed;
                    }
                }
                pass(p.fwd, None, vec![Event::Invalidated(removed)])
            }
            Kind::Lookup(l) => self.on_lookup_response(s, p, l, status, headers, now),
        }
    }

    /// The stored entry `old` updated with the fields of a 304 or HEAD response (RFC 9111 §3.2,
    /// §4.3.5): each field it carries replaces the stored ones of that name, except per-hop fields
    /// and those describing the stored body's bytes.
    fn updated(
        &self,
        l: &Lookup,
        old: &Entry,
        headers: &[(String, String)],
        p: &Pending,
        now: u64,
    ) -> Entry {
        let mut merged = old.clone();
        let conn = connection_named(headers);
        let updates: Headers = headers
            .iter()
            .filter(|(n, _)| {
                !unstored(n, &conn) && !describes_body(n) && (n != "set-cookie" || l.per_user)
            })
            .cloned()
            .collect();
        merged
            .headers
            .retain(|(m, _)| !updates.iter().any(|(n, _)| n == m));
        merged.headers.extend(updates);
        let d = self.policy(&merged.headers).d;
        merged.headers.retain(|(n, _)| !withheld(&d, n));
        merged.request_time = p.request_time;
        merged.response_time = now;
        merged.initial_age = initial_age(
            crate::directives::age(&values(headers, "age")),
            first(headers, "date").and_then(http_date),
            p.request_time,
            now,
        );
        merged
    }

    /// Stores an updated entry unless its new policy forbids it.
    fn restore<S: SharedData>(&self, s: &mut S, l: &Lookup, e: &Entry, now: u64) -> Vec<Event> {
        let d = self.policy(&e.headers).d;
        if d.no_store || (d.private && !l.per_user) {
            // The entry may no longer be kept.
            let _ = self.drop_entry(s, l);
            return vec![];
        }
        match self.store.insert(s, e, now) {
            Ok(r) if r.evicted > 0 => vec![Event::Evicted(r.evicted)],
            Ok(_) => vec![],
            Err(StoreFailure::Contended) => vec![Event::StoreConflict],
            Err(_) => vec![],
        }
    }

    fn on_lookup_response<S: SharedData>(
        &self,
        s: &mut S,
        p: &Pending,
        l: &Lookup,
        status: u16,
        headers: &[(String, String)],
        now: u64,
    ) -> ResponseAction {
        // 304 to our own validators: merge and answer from the refreshed entry.
        if status == 304 && l.revalidating {
            if let Some(old) = &l.stale {
                let merged = self.updated(l, old, headers, p, now);
                // RFC 9111 §4.3.4: only a 304 whose validators select the stored response
                // updates it. One that does not (or whose Content-Type or codings differ) still
                // says our validator matched (RFC 9110 §13.1.2), so the stored response is served
                // as it is; its fields, describing something else, are not taken. One with
                // another Vary is this client's answer, but the entry's secondary key was made
                // from the stored Vary: it is not updated. Nor is a shared entry by an
                // authenticated request's 304 (the user's answer, not everyone's).
                let (serve, stored, detail) = if !selects(old, headers) {
                    (old, false, Some("validators-differ"))
                } else if other_representation(old, headers).is_some() {
                    (old, false, Some("representation-differs"))
                } else if vary_changed(old, headers) {
                    (&merged, false, Some("vary-changed"))
                } else if !self.may_update(l) {
                    (&merged, false, Some("authorization"))
                } else {
                    (&merged, true, p.detail)
                };
                let mut events = vec![Event::Revalidated];
                if stored {
                    events.extend(self.restore(s, l, &merged, now));
                }
                let lifetime = self.lifetime_of(serve, &self.policy(&serve.headers));
                let age = current_age(serve.initial_age, serve.response_time, now);
                let line = self.status(
                    &Handling::Forward {
                        fwd: "stale",
                        fwd_status: Some(304),
                        stored,
                        ttl: Some(lifetime as i64 - age as i64),
                    },
                    p.key_shown.as_deref(),
                    detail,
                );
                let mut reply = self.serve(serve, &l.request_headers, age, l.head, line);
                pass_cookies(&mut reply, headers);
                return ResponseAction::Replace {
                    reply,
                    decision: Decision::allow().with("cache_status", "revalidated"),
                    events,
                };
            }
        }
        // A HEAD sent upstream while a GET entry is stored (RFC 9111 §4.3.5): only the fields
        // it carries count (`head_verdict`). Ones differing from the entry's, or a 404/410, say
        // the entry is outdated, so it is dropped; a validator selecting it updates its fields;
        // without validators it is left alone. An authenticated HEAD does none of it to a
        // shared entry.
        if l.head && matches!(status, 200 | 404 | 410) {
            if let Some(old) = &l.stale {
                if !self.may_update(l) {
                    return self.not_stored(p, "authorization", vec![]);
                }
                let events = match head_verdict(old, status, headers) {
                    HeadVerdict::Update => {
                        let merged = self.updated(l, old, headers, p, now);
                        self.restore(s, l, &merged, now)
                    }
                    HeadVerdict::Outdated => self.drop_entry(s, l),
                    HeadVerdict::Keep => vec![],
                };
                return self.not_stored(p, "head", events);
            }
        }
        // The upstream failed: serve the stale copy where stale-if-error allows it.
        if status >= 500 {
            if let Some(old) = &l.stale {
                let policy = self.policy(&old.headers);
                let lifetime = self.lifetime_of(old, &policy);
                let d = policy.d;
                let age = current_age(old.initial_age, old.response_time, now);
                let staleness = age.saturating_sub(lifetime);
                if !d.forbids_stale() && d.stale_if_error.is_some_and(|n| staleness <= n) {
                    let line = self.status(
                        &Handling::Forward {
                            fwd: "stale",
                            fwd_status: Some(status),
                            stored: false,
                            ttl: Some(lifetime as i64 - age as i64),
                        },
                        p.key_shown.as_deref(),
                        Some("stale-if-error"),
                    );
                    return ResponseAction::Replace {
                        reply: self.serve(old, &l.request_headers, age, l.head, line),
                        decision: Decision::allow().with("cache_status", "stale-if-error"),
                        events: vec![Event::StaleIfError],
                    };
                }
            }
        }
        match self.storable(l, status, headers, now, p.request_time) {
            Ok((entry, lifetime)) => {
                let age = entry.initial_age;
                ResponseAction::Pass {
                    cache_status: self.status(
                        &Handling::Forward {
                            fwd: p.fwd,
                            fwd_status: None,
                            stored: true,
                            ttl: Some(lifetime as i64 - age as i64),
                        },
                        p.key_shown.as_deref(),
                        p.detail,
                    ),
                    decision: Decision::allow()
                        .with("cache_status", p.fwd)
                        .with("stored", true),
                    events: vec![],
                    capture: Some(Box::new(Capture {
                        entry,
                        max_body: self.config.max_object_bytes,
                    })),
                }
            }
            Err(why) => self.not_stored(p, why, vec![Event::NotStorable]),
        }
    }

    /// Drops the entry a lookup found, outdated: on a shared route every variant of the URL; on
    /// a per-user route only the user's own (another user's entry is not theirs to drop).
    fn drop_entry<S: SharedData>(&self, s: &mut S, l: &Lookup) -> Vec<Event> {
        let removed = if l.per_user {
            self.store.remove_primary(s, &l.url_key, &l.primary_key)
        } else {
            self.store.remove_url(s, &l.url_key)
        };
        match removed {
            Ok(r) => vec![Event::Invalidated(r.removed)],
            Err(_) => vec![],
        }
    }

    /// A response forwarded to the client and not stored, with why (`Cache-Status` detail).
    fn not_stored(&self, p: &Pending, why: &'static str, events: Vec<Event>) -> ResponseAction {
        ResponseAction::Pass {
            cache_status: self.status(
                &Handling::Forward {
                    fwd: p.fwd,
                    fwd_status: None,
                    stored: false,
                    ttl: None,
                },
                p.key_shown.as_deref(),
                Some(why),
            ),
            decision: Decision::allow()
                .with("cache_status", p.fwd)
                .with("not_stored", why),
            events,
            capture: None,
        }
    }

    /// Whether this request's response may update or invalidate the stored entry it found:
    /// always on a per-user route (the entry is the user's own), on a shared entry only when the
    /// request is not authenticated (RFC 9111 §3.5: what a user was told is not everyone's).
    fn may_update(&self, l: &Lookup) -> bool {
        l.per_user || !l.authenticated
    }

    /// Whether a response may be stored (RFC 9111 §3), and the entry (without body) if so.
    fn storable(
        &self,
        l: &Lookup,
        status: u16,
        headers: &[(String, String)],
        now: u64,
        request_time: u64,
    ) -> Result<(Entry, u64), &'static str> {
        if !l.may_store {
            return Err("request-no-store");
        }
        if l.head {
            return Err("head");
        }
        // Interim (1xx) responses are never stored: `storable_status` has none.
        if !storable_status(status) {
            return Err("status");
        }
        let Policy { d, targeted } = self.policy(headers);
        // `must-understand` with a status whose caching rules this cache knows overrides
        // `no-store` (RFC 9111 §5.2.2.3); with any other status it was refused above.
        if d.no_store && !d.must_understand {
            return Err("no-store");
        }
        // On a per-user route the key holds the verified identity, so an entry can only ever be
        // served to the user it was fetched for: it acts as that user's private cache, where
        // `private` and Authorization-bearing responses may be stored (RFC 9111 §3, §3.5).
        if d.private && !l.per_user {
            return Err("private");
        }
        // §3.5 on what the request was before auth took credentials out: an identity, or a
        // credential in a configured source, counts as `Authorization`.
        if !l.per_user
            && l.authenticated
            && !(d.public || d.s_maxage.is_some() || d.must_revalidate)
        {
            return Err("authorization");
        }
        if first(headers, "set-cookie").is_some() && !self.config.store_set_cookie {
            return Err("set-cookie");
        }
        // The content codings of the body, outermost last; identity is no coding.
        let codings = merge::codings(&values(headers, "content-encoding"));
        if first(headers, "content-range").is_some() {
            return Err("partial");
        }
        let ctype = first(headers, "content-type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !l
            .content_types
            .iter()
            .any(|t| ctype.starts_with(t.as_str()))
        {
            return Err("content-type");
        }
        if first(headers, "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > self.config.max_object_bytes)
        {
            return Err("too-large");
        }
        let Some(names) = vary_names(&values(headers, "vary")) else {
            return Err("vary-star");
        };
        let date = first(headers, "date").and_then(http_date);
        let lifetime = if d.no_cache {
            Some(0)
        } else {
            freshness::lifetime(
                &d,
                status,
                date,
                if targeted {
                    None
                } else {
                    first(headers, "expires")
                },
                first(headers, "last-modified").and_then(http_date),
                now,
                self.config.heuristic,
            )
        };
        let Some(lifetime) = lifetime else {
            return Err("no-freshness");
        };
        let conn = connection_named(headers);
        let stored: Headers = headers
            .iter()
            // A cookie set for one client is only ever served again to that client: kept on
            // per-user entries, dropped from shared ones (the first client got it upstream).
            .filter(|(n, _)| !unstored(n, &conn) && (n != "set-cookie" || l.per_user))
            .filter(|(n, _)| !withheld(&d, n))
            .cloned()
            .collect();
        let mut vary: Headers = names
            .into_iter()
            .map(|n| {
                let v = normalise_field(&values(&l.request_headers, &n));
                (n, v)
            })
            .collect();
        // An encoded body is a variant of its own, served only to clients that accept it.
        if !codings.is_empty() {
            vary.push((CODING_KEY.to_string(), codings.join(",")));
        }
        let tags: Vec<String> = values(headers, &self.config.tag_header)
            .iter()
            .flat_map(|v| v.split([' ', ',']))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let entry = Entry {
            variant: variant_fingerprint(&l.primary_key, &vary),
            url_key: l.url_key.clone(),
            primary_key: l.primary_key.clone(),
            request_time,
            response_time: now,
            initial_age: initial_age(
                crate::directives::age(&values(headers, "age")),
                date,
                request_time,
                now,
            ),
            status,
            headers: stored,
            vary,
            tags,
            body: Vec::new(),
        };
        Ok((entry, lifetime))
    }

    /// The body is complete: store the entry.
    pub fn finish<S: SharedData>(
        &self,
        s: &mut S,
        capture: Capture,
        body: Vec<u8>,
        now: u64,
    ) -> Vec<Event> {
        if body.len() as u64 > capture.max_body {
            return vec![Event::TooLarge];
        }
        let mut entry = capture.entry;
        entry.body = body;
        match self.store.insert(s, &entry, now) {
            Ok(r) if r.evicted > 0 => vec![Event::Stored, Event::Evicted(r.evicted)],
            Ok(_) => vec![Event::Stored],
            Err(StoreFailure::TooLarge) => vec![Event::TooLarge],
            Err(_) => vec![Event::StoreConflict],
        }
    }
}

/// Whether a field must not be served from storage: named by `private="…"` (not to be stored
/// by a shared cache) or `no-cache="…"` (not to be served without revalidation).
fn withheld(d: &ResponseDirectives, name: &str) -> bool {
    d.private_fields.iter().any(|f| f == name) || d.no_cache_fields.iter().any(|f| f == name)
}

/// The client's reply to a revalidation carries the `Set-Cookie` fields of the 304 it answers
/// (a session rotation or logout is that client's), in place of any stored ones; they are never
/// stored on a shared entry (`updated` keeps them only on per-user ones).
fn pass_cookies(reply: &mut Reply, upstream: &[(String, String)]) {
    let cookies: Headers = upstream
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    if let Reply::Response { headers, .. } = reply {
        headers.retain(|(n, _)| n != "set-cookie");
        headers.extend(cookies);
    }
}

fn is_purge(a: &RequestAction) -> bool {
    matches!(a, RequestAction::Respond { events, .. } if events.iter().any(|e| matches!(e, Event::Purged(_))))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usable {
    Fresh,
    StaleAllowed,
    StaleWhileRevalidate,
    Revalidate,
}

/// `If-None-Match` / `If-Modified-Since` from a stored entry's validators.
fn validators(e: &Entry) -> Headers {
    let mut v = Vec::new();
    if let Some(tag) = e.header("etag") {
        v.push(("if-none-match".to_string(), tag.to_string()));
    }
    if let Some(lm) = e.header("last-modified") {
        v.push(("if-modified-since".to_string(), lm.to_string()));
    }
    v
}

fn connection_named(headers: &[(String, String)]) -> Vec<String> {
    values(headers, "connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect()
}

/// The URL key of a `Location`/`Content-Location` value if it is on the request's origin
/// (RFC 9111 §4.4: other origins must not be invalidated, or one site could flush another's).
fn same_origin_url(value: &str, scheme: &str, authority: &str, c: &Compiled) -> Option<String> {
    let value = value.trim();
    let target = if let Some(rest) = value.strip_prefix("//") {
        let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !auth.eq_ignore_ascii_case(authority) {
            return None;
        }
        path.to_string()
    } else if let Some((s, rest)) = value.split_once("://") {
        if !s.eq_ignore_ascii_case(scheme) {
            return None;
        }
        let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !auth.eq_ignore_ascii_case(authority) {
            return None;
        }
        path.to_string()
    } else if value.starts_with('/') {
        value.to_string()
    } else {
        return None;
    };
    let target = if target.is_empty() {
        "/".to_string()
    } else {
        target
    };
    let (p, q) = split_target(&target);
    Some(url_key(
        scheme,
        authority,
        p,
        &normalise_query(q, c.sort_query, &c.ignore_params),
    ))
}

/// Percent-decoding for purge parameters (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i),
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

mod merge;
#[cfg(test)]
mod tests;
