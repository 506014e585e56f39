//! Review findings M4, M5, M3, M8: credentials the filter did not verify never go upstream
//! (public routes, the other credential kind), header names an upstream reads with `_` as `-`
//! are removed like their `-` spelling, and `;` separates query parameters for credentials.

use serde_json::json;

use crate::engine::Verdict;
use crate::engine_tests::{engine, get, reason, run, set_header, status, token};
use crate::testkit::NOW;
use portcullis_common::slots::MemoryStore;

fn removed(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Pass { remove_headers, .. } => {
            remove_headers.iter().map(|h| h.to_string()).collect()
        }
        _ => Vec::new(),
    }
}

fn new_path(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Pass { new_path, .. } => new_path.as_deref(),
        _ => None,
    }
}

/// M4: an unverified (`alg: none`) token, an API key, a session cookie and a query token on a
/// public route are all taken out: the upstream must not take them as checked by the gateway.
#[test]
fn public_routes_do_not_forward_unverified_credentials() {
    let mut e = engine(json!({
        "token_sources": [{"header": "authorization"}, {"cookie": "session"}, {"query": "access_token"}]
    }));
    let s = MemoryStore::new();
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290Iiwicm9sZXMiOlsiYWRtaW4iXX0.";
    let c = get("/healthz?x=1&access_token=forged")
        .bearer(none)
        .header("x-api-key", "guessed")
        .header("cookie", "theme=dark; session=forged");
    let (v, _) = run(&mut e, &s, &c, NOW);
    assert_eq!(reason(&v), "allow");
    let gone = removed(&v);
    assert!(gone.contains(&"authorization".to_string()), "{gone:?}");
    assert!(gone.contains(&"x-api-key".to_string()), "{gone:?}");
    assert_eq!(set_header(&v, "cookie"), Some("theme=dark"));
    assert_eq!(new_path(&v), Some("/healthz?x=1"));
}

/// M5: with a valid JWT, an API key alongside it is not forwarded, and the reverse.
#[test]
fn the_other_credential_kind_is_removed_too() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/x").bearer(&t).header("x-api-key", "unchecked"),
        NOW,
    );
    assert_eq!(reason(&v), "allow");
    assert!(removed(&v).contains(&"x-api-key".to_string()));
    // A token source holding something that is not a bearer token is still taken out.
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/x")
            .header("x-api-key", "new-key")
            .header("authorization", "Basic cm9vdDpyb290"),
        NOW,
    );
    assert_eq!(reason(&v), "allow");
    assert!(removed(&v).contains(&"authorization".to_string()));
}

/// M3: `_` spellings of override, reserved and identity headers are removed.
#[test]
fn underscore_spellings_of_protected_headers_are_removed() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    for c in [get("/healthz"), get("/api/x").bearer(&t)] {
        let c = c
            .header("X_HTTP_Method_Override", "DELETE")
            .header("X_Original_URL", "/admin/users")
            .header("x_portcullis_subject", "root")
            .header("x_portcullis-would_deny", "forged")
            .header("x-portcullis-would-deny", "ratelimit-client:limited");
        let (v, _) = run(&mut e, &s, &c, NOW);
        let gone = removed(&v);
        for name in [
            "x_http_method_override",
            "x_original_url",
            "x_portcullis_subject",
            "x_portcullis-would_deny",
        ] {
            assert!(gone.contains(&name.to_string()), "{name}: {gone:?}");
        }
        assert!(!gone.contains(&"x-portcullis-would-deny".to_string()));
    }
}

/// M8: `;` separates query parameters for some upstreams: a second credential behind it is
/// ambiguous, and one alone is removed, keeping the other separators as sent.
#[test]
fn semicolons_separate_query_credentials() {
    let mut e = engine(json!({
        "token_sources": [{"header": "authorization"}, {"query": "access_token"}]
    }));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let path = format!("/api/x?x=1;access_token=evil&access_token={t}");
    let (v, _) = run(&mut e, &s, &get(&path), NOW);
    assert_eq!(
        (status(&v), reason(&v)),
        (Some(400), "credentials_ambiguous")
    );
    let path = "/api/x?x=1;access_token=evil;y=2&z=3";
    let (v, _) = run(&mut e, &s, &get(path).bearer(&t), NOW);
    assert_eq!(reason(&v), "allow");
    assert_eq!(new_path(&v), Some("/api/x?x=1;y=2&z=3"));
}

/// `remove_token: false` keeps token sources, never API keys; a shadow pass of a refused
/// request takes the unverified credential out like any other pass.
#[test]
fn api_keys_always_go_and_shadow_passes_strip_too() {
    let s = MemoryStore::new();
    let mut keep = engine(json!({"remove_token": false}));
    let c = get("/healthz")
        .bearer("anything")
        .header("x-api-key", "guessed");
    let (v, _) = run(&mut keep, &s, &c, NOW);
    let gone = removed(&v);
    assert!(!gone.contains(&"authorization".to_string()), "{gone:?}");
    assert!(gone.contains(&"x-api-key".to_string()), "{gone:?}");

    let mut shadow = engine(json!({"mode": "shadow"}));
    let (v, _) = run(
        &mut shadow,
        &s,
        &get("/api/x").bearer("forged.token.here"),
        NOW,
    );
    assert!(matches!(v, Verdict::Pass { .. }));
    assert!(removed(&v).contains(&"authorization".to_string()));
}
