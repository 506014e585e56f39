//! Response headers: `RateLimit-Policy` and `RateLimit` in the structured-field form of
//! draft-ietf-httpapi-ratelimit-headers-11 (a List of Items whose value is the policy name as an
//! sf-string, with Integer parameters `q`/`w` and `r`/`t`), `Retry-After` (RFC 9110 §10.2.3,
//! delay-seconds) and, optionally, the legacy `X-RateLimit-*` trio.

/// One limit as it applied to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Limit name: `[a-z0-9_-]+`, so it is a valid sf-string without escaping.
    pub name: String,
    /// Quota per window (this instance's share in fleet mode).
    pub quota: u64,
    pub window_s: u64,
    /// Token bucket burst, when it differs from the quota.
    pub burst: Option<u64>,
    pub remaining: u64,
    /// Seconds until the full quota is back (or, for the limit that denied, until a retry can
    /// pass).
    pub reset_s: u64,
}

/// Milliseconds to whole delay-seconds, rounded up: a client that waits this long is not early.
pub fn seconds_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

pub fn policy_field(applied: &[Applied]) -> String {
    let items: Vec<String> = applied
        .iter()
        .map(|a| {
            let mut item = format!("\"{}\";q={};w={}", a.name, a.quota, a.window_s);
            if let Some(burst) = a.burst {
                // Vendor-prefixed, as the draft asks for implementation-specific parameters.
                item.push_str(&format!(";portcullis-burst={burst}"));
            }
            item
        })
        .collect();
    items.join(", ")
}

pub fn limit_field(applied: &[Applied]) -> String {
    let items: Vec<String> = applied
        .iter()
        .map(|a| format!("\"{}\";r={};t={}", a.name, a.remaining, a.reset_s))
        .collect();
    items.join(", ")
}

/// All headers for a response; `legacy` adds `X-RateLimit-*` for the most constrained limit.
pub fn response_headers(applied: &[Applied], legacy: bool) -> Vec<(String, String)> {
    if applied.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        ("ratelimit-policy".to_string(), policy_field(applied)),
        ("ratelimit".to_string(), limit_field(applied)),
    ];
    if legacy {
        if let Some(tightest) = applied.iter().min_by_key(|a| a.remaining) {
            out.push(("x-ratelimit-limit".into(), tightest.quota.to_string()));
            out.push((
                "x-ratelimit-remaining".into(),
                tightest.remaining.to_string(),
            ));
            out.push(("x-ratelimit-reset".into(), tightest.reset_s.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(name: &str, quota: u64, window_s: u64, remaining: u64, reset_s: u64) -> Applied {
        Applied {
            name: name.into(),
            quota,
            window_s,
            burst: None,
            remaining,
            reset_s,
        }
    }

    #[test]
    fn fields_follow_the_draft() {
        let a = vec![
            applied("per-ip", 100, 1, 42, 1),
            Applied {
                burst: Some(200),
                ..applied("login", 5, 60, 0, 12)
            },
        ];
        assert_eq!(
            policy_field(&a),
            r#""per-ip";q=100;w=1, "login";q=5;w=60;portcullis-burst=200"#
        );
        assert_eq!(limit_field(&a), r#""per-ip";r=42;t=1, "login";r=0;t=12"#);
    }

    #[test]
    fn legacy_headers_describe_the_tightest_limit() {
        let a = vec![applied("a", 100, 1, 42, 1), applied("b", 5, 60, 3, 40)];
        let h = response_headers(&a, true);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ratelimit-limit"), Some("5"));
        assert_eq!(get("x-ratelimit-remaining"), Some("3"));
        assert_eq!(get("x-ratelimit-reset"), Some("40"));
        assert_eq!(response_headers(&a, false).len(), 2);
        assert!(response_headers(&[], true).is_empty());
    }

    #[test]
    fn rounding() {
        assert_eq!(seconds_ceil(0), 0);
        assert_eq!(seconds_ceil(1), 1);
        assert_eq!(seconds_ceil(1000), 1);
        assert_eq!(seconds_ceil(1001), 2);
    }
}
