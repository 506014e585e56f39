//! Where entries live: Envoy shared data, in a fixed number of keys, so memory is bounded by the
//! configuration however many distinct URLs are requested (Envoy never frees a key).
//!
//! Layout (prefix `portcullis.cache.<instance>`):
//! - `<prefix>/dir/<b>` for each of `buckets` buckets: `ways` records of 32 bytes
//!   (URL fingerprint, variant fingerprint, tag bloom filter, object size, last use in seconds);
//!   a variant fingerprint of 0 marks a free way.
//! - `<prefix>/obj/<b>/<w>`: the encoded [`Entry`] of way `w`, or empty once freed.
//!
//! A resource's URL key picks its bucket, so all its variants (Vary, per-user) sit together and
//! invalidation touches one bucket. Each bucket owns `max_bytes / buckets` of the byte budget:
//! accounting stays local to one compare-and-swap, and the total can never exceed `max_bytes`.
//! Eviction is least-recently-used within the bucket (an approximation of global LRU, the usual
//! trade of set-associative caches). The directory is updated with compare-and-swap (bounded
//! retries) before the object is written; a reader checks the object's own variant fingerprint,
//! so a race between workers yields a miss, never another resource's bytes.

use portcullis_common::slots::{SharedData, StoreError};

use crate::entry::Entry;
use crate::key::fingerprint;

const RECORD: usize = 32;
/// A directory write that loses this many compare-and-swaps in a row gives up (counted).
const ATTEMPTS: u32 = 4;
/// Last-use times are refreshed at most this often, so hits rarely write.
const TOUCH_GRANULARITY: u32 = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Record {
    url: u64,
    variant: u64,
    tags: u64,
    size: u32,
    last_used: u32,
}

impl Record {
    fn free(&self) -> bool {
        self.variant == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    prefix: String,
    buckets: u32,
    ways: u8,
    bucket_budget: u64,
}

/// What a write changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub evicted: u32,
    pub removed: u32,
    pub conflicts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFailure {
    /// Larger than a bucket's budget.
    TooLarge,
    Contended,
    Host(String),
}

/// A stored entry found for a URL, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub bucket: u32,
    pub way: u8,
    pub entry: Entry,
}

/// Bloom bits of one tag (two bits of 64).
fn tag_bits(tag: &str) -> u64 {
    let h = fingerprint(&[b"tag", tag.as_bytes()]);
    (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63))
}

fn secs32(now: u64) -> u32 {
    u32::try_from(now).unwrap_or(u32::MAX)
}

impl Store {
    pub fn new(instance: &str, buckets: u32, ways: u8, max_bytes: u64) -> Store {
        let buckets = buckets.max(1);
        Store {
            prefix: format!("portcullis.cache.{instance}/{ways}"),
            buckets,
            ways: ways.max(1),
            bucket_budget: max_bytes / u64::from(buckets),
        }
    }

    pub fn slots(&self) -> u64 {
        u64::from(self.buckets) * u64::from(self.ways)
    }

    fn dir_key(&self, b: u32) -> String {
        format!("{}/dir/{b}", self.prefix)
    }

    fn obj_key(&self, b: u32, w: u8) -> String {
        format!("{}/obj/{b}/{w}", self.prefix)
    }

    pub fn url_fingerprint(url_key: &str) -> u64 {
        fingerprint(&[b"url", url_key.as_bytes()])
    }

    fn bucket_of(&self, url_fp: u64) -> u32 {
        (url_fp % u64::from(self.buckets)) as u32
    }

    /// The directory of bucket `b` and its CAS version (0 when never written).
    fn read_dir<S: SharedData>(&self, s: &S, b: u32) -> (Vec<Record>, u32) {
        let mut records = vec![Record::default(); usize::from(self.ways)];
        let Some((raw, cas)) = s.get(&self.dir_key(b)) else {
            return (records, 0);
        };
        for (i, chunk) in raw.chunks_exact(RECORD).take(records.len()).enumerate() {
            let u = |at: usize| {
                chunk
                    .get(at..at + 8)
                    .and_then(|x| x.try_into().ok())
                    .map_or(0, u64::from_le_bytes)
            };
            let v = |at: usize| {
                chunk
                    .get(at..at + 4)
                    .and_then(|x| x.try_into().ok())
                    .map_or(0, u32::from_le_bytes)
            };
            if let Some(r) = records.get_mut(i) {
                *r = Record {
                    url: u(0),
                    variant: u(8),
                    tags: u(16),
                    size: v(24),
                    last_used: v(28),
                };
            }
        }
        (records, cas)
    }

    fn encode_dir(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::with_capacity(records.len() * RECORD);
        for r in records {
            out.extend_from_slice(&r.url.to_le_bytes());
            out.extend_from_slice(&r.variant.to_le_bytes());
            out.extend_from_slice(&r.tags.to_le_bytes());
            out.extend_from_slice(&r.size.to_le_bytes());
            out.extend_from_slice(&r.last_used.to_le_bytes());
        }
        out
    }

    /// Every stored variant of `url_key`, most recently used first. Objects whose own
    /// fingerprint or URL disagree with the directory (a concurrent rewrite) are skipped.
    pub fn variants<S: SharedData>(&self, s: &S, url_key: &str) -> Vec<Found> {
        let url = Self::url_fingerprint(url_key);
        let b = self.bucket_of(url);
        let (records, _) = self.read_dir(s, b);
        let mut ways: Vec<(u8, Record)> = (0..self.ways)
            .zip(records)
            .filter(|(_, r)| !r.free() && r.url == url)
            .collect();
        ways.sort_by_key(|w| std::cmp::Reverse(w.1.last_used));
        ways.into_iter()
            .filter_map(|(w, r)| {
                let (raw, _) = s.get(&self.obj_key(b, w))?;
                let entry = Entry::decode(&raw)?;
                (entry.variant == r.variant && entry.url_key == url_key).then_some(Found {
                    bucket: b,
                    way: w,
                    entry,
                })
            })
            .collect()
    }

    /// Marks a way as used now (best effort: a lost race only delays the LRU update).
    pub fn touch<S: SharedData>(&self, s: &mut S, found: &Found, now: u64) {
        let (mut records, cas) = self.read_dir(s, found.bucket);
        if let Some(r) = records.get_mut(usize::from(found.way)) {
            if r.variant != found.entry.variant
                || secs32(now).saturating_sub(r.last_used) < TOUCH_GRANULARITY
            {
                return;
            }
            r.last_used = secs32(now);
            let _ = s.set(
                &self.dir_key(found.bucket),
                &Self::encode_dir(&records),
                cas,
            );
        }
    }

    /// Stores `entry`, replacing the same variant if present and evicting least-recently-used
    /// ways of the bucket until it fits the bucket's budget and a way is free.
    pub fn insert<S: SharedData>(
        &self,
        s: &mut S,
        entry: &Entry,
        now: u64,
    ) -> Result<Report, StoreFailure> {
        let raw = entry.encode();
        let size = raw.len() as u64;
        if size > self.bucket_budget || size > u64::from(u32::MAX) {
            return Err(StoreFailure::TooLarge);
        }
        let url = Self::url_fingerprint(&entry.url_key);
        let b = self.bucket_of(url);
        let tags = entry.tags.iter().fold(0u64, |acc, t| acc | tag_bits(t));
        let mut report = Report::default();
        for _ in 0..ATTEMPTS {
            let (mut records, cas) = self.read_dir(s, b);
            // Ways whose objects must be emptied after the directory commit (not `way` itself,
            // which the new object overwrites).
            let mut freed = Vec::new();
            let mut evicted = 0;
            // The way to use: this variant's, else a free one, else the LRU victim.
            let way = records
                .iter()
                .position(|r| !r.free() && r.url == url && r.variant == entry.variant)
                .or_else(|| records.iter().position(Record::free));
            let way = match way {
                Some(w) => w,
                None => {
                    let lru = lru_way(&records, None).ok_or(StoreFailure::TooLarge)?;
                    evicted += 1;
                    lru
                }
            };
            if let Some(r) = records.get_mut(way) {
                *r = Record::default();
            }
            // Evict LRU ways until the new object fits the bucket's budget.
            while used(&records) + size > self.bucket_budget {
                match lru_way(&records, Some(way)) {
                    Some(victim) => {
                        if let Some(r) = records.get_mut(victim) {
                            *r = Record::default();
                        }
                        freed.push(victim);
                        evicted += 1;
                    }
                    None => return Err(StoreFailure::TooLarge),
                }
            }
            if let Some(r) = records.get_mut(way) {
                *r = Record {
                    url,
                    variant: entry.variant,
                    tags,
                    size: size as u32,
                    last_used: secs32(now),
                };
            }
            match s.set(&self.dir_key(b), &Self::encode_dir(&records), cas) {
                Ok(()) => {
                    let way8 = u8::try_from(way).unwrap_or(0);
                    s.set(&self.obj_key(b, way8), &raw, 0)
                        .map_err(|e| StoreFailure::Host(format!("{e:?}")))?;
                    for victim in &freed {
                        self.clear_object(s, b, *victim);
                    }
                    report.evicted = evicted;
                    return Ok(report);
                }
                Err(StoreError::CasMismatch) => report.conflicts += 1,
                Err(StoreError::Host(e)) => return Err(StoreFailure::Host(e)),
            }
        }
        Err(StoreFailure::Contended)
    }

    /// Overwrites a freed way's object with nothing, so its memory goes back to Envoy.
    fn clear_object<S: SharedData>(&self, s: &mut S, b: u32, way: usize) {
        if let Ok(w) = u8::try_from(way) {
            let _ = s.set(&self.obj_key(b, w), &[], 0);
        }
    }

    /// Removes the ways of bucket `b` chosen by `doomed`, with compare-and-swap.
    fn remove_where<S: SharedData, F: Fn(u8, &Record) -> bool>(
        &self,
        s: &mut S,
        b: u32,
        doomed: F,
    ) -> Result<Report, StoreFailure> {
        let mut report = Report::default();
        for _ in 0..ATTEMPTS {
            let (mut records, cas) = self.read_dir(s, b);
            let mut gone = Vec::new();
            for (w, r) in (0..self.ways).zip(records.iter_mut()) {
                if !r.free() && doomed(w, r) {
                    *r = Record::default();
                    gone.push(w);
                }
            }
            if gone.is_empty() {
                return Ok(report);
            }
            match s.set(&self.dir_key(b), &Self::encode_dir(&records), cas) {
                Ok(()) => {
                    for w in &gone {
                        self.clear_object(s, b, usize::from(*w));
                    }
                    report.removed = gone.len() as u32;
                    return Ok(report);
                }
                Err(StoreError::CasMismatch) => report.conflicts += 1,
                Err(StoreError::Host(e)) => return Err(StoreFailure::Host(e)),
            }
        }
        Err(StoreFailure::Contended)
    }

    /// Removes every variant (all users, all Vary values) of a URL key.
    pub fn remove_url<S: SharedData>(
        &self,
        s: &mut S,
        url_key: &str,
    ) -> Result<Report, StoreFailure> {
        let url = Self::url_fingerprint(url_key);
        self.remove_where(s, self.bucket_of(url), |_, r| r.url == url)
    }

    /// Removes the variants of `url_key` stored under `primary_key` (on a per-user route, one
    /// user's): the directory picks the URL's ways, each object's own keys decide.
    pub fn remove_primary<S: SharedData>(
        &self,
        s: &mut S,
        url_key: &str,
        primary_key: &str,
    ) -> Result<Report, StoreFailure> {
        let url = Self::url_fingerprint(url_key);
        let b = self.bucket_of(url);
        let (records, _) = self.read_dir(s, b);
        // The way and the variant it held: a way reused meanwhile is not removed.
        let owned: Vec<(u8, u64)> = (0..self.ways)
            .zip(records.iter())
            .filter(|(_, r)| !r.free() && r.url == url)
            .filter(|(w, r)| {
                s.get(&self.obj_key(b, *w))
                    .and_then(|(raw, _)| Entry::decode(&raw))
                    .is_some_and(|e| {
                        e.variant == r.variant
                            && e.url_key == url_key
                            && e.primary_key == primary_key
                    })
            })
            .map(|(w, r)| (w, r.variant))
            .collect();
        if owned.is_empty() {
            return Ok(Report::default());
        }
        self.remove_where(s, b, |w, r| {
            owned.iter().any(|(x, v)| *x == w && r.variant == *v)
        })
    }

    /// Removes every entry tagged `tag`: the bloom bits pick candidates in each bucket's
    /// directory; the object's own tag list decides. Touches every bucket (an admin operation).
    pub fn remove_tag<S: SharedData>(&self, s: &mut S, tag: &str) -> Result<Report, StoreFailure> {
        let bits = tag_bits(tag);
        let mut total = Report::default();
        for b in 0..self.buckets {
            let (records, _) = self.read_dir(s, b);
            let tagged: Vec<u8> = (0..self.ways)
                .zip(records.iter())
                .filter(|(_, r)| !r.free() && r.tags & bits == bits)
                .filter(|(w, r)| {
                    s.get(&self.obj_key(b, *w))
                        .and_then(|(raw, _)| Entry::decode(&raw))
                        .is_some_and(|e| e.variant == r.variant && e.tags.iter().any(|t| t == tag))
                })
                .map(|(w, _)| w)
                .collect();
            if tagged.is_empty() {
                continue;
            }
            let r = self.remove_where(s, b, |w, _| tagged.contains(&w))?;
            total.removed += r.removed;
            total.conflicts += r.conflicts;
        }
        Ok(total)
    }

    /// Bytes accounted in the directory of every bucket, and live entries (for gauges/tests).
    pub fn usage<S: SharedData>(&self, s: &S) -> (u64, u64) {
        let mut bytes = 0;
        let mut entries = 0;
        for b in 0..self.buckets {
            let (records, _) = self.read_dir(s, b);
            bytes += used(&records);
            entries += records.iter().filter(|r| !r.free()).count() as u64;
        }
        (bytes, entries)
    }
}

fn used(records: &[Record]) -> u64 {
    records
        .iter()
        .filter(|r| !r.free())
        .map(|r| u64::from(r.size))
        .sum()
}

/// The least recently used live way, other than `except`.
fn lru_way(records: &[Record], except: Option<usize>) -> Option<usize> {
    records
        .iter()
        .enumerate()
        .filter(|(i, r)| !r.free() && Some(*i) != except)
        .min_by_key(|(_, r)| r.last_used)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::sample;
    use crate::key::variant_fingerprint;
    use portcullis_common::slots::MemoryStore;

    fn entry(url: &str, variant_tag: &str, body_len: usize) -> Entry {
        let mut e = sample();
        e.url_key = url.into();
        e.primary_key = url.into();
        e.vary = vec![("accept".into(), variant_tag.into())];
        e.variant = variant_fingerprint(url, &e.vary);
        e.body = vec![b'x'; body_len];
        e
    }

    #[test]
    fn insert_find_replace() {
        let st = Store::new("t", 4, 4, 1 << 20);
        let mut s = MemoryStore::new();
        let a = entry("GET https://h/a", "json", 10);
        st.insert(&mut s, &a, 100).unwrap();
        let found = st.variants(&s, "GET https://h/a");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry, a);
        assert!(st.variants(&s, "GET https://h/b").is_empty());
        // Same variant again: replaced, not duplicated.
        let mut a2 = a.clone();
        a2.body = b"new".to_vec();
        st.insert(&mut s, &a2, 101).unwrap();
        let found = st.variants(&s, "GET https://h/a");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry.body, b"new");
        // Another variant of the same URL sits beside it.
        st.insert(&mut s, &entry("GET https://h/a", "xml", 5), 102)
            .unwrap();
        assert_eq!(st.variants(&s, "GET https://h/a").len(), 2);
        assert_eq!(
            st.variants(&s, "GET https://h/a")[0].entry.vary[0].1,
            "xml",
            "MRU first"
        );
    }

    #[test]
    fn keys_stay_bounded_however_many_urls() {
        let st = Store::new("t", 8, 2, 1 << 20);
        let mut s = MemoryStore::new();
        for i in 0..2000 {
            st.insert(&mut s, &entry(&format!("GET https://h/{i}"), "a", 100), i)
                .unwrap();
        }
        // 8 directories + 16 objects: nothing per URL.
        assert!(s.key_count() <= 8 + 16, "{}", s.key_count());
        let (_, entries) = st.usage(&s);
        assert_eq!(entries, 16);
    }

    #[test]
    fn lru_eviction_within_a_bucket() {
        let st = Store::new("t", 1, 2, 1 << 20);
        let mut s = MemoryStore::new();
        st.insert(&mut s, &entry("GET https://h/1", "a", 10), 10)
            .unwrap();
        st.insert(&mut s, &entry("GET https://h/2", "a", 10), 20)
            .unwrap();
        // Touch 1 so 2 is least recently used.
        let f = st.variants(&s, "GET https://h/1").remove(0);
        st.touch(&mut s, &f, 30);
        let r = st
            .insert(&mut s, &entry("GET https://h/3", "a", 10), 40)
            .unwrap();
        assert_eq!(r.evicted, 1);
        assert_eq!(st.variants(&s, "GET https://h/1").len(), 1);
        assert!(st.variants(&s, "GET https://h/2").is_empty());
        assert_eq!(st.variants(&s, "GET https://h/3").len(), 1);
    }

    #[test]
    fn byte_budget_is_never_exceeded() {
        // One bucket, 8 ways, 1000-byte budget.
        let st = Store::new("t", 1, 8, 1000);
        let mut s = MemoryStore::new();
        let size = entry("GET https://h/0", "a", 200).encode().len() as u64;
        for i in 0..20 {
            st.insert(&mut s, &entry(&format!("GET https://h/{i}"), "a", 200), i)
                .unwrap();
            let (bytes, entries) = st.usage(&s);
            assert!(bytes <= 1000, "{bytes}");
            assert_eq!(entries, (1000 / size).min(i + 1));
        }
        // Freed objects give their memory back: only live objects hold bytes.
        let live: usize = (0..8u8)
            .filter_map(|w| s.get(&st.obj_key(0, w)).map(|(v, _)| v.len()))
            .sum();
        assert_eq!(live as u64, st.usage(&s).0);
        // Larger than the whole bucket budget: refused.
        assert_eq!(
            st.insert(&mut s, &entry("GET https://h/big", "a", 2000), 99),
            Err(StoreFailure::TooLarge)
        );
    }

    #[test]
    fn remove_by_url_and_by_tag() {
        let st = Store::new("t", 4, 4, 1 << 20);
        let mut s = MemoryStore::new();
        let mut a = entry("GET https://h/a", "x", 1);
        a.tags = vec!["red".into()];
        let mut a2 = entry("GET https://h/a", "y", 1);
        a2.tags = vec!["blue".into()];
        let mut b = entry("GET https://h/b", "x", 1);
        b.tags = vec!["red".into(), "green".into()];
        for e in [&a, &a2, &b] {
            st.insert(&mut s, e, 1).unwrap();
        }
        assert_eq!(st.remove_tag(&mut s, "red").unwrap().removed, 2);
        assert_eq!(st.variants(&s, "GET https://h/a").len(), 1);
        assert!(st.variants(&s, "GET https://h/b").is_empty());
        assert_eq!(st.remove_tag(&mut s, "nothing").unwrap().removed, 0);
        assert_eq!(st.remove_url(&mut s, "GET https://h/a").unwrap().removed, 1);
        assert!(st.variants(&s, "GET https://h/a").is_empty());
    }

    #[test]
    fn conflicts_are_retried_then_reported() {
        let st = Store::new("t", 1, 4, 1 << 20);
        let mut s = MemoryStore::new();
        st.insert(&mut s, &entry("GET https://h/a", "x", 1), 1)
            .unwrap();
        s.interfere = 2;
        let r = st
            .insert(&mut s, &entry("GET https://h/b", "x", 1), 2)
            .unwrap();
        assert_eq!(r.conflicts, 2);
        assert_eq!(st.variants(&s, "GET https://h/b").len(), 1);
        s.interfere = 10;
        assert_eq!(
            st.insert(&mut s, &entry("GET https://h/c", "x", 1), 3),
            Err(StoreFailure::Contended)
        );
    }

    #[test]
    fn a_torn_write_is_a_miss_not_wrong_bytes() {
        let st = Store::new("t", 1, 1, 1 << 20);
        let mut s = MemoryStore::new();
        st.insert(&mut s, &entry("GET https://h/a", "x", 1), 1)
            .unwrap();
        // Another worker's object lands in the way while the directory still names /a.
        let other = entry("GET https://h/b", "x", 1);
        s.set(&st.obj_key(0, 0), &other.encode(), 0).unwrap();
        assert!(st.variants(&s, "GET https://h/a").is_empty());
        // Garbage in the directory or object is no entry either.
        s.set(&st.dir_key(0), b"\x01\x02", 0).unwrap();
        assert!(st.variants(&s, "GET https://h/a").is_empty());
    }
}
