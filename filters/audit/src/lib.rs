//! Audit: one structured, redacted, tamper-evident record per request.
//!
//! The pure core (everything but `adapter`) builds the record from the facts Envoy knows when
//! the stream ends ([`record`]), redacts it ([`redact`]), decides whether to keep it
//! ([`record::keep`], [`config`] exclusions), flags security events ([`security`]), seals it into
//! a hash chain ([`chain`]) and, for the HTTP sink, queues and batches it ([`ship`]). The
//! adapter only reads host state and applies what the core returns.

pub mod auditor;
pub mod chain;
pub mod config;
pub mod json;
pub mod record;
pub mod redact;
pub mod security;
pub mod ship;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod adapter;
#[cfg(target_arch = "wasm32")]
pub use adapter::root;

/// Name used in logs and metric names.
pub const NAME: &str = "audit";
