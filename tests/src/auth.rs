//! What the auth filter needs from the harness: the secrets Envoy passes to the filters' VM as
//! environment variables (random for each test process, never the developer's `.dev` secret),
//! and demo tokens signed with that secret for tests of the demo configuration.

use std::io::Read;
use std::sync::OnceLock;

use portcullis_devkit::render::AUTH_ENV_KEYS;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .unwrap_or_else(|e| panic!("/dev/urandom: {e}"));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HMAC secret the demo auth config verifies tokens with, in this test process.
pub fn demo_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| random_hex(32))
}

/// The API-key pepper, in this test process.
pub fn api_key_pepper() -> &'static str {
    static PEPPER: OnceLock<String> = OnceLock::new();
    PEPPER.get_or_init(|| random_hex(24))
}

/// Environment for Envoy: the variables the filters' VM is given (`host_env_keys`).
pub fn envoy_env() -> Vec<(&'static str, &'static str)> {
    let [secret, pepper] = AUTH_ENV_KEYS;
    vec![(secret, demo_secret()), (pepper, api_key_pepper())]
}

/// A demo token (`make token ROLE=...`) valid for ten minutes, for the demo configuration.
pub fn demo_token(role: &str) -> String {
    portcullis_devkit::token::mint(
        demo_secret().as_bytes(),
        &format!("demo-{role}"),
        &[role.to_string()],
        600,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// An auth configuration under which every route is public: for tests of another filter whose
/// requests must not carry credentials (a request with `Authorization` changes what a shared cache
/// may store, for instance). Auth still runs and publishes its decision.
pub const ALL_PUBLIC: &str = r#"{"rules": [{"path": "/**", "public": true}]}"#;
