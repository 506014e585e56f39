//! Rate limiting over proxy-wasm shared data: exact across Envoy workers, bounded memory,
//! progressive penalties.
//!
//! The pure core ([`config`], [`algorithm`], [`key`], [`penalty`], [`headers`], [`limiter`]) has
//! no proxy-wasm import; host state reaches it through
//! [`portcullis_common::slots::SharedData`]. The wasm-only `adapter` reads the request, calls
//! [`limiter::Limiter`], and carries out its verdict. See `docs/ratelimit.md`.

pub mod algorithm;
pub mod config;
pub mod headers;
pub mod key;
pub mod limiter;
pub mod penalty;

#[cfg(target_arch = "wasm32")]
mod adapter;
#[cfg(target_arch = "wasm32")]
pub use adapter::root;

/// Name used in logs and metric names.
pub const NAME: &str = "ratelimit";
