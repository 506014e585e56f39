//! The host glue every filter shares (wasm only): metrics, byte-safe header reads, the client
//! address, problem+json replies, the identity and decisions in filter state, shared data.
//! No policy lives here.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType, Status};

use crate::client::parse_source_address;
use crate::decision::{append_would_deny, decision_property, Decision, WOULD_DENY_HEADER};
use crate::identity::{Identity, IDENTITY_PROPERTY};
use crate::problem::{self, Problem};
use crate::slots::{HashKey, SharedData, SlotError, StoreError};

/// Identity of a filter build, logged when its VM starts.
#[derive(Clone, Copy)]
pub struct FilterInfo {
    /// Short name (`auth`), used as the log prefix and in metric names.
    pub name: &'static str,
    pub version: &'static str,
}

/// Sets a gauge, defining it on first use; metrics are best-effort and never fail a request.
pub fn set_gauge(name: &str, value: u64) {
    if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, name) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// A counter defined once (at configure time) and incremented per event; named
/// `portcullis_<filter>_<what>` and visible in `/stats/prometheus`.
#[derive(Clone, Copy, Debug)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(name: &str) -> Counter {
        Counter(hostcalls::define_metric(MetricType::Counter, name).ok())
    }

    pub fn add(self, n: u64) {
        if let Some(id) = self.0 {
            let _ = hostcalls::increment_metric(id, n as i64);
        }
    }

    pub fn inc(self) {
        self.add(1);
    }
}

/// Envoy's clock, in milliseconds since the Unix epoch (0 if it cannot be read).
pub fn now_ms() -> u64 {
    since_epoch().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Envoy's clock, in seconds since the Unix epoch (0 if it cannot be read).
pub fn now_secs() -> u64 {
    since_epoch().map_or(0, |d| d.as_secs())
}

fn since_epoch() -> Option<Duration> {
    hostcalls::get_current_time()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
}

/// Header bytes as text. HTTP allows any byte in a header value, and the SDK's `String` getters
/// panic (killing the VM) on bytes that are not UTF-8; here they become U+FFFD instead.
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One header of `map` (request, response, HTTP-call response), as text (see [`text`]). Use
/// this and [`headers`], never the SDK's `String` getters.
pub fn header(map: MapType, name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(map, name)
        .ok()
        .flatten()
        .map(text)
}

/// Every header of `map` in one host call, as text (see [`text`]).
pub fn headers(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map_bytes(map)
        .map(|headers| headers.into_iter().map(|(n, v)| (n, text(v))).collect())
        .unwrap_or_default()
}

/// `x-request-id`, which Envoy sets on every request (and regenerates for external clients).
pub fn request_id() -> Option<String> {
    header(MapType::HttpRequestHeaders, "x-request-id")
}

/// The client address as Envoy resolved it (TCP peer, or the configured trusted XFF hop).
pub fn client_ip() -> Option<IpAddr> {
    let raw = hostcalls::get_property(vec!["source", "address"]).ok()??;
    parse_source_address(std::str::from_utf8(&raw).ok()?)
}

/// Sends a local `application/problem+json` reply and stops the request here.
pub fn send_problem(problem: &Problem<'_>, extra_headers: &[(&str, &str)]) {
    let mut headers = vec![("content-type", problem::CONTENT_TYPE)];
    headers.extend_from_slice(extra_headers);
    crate::stage::send_response(problem.status, headers, Some(&problem.to_json()));
}

/// Publishes the verified identity to later filters (filter state, or within a chain; clients
/// cannot write either).
pub fn publish_identity(identity: &Identity) {
    crate::stage::publish(IDENTITY_PROPERTY, &identity.to_json());
}

/// The identity auth verified for this request, if any.
pub fn read_identity() -> Option<Identity> {
    Identity::from_json(&crate::stage::published(IDENTITY_PROPERTY)?)
}

/// Shadow mode: tells the upstream (and later filters) that `instance` would have denied this
/// request for `reason`, after what earlier filters signalled.
pub fn signal_would_deny(instance: &str, reason: &str) {
    let earlier = header(MapType::HttpRequestHeaders, WOULD_DENY_HEADER);
    let value = append_would_deny(earlier.as_deref(), instance, reason);
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, WOULD_DENY_HEADER, Some(&value));
}

/// Publishes this filter instance's decision for the audit record.
pub fn publish_decision(instance: &str, decision: &Decision) {
    crate::stage::publish(&decision_property(instance), &decision.to_json());
}

/// Another filter instance's decision, if it published one for this request.
pub fn read_decision(instance: &str) -> Option<Decision> {
    Decision::from_json(&crate::stage::published(&decision_property(instance))?)
}

/// Envoy's shared data (one namespace per VM id, shared by all workers) as the core's
/// [`SharedData`]: a value and its CAS version; a write with CAS 0 is unconditional.
pub struct HostSharedData;

impl SharedData for HostSharedData {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let cas = (cas != 0).then_some(cas);
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(other) => Err(StoreError::Host(format!("{other:?}"))),
        }
    }
}

/// This Envoy's bucket-hash key (see [`HashKey::shared`]), for tables built at configure time.
/// Fails (and the filter refuses its configuration) if the OS gives no random bytes: a table
/// hashed with a guessable key is one a client can aim at.
pub fn slot_hash_key() -> Result<HashKey, SlotError> {
    let mut fresh = [0u8; 16];
    getrandom::getrandom(&mut fresh)
        .map_err(|e| SlotError::Host(format!("no random bytes for the bucket-hash key: {e}")))?;
    HashKey::shared(&mut HostSharedData, fresh)
}
