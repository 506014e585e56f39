//! proxy-wasm adapter: reads configuration, environment, clock, headers and shared data from
//! Envoy, calls the core, applies its verdict, and performs the HTTP calls the core asks for
//! (JWKS, OIDC discovery, revocation list). No policy lives here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use portcullis_common::host::{self, Counter, FilterInfo, HostSharedData};
use portcullis_common::problem::{reason_phrase, Problem};
use portcullis_common::stage;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, Status};

use crate::engine::{Engine, Request, Tally, Verdict, INSTANCE};
use crate::remote::{Fed, Fetch, MAX_BODY_BYTES};
use crate::revocation::{claim_poll, Polled};
use crate::settings::{load, PollSpec};

const INFO: FilterInfo = FilterInfo {
    name: crate::NAME,
    version: env!("CARGO_PKG_VERSION"),
};

/// This filter's root context, for the suite module's dispatcher (`filters/suite`).
pub fn root() -> Box<dyn RootContext> {
    Box::new(AuthRoot::default())
}

#[derive(Clone, Copy)]
struct Metrics {
    allowed: Counter,
    denied: Counter,
    shadow_denied: Counter,
    cache_hits: Counter,
    verifications: Counter,
    jwks_ok: Counter,
    jwks_failed: Counter,
    kid_refetches: Counter,
    revocation_polls_ok: Counter,
    revocation_polls_failed: Counter,
    keys_skipped: Counter,
    discovery_refused: Counter,
    revocation_table_full: Counter,
}

impl Metrics {
    fn define() -> Metrics {
        let c = |what: &str| Counter::define(&format!("portcullis_auth_{what}"));
        Metrics {
            allowed: c("allowed"),
            denied: c("denied"),
            shadow_denied: c("shadow_denied"),
            cache_hits: c("cache_hits"),
            verifications: c("verifications"),
            jwks_ok: c("jwks_fetch_ok"),
            jwks_failed: c("jwks_fetch_failed"),
            kid_refetches: c("unknown_kid_refetches"),
            revocation_polls_ok: c("revocation_poll_ok"),
            revocation_polls_failed: c("revocation_poll_failed"),
            keys_skipped: c("jwks_keys_skipped"),
            discovery_refused: c("discovery_refused"),
            revocation_table_full: c("revocation_table_full"),
        }
    }
}

/// An HTTP call in flight from the root context.
enum Pending {
    Keys { provider: usize, fetch: Fetch },
    Revocations,
}

#[derive(Default)]
struct AuthRoot {
    engine: Option<Rc<RefCell<Engine>>>,
    metrics: Option<Metrics>,
    pending: HashMap<u32, Pending>,
}

fn dispatch(cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, Status> {
    stage::dispatch_http_call(
        cluster,
        vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
        ],
        None,
        Duration::from_millis(timeout_ms),
    )
}

/// The answer to an HTTP call: status (None when there was none) and body.
fn call_response(body_size: usize) -> (Option<u16>, Vec<u8>) {
    let status = host::header(
        proxy_wasm::types::MapType::HttpCallResponseHeaders,
        ":status",
    )
    .and_then(|s| s.parse().ok());
    let body = if body_size > MAX_BODY_BYTES {
        Vec::new()
    } else {
        hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    (status, body)
}

/// Feeds a key-fetch answer into the engine; returns a follow-up fetch (discovery → JWKS).
fn feed_keys(
    engine: &mut Engine,
    metrics: Option<Metrics>,
    provider: usize,
    fetch: &Fetch,
    body_size: usize,
) -> Option<Fetch> {
    let (status, body) = call_response(body_size);
    let issuer = engine
        .policy
        .providers
        .get(provider)
        .map(|p| p.issuer.clone())
        .unwrap_or_default();
    let name = engine
        .policy
        .providers
        .get(provider)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let state = engine.remote.get_mut(provider)?.as_mut()?;
    match state.feed(fetch, status, &body, &issuer, host::now_secs()) {
        Fed::Keys(n, skipped) => {
            if let Some(m) = metrics {
                m.jwks_ok.inc();
            }
            log::info!("auth: provider {name}: loaded {n} keys from {}", fetch.path);
            for s in skipped {
                if let Some(m) = metrics {
                    m.keys_skipped.inc();
                }
                log::warn!("auth: provider {name}: skipped {s}");
            }
            None
        }
        Fed::Next(next) => Some(next),
        Fed::Refused(why) => {
            if let Some(m) = metrics {
                m.discovery_refused.inc();
            }
            let kept = if state.keys.is_some() {
                "keeping the last good keys"
            } else {
                "no keys yet: failing closed"
            };
            log::warn!("auth: provider {name}: discovery refused: {why}; {kept}");
            None
        }
        Fed::Failed(why) => {
            if let Some(m) = metrics {
                m.jwks_failed.inc();
            }
            let kept = if state.keys.is_some() {
                "keeping the last good keys"
            } else {
                "no keys yet: failing closed"
            };
            log::warn!(
                "auth: provider {name}: fetching {} failed: {why}; {kept}",
                fetch.path
            );
            None
        }
    }
}

/// Revocations refused for lack of room: never silent.
fn report_full(metrics: Option<Metrics>, refused: usize) {
    if refused == 0 {
        return;
    }
    if let Some(m) = metrics {
        for _ in 0..refused {
            m.revocation_table_full.inc();
        }
    }
    log::error!(
        "auth: revocation table full: {refused} revocations could not be stored (none was \
         evicted); providers with revocation_table_full: fail_closed refuse tokens until the \
         list fits; raise revocation.slots or revocation.ways"
    );
}

impl AuthRoot {
    fn start_key_fetch(&mut self, provider: usize, fetch: Fetch) {
        let Some(engine) = &self.engine else { return };
        let mut engine = engine.borrow_mut();
        let Some(Some(state)) = engine.remote.get_mut(provider) else {
            return;
        };
        let timeout = state.spec.timeout_ms;
        match dispatch(&fetch.cluster, &fetch.authority, &fetch.path, timeout) {
            Ok(token) => {
                self.pending
                    .insert(token, Pending::Keys { provider, fetch });
            }
            Err(e) => {
                state.dispatch_failed(host::now_secs());
                log::warn!("auth: cannot call cluster {}: {e:?}", fetch.cluster);
            }
        }
    }

    fn start_poll(&mut self, poll: &PollSpec) {
        match dispatch(&poll.cluster, &poll.authority, &poll.path, poll.timeout_ms) {
            Ok(token) => {
                self.pending.insert(token, Pending::Revocations);
            }
            Err(e) => log::warn!("auth: cannot call cluster {}: {e:?}", poll.cluster),
        }
    }
}

impl Context for AuthRoot {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        let Some(pending) = self.pending.remove(&token_id) else {
            return;
        };
        let Some(engine) = self.engine.clone() else {
            return;
        };
        match pending {
            Pending::Keys { provider, fetch } => {
                let next = feed_keys(
                    &mut engine.borrow_mut(),
                    self.metrics,
                    provider,
                    &fetch,
                    body_size,
                );
                if let Some(next) = next {
                    self.start_key_fetch(provider, next);
                }
            }
            Pending::Revocations => {
                let (status, body) = call_response(body_size);
                let engine = engine.borrow();
                let p = &engine.policy;
                let max = p.poll.as_ref().map_or(0, |s| s.max_entries);
                let polled = match status {
                    Some(200) => p.revocation.apply_polled(
                        &mut HostSharedData,
                        &body,
                        max,
                        p.revocation_ttl,
                        host::now_secs(),
                    ),
                    Some(s) => {
                        if let Some(m) = self.metrics {
                            m.revocation_polls_failed.inc();
                        }
                        log::warn!("auth: revocation list poll failed: HTTP {s}");
                        return;
                    }
                    None => {
                        if let Some(m) = self.metrics {
                            m.revocation_polls_failed.inc();
                        }
                        log::warn!("auth: revocation list poll failed: no response");
                        return;
                    }
                };
                match polled {
                    Polled::Applied(done) => {
                        if let Some(m) = self.metrics {
                            m.revocation_polls_ok.inc();
                        }
                        report_full(self.metrics, done.full);
                        if done.failed > 0 {
                            if let Some(m) = self.metrics {
                                m.revocation_polls_failed.inc();
                            }
                            log::error!(
                                "auth: revocation list: {} entries could not be applied \
                                 (malformed or store error); providers with \
                                 revocation_table_full: fail_closed refuse tokens until a list \
                                 applies entirely",
                                done.failed
                            );
                        }
                        log::info!(
                            "auth: revocation list: {} applied, {} failed, {} refused (table full)",
                            done.applied,
                            done.failed,
                            done.full
                        );
                    }
                    Polled::Unusable(e) => {
                        if let Some(m) = self.metrics {
                            m.revocation_polls_failed.inc();
                        }
                        if let Some(m) = self.metrics {
                            m.revocation_table_full.inc();
                        }
                        log::error!(
                            "auth: revocation list unusable ({e}); providers with \
                             revocation_table_full: fail_closed refuse tokens until a usable \
                             list is polled"
                        );
                    }
                }
            }
        }
    }
}

impl RootContext for AuthRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log::info!("portcullis {} {} started", INFO.name, INFO.version);
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = stage::plugin_configuration();
        let env = |name: &str| std::env::var_os(name).map(|v| v.into_encoded_bytes());
        let slot_key = match host::slot_hash_key() {
            Ok(key) => key,
            Err(e) => {
                log::error!("{}: {e:?}", INFO.name);
                return false;
            }
        };
        let policy = match load(&raw, &env, slot_key) {
            Ok(p) => p,
            Err(e) => {
                log::error!("{}: {}", INFO.name, e);
                return false;
            }
        };
        let metrics = Metrics::define();
        let done = policy.revocation.apply(
            &mut HostSharedData,
            &policy.revocation_entries,
            policy.revocation_ttl,
            host::now_secs(),
            false,
        );
        if done.failed > 0 {
            log::warn!(
                "auth: {} configured revocations could not be stored",
                done.failed
            );
        }
        report_full(Some(metrics), done.full);
        for note in &policy.skipped_keys {
            metrics.keys_skipped.inc();
            log::warn!("auth: provider {note}; skipped");
        }
        log::info!(
            "auth: {} providers, {} API keys, {} configured revocations, mode {:?}",
            policy.providers.len(),
            policy.api_keys.len(),
            done.applied,
            policy.mode
        );
        self.engine = Some(Rc::new(RefCell::new(Engine::new(policy))));
        self.metrics = Some(metrics);
        host::set_gauge("portcullis_auth_config_loaded", 1);
        stage::set_tick_period(Duration::from_secs(1));
        true
    }

    fn on_tick(&mut self) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        let t = host::now_secs();
        let due: Vec<(usize, Fetch)> = engine
            .borrow_mut()
            .remote
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.as_mut().and_then(|r| r.due(t)).map(|f| (i, f)))
            .collect();
        for (provider, fetch) in due {
            self.start_key_fetch(provider, fetch);
        }
        let poll = engine.borrow().policy.poll.clone();
        if let Some(poll) = poll {
            if claim_poll(&mut HostSharedData, t, poll.interval_secs) {
                self.start_poll(&poll);
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthHttp {
            engine: self.engine.clone(),
            metrics: self.metrics,
            waiting: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthHttp {
    engine: Option<Rc<RefCell<Engine>>>,
    metrics: Option<Metrics>,
    /// A key fetch this request waits for: (call token, provider, fetch).
    waiting: Option<(u32, usize, Fetch)>,
}

impl AuthHttp {
    /// Decides and applies; returns whether the request may continue now.
    fn run(&mut self, may_fetch: bool) -> Action {
        let Some(engine) = self.engine.clone() else {
            // No configuration: fail closed.
            host::send_problem(
                &problem(
                    503,
                    "auth_not_configured",
                    "the auth filter has no configuration",
                ),
                &[],
            );
            return Action::Pause;
        };
        let headers = host::headers(MapType::HttpRequestHeaders);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let req = Request {
            method: get(":method"),
            authority: get(":authority"),
            path: get(":path"),
            headers: &headers,
        };
        let mut tally = Tally::default();
        let verdict = engine.borrow_mut().decide(
            &req,
            host::now_secs(),
            &HostSharedData,
            may_fetch,
            &mut tally,
        );
        if let Some(m) = self.metrics {
            if tally.cache_hit {
                m.cache_hits.inc();
            }
            if tally.verified {
                m.verifications.inc();
            }
        }
        match verdict {
            Verdict::Pass {
                identity,
                remove_headers,
                set_headers,
                new_path,
                decision,
            } => {
                // A host call only for headers the request has (usually none of the identity
                // headers the core always lists).
                for name in &remove_headers {
                    if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        self.set_http_request_header(name, None);
                    }
                }
                for (name, value) in &set_headers {
                    self.set_http_request_header(name, Some(value));
                }
                if let Some(path) = &new_path {
                    self.set_http_request_header(":path", Some(path));
                }
                if let Some(id) = &identity {
                    host::publish_identity(id);
                }
                if let Some(m) = self.metrics {
                    if decision.outcome == portcullis_common::decision::Outcome::ShadowDeny {
                        m.shadow_denied.inc();
                        log::info!(
                            "auth: {} shadow-deny {}",
                            host::request_id().unwrap_or_default(),
                            decision.reason.as_deref().unwrap_or_default()
                        );
                    } else {
                        m.allowed.inc();
                    }
                }
                host::publish_decision(INSTANCE, &decision);
                Action::Continue
            }
            Verdict::Deny {
                status,
                reason,
                detail,
                www_authenticate,
                decision,
            } => {
                if let Some(m) = self.metrics {
                    m.denied.inc();
                }
                host::publish_decision(INSTANCE, &decision);
                let request_id = host::request_id();
                log::info!(
                    "auth: {} deny {status} {reason}",
                    request_id.as_deref().unwrap_or_default()
                );
                let p = Problem {
                    status,
                    title: reason_phrase(status),
                    detail: &detail,
                    reason,
                    request_id: request_id.as_deref(),
                };
                let extra: Vec<(&str, &str)> = www_authenticate
                    .as_deref()
                    .map(|w| ("www-authenticate", w))
                    .into_iter()
                    .collect();
                host::send_problem(&p, &extra);
                Action::Pause
            }
            Verdict::FetchKeys { provider, fetch } => {
                let spec = engine
                    .borrow()
                    .remote
                    .get(provider)
                    .and_then(|r| r.as_ref())
                    .map(|r| r.spec.clone());
                let Some(spec) = spec else {
                    return self.run(false);
                };
                if let Some(m) = self.metrics {
                    m.kid_refetches.inc();
                }
                match dispatch(
                    &fetch.cluster,
                    &fetch.authority,
                    &fetch.path,
                    spec.timeout_ms,
                ) {
                    Ok(token) => {
                        self.waiting = Some((token, provider, fetch));
                        Action::Pause
                    }
                    Err(_) => {
                        if let Some(Some(state)) = engine.borrow_mut().remote.get_mut(provider) {
                            state.dispatch_failed(host::now_secs());
                        }
                        self.run(false)
                    }
                }
            }
        }
    }
}

fn problem<'a>(status: u16, reason: &'a str, detail: &'a str) -> Problem<'a> {
    Problem {
        status,
        title: reason_phrase(status),
        detail,
        reason,
        request_id: None,
    }
}

impl Context for AuthHttp {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, body_size: usize, _: usize) {
        let Some((token, provider, fetch)) = self.waiting.take() else {
            return;
        };
        if token != token_id {
            return;
        }
        if let Some(engine) = self.engine.clone() {
            let next = feed_keys(
                &mut engine.borrow_mut(),
                self.metrics,
                provider,
                &fetch,
                body_size,
            );
            if let Some(next) = next {
                // Discovery resolved: fetch the JWKS it names, still for this request.
                let spec = engine
                    .borrow()
                    .remote
                    .get(provider)
                    .and_then(|r| r.as_ref())
                    .map(|r| r.spec.clone());
                if let Some(spec) = spec {
                    if let Ok(t) =
                        dispatch(&next.cluster, &next.authority, &next.path, spec.timeout_ms)
                    {
                        self.waiting = Some((t, provider, next));
                        return;
                    }
                }
            }
        }
        if let Action::Continue = self.run(false) {
            stage::resume_request();
        }
    }
}

impl HttpContext for AuthHttp {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.run(true)
    }
}
