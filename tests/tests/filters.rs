//! The five Portcullis filters load in the real Envoy from one module, start their VMs, log their
//! version, and refuse a bad configuration with a message naming the field; so does a chain.

use portcullis_tests::{envoy_refuses, Chain, Options, FILTERS};

#[test]
fn every_filter_vm_is_running() {
    let chain = Chain::start();
    for f in FILTERS {
        assert_eq!(
            chain.stat(&format!("wasmcustom.portcullis_{f}_config_loaded")),
            Some(1),
            "{f}: config_loaded gauge"
        );
        assert!(
            chain.log().contains(&format!(
                "portcullis {f} {} started",
                env!("CARGO_PKG_VERSION")
            )),
            "{f}: version line in the log"
        );
    }
    // All six instances share one VM per thread (dist/portcullis.wasm, one vm_id): the base VM
    // Envoy loads the module into, plus one each on the main thread and the two workers. With a
    // VM per filter this was 5 per thread.
    let active = chain.stat("wasm.envoy.wasm.runtime.v8.active").unwrap_or(0);
    assert_eq!(active, 4, "active V8 VMs");
    // And traffic flows through all of them.
    let resp = chain.client().get(&chain.url("/echo")).call().unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn an_unknown_mode_is_refused_naming_the_field() {
    let (status, log) =
        envoy_refuses(Options::default().filter_config("sanitizer", r#"{"mode": "block"}"#));
    assert!(!status.success());
    assert!(
        log.contains("sanitizer: mode: unknown variant `block`, expected `enforce` or `shadow`"),
        "{log}"
    );
}

#[test]
fn unknown_fields_and_malformed_json_are_refused() {
    let (status, log) = envoy_refuses(
        Options::default().filter_config("cache", r#"{"mode": "enforce", "ttl": 5}"#),
    );
    assert!(!status.success());
    assert!(log.contains("cache: ttl: unknown field `ttl`"), "{log}");

    // Not JSON at all: only as its own filter (the chain layout's renderer needs JSON to embed).
    let (status, log) = envoy_refuses(
        Options::default()
            .set("LAYOUT=filters")
            .filter_config("audit", r#"{"mode": "#),
    );
    assert!(!status.success());
    assert!(
        log.contains("audit: mode: EOF while parsing a value"),
        "{log}"
    );
}

#[test]
fn a_root_id_that_names_no_filter_is_refused() {
    let (status, log) = envoy_refuses(
        Options::default()
            .set("LAYOUT=filters")
            .edit_yaml("root_id: cache\n", "root_id: cache_v2\n"),
    );
    assert!(!status.success());
    assert!(
        log.contains(
            "portcullis: root_id `cache_v2`: expected a filter name (audit, auth, cache, chain, \
             ratelimit, sanitizer), optionally followed by `-INSTANCE`"
        ),
        "{log}"
    );
}

#[test]
fn a_chain_refuses_a_bad_chain_or_stage_configuration_naming_it() {
    let chain = || Options::default().set("LAYOUT=chain");
    let (status, log) = envoy_refuses(chain().filter_config("auth", r#"{"rules": 5}"#));
    assert!(!status.success());
    assert!(
        log.contains("auth: rules: invalid type: integer `5`"),
        "{log}"
    );
    assert!(
        log.contains(
            "chain: stages[2].config: the auth stage refused its configuration (its message is \
             above)"
        ),
        "{log}"
    );

    let (status, log) = envoy_refuses(chain().edit_yaml(r#"{\"stages\":"#, r#"{\"stagez\":"#));
    assert!(!status.success());
    assert!(
        log.contains("chain: stagez: unknown field `stagez`, expected `stages`"),
        "{log}"
    );
}
