//! Response cache with RFC 9111 shared-cache semantics in shared data.
//!
//! Pure core (every module but `adapter`): directives, freshness, keys, the stored entry and its
//! bounded store, and the [`engine`] that decides per request and per response. The wasm-only
//! `adapter` reads host state, calls the engine and applies what it says.

// Tests may unwrap: a panic there is a failed assertion, not a crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod directives;
pub mod engine;
pub mod entry;
pub mod freshness;
pub mod key;
pub mod status;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod adapter;
#[cfg(target_arch = "wasm32")]
pub use adapter::root;

/// Name used in logs and metric names.
pub const NAME: &str = "cache";
