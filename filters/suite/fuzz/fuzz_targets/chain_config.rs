//! Any bytes as the `chain` filter's configuration: its stages are parsed, then each stage's
//! configuration goes to its filter's loader as the chain does at configure time, so every
//! filter's configuration parser is reached from one document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::chain_config::parse;
use portcullis::Filter;
use portcullis_common::slots::HashKey;

fuzz_target!(|data: &[u8]| {
    let Ok(stages) = parse(data) else { return };
    for stage in stages {
        let raw = stage.config.as_slice();
        let _ = match stage.filter {
            Filter::Audit => portcullis_audit::config::AuditConfig::parse(raw).map(|_| ()),
            Filter::Auth => {
                let env =
                    |_: &str| Some(b"fuzz-only-secret-0123456789abcdef0123456789abcdef".to_vec());
                portcullis_auth::settings::load(raw, &env, HashKey::from_bytes([1; 16])).map(|_| ())
            }
            Filter::Cache => portcullis_cache::config::load(raw).map(|_| ()),
            Filter::Ratelimit => portcullis_ratelimit::config::Policy::parse(raw).map(|_| ()),
            Filter::Sanitizer => portcullis_sanitizer::config::load(raw).map(|_| ()),
            Filter::Chain => Ok(()),
        };
    }
});
