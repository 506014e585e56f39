//! The tiny_http glue: a fixed pool of worker threads pulling requests off one
//! `tiny_http::Server`, recording each request and answering it.

use std::io::{self, Cursor, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tiny_http::{Header, Request, Response, Server};

use crate::received::{Received, RequestLog};
use crate::reply::{status_forbids_body, Reply};
use crate::{query, routes};

/// Worker threads. `/slow` holds a worker while it sleeps, so keep a few more
/// than the cores; tiny_http reads connections on its own threads.
const WORKERS: usize = 8;
/// Request bodies above this are refused with 413.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A running demo origin. Serves until dropped.
pub struct Upstream {
    server: Option<Arc<Server>>,
    addr: SocketAddr,
    log: Arc<RequestLog>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Upstream {
    /// Binds `addr` (e.g. `"127.0.0.1:0"`) and serves on background threads
    /// until the returned value is dropped.
    pub fn start(addr: &str) -> io::Result<Upstream> {
        let listener = std::net::TcpListener::bind(addr)?;
        // tiny_http writes a response's head and body in separate writes; with Nagle's algorithm
        // and the peer's delayed ACK, every response over 1 KiB would stall ~40 ms. Accepted
        // sockets inherit TCP_NODELAY from the listener on Linux.
        socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
        let server = Server::from_listener(listener, None).map_err(io::Error::other)?;
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("listener has no IP address"))?;

        let server = Arc::new(server);
        let mut upstream = Upstream {
            server: Some(server.clone()),
            addr: local,
            log: Arc::new(RequestLog::default()),
            stopping: Arc::new(AtomicBool::new(false)),
            workers: Vec::with_capacity(WORKERS),
        };
        for i in 0..WORKERS {
            let (server, log) = (server.clone(), upstream.log.clone());
            let stopping = upstream.stopping.clone();
            let worker = thread::Builder::new()
                .name(format!("upstream-worker-{i}"))
                .spawn(move || work(&server, &log, &stopping))?;
            // On a spawn error, `?` drops `upstream`, stopping earlier workers.
            upstream.workers.push(worker);
        }
        Ok(upstream)
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first (at most the last 10 000).
    pub fn received(&self) -> Vec<Received> {
        self.log.snapshot()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(server) = &self.server {
            // Each unblock wakes exactly one thread blocked in recv().
            for _ in &self.workers {
                server.unblock();
            }
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        // Dropping the last reference closes the listener, but tiny_http does
        // that on its accept thread, which it does not join. Wait for the port
        // to refuse connections so "dropped" really means "gone" for callers.
        drop(self.server.take());
        wait_until_closed(self.addr);
    }
}

fn work(server: &Server, log: &RequestLog, stopping: &AtomicBool) {
    loop {
        match server.recv() {
            Ok(request) => {
                // tiny_http can panic while dropping a request (e.g. draining an
                // absurd Content-Length); keep the pool at full strength anyway.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| handle(request, log)));
            }
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            // An accept error: tiny_http reports it once and stops accepting.
            Err(_) => {}
        }
    }
}

fn handle(mut request: Request, log: &RequestLog) {
    let (received, body) = read_request(&mut request);
    log.push(received.clone());
    let reply = match body {
        Ok(()) => routes::route(&received),
        Err(reply) => reply,
    };
    log::info!("{} {} -> {}", received.method, request.url(), reply.status);
    // The client may have gone away; nothing useful to do about it here.
    let _ = request.respond(into_response(reply));
}

/// Builds the [`Received`] record, reading the body. `Err` holds the reply
/// for a body that could not be accepted (recorded with an empty body).
fn read_request(request: &mut Request) -> (Received, Result<(), Reply>) {
    let (path, query) = query::split_target(request.url());
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            let name = h.field.as_str().as_str().to_ascii_lowercase();
            (name, h.value.as_str().to_string())
        })
        .collect();
    let mut received = Received {
        method: request.method().as_str().to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
    };
    let too_large = || Reply::problem(413, "Content Too Large", "request body is over 16 MiB");

    // Refuse a declared oversize body before reading (and before tiny_http
    // sends `100 Continue`, so a polite client never uploads it).
    if request.body_length().is_some_and(|len| len > MAX_BODY) {
        return (received, Err(too_large()));
    }
    let mut body = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    match request.as_reader().take(limit).read_to_end(&mut body) {
        Ok(_) if body.len() > MAX_BODY => (received, Err(too_large())),
        Ok(_) => {
            received.body = body;
            (received, Ok(()))
        }
        Err(err) => {
            let detail = format!("could not read the request body: {err}");
            (received, Err(Reply::problem(400, "Bad Request", &detail)))
        }
    }
}

fn into_response(reply: Reply) -> Response<Cursor<Vec<u8>>> {
    let body = if status_forbids_body(reply.status) {
        Vec::new()
    } else {
        reply.body
    };
    let mut response = Response::from_data(body)
        .with_status_code(reply.status)
        // Always send Content-Length, never chunked: simpler for every client
        // (and every filter test) in front of us.
        .with_chunked_threshold(usize::MAX);
    let headers = reply
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .chain([("Server", "portcullis-demo-upstream")]);
    for (name, value) in headers {
        // Our header values are ASCII; skip rather than fail if one is not.
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    response
}

/// Polls `addr` until connections are refused, for at most two seconds.
fn wait_until_closed(addr: SocketAddr) {
    let probe = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
