//! The upstream down (`make faults` found it, docs/reliability.md): the answer Envoy makes itself
//! when no upstream answers — connection refused, reset, timeout — is a problem+json like every
//! Portcullis refusal, with the same fields, and not Envoy's plain-text body.

use portcullis_tests::{free_ports, Chain, Options};

#[test]
fn an_unreachable_upstream_gets_a_problem_json_503() {
    // A port nothing listens on: every connection to the upstream is refused.
    let [closed] = free_ports::<1>();
    let chain = Chain::start_with(Options::default().set(&format!("UPSTREAM_PORT={closed}")));
    // A public route (no filter refuses it), and an authenticated one's refusal for contrast:
    // the filters' own problem+json replies keep their status, reason and body.
    for path in ["/api/products/1", "/echo/x?y=1"] {
        let resp = match chain.client().get(&chain.url(path)).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{path}: {e}"),
        };
        assert_eq!(resp.status(), 503, "{path}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        let request_id = resp.header("x-request-id").map(str::to_string);
        let body: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        assert_eq!(body["status"], 503, "{path}: {body}");
        assert_eq!(body["reason"], "upstream_unavailable", "{path}: {body}");
        assert_eq!(
            body["type"], "https://portcullis.dev/problems/upstream_unavailable",
            "{body}"
        );
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        assert!(body["request_id"].is_string(), "{body}");
        if let Some(id) = request_id {
            assert_eq!(body["request_id"], id.as_str(), "{body}");
        }
    }
    let refused = match chain.client().get(&chain.url("/api/orders")).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = serde_json::from_str(&refused.into_string().unwrap()).unwrap();
    assert_ne!(body["reason"], "upstream_unavailable", "{body}");
}

#[test]
fn an_upstream_timeout_gets_a_problem_json_504() {
    let chain = Chain::start();
    // Longer than the route's per-try timeout (5 s); a POST is not retried, so the answer comes
    // after one try.
    let token = portcullis_tests::auth::demo_token("editor");
    let resp = match chain
        .client()
        .post(&chain.url("/slow?ms=8000"))
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/json")
        .send_string("{}")
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let body: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    assert_eq!(body["status"], 504, "{body}");
    assert_eq!(body["reason"], "upstream_timeout", "{body}");
    assert!(body["request_id"].is_string(), "{body}");
}
