//! The Portcullis demo upstream: a small HTTP/1.1 origin that stands behind
//! Envoy in `make run`, docker-compose and the real-Envoy integration tests.
//!
//! It serves a product catalog with cache validators, an admin area, a login
//! stub, a PNG, status/latency knobs for retry and outlier tests, and echoes
//! everything else. Every request is recorded so tests can assert on what the
//! filters actually forwarded:
//!
//! ```no_run
//! let upstream = portcullis_demo_upstream::Upstream::start("127.0.0.1:0")?;
//! println!("origin at http://{}", upstream.local_addr());
//! // ... send traffic through Envoy ...
//! for request in upstream.received() {
//!     println!("{} {} {:?}", request.method, request.path, request.header("x-user"));
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Each answered request is logged at `info` level through the `log` crate as
//! `METHOD TARGET -> STATUS`; the binary prints those lines to stdout.

// Tests may unwrap: a panic there is a failed assertion, not a crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod catalog;
mod query;
mod received;
mod reply;
mod routes;
mod server;

pub use received::Received;
pub use server::Upstream;
