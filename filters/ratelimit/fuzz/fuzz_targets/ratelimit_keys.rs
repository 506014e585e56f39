//! Any bytes as a request through a limiter with every kind of key part (client address, header,
//! route, method) and as stored slot state (token bucket, sliding window, penalty): the fuzzer
//! controls what clients send and, through the state decoders, what a torn shared-data value
//! would hold.
#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use portcullis_common::client::parse_source_address;
use portcullis_common::slots::{HashKey, MemoryStore};
use portcullis_ratelimit::config::Policy;
use portcullis_ratelimit::key::RequestView;
use portcullis_ratelimit::limiter::Limiter;
use portcullis_ratelimit::penalty::PenaltyState;

const CONFIG: &[u8] = br#"{"limits": [
  {"name": "per-ip", "algorithm": "token_bucket", "limit": 5, "window": 1, "burst": 5, "key": ["client_ip"]},
  {"name": "per-key", "algorithm": "sliding_window", "limit": 3, "window": 60, "key": ["header:x-api-key", "method"]},
  {"name": "login", "algorithm": "sliding_window", "limit": 2, "window": 60, "key": ["client_ip", "route"],
   "route": {"path": "/login/{tenant}", "methods": ["POST"]}}],
  "penalties": {"key": ["client_ip"], "strikes": 2, "strike_window": 60, "from_statuses": [401, 403],
   "bans": [60, 300], "decay": 3600, "status": 429},
  "table": {"buckets": 64, "ways": 2}}"#;

thread_local! {
    // One limiter and one store for the whole run, as in a worker: making the tables (every
    // slot key) per input cost ~70 ms and left the fuzzer at 14 inputs a second. State carries
    // over between inputs, as it does between requests.
    static WORKER: RefCell<(Limiter, MemoryStore)> = RefCell::new(worker());
}

fn worker() -> (Limiter, MemoryStore) {
    // A refused configuration would make every run a no-op: fail loudly instead.
    let policy = match Policy::parse(CONFIG) {
        Ok(policy) => policy,
        Err(e) => panic!("the fuzz configuration is refused: {e:?}"),
    };
    let limiter = Limiter::new("ratelimit-fuzz", policy, HashKey::from_bytes([3; 16]));
    let mut store = MemoryStore::new();
    if let Err(e) = limiter.prepare(&mut store) {
        panic!("the limiter's tables cannot be made: {e:?}");
    }
    (limiter, store)
}

fuzz_target!(|data: &[u8]| {
    let _ = PenaltyState::decode(data);
    WORKER.with(|w| {
        let (limiter, store) = &mut *w.borrow_mut();
        run(limiter, store, data);
    });
});

fn run(limiter: &Limiter, store: &mut MemoryStore, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let address = lines.next().unwrap_or_default();
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let client_ip: Option<IpAddr> = parse_source_address(address);
    let req = RequestView {
        method,
        authority: "h",
        path,
        client_ip,
        identity: None,
        headers: &headers,
    };
    // Enough requests to exhaust each limit and start a ban.
    for i in 0..8 {
        let verdict = limiter.check(&req, store, 1_700_000_000_000 + i);
        let _ = verdict;
        let _ = limiter.on_response(403, Some(address.as_bytes()), store, 1_700_000_000_000 + i);
    }
}
