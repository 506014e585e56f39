//! The decision for one request: which rule applies, who the caller is (JWT or API key, via the
//! verified-token cache and the revocation table), whether they may pass, and what the upstream
//! and later filters are told. The adapter only gathers the inputs and applies the verdict.

use portcullis_common::config::Mode;
use portcullis_common::decision::{
    append_would_deny, Decision, Outcome as DecisionOutcome, WOULD_DENY_HEADER,
};
use portcullis_common::identity::{AuthMethod, Identity};
use portcullis_common::route::{method_is_canonical, method_is_known, RequestPath};
use portcullis_common::slots::SharedData;
use std::rc::Rc;

use crate::apikey;
use crate::cache::{Cached, TokenCache};
use crate::credentials::{self, header, Removal};
use crate::jwt::{self, Outcome, Verified};
use crate::rbac::{satisfies, Requirement};
use crate::reject::Reject;
use crate::remote::{Fetch, RemoteState};
use crate::settings::{Policy, Source, Unmatched};

/// Name under which this filter publishes its decision.
pub const INSTANCE: &str = "auth";

/// Headers some upstreams act on after auth decided about another path or method (IIS and
/// Symfony read `X-Original-URL`/`X-Rewrite-URL`; Laravel, Express method-override and others
/// the method overrides). Removed from every request, whatever else the front does.
pub const OVERRIDE_HEADERS: [&str; 5] = [
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers only Portcullis may set. A client's copies are removed from every request (the
/// template's front also does, but a layout without it, like Istio, must not depend on that);
/// `x-portcullis-would-deny` is kept, as earlier filters append their shadow signals to it.
const RESERVED_PREFIX: &str = "x-portcullis-";

/// The request as the core needs it; header names lower-case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let it through with these changes.
    Pass {
        /// Shared with the token cache: a cached token's identity is built once.
        identity: Option<Rc<Identity>>,
        /// Header names are shared with the engine, not copied per request.
        remove_headers: Vec<Rc<str>>,
        set_headers: Vec<(Rc<str>, String)>,
        new_path: Option<String>,
        decision: Decision,
    },
    /// Answer with a problem+json.
    Deny {
        status: u16,
        reason: &'static str,
        detail: String,
        www_authenticate: Option<String>,
        decision: Decision,
    },
    /// Fetch this provider's keys, then decide again (unknown `kid`, refetch allowed).
    FetchKeys { provider: usize, fetch: Fetch },
}

/// Counts the adapter turns into metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub cache_hit: bool,
    pub verified: bool,
}

pub struct Engine {
    pub policy: Policy,
    pub remote: Vec<Option<RemoteState>>,
    pub cache: TokenCache,
    names: Names,
    /// The sources [`Engine::strip`] empties.
    strip_sources: Vec<Source>,
}

/// The identity header names (`policy.identity_headers`), made once.
struct Names {
    subject: Rc<str>,
    roles: Rc<str>,
    tenant: Rc<str>,
    method: Rc<str>,
    key_id: Rc<str>,
}

impl Names {
    fn all(&self) -> [&Rc<str>; 5] {
        [
            &self.subject,
            &self.roles,
            &self.tenant,
            &self.method,
            &self.key_id,
        ]
    }
}

/// Whether header name `sent` is `name` to an upstream that reads `_` as `-`, in any case.
fn same_header(sent: &str, name: &str) -> bool {
    let dash = |b: u8| {
        if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    sent.len() == name.len()
        && sent
            .bytes()
            .zip(name.bytes())
            .all(|(a, b)| dash(a) == dash(b))
}

/// Header names of a credential's removal, as the verdict holds them.
fn shared_names(removal: &Removal) -> impl Iterator<Item = Rc<str>> + '_ {
    removal.remove_headers.iter().map(|h| Rc::from(h.as_str()))
}

/// Why authentication stopped short of a caller.
enum Stop {
    Refused(Reject),
    /// Unknown `kid`: fetch keys first.
    Fetch {
        provider: usize,
        fetch: Fetch,
    },
}

impl From<Reject> for Stop {
    fn from(r: Reject) -> Stop {
        Stop::Refused(r)
    }
}

/// A caller whose credential checked out.
struct Caller {
    identity: Rc<Identity>,
    permissions: Vec<String>,
    removal: Removal,
}

impl Engine {
    pub fn new(policy: Policy) -> Engine {
        let remote = policy
            .remotes
            .iter()
            .zip(&policy.providers)
            .map(|(r, p)| {
                r.clone()
                    .map(|spec| RemoteState::new(spec, p.algorithms.clone()))
            })
            .collect();
        let cache = TokenCache::new(policy.cache_capacity);
        let h = &policy.identity_headers;
        let names = Names {
            subject: Rc::from(h.subject.as_str()),
            roles: Rc::from(h.roles.as_str()),
            tenant: Rc::from(h.tenant.as_str()),
            method: Rc::from(h.method.as_str()),
            key_id: Rc::from(h.key_id.as_str()),
        };
        let mut strip_sources = policy.api_key_sources.clone();
        if policy.remove_token {
            strip_sources.extend(policy.token_sources.iter().cloned());
        }
        Engine {
            policy,
            remote,
            cache,
            names,
            strip_sources,
        }
    }

    /// Decides about `req` at `now` (Unix seconds, from the host). `may_fetch` is false when
    /// re-deciding after a fetch, so one request triggers at most one.
    pub fn decide<S: SharedData>(
        &mut self,
        req: &Request<'_>,
        now: u64,
        store: &S,
        may_fetch: bool,
        tally: &mut Tally,
    ) -> Verdict {
        // Whatever the client sent under our identity headers, the override headers and our
        // reserved prefix never goes on.
        let mut remove: Vec<Rc<str>> = self.names.all().into_iter().cloned().collect();
        for (name, _) in req.headers {
            // CGI-style servers (PHP, Rack, WSGI) read `_` as `-`, so `X_Original_URL` is
            // `X-Original-URL` to them. No allocation unless the header is to go.
            let reserved = name
                .get(..RESERVED_PREFIX.len())
                .is_some_and(|p| same_header(p, RESERVED_PREFIX))
                && !name.eq_ignore_ascii_case(WOULD_DENY_HEADER);
            let protected = OVERRIDE_HEADERS.iter().any(|h| same_header(name, h))
                || self.names.all().into_iter().any(|h| same_header(name, h));
            if (reserved || protected) && !remove.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                remove.push(Rc::from(name.to_ascii_lowercase()));
            }
        }

        // A request that looks like a CORS preflight gets no exemption: anyone can send one,
        // and Envoy's CORS filter forwards those of origins it does not allow.
        //
        // The request line first: a method or path that upstreams read differently from the
        // rules is refused before any rule is consulted.
        //
        // A method outside the known list matches no rule that lists methods, so it would reach
        // the catch-all past a method-scoped guard (review finding M2): refused unless the
        // operator named it in `extra_methods`.
        let accepted = method_is_known(req.method)
            || (method_is_canonical(req.method)
                && self.policy.extra_methods.iter().any(|m| m == req.method));
        if !accepted {
            return self.refuse(req, Reject::MethodInvalid, None, remove);
        }
        let path = RequestPath::parse(req.path, self.policy.path_parameters);
        if let Some(ambiguity) = path.as_ref().and_then(RequestPath::ambiguity) {
            return self.refuse(req, Reject::PathAmbiguous(ambiguity), None, remove);
        }
        // A path no rule can match (`*`) needs a caller, like any unmatched request.
        let requirement = path
            .as_ref()
            .and_then(|p| self.policy.rules.find_path(req.method, req.authority, p));
        if requirement.as_deref() == Some(&Requirement::Public) {
            // Credentials nobody verified do not go on either: an upstream may trust a token
            // because it came through the gateway.
            let removal = self.strip(req);
            remove.extend(shared_names(&removal));
            return self.pass(
                None,
                remove,
                removal,
                Decision::allow().with("rule", "public"),
            );
        }

        let caller = match self.authenticate(req, now, store, may_fetch, tally) {
            Ok(c) => c,
            Err(Stop::Fetch { provider, fetch }) => return Verdict::FetchKeys { provider, fetch },
            Err(Stop::Refused(reject)) => return self.refuse(req, reject, None, remove),
        };
        let allowed = match requirement.as_deref() {
            None => match self.policy.unmatched {
                Unmatched::Allow => Ok(()),
                Unmatched::Deny => Err(Reject::NoMatchingRule),
            },
            Some(Requirement::Public) => Ok(()),
            Some(Requirement::Permissions { any_of, all_of }) => {
                let granted = self
                    .policy
                    .roles
                    .permissions(&caller.identity.roles)
                    .chain(caller.permissions.iter().map(String::as_str));
                if satisfies(granted, any_of, all_of) {
                    Ok(())
                } else {
                    Err(Reject::Forbidden)
                }
            }
        };
        match allowed {
            Ok(()) => {
                let mut decision = Decision::allow();
                decision = describe(decision, &caller.identity);
                remove.extend(shared_names(&caller.removal));
                self.pass(Some(caller.identity), remove, caller.removal, decision)
            }
            Err(reject) => self.refuse(req, reject, Some(caller), remove),
        }
    }

    fn pass(
        &self,
        identity: Option<Rc<Identity>>,
        remove_headers: Vec<Rc<str>>,
        removal: Removal,
        decision: Decision,
    ) -> Verdict {
        let h = &self.names;
        let mut set_headers: Vec<(Rc<str>, String)> = removal
            .set_headers
            .into_iter()
            .map(|(n, v)| (Rc::from(n), v))
            .collect();
        if let Some(id) = &identity {
            set_headers.push((h.subject.clone(), id.subject.clone()));
            set_headers.push((
                h.method.clone(),
                match id.method {
                    AuthMethod::Jwt => "jwt",
                    AuthMethod::ApiKey => "api_key",
                }
                .into(),
            ));
            if !id.roles.is_empty() {
                set_headers.push((h.roles.clone(), id.roles.join(",")));
            }
            if let Some(t) = &id.tenant {
                set_headers.push((h.tenant.clone(), t.clone()));
            }
            if let Some(k) = &id.key_id {
                set_headers.push((h.key_id.clone(), k.clone()));
            }
        }
        Verdict::Pass {
            identity,
            remove_headers,
            set_headers,
            new_path: removal.new_path,
            decision,
        }
    }

    /// Denies, or in shadow mode lets through with the would-deny signal.
    fn refuse(
        &self,
        req: &Request<'_>,
        reject: Reject,
        caller: Option<Caller>,
        mut remove: Vec<Rc<str>>,
    ) -> Verdict {
        let mut decision = Decision::deny(reject.status(), reject.code());
        decision.security_event = matches!(
            reject,
            Reject::Revoked
                | Reject::AlgorithmNotAllowed
                | Reject::CritUnsupported
                | Reject::SignatureInvalid
        );
        if let Some(c) = &caller {
            decision = describe(decision, &c.identity);
        }
        if self.policy.mode == Mode::Shadow {
            decision.outcome = DecisionOutcome::ShadowDeny;
            let earlier = header(req.headers, WOULD_DENY_HEADER);
            let value = append_would_deny(earlier, INSTANCE, reject.code());
            let (identity, removal) = match caller {
                Some(c) => (Some(c.identity), c.removal),
                None => (None, self.strip(req)),
            };
            remove.extend(shared_names(&removal));
            let mut verdict = self.pass(identity, remove, removal, decision);
            if let Verdict::Pass { set_headers, .. } = &mut verdict {
                set_headers.push((Rc::from(WOULD_DENY_HEADER), value));
            }
            return verdict;
        }
        Verdict::Deny {
            status: reject.status(),
            reason: reject.code(),
            detail: reject.detail(),
            // One scheme for every challenge: RFC 6750's, which clients know.
            www_authenticate: reject.www_authenticate(&self.policy.realm, "Bearer"),
            decision,
        }
    }

    /// Takes out every copy of every API-key source, and of every token source unless
    /// `remove_token` is off, whichever credential (if any) was verified: an upstream must not
    /// read a credential the gateway did not check as if it had.
    fn strip(&self, req: &Request<'_>) -> Removal {
        credentials::removal(&self.strip_sources, req.headers, req.path)
    }

    fn authenticate<S: SharedData>(
        &mut self,
        req: &Request<'_>,
        now: u64,
        store: &S,
        may_fetch: bool,
        tally: &mut Tally,
    ) -> Result<Caller, Stop> {
        let ambiguous = |_| Stop::Refused(Reject::CredentialsAmbiguous);
        let token = credentials::find(&self.policy.token_sources, req.headers, req.path)
            .map_err(ambiguous)?;
        let api_key = credentials::find(&self.policy.api_key_sources, req.headers, req.path)
            .map_err(ambiguous)?;
        if let Some(found) = token {
            let removal = self.strip(req);
            let token = found.value;
            let (identity, scopes) = self.verify_token(token, now, store, may_fetch, tally)?;
            return Ok(Caller {
                identity,
                permissions: scopes,
                removal,
            });
        }
        if let Some(found) = api_key {
            let key = apikey::authenticate(
                &self.policy.api_keys,
                &self.policy.pepper,
                found.value.as_bytes(),
                now,
            )
            .map_err(Stop::Refused)?;
            let identity = Rc::new(Identity {
                subject: key.owner.clone(),
                method: AuthMethod::ApiKey,
                roles: key.roles.clone(),
                tenant: key.tenant.clone(),
                key_id: Some(key.id.clone()),
                issuer: None,
            });
            let removal = self.strip(req);
            return Ok(Caller {
                identity,
                permissions: key.permissions.clone(),
                removal,
            });
        }
        Err(Reject::CredentialsMissing.into())
    }

    fn verify_token<S: SharedData>(
        &mut self,
        token: &str,
        now: u64,
        store: &S,
        may_fetch: bool,
        tally: &mut Tally,
    ) -> Result<(Rc<Identity>, Vec<String>), Stop> {
        if token.len() > self.policy.max_token_bytes {
            return Err(Reject::TokenTooLarge.into());
        }
        let table = &self.policy.revocation;
        let generation = table.generation(store);
        if let Some(hit) = self.cache.get(token, now) {
            tally.cache_hit = true;
            if hit.generation != generation {
                let v = &hit.verified;
                let fail_closed = self
                    .policy
                    .fail_closed_when_full
                    .get(v.provider)
                    .copied()
                    .unwrap_or(true);
                if fail_closed && table.is_full(store) {
                    return Err(Reject::RevocationTableFull.into());
                }
                if table.is_revoked(
                    store,
                    v.jti.as_deref(),
                    &v.subject,
                    v.kid.as_deref(),
                    v.issued_at,
                    now,
                ) {
                    self.cache.remove(token);
                    return Err(Reject::Revoked.into());
                }
                hit.generation = generation;
            }
            return Ok((Rc::clone(&hit.identity), hit.verified.scopes.clone()));
        }
        tally.verified = true;
        let remote: Vec<Option<&[crate::keys::Key]>> = self
            .remote
            .iter()
            .map(|r| r.as_ref().and_then(|r| r.keys.as_deref()))
            .collect();
        let outcome = jwt::verify(
            token,
            &self.policy.providers,
            &remote,
            now,
            self.policy.max_token_bytes,
        );
        let verified = match outcome {
            Outcome::Valid(v) => v,
            Outcome::Invalid(r) => return Err(r.into()),
            Outcome::UnknownKid { provider } => {
                let fetch = match self.remote.get_mut(provider) {
                    Some(Some(state)) if may_fetch => state.unknown_kid(now),
                    _ => None,
                };
                return Err(match fetch {
                    Some(fetch) => Stop::Fetch { provider, fetch },
                    None => Reject::KeyUnknown.into(),
                });
            }
        };
        check_header_safe(&verified)?;
        let fail_closed = self
            .policy
            .fail_closed_when_full
            .get(verified.provider)
            .copied()
            .unwrap_or(true);
        if fail_closed && table.is_full(store) {
            return Err(Reject::RevocationTableFull.into());
        }
        if table.is_revoked(
            store,
            verified.jti.as_deref(),
            &verified.subject,
            verified.kid.as_deref(),
            verified.issued_at,
            now,
        ) {
            return Err(Reject::Revoked.into());
        }
        let leeway = self
            .policy
            .providers
            .get(verified.provider)
            .map_or(0, |p| p.leeway_secs);
        // Cached no longer than the token is valid, and never beyond an hour without re-verifying.
        let until = verified
            .expires_at
            .map_or(now + 300, |exp| exp.saturating_add(leeway))
            .min(now + 3600);
        let identity = Rc::new(Identity {
            subject: verified.subject.clone(),
            method: AuthMethod::Jwt,
            roles: verified.roles.clone(),
            tenant: verified.tenant.clone(),
            key_id: None,
            issuer: Some(verified.issuer.clone()),
        });
        let scopes = verified.scopes.clone();
        self.cache.insert(
            token,
            Cached {
                verified,
                identity: Rc::clone(&identity),
                generation,
                valid_until: until,
            },
        );
        Ok((identity, scopes))
    }
}

/// Claims become header values: refuse control characters (header injection) and commas in
/// roles (they separate the list).
fn check_header_safe(v: &Verified) -> Result<(), Reject> {
    let clean = |s: &str| !s.chars().any(char::is_control);
    if !clean(&v.subject) {
        return Err(Reject::ClaimInvalid("sub".into()));
    }
    if v.roles.iter().any(|r| !clean(r) || r.contains(',')) {
        return Err(Reject::ClaimInvalid("roles".into()));
    }
    if v.tenant.as_deref().is_some_and(|t| !clean(t)) {
        return Err(Reject::ClaimInvalid("tenant".into()));
    }
    Ok(())
}

fn describe(decision: Decision, id: &Identity) -> Decision {
    let d = decision
        .with(
            "method",
            match id.method {
                AuthMethod::Jwt => "jwt",
                AuthMethod::ApiKey => "api_key",
            },
        )
        .with("subject", id.subject.clone());
    match &id.key_id {
        Some(k) => d.with("key_id", k.clone()),
        None => d,
    }
}
