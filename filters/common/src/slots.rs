//! A bounded table of slots over proxy-wasm shared data: per-client state (rate-limit buckets,
//! penalties, revocations) in memory that never grows past the configured capacity.
//!
//! Envoy never frees a shared-data key, so a key per client would grow without bound under a
//! million distinct clients. Instead a table owns a fixed number of shared-data keys
//! (`buckets`), each holding `ways` entries. A client key is hashed; the hash picks the bucket and
//! a 64-bit fingerprint of it identifies the entry inside the bucket (two keys are confused only
//! if both their bucket and their fingerprint collide). Every entry carries its own expiry, after
//! which it is free. Updates are compare-and-swap with a bounded number of attempts, so all Envoy
//! workers see one consistent value; running out of attempts is an explicit error the caller maps
//! to its configured failure mode.
//!
//! When a bucket is full, an update for a new key first reuses an expired entry. Evicting a live
//! entry (which resets that client's state) happens only if the caller asks for it
//! ([`WhenFull::EvictSoonestExpiring`]), and the result says so, so callers can count it.
//!
//! The hash that picks a bucket is SipHash-1-3 under a [`HashKey`]: a secret drawn once per Envoy
//! (by the first worker to configure) into shared data, so every worker locates a key in the same
//! bucket while no client can compute which keys share one and aim them at another client's entry.
//!
//! The host side is the [`SharedData`] trait; [`MemoryStore`] is an in-memory fake that follows
//! Envoy's rules exactly (see its docs), for tests.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hasher as _;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Proxy-wasm shared data as Envoy implements it (proxy-wasm-cpp-host `SharedData`).
pub trait SharedData {
    /// The value and its CAS version, or `None` if the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value`. `cas == 0` writes unconditionally; otherwise the write fails with
    /// [`StoreError::CasMismatch`] if the key's version is no longer `cas`.
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Another writer changed the value since it was read.
    CasMismatch,
    /// Any other host failure.
    Host(String),
}

/// What an update does when the key is absent and every entry of its bucket is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Fail with [`SlotError::Full`]: never reset another client's state.
    Refuse,
    /// Replace the live entry closest to its expiry (the one whose loss matters least) and report
    /// [`Eviction::Live`].
    EvictSoonestExpiring,
}

/// What an update displaced to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Nothing: the key was present, or a never-used entry was free.
    None,
    /// An expired entry of another key was reused (its state had lapsed anyway).
    Expired,
    /// A live entry of another key was replaced: that client's state was reset.
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotError {
    /// Every compare-and-swap attempt lost to another writer.
    Contended { attempts: u32 },
    /// The bucket is full of live entries and the caller asked not to evict.
    Full,
    /// The host refused the read or write.
    Host(String),
}

/// What the caller's closure wants done with the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<R> {
    /// Leave the table as it is.
    Keep(R),
    /// Store `value` (exactly `value_len` bytes; shorter is zero-padded, longer is an error)
    /// until `expires_at`.
    Put {
        value: Vec<u8>,
        expires_at: u64,
        result: R,
    },
    /// Free the entry.
    Remove(R),
}

/// The result of a successful update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated<R> {
    pub result: R,
    pub eviction: Eviction,
    /// CAS conflicts lost before the write that succeeded.
    pub conflicts: u32,
}

/// The secret key of the bucket hash. Its `Debug` form hides the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(<secret>)")
    }
}

/// The shared-data key holding the per-Envoy [`HashKey`] (one namespace per VM id).
pub const HASH_KEY_NAME: &str = "portcullis/slots/hash-key/v1";

impl HashKey {
    pub const fn from_bytes(b: [u8; 16]) -> HashKey {
        HashKey {
            k0: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            k1: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        }
    }

    /// The key every worker of this Envoy shares: the one in shared data, or, if no worker has
    /// stored one yet, `fresh` (16 bytes from the OS's random source), stored for the others.
    ///
    /// The host has no create-if-absent: two workers configuring at the same instant could each
    /// store their own. Envoy configures the main thread's root context before the workers', so
    /// the key exists before any worker looks; and the value read back after writing is the one
    /// used, so a worker never keeps a key that is not stored.
    pub fn shared<S: SharedData>(store: &mut S, fresh: [u8; 16]) -> Result<HashKey, SlotError> {
        let stored = |store: &S| {
            store
                .get(HASH_KEY_NAME)
                .map(|(v, cas)| (<[u8; 16]>::try_from(v.as_slice()).ok(), cas))
        };
        let cas = match stored(store) {
            Some((Some(bytes), _)) => return Ok(HashKey::from_bytes(bytes)),
            // Foreign or truncated bytes: replace them under CAS.
            Some((None, cas)) => cas,
            None => 0,
        };
        match store.set(HASH_KEY_NAME, &fresh, cas) {
            Ok(()) | Err(StoreError::CasMismatch) => {}
            Err(StoreError::Host(e)) => return Err(SlotError::Host(e)),
        }
        match stored(store) {
            Some((Some(bytes), _)) => Ok(HashKey::from_bytes(bytes)),
            _ => Err(SlotError::Host(format!(
                "shared data `{HASH_KEY_NAME}` holds no 16-byte key after writing it"
            ))),
        }
    }
}

/// Shape and name of one table. All Envoy workers must build it with the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    prefix: String,
    key: HashKey,
    /// `prefix/WAYSxLEN/`, the bucket keys without their index: built once, not per request.
    key_prefix: String,
    buckets: u32,
    ways: u8,
    value_len: usize,
    max_attempts: u32,
}

const FINGERPRINT: usize = 8;
const EXPIRY: usize = 8;

impl SlotTable {
    /// `prefix` names the table's shared-data keys (distinct per table and filter instance);
    /// `buckets * ways` is the capacity; each value is `value_len` bytes; an update tries its
    /// compare-and-swap at most `max_attempts` times; `key` keys the bucket hash (every worker
    /// must use the same: [`HashKey::shared`]). Zero sizes are raised to 1.
    pub fn new(
        prefix: &str,
        buckets: u32,
        ways: u8,
        value_len: usize,
        max_attempts: u32,
        key: HashKey,
    ) -> SlotTable {
        let ways = ways.max(1);
        SlotTable {
            prefix: prefix.to_string(),
            key,
            key_prefix: format!("{prefix}/{ways}x{value_len}/"),
            buckets: buckets.max(1),
            ways,
            value_len,
            max_attempts: max_attempts.max(1),
        }
    }

    /// How many entries the table holds at most.
    pub fn capacity(&self) -> u64 {
        u64::from(self.buckets) * u64::from(self.ways)
    }

    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    fn entry_len(&self) -> usize {
        FINGERPRINT + EXPIRY + self.value_len
    }

    fn bucket_len(&self) -> usize {
        self.entry_len() * usize::from(self.ways)
    }

    /// The shared-data key of bucket `index`. The layout is part of the name, so a table
    /// reconfigured with another shape never misreads old bytes.
    pub fn bucket_key(&self, index: u32) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + 10);
        key.push_str(&self.key_prefix);
        // Writing an integer to a String cannot fail.
        let _ = write!(key, "{index}");
        key
    }

    /// Bucket index and fingerprint (never 0, which marks a free entry) of a client key: the two
    /// independent halves of one keyed 128-bit SipHash.
    fn locate(&self, key: &[u8]) -> (u32, u64) {
        let mut h = SipHasher13::new_with_keys(self.key.k0, self.key.k1);
        h.write(self.prefix.as_bytes());
        h.write_u8(0xff);
        h.write(key);
        let hash = h.finish128();
        let bucket = (hash.h1 % u64::from(self.buckets)) as u32;
        (bucket, hash.h2.max(1))
    }

    /// Writes an empty bucket for every bucket key not yet created. Call once at configure time:
    /// Envoy accepts a CAS write to a missing key unconditionally, so pre-created buckets close
    /// the window in which two workers creating the same bucket could overwrite each other.
    pub fn create_missing<S: SharedData>(&self, store: &mut S) -> Result<u32, SlotError> {
        let empty = vec![0u8; self.bucket_len()];
        let mut created = 0;
        for index in 0..self.buckets {
            let key = self.bucket_key(index);
            if store.get(&key).is_none() {
                store
                    .set(&key, &empty, 0)
                    .map_err(|e| SlotError::Host(format!("{e:?}")))?;
                created += 1;
            }
        }
        Ok(created)
    }

    /// The live value stored for `key`, without writing.
    pub fn get<S: SharedData>(&self, store: &S, key: &[u8], now: u64) -> Option<Vec<u8>> {
        let (index, fp) = self.locate(key);
        let (raw, _) = store.get(&self.bucket_key(index))?;
        let bucket = self.bucket(raw);
        let i = bucket.find(fp, now)?;
        Some(bucket.value(i).to_vec())
    }

    /// Reads the entry of `key` (`None` if absent or expired), lets `change` decide, and writes
    /// the result with compare-and-swap, retrying from a fresh read on conflict. `change` may run
    /// once per attempt, so it must be a pure function of its input.
    pub fn update<S, R, F>(
        &self,
        store: &mut S,
        key: &[u8],
        now: u64,
        when_full: WhenFull,
        mut change: F,
    ) -> Result<Updated<R>, SlotError>
    where
        S: SharedData,
        F: FnMut(Option<&[u8]>) -> Change<R>,
    {
        let (index, fp) = self.locate(key);
        let bucket_key = self.bucket_key(index);
        let mut conflicts = 0;
        while conflicts < self.max_attempts {
            let Some((raw, cas)) = store.get(&bucket_key) else {
                // A bucket that was never created (filters create theirs at configure time, see
                // `create_missing`): create it empty, then update it under CAS. The host has no
                // create-if-absent, so a worker creating the same bucket a moment later can still
                // wipe another's first update, once per bucket: an under-count, never a crash.
                store
                    .set(&bucket_key, &vec![0u8; self.bucket_len()], 0)
                    .map_err(|e| SlotError::Host(format!("{e:?}")))?;
                conflicts += 1;
                continue;
            };
            // The bucket is changed in place in the bytes the host returned and written back
            // whole: no decoding into entries, no allocation per entry.
            let mut bucket = self.bucket(raw);
            let found = bucket.find(fp, now);
            let (result, new_entry) = match change(found.map(|i| bucket.value(i))) {
                Change::Keep(result) => {
                    return Ok(Updated {
                        result,
                        eviction: Eviction::None,
                        conflicts,
                    })
                }
                Change::Remove(result) => (result, None),
                Change::Put {
                    value,
                    expires_at,
                    result,
                } => {
                    if value.len() > self.value_len {
                        return Err(SlotError::Host(format!(
                            "value of {} bytes exceeds the table's {}",
                            value.len(),
                            self.value_len
                        )));
                    }
                    (result, Some((value, expires_at)))
                }
            };
            let eviction = match (found, new_entry) {
                (Some(i), None) => {
                    bucket.put(i, 0, 0, &[]);
                    Eviction::None
                }
                (None, None) => {
                    return Ok(Updated {
                        result,
                        eviction: Eviction::None,
                        conflicts,
                    })
                }
                (Some(i), Some((value, expires_at))) => {
                    bucket.put(i, fp, expires_at, &value);
                    Eviction::None
                }
                (None, Some((value, expires_at))) => {
                    let (i, eviction) = bucket.choose_victim(fp, now, when_full)?;
                    bucket.put(i, fp, expires_at, &value);
                    eviction
                }
            };
            match store.set(&bucket_key, &bucket.raw, cas) {
                Ok(()) => {
                    return Ok(Updated {
                        result,
                        eviction,
                        conflicts,
                    })
                }
                Err(StoreError::CasMismatch) => conflicts += 1,
                Err(StoreError::Host(e)) => return Err(SlotError::Host(e)),
            }
        }
        Err(SlotError::Contended {
            attempts: conflicts,
        })
    }

    /// A bucket's bytes; anything of the wrong length (never written, foreign bytes) reads as an
    /// empty bucket.
    fn bucket(&self, mut raw: Vec<u8>) -> Bucket {
        if raw.len() != self.bucket_len() {
            raw.clear();
            raw.resize(self.bucket_len(), 0);
        }
        Bucket {
            raw,
            ways: usize::from(self.ways),
            entry_len: self.entry_len(),
        }
    }
}

/// One bucket as stored: `ways` entries of (fingerprint, expiry, value), little-endian; a
/// fingerprint of 0 marks a free entry.
struct Bucket {
    raw: Vec<u8>,
    ways: usize,
    entry_len: usize,
}

impl Bucket {
    fn field(&self, i: usize, at: usize) -> u64 {
        let start = i * self.entry_len + at;
        self.raw
            .get(start..start + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    fn fingerprint(&self, i: usize) -> u64 {
        self.field(i, 0)
    }

    fn expires_at(&self, i: usize) -> u64 {
        self.field(i, FINGERPRINT)
    }

    fn value(&self, i: usize) -> &[u8] {
        let start = i * self.entry_len + FINGERPRINT + EXPIRY;
        self.raw
            .get(start..(i + 1) * self.entry_len)
            .unwrap_or_default()
    }

    /// The live entry with fingerprint `fp`.
    fn find(&self, fp: u64, now: u64) -> Option<usize> {
        (0..self.ways).find(|&i| self.fingerprint(i) == fp && self.expires_at(i) > now)
    }

    /// Overwrites entry `i`; `value` is zero-padded to the table's value length.
    fn put(&mut self, i: usize, fp: u64, expires_at: u64, value: &[u8]) {
        let start = i * self.entry_len;
        let Some(entry) = self.raw.get_mut(start..start + self.entry_len) else {
            return;
        };
        let (head, rest) = entry.split_at_mut(FINGERPRINT);
        head.copy_from_slice(&fp.to_le_bytes());
        let (exp, slot) = rest.split_at_mut(EXPIRY);
        exp.copy_from_slice(&expires_at.to_le_bytes());
        slot.fill(0);
        for (dst, src) in slot.iter_mut().zip(value) {
            *dst = *src;
        }
    }

    /// A free or expired entry first; a live one only if allowed (the soonest to expire).
    fn choose_victim(
        &self,
        fp: u64,
        now: u64,
        when_full: WhenFull,
    ) -> Result<(usize, Eviction), SlotError> {
        let ways = 0..self.ways;
        if let Some(i) = ways.clone().find(|&i| self.fingerprint(i) == 0) {
            return Ok((i, Eviction::None));
        }
        // Our own expired entry is not an eviction of someone else.
        if let Some(i) = ways.clone().find(|&i| self.fingerprint(i) == fp) {
            return Ok((i, Eviction::None));
        }
        if let Some(i) = ways.clone().find(|&i| self.expires_at(i) <= now) {
            return Ok((i, Eviction::Expired));
        }
        match when_full {
            WhenFull::Refuse => Err(SlotError::Full),
            WhenFull::EvictSoonestExpiring => ways
                .min_by_key(|&i| self.expires_at(i))
                .map(|i| (i, Eviction::Live))
                .ok_or(SlotError::Full),
        }
    }
}

/// In-memory shared data with Envoy's exact rules (proxy-wasm-cpp-host `SharedData::set`):
/// every successful write gives the key a new, never-zero CAS version; a write with CAS 0, or to
/// a key that does not exist yet, always succeeds; a write with another CAS than the key's
/// current one fails with `CasMismatch`; keys are never freed.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    /// Test hook: the next N conditional writes find that another worker wrote first.
    pub interfere: u32,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Keys ever written (Envoy frees none of them).
    pub fn key_count(&self) -> usize {
        self.map.len()
    }

    /// Total bytes held in keys and values.
    pub fn bytes(&self) -> usize {
        self.map.iter().map(|(k, (v, _))| k.len() + v.len()).sum()
    }

    fn bump(&mut self) -> u32 {
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.next_cas
    }
}

impl SharedData for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.map.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        if cas != 0 && self.interfere > 0 && self.map.contains_key(key) {
            self.interfere -= 1;
            let bumped = self.bump();
            if let Some(entry) = self.map.get_mut(key) {
                entry.1 = bumped;
            }
            return Err(StoreError::CasMismatch);
        }
        if let Some((_, current)) = self.map.get(key) {
            if cas != 0 && cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        let version = self.bump();
        self.map.insert(key.to_string(), (value.to_vec(), version));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: HashKey = HashKey::from_bytes([1; 16]);

    fn put(value: &[u8], expires_at: u64) -> Change<()> {
        Change::Put {
            value: value.to_vec(),
            expires_at,
            result: (),
        }
    }

    fn counter_inc(table: &SlotTable, store: &mut MemoryStore, key: &str, now: u64) -> Updated<u8> {
        table
            .update(store, key.as_bytes(), now, WhenFull::Refuse, |cur| {
                let n = cur.and_then(|v| v.first().copied()).unwrap_or(0) + 1;
                Change::Put {
                    value: vec![n],
                    expires_at: now + 100,
                    result: n,
                }
            })
            .unwrap()
    }

    #[test]
    fn fake_follows_envoy_cas_rules() {
        let mut s = MemoryStore::new();
        assert_eq!(s.get("k"), None);
        // A missing key accepts any CAS.
        s.set("k", b"a", 77).unwrap();
        let (v, cas1) = s.get("k").unwrap();
        assert_eq!(v, b"a");
        assert_ne!(cas1, 0);
        // The current CAS succeeds and changes the version.
        s.set("k", b"b", cas1).unwrap();
        let (v, cas2) = s.get("k").unwrap();
        assert_eq!(v, b"b");
        assert_ne!(cas2, cas1);
        // A stale CAS fails and leaves the value alone.
        assert_eq!(s.set("k", b"c", cas1), Err(StoreError::CasMismatch));
        assert_eq!(s.get("k").unwrap().0, b"b");
        // CAS 0 is unconditional.
        s.set("k", b"d", 0).unwrap();
        assert_eq!(s.get("k").unwrap().0, b"d");
        // Keys are never freed: an empty value keeps the key.
        s.set("k", b"", 0).unwrap();
        assert_eq!(s.get("k").unwrap().0, b"");
        assert_eq!(s.key_count(), 1);
    }

    #[test]
    fn fake_interference_looks_like_another_writer() {
        let mut s = MemoryStore::new();
        s.set("k", b"a", 0).unwrap();
        let (_, cas) = s.get("k").unwrap();
        s.interfere = 1;
        assert_eq!(s.set("k", b"b", cas), Err(StoreError::CasMismatch));
        // The version moved, so the old CAS stays stale.
        assert_eq!(s.set("k", b"b", cas), Err(StoreError::CasMismatch));
        let (_, fresh) = s.get("k").unwrap();
        s.set("k", b"b", fresh).unwrap();
    }

    #[test]
    fn values_round_trip_and_expire() {
        let t = SlotTable::new("t", 4, 2, 3, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        let u = t
            .update(&mut s, b"alice", 10, WhenFull::Refuse, |cur| {
                assert_eq!(cur, None);
                put(b"xyz", 20)
            })
            .unwrap();
        assert_eq!(u.eviction, Eviction::None);
        assert_eq!(t.get(&s, b"alice", 19), Some(b"xyz".to_vec()));
        assert_eq!(t.get(&s, b"alice", 20), None, "expired at its expiry");
        assert_eq!(t.get(&s, b"bob", 10), None);
        // Shorter values are padded to the table's value length.
        t.update(&mut s, b"bob", 10, WhenFull::Refuse, |_| put(b"q", 50))
            .unwrap();
        assert_eq!(t.get(&s, b"bob", 10), Some(b"q\0\0".to_vec()));
        // An expired entry reads as absent inside update too.
        t.update(&mut s, b"alice", 25, WhenFull::Refuse, |cur| {
            assert_eq!(cur, None);
            Change::Keep(())
        })
        .unwrap();
    }

    #[test]
    fn too_long_value_is_an_error_not_a_truncation() {
        let t = SlotTable::new("t", 1, 1, 2, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        let e = t
            .update(&mut s, b"k", 0, WhenFull::Refuse, |_| put(b"abc", 9))
            .unwrap_err();
        assert!(matches!(e, SlotError::Host(m) if m.contains("3 bytes")));
    }

    #[test]
    fn keep_does_not_write_and_remove_frees() {
        let t = SlotTable::new("t", 1, 1, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        let before = s.get(&t.bucket_key(0)).unwrap();
        let u = t
            .update(&mut s, b"k", 0, WhenFull::Refuse, |_| Change::Keep(7))
            .unwrap();
        assert_eq!(u.result, 7);
        assert_eq!(s.get(&t.bucket_key(0)).unwrap(), before, "no write at all");
        counter_inc(&t, &mut s, "k", 0);
        t.update(&mut s, b"k", 1, WhenFull::Refuse, |_| Change::Remove(()))
            .unwrap();
        assert_eq!(t.get(&s, b"k", 1), None);
        // The freed entry is reused without counting as an eviction.
        let u = counter_inc(&t, &mut s, "other", 1);
        assert_eq!(u.eviction, Eviction::None);
    }

    #[test]
    fn concurrent_writers_never_lose_an_update() {
        let t = SlotTable::new("t", 2, 4, 1, 8, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        for i in 1..=20u8 {
            // Another worker wins the first two attempts of every update.
            s.interfere = 2;
            let u = counter_inc(&t, &mut s, "k", 0);
            assert_eq!(u.result, i);
            assert_eq!(u.conflicts, 2);
        }
        assert_eq!(t.get(&s, b"k", 0), Some(vec![20]));
    }

    #[test]
    fn contention_beyond_the_bound_is_an_explicit_error() {
        let t = SlotTable::new("t", 1, 1, 1, 3, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        s.interfere = 3;
        let e = t
            .update(&mut s, b"k", 0, WhenFull::Refuse, |_| put(b"x", 9))
            .unwrap_err();
        assert_eq!(e, SlotError::Contended { attempts: 3 });
        assert_eq!(t.get(&s, b"k", 0), None, "nothing written");
        // Once the other writer is gone, the update goes through.
        counter_inc(&t, &mut s, "k", 0);
    }

    #[test]
    fn a_missing_bucket_is_created_then_updated_under_cas() {
        let t = SlotTable::new("t", 1, 2, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        let u = counter_inc(&t, &mut s, "k", 0);
        assert_eq!(u.result, 1);
        assert_eq!(u.conflicts, 1, "the creation costs one attempt");
        assert_eq!(t.get(&s, b"k", 0), Some(vec![1]));
    }

    #[test]
    fn full_bucket_prefers_expired_entries() {
        let t = SlotTable::new("t", 1, 2, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        t.update(&mut s, b"a", 0, WhenFull::Refuse, |_| put(b"a", 10))
            .unwrap();
        t.update(&mut s, b"b", 0, WhenFull::Refuse, |_| put(b"b", 100))
            .unwrap();
        // At 50, a has expired: c takes its entry, b is untouched.
        let u = t
            .update(&mut s, b"c", 50, WhenFull::Refuse, |_| put(b"c", 200))
            .unwrap();
        assert_eq!(u.eviction, Eviction::Expired);
        assert_eq!(t.get(&s, b"b", 50), Some(b"b".to_vec()));
        assert_eq!(t.get(&s, b"c", 50), Some(b"c".to_vec()));
    }

    #[test]
    fn full_bucket_of_live_entries_refuses_unless_told_to_evict() {
        let t = SlotTable::new("t", 1, 2, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        t.update(&mut s, b"a", 0, WhenFull::Refuse, |_| put(b"a", 300))
            .unwrap();
        t.update(&mut s, b"b", 0, WhenFull::Refuse, |_| put(b"b", 100))
            .unwrap();
        let e = t
            .update(&mut s, b"c", 50, WhenFull::Refuse, |_| put(b"c", 200))
            .unwrap_err();
        assert_eq!(e, SlotError::Full);
        assert_eq!(t.get(&s, b"a", 50), Some(b"a".to_vec()));
        assert_eq!(t.get(&s, b"b", 50), Some(b"b".to_vec()));
        // Told to evict: the entry closest to expiry (b) goes, and the caller hears about it.
        let u = t
            .update(&mut s, b"c", 50, WhenFull::EvictSoonestExpiring, |_| {
                put(b"c", 200)
            })
            .unwrap();
        assert_eq!(u.eviction, Eviction::Live);
        assert_eq!(t.get(&s, b"b", 50), None);
        assert_eq!(t.get(&s, b"a", 50), Some(b"a".to_vec()));
        // Existing keys update in place even when the bucket is full.
        let u = t
            .update(&mut s, b"a", 60, WhenFull::Refuse, |_| put(b"A", 300))
            .unwrap();
        assert_eq!(u.eviction, Eviction::None);
    }

    #[test]
    fn colliding_keys_in_one_bucket_stay_apart() {
        // One bucket: every key collides on the bucket; fingerprints keep them apart.
        let t = SlotTable::new("t", 1, 8, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        t.create_missing(&mut s).unwrap();
        for (i, k) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            let n = u8::try_from(i).unwrap();
            t.update(&mut s, k.as_bytes(), 0, WhenFull::Refuse, |_| {
                put(&[n], 100)
            })
            .unwrap();
        }
        for (i, k) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            assert_eq!(
                t.get(&s, k.as_bytes(), 1),
                Some(vec![u8::try_from(i).unwrap()])
            );
        }
        assert_eq!(t.get(&s, b"i", 1), None);
    }

    #[test]
    fn memory_is_the_capacity_not_the_number_of_clients() {
        let t = SlotTable::new("rl", 64, 4, 16, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        assert_eq!(t.create_missing(&mut s).unwrap(), 64);
        assert_eq!(t.create_missing(&mut s).unwrap(), 0, "idempotent");
        let bytes = s.bytes();
        let mut evictions = 0;
        for i in 0..100_000u32 {
            let u = t
                .update(
                    &mut s,
                    &i.to_le_bytes(),
                    u64::from(i),
                    WhenFull::EvictSoonestExpiring,
                    |_| put(&[1], u64::from(i) + 1_000),
                )
                .unwrap();
            if u.eviction != Eviction::None {
                evictions += 1;
            }
        }
        assert_eq!(s.key_count(), 64);
        assert_eq!(s.bytes(), bytes, "bounded by the table's shape");
        assert!(evictions > 90_000, "{evictions}");
        assert_eq!(t.capacity(), 256);
    }

    #[test]
    fn tables_with_different_prefixes_or_shapes_do_not_share_keys() {
        let a = SlotTable::new("a", 2, 2, 1, 4, TEST_KEY);
        let b = SlotTable::new("b", 2, 2, 1, 4, TEST_KEY);
        let a2 = SlotTable::new("a", 2, 2, 2, 4, TEST_KEY);
        assert_ne!(a.bucket_key(0), b.bucket_key(0));
        assert_ne!(a.bucket_key(0), a2.bucket_key(0));
        let mut s = MemoryStore::new();
        a.update(&mut s, b"k", 0, WhenFull::Refuse, |_| put(b"x", 9))
            .unwrap();
        assert_eq!(b.get(&s, b"k", 0), None);
        assert_eq!(a2.get(&s, b"k", 0), None);
    }

    #[test]
    fn foreign_bytes_read_as_an_empty_bucket() {
        let t = SlotTable::new("t", 1, 2, 1, 4, TEST_KEY);
        let mut s = MemoryStore::new();
        s.set(&t.bucket_key(0), b"garbage", 0).unwrap();
        assert_eq!(t.get(&s, b"k", 0), None);
        counter_inc(&t, &mut s, "k", 0);
        assert_eq!(t.get(&s, b"k", 0), Some(vec![1]));
    }

    #[test]
    fn zero_sizes_are_raised() {
        let t = SlotTable::new("t", 0, 0, 0, 0, TEST_KEY);
        assert_eq!(t.capacity(), 1);
        assert_eq!(t.buckets(), 1);
    }

    #[test]
    fn the_hash_key_is_created_once_and_shared() {
        let mut s = MemoryStore::new();
        let first = HashKey::shared(&mut s, [7; 16]).unwrap();
        // A second worker draws other random bytes but takes the stored key.
        let second = HashKey::shared(&mut s, [9; 16]).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, HashKey::from_bytes([7; 16]));
        // Foreign bytes under the name are replaced, not used.
        let mut s = MemoryStore::new();
        s.set(HASH_KEY_NAME, b"short", 0).unwrap();
        assert_eq!(
            HashKey::shared(&mut s, [3; 16]).unwrap(),
            HashKey::from_bytes([3; 16])
        );
        assert_eq!(format!("{first:?}"), "HashKey(<secret>)");
    }

    /// Keys an attacker chose to share one bucket under a key they know (as they could under
    /// the old unkeyed hash) spread over the buckets under a key they do not.
    #[test]
    fn keys_aimed_at_one_bucket_under_a_known_key_spread_under_the_secret_one() {
        let known = SlotTable::new("rl", 64, 4, 1, 4, HashKey::from_bytes([0; 16]));
        let secret = SlotTable::new("rl", 64, 4, 1, 4, HashKey::from_bytes([0x5a; 16]));
        let aimed: Vec<String> = (0..100_000u32)
            .map(|i| format!("client-{i}"))
            .filter(|k| known.locate(k.as_bytes()).0 == 0)
            .take(64)
            .collect();
        assert_eq!(aimed.len(), 64);
        let mut buckets: Vec<u32> = aimed
            .iter()
            .map(|k| secret.locate(k.as_bytes()).0)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        // 64 keys thrown into 64 buckets land in about 40 distinct ones; one bucket would be 1.
        assert!(buckets.len() > 25, "{} distinct buckets", buckets.len());
        // And none of them can evict a live entry in bucket 0 under the secret key by filling it.
        let in_zero = aimed
            .iter()
            .filter(|k| secret.locate(k.as_bytes()).0 == 0)
            .count();
        assert!(in_zero < 4, "{in_zero}");
    }
}
