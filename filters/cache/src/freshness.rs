//! Freshness arithmetic (RFC 9111 §4.2): how long a response stays fresh, and how old a stored
//! response is now. All times are whole seconds since the Unix epoch.

use crate::directives::ResponseDirectives;

/// An HTTP-date (IMF-fixdate, RFC 850 or asctime) as Unix seconds; `None` if invalid.
pub fn http_date(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Formats Unix seconds as an IMF-fixdate.
pub fn format_http_date(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Heuristic freshness, used only where the operator enabled it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heuristic {
    /// Fraction of the time since Last-Modified (RFC 9111 §4.2.2 suggests 10%).
    pub fraction: f64,
    /// Upper bound, seconds.
    pub max_secs: u64,
}

/// Status codes that are heuristically cacheable (RFC 9110 §15.1), minus 206, which this cache
/// never stores (it does not combine partial content).
pub const HEURISTICALLY_CACHEABLE: [u16; 11] =
    [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// The response's freshness lifetime in seconds (§4.2.1): s-maxage, then max-age, then
/// Expires − Date, then a heuristic where allowed; `None` when it has none (not storable unless
/// it is only going to be revalidated).
pub fn lifetime(
    d: &ResponseDirectives,
    status: u16,
    date: Option<u64>,
    expires: Option<&str>,
    last_modified: Option<u64>,
    response_time: u64,
    heuristic: Option<Heuristic>,
) -> Option<u64> {
    if let Some(s) = d.s_maxage {
        return Some(s);
    }
    if let Some(m) = d.max_age {
        return Some(m);
    }
    if let Some(raw) = expires {
        // An invalid Expires (e.g. "0") means "already expired" (§5.3).
        let date = date.unwrap_or(response_time);
        return Some(http_date(raw).map_or(0, |e| e.saturating_sub(date)));
    }
    let h = heuristic?;
    if !(HEURISTICALLY_CACHEABLE.contains(&status) || d.public) {
        return None;
    }
    let date = date.unwrap_or(response_time);
    let since_modified = date.saturating_sub(last_modified?);
    let secs = (since_modified as f64 * h.fraction) as u64;
    Some(secs.min(h.max_secs))
}

/// The age a response had when it arrived (§4.2.3, `corrected_initial_age`).
pub fn initial_age(
    age_header: Option<u64>,
    date: Option<u64>,
    request_time: u64,
    response_time: u64,
) -> u64 {
    let apparent = date.map_or(0, |d| response_time.saturating_sub(d));
    let delay = response_time.saturating_sub(request_time);
    let corrected = age_header.unwrap_or(0).saturating_add(delay);
    apparent.max(corrected)
}

/// The age now of a response stored at `response_time` with `initial_age`.
pub fn current_age(initial_age: u64, response_time: u64, now: u64) -> u64 {
    initial_age.saturating_add(now.saturating_sub(response_time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directives::parse_response;

    const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const T: u64 = 784111777;

    #[test]
    fn http_dates_in_all_three_formats() {
        assert_eq!(http_date(DATE), Some(T));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(T));
        assert_eq!(http_date("Sun Nov  6 08:49:37 1994"), Some(T));
        assert_eq!(http_date("0"), None);
        assert_eq!(http_date(""), None);
        assert_eq!(format_http_date(T), DATE);
    }

    #[test]
    fn precedence_s_maxage_max_age_expires() {
        let exp = "Sun, 06 Nov 1994 08:59:37 GMT"; // Date + 600
        let both = parse_response(&["max-age=60, s-maxage=120"]);
        assert_eq!(
            lifetime(&both, 200, Some(T), Some(exp), None, T, None),
            Some(120)
        );
        let max_age = parse_response(&["max-age=60"]);
        assert_eq!(
            lifetime(&max_age, 200, Some(T), Some(exp), None, T, None),
            Some(60)
        );
        let none = parse_response(&[]);
        assert_eq!(
            lifetime(&none, 200, Some(T), Some(exp), None, T, None),
            Some(600)
        );
        // Without Date, the time the response arrived stands in for it.
        assert_eq!(
            lifetime(&none, 200, None, Some(exp), None, T + 100, None),
            Some(500)
        );
        // Invalid or past Expires: stale at once.
        assert_eq!(
            lifetime(&none, 200, Some(T), Some("0"), None, T, None),
            Some(0)
        );
        assert_eq!(
            lifetime(&none, 200, Some(T + 9999), Some(exp), None, T, None),
            Some(0)
        );
        assert_eq!(lifetime(&none, 200, Some(T), None, None, T, None), None);
    }

    #[test]
    fn heuristic_only_where_allowed_and_configured() {
        let none = parse_response(&[]);
        let h = Some(Heuristic {
            fraction: 0.1,
            max_secs: 3600,
        });
        let lm = Some(T - 1000);
        assert_eq!(
            lifetime(&none, 200, Some(T), None, lm, T, None),
            None,
            "not configured"
        );
        assert_eq!(lifetime(&none, 200, Some(T), None, lm, T, h), Some(100));
        assert_eq!(
            lifetime(&none, 200, Some(T), None, None, T, h),
            None,
            "no Last-Modified"
        );
        assert_eq!(
            lifetime(&none, 302, Some(T), None, lm, T, h),
            None,
            "302 not heuristic"
        );
        let public = parse_response(&["public"]);
        assert_eq!(lifetime(&public, 302, Some(T), None, lm, T, h), Some(100));
        let old = Some(T - 10_000_000);
        assert_eq!(
            lifetime(&none, 404, Some(T), None, old, T, h),
            Some(3600),
            "capped"
        );
    }

    #[test]
    fn age_arithmetic() {
        // Date 10 s before arrival; request took 2 s; upstream said Age: 5.
        assert_eq!(initial_age(Some(5), Some(T - 10), T - 2, T), 10);
        assert_eq!(initial_age(Some(50), Some(T - 10), T - 2, T), 52);
        // A Date in the future never makes the age negative.
        assert_eq!(initial_age(None, Some(T + 100), T, T), 0);
        assert_eq!(current_age(10, T, T + 30), 40);
        assert_eq!(current_age(10, T, T - 30), 10, "clock going back");
    }
}
