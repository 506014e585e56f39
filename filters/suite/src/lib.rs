//! The one wasm module of the suite (`dist/portcullis.wasm`). Every filter instance in Envoy
//! loads this module with the same `vm_id`, so all instances on a worker share one VM: one copy
//! of the code, the allocator and the standard library instead of one per filter. Which filter an
//! instance runs is named by its `root_id`: the filter's name, optionally followed by `-` and an
//! instance name (`auth`, `ratelimit-client`, `ratelimit-identity`). A `chain` instance runs
//! several filters as stages of one Envoy filter ([`chain_config`]).

// Tests may unwrap: a panic there is a failed assertion, not a crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(target_arch = "wasm32")]
mod chain;
pub mod chain_config;
#[cfg(target_arch = "wasm32")]
mod dispatch;

/// The filters this module holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Audit,
    Auth,
    Cache,
    /// Several of the others, run as stages of one Envoy filter.
    Chain,
    Ratelimit,
    Sanitizer,
}

const FILTERS: [(&str, Filter); 6] = [
    (portcullis_audit::NAME, Filter::Audit),
    (portcullis_auth::NAME, Filter::Auth),
    (portcullis_cache::NAME, Filter::Cache),
    ("chain", Filter::Chain),
    (portcullis_ratelimit::NAME, Filter::Ratelimit),
    (portcullis_sanitizer::NAME, Filter::Sanitizer),
];

/// A new root context of `filter`; `None` for [`Filter::Chain`], which is not a stage.
#[cfg(target_arch = "wasm32")]
fn filter_root(filter: Filter) -> Option<Box<dyn proxy_wasm::traits::RootContext>> {
    match filter {
        Filter::Audit => Some(portcullis_audit::root()),
        Filter::Auth => Some(portcullis_auth::root()),
        Filter::Cache => Some(portcullis_cache::root()),
        Filter::Chain => None,
        Filter::Ratelimit => Some(portcullis_ratelimit::root()),
        Filter::Sanitizer => Some(portcullis_sanitizer::root()),
    }
}

/// The filter a `root_id` names: `FILTER` or `FILTER-INSTANCE`, with an instance name of
/// letters, digits, `-` and `_`. The error says what is accepted, for Envoy's log.
pub fn filter_for(root_id: &str) -> Result<Filter, String> {
    let named = FILTERS.iter().find(|(name, _)| {
        root_id == *name
            || root_id.strip_prefix(name).is_some_and(|rest| {
                rest.strip_prefix('-').is_some_and(|instance| {
                    !instance.is_empty()
                        && instance
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
            })
    });
    named.map(|(_, filter)| *filter).ok_or_else(|| {
        let names: Vec<&str> = FILTERS.iter().map(|(name, _)| *name).collect();
        format!(
            "root_id `{}`: expected a filter name ({}), optionally followed by `-INSTANCE`",
            root_id.escape_default(),
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_id_names_its_filter() {
        assert_eq!(filter_for("auth"), Ok(Filter::Auth));
        assert_eq!(filter_for("audit"), Ok(Filter::Audit));
        assert_eq!(filter_for("cache"), Ok(Filter::Cache));
        assert_eq!(filter_for("sanitizer"), Ok(Filter::Sanitizer));
        assert_eq!(filter_for("ratelimit-client"), Ok(Filter::Ratelimit));
        assert_eq!(filter_for("ratelimit-identity"), Ok(Filter::Ratelimit));
        assert_eq!(filter_for("audit-http_2"), Ok(Filter::Audit));
        assert_eq!(filter_for("chain"), Ok(Filter::Chain));
        assert_eq!(filter_for("chain-edge"), Ok(Filter::Chain));
    }

    #[test]
    fn anything_else_is_refused_with_what_is_accepted() {
        for bad in [
            "",
            "authz",
            "ratelimit-",
            "-auth",
            "Auth",
            "auth-x y",
            "ratelimitclient",
            "cache\u{0}",
        ] {
            let err = filter_for(bad).unwrap_err();
            assert!(
                err.contains(
                    "expected a filter name (audit, auth, cache, chain, ratelimit, sanitizer)"
                ),
                "{bad:?}: {err}"
            );
        }
        assert!(filter_for("x\ny").unwrap_err().contains("`x\\ny`"));
    }
}
