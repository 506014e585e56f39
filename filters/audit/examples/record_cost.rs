//! Prints what the core costs per request on this machine: building, redacting and sealing a
//! record, for two requests: a typical one with two decisions, and the full chain's
//! (`make bench`'s GET /api/orders/1 with a viewer's token: the identity and five decisions).
//! Also, for comparison, parsing the identity and decisions as the adapter's reads of filter
//! state do, and SHA-256 alone over the sealed line, the floor of sealing.
//! A measurement, not a test:
//! `cargo run --release -p portcullis-audit --example record_cost`; as wasm in V8 (Envoy's
//! engine): `node --no-warnings scripts/wasm-v8.mjs target/wasm32-wasip1/release/examples/record_cost.wasm`
//! after `cargo build --release --target wasm32-wasip1 -p portcullis-audit --example record_cost`;
//! in Wasmtime: `CARGO_TARGET_WASM32_WASIP1_RUNNER="$PWD/.venv/bin/python $PWD/scripts/wasi-run.py" cargo run --release --target wasm32-wasip1 -p portcullis-audit --example record_cost`
//! Arguments `[typical|chain] [record|parse|sha] [count]` run one case and stage that many
//! times, for exact counts: `valgrind --tool=callgrind` natively, or Wasmtime's fuel (wasm
//! instructions) with `scripts/wasm-fuel.py`; per record = (count N − count 0) / N.

use std::hint::black_box;
use std::time::Instant;

use portcullis_audit::auditor::{Auditor, Observed};
use portcullis_audit::chain::{Seal, SealKey, Sealer};
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

/// The sealed line of one record, and the values the adapter reads from filter state for it
/// (`host::read_identity` and `read_decision` parse each one's JSON today).
fn inputs(facts: &Facts) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut line = Vec::new();
    if let Observed::Keep(built) = auditor().observe(facts) {
        line = Sealer::new(STREAM.into(), seal())
            .seal(built.json)
            .unwrap_or_default()
            .into_bytes();
    }
    let published = facts
        .identity
        .iter()
        .map(Identity::to_json)
        .chain(facts.decisions.iter().map(|(_, d)| d.to_json()))
        .collect();
    (line, published)
}

const STREAM: &str = "log-1-19ab2c3d4e5";

/// HMAC-SHA-256 under a demo key, as the filter seals by default.
fn seal() -> Seal {
    SealKey::new("1", &[0x5a; 32])
        .map(Seal::Keyed)
        .unwrap_or_else(|_| std::process::abort())
}

fn auditor() -> Auditor {
    Auditor::new(
        AuditConfig::parse(b"").unwrap_or_else(|_| std::process::abort()),
        None,
    )
}

/// Runs `stage` `n` times on `facts`: `record` (build + redact + seal, the core's work per
/// request), `parse` (the published identity and decisions) or `sha` (SHA-256 of the line).
fn run(stage: &str, facts: &Facts, n: u32) {
    let (line, published) = inputs(facts);
    let mut auditor = auditor();
    let mut sealer = Sealer::new(STREAM.into(), seal());
    for _ in 0..n {
        match stage {
            "record" => {
                if let Observed::Keep(built) = auditor.observe(black_box(facts)) {
                    black_box(sealer.seal(built.json));
                }
            }
            "parse" => {
                let (identity, decisions) = match facts.identity {
                    Some(_) => published.split_at(1),
                    None => published.split_at(0),
                };
                for raw in identity {
                    black_box(Identity::from_json(black_box(raw)));
                }
                for raw in decisions {
                    black_box(Decision::from_json(black_box(raw)));
                }
            }
            _ => {
                black_box(hmac_sha256::Hash::hash(black_box(&line)));
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u32 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    for (name, facts) in [("typical", typical()), ("chain", chain())] {
        if args.first().is_some_and(|only| *only != name) {
            continue;
        }
        let (line, published) = inputs(&facts);
        for (stage, what) in [
            ("record", "per record (build + redact + seal)".to_string()),
            (
                "parse",
                format!("to parse the {} published values", published.len()),
            ),
            (
                "sha",
                format!("for SHA-256 alone over the {} bytes", line.len()),
            ),
        ] {
            if args.get(1).is_some_and(|only| only != stage) {
                continue;
            }
            let start = Instant::now();
            run(stage, &facts, n);
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            println!("{name:>8} {stage:>6}: {us:.2} µs {what}");
        }
    }
}
