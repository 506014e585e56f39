//! Test helpers: keys for every algorithm, token minting (through jwt-simple, or by hand for
//! headers jwt-simple would never write), providers.

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use jwt_simple::prelude::*;
use serde_json::{json, Value};

use crate::jwt::Provider;
use crate::keys::{Alg, Key};

pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "api";
pub const NOW: u64 = 1_700_000_000;
pub const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub const RSA_PEM: &str = include_str!("testdata/TEST-ONLY-rsa2048.pem");
pub const RSA_OTHER_PEM: &str = include_str!("testdata/TEST-ONLY-rsa2048-other.pem");

pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

/// Standard claims for `sub`, issued now, valid for ten minutes.
pub fn claims(sub: &str, extra: Value) -> JWTClaims<serde_json::Map<String, Value>> {
    let custom = extra.as_object().cloned().unwrap_or_default();
    let mut c = Claims::with_custom_claims(custom, Duration::from_secs(600))
        .with_issuer(ISS)
        .with_audience(AUD)
        .with_subject(sub);
    c.issued_at = Some(Duration::from_secs(NOW));
    c.invalid_before = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 600));
    c
}

type SignFn = dyn Fn(JWTClaims<serde_json::Map<String, Value>>) -> String;

/// A signer for one algorithm, with its public JWK (with `alg` and `kid`) or HMAC key.
pub struct Signer {
    sign: Box<SignFn>,
    pub public: Key,
}

impl Signer {
    pub fn token(&self, c: JWTClaims<serde_json::Map<String, Value>>) -> String {
        (self.sign)(c)
    }
}

fn jwk_key(jwk: &str, alg: Alg, kid: &str) -> Key {
    let mut v: Value = serde_json::from_str(jwk).unwrap();
    v["alg"] = json!(alg.name());
    v["kid"] = json!(kid);
    Key::from_jwk(&v, &Alg::ASYMMETRIC).unwrap().remove(0)
}

/// `other` picks a second, different key of the same algorithm.
pub fn signer(alg: Alg, kid: &str, other: bool) -> Signer {
    macro_rules! asym {
        ($kp:expr) => {{
            let kp = $kp.with_key_id(kid);
            let public = jwk_key(&kp.public_key().to_jwk(), alg, kid);
            Signer {
                public,
                sign: Box::new(move |c| kp.sign(c).unwrap()),
            }
        }};
    }
    macro_rules! hmac {
        ($t:ident) => {{
            let secret: Vec<u8> = if other {
                HMAC_SECRET.iter().rev().copied().collect()
            } else {
                HMAC_SECRET.to_vec()
            };
            let k = $t::from_bytes(&secret).with_key_id(kid);
            Signer {
                public: Key::hmac(alg, Some(kid.to_string()), &secret).unwrap(),
                sign: Box::new(move |c| k.authenticate(c).unwrap()),
            }
        }};
    }
    let pem = if other { RSA_OTHER_PEM } else { RSA_PEM };
    match alg {
        Alg::HS256 => hmac!(HS256Key),
        Alg::HS384 => hmac!(HS384Key),
        Alg::HS512 => hmac!(HS512Key),
        Alg::RS256 => asym!(RS256KeyPair::from_pem(pem).unwrap()),
        Alg::RS384 => asym!(RS384KeyPair::from_pem(pem).unwrap()),
        Alg::RS512 => asym!(RS512KeyPair::from_pem(pem).unwrap()),
        Alg::PS256 => asym!(PS256KeyPair::from_pem(pem).unwrap()),
        Alg::PS384 => asym!(PS384KeyPair::from_pem(pem).unwrap()),
        Alg::PS512 => asym!(PS512KeyPair::from_pem(pem).unwrap()),
        Alg::ES256 => asym!(ES256KeyPair::generate()),
        Alg::ES384 => asym!(ES384KeyPair::generate()),
        Alg::ES512 => panic!("jwt-simple has no ES512: see es512_signer"),
        Alg::EdDSA => asym!(Ed25519KeyPair::generate()),
    }
}

pub fn provider(keys: Vec<Key>) -> Provider {
    Provider {
        name: "test".into(),
        issuer: ISS.into(),
        audiences: vec![AUD.into(), "other-api".into()],
        algorithms: Alg::ASYMMETRIC.to_vec(),
        kidless_tokens_any_key: false,
        role_prefix: None,
        scopes_claim: None,
        static_keys: keys,
        remote: false,
        leeway_secs: 60,
        max_lifetime_secs: None,
        required_claims: vec!["exp".into()],
        subject_claim: "sub".into(),
        roles_claim: Some("roles".into()),
        tenant_claim: None,
    }
}

/// A token assembled by hand: any header, any payload, HS256-signed with `secret` (or an
/// explicit signature).
pub fn handmade(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = hmac_sha256::HMAC::mac(input.as_bytes(), secret);
    format!("{input}.{}", b64(&sig))
}

pub fn payload(sub: &str) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": sub, "iat": NOW, "exp": NOW + 600})
}
