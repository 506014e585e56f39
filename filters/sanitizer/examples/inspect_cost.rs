//! What inspecting one request costs in the core (native, release), for the benchmark's request:
//! `cargo run --release -p portcullis-sanitizer --example inspect_cost`
//! A measurement, not a test: it prints microseconds per request and asserts nothing.
//! `ONLY=get` or `ONLY=post` runs one of the two cases (the GET runs 20 times as often).

use std::time::Instant;

use portcullis_sanitizer::config::{load, Compiled};
use portcullis_sanitizer::engine::{inspect_body, inspect_head, Head, Step};

/// The same 4 KiB order document `make bench` posts.
fn order_4k() -> String {
    let items: Vec<String> = (0..24)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","name":"Item {i}: O'Brien's hand-made mug, 350 ml","quantity":{},"price_cents":{},"note":"Please gift-wrap; deliver after 5 pm if possible."}}"#,
                i % 4 + 1,
                1299 + i * 10
            )
        })
        .collect();
    let mut doc = format!(
        r#"{{"customer":"ada@example.com","currency":"EUR","items":[{}]}}"#,
        items.join(",")
    );
    // Distinct keys: a repeated key is refused (`json_duplicate_key`) before any inspection.
    let mut n = 0;
    while doc.len() < 4096 {
        doc.insert_str(doc.len() - 1, &format!(r#","pad{n}":"x""#));
        n += 1;
    }
    doc
}

/// The benchmark's GET: what Envoy hands the filter for `GET /api/orders/1` with a bearer token.
fn get_cost(compiled: &Compiled, runs: u32) {
    let token = format!(
        "Bearer eyJhbGciOiJIUzI1NiJ9.{}.{}",
        "e".repeat(160),
        "s".repeat(43)
    );
    let headers: Vec<(String, String)> = [
        (":authority", "localhost:10000"),
        (":path", "/api/orders/1"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", token.as_str()),
        ("user-agent", "wrk"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "7f3c1a9e-0000-4000-8000-000000000001"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let head = Head {
        method: "GET",
        authority: "localhost:10000",
        path: "/api/orders/1",
        headers: &headers,
        has_body: false,
    };
    let started = Instant::now();
    let (mut allowed, mut published) = (0, 0);
    for _ in 0..runs {
        if let Step::Done(outcome) = inspect_head(compiled, &head) {
            allowed += usize::from(outcome.status == 200);
            published += outcome.decision().to_json().len();
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!(
        "GET /api/orders/1: {per:.2} µs per request ({allowed}/{runs} allowed, decision {} bytes)",
        published / runs as usize
    );
}

fn main() {
    // Compiled in, so the wasm build (which has no file system) runs the same configuration.
    let demo = include_bytes!("../../../envoy/filters/sanitizer.json");
    let Ok(compiled) = load(demo) else {
        eprintln!("envoy/filters/sanitizer.json does not load");
        return;
    };
    let body = order_4k();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("content-length".to_string(), body.len().to_string()),
        ("user-agent".to_string(), "wrk".to_string()),
    ];
    let head = Head {
        method: "POST",
        authority: "localhost",
        path: "/echo",
        headers: &headers,
        has_body: true,
    };
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    // ONLY=get or ONLY=post runs one case, for instruction counts of that case alone.
    let only = std::env::var("ONLY").unwrap_or_default();
    if only != "post" {
        get_cost(&compiled, runs * 20);
    }
    if only == "get" {
        return;
    }
    let started = Instant::now();
    let mut allowed = 0;
    for _ in 0..runs {
        if let Step::NeedBody(p) = inspect_head(&compiled, &head) {
            let outcome = inspect_body(&compiled, &p, body.as_bytes());
            allowed += usize::from(outcome.status == 0 || outcome.status == 200);
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!(
        "{} bytes of JSON: {per:.1} µs per request ({allowed}/{runs} allowed)",
        body.len()
    );
}
