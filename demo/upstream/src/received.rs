//! What the origin saw: one [`Received`] per request, kept in a bounded log.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// How many requests [`RequestLog`] keeps; older ones are dropped first so a
/// long-running demo or load test cannot grow memory without bound.
const LOG_CAPACITY: usize = 10_000;

/// One request as it reached the origin, after whatever the filters did to it.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Request method as sent, e.g. `GET`.
    pub method: String,
    /// Raw path without the query string (not percent-decoded).
    pub path: String,
    /// Decoded query pairs in the order they appeared.
    pub query: Vec<(String, String)>,
    /// Headers in arrival order; names are lower-cased.
    pub headers: Vec<(String, String)>,
    /// The request body (empty when it was missing, unreadable or too large).
    pub body: Vec<u8>,
}

impl Received {
    /// First value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The bounded, shared log behind [`crate::Upstream::received`].
#[derive(Default)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<Received>>,
}

impl RequestLog {
    pub(crate) fn push(&self, request: Received) {
        let mut entries = self.lock();
        if entries.len() >= LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    pub(crate) fn snapshot(&self) -> Vec<Received> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Received>> {
        // A panic elsewhere while holding the lock cannot leave a VecDeque
        // half-updated in a way that matters here, so keep serving.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> Received {
        Received {
            method: "GET".into(),
            path: path.into(),
            query: vec![],
            headers: vec![("x-one".into(), "1".into()), ("x-one".into(), "2".into())],
            body: vec![],
        }
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_returns_first_value() {
        let r = request("/");
        assert_eq!(r.header("X-One"), Some("1"));
        assert_eq!(r.header_values("x-ONE").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.header("x-two"), None);
    }

    #[test]
    fn log_keeps_only_the_newest_entries() {
        let log = RequestLog::default();
        for i in 0..LOG_CAPACITY + 5 {
            log.push(request(&format!("/{i}")));
        }
        let all = log.snapshot();
        assert_eq!(all.len(), LOG_CAPACITY);
        assert_eq!(all[0].path, "/5");
        assert_eq!(all[LOG_CAPACITY - 1].path, format!("/{}", LOG_CAPACITY + 4));
    }
}
