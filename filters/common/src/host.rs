//! The host glue every filter shares (wasm only): logging set-up, reading and parsing the plugin
//! configuration, and the pass-through root used by filters whose policy has not landed yet.
//! No policy lives here.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel, MetricType};
use serde::de::DeserializeOwned;

use crate::config::{self, PassthroughConfig};

/// A filter build: implemented by a marker type in each filter's adapter.
pub trait Filter {
    const INFO: FilterInfo;
}

/// Identity of a filter build, logged when its VM starts.
#[derive(Clone, Copy)]
pub struct FilterInfo {
    /// Short name (`auth`), used as the log prefix and in metric names.
    pub name: &'static str,
    pub version: &'static str,
}

/// Reads and parses the plugin configuration; on error logs one line naming the field and returns
/// `None`, so `on_configure` returns false and Envoy refuses the configuration (fail closed).
pub fn load_config<T: DeserializeOwned>(info: FilterInfo, raw: Option<Vec<u8>>) -> Option<T> {
    match config::parse::<T>(raw.as_deref().unwrap_or_default()) {
        Ok(parsed) => {
            set_gauge(&format!("portcullis_{}_config_loaded", info.name), 1);
            Some(parsed)
        }
        Err(e) => {
            log::error!("{}: {}", info.name, e);
            None
        }
    }
}

/// Sets a gauge, defining it on first use; metrics are best-effort and never fail a request.
pub fn set_gauge(name: &str, value: u64) {
    if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, name) {
        let _ = hostcalls::record_metric(id, value);
    }
}

fn log_start(info: FilterInfo, note: &str) {
    log::info!("portcullis {} {} started{}", info.name, info.version, note);
}

/// Registers the pass-through root: the filter loads, logs its version, validates its
/// configuration, and lets every request through untouched.
pub fn start_passthrough<F: Filter>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    // proxy-wasm takes a plain fn pointer, so the filter's identity comes from the type.
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(PassthroughRoot { info: F::INFO })
    });
}

struct PassthroughRoot {
    info: FilterInfo,
}

impl Context for PassthroughRoot {}

impl RootContext for PassthroughRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log_start(self.info, " (not yet implemented: passes traffic through)");
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        load_config::<PassthroughConfig>(self.info, self.get_plugin_configuration()).is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Passthrough))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Passthrough;

impl Context for Passthrough {}

impl HttpContext for Passthrough {}
