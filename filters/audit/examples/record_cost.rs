//! Prints what the core costs per request on this machine (native build): building, redacting
//! and sealing a typical record, and its size. A measurement, not a test:
//! `cargo run --release -p portcullis-audit --example record_cost`

use std::time::Instant;

use portcullis_audit::auditor::{Auditor, Observed};
use portcullis_audit::chain::Sealer;
use portcullis_audit::config::AuditConfig;
use portcullis_audit::record::Facts;
use portcullis_common::decision::Decision;

fn main() {
    let Ok(config) = AuditConfig::parse(b"") else {
        return;
    };
    let mut auditor = Auditor::new(config, None);
    let mut sealer = Sealer::new("bench".into());
    let facts = Facts {
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
    };
    let n = 200_000u32;
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        if let Observed::Keep(built) = auditor.observe(&facts) {
            if let Some(line) = sealer.seal(&built.json) {
                bytes += line.len();
            }
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{n} records: {:.2} µs per record (build + redact + seal), {} bytes per sealed record",
        elapsed.as_secs_f64() * 1e6 / f64::from(n),
        bytes / n as usize
    );
}
