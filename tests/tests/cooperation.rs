//! The filters together in the real Envoy: what auth publishes (identity, decision) keys the
//! identity rate limits and the audit record; auth's own 401s are strikes for the client-level
//! penalty; shadow signals from several filters accumulate in one header; the audit record tells
//! the whole story of a request without its secrets or payloads. Cache identity isolation through
//! auth is proven in `cache_identity.rs` and not repeated here.

use std::time::{Duration, Instant};

use portcullis_audit::chain::SCHEMA_MARK;
use portcullis_tests::auth::{api_key_pepper, demo_secret};
use portcullis_tests::reply::{reply, Reply};
use portcullis_tests::{Chain, Options};
use serde_json::{json, Value};

const API_KEY: &str = "sk_coop_0123456789abcdef";
const KEY_ID: &str = "reports-2026";

fn send(chain: &Chain, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send_on(&chain.client(), chain, method, path, headers, body)
}

/// `send` on a given client: requests on one kept-alive connection reach the same Envoy worker.
fn send_on(
    client: &ureq::Agent,
    chain: &Chain,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut req = client.request(method, &chain.url(path));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    reply(if body.is_empty() {
        req.call()
    } else {
        req.send_string(body)
    })
}

fn get(chain: &Chain, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(chain, "GET", path, headers, "")
}

/// A token signed with the demo secret for any subject (the demo issuer and audience).
fn token(subject: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    portcullis_devkit::token::mint(demo_secret().as_bytes(), subject, &roles, 600)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    hmac_sha256::HMAC::mac(msg, key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The demo provider and roles, one API key, and the given rules.
fn auth_config(mode: &str, rules: Value) -> String {
    json!({
        "mode": mode,
        "providers": [{
            "name": "demo",
            "issuer": "https://demo.portcullis.invalid",
            "audiences": ["portcullis-demo-api"],
            "hmac_keys": [{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}],
            "roles_claim": "roles"
        }],
        "api_keys": {"pepper_env": "PORTCULLIS_API_KEY_PEPPER", "keys": [
            {"id": KEY_ID, "hash": hmac_hex(api_key_pepper().as_bytes(), API_KEY.as_bytes()),
             "owner": "reports-service", "roles": ["viewer"]}
        ]},
        "roles": {
            "viewer": {"permissions": ["api:read"]},
            "editor": {"permissions": ["api:write"], "inherits": ["viewer"]},
            "admin": {"permissions": ["*"], "inherits": ["editor"]}
        },
        "rules": rules
    })
    .to_string()
}

/// Anything under `/echo/public/` and the product catalogue are public; the rest needs a reader.
fn rules() -> Value {
    json!([
        {"path": "/echo/public/**", "public": true},
        {"path": "/api/products/**", "methods": ["GET", "HEAD"], "public": true},
        {"path": "/**", "any_of": ["api:read"]}
    ])
}

fn assert_problem(r: &Reply, status: u16, reason: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.body
    );
    let p = r.json();
    assert_eq!(p["reason"], reason, "{p}");
    assert!(
        p["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{p}"
    );
}

/// Every audit record in Envoy's log, in order.
fn records(chain: &Chain) -> Vec<Value> {
    chain
        .log()
        .lines()
        .filter_map(|l| l.find(SCHEMA_MARK).map(|at| l[at..].to_string()))
        .map(|r| serde_json::from_str(&r).unwrap_or_else(|e| panic!("{e}: {r}")))
        .collect()
}

/// Waits until the audit filter has written `n` records (it writes at stream end).
fn wait_records(chain: &Chain, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = records(chain);
        if all.len() >= n {
            return all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} audit records, expected {n}: {all:#?}",
            all.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one record of the request with this id.
fn record_of<'a>(all: &'a [Value], request_id: &str) -> &'a Value {
    all.iter()
        .find(|r| r["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no record for request {request_id}: {all:#?}"))
}

fn request_id(r: &Reply) -> String {
    r.json()["request_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no request_id in {}", r.body))
}

/// The request id the upstream saw on its last request (the echo body is not always JSON-able).
fn last_upstream_request_id(chain: &Chain) -> String {
    chain
        .upstream
        .received()
        .pop()
        .and_then(|r| r.header("x-request-id").map(str::to_string))
        .unwrap_or_else(|| panic!("the upstream saw no request"))
}

fn stat(chain: &Chain, name: &str) -> u64 {
    chain.stat(&format!("wasmcustom.{name}")).unwrap_or(0)
}

#[test]
fn identity_rate_limits_key_on_what_auth_verified() {
    let identity_limits = json!({"limits": [
        {"name": "per-user", "limit": 3, "window": 60, "key": ["subject"],
         "tiers": [{"role": "admin", "limit": 6}, {"role": "viewer", "limit": 2}]},
        {"name": "per-api-key", "limit": 1, "window": 60, "key": ["key_id"]}
    ]});
    let chain = Chain::start_with(
        Options::default()
            .filter_config("auth", &auth_config("enforce", rules()))
            .filter_config("ratelimit-identity", &identity_limits.to_string()),
    );
    let alice = bearer(&token("alice", &["viewer"]));
    let bob = bearer(&token("bob", &["viewer"]));
    let carol = bearer(&token("carol", &["editor"]));
    let root = bearer(&token("root", &["admin"]));
    let statuses = |auth: &str, n: usize, extra: &[(&str, &str)]| -> Vec<u16> {
        (0..n)
            .map(|_| {
                let mut h = vec![("authorization", auth)];
                h.extend_from_slice(extra);
                get(&chain, "/echo/x", &h).status
            })
            .collect()
    };

    // Viewer tier: 2 each, per subject; alice spending hers leaves bob's untouched.
    assert_eq!(statuses(&alice, 3, &[]), [200, 200, 429]);
    assert_eq!(statuses(&bob, 3, &[]), [200, 200, 429]);
    // No tier for editor: the limit itself (3). Admin tier: 6.
    assert_eq!(statuses(&carol, 4, &[]), [200, 200, 200, 429]);
    assert_eq!(statuses(&root, 7, &[]), [200, 200, 200, 200, 200, 200, 429]);

    // The refusal names the limit and comes from the identity instance.
    let refused = get(&chain, "/echo/x", &[("authorization", &alice)]);
    assert_problem(&refused, 429, "rate_limited");
    assert!(refused.body.contains("per-user"), "{}", refused.body);

    // Forged identity headers change nothing: alice stays limited whatever she claims, and an
    // anonymous request claiming a subject is not counted as that subject.
    let forged = [
        ("x-portcullis-subject", "dave"),
        ("x-portcullis-roles", "admin"),
        ("x-portcullis-key-id", "someone-else"),
    ];
    assert_eq!(statuses(&alice, 1, &forged), [429]);
    // ... and frank claiming to be the exhausted alice is counted as frank, and named so upstream.
    let frank = bearer(&token("frank", &["viewer"]));
    let claims_alice = [("x-portcullis-subject", "alice")];
    assert_eq!(statuses(&frank, 1, &claims_alice), [200]);
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(seen.header("x-portcullis-subject"), Some("frank"));
    let fresh = bearer(&token("erin", &["viewer"]));
    for _ in 0..4 {
        let r = get(
            &chain,
            "/echo/public/x",
            &[
                ("x-portcullis-subject", "erin"),
                ("x-portcullis-roles", "viewer"),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let seen = chain.upstream.received().pop().unwrap();
        assert_eq!(seen.header("x-portcullis-subject"), None);
    }
    // erin's real budget is still whole: 2 viewer requests.
    assert_eq!(statuses(&fresh, 3, &[]), [200, 200, 429]);

    // The API key id is a key of its own: 1 per minute for the key, whatever its subject.
    let key = [("x-api-key", API_KEY)];
    let first = get(&chain, "/echo/k", &key);
    assert_eq!(first.status, 200, "{}", first.body);
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(seen.header("x-portcullis-key-id"), Some(KEY_ID));
    assert_eq!(
        seen.header("x-api-key"),
        None,
        "the key never goes upstream"
    );
    let second = get(&chain, "/echo/k", &key);
    assert_problem(&second, 429, "rate_limited");
    assert!(second.body.contains("per-api-key"), "{}", second.body);

    assert!(
        stat(
            &chain,
            "portcullis_ratelimit_ratelimit_identity_per_user_limited"
        ) >= 6
    );
}

#[test]
fn auth_failures_are_strikes_for_the_client_penalty() {
    let client_limits = json!({
        "limits": [{"name": "per-ip", "limit": 1000, "window": 1, "key": ["client_ip"]}],
        "penalties": {"key": ["client_ip"], "strikes": 3, "strike_window": 60,
                      "from_limits": false, "from_statuses": [401], "bans": [60], "status": 403}
    });
    let chain = Chain::start_with(
        Options::default()
            .filter_config("auth", &auth_config("enforce", rules()))
            .filter_config("ratelimit-client", &client_limits.to_string()),
    );
    let good = bearer(&token("alice", &["viewer"]));
    assert_eq!(
        get(&chain, "/echo/x", &[("authorization", &good)]).status,
        200
    );
    let reached = chain.upstream.received().len();

    // Three bad tokens: auth answers each itself (401), and each is a strike.
    for bad in ["not-a-token", "a.b.c", "x.y.z"] {
        let r = get(&chain, "/echo/x", &[("authorization", &bearer(bad))]);
        assert_problem(&r, 401, "token_malformed");
    }
    // Banned: even a valid token is refused at the front, before auth and the upstream.
    let banned = get(&chain, "/echo/x", &[("authorization", &good)]);
    assert_problem(&banned, 403, "banned");
    assert!(
        banned.header("retry-after").is_some(),
        "{:?}",
        banned.headers
    );
    let public = get(&chain, "/echo/public/x", &[]);
    assert_problem(&public, 403, "banned");
    assert_eq!(
        chain.upstream.received().len(),
        reached,
        "nothing reached the upstream after the first request"
    );
    assert_eq!(
        stat(&chain, "portcullis_ratelimit_ratelimit_client_strikes"),
        3
    );
    assert_eq!(
        stat(&chain, "portcullis_ratelimit_ratelimit_client_bans"),
        1
    );
    assert!(stat(&chain, "portcullis_ratelimit_ratelimit_client_banned") >= 2);

    // The audit story: the third 401 started the ban (a security event of ratelimit-client,
    // published on the response path), and the banned requests never reached auth.
    let all = wait_records(&chain, 6);
    let failures: Vec<&Value> = all.iter().filter(|r| r["http"]["status"] == 401).collect();
    assert_eq!(failures.len(), 3, "{all:#?}");
    for (n, r) in failures.iter().enumerate() {
        assert_eq!(r["reason"], "auth:token_malformed", "{r}");
        let started = r["decisions"]["ratelimit-client"]["security_event"] == true;
        assert_eq!(started, n == 2, "failure {}: {r}", n + 1);
    }
    assert_eq!(
        failures[2]["security"]["events"],
        json!(["ratelimit-client:ban_started"]),
        "{}",
        failures[2]
    );
    let banned: Vec<&Value> = all.iter().filter(|r| r["http"]["status"] == 403).collect();
    assert_eq!(banned.len(), 2, "{all:#?}");
    for r in banned {
        assert_eq!(r["reason"], "ratelimit-client:banned", "{r}");
        assert!(r["decisions"].get("auth").is_none(), "auth never ran: {r}");
    }
}

#[test]
fn audit_records_carry_identity_and_every_decision() {
    let audit = json!({
        "decisions": ["ratelimit-client", "auth", "ratelimit-identity", "sanitizer", "cache"],
        "auth_failure_threshold": 3
    });
    let chain = Chain::start_with(
        Options::default()
            .filter_config("auth", &auth_config("enforce", rules()))
            .filter_config("audit", &audit.to_string()),
    );
    let jwt = token("alice", &["viewer", "editor"]);

    // 1. A JWT request: identity and the allow decisions of every filter in front.
    let r = get(&chain, "/echo/x", &[("authorization", &bearer(&jwt))]);
    assert_eq!(r.status, 200, "{}", r.body);
    let jwt_id = last_upstream_request_id(&chain);
    // 2. An API key request.
    let r = get(&chain, "/echo/k", &[("x-api-key", API_KEY)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let key_id = last_upstream_request_id(&chain);
    // 3, 4. A cache miss then a hit (public catalogue, no credentials).
    let miss = get(&chain, "/api/products/3", &[]);
    assert_eq!(miss.status, 200);
    let hit = get(&chain, "/api/products/3", &[]);
    assert_eq!(hit.status, 200);
    assert!(
        hit.header("cache-status")
            .is_some_and(|s| s.contains("hit")),
        "{:?}",
        hit.headers
    );
    // 5. A sanitizer block, with a valid token: the payload must not reach the record.
    let attack = "' OR 1=1--";
    let blocked = send(
        &chain,
        "POST",
        "/echo/x",
        &[
            ("authorization", &bearer(&jwt)),
            ("content-type", "application/json"),
        ],
        &json!({"q": attack}).to_string(),
    );
    assert_problem(&blocked, 403, "sqli_detected");
    let blocked_id = request_id(&blocked);

    // 6-8. Three bad tokens from one client: denied by auth, the third flagged as repeated. The
    // audit filter counts failures per worker VM (docs/audit.md), so they share one connection.
    let mut failures = Vec::new();
    let attacker = chain.client();
    for bad in ["bad.token.one", "bad.token.two", "bad.token.three"] {
        let auth = bearer(bad);
        let r = send_on(
            &attacker,
            &chain,
            "GET",
            "/echo/x",
            &[("authorization", &auth)],
            "",
        );
        assert_problem(&r, 401, "token_malformed");
        failures.push(request_id(&r));
    }

    let all = wait_records(&chain, 8);
    let log = chain.log();
    for secret in [jwt.as_str(), API_KEY, attack, "OR 1=1", "bad.token"] {
        assert!(!log.contains(secret), "{secret:?} leaked into Envoy's log");
    }

    let r = record_of(&all, &jwt_id);
    assert_eq!(r["outcome"], "allowed", "{r}");
    assert_eq!(r["identity"]["subject"], "alice", "{r}");
    assert_eq!(r["identity"]["method"], "jwt", "{r}");
    assert_eq!(
        r["identity"]["issuer"], "https://demo.portcullis.invalid",
        "{r}"
    );
    let roles: Vec<&str> = r["identity"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("roles: {r}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        roles.contains(&"viewer") && roles.contains(&"editor"),
        "{r}"
    );
    // The identity instance counted the verified subject in its viewer tier (the demo limits).
    let rl = &r["decisions"]["ratelimit-identity"]["details"];
    assert_eq!(rl["limits"], json!(["per-user"]), "{r}");
    assert_eq!(rl["tiers"], json!([["per-user", "viewer"]]), "{r}");
    for instance in [
        "ratelimit-client",
        "auth",
        "ratelimit-identity",
        "sanitizer",
    ] {
        assert_eq!(
            r["decisions"][instance]["outcome"], "allow",
            "{instance}: {r}"
        );
    }
    assert!(r.get("security").is_none(), "{r}");

    let r = record_of(&all, &key_id);
    assert_eq!(r["identity"]["method"], "api_key", "{r}");
    assert_eq!(r["identity"]["key_id"], KEY_ID, "{r}");
    assert_eq!(r["identity"]["subject"], "reports-service", "{r}");
    assert_eq!(r["identity"]["roles"], json!(["viewer"]), "{r}");
    assert_eq!(
        r["decisions"]["ratelimit-identity"]["outcome"], "allow",
        "{r}"
    );
    let limits = &r["decisions"]["ratelimit-identity"]["details"]["limits"];
    assert!(
        limits
            .as_array()
            .is_some_and(|l| l.contains(&json!("per-api-key"))),
        "the key id reached the per-api-key limit: {r}"
    );

    // The two catalogue requests, in the order they were sent (a hit never reaches the
    // upstream, so its request id is known only to Envoy).
    let catalogue: Vec<&Value> = all
        .iter()
        .filter(|r| r["http"]["path"] == "/api/products/3")
        .collect();
    assert_eq!(catalogue.len(), 2, "{catalogue:#?}");
    let statuses: Vec<&Value> = catalogue
        .iter()
        .map(|r| &r["decisions"]["cache"]["details"]["cache_status"])
        .collect();
    assert_eq!(statuses, [&json!("miss"), &json!("hit")], "{catalogue:#?}");
    for r in catalogue {
        assert_eq!(r["outcome"], "allowed", "{r}");
        assert_eq!(r["decisions"]["cache"]["outcome"], "allow", "{r}");
        assert!(r.get("identity").is_none(), "{r}");
    }

    let r = record_of(&all, &blocked_id);
    assert_eq!(r["outcome"], "denied", "{r}");
    assert_eq!(r["reason"], "sanitizer:sqli_detected", "{r}");
    assert_eq!(r["identity"]["subject"], "alice", "{r}");
    let s = &r["decisions"]["sanitizer"];
    assert_eq!(s["outcome"], "deny", "{r}");
    assert_eq!(s["status"], 403, "{r}");
    assert_eq!(s["security_event"], true, "{r}");
    assert_eq!(s["details"]["category"], "sqli", "{r}");
    assert!(
        s["details"]["rule"]
            .as_str()
            .is_some_and(|x| x.starts_with("sqli")),
        "{r}"
    );
    assert_eq!(r["security"]["severity"], "high", "{r}");
    assert!(
        r["security"]["events"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("sanitizer:sqli_detected"))),
        "{r}"
    );

    for (n, id) in failures.iter().enumerate() {
        let r = record_of(&all, id);
        assert_eq!(r["outcome"], "denied", "{r}");
        assert_eq!(r["reason"], "auth:token_malformed", "{r}");
        assert_eq!(r["decisions"]["auth"]["outcome"], "deny", "{r}");
        assert_eq!(r["decisions"]["auth"]["status"], 401, "{r}");
        assert!(r.get("identity").is_none(), "{r}");
        let flagged = r["security"]["events"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("repeated_auth_failures:3")));
        assert_eq!(flagged, n == 2, "failure {}: {r}", n + 1);
    }
    // Two records were security events: the sanitizer block and the third failure.
    assert_eq!(
        stat(&chain, "portcullis_audit_security_events"),
        2,
        "the security counter counts the sanitizer block and the repeated failures"
    );
}

#[test]
fn shadow_signals_accumulate_in_chain_order() {
    let chain = Chain::start_with(
        Options::default()
            .filter_config("auth", &auth_config("shadow", rules()))
            .filter_config("sanitizer", r#"{"mode": "shadow"}"#),
    );
    // No credentials on a protected route, and a script in the query: both would deny.
    let r = get(
        &chain,
        "/echo/x?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &[("x-portcullis-would-deny", "forged:x")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(
        seen.header("x-portcullis-would-deny"),
        Some("auth:credentials_missing,sanitizer:xss_detected")
    );
    let id = seen
        .header("x-request-id")
        .map(str::to_string)
        .unwrap_or_default();
    // Only one of them: only its signal.
    let r = get(&chain, "/echo/x", &[]);
    assert_eq!(r.status, 200);
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(
        seen.header("x-portcullis-would-deny"),
        Some("auth:credentials_missing")
    );

    let all = wait_records(&chain, 2);
    let rec = record_of(&all, &id);
    assert_eq!(rec["outcome"], "allowed", "{rec}");
    assert_eq!(
        rec["shadow_denied_by"],
        json!(["auth", "sanitizer"]),
        "{rec}"
    );
    assert_eq!(rec["decisions"]["auth"]["outcome"], "shadow_deny", "{rec}");
    assert_eq!(
        rec["decisions"]["sanitizer"]["outcome"], "shadow_deny",
        "{rec}"
    );
}
