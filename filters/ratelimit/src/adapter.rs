//! proxy-wasm entry point.

use portcullis_common::host::{start_passthrough, Filter, FilterInfo};

struct This;

impl Filter for This {
    const INFO: FilterInfo = FilterInfo {
        name: crate::NAME,
        version: env!("CARGO_PKG_VERSION"),
    };
}

proxy_wasm::main! {{
    start_passthrough::<This>();
}}
