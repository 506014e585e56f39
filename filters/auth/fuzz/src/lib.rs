//! What every auth fuzz target shares: one policy with each kind of credential and key, and a
//! way to read fuzz input as a request. The keys are public (a TEST-ONLY P-256 point and the
//! public half of `filters/auth/src/testdata/TEST-ONLY-rsa2048.pem`); no private key is needed,
//! the fuzzer does not forge signatures, it attacks the parsers in front of them.

use portcullis_auth::apikey::{hash_key, to_hex};
use portcullis_auth::settings::{load, Policy};
use portcullis_common::slots::HashKey;

pub const NOW: u64 = 1_700_000_000;
pub const HMAC_SECRET: &[u8] = b"fuzz-only-hmac-secret-0123456789abcdef0123456789";
pub const PEPPER: &[u8] = b"fuzz-only-pepper";
pub const API_KEY: &str = "fuzz-api-key";

pub fn env(name: &str) -> Option<Vec<u8>> {
    match name {
        "FUZZ_JWT_SECRET" => Some(HMAC_SECRET.to_vec()),
        "FUZZ_PEPPER" => Some(PEPPER.to_vec()),
        _ => None,
    }
}

/// Header, cookie and query token sources, API keys, an HMAC provider and one with EC and RSA
/// keys, roles and rules: every parser auth runs on a request is reachable.
pub fn policy() -> Option<Policy> {
    let hash = to_hex(&hash_key(PEPPER, API_KEY.as_bytes()));
    let config = format!(
        r#"{{
  "providers": [
    {{"name": "hmac", "issuer": "https://issuer.test", "audiences": ["api"],
      "hmac_keys": [{{"alg": "HS256", "kid": "h1", "secret_env": "FUZZ_JWT_SECRET"}}],
      "roles_claim": "roles", "tenant_claim": "org.tenant", "max_lifetime_secs": 86400}},
    {{"name": "asym", "issuer": "https://asym.test", "audiences": ["api"],
      "jwks": {{"keys": [
        {{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "e1", "x": "ml4syX0yCUlccINQtF2UiGZWUyjxfAxmoLDcV4BKDOw", "y": "zck1isQLf-Xl4i15oy5rHTGGzgqHAtzQhRtRyV7b-Es"}},
        {{"kty": "RSA", "alg": "RS256", "kid": "r1", "e": "AQAB", "n": "vmRzvKdmlljCDtEgZs7SCawJR8jCaf9lllddKVYV4_qwm5qngV7hwaDQnBJtfhpssxbd_vIAHJ4J7T1id6DPBM-qbCnLvvDfa9QAbpPBZjoSq1q7FeEer0RBuqQl1i3Wj_B9gY52le_G1XFXT6jY2gYK19Y5P1tNUz9mnFGx5eIFyCKv4WL_X5Vfq_C4_0jaJIGIR60421spFmgpGC4EvjqXzFKv3VTH2cMI40tfsT-oM7IRS20xQn_dfpBoyY5OHZYqEswzClpBzC1GHIWdOMxf_BD52S-J0-db8517ZN_7ziji4y3Ote6eKFEJ-JD_IL66zqXqmClRrbNga-I5QQ"}}]}},
      "roles_claim": "realm_access.roles"}}
  ],
  "token_sources": [{{"header": "authorization"}}, {{"cookie": "session"}}, {{"query": "access_token"}}],
  "remove_token": true,
  "api_keys": {{"pepper_env": "FUZZ_PEPPER", "sources": [{{"header": "x-api-key"}}, {{"query": "api_key"}}],
    "keys": [{{"id": "k1", "hash": "{hash}", "owner": "fuzz", "roles": ["viewer"]}}]}},
  "roles": {{"viewer": {{"permissions": ["api:read"]}}, "admin": {{"permissions": ["*"], "inherits": ["viewer"]}}}},
  "rules": [
    {{"path": "/healthz", "public": true}},
    {{"path": "/api/{{id}}/items/**", "methods": ["GET"], "any_of": ["api:read"]}},
    {{"path": "/admin/**", "host": "*.example.com", "any_of": ["admin:*"]}},
    {{"path": "/**"}}
  ]
}}"#
    );
    // A refused configuration would make every run a no-op: fail loudly instead.
    match load(config.as_bytes(), &env, HashKey::from_bytes([7; 16])) {
        Ok(policy) => Some(policy),
        Err(e) => panic!("the fuzz configuration is refused: {e:?}"),
    }
}

/// Fuzz input as a request: the first line is the method, the second the path, the others
/// `name: value` headers (names lower-cased, as Envoy hands them over).
pub fn request(data: &[u8]) -> (String, String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default().to_string();
    let path = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (method, path, headers)
}
