//! Repeated authentication failures per client address, in a bounded per-worker table: a fixed
//! window per client, and when the table is full the entry whose window started first is evicted
//! (expired entries first, which it finds by the same rule).

use std::collections::HashMap;

#[derive(Debug)]
pub struct AuthFailures {
    threshold: u32,
    window_ms: u64,
    capacity: usize,
    /// client -> (window start, failures in the window)
    table: HashMap<String, (u64, u32)>,
}

impl AuthFailures {
    pub fn new(threshold: u32, window_ms: u64, capacity: usize) -> AuthFailures {
        AuthFailures {
            threshold,
            window_ms,
            capacity: capacity.max(1),
            table: HashMap::new(),
        }
    }

    /// Counts one failure; returns the count when it has reached the threshold (so every
    /// failure from then on in the window is flagged).
    pub fn failure(&mut self, client: &str, now_ms: u64) -> Option<u32> {
        if !self.table.contains_key(client) && self.table.len() >= self.capacity {
            let oldest = self
                .table
                .iter()
                .min_by_key(|(_, (start, _))| *start)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.table.remove(&k);
            }
        }
        let entry = self.table.entry(client.to_string()).or_insert((now_ms, 0));
        if now_ms.saturating_sub(entry.0) >= self.window_ms {
            *entry = (now_ms, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        (entry.1 >= self.threshold).then_some(entry.1)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_the_threshold_within_the_window() {
        let mut t = AuthFailures::new(3, 1000, 10);
        assert_eq!(t.failure("a", 0), None);
        assert_eq!(t.failure("a", 10), None);
        assert_eq!(t.failure("b", 10), None);
        assert_eq!(t.failure("a", 20), Some(3));
        assert_eq!(t.failure("a", 30), Some(4));
        assert_eq!(t.failure("a", 1000), None, "a new window");
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut t = AuthFailures::new(2, 1000, 100);
        for i in 0..10_000u64 {
            t.failure(&format!("10.0.{}.{}", i / 256, i % 256), i);
        }
        assert_eq!(t.len(), 100);
        // A client hammering in between is not evicted by the newcomers' first failures ...
        let mut t = AuthFailures::new(3, 1_000_000, 2);
        t.failure("old", 0);
        t.failure("attacker", 5);
        t.failure("attacker", 6);
        t.failure("new", 7);
        assert_eq!(t.failure("attacker", 8), Some(3));
    }
}
