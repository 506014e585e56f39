//! Any bytes as the audit filter's configuration (sink, HTTP batching, exclusions, redaction,
//! hashing): refused with a named field or compiled; the path exclusions then see each line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_audit::config::AuditConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AuditConfig::parse(data) {
        for line in String::from_utf8_lossy(data).split('\n') {
            let _ = config.is_excluded(line);
        }
    }
});
