//! Why a request was refused: one machine code per cause (the problem+json `reason`), the status
//! it maps to, and the RFC 6750 error code for `WWW-Authenticate`.

use portcullis_common::route::Ambiguity;

/// A refusal. Descriptions name the rule that failed, never the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// The path means different things to different upstreams (`;` parameters, encoded
    /// dot-segments or separators, ...): 400, before any rule is consulted.
    PathAmbiguous(Ambiguity),
    /// The method is not an upper-case token (`delete`): upstreams that fold case would run
    /// what a rule did not see.
    MethodInvalid,
    /// A credential was sent twice (RFC 6750 §3.1 `invalid_request`).
    CredentialsAmbiguous,
    /// No credential on a protected route.
    CredentialsMissing,
    TokenMalformed(&'static str),
    TokenTooLarge,
    /// `none`, an unsupported name, or an algorithm the issuer has no key for.
    AlgorithmNotAllowed,
    CritUnsupported,
    IssuerUnknown,
    KeyUnknown,
    /// Fail closed: the issuer's keys were never loaded.
    KeysUnavailable,
    /// The revocation table refused a revocation (full): this provider fails closed.
    RevocationTableFull,
    SignatureInvalid,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    AudienceMismatch,
    ClaimMissing(String),
    ClaimInvalid(String),
    Revoked,
    ApiKeyInvalid,
    ApiKeyExpired,
    ApiKeyInactive,
    /// Authenticated but lacking the permissions the matching rule requires.
    Forbidden,
    /// Authenticated, but no rule covers the request and the default is to deny.
    NoMatchingRule,
}

impl Reject {
    pub fn code(&self) -> &'static str {
        match self {
            Reject::PathAmbiguous(a) => a.reason(),
            Reject::MethodInvalid => "method_invalid",
            Reject::CredentialsAmbiguous => "credentials_ambiguous",
            Reject::CredentialsMissing => "credentials_missing",
            Reject::TokenMalformed(_) => "token_malformed",
            Reject::TokenTooLarge => "token_too_large",
            Reject::AlgorithmNotAllowed => "token_algorithm_not_allowed",
            Reject::CritUnsupported => "token_crit_unsupported",
            Reject::IssuerUnknown => "token_issuer_unknown",
            Reject::KeyUnknown => "token_key_unknown",
            Reject::KeysUnavailable => "auth_keys_unavailable",
            Reject::RevocationTableFull => "auth_revocation_table_full",
            Reject::SignatureInvalid => "token_signature_invalid",
            Reject::Expired => "token_expired",
            Reject::NotYetValid => "token_not_yet_valid",
            Reject::IssuedInFuture => "token_issued_in_future",
            Reject::LifetimeTooLong => "token_lifetime_too_long",
            Reject::AudienceMismatch => "token_audience_mismatch",
            Reject::ClaimMissing(_) => "token_claim_missing",
            Reject::ClaimInvalid(_) => "token_claim_invalid",
            Reject::Revoked => "token_revoked",
            Reject::ApiKeyInvalid => "api_key_invalid",
            Reject::ApiKeyExpired => "api_key_expired",
            Reject::ApiKeyInactive => "api_key_inactive",
            Reject::Forbidden => "forbidden",
            Reject::NoMatchingRule => "no_matching_rule",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reject::KeysUnavailable | Reject::RevocationTableFull => 503,
            Reject::PathAmbiguous(_) | Reject::MethodInvalid | Reject::CredentialsAmbiguous => 400,
            Reject::Forbidden | Reject::NoMatchingRule => 403,
            _ => 401,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Reject::PathAmbiguous(a) => a.detail().into(),
            Reject::MethodInvalid => {
                "the method is not an accepted upper-case method (see extra_methods)".into()
            }
            Reject::CredentialsAmbiguous => "the request carries more than one credential".into(),
            Reject::CredentialsMissing => "this route requires credentials".into(),
            Reject::TokenMalformed(why) => format!("the token is malformed: {why}"),
            Reject::TokenTooLarge => "the token is larger than allowed".into(),
            Reject::AlgorithmNotAllowed => "the token's algorithm is not accepted".into(),
            Reject::CritUnsupported => "the token names critical header parameters".into(),
            Reject::IssuerUnknown => "the token's issuer is not trusted".into(),
            Reject::KeyUnknown => "no trusted key matches the token".into(),
            Reject::KeysUnavailable => "the issuer's keys are not available yet".into(),
            Reject::RevocationTableFull => {
                "revocations could not all be stored; tokens are refused until they can".into()
            }
            Reject::SignatureInvalid => "the token's signature is invalid".into(),
            Reject::Expired => "the token has expired".into(),
            Reject::NotYetValid => "the token is not valid yet".into(),
            Reject::IssuedInFuture => "the token was issued in the future".into(),
            Reject::LifetimeTooLong => "the token's lifetime exceeds the maximum".into(),
            Reject::AudienceMismatch => "the token is not meant for this audience".into(),
            Reject::ClaimMissing(c) => format!("the token lacks the required claim `{c}`"),
            Reject::ClaimInvalid(c) => format!("the token's claim `{c}` has the wrong type"),
            Reject::Revoked => "the credential has been revoked".into(),
            Reject::ApiKeyInvalid => "the API key is not valid".into(),
            Reject::ApiKeyExpired => "the API key has expired".into(),
            Reject::ApiKeyInactive => "the API key is disabled".into(),
            Reject::Forbidden => "you lack the permission this route requires".into(),
            Reject::NoMatchingRule => "no access rule allows this request".into(),
        }
    }

    /// RFC 6750 §3.1 error code; none when no credential was sent (§3.1: "SHOULD NOT include
    /// an error code"). API-key refusals use the same codes.
    pub fn bearer_error(&self) -> Option<&'static str> {
        match self {
            Reject::CredentialsMissing | Reject::KeysUnavailable | Reject::RevocationTableFull => {
                None
            }
            Reject::Forbidden | Reject::NoMatchingRule => Some("insufficient_scope"),
            Reject::CredentialsAmbiguous => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// `WWW-Authenticate` for this refusal (RFC 6750 §3), or none for a 503.
    pub fn www_authenticate(&self, realm: &str, scheme: &str) -> Option<String> {
        // A bad request line is not about credentials: no challenge.
        if self.status() == 503 || matches!(self, Reject::PathAmbiguous(_) | Reject::MethodInvalid)
        {
            return None;
        }
        let realm = quoted(realm);
        Some(match self.bearer_error() {
            None => format!("{scheme} realm={realm}"),
            Some(error) => format!(
                "{scheme} realm={realm}, error=\"{error}\", error_description={}",
                quoted(&self.detail())
            ),
        })
    }
}

/// An RFC 9110 quoted-string; characters outside it are dropped rather than escaped wrong.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' | '\t' | '!'..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_carry_no_error_code() {
        let r = Reject::CredentialsMissing;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.www_authenticate("portcullis", "Bearer").unwrap(),
            "Bearer realm=\"portcullis\""
        );
    }

    #[test]
    fn invalid_and_forbidden_use_rfc6750_codes() {
        let h = Reject::Expired.www_authenticate("api", "Bearer").unwrap();
        assert_eq!(
            h,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
        assert_eq!(Reject::Forbidden.status(), 403);
        assert!(Reject::Forbidden
            .www_authenticate("api", "Bearer")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
        assert_eq!(Reject::KeysUnavailable.status(), 503);
        assert_eq!(
            Reject::KeysUnavailable.www_authenticate("a", "Bearer"),
            None
        );
    }

    #[test]
    fn bad_requests_are_400_and_only_credentials_get_a_challenge() {
        let p = Reject::PathAmbiguous(Ambiguity::Parameters);
        assert_eq!((p.status(), p.code()), (400, "path_parameters"));
        assert_eq!(p.www_authenticate("a", "Bearer"), None);
        let d = Reject::PathAmbiguous(Ambiguity::DotSegment);
        assert_eq!((d.status(), d.code()), (400, "path_ambiguous"));
        assert!(d.detail().contains("'.'"));
        let m = Reject::MethodInvalid;
        assert_eq!((m.status(), m.code()), (400, "method_invalid"));
        assert_eq!(m.www_authenticate("a", "Bearer"), None);
        let c = Reject::CredentialsAmbiguous;
        assert_eq!((c.status(), c.code()), (400, "credentials_ambiguous"));
        assert!(c
            .www_authenticate("a", "Bearer")
            .unwrap()
            .contains("error=\"invalid_request\""));
    }

    #[test]
    fn quoting_cannot_break_the_header() {
        let r = Reject::ClaimMissing("a\"b\\c\r\nX-Evil: 1é".into());
        let h = r.www_authenticate("re\"alm", "Bearer").unwrap();
        assert!(!h.contains('\r') && !h.contains('\n'), "{h}");
        assert!(h.starts_with("Bearer realm=\"re\\\"alm\""), "{h}");
        assert!(h.contains("a\\\"b\\\\c"), "{h}");
    }
}
