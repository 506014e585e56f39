//! Any bytes as the header fields the cache parses: each line is offered as `Cache-Control`
//! (request and response), `Pragma`, `Age`, an HTTP-date (`Date`, `Expires`, `Last-Modified`),
//! `Vary`, a request target with its query string; the whole input as a stored entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_cache::directives::{delta_seconds, parse_request, parse_response};
use portcullis_cache::entry::Entry;
use portcullis_cache::freshness::{current_age, http_date, initial_age, lifetime, Heuristic};
use portcullis_cache::key::{normalise_field, normalise_query, split_target, url_key, vary_names};

fuzz_target!(|data: &[u8]| {
    let _ = Entry::decode(data);
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let response = parse_response(&lines);
    let _ = parse_request(&lines, &lines);
    let _ = parse_request(&[], &lines);
    let _ = vary_names(&lines);
    let _ = normalise_field(&lines);
    let ignore = vec!["utm_source".to_string(), "fbclid".to_string()];
    for line in &lines {
        let age = delta_seconds(Some(line));
        let date = http_date(line);
        let heuristic = Some(Heuristic {
            fraction: 0.1,
            max_secs: 86_400,
        });
        let _ = lifetime(
            &response,
            200,
            date,
            Some(line),
            date,
            1_700_000_000,
            heuristic,
        );
        let initial = initial_age(age, date, 1_700_000_000, 1_700_000_001);
        let _ = current_age(initial, 1_700_000_001, 1_700_000_100);
        let (path, query) = split_target(line);
        let q = normalise_query(query, true, &ignore);
        let _ = url_key("https", "h", path, &q);
    }
});
