//! Prints what the core costs per request on this machine: building, redacting and sealing a
//! record, and its size, for two requests: a typical one with two decisions, and the full
//! chain's (`make bench`'s GET /api/orders/1 with a viewer's token: the identity and five
//! decisions). Also SHA-256 alone over the chain record's bytes, the floor of sealing.
//! A measurement, not a test:
//! `cargo run --release -p portcullis-audit --example record_cost`, and as wasm (Wasmtime):
//! `CARGO_TARGET_WASM32_WASIP1_RUNNER="$PWD/.venv/bin/python $PWD/scripts/wasi-run.py" cargo run --release --target wasm32-wasip1 -p portcullis-audit --example record_cost`
//! Arguments `typical` or `chain`, and a count, run only that case that many times (for
//! `valgrind --tool=callgrind`: instructions per record = total / count).

use std::hint::black_box;
use std::time::Instant;

use portcullis_audit::auditor::{Auditor, Observed};
use portcullis_audit::chain::Sealer;
use portcullis_audit::config::AuditConfig;
use portcullis_audit::record::Facts;
use portcullis_common::decision::Decision;
use portcullis_common::identity::{AuthMethod, Identity};
use serde_json::json;

fn typical() -> Facts {
    Facts {
        now_ms: 1_764_000_000_000,
        start_ms: Some(1_764_000_000_000),
        request_id: Some("7f3c1a9e-0000-4000-8000-000000000001".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: None,
        client_address: Some("203.0.113.7".into()),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        protocol: Some("HTTP/2".into()),
        method: Some("GET".into()),
        authority: Some("api.example.com".into()),
        path: Some("/api/products?page=2&token=abc".into()),
        route: Some("upstream".into()),
        status: Some(200),
        code_details: Some("via_upstream".into()),
        duration_ms: Some(3),
        upstream_ms: Some(2),
        bytes_in: Some(310),
        bytes_out: Some(1450),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        identity: None,
        decisions: vec![
            (
                "ratelimit-client".into(),
                Decision::allow().with("remaining", 41),
            ),
            ("auth".into(), Decision::allow()),
        ],
    }
}

/// What the full chain's audit sees for the benchmark request (plain HTTP, no trace context).
fn chain() -> Facts {
    Facts {
        now_ms: 1_764_000_000_000,
        start_ms: Some(1_764_000_000_000),
        request_id: Some("5b0e6c0a-62f1-4a8c-9d38-2f0b6f0b9d1e".into()),
        traceparent: None,
        tracestate: None,
        client_address: Some("127.0.0.1".into()),
        tls_version: None,
        tls_cipher: None,
        protocol: Some("HTTP/1.1".into()),
        method: Some("GET".into()),
        authority: Some("127.0.0.1:10000".into()),
        path: Some("/api/orders/1".into()),
        route: Some("upstream".into()),
        status: Some(200),
        code_details: Some("via_upstream".into()),
        duration_ms: Some(0),
        upstream_ms: Some(0),
        bytes_in: Some(290),
        bytes_out: Some(412),
        user_agent: None,
        identity: Some(Identity {
            subject: "bench-viewer".into(),
            method: AuthMethod::Jwt,
            roles: vec!["viewer".into()],
            tenant: None,
            key_id: None,
            issuer: Some("https://demo.portcullis.invalid".into()),
        }),
        decisions: vec![
            (
                "ratelimit-client".into(),
                Decision::allow()
                    .with("cost", 1)
                    .with("limits", json!(["per-client"])),
            ),
            (
                "auth".into(),
                Decision::allow()
                    .with("method", "jwt")
                    .with("subject", "bench-viewer"),
            ),
            (
                "ratelimit-identity".into(),
                Decision::allow()
                    .with("cost", 1)
                    .with("limits", json!(["per-user"]))
                    .with("tiers", json!([["per-user", "viewer"]])),
            ),
            ("sanitizer".into(), Decision::allow()),
            (
                "cache".into(),
                Decision::allow()
                    .with("cache_status", "uncacheable")
                    .with("not_stored", "authorization"),
            ),
        ],
    }
}

/// µs per record and bytes per sealed record.
fn run(facts: &Facts, n: u32) -> (f64, usize, Vec<u8>) {
    let Ok(config) = AuditConfig::parse(b"") else {
        return (0.0, 0, Vec::new());
    };
    let mut auditor = Auditor::new(config, None);
    let mut sealer = Sealer::new("log-1-19ab2c3d4e5".into());
    let mut bytes = 0usize;
    let mut last = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        if let Observed::Keep(built) = auditor.observe(black_box(facts)) {
            if let Some(line) = sealer.seal(&built.json) {
                bytes += line.len();
                last = line.into_bytes();
            }
        }
    }
    let elapsed = start.elapsed();
    (
        elapsed.as_secs_f64() * 1e6 / f64::from(n),
        bytes / n as usize,
        last,
    )
}

fn main() {
    let only = std::env::args().nth(1);
    let n: u32 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    for (name, facts) in [("typical", typical()), ("chain", chain())] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let (us, bytes, line) = run(&facts, n);
        println!(
            "{name:>8}: {us:.2} µs per record (build + redact + seal), {bytes} bytes per sealed record"
        );
        if only.is_none() {
            let start = Instant::now();
            for _ in 0..n {
                black_box(hmac_sha256::Hash::hash(black_box(&line)));
            }
            let sha = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            println!("{name:>8}: {sha:.2} µs for SHA-256 alone over those {bytes} bytes");
        }
    }
}
