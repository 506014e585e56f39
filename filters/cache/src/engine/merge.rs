//! Which stored response a 304 or a HEAD 200 may update (RFC 9111 §4.3.4, §4.3.5), and when a
//! HEAD says the stored response is outdated. Only the fields the response carries are compared:
//! a 304 or a HEAD answer commonly omits some (many frameworks compute no ETag for HEAD), and a
//! missing field says nothing about the representation.

use super::{first, values};
use crate::entry::Entry;
use crate::freshness::http_date;
use crate::key::vary_names;

/// Whether a 304 or HEAD response's validators select the stored response `old` for update
/// (RFC 9111 §4.3.4). ETags must be equal as they are, weakness included: a strong stored tag
/// needs the same strong tag (strong comparison, RFC 9110 §8.8.3.2), and a strong tag in the
/// response identifies only stored responses with that strong tag (§4.3.4), so it does not select
/// a stored weak `W/"x"`; a weak stored tag is selected by the same weak tag (weak comparison;
/// `W/"x"` never selects a strong stored `"x"`, whose bytes a weak tag does not vouch for).
/// Without a stored ETag the response must carry none, and the stored `Last-Modified` (if any)
/// needs the same date; a stored response without validators is selected only by a response
/// without them (the 304 answers the cache's only stored response for the request).
pub(super) fn selects(old: &Entry, headers: &[(String, String)]) -> bool {
    match (old.header("etag").map(str::trim), etag(headers)) {
        (Some(a), Some(b)) => return a == b,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    match (old.header("last-modified"), first(headers, "last-modified")) {
        (None, None) => true,
        (Some(a), Some(b)) => same_date(a, b),
        _ => false,
    }
}

/// The field a 304 or HEAD response carries that shows it describes another representation than
/// the stored one: its `Content-Type` or content codings differ. Such a response never updates the
/// entry (a merged `Content-Type` would serve the stored bytes as another type, past the
/// `content_types` check made at store time).
pub(super) fn other_representation(
    old: &Entry,
    headers: &[(String, String)],
) -> Option<&'static str> {
    if let Some(t) = first(headers, "content-type") {
        if old.header("content-type").map(media_type) != Some(media_type(t)) {
            return Some("content-type");
        }
    }
    if first(headers, "content-encoding").is_some()
        && codings(&values(headers, "content-encoding"))
            != codings(&old.header_values("content-encoding"))
    {
        return Some("content-encoding");
    }
    None
}

/// Whether the response carries a `Vary` naming other fields than the stored response's. The
/// entry's secondary key was computed from the stored `Vary`: merging another would serve the
/// merged fields (e.g. a reflected `Access-Control-Allow-Origin`) to every variant.
pub(super) fn vary_changed(old: &Entry, headers: &[(String, String)]) -> bool {
    let new = values(headers, "vary");
    !new.is_empty() && vary_names(&new) != vary_names(&old.header_values("vary"))
}

/// What a HEAD answer does to the stored GET response it was sent for (RFC 9111 §4.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadVerdict {
    /// The fields it carries show the stored response is outdated: drop it.
    Outdated,
    /// Its validator selects the stored response: take its fields.
    Update,
    /// It carries no validator: it can neither select nor refresh the entry, which stays as is.
    Keep,
}

/// The verdict on a HEAD answer `status`/`headers` for the stored response `old`: a 404/410, or
/// a 200 carrying an ETag, Last-Modified, Content-Type, content coding, Vary or Content-Length
/// that differs from the stored response's, says it is outdated; a 200 whose validator (ETag, or
/// else Last-Modified) selects it updates it; a 200 without validators leaves it alone (it must
/// not keep an old body fresh forever).
pub(super) fn head_verdict(old: &Entry, status: u16, headers: &[(String, String)]) -> HeadVerdict {
    if status != 200 || old.status != 200 {
        return HeadVerdict::Outdated;
    }
    let tag = etag(headers);
    if tag.is_some_and(|t| old.header("etag").map(str::trim) != Some(t)) {
        return HeadVerdict::Outdated;
    }
    let modified = first(headers, "last-modified");
    if modified.is_some_and(|m| !old.header("last-modified").is_some_and(|o| same_date(o, m))) {
        return HeadVerdict::Outdated;
    }
    if other_representation(old, headers).is_some() || vary_changed(old, headers) {
        return HeadVerdict::Outdated;
    }
    // The stored body is the whole body a GET got, in the stored content codings (partial
    // responses are never stored): the HEAD's length is comparable when its codings are those.
    if let Some(n) = first(headers, "content-length") {
        let same_codings = codings(&values(headers, "content-encoding"))
            == codings(&old.header_values("content-encoding"));
        if same_codings && n.trim().parse::<u64>().ok() != Some(old.body.len() as u64) {
            return HeadVerdict::Outdated;
        }
    }
    if tag.is_some() || modified.is_some() {
        HeadVerdict::Update
    } else {
        HeadVerdict::Keep
    }
}

/// The content codings of `Content-Encoding` field lines, in order; identity is no coding.
pub(super) fn codings(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

fn etag(headers: &[(String, String)]) -> Option<&str> {
    first(headers, "etag").map(str::trim)
}

/// Two HTTP dates naming the same second (an unparseable one equals nothing).
fn same_date(a: &str, b: &str) -> bool {
    http_date(a).is_some_and(|a| Some(a) == http_date(b))
}

/// A media type for comparison: case-insensitive, whitespace around parameters ignored
/// (RFC 9110 §8.3.1: `text/html;charset=UTF-8` and `text/html; charset=utf-8` are the same).
fn media_type(v: &str) -> String {
    v.split(';')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(";")
}
