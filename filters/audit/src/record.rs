//! The audit record: built from the facts the adapter read when the stream ended, redacted, and
//! serialized with a fixed field order (schema first, so a reader can tell records from other
//! lines). The schema is documented in `docs/audit-schema.md`; change it only with a new version.

use std::borrow::Cow;
use std::collections::BTreeSet;

use portcullis_common::decision::{Decision, Outcome};
use portcullis_common::identity::{AuthMethod, Identity};

use crate::config::{AuditConfig, Identifier};
use crate::json::Json;
use crate::redact::{self, redact_path, truncate, write_details, IdentifierHasher};
use crate::time::write_rfc3339_millis;

pub const SCHEMA: &str = "portcullis.audit/1";

/// What the adapter read from Envoy when the stream ended. Every field may be absent (a client
/// that reset early, a local reply before routing ...); absent facts are omitted from the record.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// When the record is written (ms since the Unix epoch).
    pub now_ms: u64,
    /// When the request started, if Envoy said.
    pub start_ms: Option<u64>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub client_address: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    pub protocol: Option<String>,
    pub method: Option<String>,
    pub authority: Option<String>,
    /// Path and query as received.
    pub path: Option<String>,
    pub route: Option<String>,
    pub status: Option<u16>,
    /// Envoy's `response.code_details`: `via_upstream`, or why Envoy answered itself.
    pub code_details: Option<String>,
    pub duration_ms: Option<u64>,
    pub upstream_ms: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub user_agent: Option<String>,
    pub identity: Option<Identity>,
    /// Decisions other filters published, by instance, in the configured order.
    pub decisions: Vec<(String, Decision)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Allowed,
    Denied,
    Error,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Allowed => "allowed",
            RecordOutcome::Denied => "denied",
            RecordOutcome::Error => "error",
        }
    }
}

/// A record: how the request ended (what metrics and sampling need) and, once written, its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Empty until [`write`]: a record that sampling drops is never written.
    pub json: Vec<u8>,
    pub outcome: RecordOutcome,
    /// `<instance>:<reason>` of the deciding filter, or `envoy:<details>`.
    pub reason: Option<String>,
    pub security_events: Vec<String>,
    /// A filter in shadow mode would have denied.
    pub shadow_denied: bool,
}

/// Builds the record: [`judge`], then [`write`].
pub fn build(
    facts: &Facts,
    config: &AuditConfig,
    hasher: &IdentifierHasher,
    repeated_auth_failures: Option<u32>,
) -> Built {
    let mut built = judge(facts, repeated_auth_failures);
    write(&mut built, facts, config, hasher);
    built
}

/// How the request ended, without writing the record. `repeated_auth_failures` is the count
/// from the tracker when it reached the threshold for this request's client (the caller keeps
/// that state).
pub fn judge(facts: &Facts, repeated_auth_failures: Option<u32>) -> Built {
    let (outcome, reason) = outcome(facts);
    let mut events: Vec<String> = facts
        .decisions
        .iter()
        .filter(|(_, d)| d.security_event)
        .map(|(instance, d)| format!("{instance}:{}", d.reason.as_deref().unwrap_or("event")))
        .collect();
    if let Some(n) = repeated_auth_failures {
        events.push(format!("repeated_auth_failures:{n}"));
    }
    Built {
        json: Vec::new(),
        outcome,
        reason,
        security_events: events,
        shadow_denied: facts
            .decisions
            .iter()
            .any(|(_, d)| d.outcome == Outcome::ShadowDeny),
    }
}

/// Writes the record's JSON into `built.json`.
///
/// Field by field into one buffer, in the schema's order; a fact that is absent is omitted, and
/// so is an object left with nothing in it, except `http` and `duration_ms`, which are always
/// there.
pub fn write(built: &mut Built, facts: &Facts, config: &AuditConfig, hasher: &IdentifierHasher) {
    // A record with the chain's identity and five decisions is about 1 KiB.
    let mut j = Json::with_capacity(1024 + 128 * facts.decisions.len());
    let text = |j: &mut Json, name: &str, value: &Option<String>| {
        if let Some(v) = value {
            j.key(name);
            j.cut(v, redact::MAX_TEXT);
        }
    };
    let identifier = |j: &mut Json, name: &str, id: Identifier, value: &str| {
        j.key(name);
        if config.hash_identifiers.contains(&id) {
            j.string(&hasher.hash(value));
        } else {
            j.cut(value, redact::MAX_TEXT);
        }
    };
    let uint = |j: &mut Json, name: &str, value: Option<u64>| {
        if let Some(v) = value {
            j.key(name);
            j.uint(v);
        }
    };
    j.open();
    j.key("schema");
    j.string(SCHEMA);
    timestamp(&mut j, "timestamp", facts.now_ms);
    if let Some(start) = facts.start_ms {
        timestamp(&mut j, "start", start);
    }
    text(&mut j, "request_id", &facts.request_id);
    if let Some(trace) = facts
        .traceparent
        .as_deref()
        .and_then(|tp| parse_traceparent(tp, facts.tracestate.as_deref()))
    {
        j.key("trace");
        j.open();
        j.key("trace_id");
        j.string(trace.trace_id);
        j.key("parent_id");
        j.string(trace.parent_id);
        j.key("sampled");
        j.bool(trace.sampled);
        if let Some(state) = trace.tracestate {
            j.key("tracestate");
            j.cut(state, 512);
        }
        j.close();
    }
    if let Some(address) = &facts.client_address {
        j.key("client");
        j.open();
        identifier(&mut j, "address", Identifier::ClientAddress, address);
        j.close();
    }
    if facts.tls_version.is_some() || facts.tls_cipher.is_some() {
        j.key("tls");
        j.open();
        text(&mut j, "version", &facts.tls_version);
        text(&mut j, "cipher", &facts.tls_cipher);
        j.close();
    }
    j.key("http");
    j.open();
    text(&mut j, "protocol", &facts.protocol);
    text(&mut j, "method", &facts.method);
    text(&mut j, "authority", &facts.authority);
    if let Some(path) = &facts.path {
        j.key("path");
        j.string(&redact_path(path, &config.redact_query_params));
    }
    text(&mut j, "route", &facts.route);
    uint(&mut j, "status", facts.status.map(u64::from));
    text(&mut j, "response_details", &facts.code_details);
    uint(&mut j, "bytes_in", facts.bytes_in);
    uint(&mut j, "bytes_out", facts.bytes_out);
    if let Some(ua) = &facts.user_agent {
        // Cut first, then hide anything token-shaped in what is left.
        let ua = match ua.len() <= 512 {
            true => Cow::Borrowed(ua.as_str()),
            false => Cow::Owned(truncate(ua, 512)),
        };
        j.key("user_agent");
        j.string(&redact_path(&ua, &BTreeSet::new()));
    }
    j.close();
    j.key("duration_ms");
    j.open();
    uint(&mut j, "total", facts.duration_ms);
    uint(&mut j, "upstream", facts.upstream_ms);
    j.close();
    if let Some(id) = &facts.identity {
        j.key("identity");
        j.open();
        identifier(&mut j, "subject", Identifier::Subject, &id.subject);
        j.key("method");
        j.string(match id.method {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
        });
        if !id.roles.is_empty() {
            j.key("roles");
            j.open_array();
            for role in id.roles.iter().take(32) {
                j.item();
                j.cut(role, 128);
            }
            j.close_array();
        }
        if let Some(t) = &id.tenant {
            identifier(&mut j, "tenant", Identifier::Tenant, t);
        }
        if let Some(k) = &id.key_id {
            identifier(&mut j, "key_id", Identifier::KeyId, k);
        }
        text(&mut j, "issuer", &id.issuer);
        j.close();
    }
    if !facts.decisions.is_empty() {
        j.key("decisions");
        j.open();
        for (instance, d) in by_instance(&facts.decisions) {
            j.key_escaped(instance);
            decision(&mut j, d, config);
        }
        j.close();
    }
    j.key("outcome");
    j.string(built.outcome.as_str());
    if let Some(r) = &built.reason {
        j.key("reason");
        j.string(r);
    }
    if built.shadow_denied {
        j.key("shadow_denied_by");
        j.open_array();
        for (instance, _) in facts
            .decisions
            .iter()
            .filter(|(_, d)| d.outcome == Outcome::ShadowDeny)
        {
            j.item();
            j.string(instance);
        }
        j.close_array();
    }
    if !built.security_events.is_empty() {
        j.key("security");
        j.open();
        j.key("severity");
        j.string("high");
        j.key("events");
        j.open_array();
        for e in &built.security_events {
            j.item();
            j.string(e);
        }
        j.close_array();
        j.close();
    }
    j.close();
    built.json = j.buf;
}

fn timestamp(j: &mut Json, name: &str, ms: u64) {
    j.key(name);
    j.buf.push(b'"');
    write_rfc3339_millis(&mut j.buf, ms);
    j.buf.push(b'"');
}

/// The decisions ordered by instance name, one per instance (the last published wins): the
/// order and uniqueness of a JSON object's keys as records have always had them.
fn by_instance(decisions: &[(String, Decision)]) -> Vec<(&str, &Decision)> {
    let mut sorted: Vec<(&str, &Decision)> =
        decisions.iter().map(|(i, d)| (i.as_str(), d)).collect();
    // Stable, so of two entries for one instance the later stays later.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut unique: Vec<(&str, &Decision)> = Vec::with_capacity(sorted.len());
    for entry in sorted {
        match unique.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => unique.push(entry),
        }
    }
    unique
}

/// One decision, its keys in alphabetical order as records have always had them.
fn decision(j: &mut Json, d: &Decision, config: &AuditConfig) {
    j.open();
    if !d.details.is_empty() {
        j.key("details");
        write_details(j, &d.details, &config.redact_fields);
    }
    j.key("outcome");
    j.string(match d.outcome {
        Outcome::Allow => "allow",
        Outcome::Deny => "deny",
        Outcome::ShadowDeny => "shadow_deny",
        Outcome::Error => "error",
    });
    if let Some(r) = &d.reason {
        j.key("reason");
        j.cut(r, 128);
    }
    if d.security_event {
        j.key("security_event");
        j.bool(true);
    }
    if let Some(s) = d.status {
        j.key("status");
        j.uint(u64::from(s));
    }
    j.close();
}

/// allowed / denied / error, and the reason: a filter's decision first (error before deny, the
/// first in chain order), then what Envoy itself answered.
pub fn outcome(facts: &Facts) -> (RecordOutcome, Option<String>) {
    let first = |want: Outcome| {
        facts
            .decisions
            .iter()
            .find(|(_, d)| d.outcome == want)
            .map(|(i, d)| format!("{i}:{}", d.reason.as_deref().unwrap_or("unspecified")))
    };
    if let Some(r) = first(Outcome::Error) {
        return (RecordOutcome::Error, Some(r));
    }
    if let Some(r) = first(Outcome::Deny) {
        return (RecordOutcome::Denied, Some(r));
    }
    let local = facts
        .code_details
        .as_deref()
        .filter(|d| *d != "via_upstream")
        .map(|d| format!("envoy:{}", truncate(d, 128)));
    match facts.status {
        None | Some(0) => (
            RecordOutcome::Error,
            local.or_else(|| Some("envoy:no_response".into())),
        ),
        Some(s) if s >= 500 => (RecordOutcome::Error, local),
        Some(s) if s >= 400 && local.is_some() => (RecordOutcome::Denied, local),
        Some(_) => (RecordOutcome::Allowed, None),
    }
}

/// Every deny, error, shadow deny and security event is kept; allowed requests at `rate`,
/// decided by a hash of the request id so every worker (and a replay) agrees.
pub fn keep(built: &Built, rate: f64, request_id: Option<&str>, fallback: u64) -> bool {
    if built.outcome != RecordOutcome::Allowed || built.shadow_denied {
        return true;
    }
    if !built.security_events.is_empty() || rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let h = match request_id {
        Some(id) => fnv1a(id.as_bytes()),
        None => fnv1a(&fallback.to_le_bytes()),
    };
    // Top 53 bits as a fraction in [0, 1).
    ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Mix the high bits, which FNV leaves weak for short inputs.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// What the record keeps of the W3C Trace Context headers.
struct Trace<'a> {
    trace_id: &'a str,
    parent_id: &'a str,
    sampled: bool,
    tracestate: Option<&'a str>,
}

/// W3C Trace Context `traceparent` (version 00 layout); anything else is ignored.
fn parse_traceparent<'a>(tp: &'a str, tracestate: Option<&'a str>) -> Option<Trace<'a>> {
    let mut parts = tp.trim().split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let is_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_hex(version, 2) || version == "ff" || !is_hex(trace_id, 32) || !is_hex(parent_id, 16) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16)
        .ok()
        .filter(|_| flags.len() == 2)?;
    Some(Trace {
        trace_id,
        parent_id,
        sampled: flags & 1 == 1,
        tracestate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn cfg(json: &str) -> AuditConfig {
        AuditConfig::parse(json.as_bytes()).unwrap()
    }

    fn facts() -> Facts {
        Facts {
            now_ms: 1_700_000_000_123,
            start_ms: Some(1_700_000_000_100),
            request_id: Some("7f3c1a9e-0000-4000-8000-000000000001".into()),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("congo=t61rcWkgMzE".into()),
            client_address: Some("203.0.113.7".into()),
            tls_version: Some("TLSv1.3".into()),
            tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            protocol: Some("HTTP/1.1".into()),
            method: Some("GET".into()),
            authority: Some("api.example.com".into()),
            path: Some("/api/products?page=2&token=abc".into()),
            route: Some("api".into()),
            status: Some(200),
            code_details: Some("via_upstream".into()),
            duration_ms: Some(23),
            upstream_ms: Some(20),
            bytes_in: Some(310),
            bytes_out: Some(1450),
            user_agent: Some("curl/8.5.0".into()),
            identity: None,
            decisions: vec![],
        }
    }

    fn json(b: &Built) -> Value {
        serde_json::from_slice(&b.json).unwrap()
    }

    #[test]
    fn an_allowed_request_carries_every_fact() {
        let b = build(&facts(), &cfg(""), &IdentifierHasher::new(None), None);
        let j = json(&b);
        assert!(String::from_utf8(b.json.clone())
            .unwrap()
            .starts_with(crate::chain::SCHEMA_MARK));
        assert_eq!(j["schema"], SCHEMA);
        assert_eq!(j["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(j["start"], "2023-11-14T22:13:20.100Z");
        assert_eq!(j["request_id"], "7f3c1a9e-0000-4000-8000-000000000001");
        assert_eq!(j["trace"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(j["trace"]["parent_id"], "00f067aa0ba902b7");
        assert_eq!(j["trace"]["sampled"], true);
        assert_eq!(j["trace"]["tracestate"], "congo=t61rcWkgMzE");
        assert_eq!(j["client"]["address"], "203.0.113.7");
        assert_eq!(j["tls"]["version"], "TLSv1.3");
        assert_eq!(j["tls"]["cipher"], "TLS_AES_128_GCM_SHA256");
        assert_eq!(j["http"]["method"], "GET");
        assert_eq!(j["http"]["authority"], "api.example.com");
        assert_eq!(j["http"]["path"], "/api/products?page=2&token=[redacted]");
        assert_eq!(j["http"]["route"], "api");
        assert_eq!(j["http"]["status"], 200);
        assert_eq!(j["http"]["bytes_in"], 310);
        assert_eq!(j["http"]["bytes_out"], 1450);
        assert_eq!(j["http"]["user_agent"], "curl/8.5.0");
        assert_eq!(j["duration_ms"]["total"], 23);
        assert_eq!(j["duration_ms"]["upstream"], 20);
        assert_eq!(j["outcome"], "allowed");
        assert!(j.get("identity").is_none() && j.get("decisions").is_none());
        assert!(j.get("security").is_none() && j.get("reason").is_none());
        assert_eq!(b.outcome, RecordOutcome::Allowed);
    }

    #[test]
    fn absent_facts_are_omitted_not_invented() {
        let f = Facts {
            now_ms: 0,
            ..Facts::default()
        };
        let j = json(&build(&f, &cfg(""), &IdentifierHasher::new(None), None));
        assert_eq!(j["timestamp"], "1970-01-01T00:00:00.000Z");
        for absent in [
            "request_id",
            "trace",
            "client",
            "tls",
            "identity",
            "decisions",
        ] {
            assert!(j.get(absent).is_none(), "{absent}");
        }
        assert_eq!(j["http"], serde_json::json!({}));
        assert_eq!(j["outcome"], "error");
        assert_eq!(j["reason"], "envoy:no_response");
    }

    #[test]
    fn the_bytes_are_those_serde_json_wrote() {
        // Written field by field since the record stopped being serialized by serde; this is
        // the line serde_json wrote for the same facts (decision keys and instances sorted, as
        // a JSON map holds them), so records before and after read the same.
        let mut f = facts();
        f.identity = Some(Identity {
            subject: "al\"ice".into(),
            method: AuthMethod::Jwt,
            roles: vec!["viewer".into()],
            tenant: None,
            key_id: None,
            issuer: Some("https://issuer".into()),
        });
        f.decisions = vec![
            (
                "ratelimit-client".into(),
                Decision::allow()
                    .with("cost", 1)
                    .with("limits", serde_json::json!(["per-client"])),
            ),
            (
                "auth".into(),
                Decision {
                    outcome: Outcome::ShadowDeny,
                    ..Decision::deny(401, "token_expired")
                },
            ),
            ("sanitizer".into(), Decision::allow()),
        ];
        let b = build(&f, &cfg(""), &IdentifierHasher::new(None), None);
        assert_eq!(
            String::from_utf8(b.json).unwrap(),
            concat!(
                r#"{"schema":"portcullis.audit/1","timestamp":"2023-11-14T22:13:20.123Z","#,
                r#""start":"2023-11-14T22:13:20.100Z","#,
                r#""request_id":"7f3c1a9e-0000-4000-8000-000000000001","#,
                r#""trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","#,
                r#""parent_id":"00f067aa0ba902b7","sampled":true,"tracestate":"congo=t61rcWkgMzE"},"#,
                r#""client":{"address":"203.0.113.7"},"#,
                r#""tls":{"version":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256"},"#,
                r#""http":{"protocol":"HTTP/1.1","method":"GET","authority":"api.example.com","#,
                r#""path":"/api/products?page=2&token=[redacted]","route":"api","status":200,"#,
                r#""response_details":"via_upstream","bytes_in":310,"bytes_out":1450,"#,
                r#""user_agent":"curl/8.5.0"},"duration_ms":{"total":23,"upstream":20},"#,
                r#""identity":{"subject":"al\"ice","method":"jwt","roles":["viewer"],"#,
                r#""issuer":"https://issuer"},"#,
                r#""decisions":{"auth":{"outcome":"shadow_deny","reason":"token_expired","status":401},"#,
                r#""ratelimit-client":{"details":{"cost":1,"limits":["per-client"]},"outcome":"allow"},"#,
                r#""sanitizer":{"outcome":"allow"}},"#,
                r#""outcome":"allowed","shadow_denied_by":["auth"]}"#
            )
        );
    }

    #[test]
    fn identity_and_decisions_from_other_filters() {
        let mut f = facts();
        f.identity = Some(Identity {
            subject: "alice".into(),
            method: AuthMethod::ApiKey,
            roles: vec!["admin".into()],
            tenant: Some("acme".into()),
            key_id: Some("key-2024".into()),
            issuer: None,
        });
        let mut sanitizer = Decision::deny(400, "injection_blocked")
            .with("category", "sqli")
            .with("rule", "sqli-union")
            .with("score", 9)
            .with("field", "password")
            .with("password", "' OR 1=1 --");
        sanitizer.security_event = true;
        f.decisions = vec![
            (
                "ratelimit-client".into(),
                Decision::allow()
                    .with("policy", "per-ip")
                    .with("remaining", 41),
            ),
            ("auth".into(), Decision::allow()),
            ("sanitizer".into(), sanitizer),
        ];
        f.status = Some(400);
        f.code_details = Some("wasm_fail_stream".into());
        let b = build(&f, &cfg(""), &IdentifierHasher::new(None), None);
        let j = json(&b);
        assert_eq!(j["identity"]["subject"], "alice");
        assert_eq!(j["identity"]["method"], "api_key");
        assert_eq!(j["identity"]["key_id"], "key-2024");
        assert_eq!(j["identity"]["tenant"], "acme");
        assert_eq!(
            j["decisions"]["ratelimit-client"]["details"]["remaining"],
            41
        );
        assert_eq!(j["decisions"]["auth"]["outcome"], "allow");
        assert_eq!(j["decisions"]["sanitizer"]["details"]["rule"], "sqli-union");
        assert_eq!(j["decisions"]["sanitizer"]["details"]["field"], "password");
        assert_eq!(
            j["decisions"]["sanitizer"]["details"]["password"],
            "[redacted]"
        );
        assert_eq!(j["outcome"], "denied");
        assert_eq!(j["reason"], "sanitizer:injection_blocked");
        assert_eq!(j["security"]["severity"], "high");
        assert_eq!(j["security"]["events"][0], "sanitizer:injection_blocked");
        assert_eq!(b.security_events, vec!["sanitizer:injection_blocked"]);
        assert!(!String::from_utf8(b.json).unwrap().contains("OR 1=1"));
    }

    #[test]
    fn identifiers_can_be_hashed() {
        let mut f = facts();
        f.identity = Some(Identity {
            subject: "alice".into(),
            method: AuthMethod::Jwt,
            roles: vec![],
            tenant: Some("acme".into()),
            key_id: None,
            issuer: Some("https://issuer".into()),
        });
        let c = cfg(r#"{"hash_identifiers":["client_address","subject"]}"#);
        let hasher = IdentifierHasher::new(Some(b"k".to_vec()));
        let b = build(&f, &c, &hasher, None);
        let j = json(&b);
        assert_eq!(j["identity"]["subject"], hasher.hash("alice"));
        assert_eq!(j["client"]["address"], hasher.hash("203.0.113.7"));
        assert_eq!(j["identity"]["tenant"], "acme", "not configured: in clear");
        let text = String::from_utf8(b.json).unwrap();
        assert!(!text.contains("alice") && !text.contains("203.0.113.7"));
    }

    #[test]
    fn outcomes() {
        let mut f = facts();
        assert_eq!(outcome(&f), (RecordOutcome::Allowed, None));
        f.status = Some(404);
        assert_eq!(
            outcome(&f).0,
            RecordOutcome::Allowed,
            "the upstream's answer"
        );
        f.code_details = Some("csrf_origin_mismatch".into());
        f.status = Some(403);
        assert_eq!(
            outcome(&f),
            (
                RecordOutcome::Denied,
                Some("envoy:csrf_origin_mismatch".into())
            )
        );
        f.status = Some(503);
        f.code_details = Some("upstream_reset_before_response_started".into());
        assert_eq!(outcome(&f).0, RecordOutcome::Error);
        f.status = Some(200);
        f.decisions = vec![
            ("auth".into(), Decision::deny(401, "token_expired")),
            (
                "sanitizer".into(),
                Decision {
                    outcome: Outcome::Error,
                    ..Decision::deny(500, "body_unreadable")
                },
            ),
        ];
        assert_eq!(
            outcome(&f),
            (
                RecordOutcome::Error,
                Some("sanitizer:body_unreadable".into())
            )
        );
        f.decisions.truncate(1);
        assert_eq!(
            outcome(&f),
            (RecordOutcome::Denied, Some("auth:token_expired".into()))
        );
    }

    #[test]
    fn shadow_denies_are_listed_and_always_kept() {
        let mut f = facts();
        f.decisions = vec![(
            "ratelimit-identity".into(),
            Decision {
                outcome: Outcome::ShadowDeny,
                ..Decision::deny(429, "rate_limited")
            },
        )];
        let b = build(&f, &cfg(""), &IdentifierHasher::new(None), None);
        assert_eq!(json(&b)["shadow_denied_by"][0], "ratelimit-identity");
        assert_eq!(b.outcome, RecordOutcome::Allowed);
        assert!(keep(&b, 0.0, Some("x"), 0));
    }

    #[test]
    fn sampling_keeps_every_deny_and_a_fraction_of_the_rest() {
        let c = cfg("");
        let h = IdentifierHasher::new(None);
        let allowed = build(&facts(), &c, &h, None);
        let mut denied_facts = facts();
        denied_facts.decisions = vec![("auth".into(), Decision::deny(401, "missing"))];
        let denied = build(&denied_facts, &c, &h, None);
        let flagged = build(&facts(), &c, &h, Some(5));
        assert!(keep(&denied, 0.0, Some("a"), 0));
        assert!(keep(&flagged, 0.0, Some("a"), 0));
        assert!(keep(&allowed, 1.0, Some("a"), 0));
        assert!(!keep(&allowed, 0.0, Some("a"), 0));
        let kept = (0..10_000)
            .filter(|i| keep(&allowed, 0.25, Some(&format!("req-{i}")), 0))
            .count();
        assert!((2_200..2_800).contains(&kept), "{kept}");
        assert_eq!(
            keep(&allowed, 0.5, Some("same"), 0),
            keep(&allowed, 0.5, Some("same"), 0)
        );
    }

    #[test]
    fn repeated_auth_failures_are_a_security_event() {
        let b = build(&facts(), &cfg(""), &IdentifierHasher::new(None), Some(7));
        assert_eq!(
            json(&b)["security"]["events"][0],
            "repeated_auth_failures:7"
        );
        assert_eq!(b.security_events.len(), 1);
    }

    #[test]
    fn malformed_trace_context_is_ignored() {
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "",
        ] {
            assert!(parse_traceparent(bad, None).is_none(), "{bad}");
        }
    }

    #[test]
    fn oversized_fields_are_cut() {
        let mut f = facts();
        f.path = Some(format!("/{}", "a".repeat(10_000)));
        f.user_agent = Some("u".repeat(10_000));
        let j = json(&build(&f, &cfg(""), &IdentifierHasher::new(None), None));
        assert!(j["http"]["path"].as_str().unwrap().len() <= redact::MAX_TEXT + 4);
        assert!(j["http"]["user_agent"].as_str().unwrap().len() <= 520);
    }
}
