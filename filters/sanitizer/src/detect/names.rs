//! Attacks carried by the names of things — parameter names and JSON keys — rather than by
//! values: prototype pollution (`__proto__`, `constructor.prototype`), session fixation (a
//! session cookie's name set through the query string), and NoSQL operators ([`super::nosql`]).
//! Names are short and chosen by the application, so these checks are exact.

use super::{
    contains, find_all, find_all_in, is_word, nosql, push, ssrf, Category, Present, Rule, CRITICAL,
};

pub const PROTO: Rule = Rule::new("prototype-pollution", Category::Prototype, CRITICAL, 1);
pub const SESSION_ID_PARAM: Rule =
    Rule::new("session-fixation-parameter", Category::Session, CRITICAL, 1);
pub const SET_COOKIE: Rule = Rule::new(
    "session-fixation-set-cookie",
    Category::Session,
    CRITICAL,
    1,
);

/// Session cookie names of the common server frameworks.
/// Generic names (`sid`, `session_id`) are left out: APIs use them honestly in query strings (a
/// payment provider's checkout `session_id`, a site id).
const SESSION_NAMES: [&str; 7] = [
    "jsessionid",
    "phpsessid",
    "asp.net_sessionid",
    "aspsessionid",
    "cfid",
    "cftoken",
    "connect.sid",
];

/// A name path split into its segments: `a[b][c]`, `a.b.c`.
fn segments(lower: &str) -> impl Iterator<Item = &str> {
    lower.split(['[', ']', '.']).filter(|p| !p.is_empty())
}

fn pollutes(lower: &str) -> bool {
    let mut prev = "";
    for seg in segments(lower) {
        let seg = seg.trim_matches(['"', '\'', ' ']);
        if seg == "__proto__" || (prev == "constructor" && seg == "prototype") {
            return true;
        }
        prev = seg;
    }
    false
}

/// Checks a query or form parameter name.
pub fn check_param_name(name: &str, out: &mut Vec<Rule>) {
    check_cookie_name(name, out);
    let lower = name.to_ascii_lowercase();
    let base = lower.trim();
    let session = SESSION_NAMES.iter().any(|s| {
        base == *s || (s.starts_with("asp") && base.starts_with(s) && base.len() <= s.len() + 8)
    });
    if session {
        push(out, SESSION_ID_PARAM);
    }
}

/// Checks a cookie name: operators and pollution paths, as in a parameter name (PHP and `qs`-style
/// parsers build arrays and objects from cookie names too). A session cookie's name is where it
/// belongs here, so the session-fixation check of parameter names does not apply.
pub fn check_cookie_name(name: &str, out: &mut Vec<Rule>) {
    nosql::check_param_name(name, out);
    if pollutes(&name.to_ascii_lowercase()) {
        push(out, PROTO);
    }
}

/// Checks a JSON key, with the key of the object it is in (for `constructor` → `prototype`).
pub fn check_key(parent: Option<&str>, key: &str, out: &mut Vec<Rule>) {
    nosql::check_key(key, out);
    let k = key.trim();
    if k.eq_ignore_ascii_case("__proto__")
        || k.eq_ignore_ascii_case("prototype")
            && parent.is_some_and(|p| p.trim().eq_ignore_ascii_case("constructor"))
        || pollutes(&k.to_ascii_lowercase())
    {
        push(out, PROTO);
    }
}

/// Checks the value of a parameter or JSON key whose name tells what it holds.
pub fn check_named_value(name: &str, lower_value: &str, out: &mut Vec<Rule>) {
    ssrf::check_named(name, lower_value, out);
}

/// Whether [`check_named_value`] has anything to check for this name.
pub fn wants_value(name: &str) -> bool {
    ssrf::wants(name)
}

/// Value checks: a value that is itself a pollution path (`__proto__[x]`, `a.constructor.prototype`)
/// or that sets a cookie from script or markup.
pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller: a search for a word whose
/// bytes are not all in the value is skipped.
pub(crate) fn detect_with(s: &str, p: &Present, out: &mut Vec<Rule>) {
    let b = s.as_bytes();
    for i in find_all_in(s, p, "__proto__") {
        let before = i.checked_sub(1).and_then(|p| b.get(p));
        let after = b.get(i + 9);
        if !before.is_some_and(|c| is_word(*c)) && !after.is_some_and(|c| is_word(*c)) {
            // Prose that mentions it ("what is __proto__?") has a space around it; a path has
            // `[`, `.`, `"` or nothing.
            let path_like = |c: Option<&u8>| {
                c.is_none_or(|c| matches!(c, b'[' | b']' | b'.' | b'"' | b'\'' | b'='))
            };
            if path_like(before) && path_like(after) {
                push(out, PROTO);
            }
        }
    }
    for i in find_all_in(s, p, "constructor") {
        let rest = s.get(i + 11..).unwrap_or_default();
        let rest = rest.trim_start_matches([']', '.', '[', '"', '\'']);
        if rest.starts_with("prototype") && !s.get(i + 11..).is_some_and(|r| r.starts_with(' ')) {
            push(out, PROTO);
        }
    }
    if contains(s, p, "cookie") {
        for i in find_all(s, "document.cookie") {
            let rest = s.get(i + 15..).unwrap_or_default().trim_start();
            if rest.starts_with('=') && !rest.starts_with("==") {
                push(out, SET_COOKIE);
            }
        }
        if s.contains("http-equiv") && s.contains("set-cookie") {
            push(out, SET_COOKIE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn names() {
        for n in [
            "__proto__[isAdmin]",
            "constructor[prototype][admin]",
            "a.constructor.prototype.x",
            "JSESSIONID",
            "PHPSESSID",
            "ASPSESSIONIDQQGQQAQA",
            "user[$ne]",
        ] {
            let mut out = Vec::new();
            check_param_name(n, &mut out);
            assert!(!out.is_empty(), "{n}");
        }
        for n in [
            "page",
            "constructor",
            "prototype",
            "session",
            "sidebar",
            "proto",
        ] {
            let mut out = Vec::new();
            check_param_name(n, &mut out);
            assert!(out.is_empty(), "{n}");
        }
        let mut out = Vec::new();
        check_key(Some("constructor"), "prototype", &mut out);
        check_key(None, "__proto__", &mut out);
        assert_eq!(out, vec![PROTO]);
        let mut out = Vec::new();
        check_key(Some("shape"), "prototype", &mut out);
        check_key(None, "constructor", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn values() {
        assert_eq!(
            rule_ids(detect, "x.__proto__.shell=/bin/sh"),
            vec!["prototype-pollution"]
        );
        assert_eq!(
            rule_ids(detect, "<script>document.cookie=\"sid=1\"</script>"),
            vec!["session-fixation-set-cookie"]
        );
        for ok in [
            "prototype pattern and constructor functions in javascript",
            "what is __proto__ in js?",
            "if (document.cookie == x) {}",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
