//! Any answer from the chain, 4xx and 5xx included, as a value a test can inspect.

use serde_json::Value;

/// Status, headers (lower-cased names, every value) and body of one response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The reply behind a ureq result, whatever its status; only a transport error panics.
pub fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let mut names = resp.headers_names();
    names.sort();
    names.dedup();
    let headers = names
        .iter()
        .flat_map(|n| {
            resp.all(n)
                .into_iter()
                .map(|v| (n.to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let status = resp.status();
    Reply {
        status,
        headers,
        body: resp.into_string().unwrap_or_default(),
    }
}
