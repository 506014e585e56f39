//! What deciding one request costs in the core, for the benchmark's two instances
//! (`envoy/bench/filters/ratelimit-{client,identity}.json`) against the in-memory shared data,
//! including the decision JSON the adapter publishes. A measurement, not a test:
//! `cargo run --release -p portcullis-ratelimit --example check_cost`
//! (as wasm: add `--target wasm32-wasip1` with the Wasmtime runner, see docs/ratelimit.md).

use std::time::Instant;

use portcullis_common::identity::{AuthMethod, Identity};
use portcullis_common::slots::{HashKey, MemoryStore};
use portcullis_ratelimit::config::Policy;
use portcullis_ratelimit::key::RequestView;
use portcullis_ratelimit::limiter::{Action, Limiter};

/// Compiled in, so the wasm build (which has no file system) runs the same configurations.
const CONFIGS: [(&str, &[u8]); 2] = [
    (
        "ratelimit-client",
        include_bytes!("../../../envoy/bench/filters/ratelimit-client.json"),
    ),
    (
        "ratelimit-identity",
        include_bytes!("../../../envoy/bench/filters/ratelimit-identity.json"),
    ),
];

fn run(instance: &str, raw: &[u8], view: &RequestView<'_>, runs: u32) {
    let Ok(policy) = Policy::parse(raw) else {
        eprintln!("{instance}: the configuration does not load");
        return;
    };
    let limiter = Limiter::new(instance, policy, HashKey::from_bytes([7; 16]));
    let mut store = MemoryStore::new();
    if limiter.prepare(&mut store).is_err() {
        eprintln!("{instance}: cannot prepare the tables");
        return;
    }
    let mut now = 1_764_000_000_000u64;
    let mut allowed = 0u32;
    let mut published = 0usize;
    let started = Instant::now();
    for _ in 0..runs {
        now += 1;
        let verdict = limiter.check(view, &mut store, now);
        allowed += u32::from(verdict.action == Action::Allow);
        published += verdict.decision.to_json().len();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!(
        "{instance}: {per:.2} µs per request ({allowed}/{runs} allowed, decision {} bytes)",
        published / runs as usize
    );
}

fn main() {
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let identity = Identity {
        subject: "viewer-1".into(),
        method: AuthMethod::Jwt,
        roles: vec!["viewer".into()],
        tenant: None,
        key_id: None,
        issuer: Some("https://issuer.example".into()),
    };
    let view = RequestView {
        method: "GET",
        authority: "localhost:10000",
        path: "/api/orders/1",
        client_ip: "127.0.0.1".parse().ok(),
        identity: Some(&identity),
        headers: &[],
    };
    for (instance, raw) in CONFIGS {
        run(instance, raw, &view, runs);
    }
}
