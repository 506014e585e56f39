//! Demo JWTs for `make token ROLE=...`. DEMO ONLY: HS256 with the secret generated at set-up in
//! `.dev/demo-jwt-secret` (never committed); the demo auth config trusts exactly these claims.

use jwt_simple::prelude::*;

/// Issuer and audience the demo auth configuration expects.
pub const DEMO_ISSUER: &str = "https://demo.portcullis.invalid";
pub const DEMO_AUDIENCE: &str = "portcullis-demo-api";

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoClaims {
    pub roles: Vec<String>,
}

/// Mints an HS256 token for `subject` with `roles`, valid for `ttl_secs` from now.
pub fn mint(
    secret: &[u8],
    subject: &str,
    roles: &[String],
    ttl_secs: u64,
) -> Result<String, String> {
    if secret.len() < 32 {
        return Err("the demo secret must be at least 32 bytes (run `make setup`)".into());
    }
    let claims = Claims::with_custom_claims(
        DemoClaims {
            roles: roles.to_vec(),
        },
        Duration::from_secs(ttl_secs),
    )
    .with_issuer(DEMO_ISSUER)
    .with_audience(DEMO_AUDIENCE)
    .with_subject(subject);
    HS256Key::from_bytes(secret)
        .authenticate(claims)
        .map_err(|e| format!("cannot sign the demo token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_with_the_same_secret_only() {
        let secret = [7u8; 32];
        let token = mint(&secret, "demo-admin", &["admin".into()], 600).unwrap();
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&[DEMO_ISSUER])),
            allowed_audiences: Some(HashSet::from_strings(&[DEMO_AUDIENCE])),
            ..Default::default()
        };
        let claims = HS256Key::from_bytes(&secret)
            .verify_token::<DemoClaims>(&token, Some(options.clone()))
            .unwrap();
        assert_eq!(claims.subject.as_deref(), Some("demo-admin"));
        assert_eq!(claims.custom.roles, vec!["admin".to_string()]);
        let wrong = HS256Key::from_bytes(&[8u8; 32]);
        assert!(wrong
            .verify_token::<DemoClaims>(&token, Some(options))
            .is_err());
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(mint(b"short", "x", &[], 60)
            .unwrap_err()
            .contains("32 bytes"));
    }
}
