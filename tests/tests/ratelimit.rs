//! The rate-limit filter in the real Envoy (2 workers), with the real `dist/portcullis.wasm` in
//! front of the demo upstream: exactness across workers under concurrency, key independence,
//! X-Forwarded-For spoofing, escalating bans, the draft's headers, shadow mode, bounded memory
//! and bad configurations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_tests::reply::{reply, Reply};
use portcullis_tests::{envoy_refuses, Chain, Options};

const CLIENT: &str = "ratelimit-client";

fn send(req: ureq::Request) -> Reply {
    reply(req.call())
}

fn chain_with(config: &str) -> Chain {
    Chain::start_with(Options::default().filter_config(CLIENT, config))
}

fn metric(chain: &Chain, what: &str) -> u64 {
    chain
        .stat(&format!(
            "wasmcustom.portcullis_ratelimit_ratelimit_client_{what}"
        ))
        .unwrap_or(0)
}

#[test]
fn limit_n_under_concurrency_allows_exactly_n() {
    // 40 per hour with no burst beyond it: no refill worth a request during the test.
    let chain = chain_with(
        r#"{"limits":[{"name":"per-ip","limit":40,"window":3600,"key":["client_ip"]}]}"#,
    );
    let ok = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..12)
        .map(|_| {
            // One agent (connection) per thread: Envoy spreads connections over its 2 workers.
            let agent = chain.client();
            let url = chain.url("/echo");
            let (ok, limited) = (ok.clone(), limited.clone());
            std::thread::spawn(move || {
                for _ in 0..15 {
                    let r = send(agent.get(&url));
                    match r.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected status {other}: {:?} {}", r.headers, r.body),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        ok.load(Ordering::Relaxed),
        40,
        "exactly the limit got through"
    );
    assert_eq!(limited.load(Ordering::Relaxed), 140);
    assert_eq!(
        chain.upstream.received().len(),
        40,
        "429s never reach the upstream"
    );
    assert_eq!(metric(&chain, "per_ip_allowed"), 40);
    assert_eq!(metric(&chain, "per_ip_limited"), 140);
    assert_eq!(metric(&chain, "per_ip_cas_exhausted"), 0);
    eprintln!(
        "CAS conflicts retried: {}",
        metric(&chain, "per_ip_cas_retries")
    );
    // Both workers served some of the connections, so the count was shared between them.
    let port = chain.https_port;
    for worker in ["worker_0", "worker_1"] {
        let name = format!("listener.127.0.0.1_{port}.{worker}.downstream_cx_total");
        let served = chain.stat(&name).unwrap_or(0);
        assert!(served > 0, "{name}: {served}");
    }
}

#[test]
fn distinct_keys_are_independent_and_x_forwarded_for_cannot_choose_the_key() {
    let chain = chain_with(
        r#"{"limits":[
            {"name":"per-ip","limit":10,"window":3600,"key":["client_ip"]},
            {"name":"per-team","algorithm":"sliding_window","limit":3,"window":3600,"key":["header:x-team"]}]}"#,
    );
    let client = chain.client();
    let team = |t: &str| send(client.get(&chain.url("/echo")).set("x-team", t)).status;
    let statuses: Vec<u16> = (0..4).map(|_| team("red")).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // Another team is untouched by red's limit.
    let statuses: Vec<u16> = (0..4).map(|_| team("blue")).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // per-ip counted 6 (the two refused requests were given back): 4 left for this client,
    // whatever address it claims in X-Forwarded-For (no trusted hops in front of Envoy).
    for i in 0..4 {
        let r = send(
            client
                .get(&chain.url("/echo"))
                .set("x-forwarded-for", &format!("198.51.100.{i}")),
        );
        assert_eq!(r.status, 200, "request {i}");
    }
    let r = send(
        client
            .get(&chain.url("/echo"))
            .set("x-forwarded-for", "203.0.113.77"),
    );
    assert_eq!(r.status, 429);
    assert!(r.body.contains("limit `per-ip` exceeded"), "{}", r.body);
}

#[test]
fn with_a_trusted_hop_each_forwarded_client_has_its_own_budget() {
    let chain = Chain::start_with(Options::default().set("XFF_TRUSTED_HOPS=1").filter_config(
        CLIENT,
        r#"{"limits":[{"name":"per-ip","limit":2,"window":3600,"key":["client_ip"]}]}"#,
    ));
    let client = chain.client();
    for addr in ["198.51.100.7", "198.51.100.8"] {
        let statuses: Vec<u16> = (0..3)
            .map(|_| send(client.get(&chain.url("/echo")).set("x-forwarded-for", addr)).status)
            .collect();
        assert_eq!(statuses, vec![200, 200, 429], "{addr}");
    }
}

/// A minimal parser for the draft's fields: a List of Items, each an sf-string with Integer
/// parameters (RFC 9651 §3.1, §3.3.3, §3.1.2). Returns (name, [(param, value)]).
fn parse_sf_list(field: &str) -> Vec<(String, Vec<(String, u64)>)> {
    field
        .split(',')
        .map(|member| {
            let member = member.trim();
            let mut parts = member.split(';');
            let name = parts.next().unwrap();
            assert!(
                name.len() >= 2 && name.starts_with('"') && name.ends_with('"'),
                "item must be an sf-string: {member}"
            );
            let params = parts
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    assert!(
                        k.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                        "{k}"
                    );
                    assert!(v.bytes().all(|b| b.is_ascii_digit()), "integer: {v}");
                    (k.to_string(), v.parse().unwrap())
                })
                .collect();
            (name.trim_matches('"').to_string(), params)
        })
        .collect()
}

#[test]
fn headers_and_problem_follow_the_draft() {
    let chain = chain_with(
        r#"{"headers":{"legacy":true},"limits":[
            {"name":"per-ip","limit":3,"window":60,"key":["client_ip"]},
            {"name":"burst","limit":100,"window":1,"burst":300,"key":["client_ip"]}]}"#,
    );
    let client = chain.client();
    let r = send(client.get(&chain.url("/echo")));
    assert_eq!(r.status, 200);
    let policy = parse_sf_list(r.header("ratelimit-policy").unwrap());
    assert_eq!(
        policy,
        vec![
            ("per-ip".into(), vec![("q".into(), 3), ("w".into(), 60)]),
            (
                "burst".into(),
                vec![
                    ("q".into(), 100),
                    ("w".into(), 1),
                    ("portcullis-burst".into(), 300)
                ]
            ),
        ]
    );
    let limit = parse_sf_list(r.header("ratelimit").unwrap());
    assert_eq!(
        limit[0],
        ("per-ip".into(), vec![("r".into(), 2), ("t".into(), 20)])
    );
    assert_eq!(limit[1].1[0], ("r".into(), 299));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));

    send(client.get(&chain.url("/echo")));
    send(client.get(&chain.url("/echo")));
    let r = send(client.get(&chain.url("/echo")));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry),
        "one token back in 20 s: {retry}"
    );
    let limit = parse_sf_list(r.header("ratelimit").unwrap());
    let tripped = limit.iter().find(|(n, _)| n == "per-ip").unwrap();
    // The draft: Retry-After must not point earlier than the effective window.
    assert_eq!(tripped.1, vec![("r".into(), 0), ("t".into(), retry)]);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let problem: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["reason"], "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("`per-ip`"));
    assert!(problem["request_id"]
        .as_str()
        .is_some_and(|id| id.len() >= 32));
    // Local replies still pass through the chain's response filters.
    assert!(r.header("strict-transport-security").is_some());
}

#[test]
fn shadow_mode_lets_everything_through_and_counts() {
    let chain = chain_with(
        r#"{"mode":"shadow","limits":[{"name":"per-ip","limit":2,"window":3600,"key":["client_ip"]}]}"#,
    );
    let client = chain.client();
    for _ in 0..5 {
        assert_eq!(send(client.get(&chain.url("/echo"))).status, 200);
    }
    let received = chain.upstream.received();
    assert_eq!(received.len(), 5);
    let signals: Vec<Option<&str>> = received
        .iter()
        .map(|r| r.header("x-portcullis-would-deny"))
        .collect();
    let would = Some("ratelimit-client:rate_limited");
    assert_eq!(signals, vec![None, None, would, would, would]);
    assert_eq!(metric(&chain, "per_ip_shadow_limited"), 3);
    assert_eq!(metric(&chain, "per_ip_limited"), 0);
    assert_eq!(metric(&chain, "per_ip_allowed"), 2);
}

#[test]
fn failed_logins_earn_a_ban_that_escalates_and_expires() {
    let chain = chain_with(
        r#"{"limits":[],"penalties":{"strikes":2,"strike_window":60,"from_statuses":[401],
            "bans":[2,4],"decay":3600,"status":403}}"#,
    );
    let client = chain.client();
    let get = |path: &str| send(client.get(&chain.url(path)));
    let banned_for = |secs: u64| {
        assert_eq!(get("/status/401").status, 401);
        assert_eq!(get("/status/401").status, 401);
        let before = chain.upstream.received().len();
        let started = Instant::now();
        let r = get("/echo");
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(r.body.contains("\"reason\":\"banned\""), "{}", r.body);
        assert_eq!(r.header("retry-after"), Some(secs.to_string().as_str()));
        assert_eq!(
            chain.upstream.received().len(),
            before,
            "banned: upstream untouched"
        );
        // Still banned just before the end, free just after it.
        std::thread::sleep(
            Duration::from_millis(secs * 1000 - 700).saturating_sub(started.elapsed()),
        );
        assert_eq!(get("/echo").status, 403);
        std::thread::sleep(
            Duration::from_millis(secs * 1000 + 300).saturating_sub(started.elapsed()),
        );
        assert_eq!(get("/echo").status, 200);
    };
    banned_for(2);
    banned_for(4);
    assert_eq!(metric(&chain, "bans"), 2);
    assert!(metric(&chain, "banned") >= 4);
    assert!(chain.log().contains("ban started after 401 responses"));
}

/// Envoy's heap (`/memory` → `allocated`).
fn allocated(chain: &Chain) -> u64 {
    let memory: serde_json::Value = serde_json::from_str(&chain.admin("/memory")).unwrap();
    memory["allocated"].as_str().unwrap().parse().unwrap()
}

#[test]
fn memory_stays_bounded_with_tens_of_thousands_of_clients() {
    // Nine times the table's capacity: enough to tell a bounded table from one entry per client
    // (`make faults` sends 20 000 more through the whole chain and watches Envoy's RSS).
    const WARMUP: u32 = 8_000;
    const CLIENTS: u32 = 44_000;
    // A 4 096-entry table (512 buckets of 8). The second limit refuses everything after the
    // first request locally, so the load stays inside Envoy; the per-ip entry of each new
    // client is still written before the second limit refuses (the refund of a sliding window
    // leaves the entry live until its windows pass, so every new client evicts a live one).
    let chain = Chain::start_with(Options::default().set("XFF_TRUSTED_HOPS=1").filter_config(
        CLIENT,
        r#"{"table":{"buckets":512,"ways":8},"limits":[
            {"name":"per-ip","algorithm":"sliding_window","limit":5,"window":3600,"key":["client_ip"]},
            {"name":"everyone","limit":1,"window":604800,"key":["method"]}]}"#,
    ));
    let send_range = |from: u32, to: u32| {
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let agent = chain.client();
                let url = chain.url("/echo");
                std::thread::spawn(move || {
                    for i in (from + t..to).step_by(4) {
                        // 10.x.y.z: a distinct client address per request.
                        let [_, a, b, c] = i.to_be_bytes();
                        let r = send(
                            agent
                                .get(&url)
                                .set("x-forwarded-for", &format!("10.{a}.{b}.{c}")),
                        );
                        assert!(r.status == 200 || r.status == 429, "{}", r.status);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    // Warm up connections, stats and the table itself, then measure.
    send_range(0, WARMUP);
    let before = allocated(&chain);
    let started = Instant::now();
    send_range(WARMUP, CLIENTS);
    let after = allocated(&chain);
    let evictions = metric(&chain, "per_ip_evictions");
    eprintln!(
        "{} clients in {:?}: Envoy heap {before} -> {after} bytes, {evictions} evictions",
        CLIENTS - WARMUP,
        started.elapsed()
    );
    // One key per client would hold at least ~100 bytes each (key, value, map node): 3.6 MB.
    // The table holds 4 096 entries whatever the number of clients (measured: +23 kB).
    assert!(
        after < before + 1024 * 1024,
        "heap grew from {before} to {after}"
    );
    assert!(
        evictions > u64::from(CLIENTS - WARMUP) * 9 / 10,
        "{evictions}"
    );
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    for (config, expected) in [
        (
            r#"{"limits":[{"name":"a","limit":1,"window":0,"key":["client_ip"]}]}"#,
            "ratelimit: limits[0].window: 0 is out of range 1..=604800",
        ),
        (
            r#"{"limits":[{"name":"a","limit":1,"window":1,"key":["ip"]}]}"#,
            "ratelimit: limits[0].key[0]: unknown key part `ip`",
        ),
        (
            r#"{"penalties":{"status":500}}"#,
            "ratelimit: penalties.status: 500 must be 429 or 403",
        ),
        (
            r#"{"client_prefix":{"ipv6":8}}"#,
            "ratelimit: client_prefix.ipv6: 8 is out of range 16..=128",
        ),
    ] {
        let (status, log) = envoy_refuses(Options::default().filter_config(CLIENT, config));
        assert!(!status.success());
        assert!(log.contains(expected), "{expected}\n{log}");
    }
    let (status, log) =
        envoy_refuses(Options::default().filter_config("ratelimit-identity", r#"{"limit":[]}"#));
    assert!(!status.success());
    assert!(
        log.contains("ratelimit: limit: unknown field `limit`"),
        "{log}"
    );
}

#[test]
fn the_identity_instance_limits_by_header_and_route_with_its_own_state_and_metrics() {
    // Keys that need no verified identity (auth is built in parallel): a header and a route.
    // The client instance keeps its own, generous per-ip limit from the demo configuration.
    let chain = Chain::start_with(Options::default().filter_config(
        "ratelimit-identity",
        r#"{"limits":[
            {"name":"products","limit":2,"window":3600,"key":["route"],"route":{"path":"/api/products"}},
            {"name":"per-app","algorithm":"sliding_window","limit":3,"window":3600,"key":["header:x-app-id"]}]}"#,
    ));
    let client = chain.client();
    let products: Vec<Reply> = (0..3)
        .map(|_| send(client.get(&chain.url("/api/products"))))
        .collect();
    let statuses: Vec<u16> = products.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 429]);
    assert!(products[2].body.contains("limit `products` exceeded"));
    // Both instances advertise their policies on one response, as separate field lines.
    let policies: Vec<String> = products[0]
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("ratelimit-policy"))
        .map(|(_, v)| v.clone())
        .collect();
    assert!(
        policies
            .iter()
            .any(|p| p.contains("\"products\";q=2;w=3600")),
        "{policies:?}"
    );
    assert!(
        policies.iter().any(|p| p.contains("\"per-ip\";q=100;w=1")),
        "{policies:?}"
    );
    // Other routes are not in the products limit.
    assert_eq!(send(client.get(&chain.url("/echo"))).status, 200);
    let app = |id: &str| send(client.get(&chain.url("/echo")).set("x-app-id", id)).status;
    let statuses: Vec<u16> = (0..4).map(|_| app("mobile")).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    assert_eq!(app("web"), 200);
    let identity = |what: &str| {
        chain
            .stat(&format!(
                "wasmcustom.portcullis_ratelimit_ratelimit_identity_{what}"
            ))
            .unwrap_or(0)
    };
    assert_eq!(identity("products_limited"), 1);
    assert_eq!(identity("products_allowed"), 2);
    assert_eq!(identity("per_app_limited"), 1);
    assert_eq!(identity("per_app_allowed"), 4);
    // The client instance counted every request that reached it, in its own metrics.
    assert_eq!(metric(&chain, "per_ip_allowed"), 9);
    assert_eq!(metric(&chain, "per_ip_limited"), 0);
}

/// One HTTP/1.1 request over a raw TLS connection (for bytes `ureq` will not send); the status.
fn raw_status(chain: &Chain, head: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let config = portcullis_tests::tls::client_config(
        &chain.certs,
        &[&rustls::version::TLS13],
        &[b"http/1.1"],
    );
    let mut stream = portcullis_tests::tls::handshake(chain.https_port, config).unwrap();
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn header_values_that_are_not_utf8_are_keys_not_crashes() {
    let chain = chain_with(
        r#"{"limits":[{"name":"per-team","limit":1,"window":3600,"key":["header:x-team"]}]}"#,
    );
    let request = |team: &[u8]| {
        let mut head =
            b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Team: ".to_vec();
        head.extend_from_slice(team);
        head.extend_from_slice(b"\r\n\r\n");
        raw_status(&chain, &head)
    };
    // Allowed requests go on to the demo upstream, whose HTTP parser refuses such bytes (Envoy
    // answers 503); what matters here is the filter's count, and that its VM survives.
    assert_ne!(request(b"\xff\xfe"), 429);
    assert_eq!(request(b"\xff\xfe"), 429, "the same bytes are the same key");
    assert_ne!(request(b"\xfe\xff"), 429, "other bytes are another key");
    assert_eq!(metric(&chain, "per_team_allowed"), 2);
    assert_eq!(metric(&chain, "per_team_limited"), 1);
    // The VM is alive and still counting.
    assert_eq!(
        send(chain.client().get(&chain.url("/echo")).set("x-team", "a")).status,
        200
    );
    assert!(!chain.log().contains("panicked"), "{}", chain.log());
}

#[test]
fn limit_hits_earn_a_ban_answered_without_the_upstream() {
    let chain = chain_with(
        r#"{"limits":[{"name":"per-ip","limit":1,"window":3600,"key":["client_ip"]}],
            "penalties":{"strikes":2,"strike_window":60,"bans":[30],"status":429}}"#,
    );
    let client = chain.client();
    let get = || send(client.get(&chain.url("/echo")));
    assert_eq!(get().status, 200);
    let first = get();
    assert!(
        first.body.contains("\"reason\":\"rate_limited\""),
        "{}",
        first.body
    );
    let second = get();
    assert!(
        second.body.contains("\"reason\":\"rate_limited\""),
        "{}",
        second.body
    );
    let banned = get();
    assert_eq!(banned.status, 429);
    assert!(
        banned.body.contains("\"reason\":\"banned\""),
        "{}",
        banned.body
    );
    assert_eq!(banned.header("retry-after"), Some("30"));
    assert_eq!(chain.upstream.received().len(), 1);
    assert_eq!(metric(&chain, "per_ip_bans"), 1);
    assert_eq!(metric(&chain, "bans"), 1);
    assert_eq!(metric(&chain, "banned"), 1);
}

#[test]
fn the_demo_configuration_limits_post_login_to_five_a_minute() {
    let chain = Chain::start();
    let client = chain.client();
    let login = || {
        send(
            client
                .post(&chain.url("/login"))
                .set("content-type", "application/json"),
        )
    };
    for i in 0..5 {
        assert_ne!(login().status, 429, "login {i}");
    }
    let refused = login();
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("limit `login` exceeded"),
        "{}",
        refused.body
    );
    // Other routes are only under the generous per-ip limit.
    assert_eq!(send(client.get(&chain.url("/echo"))).status, 200);
}

#[test]
fn rotating_addresses_within_an_ipv6_64_shares_one_budget() {
    // Behind one trusted hop, the client address is the one X-Forwarded-For names.
    let chain = Chain::start_with(Options::default().set("XFF_TRUSTED_HOPS=1").filter_config(
        CLIENT,
        r#"{"limits":[{"name":"per-ip","limit":2,"window":3600,"key":["client_ip"]}]}"#,
    ));
    let client = chain.client();
    let from =
        |addr: &str| send(client.get(&chain.url("/echo")).set("x-forwarded-for", addr)).status;
    // Every request from a new address of one /64, as a host rotating its privacy addresses does.
    let statuses: Vec<u16> = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .iter()
        .map(|a| from(a))
        .collect();
    assert_eq!(statuses, vec![200, 200, 429], "one budget per /64");
    // The next /64 is another client; IPv4 addresses are still counted one by one.
    assert_eq!(from("2001:db8:1:3::1"), 200);
    assert_eq!(from("198.51.100.7"), 200);
    assert_eq!(from("198.51.100.8"), 200);
}

#[test]
fn a_ban_covers_the_whole_ipv6_64_and_the_prefix_is_configurable() {
    let chain = Chain::start_with(Options::default().set("XFF_TRUSTED_HOPS=1").filter_config(
        CLIENT,
        r#"{"client_prefix":{"ipv6":48},
            "penalties":{"strikes":2,"strike_window":60,"bans":[600],"from_statuses":[404]},
            "limits":[{"name":"per-ip","limit":1000,"window":3600,"key":["client_ip"]}]}"#,
    ));
    let client = chain.client();
    let get = |addr: &str, path: &str| {
        send(client.get(&chain.url(path)).set("x-forwarded-for", addr)).status
    };
    // Two 404s from two addresses of one /48 are two strikes of one client: banned.
    assert_eq!(get("2001:db8:5:1::1", "/status/404"), 404);
    assert_eq!(get("2001:db8:5:2::1", "/status/404"), 404);
    assert_eq!(get("2001:db8:5:ffff::9", "/echo"), 429, "the /48 is banned");
    assert_eq!(get("2001:db8:6::1", "/echo"), 200, "another /48 is not");
}

/// The bucket the unkeyed hash of commit 21d46f8 (`DefaultHasher` over the table prefix, 0xff
/// and the key, modulo the bucket count) gave a key: what a client could compute offline.
fn unkeyed_bucket(table: &str, key: &[u8], buckets: u64) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(table.as_bytes());
    h.write_u8(0xff);
    h.write(key);
    h.finish() % buckets
}

#[test]
fn keys_aimed_at_one_bucket_of_the_unkeyed_hash_do_not_evict_a_victim() {
    const BUCKETS: u64 = 1024;
    let chain = chain_with(
        r#"{"table":{"buckets":1024,"ways":2},
            "limits":[{"name":"per-team","limit":2,"window":3600,"key":["header:x-team"]}]}"#,
    );
    let client = chain.client();
    let team = |t: &str| send(client.get(&chain.url("/echo")).set("x-team", t)).status;
    // The victim spends half its budget.
    assert_eq!(team("victim"), 200);
    // The attacker picks 24 team names that the unkeyed hash puts in the victim's bucket (two
    // entries each) and spends each one's whole budget: the victim's entry, less spent, expires
    // first, so on a full bucket it is the one evicted (when_full: evict).
    let table = "portcullis.ratelimit.ratelimit-client.limits";
    let aim = unkeyed_bucket(table, b"per-team\x1fvictim", BUCKETS);
    let aimed: Vec<String> = (0u64..)
        .map(|i| format!("a{i}"))
        .filter(|t| unkeyed_bucket(table, format!("per-team\x1f{t}").as_bytes(), BUCKETS) == aim)
        .take(24)
        .collect();
    for t in &aimed {
        assert_eq!((team(t), team(t)), (200, 200), "{t}");
    }
    // Under the secret key the names spread over the table: the victim's state is still there,
    // one request left. (Evicted, it would start afresh with two.)
    assert_eq!(
        (team("victim"), team("victim")),
        (200, 429),
        "the victim's limit state was evicted"
    );
    assert!(
        metric(&chain, "per_team_evictions") <= 2,
        "evictions: {}",
        metric(&chain, "per_team_evictions")
    );
}
