//! End-to-end tests over real sockets, using a deliberately tiny HTTP/1.1
//! client so the bytes on the wire are exactly what we wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_demo_upstream::Upstream;
use serde_json::{json, Value};

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }
}

/// One keep-alive connection.
struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            conn: BufReader::new(stream),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).unwrap();
    }

    fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: upstream.test\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.send_raw(head.as_bytes());
        self.send_raw(body);
        self.read_response(method == "HEAD")
    }

    fn read_response(&mut self, head_request: bool) -> Response {
        let status_line = self.line();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts.next().unwrap().parse().unwrap();

        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        assert_eq!(
            response.header("transfer-encoding"),
            None,
            "the upstream should always send Content-Length"
        );
        let length: usize = response
            .header("content-length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        let bodiless = head_request || matches!(status, 100..=199 | 204 | 304);
        if !bodiless {
            response.body = vec![0; length];
            self.conn.read_exact(&mut response.body).unwrap();
        }
        response
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.conn.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "truncated line {line:?}");
        line.trim_end_matches("\r\n").to_string()
    }
}

fn start() -> Upstream {
    Upstream::start("127.0.0.1:0").unwrap()
}

fn get(upstream: &Upstream, target: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(upstream.local_addr()).request("GET", target, headers, b"")
}

#[test]
fn products_list_is_large_cacheable_and_revalidates_with_304() {
    let upstream = start();
    let list = get(&upstream, "/api/products", &[]);
    assert_eq!(list.status, 200);
    assert_eq!(list.header("content-type"), Some("application/json"));
    assert_eq!(list.header("cache-control"), Some("public, max-age=60"));
    assert!(list.header("last-modified").unwrap().ends_with(" GMT"));
    assert!(list.body.len() > 2048, "only {} bytes", list.body.len());
    assert_eq!(list.json()["products"].as_array().unwrap().len(), 24);
    let etag = list.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    for matching in [etag.clone(), "*".to_string(), format!("\"nope\", W/{etag}")] {
        let cached = get(&upstream, "/api/products", &[("If-None-Match", &matching)]);
        assert_eq!(cached.status, 304, "If-None-Match: {matching}");
        assert!(cached.body.is_empty());
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        assert_eq!(cached.header("cache-control"), Some("public, max-age=60"));
    }
    let stale = get(&upstream, "/api/products", &[("If-None-Match", "\"old\"")]);
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, list.body);

    // HEAD: same headers and length, no body, and the connection stays usable.
    let mut client = Client::connect(upstream.local_addr());
    let head = client.request("HEAD", "/api/products", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(list.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(
        client.request("GET", "/healthz", &[], b"").json(),
        json!({"status":"ok"})
    );
}

#[test]
fn single_products_and_problem_json_for_unknown_ids() {
    let upstream = start();
    let one = get(&upstream, "/api/products/7", &[]);
    assert_eq!(one.status, 200);
    assert!(one.body.len() < 1024);
    assert_eq!(one.json()["id"], 7);
    assert!(one.header("etag").is_some());

    let missing = get(&upstream, "/api/products/99", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    // Byte-exact, so the documented key order is part of the contract.
    assert_eq!(
        String::from_utf8_lossy(&missing.body),
        r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"no product with id 99"}"#
    );
}

#[test]
fn echo_mirrors_the_request_and_records_it() {
    let upstream = start();
    let mut client = Client::connect(upstream.local_addr());
    let echoed = client.request(
        "PUT",
        "/echo/some%20thing?b=2&a=hello+world&bad=%zz",
        &[("X-Custom", "Value One"), ("Content-Type", "text/plain")],
        b"hello body",
    );
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("cache-control"), Some("no-store"));
    let body = echoed.json();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/echo/some%20thing");
    assert_eq!(
        body["query"],
        json!([["b", "2"], ["a", "hello world"], ["bad", "%zz"]])
    );
    assert!(body["headers"]
        .as_array()
        .unwrap()
        .contains(&json!(["x-custom", "Value One"])));
    assert_eq!(body["body"], "hello body");
    assert_eq!(body["body_base64"], Value::Null);
    assert_eq!(body["body_bytes"], 10);

    let binary = client.request("POST", "/anything", &[], &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(binary.json()["body_base64"], "3q2+7w==");
    assert_eq!(binary.json()["body"], Value::Null);

    let received = upstream.received();
    assert_eq!(received.len(), 2);
    let first = &received[0];
    assert_eq!(first.method, "PUT");
    assert_eq!(first.path, "/echo/some%20thing");
    assert_eq!(first.query[1], ("a".to_string(), "hello world".to_string()));
    assert_eq!(first.header("X-CUSTOM"), Some("Value One"));
    assert!(first.headers.iter().any(|(name, _)| name == "x-custom"));
    assert!(first
        .headers
        .iter()
        .all(|(name, _)| *name == name.to_ascii_lowercase()));
    assert_eq!(first.body, b"hello body");
    assert_eq!(received[1].path, "/anything");
    assert_eq!(received[1].body, [0xde, 0xad, 0xbe, 0xef]);
}

#[test]
fn login_accepts_only_post() {
    let upstream = start();
    let mut client = Client::connect(upstream.local_addr());
    let ok = client.request(
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        br#"{"username":"grace"}"#,
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["user"], "grace");
    assert!(ok.json()["message"]
        .as_str()
        .unwrap()
        .contains("make token"));

    let wrong = client.request("GET", "/login", &[], b"");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
}

#[test]
fn admin_static_and_status_routes() {
    let upstream = start();
    let admin = get(&upstream, "/admin/settings", &[]);
    assert_eq!(admin.header("cache-control"), Some("private, no-store"));
    assert_eq!(
        admin.json(),
        json!({"area":"admin","message":"admin dashboard (demo)","path":"/admin/settings"})
    );

    let logo = get(&upstream, "/static/logo.png", &[]);
    assert_eq!(logo.header("content-type"), Some("image/png"));
    assert_eq!(logo.body.len(), 4096);
    assert!(logo.body.starts_with(b"\x89PNG\r\n\x1a\n"));

    let unavailable = get(&upstream, "/status/503", &[]);
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.json(), json!({"status":503}));
    assert_eq!(get(&upstream, "/status/42", &[]).status, 400);
    assert_eq!(get(&upstream, "/status/204", &[]).status, 204);

    let slow = get(&upstream, "/slow?ms=20", &[]);
    assert_eq!(slow.json(), json!({"slept_ms":20}));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let upstream = start();
    let mut client = Client::connect(upstream.local_addr());
    let first = client.request("GET", "/echo/1", &[], b"");
    let second = client.request("POST", "/echo/2", &[], b"two");
    let third = client.request("GET", "/status/500", &[], b"");
    assert_eq!(first.json()["path"], "/echo/1");
    assert_eq!(second.json()["body"], "two");
    assert_eq!(third.status, 500);
    assert_eq!(upstream.received().len(), 3);
}

#[test]
fn oversized_and_malformed_requests_are_refused_and_recorded() {
    let upstream = start();
    let mut client = Client::connect(upstream.local_addr());
    // Declared too large: refused before any of the body is read.
    client.send_raw(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 16777217\r\n\r\n");
    let refused = client.read_response(false);
    assert_eq!(refused.status, 413);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    drop(client);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/echo");
    assert!(received[0].body.is_empty());

    // Garbage request line: tiny_http answers 400 itself.
    let mut client = Client::connect(upstream.local_addr());
    client.send_raw(b"NOT-HTTP\r\n\r\n");
    assert_eq!(client.read_response(false).status, 400);
    // And the server is still fine afterwards.
    assert_eq!(get(&upstream, "/healthz", &[]).status, 200);
}

#[test]
fn dropping_the_upstream_stops_it() {
    let upstream = start();
    let addr = upstream.local_addr();
    assert_eq!(get(&upstream, "/healthz", &[]).status, 200);
    drop(upstream);
    let err = TcpStream::connect(addr).expect_err("server still accepting after drop");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn binary_prints_its_address_and_an_access_log() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis-demo-upstream"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let addr = banner
        .trim()
        .strip_prefix("demo upstream listening on http://")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));

    let status = Client::connect(addr.parse().unwrap())
        .request("GET", "/status/418", &[], b"")
        .status;
    let mut access = String::new();
    stdout.read_line(&mut access).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(status, 418);
    assert_eq!(access.trim(), "GET /status/418 -> 418");
}
