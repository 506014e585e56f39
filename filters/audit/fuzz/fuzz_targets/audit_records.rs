//! Any bytes as what the audit filter reads or rewrites: NDJSON for the verify command (sealed
//! records, batch header lines, Envoy log lines), request paths to redact, values that may be
//! tokens, decision details to redact, and records to seal.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use portcullis_audit::chain::{verify, Keyring, Seal, SealKey, Sealer};
use portcullis_audit::json::Json;
use portcullis_audit::redact::{looks_like_jwt, redact_path, truncate, write_details};

/// A fixed key (fuzzing only): records sealed with it verify, so the chain checks are reached.
fn key() -> SealKey {
    match SealKey::new("fuzz-1", &[7u8; 32]) {
        Ok(k) => k,
        Err(e) => panic!("the fuzz key is refused: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let keyed = Keyring::new(vec![key()], false);
    let any = Keyring::new(vec![key()], true);
    let _ = verify(&text, false, &keyed);
    let _ = verify(&text, true, &any);
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
    for seal in [Seal::Keyed(key()), Seal::Unkeyed] {
        let mut sealer = Sealer::new("fuzz".to_string(), seal);
        if let Some(line) = sealer.seal(data.to_vec()) {
            let _ = verify(&line, false, &any);
        }
    }
});
