//! Verification keys. Every key is bound to exactly one algorithm when it is loaded (from the
//! config or a JWKS document); a token's `alg` only selects among keys already bound to that
//! algorithm, so it can never turn a public key into an HMAC secret (RFC 8725 §2.1, §3.1).

use std::fmt;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
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
    ES512,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 13] = [
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
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// What a provider accepts from a JWKS unless its `algorithms` says otherwise: every
    /// asymmetric algorithm we verify (HMAC never comes from a JWKS).
    pub const ASYMMETRIC: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
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
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// The JWK key type (and curve, for EC and OKP) this algorithm needs (RFC 7518 §3.1,
    /// RFC 8037): an algorithm is never used with a key of another type.
    fn key_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => ("oct", None),
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                ("RSA", None)
            }
            Alg::ES256 => ("EC", Some("P-256")),
            Alg::ES384 => ("EC", Some("P-384")),
            Alg::ES512 => ("EC", Some("P-521")),
            Alg::EdDSA => ("OKP", Some("Ed25519")),
        }
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
    /// jwt-simple has no P-521: RustCrypto's `p521` verifies, see `verify_es512`.
    ES512(p521::ecdsa::VerifyingKey),
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

    /// The keys one JWK object stands for: one per algorithm it may verify. With `alg`, that
    /// algorithm (if it fits the key type and `allowed` lists it); without `alg` (RFC 7517 §4.4
    /// makes it optional, and Entra ID, Cognito and Ping leave it out), every algorithm of
    /// `allowed` that the key type and curve admit. HMAC never comes from a JWKS, and an
    /// algorithm of another key type never applies, so an RSA key cannot verify an HS or ES token.
    pub fn from_jwk(jwk: &Value, allowed: &[Alg]) -> Result<Vec<Key>, String> {
        let obj = jwk.as_object().ok_or("a JWK must be a JSON object")?;
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        if let Some(usage) = text("use") {
            if usage != "sig" {
                return Err(format!("key use `{usage}` is not `sig`"));
            }
        }
        let kty = text("kty").ok_or("missing `kty`")?;
        if kty == "oct" {
            return Err("symmetric keys are not accepted from a JWKS".into());
        }
        if !matches!(kty, "RSA" | "EC" | "OKP") {
            return Err(format!("unsupported `kty` {kty:?}"));
        }
        let crv = text("crv");
        let fits = |a: Alg| {
            let (want_kty, want_crv) = a.key_type();
            want_kty == kty && (want_crv.is_none() || want_crv == crv)
        };
        let algs: Vec<Alg> = match text("alg") {
            Some(name) => {
                let alg =
                    Alg::from_name(name).ok_or_else(|| format!("unsupported `alg` {name:?}"))?;
                if alg.is_hmac() {
                    return Err("symmetric keys are not accepted from a JWKS".into());
                }
                if !fits(alg) {
                    return Err(format!(
                        "`alg` {alg} does not fit `kty` {kty}{}",
                        crv.map(|c| format!(" `crv` {c}")).unwrap_or_default()
                    ));
                }
                if !allowed.contains(&alg) {
                    return Err(format!("`alg` {alg} is not in the provider's `algorithms`"));
                }
                vec![alg]
            }
            None => allowed
                .iter()
                .copied()
                .filter(|a| !a.is_hmac() && fits(*a))
                .collect(),
        };
        if algs.is_empty() {
            return Err(match crv {
                Some(c) if kty != "RSA" => {
                    format!("unsupported curve {c:?} (or not in `algorithms`)")
                }
                _ => format!("no algorithm of the provider's `algorithms` fits `kty` {kty}"),
            });
        }
        let kid = text("kid").map(str::to_string);
        // jwt-simple's JWK import checks members, curve and sizes, and refuses private parts.
        let mut public = obj.clone();
        for member in [
            "alg", "kid", "use", "key_ops", "x5c", "x5t", "x5t#S256", "x5u",
        ] {
            public.remove(member);
        }
        if public.contains_key("d") {
            return Err("a JWKS key must not hold a private part".into());
        }
        let json = Value::Object(public).to_string();
        algs.into_iter()
            .map(|alg| {
                Ok(Key {
                    kid: kid.clone(),
                    alg,
                    material: material(alg, &json)?,
                })
            })
            .collect()
    }

    /// Verifies signature and registered claims; the claims come back untyped.
    pub fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<serde_json::Map<String, Value>>, jwt_simple::Error> {
        type C = serde_json::Map<String, Value>;
        if let Material::ES512(k) = &self.material {
            return verify_es512(k, token, options);
        }
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
            Material::ES512(_) => Err(JWTError::InvalidSignature.into()),
            Material::EdDSA(k) => k.verify_token::<C>(token, o),
        }
    }
}

fn material(alg: Alg, json: &str) -> Result<Material, String> {
    let bad = |e: jwt_simple::Error| format!("invalid {alg} key: {e}");
    Ok(match alg {
        Alg::RS256 => Material::RS256(RS256PublicKey::from_jwk(json).map_err(bad)?),
        Alg::RS384 => Material::RS384(RS384PublicKey::from_jwk(json).map_err(bad)?),
        Alg::RS512 => Material::RS512(RS512PublicKey::from_jwk(json).map_err(bad)?),
        Alg::PS256 => Material::PS256(PS256PublicKey::from_jwk(json).map_err(bad)?),
        Alg::PS384 => Material::PS384(PS384PublicKey::from_jwk(json).map_err(bad)?),
        Alg::PS512 => Material::PS512(PS512PublicKey::from_jwk(json).map_err(bad)?),
        Alg::ES256 => Material::ES256(ES256PublicKey::from_jwk(json).map_err(bad)?),
        Alg::ES384 => Material::ES384(ES384PublicKey::from_jwk(json).map_err(bad)?),
        Alg::ES512 => Material::ES512(p521_from_jwk(json)?),
        Alg::EdDSA => Material::EdDSA(Ed25519PublicKey::from_jwk(json).map_err(bad)?),
        Alg::HS256 | Alg::HS384 | Alg::HS512 => {
            return Err("symmetric keys are not accepted from a JWKS".into())
        }
    })
}

/// A P-521 public key from its JWK `x` and `y` (RFC 7518 §6.2.1: each exactly 66 bytes).
fn p521_from_jwk(json: &str) -> Result<p521::ecdsa::VerifyingKey, String> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let coord = |name: &str| -> Result<Vec<u8>, String> {
        let text = v
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("invalid ES512 key: missing `{name}`"))?;
        let bytes = Base64UrlSafeNoPadding::decode_to_vec(text, None)
            .map_err(|_| format!("invalid ES512 key: `{name}` is not base64url"))?;
        if bytes.len() != 66 {
            return Err(format!("invalid ES512 key: `{name}` is not 66 bytes"));
        }
        Ok(bytes)
    };
    let mut sec1 = vec![0x04];
    sec1.extend(coord("x")?);
    sec1.extend(coord("y")?);
    // Refuses a point that is not on the curve.
    p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| "invalid ES512 key: not a point on P-521".to_string())
}

/// Whether `sig` (base64url) is an ES512 signature of `signed` (the JWS signing input) by `key`.
pub(crate) fn es512_signature_ok(key: &p521::ecdsa::VerifyingKey, signed: &str, sig: &str) -> bool {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    use p521::ecdsa::signature::Verifier;
    let Ok(sig) = Base64UrlSafeNoPadding::decode_to_vec(sig, None) else {
        return false;
    };
    // JWS ECDSA signatures are R || S, 66 bytes each for P-521 (RFC 7518 §3.4), never DER.
    if sig.len() != 132 {
        return false;
    }
    p521::ecdsa::Signature::from_slice(&sig)
        .is_ok_and(|sig| key.verify(signed.as_bytes(), &sig).is_ok())
}

/// Verifies an ES512 token: the signature here (jwt-simple has no P-521), then the claims by
/// jwt-simple's own rules, so every algorithm is held to one set of claim checks. To reach those
/// rules the already-verified payload is re-wrapped under an HMAC key that exists only for this
/// call; nothing re-wrapped leaves this function.
fn verify_es512(
    key: &p521::ecdsa::VerifyingKey,
    token: &str,
    options: VerificationOptions,
) -> Result<JWTClaims<serde_json::Map<String, Value>>, jwt_simple::Error> {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    let invalid = || jwt_simple::Error::from(JWTError::InvalidSignature);
    if options
        .max_token_length
        .is_some_and(|max| token.len() > max)
    {
        return Err(JWTError::TokenTooLong.into());
    }
    let (signed, sig) = token.rsplit_once('.').ok_or_else(invalid)?;
    let (_, payload) = signed.split_once('.').ok_or_else(invalid)?;
    if !es512_signature_ok(key, signed, sig) {
        return Err(invalid());
    }
    let header = Base64UrlSafeNoPadding::encode_to_string(br#"{"alg":"HS256","typ":"JWT"}"#)
        .map_err(|_| invalid())?;
    let inner = format!("{header}.{payload}");
    const WRAP: &[u8] = b"portcullis-es512-claims-check-only";
    let wrap = HS256Key::from_bytes(WRAP);
    let tag = hmac_sha256::HMAC::mac(inner.as_bytes(), WRAP);
    let tag = Base64UrlSafeNoPadding::encode_to_string(tag).map_err(|_| invalid())?;
    let mut options = options;
    options.max_token_length = None;
    wrap.verify_token(&format!("{inner}.{tag}"), Some(options))
}

/// Parses a JWKS document (`{"keys": [...]}`). Keys we cannot use (encryption keys, unknown
/// algorithms) are skipped and reported, so one odd key from an IdP does not block the rest; a
/// document with no usable key at all is an error.
pub fn parse_jwks(
    bytes: &[u8],
    max_keys: usize,
    allowed: &[Alg],
) -> Result<(Vec<Key>, Vec<String>), String> {
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
        match Key::from_jwk(jwk, allowed) {
            Ok(k) => keys.extend(k),
            Err(e) => {
                // The kid names the key in the log line; no key material is ever printed.
                let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("(none)");
                let kid: String = kid.chars().take(64).filter(|c| !c.is_control()).collect();
                skipped.push(format!("keys[{i}] (kid {kid:?}): {e}"));
            }
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
