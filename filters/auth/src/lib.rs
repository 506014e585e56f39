//! Auth/RBAC: JWT and API-key authentication, role→permission rules, token revocation.
//!
//! The core (every module but `adapter`) is plain Rust: it takes the request, the host's clock
//! and a shared-data store, and returns a [`engine::Verdict`]. The wasm adapter reads host
//! state, calls the core and applies the verdict.

pub mod apikey;
pub mod cache;
pub mod claims;
pub mod credentials;
pub mod engine;
pub mod jwt;
pub mod keys;
pub mod rbac;
pub mod reject;
pub mod remote;
pub mod revocation;
pub mod settings;

#[cfg(test)]
mod engine_routing_tests;
#[cfg(test)]
mod engine_strip_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod jwt_tests;
#[cfg(test)]
mod testkit;

#[cfg(target_arch = "wasm32")]
mod adapter;
#[cfg(target_arch = "wasm32")]
pub use adapter::root;

/// Name used in logs and metric names.
pub const NAME: &str = "auth";
