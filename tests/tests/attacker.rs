//! The attacker suite: each bypass found by attacking the demo chain (issue 13: forged preflights,
//! path parameters, method case, duplicate credentials, path case, override headers) sent through
//! the full chain, in whatever layout `PORTCULLIS_TEST_LAYOUT` names. Every probe carries an
//! `x-probe` header, and the test asserts on what the upstream received, not only on the status:
//! a bypass is a request that reached it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use portcullis_audit::chain::SCHEMA_MARK;
use portcullis_tests::auth::demo_token;
use portcullis_tests::h2;
use portcullis_tests::reply::{reply, Reply};
use portcullis_tests::tls::{client_config, handshake};
use portcullis_tests::{Chain, Options};
use serde_json::Value;

fn bearer(role: &str) -> String {
    format!("Bearer {}", demo_token(role))
}

/// Sends with `ureq` (HTTP/1.1); the path goes out as written (`;`, `%3B` are kept).
fn send(chain: &Chain, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = chain.client().request(method, &chain.url(path));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    reply(req.call())
}

/// Sends a request line and header lines byte for byte (what `ureq` would normalise or refuse:
/// repeated headers, a lower-case method, `%2e` segments), with `Connection: close`, and reads
/// the whole answer.
fn raw(chain: &Chain, request_line: &str, headers: &[(&str, &str)]) -> Reply {
    let config = client_config(&chain.certs, &[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut tls = handshake(chain.https_port, config).unwrap_or_else(|e| panic!("{e}"));
    let mut text = format!("{request_line} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    tls.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    // Envoy closes after the response (`connection: close`); a TLS close without close_notify is
    // an error to rustls but the bytes read so far are the whole answer.
    let _ = tls.read_to_end(&mut answer);
    parse_http1(&String::from_utf8_lossy(&answer))
}

/// Status, headers and (de-chunked) body of an HTTP/1.1 response.
fn parse_http1(text: &str) -> Reply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(after.get(..n).unwrap_or(after));
            rest = after.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Whether the upstream received a request carrying `x-probe: probe`.
fn reached(chain: &Chain, probe: &str) -> bool {
    chain
        .upstream
        .received()
        .iter()
        .any(|r| r.header("x-probe") == Some(probe))
}

fn assert_problem(r: &Reply, status: u16, reason: &str, what: &str) {
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (status, Some(reason)),
        "{what}: {}",
        r.body
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
}

/// Every audit record in Envoy's log.
fn records(chain: &Chain) -> Vec<Value> {
    chain
        .log()
        .lines()
        .filter_map(|l| l.find(SCHEMA_MARK).map(|at| &l[at..]))
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Finding 1: `OPTIONS` with a foreign `Origin` and `Access-Control-Request-Method`, no
/// credentials. Envoy's CORS filter used to forward it (the origin is not allowed) and auth
/// exempted it as a preflight: the admin dashboard answered.
#[test]
fn forged_cors_preflight_never_reaches_the_upstream() {
    let chain = Chain::start();
    let r = send(
        &chain,
        "OPTIONS",
        "/admin/users",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
            ("x-probe", "forged-preflight"),
        ],
    );
    assert!(
        !reached(&chain, "forged-preflight"),
        "a forged preflight reached the upstream: {} {}",
        r.status,
        r.body
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A preflight from an allowed origin is still answered, by Envoy, without the upstream.
    let ok = send(
        &chain,
        "OPTIONS",
        "/admin/users",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
            ("x-probe", "allowed-preflight"),
        ],
    );
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(!reached(&chain, "allowed-preflight"));
}

/// Finding 1 without Envoy's CORS filter (Istio without a CORS policy, or a template that still
/// forwards foreign preflights): auth alone must refuse, and the audit record says so.
#[test]
fn forged_cors_preflight_is_refused_by_auth_without_envoys_cors_filter() {
    let chain = Chain::start_with(Options::default().edit_yaml(
        "- name: envoy.filters.http.cors\n",
        "- name: envoy.filters.http.cors.removed\n                    disabled: true\n",
    ));
    let r = send(
        &chain,
        "OPTIONS",
        "/admin/users",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
            ("x-probe", "forged-preflight"),
        ],
    );
    assert_problem(&r, 401, "credentials_missing", "forged preflight");
    assert!(!reached(&chain, "forged-preflight"));
    wait_for("the preflight's audit record", || {
        records(&chain)
            .iter()
            .any(|r| r["http"]["method"] == "OPTIONS")
    });
    let all = records(&chain);
    let record = all
        .iter()
        .find(|r| r["http"]["method"] == "OPTIONS")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!(record["outcome"], "denied", "{record}");
    assert_eq!(record["decisions"]["auth"]["outcome"], "deny", "{record}");
    assert_eq!(
        record["decisions"]["auth"]["reason"], "credentials_missing",
        "{record}"
    );
}

/// Finding 2: `;` path parameters, raw or percent-encoded. A servlet upstream strips them per
/// segment, and treats `..;` as `..`, so `/admin;x/users` is the admin area and
/// `/api/products/..;/..;/admin/users` climbs out of a public route.
#[test]
fn path_parameters_are_refused() {
    let chain = Chain::start();
    let viewer = bearer("viewer");
    for (i, path) in [
        "/admin;x/users",
        "/admin%3Bx/users",
        "/admin%3bx/users",
        "/admin;/users",
        "/ADMIN;x/users",
        "/api/products;jsessionid=1/7",
    ]
    .into_iter()
    .enumerate()
    {
        let probe = format!("params-{i}");
        let r = raw(
            &chain,
            &format!("GET {path}"),
            &[("authorization", &viewer), ("x-probe", &probe)],
        );
        assert_problem(&r, 400, "path_parameters", path);
        assert!(!reached(&chain, &probe), "{path} reached the upstream");
    }
    // `..;` out of a public route, with a viewer's token and with none. Envoy's own
    // normalisation may resolve `..;` before auth sees it (then the admin rule refuses); either
    // way the request must be refused and never reach the upstream.
    for (i, path) in [
        "/api/products/..;/..;/admin/users",
        "/api/products;jsessionid=1/..;/..;/admin",
        "/static/..;/admin/users",
    ]
    .into_iter()
    .enumerate()
    {
        for (auth, allowed) in [
            (Some(viewer.as_str()), ["path_parameters", "forbidden"]),
            (None, ["path_parameters", "credentials_missing"]),
        ] {
            let probe = format!("dots-{i}-{}", auth.is_some());
            let mut headers = vec![("x-probe", probe.as_str())];
            headers.extend(auth.map(|a| ("authorization", a)));
            let r = raw(&chain, &format!("GET {path}"), &headers);
            let reason = r.json()["reason"].as_str().map(str::to_string);
            assert!(
                reason.as_deref().is_some_and(|r| allowed.contains(&r)),
                "{path}: {} {}",
                r.status,
                r.body
            );
            assert!(!reached(&chain, &probe), "{path} reached the upstream");
        }
    }
    // An ordinary path still works.
    let r = send(&chain, "GET", "/api/products", &[("x-probe", "plain")]);
    assert_eq!(r.status, 200);
    assert!(reached(&chain, "plain"));
}

/// The class around finding 2: every other way to make the matcher and the upstream disagree
/// about the path (encoded dots and separators, backslashes, NUL, fragments) never reaches the
/// upstream through a public route or with a viewer token past an admin rule.
#[test]
fn ambiguous_paths_never_dodge_a_rule() {
    let chain = Chain::start();
    let viewer = bearer("viewer");
    for (i, path) in [
        "/api/products/%2e%2e/%2e%2e/admin/users",
        "/api/products/.%2E/.%2e/admin/users",
        "/api/products/%2E%2E%2Fadmin",
        "/api/products/..%2fadmin",
        "/api/products/..%5cadmin",
        "/api/products/..%5c..%5cadmin",
        "/api/products/%2e%2e%5c%2e%2e%5cadmin",
        "/static/%252e%252e/admin",
        "/admin%00/users",
        "/admin%2fusers",
        "/adm%69n/users",
        "/%41DMIN/users",
        "/admin%2e/users",
        "/admin./users",
        "/admin%20/users",
    ]
    .into_iter()
    .enumerate()
    {
        let probe = format!("ambiguous-{i}");
        let r = raw(
            &chain,
            &format!("GET {path}"),
            &[("authorization", &viewer), ("x-probe", &probe)],
        );
        let got = chain
            .upstream
            .received()
            .into_iter()
            .find(|r| r.header("x-probe") == Some(probe.as_str()));
        // What reached the upstream (if anything) must not be able to mean the admin area or
        // anything outside the public route it was sent under.
        if let Some(got) = got {
            let p = got.path.to_ascii_lowercase();
            assert!(
                !(p.contains("admin")
                    || p.contains("..")
                    || p.contains("%2e")
                    || p.contains('\\')
                    || p.contains("%5c")),
                "{path} reached the upstream as {} ({} {})",
                got.path,
                r.status,
                r.body
            );
        }
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
}

/// Finding 3: a lower-case method over HTTP/2 passed the `DELETE` rule; ASP.NET Core and Django
/// fold the case and run the DELETE.
#[test]
fn lower_case_methods_are_refused() {
    let chain = Chain::start();
    let viewer = bearer("viewer");
    for (i, method) in ["delete", "Delete", "post", "pUT"].into_iter().enumerate() {
        let probe = format!("method-h2-{i}");
        let body = h2::request(
            &chain,
            method,
            "/api/orders/1",
            &[("authorization", &viewer), ("x-probe", &probe)],
        )
        .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(
            !reached(&chain, &probe),
            "{method} over h2 reached the upstream: {}",
            String::from_utf8_lossy(&body.body)
        );
        let json = body.json();
        assert_eq!(json["status"], 400, "{method}: {json}");
        assert_eq!(json["reason"], "method_invalid", "{method}: {json}");
    }
    // Over HTTP/1.1, if Envoy's codec lets it through at all.
    let r = raw(
        &chain,
        "delete /api/orders/1",
        &[("authorization", &viewer), ("x-probe", "method-h1")],
    );
    assert!(!reached(&chain, "method-h1"), "{} {}", r.status, r.body);
    assert_eq!(r.status, 400, "{}", r.body);
    // The upper-case method is decided by the rule as before.
    let r = send(
        &chain,
        "DELETE",
        "/api/orders/1",
        &[("authorization", &viewer), ("x-probe", "method-upper")],
    );
    assert_problem(&r, 403, "forbidden", "DELETE by a viewer");
    assert!(!reached(&chain, "method-upper"));
}

/// An auth configuration reading the token from a cookie or a query parameter, every route
/// needing an authenticated caller; `remove_token` left at its default.
const COOKIE_AND_QUERY: &str = r#"{
  "providers": [{"name": "demo", "issuer": "https://demo.portcullis.invalid",
                 "audiences": ["portcullis-demo-api"],
                 "hmac_keys": [{"alg": "HS256", "secret_env": "PORTCULLIS_JWT_SECRET"}],
                 "roles_claim": "roles"}],
  "token_sources": [{"header": "authorization"}, {"cookie": "session"}, {"query": "access_token"}],
  "rules": [{"path": "/**"}]
}"#;

/// Finding 7: the first copy of a credential was verified and every copy went upstream, where
/// an upstream reading the last copy saw an unverified token.
#[test]
fn duplicate_credentials_are_refused() {
    let chain = Chain::start_with(Options::default().filter_config("auth", COOKIE_AND_QUERY));
    let token = demo_token("viewer");
    let auth = format!("Bearer {token}");
    let forged = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let cases: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "GET /echo".into(),
            vec![
                ("authorization", auth.clone()),
                ("authorization", forged.into()),
            ],
        ),
        (
            "GET /echo".into(),
            vec![("cookie", format!("session={token}; session=forged"))],
        ),
        (
            "GET /echo".into(),
            vec![
                ("cookie", format!("session={token}")),
                ("cookie", "session=forged".into()),
            ],
        ),
        (
            "GET /echo".into(),
            vec![("cookie", format!("session={token}; ses%73ion=forged"))],
        ),
        (
            format!("GET /echo?access_token={token}&access_token=forged"),
            vec![],
        ),
        (
            format!("GET /echo?access_token={token}&access%5Ftoken=forged"),
            vec![],
        ),
        (
            format!("GET /echo?access_token={token}&Access_Token=forged"),
            vec![],
        ),
    ];
    for (i, (line, headers)) in cases.iter().enumerate() {
        let probe = format!("dup-{i}");
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        h.push(("x-probe", &probe));
        let r = raw(&chain, line, &h);
        assert_problem(&r, 400, "credentials_ambiguous", &format!("case {i}"));
        assert!(!reached(&chain, &probe), "case {i} reached the upstream");
    }
    // One copy passes, and by default the token does not go upstream.
    let r = raw(
        &chain,
        &format!("GET /echo?a=1&access_token={token}"),
        &[("x-probe", "single-query"), ("cookie", "other=1")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = chain
        .upstream
        .received()
        .into_iter()
        .find(|r| r.header("x-probe") == Some("single-query"))
        .unwrap_or_else(|| panic!("single token did not reach the upstream"));
    assert!(
        !got.query.iter().any(|(n, _)| n == "access_token"),
        "{:?}",
        got.query
    );
    assert!(got.query.iter().any(|(n, v)| n == "a" && v == "1"));
    let r = raw(
        &chain,
        "GET /echo",
        &[("x-probe", "single-header"), ("authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = chain
        .upstream
        .received()
        .into_iter()
        .find(|r| r.header("x-probe") == Some("single-header"))
        .unwrap_or_else(|| panic!("single header did not reach the upstream"));
    assert_eq!(got.header("authorization"), None);
}

/// Finding 9: rules matched the path case-sensitively; ASP.NET Core and IIS route
/// case-insensitively, so `/ADMIN/users` is the admin area there.
#[test]
fn path_case_does_not_dodge_a_rule() {
    let chain = Chain::start();
    let viewer = bearer("viewer");
    for (i, (method, path)) in [
        ("GET", "/ADMIN/users"),
        ("GET", "/Admin/users"),
        ("GET", "/aDmIn"),
        ("DELETE", "/API/orders/1"),
        ("POST", "/Api/orders"),
    ]
    .into_iter()
    .enumerate()
    {
        let probe = format!("case-{i}");
        let r = send(
            &chain,
            method,
            path,
            &[("authorization", &viewer), ("x-probe", &probe)],
        );
        assert_problem(&r, 403, "forbidden", path);
        assert!(
            !reached(&chain, &probe),
            "{method} {path} reached the upstream"
        );
    }
    // A public rule is not widened: `/API/products` is not the public catalogue; it needs a
    // caller (and a viewer may read it through the catch-all).
    let r = send(
        &chain,
        "GET",
        "/API/products",
        &[("x-probe", "case-public")],
    );
    assert_problem(&r, 401, "credentials_missing", "/API/products");
    assert!(!reached(&chain, "case-public"));
}

/// Headers that IIS, Symfony, Laravel or Express act on after auth decided about another path
/// or method, and headers only Portcullis may set.
const OVERRIDES: [(&str, &str); 7] = [
    ("x-original-url", "/admin/users"),
    ("x-rewrite-url", "/admin/users"),
    ("x-http-method-override", "DELETE"),
    ("x-http-method", "DELETE"),
    ("x-method-override", "DELETE"),
    ("x-portcullis-roles", "admin"),
    ("x-portcullis-anything", "forged"),
];

fn assert_no_override_reaches(chain: &Chain, probe: &str) {
    let mut headers: Vec<(&str, &str)> = OVERRIDES.to_vec();
    headers.push(("x-probe", probe));
    // A public route, then a protected one with a valid token: both go upstream.
    let viewer = bearer("viewer");
    for (path, auth) in [("/echo", None), ("/api/orders", Some(viewer.as_str()))] {
        let mut h = headers.clone();
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let r = send(chain, "GET", path, &h);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let got: Vec<_> = chain
        .upstream
        .received()
        .into_iter()
        .filter(|r| r.header("x-probe") == Some(probe))
        .collect();
    assert_eq!(got.len(), 2);
    for r in got {
        for (name, forged) in OVERRIDES {
            // Auth sets the real `x-portcullis-roles` for the viewer; the forged value never.
            let got = r.header(name);
            assert!(
                got.is_none() || (name == "x-portcullis-roles" && got == Some("viewer")),
                "{name}: {forged} reached the upstream at {} as {got:?}",
                r.path
            );
        }
    }
}

/// Finding 10, with the template's front `header_mutation` as shipped.
#[test]
fn override_headers_never_reach_the_upstream() {
    let chain = Chain::start();
    assert_no_override_reaches(&chain, "overrides");
}

/// Finding 10 where nothing in front of Portcullis removes headers (Istio): auth alone does it.
#[test]
fn override_headers_never_reach_the_upstream_without_the_front_mutation() {
    let mut options = Options::default();
    for name in [
        "would-deny",
        "subject",
        "roles",
        "tenant",
        "auth-method",
        "key-id",
    ] {
        options = options.edit_yaml(
            &format!("- remove: x-portcullis-{name}\n"),
            &format!("- remove: x-not-portcullis-{name}\n"),
        );
    }
    let chain = Chain::start_with(options);
    assert_no_override_reaches(&chain, "overrides-istio");
}
