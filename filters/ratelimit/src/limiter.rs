//! The decision for one request: allow-list, cost, ban, then every limit that applies, with the
//! state in shared data reached through [`SharedData`]; and, when the response comes back, the
//! strikes it earns. The adapter only carries out the [`Verdict`].

use portcullis_common::client::masked;
use portcullis_common::config::Mode;
use portcullis_common::decision::{Decision, Outcome};
use portcullis_common::identity::Identity;
use portcullis_common::route::{PathParameters, RequestPath};
use portcullis_common::slots::{
    Change, Eviction, HashKey, SharedData, SlotError, SlotTable, WhenFull,
};
use serde_json::json;

use crate::algorithm::{self, Rate, Step};
use crate::config::{FailMode, Limit, Penalties, Policy, WhenFullMode};
use crate::headers::{response_headers, seconds_ceil, Applied};
use crate::key::{self, RequestView};
use crate::penalty::{self, PenaltyState, StrikeOutcome};

/// Counted per limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitMetric {
    Allowed,
    Limited,
    ShadowLimited,
    CasExhausted,
    Evictions,
    /// Bans started by hits on this limit.
    Bans,
    /// Compare-and-swap conflicts lost to another worker and retried.
    CasRetries,
}

impl LimitMetric {
    pub const ALL: [LimitMetric; 7] = [
        LimitMetric::Allowed,
        LimitMetric::Limited,
        LimitMetric::ShadowLimited,
        LimitMetric::CasExhausted,
        LimitMetric::Evictions,
        LimitMetric::Bans,
        LimitMetric::CasRetries,
    ];

    fn name(self) -> &'static str {
        match self {
            LimitMetric::Allowed => "allowed",
            LimitMetric::Limited => "limited",
            LimitMetric::ShadowLimited => "shadow_limited",
            LimitMetric::CasExhausted => "cas_exhausted",
            LimitMetric::Evictions => "evictions",
            LimitMetric::Bans => "bans",
            LimitMetric::CasRetries => "cas_retries",
        }
    }
}

/// Counted per filter instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceMetric {
    /// Requests refused because the client is banned.
    Banned,
    /// Shadow mode: would have been refused as banned.
    ShadowBanned,
    /// Bans started.
    Bans,
    Strikes,
    Allowlisted,
    InvalidCost,
    PenaltyCasExhausted,
    PenaltyEvictions,
}

impl InstanceMetric {
    pub const ALL: [InstanceMetric; 8] = [
        InstanceMetric::Banned,
        InstanceMetric::ShadowBanned,
        InstanceMetric::Bans,
        InstanceMetric::Strikes,
        InstanceMetric::Allowlisted,
        InstanceMetric::InvalidCost,
        InstanceMetric::PenaltyCasExhausted,
        InstanceMetric::PenaltyEvictions,
    ];

    fn name(self) -> &'static str {
        match self {
            InstanceMetric::Banned => "banned",
            InstanceMetric::ShadowBanned => "shadow_banned",
            InstanceMetric::Bans => "bans",
            InstanceMetric::Strikes => "strikes",
            InstanceMetric::Allowlisted => "allowlisted",
            InstanceMetric::InvalidCost => "invalid_cost",
            InstanceMetric::PenaltyCasExhausted => "penalty_cas_exhausted",
            InstanceMetric::PenaltyEvictions => "penalty_evictions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Limit(usize, LimitMetric),
    Instance(InstanceMetric),
}

/// A refusal, enforced or (shadow mode) only signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub reason: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Response headers of the refusal: `Retry-After`, `RateLimit*`.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny(Denial),
    /// Shadow mode: let through, signal `would-deny` upstream.
    Shadow(Denial),
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub action: Action,
    /// Headers for the upstream's response when the request is let through.
    pub response_headers: Vec<(String, String)>,
    pub events: Vec<Event>,
    pub decision: Decision,
    /// The penalty key, for strikes from the response status.
    pub penalty_key: Option<Vec<u8>>,
}

impl Verdict {}

/// One filter instance's compiled policy and the shape of its tables.
#[derive(Debug, Clone)]
pub struct Limiter {
    pub instance: String,
    pub policy: Policy,
    limits_table: SlotTable,
    penalty_table: Option<SlotTable>,
}

impl Limiter {
    /// `key` keys the tables' bucket hash (`HashKey::shared` at configure time).
    pub fn new(instance: &str, policy: Policy, key: HashKey) -> Limiter {
        let prefix = format!("portcullis.ratelimit.{instance}");
        let attempts = policy.cas_attempts;
        let limits_table = SlotTable::new(
            &format!("{prefix}.limits"),
            policy.table.buckets,
            policy.table.ways,
            algorithm::STATE_LEN,
            attempts,
            key,
        );
        let penalty_table = policy.penalties.as_ref().map(|p| {
            SlotTable::new(
                &format!("{prefix}.penalties"),
                p.table.buckets,
                p.table.ways,
                penalty::STATE_LEN,
                attempts,
                key,
            )
        });
        Limiter {
            instance: instance.to_string(),
            policy,
            limits_table,
            penalty_table,
        }
    }

    /// Creates the tables' buckets (at configure time, before traffic).
    pub fn prepare<S: SharedData>(&self, store: &mut S) -> Result<(), SlotError> {
        if !self.policy.limits.is_empty() {
            self.limits_table.create_missing(store)?;
        }
        if let Some(t) = &self.penalty_table {
            t.create_missing(store)?;
        }
        Ok(())
    }

    /// Metric names in the order of [`Limiter::metric_index`].
    pub fn metric_names(&self) -> Vec<String> {
        let inst = self.instance.replace('-', "_");
        let mut names = Vec::new();
        for limit in &self.policy.limits {
            let l = limit.name.replace('-', "_");
            for m in LimitMetric::ALL {
                names.push(format!("portcullis_ratelimit_{inst}_{l}_{}", m.name()));
            }
        }
        for m in InstanceMetric::ALL {
            names.push(format!("portcullis_ratelimit_{inst}_{}", m.name()));
        }
        names
    }

    pub fn metric_index(&self, event: Event) -> usize {
        let per_limit = LimitMetric::ALL.len();
        match event {
            Event::Limit(i, m) => {
                i * per_limit + LimitMetric::ALL.iter().position(|x| *x == m).unwrap_or(0)
            }
            Event::Instance(m) => {
                self.policy.limits.len() * per_limit
                    + InstanceMetric::ALL
                        .iter()
                        .position(|x| *x == m)
                        .unwrap_or(0)
            }
        }
    }

    fn shadow(&self) -> bool {
        self.policy.mode == Mode::Shadow
    }

    /// The numbers of `limit` for this caller: the first tier whose role the identity has.
    fn rate_for<'a>(limit: &'a Limit, identity: Option<&Identity>) -> (Rate, Option<&'a str>) {
        let tier = identity.and_then(|id| limit.tiers.iter().find(|t| id.roles.contains(&t.role)));
        let (quota, burst) = tier.map_or((limit.limit, limit.burst), |t| (t.limit, t.burst));
        (
            Rate {
                limit: quota,
                window_ms: limit.window_ms,
                burst,
            },
            tier.map(|t| t.role.as_str()),
        )
    }

    /// The request's cost: its route's cost, raised (never lowered) by the cost header.
    fn cost(&self, req: &RequestView<'_>) -> Result<u64, String> {
        let cost = &self.policy.cost;
        // No cost routes (the common case): no path to read on this per-request path.
        let routes = !cost.routes.is_empty();
        let parsed = routes.then(|| RequestPath::parse(req.path, PathParameters::Refuse));
        let route_cost = parsed.flatten().map_or(1, |path| {
            let (method, host) = (req.method, req.authority);
            // The first route on the guard view wins, as in every first-match list ...
            let first = cost
                .routes
                .iter()
                .find(|(route, _)| route.matches_guard_view(method, host, &path).is_some())
                .map_or(1, |(_, c)| *c);
            if path.ambiguity().is_none() {
                return first;
            }
            // ... and an ambiguous path costs what its costliest reading does: whichever way
            // the upstream reads it, the request is charged at least that.
            cost.routes
                .iter()
                .filter(|(route, _)| route.matches_path(method, host, &path).is_some())
                .map(|(_, c)| *c)
                .fold(first, u64::max)
        });
        let Some(name) = &cost.header else {
            return Ok(route_cost);
        };
        let Some(text) = req.header(name) else {
            return Ok(route_cost);
        };
        let parsed =
            (!text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
                .filter(|c| (1..=cost.max).contains(c));
        match parsed {
            Some(c) => Ok(c.max(route_cost)),
            None => Err(format!(
                "the {name} header must be a whole number from 1 to {}",
                cost.max
            )),
        }
    }

    fn refuse(&self, denial: Denial) -> Action {
        if self.shadow() {
            Action::Shadow(denial)
        } else {
            Action::Deny(denial)
        }
    }

    fn decision_for(&self, action: &Action) -> Decision {
        match action {
            Action::Allow => Decision::allow(),
            Action::Deny(d) => Decision::deny(d.status, d.reason),
            Action::Shadow(d) => {
                let mut decision = Decision::deny(d.status, d.reason);
                decision.outcome = Outcome::ShadowDeny;
                decision
            }
        }
    }

    /// Decides a request.
    pub fn check<S: SharedData>(&self, req: &RequestView<'_>, store: &mut S, now: u64) -> Verdict {
        let mut events = Vec::new();
        // The allow-list sees the full address; keys (limits and bans) count the client's
        // network, so rotating addresses within it escapes nothing.
        let allowlisted = req
            .client_ip
            .is_some_and(|ip| self.policy.allow.contains(ip));
        let prefix = self.policy.client_prefix;
        let keyed = RequestView {
            client_ip: req.client_ip.map(|ip| masked(ip, prefix.ipv4, prefix.ipv6)),
            ..req.clone()
        };
        let req = &keyed;
        let penalty_key = self
            .policy
            .penalties
            .as_ref()
            .and_then(|p| key::build("penalty", &p.key, None, req));

        if allowlisted {
            events.push(Event::Instance(InstanceMetric::Allowlisted));
            return Verdict {
                action: Action::Allow,
                response_headers: Vec::new(),
                events,
                decision: Decision::allow().with("allowlisted", true),
                penalty_key: None,
            };
        }

        let cost = match self.cost(req) {
            Ok(cost) => cost,
            Err(detail) => {
                events.push(Event::Instance(InstanceMetric::InvalidCost));
                let denial = Denial {
                    status: 400,
                    reason: "invalid_cost",
                    title: "Invalid request cost",
                    detail,
                    headers: Vec::new(),
                };
                let action = self.refuse(denial);
                let decision = self.decision_for(&action);
                return Verdict {
                    action,
                    response_headers: Vec::new(),
                    events,
                    decision,
                    penalty_key,
                };
            }
        };

        if let Some(verdict) = self.check_ban(penalty_key.as_deref(), store, now, &mut events) {
            return verdict;
        }

        let mut applied: Vec<Applied> = Vec::new();
        let mut consumed: Vec<(usize, Vec<u8>, Rate)> = Vec::new();
        let mut denial: Option<(Option<usize>, Denial)> = None;
        let mut tiers: Vec<(String, String)> = Vec::new();
        let when_full = match self.policy.when_full {
            WhenFullMode::Evict => WhenFull::EvictSoonestExpiring,
            WhenFullMode::Deny | WhenFullMode::Allow => WhenFull::Refuse,
        };

        for (i, limit) in self.policy.limits.iter().enumerate() {
            let pattern = match &limit.route {
                Some(route) => {
                    if route.matches(req.method, req.authority, req.path).is_none() {
                        continue;
                    }
                    Some(route.pattern())
                }
                None => None,
            };
            let Some(key) = key::build(&limit.name, &limit.key, pattern, req) else {
                continue;
            };
            let (rate, tier) = Self::rate_for(limit, req.identity);
            if let Some(role) = tier {
                tiers.push((limit.name.clone(), role.to_string()));
            }
            let updated = self
                .limits_table
                .update(store, &key, now, when_full, |state| {
                    let step = algorithm::consume(limit.algorithm, rate, state, cost, now);
                    match step.write {
                        Some((bytes, expires_at)) => Change::Put {
                            value: bytes.to_vec(),
                            expires_at,
                            result: step,
                        },
                        None => Change::Keep(step),
                    }
                });
            let step: Step = match updated {
                Ok(u) => {
                    if u.eviction == Eviction::Live {
                        events.push(Event::Limit(i, LimitMetric::Evictions));
                    }
                    for _ in 0..u.conflicts {
                        events.push(Event::Limit(i, LimitMetric::CasRetries));
                    }
                    u.result
                }
                Err(SlotError::Full) => {
                    if self.policy.when_full == WhenFullMode::Allow {
                        continue;
                    }
                    denial = Some((None, unavailable(limit, "rate_limit_capacity")));
                    break;
                }
                Err(SlotError::Contended { .. }) | Err(SlotError::Host(_)) => {
                    events.push(Event::Limit(i, LimitMetric::CasExhausted));
                    if self.policy.on_contention == FailMode::Allow {
                        continue;
                    }
                    denial = Some((None, unavailable(limit, "rate_limit_contention")));
                    break;
                }
            };
            let burst = (limit.algorithm == algorithm::Algorithm::TokenBucket
                && rate.burst != rate.limit)
                .then_some(rate.burst);
            let mut entry = Applied {
                name: limit.name.clone(),
                quota: rate.limit,
                window_s: limit.window_ms / 1000,
                burst,
                remaining: step.remaining,
                reset_s: seconds_ceil(step.reset_ms),
            };
            if step.allowed {
                applied.push(entry);
                consumed.push((i, key, rate));
            } else {
                let retry_s = seconds_ceil(step.retry_after_ms).max(1);
                entry.reset_s = retry_s;
                applied.push(entry);
                let d = Denial {
                    status: 429,
                    reason: "rate_limited",
                    title: "Too many requests",
                    detail: format!(
                        "limit `{}` exceeded: {} per {} s; retry in {retry_s} s",
                        limit.name,
                        rate.limit,
                        limit.window_ms / 1000
                    ),
                    headers: vec![("retry-after".into(), retry_s.to_string())],
                };
                denial = Some((Some(i), d));
                break;
            }
        }

        let Some((tripped, mut denial)) = denial else {
            for (i, _, _) in &consumed {
                events.push(Event::Limit(*i, LimitMetric::Allowed));
            }
            let headers = if self.policy.headers.on_allowed {
                response_headers(&applied, self.policy.headers.legacy)
            } else {
                Vec::new()
            };
            let mut decision = Decision::allow().with("cost", cost).with(
                "limits",
                applied.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            );
            if !tiers.is_empty() {
                decision = decision.with("tiers", json!(tiers));
            }
            return Verdict {
                action: Action::Allow,
                response_headers: headers,
                events,
                decision,
                penalty_key,
            };
        };

        // The request is not let through (or, in shadow mode, would not be): give back what the
        // limits before the one that tripped took, so a refused request costs nothing.
        for (i, key, rate) in &consumed {
            if let Some(limit) = self.policy.limits.get(*i) {
                let _ = self
                    .limits_table
                    .update(
                        store,
                        key,
                        now,
                        WhenFull::Refuse,
                        |state| match algorithm::refund(limit.algorithm, *rate, state, cost, now) {
                            Some((bytes, expires_at)) => Change::Put {
                                value: bytes.to_vec(),
                                expires_at,
                                result: (),
                            },
                            None => Change::Keep(()),
                        },
                    );
            }
        }

        let mut decision_details: Vec<(&str, serde_json::Value)> = vec![("cost", json!(cost))];
        let mut ban = None;
        if let Some(i) = tripped {
            let metric = if self.shadow() {
                LimitMetric::ShadowLimited
            } else {
                LimitMetric::Limited
            };
            events.push(Event::Limit(i, metric));
            if let Some(limit) = self.policy.limits.get(i) {
                decision_details.push(("limit", json!(limit.name)));
            }
            denial
                .headers
                .extend(response_headers(&applied, self.policy.headers.legacy));
            if self
                .policy
                .penalties
                .as_ref()
                .is_some_and(|p| p.from_limits)
            {
                ban = self.strike(penalty_key.as_deref(), store, now, &mut events);
                if ban.is_some() {
                    events.push(Event::Limit(i, LimitMetric::Bans));
                }
            }
        }
        let action = self.refuse(denial);
        let mut decision = self.decision_for(&action);
        for (k, v) in decision_details {
            decision = decision.with(k, v);
        }
        if let Some(until) = ban {
            decision = with_ban_started(decision, until);
        }
        Verdict {
            action,
            response_headers: Vec::new(),
            events,
            decision,
            penalty_key,
        }
    }

    fn check_ban<S: SharedData>(
        &self,
        penalty_key: Option<&[u8]>,
        store: &mut S,
        now: u64,
        events: &mut Vec<Event>,
    ) -> Option<Verdict> {
        let (cfg, table, key) = (
            self.policy.penalties.as_ref()?,
            self.penalty_table.as_ref()?,
            penalty_key?,
        );
        let state = PenaltyState::decode(&table.get(store, key, now)?);
        if !state.is_banned(now) {
            return None;
        }
        let retry_s = seconds_ceil(state.banned_until - now).max(1);
        events.push(Event::Instance(if self.shadow() {
            InstanceMetric::ShadowBanned
        } else {
            InstanceMetric::Banned
        }));
        let denial = Denial {
            status: cfg.status,
            reason: "banned",
            title: "Temporarily banned",
            detail: format!("too many refused or failed requests; retry in {retry_s} s"),
            headers: vec![("retry-after".into(), retry_s.to_string())],
        };
        let action = self.refuse(denial);
        let decision = self
            .decision_for(&action)
            .with("ban_level", state.level)
            .with("retry_after_s", retry_s);
        Some(Verdict {
            action,
            response_headers: Vec::new(),
            events: std::mem::take(events),
            decision,
            penalty_key: Some(key.to_vec()),
        })
    }

    /// Records a strike; returns the end of a ban it started.
    fn strike<S: SharedData>(
        &self,
        penalty_key: Option<&[u8]>,
        store: &mut S,
        now: u64,
        events: &mut Vec<Event>,
    ) -> Option<u64> {
        let (cfg, table, key) = (
            self.policy.penalties.as_ref()?,
            self.penalty_table.as_ref()?,
            penalty_key?,
        );
        events.push(Event::Instance(InstanceMetric::Strikes));
        let updated = table.update(store, key, now, WhenFull::EvictSoonestExpiring, |cur| {
            strike_change(cfg, cur, now)
        });
        match updated {
            Ok(u) => {
                if u.eviction == Eviction::Live {
                    events.push(Event::Instance(InstanceMetric::PenaltyEvictions));
                }
                match u.result {
                    StrikeOutcome::Banned { until, .. } => {
                        events.push(Event::Instance(InstanceMetric::Bans));
                        Some(until)
                    }
                    StrikeOutcome::Counted => None,
                }
            }
            Err(_) => {
                events.push(Event::Instance(InstanceMetric::PenaltyCasExhausted));
                None
            }
        }
    }

    /// The response status came back: a configured status (401, 403 ...) is a strike.
    pub fn on_response<S: SharedData>(
        &self,
        status: u16,
        penalty_key: Option<&[u8]>,
        store: &mut S,
        now: u64,
    ) -> (Vec<Event>, Option<u64>) {
        let mut events = Vec::new();
        let counts = self
            .policy
            .penalties
            .as_ref()
            .is_some_and(|p| p.from_statuses.contains(&status));
        if !counts {
            return (events, None);
        }
        let ban = self.strike(penalty_key, store, now, &mut events);
        (events, ban)
    }
}

/// The request's decision once it started a ban (by a limit, or later by its response status):
/// a security event for the audit record, whichever phase the ban started in. An allowed
/// request (its response was the last strike) gets `ban_started` as the event's reason.
pub fn with_ban_started(mut decision: Decision, until: u64) -> Decision {
    decision.security_event = true;
    if decision.reason.is_none() {
        decision.reason = Some("ban_started".to_string());
    }
    decision.with("ban_until_ms", until)
}

fn strike_change(cfg: &Penalties, cur: Option<&[u8]>, now: u64) -> Change<StrikeOutcome> {
    let mut state = cur.map(PenaltyState::decode).unwrap_or_default();
    let outcome = state.strike(cfg, now);
    Change::Put {
        value: state.encode(),
        expires_at: state.expires_at(cfg),
        result: outcome,
    }
}

fn unavailable(limit: &Limit, reason: &'static str) -> Denial {
    Denial {
        status: 429,
        reason,
        title: "Too many requests",
        detail: format!(
            "limit `{}` could not be checked under load; retry shortly",
            limit.name
        ),
        headers: vec![("retry-after".into(), "1".into())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::identity::AuthMethod;
    use portcullis_common::slots::MemoryStore;
    use std::net::IpAddr;

    const TEST_KEY: HashKey = HashKey::from_bytes([7; 16]);

    fn limiter(json: &str) -> (Limiter, MemoryStore) {
        let l = Limiter::new(
            "ratelimit-client",
            Policy::parse(json.as_bytes()).unwrap(),
            TEST_KEY,
        );
        let mut store = MemoryStore::new();
        l.prepare(&mut store).unwrap();
        (l, store)
    }

    fn get<'a>(client: &str, path: &'a str) -> RequestView<'a> {
        RequestView {
            method: "GET",
            authority: "localhost",
            path,
            client_ip: client.parse().ok(),
            identity: None,
            headers: &[],
        }
    }

    fn allowed(v: &Verdict) -> bool {
        v.action == Action::Allow
    }

    fn count(l: &Limiter, store: &mut MemoryStore, req: &RequestView<'_>, now: u64) -> usize {
        (0..1000)
            .take_while(|_| allowed(&l.check(req, store, now)))
            .count()
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    const PER_IP: &str =
        r#"{"limits":[{"name":"per-ip","limit":5,"window":60,"key":["client_ip"]}]}"#;

    #[test]
    fn exactly_n_then_429_with_headers() {
        let (l, mut s) = limiter(PER_IP);
        let req = get("10.0.0.1", "/");
        let first = l.check(&req, &mut s, 0);
        assert_eq!(
            header(&first.response_headers, "ratelimit-policy"),
            Some(r#""per-ip";q=5;w=60"#)
        );
        assert_eq!(
            header(&first.response_headers, "ratelimit"),
            Some(r#""per-ip";r=4;t=12"#)
        );
        assert_eq!(count(&l, &mut s, &req, 0), 4);
        let v = l.check(&req, &mut s, 0);
        let Action::Deny(d) = &v.action else {
            panic!("{:?}", v.action)
        };
        assert_eq!(d.status, 429);
        assert_eq!(d.reason, "rate_limited");
        assert!(d.detail.contains("limit `per-ip` exceeded"), "{}", d.detail);
        assert_eq!(header(&d.headers, "retry-after"), Some("12"));
        assert_eq!(
            header(&d.headers, "ratelimit"),
            Some(r#""per-ip";r=0;t=12"#)
        );
        assert_eq!(v.decision.outcome, Outcome::Deny);
        assert_eq!(v.decision.details["limit"], "per-ip");
        assert!(v.events.contains(&Event::Limit(0, LimitMetric::Limited)));
        // 12 s later one token is back.
        assert!(allowed(&l.check(&req, &mut s, 12_000)));
    }

    #[test]
    fn distinct_keys_do_not_interfere() {
        let (l, mut s) = limiter(PER_IP);
        assert_eq!(count(&l, &mut s, &get("10.0.0.1", "/"), 0), 5);
        assert_eq!(count(&l, &mut s, &get("10.0.0.2", "/"), 0), 5);
        assert_eq!(count(&l, &mut s, &get("2001:db8::1", "/"), 0), 5);
    }

    #[test]
    fn requests_without_the_key_part_are_not_counted() {
        let (l, mut s) =
            limiter(r#"{"limits":[{"name":"per-user","limit":1,"window":60,"key":["subject"]}]}"#);
        let v = l.check(&get("10.0.0.1", "/"), &mut s, 0);
        assert!(allowed(&v));
        assert!(v.response_headers.is_empty());
        assert!(allowed(&l.check(&get("10.0.0.1", "/"), &mut s, 0)));
    }

    #[test]
    fn several_limits_and_a_refused_request_costs_nothing() {
        let (l, mut s) = limiter(
            r#"{"limits":[
                {"name":"per-ip","limit":10,"window":60,"key":["client_ip"]},
                {"name":"login","algorithm":"sliding_window","limit":2,"window":60,"key":["client_ip"],
                 "route":{"path":"/login","methods":["POST"]}}]}"#,
        );
        let login = RequestView {
            method: "POST",
            ..get("10.0.0.1", "/login")
        };
        let v = l.check(&login, &mut s, 0);
        assert_eq!(
            header(&v.response_headers, "ratelimit-policy"),
            Some(r#""per-ip";q=10;w=60, "login";q=2;w=60"#)
        );
        assert!(allowed(&l.check(&login, &mut s, 0)));
        for _ in 0..5 {
            let v = l.check(&login, &mut s, 0);
            assert!(!allowed(&v));
            assert_eq!(v.decision.details["limit"], "login");
        }
        // GET /login is not the login route; the 5 refused POSTs were refunded to per-ip.
        assert_eq!(count(&l, &mut s, &get("10.0.0.1", "/login"), 0), 8);
    }

    #[test]
    fn an_ambiguous_path_costs_its_costliest_reading() {
        // Found by review: the first cheap route used to win through another reading.
        let (l, mut s) = limiter(
            r#"{"cost":{"max":50,"routes":[
                   {"route":{"path":"/api/products/**"},"cost":2},
                   {"route":{"path":"/api/reports/**"},"cost":20}]},
                "limits":[{"name":"per-ip","limit":40,"window":60,"key":["client_ip"]}]}"#,
        );
        // Plain: 40 tokens / 20 = 2 requests.
        assert_eq!(
            count(&l, &mut s, &get("10.0.0.1", "/api/reports/big"), 0),
            2
        );
        // Servlet upstream resolves `..;` -> /api/reports/big; guard view is /api/reports/big too.
        for (ip, p) in [
            ("10.0.0.2", "/api/products/..;/reports/big"),
            ("10.0.0.3", "/api/products/%2e%2e/reports/big"),
        ] {
            let n = count(&l, &mut s, &get(ip, p), 0);
            assert_eq!(
                n, 2,
                "{p} must cost 20 like /api/reports/big, got {n} requests"
            );
        }
    }

    #[test]
    fn cost_by_route_and_header() {
        let (l, mut s) = limiter(
            r#"{"cost":{"header":"x-cost","max":50,"routes":[{"route":{"path":"/search"},"cost":4}]},
                "limits":[{"name":"per-ip","limit":10,"window":60,"key":["client_ip"]}]}"#,
        );
        let search = get("10.0.0.1", "/search?q=x");
        assert_eq!(count(&l, &mut s, &search, 0), 2, "10 tokens, 4 each");
        let h = vec![("x-cost".to_string(), "3".to_string())];
        let req = RequestView {
            headers: &h,
            ..get("10.0.0.2", "/")
        };
        assert_eq!(count(&l, &mut s, &req, 0), 3);
        // The header can raise a route's cost, never lower it.
        let h1 = vec![("x-cost".to_string(), "1".to_string())];
        let cheap_search = RequestView {
            headers: &h1,
            ..get("10.0.0.3", "/search")
        };
        assert_eq!(count(&l, &mut s, &cheap_search, 0), 2);
        for bad in ["0", "51", "-1", "1.5", "", "99999999999999999999", "ten"] {
            let h = vec![("x-cost".to_string(), bad.to_string())];
            let req = RequestView {
                headers: &h,
                ..get("10.0.0.4", "/")
            };
            let v = l.check(&req, &mut s, 0);
            let Action::Deny(d) = &v.action else {
                panic!("{bad:?}: {:?}", v.action)
            };
            assert_eq!((d.status, d.reason), (400, "invalid_cost"), "{bad:?}");
            assert!(d.detail.contains("from 1 to 50"), "{}", d.detail);
        }
    }

    #[test]
    fn role_tiers() {
        let (l, mut s) = limiter(
            r#"{"limits":[{"name":"per-user","limit":2,"window":60,"key":["subject"],
                "tiers":[{"role":"admin","limit":6},{"role":"operator","limit":4}]}]}"#,
        );
        let who = |subject: &str, roles: &[&str]| Identity {
            subject: subject.into(),
            method: AuthMethod::Jwt,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            tenant: None,
            key_id: None,
            issuer: None,
        };
        let (admin, op, viewer) = (
            who("ada", &["viewer", "admin"]),
            who("otto", &["operator"]),
            who("vic", &["viewer"]),
        );
        for (id, expected) in [(&admin, 6), (&op, 4), (&viewer, 2)] {
            let req = RequestView {
                identity: Some(id),
                ..get("10.0.0.1", "/")
            };
            assert_eq!(count(&l, &mut s, &req, 0), expected, "{}", id.subject);
        }
        let req = RequestView {
            identity: Some(&admin),
            ..get("10.0.0.1", "/")
        };
        let v = l.check(&req, &mut s, 60_000);
        assert_eq!(v.decision.details["tiers"], json!([["per-user", "admin"]]));
    }

    #[test]
    fn allow_listed_networks_are_unlimited() {
        let (l, mut s) = limiter(
            r#"{"allow_cidrs":["10.0.0.0/8"],"penalties":{"strikes":1},
                "limits":[{"name":"per-ip","limit":1,"window":60,"key":["client_ip"]}]}"#,
        );
        assert_eq!(count(&l, &mut s, &get("10.1.2.3", "/"), 0), 1000);
        let v = l.check(&get("10.1.2.3", "/"), &mut s, 0);
        assert_eq!(v.events, vec![Event::Instance(InstanceMetric::Allowlisted)]);
        assert_eq!(count(&l, &mut s, &get("11.0.0.1", "/"), 0), 1);
    }

    #[test]
    fn contention_beyond_the_retries_does_what_is_configured() {
        for (mode, expect_allowed) in [("deny", false), ("allow", true)] {
            let (l, mut s) = limiter(&format!(
                r#"{{"cas_attempts":3,"on_contention":"{mode}",
                    "limits":[{{"name":"per-ip","limit":5,"window":60,"key":["client_ip"]}}]}}"#
            ));
            s.interfere = 3;
            let v = l.check(&get("10.0.0.1", "/"), &mut s, 0);
            assert_eq!(allowed(&v), expect_allowed, "{mode}");
            assert!(v
                .events
                .contains(&Event::Limit(0, LimitMetric::CasExhausted)));
            if let Action::Deny(d) = &v.action {
                assert_eq!(d.reason, "rate_limit_contention");
                assert_eq!(header(&d.headers, "retry-after"), Some("1"));
            }
            // Two lost races are within the bound: still exact, and counted as retries.
            s.interfere = 2;
            let v = l.check(&get("10.0.0.1", "/"), &mut s, 0);
            assert!(allowed(&v));
            let retries = v
                .events
                .iter()
                .filter(|e| **e == Event::Limit(0, LimitMetric::CasRetries))
                .count();
            assert_eq!(retries, 2);
        }
    }

    #[test]
    fn a_full_table_evicts_counts_or_refuses() {
        let one_slot = |mode: &str| {
            limiter(&format!(
                r#"{{"table":{{"buckets":1,"ways":1}},"when_full":"{mode}",
                    "limits":[{{"name":"per-ip","limit":2,"window":60,"key":["client_ip"]}}]}}"#
            ))
        };
        let (l, mut s) = one_slot("evict");
        assert!(allowed(&l.check(&get("10.0.0.1", "/"), &mut s, 0)));
        let v = l.check(&get("10.0.0.2", "/"), &mut s, 0);
        assert!(allowed(&v));
        assert!(v.events.contains(&Event::Limit(0, LimitMetric::Evictions)));

        let (l, mut s) = one_slot("deny");
        assert!(allowed(&l.check(&get("10.0.0.1", "/"), &mut s, 0)));
        let v = l.check(&get("10.0.0.2", "/"), &mut s, 0);
        let Action::Deny(d) = &v.action else {
            panic!("{:?}", v.action)
        };
        assert_eq!(d.reason, "rate_limit_capacity");
        // The live entry was not reset.
        assert_eq!(count(&l, &mut s, &get("10.0.0.1", "/"), 0), 1);

        let (l, mut s) = one_slot("allow");
        assert!(allowed(&l.check(&get("10.0.0.1", "/"), &mut s, 0)));
        assert_eq!(count(&l, &mut s, &get("10.0.0.2", "/"), 0), 1000);
    }

    #[test]
    fn shadow_mode_lets_through_counts_and_signals() {
        let (l, mut s) = limiter(
            r#"{"mode":"shadow","limits":[{"name":"per-ip","limit":2,"window":60,"key":["client_ip"]}]}"#,
        );
        let req = get("10.0.0.1", "/");
        assert!(allowed(&l.check(&req, &mut s, 0)));
        assert!(allowed(&l.check(&req, &mut s, 0)));
        let v = l.check(&req, &mut s, 0);
        assert!(
            matches!(&v.action, Action::Shadow(d) if d.status == 429 && d.reason == "rate_limited")
        );
        assert!(v
            .events
            .contains(&Event::Limit(0, LimitMetric::ShadowLimited)));
        assert!(!v.events.contains(&Event::Limit(0, LimitMetric::Limited)));
        assert_eq!(v.decision.outcome, Outcome::ShadowDeny);
    }

    const PENALTIES: &str = r#"{"penalties":{"strikes":3,"strike_window":60,"bans":[10,60],"decay":600,"status":403},
        "limits":[{"name":"per-ip","limit":1,"window":3600,"key":["client_ip"]}]}"#;

    #[test]
    fn limit_hits_earn_an_escalating_ban() {
        let (l, mut s) = limiter(PENALTIES);
        let req = get("10.0.0.1", "/");
        assert!(allowed(&l.check(&req, &mut s, 0)));
        l.check(&req, &mut s, 0);
        l.check(&req, &mut s, 0);
        let v = l.check(&req, &mut s, 0);
        assert!(v.events.contains(&Event::Instance(InstanceMetric::Bans)));
        assert!(v.events.contains(&Event::Limit(0, LimitMetric::Bans)));
        assert!(v.decision.security_event);
        // Banned: refused with the ban status before any limit is looked at.
        let v = l.check(&req, &mut s, 5_000);
        let Action::Deny(d) = &v.action else {
            panic!("{:?}", v.action)
        };
        assert_eq!((d.status, d.reason), (403, "banned"));
        assert_eq!(header(&d.headers, "retry-after"), Some("5"));
        assert_eq!(v.events, vec![Event::Instance(InstanceMetric::Banned)]);
        // Another client is not banned.
        assert_eq!(
            l.check(&get("10.0.0.2", "/"), &mut s, 5_000).action,
            Action::Allow
        );
        // The ban ends after 10 s; three more hits start a 60 s ban.
        let v = l.check(&req, &mut s, 10_000);
        assert!(matches!(&v.action, Action::Deny(d) if d.reason == "rate_limited"));
        l.check(&req, &mut s, 10_000);
        l.check(&req, &mut s, 10_000);
        let v = l.check(&req, &mut s, 69_999);
        assert!(matches!(&v.action, Action::Deny(d) if d.reason == "banned"));
        let v = l.check(&req, &mut s, 70_000);
        assert!(matches!(&v.action, Action::Deny(d) if d.reason == "rate_limited"));
    }

    #[test]
    fn an_ipv6_client_is_counted_and_banned_by_its_network() {
        // Default: the /64. Every address of it shares the budget, the next /64 does not.
        let (l, mut s) = limiter(PER_IP);
        for i in 0..5 {
            let addr = format!("2001:db8:0:1::{i:x}");
            assert!(allowed(&l.check(&get(&addr, "/"), &mut s, 0)), "{addr}");
        }
        assert!(!allowed(&l.check(
            &get("2001:db8:0:1:ffff::9", "/"),
            &mut s,
            0
        )));
        assert!(allowed(&l.check(&get("2001:db8:0:2::1", "/"), &mut s, 0)));
        // IPv4 addresses are still one client each (and a mapped one is the same client).
        for i in 0..5 {
            assert!(
                allowed(&l.check(&get("198.51.100.1", "/"), &mut s, 0)),
                "{i}"
            );
        }
        assert!(!allowed(&l.check(
            &get("::ffff:198.51.100.1", "/"),
            &mut s,
            0
        )));
        assert!(allowed(&l.check(&get("198.51.100.2", "/"), &mut s, 0)));

        // Configured: a /48 and a /24; bans follow the same keys.
        let (l, mut s) = limiter(
            r#"{"client_prefix":{"ipv4":24,"ipv6":48},
                "penalties":{"strikes":1,"bans":[60]},
                "limits":[{"name":"per-ip","limit":1,"window":3600,"key":["client_ip"]}]}"#,
        );
        assert!(allowed(&l.check(&get("2001:db8:7:1::1", "/"), &mut s, 0)));
        let v = l.check(&get("2001:db8:7:2::1", "/"), &mut s, 0);
        assert!(v.events.contains(&Event::Instance(InstanceMetric::Bans)));
        let v = l.check(&get("2001:db8:7:ffff::1", "/"), &mut s, 1_000);
        assert!(matches!(&v.action, Action::Deny(d) if d.reason == "banned"));
        assert!(allowed(&l.check(&get("2001:db8:8::1", "/"), &mut s, 1_000)));
        assert!(allowed(&l.check(&get("10.1.2.3", "/"), &mut s, 1_000)));
        let v = l.check(&get("10.1.2.200", "/"), &mut s, 1_000);
        assert!(!allowed(&v), "the /24 shares one budget");
        assert!(allowed(&l.check(&get("10.1.3.1", "/"), &mut s, 1_000)));
    }

    #[test]
    fn the_allow_list_sees_the_full_address() {
        let (l, mut s) = limiter(
            r#"{"allow_cidrs":["2001:db8::5/128"],
                "limits":[{"name":"per-ip","limit":1,"window":3600,"key":["client_ip"]}]}"#,
        );
        assert!(allowed(&l.check(&get("2001:db8::1", "/"), &mut s, 0)));
        assert!(!allowed(&l.check(&get("2001:db8::2", "/"), &mut s, 0)));
        for _ in 0..3 {
            let v = l.check(&get("2001:db8::5", "/"), &mut s, 0);
            assert!(v
                .events
                .contains(&Event::Instance(InstanceMetric::Allowlisted)));
        }
    }

    #[test]
    fn failed_logins_earn_a_ban() {
        let (l, mut s) = limiter(PENALTIES);
        let req = get("10.0.0.9", "/login");
        let v = l.check(&req, &mut s, 0);
        let key = v.penalty_key.clone();
        assert!(key.is_some());
        let (events, ban) = l.on_response(200, key.as_deref(), &mut s, 0);
        assert!(events.is_empty() && ban.is_none());
        l.on_response(401, key.as_deref(), &mut s, 0);
        l.on_response(403, key.as_deref(), &mut s, 0);
        let (events, ban) = l.on_response(401, key.as_deref(), &mut s, 0);
        assert_eq!(ban, Some(10_000));
        assert!(events.contains(&Event::Instance(InstanceMetric::Bans)));
        // The request's allow decision becomes the security event of the ban it started.
        assert!(!v.decision.security_event);
        let d = with_ban_started(v.decision.clone(), 10_000);
        assert!(d.security_event);
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.reason.as_deref(), Some("ban_started"));
        assert_eq!(d.details.get("ban_until_ms"), Some(&10_000.into()));
        let v = l.check(&get("10.0.0.9", "/other"), &mut s, 1);
        assert!(matches!(&v.action, Action::Deny(d) if d.reason == "banned" && d.status == 403));
    }

    #[test]
    fn shadow_bans_only_signal() {
        let (l, mut s) = limiter(&PENALTIES.replacen('{', r#"{"mode":"shadow","#, 1));
        let req = get("10.0.0.1", "/");
        for _ in 0..4 {
            l.check(&req, &mut s, 0);
        }
        let v = l.check(&req, &mut s, 1);
        assert!(matches!(&v.action, Action::Shadow(d) if d.reason == "banned"));
        assert_eq!(
            v.events,
            vec![Event::Instance(InstanceMetric::ShadowBanned)]
        );
    }

    #[test]
    fn legacy_headers_and_quiet_allowed_responses() {
        let (l, mut s) = limiter(
            r#"{"headers":{"on_allowed":false,"legacy":true},
                "limits":[{"name":"per-ip","limit":1,"window":60,"key":["client_ip"]}]}"#,
        );
        let req = get("10.0.0.1", "/");
        assert!(l.check(&req, &mut s, 0).response_headers.is_empty());
        let Action::Deny(d) = l.check(&req, &mut s, 0).action else {
            panic!()
        };
        assert_eq!(header(&d.headers, "x-ratelimit-limit"), Some("1"));
        assert_eq!(header(&d.headers, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(header(&d.headers, "x-ratelimit-reset"), Some("60"));
    }

    #[test]
    fn metric_names_keep_instances_and_limits_apart() {
        let (l, _) = limiter(PENALTIES);
        let names = l.metric_names();
        let at = |e| names[l.metric_index(e)].as_str();
        assert_eq!(
            at(Event::Limit(0, LimitMetric::Allowed)),
            "portcullis_ratelimit_ratelimit_client_per_ip_allowed"
        );
        assert_eq!(
            at(Event::Limit(0, LimitMetric::Evictions)),
            "portcullis_ratelimit_ratelimit_client_per_ip_evictions"
        );
        assert_eq!(
            at(Event::Instance(InstanceMetric::Bans)),
            "portcullis_ratelimit_ratelimit_client_bans"
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let other = Limiter::new("ratelimit-identity", l.policy.clone(), TEST_KEY);
        assert!(other.metric_names().iter().all(|n| !names.contains(n)));
    }

    #[test]
    fn instances_keep_their_state_apart() {
        let policy = Policy::parse(PER_IP.as_bytes()).unwrap();
        let a = Limiter::new("ratelimit-client", policy.clone(), TEST_KEY);
        let b = Limiter::new("ratelimit-identity", policy, TEST_KEY);
        let mut s = MemoryStore::new();
        a.prepare(&mut s).unwrap();
        b.prepare(&mut s).unwrap();
        assert_eq!(count(&a, &mut s, &get("10.0.0.1", "/"), 0), 5);
        assert_eq!(count(&b, &mut s, &get("10.0.0.1", "/"), 0), 5);
    }

    #[test]
    fn fleet_share_is_enforced_and_advertised() {
        let (l, mut s) = limiter(
            r#"{"fleet_size":4,"limits":[{"name":"per-ip","limit":20,"window":60,"key":["client_ip"]}]}"#,
        );
        let req = get("10.0.0.1", "/");
        let v = l.check(&req, &mut s, 0);
        assert_eq!(
            header(&v.response_headers, "ratelimit-policy"),
            Some(r#""per-ip";q=5;w=60"#)
        );
        assert_eq!(count(&l, &mut s, &req, 0), 4);
    }

    #[test]
    fn memory_stays_bounded_under_many_clients() {
        let (l, mut s) = limiter(
            r#"{"table":{"buckets":64,"ways":4},"penalties":{"table":{"buckets":16,"ways":4}},
                "limits":[{"name":"per-ip","limit":1,"window":60,"key":["client_ip"]}]}"#,
        );
        let keys = s.key_count();
        let bytes = s.bytes();
        let mut evictions = 0;
        for i in 0..50_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            let req = RequestView {
                client_ip: Some(addr),
                ..get("", "/")
            };
            let v = l.check(&req, &mut s, u64::from(i));
            assert!(allowed(&v));
            evictions += v
                .events
                .iter()
                .filter(|e| **e == Event::Limit(0, LimitMetric::Evictions))
                .count();
        }
        assert_eq!(s.key_count(), keys);
        assert_eq!(s.bytes(), bytes);
        assert!(evictions > 40_000, "{evictions}");
    }
}
