//! Rate limiting over proxy-wasm shared data: exact across workers, bounded memory, penalties.
//!
//! Not yet implemented: the filter loads, logs its version, validates its configuration
//! (`{"mode": "enforce" | "shadow"}`, unknown fields refused) and passes traffic through.

#[cfg(target_arch = "wasm32")]
mod adapter;

/// Name used in logs and metric names.
pub const NAME: &str = "ratelimit";
