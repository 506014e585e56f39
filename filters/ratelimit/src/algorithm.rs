//! The arithmetic of the two algorithms, on a 16-byte state that lives in a slot.
//!
//! Everything is integer arithmetic in milliseconds, so the host and wasm builds agree exactly,
//! and a bucket refills without rounding drift however often it is touched: token-bucket levels
//! are kept in units of 1/`window_ms` token, so a refill of `elapsed_ms * limit` units is exact.
//! A clock that goes backwards never refills, never panics, and never moves the state back.

/// Bytes of algorithm state stored per (limit, key).
pub const STATE_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `limit` tokens per window, holding at most `burst`; a request takes `cost` tokens.
    TokenBucket,
    /// At most `limit` per sliding window, estimated from this and the previous fixed window
    /// (the previous one weighted by how much of it still overlaps the sliding window).
    SlidingWindow,
}

/// One limit's numbers, after tiers and fleet share are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub window_ms: u64,
    /// Token bucket only: the most tokens the bucket holds (≥ 1).
    pub burst: u64,
}

/// What one request did to one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub allowed: bool,
    /// Whole units still available after this request.
    pub remaining: u64,
    /// Until the full quota is available again.
    pub reset_ms: u64,
    /// When denied: until a request of this cost could pass (0 when allowed).
    pub retry_after_ms: u64,
    /// The state to store, if it changed in a way that matters (`None` = keep what is stored).
    pub write: Option<([u8; STATE_LEN], u64)>,
}

/// Takes `cost` from the limit if it allows it.
pub fn consume(alg: Algorithm, rate: Rate, state: Option<&[u8]>, cost: u64, now: u64) -> Step {
    match alg {
        Algorithm::TokenBucket => bucket_consume(rate, state, cost, now),
        Algorithm::SlidingWindow => window_consume(rate, state, cost, now),
    }
}

/// Gives back `cost` taken by an earlier [`consume`] of the same request (another limit denied
/// it). Returns the state to store, or `None` if there is nothing to give back.
pub fn refund(
    alg: Algorithm,
    rate: Rate,
    state: Option<&[u8]>,
    cost: u64,
    now: u64,
) -> Option<([u8; STATE_LEN], u64)> {
    let state = state?;
    match alg {
        Algorithm::TokenBucket => {
            let b = Bucket::read(rate, Some(state), now);
            let need = mul(cost, rate.window_ms);
            let level = b.level.saturating_add(need).min(b.full);
            Some(Bucket { level, ..b }.stored(rate))
        }
        Algorithm::SlidingWindow => {
            let w = Window::read(rate, Some(state), now);
            let cur = w.cur.saturating_sub(cost);
            Some(Window { cur, ..w }.stored(rate))
        }
    }
}

fn mul(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

fn div_ceil(a: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    a.div_ceil(b)
}

fn u64_at(state: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(src) = state.get(at..at + 8) {
        buf.copy_from_slice(src);
    }
    u64::from_le_bytes(buf)
}

fn pack(a: u64, b: u64) -> [u8; STATE_LEN] {
    let mut out = [0u8; STATE_LEN];
    let (x, y) = out.split_at_mut(8);
    x.copy_from_slice(&a.to_le_bytes());
    y.copy_from_slice(&b.to_le_bytes());
    out
}

/// Token bucket in units of 1/`window_ms` token: refilled by `limit` units per millisecond.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: u64,
    full: u64,
    /// Time of the last refill; never moves backwards.
    at: u64,
}

impl Bucket {
    fn read(rate: Rate, state: Option<&[u8]>, now: u64) -> Bucket {
        let full = mul(rate.burst.max(1), rate.window_ms);
        match state {
            None => Bucket {
                level: full,
                full,
                at: now,
            },
            Some(s) => {
                let (level, at) = (u64_at(s, 0).min(full), u64_at(s, 8));
                let now = now.max(at);
                let refill = mul(now - at, rate.limit);
                Bucket {
                    level: level.saturating_add(refill).min(full),
                    full,
                    at: now,
                }
            }
        }
    }

    fn until_full(&self, rate: Rate) -> u64 {
        div_ceil(self.full - self.level, rate.limit)
    }

    /// Expires when full again: from then on it is indistinguishable from a fresh bucket.
    fn stored(&self, rate: Rate) -> ([u8; STATE_LEN], u64) {
        (
            pack(self.level, self.at),
            self.at
                .saturating_add(self.until_full(rate))
                .saturating_add(1),
        )
    }
}

fn bucket_consume(rate: Rate, state: Option<&[u8]>, cost: u64, now: u64) -> Step {
    let mut b = Bucket::read(rate, state, now);
    let need = mul(cost, rate.window_ms);
    if b.level >= need {
        b.level -= need;
        Step {
            allowed: true,
            remaining: b.level / rate.window_ms.max(1),
            reset_ms: b.until_full(rate),
            retry_after_ms: 0,
            write: Some(b.stored(rate)),
        }
    } else {
        // A denial takes nothing; the stored state stays as it is (refill is a function of time).
        let missing = need.min(b.full) - b.level.min(need.min(b.full));
        Step {
            allowed: false,
            remaining: b.level / rate.window_ms.max(1),
            reset_ms: b.until_full(rate),
            retry_after_ms: div_ceil(missing, rate.limit).max(1),
            write: None,
        }
    }
}

/// Sliding window: counts of the current and previous fixed windows.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Index of the current fixed window (`time / window_ms`); never moves backwards.
    index: u64,
    prev: u64,
    cur: u64,
    /// Milliseconds into the current window.
    elapsed: u64,
}

impl Window {
    fn read(rate: Rate, state: Option<&[u8]>, now: u64) -> Window {
        let w = rate.window_ms.max(1);
        let now_index = now / w;
        let (index, prev, cur) = match state {
            None => (now_index, 0, 0),
            Some(s) => {
                let index = u64_at(s, 0);
                let counts = u64_at(s, 8);
                let (prev, cur) = (counts >> 32, counts & 0xffff_ffff);
                match now_index.checked_sub(index) {
                    // The clock went back into an earlier window: stay in the stored one.
                    None | Some(0) => (index, prev, cur),
                    Some(1) => (now_index, cur, 0),
                    Some(_) => (now_index, 0, 0),
                }
            }
        };
        let start = index.saturating_mul(w);
        Window {
            index,
            prev,
            cur,
            elapsed: now.saturating_sub(start).min(w),
        }
    }

    /// The previous window's share still inside the sliding window, rounded up (never lenient).
    fn estimate(&self, w: u64) -> u64 {
        let weighted = u128::from(self.prev) * u128::from(w - self.elapsed.min(w));
        let share = weighted.div_ceil(u128::from(w.max(1)));
        u64::try_from(share)
            .unwrap_or(u64::MAX)
            .saturating_add(self.cur)
    }

    /// Until every counted request has left the sliding window.
    fn until_empty(&self, w: u64) -> u64 {
        let left_in_window = w - self.elapsed.min(w);
        if self.cur > 0 {
            left_in_window + w
        } else if self.prev > 0 {
            left_in_window
        } else {
            0
        }
    }

    fn stored(&self, rate: Rate) -> ([u8; STATE_LEN], u64) {
        let w = rate.window_ms.max(1);
        let counts = (self.prev.min(0xffff_ffff) << 32) | self.cur.min(0xffff_ffff);
        (
            pack(self.index, counts),
            self.index.saturating_add(2).saturating_mul(w),
        )
    }

    /// Milliseconds until `cost` more fits under `limit`.
    fn retry_after(&self, limit: u64, cost: u64, w: u64) -> u64 {
        let left_in_window = w - self.elapsed.min(w);
        if self.cur.saturating_add(cost) > limit || self.prev == 0 {
            // Only the next window can help: there, this window's count is the previous one,
            // shrinking as the sliding window moves on.
            let room = limit.saturating_sub(cost);
            let into_next = if self.cur <= room {
                0
            } else {
                w - mul(room, w) / self.cur.max(1)
            };
            left_in_window.saturating_add(into_next).max(1)
        } else {
            // Within this window, once enough of the previous one has slid out.
            let room = limit - self.cur - cost;
            let needed_elapsed = w.saturating_sub(mul(room, w) / self.prev);
            needed_elapsed.saturating_sub(self.elapsed).max(1)
        }
    }
}

fn window_consume(rate: Rate, state: Option<&[u8]>, cost: u64, now: u64) -> Step {
    let w = rate.window_ms.max(1);
    let mut win = Window::read(rate, state, now);
    let estimate = win.estimate(w);
    if estimate.saturating_add(cost) <= rate.limit {
        win.cur = win.cur.saturating_add(cost);
        Step {
            allowed: true,
            remaining: rate.limit - estimate - cost,
            reset_ms: win.until_empty(w),
            retry_after_ms: 0,
            write: Some(win.stored(rate)),
        }
    } else {
        Step {
            allowed: false,
            remaining: rate.limit.saturating_sub(estimate),
            reset_ms: win.until_empty(w),
            retry_after_ms: win.retry_after(rate.limit, cost, w),
            write: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TB: Algorithm = Algorithm::TokenBucket;
    const SW: Algorithm = Algorithm::SlidingWindow;

    /// Applies a request to a state kept by the test, as the slot table would.
    fn run(alg: Algorithm, rate: Rate, state: &mut Option<[u8; 16]>, cost: u64, now: u64) -> Step {
        let step = consume(alg, rate, state.as_ref().map(|s| s.as_slice()), cost, now);
        if let Some((s, _)) = step.write {
            *state = Some(s);
        }
        step
    }

    fn allowed_count(alg: Algorithm, rate: Rate, state: &mut Option<[u8; 16]>, now: u64) -> u64 {
        (0..10_000)
            .take_while(|_| run(alg, rate, state, 1, now).allowed)
            .count() as u64
    }

    fn rate(limit: u64, window_ms: u64, burst: u64) -> Rate {
        Rate {
            limit,
            window_ms,
            burst,
        }
    }

    #[test]
    fn bucket_starts_full_and_allows_the_burst() {
        let r = rate(10, 1_000, 25);
        let mut s = None;
        assert_eq!(allowed_count(TB, r, &mut s, 5_000), 25);
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let r = rate(10, 1_000, 10);
        let mut s = None;
        assert_eq!(allowed_count(TB, r, &mut s, 0), 10);
        // 10 per second = one per 100 ms.
        assert!(!run(TB, r, &mut s, 1, 99).allowed);
        let step = run(TB, r, &mut s, 1, 100);
        assert!(step.allowed);
        assert_eq!(step.remaining, 0);
        assert_eq!(allowed_count(TB, r, &mut s, 550), 4);
        // Never more than the burst, however long the pause.
        assert_eq!(allowed_count(TB, r, &mut s, 1_000_000), 10);
    }

    #[test]
    fn bucket_refill_has_no_rounding_drift() {
        // 5 per minute touched every millisecond: an imprecise refill would never refill.
        let r = rate(5, 60_000, 5);
        let mut s = None;
        assert_eq!(allowed_count(TB, r, &mut s, 0), 5);
        let mut allowed = 0;
        for t in 1..=60_000 {
            if run(TB, r, &mut s, 1, t).allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5, "exactly the refill of one window");
    }

    #[test]
    fn bucket_cost_above_one() {
        let r = rate(10, 1_000, 10);
        let mut s = None;
        assert!(run(TB, r, &mut s, 4, 0).allowed);
        assert!(run(TB, r, &mut s, 4, 0).allowed);
        let step = run(TB, r, &mut s, 4, 0);
        assert!(!step.allowed, "2 left, 4 needed");
        assert_eq!(step.remaining, 2);
        assert_eq!(step.retry_after_ms, 200, "2 tokens at 10/s");
        assert!(run(TB, r, &mut s, 2, 0).allowed, "a denial took nothing");
        // A cost above the burst can never pass.
        let step = run(TB, r, &mut None, 11, 0);
        assert!(!step.allowed);
        assert!(step.retry_after_ms >= 1);
    }

    #[test]
    fn bucket_headers_numbers() {
        let r = rate(10, 1_000, 10);
        let mut s = None;
        let step = run(TB, r, &mut s, 1, 0);
        assert_eq!(step.remaining, 9);
        assert_eq!(step.reset_ms, 100);
        let (_, expires) = step.write.unwrap();
        assert_eq!(expires, 101, "full again (fresh) after 100 ms");
        for _ in 0..9 {
            run(TB, r, &mut s, 1, 0);
        }
        let step = run(TB, r, &mut s, 1, 0);
        assert_eq!(step.retry_after_ms, 100);
        assert_eq!(step.reset_ms, 1_000);
    }

    #[test]
    fn bucket_clock_going_backwards() {
        let r = rate(10, 1_000, 10);
        let mut s = None;
        assert_eq!(allowed_count(TB, r, &mut s, 10_000), 10);
        // Back in time: no refill, no panic, and the stored time does not move back.
        assert!(!run(TB, r, &mut s, 1, 5_000).allowed);
        assert!(!run(TB, r, &mut s, 1, 0).allowed);
        assert!(run(TB, r, &mut s, 1, 10_100).allowed);
        assert!(!run(TB, r, &mut s, 1, 10_100).allowed);
    }

    #[test]
    fn bucket_refund() {
        let r = rate(10, 1_000, 10);
        let mut s = None;
        run(TB, r, &mut s, 3, 0);
        let (refunded, _) = refund(TB, r, s.as_ref().map(|s| s.as_slice()), 3, 0).unwrap();
        let mut s = Some(refunded);
        assert_eq!(allowed_count(TB, r, &mut s, 0), 10);
        assert_eq!(refund(TB, r, None, 1, 0), None);
    }

    #[test]
    fn window_allows_limit_per_window() {
        let r = rate(5, 1_000, 0);
        let mut s = None;
        assert_eq!(allowed_count(SW, r, &mut s, 0), 5);
        assert_eq!(allowed_count(SW, r, &mut s, 999), 0, "same window");
    }

    #[test]
    fn window_edges_weight_the_previous_window() {
        let r = rate(10, 1_000, 0);
        let mut s = None;
        assert_eq!(allowed_count(SW, r, &mut s, 900), 10);
        // At the very start of the next window the previous one still counts fully.
        assert_eq!(allowed_count(SW, r, &mut s, 1_000), 0);
        // Half-way: 10 * 0.5 = 5 still count; 5 more fit.
        assert_eq!(allowed_count(SW, r, &mut s, 1_500), 5);
        // No burst across the boundary as a fixed window would allow: at 2000 the previous
        // window (5 requests) counts fully again.
        assert_eq!(allowed_count(SW, r, &mut s, 2_000), 5);
        // Two windows later everything has slid out.
        assert_eq!(allowed_count(SW, r, &mut s, 4_000), 10);
    }

    #[test]
    fn window_rounds_against_the_client() {
        let r = rate(3, 1_000, 0);
        let mut s = None;
        assert_eq!(allowed_count(SW, r, &mut s, 0), 3);
        // At 1001 the previous 3 count as ceil(3 * 999/1000) = 3.
        assert!(!run(SW, r, &mut s, 1, 1_001).allowed);
        // At 1334: ceil(3 * 666/1000) = 2 → one fits.
        assert_eq!(allowed_count(SW, r, &mut s, 1_334), 1);
    }

    #[test]
    fn window_cost_above_one_and_retry_after() {
        let r = rate(10, 1_000, 0);
        let mut s = None;
        assert!(run(SW, r, &mut s, 6, 0).allowed);
        let step = run(SW, r, &mut s, 6, 100);
        assert!(!step.allowed);
        assert_eq!(step.remaining, 4);
        // Next window, once 6 * (1 - e/1000) + 6 <= 10, i.e. e >= 333.4 ms → 900 + 334.
        assert_eq!(step.retry_after_ms, 900 + 334);
        let mut probe = s;
        assert!(!run(SW, r, &mut probe, 6, 100 + 1_233).allowed);
        let mut probe = s;
        assert!(run(SW, r, &mut probe, 6, 100 + step.retry_after_ms).allowed);
        assert!(run(SW, r, &mut s, 4, 100).allowed);
    }

    #[test]
    fn window_retry_after_within_the_window() {
        let r = rate(10, 1_000, 0);
        let mut s = None;
        assert_eq!(allowed_count(SW, r, &mut s, 0), 10);
        // At 1000: prev 10, cur 0. One more needs 10 * (1 - e) <= 9 → e >= 100 ms.
        let step = run(SW, r, &mut s, 1, 1_000);
        assert!(!step.allowed);
        assert_eq!(step.retry_after_ms, 100);
        assert!(run(SW, r, &mut s, 1, 1_100).allowed);
    }

    #[test]
    fn window_clock_going_backwards() {
        let r = rate(2, 1_000, 0);
        let mut s = None;
        assert_eq!(allowed_count(SW, r, &mut s, 5_500), 2);
        assert!(!run(SW, r, &mut s, 1, 3_000).allowed, "no window change");
        assert!(!run(SW, r, &mut s, 1, 0).allowed);
        assert_eq!(allowed_count(SW, r, &mut s, 7_000), 2);
    }

    #[test]
    fn window_expiry_and_reset() {
        let r = rate(10, 1_000, 0);
        let mut s = None;
        let step = run(SW, r, &mut s, 1, 1_250);
        assert_eq!(step.write.unwrap().1, 3_000);
        assert_eq!(step.reset_ms, 750 + 1_000);
    }

    #[test]
    fn window_refund() {
        let r = rate(2, 1_000, 0);
        let mut s = None;
        run(SW, r, &mut s, 2, 0);
        let (refunded, _) = refund(SW, r, s.as_ref().map(|s| s.as_slice()), 2, 0).unwrap();
        let mut s = Some(refunded);
        assert_eq!(allowed_count(SW, r, &mut s, 0), 2);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let r = rate(1_000_000_000, 604_800_000, 1_000_000_000);
        let mut s = None;
        assert!(run(TB, r, &mut s, 1_000_000, u64::MAX - 5).allowed);
        assert!(run(SW, r, &mut None, 1_000_000, u64::MAX - 5).allowed);
        // Garbage state reads as some state, never a panic.
        assert!(consume(TB, r, Some(&[0xff; 16]), 1, 0).remaining <= 1_000_000_000);
        let _ = consume(SW, r, Some(&[0xff; 3]), 1, 0);
    }
}
