//! Revoked credentials, shared by every worker of one Envoy through a fixed table of shared-data
//! slots (Envoy never frees a key, so the key set is bounded up front: `slots` keys plus two).
//!
//! An entry revokes a token `jti`, a `kid` (every token signed by that key), or a subject's
//! tokens issued before a time. Each entry carries the time after which it can go (the last
//! affected token has expired by then). A live revocation is never evicted: a full bucket
//! refuses the insert, which is counted, logged, and raises a shared "full" flag that providers
//! fail closed on (by configuration) until a complete revocation list fits again. The table is
//! sized from the most entries it must hold (`settings`), so this stays rare. A generation
//! counter changes on every write, so a worker's verified-token cache only re-checks revocation
//! when something changed.

use portcullis_common::slots::{Change, HashKey, SharedData, SlotError, SlotTable, WhenFull};
use serde::Deserialize;

const TABLE_PREFIX: &str = "portcullis.auth.revoked";
const GENERATION_KEY: &str = "portcullis.auth.revoked.generation";
const POLL_LEASE_KEY: &str = "portcullis.auth.revocation.poll";
/// Set (non-zero) while a revocation could not be stored.
const FULL_KEY: &str = "portcullis.auth.revoked.full";
/// Most of a table's capacity that configured and polled entries may take: with the entries
/// spread by a keyed hash, a bucket overflows rarely below this load.
pub const SAFE_LOAD_PERCENT: u64 = 50;
/// Stored per entry: the issued-before cut-off and the entry's expiry (both u64).
const VALUE_LEN: usize = 16;
/// Bounded retries on a lost CAS race; the failure is reported, never looped on.
const CAS_RETRIES: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jti = 1,
    Sub = 2,
    Kid = 3,
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

/// The table key of one revocation: its kind, then the value, so kinds never mix.
fn table_key(kind: Kind, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 1);
    key.push(kind as u8);
    key.extend_from_slice(value.as_bytes());
    key
}

fn read_pair(value: &[u8]) -> (u64, u64) {
    let u = |r: std::ops::Range<usize>| {
        value
            .get(r)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_be_bytes)
    };
    (u(0..8), u(8..16))
}

fn pair(before: u64, until: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_LEN);
    v.extend_from_slice(&before.to_be_bytes());
    v.extend_from_slice(&until.to_be_bytes());
    v
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertError {
    /// The entry's bucket is full of live revocations; none was evicted.
    Full,
    /// Lost the CAS race every time, or the host refused the write.
    Failed(String),
}

/// What applying a list of revocations did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    /// Malformed entries, lost races, host errors.
    pub failed: usize,
    /// Refused because their bucket was full of live revocations.
    pub full: usize,
}

/// The table's shape: `slots` shared-data keys of `ways` entries each, on the common slot table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    slots: SlotTable,
}

impl Table {
    /// `key` keys the bucket hash (`HashKey::shared`), so whoever can create revocations cannot
    /// aim them at one bucket to evict another entry.
    pub fn new(slots: u32, ways: u8, key: HashKey) -> Table {
        Table {
            slots: SlotTable::new(TABLE_PREFIX, slots, ways, VALUE_LEN, CAS_RETRIES, key),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.slots.capacity()
    }

    /// Creates every bucket once at configure time (see `SlotTable::create_missing`).
    pub fn create<S: SharedData>(&self, store: &mut S) -> Result<u32, String> {
        self.slots
            .create_missing(store)
            .map_err(|e| format!("{e:?}"))
    }

    /// Adds or extends one revocation. A full bucket refuses it (`InsertError::Full`): a live
    /// revocation is never evicted to make room.
    pub fn insert<S: SharedData>(
        &self,
        store: &mut S,
        kind: Kind,
        value: &str,
        issued_before: Option<u64>,
        until: u64,
        now: u64,
    ) -> Result<bool, InsertError> {
        let before = match kind {
            Kind::Sub => issued_before.unwrap_or(u64::MAX),
            _ => u64::MAX,
        };
        let updated = self
            .slots
            .update(
                store,
                &table_key(kind, value),
                now,
                WhenFull::Refuse,
                |current| {
                    let (old_before, old_until) = current.map_or((0, 0), read_pair);
                    let (b, u) = (old_before.max(before), old_until.max(until));
                    if current.is_some() && (b, u) == (old_before, old_until) {
                        Change::Keep(false)
                    } else {
                        Change::Put {
                            value: pair(b, u),
                            expires_at: u,
                            result: true,
                        }
                    }
                },
            )
            .map_err(|e| match e {
                SlotError::Full => InsertError::Full,
                other => InsertError::Failed(format!("{other:?}")),
            })?;
        if updated.result {
            self.bump_generation(store);
        }
        Ok(updated.result)
    }

    /// Whether a revocation could not be stored (and no complete list fitted since).
    pub fn is_full<S: SharedData>(&self, store: &S) -> bool {
        store.get(FULL_KEY).is_some_and(|(b, _)| parse_u64(&b) != 0)
    }

    /// Raises or clears the "full" flag; a change bumps the generation, so cached tokens are
    /// checked again.
    fn set_full<S: SharedData>(&self, store: &mut S, full: bool) {
        if self.is_full(store) == full {
            return;
        }
        for _ in 0..CAS_RETRIES {
            let (_, cas) = store.get(FULL_KEY).unwrap_or_default();
            if store
                .set(FULL_KEY, &u64::from(full).to_be_bytes(), cas)
                .is_ok()
            {
                break;
            }
        }
        self.bump_generation(store);
    }

    fn bump_generation<S: SharedData>(&self, store: &mut S) {
        for _ in 0..CAS_RETRIES {
            let (bytes, cas) = store.get(GENERATION_KEY).unwrap_or_default();
            let next = parse_u64(&bytes).wrapping_add(1);
            if store.set(GENERATION_KEY, &next.to_be_bytes(), cas).is_ok() {
                return;
            }
        }
    }

    /// Changes whenever any entry is written.
    pub fn generation<S: SharedData>(&self, store: &S) -> u64 {
        store.get(GENERATION_KEY).map_or(0, |(b, _)| parse_u64(&b))
    }

    fn hit<S: SharedData>(
        &self,
        store: &S,
        kind: Kind,
        value: &str,
        issued_at: Option<u64>,
        now: u64,
    ) -> bool {
        match self.slots.get(store, &table_key(kind, value), now) {
            // A token without `iat` cannot prove it was issued after the cut-off.
            Some(v) => issued_at.is_none_or(|iat| iat < read_pair(&v).0),
            None => false,
        }
    }

    /// Whether a token with these claims is revoked.
    pub fn is_revoked<S: SharedData>(
        &self,
        store: &S,
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

    /// Applies a list of revocations. A refusal for lack of room, or an entry that could not be
    /// applied (malformed, lost races, host error), raises the "full" flag: a revocation is not
    /// in force, so providers that fail closed refuse tokens. `complete` says the list is the
    /// whole current list (a poll), so one applied entirely clears the flag again.
    pub fn apply<S: SharedData>(
        &self,
        store: &mut S,
        specs: &[RevocationSpec],
        default_ttl: u64,
        now: u64,
        complete: bool,
    ) -> Applied {
        let mut out = Applied::default();
        for spec in specs {
            let Ok((kind, value)) = spec.target() else {
                out.failed += 1;
                continue;
            };
            let until = spec.expires_at.unwrap_or(now.saturating_add(default_ttl));
            if until <= now {
                continue;
            }
            match self.insert(store, kind, value, spec.issued_before, until, now) {
                Ok(_) => out.applied += 1,
                Err(InsertError::Full) => out.full += 1,
                Err(InsertError::Failed(_)) => out.failed += 1,
            }
        }
        if out.full > 0 || out.failed > 0 {
            self.set_full(store, true);
        } else if complete {
            self.set_full(store, false);
        }
        out
    }
}

/// What a polled revocation list did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Parsed and applied; the flag is raised if anything was refused or failed.
    Applied(Applied),
    /// Unparseable or longer than `max_entries`: nothing applied, the "full" flag raised (the
    /// current list is unknown, so revocations in it may not be in force).
    Unusable(String),
}

impl Table {
    /// Applies a polled list body (HTTP 200), failing closed on one that cannot be used. The
    /// adapter logs and counts what this returns.
    pub fn apply_polled<S: SharedData>(
        &self,
        store: &mut S,
        body: &[u8],
        max_entries: usize,
        default_ttl: u64,
        now: u64,
    ) -> Polled {
        match parse_list(body, max_entries) {
            Ok(specs) => Polled::Applied(self.apply(store, &specs, default_ttl, now, true)),
            Err(e) => {
                self.set_full(store, true);
                Polled::Unusable(e)
            }
        }
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
pub fn claim_poll<S: SharedData>(store: &mut S, now: u64, interval: u64) -> bool {
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
    use portcullis_common::slots::MemoryStore;

    const KEY: HashKey = HashKey::from_bytes([3; 16]);

    fn t() -> Table {
        Table::new(4, 2, KEY)
    }

    #[test]
    fn jti_sub_and_kid() {
        let (t, mut s) = (t(), MemoryStore::new());
        t.insert(&mut s, Kind::Jti, "token-1", None, 2000, 100)
            .unwrap();
        t.insert(&mut s, Kind::Sub, "mallory", Some(500), 2000, 100)
            .unwrap();
        t.insert(&mut s, Kind::Kid, "leaked-key", None, 2000, 100)
            .unwrap();
        assert!(t.is_revoked(&s, Some("token-1"), "alice", None, Some(10), 100));
        assert!(!t.is_revoked(&s, Some("token-2"), "alice", None, Some(10), 100));
        // A subject's tokens issued before the cut-off only.
        assert!(t.is_revoked(&s, None, "mallory", None, Some(499), 100));
        assert!(!t.is_revoked(&s, None, "mallory", None, Some(500), 100));
        assert!(t.is_revoked(&s, None, "mallory", None, None, 100));
        assert!(t.is_revoked(&s, None, "bob", Some("leaked-key"), Some(10), 100));
        assert!(!t.is_revoked(&s, None, "bob", Some("other-key"), Some(10), 100));
        // Kinds do not mix: a jti named like a subject revokes nothing else.
        assert!(!t.is_revoked(&s, Some("mallory"), "x", None, Some(1), 100));
    }

    #[test]
    fn entries_expire_with_the_token() {
        let (t, mut s) = (t(), MemoryStore::new());
        t.insert(&mut s, Kind::Jti, "t", None, 200, 100).unwrap();
        assert!(t.is_revoked(&s, Some("t"), "a", None, None, 199));
        assert!(!t.is_revoked(&s, Some("t"), "a", None, None, 200));
    }

    #[test]
    fn later_entries_extend_never_shorten() {
        let (t, mut s) = (t(), MemoryStore::new());
        t.insert(&mut s, Kind::Sub, "m", Some(100), 1000, 0)
            .unwrap();
        t.insert(&mut s, Kind::Sub, "m", Some(50), 500, 0).unwrap();
        assert!(t.is_revoked(&s, None, "m", None, Some(99), 999));
        t.insert(&mut s, Kind::Sub, "m", Some(300), 500, 0).unwrap();
        assert!(t.is_revoked(&s, None, "m", None, Some(299), 999));
    }

    #[test]
    fn at_capacity_the_table_refuses_and_never_evicts_a_live_revocation() {
        let mut s = MemoryStore::new();
        let t = Table::new(1, 2, KEY);
        assert_eq!(t.capacity(), 2);
        // At capacity: both fit.
        assert_eq!(t.insert(&mut s, Kind::Jti, "a", None, 300, 0), Ok(true));
        assert_eq!(t.insert(&mut s, Kind::Jti, "b", None, 200, 0), Ok(true));
        // Beyond: refused, and the soonest-expiring live entry stays.
        assert_eq!(
            t.insert(&mut s, Kind::Jti, "c", None, 400, 0),
            Err(InsertError::Full)
        );
        assert!(t.is_revoked(&s, Some("b"), "x", None, None, 0));
        assert!(t.is_revoked(&s, Some("a"), "x", None, None, 0));
        assert!(!t.is_revoked(&s, Some("c"), "x", None, None, 0));
        // Extending an entry already there still works when full.
        assert_eq!(t.insert(&mut s, Kind::Jti, "b", None, 250, 0), Ok(true));
        // Once an entry has expired, its place is free again.
        assert_eq!(t.insert(&mut s, Kind::Jti, "c", None, 400, 260), Ok(true));
        assert!(t.is_revoked(&s, Some("c"), "x", None, None, 260));
        assert!(t.is_revoked(&s, Some("a"), "x", None, None, 260));
        let big = Table::new(4, 2, KEY);
        for i in 0..1000 {
            // Most are refused (full), none is an error of another kind.
            let r = big.insert(&mut s, Kind::Jti, &format!("j{i}"), None, 10_000, 0);
            assert!(matches!(r, Ok(true) | Err(InsertError::Full)), "{r:?}");
        }
        // Buckets of both tables + the generation key, never one key per entry.
        assert!(s.key_count() <= 1 + 4 + 1, "{} keys", s.key_count());
    }

    #[test]
    fn generation_changes_on_write_only() {
        let (t, mut s) = (t(), MemoryStore::new());
        let g0 = t.generation(&s);
        t.insert(&mut s, Kind::Kid, "k", None, 100, 0).unwrap();
        let g1 = t.generation(&s);
        assert_ne!(g0, g1);
        // Re-applying the same entry is a no-op.
        t.insert(&mut s, Kind::Kid, "k", None, 100, 0).unwrap();
        assert_eq!(t.generation(&s), g1);
    }

    #[test]
    fn contention_is_bounded_and_reported() {
        let (t, mut s) = (t(), MemoryStore::new());
        t.create(&mut s).unwrap();
        s.interfere = 1000;
        assert!(matches!(
            t.insert(&mut s, Kind::Jti, "x", None, 100, 0),
            Err(InsertError::Failed(_))
        ));
        // A few lost races are retried.
        s.interfere = 3;
        assert_eq!(t.insert(&mut s, Kind::Jti, "x", None, 100, 0), Ok(true));
        assert!(t.is_revoked(&s, Some("x"), "a", None, None, 0));
    }

    #[test]
    fn a_refused_revocation_raises_the_full_flag_until_a_complete_list_fits() {
        let mut s = MemoryStore::new();
        let t = Table::new(1, 2, KEY);
        let spec = |jti: &str, until: u64| RevocationSpec {
            jti: Some(jti.into()),
            sub: None,
            kid: None,
            issued_before: None,
            expires_at: Some(until),
        };
        let g0 = t.generation(&s);
        let done = t.apply(&mut s, &[spec("a", 300), spec("b", 300)], 1000, 0, true);
        assert_eq!((done.applied, done.full), (2, 0));
        assert!(!t.is_full(&s));
        let done = t.apply(&mut s, &[spec("c", 300)], 1000, 0, true);
        assert_eq!((done.applied, done.full), (0, 1));
        assert!(t.is_full(&s));
        assert_ne!(t.generation(&s), g0);
        // A partial list (configured entries) never clears it; a complete one that fits does.
        t.apply(&mut s, &[], 1000, 0, false);
        assert!(t.is_full(&s));
        let done = t.apply(&mut s, &[spec("c", 400)], 1000, 301, true);
        assert_eq!((done.applied, done.full), (1, 0));
        assert!(!t.is_full(&s));
    }

    #[test]
    fn a_list_with_failed_entries_raises_the_full_flag() {
        let mut s = MemoryStore::new();
        let t = Table::new(1, 2, KEY);
        let bad = RevocationSpec {
            jti: Some("x".into()),
            sub: Some("y".into()),
            kid: None,
            issued_before: None,
            expires_at: Some(300),
        };
        // A complete list some of whose entries could not be applied does not clear it either:
        // the revocation that failed is not in force.
        let done = t.apply(&mut s, &[bad], 1000, 0, true);
        assert_eq!((done.applied, done.failed), (0, 1));
        assert!(t.is_full(&s));
    }

    #[test]
    fn an_oversize_or_unparseable_polled_list_fails_closed() {
        let mut s = MemoryStore::new();
        let t = Table::new(4, 2, KEY);
        let ok = br#"{"revoked":[{"jti":"a","expires_at":500}]}"#;
        let two = br#"{"revoked":[{"jti":"a","expires_at":500},{"jti":"b","expires_at":500}]}"#;
        for body in [&two[..], b"not json", b"{\"revoked\":[{\"who\":1}]}"] {
            assert!(matches!(
                t.apply_polled(&mut s, ok, 1, 1000, 0),
                Polled::Applied(Applied { applied: 1, .. })
            ));
            assert!(!t.is_full(&s));
            assert!(matches!(
                t.apply_polled(&mut s, body, 1, 1000, 0),
                Polled::Unusable(_)
            ));
            assert!(t.is_full(&s), "{body:?}");
        }
    }

    #[test]
    fn list_parsing_and_apply() {
        let body = br#"{"revoked":[{"jti":"a","expires_at":500},{"sub":"m","issued_before":50},{"kid":"k"},{"jti":"x","sub":"y"}]}"#;
        let specs = parse_list(body, 10).unwrap();
        let (t, mut s) = (t(), MemoryStore::new());
        assert_eq!(
            t.apply(&mut s, &specs, 1000, 100, true),
            Applied {
                applied: 3,
                failed: 1,
                full: 0
            }
        );
        assert!(t.is_revoked(&s, Some("a"), "z", None, None, 499));
        assert!(t.is_revoked(&s, None, "z", Some("k"), None, 1099));
        assert!(!t.is_revoked(&s, None, "z", Some("k"), None, 1100));
        assert!(parse_list(body, 3).is_err());
        assert!(parse_list(b"{\"revoked\":[{\"who\":1}]}", 10).is_err());
        assert!(parse_list(b"not json", 10).is_err());
    }

    #[test]
    fn one_poller_per_interval() {
        let mut s = MemoryStore::new();
        assert!(claim_poll(&mut s, 100, 10));
        assert!(!claim_poll(&mut s, 105, 10));
        assert!(claim_poll(&mut s, 110, 10));
    }
}
