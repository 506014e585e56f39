//! A scripted HTTP/1.1 server for tests that need a peer other than the demo upstream: a JWKS
//! or OIDC endpoint, a revocation list, an audit collector. Each test says what it answers; the
//! server records what it received, and can be stopped and started again on the same port to
//! play an endpoint that goes down and comes back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

pub struct TestServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    received: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves on a free loopback port.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> TestServer {
        TestServer::start_on(0, Arc::new(handler))
    }

    /// Serves on `port` (0 = any free port), e.g. again on the port of a server that was dropped.
    pub fn start_on(port: u16, handler: Handler) -> TestServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("test server on port {port}: {e}"));
        // As in the demo upstream: no Nagle stall between tiny_http's head and body writes.
        let _ = socket2::SockRef::from(&listener).set_tcp_nodelay(true);
        let server = tiny_http::Server::from_listener(listener, None)
            .unwrap_or_else(|e| panic!("test server on port {port}: {e}"));
        let addr = server
            .server_addr()
            .to_ip()
            .unwrap_or_else(|| panic!("test server has no IP address"));
        let server = Arc::new(server);
        let received = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let server = Arc::clone(&server);
            let received = Arc::clone(&received);
            std::thread::spawn(move || serve(&server, &handler, &received))
        };
        TestServer {
            addr,
            server,
            received,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn received(&self) -> Vec<Request> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(server: &tiny_http::Server, handler: &Handler, received: &Mutex<Vec<Request>>) {
    for mut req in server.incoming_requests() {
        let mut body = Vec::new();
        let _ = req.as_reader().read_to_end(&mut body);
        let request = Request {
            method: req.method().as_str().to_string(),
            url: req.url().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.as_str().to_string(),
                    )
                })
                .collect(),
            body,
        };
        let response = handler(&request);
        if let Ok(mut r) = received.lock() {
            r.push(request);
        }
        let mut reply = tiny_http::Response::from_data(response.body)
            .with_status_code(tiny_http::StatusCode(response.status));
        for (name, value) in &response.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                reply = reply.with_header(h);
            }
        }
        let _ = req.respond(reply);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_records_and_restarts_on_the_same_port() {
        let server = TestServer::start(|req| {
            Response::json(201, &serde_json::json!({ "seen": req.url })).header("x-a", "1")
        });
        let port = server.port();
        let resp = ureq::post(&format!("http://127.0.0.1:{port}/jwks?x=1"))
            .send_string("hello")
            .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.header("x-a"), Some("1"));
        assert_eq!(resp.into_string().unwrap(), r#"{"seen":"/jwks?x=1"}"#);
        let got = server.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].method, "POST");
        assert_eq!(got[0].body, b"hello");
        drop(server);

        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        assert!(agent
            .get(&format!("http://127.0.0.1:{port}/"))
            .call()
            .is_err());
        let again = TestServer::start_on(port, Arc::new(|_| Response::status(204)));
        let resp = agent
            .get(&format!("http://127.0.0.1:{port}/"))
            .call()
            .unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(again.port(), port);
    }
}
