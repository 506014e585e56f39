//! proxy-wasm entry point: reads the request from the host in bulk, calls the core, applies its
//! outcome. No policy here.

use std::rc::Rc;

use portcullis_common::host::{self, Counter, FilterInfo};
use portcullis_common::problem::{reason_phrase, Problem};
use portcullis_common::stage;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

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
}

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
        self.state = Some(Rc::new(State { compiled, metrics }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        Some(Box::new(Request {
            state,
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
    pending: Option<Pending>,
    /// Body bytes Envoy has buffered so far.
    buffered: usize,
}

impl Context for Request {}

impl Request {
    /// Applies an outcome; returns whether the request goes on.
    fn apply(&self, outcome: &Outcome) -> bool {
        let m = self.state.metrics;
        host::publish_decision(crate::NAME, &outcome.decision());
        if outcome.verdict == Verdict::Allow {
            m.allowed.inc();
            return true;
        }
        // Only refusals (and would-be refusals) are logged: the request id is read for them.
        let rid = host::request_id().unwrap_or_default();
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
                    request_id: Some(&rid),
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
                host::signal_would_deny(crate::NAME, &outcome.reason);
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
                // Hold the headers too, so a shadow-mode header can still be added.
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
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
        self.finish_body()
    }
}

impl Request {
    /// Inspects the buffered body and applies the outcome.
    fn finish_body(&mut self) -> Action {
        let Some(pending) = self.pending.take() else {
            return Action::Continue;
        };
        let body = self
            .get_http_request_body(0, self.buffered)
            .unwrap_or_default();
        self.state.metrics.bodies.inc();
        let outcome = engine::inspect_body(&self.state.compiled, &pending, &body);
        if self.apply(&outcome) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}
