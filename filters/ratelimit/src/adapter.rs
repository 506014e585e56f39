//! proxy-wasm adapter: reads the request in one pass, asks the core, carries out the verdict.
//! No policy lives here. One VM per worker serves both instances (`ratelimit-client`,
//! `ratelimit-identity`); each root context reads its instance name (its `root_id`, or its stage
//! name in a chain), and the core keeps their shared-data keys and metric names apart by it.

use std::rc::Rc;

use portcullis_common::decision::Decision;
use portcullis_common::host::{self, Counter, HostSharedData};
use portcullis_common::problem::Problem;
use portcullis_common::stage;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::config::Policy;
use crate::key::RequestView;
use crate::limiter::{self, Limiter, Verdict};

/// This filter's root context, for the suite module's dispatcher (`filters/suite`).
pub fn root() -> Box<dyn RootContext> {
    Box::new(Root { ready: None })
}

/// Header bytes as text. The SDK's `String` getters panic (killing the VM) on bytes that are not
/// UTF-8, which HTTP allows in field values (obs-text); such a value becomes a hex string, so
/// distinct values stay distinct keys.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        let hex: String = e.into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!("\u{0}hex:{hex}")
    })
}

/// Everything compiled once per configuration and shared by the instance's requests.
struct Ready {
    limiter: Limiter,
    counters: Vec<Counter>,
    wanted_headers: Vec<String>,
    /// What the policy needs read per request; anything else is never asked of the host.
    needs_identity: bool,
    needs_request_line: bool,
    needs_client_ip: bool,
    strikes_on_response: bool,
}

impl Ready {
    fn count(&self, events: &[limiter::Event]) {
        for e in events {
            if let Some(c) = self.counters.get(self.limiter.metric_index(*e)) {
                c.inc();
            }
        }
    }
}

struct Root {
    ready: Option<Rc<Ready>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!(
            "portcullis {} {} started",
            crate::NAME,
            env!("CARGO_PKG_VERSION")
        );
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let instance = stage::instance_name(crate::NAME);
        let raw = stage::plugin_configuration();
        let policy = match Policy::parse(&raw) {
            Ok(p) => p,
            Err(e) => {
                log::error!("{}: {} (instance {instance})", crate::NAME, e);
                return false;
            }
        };
        let key = match host::slot_hash_key() {
            Ok(key) => key,
            Err(e) => {
                log::error!("{}: {instance}: {e:?}", crate::NAME);
                return false;
            }
        };
        let limiter = Limiter::new(&instance, policy, key);
        if let Err(e) = limiter.prepare(&mut HostSharedData) {
            log::error!(
                "{}: {instance}: cannot create the shared-data tables: {e:?}",
                crate::NAME
            );
            return false;
        }
        let counters = limiter
            .metric_names()
            .iter()
            .map(|n| Counter::define(n))
            .collect();
        let ready = Ready {
            wanted_headers: limiter.policy.wanted_headers(),
            needs_identity: limiter.policy.needs_identity(),
            needs_request_line: limiter.policy.needs_request_line(),
            needs_client_ip: limiter.policy.needs_client_ip(),
            strikes_on_response: limiter.policy.strikes_on_response(),
            limiter,
            counters,
        };
        host::set_gauge(&format!("portcullis_{}_config_loaded", crate::NAME), 1);
        log::info!(
            "{}: {instance}: {} limit(s), mode {:?}",
            crate::NAME,
            ready.limiter.policy.limits.len(),
            ready.limiter.policy.mode
        );
        self.ready = Some(Rc::new(ready));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let ready = self.ready.clone()?;
        Some(Box::new(Stream {
            ready,
            penalty_key: None,
            response_headers: Vec::new(),
            replied: false,
            request_id: None,
            decision: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    ready: Rc<Ready>,
    penalty_key: Option<Vec<u8>>,
    response_headers: Vec<(String, String)>,
    /// We answered locally: our own reply earns no strike and gets no headers twice.
    replied: bool,
    /// Read with the request headers: in the response phase the SDK panics on reading them.
    request_id: Option<String>,
    /// What we published for the request, to publish again if its response starts a ban.
    decision: Option<Decision>,
}

impl Context for Stream {}

impl Stream {
    fn apply(&mut self, verdict: Verdict) -> Action {
        let ready = Rc::clone(&self.ready);
        let instance = ready.limiter.instance.as_str();
        ready.count(&verdict.events);
        host::publish_decision(instance, &verdict.decision);
        let allowed = verdict.action == limiter::Action::Allow;
        // The request id is only for logs: read when this request is refused (or would be), or
        // when its response can still start a ban (request headers are gone by then).
        let request_id = if !allowed || ready.strikes_on_response {
            self.request_header("x-request-id")
        } else {
            None
        };
        if ready.strikes_on_response {
            self.decision = Some(verdict.decision.clone());
            self.penalty_key = verdict.penalty_key.clone();
            self.request_id = request_id.clone();
        }
        let rid = request_id.as_deref().unwrap_or("-");
        match &verdict.action {
            limiter::Action::Allow => {
                self.response_headers = verdict.response_headers;
                Action::Continue
            }
            limiter::Action::Shadow(d) => {
                host::signal_would_deny(instance, d.reason);
                log::info!("{rid} {instance}: shadow {} {}", d.status, d.reason);
                Action::Continue
            }
            limiter::Action::Deny(d) => {
                log::info!("{rid} {instance}: {} {}: {}", d.status, d.reason, d.detail);
                if verdict.decision.security_event {
                    log::warn!("{rid} {instance}: ban started");
                }
                self.replied = true;
                let problem = Problem {
                    status: d.status,
                    title: d.title,
                    detail: &d.detail,
                    reason: d.reason,
                    request_id: request_id.as_deref(),
                };
                let headers: Vec<(&str, &str)> = d
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                host::send_problem(&problem, &headers);
                Action::Pause
            }
        }
    }
}

impl Stream {
    fn request_header(&self, name: &str) -> Option<String> {
        self.get_http_request_header_bytes(name).map(text)
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let ready = Rc::clone(&self.ready);
        let header = |name: &str| {
            if ready.needs_request_line {
                self.request_header(name).unwrap_or_default()
            } else {
                String::new()
            }
        };
        let (method, authority, path) = (header(":method"), header(":authority"), header(":path"));
        let headers: Vec<(String, String)> = ready
            .wanted_headers
            .iter()
            .filter_map(|n| self.request_header(n).map(|v| (n.clone(), v)))
            .collect();
        let identity = if ready.needs_identity {
            host::read_identity()
        } else {
            None
        };
        let view = RequestView {
            method: &method,
            authority: &authority,
            path: &path,
            client_ip: if ready.needs_client_ip {
                host::client_ip()
            } else {
                None
            },
            identity: identity.as_ref(),
            headers: &headers,
        };
        let verdict = ready
            .limiter
            .check(&view, &mut HostSharedData, host::now_ms());
        self.apply(verdict)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue;
        }
        let ready = Rc::clone(&self.ready);
        // The status is read only where it can be a strike.
        let status = if ready.strikes_on_response {
            self.get_http_response_header_bytes(":status")
                .and_then(|s| text(s).parse::<u16>().ok())
        } else {
            None
        };
        if let Some(status) = status {
            let (events, ban) = ready.limiter.on_response(
                status,
                self.penalty_key.as_deref(),
                &mut HostSharedData,
                host::now_ms(),
            );
            ready.count(&events);
            if let Some(until) = ban {
                let rid = self.request_id.as_deref().unwrap_or("-");
                log::warn!(
                    "{rid} {}: ban started after {status} responses",
                    ready.limiter.instance
                );
                if let Some(decision) = self.decision.take() {
                    let decision = limiter::with_ban_started(decision, until);
                    host::publish_decision(&ready.limiter.instance, &decision);
                }
            }
        }
        for (name, value) in std::mem::take(&mut self.response_headers) {
            if name.starts_with("ratelimit") {
                // Structured-field Lists may be split over several field lines (RFC 9651 §3.1):
                // both instances (and the upstream) can each add their own items.
                self.add_http_response_header(&name, &value);
            } else if self.get_http_response_header_bytes(&name).is_none() {
                // Legacy single values: the first (innermost) writer wins.
                self.set_http_response_header(&name, Some(&value));
            }
        }
        Action::Continue
    }
}
