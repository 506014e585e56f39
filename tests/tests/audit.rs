//! The audit filter in the real Envoy: one record per request, complete, redacted and
//! hash-chained, written to Envoy's log or shipped in NDJSON batches to a real HTTP collector
//! that the tests stop, slow down and restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_audit::chain::{Keyring, Report, Seal, SealKey, Sealer, SCHEMA_MARK};
use portcullis_tests::server::{Request, Response, TestServer};
use portcullis_tests::{audit_key, envoy_refuses, Chain, Options};
use serde_json::Value;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The harness's sealing key, under the filter's default key id.
fn keys() -> Keyring {
    Keyring::new(
        vec![SealKey::new("1", audit_key().as_bytes()).unwrap()],
        false,
    )
}

/// Checks `text` with the harness's key, as `portcullis-audit-verify --key-env` does.
fn verify(text: &str, partial: bool) -> Report {
    portcullis_audit::chain::verify(text, partial, &keys())
}

/// Every record in `text` (Envoy's log, or NDJSON batches), in order.
fn records(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.find(SCHEMA_MARK).map(|at| &l[at..]))
        .map(|r| serde_json::from_str(r).unwrap_or_else(|e| panic!("{e}: {r}")))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn record_for<'a>(all: &'a [Value], path_prefix: &str) -> &'a Value {
    all.iter()
        .find(|r| {
            r["http"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(path_prefix))
        })
        .unwrap_or_else(|| panic!("no record for {path_prefix}: {all:#?}"))
}

fn stat(chain: &Chain, what: &str) -> u64 {
    chain
        .stat(&format!("wasmcustom.portcullis_audit_{what}"))
        .unwrap_or(0)
}

#[test]
fn log_sink_writes_one_complete_chained_record_per_request() {
    let chain = Chain::start();
    let client = chain.client();
    let ok = client
        .get(&chain.url("/echo?page=2"))
        .set("traceparent", TRACEPARENT)
        .set("tracestate", "vendor=abc")
        .set("user-agent", "audit-test/1.0")
        .set("x-portcullis-tls-cipher", "FORGED")
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let echoed: Value = serde_json::from_str(&ok.into_string().unwrap()).unwrap();
    assert!(
        !echoed["headers"]
            .to_string()
            .contains("x-portcullis-tls-cipher"),
        "the cipher header is for the record, not the upstream: {echoed}"
    );
    let err = client.get(&chain.url("/status/503")).call();
    assert!(matches!(err, Err(ureq::Error::Status(503, _))));
    // A cross-site POST: Envoy's CSRF filter answers 403 itself, before the upstream.
    let denied = client
        .post(&chain.url("/echo"))
        .set("origin", "https://evil.example")
        .send_string("x");
    assert!(matches!(denied, Err(ureq::Error::Status(403, _))));
    let body = "{\"item\":\"book\"}";
    let posted = client
        .post(&chain.url("/echo"))
        .set("content-type", "application/json")
        .send_string(body)
        .unwrap();
    assert_eq!(posted.status(), 200);

    wait_for("4 records", Duration::from_secs(10), || {
        records(&chain.log()).len() >= 4
    });
    let log = chain.log();
    let all = records(&log);
    assert_eq!(all.len(), 4, "one record per request: {all:#?}");

    let r = record_for(&all, "/echo?page=2");
    assert_eq!(r["schema"], "portcullis.audit/1");
    let ts = r["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-01-01T00:00:00.000Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.');
    assert_eq!(r["request_id"].as_str().unwrap().len(), 36);
    assert_eq!(r["trace"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(r["trace"]["parent_id"], "00f067aa0ba902b7");
    assert_eq!(r["trace"]["tracestate"], "vendor=abc");
    assert_eq!(r["client"]["address"], "127.0.0.1");
    assert!(r["tls"]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("TLSv1.")));
    let cipher = r["tls"]["cipher"].as_str().unwrap();
    assert!(
        cipher.starts_with("TLS_") || cipher.starts_with("ECDHE-"),
        "{cipher}"
    );
    assert_eq!(r["http"]["method"], "GET");
    assert_eq!(
        r["http"]["authority"],
        format!("localhost:{}", chain.https_port)
    );
    assert_eq!(r["http"]["route"], "upstream");
    assert_eq!(r["http"]["status"], 200);
    assert_eq!(r["http"]["user_agent"], "audit-test/1.0");
    assert!(r["http"]["bytes_in"].as_u64().unwrap() > 0);
    assert!(r["http"]["bytes_out"].as_u64().unwrap() > 0);
    assert!(r["duration_ms"]["total"].is_u64());
    assert!(r["duration_ms"]["upstream"].is_u64());
    assert_eq!(r["outcome"], "allowed");
    // No credentials were sent: no identity, not an invented one. The filters in front of the
    // upstream each published their decision.
    assert!(r.get("identity").is_none(), "{r}");
    assert_eq!(r["decisions"]["auth"]["outcome"], "allow", "{r}");
    assert_eq!(
        r["decisions"]["ratelimit-client"]["outcome"], "allow",
        "{r}"
    );

    let e = record_for(&all, "/status/503");
    assert_eq!(
        (e["http"]["status"].clone(), e["outcome"].clone()),
        (503.into(), "error".into())
    );
    let d = all
        .iter()
        .find(|r| r["http"]["status"] == 403)
        .expect("CSRF deny recorded");
    assert_eq!(d["outcome"], "denied");
    assert!(d["reason"].as_str().unwrap().starts_with("envoy:"), "{d}");
    let p = all
        .iter()
        .find(|r| r["http"]["method"] == "POST" && r["http"]["status"] == 200);
    assert!(p.unwrap()["http"]["bytes_in"].as_u64().unwrap() >= body.len() as u64);

    // The chain over Envoy's log as written verifies; any edit or deletion does not.
    let report = verify(&log, false);
    assert_eq!(report.first_break, None, "{report:?}");
    assert_eq!(report.records, 4);
    let edited = log.replacen("\"status\":503", "\"status\":200", 1);
    let b = verify(&edited, false).first_break.expect("edit detected");
    assert!(b.problem.contains("edited"), "{b:?}");
    // Two workers, four records: some stream has two. Delete the earlier one.
    let later = all
        .iter()
        .find(|r| r["seq"].as_u64() >= Some(2))
        .expect("a stream with two records");
    let earlier_hash = later["prev"].as_str().unwrap();
    let without: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains(&format!("\"hash\":\"{earlier_hash}\"")))
        .collect();
    assert_eq!(without.len(), log.lines().count() - 1);
    let b = verify(&without.join("\n"), false)
        .first_break
        .expect("deletion detected");
    assert_eq!(b.stream, later["stream"].as_str().unwrap());

    assert_eq!(stat(&chain, "records"), 4);
    assert_eq!(stat(&chain, "denied"), 1);
    assert_eq!(stat(&chain, "errors"), 1);
}

#[test]
fn sampling_keeps_denies_and_errors_and_health_is_excluded() {
    let chain = Chain::start_with(Options::default().filter_config(
        "audit",
        r#"{"sample_rate": 0, "exclude_paths": ["/healthz", "/internal/*"]}"#,
    ));
    let client = chain.client();
    for i in 0..5 {
        assert_eq!(
            client
                .get(&chain.url(&format!("/echo?i={i}")))
                .call()
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        client.get(&chain.url("/healthz")).call().unwrap().status(),
        200
    );
    let _ = client.get(&chain.url("/internal/status/503")).call();
    let _ = client.get(&chain.url("/status/500")).call();
    let _ = client
        .delete(&chain.url("/echo"))
        .set("origin", "https://evil.example")
        .call();
    wait_for("sampling counters", Duration::from_secs(10), || {
        stat(&chain, "sampled_out") >= 5
            && stat(&chain, "excluded") >= 1
            && stat(&chain, "records") >= 3
    });
    std::thread::sleep(Duration::from_millis(300));
    let all = records(&chain.log());
    let paths: Vec<&str> = all
        .iter()
        .map(|r| r["http"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(all.len(), 3, "only the errors and the deny: {paths:?}");
    assert!(paths.contains(&"/status/500"));
    assert!(
        paths.contains(&"/internal/status/503"),
        "an exclusion never hides an error"
    );
    assert!(all.iter().any(|r| r["outcome"] == "denied"));
    assert_eq!(stat(&chain, "sampled_out"), 5);
    assert_eq!(stat(&chain, "excluded"), 1, "/healthz");
}

const SECRETS: [&str; 9] = [
    "BearerSecret0001",
    "CookieSecret0002",
    "ApiKeySecret0003",
    "QueryToken0004",
    "QueryPassword0005",
    "BodyPassword0006",
    "4111111111111111",
    "PromoSecret0008",
    "eyJhbGciOiJIUzI1NiJ9",
];

/// Sends the secrets in every place a client can put them.
fn send_secrets(chain: &Chain) {
    let client = chain.client();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    let resp = client
        .post(&chain.url("/echo?access_token=QueryToken0004&Password=QueryPassword0005&promo=PromoSecret0008&page=1"))
        .set("authorization", "Bearer BearerSecret0001")
        .set("cookie", "session=CookieSecret0002; theme=dark")
        .set("x-api-key", "ApiKeySecret0003")
        .set("content-type", "application/json")
        .send_string(r#"{"user":"ada","password":"BodyPassword0006","card_number":"4111111111111111"}"#)
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Not a public route: auth refuses the unverifiable token (401), and the record of that
    // refusal must not carry the token either.
    match client
        .get(&chain.url(&format!("/reset/{jwt}/confirm?next=1")))
        .set("authorization", &format!("Bearer {jwt}"))
        .call()
    {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("expected auth's 401, got {other:?}"),
    }
}

fn assert_no_secret(text: &str, place: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} leaked into {place}:\n{text}");
    }
}

#[test]
fn secrets_reach_neither_a_record_nor_envoys_log() {
    let chain = Chain::start_with(Options::default().filter_config(
        "audit",
        r#"{"redact_query_params": ["promo"], "hash_identifiers": ["client_address"]}"#,
    ));
    send_secrets(&chain);
    wait_for("2 records", Duration::from_secs(10), || {
        records(&chain.log()).len() >= 2
    });
    let log = chain.log();
    assert_no_secret(&log, "Envoy's log");
    let all = records(&log);
    let r = record_for(&all, "/echo");
    assert_eq!(
        r["http"]["path"],
        "/echo?access_token=[redacted]&Password=[redacted]&promo=[redacted]&page=1"
    );
    assert!(r["client"]["address"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(!log.contains("\"address\":\"127.0.0.1\""));
    let reset = record_for(&all, "/reset/");
    assert_eq!(reset["http"]["path"], "/reset/[redacted]/confirm?next=1");
}

#[test]
fn secrets_reach_no_shipped_batch() {
    let server = TestServer::start(|_| Response::status(200));
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUDIT_COLLECTOR_PORT={}", server.port()))
            .filter_config(
                "audit",
                r#"{"sink": "http", "redact_query_params": ["promo"],
                    "http": {"cluster": "audit_collector", "flush_interval_ms": 100}}"#,
            ),
    );
    send_secrets(&chain);
    wait_for("2 shipped records", Duration::from_secs(10), || {
        records(&received_text(&server)).len() >= 2
    });
    let shipped = server.received();
    for post in &shipped {
        assert_no_secret(&String::from_utf8_lossy(&post.body), "a shipped batch");
        for (name, value) in &post.headers {
            assert_no_secret(&format!("{name}: {value}"), "a shipped batch's headers");
        }
    }
    assert_no_secret(&chain.log(), "Envoy's log");
}

/// A collector the test can make slow.
fn collector(port: u16, slow: Arc<AtomicBool>) -> TestServer {
    TestServer::start_on(
        port,
        Arc::new(move |_req: &Request| {
            if slow.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1500));
            }
            Response::status(204)
        }),
    )
}

fn received_text(server: &TestServer) -> String {
    server
        .received()
        .iter()
        .filter(|r| r.method == "POST" && r.url == "/ingest")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn http_sink(batch: usize, queue: u64) -> String {
    format!(
        r#"{{"sink": "http", "http": {{"cluster": "audit_collector", "batch_max_records": {batch},
            "flush_interval_ms": 200, "queue_capacity": {queue}, "timeout_ms": 500,
            "retry_base_ms": 100, "retry_max_ms": 400}}}}"#
    )
}

#[test]
fn http_sink_ships_in_order_and_rides_out_a_collector_outage() {
    let slow = Arc::new(AtomicBool::new(false));
    let server = collector(0, Arc::clone(&slow));
    let port = server.port();
    let chain = Chain::start_with(
        Options::default()
            .set(&format!("AUDIT_COLLECTOR_PORT={port}"))
            .filter_config("audit", &http_sink(5, 20)),
    );
    let client = chain.client();
    for i in 0..12 {
        let r = client
            .get(&chain.url(&format!("/echo?n={i}")))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    wait_for("12 shipped records", Duration::from_secs(15), || {
        records(&received_text(&server)).len() >= 12
    });
    let posts = server.received();
    assert!(posts
        .iter()
        .all(|p| p.header("content-type") == Some("application/x-ndjson")));
    assert!(posts
        .iter()
        .all(|p| p.header("host") == Some("audit-collector")));
    let first_text = received_text(&server);
    let text = first_text.clone();
    let shipped = records(&text);
    let order: Vec<String> = shipped
        .iter()
        .map(|r| r["http"]["path"].as_str().unwrap().to_string())
        .collect();
    let sent: Vec<String> = (0..12).map(|i| format!("/echo?n={i}")).collect();
    assert_eq!(order, sent, "complete and in order");
    let seqs: Vec<u64> = shipped.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<u64>>(),
        "one stream, one shipper"
    );
    assert!(shipped.iter().all(|r| r["tls"]["cipher"].is_string()));
    let report = verify(&text, false);
    assert_eq!(
        (report.records, report.first_break.clone()),
        (12, None),
        "{report:?}"
    );
    assert_eq!(stat(&chain, "shipped"), 12);
    assert!(
        !chain.log().contains(SCHEMA_MARK),
        "the HTTP sink does not also log records"
    );

    // The collector goes away: traffic is unaffected; the queue (20) and the shipper's one
    // batch (0 to 5 records, depending on how many it had taken when it flushed) fill, and the
    // rest is dropped and counted.
    drop(server);
    for i in 0..60 {
        let r = client
            .get(&chain.url(&format!("/echo?down={i}")))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    wait_for("drops counted", Duration::from_secs(10), || {
        stat(&chain, "dropped") >= 35
    });
    std::thread::sleep(Duration::from_millis(300));
    let dropped = stat(&chain, "dropped");
    assert!(
        (35..=40).contains(&dropped),
        "dropped {dropped}: queue 20 + a batch of 0..5 held; {}",
        chain.admin("/stats?filter=portcullis_audit")
    );
    wait_for("a failed POST", Duration::from_secs(10), || {
        stat(&chain, "ship_failures") >= 1
    });

    // It comes back slow (answers after the 500 ms timeout): still no effect on traffic.
    slow.store(true, Ordering::SeqCst);
    let server = collector(port, Arc::clone(&slow));
    for i in 0..3 {
        let r = client
            .get(&chain.url(&format!("/echo?slow={i}")))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let failures = stat(&chain, "ship_failures");
    wait_for("a timed-out POST", Duration::from_secs(10), || {
        stat(&chain, "ship_failures") > failures
    });

    // And healthy again: shipping resumes and the backlog drains. (Records finished while the
    // queue was still full, e.g. the three above, may have been dropped: that is the design.)
    slow.store(false, Ordering::SeqCst);
    wait_for("the backlog shipped", Duration::from_secs(20), || {
        stat(&chain, "shipped") == stat(&chain, "queued")
    });
    for i in 0..3 {
        let r = client
            .get(&chain.url(&format!("/echo?after={i}")))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    wait_for("new records shipped", Duration::from_secs(10), || {
        records(&received_text(&server))
            .iter()
            .any(|r| r["http"]["path"] == "/echo?after=2")
    });
    let text = received_text(&server);
    let dropped = stat(&chain, "dropped");
    // A batch retried after a timeout may arrive twice: count each (stream, first_seq) once.
    let batches: std::collections::BTreeMap<(String, u64), u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let b = &v["batch"];
            Some((
                (b["stream"].as_str()?.to_string(), b["first_seq"].as_u64()?),
                b["dropped"].as_u64()?,
            ))
        })
        .collect();
    let reported: u64 = batches.values().sum();
    assert_eq!(
        reported, dropped,
        "drops reported in the next batches:\n{text}"
    );
    let resumed = records(&text);
    let first_down = resumed
        .iter()
        .find(|r| r["http"]["path"] == "/echo?down=0")
        .expect("records queued during the outage were kept");
    assert_eq!(
        first_down["seq"], 13,
        "the chain continues where it stopped"
    );
    // Duplicates (a slow POST delivered after its timeout, then retried) are not a break, and
    // every record that was not dropped arrived.
    let report = verify(&format!("{first_text}{text}"), false);
    assert_eq!(report.first_break, None, "{report:?}");
    let written = stat(&chain, "records");
    assert_eq!(written, 12 + 60 + 3 + 3);
    assert_eq!(report.records, written - dropped, "{report:?}");
}

#[test]
fn bad_audit_configs_are_refused_naming_the_field() {
    for (config, message) in [
        (
            r#"{"sink": "http"}"#,
            "audit: http: required with \"sink\": \"http\" (at least its cluster)",
        ),
        (
            r#"{"sample_rate": 2}"#,
            "audit: sample_rate: must be between 0 and 1",
        ),
        (
            r#"{"sink": "http", "http": {"cluster": "audit_collector", "queue_capacity": 0}}"#,
            "audit: http.queue_capacity: must be between 1 and 1000000",
        ),
        (
            r#"{"hash_identifiers": ["subject"], "hash_key_env": "PORTCULLIS_NO_SUCH_VAR"}"#,
            "audit: hash_key_env: environment variable `PORTCULLIS_NO_SUCH_VAR` is not set",
        ),
        (
            r#"{"seal": {"key_env": "PORTCULLIS_NO_SUCH_VAR"}}"#,
            "audit: seal.key_env: environment variable `PORTCULLIS_NO_SUCH_VAR` is not set for \
             the VM",
        ),
        (
            r#"{"seal": {"key_env": "SHORT_AUDIT_KEY"}}"#,
            "audit: seal.key_env: `SHORT_AUDIT_KEY`: the key is 20 bytes; at least 32 are required",
        ),
        (
            r#"{"seal": {"key_id": "key 1"}}"#,
            "audit: seal.key_id: 1 to 64 of letters, digits, `.`, `_` and `-`",
        ),
        (
            r#"{"seal": {"mode": "unkeyed_sha256", "key_id": "2"}}"#,
            "audit: seal.key_id: only with \"mode\": \"hmac_sha256\"",
        ),
    ] {
        let (status, log) = envoy_refuses(
            Options::default()
                .env("SHORT_AUDIT_KEY", "short-key-0123456789")
                .filter_config("audit", config),
        );
        assert!(!status.success());
        assert!(log.contains(message), "{config}: {log}");
        assert!(
            !log.contains("short-key-0123456789"),
            "the key leaked: {log}"
        );
    }
}

#[test]
fn the_unkeyed_seal_is_an_explicit_choice_and_says_so() {
    let chain = Chain::start_with(
        Options::default().filter_config("audit", r#"{"seal": {"mode": "unkeyed_sha256"}}"#),
    );
    let _ = chain.client().get(&chain.url("/echo")).call().unwrap();
    wait_for("a record", Duration::from_secs(10), || {
        !records(&chain.log()).is_empty()
    });
    let log = chain.log();
    assert!(log.contains("audit: records are sealed unkeyed"), "{log}");
    assert!(records(&log)[0].get("key_id").is_none());
    assert!(
        verify(&log, false).first_break.is_some(),
        "refused by default"
    );
    let r = portcullis_audit::chain::verify(&log, false, &Keyring::unkeyed());
    assert_eq!((r.records, r.first_break), (1, None));
}

/// The records of `log` re-sealed by someone who can write the log but does not hold the key:
/// every record edited by `edit`, every chain recomputed with `seal` by the audit crate's own
/// sealer.
fn forge(log: &str, edit: (&str, &str), seal: &Seal) -> String {
    let mut sealers: std::collections::HashMap<String, Sealer> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(at) = line.find(SCHEMA_MARK) else {
            continue;
        };
        let line = &line[at..];
        let r: Value = serde_json::from_str(line).unwrap();
        let stream = r["stream"].as_str().unwrap().to_string();
        // The seal is appended to the record: cut it off, keep the record's own fields.
        let body = format!("{}}}", &line[..line.rfind(",\"stream\":").unwrap()]);
        let sealer = sealers
            .entry(stream.clone())
            .or_insert_with(|| Sealer::new(stream.clone(), seal.clone()));
        out.push(
            sealer
                .seal(body.replace(edit.0, edit.1).into_bytes())
                .unwrap(),
        );
    }
    out.join("\n")
}

#[test]
fn a_log_rewritten_and_resealed_by_its_writer_does_not_verify() {
    let chain = Chain::start();
    let client = chain.client();
    for i in 0..3 {
        let _ = client.get(&chain.url(&format!("/status/50{i}"))).call();
    }
    wait_for("3 records", Duration::from_secs(10), || {
        records(&chain.log()).len() >= 3
    });
    let log = chain.log();
    assert!(
        records(&log).iter().all(|r| r["key_id"] == "1"),
        "every record names its key"
    );
    let report = verify(&log, false);
    assert_eq!((report.records, report.first_break), (3, None));
    // Whoever can write the log hides the errors: every record rewritten, every chain resealed,
    // unkeyed (what the seal was) or under a key of their own with the same id.
    let edit = ("\"outcome\":\"error\"", "\"outcome\":\"allowed\"");
    let guessed = Seal::Keyed(SealKey::new("1", &[b'g'; 32]).unwrap());
    for seal in [Seal::Unkeyed, guessed] {
        let forged = forge(&log, edit, &seal);
        assert!(forged.contains("\"outcome\":\"allowed\""));
        assert_eq!(
            portcullis_audit::chain::verify(&forged, false, &Keyring::new(Vec::new(), true))
                .first_break
                .is_none(),
            matches!(seal, Seal::Unkeyed),
            "only an unkeyed forgery passes a verifier that accepts unkeyed records"
        );
        let b = verify(&forged, false).first_break;
        assert!(b.is_some(), "a resealed forgery verified: {forged}");
    }
    // No part of the key reaches Envoy's log.
    assert!(!log.contains(audit_key()));
    assert!(!log.contains(&audit_key()[..16]));
}

#[test]
fn a_log_level_that_hides_records_is_flagged_at_start() {
    let chain = Chain::start_with(Options::default().wasm_log_level("warning"));
    let log = chain.log();
    assert!(
        log.contains("audit: records are written to Envoy's log at info"),
        "no warning at start: {log}"
    );
    assert_eq!(
        chain.stat("wasmcustom.portcullis_audit_records_hidden_by_log_level"),
        Some(1)
    );
    let ok = Chain::start();
    assert_eq!(
        ok.stat("wasmcustom.portcullis_audit_records_hidden_by_log_level"),
        Some(0)
    );
    assert!(!ok
        .log()
        .contains("audit: records are written to Envoy's log at info"));
}

#[test]
fn public_routes_are_recorded_and_an_exclusion_never_hides_a_refusal() {
    // One request per client address: the second is refused by the client rate limit.
    let one_per_client =
        r#"{"limits":[{"name":"per-ip","limit":1,"window":3600,"key":["client_ip"]}]}"#;
    let chain =
        Chain::start_with(Options::default().filter_config("ratelimit-client", one_per_client));
    let client = chain.client();
    assert_eq!(
        client
            .get(&chain.url("/healthz?probe=1"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let refused = client.get(&chain.url("/healthz?probe=2")).call();
    assert!(
        matches!(refused, Err(ureq::Error::Status(429, _))),
        "{refused:?}"
    );
    wait_for("2 records", Duration::from_secs(10), || {
        records(&chain.log()).len() >= 2
    });
    let all = records(&chain.log());
    assert_eq!(record_for(&all, "/healthz?probe=1")["outcome"], "allowed");
    let r = record_for(&all, "/healthz?probe=2");
    assert_eq!(r["outcome"], "denied");
    assert_eq!(r["reason"], "ratelimit-client:rate_limited");
    drop(chain);

    // An operator's explicit exclusion drops routine requests only: not one with a query
    // string, not a refusal. (`/healthz` itself Envoy's health check answers, excluded.)
    let chain = Chain::start_with(
        Options::default()
            .filter_config(
                "ratelimit-client",
                r#"{"limits":[{"name":"per-ip","limit":2,"window":3600,"key":["client_ip"]}]}"#,
            )
            .filter_config("audit", r#"{"exclude_paths": ["/healthz", "/echo/probe"]}"#),
    );
    let client = chain.client();
    let status = |path: &str| match client.get(&chain.url(path)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{path}: {e}"),
    };
    assert_eq!(status("/healthz"), 200);
    assert_eq!(status("/echo/probe"), 200);
    assert_eq!(status("/echo/probe?q=1"), 200);
    assert_eq!(status("/echo/probe"), 429);
    wait_for("2 records", Duration::from_secs(10), || {
        records(&chain.log()).len() >= 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let all = records(&chain.log());
    let kept: Vec<(&str, &str)> = all
        .iter()
        .map(|r| {
            (
                r["http"]["path"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![("/echo/probe?q=1", "allowed"), ("/echo/probe", "denied")],
        "{all:#?}"
    );
    assert_eq!(
        stat(&chain, "excluded"),
        2,
        "/healthz and the first /echo/probe"
    );
}
