//! Any bytes as the auth filter's configuration: refused with a named field or compiled, never
//! a panic (a panic in `on_configure` kills the VM).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_auth::settings::load;
use portcullis_auth_fuzz::env;
use portcullis_common::slots::HashKey;

fuzz_target!(|data: &[u8]| {
    let _ = load(data, &env, HashKey::from_bytes([7; 16]));
});
