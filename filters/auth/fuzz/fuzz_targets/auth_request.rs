//! Any bytes as a request through the auth engine: method, path (query tokens, API keys in the
//! query, route patterns), headers (bearer tokens, cookies, API keys), CORS preflights.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use portcullis_auth::engine::{Engine, Request, Tally};
use portcullis_auth_fuzz::{policy, request, NOW};
use portcullis_common::slots::MemoryStore;

thread_local! {
    // One engine for the whole run, as in a worker: its token cache sees every input.
    static ENGINE: RefCell<Option<Engine>> = RefCell::new(policy().map(Engine::new));
}

fuzz_target!(|data: &[u8]| {
    let (method, path, headers) = request(data);
    let authority = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map_or("api.example.com", |(_, v)| v.as_str());
    let req = Request {
        method: &method,
        authority,
        path: &path,
        headers: &headers,
    };
    ENGINE.with(|e| {
        if let Some(engine) = e.borrow_mut().as_mut() {
            let store = MemoryStore::new();
            let mut tally = Tally::default();
            let _ = engine.decide(&req, NOW, &store, true, &mut tally);
        }
    });
});
