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
             "remote_jwks": {"cluster": "auth_idp", "discovery_path": "/.well-known/openid-configuration",
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
        r#"{"providers":[{"name":"x","issuer":"https://x","hmac_keys":[{"alg":"HS256","secret_env":"PORTCULLIS_NOT_PASSED"}]}]}"#,
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
