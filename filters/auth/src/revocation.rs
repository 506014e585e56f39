//! Revoked credentials, shared by every worker of one Envoy through a fixed table of shared-data
//! slots (Envoy never frees a key, so the key set is bounded up front: `slots` keys plus two).
//!
//! An entry revokes a token `jti`, a `kid` (every token signed by that key), or a subject's
//! tokens issued before a time. Each entry carries the time after which it can go (the last
//! affected token has expired by then); full slots evict the entry that expires first. A
//! generation counter changes on every write, so a worker's verified-token cache only re-checks
//! revocation when something changed.

use serde::Deserialize;

use crate::store::SharedStore;

const SLOT_PREFIX: &str = "portcullis.auth.revoked.";
const GENERATION_KEY: &str = "portcullis.auth.revoked.generation";
const POLL_LEASE_KEY: &str = "portcullis.auth.revocation.poll";
/// Bytes per encoded entry: fingerprint, kind, expiry, issued-before.
const ENTRY_BYTES: usize = 8 + 1 + 8 + 8;
/// Bounded retries on a lost CAS race; the failure is reported, never looped on.
const CAS_RETRIES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jti = 1,
    Sub = 2,
    Kid = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    fingerprint: u64,
    kind: u8,
    /// Unix seconds after which the entry is dropped.
    until: u64,
    /// For `Sub`: tokens issued before this are revoked; `u64::MAX` for the other kinds.
    before: u64,
}

/// One revocation, as configured or as served by the revocation list.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RevocationSpec {
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// For `sub`: tokens issued before this Unix time are revoked (default: all).
    #[serde(default)]
    pub issued_before: Option<u64>,
    /// When the entry may be forgotten; default: now + `default_ttl_secs`.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl RevocationSpec {
    pub fn target(&self) -> Result<(Kind, &str), String> {
        match (&self.jti, &self.sub, &self.kid) {
            (Some(j), None, None) => Ok((Kind::Jti, j)),
            (None, Some(s), None) => Ok((Kind::Sub, s)),
            (None, None, Some(k)) => Ok((Kind::Kid, k)),
            _ => Err("exactly one of `jti`, `sub`, `kid` must be set".into()),
        }
    }
}

/// The document a revocation-list endpoint serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    pub revoked: Vec<RevocationSpec>,
}

/// FNV-1a: stable across builds and workers, and cheap; the slot table only needs spreading.
fn fnv1a(kind: Kind, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in [kind as u8, 0].iter().chain(value.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn decode(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .chunks_exact(ENTRY_BYTES)
        .filter_map(|c| {
            let u = |r: std::ops::Range<usize>| {
                c.get(r)
                    .and_then(|s| <[u8; 8]>::try_from(s).ok())
                    .map(u64::from_be_bytes)
            };
            Some(Entry {
                fingerprint: u(0..8)?,
                kind: *c.get(8)?,
                until: u(9..17)?,
                before: u(17..25)?,
            })
        })
        .collect()
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for e in entries {
        out.extend_from_slice(&e.fingerprint.to_be_bytes());
        out.push(e.kind);
        out.extend_from_slice(&e.until.to_be_bytes());
        out.extend_from_slice(&e.before.to_be_bytes());
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// Lost the CAS race `CAS_RETRIES` times in a row.
    Contended,
}

/// The table's shape: `slots` shared-data keys of `ways` entries each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub slots: u32,
    pub ways: usize,
}

impl Table {
    pub fn capacity(&self) -> usize {
        self.slots as usize * self.ways
    }

    fn slot_key(&self, fingerprint: u64) -> String {
        format!(
            "{SLOT_PREFIX}{}",
            fingerprint % u64::from(self.slots.max(1))
        )
    }

    /// Adds or extends one revocation. Returns whether an unexpired entry had to be evicted.
    pub fn insert(
        &self,
        store: &dyn SharedStore,
        kind: Kind,
        value: &str,
        issued_before: Option<u64>,
        until: u64,
        now: u64,
    ) -> Result<bool, InsertError> {
        let fingerprint = fnv1a(kind, value);
        let key = self.slot_key(fingerprint);
        let before = match kind {
            Kind::Sub => issued_before.unwrap_or(u64::MAX),
            _ => u64::MAX,
        };
        for _ in 0..CAS_RETRIES {
            let (bytes, cas) = store.get(&key).unwrap_or_default();
            let mut entries: Vec<Entry> = decode(&bytes)
                .into_iter()
                .filter(|e| e.until > now)
                .collect();
            let mut evicted = false;
            match entries
                .iter_mut()
                .find(|e| e.fingerprint == fingerprint && e.kind == kind as u8)
            {
                Some(e) => {
                    if e.until == until.max(e.until) && e.before == before.max(e.before) {
                        return Ok(false);
                    }
                    e.until = e.until.max(until);
                    e.before = e.before.max(before);
                }
                None => {
                    if entries.len() >= self.ways {
                        if let Some(pos) = entries
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, e)| e.until)
                            .map(|(i, _)| i)
                        {
                            entries.remove(pos);
                            evicted = true;
                        }
                    }
                    entries.push(Entry {
                        fingerprint,
                        kind: kind as u8,
                        until,
                        before,
                    });
                }
            }
            if store.set(&key, &encode(&entries), cas).is_ok() {
                self.bump_generation(store);
                return Ok(evicted);
            }
        }
        Err(InsertError::Contended)
    }

    fn bump_generation(&self, store: &dyn SharedStore) {
        for _ in 0..CAS_RETRIES {
            let (bytes, cas) = store.get(GENERATION_KEY).unwrap_or_default();
            let next = parse_u64(&bytes).wrapping_add(1);
            if store.set(GENERATION_KEY, &next.to_be_bytes(), cas).is_ok() {
                return;
            }
        }
    }

    /// Changes whenever any entry is written.
    pub fn generation(&self, store: &dyn SharedStore) -> u64 {
        store.get(GENERATION_KEY).map_or(0, |(b, _)| parse_u64(&b))
    }

    fn hit(
        &self,
        store: &dyn SharedStore,
        kind: Kind,
        value: &str,
        issued_at: Option<u64>,
        now: u64,
    ) -> bool {
        let fingerprint = fnv1a(kind, value);
        let Some((bytes, _)) = store.get(&self.slot_key(fingerprint)) else {
            return false;
        };
        decode(&bytes).iter().any(|e| {
            e.fingerprint == fingerprint
                && e.kind == kind as u8
                && e.until > now
                // A token without `iat` cannot prove it was issued after the cut-off.
                && issued_at.is_none_or(|iat| iat < e.before)
        })
    }

    /// Whether a token with these claims is revoked.
    pub fn is_revoked(
        &self,
        store: &dyn SharedStore,
        jti: Option<&str>,
        sub: &str,
        kid: Option<&str>,
        issued_at: Option<u64>,
        now: u64,
    ) -> bool {
        jti.is_some_and(|j| self.hit(store, Kind::Jti, j, None, now))
            || self.hit(store, Kind::Sub, sub, issued_at, now)
            || kid.is_some_and(|k| self.hit(store, Kind::Kid, k, None, now))
    }

    /// Applies a list of revocations; returns (applied, failed).
    pub fn apply(
        &self,
        store: &dyn SharedStore,
        specs: &[RevocationSpec],
        default_ttl: u64,
        now: u64,
    ) -> (usize, usize) {
        let mut applied = 0;
        let mut failed = 0;
        for spec in specs {
            let Ok((kind, value)) = spec.target() else {
                failed += 1;
                continue;
            };
            let until = spec.expires_at.unwrap_or(now.saturating_add(default_ttl));
            if until <= now {
                continue;
            }
            match self.insert(store, kind, value, spec.issued_before, until, now) {
                Ok(_) => applied += 1,
                Err(_) => failed += 1,
            }
        }
        (applied, failed)
    }
}

fn parse_u64(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

/// Parses a revocation list body; bounded by `max_entries`.
pub fn parse_list(body: &[u8], max_entries: usize) -> Result<Vec<RevocationSpec>, String> {
    let list: RevocationList =
        serde_json::from_slice(body).map_err(|e| format!("revocation list: {e}"))?;
    if list.revoked.len() > max_entries {
        return Err(format!(
            "revocation list has {} entries; at most {max_entries} are accepted",
            list.revoked.len()
        ));
    }
    Ok(list.revoked)
}

/// One worker per interval wins the right to poll the revocation list (a CAS on a shared lease),
/// so an Envoy with many workers polls once per interval, not once per worker.
pub fn claim_poll(store: &dyn SharedStore, now: u64, interval: u64) -> bool {
    let (bytes, cas) = store.get(POLL_LEASE_KEY).unwrap_or_default();
    if now < parse_u64(&bytes) {
        return false;
    }
    store
        .set(
            POLL_LEASE_KEY,
            &now.saturating_add(interval).to_be_bytes(),
            cas,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CasMismatch, MemoryStore};

    const T: Table = Table { slots: 4, ways: 2 };

    #[test]
    fn jti_sub_and_kid() {
        let s = MemoryStore::default();
        T.insert(&s, Kind::Jti, "token-1", None, 2000, 100).unwrap();
        T.insert(&s, Kind::Sub, "mallory", Some(500), 2000, 100)
            .unwrap();
        T.insert(&s, Kind::Kid, "leaked-key", None, 2000, 100)
            .unwrap();
        assert!(T.is_revoked(&s, Some("token-1"), "alice", None, Some(10), 100));
        assert!(!T.is_revoked(&s, Some("token-2"), "alice", None, Some(10), 100));
        // A subject's tokens issued before the cut-off only.
        assert!(T.is_revoked(&s, None, "mallory", None, Some(499), 100));
        assert!(!T.is_revoked(&s, None, "mallory", None, Some(500), 100));
        assert!(T.is_revoked(&s, None, "mallory", None, None, 100));
        assert!(T.is_revoked(&s, None, "bob", Some("leaked-key"), Some(10), 100));
        assert!(!T.is_revoked(&s, None, "bob", Some("other-key"), Some(10), 100));
        // Kinds do not mix: a jti named like a subject revokes nothing else.
        assert!(!T.is_revoked(&s, Some("mallory"), "x", None, Some(1), 100));
    }

    #[test]
    fn entries_expire_with_the_token() {
        let s = MemoryStore::default();
        T.insert(&s, Kind::Jti, "t", None, 200, 100).unwrap();
        assert!(T.is_revoked(&s, Some("t"), "a", None, None, 199));
        assert!(!T.is_revoked(&s, Some("t"), "a", None, None, 200));
    }

    #[test]
    fn bounded_keys_and_eviction_of_the_soonest_expiring() {
        let s = MemoryStore::default();
        let t = Table { slots: 1, ways: 2 };
        t.insert(&s, Kind::Jti, "a", None, 300, 0).unwrap();
        t.insert(&s, Kind::Jti, "b", None, 200, 0).unwrap();
        assert_eq!(t.insert(&s, Kind::Jti, "c", None, 400, 0), Ok(true));
        assert!(
            !t.is_revoked(&s, Some("b"), "x", None, None, 0),
            "soonest-expiring evicted"
        );
        assert!(t.is_revoked(&s, Some("a"), "x", None, None, 0));
        assert!(t.is_revoked(&s, Some("c"), "x", None, None, 0));
        for i in 0..1000 {
            T.insert(&s, Kind::Jti, &format!("j{i}"), None, 10_000, 0)
                .unwrap();
        }
        // slots + generation key, never one key per entry.
        assert!(s.keys() <= 1 + 4 + 1 + 1, "{} keys", s.keys());
    }

    #[test]
    fn generation_changes_on_write_only() {
        let s = MemoryStore::default();
        let g0 = T.generation(&s);
        T.insert(&s, Kind::Kid, "k", None, 100, 0).unwrap();
        let g1 = T.generation(&s);
        assert_ne!(g0, g1);
        // Re-applying the same entry is a no-op.
        T.insert(&s, Kind::Kid, "k", None, 100, 0).unwrap();
        assert_eq!(T.generation(&s), g1);
    }

    /// A store where every conditional write loses the race.
    struct Racy(MemoryStore);
    impl SharedStore for Racy {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.0.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch> {
            // Someone else writes first, every time.
            let _ = self.0.set(key, b"", 0);
            self.0.set(key, value, cas.max(1))
        }
    }

    #[test]
    fn contention_is_bounded_and_reported() {
        let s = Racy(MemoryStore::default());
        // Once a slot exists, writes are conditional and can lose.
        for slot in 0..T.slots {
            s.0.set(&format!("{SLOT_PREFIX}{slot}"), b"", 0).unwrap();
        }
        assert_eq!(
            T.insert(&s, Kind::Jti, "x", None, 100, 0),
            Err(InsertError::Contended)
        );
    }

    #[test]
    fn list_parsing_and_apply() {
        let body = br#"{"revoked":[{"jti":"a","expires_at":500},{"sub":"m","issued_before":50},{"kid":"k"},{"jti":"x","sub":"y"}]}"#;
        let specs = parse_list(body, 10).unwrap();
        let s = MemoryStore::default();
        assert_eq!(T.apply(&s, &specs, 1000, 100), (3, 1));
        assert!(T.is_revoked(&s, Some("a"), "z", None, None, 499));
        assert!(T.is_revoked(&s, None, "z", Some("k"), None, 1099));
        assert!(!T.is_revoked(&s, None, "z", Some("k"), None, 1100));
        assert!(parse_list(body, 3).is_err());
        assert!(parse_list(b"{\"revoked\":[{\"who\":1}]}", 10).is_err());
        assert!(parse_list(b"not json", 10).is_err());
    }

    #[test]
    fn one_poller_per_interval() {
        let s = MemoryStore::default();
        assert!(claim_poll(&s, 100, 10));
        assert!(!claim_poll(&s, 105, 10));
        assert!(claim_poll(&s, 110, 10));
    }
}
