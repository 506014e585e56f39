//! What each filter decided about a request, published for the audit record.
//!
//! Each filter instance writes its [`Decision`] as JSON to the filter-state key
//! `portcullis.decision.<instance>` (see [`decision_property`]); audit reads them all when the
//! stream ends, so one record holds every decision.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Request header through which a filter in shadow mode tells the upstream what it would have
/// denied (`<instance>:<reason>`, comma-separated when several would). Removed from incoming
/// requests at the front of the chain, so only our filters can set it.
pub const WOULD_DENY_HEADER: &str = "x-portcullis-would-deny";

/// The would-deny header value after `instance` adds `reason` to what earlier filters signalled:
/// `ratelimit-client:rate_limited,auth:forbidden`.
pub fn append_would_deny(earlier: Option<&str>, instance: &str, reason: &str) -> String {
    match earlier.map(str::trim) {
        Some(earlier) if !earlier.is_empty() => format!("{earlier},{instance}:{reason}"),
        _ => format!("{instance}:{reason}"),
    }
}

/// Filter-state key of one filter instance's decision.
pub fn decision_property(instance: &str) -> String {
    format!("portcullis.decision.{instance}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    /// Shadow mode: would have denied, let through.
    ShadowDeny,
    /// The filter could not decide (e.g. a dependency failed) and applied its failure policy.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Status sent to the client on deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Machine reason code, as in the problem+json `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A high-severity event (revoked token used, ban started, injection blocked ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub security_event: bool,
    /// Filter-specific facts (limit name and remaining, rule id and score, cache status ...).
    /// Never a secret.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl Decision {
    pub fn allow() -> Decision {
        Decision {
            outcome: Outcome::Allow,
            status: None,
            reason: None,
            security_event: false,
            details: Map::new(),
        }
    }

    pub fn deny(status: u16, reason: &str) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            status: Some(status),
            reason: Some(reason.to_string()),
            ..Decision::allow()
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Decision {
        self.details.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Option<Decision> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names() {
        assert_eq!(decision_property("auth"), "portcullis.decision.auth");
        assert_eq!(
            decision_property("ratelimit-client"),
            "portcullis.decision.ratelimit-client"
        );
    }

    #[test]
    fn would_deny_signals_accumulate_in_chain_order() {
        assert_eq!(
            append_would_deny(None, "auth", "forbidden"),
            "auth:forbidden"
        );
        assert_eq!(
            append_would_deny(Some(" "), "auth", "forbidden"),
            "auth:forbidden"
        );
        assert_eq!(
            append_would_deny(Some("ratelimit-client:rate_limited"), "auth", "forbidden"),
            "ratelimit-client:rate_limited,auth:forbidden"
        );
    }

    #[test]
    fn allow_is_compact() {
        assert_eq!(
            String::from_utf8(Decision::allow().to_json()).unwrap(),
            r#"{"outcome":"allow"}"#
        );
    }

    #[test]
    fn deny_with_details_round_trips() {
        let mut d = Decision::deny(429, "rate_limited")
            .with("limit", "per-ip")
            .with("remaining", 0);
        d.security_event = true;
        let json = String::from_utf8(d.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"deny","status":429,"reason":"rate_limited","security_event":true,"details":{"limit":"per-ip","remaining":0}}"#
        );
        assert_eq!(Decision::from_json(json.as_bytes()), Some(d));
        assert_eq!(Decision::from_json(b"{\"outcome\":\"maybe\"}"), None);
    }
}
