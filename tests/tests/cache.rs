//! The response cache in the real chain: real Envoy, the real cache.wasm, the demo upstream or a
//! scripted `TestServer` upstream sending the headers each rule needs, over real sockets.

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_tests::server::{Response, TestServer};
use portcullis_tests::{auth, envoy_refuses, Chain, Options};

/// ureq turns 4xx/5xx into errors; the tests want the response either way.
fn call(req: ureq::Request) -> ureq::Response {
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    }
}

fn body(resp: ureq::Response) -> Vec<u8> {
    let mut b = Vec::new();
    resp.into_reader().read_to_end(&mut b).unwrap();
    b
}

fn status_of(resp: &ureq::Response) -> String {
    resp.header("cache-status").unwrap_or("").to_string()
}

/// A chain whose upstream is `server`, with the cache configured by `cache_json`.
/// Every route is public, so no request carries credentials the cache would have to weigh.
fn chain_for(server: &TestServer, cache_json: &str) -> Chain {
    Chain::start_with(
        Options::default()
            .set(&format!("UPSTREAM_PORT={}", server.port()))
            .filter_config("auth", AUTH_PUBLIC_KEEPING_TOKENS)
            .filter_config("cache", cache_json),
    )
}

/// Every route public, and the token left on the request (auth removes unverified credentials
/// by default), so the cache's own RFC 9111 §3.5 rule on `Authorization` is what these tests see.
const AUTH_PUBLIC_KEEPING_TOKENS: &str =
    r#"{"remove_token": false, "rules": [{"path": "/**", "public": true}]}"#;

const TEST_ROUTES: &str = r#"{"routes":[{"path":"/r/**"}]}"#;

fn json_reply(cc: &str, body: &str) -> Response {
    Response::json(200, &serde_json::json!({ "v": body }))
        .header("cache-control", cc)
        .header("etag", &format!("\"{body}\""))
}

#[test]
fn demo_products_miss_then_hit_with_age_and_cache_status() {
    let chain = Chain::start();
    let client = chain.client();
    let first = call(client.get(&chain.url("/api/products/1")));
    assert_eq!(first.status(), 200);
    assert_eq!(status_of(&first), "portcullis; fwd=miss; stored; ttl=60");
    let first_body = body(first);
    std::thread::sleep(Duration::from_millis(1100));
    let hit = call(client.get(&chain.url("/api/products/1")));
    assert_eq!(hit.status(), 200);
    assert!(
        status_of(&hit).starts_with("portcullis; hit; ttl=5"),
        "{}",
        status_of(&hit)
    );
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!((1..=2).contains(&age), "age {age}");
    assert!(hit.header("etag").is_some());
    // The local reply still passes through the security headers at the front.
    assert_eq!(hit.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(body(hit), first_body);
    // HEAD from the GET entry.
    let head = call(client.head(&chain.url("/api/products/1")));
    assert!(status_of(&head).contains("hit"));
    // Only the first request reached the upstream.
    let got: Vec<_> = chain
        .upstream
        .received()
        .into_iter()
        .filter(|r| r.path == "/api/products/1")
        .collect();
    assert_eq!(got.len(), 1);
    // Not a cacheable route: passes, marked uri-miss.
    let echo = call(client.get(&chain.url("/echo/x")));
    assert_eq!(status_of(&echo), "portcullis; fwd=uri-miss");
    // Counters in Envoy's stats.
    assert!(chain.stat("wasmcustom.portcullis_cache_hits").unwrap_or(0) >= 2);
    assert!(
        chain
            .stat("wasmcustom.portcullis_cache_stored")
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn gzip_and_identity_clients_share_one_identity_entry_and_never_mix() {
    let chain = Chain::start();
    let client = chain.client();
    // The first (miss) asks for gzip: the upstream is asked for identity all the same.
    let zipped = call(
        client
            .get(&chain.url("/api/products"))
            .set("accept-encoding", "gzip"),
    );
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body(zipped)[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    let received = chain.upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("accept-encoding"), None);
    // A plain client now gets a plain hit, a gzip client a gzipped hit of the same bytes.
    let plain = call(client.get(&chain.url("/api/products")));
    assert!(status_of(&plain).contains("hit"));
    assert_eq!(plain.header("content-encoding"), None);
    let plain = body(plain);
    assert_eq!(plain, unzipped);
    serde_json::from_slice::<serde_json::Value>(&plain).expect("plain JSON");
    let zipped_hit = call(
        client
            .get(&chain.url("/api/products"))
            .set("accept-encoding", "gzip"),
    );
    assert!(status_of(&zipped_hit).contains("hit"));
    assert_eq!(zipped_hit.header("content-encoding"), Some("gzip"));
    let mut again = Vec::new();
    flate2::read::GzDecoder::new(&body(zipped_hit)[..])
        .read_to_end(&mut again)
        .unwrap();
    assert_eq!(again, plain);
    assert_eq!(chain.upstream.received().len(), 1);
}

#[test]
fn post_invalidates_and_poisoning_headers_never_reach_the_upstream() {
    let chain = Chain::start();
    let client = chain.client();
    // Read to the end: a client that hangs up before the body is done leaves nothing stored
    // (Envoy resets the stream), and the next request would miss.
    body(call(
        client
            .get(&chain.url("/api/products"))
            .set("x-forwarded-host", "evil.example")
            .set("x-http-method-override", "DELETE"),
    ));
    let first = chain.upstream.received().pop().unwrap();
    assert_eq!(first.header("x-forwarded-host"), None);
    assert_eq!(first.header("x-http-method-override"), None);
    let second = status_of(&call(client.get(&chain.url("/api/products"))));
    assert!(second.contains("hit"), "{second}");
    // A successful POST to the URL invalidates it (the demo config lets editors write).
    let post = client
        .post(&chain.url("/api/products"))
        .set(
            "authorization",
            &format!("Bearer {}", auth::demo_token("editor")),
        )
        .send_string("{}")
        .unwrap();
    assert_eq!(post.status(), 200);
    let after = call(client.get(&chain.url("/api/products")));
    assert!(
        status_of(&after).starts_with("portcullis; fwd=miss"),
        "{}",
        status_of(&after)
    );
    let gets = chain
        .upstream
        .received()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/products")
        .count();
    assert_eq!(gets, 2);
}

#[test]
fn only_if_cached_and_unauthorised_purge_are_problem_json() {
    let chain = Chain::start();
    let client = chain.client();
    let resp = call(
        client
            .get(&chain.url("/api/products/2"))
            .set("cache-control", "only-if-cached"),
    );
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let id = resp.header("x-request-id").map(str::to_string);
    let problem: serde_json::Value = serde_json::from_slice(&body(resp)).unwrap();
    assert_eq!(problem["reason"], "not_cached");
    assert!(problem["request_id"].is_string());
    if let Some(id) = id {
        assert_eq!(problem["request_id"], id.as_str());
    }
    assert!(chain.upstream.received().is_empty());
    // Purge needs an identity with a purge role; without credentials auth refuses it first
    // (the cache's own refusal of a caller without the role: tests/tests/cache_identity.rs).
    body(call(client.get(&chain.url("/api/products/2"))));
    let purge = call(client.request("PURGE", &chain.url("/api/products/2")));
    assert_eq!(purge.status(), 401);
    assert_eq!(
        purge.header("content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = serde_json::from_slice(&body(purge)).unwrap();
    assert_eq!(problem["reason"], "credentials_missing");
    let admin_path = call(client.post(&chain.url("/_cache/purge?url=/api/products/2")));
    assert_eq!(admin_path.status(), 401);
    assert!(
        status_of(&call(client.get(&chain.url("/api/products/2")))).contains("hit"),
        "still cached"
    );
}

#[test]
fn revalidation_with_304_merges_headers() {
    let version = Arc::new(AtomicU32::new(1));
    let v = version.clone();
    let server = TestServer::start(move |req| {
        let n = v.load(Ordering::SeqCst);
        if req.header("if-none-match") == Some("\"a\"") {
            return Response::status(304)
                .header("etag", "\"a\"")
                .header("cache-control", "max-age=1")
                .header("x-version", &n.to_string());
        }
        json_reply("max-age=1", "a").header("x-version", &n.to_string())
    });
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/r/**"}],"status_key":true}"#,
    );
    let client = chain.client();
    let resp = call(client.get(&chain.url("/r/doc")));
    let first = status_of(&resp);
    body(resp); // read to the end, so the entry is stored
    assert!(first.contains("stored"), "{first}");
    let key = format!("key=\"GET https://localhost:{}/r/doc\"", chain.https_port);
    assert!(first.ends_with(&key), "{first}");
    version.store(2, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2100));
    let resp = call(client.get(&chain.url("/r/doc")));
    assert_eq!(resp.status(), 200);
    assert!(
        status_of(&resp).starts_with("portcullis; fwd=stale; fwd-status=304; stored"),
        "{}",
        status_of(&resp)
    );
    assert_eq!(resp.header("x-version"), Some("2"), "304 headers merged");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body(resp)).unwrap();
    assert_eq!(v["v"], "a");
    let seen = server.received();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match"), Some("\"a\""));
    // And the refreshed entry is served as a hit with the merged header.
    let hit = call(client.get(&chain.url("/r/doc")));
    assert!(status_of(&hit).contains("hit"));
    assert_eq!(hit.header("x-version"), Some("2"));
}

#[test]
fn stale_if_error_with_the_upstream_stopped() {
    let server = TestServer::start(|_| json_reply("max-age=1, stale-if-error=300", "kept"));
    let port = server.port();
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    body(call(client.get(&chain.url("/r/a"))));
    drop(server);
    std::thread::sleep(Duration::from_millis(2100));
    let resp = call(client.get(&chain.url("/r/a")));
    assert_eq!(
        resp.status(),
        200,
        "stale copy served while the upstream is down"
    );
    let cs = status_of(&resp);
    assert!(
        cs.contains("fwd=stale; fwd-status=503") && cs.ends_with("detail=stale-if-error"),
        "{cs}"
    );
    let v: serde_json::Value = serde_json::from_slice(&body(resp)).unwrap();
    assert_eq!(v["v"], "kept");
    // Nothing stored for a URL never seen: the error goes through.
    assert_eq!(call(client.get(&chain.url("/r/never"))).status(), 503);
    let _ = port;
}

#[test]
fn stale_while_revalidate_refreshes_in_the_background() {
    let version = Arc::new(AtomicU32::new(1));
    let v = version.clone();
    let server = TestServer::start(move |_| {
        let n = v.load(Ordering::SeqCst).to_string();
        json_reply("max-age=1, stale-while-revalidate=60", &n)
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    body(call(client.get(&chain.url("/r/swr"))));
    version.store(2, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2100));
    let stale = call(client.get(&chain.url("/r/swr")));
    assert!(
        status_of(&stale).ends_with("detail=stale-while-revalidate"),
        "{}",
        status_of(&stale)
    );
    let v: serde_json::Value = serde_json::from_slice(&body(stale)).unwrap();
    assert_eq!(v["v"], "1", "the stale copy, at once");
    // The refresh runs from the root context shortly after.
    let mut refreshed = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if server.received().len() >= 2 {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "no background request reached the upstream");
    assert_eq!(server.received()[1].header("if-none-match"), Some("\"1\""));
    std::thread::sleep(Duration::from_millis(200));
    let fresh = call(client.get(&chain.url("/r/swr")));
    assert!(status_of(&fresh).contains("hit"), "{}", status_of(&fresh));
    let v: serde_json::Value = serde_json::from_slice(&body(fresh)).unwrap();
    assert_eq!(v["v"], "2", "the refreshed copy");
}

#[test]
fn what_must_not_be_stored_is_not() {
    let server = TestServer::start(|req| match req.url.as_str() {
        "/r/no-store" => json_reply("no-store, max-age=60", "x"),
        "/r/private" => json_reply("private, max-age=60", "x"),
        "/r/cookie" => json_reply("public, max-age=60", "x").header("set-cookie", "s=1"),
        "/r/profile.css" => Response::status(200)
            .header("content-type", "text/css")
            .header("cache-control", "public, max-age=60"),
        "/r/vary-star" => json_reply("public, max-age=60", "x").header("vary", "*"),
        "/r/auth" => json_reply("max-age=60", "x"),
        "/r/auth-public" => json_reply("public, max-age=60", "x"),
        _ => json_reply("public, max-age=60", "x"),
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    for (path, why) in [
        ("/r/no-store", "no-store"),
        ("/r/private", "private"),
        ("/r/cookie", "set-cookie"),
        ("/r/profile.css", "content-type"),
        ("/r/vary-star", "vary-star"),
    ] {
        for _ in 0..2 {
            let resp = call(client.get(&chain.url(path)));
            assert!(
                status_of(&resp).ends_with(&format!("detail={why}")),
                "{path}: {}",
                status_of(&resp)
            );
        }
    }
    // With Authorization: stored only when the response is explicitly public (RFC 9111 §3.5).
    let auth = |p: &str| call(client.get(&chain.url(p)).set("authorization", "Bearer t"));
    assert!(status_of(&auth("/r/auth")).ends_with("detail=authorization"));
    assert!(status_of(&auth("/r/auth-public")).contains("stored"));
    let count = |p: &str| server.received().iter().filter(|r| r.url == p).count();
    for p in [
        "/r/no-store",
        "/r/private",
        "/r/cookie",
        "/r/profile.css",
        "/r/vary-star",
    ] {
        assert_eq!(count(p), 2, "{p} reached the upstream every time");
    }
}

#[test]
fn vary_keys_variants_apart() {
    let server = TestServer::start(|req| {
        let lang = req.header("accept-language").unwrap_or("none").to_string();
        json_reply("public, max-age=60", &lang).header("vary", "Accept-Language")
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    let get = |lang: &str| {
        let r = call(client.get(&chain.url("/r/v")).set("accept-language", lang));
        let cs = status_of(&r);
        let v: serde_json::Value = serde_json::from_slice(&body(r)).unwrap();
        (cs, v["v"].as_str().unwrap_or("").to_string())
    };
    assert!(get("en").0.contains("fwd=miss"));
    let (cs, v) = get("fr");
    assert!(cs.contains("fwd=vary-miss"), "{cs}");
    assert_eq!(v, "fr");
    let (cs, v) = get("en");
    assert!(cs.contains("hit"));
    assert_eq!(v, "en");
    assert_eq!(get("fr").1, "fr");
    assert_eq!(server.received().len(), 2);
}

#[test]
fn shadow_mode_stores_but_never_answers_and_signals_would_deny() {
    let server = TestServer::start(|_| json_reply("public, max-age=60", "x"));
    let chain = chain_for(&server, r#"{"mode":"shadow","routes":[{"path":"/r/**"}]}"#);
    let client = chain.client();
    let stored = call(client.get(&chain.url("/r/s")));
    assert!(status_of(&stored).contains("stored"));
    body(stored);
    let second = call(client.get(&chain.url("/r/s")));
    assert_eq!(status_of(&second), "portcullis; fwd=request; detail=shadow");
    let not_cached = call(
        client
            .get(&chain.url("/r/other"))
            .set("cache-control", "only-if-cached"),
    );
    assert_eq!(not_cached.status(), 200, "shadow lets it through");
    let seen = server.received();
    assert_eq!(seen.len(), 3, "every request reached the upstream");
    assert_eq!(
        seen[2].header("x-portcullis-would-deny"),
        Some("cache:not_cached")
    );
    assert_eq!(
        chain.stat("wasmcustom.portcullis_cache_shadow_hits"),
        Some(1)
    );
}

#[test]
fn storage_stays_bounded_large_bodies_pass_and_locations_are_invalidated() {
    let server = TestServer::start(|req| {
        if req.method == "POST" {
            return Response::status(201).header("location", "/r/created");
        }
        if req.url == "/r/big" {
            let big = "y".repeat(8 * 1024);
            return Response::json(200, &serde_json::json!({ "v": big }))
                .header("cache-control", "public, max-age=60");
        }
        json_reply("public, max-age=60", &req.url)
    });
    // 2 buckets x 2 ways, 4 KiB per bucket, objects up to 4 KiB.
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/r/**"}],"storage":{"buckets":2,"ways":2,"max_bytes":8192,"max_object_bytes":4096}}"#,
    );
    let client = chain.client();
    for i in 0..200 {
        body(call(client.get(&chain.url(&format!("/r/{i}")))));
    }
    let stored = chain
        .stat("wasmcustom.portcullis_cache_stored")
        .unwrap_or(0);
    let evicted = chain
        .stat("wasmcustom.portcullis_cache_evictions")
        .unwrap_or(0);
    assert_eq!(stored, 200);
    assert!(
        evicted >= 196,
        "at most 4 entries live: {evicted} evictions"
    );
    // The most recent one is still there; the first is long gone.
    assert!(status_of(&call(client.get(&chain.url("/r/199")))).contains("hit"));
    assert!(status_of(&call(client.get(&chain.url("/r/0")))).contains("fwd=miss"));
    // Larger than max_object_bytes: passed whole, never stored.
    for _ in 0..2 {
        let big = call(client.get(&chain.url("/r/big")));
        assert!(
            status_of(&big).ends_with("detail=too-large"),
            "{}",
            status_of(&big)
        );
        assert!(body(big).len() > 8 * 1024);
    }
    // A POST whose Location names a cached URL of this origin invalidates it.
    body(call(client.get(&chain.url("/r/created"))));
    assert!(status_of(&call(client.get(&chain.url("/r/created")))).contains("hit"));
    let post = client
        .post(&chain.url("/r/collection"))
        .send_string("{}")
        .unwrap();
    assert_eq!(post.status(), 201);
    assert!(status_of(&call(client.get(&chain.url("/r/created")))).contains("fwd=miss"));
    assert!(
        chain
            .stat("wasmcustom.portcullis_cache_invalidations")
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn a_bad_cache_config_is_refused_naming_the_field() {
    let (status, log) = envoy_refuses(
        Options::default()
            .filter_config("cache", r#"{"routes":[{"path":"/a","methods":["POST"]}]}"#),
    );
    assert!(!status.success());
    assert!(
        log.contains("cache: routes[0].methods[0]: only GET and HEAD responses are cached"),
        "{log}"
    );
    // The fields added with the §3.5 fix and RFC 9213.
    for (json, field) in [
        (
            r#"{"credential_sources":[{"header":"X-Api-Key"}]}"#,
            "cache: credential_sources[0]:",
        ),
        (r#"{"targeted_field":""}"#, "cache: targeted_field:"),
    ] {
        let (status, log) = envoy_refuses(Options::default().filter_config("cache", json));
        assert!(!status.success());
        assert!(log.contains(field), "{field}: {log}");
    }
}

/// Envoy's heap (`/memory` allocated bytes).
fn envoy_allocated(chain: &Chain) -> u64 {
    let m: serde_json::Value = serde_json::from_str(&chain.admin("/memory")).unwrap();
    m["allocated"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap()
}

/// Not a test of behaviour: measures Envoy's memory per 10 000 cached 1 KiB objects. Run with
/// `cargo test -p portcullis-tests --test cache -- --ignored --nocapture memory_per_10k`.
#[test]
#[ignore]
fn memory_per_10k_cached_1kib_objects() {
    let payload = "x".repeat(1024 - 8);
    let server = TestServer::start(move |_| {
        Response::json(200, &serde_json::json!({ "v": payload }))
            .header("cache-control", "public, max-age=3600")
    });
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/r/**"}],"storage":{"buckets":4096,"ways":8,"max_bytes":134217728,"max_object_bytes":4096}}"#,
    );
    let client = chain.client();
    body(call(client.get(&chain.url("/r/warmup"))));
    let before = envoy_allocated(&chain);
    for i in 0..10_000 {
        let r = call(client.get(&chain.url(&format!("/r/{i}"))));
        assert_eq!(r.status(), 200);
    }
    let after = envoy_allocated(&chain);
    let stored = chain
        .stat("wasmcustom.portcullis_cache_stored")
        .unwrap_or(0);
    let evicted = chain
        .stat("wasmcustom.portcullis_cache_evictions")
        .unwrap_or(0);
    let hits = (0..200)
        .filter(|i| status_of(&call(client.get(&chain.url(&format!("/r/{i}"))))).contains("hit"))
        .count();
    println!(
        "10000 objects of 1 KiB: stored {stored}, evicted {evicted}, Envoy allocated {before} -> {after} bytes \
         (+{} KiB, {:.0} bytes per stored object); {hits}/200 sampled still hits",
        (after.saturating_sub(before)) / 1024,
        after.saturating_sub(before) as f64 / stored.saturating_sub(1).max(1) as f64
    );
    assert!(stored >= 9_000);
}

/// Request headers frameworks build redirects and absolute URLs from. None is in the key, so each
/// must be stripped before a cacheable request goes upstream.
const URL_BUILDING_HEADERS: [&str; 12] = [
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "front-end-https",
    "x-forwarded-protocol",
    "x-url-scheme",
    "x-forwarded-uri",
    "x-original-uri",
    "x-forwarded-host",
    "x-forwarded-prefix",
    "x-original-host",
    "forwarded",
];

/// Hole: `X-Forwarded-Port` and its kin were neither stripped nor keyed on cacheable routes; an
/// upstream building a redirect from them let one request poison the stored 301 for everyone.
#[test]
fn unkeyed_url_building_headers_cannot_poison_a_stored_redirect() {
    let server = TestServer::start(|req| {
        // Like a framework: the Location reflects whatever forwarding headers arrived.
        let reflected: Vec<String> = URL_BUILDING_HEADERS
            .iter()
            .filter_map(|h| req.header(h).map(|v| format!("{h}={v}")))
            .collect();
        Response::json(301, &serde_json::json!({ "moved": true }))
            .header("cache-control", "public, max-age=60")
            .header(
                "location",
                &format!("https://localhost/r/next?{}", reflected.join("&")),
            )
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    for h in URL_BUILDING_HEADERS {
        let path = format!("/r/{h}");
        let attack = call(client.get(&chain.url(&path)).set(h, "evil.example:1337"));
        assert_eq!(attack.status(), 301);
        let location = attack.header("location").unwrap_or("").to_string();
        body(attack);
        assert!(
            !location.contains("evil"),
            "{h}: attacker's own answer {location}"
        );
        let victim = call(client.get(&chain.url(&path)));
        assert!(
            status_of(&victim).contains("hit"),
            "{h}: {}",
            status_of(&victim)
        );
        let location = victim.header("location").unwrap_or("").to_string();
        assert!(
            !location.contains("evil"),
            "{h}: poisoned redirect {location}"
        );
    }
    for r in server.received() {
        for h in URL_BUILDING_HEADERS {
            assert_eq!(r.header(h), None, "{h} reached the upstream ({})", r.url);
        }
    }
}

/// The RFC 9111 / RFC 9213 behaviours an HTTP-cache conformance suite checks, each through the
/// real Envoy: invalid `Age`, a 304's fields, HEAD updating and invalidating the stored GET,
/// `CDN-Cache-Control`, qualified `no-cache`/`private`, `Set-Cookie` kept off shared hits.
#[test]
fn conformance_behaviours_through_envoy() {
    let server = TestServer::start(|req| {
        let revalidating = req.header("if-none-match").is_some();
        let ok = |cc: &str| {
            Response::json(200, &serde_json::json!({ "url": req.url }))
                .header("cache-control", cc)
                .header("etag", "\"e1\"")
        };
        match (req.method.as_str(), req.url.as_str()) {
            (_, "/r/age-old") => ok("max-age=3600").header("age", "old"),
            (_, "/r/age-first") => ok("max-age=3600").header("age", "7200").header("age", "0"),
            (_, "/r/cdn-longer") => ok("no-store").header("cdn-cache-control", "max-age=60"),
            (_, "/r/cdn-no-store") => ok("max-age=60").header("cdn-cache-control", "no-store"),
            (_, "/r/fields") => ok("max-age=60, no-cache=\"x-secret\", private=\"x-user\"")
                .header("x-secret", "s")
                .header("x-user", "alice")
                .header("x-ok", "ok"),
            (_, "/r/cookie") => ok("max-age=60").header("set-cookie", "sid=first"),
            (_, "/r/304") if revalidating => Response::status(304)
                .header("etag", "\"e1\"")
                .header("cache-control", "max-age=60")
                .header("content-foo", "2"),
            (_, "/r/304") => ok("max-age=60").header("content-foo", "1"),
            // The GET body's length, as a HEAD should say (a differing one drops the entry).
            ("HEAD", "/r/head") => Response::status(200)
                .header("content-type", "application/json")
                .header("cache-control", "max-age=60")
                .header("etag", "\"e1\"")
                .header(
                    "content-length",
                    &serde_json::json!({ "url": req.url })
                        .to_string()
                        .len()
                        .to_string(),
                )
                .header("x-a", "2"),
            ("HEAD", "/r/gone") => Response::status(410),
            _ => ok("max-age=60").header("x-a", "1"),
        }
    });
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/r/**"}],"store_set_cookie":true}"#,
    );
    let client = chain.client();
    // Read to the end before the next request expects it stored.
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = client.get(&chain.url(path));
        for (n, v) in headers {
            req = req.set(n, v);
        }
        let r = call(req);
        let hs: Vec<(String, String)> = r
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = r.header(&n).unwrap_or("").to_string();
                (n, v)
            })
            .collect();
        body(r);
        hs
    };
    let header =
        |hs: &[(String, String)], n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let cs = |hs: &[(String, String)]| header(hs, "cache-status").unwrap_or_default();
    let count = |p: &str| server.received().iter().filter(|r| r.url == p).count();

    // Age: a value that is no number, or a first line older than max-age: stale at once.
    for p in ["/r/age-old", "/r/age-first"] {
        get(p, &[]);
        let again = get(p, &[]);
        assert!(!cs(&again).contains("hit"), "{p}: {}", cs(&again));
        assert_eq!(count(p), 2, "{p}");
    }
    // CDN-Cache-Control governs when present.
    get("/r/cdn-longer", &[]);
    assert!(cs(&get("/r/cdn-longer", &[])).contains("hit"));
    let n = get("/r/cdn-no-store", &[]);
    assert!(cs(&n).ends_with("detail=no-store"), "{}", cs(&n));
    // no-cache="x-secret", private="x-user": stored, served without those fields.
    get("/r/fields", &[]);
    let hit = get("/r/fields", &[]);
    assert!(cs(&hit).contains("hit"), "{}", cs(&hit));
    assert_eq!(header(&hit, "x-secret"), None);
    assert_eq!(header(&hit, "x-user"), None);
    assert_eq!(header(&hit, "x-ok").as_deref(), Some("ok"));
    // store_set_cookie: stored, but the cookie is not handed to the next client.
    let first = get("/r/cookie", &[]);
    assert_eq!(header(&first, "set-cookie").as_deref(), Some("sid=first"));
    let hit = get("/r/cookie", &[]);
    assert!(cs(&hit).contains("hit"), "{}", cs(&hit));
    assert_eq!(header(&hit, "set-cookie"), None);
    // A 304 updates every field it carries, unknown ones included.
    get("/r/304", &[]);
    let revalidated = get("/r/304", &[("cache-control", "no-cache")]);
    assert!(
        cs(&revalidated).contains("fwd-status=304"),
        "{}",
        cs(&revalidated)
    );
    assert_eq!(header(&revalidated, "content-foo").as_deref(), Some("2"));
    let hit = get("/r/304", &[]);
    assert!(cs(&hit).contains("hit"));
    assert_eq!(header(&hit, "content-foo").as_deref(), Some("2"));
    // A HEAD response updates the stored GET; a 410 on HEAD removes it.
    for p in ["/r/head", "/r/gone"] {
        get(p, &[]);
        let head = call(client.head(&chain.url(p)).set("cache-control", "no-cache"));
        body(head);
    }
    let hit = get("/r/head", &[]);
    assert!(cs(&hit).contains("hit"), "{}", cs(&hit));
    assert_eq!(header(&hit, "x-a").as_deref(), Some("2"));
    let after = get("/r/gone", &[]);
    assert!(cs(&after).contains("fwd=miss"), "{}", cs(&after));
}

/// With the compressor told to leave `Accept-Encoding` to the upstream, an encoded response is a
/// variant of its own: served from cache only to clients that accept its coding.
#[test]
fn encoded_responses_are_served_only_to_clients_accepting_them() {
    let server = TestServer::start(|req| {
        let gzip = req
            .header("accept-encoding")
            .is_some_and(|a| a.contains("gzip"));
        let r = Response::json(200, &serde_json::json!({ "gzip": gzip }))
            .header("cache-control", "public, max-age=60");
        if gzip {
            // Not real gzip: the cache must not care, and the client never decodes it here.
            r.header("content-encoding", "gzip")
        } else {
            r
        }
    });
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("UPSTREAM_PORT={}", server.port()))
            .filter_config("auth", auth::ALL_PUBLIC)
            .filter_config("cache", TEST_ROUTES)
            .edit_yaml(
                "remove_accept_encoding_header: true",
                "remove_accept_encoding_header: false",
            ),
    );
    let client = chain.client();
    let get = |ae: Option<&str>| {
        let mut req = client.get(&chain.url("/r/enc"));
        if let Some(ae) = ae {
            req = req.set("accept-encoding", ae);
        }
        let r = call(req);
        let out = (
            status_of(&r),
            r.header("content-encoding").map(str::to_string),
        );
        body(r);
        out
    };
    let (cs, enc) = get(Some("gzip"));
    assert!(cs.contains("stored"), "{cs}");
    assert_eq!(enc.as_deref(), Some("gzip"));
    let (cs, enc) = get(Some("gzip, br"));
    assert!(cs.contains("hit"), "{cs}");
    assert_eq!(enc.as_deref(), Some("gzip"));
    for ae in [None, Some("br"), Some("gzip;q=0")] {
        let (cs, enc) = get(ae);
        // (This upstream is naive about `q=0` and may send gzip itself; never the cache.)
        assert!(
            enc.is_none() || !cs.contains("hit"),
            "{ae:?}: gzip served from cache ({cs})"
        );
        if ae != Some("gzip;q=0") {
            assert_eq!(enc, None, "{ae:?}: {cs}");
        }
    }
}

/// A cacheable route naming only GET: a HEAD is answered from the GET's entry (its status and
/// headers, no body), and never reaches the upstream.
#[test]
fn head_on_a_get_only_route_is_a_hit_from_the_get_entry() {
    let server = TestServer::start(|_| json_reply("max-age=60", "a").header("x-a", "1"));
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/r/**","methods":["GET"]}]}"#,
    );
    let client = chain.client();
    let get = call(client.get(&chain.url("/r/doc")));
    assert!(status_of(&get).contains("stored"), "{}", status_of(&get));
    let get_len = body(get).len();
    assert!(get_len > 0);
    let head = call(client.head(&chain.url("/r/doc")));
    assert_eq!(head.status(), 200);
    assert!(status_of(&head).contains("hit"), "{}", status_of(&head));
    assert_eq!(head.header("etag"), Some("\"a\""));
    assert_eq!(head.header("x-a"), Some("1"));
    // Content-Type is not asserted: Envoy drops it from a local reply without a body (seen
    // with Envoy 1.40 on the cache's HEAD hits).
    assert!(body(head).is_empty(), "a HEAD reply has no body");
    assert_eq!(
        server.received().len(),
        1,
        "only the GET reached the upstream"
    );
}

/// Every spelling Envoy lets through that an upstream would read as the purge path is the
/// purge endpoint: the cache's own 401 without credentials, never forwarded nor cached.
#[test]
fn purge_path_spellings_are_the_purge_endpoint() {
    let server = TestServer::start(|_| json_reply("max-age=60", "a"));
    let chain = chain_for(
        &server,
        r#"{"routes":[{"path":"/**"}],"purge":{"path":"/_cache/purge"}}"#,
    );
    let client = chain.client();
    for path in [
        "/_cache/purge",
        "/_cache/purge/",
        "/_CACHE/Purge",
        "/_cache/%70urge",
        "/_cache/purge?x=1",
        "/_cache/purge.",
    ] {
        for method in ["GET", "POST"] {
            let resp = call(client.request(method, &chain.url(path)));
            assert_eq!(resp.status(), 401, "{method} {path}: {}", status_of(&resp));
            let problem: serde_json::Value = serde_json::from_slice(&body(resp)).unwrap();
            assert_eq!(problem["reason"], "purge_forbidden", "{method} {path}");
        }
    }
    assert!(
        server.received().is_empty(),
        "{:?}",
        server.received().iter().map(|r| &r.url).collect::<Vec<_>>()
    );
}

/// RFC 9111 §4.3.5 and §3.5 through Envoy: a HEAD answer without validators leaves the stored
/// GET alone; one announcing another length or Content-Type drops it (never retypes it); an
/// authenticated HEAD never changes the shared entry.
#[test]
fn head_responses_update_the_get_entry_only_when_they_may() {
    // The stored GET's body (`{"v":"a"}`) and its length, which a HEAD should announce.
    let get_len = serde_json::json!({ "v": "a" })
        .to_string()
        .len()
        .to_string();
    let server = TestServer::start(move |req| {
        let head = || {
            Response::status(200)
                .header("content-type", "application/json")
                .header("cache-control", "public, max-age=60")
                .header("x-v", "head")
        };
        match (req.method.as_str(), req.url.as_str()) {
            // No validator (many frameworks compute no ETag for HEAD): the entry is left alone.
            ("HEAD", "/r/no-etag") => head().header("content-length", &get_len),
            // No validator, but another length: the entry is outdated.
            ("HEAD", "/r/shorter") => head().header("content-length", "0"),
            // The same ETag, but another Content-Type: outdated, never retyped.
            ("HEAD", "/r/retyped") => Response::status(200)
                .header("content-type", "text/html")
                .header("cache-control", "public, max-age=60")
                .header("etag", "\"a\"")
                .header("content-length", &get_len)
                .header("x-v", "head"),
            ("HEAD", _) => head()
                .header("etag", "\"a\"")
                .header("content-length", &get_len),
            _ => json_reply("public, max-age=60", "a").header("x-v", "get"),
        }
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    let get = |path: &str| {
        let r = call(client.get(&chain.url(path)));
        let out = (
            status_of(&r),
            r.header("x-v").map(str::to_string),
            r.header("content-type").map(str::to_string),
        );
        body(r);
        out
    };
    let paths = ["/r/no-etag", "/r/shorter", "/r/retyped", "/r/auth"];
    for path in paths {
        let (cs, _, _) = get(path);
        assert!(cs.contains("stored"), "{path}: {cs}");
    }
    for path in ["/r/no-etag", "/r/shorter", "/r/retyped"] {
        body(call(
            client
                .head(&chain.url(path))
                .set("cache-control", "no-cache"),
        ));
    }
    // A HEAD without validators neither refreshes nor drops the stored GET.
    let (cs, v, _) = get("/r/no-etag");
    assert!(cs.contains("hit"), "{cs}");
    assert_eq!(v.as_deref(), Some("get"), "{cs}");
    // One announcing another length, or another Content-Type, drops it.
    for path in ["/r/shorter", "/r/retyped"] {
        let (cs, v, ct) = get(path);
        assert!(cs.contains("fwd=miss"), "{path}: {cs}");
        assert_eq!(v.as_deref(), Some("get"), "{path}: {cs}");
        assert_eq!(ct.as_deref(), Some("application/json"), "{path}: {cs}");
    }
    // An authenticated HEAD with the same ETag: the user is answered, the shared entry kept.
    let head = call(
        client
            .head(&chain.url("/r/auth"))
            .set("cache-control", "no-cache")
            .set("authorization", "Bearer not-a-real-token"),
    );
    assert_eq!(head.header("x-v"), Some("head"));
    body(head);
    let (cs, v, _) = get("/r/auth");
    assert!(cs.contains("hit"), "{cs}");
    assert_eq!(
        v.as_deref(),
        Some("get"),
        "an authenticated HEAD updated the shared entry"
    );
}

/// The 304 answering a revalidation sets a cookie (a session rotation): the client's reply
/// carries it, and the shared entry does not store it.
#[test]
fn a_revalidations_reply_carries_the_304s_set_cookie() {
    let server = TestServer::start(|req| {
        if req.header("if-none-match").is_some() {
            Response::status(304)
                .header("etag", "\"a\"")
                .header("cache-control", "public, max-age=60")
                .header("set-cookie", "sid=rotated; HttpOnly")
        } else {
            json_reply("public, max-age=60", "a")
        }
    });
    let chain = chain_for(&server, TEST_ROUTES);
    let client = chain.client();
    let get = |headers: &[(&str, &str)]| {
        let mut req = client.get(&chain.url("/r/rotate"));
        for (n, v) in headers {
            req = req.set(n, v);
        }
        let r = call(req);
        let out = (status_of(&r), r.header("set-cookie").map(str::to_string));
        body(r);
        out
    };
    let (cs, _) = get(&[]);
    assert!(cs.contains("stored"), "{cs}");
    let (cs, cookie) = get(&[("cache-control", "no-cache")]);
    assert!(cs.contains("fwd-status=304"), "{cs}");
    assert_eq!(cookie.as_deref(), Some("sid=rotated; HttpOnly"), "{cs}");
    let (cs, cookie) = get(&[]);
    assert!(cs.contains("hit"), "{cs}");
    assert_eq!(cookie, None, "the shared entry stored the cookie");
}

/// A plain-TCP upstream that answers every request with `interim` (one or more 1xx responses,
/// written first) and then a cacheable 200; it counts connections and requests.
struct RawUpstream {
    port: u16,
    requests: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
}

const RAW_BODY: &str = r#"{"v":"final"}"#;

impl RawUpstream {
    fn start(interim: &'static str) -> RawUpstream {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU32::new(0));
        let connections = Arc::new(AtomicU32::new(0));
        let (r, c) = (requests.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    loop {
                        // One request: its head (the tests send no bodies upstream).
                        let mut line = String::new();
                        let mut head = 0;
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == "\r\n" && head > 0 {
                                break;
                            }
                            head += 1;
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        let reply = format!(
                            "{interim}HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             cache-control: max-age=60\r\ncontent-length: {}\r\n\r\n{RAW_BODY}",
                            RAW_BODY.len()
                        );
                        if out.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        RawUpstream {
            port,
            requests,
            connections,
        }
    }
}

/// One HTTP/1.1 request over TLS, read to the end: every status line the client saw (interim
/// ones first), the final response's headers (lower-cased) and body.
fn raw_https_get(chain: &Chain, path: &str) -> (Vec<u16>, Vec<(String, String)>, String) {
    use std::io::Write;
    let config = portcullis_tests::tls::client_config(
        &chain.certs,
        &[&rustls::version::TLS13],
        &[b"http/1.1"],
    );
    let mut tls = portcullis_tests::tls::handshake(chain.https_port, config).unwrap();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nhost: localhost:{}\r\nconnection: close\r\n\r\n",
        chain.https_port
    )
    .unwrap();
    let mut raw = Vec::new();
    // A TLS close without close_notify is fine: everything before it has been read.
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut statuses = Vec::new();
    let mut rest = text.as_str();
    loop {
        let (head, after) = rest
            .split_once("\r\n\r\n")
            .expect("a complete response head");
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        statuses.push(status);
        if status >= 200 {
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect::<Vec<_>>();
            let chunked = headers
                .iter()
                .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
            return (
                statuses,
                headers,
                if chunked {
                    dechunk(after)
                } else {
                    after.to_string()
                },
            );
        }
        rest = after;
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        s = &after[n + 2..];
    }
    out
}

/// Interim 1xx responses are never cached: the upstream's `103 Early Hints` (or an unsolicited
/// `100 Continue`) before a cacheable 200 leaves the 200 stored, and the next identical GET is a
/// hit with status 200 and the whole body, the upstream having seen one request.
#[test]
fn interim_responses_are_never_cached() {
    for (interim, path) in [
        (
            "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n",
            "/r/early",
        ),
        ("HTTP/1.1 100 Continue\r\n\r\n", "/r/continue"),
    ] {
        let upstream = RawUpstream::start(interim);
        let chain = Chain::start_with(
            Options::default()
                .set(&format!("UPSTREAM_PORT={}", upstream.port))
                .filter_config("auth", AUTH_PUBLIC_KEEPING_TOKENS)
                .filter_config("cache", TEST_ROUTES),
        );
        let (statuses, headers, body) = raw_https_get(&chain, path);
        let header = |hs: &[(String, String)], n: &str| {
            hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        };
        // What Envoy let through of the interim response, for the record.
        eprintln!("{path}: the first client saw statuses {statuses:?}");
        assert_eq!(statuses.last(), Some(&200), "{path}");
        assert_eq!(body, RAW_BODY, "{path}");
        let cs = header(&headers, "cache-status").unwrap_or_default();
        assert!(cs.contains("stored"), "{path}: {cs}");
        let (statuses, headers, body) = raw_https_get(&chain, path);
        assert_eq!(statuses, vec![200], "{path}: a hit is the stored 200 alone");
        let cs = header(&headers, "cache-status").unwrap_or_default();
        assert!(cs.contains("hit"), "{path}: {cs}");
        assert_eq!(body, RAW_BODY, "{path}");
        assert_eq!(
            header(&headers, "link"),
            None,
            "{path}: no interim field stored"
        );
        assert_eq!(upstream.requests.load(Ordering::SeqCst), 1, "{path}");
        assert!(upstream.connections.load(Ordering::SeqCst) >= 1, "{path}");
    }
}
