//! What every Portcullis filter shares.
//!
//! Everything here except [`host`] is the pure core: plain Rust with no `proxy-wasm` import, so it
//! is unit-tested on the host and, built for `wasm32-wasip1`, in a real wasm runtime.

pub mod client;
pub mod config;
pub mod decision;
pub mod identity;
pub mod problem;
pub mod route;
pub mod slots;

#[cfg(target_arch = "wasm32")]
pub mod host;
#[cfg(target_arch = "wasm32")]
pub mod stage;
