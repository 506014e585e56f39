//! The verified identity the auth filter hands to the rest of the chain.
//!
//! It travels in Envoy filter state (proxy-wasm `set_property`), which a client cannot write:
//! later filters (rate limit keyed on the user, the cache's per-user keys, audit) read it from
//! there, never from a request header.

use serde::{Deserialize, Serialize};

/// Filter-state key under which auth publishes the [`Identity`] as JSON.
pub const IDENTITY_PROPERTY: &str = "portcullis.identity";

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Jwt,
    ApiKey,
}

/// Who the caller is, as verified by the auth filter. Never holds a credential: for an API key
/// only its id, for a JWT only claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub subject: String,
    pub method: AuthMethod,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Id of the API key used (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Token issuer, for JWTs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl Identity {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `None` for anything that is not an identity we wrote (absent, truncated, other JSON).
    pub fn from_json(bytes: &[u8]) -> Option<Identity> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            subject: "alice".into(),
            method: AuthMethod::Jwt,
            roles: vec!["admin".into(), "viewer".into()],
            tenant: Some("acme".into()),
            key_id: None,
            issuer: Some("https://issuer.example".into()),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let json = alice().to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"subject":"alice","method":"jwt","roles":["admin","viewer"],"tenant":"acme","issuer":"https://issuer.example"}"#
        );
        assert_eq!(Identity::from_json(&json), Some(alice()));
    }

    #[test]
    fn api_key_identity_carries_the_key_id_only() {
        let id = Identity {
            subject: "billing-service".into(),
            method: AuthMethod::ApiKey,
            roles: vec![],
            tenant: None,
            key_id: Some("key-2024-01".into()),
            issuer: None,
        };
        let json = String::from_utf8(id.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"subject":"billing-service","method":"api_key","key_id":"key-2024-01"}"#
        );
    }

    #[test]
    fn garbage_is_not_an_identity() {
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            br#"{"subject":"a","method":"magic"}"#,
        ] {
            assert_eq!(Identity::from_json(bad), None, "{bad:?}");
        }
        let extra = br#"{"subject":"a","method":"jwt","admin":true}"#;
        assert_eq!(
            Identity::from_json(extra),
            None,
            "unknown fields are refused"
        );
    }
}
