//! JWT verification: parse the compact form defensively, pick the issuer's provider, pick keys
//! bound to the token's algorithm, let jwt-simple check signature and registered claims with the
//! host's clock (`now`), then apply our own rules (required claims, maximum lifetime).

use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use jwt_simple::prelude::{Duration, HashSet, JWTClaims, VerificationOptions};
use jwt_simple::JWTError;
use serde_json::{Map, Value};

use crate::claims::lookup;
use crate::keys::{Alg, Key};
use crate::reject::Reject;

/// At most this many keys are tried for one token (same algorithm, no `kid`): bounds the work an
/// attacker can cause with a token that matches nothing.
pub const MAX_CANDIDATE_KEYS: usize = 4;

/// A trusted issuer and how its tokens are checked.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    /// Any of these in `aud`; empty means `aud` is not checked (the configuration allows that
    /// only with `allow_any_audience: true`).
    pub audiences: Vec<String>,
    /// What keys from a JWKS may verify (inline and remote); HMAC keys carry their own.
    pub algorithms: Vec<Alg>,
    /// A token without `kid` may be tried against keys that have one (opt-in; by default it is
    /// tried only against keys without `kid`, so revoking a key by `kid` cannot be dodged).
    pub kidless_tokens_any_key: bool,
    /// Inline JWKS and HMAC keys; remote keys are passed in separately.
    pub static_keys: Vec<Key>,
    /// Whether keys also come from a remote JWKS (then an unknown `kid` may trigger a refetch).
    pub remote: bool,
    pub leeway_secs: u64,
    pub max_lifetime_secs: Option<u64>,
    /// Claim names or dotted paths that must be present.
    pub required_claims: Vec<String>,
    pub subject_claim: String,
    pub roles_claim: Option<String>,
    /// Prepended to every role from this issuer, so a role named alike by another issuer is
    /// another role (`partner:admin` is not `admin`).
    pub role_prefix: Option<String>,
    /// Granted verbatim as permissions (OAuth `scope`/`scp`).
    pub scopes_claim: Option<String>,
    pub tenant_claim: Option<String>,
}

/// A token whose signature and claims checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub provider: usize,
    pub issuer: String,
    pub subject: String,
    pub roles: Vec<String>,
    /// From `scopes_claim`: permissions as the issuer named them.
    pub scopes: Vec<String>,
    pub tenant: Option<String>,
    pub jti: Option<String>,
    /// The `kid` of the key that verified the signature (never the header's: a header may leave
    /// it out, and revocation by `kid` must hold regardless).
    pub kid: Option<String>,
    pub issued_at: Option<u64>,
    pub expires_at: Option<u64>,
}

/// What verification concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Valid(Verified),
    Invalid(Reject),
    /// The token names a `kid` the provider's remote JWKS does not (yet) hold.
    UnknownKid {
        provider: usize,
    },
}

/// The unverified header fields we act on.
#[derive(Debug)]
struct Header {
    alg: Alg,
    kid: Option<String>,
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, Reject> {
    Base64UrlSafeNoPadding::decode_to_vec(part, None).map_err(|_| Reject::TokenMalformed(what))
}

fn parse_header(bytes: &[u8]) -> Result<Header, Reject> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| Reject::TokenMalformed("header is not JSON"))?;
    let obj = value
        .as_object()
        .ok_or(Reject::TokenMalformed("header is not a JSON object"))?;
    // RFC 7515 §4.1.11: we implement no extension, so any critical one means refuse.
    if let Some(crit) = obj.get("crit") {
        return match crit {
            Value::Array(list) if !list.is_empty() => Err(Reject::CritUnsupported),
            _ => Err(Reject::TokenMalformed("`crit` must be a non-empty array")),
        };
    }
    let alg = obj
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Reject::TokenMalformed("header has no `alg`"))?;
    // `none`, `None`, `hs256` ... are not names we know; nothing maps them to a key.
    let alg = Alg::from_name(alg).ok_or(Reject::AlgorithmNotAllowed)?;
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
        Some(_) => return Err(Reject::TokenMalformed("`kid` must be a short string")),
    };
    // `jku`, `x5u`, `jwk`, `x5c` are ignored on purpose: keys only ever come from our config.
    Ok(Header { alg, kid })
}

/// The keys of `provider` (static first, then remote) that may verify a token with `header`.
fn candidates<'k>(
    header: &Header,
    any_key: bool,
    static_keys: &'k [Key],
    remote_keys: &'k [Key],
) -> Vec<&'k Key> {
    let mut keys: Vec<&Key> = static_keys
        .iter()
        .chain(remote_keys)
        .filter(|k| k.alg == header.alg)
        .filter(|k| match (&header.kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            // A key without a kid is tried for any token.
            (_, None) => true,
            // A token without a kid only meets keys with one if the provider opted in.
            (None, Some(_)) => any_key,
        })
        .collect();
    // Keys the token's kid names first (a stable sort keeps the configured order otherwise),
    // so a key without kid is only a fallback and the kid checked for revocation is the one
    // the token was signed under whenever that key is present.
    keys.sort_by_key(|k| k.kid.is_none());
    keys.truncate(MAX_CANDIDATE_KEYS);
    keys
}

fn map_error(e: &jwt_simple::Error) -> Reject {
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => Reject::Expired,
        Some(JWTError::TokenNotValidYet) => Reject::NotYetValid,
        Some(JWTError::ClockDrift) => Reject::IssuedInFuture,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
            Reject::IssuerUnknown
        }
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            Reject::AudienceMismatch
        }
        Some(JWTError::TokenTooLong | JWTError::HeaderTooLarge) => Reject::TokenTooLarge,
        Some(JWTError::UnknownCriticalExtension) => Reject::CritUnsupported,
        Some(JWTError::AlgorithmMismatch) => Reject::AlgorithmNotAllowed,
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
            Reject::SignatureInvalid
        }
        Some(JWTError::NotJWT) => Reject::TokenMalformed("`typ` is not JWT"),
        Some(JWTError::TooManyAudiences) => Reject::TokenMalformed("too many audiences"),
        // Base64/JSON errors from inside jwt-simple, wrong signature length, etc.
        _ => Reject::SignatureInvalid,
    }
}

/// Verifies `token` against `providers`; `remote_keys[i]` are provider i's fetched keys (None if
/// never loaded). `now` is Unix seconds from the host clock.
pub fn verify(
    token: &str,
    providers: &[Provider],
    remote_keys: &[Option<&[Key]>],
    now: u64,
    max_bytes: usize,
) -> Outcome {
    match verify_inner(token, providers, remote_keys, now, max_bytes) {
        Ok(outcome) => outcome,
        Err(reject) => Outcome::Invalid(reject),
    }
}

fn verify_inner(
    token: &str,
    providers: &[Provider],
    remote_keys: &[Option<&[Key]>],
    now: u64,
    max_bytes: usize,
) -> Result<Outcome, Reject> {
    if token.len() > max_bytes {
        return Err(Reject::TokenTooLarge);
    }
    if token.is_empty() {
        return Err(Reject::TokenMalformed("empty token"));
    }
    // JWS compact form is ASCII base64url and dots only; this also refuses any unicode early.
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Reject::TokenMalformed("characters outside base64url"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::TokenMalformed("not three dot-separated parts"));
    };
    if s.is_empty() {
        return Err(Reject::TokenMalformed("the signature is empty"));
    }
    let header = parse_header(&decode_part(h, "header is not base64url")?)?;
    let payload = decode_part(p, "payload is not base64url")?;
    let payload: Value = serde_json::from_slice(&payload)
        .map_err(|_| Reject::TokenMalformed("payload is not JSON"))?;
    if !payload.is_object() {
        return Err(Reject::TokenMalformed("payload is not a JSON object"));
    }
    decode_part(s, "signature is not base64url")?;

    // The unverified `iss` only chooses which provider's rules and keys apply; the provider then
    // requires that exact issuer, so a lie here only fails verification.
    let issuer = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(Reject::IssuerUnknown)?;
    let (index, provider) = providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == issuer)
        .ok_or(Reject::IssuerUnknown)?;
    let remote = remote_keys.get(index).copied().flatten();
    let keys = candidates(
        &header,
        provider.kidless_tokens_any_key,
        &provider.static_keys,
        remote.unwrap_or_default(),
    );
    if keys.is_empty() {
        let loaded = remote.is_some() || !provider.static_keys.is_empty();
        if !loaded {
            return Err(Reject::KeysUnavailable);
        }
        let kid_known = provider
            .static_keys
            .iter()
            .chain(remote.unwrap_or_default())
            .any(|k| k.kid.is_some() && k.kid == header.kid);
        if kid_known {
            // The kid exists but is bound to another algorithm: alg confusion attempt.
            return Err(Reject::AlgorithmNotAllowed);
        }
        if provider.remote && header.kid.is_some() {
            return Ok(Outcome::UnknownKid { provider: index });
        }
        let alg_known = provider
            .static_keys
            .iter()
            .chain(remote.unwrap_or_default())
            .any(|k| k.alg == header.alg);
        return Err(if alg_known {
            Reject::KeyUnknown
        } else {
            Reject::AlgorithmNotAllowed
        });
    }

    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([provider.issuer.clone()])),
        allowed_audiences: (!provider.audiences.is_empty())
            .then(|| provider.audiences.iter().cloned().collect()),
        time_tolerance: Some(Duration::from_secs(provider.leeway_secs)),
        artificial_time: Some(Duration::from_secs(now)),
        max_token_length: Some(max_bytes),
        ..VerificationOptions::default()
    };
    let mut last = Reject::SignatureInvalid;
    for key in keys {
        match key.verify(token, options.clone()) {
            Ok(claims) => {
                return finish(index, provider, key, claims, now).map(Outcome::Valid);
            }
            Err(e) => {
                last = map_error(&e);
                // Only a signature failure is worth trying the next key for.
                if last != Reject::SignatureInvalid {
                    break;
                }
            }
        }
    }
    Err(last)
}

fn finish(
    index: usize,
    provider: &Provider,
    key: &Key,
    claims: JWTClaims<Map<String, Value>>,
    now: u64,
) -> Result<Verified, Reject> {
    let issued_at = claims.issued_at.map(|t| t.as_secs());
    let expires_at = claims.expires_at.map(|t| t.as_secs());
    let registered = |name: &str| match name {
        "exp" => expires_at.is_some(),
        "iat" => issued_at.is_some(),
        "nbf" => claims.invalid_before.is_some(),
        "sub" => claims.subject.is_some(),
        "jti" => claims.jwt_id.is_some(),
        "aud" => claims.audiences.is_some(),
        "iss" => claims.issuer.is_some(),
        other => lookup(&claims.custom, other).is_some(),
    };
    for name in &provider.required_claims {
        if !registered(name) {
            return Err(Reject::ClaimMissing(name.clone()));
        }
    }
    if let Some(max) = provider.max_lifetime_secs {
        let exp = expires_at.ok_or_else(|| Reject::ClaimMissing("exp".into()))?;
        // Without `iat`, measure from now: the token must not live longer than `max` from here.
        let start = issued_at.unwrap_or(now);
        if exp.saturating_sub(start) > max {
            return Err(Reject::LifetimeTooLong);
        }
    }
    let subject = if provider.subject_claim == "sub" {
        claims.subject.clone()
    } else {
        match lookup(&claims.custom, &provider.subject_claim) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Reject::ClaimInvalid(provider.subject_claim.clone())),
            None => None,
        }
    }
    .filter(|s| !s.is_empty())
    .ok_or_else(|| Reject::ClaimMissing(provider.subject_claim.clone()))?;
    let mut roles = match &provider.roles_claim {
        Some(path) => crate::claims::roles(&claims.custom, path)
            .ok_or_else(|| Reject::ClaimInvalid(path.clone()))?,
        None => Vec::new(),
    };
    if let Some(prefix) = &provider.role_prefix {
        for role in &mut roles {
            role.insert_str(0, prefix);
        }
    }
    // Scopes are compared verbatim: one holding `*` is dropped, so an issuer's `scope: "*"`
    // cannot become our wildcard permission. A `role_prefix` applies to them as to roles, or a
    // partner issuer could grant our `admin:access` as a scope.
    let mut scopes: Vec<String> = match &provider.scopes_claim {
        Some(path) => crate::claims::roles(&claims.custom, path)
            .ok_or_else(|| Reject::ClaimInvalid(path.clone()))?
            .into_iter()
            .filter(|s| !s.contains('*'))
            .collect(),
        None => Vec::new(),
    };
    if let Some(prefix) = &provider.role_prefix {
        for scope in &mut scopes {
            scope.insert_str(0, prefix);
        }
    }
    let tenant = match &provider.tenant_claim {
        Some(path) => match lookup(&claims.custom, path) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Reject::ClaimInvalid(path.clone())),
            None => None,
        },
        None => None,
    };
    Ok(Verified {
        provider: index,
        issuer: provider.issuer.clone(),
        subject,
        roles,
        scopes,
        tenant,
        jti: claims.jwt_id.clone(),
        kid: key.kid.clone(),
        issued_at,
        expires_at,
    })
}
