//! A bounded per-worker cache of verified tokens, keyed by a hash of the token (never the
//! token), so a hot token is not re-verified on every request. An entry is used only until the
//! token expires, and only while the revocation table's generation is the one it was checked
//! against (otherwise revocation is re-checked first).

use std::collections::{HashMap, VecDeque};

use crate::jwt::Verified;

#[derive(Debug, Clone)]
pub struct Cached {
    pub verified: Verified,
    /// Revocation generation at the last check.
    pub generation: u64,
    /// Unix seconds after which the entry must not be used.
    pub valid_until: u64,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Cached>,
    /// Insertion order, for first-in-first-out eviction.
    order: VecDeque<[u8; 32]>,
}

pub fn token_hash(token: &str) -> [u8; 32] {
    hmac_sha256::Hash::hash(token.as_bytes())
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: HashMap::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `hash` if still usable at `now`; expired entries are dropped.
    pub fn get(&mut self, hash: &[u8; 32], now: u64) -> Option<&mut Cached> {
        if self.entries.get(hash).is_some_and(|c| now >= c.valid_until) {
            self.entries.remove(hash);
            return None;
        }
        self.entries.get_mut(hash)
    }

    pub fn remove(&mut self, hash: &[u8; 32]) {
        self.entries.remove(hash);
    }

    pub fn insert(&mut self, hash: [u8; 32], entry: Cached) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(hash, entry).is_some() {
            return;
        }
        self.order.push_back(hash);
        // `order` may hold hashes already removed; skip those while evicting.
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
            generation: 0,
            valid_until: until,
        }
    }

    #[test]
    fn bounded_fifo() {
        let mut c = TokenCache::new(2);
        c.insert(token_hash("a"), entry("a", 100));
        c.insert(token_hash("b"), entry("b", 100));
        c.insert(token_hash("c"), entry("c", 100));
        assert_eq!(c.len(), 2);
        assert!(c.get(&token_hash("a"), 0).is_none());
        assert!(c.get(&token_hash("c"), 0).is_some());
        for i in 0..10_000 {
            c.insert(token_hash(&i.to_string()), entry("x", 100));
        }
        assert_eq!(c.len(), 2);
        assert!(c.order.len() <= 4);
    }

    #[test]
    fn honours_expiry() {
        let mut c = TokenCache::new(4);
        c.insert(token_hash("a"), entry("a", 100));
        assert!(c.get(&token_hash("a"), 99).is_some());
        assert!(c.get(&token_hash("a"), 100).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = TokenCache::new(0);
        c.insert(token_hash("a"), entry("a", 100));
        assert!(c.is_empty());
    }
}
