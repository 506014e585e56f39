//! The labelled corpus (`corpus/*.jsonl`, made by `corpus/generate.py`) through the core with the
//! demo configuration: detection per category and the false-positive rate, with the targets
//! asserted. The same corpus goes through the real Envoy in `tests/tests/sanitizer.rs`.

use std::collections::BTreeMap;

use crate::config::{load, Compiled};
use crate::engine::{inspect_body, inspect_head, Head, Step, Verdict};

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn blocked(c: &Compiled, kind: &str, payload: &str) -> bool {
    let (method, path, ct, body, ua) = match kind {
        "query" => (
            "GET",
            format!("/search?q={}", encode(payload)),
            None,
            String::new(),
            None,
        ),
        "query_raw" => (
            "GET",
            format!("/search?{payload}"),
            None,
            String::new(),
            None,
        ),
        "json" => (
            "POST",
            "/echo".into(),
            Some("application/json"),
            payload.to_string(),
            None,
        ),
        "form" => (
            "POST",
            "/echo".into(),
            Some("application/x-www-form-urlencoded"),
            format!("comment={}", encode(payload)),
            None,
        ),
        "ua" => ("GET", "/echo".into(), None, String::new(), Some(payload)),
        "path" => (
            "GET",
            format!("/api/v1/items/{payload}"),
            None,
            String::new(),
            None,
        ),
        "xml" => (
            "POST",
            "/echo".into(),
            Some("application/xml"),
            payload.to_string(),
            None,
        ),
        other => panic!("unknown kind {other}"),
    };
    let mut headers = vec![(
        "user-agent".to_string(),
        ua.unwrap_or("corpus-test/1.0").to_string(),
    )];
    if let Some(ct) = ct {
        headers.push(("content-type".into(), ct.into()));
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let head = Head {
        method,
        authority: "localhost",
        path: &path,
        headers: &headers,
        has_body: !body.is_empty(),
    };
    let outcome = match inspect_head(c, &head) {
        Step::Done(o) => o,
        Step::NeedBody(p) => inspect_body(c, &p, body.as_bytes()),
    };
    outcome.verdict == Verdict::Deny
}

/// Embedded, so the test also runs as wasm in Wasmtime (no file system there).
fn entries(file: &str) -> Vec<(String, String, String)> {
    let text = match file {
        "attacks.jsonl" => include_str!("../corpus/attacks.jsonl"),
        "holdout.jsonl" => include_str!("../corpus/holdout.jsonl"),
        "holdout2.jsonl" => include_str!("../corpus/holdout2.jsonl"),
        "heldback.jsonl" => include_str!("../corpus/heldback.jsonl"),
        _ => include_str!("../corpus/benign.jsonl"),
    };
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("label"), s("kind"), s("payload"))
        })
        .collect()
}

#[test]
fn corpus_meets_the_targets() {
    let c = load(include_bytes!("../../../envoy/filters/sanitizer.json")).unwrap();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (label, kind, payload) in entries("attacks.jsonl") {
        let hit = blocked(&c, &kind, &payload);
        let e = per.entry(label.clone()).or_default();
        e.0 += 1;
        if hit {
            e.1 += 1;
        } else {
            misses.push(format!("{label} {kind} {payload}"));
        }
    }
    let benign = entries("benign.jsonl");
    let fps: Vec<String> = benign
        .iter()
        .filter(|(_, k, p)| blocked(&c, k, p))
        .map(|(_, k, p)| format!("{k} {p}"))
        .collect();
    for m in &misses {
        eprintln!("MISS {m}");
    }
    for f in &fps {
        eprintln!("FP   {f}");
    }
    for (label, (n, hit)) in &per {
        eprintln!(
            "{label:10} {hit:4}/{n:4} = {:.1} %",
            100.0 * *hit as f64 / *n as f64
        );
    }
    let fp_rate = 100.0 * fps.len() as f64 / benign.len() as f64;
    eprintln!(
        "benign     {} false positives / {} = {fp_rate:.2} %",
        fps.len(),
        benign.len()
    );
    assert!(benign.len() >= 500 && per.values().map(|v| v.0).sum::<usize>() >= 500);
    for (label, (n, hit)) in &per {
        assert!(
            *hit as f64 >= 0.95 * *n as f64,
            "{label}: {hit}/{n} detected"
        );
    }
    assert!(fp_rate <= 0.5, "false positives {fp_rate:.2} %");
}

/// The held-out sets (`corpus/holdout.py`, `corpus/holdout2.py`): reported, not asserted.
/// `cargo test -p portcullis-sanitizer holdout -- --ignored --nocapture`
#[test]
#[ignore = "a report, not a gate"]
fn holdout_report() {
    for set in ["holdout.jsonl", "holdout2.jsonl"] {
        println!("{set}");
        report(set);
    }
}

/// The held-back set of issue 14 (`corpus/heldback.py`): per class detection, and false
/// positives on realistic API traffic (`benign`) and on benign values that look dangerous
/// (`tricky`). Scored once per detector change; the scores are recorded in docs/sanitizer.md.
/// `cargo test -p portcullis-sanitizer heldback -- --ignored --nocapture`
#[test]
#[ignore = "a report, not a gate: the held-back set must not become a tuning target"]
fn heldback_report() {
    report("heldback.jsonl");
}

fn report(set: &str) {
    let c = load(include_bytes!("../../../envoy/filters/sanitizer.json")).unwrap();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (label, kind, payload) in entries(set) {
        let hit = blocked(&c, &kind, &payload);
        let e = per.entry(label.clone()).or_default();
        e.0 += 1;
        if hit {
            e.1 += 1;
        }
        if hit == (label == "benign" || label == "tricky") {
            println!(
                "{} {label} {kind} {payload}",
                if hit { "FP  " } else { "MISS" }
            );
        }
    }
    for (label, (n, hit)) in &per {
        println!(
            "| {label} | {n} | {hit} | {:.1} % |",
            100.0 * *hit as f64 / *n as f64
        );
    }
}
