//! What deciding one request costs in the core, for the benchmark's request (`make bench`:
//! GET /api/orders/1 with a viewer's HS256 token, `envoy/bench/filters/auth.json`):
//! `cargo run --release -p portcullis-auth --example request_cost`
//! A measurement, not a test: it prints microseconds per request and asserts nothing.
//! Figures: the verified-token cache hit (every request after the first), a full verification
//! (cache disabled) for comparison, and encoding what the adapter publishes (identity and
//! decision), which runs in wasm too.

use std::hint::black_box;
use std::time::Instant;

use jwt_simple::prelude::*;
use portcullis_auth::engine::{Engine, Request, Tally, Verdict};
use portcullis_auth::settings::load;
use portcullis_common::slots::{HashKey, MemoryStore};

const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret!!";
const NOW: u64 = 1_764_000_000;

#[derive(Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

fn engine(cache_capacity: usize) -> Option<Engine> {
    // Compiled in, so the wasm build (which sees no files) measures the same.
    let raw = include_bytes!("../../../envoy/bench/filters/auth.json");
    let mut config: serde_json::Value = serde_json::from_slice(raw).ok()?;
    config["token_cache"] = serde_json::json!({ "capacity": cache_capacity });
    let env = |_: &str| Some(SECRET.to_vec());
    load(
        config.to_string().as_bytes(),
        &env,
        HashKey::from_bytes([7; 16]),
    )
    .ok()
    .map(Engine::new)
}

/// The token `make bench` sends: `portcullis-devkit token --role viewer`, issued at `NOW`.
fn token() -> Option<String> {
    let mut claims = Claims::with_custom_claims(
        Roles {
            roles: vec!["viewer".into()],
        },
        Duration::from_secs(3600),
    )
    .with_issuer("https://demo.portcullis.invalid")
    .with_audience("portcullis-demo-api")
    .with_subject("demo-viewer");
    claims.issued_at = Some(Duration::from_secs(NOW));
    claims.invalid_before = Some(Duration::from_secs(NOW));
    claims.expires_at = Some(Duration::from_secs(NOW + 3600));
    HS256Key::from_bytes(SECRET).authenticate(claims).ok()
}

/// Runs `decide` `runs` times; µs per request.
fn time_decide(engine: &mut Engine, headers: &[(String, String)], runs: u32) -> f64 {
    let store = MemoryStore::new();
    let req = Request {
        method: "GET",
        authority: "127.0.0.1:10000",
        path: "/api/orders/1",
        headers,
    };
    let started = Instant::now();
    let mut allowed = 0u32;
    for _ in 0..runs {
        let mut tally = Tally::default();
        let verdict = engine.decide(black_box(&req), NOW + 5, &store, true, &mut tally);
        allowed += u32::from(matches!(verdict, Verdict::Pass { .. }));
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    if allowed != runs {
        eprintln!("only {allowed}/{runs} requests allowed: the measurement is wrong");
    }
    per
}

fn main() {
    let (Some(mut cached), Some(mut uncached), Some(token)) = (engine(1024), engine(0), token())
    else {
        eprintln!("envoy/bench/filters/auth.json does not load");
        return;
    };
    // The request headers as Envoy hands them to the filter.
    let headers: Vec<(String, String)> = [
        (":authority", "127.0.0.1:10000"),
        (":path", "/api/orders/1"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", &format!("Bearer {token}")),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "7f3c1a9e-0000-4000-8000-000000000001"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let count = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(default)
    };
    // Under callgrind, `RUNS=100000 MISS_RUNS=0` leaves only the cache hits in `time_decide`.
    let runs = count("RUNS", 200_000).max(1);
    let miss_runs = count("MISS_RUNS", runs / 10).max(1);

    let hit = time_decide(&mut cached, &headers, runs);
    let miss = time_decide(&mut uncached, &headers, miss_runs);

    // What the adapter encodes and publishes for every allowed request.
    let store = MemoryStore::new();
    let req = Request {
        method: "GET",
        authority: "127.0.0.1:10000",
        path: "/api/orders/1",
        headers: &headers,
    };
    let verdict = cached.decide(&req, NOW + 5, &store, true, &mut Tally::default());
    let mut publish = 0.0;
    if let Verdict::Pass {
        identity: Some(identity),
        decision,
        ..
    } = verdict
    {
        let started = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..runs {
            bytes += black_box(&identity).to_json().len() + black_box(&decision).to_json().len();
        }
        publish = started.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
        bytes /= runs as usize;
        println!("published per request: {bytes} bytes of identity + decision");
    }
    println!("token cache hit: {hit:.2} µs per request (decide)");
    println!("full verification (cache off): {miss:.2} µs per request (decide)");
    println!("encoding identity + decision: {publish:.2} µs per request");
}
