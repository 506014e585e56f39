//! Any bytes as what the audit filter reads or rewrites: NDJSON for the verify command (sealed
//! records, batch header lines, Envoy log lines), request paths to redact, values that may be
//! tokens, decision details to redact, and records to seal.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use portcullis_audit::chain::{verify, Sealer};
use portcullis_audit::json::Json;
use portcullis_audit::redact::{looks_like_jwt, redact_path, truncate, write_details};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = verify(&text, false);
    let _ = verify(&text, true);
    let sensitive: BTreeSet<String> = ["token", "password", "api_key"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for line in text.split('\n') {
        let _ = redact_path(line, &sensitive);
        let _ = looks_like_jwt(line);
        let _ = truncate(line, 17);
        let mut out = Json::with_capacity(64);
        out.cut(line, 9);
    }
    if let Ok(serde_json::Value::Object(details)) = serde_json::from_slice(data) {
        let mut out = Json::with_capacity(256);
        write_details(&mut out, &details, &sensitive);
    }
    // A record must be a JSON object ending in `}` to be sealed; anything else is refused.
    let mut sealer = Sealer::new("fuzz".to_string());
    let _ = sealer.seal(data.to_vec());
});
