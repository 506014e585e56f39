//! TEST ONLY. Stands in for the auth filter in tests of later filters (the cache's per-user keys
//! and purge permission) while auth is built in parallel: it publishes `x-test-identity`, an
//! [`Identity`](portcullis_common::identity::Identity) as JSON, to the same filter-state key auth
//! uses. The tests insert it into a test copy of the chain; it is never in a shipped config.

#[cfg(target_arch = "wasm32")]
mod adapter {
    use portcullis_common::identity::{Identity, IDENTITY_PROPERTY};
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType};

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
    }}

    struct Root;
    impl Context for Root {}
    impl RootContext for Root {
        fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stub))
        }
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stub;
    impl Context for Stub {}
    impl HttpContext for Stub {
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            if let Some(raw) = self.get_http_request_header("x-test-identity") {
                // Only a well-formed identity is published, as auth would.
                if let Some(id) = Identity::from_json(raw.as_bytes()) {
                    self.set_property(vec![IDENTITY_PROPERTY], Some(&id.to_json()));
                }
                self.set_http_request_header("x-test-identity", None);
            }
            Action::Continue
        }
    }
}
