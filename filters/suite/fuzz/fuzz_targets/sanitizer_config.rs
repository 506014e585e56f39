//! Any bytes as the sanitizer's configuration (its own fuzz crate, filters/sanitizer/fuzz,
//! covers the request parsers): refused with a named field or compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portcullis_sanitizer::config::load(data);
});
