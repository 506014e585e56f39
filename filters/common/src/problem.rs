//! RFC 9457 problem details: the body of every deny a filter sends.

use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Where problem types live; the machine-readable `reason` is appended.
const TYPE_BASE: &str = "https://portcullis.dev/problems/";

/// One problem, borrowed from the caller so that building a deny allocates only the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem<'a> {
    pub status: u16,
    /// Short, human-readable and the same for every occurrence of this `reason`.
    pub title: &'a str,
    /// Human-readable explanation of this occurrence.
    pub detail: &'a str,
    /// Machine code, e.g. `token_expired`; also names the problem type.
    pub reason: &'a str,
    pub request_id: Option<&'a str>,
}

/// The wire form; field order is the order in the JSON.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Problem<'_> {
    /// The JSON body. Built with serde_json so that any text in it (a claim, a header value the
    /// client sent) is escaped and cannot break out of its string.
    pub fn to_json(&self) -> Vec<u8> {
        // RFC 9457 §4.2.1: without a specific type, the type is "about:blank".
        let kind = if self.reason.is_empty() {
            "about:blank".to_string()
        } else {
            format!("{TYPE_BASE}{}", self.reason)
        };
        let body = Body {
            kind: &kind,
            title: self.title,
            status: self.status,
            detail: self.detail,
            reason: self.reason,
            request_id: self.request_id,
        };
        // Serialising a struct of strings and an integer cannot fail; should it ever, a bare
        // status still tells the client what happened rather than sending an empty body.
        serde_json::to_vec(&body)
            .unwrap_or_else(|_| format!("{{\"status\":{}}}", self.status).into_bytes())
    }
}

/// The standard reason phrase for the statuses filters send; "Error" for any other.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
// A failing unwrap is how a test reports failure; the lints guard production code.
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(p: &Problem<'_>) -> Value {
        serde_json::from_slice(&p.to_json()).unwrap()
    }

    fn expired() -> Problem<'static> {
        Problem {
            status: 401,
            title: "Unauthorized",
            detail: "the token expired",
            reason: "token_expired",
            request_id: Some("abc-123"),
        }
    }

    #[test]
    fn content_type() {
        assert_eq!(CONTENT_TYPE, "application/problem+json");
    }

    #[test]
    fn all_fields_in_order() {
        let body = String::from_utf8(expired().to_json()).unwrap();
        assert_eq!(
            body,
            r#"{"type":"https://portcullis.dev/problems/token_expired","title":"Unauthorized","status":401,"detail":"the token expired","reason":"token_expired","request_id":"abc-123"}"#
        );
    }

    #[test]
    fn request_id_only_if_present() {
        let p = Problem {
            request_id: None,
            ..expired()
        };
        let v = parsed(&p);
        assert_eq!(
            v,
            json!({
                "type": "https://portcullis.dev/problems/token_expired",
                "title": "Unauthorized",
                "status": 401,
                "detail": "the token expired",
                "reason": "token_expired",
            })
        );
        assert!(v.get("request_id").is_none());

        // Present but empty is still present: the caller chose to send it.
        let p = Problem {
            request_id: Some(""),
            ..expired()
        };
        assert_eq!(parsed(&p)["request_id"], "");
    }

    #[test]
    fn empty_reason_is_about_blank() {
        let p = Problem {
            reason: "",
            ..expired()
        };
        let v = parsed(&p);
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["reason"], "");
    }

    #[test]
    fn strings_are_escaped() {
        let nasty = "a \"quoted\" \\ back\nnew\tline \u{0}\u{1f} \u{7f} </script> é 日本 🦀";
        let p = Problem {
            status: 400,
            title: nasty,
            detail: nasty,
            reason: "bad\"reason",
            request_id: Some(nasty),
        };
        let bytes = p.to_json();
        let text = std::str::from_utf8(&bytes).unwrap();
        // Control characters never appear raw in the body.
        assert!(!text.bytes().any(|b| b < 0x20), "{text}");
        assert!(text.contains(r#"\"quoted\""#), "{text}");
        assert!(text.contains(r"\u0000"), "{text}");
        assert!(text.contains(r"\n"), "{text}");
        // And everything round-trips exactly.
        let v = parsed(&p);
        assert_eq!(v["title"], nasty);
        assert_eq!(v["detail"], nasty);
        assert_eq!(v["request_id"], nasty);
        assert_eq!(v["reason"], "bad\"reason");
        assert_eq!(v["type"], "https://portcullis.dev/problems/bad\"reason");
        assert_eq!(v["status"], 400);
    }

    #[test]
    fn status_is_a_number() {
        let p = Problem {
            status: 0,
            ..expired()
        };
        assert_eq!(parsed(&p)["status"], 0);
        let p = Problem {
            status: u16::MAX,
            ..expired()
        };
        assert_eq!(parsed(&p)["status"], 65535);
    }

    #[test]
    fn reason_phrases() {
        let known = [
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (415, "Unsupported Media Type"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        ];
        for (status, phrase) in known {
            assert_eq!(reason_phrase(status), phrase, "{status}");
        }
        for status in [0, 200, 399, 402, 418, 451, 501, 599, 999] {
            assert_eq!(reason_phrase(status), "Error", "{status}");
        }
    }
}
