//! A bounded per-worker cache of verified tokens, so a hot token is not re-verified on every
//! request. An entry is used only until the token expires, and only while the revocation
//! table's generation is the one it was checked against (otherwise revocation is re-checked
//! first).
//!
//! An entry holds its token and is used only for exactly that token. Hashing whole tokens with
//! SHA-256 to key the map cost more than everything else a cached request does (wasm has no
//! SHA instructions), so the map is keyed by a randomly keyed SipHash of the token's length and
//! last [`TAIL`] bytes (for a JWT, its signature) and the full token is then compared. Only
//! verified tokens are ever inserted, so a client cannot crowd the map's buckets, and a forged
//! token that shares a cached token's tail is simply a miss. Tokens over
//! [`MAX_CACHED_TOKEN_BYTES`] are verified every time, which bounds the cache's memory.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::rc::Rc;

use portcullis_common::identity::Identity;

use crate::jwt::Verified;

/// Longest token kept: at most `capacity` × this many bytes of tokens per worker.
pub const MAX_CACHED_TOKEN_BYTES: usize = 4096;
/// How many trailing bytes of a token the map key is computed from.
const TAIL: usize = 32;

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

#[derive(Debug)]
struct Slot {
    token: Box<str>,
    cached: Cached,
}

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

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    keys: RandomState,
    entries: HashMap<u64, Slot, BuildHasherDefault<KeyHasher>>,
    /// Insertion order, for first-in-first-out eviction.
    order: VecDeque<u64>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            keys: RandomState::new(),
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

    fn key(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(TAIL)..];
        self.keys.hash_one((bytes.len(), tail))
    }

    /// The entry for `token` if still usable at `now`; an expired entry is dropped.
    pub fn get(&mut self, token: &str, now: u64) -> Option<&mut Cached> {
        let key = self.key(token);
        let slot = self.entries.get(&key)?;
        if *slot.token != *token {
            return None;
        }
        if now >= slot.cached.valid_until {
            self.entries.remove(&key);
            return None;
        }
        self.entries.get_mut(&key).map(|slot| &mut slot.cached)
    }

    pub fn remove(&mut self, token: &str) {
        let key = self.key(token);
        if self.entries.get(&key).is_some_and(|s| *s.token == *token) {
            self.entries.remove(&key);
        }
    }

    pub fn insert(&mut self, token: &str, cached: Cached) {
        if self.capacity == 0 || token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        let key = self.key(token);
        let slot = Slot {
            token: token.into(),
            cached,
        };
        // Another token with the same key (vanishingly rare) is replaced.
        if self.entries.insert(key, slot).is_some() {
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
        // Same length and tail, another header: a different token, so a miss.
        assert!(c.get("headeX.payload.signature", 0).is_none());
        c.remove("headeX.payload.signature");
        assert_eq!(c.len(), 1, "removing another token leaves the entry");
        c.remove("header.payload.signature");
        assert!(c.is_empty());
    }

    #[test]
    fn oversized_tokens_are_not_kept() {
        let mut c = TokenCache::new(4);
        let big = "x".repeat(MAX_CACHED_TOKEN_BYTES + 1);
        c.insert(&big, entry("a", 100));
        assert!(c.is_empty());
        c.insert(&big[1..], entry("a", 100));
        assert_eq!(c.len(), 1);
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
