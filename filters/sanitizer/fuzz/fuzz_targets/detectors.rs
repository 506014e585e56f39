//! Any bytes as a value: decoding and every detector must finish without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::decode::canonicalize;
use portcullis_sanitizer::detect::scan_value;

fuzz_target!(|data: &[u8]| {
    let canon = canonicalize(data, 3);
    let mut rules = Vec::new();
    scan_value(&canon, &mut rules);
});
