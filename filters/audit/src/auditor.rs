//! The per-worker audit pipeline for one finished request: exclusion, repeated-auth-failure
//! tracking, record building and sampling. The adapter feeds it facts and writes what it keeps.

use portcullis_common::decision::Outcome;

use crate::config::AuditConfig;
use crate::record::{judge, keep, write, Built, Facts};
use crate::redact::IdentifierHasher;
use crate::security::AuthFailures;

#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// An allowed request on a path the operator excluded, with no security event: nothing is
    /// written.
    Excluded,
    /// An allowed request not picked by the sample rate: nothing is written.
    SampledOut,
    Keep(Built),
}

#[derive(Debug)]
pub struct Auditor {
    pub config: AuditConfig,
    hasher: IdentifierHasher,
    auth_failures: AuthFailures,
    /// Fallback sampling input for requests without an id.
    counter: u64,
}

impl Auditor {
    pub fn new(config: AuditConfig, hash_key: Option<Vec<u8>>) -> Auditor {
        Auditor {
            auth_failures: AuthFailures::new(
                config.auth_failure_threshold,
                config.auth_failure_window_ms,
                config.auth_failure_tracked_clients,
            ),
            hasher: IdentifierHasher::new(hash_key),
            config,
            counter: 0,
        }
    }

    pub fn observe(&mut self, facts: &Facts) -> Observed {
        // Judged before the exclusion is looked at: an excluded path still counts towards
        // repeated auth failures, and its refusals and security events are still recorded.
        let repeated = match (&facts.client_address, self.is_auth_failure(facts)) {
            (Some(client), true) => self.auth_failures.failure(client, facts.now_ms),
            _ => None,
        };
        let mut built = judge(facts, repeated);
        // Only reads: a request that may change state is recorded whatever its path.
        let reads = matches!(facts.method.as_deref(), Some("GET" | "HEAD" | "OPTIONS"));
        if reads
            && facts
                .path
                .as_deref()
                .is_some_and(|p| self.config.is_excluded(p))
            && is_routine(&built)
        {
            return Observed::Excluded;
        }
        self.counter = self.counter.wrapping_add(1);
        if keep(
            &built,
            self.config.sample_rate,
            facts.request_id.as_deref(),
            self.counter,
        ) {
            write(&mut built, facts, &self.config, &self.hasher);
            Observed::Keep(built)
        } else {
            Observed::SampledOut
        }
    }

    /// The auth instance denied (or would have), or Envoy itself answered 401.
    fn is_auth_failure(&self, facts: &Facts) -> bool {
        let by_decision = facts.decisions.iter().any(|(instance, d)| {
            *instance == self.config.auth_instance
                && matches!(d.outcome, Outcome::Deny | Outcome::ShadowDeny)
        });
        let local_401 = facts.status == Some(401)
            && facts
                .code_details
                .as_deref()
                .is_some_and(|d| d != "via_upstream");
        by_decision || local_401
    }
}

/// Allowed, with no security event and no shadow deny: the only kind of record an exclusion
/// may drop (sampling keeps the same ones, `record::keep`).
fn is_routine(built: &crate::record::Built) -> bool {
    built.outcome == crate::record::RecordOutcome::Allowed
        && built.security_events.is_empty()
        && !built.shadow_denied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordOutcome;
    use portcullis_common::decision::{Decision, Outcome};

    fn auditor(json: &str) -> Auditor {
        Auditor::new(AuditConfig::parse(json.as_bytes()).unwrap(), None)
    }

    fn facts(path: &str) -> Facts {
        Facts {
            now_ms: 1000,
            request_id: Some(format!("id-{path}")),
            client_address: Some("198.51.100.4".into()),
            method: Some("GET".into()),
            path: Some(path.into()),
            status: Some(200),
            code_details: Some("via_upstream".into()),
            ..Facts::default()
        }
    }

    #[test]
    fn nothing_is_excluded_unless_the_operator_says_so() {
        let mut a = auditor("");
        assert!(matches!(a.observe(&facts("/healthz")), Observed::Keep(_)));
        assert!(matches!(
            a.observe(&facts("/healthz?probe=1")),
            Observed::Keep(_)
        ));
        assert!(matches!(a.observe(&facts("/api")), Observed::Keep(_)));
    }

    #[test]
    fn an_exclusion_drops_only_routine_allowed_requests() {
        let mut a = auditor(r#"{"exclude_paths":["/healthz"]}"#);
        assert_eq!(a.observe(&facts("/healthz")), Observed::Excluded);
        // A request that may change state is recorded on an excluded path (found by review).
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let mut write = facts("/healthz");
            write.method = Some(method.into());
            assert!(matches!(a.observe(&write), Observed::Keep(_)), "{method}");
        }
        assert!(
            matches!(a.observe(&facts("/healthz?probe=1")), Observed::Keep(_)),
            "a query is where a payload travels"
        );
        let outcome = |o: Observed| match o {
            Observed::Keep(b) => b.outcome,
            other => panic!("kept expected, got {other:?}"),
        };
        // A refusal by a filter, and one by Envoy itself.
        let mut denied = facts("/healthz?probe=2");
        denied.decisions = vec![(
            "ratelimit-client".into(),
            Decision::deny(429, "rate_limited"),
        )];
        assert_eq!(outcome(a.observe(&denied)), RecordOutcome::Denied);
        let mut local = facts("/healthz");
        local.status = Some(403);
        local.code_details = Some("csrf_origin_mismatch".into());
        assert_eq!(outcome(a.observe(&local)), RecordOutcome::Denied);
        // An error.
        let mut error = facts("/healthz");
        error.status = Some(503);
        assert_eq!(outcome(a.observe(&error)), RecordOutcome::Error);
        // A security event on an allowed request.
        let mut event = facts("/healthz?q=<script>");
        let mut flagged = Decision::allow();
        flagged.security_event = true;
        flagged.reason = Some("suspicious_input".into());
        event.decisions = vec![("sanitizer".into(), flagged)];
        let Observed::Keep(b) = a.observe(&event) else {
            panic!("security events are always kept")
        };
        assert_eq!(b.security_events, vec!["sanitizer:suspicious_input"]);
        // A shadow deny.
        let mut shadow = facts("/healthz");
        let mut would = Decision::deny(401, "missing_token");
        would.outcome = Outcome::ShadowDeny;
        shadow.decisions = vec![("auth".into(), would)];
        assert!(matches!(a.observe(&shadow), Observed::Keep(_)));
    }

    #[test]
    fn auth_failures_on_an_excluded_path_still_count() {
        let mut a = auditor(r#"{"exclude_paths":["/healthz"],"auth_failure_threshold":2}"#);
        let mut f = facts("/healthz");
        f.decisions = vec![("auth".into(), Decision::deny(401, "invalid_token"))];
        a.observe(&f);
        let Observed::Keep(b) = a.observe(&f) else {
            panic!("a deny is kept")
        };
        assert_eq!(b.security_events, vec!["repeated_auth_failures:2"]);
    }

    #[test]
    fn sampling_never_drops_a_deny() {
        let mut a = auditor(r#"{"sample_rate":0}"#);
        assert!(matches!(a.observe(&facts("/api")), Observed::SampledOut));
        let mut denied = facts("/api");
        denied.decisions = vec![(
            "ratelimit-client".into(),
            Decision::deny(429, "rate_limited"),
        )];
        let Observed::Keep(b) = a.observe(&denied) else {
            panic!("denies are always kept")
        };
        assert_eq!(b.outcome, RecordOutcome::Denied);
    }

    #[test]
    fn the_threshold_th_auth_failure_from_a_client_is_flagged() {
        let mut a = auditor(r#"{"auth_failure_threshold":3,"sample_rate":0}"#);
        let mut f = facts("/admin");
        f.decisions = vec![("auth".into(), Decision::deny(401, "invalid_token"))];
        let events = |o: Observed| match o {
            Observed::Keep(b) => b.security_events,
            other => panic!("{other:?}"),
        };
        assert!(events(a.observe(&f)).is_empty());
        assert!(events(a.observe(&f)).is_empty());
        assert_eq!(events(a.observe(&f)), vec!["repeated_auth_failures:3"]);
        // Another client is counted separately; other instances' denies are not auth failures.
        let mut other = f.clone();
        other.client_address = Some("198.51.100.5".into());
        assert!(events(a.observe(&other)).is_empty());
        let mut rl = facts("/admin");
        rl.decisions = vec![(
            "ratelimit-client".into(),
            Decision::deny(429, "rate_limited"),
        )];
        for _ in 0..5 {
            assert!(events(a.observe(&rl)).is_empty());
        }
        // Envoy's own 401s count too.
        let mut local = facts("/x");
        local.client_address = Some("198.51.100.9".into());
        local.status = Some(401);
        local.code_details = Some("jwt_authn_access_denied".into());
        for _ in 0..2 {
            a.observe(&local);
        }
        assert_eq!(events(a.observe(&local)), vec!["repeated_auth_failures:3"]);
    }
}

#[cfg(test)]
mod boundary {
    /// Redaction by construction: the adapter reads named request headers only, never response
    /// headers (`Set-Cookie`) nor the whole request header map (`Authorization`, `Cookie`,
    /// `X-Api-Key`). A change that starts reading them has to change this test.
    #[test]
    fn the_adapter_reads_no_header_map_and_no_response_header() {
        let adapter = include_str!("adapter.rs");
        for forbidden in [
            "get_http_response_header",
            "get_http_request_headers",
            "get_http_request_header(\"authorization",
            "get_http_request_header(\"cookie",
            "get_http_request_body",
        ] {
            assert!(!adapter.contains(forbidden), "adapter uses {forbidden}");
        }
    }
}
