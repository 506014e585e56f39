//! Any bytes as what auth fetches from an identity provider: a JWKS document (and each of its
//! keys as a JWK), an OIDC discovery document, a revocation list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_auth::keys::{parse_jwks, Alg, Key};
use portcullis_auth::remote::jwks_uri_from_discovery;
use portcullis_auth::revocation::parse_list;

fuzz_target!(|data: &[u8]| {
    let _ = parse_jwks(data, 64, &Alg::ALL);
    let _ = parse_jwks(data, 64, &Alg::ASYMMETRIC);
    let _ = jwks_uri_from_discovery(data, "https://issuer.test");
    if let Ok(list) = parse_list(data, 1000) {
        for entry in &list {
            let _ = entry.target();
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = Key::from_jwk(&value, &Alg::ALL);
    }
});
