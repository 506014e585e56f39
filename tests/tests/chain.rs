//! What Envoy itself does in the chain: gzip, security headers, health, path normalisation,
//! trusted client address, CORS and CSRF, header limits, retries, slow clients.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use portcullis_tests::{tls, Chain, Options};
use rustls::version::TLS13;

fn json(resp: ureq::Response) -> serde_json::Value {
    serde_json::from_reader(resp.into_reader()).unwrap()
}

fn body_bytes(resp: ureq::Response) -> Vec<u8> {
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    body
}

#[test]
fn large_json_is_gzipped_when_asked_and_small_or_binary_is_not() {
    let chain = Chain::start();
    let client = chain.client();

    let plain = body_bytes(client.get(&chain.url("/api/products")).call().unwrap());
    assert!(plain.len() > 2048, "products list is {} bytes", plain.len());

    let resp = client
        .get(&chain.url("/api/products"))
        .set("accept-encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert!(resp
        .header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body_bytes(resp)[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);
    // Envoy compresses; the upstream is always asked for an identity body.
    let last = chain.upstream.received().pop().unwrap();
    assert_eq!(last.header("accept-encoding"), None);

    let small = client
        .get(&chain.url("/api/products/1"))
        .set("accept-encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(
        small.header("content-encoding"),
        None,
        "tiny bodies stay plain"
    );
    let png = client
        .get(&chain.url("/static/logo.png"))
        .set("accept-encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(
        png.header("content-encoding"),
        None,
        "images are not recompressed"
    );
    assert_eq!(body_bytes(png).len(), 4096);
}

#[test]
fn security_headers_are_added_unless_the_upstream_set_them() {
    let chain = Chain::start();
    let client = chain.client();
    let expected = [
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    let resp = client.get(&chain.url("/api/products")).call().unwrap();
    for (name, value) in expected {
        assert_eq!(resp.header(name), Some(value), "{name}");
    }
    // A reply Envoy makes itself (CSRF refusal) carries them too.
    let refused = client
        .post(&chain.url("/echo"))
        .set("origin", "https://evil.example")
        .send_string("x");
    let refused = match refused {
        Err(ureq::Error::Status(403, resp)) => resp,
        other => panic!("expected 403, got {other:?}"),
    };
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));
    // The login page sets its own CSP: it is kept, not overwritten or duplicated.
    let login = client.post(&chain.url("/login")).send_string("{}").unwrap();
    let csp: Vec<&str> = login.all("content-security-policy");
    assert_eq!(csp.len(), 1, "{csp:?}");
    assert_ne!(csp[0], expected[4].1);
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
}

#[test]
fn health_endpoint_answers_without_the_upstream() {
    let chain = Chain::start();
    let resp = chain.client().get(&chain.url("/healthz")).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(chain.upstream.received().is_empty());
    let prometheus = chain.admin("/stats/prometheus");
    assert!(
        prometheus.contains("envoy_http_downstream_rq_total"),
        "prometheus stats"
    );
}

#[test]
fn paths_are_normalised_before_the_upstream_sees_them() {
    let chain = Chain::start();
    let client = chain.client();
    for (sent, seen) in [
        ("/api/../echo/a", "/echo/a"),
        ("//echo///b", "/echo/b"),
        ("/echo/./c/%61", "/echo/c/a"),
    ] {
        let body = json(client.get(&chain.url(sent)).call().unwrap());
        assert_eq!(body["path"], seen, "{sent}");
    }
    match client.get(&chain.url("/echo/a%2Fb")).call() {
        Err(ureq::Error::Status(400, _)) => {}
        other => panic!("escaped slash must be rejected, got {other:?}"),
    }
}

#[test]
fn client_address_cannot_be_forged_with_x_forwarded_for() {
    let chain = Chain::start();
    let body = json(
        chain
            .client()
            .get(&chain.url("/echo"))
            .set("x-forwarded-for", "203.0.113.9")
            .call()
            .unwrap(),
    );
    let headers: Vec<(String, String)> = serde_json::from_value(body["headers"].clone()).unwrap();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    // No trusted hops: the client is the TCP peer, whatever X-Forwarded-For claims. (Envoy
    // appends its own host address to XFF for a loopback peer, so only the shape is checked.)
    assert_eq!(get("x-envoy-external-address"), Some("127.0.0.1"));
    let xff: Vec<&str> = get("x-forwarded-for").unwrap().split(',').collect();
    assert_eq!(xff.len(), 2, "{xff:?}");
    assert_eq!(xff[0], "203.0.113.9");
    assert!(get("x-request-id").is_some_and(|id| id.len() >= 32));
}

#[test]
fn one_trusted_hop_takes_the_client_from_x_forwarded_for() {
    let chain = Chain::start_with(Options::default().set("XFF_TRUSTED_HOPS=1"));
    let body = json(
        chain
            .client()
            .get(&chain.url("/echo"))
            .set("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .call()
            .unwrap(),
    );
    let headers: Vec<(String, String)> = serde_json::from_value(body["headers"].clone()).unwrap();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-envoy-external-address" && v == "203.0.113.9"),
        "{headers:?}"
    );
}

#[test]
fn cors_preflight_and_csrf() {
    let chain = Chain::start();
    let client = chain.client();
    let preflight = |origin: &str| {
        client
            .request("OPTIONS", &chain.url("/api/products"))
            .set("origin", origin)
            .set("access-control-request-method", "POST")
            .call()
            .unwrap()
    };
    let allowed = preflight("https://app.example.com");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(allowed
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    let other = preflight("https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None);

    // CSRF: unsafe requests from a foreign origin never reach the upstream.
    let before = chain.upstream.received().len();
    match client
        .post(&chain.url("/echo"))
        .set("origin", "https://evil.example")
        .send_string("{}")
    {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(chain.upstream.received().len(), before);
    // API clients without Origin are not browsers: no CSRF exposure, no refusal.
    let resp = client.post(&chain.url("/echo")).send_string("{}").unwrap();
    assert_eq!(resp.status(), 200);
    for origin in [
        "https://app.example.com",
        &format!("https://localhost:{}", chain.https_port),
    ] {
        let resp = client
            .post(&chain.url("/echo"))
            .set("origin", origin)
            .send_string("{}")
            .unwrap();
        assert_eq!(resp.status(), 200, "{origin}");
    }
}

#[test]
fn oversized_request_headers_are_refused() {
    let chain = Chain::start();
    let huge = "a".repeat(70 * 1024);
    match chain
        .client()
        .get(&chain.url("/echo"))
        .set("x-big", &huge)
        .call()
    {
        Err(ureq::Error::Status(431, _)) => {}
        other => panic!("expected 431, got {other:?}"),
    }
    assert!(chain.upstream.received().is_empty());
}

#[test]
fn idempotent_requests_are_retried_and_posts_are_not() {
    let chain = Chain::start();
    let client = chain.client();
    match client.get(&chain.url("/status/503")).call() {
        Err(ureq::Error::Status(503, _)) => {}
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(
        chain.upstream.received().len(),
        3,
        "GET: first try + 2 retries"
    );
    match client.post(&chain.url("/status/503")).send_string("") {
        Err(ureq::Error::Status(503, _)) => {}
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(chain.upstream.received().len(), 4, "POST: never retried");
}

#[test]
fn a_client_sending_headers_too_slowly_is_cut_off() {
    let chain = Chain::start_with(Options::default().set("REQUEST_HEADERS_TIMEOUT=1s"));
    let config = tls::client_config(&chain.certs, &[&TLS13], &[b"http/1.1"]);
    let mut stream = tls::handshake(chain.https_port, config).unwrap();
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .unwrap();
    stream.flush().unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(9),
        "connection still open after {waited:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(
        chain.stat("http.https.downstream_rq_header_timeout"),
        Some(1)
    );
    assert!(chain.upstream.received().is_empty());
}

#[test]
fn clients_cannot_send_portcullis_internal_headers() {
    let chain = Chain::start();
    let forged = [
        ("x-portcullis-would-deny", "auth:none"),
        ("x-portcullis-subject", "admin"),
        ("x-portcullis-roles", "admin"),
        ("x-portcullis-tenant", "other"),
        ("x-portcullis-auth-method", "jwt"),
        ("x-portcullis-key-id", "k1"),
    ];
    let mut req = chain.client().get(&chain.url("/echo"));
    for (name, value) in forged {
        req = req.set(name, value);
    }
    assert_eq!(req.call().unwrap().status(), 200);
    let received = chain.upstream.received().pop().unwrap();
    for (name, _) in forged {
        assert_eq!(received.header(name), None, "{name} reached the upstream");
    }
    assert!(received.header("x-request-id").is_some());
}
