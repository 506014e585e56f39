//! Input sanitizer: inspects the path, query, chosen headers, cookies and bodies (JSON, forms,
//! multipart, text) for SQL injection, XSS, command injection, path traversal, NoSQL operators,
//! template injection and scanner user agents; scores what it finds and blocks (or, in shadow
//! mode, flags) requests whose anomaly score reaches the threshold. Optional per-route JSON
//! validation against a schema subset.
//!
//! Everything except `adapter` is the pure core, tested on the host and as wasm.

// Tests may unwrap: a panic there is a failed assertion, not a crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod body;
pub mod charset;
pub mod config;
pub mod decode;
pub mod decompress;
pub mod detect;
pub mod engine;
pub mod graphql;
pub mod json;
pub mod schema;
pub mod xml;

#[cfg(test)]
mod adversarial_tests;
#[cfg(test)]
mod corpus_tests;

#[cfg(target_arch = "wasm32")]
mod adapter;
#[cfg(target_arch = "wasm32")]
pub use adapter::root;

/// Name used in logs and metric names.
pub const NAME: &str = "sanitizer";
