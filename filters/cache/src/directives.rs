//! `Cache-Control` parsing (RFC 9111 §5.2): the directives a shared cache acts on, from a
//! response and from a request. Unknown directives are ignored (§5.2.3); a malformed argument
//! makes its directive count as absent, except where the RFC says to be conservative.

/// Directives of a response's `Cache-Control` (plus `Pragma` is not consulted for responses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseDirectives {
    pub no_store: bool,
    /// Unqualified `private`: a shared cache must not store it.
    pub private: bool,
    /// `private="a, b"`: the response may be stored, without the listed fields (lower-case).
    pub private_fields: Vec<String>,
    /// Unqualified `no-cache`: stored, but revalidated before every use.
    pub no_cache: bool,
    /// `no-cache="a, b"`: the listed fields (lower-case) are never served without revalidation;
    /// this cache simply never serves them from storage.
    pub no_cache_fields: Vec<String>,
    /// `must-understand` (RFC 9111 §5.2.2.3): store only when the status code's caching rules
    /// are understood, and then ignore `no-store`.
    pub must_understand: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub public: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// RFC 5861.
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
}

impl ResponseDirectives {
    /// Whether a stale copy may never be served without revalidation (must-revalidate,
    /// proxy-revalidate, and s-maxage, which implies proxy-revalidate for shared caches).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

/// Directives of a request's `Cache-Control` (and `Pragma: no-cache` without Cache-Control).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    pub no_cache: bool,
    pub no_store: bool,
    pub max_age: Option<u64>,
    /// `Some(None)`: any staleness accepted; `Some(Some(n))`: up to `n` seconds.
    pub max_stale: Option<Option<u64>>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
}

/// One `name[=value]` directive, the name lower-cased, a quoted value unquoted.
fn split(values: &[&str]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for value in values {
        for part in split_outside_quotes(value) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, arg) = match part.split_once('=') {
                Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                None => (part, None),
            };
            out.push((name.to_ascii_lowercase(), arg));
        }
    }
    out
}

/// Splits on commas that are not inside a quoted string (`private="a, b"` is one directive).
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or_default());
    parts
}

/// The field names of a qualified `private="…"` / `no-cache="…"`, lower-cased.
fn field_names(arg: &str) -> Vec<String> {
    arg.split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn unquote(arg: &str) -> String {
    arg.strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(arg)
        .to_string()
}

/// A delta-seconds argument (§1.2.2): digits only; too large saturates at 2^31 as the RFC
/// advises. Anything else is invalid.
pub fn delta_seconds(arg: Option<&str>) -> Option<u64> {
    let arg = arg?;
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(arg.parse::<u64>().unwrap_or(u64::MAX).min(1 << 31))
}

pub fn parse_response(cache_control: &[&str]) -> ResponseDirectives {
    let mut d = ResponseDirectives::default();
    for (name, arg) in split(cache_control) {
        let arg = arg.as_deref();
        match name.as_str() {
            "no-store" => d.no_store = true,
            "private" => match arg {
                Some(fields) => d.private_fields.extend(field_names(fields)),
                None => d.private = true,
            },
            "no-cache" => match arg {
                Some(fields) => d.no_cache_fields.extend(field_names(fields)),
                None => d.no_cache = true,
            },
            "must-understand" => d.must_understand = true,
            "must-revalidate" => d.must_revalidate = true,
            "proxy-revalidate" => d.proxy_revalidate = true,
            "public" => d.public = true,
            // §4.2.1: an invalid max-age makes the response stale (0), to be safe; of several,
            // the first counts (§4.2.1 allows the first or "stale").
            "max-age" => {
                d.max_age.get_or_insert(delta_seconds(arg).unwrap_or(0));
            }
            "s-maxage" => {
                d.s_maxage.get_or_insert(delta_seconds(arg).unwrap_or(0));
            }
            "stale-while-revalidate" => d.stale_while_revalidate = delta_seconds(arg),
            "stale-if-error" => d.stale_if_error = delta_seconds(arg),
            _ => {}
        }
    }
    d
}

/// A targeted cache-control field (RFC 9213, e.g. `CDN-Cache-Control`): `None` when absent or
/// not a valid Structured Fields dictionary (RFC 8941), in which case `Cache-Control` governs.
/// Hand-written rather than a full RFC 8941 parser: the directives need only the member names
/// (checked here) and integer or bare-item values, which [`parse_response`] already reads.
pub fn parse_targeted(field: &[&str]) -> Option<ResponseDirectives> {
    let key_ok = |k: &str| {
        let mut b = k.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == b'*')
            && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c))
    };
    // Members without their parameters (`;a=b`, which carry nothing for these directives).
    let members: Vec<&str> = field
        .iter()
        .flat_map(|v| split_outside_quotes(v))
        .map(|m| m.split(';').next().unwrap_or("").trim())
        .collect();
    let name = |m: &str| m.split('=').next().unwrap_or("").trim().to_string();
    // An empty member or a name that is no dictionary key (e.g. upper case) invalidates it all.
    if members.is_empty() || !members.iter().all(|m| key_ok(&name(m))) {
        return None;
    }
    Some(parse_response(&members))
}

/// The `Age` header (RFC 9111 §5.1): the first field line's first value counts; a value that is
/// not a non-negative integer means the response is stale (returned as 2^31 s).
pub fn age(lines: &[&str]) -> Option<u64> {
    let first = lines.first()?.split(',').next().unwrap_or("").trim();
    Some(delta_seconds(Some(first)).unwrap_or(1 << 31))
}

/// `pragma` is only consulted when the request has no Cache-Control (RFC 9111 §5.4).
pub fn parse_request(cache_control: &[&str], pragma: &[&str]) -> RequestDirectives {
    let mut d = RequestDirectives::default();
    if cache_control.is_empty() {
        d.no_cache = split(pragma).iter().any(|(n, _)| n == "no-cache");
        return d;
    }
    for (name, arg) in split(cache_control) {
        let arg = arg.as_deref();
        match name.as_str() {
            "no-cache" => d.no_cache = true,
            "no-store" => d.no_store = true,
            // An invalid max-age on a request: be conservative and revalidate.
            "max-age" => d.max_age = Some(delta_seconds(arg).unwrap_or(0)),
            "max-stale" => {
                d.max_stale = match arg {
                    None => Some(None),
                    Some(_) => delta_seconds(arg).map(Some),
                }
            }
            "min-fresh" => d.min_fresh = delta_seconds(arg),
            "only-if-cached" => d.only_if_cached = true,
            _ => {}
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_directives() {
        let d = parse_response(&["public, max-age=60", "S-MAXAGE=\"120\", must-revalidate"]);
        assert!(d.public && d.must_revalidate && !d.no_store && !d.private);
        assert_eq!(d.max_age, Some(60));
        assert_eq!(d.s_maxage, Some(120));
        assert!(d.forbids_stale());

        let d = parse_response(&["private=\"set-cookie, X-A\", no-cache=\"x\", no-store"]);
        assert!(!d.private && !d.no_cache && d.no_store, "qualified forms");
        assert_eq!(d.private_fields, vec!["set-cookie", "x-a"]);
        assert_eq!(d.no_cache_fields, vec!["x"]);
        assert!(!d.public);
        let d = parse_response(&["private, no-cache, must-understand"]);
        assert!(d.private && d.no_cache && d.must_understand);
        assert!(d.private_fields.is_empty() && d.no_cache_fields.is_empty());
        // Of duplicate directives the first counts.
        let d = parse_response(&["max-age=3600", "max-age=1, s-maxage=5, s-maxage=50"]);
        assert_eq!((d.max_age, d.s_maxage), (Some(3600), Some(5)));

        let d =
            parse_response(&["proxy-revalidate, stale-while-revalidate=30, stale-if-error=600"]);
        assert!(d.proxy_revalidate && d.forbids_stale());
        assert_eq!(d.stale_while_revalidate, Some(30));
        assert_eq!(d.stale_if_error, Some(600));
        assert!(!parse_response(&["max-age=5"]).forbids_stale());
    }

    #[test]
    fn invalid_arguments_are_conservative() {
        assert_eq!(parse_response(&["max-age=abc"]).max_age, Some(0));
        assert_eq!(parse_response(&["max-age=-5"]).max_age, Some(0));
        assert_eq!(parse_response(&["max-age"]).max_age, Some(0));
        assert_eq!(parse_response(&["stale-if-error=x"]).stale_if_error, None);
        assert_eq!(
            parse_response(&["max-age=99999999999999999999999"]).max_age,
            Some(1 << 31)
        );
        assert_eq!(parse_response(&[",,, ,"]), ResponseDirectives::default());
        assert_eq!(
            parse_response(&["unknown-ext=\"a,b\""]),
            ResponseDirectives::default()
        );
    }

    #[test]
    fn request_directives() {
        let d = parse_request(
            &["no-cache, no-store, max-age=10, min-fresh=5, only-if-cached"],
            &[],
        );
        assert!(d.no_cache && d.no_store && d.only_if_cached);
        assert_eq!(d.max_age, Some(10));
        assert_eq!(d.min_fresh, Some(5));
        assert_eq!(parse_request(&["max-stale"], &[]).max_stale, Some(None));
        assert_eq!(
            parse_request(&["max-stale=7"], &[]).max_stale,
            Some(Some(7))
        );
        assert_eq!(parse_request(&["max-stale=x"], &[]).max_stale, None);
        assert_eq!(parse_request(&["max-age=x"], &[]).max_age, Some(0));
    }

    #[test]
    fn targeted_field_is_a_dictionary_or_nothing() {
        let d = parse_targeted(&["max-age=60, no-store"]).unwrap();
        assert_eq!(d.max_age, Some(60));
        assert!(d.no_store);
        let d = parse_targeted(&["s-maxage=5;foo=bar", "private"]).unwrap();
        assert_eq!(d.s_maxage, Some(5));
        assert!(d.private);
        assert_eq!(parse_targeted(&[]), None);
        assert_eq!(parse_targeted(&[""]), None);
        assert_eq!(parse_targeted(&["Max-Age=5"]), None, "upper case is no key");
        assert_eq!(parse_targeted(&["max-age=5, %invalid"]), None);
        assert_eq!(parse_targeted(&["9lives"]), None);
    }

    #[test]
    fn age_values() {
        assert_eq!(age(&[]), None);
        assert_eq!(age(&["30"]), Some(30));
        assert_eq!(age(&[" 30 "]), Some(30));
        assert_eq!(age(&["old"]), Some(1 << 31), "not a number: stale");
        assert_eq!(age(&["old, 0"]), Some(1 << 31));
        assert_eq!(age(&["-5"]), Some(1 << 31));
        assert_eq!(age(&["3600", "0"]), Some(3600), "the first line counts");
        assert_eq!(age(&["10, 0"]), Some(10));
    }

    #[test]
    fn pragma_only_without_cache_control() {
        assert!(parse_request(&[], &["no-cache"]).no_cache);
        assert!(!parse_request(&["max-age=5"], &["no-cache"]).no_cache);
        assert!(!parse_request(&[], &[]).no_cache);
    }
}
