//! Engine tests: whole request/response exchanges against an in-memory shared data and a
//! scripted upstream, so every rule is checked the way the adapter drives it.

use super::*;
use crate::config::load;
use portcullis_common::identity::AuthMethod;
use portcullis_common::slots::MemoryStore;

const T0: u64 = 1_700_000_000;

fn date(t: u64) -> String {
    freshness::format_http_date(t)
}

struct Sim {
    engine: Engine,
    store: MemoryStore,
    /// What the upstream received, per call.
    upstream: Vec<Headers>,
}

/// What the client got.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
    events: Vec<Event>,
    decision: Decision,
    refresh: Option<Refresh>,
}

impl Got {
    fn header(&self, n: &str) -> Option<&str> {
        first(&self.headers, n)
    }
    fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }
    fn header_values(&self, n: &str) -> Vec<&str> {
        values(&self.headers, n)
    }
}

type Upstream<'a> = &'a dyn Fn(&Headers) -> (u16, Headers, Vec<u8>);

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn json_ok(cc: &'static str, t: u64) -> impl Fn(&Headers) -> (u16, Headers, Vec<u8>) {
    move |_| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", cc),
                ("date", &date(t)),
                ("etag", "\"v1\""),
            ]),
            b"{\"v\":1}".to_vec(),
        )
    }
}

impl Sim {
    fn new(config: &str) -> Sim {
        Sim {
            engine: Engine::new(load(config.as_bytes()).unwrap(), "test"),
            store: MemoryStore::new(),
            upstream: Vec::new(),
        }
    }

    fn products() -> Sim {
        Sim::new(
            r#"{"routes":[{"path":"/api/products"},{"path":"/api/products/{id}"},{"path":"/me","per_user":true}],"purge":{"path":"/_purge"}}"#,
        )
    }

    fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        id: Option<&Identity>,
        now: u64,
        up: Upstream,
    ) -> Got {
        let headers = h(headers);
        let req = Request {
            method,
            scheme: "https",
            authority: "shop.example",
            target,
            headers: &headers,
            identity: id,
            now,
        };
        match self.engine.on_request(&mut self.store, &req) {
            RequestAction::Respond {
                reply,
                decision,
                events,
                refresh,
            } => {
                let (status, headers, body) = match reply {
                    Reply::Response {
                        status,
                        headers,
                        body,
                    } => (status, headers, body),
                    Reply::Problem {
                        status,
                        headers,
                        reason,
                        ..
                    } => {
                        let mut hs = headers;
                        hs.push(("x-reason".into(), reason.into()));
                        (status, hs, Vec::new())
                    }
                };
                Got {
                    status,
                    headers,
                    body,
                    events,
                    decision,
                    refresh,
                }
            }
            RequestAction::Forward {
                remove,
                set,
                pending,
                would_deny,
                mut events,
            } => {
                let mut sent: Headers = headers
                    .iter()
                    .filter(|(n, _)| !remove.contains(n))
                    .cloned()
                    .collect();
                sent.retain(|(n, _)| !set.iter().any(|(m, _)| m == n));
                sent.extend(set);
                if let Some(d) = would_deny {
                    assert_eq!(d.outcome, Outcome::ShadowDeny);
                    sent.push((
                        "x-portcullis-would-deny".into(),
                        d.reason.unwrap_or_default(),
                    ));
                }
                self.upstream.push(sent.clone());
                let (status, uh, body) = up(&sent);
                self.complete(&pending, status, uh, body, now, events.as_mut())
            }
        }
    }

    fn complete(
        &mut self,
        pending: &Pending,
        status: u16,
        uh: Headers,
        body: Vec<u8>,
        now: u64,
        events: &mut Vec<Event>,
    ) -> Got {
        match self
            .engine
            .on_response(&mut self.store, pending, status, &uh, now)
        {
            ResponseAction::Replace {
                reply,
                decision,
                events: e,
            } => {
                events.extend(e);
                let Reply::Response {
                    status,
                    headers,
                    body,
                } = reply
                else {
                    panic!("problem on response")
                };
                Got {
                    status,
                    headers,
                    body,
                    events: events.clone(),
                    decision,
                    refresh: None,
                }
            }
            ResponseAction::Pass {
                cache_status,
                decision,
                events: e,
                capture,
            } => {
                events.extend(e);
                if let Some(c) = capture {
                    events.extend(self.engine.finish(&mut self.store, *c, body.clone(), now));
                }
                let mut headers = uh;
                headers.push(("cache-status".into(), cache_status));
                Got {
                    status,
                    headers,
                    body,
                    events: events.clone(),
                    decision,
                    refresh: None,
                }
            }
        }
    }

    fn get(&mut self, target: &str, now: u64, up: Upstream) -> Got {
        self.send("GET", target, &[], None, now, up)
    }

    fn calls(&self) -> usize {
        self.upstream.len()
    }
}

fn never(_: &Headers) -> (u16, Headers, Vec<u8>) {
    panic!("the upstream must not be called")
}

fn user(subject: &str, roles: &[&str]) -> Identity {
    Identity {
        subject: subject.into(),
        method: AuthMethod::Jwt,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        tenant: None,
        key_id: None,
        issuer: Some("iss".into()),
    }
}

#[test]
fn miss_store_hit_with_age_and_cache_status() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    let first = sim.get("/api/products", T0, &up);
    assert_eq!(first.status, 200);
    assert_eq!(first.cache_status(), "portcullis; fwd=miss; stored; ttl=60");
    assert!(first.events.contains(&Event::Stored));
    let hit = sim.get("/api/products", T0 + 10, &never);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.body, b"{\"v\":1}");
    assert_eq!(hit.header("age"), Some("10"));
    assert_eq!(hit.cache_status(), "portcullis; hit; ttl=50");
    assert_eq!(hit.header("etag"), Some("\"v1\""));
    assert_eq!(
        hit.decision
            .details
            .get("cache_status")
            .and_then(|v| v.as_str()),
        Some("hit")
    );
    // HEAD is answered from the GET entry, without a body.
    let head = sim.send("HEAD", "/api/products", &[], None, T0 + 11, &never);
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(sim.calls(), 1);
}

#[test]
fn not_cacheable_routes_and_methods_pass_with_status() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    let a = sim.get("/account/profile.css", T0, &up);
    assert_eq!(a.cache_status(), "portcullis; fwd=uri-miss");
    sim.get("/account/profile.css", T0, &up);
    assert_eq!(sim.calls(), 2, "never stored");
    let o = sim.send("OPTIONS", "/api/products", &[], None, T0, &up);
    assert_eq!(o.cache_status(), "portcullis; fwd=method");
    // Path confusion on a cacheable prefix does not match the route either.
    sim.get("/api/products/1/x.css", T0, &up);
    sim.get("/api/products/1/x.css", T0, &up);
    assert_eq!(sim.calls(), 5);
}

/// The adapter reads neither headers nor identity for a pass-through request, nor the response
/// of one: that is only sound if the engine decides them identically without those inputs.
#[test]
fn pass_through_needs_no_headers_identity_or_response() {
    let sim = Sim::products();
    let e = &sim.engine;
    let id = user("alice", &["admin"]);
    let full = h(&[
        ("authorization", "Bearer x"),
        ("cache-control", "only-if-cached"),
        ("x-forwarded-host", "evil.example"),
    ]);
    for (method, target, fwd) in [
        ("GET", "/api/orders/1", Some("uri-miss")),
        ("HEAD", "/account/profile.css?x=1", Some("uri-miss")),
        ("OPTIONS", "/api/products", Some("method")),
        ("GET", "/api/products", None),
        ("GET", "/me", None),
        ("PURGE", "/api/orders/1", None),
        ("GET", "/_purge?url=/api/products", None),
        ("POST", "/api/orders/1", None),
        ("DELETE", "/x", None),
    ] {
        assert_eq!(
            e.pass_through(method, "h", target),
            fwd,
            "{method} {target}"
        );
        if fwd.is_none() {
            continue;
        }
        let with_all = Request {
            method,
            scheme: "https",
            authority: "h",
            target,
            headers: &full,
            identity: Some(&id),
            now: T0,
        };
        let bare_req = Request {
            scheme: "",
            headers: &[],
            identity: None,
            ..with_all
        };
        let mut store = MemoryStore::new();
        let with = e.on_request(&mut store, &with_all);
        let bare = e.on_request(&mut store, &bare_req);
        assert_eq!(with, bare, "{method} {target}");
        assert_eq!(bare, e.passed_through(fwd.unwrap_or_default()));
        let RequestAction::Forward { pending, .. } = bare else {
            panic!("{method} {target}: {bare:?}")
        };
        assert!(!pending.reads_response());
        let read = e.on_response(
            &mut store,
            &pending,
            200,
            &h(&[("cache-control", "public, max-age=60")]),
            T0,
        );
        let unread = e.on_response(&mut store, &pending, 0, &[], 0);
        assert_eq!(read, unread, "{method} {target}");
    }
}

#[test]
fn response_directives_that_forbid_storing() {
    for (cc, why) in [
        ("no-store, max-age=60", "no-store"),
        ("private, max-age=60", "private"),
        ("no-store, private=\"x\", max-age=60", "no-store"),
    ] {
        let mut sim = Sim::products();
        let up = json_ok(cc, T0);
        let got = sim.get("/api/products", T0, &up);
        assert_eq!(
            got.cache_status(),
            format!("portcullis; fwd=miss; detail={why}"),
            "{cc}"
        );
        sim.get("/api/products", T0 + 1, &up);
        assert_eq!(sim.calls(), 2, "{cc}");
    }
    // No freshness information and no heuristic: not stored.
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[("content-type", "application/json")]),
            b"{}".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("detail=no-freshness"));
}

#[test]
fn statuses() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            500,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            b"{}".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("detail=status"));
    let up = |_: &Headers| {
        (
            404,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            b"{}".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products/9", T0, &up)
        .cache_status()
        .contains("stored"));
    assert_eq!(sim.get("/api/products/9", T0 + 1, &never).status, 404);
    let up = |_: &Headers| {
        (
            206,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            b"{}".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products/8", T0, &up)
        .cache_status()
        .ends_with("detail=status"));
}

#[test]
fn freshness_precedence_end_to_end() {
    // s-maxage wins over max-age; Expires - Date used without either.
    let mut sim = Sim::products();
    let up = json_ok("max-age=10, s-maxage=100", T0);
    sim.get("/api/products", T0, &up);
    assert_eq!(sim.get("/api/products", T0 + 50, &never).status, 200);
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("date", &date(T0)),
                ("expires", &date(T0 + 30)),
            ]),
            b"{}".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("stored; ttl=30"));
    assert!(sim
        .get("/api/products", T0 + 29, &never)
        .cache_status()
        .contains("hit; ttl=1"));
    // Stale at 30: revalidated (forwarded).
    sim.get("/api/products", T0 + 30, &up);
    assert_eq!(sim.calls(), 2);
}

#[test]
fn heuristic_freshness_only_when_configured() {
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("date", &date(T0)),
                ("last-modified", &date(T0 - 1000)),
            ]),
            b"{}".to_vec(),
        )
    };
    let mut off = Sim::products();
    assert!(off
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("detail=no-freshness"));
    let mut on = Sim::new(
        r#"{"routes":[{"path":"/api/products"}],"heuristic":{"fraction":0.1,"max_secs":50}}"#,
    );
    assert!(on
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("stored; ttl=50"));
    assert_eq!(on.get("/api/products", T0 + 49, &never).status, 200);
}

#[test]
fn authorization_only_where_the_rfc_allows() {
    for (cc, stored) in [
        ("max-age=60", false),
        ("public, max-age=60", true),
        ("s-maxage=60", true),
        ("must-revalidate, max-age=60", true),
    ] {
        let mut sim = Sim::products();
        let up = json_ok(cc, T0);
        sim.send(
            "GET",
            "/api/products",
            &[("authorization", "Bearer x")],
            None,
            T0,
            &up,
        );
        sim.get("/api/products", T0 + 1, &up);
        assert_eq!(sim.calls() == 1, stored, "{cc}");
    }
}

/// Auth removes the token before the cache by default (`remove_token`): a verified identity
/// counts as an Authorization-bearing request, so one user's response is not stored for all.
#[test]
fn an_authenticated_request_counts_as_authorization_bearing() {
    for (cc, stored) in [("max-age=60", false), ("public, max-age=60", true)] {
        let mut sim = Sim::products();
        let up = json_ok(cc, T0);
        let id = user("alice", &["viewer"]);
        sim.send("GET", "/api/products", &[], Some(&id), T0, &up);
        sim.get("/api/products", T0 + 1, &up);
        assert_eq!(sim.calls() == 1, stored, "{cc}");
    }
}

#[test]
fn set_cookie_is_stored_only_when_configured() {
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("set-cookie", "s=1"),
            ]),
            b"{}".to_vec(),
        )
    };
    let mut sim = Sim::products();
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .ends_with("detail=set-cookie"));
    // Configured: stored; the cookie is served again only on a per-user entry (to its user),
    // never from a shared one.
    let mut sim = Sim::new(
        r#"{"routes":[{"path":"/api/products"},{"path":"/me","per_user":true}],"store_set_cookie":true}"#,
    );
    let first = sim.get("/api/products", T0, &up);
    assert_eq!(
        first.header("set-cookie"),
        Some("s=1"),
        "the first client gets it"
    );
    let hit = sim.get("/api/products", T0 + 1, &never);
    assert!(hit.cache_status().contains("hit"));
    assert_eq!(hit.header("set-cookie"), None, "no one else gets it");
    let alice = user("alice", &[]);
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    let again = sim.send("GET", "/me", &[], Some(&alice), T0 + 1, &never);
    assert_eq!(again.header("set-cookie"), Some("s=1"));
    let bob = sim.send("GET", "/me", &[], Some(&user("bob", &[])), T0 + 1, &up);
    assert!(bob.cache_status().contains("fwd=miss"));
}

#[test]
fn deception_content_type_check() {
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "text/html"),
                ("cache-control", "public, max-age=60"),
            ]),
            b"<p>".to_vec(),
        )
    };
    let mut sim = Sim::products();
    assert!(sim
        .get("/api/products/1", T0, &up)
        .cache_status()
        .ends_with("detail=content-type"));
}

#[test]
fn encoded_bodies_are_served_only_to_clients_accepting_them() {
    let up = |hs: &Headers| {
        let gz = first(hs, "accept-encoding").is_some_and(|a| a.contains("gzip"));
        let mut headers = h(&[
            ("content-type", "application/json"),
            ("cache-control", "max-age=60"),
        ]);
        if gz {
            headers.push(("content-encoding".into(), "gzip".into()));
            (200, headers, b"\x1f\x8b".to_vec())
        } else {
            (200, headers, b"{}".to_vec())
        }
    };
    let mut sim = Sim::products();
    let get = |sim: &mut Sim, ae: &str, now: u64, up: Upstream| {
        let hs: Vec<(&str, &str)> = if ae.is_empty() {
            vec![]
        } else {
            vec![("accept-encoding", ae)]
        };
        sim.send("GET", "/api/products", &hs, None, now, up)
    };
    let zipped = get(&mut sim, "gzip, br", T0, &up);
    assert!(
        zipped.cache_status().contains("stored"),
        "{}",
        zipped.cache_status()
    );
    // Another client that takes gzip: the gzip entry.
    let hit = get(&mut sim, "br;q=1, gzip;q=0.5", T0 + 1, &never);
    assert_eq!(hit.header("content-encoding"), Some("gzip"));
    assert_eq!(hit.body, b"\x1f\x8b");
    // Clients that do not take gzip never get it: a miss, and their identity variant.
    for ae in ["", "br", "gzip;q=0", "*;q=0"] {
        let got = get(&mut sim, ae, T0 + 2, &up);
        assert_eq!(got.header("content-encoding"), None, "{ae:?}");
        assert_eq!(got.body, b"{}", "{ae:?}");
    }
    let plain = get(&mut sim, "", T0 + 3, &never);
    assert!(plain.cache_status().contains("hit"));
    assert_eq!(plain.body, b"{}");
}

#[test]
fn request_no_cache_and_pragma_revalidate() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    sim.get("/api/products", T0, &up);
    let not_modified = |hs: &Headers| {
        assert_eq!(first(hs, "if-none-match"), Some("\"v1\""));
        (
            304,
            h(&[
                ("cache-control", "public, max-age=60"),
                ("date", &date(T0 + 5)),
                ("etag", "\"v1\""),
            ]),
            vec![],
        )
    };
    for hdr in [("cache-control", "no-cache"), ("pragma", "no-cache")] {
        let got = sim.send("GET", "/api/products", &[hdr], None, T0 + 5, &not_modified);
        assert_eq!(got.status, 200);
        assert_eq!(got.body, b"{\"v\":1}");
        assert!(
            got.cache_status()
                .starts_with("portcullis; fwd=stale; fwd-status=304; stored"),
            "{}",
            got.cache_status()
        );
    }
    assert_eq!(sim.calls(), 3);
}

#[test]
fn request_no_store_is_not_stored_but_may_hit() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "no-store")],
        None,
        T0,
        &up,
    );
    assert!(got.cache_status().ends_with("detail=request-no-store"));
    sim.get("/api/products", T0, &up);
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "no-store")],
            None,
            T0 + 1,
            &never
        )
        .status,
        200
    );
}

#[test]
fn request_max_age_min_fresh_max_stale() {
    let mut sim = Sim::products();
    // No Date: the age is the time spent in the cache.
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "public, max-age=60"),
            ]),
            b"{}".to_vec(),
        )
    };
    sim.get("/api/products", T0, &up);
    // max-age=5 with age 10: revalidate; max-age=20: hit.
    sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "max-age=5")],
        None,
        T0 + 10,
        &up,
    );
    assert_eq!(sim.calls(), 2);
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "max-age=20")],
            None,
            T0 + 15,
            &never
        )
        .status,
        200
    );
    // Stored again at T0+10 with lifetime 60. min-fresh=30 at T0+40 leaves 30: ok; at T0+41 not.
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "min-fresh=30")],
            None,
            T0 + 40,
            &never
        )
        .status,
        200
    );
    sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "min-fresh=30")],
        None,
        T0 + 41,
        &up,
    );
    assert_eq!(sim.calls(), 3);
    // Stored at T0+41, stale from T0+101; max-stale=10 accepts 5 s of staleness, not 20.
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "max-stale=10")],
        None,
        T0 + 106,
        &never,
    );
    assert_eq!(got.status, 200);
    assert!(
        got.cache_status().contains("hit; ttl=-5; detail=stale"),
        "{}",
        got.cache_status()
    );
    sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "max-stale=10")],
        None,
        T0 + 121,
        &up,
    );
    assert_eq!(sim.calls(), 4);
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "max-stale")],
        None,
        T0 + 10_000,
        &never,
    );
    assert_eq!(got.status, 200);
}

#[test]
fn must_revalidate_and_friends_refuse_stale() {
    for cc in [
        "max-age=1, must-revalidate",
        "max-age=1, proxy-revalidate",
        "s-maxage=1",
    ] {
        let mut sim = Sim::products();
        let up = json_ok(cc, T0);
        sim.get("/api/products", T0, &up);
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "max-stale")],
            None,
            T0 + 5,
            &up,
        );
        assert_eq!(sim.calls(), 2, "{cc}");
    }
}

#[test]
fn response_no_cache_is_stored_but_always_revalidated() {
    let mut sim = Sim::products();
    let up = json_ok("no-cache", T0);
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .contains("stored"));
    let nm = |hs: &Headers| {
        assert_eq!(first(hs, "if-none-match"), Some("\"v1\""));
        (304, h(&[("etag", "\"v1\"")]), vec![])
    };
    let got = sim.get("/api/products", T0 + 1, &nm);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"{\"v\":1}"[..]));
    assert_eq!(sim.calls(), 2);
}

#[test]
fn only_if_cached() {
    let mut sim = Sim::products();
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "only-if-cached")],
        None,
        T0,
        &never,
    );
    assert_eq!(got.status, 504);
    assert_eq!(got.header("x-reason"), Some("not_cached"));
    assert_eq!(
        got.decision.outcome,
        portcullis_common::decision::Outcome::Deny
    );
    let up = json_ok("public, max-age=60", T0);
    sim.get("/api/products", T0, &up);
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "only-if-cached")],
            None,
            T0 + 1,
            &never
        )
        .status,
        200
    );
    // Stale and not allowed: 504 rather than going upstream.
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "only-if-cached")],
            None,
            T0 + 100,
            &never
        )
        .status,
        504
    );
}

#[test]
fn vary_secondary_keys_and_vary_star() {
    let mut sim = Sim::products();
    let up = |hs: &Headers| {
        let lang = first(hs, "accept-language").unwrap_or("none").to_string();
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("vary", "Accept-Language"),
            ]),
            lang.into_bytes(),
        )
    };
    sim.send(
        "GET",
        "/api/products",
        &[("accept-language", "en, fr")],
        None,
        T0,
        &up,
    );
    let got = sim.send(
        "GET",
        "/api/products",
        &[("accept-language", "de")],
        None,
        T0,
        &up,
    );
    assert!(
        got.cache_status().contains("fwd=vary-miss"),
        "{}",
        got.cache_status()
    );
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("accept-language", "en,fr")],
            None,
            T0 + 1,
            &never
        )
        .body,
        b"en, fr"
    );
    assert_eq!(
        sim.send(
            "GET",
            "/api/products",
            &[("accept-language", "de")],
            None,
            T0 + 1,
            &never
        )
        .body,
        b"de"
    );
    // Absent header is its own variant.
    sim.get("/api/products", T0, &up);
    assert_eq!(sim.calls(), 3);
    assert_eq!(sim.get("/api/products", T0 + 1, &never).body, b"none");

    let mut sim = Sim::products();
    let star = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("vary", "*"),
            ]),
            vec![],
        )
    };
    assert!(sim
        .get("/api/products", T0, &star)
        .cache_status()
        .ends_with("detail=vary-star"));
}

#[test]
fn revalidation_304_merges_headers() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=10"),
                ("etag", "\"v1\""),
                ("x-version", "1"),
                ("last-modified", &date(T0 - 100)),
            ]),
            b"body".to_vec(),
        )
    };
    sim.get("/api/products", T0, &up);
    let nm = |hs: &Headers| {
        assert_eq!(first(hs, "if-none-match"), Some("\"v1\""));
        assert_eq!(
            first(hs, "if-modified-since").map(str::to_string),
            Some(date(T0 - 100))
        );
        (
            304,
            h(&[
                ("cache-control", "max-age=100"),
                ("etag", "\"v1\""),
                ("x-version", "2"),
                ("date", &date(T0 + 20)),
                ("set-cookie", "s=2"),
                ("content-length", "0"),
            ]),
            vec![],
        )
    };
    let got = sim.get("/api/products", T0 + 20, &nm);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"body");
    assert_eq!(got.header("x-version"), Some("2"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.events.contains(&Event::Revalidated));
    // The merged entry is fresh for 100 s more.
    let hit = sim.get("/api/products", T0 + 100, &never);
    assert_eq!(hit.header("x-version"), Some("2"));
    assert_eq!(
        hit.header("set-cookie"),
        None,
        "a 304's cookie is not stored either"
    );
    assert_eq!(hit.header("cache-control"), Some("max-age=100"));
    // A client with the current validator gets a 304 from the cache itself.
    let c = sim.send(
        "GET",
        "/api/products",
        &[("if-none-match", "W/\"v1\"")],
        None,
        T0 + 101,
        &never,
    );
    assert_eq!((c.status, c.body.len()), (304, 0));
    let c = sim.send(
        "GET",
        "/api/products",
        &[("if-none-match", "\"v0\"")],
        None,
        T0 + 101,
        &never,
    );
    assert_eq!(c.status, 200);
    let c = sim.send(
        "GET",
        "/api/products",
        &[("if-modified-since", &date(T0))],
        None,
        T0 + 101,
        &never,
    );
    assert_eq!(c.status, 304);
}

#[test]
fn a_changed_resource_replaces_the_entry() {
    let mut sim = Sim::products();
    sim.get("/api/products", T0, &json_ok("max-age=10", T0));
    let changed = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=10"),
                ("etag", "\"v2\""),
            ]),
            b"v2".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products", T0 + 20, &changed)
        .cache_status()
        .starts_with("portcullis; fwd=stale; stored"));
    assert_eq!(sim.get("/api/products", T0 + 21, &never).body, b"v2");
}

#[test]
fn stale_if_error() {
    let mut sim = Sim::products();
    sim.get(
        "/api/products",
        T0,
        &json_ok("max-age=10, stale-if-error=60", T0),
    );
    let down = |_: &Headers| {
        (
            503,
            h(&[("content-type", "text/plain")]),
            b"upstream connect error".to_vec(),
        )
    };
    let got = sim.get("/api/products", T0 + 30, &down);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"{\"v\":1}");
    assert!(
        got.cache_status().contains("fwd=stale; fwd-status=503"),
        "{}",
        got.cache_status()
    );
    assert!(got.cache_status().ends_with("detail=stale-if-error"));
    assert!(got.events.contains(&Event::StaleIfError));
    // Beyond the window (20 s stale + 60), the error goes through.
    assert_eq!(sim.get("/api/products", T0 + 71, &down).status, 503);
    // must-revalidate forbids it.
    let mut sim = Sim::products();
    sim.get(
        "/api/products",
        T0,
        &json_ok("max-age=10, stale-if-error=60, must-revalidate", T0),
    );
    assert_eq!(sim.get("/api/products", T0 + 30, &down).status, 503);
}

#[test]
fn stale_while_revalidate_serves_stale_and_asks_for_a_refresh() {
    let mut sim = Sim::products();
    sim.get(
        "/api/products",
        T0,
        &json_ok("max-age=10, stale-while-revalidate=30", T0),
    );
    let got = sim.get("/api/products", T0 + 15, &never);
    assert_eq!(got.status, 200);
    assert!(got
        .cache_status()
        .contains("hit; ttl=-5; detail=stale-while-revalidate"));
    let refresh = got.refresh.expect("a refresh");
    assert_eq!(first(&refresh.headers, ":path"), Some("/api/products"));
    assert_eq!(first(&refresh.headers, "if-none-match"), Some("\"v1\""));
    // The background answer (a 304) refreshes the entry.
    let mut events = vec![];
    let nm = h(&[
        ("cache-control", "max-age=10, stale-while-revalidate=30"),
        ("etag", "\"v1\""),
        ("date", &date(T0 + 15)),
    ]);
    sim.complete(&refresh.pending, 304, nm, vec![], T0 + 15, &mut events);
    assert!(events.contains(&Event::Revalidated));
    assert!(sim
        .get("/api/products", T0 + 20, &never)
        .cache_status()
        .contains("hit; ttl=5"));
    // Beyond the window: a normal revalidation.
    sim.get("/api/products", T0 + 100, &json_ok("max-age=10", T0 + 100));
    assert_eq!(sim.calls(), 2);
}

#[test]
fn per_user_entries_are_never_refreshed_in_the_background() {
    let mut sim = Sim::products();
    let alice = user("alice", &[]);
    let up = json_ok("max-age=10, stale-while-revalidate=30", T0);
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    let got = sim.send("GET", "/me", &[], Some(&alice), T0 + 15, &up);
    assert!(got.refresh.is_none());
    assert!(
        got.cache_status().starts_with("portcullis; fwd=stale"),
        "{}",
        got.cache_status()
    );
    assert_eq!(sim.calls(), 2, "revalidated by alice's own request");
}

#[test]
fn unsafe_requests_invalidate_target_and_same_origin_locations() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    for p in [
        "/api/products",
        "/api/products/1",
        "/api/products/2",
        "/api/products/3",
    ] {
        sim.get(p, T0, &up);
    }
    let created = |_: &Headers| {
        (
            201,
            h(&[
                ("location", "https://shop.example/api/products/1"),
                ("content-location", "/api/products/2"),
            ]),
            vec![],
        )
    };
    let got = sim.send("POST", "/api/products", &[], None, T0 + 1, &created);
    assert!(
        got.events.contains(&Event::Invalidated(3)),
        "{:?}",
        got.events
    );
    let before = sim.calls();
    sim.get("/api/products/3", T0 + 2, &never);
    for p in ["/api/products", "/api/products/1", "/api/products/2"] {
        sim.get(p, T0 + 2, &up);
    }
    assert_eq!(sim.calls(), before + 3);
    // Other origins are not touched; failures invalidate nothing.
    let other = |_: &Headers| {
        (
            200,
            h(&[("location", "https://evil.example/api/products/3")]),
            vec![],
        )
    };
    assert!(sim
        .send("PUT", "/x", &[], None, T0 + 3, &other)
        .events
        .contains(&Event::Invalidated(0)));
    let failed = |_: &Headers| (500, h(&[]), vec![]);
    sim.send("DELETE", "/api/products/3", &[], None, T0 + 3, &failed);
    assert_eq!(sim.get("/api/products/3", T0 + 4, &never).status, 200);
}

#[test]
fn per_user_routes_never_share_entries() {
    let mut sim = Sim::products();
    let up = |_: &Headers| -> (u16, Headers, Vec<u8>) {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "public, max-age=60"),
            ]),
            vec![],
        )
    };
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let who = std::cell::RefCell::new("");
    let body_for = |_: &Headers| {
        let (s, hs, _) = up(&vec![]);
        (s, hs, who.borrow().as_bytes().to_vec())
    };
    *who.borrow_mut() = "alice's";
    sim.send("GET", "/me", &[], Some(&alice), T0, &body_for);
    *who.borrow_mut() = "bob's";
    let b = sim.send("GET", "/me", &[], Some(&bob), T0, &body_for);
    assert_eq!(b.body, b"bob's");
    assert_eq!(
        sim.send("GET", "/me", &[], Some(&alice), T0 + 1, &never)
            .body,
        b"alice's"
    );
    assert_eq!(
        sim.send("GET", "/me", &[], Some(&bob), T0 + 1, &never).body,
        b"bob's"
    );
    // Without an identity a per-user route is never served from cache nor stored.
    let anon = sim.send("GET", "/me", &[], None, T0 + 1, &body_for);
    assert!(anon.cache_status().contains("fwd=bypass"));
    assert_eq!(anon.body, b"bob's", "came from the upstream");
    assert_eq!(sim.calls(), 3);
}

#[test]
fn private_responses_are_kept_per_user_only_on_per_user_routes() {
    let mut sim = Sim::products();
    let who = std::cell::RefCell::new("alice's");
    let private = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "private, max-age=60"),
            ]),
            who.borrow().as_bytes().to_vec(),
        )
    };
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    let auth = [("authorization", "Bearer t")];
    assert!(sim
        .send("GET", "/me", &auth, Some(&alice), T0, &private)
        .cache_status()
        .contains("stored"));
    *who.borrow_mut() = "bob's";
    assert_eq!(
        sim.send("GET", "/me", &auth, Some(&bob), T0, &private).body,
        b"bob's"
    );
    assert_eq!(
        sim.send("GET", "/me", &auth, Some(&alice), T0 + 1, &never)
            .body,
        b"alice's"
    );
    assert_eq!(
        sim.send("GET", "/me", &auth, Some(&bob), T0 + 1, &never)
            .body,
        b"bob's"
    );
    // On a shared route the same response is never stored.
    assert!(sim
        .send("GET", "/api/products", &auth, Some(&alice), T0, &private)
        .cache_status()
        .ends_with("detail=private"));
    // no-store still wins on per-user routes.
    let no_store = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "private, no-store"),
            ]),
            vec![],
        )
    };
    assert!(sim
        .send("GET", "/me?x", &auth, Some(&alice), T0, &no_store)
        .cache_status()
        .ends_with("detail=no-store"));
}

#[test]
fn poisoning_headers_are_removed_on_cacheable_routes() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    sim.send(
        "GET",
        "/api/products",
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-http-method-override", "DELETE"),
            ("x-original-url", "/admin"),
        ],
        None,
        T0,
        &up,
    );
    let sent = &sim.upstream[0];
    for hdr in [
        "x-forwarded-host",
        "x-http-method-override",
        "x-original-url",
    ] {
        assert_eq!(first(sent, hdr), None, "{hdr}");
    }
    // Scheme, port and TLS hints that frameworks build redirects from.
    let hints = [
        ("x-forwarded-port", "1337"),
        ("x-forwarded-scheme", "http"),
        ("x-forwarded-ssl", "off"),
        ("front-end-https", "off"),
        ("x-forwarded-prefix", "/evil"),
        ("forwarded", "host=evil.example"),
    ];
    sim.send("GET", "/api/products/1", &hints, None, T0, &up);
    let sent = sim.upstream.last().unwrap();
    for (hdr, _) in hints {
        assert_eq!(first(sent, hdr), None, "{hdr}");
    }
}

#[test]
fn query_key_options() {
    let mut sim = Sim::new(
        r#"{"routes":[{"path":"/api/products"}],"key":{"sort_query":true,"ignore_params":["utm_source"]}}"#,
    );
    let up = json_ok("public, max-age=60", T0);
    sim.get("/api/products?b=2&a=1&utm_source=x", T0, &up);
    assert_eq!(sim.get("/api/products?a=1&b=2", T0, &never).status, 200);
    sim.get("/api/products?a=1&b=3", T0, &up);
    assert_eq!(sim.calls(), 2);
    let mut plain = Sim::products();
    plain.get("/api/products?b=2&a=1", T0, &up);
    plain.get("/api/products?a=1&b=2", T0, &up);
    assert_eq!(plain.calls(), 2, "unsorted by default");
}

#[test]
fn purge_by_url_and_tag_needs_a_role() {
    let mut sim = Sim::products();
    let tagged = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("surrogate-key", "catalog p1"),
            ]),
            b"x".to_vec(),
        )
    };
    sim.get("/api/products", T0, &tagged);
    sim.get("/api/products/1", T0, &tagged);
    sim.get("/api/products/2", T0, &json_ok("max-age=60", T0));
    let anon = sim.send("PURGE", "/api/products", &[], None, T0, &never);
    assert_eq!(
        (anon.status, anon.header("x-reason")),
        (401, Some("purge_forbidden"))
    );
    let viewer = user("v", &["viewer"]);
    assert_eq!(
        sim.send("PURGE", "/api/products", &[], Some(&viewer), T0, &never)
            .status,
        403
    );
    assert_eq!(
        sim.get("/api/products", T0 + 1, &never).status,
        200,
        "still cached"
    );

    let admin = user("a", &["admin"]);
    let got = sim.send("PURGE", "/api/products", &[], Some(&admin), T0, &never);
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &br#"{"purged":1,"status":"purged"}"#[..])
    );
    sim.get("/api/products", T0 + 1, &tagged);
    assert_eq!(sim.calls(), 4);
    // By tag through the admin path: /api/products and /api/products/1 carry `catalog`.
    let got = sim.send(
        "POST",
        "/_purge?tag=catalog",
        &[],
        Some(&admin),
        T0 + 2,
        &never,
    );
    assert_eq!(got.body, br#"{"purged":2,"status":"purged"}"#);
    // By tag through PURGE + tag header, and by URL through the admin path.
    sim.get("/api/products/1", T0 + 3, &tagged);
    assert_eq!(
        sim.send(
            "PURGE",
            "/",
            &[("surrogate-key", "p1")],
            Some(&admin),
            T0 + 3,
            &never
        )
        .body,
        br#"{"purged":1,"status":"purged"}"#
    );
    assert_eq!(
        sim.send(
            "POST",
            "/_purge?url=%2Fapi%2Fproducts%2F2",
            &[],
            Some(&admin),
            T0 + 3,
            &never
        )
        .body,
        br#"{"purged":1,"status":"purged"}"#
    );
    assert_eq!(
        sim.send("POST", "/_purge", &[], Some(&admin), T0 + 3, &never)
            .status,
        400
    );
    assert_eq!(sim.calls(), 5);
}

#[test]
fn shadow_mode_never_answers_from_cache() {
    let mut sim = Sim::new(r#"{"mode":"shadow","routes":[{"path":"/api/products"}]}"#);
    let up = json_ok("public, max-age=60", T0);
    sim.get("/api/products", T0, &up);
    let got = sim.get("/api/products", T0 + 1, &up);
    assert!(got.events.contains(&Event::ShadowHit));
    assert_eq!(got.cache_status(), "portcullis; fwd=request; detail=shadow");
    sim.send(
        "GET",
        "/api/products?other",
        &[("cache-control", "only-if-cached")],
        None,
        T0,
        &up,
    );
    assert_eq!(
        first(&sim.upstream[2], "x-portcullis-would-deny"),
        Some("not_cached")
    );
    assert_eq!(sim.calls(), 3);
}

#[test]
fn oversized_bodies_are_not_stored() {
    let mut sim = Sim::new(
        r#"{"routes":[{"path":"/api/products"}],"storage":{"buckets":1,"ways":2,"max_bytes":4096,"max_object_bytes":1024}}"#,
    );
    let big = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            vec![b'x'; 2000],
        )
    };
    let got = sim.get("/api/products", T0, &big);
    assert!(got.events.contains(&Event::TooLarge));
    let declared = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("content-length", "2000"),
            ]),
            vec![b'x'; 2000],
        )
    };
    assert!(sim
        .get("/api/products", T0, &declared)
        .cache_status()
        .ends_with("detail=too-large"));
    assert_eq!(sim.calls(), 2);
}

#[test]
fn stored_headers_drop_per_hop_fields() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("content-length", "2"),
                ("x-envoy-upstream-service-time", "3"),
                ("age", "4"),
            ]),
            b"{}".to_vec(),
        )
    };
    sim.get("/api/products", T0, &up);
    let hit = sim.get("/api/products", T0, &never);
    for n in [
        "connection",
        "x-hop",
        "content-length",
        "x-envoy-upstream-service-time",
    ] {
        assert_eq!(hit.header(n), None, "{n}");
    }
    assert_eq!(
        hit.header("age"),
        Some("4"),
        "Age from upstream is the initial age"
    );
}

#[test]
fn same_origin_resolution() {
    let c = load(b"{}").unwrap();
    let s = |v| same_origin_url(v, "https", "shop.example", &c);
    assert_eq!(
        s("/a?x=1").as_deref(),
        Some("GET https://shop.example/a?x=1")
    );
    assert_eq!(
        s("https://SHOP.example/a").as_deref(),
        Some("GET https://shop.example/a")
    );
    assert_eq!(
        s("//shop.example/b").as_deref(),
        Some("GET https://shop.example/b")
    );
    assert_eq!(s("http://shop.example/a"), None);
    assert_eq!(s("https://other.example/a"), None);
    assert_eq!(s("relative"), None);
    assert_eq!(percent_decode("%2Fa%zz%41"), "/a%zzA");
}

/// Hostile and malformed headers in every position, thousands of exchanges: nothing panics, the
/// byte budget holds, and a served body always belongs to the URL (and user) that asked.
#[test]
fn hostile_inputs_never_panic_nor_cross_urls_or_users() {
    const CC: [&str; 14] = [
        "",
        "max-age=1",
        "max-age=-1",
        "max-age=99999999999999999999",
        "s-maxage=\"5\"",
        "no-cache",
        "no-store",
        "private",
        "public, max-age=30, stale-while-revalidate=5",
        "must-revalidate, max-age=0",
        "stale-if-error=10, max-age=2",
        ",,,=,\"",
        "max-age=\"",
        "only-if-cached, max-stale, min-fresh=x",
    ];
    const DATES: [&str; 5] = [
        "",
        "0",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "garbage",
        "Thu, 01 Jan 2099 00:00:00 GMT",
    ];
    const VARY: [&str; 5] = ["", "*", "accept, accept", "x-a,,", "\u{7f}"];
    const STATUS: [u16; 8] = [200, 203, 301, 304, 404, 500, 503, 206];
    const PATHS: [&str; 6] = [
        "/api/products",
        "/api/products/1",
        "/api/products/1?b=2&a=1",
        "/me",
        "/other",
        "/api/products?%zz",
    ];
    let mut sim = Sim::new(
        r#"{"routes":[{"path":"/api/products"},{"path":"/api/products/{id}"},{"path":"/me","per_user":true}],
            "storage":{"buckets":4,"ways":4,"max_bytes":8192,"max_object_bytes":1024},"heuristic":{}}"#,
    );
    let users = [user("alice", &["admin"]), user("bob", &[])];
    let mut hits = 0;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for i in 0..4000u64 {
        let now = T0 + i / 4;
        let path = PATHS[next(PATHS.len())];
        let who = &users[next(2)];
        let method = ["GET", "GET", "GET", "GET", "HEAD", "POST", "PURGE"][next(7)];
        let req_cc = if next(2) == 0 { "" } else { CC[next(CC.len())] };
        let inm = ["", "", "", "*", "\"v\"", "W/\"v\", \"x\""][next(6)];
        let mut req_h = vec![
            ("cache-control", req_cc),
            ("accept", VARY[next(VARY.len())]),
        ];
        if !inm.is_empty() {
            req_h.push(("if-none-match", inm));
        }
        // The body names the URL and, on the per-user route, the user it was made for.
        let expected = if path == "/me" {
            format!("{path}:{}", who.subject)
        } else {
            path.to_string()
        };
        let (status, cc, date, vary) = (
            STATUS[next(8)],
            // A third are plainly cacheable, so hits are frequent enough to test.
            if next(3) == 0 {
                "public, max-age=600"
            } else {
                CC[next(CC.len())]
            },
            DATES[next(5)],
            VARY[next(5)],
        );
        let len = [0usize, 10, 2000][next(3)];
        let body = if len == 2000 {
            vec![b'z'; len]
        } else {
            expected.clone().into_bytes()
        };
        let up = |_: &Headers| {
            (
                status,
                h(&[
                    ("content-type", "application/json"),
                    ("cache-control", cc),
                    ("date", date),
                    ("expires", date),
                    ("last-modified", date),
                    // Invalid ages make a response stale: one in four.
                    ("age", ["0", "5", "3", "x"][i as usize % 4]),
                    ("vary", vary),
                    ("etag", "\"v\""),
                    (
                        "location",
                        ["/api/products", "https://x/y", "::", ""][i as usize % 4],
                    ),
                    ("surrogate-key", "a b"),
                ]),
                body.clone(),
            )
        };
        let got = sim.send(method, path, &req_h, Some(who), now, &up);
        let (bytes, _) = sim.engine.store.usage(&sim.store);
        assert!(bytes <= 8192, "budget exceeded: {bytes}");
        if got.cache_status().contains("hit") && got.status != 304 && method == "GET" {
            hits += 1;
            assert!(
                got.body == expected.as_bytes(),
                "{path} for {} got {:?}",
                who.subject,
                String::from_utf8_lossy(&got.body)
            );
        }
    }
    assert!(hits > 50, "the invariant was exercised on only {hits} hits");
}

/// Hole: RFC 9111 §3.5 looked only for `Authorization`, which auth may have removed (or never
/// been sent: API key, cookie, query token).
#[test]
fn authenticated_requests_count_as_authorization_whatever_carried_the_credential() {
    let key_user = Identity {
        subject: "billing".into(),
        method: AuthMethod::ApiKey,
        roles: vec![],
        tenant: None,
        key_id: Some("k1".into()),
        issuer: None,
    };
    let jwt_user = user("alice", &[]);
    let config = r#"{"routes":[{"path":"/api/products"}],
        "credential_sources":[{"header":"x-api-key"},{"cookie":"sid"},{"query":"token"}]}"#;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a Identity>);
    let cases: Vec<Case> = vec![
        ("/api/products", vec![], Some(&key_user)),
        ("/api/products", vec![], Some(&jwt_user)),
        ("/api/products", vec![("x-api-key", "k")], None),
        ("/api/products", vec![("cookie", "a=1; sid=s")], None),
        ("/api/products?token=t", vec![], None),
    ];
    for (target, headers, id) in cases {
        for (cc, stored) in [
            ("max-age=60", false),
            ("public, max-age=60", true),
            ("s-maxage=60", true),
            ("must-revalidate, max-age=60", true),
        ] {
            let mut sim = Sim::new(config);
            let up = json_ok(cc, T0);
            let got = sim.send("GET", target, &headers, id, T0, &up);
            assert_eq!(
                got.cache_status().contains("stored"),
                stored,
                "{target} {headers:?} {id:?} {cc}: {}",
                got.cache_status()
            );
            if !stored {
                assert!(got.cache_status().ends_with("detail=authorization"));
            }
        }
    }
    // A request with none of them is anonymous; a cookie not named is not a credential.
    let mut sim = Sim::new(config);
    let got = sim.send(
        "GET",
        "/api/products?tokens=1",
        &[("cookie", "sidx=1"), ("x-api-keys", "k")],
        None,
        T0,
        &json_ok("max-age=60", T0),
    );
    assert!(
        got.cache_status().contains("stored"),
        "{}",
        got.cache_status()
    );
    // The default sources: Authorization and X-API-Key.
    let mut sim = Sim::products();
    let got = sim.send(
        "GET",
        "/api/products",
        &[("x-api-key", "k")],
        None,
        T0,
        &json_ok("max-age=60", T0),
    );
    assert!(got.cache_status().ends_with("detail=authorization"));
}

#[test]
fn invalid_or_repeated_age_values() {
    // `Age: old` (or `old, 0`) is no age: the response is stale at once, and revalidated.
    for age in ["old", "old, 0", "-1"] {
        let mut sim = Sim::products();
        let up = |_: &Headers| {
            (
                200,
                h(&[
                    ("content-type", "application/json"),
                    ("cache-control", "max-age=3600"),
                    ("date", &date(T0)),
                    ("age", age),
                ]),
                b"{}".to_vec(),
            )
        };
        sim.get("/api/products", T0, &up);
        sim.get("/api/products", T0 + 1, &up);
        assert_eq!(sim.calls(), 2, "Age: {age}");
    }
    // With several lines the first counts: 7200 > 3600, stale.
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=3600"),
                ("date", &date(T0)),
                ("age", "7200"),
                ("age", "0"),
            ]),
            b"{}".to_vec(),
        )
    };
    sim.get("/api/products", T0, &up);
    sim.get("/api/products", T0 + 1, &up);
    assert_eq!(sim.calls(), 2);
}

#[test]
fn a_304_updates_every_field_it_carries_but_framing() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=1"),
                ("etag", "\"v1\""),
                ("content-foo", "1"),
                ("x-kept", "k"),
            ]),
            b"body".to_vec(),
        )
    };
    sim.get("/api/products", T0, &up);
    let nm = |_: &Headers| {
        (
            304,
            h(&[
                ("cache-control", "max-age=100"),
                ("etag", "\"v1\""),
                ("content-foo", "2"),
                // The same media type, spelled otherwise (RFC 9110 §8.3.1).
                ("content-type", "Application/JSON"),
                ("content-length", "999"),
            ]),
            vec![],
        )
    };
    sim.get("/api/products", T0 + 5, &nm);
    let hit = sim.get("/api/products", T0 + 6, &never);
    assert_eq!(hit.header("content-foo"), Some("2"));
    assert_eq!(hit.header("content-type"), Some("Application/JSON"));
    assert_eq!(hit.header("x-kept"), Some("k"));
    assert_eq!(hit.header("content-length"), None);
    assert_eq!(hit.body, b"body");
}

/// A 304 whose Content-Type or content coding differs from the stored response's describes
/// another representation: it does not update the entry (whose bytes would then be served as
/// another type, past the `content_types` check made at store time). The client gets the stored
/// response as it is.
#[test]
fn a_304_with_another_content_type_or_coding_does_not_update() {
    for (name, field) in [
        ("content-type", ("content-type", "text/html")),
        ("content-encoding", ("content-encoding", "gzip")),
    ] {
        let mut sim = Sim::products();
        stored_v1(&mut sim, "max-age=1", &[("etag", "\"v1\"".into())]);
        let nm = move |_: &Headers| {
            (
                304,
                h(&[
                    ("cache-control", "max-age=100"),
                    ("etag", "\"v1\""),
                    ("x-a", "2"),
                    field,
                ]),
                vec![],
            )
        };
        let got = sim.get("/api/products", T0 + 5, &nm);
        assert_eq!(got.body, b"body", "{name}");
        assert_eq!(
            got.header("content-type"),
            Some("application/json"),
            "{name}"
        );
        assert_eq!(got.header("content-encoding"), None, "{name}");
        assert_eq!(got.header("x-a"), Some("1"), "{name}");
        assert!(
            got.cache_status().contains("detail=representation-differs"),
            "{name}: {}",
            got.cache_status()
        );
        // Not updated: still stale, so the next request goes upstream.
        let after = sim.get("/api/products", T0 + 6, &json_ok("max-age=60", T0 + 6));
        assert!(
            after.cache_status().contains("fwd=stale"),
            "{name}: {}",
            after.cache_status()
        );
    }
}

#[test]
fn head_responses_update_or_invalidate_the_stored_get() {
    let get_up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=100"),
                ("etag", "\"v1\""),
                ("x-a", "1"),
            ]),
            b"body".to_vec(),
        )
    };
    let mut sim = Sim::products();
    sim.get("/api/products", T0, &get_up);
    // A HEAD that goes upstream (the client asks for it) and gets a 200 with the same ETag.
    let head_up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=100"),
                ("etag", "\"v1\""),
                ("x-a", "2"),
                ("content-length", "4"),
            ]),
            vec![],
        )
    };
    let got = sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 1,
        &head_up,
    );
    assert_eq!(got.header("x-a"), Some("2"));
    let hit = sim.get("/api/products", T0 + 2, &never);
    assert_eq!(
        hit.header("x-a"),
        Some("2"),
        "the GET entry took the HEAD's fields"
    );
    assert_eq!(hit.body, b"body");
    // A 410 on HEAD: the GET entry is gone.
    let gone = |_: &Headers| (410, h(&[]), vec![]);
    let got = sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 3,
        &gone,
    );
    assert!(
        got.events.contains(&Event::Invalidated(1)),
        "{:?}",
        got.events
    );
    assert!(sim
        .get("/api/products", T0 + 4, &get_up)
        .cache_status()
        .contains("fwd=miss"));
    // Other validators on HEAD: the entry is outdated.
    let changed = |_: &Headers| {
        (
            200,
            h(&[("etag", "\"v2\""), ("cache-control", "max-age=100")]),
            vec![],
        )
    };
    sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 5,
        &changed,
    );
    assert!(sim
        .get("/api/products", T0 + 6, &get_up)
        .cache_status()
        .contains("fwd=miss"));
}

#[test]
fn cdn_cache_control_takes_precedence() {
    let up = |cc: &'static str, cdn: &'static str| {
        move |_: &Headers| {
            let mut hs = h(&[
                ("content-type", "application/json"),
                ("cache-control", cc),
                ("date", &date(T0)),
                ("expires", &date(T0 + 1000)),
            ]);
            if !cdn.is_empty() {
                hs.push(("cdn-cache-control".into(), cdn.into()));
            }
            (200, hs, b"{}".to_vec())
        }
    };
    // (Cache-Control, CDN-Cache-Control, fresh at +30 s?)
    for (cc, cdn, fresh) in [
        ("max-age=10", "max-age=60", true),
        ("max-age=600", "max-age=10", false),
        ("no-store", "max-age=60", true),
        ("max-age=600", "no-store", false),
        ("max-age=600", "no-cache", false),
        ("max-age=600", "private", false),
        ("public, max-age=600", "s-maxage=10, max-age=600", false),
        // Expires is ignored under the targeted field: it has no freshness of its own.
        ("max-age=600", "must-revalidate", false),
        // Not a valid dictionary: Cache-Control governs.
        ("max-age=10", "Max-Age=60", false),
        ("max-age=60", "", true),
    ] {
        let mut sim = Sim::products();
        let f = up(cc, cdn);
        sim.get("/api/products", T0, &f);
        sim.get("/api/products", T0 + 30, &f);
        assert_eq!(sim.calls() == 1, fresh, "{cc} / {cdn}");
    }
    // Another name, or none.
    let mut sim =
        Sim::new(r#"{"routes":[{"path":"/api/products"}],"targeted_field":"acme-cache-control"}"#);
    let f = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=600"),
                ("cdn-cache-control", "no-store"),
                ("acme-cache-control", "max-age=5"),
            ]),
            b"{}".to_vec(),
        )
    };
    sim.get("/api/products", T0, &f);
    sim.get("/api/products", T0 + 30, &f);
    assert_eq!(sim.calls(), 2);
    let mut sim = Sim::new(r#"{"routes":[{"path":"/api/products"}],"targeted_field":null}"#);
    sim.get("/api/products", T0, &up("max-age=600", "no-store"));
    sim.get("/api/products", T0 + 30, &never);
}

#[test]
fn qualified_no_cache_and_private_withhold_their_fields() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                (
                    "cache-control",
                    "max-age=60, no-cache=\"x-secret\", private=\"X-User, x-b\"",
                ),
                ("x-secret", "s"),
                ("x-user", "alice"),
                ("x-b", "b"),
                ("x-ok", "ok"),
            ]),
            b"{}".to_vec(),
        )
    };
    let first = sim.get("/api/products", T0, &up);
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    assert_eq!(
        first.header("x-user"),
        Some("alice"),
        "the upstream's answer is whole"
    );
    let hit = sim.get("/api/products", T0 + 1, &never);
    assert!(
        hit.cache_status().contains("hit"),
        "stored and served without revalidation"
    );
    for f in ["x-secret", "x-user", "x-b"] {
        assert_eq!(hit.header(f), None, "{f}");
    }
    assert_eq!(hit.header("x-ok"), Some("ok"));
}

#[test]
fn interim_statuses_and_must_understand() {
    let mut sim = Sim::products();
    for status in [100u16, 103] {
        let up = move |_: &Headers| {
            (
                status,
                h(&[
                    ("content-type", "application/json"),
                    ("cache-control", "max-age=60"),
                ]),
                vec![],
            )
        };
        assert!(sim
            .get("/api/products", T0, &up)
            .cache_status()
            .ends_with("detail=status"));
    }
    // must-understand: a known status is stored despite no-store; an unknown one is not.
    let up = |status: u16| {
        move |_: &Headers| {
            (
                status,
                h(&[
                    ("content-type", "application/json"),
                    ("cache-control", "must-understand, no-store, max-age=60"),
                ]),
                b"{}".to_vec(),
            )
        }
    };
    assert!(sim
        .get("/api/products/1", T0, &up(200))
        .cache_status()
        .contains("stored"));
    assert!(sim
        .get("/api/products/2", T0, &up(299))
        .cache_status()
        .ends_with("detail=status"));
    let mut sim = Sim::products();
    let plain = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "no-store, max-age=60"),
            ]),
            vec![],
        )
    };
    assert!(sim
        .get("/api/products", T0, &plain)
        .cache_status()
        .ends_with("detail=no-store"));
}

#[test]
fn unknown_methods_invalidate_and_request_max_age_zero_revalidates() {
    let mut sim = Sim::products();
    let up = json_ok("public, max-age=60", T0);
    sim.get("/api/products", T0, &up);
    // max-age=0 revalidates even a response of age 0.
    let nm = |_: &Headers| (304, h(&[("etag", "\"v1\"")]), vec![]);
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "max-age=0")],
        None,
        T0,
        &nm,
    );
    assert!(
        got.cache_status().contains("fwd=stale"),
        "{}",
        got.cache_status()
    );
    let ok = |_: &Headers| (200, h(&[]), vec![]);
    let got = sim.send("FROB", "/api/products", &[], None, T0 + 1, &ok);
    assert!(
        got.events.contains(&Event::Invalidated(1)),
        "{:?}",
        got.events
    );
    assert!(sim
        .get("/api/products", T0 + 2, &up)
        .cache_status()
        .contains("fwd=miss"));
    sim.send("OPTIONS", "/api/products", &[], None, T0 + 3, &ok);
    assert!(sim
        .get("/api/products", T0 + 4, &never)
        .cache_status()
        .contains("hit"));
}

#[test]
fn head_on_a_get_only_route_is_answered_from_the_get_entry() {
    let mut sim = Sim::new(r#"{"routes":[{"path":"/api/products","methods":["GET"]}]}"#);
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("etag", "\"v1\""),
                ("x-a", "1"),
            ]),
            b"body".to_vec(),
        )
    };
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .contains("stored"));
    let head = sim.send("HEAD", "/api/products", &[], None, T0 + 1, &never);
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert!(
        head.cache_status().contains("hit"),
        "{}",
        head.cache_status()
    );
    assert_eq!(head.header("x-a"), Some("1"));
    assert_eq!(head.header("etag"), Some("\"v1\""));
    // And a HEAD sent upstream (no-cache) updates the GET entry.
    let head_up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("etag", "\"v1\""),
                ("x-a", "2"),
            ]),
            vec![],
        )
    };
    sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 2,
        &head_up,
    );
    assert_eq!(
        sim.get("/api/products", T0 + 3, &never).header("x-a"),
        Some("2")
    );
    // A HEAD-only route stays HEAD-only: GET is not cached there.
    let mut sim = Sim::new(r#"{"routes":[{"path":"/h","methods":["HEAD"]}]}"#);
    assert!(sim
        .get("/h", T0, &up)
        .cache_status()
        .contains("fwd=uri-miss"));
}

/// Every spelling an upstream would take for the purge path is the purge endpoint: refused
/// without a purge role, never looked up, stored nor forwarded.
#[test]
fn purge_path_spellings_are_all_the_purge_endpoint() {
    let config = r#"{"routes":[{"path":"/**"}],"purge":{"path":"/_cache/purge"}}"#;
    let ok = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            b"{}".to_vec(),
        )
    };
    let admin = user("a", &["admin"]);
    let spellings = [
        "/_cache/purge",
        "/_cache/purge?x=1",
        "/_cache/purge/",
        "/_cache/purge/?url=/a",
        "/_CACHE/Purge",
        "/_cache/purge;jsessionid=1",
        "/_cache;x/purge",
        "/_cache/%70urge",
        "/_cache/purge%2F",
        "//_cache/purge",
        "/_cache//purge",
        "/_cache/purge.",
        "/_cache/./purge",
        "/x/../_cache/purge",
    ];
    for target in spellings {
        for method in ["GET", "HEAD", "POST"] {
            let mut sim = Sim::new(config);
            let got = sim.send(method, target, &[], None, T0, &ok);
            assert_eq!(
                (got.status, got.header("x-reason")),
                (401, Some("purge_forbidden")),
                "{method} {target}: {}",
                got.cache_status()
            );
            assert_eq!(sim.calls(), 0, "{method} {target} reached the upstream");
            let viewer = user("v", &["viewer"]);
            let got = sim.send(method, target, &[], Some(&viewer), T0, &ok);
            assert_eq!(got.status, 403, "{method} {target}");
            // With the role it is a purge (400 without a target), never a cache answer.
            let got = sim.send(method, target, &[], Some(&admin), T0, &ok);
            assert!(
                matches!(got.status, 200 | 400),
                "{method} {target}: {}",
                got.status
            );
            assert_eq!(sim.calls(), 0, "{method} {target} reached the upstream");
        }
    }
    // Neighbours are not the purge path.
    for target in [
        "/_cache/purger",
        "/_cache/purge/x",
        "/_cache",
        "/_cache/purge/..",
    ] {
        let mut sim = Sim::new(config);
        let got = sim.send("GET", target, &[], None, T0, &ok);
        assert_eq!(got.status, 200, "{target}");
        assert_eq!(sim.calls(), 1, "{target}");
    }
    // The engine's pass-through shortcut agrees: a purge spelling is never passed untouched.
    let sim = Sim::new(r#"{"purge":{"path":"/_cache/purge"}}"#);
    for target in spellings {
        assert_eq!(
            sim.engine.pass_through("GET", "shop.example", target),
            None,
            "{target}"
        );
    }
}

fn stored_v1(sim: &mut Sim, cc: &'static str, validators: &[(&'static str, String)]) {
    let validators = validators.to_vec();
    let up = move |_: &Headers| {
        let mut hs = h(&[
            ("content-type", "application/json"),
            ("cache-control", cc),
            ("x-a", "1"),
        ]);
        hs.extend(validators.iter().map(|(n, v)| (n.to_string(), v.clone())));
        (200, hs, b"body".to_vec())
    };
    assert!(sim
        .get("/api/products", T0, &up)
        .cache_status()
        .contains("stored"));
}

/// RFC 9111 §4.3.4: a 304 updates the stored response only when its validators select it.
#[test]
fn a_304_updates_only_the_response_its_validators_select() {
    let lm = date(T0 - 100);
    let other_lm = date(T0 - 50);
    type Case<'a> = (
        &'a str,
        Vec<(&'static str, String)>,
        Vec<(&'static str, String)>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "strong etag, same",
            vec![("etag", "\"v1\"".into())],
            vec![("etag", "\"v1\"".into())],
            true,
        ),
        (
            "strong etag, other",
            vec![("etag", "\"v1\"".into())],
            vec![("etag", "\"v2\"".into())],
            false,
        ),
        (
            "strong etag, weak in 304",
            vec![("etag", "\"v1\"".into())],
            vec![("etag", "W/\"v1\"".into())],
            false,
        ),
        (
            "strong etag, none in 304",
            vec![("etag", "\"v1\"".into())],
            vec![],
            false,
        ),
        (
            "strong etag, only lm in 304",
            vec![("etag", "\"v1\"".into()), ("last-modified", lm.clone())],
            vec![("last-modified", lm.clone())],
            false,
        ),
        (
            "weak etag, same",
            vec![("etag", "W/\"v1\"".into())],
            vec![("etag", "W/\"v1\"".into())],
            true,
        ),
        // A strong tag identifies only stored responses with that strong tag (§4.3.4).
        (
            "weak etag, strong in 304",
            vec![("etag", "W/\"v1\"".into())],
            vec![("etag", "\"v1\"".into())],
            false,
        ),
        (
            "lm, same",
            vec![("last-modified", lm.clone())],
            vec![("last-modified", lm.clone())],
            true,
        ),
        (
            "lm, other",
            vec![("last-modified", lm.clone())],
            vec![("last-modified", other_lm.clone())],
            false,
        ),
        (
            "lm, none in 304",
            vec![("last-modified", lm.clone())],
            vec![],
            false,
        ),
    ];
    for (name, stored, in_304, updates) in cases {
        let mut sim = Sim::products();
        stored_v1(&mut sim, "max-age=10", &stored);
        let in_304 = in_304.clone();
        let nm = move |_: &Headers| {
            let mut hs = h(&[("cache-control", "max-age=100"), ("x-a", "2")]);
            hs.extend(in_304.iter().map(|(n, v)| (n.to_string(), v.clone())));
            (304, hs, vec![])
        };
        let got = sim.send(
            "GET",
            "/api/products",
            &[("cache-control", "no-cache")],
            None,
            T0 + 1,
            &nm,
        );
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(got.body, b"body", "{name}");
        let after = sim.send(
            "GET",
            "/api/products",
            &[],
            None,
            T0 + 2,
            &json_ok("max-age=60", T0),
        );
        assert_eq!(
            after.header("x-a") == Some("2"),
            updates,
            "{name}: {}",
            after.cache_status()
        );
        if updates {
            assert!(after.cache_status().contains("hit"), "{name}");
        } else {
            assert_eq!(
                got.header("x-a"),
                Some("1"),
                "{name}: the unselected 304's fields are not served"
            );
        }
    }
}

/// What a HEAD answer did to the stored GET.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Head {
    Updated,
    Dropped,
    Kept,
}

/// RFC 9111 §4.3.5: only what a HEAD answer carries is compared. A validator selecting the stored
/// GET updates it; a field differing (ETag, Last-Modified, Content-Type, coding, Vary, length)
/// drops it; no validator at all leaves it alone (neither refreshed nor dropped: many frameworks
/// compute no ETag for HEAD, and an old body must not be kept fresh by HEADs).
#[test]
fn a_head_updates_only_the_response_its_validators_select() {
    use Head::*;
    let lm = date(T0 - 100);
    const V1: &str = "\"v1\"";
    const W1: &str = "W/\"v1\"";
    type Case<'a> = (
        &'a str,
        Vec<(&'static str, String)>,
        Vec<(&'static str, String)>,
        Head,
    );
    let cases: Vec<Case> = vec![
        (
            "etag same",
            vec![("etag", V1.into())],
            vec![("etag", V1.into())],
            Updated,
        ),
        (
            "etag other",
            vec![("etag", V1.into())],
            vec![("etag", "\"v2\"".into())],
            Dropped,
        ),
        // A HEAD without ETag says nothing of the stored one (F2): the entry stays as it is.
        ("etag missing", vec![("etag", V1.into())], vec![], Kept),
        ("etag new", vec![], vec![("etag", V1.into())], Dropped),
        // Weak and strong tags select only their own kind (RFC 9110 §8.8.3.2, RFC 9111 §4.3.4).
        (
            "weak same",
            vec![("etag", W1.into())],
            vec![("etag", W1.into())],
            Updated,
        ),
        (
            "weak stored, strong",
            vec![("etag", W1.into())],
            vec![("etag", V1.into())],
            Dropped,
        ),
        (
            "strong stored, weak",
            vec![("etag", V1.into())],
            vec![("etag", W1.into())],
            Dropped,
        ),
        (
            "lm same",
            vec![("last-modified", lm.clone())],
            vec![("last-modified", lm.clone())],
            Updated,
        ),
        (
            "lm other",
            vec![("last-modified", lm.clone())],
            vec![("last-modified", date(T0))],
            Dropped,
        ),
        (
            "lm missing",
            vec![("last-modified", lm.clone())],
            vec![],
            Kept,
        ),
        // No validators on either side (F4): HEADs must not keep an old body fresh.
        ("none", vec![], vec![], Kept),
        // Fields describing the representation, compared when the HEAD carries them.
        (
            "same length",
            vec![("etag", V1.into())],
            vec![("etag", V1.into()), ("content-length", "4".into())],
            Updated,
        ),
        (
            "other length",
            vec![],
            vec![("content-length", "5000".into())],
            Dropped,
        ),
        (
            "other length, same etag",
            vec![("etag", V1.into())],
            vec![("etag", V1.into()), ("content-length", "5".into())],
            Dropped,
        ),
        (
            "same type",
            vec![("etag", V1.into())],
            vec![
                ("etag", V1.into()),
                ("content-type", "application/json".into()),
            ],
            Updated,
        ),
        (
            "other type",
            vec![("etag", V1.into())],
            vec![("etag", V1.into()), ("content-type", "text/html".into())],
            Dropped,
        ),
        (
            "other type, no validator",
            vec![],
            vec![("content-type", "text/html".into())],
            Dropped,
        ),
        (
            "other coding",
            vec![("etag", V1.into())],
            vec![("etag", V1.into()), ("content-encoding", "gzip".into())],
            Dropped,
        ),
        (
            "other vary",
            vec![("etag", V1.into())],
            vec![("etag", V1.into()), ("vary", "Origin".into())],
            Dropped,
        ),
    ];
    for (name, stored, in_head, outcome) in cases {
        let mut sim = Sim::products();
        stored_v1(&mut sim, "max-age=60", &stored);
        let in_head = in_head.clone();
        let head_up = move |_: &Headers| {
            let mut hs = h(&[("cache-control", "max-age=60"), ("x-a", "2")]);
            hs.extend(in_head.iter().map(|(n, v)| (n.to_string(), v.clone())));
            (200, hs, vec![])
        };
        // A HEAD with no-cache: our validators go upstream, which answers 200 regardless.
        sim.send(
            "HEAD",
            "/api/products",
            &[("cache-control", "no-cache")],
            None,
            T0 + 1,
            &head_up,
        );
        let after = sim.send(
            "GET",
            "/api/products",
            &[],
            None,
            T0 + 2,
            &json_ok("max-age=60", T0),
        );
        match outcome {
            Updated | Kept => {
                assert!(
                    after.cache_status().contains("hit"),
                    "{name}: {}",
                    after.cache_status()
                );
                let x_a = if outcome == Updated { "2" } else { "1" };
                assert_eq!(after.header("x-a"), Some(x_a), "{name}");
            }
            Dropped => assert!(
                after.cache_status().contains("fwd=miss"),
                "{name}: the stored GET must be dropped: {}",
                after.cache_status()
            ),
        }
        // Kept is not refreshed: once stale (max-age=60 from T0), the GET goes upstream.
        if outcome == Kept {
            let later = sim.send(
                "GET",
                "/api/products",
                &[],
                None,
                T0 + 61,
                &json_ok("max-age=60", T0),
            );
            assert!(
                later.cache_status().contains("fwd=stale"),
                "{name}: {}",
                later.cache_status()
            );
        }
    }
}

/// A HEAD or conditional request that counts as authenticated (§3.5) neither updates nor
/// invalidates a shared entry.
#[test]
fn authenticated_head_and_revalidation_leave_a_shared_entry_alone() {
    let alice = user("alice", &[]);
    type Auth<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a Identity>);
    let who: Vec<Auth> = vec![
        ("authorization", vec![("authorization", "Bearer t")], None),
        ("identity", vec![], Some(&alice)),
        ("x-api-key", vec![("x-api-key", "k")], None),
    ];
    for (name, creds, id) in who {
        let mut headers = creds.clone();
        headers.push(("cache-control", "no-cache"));
        // HEAD with the same validator and new fields: no update.
        let mut sim = Sim::products();
        stored_v1(&mut sim, "public, max-age=60", &[("etag", "\"v1\"".into())]);
        let head_up = |_: &Headers| {
            (
                200,
                h(&[
                    ("cache-control", "public, max-age=60"),
                    ("etag", "\"v1\""),
                    ("x-a", "2"),
                ]),
                vec![],
            )
        };
        sim.send("HEAD", "/api/products", &headers, id, T0 + 1, &head_up);
        let after = sim.get("/api/products", T0 + 2, &never);
        assert_eq!(
            after.header("x-a"),
            Some("1"),
            "{name}: HEAD updated the shared entry"
        );
        // HEAD with a 410 or other validators: no invalidation.
        for gone in [
            (410u16, h(&[])),
            (
                200,
                h(&[("etag", "\"v2\""), ("cache-control", "max-age=60")]),
            ),
        ] {
            let up = move |_: &Headers| (gone.0, gone.1.clone(), vec![]);
            let got = sim.send("HEAD", "/api/products", &headers, id, T0 + 3, &up);
            assert!(
                !got.events
                    .iter()
                    .any(|e| matches!(e, Event::Invalidated(_))),
                "{name}: {:?}",
                got.events
            );
            assert!(sim
                .get("/api/products", T0 + 4, &never)
                .cache_status()
                .contains("hit"));
        }
        // A revalidating GET's 304: the user is answered, the shared entry is not updated.
        let nm = |_: &Headers| {
            (
                304,
                h(&[
                    ("cache-control", "public, max-age=60"),
                    ("etag", "\"v1\""),
                    ("x-a", "3"),
                ]),
                vec![],
            )
        };
        let got = sim.send("GET", "/api/products", &headers, id, T0 + 5, &nm);
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, &b"body"[..]),
            "{name}"
        );
        assert_eq!(
            sim.get("/api/products", T0 + 6, &never).header("x-a"),
            Some("1"),
            "{name}"
        );
    }
    // Anonymous, the same exchanges do update (so the above proves the rule, not a failure).
    let mut sim = Sim::products();
    stored_v1(&mut sim, "public, max-age=60", &[("etag", "\"v1\"".into())]);
    let nm = |_: &Headers| (304, h(&[("etag", "\"v1\""), ("x-a", "3")]), vec![]);
    sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 5,
        &nm,
    );
    assert_eq!(
        sim.get("/api/products", T0 + 6, &never).header("x-a"),
        Some("3")
    );
    // On a per-user route the entry is the user's own: their HEAD updates it.
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "private, max-age=60"),
                ("etag", "\"v1\""),
                ("x-a", "1"),
            ]),
            b"me".to_vec(),
        )
    };
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    let head_up = |_: &Headers| {
        (
            200,
            h(&[
                ("cache-control", "private, max-age=60"),
                ("etag", "\"v1\""),
                ("x-a", "2"),
            ]),
            vec![],
        )
    };
    sim.send(
        "HEAD",
        "/me",
        &[("cache-control", "no-cache")],
        Some(&alice),
        T0 + 1,
        &head_up,
    );
    assert_eq!(
        sim.send("GET", "/me", &[], Some(&alice), T0 + 2, &never)
            .header("x-a"),
        Some("2")
    );
}

/// REVIEW: RFC 9111 §4.3.5: a HEAD 200 whose Content-Length differs from the stored response's
/// must make it stale, not update it. Here an anonymous HEAD refreshes an entry without
/// validators with the old body, and can keep re-freshening it.
#[test]
fn review_head_without_validators_pins_the_old_body() {
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[]);
    // The resource changed upstream (new length); the attacker's HEAD gets the new headers.
    let head_up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=3600"),
                ("content-length", "5000"),
            ]),
            vec![],
        )
    };
    sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 59,
        &head_up,
    );
    let new_body = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
            ]),
            b"NEW".to_vec(),
        )
    };
    let after = sim.get("/api/products", T0 + 1000, &new_body);
    println!(
        "after HEAD: status {} cache-status {:?} body {:?}",
        after.status,
        after.cache_status(),
        String::from_utf8_lossy(&after.body)
    );
    assert_ne!(
        after.body,
        b"body".to_vec(),
        "old body served fresh 1000 s later: {}",
        after.cache_status()
    );
}

/// REVIEW: a HEAD (or 304) merge replaces Content-Type, bypassing the `content_types`
/// cache-deception guard applied when storing.
#[test]
fn review_head_merge_changes_content_type_of_shared_entry() {
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[("etag", "\"v1\"".into())]);
    let head_up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "text/html"),
                ("cache-control", "max-age=3600"),
                ("etag", "\"v1\""),
            ]),
            vec![],
        )
    };
    sim.send(
        "HEAD",
        "/api/products",
        &[("cache-control", "no-cache"), ("accept", "text/html")],
        None,
        T0 + 1,
        &head_up,
    );
    // The HEAD says the stored response is outdated (another type): it is dropped, never
    // retyped, so the next GET goes upstream.
    let after = sim.get("/api/products", T0 + 2, &json_ok("max-age=60", T0 + 2));
    println!(
        "after HEAD: {:?} {:?} body {:?}",
        after.header("content-type"),
        after.cache_status(),
        String::from_utf8_lossy(&after.body)
    );
    assert_eq!(after.header("content-type"), Some("application/json"));
    assert!(
        after.cache_status().contains("fwd=miss"),
        "{}",
        after.cache_status()
    );
}

/// REVIEW: a 304 that adds `Vary: Origin` (and a reflected ACAO) is merged into an entry whose
/// secondary key was computed without Vary: the entry is then served to every Origin.
#[test]
fn review_304_adding_vary_is_served_to_every_variant() {
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[("etag", "\"v1\"".into())]);
    let up304 = |sent: &Headers| {
        let origin = first(sent, "origin").unwrap_or("").to_string();
        (
            304,
            h(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=3600"),
                ("vary", "Origin"),
                ("access-control-allow-origin", &origin),
                ("access-control-allow-credentials", "true"),
            ]),
            vec![],
        )
    };
    sim.send(
        "GET",
        "/api/products",
        &[
            ("cache-control", "no-cache"),
            ("origin", "https://evil.example"),
        ],
        None,
        T0 + 1,
        &up304,
    );
    let victim = sim.send(
        "GET",
        "/api/products",
        &[("origin", "https://good.example")],
        None,
        T0 + 2,
        &never,
    );
    println!(
        "victim: {:?} vary {:?} acao {:?}",
        victim.cache_status(),
        victim.header("vary"),
        victim.header("access-control-allow-origin")
    );
    assert_ne!(
        victim.header("access-control-allow-origin"),
        Some("https://evil.example")
    );
}

/// REVIEW: on a per_user route, one user's HEAD (may_update: "the entry is the user's own")
/// that does not select *their* entry removes the URL's entries of every user.
#[test]
fn review_one_users_head_drops_every_users_per_user_entry() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("etag", "\"e\""),
            ]),
            b"x".to_vec(),
        )
    };
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    sim.send("GET", "/me", &[], Some(&bob), T0, &up);
    assert!(sim
        .send("GET", "/me", &[], Some(&bob), T0 + 1, &never)
        .cache_status()
        .contains("hit"));
    // Alice's HEAD: upstream answers 200 without an ETag (HEAD handlers often compute none).
    let head_up = |_: &Headers| (200, h(&[("cache-control", "max-age=60")]), vec![]);
    sim.send(
        "HEAD",
        "/me",
        &[("cache-control", "no-cache")],
        Some(&alice),
        T0 + 2,
        &head_up,
    );
    let b = sim.send("GET", "/me", &[], Some(&bob), T0 + 3, &up);
    println!("bob after alice's HEAD: {}", b.cache_status());
    assert!(
        b.cache_status().contains("hit"),
        "bob's entry was dropped by alice: {}",
        b.cache_status()
    );
}

/// REVIEW: the 304 a user's revalidation gets is replaced by the merged entry, without the
/// Set-Cookie the upstream sent that user (shared route).
#[test]
fn review_revalidating_users_set_cookie_is_dropped() {
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[("etag", "\"v1\"".into())]);
    let up304 = |_: &Headers| {
        (
            304,
            h(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=60"),
                ("set-cookie", "sid=rotated; HttpOnly"),
            ]),
            vec![],
        )
    };
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "no-cache"), ("authorization", "Bearer x")],
        None,
        T0 + 1,
        &up304,
    );
    println!(
        "status {} set-cookie {:?} cs {}",
        got.status,
        got.header("set-cookie"),
        got.cache_status()
    );
    assert_eq!(got.header("set-cookie"), Some("sid=rotated; HttpOnly"));
}

/// F3: on a per-user route, a user's HEAD that finds their entry outdated drops only their
/// entry, not the other users' of the URL.
#[test]
fn a_users_outdated_head_drops_only_their_own_per_user_entry() {
    let mut sim = Sim::products();
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=60"),
                ("etag", "\"e\""),
            ]),
            b"x".to_vec(),
        )
    };
    let alice = user("alice", &[]);
    let bob = user("bob", &[]);
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    sim.send("GET", "/me", &[], Some(&bob), T0, &up);
    // Alice's HEAD gets another ETag: her entry is outdated.
    let head_up = |_: &Headers| {
        (
            200,
            h(&[("cache-control", "max-age=60"), ("etag", "\"e2\"")]),
            vec![],
        )
    };
    let got = sim.send(
        "HEAD",
        "/me",
        &[("cache-control", "no-cache")],
        Some(&alice),
        T0 + 2,
        &head_up,
    );
    assert!(
        got.events
            .iter()
            .any(|e| matches!(e, Event::Invalidated(1))),
        "{:?}",
        got.events
    );
    let a = sim.send("GET", "/me", &[], Some(&alice), T0 + 3, &up);
    assert!(
        a.cache_status().contains("fwd=miss"),
        "alice: {}",
        a.cache_status()
    );
    let b = sim.send("GET", "/me", &[], Some(&bob), T0 + 3, &never);
    assert!(
        b.cache_status().contains("hit"),
        "bob: {}",
        b.cache_status()
    );
}

/// F6: a 304 naming another Vary is this client's answer (merged, with the new fields) but does
/// not update the entry, whose secondary key was made from the stored Vary.
#[test]
fn a_304_with_another_vary_answers_the_client_but_does_not_update() {
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[("etag", "\"v1\"".into())]);
    let up304 = |_: &Headers| {
        (
            304,
            h(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=3600"),
                ("vary", "Origin"),
                ("access-control-allow-origin", "https://evil.example"),
            ]),
            vec![],
        )
    };
    let got = sim.send(
        "GET",
        "/api/products",
        &[
            ("cache-control", "no-cache"),
            ("origin", "https://evil.example"),
        ],
        None,
        T0 + 1,
        &up304,
    );
    assert_eq!((got.status, got.body.as_slice()), (200, &b"body"[..]));
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some("https://evil.example")
    );
    assert!(
        got.cache_status().contains("detail=vary-changed")
            && !got.cache_status().contains("stored"),
        "{}",
        got.cache_status()
    );
    let other = sim.send(
        "GET",
        "/api/products",
        &[("origin", "https://good.example")],
        None,
        T0 + 2,
        &never,
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("vary"), None);
    assert_eq!(other.header("x-a"), Some("1"));
}

/// F7: a revalidation's reply carries the 304's Set-Cookie (the client's session rotation),
/// which is not stored on a shared entry; on a per-user entry it replaces the stored ones.
#[test]
fn a_revalidations_reply_carries_the_304s_set_cookie() {
    // Shared route, anonymous: the entry is updated, the cookie is not stored.
    let mut sim = Sim::products();
    stored_v1(&mut sim, "max-age=60", &[("etag", "\"v1\"".into())]);
    let up304 = |_: &Headers| {
        (
            304,
            h(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=60"),
                ("set-cookie", "sid=rotated; HttpOnly"),
                ("set-cookie", "theme=dark"),
                ("x-a", "2"),
            ]),
            vec![],
        )
    };
    let got = sim.send(
        "GET",
        "/api/products",
        &[("cache-control", "no-cache")],
        None,
        T0 + 1,
        &up304,
    );
    assert_eq!(
        got.header_values("set-cookie"),
        vec!["sid=rotated; HttpOnly", "theme=dark"]
    );
    let hit = sim.get("/api/products", T0 + 2, &never);
    assert_eq!(hit.header("x-a"), Some("2"), "{}", hit.cache_status());
    assert_eq!(
        hit.header("set-cookie"),
        None,
        "a shared entry never stores a cookie"
    );
    // Per-user route: the stored cookie is replaced, not repeated.
    let mut sim = Sim::products();
    let alice = user("alice", &[]);
    let up = |_: &Headers| {
        (
            200,
            h(&[
                ("content-type", "application/json"),
                ("cache-control", "max-age=1"),
                ("etag", "\"v1\""),
                ("set-cookie", "sid=old"),
            ]),
            b"me".to_vec(),
        )
    };
    sim.send("GET", "/me", &[], Some(&alice), T0, &up);
    let nm = |_: &Headers| {
        (
            304,
            h(&[
                ("etag", "\"v1\""),
                ("cache-control", "max-age=60"),
                ("set-cookie", "sid=new"),
            ]),
            vec![],
        )
    };
    let got = sim.send("GET", "/me", &[], Some(&alice), T0 + 5, &nm);
    assert_eq!(
        got.header_values("set-cookie"),
        vec!["sid=new"],
        "{}",
        got.cache_status()
    );
}
