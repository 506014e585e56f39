//! Finding a credential in the request (header, cookie or query parameter) and, when asked,
//! taking it out before the request goes upstream.

use crate::settings::Source;

/// A credential found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'s, 'r> {
    /// Borrowed from the request.
    pub value: &'r str,
    /// Borrowed from the configuration.
    pub source: &'s Source,
}

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

fn cookie<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v)
        })
}

fn query<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = path.split_once('?')?;
    let q = q.split('#').next().unwrap_or_default();
    q.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n == name).then_some(v)
    })
}

/// The first credential present in `sources`, in configuration order. An `authorization`
/// header with another scheme (Basic ...) is not a bearer token.
pub fn find<'s, 'r>(
    sources: &'s [Source],
    headers: &'r [(String, String)],
    path: &'r str,
) -> Option<Found<'s, 'r>> {
    sources.iter().find_map(|source| {
        let value = match source {
            Source::Header(name) if name == "authorization" => bearer(header(headers, name)?),
            Source::Header(name) => Some(header(headers, name)?.trim()),
            Source::Cookie(name) => cookie(headers, name),
            Source::Query(name) => query(path, name),
        }?;
        (!value.is_empty()).then_some(Found { value, source })
    })
}

/// How to take a credential out of the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removal {
    pub remove_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    pub new_path: Option<String>,
}

pub fn removal(found: &Found<'_, '_>, headers: &[(String, String)], path: &str) -> Removal {
    match found.source {
        Source::Header(name) => Removal {
            remove_headers: vec![name.clone()],
            ..Removal::default()
        },
        Source::Cookie(name) => {
            let kept: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .flat_map(|(_, v)| v.split(';'))
                .map(str::trim)
                .filter(|pair| pair.split_once('=').is_none_or(|(n, _)| n != name))
                .filter(|pair| !pair.is_empty())
                .collect();
            if kept.is_empty() {
                Removal {
                    remove_headers: vec!["cookie".into()],
                    ..Removal::default()
                }
            } else {
                Removal {
                    set_headers: vec![("cookie".into(), kept.join("; "))],
                    ..Removal::default()
                }
            }
        }
        Source::Query(name) => {
            let (base, q) = path.split_once('?').unwrap_or((path, ""));
            let kept: Vec<&str> = q
                .split('&')
                .filter(|pair| !pair.is_empty())
                .filter(|pair| pair.split_once('=').map_or(*pair, |(n, _)| n) != name)
                .collect();
            let new_path = if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            };
            Removal {
                new_path: Some(new_path),
                ..Removal::default()
            }
        }
    }
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

    #[test]
    fn bearer_header_only_with_the_bearer_scheme() {
        let s = vec![Source::Header("authorization".into())];
        let hs = h(&[("authorization", "bEaReR  abc.def.ghi ")]);
        assert_eq!(find(&s, &hs, "/").unwrap().value, "abc.def.ghi");
        assert_eq!(find(&s, &h(&[("authorization", "Basic YTpi")]), "/"), None);
        assert_eq!(find(&s, &h(&[("authorization", "Bearer")]), "/"), None);
        assert_eq!(find(&s, &h(&[("authorization", "Bearer   ")]), "/"), None);
        assert_eq!(find(&s, &[], "/"), None);
    }

    #[test]
    fn cookie_query_and_custom_header_in_order() {
        let s = vec![
            Source::Header("x-token".into()),
            Source::Cookie("session".into()),
            Source::Query("access_token".into()),
        ];
        let hs = h(&[("cookie", "a=1; session=tok1; b=2")]);
        assert_eq!(find(&s, &hs, "/p?access_token=tok2").unwrap().value, "tok1");
        assert_eq!(
            find(&s, &[], "/p?x=1&access_token=tok2").unwrap().value,
            "tok2"
        );
        let hs = h(&[("x-token", "tok0"), ("cookie", "session=tok1")]);
        assert_eq!(find(&s, &hs, "/").unwrap().value, "tok0");
        assert_eq!(
            find(&s, &h(&[("cookie", "sessionx=1")]), "/?access_tokens=1"),
            None
        );
    }

    #[test]
    fn removal_of_each_kind() {
        let hs = h(&[("cookie", "a=1; session=tok; b=2")]);
        let cookie_src = Source::Cookie("session".into());
        let found = Found {
            value: "tok",
            source: &cookie_src,
        };
        assert_eq!(
            removal(&found, &hs, "/").set_headers,
            vec![("cookie".to_string(), "a=1; b=2".to_string())]
        );
        let only = h(&[("cookie", "session=tok")]);
        assert_eq!(removal(&found, &only, "/").remove_headers, vec!["cookie"]);
        let q = Source::Query("t".into());
        let found = Found {
            value: "tok",
            source: &q,
        };
        assert_eq!(
            removal(&found, &[], "/a?x=1&t=tok&y=2").new_path.unwrap(),
            "/a?x=1&y=2"
        );
        assert_eq!(removal(&found, &[], "/a?t=tok").new_path.unwrap(), "/a");
        let hd = Source::Header("authorization".into());
        let found = Found {
            value: "tok",
            source: &hd,
        };
        assert_eq!(
            removal(&found, &[], "/").remove_headers,
            vec!["authorization"]
        );
    }
}
