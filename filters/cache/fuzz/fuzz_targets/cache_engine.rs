//! Any bytes as one exchange through the cache engine, then the same request again: a request
//! (method, target, headers), the upstream's response (status, headers) and its body, split at
//! NUL bytes. The second request meets whatever the first stored: serving, `Age`, revalidation
//! with a 304 carrying the same headers, `Vary` and invalidation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_cache::config::load;
use portcullis_cache::engine::{Engine, Request, RequestAction, ResponseAction};
use portcullis_common::slots::MemoryStore;

const NOW: u64 = 1_700_000_000;
const CONFIG: &[u8] = br#"{"routes": [{"path": "/**", "methods": ["GET", "HEAD"]}],
  "heuristic": {"fraction": 0.1, "max_secs": 3600}, "key": {"sort_query": true,
  "ignore_params": ["utm_source"]}, "purge": {"method": true, "path": "/_cache/purge"}}"#;

/// `first line` and `name: value` lines, names lower-cased.
fn head(text: &str) -> (&str, Vec<(String, String)>) {
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (first, headers)
}

fn exchange(
    engine: &Engine,
    store: &mut MemoryStore,
    req: &Request,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    if let RequestAction::Forward { pending, .. } = engine.on_request(store, req) {
        if !pending.reads_response() {
            return;
        }
        let response = engine.on_response(store, &pending, status, headers, req.now + 1);
        if let ResponseAction::Pass {
            capture: Some(capture),
            ..
        } = response
        {
            let _ = engine.finish(store, *capture, body.to_vec(), req.now + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A refused configuration would make every run a no-op: fail loudly instead.
    let config =
        load(CONFIG).unwrap_or_else(|e| panic!("the fuzz configuration is refused: {e:?}"));
    let engine = Engine::new(config, "cache");
    let mut parts = data.splitn(3, |b| *b == 0);
    let request = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let response = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let (line, req_headers) = head(&request);
    let (method, target) = line.split_once(' ').unwrap_or(("GET", line));
    let (status, resp_headers) = head(&response);
    let status = status.trim().parse::<u16>().unwrap_or(200);
    let mut store = MemoryStore::new();
    let req = Request {
        method,
        scheme: "https",
        authority: "h",
        target,
        headers: &req_headers,
        identity: None,
        now: NOW,
    };
    exchange(&engine, &mut store, &req, status, &resp_headers, body);
    // Later, once fresh and once long stale; the upstream answers a revalidation with a 304.
    for later in [NOW + 5, NOW + 100_000] {
        let again = Request { now: later, ..req };
        exchange(&engine, &mut store, &again, 304, &resp_headers, body);
    }
});
