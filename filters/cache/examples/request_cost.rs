//! What the cache costs per request in wasm-side work for the benchmark's request (`make bench`:
//! GET /api/orders/1 with a bearer token, on no cacheable route of `envoy/filters/cache.json`;
//! in the chain auth has published an identity):
//! `cargo run --release -p portcullis-cache --example request_cost`
//! A measurement, not a test: it prints microseconds per request and asserts nothing.
//! Figures: the engine's request and response phases plus the decision the adapter publishes,
//! and, for comparison, what reading the request and response headers and the identity would
//! add (the adapter skips those reads for such a request).

use std::hint::black_box;
use std::time::Instant;

use portcullis_cache::config::load;
use portcullis_cache::engine::{Engine, RequestAction, ResponseAction};
use portcullis_common::identity::{AuthMethod, Identity};
use portcullis_common::slots::MemoryStore;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// What `host::headers` and the adapter's `lower` do with the bytes the host returns.
fn as_headers(raw: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    raw.into_iter()
        .map(|(mut n, v)| {
            n.make_ascii_lowercase();
            (n, String::from_utf8(v).unwrap_or_default())
        })
        .collect()
}

fn per_request(runs: u32, started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
}

/// The adapter's calls into the engine for the request, and the decision it publishes; bytes
/// produced, or `None` when the request is not a pass-through.
#[inline(never)]
fn engine_path(
    engine: &Engine,
    runs: u32,
    (method, authority, target): (&str, &str, &str),
) -> Option<usize> {
    let mut store = MemoryStore::new();
    let mut bytes = 0usize;
    for _ in 0..runs {
        let fwd = engine.pass_through(black_box(method), authority, black_box(target))?;
        let RequestAction::Forward { pending, .. } = engine.passed_through(fwd) else {
            return None;
        };
        if let ResponseAction::Pass {
            cache_status,
            decision,
            ..
        } = engine.on_response(&mut store, &pending, 0, &[], 0)
        {
            bytes += cache_status.len() + decision.to_json().len();
        }
    }
    Some(bytes)
}

/// Reading both header maps and the identity, as the adapter did for every request.
#[inline(never)]
fn skipped_reads(
    runs: u32,
    request: &[(String, Vec<u8>)],
    response: &[(String, Vec<u8>)],
    identity: &[u8],
) -> usize {
    let mut n = 0;
    for _ in 0..runs {
        let req = as_headers(black_box(request).to_vec());
        let resp = as_headers(black_box(response).to_vec());
        let id = Identity::from_json(black_box(identity));
        n += req.len() + resp.len() + usize::from(id.is_some());
    }
    n
}

fn main() {
    // Compiled in, so the wasm build (which sees no files) measures the same.
    let Ok(config) = load(include_bytes!("../../../envoy/filters/cache.json")) else {
        eprintln!("envoy/filters/cache.json does not load");
        return;
    };
    let engine = Engine::new(config, "cache");
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200_000)
        .max(1);
    let (method, authority, target) = ("GET", "127.0.0.1:10000", "/api/orders/1");

    let started = Instant::now();
    let Some(mut bytes) = engine_path(&engine, runs, (method, authority, target)) else {
        eprintln!("{target} is on a cacheable route: the measurement is wrong");
        return;
    };
    let path = per_request(runs, started);

    // The reads the adapter no longer makes for this request.
    let request = pairs(&[
        (":authority", authority),
        (":path", target),
        (":method", method),
        (":scheme", "http"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3NjQwMDAwMDAsImV4cCI6MTc2NDAwMzYwMCwibmJmIjoxNzY0MDAwMDAwLCJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkIiwic3ViIjoiZGVtby12aWV3ZXIiLCJhdWQiOiJwb3J0Y3VsbGlzLWRlbW8tYXBpIiwicm9sZXMiOlsidmlld2VyIl19.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXI"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "7f3c1a9e-0000-4000-8000-000000000001"),
        ("x-portcullis-subject", "demo-viewer"),
        ("x-portcullis-auth-method", "jwt"),
        ("x-portcullis-roles", "viewer"),
    ]);
    let response = pairs(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", "98"),
        ("date", "Mon, 24 Nov 2026 09:00:00 GMT"),
        ("x-envoy-upstream-service-time", "1"),
    ]);
    let identity = Identity {
        subject: "demo-viewer".into(),
        method: AuthMethod::Jwt,
        roles: vec!["viewer".into()],
        tenant: None,
        key_id: None,
        issuer: Some("https://demo.portcullis.invalid".into()),
    }
    .to_json();
    let started = Instant::now();
    bytes += skipped_reads(runs, &request, &response, &identity);
    let skipped = per_request(runs, started);
    black_box(bytes);
    println!("not cacheable (uri-miss), engine + decision: {path:.2} µs per request");
    println!("reads skipped for it (headers both ways, identity): {skipped:.2} µs per request");
}
