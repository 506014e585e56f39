//! proxy-wasm entry point: reads the request from the host in bulk, calls the core, applies its
//! outcome. No policy here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use portcullis_common::host::{self, Counter, FilterInfo};
use portcullis_common::problem::{reason_phrase, Problem};
use portcullis_common::stage;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

use crate::config::{self, Compiled};
use crate::engine::{self, Head, Outcome, Pending, Step, Verdict};

const INFO: FilterInfo = FilterInfo {
    name: crate::NAME,
    version: env!("CARGO_PKG_VERSION"),
};

/// This filter's root context, for the suite module's dispatcher (`filters/suite`).
pub fn root() -> Box<dyn RootContext> {
    Box::new(Root { state: None })
}

#[derive(Clone, Copy)]
struct Metrics {
    requests: Counter,
    allowed: Counter,
    blocked: Counter,
    would_block: Counter,
    bodies: Counter,
}

struct State {
    compiled: Compiled,
    metrics: Metrics,
    /// Streams whose headers are held for their body: context id → when the wait ends (ms), or
    /// [`REFUSED`] once the tick has refused the stream, and the request id. Shared by the root
    /// (which ticks) and the streams.
    waiting: RefCell<BTreeMap<u32, (u64, String)>>,
}

/// A `waiting` entry the tick has already refused: a late body callback must not act again.
const REFUSED: u64 = u64::MAX;

struct Root {
    state: Option<Rc<State>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("portcullis {} {} started", INFO.name, INFO.version);
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = stage::plugin_configuration();
        let compiled = match config::load(&raw) {
            Ok(c) => c,
            Err(e) => {
                log::error!("{}: {}", INFO.name, e);
                return false;
            }
        };
        let m = |what: &str| Counter::define(&format!("portcullis_sanitizer_{what}"));
        let metrics = Metrics {
            requests: m("requests"),
            allowed: m("allowed"),
            blocked: m("blocked"),
            would_block: m("would_block"),
            bodies: m("bodies_inspected"),
        };
        host::set_gauge("portcullis_sanitizer_config_loaded", 1);
        if compiled.hold_headers {
            // The watch for held headers whose body never comes (see `on_tick`).
            stage::set_tick_period(Duration::from_millis((compiled.body_wait_ms / 4).max(100)));
        }
        self.state = Some(Rc::new(State {
            compiled,
            metrics,
            waiting: RefCell::new(BTreeMap::new()),
        }));
        true
    }

    /// Envoy turns a filter's `StopIteration` on the request headers into
    /// `StopAllIterationAndWatermark` unless the filter is configured with
    /// `allow_on_headers_stop_iteration: true`, and then never hands the body to the filter: the
    /// request would wait until a timeout. A stream whose held headers got no body callback in
    /// `body_wait_ms` is taken to be that case and refused (fail closed), with a log line that
    /// names the fix.
    fn on_tick(&mut self) {
        let Some(state) = &self.state else {
            return;
        };
        let now = host::now_ms();
        let expired: Vec<(u32, String)> = state
            .waiting
            .borrow()
            .iter()
            .filter(|&(_, (due, _))| *due != REFUSED && *due <= now)
            .map(|(&id, (_, rid))| (id, rid.clone()))
            .collect();
        for (id, rid) in expired {
            state
                .waiting
                .borrow_mut()
                .insert(id, (REFUSED, String::new()));
            if hostcalls::set_effective_context(id).is_err() {
                continue;
            }
            state.metrics.blocked.inc();
            Counter::define("portcullis_sanitizer_blocked_body_never_delivered").inc();
            log::error!(
                "{rid} sanitizer: request headers held {} ms and the host delivered no body: \
                 Envoy withholds the body from a filter that pauses the headers unless the wasm \
                 filter sets `allow_on_headers_stop_iteration: true`; set it, or set \
                 `hold_headers: false` (Istio's WasmPlugin cannot set it). Refusing the request.",
                state.compiled.body_wait_ms
            );
            let problem = Problem {
                status: 500,
                title: reason_phrase(500),
                detail: "the request body could not be inspected",
                reason: "body_never_delivered",
                request_id: Some(&rid),
            };
            host::send_problem(&problem, &[]);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        Some(Box::new(Request {
            state,
            id: context_id,
            request_id: String::new(),
            headers_sent: false,
            pending: None,
            buffered: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    state: Rc<State>,
    id: u32,
    /// `x-request-id`, read with the headers: once they have gone upstream (`hold_headers:
    /// false`) Envoy no longer lets the filter read them.
    request_id: String,
    /// The headers went on before the body's verdict.
    headers_sent: bool,
    pending: Option<Pending>,
    /// Body bytes Envoy has buffered so far.
    buffered: usize,
}

impl Context for Request {
    fn on_done(&mut self) -> bool {
        self.state.waiting.borrow_mut().remove(&self.id);
        true
    }
}

impl Request {
    /// The body (or trailers) arrived: the stream no longer waits. `false` if the tick already
    /// refused it.
    fn body_arrived(&self) -> bool {
        !matches!(
            self.state.waiting.borrow_mut().remove(&self.id),
            Some((REFUSED, _))
        )
    }

    /// Applies an outcome; returns whether the request goes on.
    fn apply(&self, outcome: &Outcome) -> bool {
        let m = self.state.metrics;
        host::publish_decision(crate::NAME, &outcome.decision());
        if outcome.verdict == Verdict::Allow {
            m.allowed.inc();
            return true;
        }
        let rid = self.request_id.as_str();
        let what = outcome
            .top
            .as_ref()
            .map(|h| {
                format!(
                    " category={} rule={} field={}",
                    h.rule.category.name(),
                    h.rule.id,
                    h.field
                )
            })
            .unwrap_or_default();
        match outcome.verdict {
            Verdict::Allow => true,
            Verdict::Deny => {
                m.blocked.inc();
                Counter::define(&format!("portcullis_sanitizer_blocked_{}", outcome.reason)).inc();
                log::warn!(
                    "{rid} sanitizer: blocked {} reason={} score={}{what} route={}",
                    outcome.status,
                    outcome.reason,
                    outcome.score,
                    outcome.route
                );
                let problem = Problem {
                    status: outcome.status,
                    title: reason_phrase(outcome.status),
                    detail: &outcome.detail,
                    reason: &outcome.reason,
                    request_id: Some(rid),
                };
                host::send_problem(&problem, &[]);
                false
            }
            Verdict::WouldDeny => {
                m.would_block.inc();
                log::warn!(
                    "{rid} sanitizer: would block {} reason={} score={}{what} route={}",
                    outcome.status,
                    outcome.reason,
                    outcome.score,
                    outcome.route
                );
                // Headers already upstream cannot carry the signal any more.
                if !self.headers_sent {
                    host::signal_would_deny(crate::NAME, &outcome.reason);
                }
                true
            }
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.state.metrics.requests.inc();
        let headers = host::headers(MapType::HttpRequestHeaders);
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (method, authority, path) = (pseudo(":method"), pseudo(":authority"), pseudo(":path"));
        self.request_id = pseudo("x-request-id");
        let head = Head {
            method: &method,
            authority: &authority,
            path: &path,
            headers: &headers,
            has_body: !end_of_stream,
        };
        match engine::inspect_head(&self.state.compiled, &head) {
            Step::Done(outcome) => {
                if self.apply(&outcome) {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
            Step::NeedBody(pending) => {
                self.pending = Some(pending);
                if !self.state.compiled.hold_headers {
                    // The headers go on; the body is held until inspected, and a refusal is a
                    // local reply that resets the upstream stream before it sees the body.
                    self.headers_sent = true;
                    return Action::Continue;
                }
                // Hold the headers too, so a shadow-mode header can still be added; watch for a
                // host that never delivers the body (see `Root::on_tick`).
                let due = host::now_ms().saturating_add(self.state.compiled.body_wait_ms);
                self.state
                    .waiting
                    .borrow_mut()
                    .insert(self.id, (due, self.request_id.clone()));
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.body_arrived() {
            return Action::Pause;
        }
        let Some(pending) = self.pending.as_ref() else {
            return Action::Continue;
        };
        if body_size > pending.limit {
            let outcome = engine::body_over_limit(&self.state.compiled, pending);
            self.pending = None;
            // In shadow mode the request goes on uninspected, flagged.
            return if self.apply(&outcome) {
                Action::Continue
            } else {
                Action::Pause
            };
        }
        self.buffered = body_size;
        if !end_of_stream {
            // Pause from a body callback is StopIterationAndBuffer: Envoy keeps buffering.
            return Action::Pause;
        }
        self.finish_body()
    }

    /// A request with trailers ends there, not with an end-of-stream body callback.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if !self.body_arrived() {
            return Action::Pause;
        }
        self.finish_body()
    }
}

impl Request {
    /// Inspects the buffered body and applies the outcome.
    fn finish_body(&mut self) -> Action {
        let Some(pending) = self.pending.take() else {
            return Action::Continue;
        };
        // Not the SDK's `get_http_request_body`, which panics on an unexpected host status: a
        // body that cannot be read is inspected as empty only if it is; an error refuses.
        let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, self.buffered) {
            Ok(b) => b.unwrap_or_default(),
            Err(_) => {
                log::error!(
                    "{} sanitizer: the request body could not be read",
                    self.request_id
                );
                let problem = Problem {
                    status: 500,
                    title: reason_phrase(500),
                    detail: "the request body could not be inspected",
                    reason: "body_unreadable",
                    request_id: Some(&self.request_id),
                };
                host::send_problem(&problem, &[]);
                return Action::Pause;
            }
        };
        self.state.metrics.bodies.inc();
        let outcome = engine::inspect_body(&self.state.compiled, &pending, &body);
        if self.apply(&outcome) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}
