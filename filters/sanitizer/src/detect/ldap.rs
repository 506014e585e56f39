//! LDAP filter injection (RFC 4515 filter grammar). A value pasted into `(uid=<value>)` must close
//! the current item with `)` and open a new one: `)(attr=…`, `)(|(…`, `)(&)`; or it arrives as a
//! whole filter `(|(attr=*)…)`. The rules look for that grammar: a closing parenthesis directly
//! followed by an opening one that starts a filter item (an attribute with `=`, `~=`, `>=`, `<=`,
//! or an `&` / `|` / `!` operator). Prose "(see above)(p. 2)" has no filter item.

use super::{find_all, Category, Rule, CRITICAL};

pub const FILTER_BREAKOUT: Rule = Rule::new("ldap-filter-breakout", Category::Ldap, CRITICAL, 1);
pub const FILTER_COMPOSITE: Rule = Rule::new("ldap-filter-composite", Category::Ldap, CRITICAL, 1);

/// From `i` (just after a `(`): does a filter item start here? Skips further `(` and the
/// operators, then wants an attribute description followed by a filter type, or `(&)` / `(|)`.
fn filter_item(b: &[u8], mut i: usize) -> bool {
    let mut ops = 0;
    // Bounded: `(|(|(|…` must not make each occurrence scan to the end (quadratic).
    let limit = i + 16;
    while let Some(c) = b.get(i).filter(|_| i < limit) {
        match c {
            b'(' | b' ' => i += 1,
            b'&' | b'|' | b'!' => {
                ops += 1;
                i += 1;
            }
            _ => break,
        }
    }
    if ops > 0 && b.get(i) == Some(&b')') {
        return true; // `(&)` absolute true, `(|)` absolute false
    }
    let start = i;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b';' | b'_'))
    {
        i += 1;
    }
    if i == start || i - start > 64 {
        return false;
    }
    let first = b.get(start).copied().unwrap_or(0);
    if !first.is_ascii_alphabetic() {
        return false;
    }
    matches!(b.get(i), Some(b'='))
        || (matches!(b.get(i), Some(b'~' | b'>' | b'<')) && b.get(i + 1) == Some(&b'='))
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    if !s.contains('(') || !s.contains('=') && !s.contains("(&)") && !s.contains("(|)") {
        return;
    }
    let b = s.as_bytes();
    for i in find_all(s, ")(") {
        if filter_item(b, i + 2) {
            if !out.contains(&FILTER_BREAKOUT) {
                out.push(FILTER_BREAKOUT);
            }
            break;
        }
    }
    // A whole composite filter: `(|(`, `(&(`, `(!(` followed by an item.
    for op in ["(|", "(&", "(!"] {
        for i in find_all(s, op) {
            let j = i + 2;
            if b.get(j) == Some(&b'(') && filter_item(b, j + 1) && !out.contains(&FILTER_COMPOSITE)
            {
                out.push(FILTER_COMPOSITE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn filter_grammar() {
        for h in [
            "*)(uid=*))(|(uid=*",
            "admin)(&)",
            "*)(|(objectclass=*)",
            "jdoe)(!(cn=*))",
            "(&(uid=admin)(|(uid=*)))",
            "x)(mail>=a",
        ] {
            assert!(!rule_ids(detect, h).is_empty(), "{h}");
        }
        for ok in [
            "(see above)(page 2)",
            "We use LDAP (cn=users, dc=example, dc=com) for login",
            "f(x)(y) = 3",
            "(a)(1=1)",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
