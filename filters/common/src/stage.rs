//! The few host calls that belong to an Envoy filter as a whole rather than to one policy: the
//! plugin configuration, the instance name, the tick, HTTP calls, resuming the request and local
//! replies. A filter makes these through here, never through the SDK, so that it can also run as
//! one stage of a `chain` instance (several policies in one Envoy filter, `filters/suite`): the
//! chain runs each stage's callback [`within`] a [`Scope`], which answers the first two and
//! records the rest for the chain to act on. Outside a scope each call goes straight to Envoy.
//!
//! What the stages publish for each other (the identity, the decisions) stays in the chain: a
//! stream's [`Published`] list replaces Envoy's filter state, where each `set_property` cost
//! about 2.5 µs of Envoy CPU (`make bench`, docs/BENCHMARKS.md). A property no stage published is
//! still read from Envoy.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, Status};

/// What a stage is, and what it asked for during one callback.
#[derive(Debug, Default)]
pub struct Scope {
    /// The stage's instance name (`ratelimit-client`), which stands in for `plugin_root_id`.
    pub instance: Rc<str>,
    /// The stage's own configuration; only set while the stage configures.
    pub configuration: Option<Rc<[u8]>>,
    /// The tick period the stage asked for.
    pub tick: Option<Duration>,
    /// Tokens of the HTTP calls the stage dispatched: their answers go back to it.
    pub calls: Vec<u32>,
    /// The stage asked to resume the request it had paused.
    pub resumed: bool,
    /// The stage sent a local reply: no later stage sees the request.
    pub replied: bool,
    /// What the stages published for this request, in a stream callback.
    pub published: Option<Published>,
}

/// Properties the stages of one request published, by name; the last write of a name wins.
pub type Published = Rc<RefCell<Vec<(String, Vec<u8>)>>>;

/// Publishes a property for later filters: in a chain, for its later stages; else in Envoy's
/// filter state, which a client cannot write.
pub fn publish(name: &str, value: &[u8]) {
    let kept = in_scope(|s| {
        let mut published = s.published.as_ref()?.borrow_mut();
        match published.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_vec(),
            None => published.push((name.to_string(), value.to_vec())),
        }
        Some(())
    })
    .flatten();
    if kept.is_none() {
        let _ = hostcalls::set_property(vec![name], Some(value));
    }
}

/// A published property: from the chain when a stage published it, else from Envoy.
pub fn published(name: &str) -> Option<Vec<u8>> {
    let kept = in_scope(|s| {
        let published = s.published.as_ref()?.borrow();
        published
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    })
    .flatten();
    kept.or_else(|| hostcalls::get_property(vec![name]).ok().flatten())
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` (one stage callback) within `scope`; returns what `f` returned and the scope with
/// what the stage asked for.
pub fn within<R>(scope: Scope, f: impl FnOnce() -> R) -> (R, Scope) {
    let outer = SCOPE.with(|s| s.borrow_mut().replace(scope));
    let result = f();
    let scope = SCOPE.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    (result, scope.unwrap_or_default())
}

fn in_scope<R>(f: impl FnOnce(&mut Scope) -> R) -> Option<R> {
    SCOPE.with(|s| s.borrow_mut().as_mut().map(f))
}

/// The filter's JSON configuration (empty when there is none).
pub fn plugin_configuration() -> Vec<u8> {
    match in_scope(|s| s.configuration.clone()) {
        Some(Some(config)) => config.to_vec(),
        Some(None) => Vec::new(),
        None => hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default(),
    }
}

/// The filter instance's name (`FILTER` or `FILTER-NAME`): its `root_id`, or `default` when
/// Envoy gives none.
pub fn instance_name(default: &str) -> String {
    if let Some(name) = in_scope(|s| s.instance.to_string()) {
        return name;
    }
    hostcalls::get_property(vec!["plugin_root_id"])
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Asks for `on_tick` every `period`.
pub fn set_tick_period(period: Duration) {
    if in_scope(|s| s.tick = Some(period)).is_none() {
        let _ = hostcalls::set_tick_period(period);
    }
}

/// Dispatches an HTTP call; its answer arrives at the context that made it.
pub fn dispatch_http_call(
    upstream: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<u32, Status> {
    let token = hostcalls::dispatch_http_call(upstream, headers, body, vec![], timeout)?;
    record_call(token);
    Ok(token)
}

/// Tells the chain running this stage that it waits for the HTTP call `token`.
pub fn record_call(token: u32) {
    in_scope(|s| s.calls.push(token));
}

/// Lets the request this stream paused go on.
pub fn resume_request() {
    if in_scope(|s| s.resumed = true).is_none() {
        let _ = hostcalls::resume_http_request();
    }
}

/// Sends a local reply; the request goes no further.
pub fn send_response(status: u16, headers: Vec<(&str, &str)>, body: Option<&[u8]>) {
    let _ = hostcalls::send_http_response(u32::from(status), headers, body);
    record_reply();
}

/// Tells the chain running this stage that it sent a local reply.
pub fn record_reply() {
    in_scope(|s| s.replied = true);
}
