//! A bounded per-worker cache of verified tokens, so a hot token is not re-verified on every
//! request. An entry is used only until the token expires, and only while the revocation
//! table's generation is the one it was checked against (otherwise revocation is re-checked
//! first).
//!
//! The map is keyed by a 128-bit digest of the whole token: SipHash-1-3 with 128-bit output,
//! keyed with 128 bits drawn from the OS (WASI `random_get`) when the cache is made; if none can
//! be drawn, nothing is cached. It holds no token, only that digest, so verified credentials do
//! not sit in worker memory. Only verified tokens are ever inserted, and without the keys a
//! client can neither aim at a bucket nor make a forged token's digest equal a cached one (a
//! chance of about 2^-128 per attempt). Hashing whole tokens with SHA-256 instead cost more than
//! everything else a cached request does (wasm has no SHA instructions).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use siphasher::sip128::{Hasher128, SipHasher13};

use portcullis_common::identity::Identity;

use crate::jwt::Verified;

#[derive(Debug, Clone)]
pub struct Cached {
    /// What revocation is checked against.
    pub verified: Verified,
    /// What a request with this token is given, built once.
    pub identity: Rc<Identity>,
    /// Revocation generation at the last check.
    pub generation: u64,
    /// Unix seconds after which the entry must not be used.
    pub valid_until: u64,
}

/// A token's digest under the cache's random key.
type Digest = u128;

/// The map's keys are already randomly keyed SipHash values: hashing them again is wasted work.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = (n as u64) ^ ((n >> 64) as u64);
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    key: (u64, u64),
    entries: HashMap<Digest, Cached, BuildHasherDefault<KeyHasher>>,
    /// Insertion order, for first-in-first-out eviction.
    order: VecDeque<Digest>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        let mut seed = [0u8; 16];
        let (capacity, key) = match getrandom::getrandom(&mut seed) {
            Ok(()) => {
                let k = u128::from_le_bytes(seed);
                (capacity, (k as u64, (k >> 64) as u64))
            }
            // Without a secret key the digest could be aimed at: cache nothing.
            Err(_) => (0, (0, 0)),
        };
        TokenCache {
            capacity,
            key,
            entries: HashMap::with_capacity_and_hasher(capacity.min(4096), Default::default()),
            order: VecDeque::with_capacity(capacity.min(4096)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn key(&self, token: &str) -> Digest {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(token.as_bytes());
        h.finish128().as_u128()
    }

    /// The entry for `token` if still usable at `now`; an expired entry is dropped.
    pub fn get(&mut self, token: &str, now: u64) -> Option<&mut Cached> {
        let key = self.key(token);
        if now >= self.entries.get(&key)?.valid_until {
            self.entries.remove(&key);
            return None;
        }
        self.entries.get_mut(&key)
    }

    pub fn remove(&mut self, token: &str) {
        self.entries.remove(&self.key(token));
    }

    pub fn insert(&mut self, token: &str, cached: Cached) {
        if self.capacity == 0 {
            return;
        }
        let key = self.key(token);
        if self.entries.insert(key, cached).is_some() {
            return;
        }
        self.order.push_back(key);
        // `order` may hold keys already removed; skip those while evicting.
        while self.entries.len() > self.capacity || self.order.len() > self.capacity * 2 {
            match self.order.pop_front() {
                Some(old) if self.entries.len() > self.capacity => {
                    self.entries.remove(&old);
                }
                Some(old) => {
                    if self.entries.contains_key(&old) {
                        self.order.push_back(old);
                        break;
                    }
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::identity::AuthMethod;

    fn v(sub: &str) -> Verified {
        Verified {
            provider: 0,
            issuer: "i".into(),
            subject: sub.into(),
            roles: vec![],
            scopes: vec![],
            tenant: None,
            jti: None,
            kid: None,
            issued_at: None,
            expires_at: None,
        }
    }

    fn entry(sub: &str, until: u64) -> Cached {
        Cached {
            verified: v(sub),
            identity: Rc::new(Identity {
                subject: sub.into(),
                method: AuthMethod::Jwt,
                roles: vec![],
                tenant: None,
                key_id: None,
                issuer: Some("i".into()),
            }),
            generation: 0,
            valid_until: until,
        }
    }

    #[test]
    fn bounded_fifo() {
        let mut c = TokenCache::new(2);
        c.insert("a", entry("a", 100));
        c.insert("b", entry("b", 100));
        c.insert("c", entry("c", 100));
        assert_eq!(c.len(), 2);
        assert!(c.get("a", 0).is_none());
        assert!(c.get("c", 0).is_some());
        for i in 0..10_000 {
            c.insert(&i.to_string(), entry("x", 100));
        }
        assert_eq!(c.len(), 2);
        assert!(c.order.len() <= 4);
    }

    #[test]
    fn honours_expiry() {
        let mut c = TokenCache::new(4);
        c.insert("a", entry("a", 100));
        assert!(c.get("a", 99).is_some());
        assert!(c.get("a", 100).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = TokenCache::new(0);
        c.insert("a", entry("a", 100));
        assert!(c.is_empty());
    }

    #[test]
    fn only_the_same_token_hits() {
        let mut c = TokenCache::new(4);
        c.insert("header.payload.signature", entry("a", 100));
        assert!(c.get("header.payload.signature", 0).is_some());
        assert!(c.get("header.payload.signaturf", 0).is_none());
        assert!(c.get("header.payload.signatur", 0).is_none());
        assert!(c.get("header.payload.signature ", 0).is_none());
        // Same length and signature, another header: a different token, so a miss.
        assert!(c.get("headeX.payload.signature", 0).is_none());
        c.remove("headeX.payload.signature");
        assert_eq!(c.len(), 1, "removing another token leaves the entry");
        c.remove("header.payload.signature");
        assert!(c.is_empty());
    }

    #[test]
    fn reinserting_replaces_without_growing_the_order() {
        let mut c = TokenCache::new(4);
        c.insert("a", entry("a", 100));
        c.insert("a", entry("b", 200));
        assert_eq!(c.len(), 1);
        assert_eq!(c.order.len(), 1);
        assert_eq!(
            c.get("a", 150).map(|e| e.verified.subject.clone()),
            Some("b".into())
        );
    }
}
