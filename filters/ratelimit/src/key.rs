//! What a limit counts by: the parts of a request that make up its key.
//!
//! A part the request does not have (no verified identity, no such header) means the limit does
//! not apply to that request: an anonymous request is not counted in a per-user limit, and is
//! left to the per-IP limits of the client instance, which every request has.

use std::io::Write as _;
use std::net::IpAddr;

use portcullis_common::config::ConfigError;
use portcullis_common::identity::Identity;

/// What the core needs from a request; the adapter fills it in one pass.
#[derive(Debug, Clone, Default)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub authority: &'a str,
    /// Path with query, as Envoy normalised it.
    pub path: &'a str,
    /// The client address as Envoy resolved it (TCP peer or trusted XFF hop), never a header.
    pub client_ip: Option<IpAddr>,
    /// Verified by the auth filter, read from filter state.
    pub identity: Option<&'a Identity>,
    /// The request headers the policy names (lower-case names), nothing else.
    pub headers: &'a [(String, String)],
}

impl RequestView<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path_only(&self) -> &str {
        self.path.split(['?', '#']).next().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    ClientIp,
    Subject,
    /// The identity's roles, sorted and joined: one key per role set.
    Role,
    Tenant,
    KeyId,
    Header(String),
    /// The limit's route pattern if it has one, else the request's method and path.
    Route,
    Method,
}

impl KeyPart {
    pub fn parse(text: &str) -> Result<KeyPart, ConfigError> {
        Ok(match text {
            "client_ip" => KeyPart::ClientIp,
            "subject" => KeyPart::Subject,
            "role" => KeyPart::Role,
            "tenant" => KeyPart::Tenant,
            "key_id" => KeyPart::KeyId,
            "route" => KeyPart::Route,
            "method" => KeyPart::Method,
            _ => match text.strip_prefix("header:") {
                Some(name) if is_header_name(name) => KeyPart::Header(name.to_ascii_lowercase()),
                Some(name) => {
                    return Err(ConfigError::new(
                        "",
                        format!("`{name}` is not a valid header name"),
                    ))
                }
                None => {
                    return Err(ConfigError::new(
                        "",
                        format!(
                            "unknown key part `{text}`; expected client_ip, subject, role, \
                             tenant, key_id, route, method or header:NAME"
                        ),
                    ))
                }
            },
        })
    }

    pub fn needs_identity(&self) -> bool {
        matches!(
            self,
            KeyPart::Subject | KeyPart::Role | KeyPart::Tenant | KeyPart::KeyId
        )
    }
}

/// An HTTP token (RFC 9110 §5.1) that is not a pseudo-header.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The key bytes for `parts`, or `None` if the request lacks one of them. Values are used whole
/// (Envoy caps request headers at 60 KiB): truncating would let clients share a key, refusing
/// long values would let them escape the limit.
pub fn build(
    scope: &str,
    parts: &[KeyPart],
    route_pattern: Option<&str>,
    req: &RequestView<'_>,
) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(scope.as_bytes());
    for part in parts {
        key.push(0x1f);
        let roles_text;
        let value: &str = match part {
            KeyPart::ClientIp => {
                // Written straight into the key: no String per request.
                let ip = req.client_ip?;
                let _ = write!(key, "{ip}");
                continue;
            }
            KeyPart::Subject => &req.identity?.subject,
            KeyPart::Role => {
                let identity = req.identity?;
                if identity.roles.is_empty() {
                    return None;
                }
                let mut roles: Vec<&str> = identity.roles.iter().map(String::as_str).collect();
                roles.sort_unstable();
                roles.dedup();
                roles_text = roles.join(",");
                &roles_text
            }
            KeyPart::Tenant => req.identity?.tenant.as_deref()?,
            KeyPart::KeyId => req.identity?.key_id.as_deref()?,
            KeyPart::Header(name) => req.header(name)?,
            KeyPart::Route => match route_pattern {
                Some(p) => p,
                None => {
                    key.extend_from_slice(req.method.as_bytes());
                    key.push(b' ');
                    req.path_only()
                }
            },
            KeyPart::Method => req.method,
        };
        key.extend_from_slice(value.as_bytes());
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_common::identity::AuthMethod;

    fn alice() -> Identity {
        Identity {
            subject: "alice".into(),
            method: AuthMethod::Jwt,
            roles: vec!["viewer".into(), "admin".into()],
            tenant: Some("acme".into()),
            key_id: None,
            issuer: None,
        }
    }

    #[test]
    fn parts_parse() {
        assert_eq!(KeyPart::parse("client_ip").unwrap(), KeyPart::ClientIp);
        assert_eq!(
            KeyPart::parse("header:X-Api-Tenant").unwrap(),
            KeyPart::Header("x-api-tenant".into())
        );
        let e = KeyPart::parse("ip").unwrap_err();
        assert!(e.message.contains("unknown key part `ip`"), "{e}");
        let e = KeyPart::parse("header:").unwrap_err();
        assert!(e.message.contains("not a valid header name"), "{e}");
        assert!(KeyPart::parse("header:a b").is_err());
        assert!(KeyPart::Subject.needs_identity());
        assert!(!KeyPart::Header("x".into()).needs_identity());
    }

    #[test]
    fn keys_from_each_part() {
        let id = alice();
        let headers = vec![("x-team".to_string(), "blue".to_string())];
        let req = RequestView {
            method: "POST",
            authority: "api.example",
            path: "/login?next=/",
            client_ip: Some("203.0.113.9".parse().unwrap()),
            identity: Some(&id),
            headers: &headers,
        };
        let k = |parts: &[KeyPart], route: Option<&str>| {
            build("L", parts, route, &req).map(|k| String::from_utf8(k).unwrap())
        };
        assert_eq!(k(&[KeyPart::ClientIp], None).unwrap(), "L\x1f203.0.113.9");
        assert_eq!(
            k(&[KeyPart::Subject, KeyPart::Tenant], None).unwrap(),
            "L\x1falice\x1facme"
        );
        assert_eq!(k(&[KeyPart::Role], None).unwrap(), "L\x1fadmin,viewer");
        assert_eq!(
            k(&[KeyPart::Header("x-team".into())], None).unwrap(),
            "L\x1fblue"
        );
        assert_eq!(k(&[KeyPart::Route], None).unwrap(), "L\x1fPOST /login");
        assert_eq!(k(&[KeyPart::Route], Some("/login")).unwrap(), "L\x1f/login");
        assert_eq!(k(&[KeyPart::Method], None).unwrap(), "L\x1fPOST");
        // Absent parts: the limit does not apply.
        assert_eq!(k(&[KeyPart::KeyId], None), None);
        assert_eq!(k(&[KeyPart::Header("x-other".into())], None), None);
        let anonymous = RequestView {
            identity: None,
            ..req.clone()
        };
        assert_eq!(build("L", &[KeyPart::Subject], None, &anonymous), None);
        assert_eq!(
            build("L", &[KeyPart::ClientIp], None, &RequestView::default()),
            None
        );
    }

    #[test]
    fn separators_keep_parts_apart() {
        let h1 = vec![
            ("a".to_string(), "x".to_string()),
            ("b".to_string(), "yz".to_string()),
        ];
        let h2 = vec![
            ("a".to_string(), "xy".to_string()),
            ("b".to_string(), "z".to_string()),
        ];
        let parts = [KeyPart::Header("a".into()), KeyPart::Header("b".into())];
        let r1 = RequestView {
            headers: &h1,
            ..RequestView::default()
        };
        let r2 = RequestView {
            headers: &h2,
            ..RequestView::default()
        };
        assert_ne!(build("L", &parts, None, &r1), build("L", &parts, None, &r2));
    }

    #[test]
    fn long_values_are_neither_refused_nor_truncated() {
        let a = vec![("x".to_string(), format!("{}a", "v".repeat(4096)))];
        let b = vec![("x".to_string(), format!("{}b", "v".repeat(4096)))];
        let view = |h| RequestView {
            headers: h,
            ..RequestView::default()
        };
        let part = [KeyPart::Header("x".into())];
        let ka = build("L", &part, None, &view(&a)).unwrap();
        assert_ne!(Some(ka), build("L", &part, None, &view(&b)));
    }
}
