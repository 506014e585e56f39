//! The cache's identity-dependent paths (per-user keys, purge permission) in the real Envoy.
//!
//! The auth filter publishes the verified identity as Envoy filter state `portcullis.identity`
//! (proxy-wasm `set_property`). So that these tests do not depend on auth's progress, a test-only
//! wasm filter (`tests/identity-stub`, built here with cargo) stands in for it: inserted just
//! before the cache in a test copy of the chain, it publishes the identity given in the
//! `x-test-identity` header to that same key. No shipped config contains it. (Envoy's own
//! `set_filter_state` filter cannot stand in: the objects it writes are not readable through
//! proxy-wasm `get_property`, which only sees wasm-written state.)

use std::io::Read;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use portcullis_devkit::render::{render, Settings};
use portcullis_tests::server::{Response, TestServer};
use portcullis_tests::{
    free_ports, make_certs, repo, spawn_envoy, tls, wait_ready, wasm_dir, ScratchDir,
};

/// Builds the stub (release, wasm32) and returns its path.
fn identity_stub() -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(repo())
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            "portcullis-identity-stub",
        ])
        .status()
        .expect("cargo");
    assert!(status.success(), "building the identity stub failed");
    repo().join("target/wasm32-wasip1/release/portcullis_identity_stub.wasm")
}

fn stub_filter_yaml(wasm: &std::path::Path) -> String {
    format!(
        r#"- name: portcullis.test-identity-stub
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: portcullis.test-identity-stub
      root_id: identity-stub
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: identity-stub
        runtime: envoy.wasm.runtime.v8
        code: {{ local: {{ filename: "{}" }} }}
"#,
        wasm.display()
    )
}

struct IdentityChain {
    envoy: Child,
    https_port: u16,
    certs: std::path::PathBuf,
    log: std::path::PathBuf,
    _dir: ScratchDir,
}

impl Drop for IdentityChain {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- Envoy log -----\n{}",
                portcullis_tests::read_lossy(&self.log)
            );
        }
    }
}

impl IdentityChain {
    fn start(upstream_port: u16, cache_json: &str) -> IdentityChain {
        let dir = ScratchDir::new("cache-identity");
        let certs = make_certs(&dir.0);
        let [https_port, http_port, admin_port] = free_ports::<3>();
        let mut s = Settings::local(&repo());
        s.https_port = https_port;
        s.https_public_port = https_port;
        s.http_port = http_port;
        s.admin_port = admin_port;
        s.upstream_host = "127.0.0.1".into();
        s.upstream_port = upstream_port;
        s.cert_dir = certs.clone();
        s.wasm_dir = wasm_dir();
        s.filter_configs.insert("cache".into(), cache_json.into());
        let yaml = render(&s).unwrap();
        // Insert the stand-in right before the cache filter, at its indentation.
        let at = yaml
            .find("- name: portcullis.cache")
            .expect("cache filter in the chain");
        let line_start = yaml[..at].rfind('\n').map_or(0, |i| i + 1);
        let indent = &yaml[line_start..at];
        let inserted: String = stub_filter_yaml(&identity_stub())
            .lines()
            .map(|l| format!("{indent}{l}\n"))
            .collect();
        let yaml = format!("{}{}{}", &yaml[..line_start], inserted, &yaml[line_start..]);
        let config = dir.0.join("envoy.yaml");
        std::fs::write(&config, yaml).unwrap();
        let log = dir.0.join("envoy.log");
        let mut envoy = spawn_envoy(&config, &log, 2);
        wait_ready(&mut envoy, admin_port, &log);
        IdentityChain {
            envoy,
            https_port,
            certs,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    fn client(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls::client_config(
                &self.certs,
                &[&rustls::version::TLS13, &rustls::version::TLS12],
                &[b"http/1.1"],
            )))
            .redirects(0)
            .timeout(Duration::from_secs(20))
            .build()
    }
}

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

fn identity(subject: &str, roles: &[&str]) -> String {
    serde_json::json!({ "subject": subject, "method": "jwt", "roles": roles, "issuer": "test" })
        .to_string()
}

#[test]
fn two_identities_never_see_each_others_private_responses() {
    // The upstream answers with the user it was told about, privately.
    let server = TestServer::start(|req| {
        let who = req.header("x-user").unwrap_or("nobody").to_string();
        Response::json(200, &serde_json::json!({ "me": who }))
            .header("cache-control", "private, max-age=60")
    });
    let chain = IdentityChain::start(
        server.port(),
        r#"{"routes":[{"path":"/me","per_user":true},{"path":"/shared"}]}"#,
    );
    let client = chain.client();
    let get = |path: &str, subject: &str| {
        call(
            client
                .get(&chain.url(path))
                .set("x-test-identity", &identity(subject, &[]))
                .set("x-user", subject),
        )
    };
    let a = get("/me", "alice");
    assert!(
        a.header("cache-status").unwrap_or("").contains("stored"),
        "{:?}",
        a.header("cache-status")
    );
    assert!(text(a).contains("alice"));
    let b = get("/me", "bob");
    assert!(
        b.header("cache-status").unwrap_or("").contains("fwd=miss"),
        "bob does not get alice's entry"
    );
    assert!(text(b).contains("bob"));
    for (who, other) in [("alice", "bob"), ("bob", "alice")] {
        let r = get("/me", who);
        assert!(r.header("cache-status").unwrap_or("").contains("hit"));
        let body = text(r);
        assert!(
            body.contains(who) && !body.contains(other),
            "{who} got {body}"
        );
    }
    assert_eq!(server.received().len(), 2);
    // Without an identity the per-user route is never answered from cache.
    let anon = call(client.get(&chain.url("/me")).set("x-user", "anon"));
    assert!(anon
        .header("cache-status")
        .unwrap_or("")
        .contains("fwd=bypass"));
    assert!(text(anon).contains("anon"));
    // On a shared route a private response is never stored, whoever asks.
    for who in ["alice", "bob"] {
        let r = get("/shared", who);
        assert!(r
            .header("cache-status")
            .unwrap_or("")
            .ends_with("detail=private"));
        assert!(text(r).contains(who));
    }
}

#[test]
fn purge_by_url_and_tag_with_a_purge_role() {
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
    let chain = IdentityChain::start(
        server.port(),
        r#"{"routes":[{"path":"/p/**"}],"purge":{"path":"/_cache/purge","roles":["cache-admin"]}}"#,
    );
    let client = chain.client();
    let status = |path: &str| {
        call(client.get(&chain.url(path)))
            .header("cache-status")
            .unwrap_or("")
            .to_string()
    };
    for p in ["/p/a1", "/p/a2", "/p/b1"] {
        assert!(status(p).contains("stored"));
        assert!(status(p).contains("hit"));
    }
    // A viewer may not purge.
    let denied = call(
        client
            .request("PURGE", &chain.url("/p/a1"))
            .set("x-test-identity", &identity("v", &["viewer"])),
    );
    assert_eq!(denied.status(), 403);
    assert_eq!(
        denied.header("content-type"),
        Some("application/problem+json")
    );
    assert!(status("/p/a1").contains("hit"));
    let admin = identity("ops", &["cache-admin"]);
    // By URL.
    let purged = call(
        client
            .request("PURGE", &chain.url("/p/a1"))
            .set("x-test-identity", &admin),
    );
    assert_eq!(purged.status(), 200);
    assert_eq!(text(purged), r#"{"purged":1,"status":"purged"}"#);
    assert!(status("/p/a1").contains("fwd=miss"));
    assert!(status("/p/a2").contains("hit"));
    // By tag, through the admin path.
    let purged = call(
        client
            .post(&chain.url("/_cache/purge?tag=group-a"))
            .set("x-test-identity", &admin),
    );
    assert_eq!(text(purged), r#"{"purged":2,"status":"purged"}"#);
    assert!(status("/p/a2").contains("fwd=miss"));
    assert!(status("/p/b1").contains("hit"));
}
