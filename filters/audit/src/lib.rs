//! Audit: one structured, redacted, tamper-evident record per request.
//!
//! Not yet implemented: the filter loads, logs its version, validates its configuration
//! (`{"mode": "enforce" | "shadow"}`, unknown fields refused) and passes traffic through.

#[cfg(target_arch = "wasm32")]
mod adapter;

/// Name used in logs and metric names.
pub const NAME: &str = "audit";
