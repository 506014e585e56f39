//! The auth filter in the real Envoy: the demo configuration end to end, remote JWKS (rotation,
//! the unknown-kid refetch, OIDC discovery, the endpoint going down, fail-closed) against a real
//! HTTP endpoint served by the test, API-key rotation, revocation by polling, shadow mode, and
//! configuration errors refused at load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwt_simple::prelude::*;
use portcullis_tests::auth::{api_key_pepper, demo_secret, demo_token};
use portcullis_tests::h2::post_with_trailers;
use portcullis_tests::reply::{reply, Reply};
use portcullis_tests::server::{Request, Response, TestServer};
use portcullis_tests::{envoy_refuses, Chain, Options};
use serde_json::{json, Value};

const ISS: &str = "https://idp.test";
const AUD: &str = "portcullis-tests";

fn send(chain: &Chain, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = chain.client().request(method, &chain.url(path));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    reply(req.call())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The headers the demo upstream echoed back for `/echo`-style paths.
fn echoed(reply: &Reply) -> Value {
    reply.json()["headers"].clone()
}

fn upstream_header(reply: &Reply, name: &str) -> Option<String> {
    let headers = echoed(reply);
    match &headers {
        Value::Object(map) => map.get(name).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        }),
        Value::Array(list) => list.iter().find_map(|pair| {
            (pair[0].as_str()? == name).then(|| pair[1].as_str().map(str::to_string))?
        }),
        _ => None,
    }
}

fn assert_problem(reply: &Reply, status: u16, reason: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["reason"], reason, "{}", reply.body);
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{}",
        reply.body
    );
}

fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

#[test]
fn demo_configuration_end_to_end() {
    let chain = Chain::start();
    // Public routes need nothing.
    assert_eq!(send(&chain, "GET", "/api/products", &[]).status, 200);
    // Protected routes: 401 with a bare challenge, as problem+json.
    let r = send(&chain, "GET", "/api/orders", &[]);
    assert_problem(&r, 401, "credentials_missing");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"portcullis\"")
    );
    let r = send(
        &chain,
        "GET",
        "/api/orders",
        &[("authorization", "Bearer not.a.token")],
    );
    assert_problem(&r, 401, "token_malformed");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.contains("error=\"invalid_token\"")));
    assert!(!r.body.contains("not.a.token"), "the token is never echoed");
    // A token signed with another secret.
    let forged =
        portcullis_devkit::token::mint(&[7u8; 32], "mallory", &["admin".into()], 600).unwrap();
    let r = send(
        &chain,
        "GET",
        "/admin",
        &[("authorization", &bearer(&forged))],
    );
    assert_problem(&r, 401, "token_signature_invalid");

    let viewer = demo_token("viewer");
    let editor = demo_token("editor");
    let admin = demo_token("admin");
    let r = send(
        &chain,
        "GET",
        "/admin",
        &[("authorization", &bearer(&viewer))],
    );
    assert_problem(&r, 403, "forbidden");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.contains("error=\"insufficient_scope\"")));
    assert_eq!(
        send(
            &chain,
            "GET",
            "/admin",
            &[("authorization", &bearer(&admin))]
        )
        .status,
        200
    );
    let r = send(
        &chain,
        "POST",
        "/api/orders",
        &[("authorization", &bearer(&viewer))],
    );
    assert_problem(&r, 403, "forbidden");

    // The verified identity reaches the upstream; forged copies never do.
    let r = send(
        &chain,
        "POST",
        "/api/orders",
        &[
            ("authorization", &bearer(&editor)),
            ("x-portcullis-subject", "root"),
            ("x-portcullis-roles", "admin"),
            ("x-portcullis-key-id", "forged"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = chain.upstream.received();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-portcullis-subject"), Some("demo-editor"));
    assert_eq!(last.header("x-portcullis-roles"), Some("editor"));
    assert_eq!(last.header("x-portcullis-auth-method"), Some("jwt"));
    assert_eq!(last.header("x-portcullis-key-id"), None);
    // Exactly the three identity headers auth set, each once: no forged copy alongside.
    let mut ours: Vec<(&str, &str)> = last
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-portcullis-"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    ours.sort();
    assert_eq!(
        ours,
        vec![
            ("x-portcullis-auth-method", "jwt"),
            ("x-portcullis-roles", "editor"),
            ("x-portcullis-subject", "demo-editor"),
        ]
    );

    // Metrics are exported, and no token appears in Envoy's log.
    assert!(chain.stat("wasmcustom.portcullis_auth_denied").unwrap_or(0) >= 5);
    assert!(
        chain
            .stat("wasmcustom.portcullis_auth_allowed")
            .unwrap_or(0)
            >= 2
    );
    let log = chain.log();
    for t in [&viewer, &editor, &admin, &forged] {
        assert!(!log.contains(t.as_str()), "a token in the log");
    }
    assert!(!log.contains(demo_secret()), "the secret in the log");
}

/// An ES256 key pair and its public JWK with `kid`.
fn es256(kid: &str) -> (ES256KeyPair, Value) {
    let kp = ES256KeyPair::generate().with_key_id(kid);
    let mut jwk: Value = serde_json::from_str(&kp.public_key().to_jwk()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    (kp, jwk)
}

fn es_token(kp: &ES256KeyPair, iss: &str, sub: &str) -> String {
    let claims = Claims::create(jwt_simple::prelude::Duration::from_mins(10))
        .with_issuer(iss)
        .with_audience(AUD)
        .with_subject(sub);
    kp.sign(claims).unwrap()
}

#[derive(Default)]
struct Idp {
    /// None: answer 503.
    jwks: Option<Value>,
    revoked: Vec<Value>,
    /// How long the JWKS answer takes.
    delay: Duration,
}

fn idp_server(state: Arc<Mutex<Idp>>) -> TestServer {
    TestServer::start(move |req: &Request| {
        let delay = state.lock().unwrap().delay;
        std::thread::sleep(delay);
        let s = state.lock().unwrap();
        match req.url.as_str() {
            "/jwks" | "/oidc/keys" => match &s.jwks {
                Some(doc) => Response::json(200, doc),
                None => Response::status(503),
            },
            "/.well-known/openid-configuration" => Response::json(
                200,
                &json!({"issuer": "https://oidc.test", "jwks_uri": "https://idp.internal/oidc/keys"}),
            ),
            "/revoked" => Response::json(200, &json!({ "revoked": s.revoked })),
            _ => Response::status(404),
        }
    })
}

fn fetches(server: &TestServer, path: &str) -> usize {
    server.received().iter().filter(|r| r.url == path).count()
}

#[test]
fn remote_jwks_fail_closed_rotation_refetch_discovery_and_outage() {
    let state = Arc::new(Mutex::new(Idp::default()));
    let server = idp_server(state.clone());
    let config = json!({
        "providers": [
            {"name": "idp", "issuer": ISS, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "path": "/jwks", "refresh_secs": 300,
                             "retry_secs": 1, "min_refetch_secs": 30, "timeout_ms": 1000}},
            {"name": "oidc", "issuer": "https://oidc.test", "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "authority": "idp.internal",
                             "discovery_path": "/.well-known/openid-configuration",
                             "refresh_secs": 300, "retry_secs": 1}}
        ],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let (k1, jwk1) = es256("k1");
    let (k2, jwk2) = es256("k2");
    let t1 = es_token(&k1, ISS, "alice");
    let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);

    // The endpoint answers 503: no keys were ever loaded, so tokens are refused (fail closed).
    std::thread::sleep(Duration::from_millis(1500));
    assert_problem(&call(&t1), 503, "auth_keys_unavailable");

    // The endpoint recovers: the retry timer loads the keys.
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk1.clone()] }));
    until("keys loaded", Duration::from_secs(10), || {
        call(&t1).status == 200
    });
    let r = call(&t1);
    assert_eq!(
        upstream_header(&r, "x-portcullis-subject").as_deref(),
        Some("alice")
    );

    // Rotation: a token signed with a new key is accepted at once, through the unknown-kid
    // refetch (the timer would only refresh after 300 s).
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk1.clone(), jwk2.clone()] }));
    let before = fetches(&server, "/jwks");
    let t2 = es_token(&k2, ISS, "bob");
    assert_eq!(call(&t2).status, 200);
    assert!(fetches(&server, "/jwks") > before);

    // Made-up kids cannot make us hammer the IdP: at most one refetch per worker per 30 s.
    let (k3, _) = es256("k3");
    let t3 = es_token(&k3, ISS, "mallory");
    let before = fetches(&server, "/jwks");
    for _ in 0..10 {
        assert_problem(&call(&t3), 401, "token_key_unknown");
    }
    let extra = fetches(&server, "/jwks") - before;
    assert!(
        extra <= 2,
        "{extra} refetches for 10 unknown-kid requests on 2 workers"
    );

    // OIDC discovery: the second provider found its JWKS through the discovery document.
    let (ko, jwko) = es256("o1");
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk1.clone(), jwk2.clone(), jwko] }));
    let to = es_token(&ko, "https://oidc.test", "olga");
    until("discovery keys", Duration::from_secs(10), || {
        call(&to).status == 200
    });
    assert!(fetches(&server, "/.well-known/openid-configuration") >= 1);
    assert!(fetches(&server, "/oidc/keys") >= 1);

    // The endpoint goes down: the last good keys keep working.
    state.lock().unwrap().jwks = None;
    drop(server);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(call(&t1).status, 200);
    assert_eq!(call(&es_token(&k2, ISS, "carol")).status, 200);
    assert!(
        chain
            .stat("wasmcustom.portcullis_auth_jwks_fetch_ok")
            .unwrap_or(0)
            >= 2
    );
    assert!(
        chain
            .stat("wasmcustom.portcullis_auth_jwks_fetch_failed")
            .unwrap_or(0)
            >= 1
    );
    assert!(chain.log().contains("no keys yet: failing closed"));
}

/// A request that waits while auth fetches a key keeps its body: the sanitizer after auth still
/// reads all of it (in the chain layout, the chain holds the body while the auth stage waits).
#[test]
fn a_body_sent_while_a_key_is_fetched_still_reaches_the_sanitizer() {
    let state = Arc::new(Mutex::new(Idp::default()));
    let (k1, jwk1) = es256("k1");
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk1.clone()] }));
    let server = idp_server(state.clone());
    let config = json!({
        "providers": [
            {"name": "idp", "issuer": ISS, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "path": "/jwks", "refresh_secs": 300,
                             "retry_secs": 1, "min_refetch_secs": 0, "timeout_ms": 2000}}
        ],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let post = |t: &str, body: &str| {
        reply(
            chain
                .client()
                .post(&chain.url("/echo/comments"))
                .set("authorization", &bearer(t))
                .set("content-type", "application/json")
                .send_string(body),
        )
    };
    let t1 = es_token(&k1, ISS, "alice");
    until("keys loaded", Duration::from_secs(10), || {
        post(&t1, "{}").status == 200
    });

    // A new kid, and a JWKS endpoint that takes 300 ms: each request below waits for a
    // refetch, and its body arrives meanwhile.
    let (k2, jwk2) = es256("k2");
    let (k3, jwk3) = es256("k3");
    {
        let mut s = state.lock().unwrap();
        s.jwks = Some(json!({ "keys": [jwk1.clone(), jwk2.clone()] }));
        s.delay = Duration::from_millis(300);
    }
    let before = fetches(&server, "/jwks");
    let r = post(&es_token(&k2, ISS, "bob"), r#"{"comment": "' OR 1=1--"}"#);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["reason"], "sqli_detected", "{}", r.body);

    // Another kid, unknown to every worker until the next refetch.
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk1, jwk2, jwk3] }));

    let body = format!(r#"{{"comment": "{}"}}"#, "fine words ".repeat(2000));
    let r = post(&es_token(&k3, ISS, "carol"), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["body"].as_str(), Some(body.as_str()));
    assert_eq!(
        upstream_header(&r, "x-portcullis-subject").as_deref(),
        Some("carol")
    );
    assert!(fetches(&server, "/jwks") >= before + 2);

    // The same over HTTP/2 with request trailers after the body: the body is still inspected.
    let (k4, jwk4) = es256("k4");
    state.lock().unwrap().jwks = Some(json!({ "keys": [jwk4] }));
    let auth = bearer(&es_token(&k4, ISS, "dave"));
    let r = post_with_trailers(
        &chain,
        "/echo/comments",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        br#"{"comment": "' OR 1=1--"}"#,
        &[("x-checksum", "abc")],
    )
    .unwrap();
    assert_eq!(r.json()["reason"], "sqli_detected", "{:?}", r.json());
    assert!(fetches(&server, "/jwks") >= before + 3);
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    hmac_sha256::HMAC::mac(msg, key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hs_token(sub: &str, jti: &str) -> String {
    let claims = Claims::with_custom_claims(
        json!({"roles": ["viewer"]}),
        jwt_simple::prelude::Duration::from_mins(10),
    )
    .with_issuer(ISS)
    .with_audience(AUD)
    .with_subject(sub)
    .with_jwt_id(jti);
    HS256Key::from_bytes(demo_secret().as_bytes())
        .authenticate(claims)
        .unwrap()
}

#[test]
fn api_key_rotation_and_revocation_by_polling() {
    let state = Arc::new(Mutex::new(Idp::default()));
    let server = idp_server(state.clone());
    let pepper = api_key_pepper().as_bytes();
    let config = json!({
        "providers": [{"name": "hs", "issuer": ISS, "audiences": [AUD], "roles_claim": "roles",
                       "hmac_keys": [{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]}],
        "api_keys": {"pepper_env": "PORTCULLIS_API_KEY_PEPPER", "keys": [
            {"id": "billing-2025", "hash": hmac_hex(pepper, b"sk_old_0123456789"), "owner": "billing", "roles": ["viewer"]},
            {"id": "billing-2026", "hash": hmac_hex(pepper, b"sk_new_0123456789"), "owner": "billing", "roles": ["viewer"]},
            {"id": "retired", "hash": hmac_hex(pepper, b"sk_dead_0123456789"), "owner": "billing", "active": false}
        ]},
        "roles": {"viewer": {"permissions": ["api:read"]}},
        "rules": [{"path": "/**", "any_of": ["api:read"]}],
        "revocation": {"poll": {"cluster": "auth_idp", "path": "/revoked", "interval_secs": 1}}
    });
    let started = Instant::now();
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );

    // Both keys of a rotation work; the key id (never the key) goes upstream.
    for (key, id) in [
        ("sk_old_0123456789", "billing-2025"),
        ("sk_new_0123456789", "billing-2026"),
    ] {
        let r = send(&chain, "GET", "/echo/k", &[("x-api-key", key)]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            upstream_header(&r, "x-portcullis-key-id").as_deref(),
            Some(id)
        );
        assert_eq!(
            upstream_header(&r, "x-portcullis-auth-method").as_deref(),
            Some("api_key")
        );
        assert_eq!(upstream_header(&r, "x-api-key"), None);
    }
    assert_problem(
        &send(&chain, "GET", "/echo/k", &[("x-api-key", "sk_guess")]),
        401,
        "api_key_invalid",
    );
    assert_problem(
        &send(
            &chain,
            "GET",
            "/echo/k",
            &[("x-api-key", "sk_dead_0123456789")],
        ),
        401,
        "api_key_inactive",
    );

    // Revocation by polling: a token in use (and cached) is refused within one poll interval
    // once the list names its jti; another token of the same user is not affected.
    let stolen = hs_token("alice", "jti-stolen");
    let other = hs_token("alice", "jti-fine");
    let call = |t: &str| send(&chain, "GET", "/echo/t", &[("authorization", &bearer(t))]);
    for _ in 0..4 {
        assert_eq!(call(&stolen).status, 200);
    }
    until("first poll", Duration::from_secs(10), || {
        fetches(&server, "/revoked") >= 1
    });
    state.lock().unwrap().revoked = vec![json!({"jti": "jti-stolen"})];
    let took = until("revocation propagated", Duration::from_secs(5), || {
        // Both workers must refuse: two calls in a row.
        call(&stolen).status == 401 && call(&stolen).status == 401
    });
    eprintln!("revocation propagated in {took:?} (poll interval 1 s)");
    assert_problem(&call(&stolen), 401, "token_revoked");
    assert_eq!(call(&other).status, 200);
    // Revoking the subject's earlier tokens takes the other one too.
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    state
        .lock()
        .unwrap()
        .revoked
        .push(json!({"sub": "alice", "issued_before": cutoff}));
    until("subject revoked", Duration::from_secs(5), || {
        call(&other).status == 401
    });
    assert!(
        chain
            .stat("wasmcustom.portcullis_auth_revocation_poll_ok")
            .unwrap_or(0)
            >= 2
    );
    // One poll per interval for the whole Envoy (a shared lease), not one per VM: with the
    // main thread's VM and two workers', per-VM polling would make about three a second.
    let polls = fetches(&server, "/revoked") as u64;
    let uptime = started.elapsed().as_secs() + 1;
    assert!(polls <= uptime + 1, "{polls} polls in at most {uptime} s");
}

#[test]
fn shadow_mode_lets_through_and_signals() {
    let config = std::fs::read_to_string(portcullis_tests::repo().join("envoy/filters/auth.json"))
        .unwrap()
        .replace("\"mode\": \"enforce\"", "\"mode\": \"shadow\"");
    let chain = Chain::start_with(Options::default().filter_config("auth", &config));
    let r = send(&chain, "GET", "/admin/x", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = chain.upstream.received();
    let last = seen.last().unwrap();
    assert_eq!(
        last.header("x-portcullis-would-deny"),
        Some("auth:credentials_missing")
    );
    let viewer = demo_token("viewer");
    let r = send(
        &chain,
        "GET",
        "/admin/x",
        &[("authorization", &bearer(&viewer))],
    );
    assert_eq!(r.status, 200);
    let seen = chain.upstream.received();
    let last = seen.last().unwrap();
    assert_eq!(
        last.header("x-portcullis-would-deny"),
        Some("auth:forbidden")
    );
    assert_eq!(last.header("x-portcullis-subject"), Some("demo-viewer"));
    assert_eq!(
        chain.stat("wasmcustom.portcullis_auth_shadow_denied"),
        Some(2)
    );
    assert_eq!(
        chain.stat("wasmcustom.portcullis_auth_denied").unwrap_or(0),
        0
    );
}

#[test]
fn configuration_errors_are_refused_naming_the_field() {
    let (status, log) = envoy_refuses(Options::default().filter_config(
        "auth",
        r#"{"providers":[{"name":"x","issuer":"https://x","audiences":["a"],"hmac_keys":[{"alg":"HS256","secret_env":"PORTCULLIS_NOT_PASSED"}]}]}"#,
    ));
    assert!(!status.success());
    assert!(
        log.contains("auth: providers[0].hmac_keys[0].secret_env: environment variable PORTCULLIS_NOT_PASSED is not set"),
        "{log}"
    );
    let (status, log) = envoy_refuses(Options::default().filter_config(
        "auth",
        r#"{"rules":[{"path":"/a","any_of":["no spaces"]}]}"#,
    ));
    assert!(!status.success());
    assert!(
        log.contains("auth: rules[0].any_of[0]: invalid permission"),
        "{log}"
    );
}

// ---- Issue 13, part B: what identity providers publish, and the bypasses around keys ----

/// An IdP endpoint that answers each path with a fixed JSON document (others 404) and records
/// the `host` each request named.
fn json_idp(routes: Vec<(&'static str, Value)>) -> TestServer {
    let routes = Arc::new(Mutex::new(routes));
    TestServer::start(move |req: &Request| {
        let routes = routes.lock().unwrap();
        match routes.iter().find(|(p, _)| *p == req.url) {
            Some((_, doc)) => Response::json(200, doc),
            None => Response::status(404),
        }
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// HS256 token of the demo secret for `iss`, with extra custom claims.
fn hs_token_with(iss: &str, aud: &str, sub: &str, jti: &str, custom: Value) -> String {
    let claims = Claims::with_custom_claims(custom, jwt_simple::prelude::Duration::from_mins(10))
        .with_issuer(iss)
        .with_audience(aud)
        .with_subject(sub)
        .with_jwt_id(jti);
    HS256Key::from_bytes(demo_secret().as_bytes())
        .authenticate(claims)
        .unwrap()
}

/// Finding 4: a token that leaves `kid` out must not slip past a revocation of its key's kid.
#[test]
fn a_token_without_kid_cannot_dodge_a_revoked_kid() {
    let kp = ES256KeyPair::generate();
    let mut jwk: Value = serde_json::from_str(&kp.public_key().to_jwk()).unwrap();
    jwk["kid"] = json!("leaked");
    jwk["alg"] = json!("ES256");
    // Signed by the leaked key, with no `kid` in the header.
    let kidless = es_token(&kp, ISS, "mallory");
    let with_kid = es_token(
        &ES256KeyPair::from_bytes(&kp.to_bytes())
            .unwrap()
            .with_key_id("leaked"),
        ISS,
        "mallory",
    );
    for any_key in [false, true] {
        let mut config = json!({
            "providers": [{"name": "idp", "issuer": ISS, "audiences": [AUD],
                           "jwks": {"keys": [jwk.clone()]}}],
            "revocation": {"entries": [{"kid": "leaked"}]},
            "rules": [{"path": "/**"}]
        });
        if any_key {
            config["providers"][0]["kidless_tokens_any_key"] = json!(true);
        }
        let chain =
            Chain::start_with(Options::default().filter_config("auth", &config.to_string()));
        let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);
        assert_problem(&call(&with_kid), 401, "token_revoked");
        // By default a kid-less token meets no key that has a kid; opted in, the key that
        // verified it is the one whose kid is checked.
        let expected = if any_key {
            "token_revoked"
        } else {
            "token_key_unknown"
        };
        assert_problem(&call(&kidless), 401, expected);
    }
}

/// Finding 5: a full revocation table refuses (and reports) the insert instead of evicting a
/// live revocation; a provider fails closed on it unless configured otherwise; a table too
/// small for what polling may bring is refused at load.
#[test]
fn a_full_revocation_table_never_drops_a_live_revocation() {
    let (status, log) = envoy_refuses(Options::default().filter_config(
        "auth",
        &json!({
            "providers": [{"name": "hs", "issuer": ISS, "audiences": [AUD],
                           "hmac_keys": [{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]}],
            "revocation": {"slots": 256, "ways": 8,
                           "poll": {"cluster": "auth_idp", "path": "/revoked", "max_entries": 10000}}
        })
        .to_string(),
    ));
    assert!(!status.success());
    assert!(
        log.contains("auth: revocation.slots: 256 slots of 8 ways hold 1024"),
        "{log}"
    );

    let state = Arc::new(Mutex::new(Idp::default()));
    let server = idp_server(state.clone());
    const OPEN: &str = "https://open.idp.test";
    let hmac = json!([{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]);
    let config = json!({
        "providers": [
            {"name": "closed", "issuer": ISS, "audiences": [AUD], "hmac_keys": hmac},
            {"name": "open", "issuer": OPEN, "audiences": [AUD], "hmac_keys": hmac,
             "revocation_table_full": "fail_open"}
        ],
        "rules": [{"path": "/**"}],
        // One bucket of two entries: the third live revocation cannot fit.
        "revocation": {"slots": 1, "ways": 2,
                       "poll": {"cluster": "auth_idp", "path": "/revoked", "interval_secs": 1,
                                "max_entries": 1}}
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let call = |t: &str| send(&chain, "GET", "/echo/t", &[("authorization", &bearer(t))]);
    let stolen = hs_token_with(OPEN, AUD, "alice", "jti-a", json!({}));
    assert_eq!(call(&stolen).status, 200);
    let now = now_secs();
    // Each poll brings one entry; entries stay until they expire, so they pile up. The stolen
    // token's entry expires first: the one an evicting table would drop.
    for (jti, ttl) in [("jti-a", 600), ("jti-b", 700), ("jti-c", 800)] {
        state.lock().unwrap().revoked = vec![json!({"jti": jti, "expires_at": now + ttl})];
        let before = fetches(&server, "/revoked");
        until("a poll", Duration::from_secs(10), || {
            fetches(&server, "/revoked") >= before + 2
        });
    }
    until("refusal reported", Duration::from_secs(10), || {
        chain
            .stat("wasmcustom.portcullis_auth_revocation_table_full")
            .unwrap_or(0)
            >= 1
    });
    assert!(
        chain.log().contains("revocation table full"),
        "{}",
        chain.log()
    );
    // The stolen token stays refused on every worker: nothing was evicted.
    for _ in 0..4 {
        assert_problem(&call(&stolen), 401, "token_revoked");
    }
    // The fail-open provider keeps serving other tokens; the fail-closed one refuses them.
    assert_eq!(
        call(&hs_token_with(OPEN, AUD, "bob", "jti-x", json!({}))).status,
        200
    );
    assert_problem(
        &call(&hs_token_with(ISS, AUD, "bob", "jti-y", json!({}))),
        503,
        "auth_revocation_table_full",
    );
}

/// Finding 6: the IdP cluster speaks TLS by default, and a discovered `jwks_uri` over plain
/// HTTP is refused unless the provider allows it.
#[test]
fn keys_never_travel_in_plain_text_by_default() {
    let (kp, jwk) = es256("k1");
    let server = json_idp(vec![
        ("/jwks", json!({ "keys": [jwk.clone()] })),
        (
            "/.well-known/openid-configuration",
            json!({"issuer": ISS, "jwks_uri": "http://idp/jwks"}),
        ),
        (
            "/lax/.well-known/openid-configuration",
            json!({"issuer": "https://lax.test", "jwks_uri": "http://idp/jwks"}),
        ),
    ]);
    let config = json!({
        "providers": [
            {"name": "strict", "issuer": ISS, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "discovery_path": "/.well-known/openid-configuration",
                             "retry_secs": 1}},
            {"name": "lax", "issuer": "https://lax.test", "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "discovery_path": "/lax/.well-known/openid-configuration",
                             "retry_secs": 1, "allow_insecure_http": true}}
        ],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);
    until("lax provider's keys", Duration::from_secs(10), || {
        call(&es_token(&kp, "https://lax.test", "a")).status == 200
    });
    until("refusal counted", Duration::from_secs(10), || {
        chain
            .stat("wasmcustom.portcullis_auth_discovery_refused")
            .unwrap_or(0)
            >= 1
    });
    assert_problem(
        &call(&es_token(&kp, ISS, "a")),
        503,
        "auth_keys_unavailable",
    );
    assert!(chain.log().contains("is plain HTTP"), "{}", chain.log());
    drop(chain);

    // With the template's default (TLS on), the plain-HTTP test endpoint cannot serve keys.
    let config = json!({
        "providers": [{"name": "idp", "issuer": ISS, "audiences": [AUD],
                       "remote_jwks": {"cluster": "auth_idp", "path": "/jwks", "retry_secs": 1}}],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .set("AUTH_IDP_TLS=on")
            .set("AUTH_IDP_SNI=idp.test")
            .filter_config("auth", &config.to_string()),
    );
    until("a failed fetch", Duration::from_secs(10), || {
        chain
            .stat("wasmcustom.portcullis_auth_jwks_fetch_failed")
            .unwrap_or(0)
            >= 1
    });
    assert_problem(
        &send(
            &chain,
            "GET",
            "/echo/x",
            &[("authorization", &bearer(&es_token(&kp, ISS, "a")))],
        ),
        503,
        "auth_keys_unavailable",
    );
}

/// Finding 8: `audiences` is required unless waived, and a partner's `admin` is not ours.
#[test]
fn audiences_are_required_and_roles_are_scoped_per_issuer() {
    let (status, log) = envoy_refuses(Options::default().filter_config(
        "auth",
        &json!({"providers": [{"name": "idp", "issuer": ISS,
                               "hmac_keys": [{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]}]})
        .to_string(),
    ));
    assert!(!status.success());
    assert!(
        log.contains("auth: providers[0].audiences: name the audiences"),
        "{log}"
    );

    const PARTNER: &str = "https://partner.test";
    let hmac = json!([{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]);
    let config = json!({
        "providers": [
            {"name": "ours", "issuer": ISS, "audiences": [AUD], "hmac_keys": hmac, "roles_claim": "roles"},
            {"name": "partner", "issuer": PARTNER, "allow_any_audience": true, "hmac_keys": hmac,
             "roles_claim": "roles", "role_prefix": "partner:"}
        ],
        "roles": {"admin": {"permissions": ["*"]}, "partner:viewer": {"permissions": ["api:read"]}},
        "rules": [{"path": "/admin/**", "any_of": ["admin:access"]},
                  {"path": "/**", "any_of": ["api:read"]}]
    });
    let chain = Chain::start_with(Options::default().filter_config("auth", &config.to_string()));
    let call = |p: &str, t: &str| send(&chain, "GET", p, &[("authorization", &bearer(t))]);
    let admin = json!({"roles": ["admin"]});
    assert_eq!(
        call(
            "/admin/x",
            &hs_token_with(ISS, AUD, "a", "1", admin.clone())
        )
        .status,
        200
    );
    // A token of ours for another API is refused.
    assert_problem(
        &call(
            "/admin/x",
            &hs_token_with(ISS, "other-api", "a", "2", admin.clone()),
        ),
        401,
        "token_audience_mismatch",
    );
    let partner_admin = hs_token_with(PARTNER, "anything", "p", "3", admin);
    assert_problem(&call("/admin/x", &partner_admin), 403, "forbidden");
    let r = call(
        "/echo/x",
        &hs_token_with(PARTNER, "x", "p", "4", json!({"roles": ["viewer"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        upstream_header(&r, "x-portcullis-roles").as_deref(),
        Some("partner:viewer")
    );
}

/// A JWK without `alg` and the private parts dropped: the shape Entra ID, Cognito and Ping
/// publish.
fn rsa_jwk_without_alg(kp: &RS256KeyPair, kid: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(&kp.public_key().to_jwk()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk.as_object_mut().unwrap().remove("alg");
    jwk
}

const TEST_RSA_PEM: &str = include_str!("../../filters/auth/src/testdata/TEST-ONLY-rsa2048.pem");

fn rs_claims(iss: &str) -> JWTClaims<NoCustomClaims> {
    Claims::create(jwt_simple::prelude::Duration::from_mins(10))
        .with_issuer(iss)
        .with_audience(AUD)
        .with_subject("rsa-user")
}

/// Findings 11 and 12: key sets as IdPs publish them (RSA keys without `alg`, encryption keys
/// and foreign key types beside them), inline and fetched.
#[test]
fn key_sets_as_identity_providers_publish_them() {
    let rs = RS256KeyPair::from_pem(TEST_RSA_PEM)
        .unwrap()
        .with_key_id("r1");
    let ps = PS256KeyPair::from_pem(TEST_RSA_PEM)
        .unwrap()
        .with_key_id("r1");
    let jwk = rsa_jwk_without_alg(&rs, "r1");
    let mut enc = jwk.clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("for-encryption");
    let odd = json!({"kty": "OKP", "crv": "X25519", "kid": "odd-curve", "x": "AAAA"});
    let published = json!({ "keys": [enc, odd, jwk] });
    let server = json_idp(vec![("/jwks", published.clone())]);
    const REMOTE: &str = "https://remote.test";
    let config = json!({
        "providers": [
            {"name": "inline", "issuer": ISS, "audiences": [AUD], "jwks": published},
            {"name": "remote", "issuer": REMOTE, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "path": "/jwks", "retry_secs": 1}}
        ],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);
    for iss in [ISS, REMOTE] {
        until("RS256 accepted", Duration::from_secs(10), || {
            call(&rs.sign(rs_claims(iss)).unwrap()).status == 200
        });
        assert_eq!(call(&ps.sign(rs_claims(iss)).unwrap()).status, 200, "{iss}");
    }
    let log = chain.log();
    assert!(log.contains("for-encryption"), "{log}");
    assert!(log.contains("odd-curve"), "{log}");
    assert!(
        chain
            .stat("wasmcustom.portcullis_auth_jwks_keys_skipped")
            .unwrap_or(0)
            >= 4
    );
    // An inline set with no usable key at all is refused at load.
    let (status, log) = envoy_refuses(
        Options::default().filter_config(
            "auth",
            &json!({"providers": [{"name": "idp", "issuer": ISS, "audiences": [AUD],
                               "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}}]})
            .to_string(),
        ),
    );
    assert!(!status.success());
    assert!(
        log.contains("auth: providers[0].jwks: JWKS has no usable key"),
        "{log}"
    );
}

/// An ES512 key pair (P-521) from fixed secret bytes, and its public JWK without `alg`.
fn es512_pair() -> (p521::ecdsa::SigningKey, Value) {
    use base64::Engine as _;
    let sk = {
        // A scalar below the group order: P-521's top byte holds one bit.
        let mut secret = [7u8; 66];
        secret[0] = 0;
        p521::ecdsa::SigningKey::from_slice(&secret).unwrap()
    };
    let point = sk.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-521", "kid": "p521",
                     "x": b64(&bytes[1..67]), "y": b64(&bytes[67..133])});
    (sk, jwk)
}

fn es512_token(sk: &p521::ecdsa::SigningKey, payload: &Value) -> String {
    use base64::Engine as _;
    use p521::ecdsa::signature::Signer;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES512","kid":"p521"}"#),
        b64(payload.to_string().as_bytes())
    );
    let sig: p521::ecdsa::Signature = sk.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

/// Finding 13: ES512 (P-521) tokens verify.
#[test]
fn es512_tokens_are_verified() {
    let (sk, jwk) = es512_pair();
    let config = json!({
        "providers": [{"name": "idp", "issuer": ISS, "audiences": [AUD], "jwks": {"keys": [jwk]}}],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(Options::default().filter_config("auth", &config.to_string()));
    let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);
    let now = now_secs();
    let good = json!({"iss": ISS, "aud": AUD, "sub": "p521-user", "iat": now, "exp": now + 600});
    let r = call(&es512_token(&sk, &good));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        upstream_header(&r, "x-portcullis-subject").as_deref(),
        Some("p521-user")
    );
    let mut expired = good.clone();
    expired["exp"] = json!(now - 3600);
    assert_problem(&call(&es512_token(&sk, &expired)), 401, "token_expired");
    let mut forged = es512_token(&sk, &good);
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_problem(&call(&forged), 401, "token_signature_invalid");
}

/// Finding 14: tokens up to 16 KiB (group claims) pass by default.
#[test]
fn tokens_of_twelve_kib_pass_by_default() {
    let groups: Vec<String> = (0..300)
        .map(|i| format!("group-{i:04}-{}", "x".repeat(20)))
        .collect();
    let token = hs_token_with(
        "https://demo.portcullis.invalid",
        "portcullis-demo-api",
        "big",
        "j",
        json!({ "roles": ["viewer"], "groups": groups }),
    );
    assert!(token.len() > 12 * 1024, "{}", token.len());
    let chain = Chain::start();
    let r = send(
        &chain,
        "GET",
        "/api/orders",
        &[("authorization", &bearer(&token))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Finding 15: OAuth scopes grant permissions verbatim (string or array), and only exactly.
#[test]
fn scopes_authorise_requests() {
    let hmac = json!([{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]);
    const ARRAY: &str = "https://array.test";
    let config = json!({
        "providers": [
            {"name": "string", "issuer": ISS, "audiences": [AUD], "hmac_keys": hmac, "scopes_claim": "scope"},
            {"name": "array", "issuer": ARRAY, "audiences": [AUD], "hmac_keys": hmac, "scopes_claim": "scp"}
        ],
        "rules": [{"path": "/echo/write", "methods": ["POST"], "any_of": ["write"]},
                  {"path": "/**"}]
    });
    let chain = Chain::start_with(Options::default().filter_config("auth", &config.to_string()));
    let post = |t: &str| {
        send(
            &chain,
            "POST",
            "/echo/write",
            &[("authorization", &bearer(t))],
        )
    };
    assert_eq!(
        post(&hs_token_with(
            ISS,
            AUD,
            "a",
            "1",
            json!({"scope": "read write"})
        ))
        .status,
        200
    );
    assert_eq!(
        post(&hs_token_with(
            ARRAY,
            AUD,
            "a",
            "2",
            json!({"scp": ["read", "write"]})
        ))
        .status,
        200
    );
    assert_problem(
        &post(&hs_token_with(
            ISS,
            AUD,
            "a",
            "3",
            json!({"scope": "read writer"}),
        )),
        403,
        "forbidden",
    );
    assert_problem(
        &post(&hs_token_with(ISS, AUD, "a", "4", json!({"scope": "*"}))),
        403,
        "forbidden",
    );
    assert_problem(
        &post(&hs_token_with(
            ARRAY,
            AUD,
            "a",
            "5",
            json!({"scp": ["writer"]}),
        )),
        403,
        "forbidden",
    );
}

/// Finding 16: discovery follows `jwks_uri` to another host through `jwks_cluster`, and says
/// which setting is missing when there is none.
#[test]
fn discovery_follows_jwks_uri_to_another_host() {
    let (kp, jwk) = es256("g1");
    const GOOGLE: &str = "https://accounts.test";
    const OTHER: &str = "https://other.test";
    let keys = json!({ "keys": [jwk] });
    let server = json_idp(vec![
        (
            "/.well-known/openid-configuration",
            json!({"issuer": GOOGLE, "jwks_uri": "https://www.keys.test/oauth2/v3/certs"}),
        ),
        (
            "/other/.well-known/openid-configuration",
            json!({"issuer": OTHER, "jwks_uri": "https://www.keys.test/oauth2/v3/certs"}),
        ),
        ("/oauth2/v3/certs", keys),
    ]);
    let config = json!({
        "providers": [
            {"name": "google", "issuer": GOOGLE, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "authority": "accounts.test",
                             "discovery_path": "/.well-known/openid-configuration",
                             "jwks_cluster": "auth_idp", "retry_secs": 1}},
            {"name": "other", "issuer": OTHER, "audiences": [AUD],
             "remote_jwks": {"cluster": "auth_idp", "authority": "other.test",
                             "discovery_path": "/other/.well-known/openid-configuration",
                             "retry_secs": 1}}
        ],
        "rules": [{"path": "/**"}]
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUTH_IDP_PORT={}", server.port()))
            .filter_config("auth", &config.to_string()),
    );
    let call = |t: &str| send(&chain, "GET", "/echo/x", &[("authorization", &bearer(t))]);
    until("keys from the other host", Duration::from_secs(10), || {
        call(&es_token(&kp, GOOGLE, "g")).status == 200
    });
    // The JWKS was asked of its own host.
    let asked: Vec<String> = server
        .received()
        .iter()
        .filter(|r| r.url == "/oauth2/v3/certs")
        .filter_map(|r| r.header("host").map(str::to_string))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|h| h == "www.keys.test"),
        "{asked:?}"
    );
    until("refusal counted", Duration::from_secs(10), || {
        chain
            .stat("wasmcustom.portcullis_auth_discovery_refused")
            .unwrap_or(0)
            >= 1
    });
    assert_problem(
        &call(&es_token(&kp, OTHER, "o")),
        503,
        "auth_keys_unavailable",
    );
    assert!(
        chain.log().contains("set remote_jwks.jwks_cluster"),
        "{}",
        chain.log()
    );
}

/// Every new provider field is refused at load with a message naming it.
#[test]
fn new_provider_fields_are_refused_naming_the_field() {
    let hmac = json!([{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}]);
    for (field, value, expected) in [
        ("algorithms", json!(["HS256"]), "providers[0].algorithms[0]"),
        ("scopes_claim", json!("a..b"), "providers[0].scopes_claim"),
        ("role_prefix", json!(""), "providers[0].role_prefix"),
    ] {
        let mut p = json!({"name": "p", "issuer": ISS, "audiences": [AUD], "hmac_keys": hmac});
        p[field] = value;
        let (status, log) = envoy_refuses(
            Options::default().filter_config("auth", &json!({ "providers": [p] }).to_string()),
        );
        assert!(!status.success());
        assert!(log.contains(&format!("auth: {expected}")), "{field}: {log}");
    }
}
