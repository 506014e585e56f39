//! The HTTP sink: every worker offers its records to one proxy-wasm shared queue; whichever
//! worker holds the shipper lease (a shared-data key with an expiry) drains it into NDJSON
//! batches, seals them into its hash chain and POSTs them, one batch in flight at a time,
//! retrying with exponential backoff.
//!
//! Bounds: the queue holds at most `queue_capacity` records (a shared counter, updated with
//! compare-and-swap), the shipper at most one batch. A record that does not fit is dropped and
//! counted (metric, and `dropped` in the next batch's header line): a request never waits for
//! the sink.

use crate::chain::{Seal, Sealer};
use crate::config::HttpSink;
use crate::time::rfc3339_millis;

/// Shared-data keys (never freed by Envoy, so a fixed handful).
pub const PENDING_KEY: &str = "portcullis.audit.pending";
pub const DROPPED_KEY: &str = "portcullis.audit.dropped";
pub const LEASE_KEY: &str = "portcullis.audit.shipper";
pub const INSTANCES_KEY: &str = "portcullis.audit.instances";
/// Name of the proxy-wasm shared queue.
pub const QUEUE_NAME: &str = "portcullis.audit.records";

/// Compare-and-swap attempts before an update gives up (and says so).
const CAS_RETRIES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasMismatch;

/// The host state the sink needs, in its own terms. Shared data follows Envoy's rules: `get`
/// returns the value and its CAS version; `set` with cas 0 is unconditional, otherwise it fails
/// if the version changed (a key that does not exist yet accepts any cas); keys are never freed.
pub trait SharedState {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch>;
    /// False if the queue is unavailable.
    fn enqueue(&self, record: &[u8]) -> bool;
    fn dequeue(&self) -> Option<Vec<u8>>;
}

fn decode(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (dst, src) in b.iter_mut().zip(v) {
        *dst = *src;
    }
    u64::from_le_bytes(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterError {
    /// The add would pass the limit.
    Full,
    /// Other workers kept winning the compare-and-swap.
    Contended,
}

/// Adds `delta` to a shared counter (saturating at 0), refusing to pass `limit`. Returns the
/// new value.
pub fn add(
    host: &dyn SharedState,
    key: &str,
    delta: i64,
    limit: Option<u64>,
) -> Result<u64, CounterError> {
    for _ in 0..CAS_RETRIES {
        let (current, cas) = host
            .get(key)
            .map(|(v, cas)| (decode(&v), cas))
            .unwrap_or((0, 0));
        let next = if delta >= 0 {
            current.saturating_add(delta.unsigned_abs())
        } else {
            current.saturating_sub(delta.unsigned_abs())
        };
        if delta > 0 && limit.is_some_and(|l| next > l) {
            return Err(CounterError::Full);
        }
        if host.set(key, &next.to_le_bytes(), cas).is_ok() {
            return Ok(next);
        }
    }
    Err(CounterError::Contended)
}

/// Reads a counter and resets it to 0, atomically; 0 if contended (the count stays for later).
fn take(host: &dyn SharedState, key: &str) -> u64 {
    for _ in 0..CAS_RETRIES {
        let Some((v, cas)) = host.get(key) else {
            return 0;
        };
        let n = decode(&v);
        if n == 0 {
            return 0;
        }
        if host.set(key, &0u64.to_le_bytes(), cas).is_ok() {
            return n;
        }
    }
    0
}

/// A number unique to this VM among all audit VMs of this Envoy (names its streams).
pub fn instance_number(host: &dyn SharedState) -> u64 {
    add(host, INSTANCES_KEY, 1, None).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue is full (or could not be reached): the record is gone and counted.
    Dropped,
}

/// Called by any worker with a finished record; never waits.
pub fn offer(host: &dyn SharedState, capacity: u64, record: &[u8]) -> Offer {
    let admitted = add(host, PENDING_KEY, 1, Some(capacity)).is_ok();
    if admitted && host.enqueue(record) {
        return Offer::Queued;
    }
    if admitted {
        let _ = add(host, PENDING_KEY, -1, None);
    }
    // Best effort: if even this is contended the metric still counts the drop.
    let _ = add(host, DROPPED_KEY, 1, None);
    Offer::Dropped
}

/// A batch handed to the host to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: Vec<u8>,
    pub records: usize,
    pub dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    Idle,
    /// POST this body now (the same batch again on a retry).
    Send(Batch),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Shipped {
        records: usize,
    },
    /// Kept for a retry after `retry_in_ms`.
    Failed {
        retry_in_ms: u64,
    },
    /// A response with no batch in flight (ignored).
    Unexpected,
}

/// One worker's shipper; only the lease holder drains the queue.
#[derive(Debug)]
pub struct Shipper {
    id: String,
    sink: HttpSink,
    lease_ttl_ms: u64,
    buffer: Vec<Vec<u8>>,
    oldest_ms: u64,
    in_flight: Option<Batch>,
    retry: Option<(Batch, u64)>,
    attempts: u32,
    /// Dequeued records not yet subtracted from the shared pending count (contention).
    pending_debt: u64,
    sealer: Sealer,
}

impl Shipper {
    /// `id` is unique per VM and start; it names the lease holder and the HTTP stream.
    pub fn new(id: String, sink: HttpSink, seal: Seal) -> Shipper {
        // Long enough to outlive a slow POST and a missed tick, short enough to fail over.
        let lease_ttl_ms = (sink.timeout_ms + 2 * sink.flush_interval_ms).max(2_000);
        Shipper {
            sealer: Sealer::new(format!("http-{id}"), seal),
            id,
            sink,
            lease_ttl_ms,
            buffer: Vec::new(),
            oldest_ms: 0,
            in_flight: None,
            retry: None,
            attempts: 0,
            pending_debt: 0,
        }
    }

    /// How often the host should call [`Shipper::tick`].
    pub fn tick_period_ms(sink: &HttpSink) -> u64 {
        sink.flush_interval_ms.clamp(10, 100)
    }

    pub fn is_leader(&self, host: &dyn SharedState, now_ms: u64) -> bool {
        match host.get(LEASE_KEY) {
            Some((v, _)) => match parse_lease(&v) {
                Some((holder, expires)) => holder == self.id && expires > now_ms,
                None => false,
            },
            None => false,
        }
    }

    /// Takes or renews the lease; true if this shipper holds it now.
    fn hold_lease(&self, host: &dyn SharedState, now_ms: u64) -> bool {
        let (free, cas) = match host.get(LEASE_KEY) {
            None => (true, 0),
            Some((v, cas)) => match parse_lease(&v) {
                Some((holder, expires)) => (holder == self.id || expires <= now_ms, cas),
                None => (true, cas),
            },
        };
        // A key that exists is only ever written with its cas, so two takers cannot both win.
        free && host
            .set(
                LEASE_KEY,
                format!("{}|{}", self.id, now_ms + self.lease_ttl_ms).as_bytes(),
                cas,
            )
            .is_ok()
    }

    pub fn tick(&mut self, host: &dyn SharedState, now_ms: u64) -> Tick {
        let leader = self.hold_lease(host, now_ms);
        if self.in_flight.is_some() {
            return Tick::Idle;
        }
        if let Some((batch, not_before)) = self.retry.take() {
            if now_ms < not_before {
                self.retry = Some((batch, not_before));
                return Tick::Idle;
            }
            self.in_flight = Some(batch.clone());
            return Tick::Send(batch);
        }
        if leader {
            self.drain(host, now_ms);
        }
        let full = self.buffer.len() >= self.sink.batch_max_records;
        let due = !self.buffer.is_empty()
            && now_ms.saturating_sub(self.oldest_ms) >= self.sink.flush_interval_ms;
        if !(full || due) {
            return Tick::Idle;
        }
        let dropped = if leader { take(host, DROPPED_KEY) } else { 0 };
        let batch = self.seal_batch(now_ms, dropped);
        self.in_flight = Some(batch.clone());
        Tick::Send(batch)
    }

    fn drain(&mut self, host: &dyn SharedState, now_ms: u64) {
        let mut taken = 0u64;
        while self.buffer.len() < self.sink.batch_max_records {
            let Some(record) = host.dequeue() else { break };
            if self.buffer.is_empty() {
                self.oldest_ms = now_ms;
            }
            self.buffer.push(record);
            taken += 1;
        }
        let debt = self.pending_debt + taken;
        if debt > 0 {
            let delta = i64::try_from(debt).unwrap_or(i64::MAX);
            self.pending_debt = match add(host, PENDING_KEY, -delta, None) {
                Ok(_) => 0,
                Err(_) => debt,
            };
        }
    }

    fn seal_batch(&mut self, now_ms: u64, dropped: u64) -> Batch {
        let records = std::mem::take(&mut self.buffer);
        let first_seq = self.sealer.next_seq();
        let mut lines: Vec<String> = Vec::with_capacity(records.len() + 1);
        let mut sealed = Vec::with_capacity(records.len());
        for r in records {
            if let Some(line) = self.sealer.seal(r) {
                sealed.push(line);
            }
        }
        let header = serde_json::json!({
            "batch": {
                "stream": self.sealer.stream(),
                "first_seq": first_seq,
                "records": sealed.len(),
                "dropped": dropped,
                "sent_at": rfc3339_millis(now_ms),
            }
        });
        lines.push(header.to_string());
        let count = sealed.len();
        lines.extend(sealed);
        let mut body = lines.join("\n").into_bytes();
        body.push(b'\n');
        Batch {
            body,
            records: count,
            dropped,
        }
    }

    /// The POST finished: `ok` is a 2xx answer; anything else (error status, timeout, reset,
    /// a dispatch the host refused) keeps the batch for a retry with backoff.
    pub fn on_response(&mut self, ok: bool, now_ms: u64) -> Outcome {
        let Some(batch) = self.in_flight.take() else {
            return Outcome::Unexpected;
        };
        if ok {
            self.attempts = 0;
            return Outcome::Shipped {
                records: batch.records,
            };
        }
        self.attempts = self.attempts.saturating_add(1);
        let exp = self.attempts.saturating_sub(1).min(20);
        let delay = self
            .sink
            .retry_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.sink.retry_max_ms);
        self.retry = Some((batch, now_ms + delay));
        Outcome::Failed { retry_in_ms: delay }
    }

    /// Records held by this shipper (buffer and unsent batch), for a gauge.
    pub fn held(&self) -> usize {
        self.buffer.len()
            + self.in_flight.as_ref().map_or(0, |b| b.records)
            + self.retry.as_ref().map_or(0, |(b, _)| b.records)
    }
}

fn parse_lease(v: &[u8]) -> Option<(String, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (holder, expires) = s.rsplit_once('|')?;
    Some((holder.to_string(), expires.parse().ok()?))
}

#[cfg(test)]
pub mod fake {
    //! In-memory shared data and queue with Envoy's rules.
    use super::*;
    use std::cell::RefCell;
    use std::collections::{HashMap, VecDeque};

    #[derive(Default)]
    pub struct FakeHost {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        pub queue: RefCell<VecDeque<Vec<u8>>>,
        next_cas: RefCell<u32>,
        /// Makes the next N `set`s fail, as if another worker won the race each time ...
        pub lose_races: RefCell<usize>,
        /// ... on this key only, if set.
        pub race_key: RefCell<Option<&'static str>>,
    }

    impl SharedState for FakeHost {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.data.borrow().get(key).cloned()
        }

        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch> {
            {
                let mut lose = self.lose_races.borrow_mut();
                let this_key = self.race_key.borrow().is_none_or(|k| k == key);
                if *lose > 0 && this_key {
                    *lose -= 1;
                    return Err(CasMismatch);
                }
            }
            let mut data = self.data.borrow_mut();
            if let Some((_, current)) = data.get(key) {
                if cas != 0 && cas != *current {
                    return Err(CasMismatch);
                }
            }
            let mut next = self.next_cas.borrow_mut();
            *next += 1;
            data.insert(key.to_string(), (value.to_vec(), *next));
            Ok(())
        }

        fn enqueue(&self, record: &[u8]) -> bool {
            self.queue.borrow_mut().push_back(record.to_vec());
            true
        }

        fn dequeue(&self) -> Option<Vec<u8>> {
            self.queue.borrow_mut().pop_front()
        }
    }

    impl FakeHost {
        pub fn counter(&self, key: &str) -> u64 {
            self.get(key).map(|(v, _)| decode(&v)).unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeHost;
    use super::*;
    use crate::chain::verify;

    fn sink(batch: usize, queue: u64) -> HttpSink {
        HttpSink {
            cluster: "c".into(),
            authority: "a".into(),
            path: "/ingest".into(),
            timeout_ms: 1000,
            batch_max_records: batch,
            flush_interval_ms: 500,
            queue_capacity: queue,
            retry_base_ms: 100,
            retry_max_ms: 1000,
        }
    }

    fn rec(i: usize) -> Vec<u8> {
        format!("{{\"schema\":\"portcullis.audit/1\",\"n\":{i}}}").into_bytes()
    }

    fn lines(b: &Batch) -> Vec<serde_json::Value> {
        String::from_utf8(b.body.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn the_fake_follows_envoys_cas_rules() {
        let h = FakeHost::default();
        assert_eq!(h.set("k", b"1", 77), Ok(()), "absent key: any cas");
        let (_, cas) = h.get("k").unwrap();
        assert_eq!(h.set("k", b"2", cas + 1), Err(CasMismatch));
        assert_eq!(h.set("k", b"2", cas), Ok(()));
        assert_eq!(h.set("k", b"3", cas), Err(CasMismatch), "cas changed");
        assert_eq!(h.set("k", b"4", 0), Ok(()), "0 is unconditional");
    }

    #[test]
    fn flushes_by_size_with_a_header_line_and_a_sealed_chain() {
        let h = FakeHost::default();
        for i in 0..5 {
            assert_eq!(offer(&h, 100, &rec(i)), Offer::Queued);
        }
        assert_eq!(h.counter(PENDING_KEY), 5);
        let mut s = Shipper::new("w1".into(), sink(3, 100), Seal::Unkeyed);
        let Tick::Send(b) = s.tick(&h, 1000) else {
            panic!("a full batch is sent at once")
        };
        let l = lines(&b);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0]["batch"]["records"], 3);
        assert_eq!(l[0]["batch"]["first_seq"], 1);
        assert_eq!(l[0]["batch"]["dropped"], 0);
        assert_eq!(l[0]["batch"]["stream"], "http-w1");
        assert_eq!((l[1]["n"].clone(), l[3]["n"].clone()), (0.into(), 2.into()));
        assert_eq!(h.counter(PENDING_KEY), 2, "3 left the queue");
        assert_eq!(s.tick(&h, 1001), Tick::Idle, "one batch in flight");
        assert_eq!(s.on_response(true, 1002), Outcome::Shipped { records: 3 });
        // The remaining two wait for the flush interval.
        assert_eq!(s.tick(&h, 1003), Tick::Idle);
        let Tick::Send(b2) = s.tick(&h, 1503) else {
            panic!("due by time")
        };
        assert_eq!(b2.records, 2);
        assert_eq!(h.counter(PENDING_KEY), 0);
        let all = [b.body, b2.body].concat();
        let report = verify(
            &String::from_utf8(all).unwrap(),
            false,
            &crate::chain::Keyring::unkeyed(),
        );
        assert_eq!((report.records, report.first_break), (5, None));
    }

    #[test]
    fn the_queue_is_bounded_and_drops_reach_the_next_batch() {
        let h = FakeHost::default();
        let results: Vec<Offer> = (0..5).map(|i| offer(&h, 3, &rec(i))).collect();
        assert_eq!(
            results,
            [
                Offer::Queued,
                Offer::Queued,
                Offer::Queued,
                Offer::Dropped,
                Offer::Dropped
            ]
        );
        assert_eq!(h.queue.borrow().len(), 3);
        assert_eq!(h.counter(DROPPED_KEY), 2);
        let mut s = Shipper::new("w1".into(), sink(10, 3), Seal::Unkeyed);
        assert_eq!(s.tick(&h, 100), Tick::Idle, "taken, not yet due");
        let Tick::Send(b) = s.tick(&h, 600) else {
            panic!()
        };
        assert_eq!(b.dropped, 2);
        assert_eq!(lines(&b)[0]["batch"]["dropped"], 2);
        assert_eq!(h.counter(DROPPED_KEY), 0, "reported once");
        // Room again once the shipper took them.
        assert_eq!(offer(&h, 3, &rec(9)), Offer::Queued);
    }

    #[test]
    fn failures_retry_the_same_batch_with_growing_backoff() {
        let h = FakeHost::default();
        offer(&h, 100, &rec(0));
        let mut s = Shipper::new("w1".into(), sink(1, 100), Seal::Unkeyed);
        let Tick::Send(first) = s.tick(&h, 0) else {
            panic!()
        };
        assert_eq!(
            s.on_response(false, 10),
            Outcome::Failed { retry_in_ms: 100 }
        );
        assert_eq!(s.tick(&h, 50), Tick::Idle, "backing off");
        let Tick::Send(again) = s.tick(&h, 110) else {
            panic!()
        };
        assert_eq!(again, first, "byte for byte: the chain is not re-sealed");
        assert_eq!(
            s.on_response(false, 120),
            Outcome::Failed { retry_in_ms: 200 }
        );
        s.tick(&h, 320);
        assert_eq!(
            s.on_response(false, 330),
            Outcome::Failed { retry_in_ms: 400 }
        );
        s.tick(&h, 730);
        assert_eq!(
            s.on_response(false, 740),
            Outcome::Failed { retry_in_ms: 800 }
        );
        s.tick(&h, 1540);
        assert_eq!(
            s.on_response(false, 1550),
            Outcome::Failed { retry_in_ms: 1000 },
            "capped"
        );
        // Meanwhile the shipper holds one batch; new records wait in the bounded queue.
        for i in 1..10 {
            offer(&h, 5, &rec(i));
        }
        assert_eq!(s.held(), 1);
        assert_eq!(h.queue.borrow().len(), 5);
        assert_eq!(h.counter(DROPPED_KEY), 4);
        s.tick(&h, 2550);
        assert_eq!(s.on_response(true, 2560), Outcome::Shipped { records: 1 });
        let Tick::Send(next) = s.tick(&h, 2570) else {
            panic!()
        };
        assert_eq!((next.records, next.dropped), (1, 4));
        assert_eq!(s.on_response(true, 2580), Outcome::Shipped { records: 1 });
        assert_eq!(s.on_response(true, 2590), Outcome::Unexpected);
    }

    #[test]
    fn one_worker_ships_and_another_takes_over_when_its_lease_expires() {
        let h = FakeHost::default();
        let mut a = Shipper::new("w1".into(), sink(1, 100), Seal::Unkeyed);
        let mut b = Shipper::new("w2".into(), sink(1, 100), Seal::Unkeyed);
        offer(&h, 100, &rec(0));
        offer(&h, 100, &rec(1));
        assert!(matches!(a.tick(&h, 0), Tick::Send(_)));
        assert!(a.is_leader(&h, 0));
        assert_eq!(
            b.tick(&h, 1),
            Tick::Idle,
            "not the leader: leaves the queue alone"
        );
        assert_eq!(h.queue.borrow().len(), 1);
        // w1 stops ticking (its worker is gone); after the lease expires w2 ships.
        let ttl = 1000 + 2 * 500;
        assert_eq!(b.tick(&h, ttl - 1), Tick::Idle);
        let Tick::Send(batch) = b.tick(&h, ttl) else {
            panic!("w2 takes over")
        };
        assert_eq!(lines(&batch)[0]["batch"]["stream"], "http-w2");
        assert!(b.is_leader(&h, ttl) && !a.is_leader(&h, ttl));
    }

    #[test]
    fn contention_is_bounded_and_explicit() {
        let h = FakeHost::default();
        *h.lose_races.borrow_mut() = 1000;
        assert_eq!(
            add(&h, PENDING_KEY, 1, Some(10)),
            Err(CounterError::Contended)
        );
        assert_eq!(offer(&h, 10, &rec(0)), Offer::Dropped);
        assert!(h.queue.borrow().is_empty());
        *h.lose_races.borrow_mut() = 3;
        assert_eq!(add(&h, PENDING_KEY, 1, Some(10)), Ok(1));
        assert_eq!(add(&h, PENDING_KEY, -5, None), Ok(0), "never below zero");
        assert_eq!(instance_number(&h), 1);
        assert_eq!(instance_number(&h), 2);
    }

    #[test]
    fn a_debt_left_by_contention_is_paid_later() {
        let h = FakeHost::default();
        offer(&h, 100, &rec(0));
        let mut s = Shipper::new("w1".into(), sink(10, 100), Seal::Unkeyed);
        *h.race_key.borrow_mut() = Some(PENDING_KEY);
        *h.lose_races.borrow_mut() = CAS_RETRIES;
        assert_eq!(s.tick(&h, 1), Tick::Idle);
        assert!(h.queue.borrow().is_empty(), "dequeued");
        assert_eq!(h.counter(PENDING_KEY), 1, "not yet paid");
        s.tick(&h, 2);
        assert_eq!(h.counter(PENDING_KEY), 0, "paid on the next tick");
    }
}
