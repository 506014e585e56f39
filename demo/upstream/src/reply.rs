//! A transport-independent response, so routes can be unit-tested without a
//! socket and the tiny_http specifics stay in one place (`server.rs`).

use serde::Serialize;

pub(crate) const JSON: &str = "application/json";
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
        }
    }

    /// A response that must not carry content (1xx, 204, 304): no body and so
    /// no Content-Type either.
    pub(crate) fn bodiless(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// JSON bodies are built from structs rather than `json!` where the key
    /// order is documented: serde_json's default map sorts keys.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Reply {
        Reply::with_json(status, JSON, value)
    }

    /// An RFC 9457 problem document.
    pub(crate) fn problem(status: u16, title: &str, detail: &str) -> Reply {
        #[derive(Serialize)]
        struct Problem<'a> {
            r#type: &'a str,
            title: &'a str,
            status: u16,
            detail: &'a str,
        }
        let problem = Problem {
            r#type: "about:blank",
            title,
            status,
            detail,
        };
        Reply::with_json(status, PROBLEM_JSON, &problem)
    }

    fn with_json(status: u16, content_type: &str, value: &impl Serialize) -> Reply {
        // Our bodies are plain structs and `Value`s with string keys, which
        // always serialize; an empty body would at worst fail a test.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Reply::new(status, content_type, body)
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// First value of a response header.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether HTTP forbids content for this status, so we must not send any.
pub(crate) fn status_forbids_body(status: u16) -> bool {
    matches!(status, 100..=199 | 204 | 304)
}
