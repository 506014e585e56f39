//! Any bytes as the rate-limit filter's configuration (limits, keys, routes, penalties, CIDRs):
//! refused with a named field or compiled; each line also as a key part (`client_ip`,
//! `header:x-api-key`, ...).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_ratelimit::config::Policy;
use portcullis_ratelimit::key::KeyPart;

fuzz_target!(|data: &[u8]| {
    let _ = Policy::parse(data);
    for line in String::from_utf8_lossy(data).split('\n') {
        let _ = KeyPart::parse(line);
    }
});
