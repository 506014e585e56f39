//! Any bytes as a bearer token, against HS256, ES256 and RS256 keys. Input holding two NUL bytes
//! is taken as the three parts of a JWS, each base64url-encoded here, so the fuzzer reaches the
//! header and claims JSON parsers instead of spending its time on base64 errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_auth::jwt::verify;
use portcullis_auth::settings::Policy;
use portcullis_auth_fuzz::{policy, NOW};

thread_local! {
    // Compiled once (the keys are parsed and checked at load); `Policy` holds `Rc`s.
    static POLICY: Option<Policy> = policy();
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    POLICY.with(|policy| {
        if let Some(policy) = policy {
            run(policy, data);
        }
    });
});

fn run(policy: &Policy, data: &[u8]) {
    let parts: Vec<&[u8]> = data.splitn(3, |b| *b == 0).collect();
    let token = if parts.len() == 3 {
        format!("{}.{}.{}", b64(parts[0]), b64(parts[1]), b64(parts[2]))
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    let remote = vec![None; policy.providers.len()];
    let _ = verify(
        &token,
        &policy.providers,
        &remote,
        NOW,
        policy.max_token_bytes,
    );
}
