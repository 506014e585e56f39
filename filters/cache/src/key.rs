//! Cache keys. The *URL key* (`GET`, scheme, authority, path, normalised query) names a resource:
//! invalidation and purge by URL act on it, and it picks the storage bucket. The *primary key*
//! adds the verified user on per-user routes. Each stored entry also records the request's
//! values of the headers its response's `Vary` names (the secondary key, RFC 9111 §4.1).

use std::hash::{DefaultHasher, Hasher};

use portcullis_common::identity::Identity;

/// Splits `/p?q` into path and query (without `?`).
pub fn split_target(target: &str) -> (&str, &str) {
    match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    }
}

/// The query as the key sees it: parameters in `ignore` dropped, optionally sorted. Parameters
/// are compared as sent (no percent-decoding), so `a=%41` and `a=A` are different keys: safe,
/// merely a miss.
pub fn normalise_query(query: &str, sort: bool, ignore: &[String]) -> String {
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(n, _)| n);
            !ignore.iter().any(|i| i == name)
        })
        .collect();
    if sort {
        params.sort_unstable();
    }
    params.join("&")
}

/// The URL key: the lookup method is always GET (HEAD is answered from GET entries); the
/// authority is lower-cased (host names are case-insensitive).
pub fn url_key(scheme: &str, authority: &str, path: &str, query: &str) -> String {
    let mut k = String::with_capacity(16 + authority.len() + path.len() + query.len());
    k.push_str("GET ");
    k.push_str(&scheme.to_ascii_lowercase());
    k.push_str("://");
    k.push_str(&authority.to_ascii_lowercase());
    k.push_str(path);
    if !query.is_empty() {
        k.push('?');
        k.push_str(query);
    }
    k
}

/// The primary key: the URL key, plus the user on per-user routes. The identity fields are
/// length-prefixed so no choice of subject can imitate another user's key.
pub fn primary_key(url_key: &str, user: Option<&Identity>) -> String {
    match user {
        None => url_key.to_string(),
        Some(id) => {
            let mut k = String::from(url_key);
            for part in [
                id.issuer.as_deref().unwrap_or(""),
                id.tenant.as_deref().unwrap_or(""),
                id.subject.as_str(),
            ] {
                k.push_str(&format!(" |{}:{}", part.len(), part));
            }
            k
        }
    }
}

/// A request header's value as a Vary secondary key: all its field lines joined, whitespace
/// around commas and at the ends removed (RFC 9111 §4.1 allows such normalisation).
pub fn normalise_field(values: &[&str]) -> String {
    let joined = values.join(",");
    joined
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
}

/// Header names listed in `Vary`, lower-cased; `*` is reported as `None` (never matches).
pub fn vary_names(vary: &[&str]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for v in vary {
        for name in v.split(',') {
            let name = name.trim().to_ascii_lowercase();
            if name == "*" {
                return None;
            }
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.sort();
    Some(names)
}

/// The secondary-key name under which an entry with an encoded body records its content codings
/// (not a header name: `:` cannot start one). Such an entry matches only requests whose
/// `Accept-Encoding` accepts every one of them.
pub const CODING_KEY: &str = ":content-encoding";

/// Whether `Accept-Encoding` (its field lines) accepts every coding in `codings` (comma-separated,
/// lower-case), RFC 9110 §12.5.3: listed, or covered by `*`, with a non-zero weight.
pub fn accepts_coding(accept_encoding: &[&str], codings: &str) -> bool {
    // (coding, accepted) of each member; `q=0` refuses.
    let members: Vec<(String, bool)> = accept_encoding
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|m| {
            let mut parts = m.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            if name.is_empty() {
                return None;
            }
            let refused = parts.any(|p| {
                p.trim()
                    .split_once('=')
                    .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("q") && is_zero(v.trim()))
            });
            Some((name, !refused))
        })
        .collect();
    let explicit = |c: &str| members.iter().find(|(n, _)| n == c).map(|(_, ok)| *ok);
    codings.split(',').all(|c| {
        let c = c.trim();
        // `x-gzip` is an alias of gzip (RFC 9110 §8.4.1.3).
        let alias = match c {
            "gzip" => "x-gzip",
            "x-gzip" => "gzip",
            _ => c,
        };
        explicit(c)
            .or_else(|| explicit(alias))
            .or_else(|| explicit("*"))
            .unwrap_or(false)
    })
}

/// A weight of zero (`0`, `0.0`, `0.000`).
fn is_zero(q: &str) -> bool {
    q.parse::<f64>().is_ok_and(|w| w <= 0.0)
}

/// A 64-bit fingerprint, never 0 (0 marks a free directory slot).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        h.write_usize(p.len());
        h.write(p);
    }
    h.finish().max(1)
}

/// Fingerprint of one stored variant: primary key plus the Vary names and values.
pub fn variant_fingerprint(primary: &str, vary: &[(String, String)]) -> u64 {
    let mut parts: Vec<&[u8]> = vec![primary.as_bytes()];
    for (n, v) in vary {
        parts.push(n.as_bytes());
        parts.push(v.as_bytes());
    }
    fingerprint(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::identity::AuthMethod;

    fn user(subject: &str) -> Identity {
        Identity {
            subject: subject.into(),
            method: AuthMethod::Jwt,
            roles: vec![],
            tenant: None,
            key_id: None,
            issuer: Some("iss".into()),
        }
    }

    #[test]
    fn url_keys() {
        assert_eq!(
            url_key("https", "Shop.Example:8443", "/a/B", "x=1"),
            "GET https://shop.example:8443/a/B?x=1"
        );
        assert_eq!(url_key("https", "h", "/a", ""), "GET https://h/a");
        assert_eq!(split_target("/a?b=1?c"), ("/a", "b=1?c"));
        assert_eq!(split_target("/a"), ("/a", ""));
    }

    #[test]
    fn query_normalisation() {
        let ignore = vec!["utm_source".to_string(), "fbclid".to_string()];
        assert_eq!(normalise_query("b=2&a=1", false, &[]), "b=2&a=1");
        assert_eq!(normalise_query("b=2&a=1", true, &[]), "a=1&b=2");
        assert_eq!(
            normalise_query("utm_source=x&b=2&&fbclid&a=1", true, &ignore),
            "a=1&b=2"
        );
        assert_eq!(
            normalise_query("utm_sourcex=1", true, &ignore),
            "utm_sourcex=1"
        );
    }

    #[test]
    fn per_user_keys_differ_and_cannot_be_forged() {
        let url = "GET https://h/me";
        assert_eq!(primary_key(url, None), url);
        let a = primary_key(url, Some(&user("alice")));
        let b = primary_key(url, Some(&user("bob")));
        assert_ne!(a, b);
        assert_ne!(a, url);
        // A subject that contains another key's suffix does not collide.
        let tricky = primary_key(
            url,
            Some(&Identity {
                tenant: Some("".into()),
                ..user("alice")
            }),
        );
        assert_eq!(tricky, a, "absent and empty tenant are the same tenant");
        let forged = primary_key(
            url,
            Some(&Identity {
                issuer: None,
                ..user("3:iss |0: |5:alice")
            }),
        );
        assert_ne!(forged, a);
    }

    #[test]
    fn accept_encoding_decides_encoded_variants() {
        assert!(accepts_coding(&["gzip, br"], "gzip"));
        assert!(accepts_coding(&["br", "gzip;q=0.5"], "gzip"));
        assert!(accepts_coding(&["*"], "br"));
        assert!(accepts_coding(&["x-gzip"], "gzip"));
        assert!(
            !accepts_coding(&[], "gzip"),
            "no Accept-Encoding: identity only"
        );
        assert!(!accepts_coding(&["br"], "gzip"));
        assert!(!accepts_coding(&["gzip;q=0"], "gzip"));
        assert!(!accepts_coding(&["*, gzip;q=0.0"], "gzip"));
        assert!(
            !accepts_coding(&["gzip"], "gzip,br"),
            "every coding must be accepted"
        );
        assert!(accepts_coding(&["gzip, br"], "gzip,br"));
    }

    #[test]
    fn vary_handling() {
        assert_eq!(
            vary_names(&["Accept-Language, accept", "X-A"]),
            Some(vec![
                "accept".into(),
                "accept-language".into(),
                "x-a".into()
            ])
        );
        assert_eq!(vary_names(&["accept, *"]), None);
        assert_eq!(vary_names(&[]), Some(vec![]));
        assert_eq!(normalise_field(&[" en ,  fr", "de "]), "en,fr,de");
        assert_eq!(normalise_field(&[]), "");
        let v1 = vec![("accept".to_string(), "a".to_string())];
        let v2 = vec![("accept".to_string(), "b".to_string())];
        assert_ne!(variant_fingerprint("k", &v1), variant_fingerprint("k", &v2));
        assert_ne!(variant_fingerprint("k", &[]), 0);
    }
}
