//! API keys. The config holds only HMAC-SHA-256(pepper, key) in hex, never a key; the pepper
//! comes from an environment variable, so a leaked config alone cannot be brute-forced offline.
//! Every configured hash is compared in constant time, without stopping at the first match, so
//! timing reveals neither which key matched nor how much of a hash was right.

use serde::Deserialize;

use portcullis_common::config::ConfigError;

use crate::reject::Reject;

/// Longest API key accepted from a request.
pub const MAX_KEY_BYTES: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Public identifier, forwarded to later filters and upstream (never the key).
    pub id: String,
    /// Hex HMAC-SHA-256(pepper, key).
    pub hash: String,
    pub owner: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Unix seconds after which the key is refused.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub tenant: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub hash: [u8; 32],
    pub owner: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub expires_at: Option<u64>,
    pub active: bool,
    pub tenant: Option<String>,
}

/// The hash the config stores for `key`.
pub fn hash_key(pepper: &[u8], key: &[u8]) -> [u8; 32] {
    hmac_sha256::HMAC::mac(key, pepper)
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        let (Some(hi), Some(lo)) = (
            pair.first().copied().and_then(digit),
            pair.get(1).copied().and_then(digit),
        ) else {
            return None;
        };
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Equal in time independent of where the inputs differ.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

pub fn compile(specs: &[ApiKeySpec]) -> Result<Vec<ApiKey>, ConfigError> {
    let mut keys: Vec<ApiKey> = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let at = format!("api_keys.keys[{i}]");
        let hash = from_hex(&s.hash).ok_or_else(|| {
            ConfigError::new(format!("{at}.hash"), "must be 64 hex digits (HMAC-SHA-256)")
        })?;
        if s.id.is_empty() {
            return Err(ConfigError::new(format!("{at}.id"), "must not be empty"));
        }
        if keys.iter().any(|k| k.id == s.id) {
            return Err(ConfigError::new(
                format!("{at}.id"),
                format!("duplicate id `{}`", s.id),
            ));
        }
        keys.push(ApiKey {
            id: s.id.clone(),
            hash,
            owner: s.owner.clone(),
            roles: s.roles.clone(),
            permissions: s.permissions.clone(),
            expires_at: s.expires_at,
            active: s.active,
            tenant: s.tenant.clone(),
        });
    }
    Ok(keys)
}

/// The configured key matching `presented`, or why it is refused.
pub fn authenticate<'k>(
    keys: &'k [ApiKey],
    pepper: &[u8],
    presented: &[u8],
    now: u64,
) -> Result<&'k ApiKey, Reject> {
    if presented.is_empty() || presented.len() > MAX_KEY_BYTES {
        return Err(Reject::ApiKeyInvalid);
    }
    let hash = hash_key(pepper, presented);
    let mut found = None;
    for key in keys {
        if ct_eq(&key.hash, &hash) && found.is_none() {
            found = Some(key);
        }
    }
    let key = found.ok_or(Reject::ApiKeyInvalid)?;
    if !key.active {
        return Err(Reject::ApiKeyInactive);
    }
    if key.expires_at.is_some_and(|exp| now >= exp) {
        return Err(Reject::ApiKeyExpired);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEPPER: &[u8] = b"pepper-from-the-environment-0123";

    fn spec(id: &str, key: &str) -> ApiKeySpec {
        ApiKeySpec {
            id: id.into(),
            hash: to_hex(&hash_key(PEPPER, key.as_bytes())),
            owner: "billing".into(),
            roles: vec!["service".into()],
            permissions: vec![],
            expires_at: None,
            active: true,
            tenant: None,
        }
    }

    #[test]
    fn hash_is_hmac_sha256_of_key_under_pepper() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            to_hex(&hash_key(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rotation_two_keys_valid_at_once() {
        let keys = compile(&[
            spec("k-old", "old-secret-key"),
            spec("k-new", "new-secret-key"),
        ])
        .unwrap();
        assert_eq!(
            authenticate(&keys, PEPPER, b"old-secret-key", 0)
                .unwrap()
                .id,
            "k-old"
        );
        assert_eq!(
            authenticate(&keys, PEPPER, b"new-secret-key", 0)
                .unwrap()
                .id,
            "k-new"
        );
        assert_eq!(
            authenticate(&keys, PEPPER, b"other", 0).unwrap_err(),
            Reject::ApiKeyInvalid
        );
        // The right key under another pepper is not the right key.
        assert_eq!(
            authenticate(&keys, b"another-pepper", b"old-secret-key", 0).unwrap_err(),
            Reject::ApiKeyInvalid
        );
    }

    #[test]
    fn expiry_and_active_flag() {
        let mut a = spec("a", "key-a");
        a.expires_at = Some(1000);
        let mut b = spec("b", "key-b");
        b.active = false;
        let keys = compile(&[a, b]).unwrap();
        assert!(authenticate(&keys, PEPPER, b"key-a", 999).is_ok());
        assert_eq!(
            authenticate(&keys, PEPPER, b"key-a", 1000).unwrap_err(),
            Reject::ApiKeyExpired
        );
        assert_eq!(
            authenticate(&keys, PEPPER, b"key-b", 0).unwrap_err(),
            Reject::ApiKeyInactive
        );
    }

    #[test]
    fn empty_and_oversized_keys_are_invalid() {
        let keys = compile(&[spec("a", "key-a")]).unwrap();
        assert_eq!(
            authenticate(&keys, PEPPER, b"", 0).unwrap_err(),
            Reject::ApiKeyInvalid
        );
        let huge = vec![b'a'; MAX_KEY_BYTES + 1];
        assert_eq!(
            authenticate(&keys, PEPPER, &huge, 0).unwrap_err(),
            Reject::ApiKeyInvalid
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut bad = spec("a", "k");
        bad.hash = "xyz".into();
        assert_eq!(compile(&[bad]).unwrap_err().field, "api_keys.keys[0].hash");
        let e = compile(&[spec("a", "k1"), spec("a", "k2")]).unwrap_err();
        assert_eq!(e.field, "api_keys.keys[1].id");
    }

    #[test]
    fn constant_time_compare() {
        let a = [1u8; 32];
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!ct_eq(&a, &b));
    }
}
