//! Verification keys. Every key is bound to exactly one algorithm when it is loaded (from the
//! config or a JWKS document); a token's `alg` only selects among keys already bound to that
//! algorithm, so it can never turn a public key into an HMAC secret (RFC 8725 §2.1, §3.1).

use std::fmt;

use jwt_simple::prelude::*;
use serde_json::Value;

/// The algorithms we verify. `none` is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive JOSE names (RFC 7518): `hs256` or `none` are not algorithms.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Key material, typed by algorithm.
#[derive(Clone)]
pub enum Material {
    HS256(HS256Key),
    HS384(HS384Key),
    HS512(HS512Key),
    RS256(RS256PublicKey),
    RS384(RS384PublicKey),
    RS512(RS512PublicKey),
    PS256(PS256PublicKey),
    PS384(PS384PublicKey),
    PS512(PS512PublicKey),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
}

/// One verification key.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Alg,
    pub material: Material,
}

impl fmt::Debug for Key {
    // Never print key material, not even public keys: keeps logs short and secrets out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, kid={:?})", self.alg, self.kid)
    }
}

/// Shortest HMAC secret accepted: RFC 7518 §3.2 asks for a key at least as long as the hash.
pub fn min_hmac_len(alg: Alg) -> usize {
    match alg {
        Alg::HS384 => 48,
        Alg::HS512 => 64,
        _ => 32,
    }
}

impl Key {
    /// An HMAC key from secret bytes (read from an environment variable by the adapter).
    pub fn hmac(alg: Alg, kid: Option<String>, secret: &[u8]) -> Result<Key, String> {
        if secret.len() < min_hmac_len(alg) {
            return Err(format!(
                "{alg} secret is {} bytes; at least {} are required",
                secret.len(),
                min_hmac_len(alg)
            ));
        }
        let material = match alg {
            Alg::HS256 => Material::HS256(HS256Key::from_bytes(secret)),
            Alg::HS384 => Material::HS384(HS384Key::from_bytes(secret)),
            Alg::HS512 => Material::HS512(HS512Key::from_bytes(secret)),
            other => return Err(format!("{other} is not an HMAC algorithm")),
        };
        Ok(Key { kid, alg, material })
    }

    /// A public key from one JWK object. The algorithm comes from the JWK's `alg`, or, where the
    /// key type admits only one (EC curves, Ed25519), from the key type; an RSA key without `alg`
    /// is refused because RS and PS would both fit.
    pub fn from_jwk(jwk: &Value) -> Result<Key, String> {
        let obj = jwk.as_object().ok_or("a JWK must be a JSON object")?;
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        if let Some(usage) = text("use") {
            if usage != "sig" {
                return Err(format!("key use `{usage}` is not `sig`"));
            }
        }
        let kty = text("kty").ok_or("missing `kty`")?;
        let kid = text("kid").map(str::to_string);
        let alg = match (text("alg"), kty, text("crv")) {
            (Some(name), _, _) => {
                Alg::from_name(name).ok_or_else(|| format!("unsupported `alg` {name:?}"))?
            }
            (None, "EC", Some("P-256")) => Alg::ES256,
            (None, "EC", Some("P-384")) => Alg::ES384,
            (None, "OKP", Some("Ed25519")) => Alg::EdDSA,
            (None, kty, _) => return Err(format!("a `{kty}` key needs an explicit `alg`")),
        };
        let expected_kty = match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => {
                return Err("symmetric keys are not accepted from a JWKS".into())
            }
            Alg::ES256 | Alg::ES384 => "EC",
            Alg::EdDSA => "OKP",
            _ => "RSA",
        };
        if kty != expected_kty {
            return Err(format!("`alg` {alg} does not fit `kty` {kty}"));
        }
        // jwt-simple's JWK import checks members, curve and sizes, and refuses private parts.
        let mut public = obj.clone();
        public.remove("alg");
        public.remove("kid");
        public.remove("use");
        public.remove("key_ops");
        let json = Value::Object(public).to_string();
        let bad = |e: jwt_simple::Error| format!("invalid {alg} key: {e}");
        let material = match alg {
            Alg::RS256 => Material::RS256(RS256PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::RS384 => Material::RS384(RS384PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::RS512 => Material::RS512(RS512PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::PS256 => Material::PS256(PS256PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::PS384 => Material::PS384(PS384PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::PS512 => Material::PS512(PS512PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::ES256 => Material::ES256(ES256PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::ES384 => Material::ES384(ES384PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::EdDSA => Material::EdDSA(Ed25519PublicKey::from_jwk(&json).map_err(bad)?),
            Alg::HS256 | Alg::HS384 | Alg::HS512 => {
                return Err("symmetric keys are not accepted from a JWKS".into())
            }
        };
        Ok(Key { kid, alg, material })
    }

    /// Verifies signature and registered claims; the claims come back untyped.
    pub fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<serde_json::Map<String, Value>>, jwt_simple::Error> {
        type C = serde_json::Map<String, Value>;
        let o = Some(options);
        match &self.material {
            Material::HS256(k) => k.verify_token::<C>(token, o),
            Material::HS384(k) => k.verify_token::<C>(token, o),
            Material::HS512(k) => k.verify_token::<C>(token, o),
            Material::RS256(k) => k.verify_token::<C>(token, o),
            Material::RS384(k) => k.verify_token::<C>(token, o),
            Material::RS512(k) => k.verify_token::<C>(token, o),
            Material::PS256(k) => k.verify_token::<C>(token, o),
            Material::PS384(k) => k.verify_token::<C>(token, o),
            Material::PS512(k) => k.verify_token::<C>(token, o),
            Material::ES256(k) => k.verify_token::<C>(token, o),
            Material::ES384(k) => k.verify_token::<C>(token, o),
            Material::EdDSA(k) => k.verify_token::<C>(token, o),
        }
    }
}

/// Parses a JWKS document (`{"keys": [...]}`). Keys we cannot use (encryption keys, unknown
/// algorithms) are skipped and reported, so one odd key from an IdP does not block the rest; a
/// document with no usable key at all is an error.
pub fn parse_jwks(bytes: &[u8], max_keys: usize) -> Result<(Vec<Key>, Vec<String>), String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no `keys` array")?;
    if list.len() > max_keys {
        return Err(format!(
            "JWKS has {} keys; at most {max_keys} are accepted",
            list.len()
        ));
    }
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, jwk) in list.iter().enumerate() {
        match Key::from_jwk(jwk) {
            Ok(k) => keys.push(k),
            Err(e) => skipped.push(format!("keys[{i}]: {e}")),
        }
    }
    if keys.is_empty() {
        return Err(match skipped.first() {
            Some(first) => format!("JWKS has no usable key ({first})"),
            None => "JWKS has no keys".into(),
        });
    }
    Ok((keys, skipped))
}
