//! Any bytes as a request body of each kind the sanitizer parses (JSON, form, multipart, XML,
//! GraphQL, text; plain, in UTF-16 or gzip-compressed), through the full engine with the default
//! policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::config::load;
use portcullis_sanitizer::engine::{inspect_body, inspect_head, Head, Step};

const TYPES: [&str; 8] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=B",
    "text/plain",
    "application/soap+xml",
    "application/graphql",
    "text/plain; charset=utf-16",
    "application/json; charset=utf-32le",
];

fuzz_target!(|data: &[u8]| {
    let Ok(compiled) = load(b"{}") else { return };
    let Some((&selector, body)) = data.split_first() else { return };
    let mut headers = vec![(
        "content-type".to_string(),
        TYPES[usize::from(selector) % TYPES.len()].to_string(),
    )];
    if selector & 0x80 != 0 {
        headers.push(("content-encoding".to_string(), "gzip".to_string()));
    }
    let head = Head { method: "POST", authority: "h", path: "/x", headers: &headers, has_body: true };
    if let Step::NeedBody(pending) = inspect_head(&compiled, &head) {
        let _ = inspect_body(&compiled, &pending, body);
    }
});
