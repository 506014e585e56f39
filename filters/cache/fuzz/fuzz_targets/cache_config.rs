//! Any bytes as the cache filter's configuration: refused with a named field or compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portcullis_cache::config::load(data);
});
