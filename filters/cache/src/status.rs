//! The RFC 9211 `Cache-Status` header this cache adds to every response it sees.

// Written straight into the header value: no temporary string per part.
use std::fmt::Write;

/// How the cache handled a request, as RFC 9211 spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handling {
    /// Served from cache; `ttl` is the remaining freshness (negative when stale).
    Hit { ttl: i64 },
    /// Forwarded: `fwd` is `miss`, `stale`, `uri-miss`, `vary-miss`, `request`, `method` or
    /// `bypass`; `stored` whether the response is being stored; `fwd_status` the upstream's
    /// status when it differs from the one sent to the client.
    Forward {
        fwd: &'static str,
        fwd_status: Option<u16>,
        stored: bool,
        ttl: Option<i64>,
    },
}

/// `portcullis; hit; ttl=42` or `portcullis; fwd=miss; stored; ttl=60`, plus optional
/// `key="..."` and `detail=...`.
pub fn cache_status(name: &str, h: &Handling, key: Option<&str>, detail: Option<&str>) -> String {
    let mut out = String::from(name);
    match h {
        Handling::Hit { ttl } => {
            let _ = write!(out, "; hit; ttl={ttl}");
        }
        Handling::Forward {
            fwd,
            fwd_status,
            stored,
            ttl,
        } => {
            let _ = write!(out, "; fwd={fwd}");
            if let Some(s) = fwd_status {
                let _ = write!(out, "; fwd-status={s}");
            }
            if *stored {
                out.push_str("; stored");
            }
            if let Some(t) = ttl {
                let _ = write!(out, "; ttl={t}");
            }
        }
    }
    if let Some(k) = key {
        out.push_str("; key=\"");
        for c in k.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            if c.is_ascii() && !c.is_ascii_control() {
                out.push(c);
            }
        }
        out.push('"');
    }
    if let Some(d) = detail {
        let _ = write!(out, "; detail={d}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            cache_status("p", &Handling::Hit { ttl: 42 }, None, None),
            "p; hit; ttl=42"
        );
        assert_eq!(
            cache_status(
                "p",
                &Handling::Forward { fwd: "stale", fwd_status: Some(304), stored: true, ttl: Some(60) },
                Some("GET https://h/a\"b"),
                Some("revalidated")
            ),
            "p; fwd=stale; fwd-status=304; stored; ttl=60; key=\"GET https://h/a\\\"b\"; detail=revalidated"
        );
        assert_eq!(
            cache_status(
                "p",
                &Handling::Forward {
                    fwd: "uri-miss",
                    fwd_status: None,
                    stored: false,
                    ttl: None
                },
                None,
                None
            ),
            "p; fwd=uri-miss"
        );
    }
}
