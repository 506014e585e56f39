//! RFC 3339 timestamps in UTC with milliseconds, without a date library.

use crate::json::decimal;

/// `2026-11-24T07:11:37.123Z` for milliseconds since the Unix epoch.
pub fn rfc3339_millis(ms: u64) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_millis(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

/// [`rfc3339_millis`] appended to `out`, without formatting machinery: the record writes two
/// per request.
pub fn write_rfc3339_millis(out: &mut Vec<u8>, ms: u64) {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(secs / 86_400);
    decimal(out, y, 4);
    out.push(b'-');
    decimal(out, m, 2);
    out.push(b'-');
    decimal(out, d, 2);
    out.push(b'T');
    decimal(out, rem / 3600, 2);
    out.push(b':');
    decimal(out, (rem % 3600) / 60, 2);
    out.push(b':');
    decimal(out, rem % 60, 2);
    out.push(b'.');
    decimal(out, ms % 1000, 3);
    out.push(b'Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil-from-days
/// algorithm, restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(1_735_689_600_001),
            "2025-01-01T00:00:00.001Z"
        );
        assert_eq!(
            rfc3339_millis(4_102_444_800_000),
            "2100-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
    }
}
