//! Finding a credential in the request (header, cookie or query parameter) and taking it out
//! before the request goes upstream. A credential sent twice is ambiguous: the filter verifies
//! one copy and an upstream may read another, so it is refused rather than guessed at.

use percent_encoding::percent_decode_str;

use crate::settings::Source;

/// A credential found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'s, 'r> {
    /// Borrowed from the request.
    pub value: &'r str,
    /// Borrowed from the configuration.
    pub source: &'s Source,
}

/// A source held the credential more than once (two headers, a cookie or query parameter
/// twice under names that decode to the same, or a header value joined from two copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;

/// The first header named `name` (names are lower-case, as Envoy hands them over).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Whether a cookie or query parameter's name (as sent) is `name` to some upstream: after
/// percent-decoding (and `+` as a space, for forms), trimmed, in any case.
fn same_name(sent: &str, name: &str) -> bool {
    let sent = sent.trim();
    if sent == name {
        return true;
    }
    let spaced = sent.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .trim()
        .eq_ignore_ascii_case(name)
}

/// Every `name=value` pair of every `Cookie` header.
fn cookie_pairs(headers: &[(String, String)]) -> impl Iterator<Item = &str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
}

/// Whether `c` separates query pairs: `&`, and `;` too, as Rack < 3 and older Python
/// `parse_qs` read it (a credential behind a `;` must count as a copy).
fn query_separator(c: char) -> bool {
    c == '&' || c == ';'
}

/// Every pair of the query string.
fn query_pairs(path: &str) -> impl Iterator<Item = &str> {
    let q = path.split_once('?').map_or("", |(_, q)| q);
    let q = q.split('#').next().unwrap_or_default();
    q.split(query_separator).filter(|pair| !pair.is_empty())
}

/// `query` without the pairs `drop` says go, each kept pair after the separator it was sent
/// with (the first kept one after none): an upstream that reads `;` as part of a value reads the
/// kept pairs as before.
fn kept_query(query: &str, drop: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(query.len());
    let mut sep = "";
    let mut rest = query;
    loop {
        let (pair, next) = match rest.find(query_separator) {
            Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i..)),
            None => (rest, None),
        };
        if !pair.is_empty() && !drop(pair) {
            if !out.is_empty() {
                out.push_str(sep);
            }
            out.push_str(pair);
        }
        match next {
            Some(next) => {
                sep = next.get(..1).unwrap_or("&");
                rest = next.get(1..).unwrap_or_default();
            }
            None => return out,
        }
    }
}

/// The value under exactly `name` among `pairs`, refusing a second pair whose name is the same
/// to some upstream.
fn single_pair<'a>(
    pairs: impl Iterator<Item = &'a str>,
    name: &str,
) -> Result<Option<&'a str>, Ambiguous> {
    let mut exact = None;
    let mut copies = 0;
    for pair in pairs {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        if same_name(n, name) {
            copies += 1;
            if copies > 1 {
                return Err(Ambiguous);
            }
            if n.trim() == name {
                exact = Some(v);
            }
        }
    }
    Ok(exact)
}

/// The value of the single header `name`, refusing two headers or a value joined from two
/// (a credential never holds a comma; one does when a proxy merged two copies).
fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, Ambiguous> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() || first.is_some_and(|v| v.contains(',')) {
        return Err(Ambiguous);
    }
    Ok(first)
}

/// The credential of the first source that has one, in configuration order; an
/// `authorization` header with another scheme (Basic ...) is not a bearer token. Any source
/// holding its credential twice makes the request ambiguous, whichever source comes first.
pub fn find<'s, 'r>(
    sources: &'s [Source],
    headers: &'r [(String, String)],
    path: &'r str,
) -> Result<Option<Found<'s, 'r>>, Ambiguous> {
    let mut first = None;
    for source in sources {
        let value = match source {
            Source::Header(name) if name == "authorization" => {
                single_header(headers, name)?.and_then(bearer)
            }
            Source::Header(name) => single_header(headers, name)?.map(str::trim),
            Source::Cookie(name) => single_pair(cookie_pairs(headers), name)?,
            Source::Query(name) => single_pair(query_pairs(path), name)?,
        };
        if first.is_none() {
            first = value
                .filter(|v| !v.is_empty())
                .map(|value| Found { value, source });
        }
    }
    Ok(first)
}

/// How to take credentials out of the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removal {
    pub remove_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    pub new_path: Option<String>,
}

/// Takes every copy of every source in `sources` out of the request: headers by name, cookies
/// and query parameters under any name that is theirs to some upstream (see [`same_name`]).
pub fn removal(sources: &[Source], headers: &[(String, String)], path: &str) -> Removal {
    let mut out = Removal::default();
    let mut cookies: Vec<&str> = Vec::new();
    let mut params: Vec<&str> = Vec::new();
    for source in sources {
        match source {
            Source::Header(name) => {
                if header(headers, name).is_some() {
                    out.remove_headers.push(name.clone());
                }
            }
            Source::Cookie(name) => cookies.push(name),
            Source::Query(name) => params.push(name),
        }
    }
    let theirs = |pair: &str, names: &[&str]| {
        let n = pair.split_once('=').map_or(pair, |(n, _)| n);
        names.iter().any(|name| same_name(n, name))
    };
    if cookies
        .iter()
        .any(|_| cookie_pairs(headers).any(|p| theirs(p, &cookies)))
    {
        let kept: Vec<&str> = cookie_pairs(headers)
            .filter(|p| !theirs(p, &cookies))
            .collect();
        if kept.is_empty() {
            out.remove_headers.push("cookie".into());
        } else {
            out.set_headers.push(("cookie".into(), kept.join("; ")));
        }
    }
    if query_pairs(path).any(|p| theirs(p, &params)) {
        let (base, query) = path.split_once('?').unwrap_or((path, ""));
        // A fragment never reaches a proxy; like `query_pairs`, ignore one if sent.
        let query = query.split('#').next().unwrap_or_default();
        let kept = kept_query(query, |p| theirs(p, &params));
        out.new_path = Some(if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{kept}")
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn value(sources: &[Source], headers: &[(String, String)], path: &str) -> Option<String> {
        find(sources, headers, path)
            .unwrap()
            .map(|f| f.value.to_string())
    }

    #[test]
    fn bearer_header_only_with_the_bearer_scheme() {
        let s = vec![Source::Header("authorization".into())];
        let hs = h(&[("authorization", "bEaReR  abc.def.ghi ")]);
        assert_eq!(value(&s, &hs, "/").unwrap(), "abc.def.ghi");
        assert_eq!(value(&s, &h(&[("authorization", "Basic YTpi")]), "/"), None);
        assert_eq!(value(&s, &h(&[("authorization", "Bearer")]), "/"), None);
        assert_eq!(value(&s, &h(&[("authorization", "Bearer   ")]), "/"), None);
        assert_eq!(value(&s, &[], "/"), None);
    }

    #[test]
    fn cookie_query_and_custom_header_in_order() {
        let s = vec![
            Source::Header("x-token".into()),
            Source::Cookie("session".into()),
            Source::Query("access_token".into()),
        ];
        let hs = h(&[("cookie", "a=1; session=tok1; b=2")]);
        assert_eq!(value(&s, &hs, "/p?access_token=tok2").unwrap(), "tok1");
        assert_eq!(value(&s, &[], "/p?x=1&access_token=tok2").unwrap(), "tok2");
        let hs = h(&[("x-token", "tok0"), ("cookie", "session=tok1")]);
        assert_eq!(value(&s, &hs, "/").unwrap(), "tok0");
        assert_eq!(
            value(&s, &h(&[("cookie", "sessionx=1")]), "/?access_tokens=1"),
            None
        );
        // A name that only decodes to ours is not taken as the credential.
        assert_eq!(value(&s, &h(&[("cookie", "SESSION=x")]), "/"), None);
    }

    #[test]
    fn a_credential_sent_twice_is_ambiguous() {
        let auth = vec![Source::Header("authorization".into())];
        for hs in [
            h(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            // Two copies joined by a proxy (Envoy joins repeated `authorization` headers).
            h(&[("authorization", "Bearer a,Bearer b")]),
            h(&[("Authorization", "Basic x"), ("authorization", "Bearer b")]),
        ] {
            assert_eq!(find(&auth, &hs, "/"), Err(Ambiguous), "{hs:?}");
        }
        let key = vec![Source::Header("x-api-key".into())];
        let hs = h(&[("x-api-key", "k1"), ("x-api-key", "k2")]);
        assert_eq!(find(&key, &hs, "/"), Err(Ambiguous));

        let cookie = vec![Source::Cookie("session".into())];
        for value in [
            "session=a; session=b",
            "session=a; ses%73ion=b",
            "session=a; SESSION=b",
            "session=a;  session =b",
            "session=a; session=",
        ] {
            let hs = h(&[("cookie", value)]);
            assert_eq!(find(&cookie, &hs, "/"), Err(Ambiguous), "{value}");
        }
        let hs = h(&[("cookie", "session=a"), ("cookie", "x=1; session=b")]);
        assert_eq!(find(&cookie, &hs, "/"), Err(Ambiguous));

        let query = vec![Source::Query("access_token".into())];
        for path in [
            "/?access_token=a&access_token=b",
            "/?access_token=a&access%5Ftoken=b",
            "/?access_token=a&access%5ftoken=b",
            "/?access_token=a&Access_Token=b",
            "/?access_token=a&access_token",
            "/x?access%5Ftoken=b&access_token=a",
        ] {
            assert_eq!(find(&query, &[], path), Err(Ambiguous), "{path}");
        }
        // A later source sent twice is ambiguous too, even when an earlier one has a value.
        let both = vec![
            Source::Header("authorization".into()),
            Source::Query("access_token".into()),
        ];
        let hs = h(&[("authorization", "Bearer a")]);
        assert_eq!(
            find(&both, &hs, "/?access_token=x&access_token=y"),
            Err(Ambiguous)
        );
        // One copy of each is fine.
        assert_eq!(value(&both, &hs, "/?access_token=x").as_deref(), Some("a"));
    }

    #[test]
    fn removal_takes_every_copy_of_every_source() {
        let cookie = vec![Source::Cookie("session".into())];
        let hs = h(&[("cookie", "a=1; session=tok; b=2")]);
        assert_eq!(
            removal(&cookie, &hs, "/").set_headers,
            vec![("cookie".to_string(), "a=1; b=2".to_string())]
        );
        let only = h(&[("cookie", "session=tok")]);
        assert_eq!(removal(&cookie, &only, "/").remove_headers, vec!["cookie"]);
        let untouched = h(&[("cookie", "a=1")]);
        assert_eq!(removal(&cookie, &untouched, "/"), Removal::default());
        let q = vec![Source::Query("t".into())];
        assert_eq!(
            removal(&q, &[], "/a?x=1&t=tok&y=2").new_path.unwrap(),
            "/a?x=1&y=2"
        );
        assert_eq!(removal(&q, &[], "/a?t=tok").new_path.unwrap(), "/a");
        assert_eq!(removal(&q, &[], "/a?%74=tok&x").new_path.unwrap(), "/a?x");
        assert_eq!(removal(&q, &[], "/a?x=1").new_path, None);
        let hd = vec![Source::Header("authorization".into())];
        let hs = h(&[("authorization", "Bearer x")]);
        assert_eq!(removal(&hd, &hs, "/").remove_headers, vec!["authorization"]);
        assert_eq!(removal(&hd, &[], "/"), Removal::default());
        // Every source at once: header, cookie and query.
        let all = vec![
            Source::Header("authorization".into()),
            Source::Cookie("session".into()),
            Source::Query("t".into()),
        ];
        let hs = h(&[("authorization", "Bearer x"), ("cookie", "session=y; k=v")]);
        let r = removal(&all, &hs, "/p?t=z");
        assert_eq!(r.remove_headers, vec!["authorization"]);
        assert_eq!(
            r.set_headers,
            vec![("cookie".to_string(), "k=v".to_string())]
        );
        assert_eq!(r.new_path.as_deref(), Some("/p"));
    }

    #[test]
    fn kept_query_keeps_the_separators_sent() {
        let drop = |p: &str| p.starts_with("t=");
        assert_eq!(kept_query("a=1;t=x&b=2", drop), "a=1&b=2");
        assert_eq!(kept_query("t=x;a=1;b=2", drop), "a=1;b=2");
        assert_eq!(kept_query("a=1&&t=x;", drop), "a=1");
        assert_eq!(kept_query("t=x", drop), "");
        assert_eq!(kept_query("", drop), "");
    }
}
