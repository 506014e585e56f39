//! The cache's identity-dependent paths (per-user keys, purge permission) through the real auth
//! filter: auth verifies a demo token and publishes the identity (filter state
//! `portcullis.identity`), and the cache keys and authorises on it.

use std::io::Read;

use portcullis_tests::server::{Response, TestServer};
use portcullis_tests::{auth, Chain, Options};

fn call(req: ureq::Request) -> ureq::Response {
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    }
}

fn text(resp: ureq::Response) -> String {
    let mut b = String::new();
    resp.into_reader().read_to_string(&mut b).unwrap();
    b
}

/// A token the demo auth config accepts, for `subject` with `roles`.
fn token(subject: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    portcullis_devkit::token::mint(auth::demo_secret().as_bytes(), subject, &roles, 600).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn chain_in_front_of(server: &TestServer, cache_json: &str) -> Chain {
    Chain::start_with(
        Options::default()
            .set(&format!("UPSTREAM_PORT={}", server.port()))
            .filter_config("cache", cache_json),
    )
}

#[test]
fn two_identities_never_see_each_others_private_responses() {
    // The upstream answers privately with the subject auth forwarded to it.
    let server = TestServer::start(|req| {
        let who = req
            .header("x-portcullis-subject")
            .unwrap_or("nobody")
            .to_string();
        Response::json(200, &serde_json::json!({ "me": who }))
            .header("cache-control", "private, max-age=60")
    });
    let chain = chain_in_front_of(
        &server,
        r#"{"routes":[{"path":"/me","per_user":true},{"path":"/shared"}]}"#,
    );
    let client = chain.client();
    let (alice, bob) = (token("alice", &["viewer"]), token("bob", &["viewer"]));
    let get = |path: &str, token: &str| {
        call(
            client
                .get(&chain.url(path))
                .set("authorization", &bearer(token)),
        )
    };
    let a = get("/me", &alice);
    assert!(
        a.header("cache-status").unwrap_or("").contains("stored"),
        "{:?}",
        a.header("cache-status")
    );
    assert!(text(a).contains("alice"));
    let b = get("/me", &bob);
    assert!(
        b.header("cache-status").unwrap_or("").contains("fwd=miss"),
        "bob does not get alice's entry"
    );
    assert!(text(b).contains("bob"));
    for (who, other, token) in [("alice", "bob", &alice), ("bob", "alice", &bob)] {
        let r = get("/me", token);
        assert!(r.header("cache-status").unwrap_or("").contains("hit"));
        let body = text(r);
        assert!(
            body.contains(who) && !body.contains(other),
            "{who} got {body}"
        );
    }
    assert_eq!(server.received().len(), 2);
    // Without a token auth refuses the route, before the cache could answer.
    assert_eq!(call(client.get(&chain.url("/me"))).status(), 401);
    // A second token of alice's (another jti, same subject) shares her entry.
    let again = get("/me", &token("alice", &["viewer"]));
    assert!(again.header("cache-status").unwrap_or("").contains("hit"));
    // On a shared route a private response is never stored, whoever asks.
    for (who, token) in [("alice", &alice), ("bob", &bob)] {
        let r = get("/shared", token);
        assert!(r
            .header("cache-status")
            .unwrap_or("")
            .ends_with("detail=private"));
        assert!(text(r).contains(who));
    }
}

#[test]
fn purge_by_url_and_tag_needs_the_purge_role() {
    let server = TestServer::start(|req| {
        let tag = if req.url.starts_with("/p/a") {
            "group-a"
        } else {
            "group-b"
        };
        Response::json(200, &serde_json::json!({ "url": req.url }))
            .header("cache-control", "public, max-age=60")
            .header("surrogate-key", &format!("{tag} all"))
    });
    let chain = chain_in_front_of(
        &server,
        r#"{"routes":[{"path":"/p/**"}],"purge":{"path":"/_cache/purge","roles":["admin"]}}"#,
    );
    let client = chain.client();
    let viewer = bearer(&token("v", &["viewer"]));
    let admin = bearer(&token("ops", &["admin"]));
    // Each response is read to the end: a client that hangs up first leaves nothing stored.
    let status = |path: &str| {
        let r = call(client.get(&chain.url(path)).set("authorization", &viewer));
        let status = r.header("cache-status").unwrap_or("").to_string();
        text(r);
        status
    };
    for p in ["/p/a1", "/p/a2", "/p/b1"] {
        assert!(status(p).contains("stored"));
        assert!(status(p).contains("hit"));
    }
    // Authenticated, but not allowed to purge.
    let denied = call(
        client
            .request("PURGE", &chain.url("/p/a1"))
            .set("authorization", &viewer),
    );
    assert_eq!(denied.status(), 403);
    assert_eq!(
        denied.header("content-type"),
        Some("application/problem+json")
    );
    assert!(status("/p/a1").contains("hit"));
    // By URL.
    let purged = call(
        client
            .request("PURGE", &chain.url("/p/a1"))
            .set("authorization", &admin),
    );
    assert_eq!(purged.status(), 200);
    assert_eq!(text(purged), r#"{"purged":1,"status":"purged"}"#);
    assert!(status("/p/a1").contains("fwd=miss"));
    assert!(status("/p/a2").contains("hit"));
    // By tag, through the admin path.
    let purged = call(
        client
            .post(&chain.url("/_cache/purge?tag=group-a"))
            .set("authorization", &admin),
    );
    assert_eq!(text(purged), r#"{"purged":2,"status":"purged"}"#);
    assert!(status("/p/a2").contains("fwd=miss"));
    assert!(status("/p/b1").contains("hit"));
}

/// Auth configured to find the token in a header, a cookie or a query parameter and to take it
/// out before the request goes on (`remove_token`), so the cache never sees `Authorization`.
const AUTH_REMOVING_TOKENS: &str = r#"{
  "providers": [{
    "name": "demo",
    "issuer": "https://demo.portcullis.invalid",
    "audiences": ["portcullis-demo-api"],
    "hmac_keys": [{ "alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET" }],
    "roles_claim": "roles"
  }],
  "token_sources": [{"header": "authorization"}, {"cookie": "session"}, {"query": "access_token"}],
  "remove_token": true,
  "rules": [{"path": "/pub/**", "public": true}, {"path": "/**"}]
}"#;

/// Builds a request for a path with a token.
type RequestFor<'a> = dyn Fn(&str, &str) -> ureq::Request + 'a;

/// Hole: RFC 9111 §3.5 was checked on `Authorization` at the cache stage, after auth had removed
/// the token, so a response to an authenticated request (`max-age` alone, no `public`) was stored
/// under the shared key and served to the next caller, whoever they were.
#[test]
fn authenticated_requests_are_not_stored_on_shared_routes_once_auth_removed_the_token() {
    let server = TestServer::start(|req| {
        let who = req
            .header("x-portcullis-subject")
            .or(req.header("x-api-key"))
            .unwrap_or("nobody")
            .to_string();
        let cc = if req.url.starts_with("/r/public") {
            "public, max-age=60"
        } else {
            "max-age=60"
        };
        Response::json(200, &serde_json::json!({ "me": who })).header("cache-control", cc)
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("UPSTREAM_PORT={}", server.port()))
            .filter_config("auth", AUTH_REMOVING_TOKENS)
            .filter_config(
                "cache",
                r#"{"routes":[{"path":"/r/**"},{"path":"/pub/**"}]}"#,
            ),
    );
    let client = chain.client();
    let (alice, bob) = (token("alice", &["viewer"]), token("bob", &["viewer"]));
    // Read to the end: a stored entry needs the whole body.
    let fetch = |req: ureq::Request| {
        let r = call(req);
        let cs = r.header("cache-status").unwrap_or("").to_string();
        (cs, text(r))
    };
    // Each way of presenting the token; auth removes it in each case.
    let ways: [(&str, Box<RequestFor>); 3] = [
        (
            "header",
            Box::new(|p: &str, t: &str| client.get(&chain.url(p)).set("authorization", &bearer(t))),
        ),
        (
            "cookie",
            Box::new(|p: &str, t: &str| {
                client
                    .get(&chain.url(p))
                    .set("cookie", &format!("session={t}"))
            }),
        ),
        (
            "query",
            Box::new(|p: &str, t: &str| client.get(&chain.url(&format!("{p}?access_token={t}")))),
        ),
    ];
    for (how, req) in &ways {
        let path = format!("/r/{how}");
        let (cs, body) = fetch(req(&path, &alice));
        assert!(body.contains("alice"), "{how}: {body}");
        assert!(
            cs.ends_with("detail=authorization"),
            "{how}: alice's response must not be stored on a shared route: {cs}"
        );
        let (cs, body) = fetch(req(&path, &bob));
        assert!(
            body.contains("bob") && !body.contains("alice"),
            "{how}: bob got {body} ({cs})"
        );
    }
    // Auth did take the token out each time: the upstream never saw it.
    for r in server.received() {
        assert_eq!(r.header("authorization"), None, "{}", r.url);
        assert!(!r.url.contains("access_token"), "{}", r.url);
        assert_eq!(r.header("cookie"), None, "{}", r.url);
    }
    // A response that says `public` may be stored for an authenticated request (§3.5).
    let (cs, _) = fetch(ways[1].1("/r/public", &alice));
    assert!(cs.contains("stored"), "{cs}");
    // On a public route auth verifies nothing and publishes no identity; `x-api-key` is no source
    // this auth knows (no `api_keys`), so it goes upstream, but a request carrying a credential
    // the cache is told about (`x-api-key` by default) is authenticated all the same.
    let key = |k: &str| fetch(client.get(&chain.url("/pub/x")).set("x-api-key", k));
    let (cs, body) = key("key-of-alice");
    assert!(body.contains("key-of-alice"));
    assert!(cs.ends_with("detail=authorization"), "{cs}");
    let (_, body) = key("key-of-bob");
    assert!(body.contains("key-of-bob"), "{body}");
}
