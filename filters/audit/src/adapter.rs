//! proxy-wasm adapter: reads the request's facts from Envoy when the stream ends, hands them to
//! the core, and writes what it keeps to Envoy's log or the shared queue; on each tick, runs the
//! shipper and POSTs the batch it returns. No policy here.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use portcullis_common::host::{self, set_gauge, Counter, FilterInfo};
use portcullis_common::stage;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

use crate::auditor::{Auditor, Observed};
use crate::chain::{Seal, Sealer};
use crate::config::{AuditConfig, HttpSink, SealConfig, Sink};
use crate::record::{Facts, RecordOutcome};
use crate::ship::{self, CasMismatch, Offer, SharedState, Shipper, Tick};

const INFO: FilterInfo = FilterInfo {
    name: crate::NAME,
    version: env!("CARGO_PKG_VERSION"),
};

/// This filter's root context, for the suite module's dispatcher (`filters/suite`).
pub fn root() -> Box<dyn RootContext> {
    Box::new(Root {
        state: Rc::new(RefCell::new(None)),
        shipper: None,
        http: None,
    })
}

/// Envoy's shared data and the audit queue.
struct Host {
    queue: Option<u32>,
}

impl SharedState for Host {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(v), Some(cas))) => Some((v, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch> {
        hostcalls::set_shared_data(key, Some(value), Some(cas)).map_err(|_| CasMismatch)
    }

    fn enqueue(&self, record: &[u8]) -> bool {
        self.queue
            .is_some_and(|q| hostcalls::enqueue_shared_queue(q, Some(record)).is_ok())
    }

    fn dequeue(&self) -> Option<Vec<u8>> {
        hostcalls::dequeue_shared_queue(self.queue?).ok().flatten()
    }
}

struct Metrics {
    records: Counter,
    sampled_out: Counter,
    excluded: Counter,
    denied: Counter,
    errors: Counter,
    security_events: Counter,
    queued: Counter,
    dropped: Counter,
    shipped: Counter,
    batches: Counter,
    ship_failures: Counter,
}

impl Metrics {
    fn define() -> Metrics {
        let c = |what: &str| Counter::define(&format!("portcullis_audit_{what}"));
        Metrics {
            records: c("records"),
            sampled_out: c("sampled_out"),
            excluded: c("excluded"),
            denied: c("denied"),
            errors: c("errors"),
            security_events: c("security_events"),
            queued: c("queued"),
            dropped: c("dropped"),
            shipped: c("shipped"),
            batches: c("batches"),
            ship_failures: c("ship_failures"),
        }
    }
}

/// What the root context shares with its streams.
struct State {
    auditor: Auditor,
    metrics: Metrics,
    host: Host,
    /// The log sink's chain (one stream per VM).
    log_sealer: Sealer,
    queue_capacity: Option<u64>,
}

struct Root {
    state: Rc<RefCell<Option<State>>>,
    shipper: Option<Shipper>,
    http: Option<HttpSink>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        // A timeout or reset arrives here too, without a :status.
        let ok = host::header(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|s| s.parse::<u16>().ok())
            .is_some_and(|s| (200..300).contains(&s));
        self.finish_post(ok);
    }
}

impl Root {
    /// Runs the shipper and POSTs the batch it returns, if any.
    fn ship(&mut self) {
        let now = host::now_ms();
        let tick = {
            let state = self.state.borrow();
            let (Some(shipper), Some(state)) = (self.shipper.as_mut(), state.as_ref()) else {
                return;
            };
            shipper.tick(&state.host, now)
        };
        let (Tick::Send(batch), Some(sink)) = (tick, self.http.as_ref()) else {
            return;
        };
        let records = batch.records.to_string();
        let headers = vec![
            (":method", "POST"),
            (":path", sink.path.as_str()),
            (":authority", sink.authority.as_str()),
            ("content-type", "application/x-ndjson"),
            ("x-portcullis-audit-records", records.as_str()),
        ];
        let sent = stage::dispatch_http_call(
            &sink.cluster,
            headers,
            Some(&batch.body),
            Duration::from_millis(sink.timeout_ms),
        );
        if let Some(state) = self.state.borrow().as_ref() {
            state.metrics.batches.inc();
        }
        if let Err(e) = sent {
            log::warn!("audit: cannot dispatch to cluster {}: {e:?}", sink.cluster);
            self.finish_post(false);
        }
    }

    fn finish_post(&mut self, ok: bool) {
        let Some(shipper) = self.shipper.as_mut() else {
            return;
        };
        let outcome = shipper.on_response(ok, host::now_ms());
        if let Some(state) = self.state.borrow().as_ref() {
            match outcome {
                ship::Outcome::Shipped { records } => state.metrics.shipped.add(records as u64),
                ship::Outcome::Failed { retry_in_ms } => {
                    state.metrics.ship_failures.inc();
                    log::warn!("audit: collector POST failed; retrying in {retry_in_ms} ms");
                }
                ship::Outcome::Unexpected => {}
            }
        }
        if matches!(outcome, ship::Outcome::Shipped { .. }) {
            // Send the next full batch now rather than at the next tick: the shipping rate is
            // bounded by the collector's round trip, not by the tick period.
            self.ship();
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("portcullis {} {} started", INFO.name, INFO.version);
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = stage::plugin_configuration();
        let config = match AuditConfig::parse(&raw) {
            Ok(c) => c,
            Err(e) => {
                log::error!("audit: {e}");
                return false;
            }
        };
        let hash_key = match &config.hash_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(v.into_bytes()),
                _ => {
                    log::error!(
                        "audit: hash_key_env: environment variable `{var}` is not set for the VM \
                         (vm_config.environment_variables)"
                    );
                    return false;
                }
            },
        };
        // The sealing key: read here, checked by the core; only its id is ever printed.
        let key_value = match &config.seal {
            SealConfig::Hmac { key_env, .. } => std::env::var_os(key_env),
            SealConfig::Unkeyed => None,
        };
        let seal = match config
            .seal
            .load(key_value.as_ref().map(|v| v.as_encoded_bytes()))
        {
            Ok(seal) => seal,
            Err(e) => {
                log::error!("audit: {e}");
                return false;
            }
        };
        if matches!(seal, Seal::Unkeyed) {
            log::warn!(
                "audit: records are sealed unkeyed (seal.mode unkeyed_sha256): whoever can \
                 write the log can rewrite it with a valid chain"
            );
        }
        let mut host = Host { queue: None };
        let id = format!("{}-{:x}", ship::instance_number(&host), host::now_ms());
        let (queue_capacity, http) = match &config.sink {
            Sink::Log => (None, None),
            Sink::Http(h) => match hostcalls::register_shared_queue(ship::QUEUE_NAME) {
                Ok(q) => {
                    host.queue = Some(q);
                    (Some(h.queue_capacity), Some(h.clone()))
                }
                Err(e) => {
                    log::error!("audit: http: cannot register the shared queue: {e:?}");
                    return false;
                }
            },
        };
        // A reconfiguration replaces the shipper (or removes it with the log sink).
        self.shipper = http
            .as_ref()
            .map(|h| Shipper::new(id.clone(), h.clone(), seal.clone()));
        // The log sink writes at info: a higher level for the wasm component drops every record
        // silently. Checked at start (Envoy can change it later through its admin interface).
        let hidden = matches!(config.sink, Sink::Log) && records_hidden_by_log_level();
        set_gauge(
            "portcullis_audit_records_hidden_by_log_level",
            u64::from(hidden),
        );
        if let Some(h) = &http {
            stage::set_tick_period(Duration::from_millis(Shipper::tick_period_ms(h)));
        }
        self.http = http;
        *self.state.borrow_mut() = Some(State {
            auditor: Auditor::new(config, hash_key),
            metrics: Metrics::define(),
            host,
            log_sealer: Sealer::new(format!("log-{id}"), seal),
            queue_capacity,
        });
        set_gauge("portcullis_audit_config_loaded", 1);
        true
    }

    fn on_tick(&mut self) {
        self.ship();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            state: Rc::clone(&self.state),
            tls_cipher: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Whether Envoy's log level for this VM is above info, where the log sink writes: if so, says
/// so at the most severe level that still shows (a `critical` level shows nothing else).
fn records_hidden_by_log_level() -> bool {
    let level = match hostcalls::get_log_level() {
        Ok(level) => level,
        Err(_) => return false,
    };
    let shown = match level {
        LogLevel::Trace | LogLevel::Debug | LogLevel::Info => return false,
        LogLevel::Warn => LogLevel::Warn,
        LogLevel::Error => LogLevel::Error,
        LogLevel::Critical => LogLevel::Critical,
    };
    let _ = hostcalls::log(
        shown,
        "audit: records are written to Envoy's log at info, but its log level for wasm is \
         higher: every record is dropped. Run Envoy with --component-log-level wasm:info, or \
         use the http sink (docs/audit.md)",
    );
    true
}

/// Set by the chain's front (`header_mutation`, from `%DOWNSTREAM_TLS_CIPHER%`, over any client
/// copy): no Wasm attribute carries the cipher.
const CIPHER_HEADER: &str = "x-portcullis-tls-cipher";

struct Stream {
    state: Rc<RefCell<Option<State>>>,
    tls_cipher: Option<String>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // Read, then removed (when there is one to remove): it is for the record, not for the
        // upstream.
        if let Some(cipher) = host::header(MapType::HttpRequestHeaders, CIPHER_HEADER) {
            self.set_http_request_header(CIPHER_HEADER, None);
            self.tls_cipher = Some(cipher).filter(|c| !c.is_empty() && c != "-");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let mut guard = self.state.borrow_mut();
        let Some(state) = guard.as_mut() else { return };
        let m = &state.metrics;
        // Every fact is read even for an excluded path: whether its record may be dropped
        // depends on how the request ended (a refusal or a security event never is).
        let path = host::header(MapType::HttpRequestHeaders, ":path");
        let facts = self.facts(path, &state.auditor.config.decisions);
        let built = match state.auditor.observe(&facts) {
            Observed::Excluded => {
                m.excluded.inc();
                return;
            }
            Observed::SampledOut => {
                m.sampled_out.inc();
                return;
            }
            Observed::Keep(built) => built,
        };
        match built.outcome {
            RecordOutcome::Denied => m.denied.inc(),
            RecordOutcome::Error => m.errors.inc(),
            RecordOutcome::Allowed => {}
        }
        if !built.security_events.is_empty() {
            m.security_events.add(built.security_events.len() as u64);
            log::warn!(
                "audit: {} security event: {}",
                facts.request_id.as_deref().unwrap_or("-"),
                built.security_events.join(", ")
            );
        }
        m.records.inc();
        match state.queue_capacity {
            None => {
                if let Some(line) = state.log_sealer.seal(built.json) {
                    // Straight to the host: `log::info!` would format a second copy of the line.
                    let _ = hostcalls::log(LogLevel::Info, &line);
                }
            }
            Some(capacity) => match ship::offer(&state.host, capacity, &built.json) {
                Offer::Queued => m.queued.inc(),
                Offer::Dropped => m.dropped.inc(),
            },
        }
    }
}

impl Stream {
    /// Everything the record may use, read in one place (`path` already read).
    fn facts(&self, path: Option<String>, decisions: &[String]) -> Facts {
        let header = |name: &str| host::header(MapType::HttpRequestHeaders, name);
        let text = |path: &[&str]| {
            hostcalls::get_property(path.to_vec())
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| !s.is_empty())
        };
        // Integers, timestamps and durations arrive as 8 little-endian bytes (ns for time).
        let int = |path: &[&str]| {
            hostcalls::get_property(path.to_vec())
                .ok()
                .flatten()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(i64::from_le_bytes)
        };
        let ms = |ns: i64| u64::try_from(ns / 1_000_000).ok();
        let traceparent = header("traceparent");
        // The record keeps `tracestate` only within a trace context.
        let tracestate = traceparent.as_ref().and_then(|_| header("tracestate"));
        Facts {
            now_ms: host::now_ms(),
            start_ms: int(&["request", "time"]).and_then(ms),
            request_id: header("x-request-id"),
            traceparent,
            tracestate,
            client_address: host::client_ip().map(|ip| ip.to_string()),
            tls_version: text(&["connection", "tls_version"]),
            tls_cipher: self.tls_cipher.clone(),
            protocol: text(&["request", "protocol"]),
            method: header(":method"),
            authority: header(":authority"),
            path,
            route: text(&["xds", "route_name"]),
            status: int(&["response", "code"]).and_then(|c| u16::try_from(c).ok()),
            code_details: text(&["response", "code_details"]),
            duration_ms: int(&["request", "duration"]).and_then(ms),
            upstream_ms: int(&["response", "backend_latency"]).and_then(ms),
            bytes_in: int(&["request", "total_size"]).and_then(|n| u64::try_from(n).ok()),
            bytes_out: int(&["response", "total_size"]).and_then(|n| u64::try_from(n).ok()),
            user_agent: header("user-agent"),
            identity: host::read_identity(),
            decisions: decisions
                .iter()
                .filter_map(|i| host::read_decision(i).map(|d| (i.clone(), d)))
                .collect(),
        }
    }
}
