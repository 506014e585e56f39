//! The module's one root-context factory: each root context becomes the filter its `root_id`
//! names (see [`crate::filter_for`]) at its first callback, and from then on passes every
//! callback to that filter's root context unchanged.

use portcullis_common::host::text;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::{filter_for, Filter};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Dispatch { filter: None }) });
}}

struct Dispatch {
    filter: Option<Box<dyn RootContext>>,
}

impl Dispatch {
    /// The named filter's root context, created on first use; `None` (logged) for a `root_id`
    /// that names no filter, which makes Envoy refuse the configuration.
    fn filter(&mut self) -> Option<&mut Box<dyn RootContext>> {
        if self.filter.is_none() {
            let root_id = hostcalls::get_property(vec!["plugin_root_id"])
                .ok()
                .flatten()
                .map(text)
                .unwrap_or_default();
            match filter_for(&root_id) {
                Ok(filter) => self.filter = Some(root(filter)),
                Err(e) => log::error!("portcullis: {e}"),
            }
        }
        self.filter.as_mut()
    }
}

fn root(filter: Filter) -> Box<dyn RootContext> {
    crate::filter_root(filter).unwrap_or_else(crate::chain::root)
}

impl Context for Dispatch {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        if let Some(f) = self.filter.as_mut() {
            f.on_http_call_response(token, headers, body, trailers);
        }
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if let Some(f) = self.filter.as_mut() {
            f.on_grpc_call_response(token, status, size);
        }
    }

    fn on_grpc_stream_initial_metadata(&mut self, token: u32, elements: u32) {
        if let Some(f) = self.filter.as_mut() {
            f.on_grpc_stream_initial_metadata(token, elements);
        }
    }

    fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
        if let Some(f) = self.filter.as_mut() {
            f.on_grpc_stream_message(token, size);
        }
    }

    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, elements: u32) {
        if let Some(f) = self.filter.as_mut() {
            f.on_grpc_stream_trailing_metadata(token, elements);
        }
    }

    fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
        if let Some(f) = self.filter.as_mut() {
            f.on_grpc_stream_close(token, status);
        }
    }

    fn on_foreign_function(&mut self, function: u32, size: usize) {
        if let Some(f) = self.filter.as_mut() {
            f.on_foreign_function(function, size);
        }
    }

    fn on_done(&mut self) -> bool {
        self.filter.as_mut().is_none_or(|f| f.on_done())
    }
}

impl RootContext for Dispatch {
    fn on_vm_start(&mut self, size: usize) -> bool {
        self.filter().is_some_and(|f| f.on_vm_start(size))
    }

    fn on_configure(&mut self, size: usize) -> bool {
        self.filter().is_some_and(|f| f.on_configure(size))
    }

    fn on_tick(&mut self) {
        if let Some(f) = self.filter.as_mut() {
            f.on_tick();
        }
    }

    fn on_queue_ready(&mut self, queue: u32) {
        if let Some(f) = self.filter.as_mut() {
            f.on_queue_ready(queue);
        }
    }

    fn on_log(&mut self) {
        if let Some(f) = self.filter.as_mut() {
            f.on_log();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        self.filter.as_ref()?.create_http_context(context_id)
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        self.filter.as_ref()?.create_stream_context(context_id)
    }

    fn get_type(&self) -> Option<ContextType> {
        self.filter.as_ref()?.get_type()
    }
}
