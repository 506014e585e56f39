//! The whole decision, from configuration JSON to verdict: public routes, preflights, RBAC,
//! 401/403 with WWW-Authenticate, shadow mode, API keys, identity headers, the token cache and
//! revocation, remote keys.

use portcullis_common::decision::Outcome as D;
use serde_json::{json, Value};

use crate::apikey::{hash_key, to_hex};
use crate::engine::{Engine, Request, Tally, Verdict};
use crate::keys::Alg;
use crate::remote::{Fed, Fetch, RemoteState};
use crate::revocation::Kind;
use crate::settings::load;
use crate::testkit::*;
use portcullis_common::slots::{HashKey, MemoryStore};

pub(crate) const TEST_SLOT_KEY: HashKey = HashKey::from_bytes([5; 16]);

const PEPPER: &str = "pepper-pepper-pepper-pepper";

pub(crate) fn env(name: &str) -> Option<Vec<u8>> {
    match name {
        "JWT_SECRET" => Some(HMAC_SECRET.to_vec()),
        "PEPPER" => Some(PEPPER.as_bytes().to_vec()),
        _ => None,
    }
}

pub(crate) fn config(extra: Value) -> Value {
    let mut c = json!({
        "providers": [{
            "name": "test", "issuer": ISS, "audiences": [AUD],
            "hmac_keys": [{"alg": "HS256", "secret_env": "JWT_SECRET"}],
            "roles_claim": "roles"
        }],
        "api_keys": {"pepper_env": "PEPPER", "keys": [
            {"id": "key-old", "hash": to_hex(&hash_key(PEPPER.as_bytes(), b"old-key")), "owner": "billing", "roles": ["viewer"]},
            {"id": "key-new", "hash": to_hex(&hash_key(PEPPER.as_bytes(), b"new-key")), "owner": "billing", "roles": ["viewer"], "permissions": ["reports:read"]}
        ]},
        "roles": {
            "viewer": {"permissions": ["products:read"]},
            "editor": {"permissions": ["products:write"], "inherits": ["viewer"]},
            "admin": {"permissions": ["*"]}
        },
        "rules": [
            {"path": "/healthz", "public": true},
            {"path": "/api/products/**", "methods": ["GET"], "public": true},
            {"path": "/admin/**", "any_of": ["admin:access"]},
            {"path": "/api/**", "methods": ["POST", "PUT", "DELETE"], "any_of": ["products:write"]},
            {"path": "/reports/**", "all_of": ["reports:read"]},
            {"path": "/api/**"}
        ]
    });
    if let (Some(base), Some(more)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    c
}

pub(crate) fn engine(extra: Value) -> Engine {
    Engine::new(load(config(extra).to_string().as_bytes(), &env, TEST_SLOT_KEY).unwrap())
}

pub(crate) fn token(sub: &str, roles: &[&str]) -> String {
    signer(Alg::HS256, "k", false).token(claims(sub, json!({ "roles": roles })))
}

pub(crate) struct Call<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(String, String)>,
}

pub(crate) fn get(path: &str) -> Call<'_> {
    Call {
        method: "GET",
        path,
        headers: vec![],
    }
}

impl<'a> Call<'a> {
    pub(crate) fn method(mut self, m: &'a str) -> Self {
        self.method = m;
        self
    }
    pub(crate) fn header(mut self, n: &str, v: &str) -> Self {
        self.headers.push((n.into(), v.into()));
        self
    }
    pub(crate) fn bearer(self, t: &str) -> Self {
        self.header("authorization", &format!("Bearer {t}"))
    }
}

pub(crate) fn run(e: &mut Engine, store: &MemoryStore, c: &Call<'_>, now: u64) -> (Verdict, Tally) {
    let mut tally = Tally::default();
    let req = Request {
        method: c.method,
        authority: "api.example.com",
        path: c.path,
        headers: &c.headers,
    };
    (e.decide(&req, now, store, true, &mut tally), tally)
}

pub(crate) fn status(v: &Verdict) -> Option<u16> {
    match v {
        Verdict::Deny { status, .. } => Some(*status),
        _ => None,
    }
}

pub(crate) fn reason(v: &Verdict) -> &str {
    match v {
        Verdict::Deny { reason, .. } => reason,
        Verdict::Pass { decision, .. } => decision.reason.as_deref().unwrap_or("allow"),
        Verdict::FetchKeys { .. } => "fetch",
    }
}

pub(crate) fn set_header<'v>(v: &'v Verdict, name: &str) -> Option<&'v str> {
    match v {
        Verdict::Pass { set_headers, .. } => set_headers
            .iter()
            .find(|(n, _)| **n == *name)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

#[test]
fn public_routes_need_no_credentials_and_preflights_do() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    for c in [
        get("/healthz"),
        get("/api/products/7"),
        get("/api/products"),
    ] {
        let (v, _) = run(&mut e, &s, &c, NOW);
        assert!(
            matches!(v, Verdict::Pass { identity: None, .. }),
            "{}",
            c.path
        );
    }
    // Anything that looks like a CORS preflight is an ordinary request: anyone can send one
    // (finding 1 of issue 13); Envoy's CORS filter answers real ones before auth.
    for origin in ["https://app.example.com", "https://evil.example"] {
        let pre = get("/admin/x")
            .method("OPTIONS")
            .header("origin", origin)
            .header("access-control-request-method", "DELETE");
        assert_eq!(reason(&run(&mut e, &s, &pre, NOW).0), "credentials_missing");
    }
    let plain = get("/admin/x").method("OPTIONS");
    assert_eq!(status(&run(&mut e, &s, &plain, NOW).0), Some(401));
}

#[test]
fn missing_credentials_401_with_bare_challenge() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let (v, _) = run(&mut e, &s, &get("/api/orders"), NOW);
    let Verdict::Deny {
        status,
        reason,
        www_authenticate,
        decision,
        ..
    } = v
    else {
        panic!()
    };
    assert_eq!((status, reason), (401, "credentials_missing"));
    assert_eq!(
        www_authenticate.as_deref(),
        Some("Bearer realm=\"portcullis\"")
    );
    assert_eq!(decision.outcome, D::Deny);
}

#[test]
fn rbac_by_role_inheritance_and_permissions() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let viewer = token("vic", &["viewer"]);
    let editor = token("eddie", &["editor"]);
    let admin = token("ada", &["admin"]);
    let cases = [
        (get("/api/orders").bearer(&viewer), None),
        (get("/api/orders").method("POST").bearer(&viewer), Some(403)),
        (get("/api/orders").method("POST").bearer(&editor), None),
        (get("/admin/users").bearer(&editor), Some(403)),
        (get("/admin/users").bearer(&admin), None),
        (get("/reports/q1").bearer(&editor), Some(403)),
        // No rule matches: denied by default, even for admin.
        (get("/elsewhere").bearer(&admin), Some(403)),
    ];
    for (c, want) in cases {
        let (v, _) = run(&mut e, &s, &c, NOW);
        assert_eq!(
            status(&v),
            want,
            "{} {} -> {}",
            c.method,
            c.path,
            reason(&v)
        );
    }
    let (v, _) = run(&mut e, &s, &get("/admin/users").bearer(&editor), NOW);
    let Verdict::Deny {
        reason,
        www_authenticate,
        ..
    } = v
    else {
        panic!()
    };
    assert_eq!(reason, "forbidden");
    assert!(www_authenticate
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    let mut open = engine(json!({"unmatched": "allow"}));
    assert_eq!(
        status(&run(&mut open, &s, &get("/elsewhere").bearer(&viewer), NOW).0),
        None
    );
}

#[test]
fn identity_goes_upstream_and_forged_copies_are_removed() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let c = get("/api/orders")
        .bearer(&token("alice", &["viewer", "editor"]))
        .header("x-portcullis-subject", "root")
        .header("x-portcullis-roles", "admin");
    let (v, _) = run(&mut e, &s, &c, NOW);
    let Verdict::Pass {
        identity,
        remove_headers,
        ..
    } = &v
    else {
        panic!("{v:?}")
    };
    for h in [
        "x-portcullis-subject",
        "x-portcullis-roles",
        "x-portcullis-tenant",
        "x-portcullis-auth-method",
        "x-portcullis-key-id",
    ] {
        assert!(remove_headers.iter().any(|r| **r == *h), "{h}");
    }
    assert_eq!(set_header(&v, "x-portcullis-subject"), Some("alice"));
    assert_eq!(set_header(&v, "x-portcullis-roles"), Some("viewer,editor"));
    assert_eq!(set_header(&v, "x-portcullis-auth-method"), Some("jwt"));
    let id = identity.as_ref().unwrap();
    assert_eq!(id.subject, "alice");
    assert_eq!(id.issuer.as_deref(), Some(ISS));
    // Even on a public route, forged identity headers are removed.
    let c = get("/healthz").header("x-portcullis-subject", "root");
    let (v, _) = run(&mut e, &s, &c, NOW);
    let Verdict::Pass {
        remove_headers,
        identity: None,
        ..
    } = v
    else {
        panic!()
    };
    assert!(remove_headers
        .iter()
        .any(|r| &**r == "x-portcullis-subject"));
}

#[test]
fn header_injection_through_claims_is_refused() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    let t = token("alice\r\nx-portcullis-roles: admin", &["viewer"]);
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        "token_claim_invalid"
    );
    let t = token("alice", &["viewer,admin"]);
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        "token_claim_invalid"
    );
}

#[test]
fn api_keys_with_rotation_and_key_id_only_upstream() {
    let mut e = engine(json!({}));
    let s = MemoryStore::new();
    for (key, id) in [("old-key", "key-old"), ("new-key", "key-new")] {
        let c = get("/api/orders").header("x-api-key", key);
        let (v, _) = run(&mut e, &s, &c, NOW);
        assert_eq!(set_header(&v, "x-portcullis-key-id"), Some(id));
        assert_eq!(set_header(&v, "x-portcullis-auth-method"), Some("api_key"));
        let Verdict::Pass {
            remove_headers,
            identity,
            ..
        } = &v
        else {
            panic!()
        };
        assert!(
            remove_headers.iter().any(|r| &**r == "x-api-key"),
            "the key never goes upstream"
        );
        assert_eq!(identity.as_ref().unwrap().key_id.as_deref(), Some(id));
    }
    // Direct permissions on the key.
    assert_eq!(
        status(
            &run(
                &mut e,
                &s,
                &get("/reports/x").header("x-api-key", "new-key"),
                NOW
            )
            .0
        ),
        None
    );
    assert_eq!(
        status(
            &run(
                &mut e,
                &s,
                &get("/reports/x").header("x-api-key", "old-key"),
                NOW
            )
            .0
        ),
        Some(403)
    );
    let (v, _) = run(
        &mut e,
        &s,
        &get("/api/orders").header("x-api-key", "guess"),
        NOW,
    );
    let Verdict::Deny {
        reason,
        www_authenticate,
        ..
    } = v
    else {
        panic!()
    };
    assert_eq!(reason, "api_key_invalid");
    assert!(www_authenticate.unwrap().starts_with("Bearer realm"));
}

#[test]
fn shadow_mode_decides_signals_and_lets_through() {
    let mut e = engine(json!({"mode": "shadow"}));
    let s = MemoryStore::new();
    let c = get("/admin/x")
        .bearer(&token("vic", &["viewer"]))
        .header("x-portcullis-would-deny", "ratelimit-client:rate_limited");
    let (v, _) = run(&mut e, &s, &c, NOW);
    let Verdict::Pass {
        decision, identity, ..
    } = &v
    else {
        panic!("{v:?}")
    };
    assert_eq!(decision.outcome, D::ShadowDeny);
    assert_eq!(decision.reason.as_deref(), Some("forbidden"));
    assert_eq!(identity.as_ref().unwrap().subject, "vic");
    assert_eq!(
        set_header(&v, "x-portcullis-would-deny"),
        Some("ratelimit-client:rate_limited,auth:forbidden")
    );
    let (v, _) = run(&mut e, &s, &get("/api/x"), NOW);
    assert_eq!(
        set_header(&v, "x-portcullis-would-deny"),
        Some("auth:credentials_missing")
    );
}

#[test]
fn cache_skips_reverification_but_honours_expiry_and_revocation() {
    let mut e = engine(json!({}));
    let mut s = MemoryStore::new();
    let t = token("alice", &["viewer"]);
    let c = get("/api/x").bearer(&t);
    let (_, first) = run(&mut e, &s, &c, NOW);
    assert!(first.verified && !first.cache_hit);
    let (v, second) = run(&mut e, &s, &c, NOW + 1);
    assert!(second.cache_hit && !second.verified);
    assert_eq!(status(&v), None);
    // Revoked after it was cached: the generation changed, so the next hit re-checks.
    e.policy
        .revocation
        .insert(&mut s, Kind::Sub, "alice", Some(NOW + 5), NOW + 10_000, NOW)
        .unwrap();
    let (v, t3) = run(&mut e, &s, &c, NOW + 2);
    assert!(t3.cache_hit);
    assert_eq!(reason(&v), "token_revoked");
    // And it stays refused (now through full verification).
    let (v, t4) = run(&mut e, &s, &c, NOW + 3);
    assert!(t4.verified);
    assert_eq!(reason(&v), "token_revoked");
    // A cached token past its expiry (+ leeway) is verified again, and refused.
    let other = token("bob", &["viewer"]);
    let c = get("/api/x").bearer(&other);
    run(&mut e, &s, &c, NOW);
    let (v, t5) = run(&mut e, &s, &c, NOW + 600 + 61);
    assert!(!t5.cache_hit);
    assert_eq!(reason(&v), "token_expired");
}

#[test]
fn configured_revocations_by_jti_and_kid() {
    // The key that verifies is the one whose kid is checked: the provider names it `leaked`
    // (beside a key without kid, which kid-less tokens use).
    let mut e = engine(json!({
        "providers": [{"name": "test", "issuer": ISS, "audiences": [AUD], "roles_claim": "roles",
                       "hmac_keys": [{"alg": "HS256", "kid": "leaked", "secret_env": "JWT_SECRET"},
                                     {"alg": "HS256", "secret_env": "JWT_SECRET"}]}],
        "revocation": {"entries": [{"jti": "stolen"}, {"kid": "leaked"}]}
    }));
    let mut s = MemoryStore::new();
    let p = &e.policy;
    p.revocation
        .apply(&mut s, &p.revocation_entries, p.revocation_ttl, NOW, false);
    let signer = signer(Alg::HS256, "leaked", false);
    let t = signer.token(claims("a", json!({})));
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        "token_revoked"
    );
    let t = token("a", &[]);
    assert_eq!(
        status(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        None
    );
    let t = signer_token_with_jti("stolen");
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        "token_revoked"
    );
}

fn signer_token_with_jti(jti: &str) -> String {
    signer(Alg::HS256, "k", false).token(claims("a", json!({})).with_jwt_id(jti))
}

#[test]
fn token_sources_and_removal() {
    let mut e = engine(json!({
        "token_sources": [{"cookie": "session"}, {"query": "access_token"}],
        "remove_token": true
    }));
    let s = MemoryStore::new();
    let t = token("a", &["viewer"]);
    let c = get("/api/x").header("cookie", &format!("theme=dark; session={t}"));
    let (v, _) = run(&mut e, &s, &c, NOW);
    assert_eq!(set_header(&v, "cookie"), Some("theme=dark"));
    let path = format!("/api/x?access_token={t}&page=2");
    let c = get(&path);
    let (v, _) = run(&mut e, &s, &c, NOW);
    let Verdict::Pass { new_path, .. } = v else {
        panic!()
    };
    assert_eq!(new_path.as_deref(), Some("/api/x?page=2"));
    // The bearer header is not a source in this config.
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t), NOW).0),
        "credentials_missing"
    );
}

#[test]
fn remote_keys_fetch_rotation_rate_limit_and_last_good() {
    let es = signer(Alg::ES256, "k1", false);
    let es2 = signer(Alg::ES256, "k2", false);
    let jwk = |s: &Signer, kid: &str| {
        let mut v: Value = serde_json::from_str(&match &s.public.material {
            crate::keys::Material::ES256(k) => k.to_jwk(),
            _ => unreachable!(),
        })
        .unwrap();
        v["kid"] = json!(kid);
        v
    };
    let mut e = engine(json!({"providers": [{
        "name": "idp", "issuer": ISS, "audiences": [AUD],
        "remote_jwks": {"cluster": "auth_idp", "path": "/jwks", "refresh_secs": 60, "min_refetch_secs": 30}
    }]}));
    let s = MemoryStore::new();
    let t1 = es.token(claims("a", json!({})));
    // Nothing loaded yet: fail closed with 503.
    assert_eq!(
        status(&run(&mut e, &s, &get("/api/x").bearer(&t1), NOW).0),
        Some(503)
    );
    let state: &mut RemoteState = e.remote[0].as_mut().unwrap();
    let f = state.due(NOW).unwrap();
    assert_eq!(
        f,
        Fetch {
            cluster: "auth_idp".into(),
            authority: "idp".into(),
            path: "/jwks".into(),
            discovery: false
        }
    );
    assert_eq!(state.due(NOW), None, "one fetch at a time");
    let doc = json!({"keys": [jwk(&es, "k1")]}).to_string();
    assert!(matches!(
        state.feed(&f, Some(200), doc.as_bytes(), ISS, NOW),
        Fed::Keys(1, _)
    ));
    assert_eq!(
        status(&run(&mut e, &s, &get("/api/x").bearer(&t1), NOW).0),
        None
    );
    // Rotation: a token with a new kid asks for a refetch ...
    let t2 = es2.token(claims("b", json!({})));
    let (v, _) = run(&mut e, &s, &get("/api/x").bearer(&t2), NOW + 1);
    let Verdict::FetchKeys { provider: 0, fetch } = v else {
        panic!("{v:?}")
    };
    // ... but only once per min_refetch_secs.
    let state = e.remote[0].as_mut().unwrap();
    let doc2 = json!({"keys": [jwk(&es, "k1"), jwk(&es2, "k2")]}).to_string();
    state.feed(&fetch, Some(200), doc2.as_bytes(), ISS, NOW + 1);
    assert_eq!(
        status(&run(&mut e, &s, &get("/api/x").bearer(&t2), NOW + 2).0),
        None
    );
    let t3 = signer(Alg::ES256, "k3", false).token(claims("c", json!({})));
    assert!(matches!(
        run(&mut e, &s, &get("/api/x").bearer(&t3), NOW + 40).0,
        Verdict::FetchKeys { .. }
    ));
    let state = e.remote[0].as_mut().unwrap();
    state.feed(&fetch, None, b"", ISS, NOW + 40);
    assert_eq!(
        reason(&run(&mut e, &s, &get("/api/x").bearer(&t3), NOW + 41).0),
        "token_key_unknown"
    );
    // A failed refresh (endpoint down) keeps the last good keys.
    let state = e.remote[0].as_mut().unwrap();
    let f = state.due(NOW + 100).unwrap();
    assert!(matches!(
        state.feed(&f, Some(503), b"", ISS, NOW + 100),
        Fed::Failed(_)
    ));
    let f = state.due(NOW + 106).unwrap();
    assert!(matches!(
        state.feed(&f, Some(200), b"{\"keys\": 5}", ISS, NOW + 106),
        Fed::Failed(_)
    ));
    let fresh = es2.token(claims("d", json!({})));
    assert_eq!(
        status(&run(&mut e, &s, &get("/api/x").bearer(&fresh), NOW + 107).0),
        None
    );
}

#[test]
fn oidc_discovery_then_jwks() {
    let mut state = RemoteState::new(
        serde_json::from_value(json!({"cluster": "c", "authority": "idp.example",
                   "discovery_path": "/.well-known/openid-configuration"}))
        .unwrap(),
        Alg::ASYMMETRIC.to_vec(),
    );
    let f = state.due(NOW).unwrap();
    assert!(f.discovery);
    let doc = json!({"issuer": ISS, "jwks_uri": "https://idp.example/oauth/keys?v=2"}).to_string();
    assert_eq!(
        state.feed(&f, Some(200), doc.as_bytes(), ISS, NOW),
        Fed::Next(Fetch {
            cluster: "c".into(),
            authority: "idp.example".into(),
            path: "/oauth/keys?v=2".into(),
            discovery: false
        })
    );
    let wrong = json!({"issuer": "https://evil", "jwks_uri": "https://idp/keys"}).to_string();
    let mut other = RemoteState::new(state.spec.clone(), Alg::ASYMMETRIC.to_vec());
    let f = other.due(NOW).unwrap();
    assert!(matches!(
        other.feed(&f, Some(200), wrong.as_bytes(), ISS, NOW),
        Fed::Failed(_)
    ));
}

#[test]
fn config_errors_name_the_field() {
    let bad =
        |extra: Value| load(config(extra).to_string().as_bytes(), &env, TEST_SLOT_KEY).unwrap_err();
    let e = bad(
        json!({"providers": [{"name": "x", "issuer": ISS, "audiences": [AUD], "hmac_keys": [{"alg": "HS256", "secret_env": "NOPE"}]}]}),
    );
    assert_eq!(e.field, "providers[0].hmac_keys[0].secret_env");
    assert!(e.message.contains("NOPE"), "{e}");
    let e = bad(
        json!({"providers": [{"name": "x", "issuer": ISS, "audiences": [AUD], "hmac_keys": [{"alg": "RS256", "secret_env": "JWT_SECRET"}]}]}),
    );
    assert_eq!(e.field, "providers[0].hmac_keys[0].alg");
    let e = bad(json!({"providers": [{"name": "x", "issuer": ISS, "audiences": [AUD]}]}));
    assert_eq!(e.field, "providers[0]");
    let e = bad(
        json!({"providers": [{"name": "x", "issuer": ISS, "audiences": [AUD], "remote_jwks": {"cluster": "c"}}]}),
    );
    assert_eq!(e.field, "providers[0].remote_jwks");
    let e = bad(
        json!({"providers": [{"name": "x", "issuer": ISS, "audiences": [AUD], "jwks": {"keys": [{"kty": "RSA"}]}}]}),
    );
    assert_eq!(e.field, "providers[0].jwks");
    let e = bad(json!({"api_keys": {"pepper_env": "NOPE"}}));
    assert_eq!(e.field, "api_keys.pepper_env");
    let e = bad(json!({"roles": {"a": {"inherits": ["a"]}}}));
    assert!(e.field.starts_with("roles"), "{e}");
    let e = bad(json!({"rules": [{"path": "/x", "any_of": ["a b"]}]}));
    assert_eq!(e.field, "rules[0].any_of[0]");
    let e = bad(json!({"revocation": {"entries": [{"jti": "a", "kid": "b"}]}}));
    assert_eq!(e.field, "revocation.entries[0]");
    let e = bad(json!({"max_token_bytes": 0}));
    assert_eq!(e.field, "max_token_bytes");
    let e = load(br#"{"mode":"enforce","providres":[]}"#, &env, TEST_SLOT_KEY).unwrap_err();
    assert_eq!(e.field, "providres");
    let e = load(br#"{"token_sources":[{"smoke":"x"}]}"#, &env, TEST_SLOT_KEY).unwrap_err();
    assert!(e.field.starts_with("token_sources"), "{e}");
}
