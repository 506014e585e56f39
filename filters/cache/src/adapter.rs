//! proxy-wasm entry point: reads headers, identity, clock and shared data from Envoy, asks the
//! engine, applies its answer. No cache policy lives here.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use portcullis_common::host::{self, Counter, HostSharedData};
use portcullis_common::problem::Problem;
use portcullis_common::stage;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

use crate::engine::{
    Capture, Engine, Event, Headers, Pending, Refresh, Reply, Request, RequestAction,
    ResponseAction,
};
use crate::NAME;

/// Background refreshes queued per worker and not yet started; more are dropped (the entry is
/// simply revalidated by a later request).
const MAX_QUEUED_REFRESHES: usize = 64;

thread_local! {
    static REFRESHES: RefCell<Vec<Refresh>> = const { RefCell::new(Vec::new()) };
}

/// This filter's root context, for the suite module's dispatcher (`filters/suite`).
pub fn root() -> Box<dyn RootContext> {
    Box::new(CacheRoot::default())
}

struct Metrics {
    hit: Counter,
    stale_hit: Counter,
    miss: Counter,
    revalidated: Counter,
    stored: Counter,
    not_storable: Counter,
    too_large: Counter,
    evicted: Counter,
    invalidated: Counter,
    purged: Counter,
    purge_denied: Counter,
    only_if_cached_miss: Counter,
    stale_if_error: Counter,
    store_conflict: Counter,
    shadow_hit: Counter,
    bypass: Counter,
    refresh_started: Counter,
    refresh_dropped: Counter,
}

impl Metrics {
    fn define() -> Metrics {
        let c = |what: &str| Counter::define(&format!("portcullis_{NAME}_{what}"));
        Metrics {
            hit: c("hits"),
            stale_hit: c("stale_hits"),
            miss: c("misses"),
            revalidated: c("revalidations"),
            stored: c("stored"),
            not_storable: c("not_storable"),
            too_large: c("too_large"),
            evicted: c("evictions"),
            invalidated: c("invalidations"),
            purged: c("purged"),
            purge_denied: c("purge_denied"),
            only_if_cached_miss: c("only_if_cached_misses"),
            stale_if_error: c("stale_if_error"),
            store_conflict: c("store_conflicts"),
            shadow_hit: c("shadow_hits"),
            bypass: c("bypass"),
            refresh_started: c("refreshes"),
            refresh_dropped: c("refreshes_dropped"),
        }
    }

    fn count(&self, events: &[Event]) {
        for e in events {
            match *e {
                Event::Hit => self.hit.inc(),
                Event::StaleHit => self.stale_hit.inc(),
                Event::Miss => self.miss.inc(),
                Event::Revalidated => self.revalidated.inc(),
                Event::Stored => self.stored.inc(),
                Event::NotStorable => self.not_storable.inc(),
                Event::TooLarge => self.too_large.inc(),
                Event::Evicted(n) => self.evicted.add(u64::from(n)),
                Event::Invalidated(n) => self.invalidated.add(u64::from(n)),
                Event::Purged(n) => self.purged.add(u64::from(n)),
                Event::PurgeDenied => self.purge_denied.inc(),
                Event::OnlyIfCachedMiss => self.only_if_cached_miss.inc(),
                Event::StaleIfError => self.stale_if_error.inc(),
                Event::StoreConflict => self.store_conflict.inc(),
                Event::ShadowHit => self.shadow_hit.inc(),
                Event::Bypass => self.bypass.inc(),
            }
        }
    }
}

struct Shared {
    engine: Engine,
    metrics: Metrics,
}

#[derive(Default)]
struct CacheRoot {
    shared: Option<Rc<Shared>>,
    /// Refreshes in flight: call token -> what to do with the answer.
    in_flight: HashMap<u32, Box<Pending>>,
    /// Paths being refreshed by this worker, so a burst of stale hits starts one refresh.
    refreshing: HashSet<String>,
    paths: HashMap<u32, String>,
}

impl Context for CacheRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let (Some(pending), Some(shared)) = (self.in_flight.remove(&token), self.shared.clone())
        else {
            return;
        };
        if let Some(p) = self.paths.remove(&token) {
            self.refreshing.remove(&p);
        }
        let headers = lower(host::headers(MapType::HttpCallResponseHeaders));
        let status = status_of(&headers);
        if status == 0 {
            // The call failed (timeout, reset): nothing learned; a later request revalidates.
            return;
        }
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let t = host::now_secs();
        let mut data = HostSharedData;
        // A 304 is merged and stored by the engine itself; a 200 is stored here with its body.
        match shared
            .engine
            .on_response(&mut data, &pending, status, &headers, t)
        {
            ResponseAction::Replace { events, .. } => shared.metrics.count(&events),
            ResponseAction::Pass {
                events, capture, ..
            } => {
                shared.metrics.count(&events);
                if let Some(c) = capture {
                    shared
                        .metrics
                        .count(&shared.engine.finish(&mut data, *c, body, t));
                }
            }
        }
    }
}

impl RootContext for CacheRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log::info!("portcullis {NAME} {} started", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = stage::plugin_configuration();
        match crate::config::load(&raw) {
            Ok(config) => {
                let instance = stage::instance_name(NAME);
                let engine = Engine::new(config, &instance);
                host::set_gauge(&format!("portcullis_{NAME}_config_loaded"), 1);
                host::set_gauge(
                    &format!("portcullis_{NAME}_capacity_slots"),
                    engine.store.slots(),
                );
                host::set_gauge(
                    &format!("portcullis_{NAME}_capacity_bytes"),
                    engine.config.max_bytes,
                );
                self.shared = Some(Rc::new(Shared {
                    engine,
                    metrics: Metrics::define(),
                }));
                stage::set_tick_period(Duration::from_millis(250));
                true
            }
            Err(e) => {
                log::error!("{NAME}: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let queued: Vec<Refresh> = REFRESHES.with(|q| std::mem::take(&mut *q.borrow_mut()));
        let cfg = &shared.engine.config;
        for r in queued {
            let path = r
                .headers
                .iter()
                .find(|(n, _)| n == ":path")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if !self.refreshing.insert(path.clone()) {
                continue;
            }
            let headers: Vec<(&str, &str)> = r
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            match stage::dispatch_http_call(
                &cfg.refresh_cluster,
                headers,
                None,
                Duration::from_millis(cfg.refresh_timeout_ms),
            ) {
                Ok(token) => {
                    shared.metrics.refresh_started.inc();
                    self.in_flight.insert(token, r.pending);
                    self.paths.insert(token, path);
                }
                Err(e) => {
                    shared.metrics.refresh_dropped.inc();
                    self.refreshing.remove(&path);
                    log::warn!("{NAME}: background refresh of {path} not started: {e:?}");
                }
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(CacheStream {
            shared,
            pending: None,
            capture: None,
            body: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Header names in lower case (Envoy's already are: lowering in place allocates nothing).
fn lower(mut headers: Vec<(String, String)>) -> Headers {
    for (n, _) in &mut headers {
        n.make_ascii_lowercase();
    }
    headers
}

fn status_of(headers: &Headers) -> u16 {
    headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

struct CacheStream {
    shared: Rc<Shared>,
    pending: Option<Box<Pending>>,
    capture: Option<Box<Capture>>,
    body: Vec<u8>,
}

impl CacheStream {
    fn send(&self, reply: Reply) {
        match reply {
            Reply::Response {
                status,
                headers,
                body,
            } => {
                let hs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                stage::send_response(status, hs, Some(&body));
            }
            Reply::Problem {
                status,
                title,
                detail,
                reason,
                headers,
            } => {
                let id = host::request_id();
                let hs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                host::send_problem(
                    &Problem {
                        status,
                        title,
                        detail: &detail,
                        reason,
                        request_id: id.as_deref(),
                    },
                    &hs,
                );
            }
        }
    }

    fn finish(&mut self) {
        if let Some(c) = self.capture.take() {
            let body = std::mem::take(&mut self.body);
            let events = self
                .shared
                .engine
                .finish(&mut HostSharedData, *c, body, host::now_secs());
            self.shared.metrics.count(&events);
        }
    }
}

impl Context for CacheStream {}

impl HttpContext for CacheStream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let shared = self.shared.clone();
        let pseudo =
            |name: &str| host::header(MapType::HttpRequestHeaders, name).unwrap_or_default();
        let (method, authority, target) =
            (pseudo(":method"), pseudo(":authority"), pseudo(":path"));
        // Most requests are on no cacheable route: the engine forwards them whatever their
        // headers and identity, so neither is read (the identity read parses JSON).
        let action = match shared.engine.pass_through(&method, &authority, &target) {
            Some(fwd) => shared.engine.passed_through(fwd),
            None => {
                let headers = lower(host::headers(MapType::HttpRequestHeaders));
                let identity = host::read_identity();
                let scheme = headers
                    .iter()
                    .find(|(n, _)| n == ":scheme")
                    .map_or("", |(_, v)| v.as_str());
                let req = Request {
                    method: &method,
                    scheme,
                    authority: &authority,
                    target: &target,
                    headers: &headers,
                    identity: identity.as_ref(),
                    now: host::now_secs(),
                };
                shared.engine.on_request(&mut HostSharedData, &req)
            }
        };
        match action {
            RequestAction::Respond {
                reply,
                decision,
                events,
                refresh,
            } => {
                shared.metrics.count(&events);
                if matches!(reply, Reply::Problem { .. })
                    || events.iter().any(|e| matches!(e, Event::Purged(_)))
                {
                    log::info!(
                        "{}: {NAME}: {} {} -> {}",
                        host::request_id().unwrap_or_default(),
                        method,
                        target.split('?').next().unwrap_or(""),
                        decision.reason.as_deref().unwrap_or("purged")
                    );
                }
                host::publish_decision(NAME, &decision);
                if let Some(r) = refresh {
                    REFRESHES.with(|q| {
                        let mut q = q.borrow_mut();
                        if q.len() < MAX_QUEUED_REFRESHES {
                            q.push(r);
                        } else {
                            shared.metrics.refresh_dropped.inc();
                        }
                    });
                }
                self.send(reply);
                Action::Pause
            }
            RequestAction::Forward {
                remove,
                set,
                pending,
                would_deny,
                events,
            } => {
                shared.metrics.count(&events);
                for h in &remove {
                    self.set_http_request_header(h, None);
                }
                for (n, v) in &set {
                    self.set_http_request_header(n, Some(v));
                }
                if let Some(decision) = would_deny {
                    host::signal_would_deny(NAME, decision.reason.as_deref().unwrap_or("deny"));
                    host::publish_decision(NAME, &decision);
                }
                self.pending = Some(pending);
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        let Some(pending) = self.pending.take() else {
            return Action::Continue;
        };
        // A request passed through only gets Cache-Status: its response is not read.
        let (headers, status, t) = if pending.reads_response() {
            let headers = lower(host::headers(MapType::HttpResponseHeaders));
            let status = status_of(&headers);
            (headers, status, host::now_secs())
        } else {
            (Vec::new(), 0, 0)
        };
        // An interim (1xx) response is never cached nor answered for: the final one follows.
        if (100..200).contains(&status) {
            self.pending = Some(pending);
            return Action::Continue;
        }
        let shared = self.shared.clone();
        match shared
            .engine
            .on_response(&mut HostSharedData, &pending, status, &headers, t)
        {
            ResponseAction::Replace {
                reply,
                decision,
                events,
            } => {
                shared.metrics.count(&events);
                host::publish_decision(NAME, &decision);
                self.send(reply);
                Action::Pause
            }
            ResponseAction::Pass {
                cache_status,
                decision,
                events,
                capture,
            } => {
                shared.metrics.count(&events);
                if host::read_decision(NAME).is_none() {
                    host::publish_decision(NAME, &decision);
                }
                self.add_http_response_header("cache-status", &cache_status);
                self.capture = capture;
                if end_of_stream {
                    self.finish();
                }
                Action::Continue
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(max) = self.capture.as_ref().map(|c| c.max_body) else {
            return Action::Continue;
        };
        if body_size > 0 {
            if (self.body.len() + body_size) as u64 > max {
                // Too large: stop collecting, pass the rest through uncached.
                self.capture = None;
                self.body = Vec::new();
                self.shared.metrics.too_large.inc();
                return Action::Continue;
            }
            if let Some(chunk) = self.get_http_response_body(0, body_size) {
                self.body.extend_from_slice(&chunk);
            }
        }
        if end_of_stream {
            self.finish();
        }
        Action::Continue
    }
}
