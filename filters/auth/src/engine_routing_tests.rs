//! Issue 13, part A, in the engine: the request line is refused before any rule when upstreams
//! would read it differently (`;` parameters, encoded dot-segments, lower-case methods), guarding
//! rules match any case and `HEAD`, public rules only what they name, duplicate credentials are
//! refused, tokens removed by default, and override and reserved headers never go upstream.

use serde_json::{json, Value};

use crate::engine::{Verdict, OVERRIDE_HEADERS};
use crate::engine_tests::{
    config, engine, env, get, reason, run, set_header, status, token, TEST_SLOT_KEY,
};
use crate::settings::load;
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

#[test]
fn path_parameters_are_refused_before_any_rule() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let admin = token("root", &["admin"]);
    for path in [
        "/admin;x/users",
        "/admin%3Bx/users",
        "/admin%3bx/users",
        "/api/products/..;/..;/admin/users",
        "/api/products;jsessionid=1",
        "/healthz;x",
    ] {
        // With no credentials (the public routes are not widened) and with an admin's (it is
        // the request, not the caller, that is refused).
        for c in [get(path), get(path).bearer(&admin)] {
            let (v, _) = run(&mut e, &s, &c, NOW);
            assert_eq!(
                (status(&v), reason(&v)),
                (Some(400), "path_parameters"),
                "{path}"
            );
            let Verdict::Deny {
                www_authenticate,
                detail,
                ..
            } = v
            else {
                panic!("{path}")
            };
            assert_eq!(www_authenticate, None);
            assert!(!detail.contains(path), "the path is not echoed");
        }
    }
    // A `;` in the query string is not a path parameter.
    let (v, _) = run(&mut e, &s, &get("/api/products?a=1;b=2"), NOW);
    assert!(matches!(v, Verdict::Pass { .. }));
}

#[test]
fn path_parameters_can_be_stripped_for_upstreams_that_strip_them() {
    let mut e = engine(json!({"path_parameters": "strip"}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    // Matched as the servlet upstream will serve it: `/admin/users`, which a viewer may not.
    for path in ["/admin;x/users", "/api/products/..;/..;/admin/users"] {
        let (v, _) = run(&mut e, &s, &get(path).bearer(&viewer), NOW);
        assert_eq!(reason(&v), "forbidden", "{path}");
    }
    // Public routes match what remains, exactly.
    let (v, _) = run(&mut e, &s, &get("/api/products;jsessionid=1/7"), NOW);
    assert!(matches!(v, Verdict::Pass { identity: None, .. }));
    // Other ambiguities are still refused.
    let (v, _) = run(&mut e, &s, &get("/api/products/%2e%2e/%2e%2e/admin"), NOW);
    assert_eq!((status(&v), reason(&v)), (Some(400), "path_ambiguous"));
}

#[test]
fn ambiguous_encodings_are_refused() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    for path in [
        "/api/products/%2e%2e/%2e%2e/admin",
        "/api/products/..%2fadmin",
        "/api/products/..%5cadmin",
        "/api/products/..\\admin",
        "/admin%00/users",
        "/api/products/%252e%252e/admin",
        "/api/products#/../../admin",
    ] {
        let (v, _) = run(&mut e, &s, &get(path), NOW);
        assert_eq!(
            (status(&v), reason(&v)),
            (Some(400), "path_ambiguous"),
            "{path}"
        );
    }
}

#[test]
fn methods_must_be_upper_case_tokens() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    for m in ["delete", "Delete", "get", "", "DEL ETE"] {
        let c = get("/api/orders/1").method(m).bearer(&viewer);
        let (v, _) = run(&mut e, &s, &c, NOW);
        assert_eq!(
            (status(&v), reason(&v)),
            (Some(400), "method_invalid"),
            "{m:?}"
        );
    }
    // Also on a public route: the upstream would run what no rule saw.
    let (v, _) = run(&mut e, &s, &get("/healthz").method("get"), NOW);
    assert_eq!(reason(&v), "method_invalid");
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/orders/1").method("DELETE").bearer(&viewer),
        NOW,
    );
    assert_eq!(reason(&v), "forbidden");
}

#[test]
fn guarding_rules_match_any_case_and_head_public_rules_only_theirs() {
    let mut e = engine(json!({"rules": [
        {"path": "/api/products/**", "methods": ["GET"], "public": true},
        {"path": "/admin/**", "methods": ["GET"], "any_of": ["admin:access"]},
        {"path": "/exact/**", "any_of": ["admin:access"], "case_sensitive": true},
        {"path": "/**"}
    ]}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    for (m, path) in [
        ("GET", "/ADMIN/users"),
        ("GET", "/Admin/Users"),
        ("GET", "/%41dmin/users"),
        ("GET", "/admin./users"),
        // `GET` covers `HEAD`: a HEAD runs the GET handler in most frameworks.
        ("HEAD", "/admin/users"),
        ("HEAD", "/ADMIN/users"),
    ] {
        let (v, _) = run(&mut e, &s, &get(path).method(m).bearer(&viewer), NOW);
        assert_eq!(reason(&v), "forbidden", "{m} {path}");
    }
    // A public rule is not widened by case, encoding or HEAD.
    for (m, path) in [
        ("GET", "/API/products"),
        ("GET", "/api/%70roducts"),
        ("HEAD", "/api/products"),
    ] {
        let (v, _) = run(&mut e, &s, &get(path).method(m), NOW);
        assert_eq!(reason(&v), "credentials_missing", "{m} {path}");
    }
    let (v, _) = run(&mut e, &s, &get("/api/products/7"), NOW);
    assert!(matches!(v, Verdict::Pass { identity: None, .. }));
    // The switch for an upstream that routes by exact case.
    let (v, _) = run(&mut e, &s, &get("/exact/x").bearer(&viewer), NOW);
    assert_eq!(reason(&v), "forbidden");
    let (v, _) = run(&mut e, &s, &get("/EXACT/x").bearer(&viewer), NOW);
    assert_eq!(reason(&v), "allow", "matched the catch-all instead");
}

#[test]
fn duplicate_credentials_are_refused() {
    let mut e = engine(json!({
        "token_sources": [{"header": "authorization"}, {"cookie": "session"}, {"query": "access_token"}]
    }));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let bearer = format!("Bearer {t}");
    let two_headers = get("/api/x")
        .header("authorization", &bearer)
        .header("authorization", "Bearer forged");
    let joined = get("/api/x").header("authorization", &format!("{bearer},Bearer forged"));
    let cookies = get("/api/x").header("cookie", &format!("session={t}; ses%73ion=forged"));
    let q1 = format!("/api/x?access_token={t}&access_token=forged");
    let q2 = format!("/api/x?access_token={t}&access%5Ftoken=forged");
    let api_keys = get("/api/x")
        .header("x-api-key", "new-key")
        .header("x-api-key", "old-key");
    for c in [two_headers, joined, cookies, get(&q1), get(&q2), api_keys] {
        let (v, _) = run(&mut e, &s, &c, NOW);
        assert_eq!(
            (status(&v), reason(&v)),
            (Some(400), "credentials_ambiguous")
        );
        let Verdict::Deny {
            www_authenticate, ..
        } = v
        else {
            panic!()
        };
        assert!(www_authenticate.is_some_and(|w| w.contains("error=\"invalid_request\"")));
    }
}

#[test]
fn tokens_are_removed_by_default_from_every_source() {
    let mut e = engine(json!({
        "token_sources": [{"header": "authorization"}, {"cookie": "session"}, {"query": "access_token"}]
    }));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let c = get("/api/x?page=2&access_token=other")
        .bearer(&t)
        .header("cookie", "theme=dark; session=stale");
    let (v, _) = run(&mut e, &s, &c, NOW);
    assert!(removed(&v).contains(&"authorization".to_string()));
    assert_eq!(set_header(&v, "cookie"), Some("theme=dark"));
    let Verdict::Pass { new_path, .. } = v else {
        panic!()
    };
    assert_eq!(new_path.as_deref(), Some("/api/x?page=2"));
    // Kept when asked to.
    let mut keep = engine(json!({"remove_token": false}));
    let (v, _) = run(&mut keep, &s, &get("/api/x").bearer(&t), NOW);
    assert!(!removed(&v).contains(&"authorization".to_string()));
}

#[test]
fn override_and_reserved_headers_never_go_upstream() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let mut public = get("/healthz");
    let mut private = get("/api/x").bearer(&t);
    for name in OVERRIDE_HEADERS {
        // Any case: Envoy lower-cases names, a test host may not.
        let upper = name.to_ascii_uppercase();
        public = public.header(&upper, "/admin");
        private = private.header(name, "DELETE");
    }
    for c in [public, private] {
        let c = c
            .header("x-portcullis-anything", "forged")
            .header("x-portcullis-would-deny", "ratelimit-client:limited");
        let (v, _) = run(&mut e, &s, &c, NOW);
        let gone = removed(&v);
        for name in OVERRIDE_HEADERS {
            assert!(gone.contains(&name.to_string()), "{name}: {gone:?}");
        }
        assert!(gone.contains(&"x-portcullis-anything".to_string()));
        // Earlier filters' shadow signals are kept (auth appends its own).
        assert!(!gone.contains(&"x-portcullis-would-deny".to_string()));
    }
}

#[test]
fn shadow_mode_lets_an_ambiguous_request_through_with_the_signal() {
    let mut e = engine(json!({"mode": "shadow"}));
    let s = MemoryStore::new();
    let (v, _) = run(&mut e, &s, &get("/admin;x"), NOW);
    assert_eq!(
        set_header(&v, "x-portcullis-would-deny"),
        Some("auth:path_parameters")
    );
}

#[test]
fn new_and_removed_fields_are_refused_naming_the_field() {
    let bad = |extra: Value| {
        load(config(extra).to_string().as_bytes(), &env, TEST_SLOT_KEY)
            .map(|_| ())
            .unwrap_err()
    };
    for value in [json!(true), json!(false)] {
        let e = bad(json!({ "allow_cors_preflight": value }));
        assert_eq!(e.field, "allow_cors_preflight");
        assert!(e.message.starts_with("removed:"), "{e}");
    }
    let e = bad(json!({"path_parameters": "keep"}));
    assert_eq!(e.field, "path_parameters");
    assert!(e.message.contains("refuse"), "{e}");
    let e = bad(json!({"remove_token": "yes"}));
    assert_eq!(e.field, "remove_token");
    let e = bad(json!({"rules": [{"path": "/a", "public": true, "case_sensitive": true}]}));
    assert_eq!(e.field, "rules[0].case_sensitive");
    let e = bad(json!({"rules": [{"path": "/a", "case_sensitive": "no"}]}));
    assert!(e.field.starts_with("rules[0].case_sensitive"), "{e}");
    let e = bad(json!({"rules": [{"path": "/a;b"}]}));
    assert_eq!(e.field, "rules[0].path");
}

#[test]
fn raw_dot_segments_and_inner_empty_segments_are_refused() {
    // Review finding M1: without Envoy's normalisation, these reached a public rule (exact
    // view) or dodged `/admin/**` (guard view).
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    for path in [
        "/api/products////../../../admin/users",
        "/admin//../api/x",
        "/admin/../api/x",
        "/api/products/../../admin/users",
        "/api/products/./1",
        "/api//products/1",
    ] {
        for c in [get(path), get(path).bearer(&viewer)] {
            let (v, _) = run(&mut e, &s, &c, NOW);
            assert_eq!(
                (status(&v), reason(&v)),
                (Some(400), "path_ambiguous"),
                "{path}"
            );
        }
    }
    // `//` alone too: a guard would have read it merged, a public rule never matched it.
    for path in ["/admin//users", "/api//products", "//api/products/1"] {
        let (v, _) = run(&mut e, &s, &get(path).bearer(&viewer), NOW);
        assert_eq!(reason(&v), "path_ambiguous", "{path}");
    }
    // A trailing slash stays legal.
    let (v, _) = run(&mut e, &s, &get("/api/products/1/"), NOW);
    assert!(matches!(v, Verdict::Pass { identity: None, .. }));
}

#[test]
fn unknown_methods_are_refused() {
    // Review finding M2: `FOO` matched no method-scoped rule and passed via the catch-all,
    // where `DELETE` is forbidden; handlers that ignore the method would run it.
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    for m in ["FOO", "PROPFIND", "M-SEARCH", "DELETE2"] {
        let (v, _) = run(
            &mut e,
            &s,
            &get("/api/products/1").method(m).bearer(&viewer),
            NOW,
        );
        assert_eq!(
            (status(&v), reason(&v)),
            (Some(400), "method_invalid"),
            "{m}"
        );
    }
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/products/1").method("DELETE").bearer(&viewer),
        NOW,
    );
    assert_eq!(reason(&v), "forbidden");
}

#[test]
fn extra_methods_are_accepted_only_when_named() {
    let mut e = engine(json!({"extra_methods": ["PROPFIND", "MKCOL"]}));
    let s = MemoryStore::new();
    let viewer = token("v", &["viewer"]);
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/products/1").method("PROPFIND").bearer(&viewer),
        NOW,
    );
    assert_eq!(reason(&v), "allow");
    // Still upper case only, and other unknown methods are still refused.
    for m in ["propfind", "FOO"] {
        let (v, _) = run(
            &mut e,
            &s,
            &get("/api/products/1").method(m).bearer(&viewer),
            NOW,
        );
        assert_eq!(reason(&v), "method_invalid", "{m}");
    }
}

#[test]
fn extra_methods_must_be_upper_case_tokens() {
    for (bad, i) in [("propfind", 1), ("", 0), ("PROP FIND", 0), ("GET", 0)] {
        let list = if i == 0 {
            json!([bad])
        } else {
            json!(["MKCOL", bad])
        };
        let e = load(
            config(json!({"extra_methods": list}))
                .to_string()
                .as_bytes(),
            &env,
            crate::engine_tests::TEST_SLOT_KEY,
        )
        .err()
        .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(e.field, format!("extra_methods[{i}]"), "{bad:?}: {e}");
    }
}
