//! Server-side template injection: template delimiters around an expression (arithmetic, object
//! traversal, method calls), and the object-model gadgets those payloads reach for.

use super::{add_once, find_all, find_all_in, prefix, Category, NeedleSet, Rule, CRITICAL, ERROR};

pub const EXPRESSION: Rule = Rule::new("ssti-expression", Category::Ssti, CRITICAL, 1);
pub const GADGET: Rule = Rule::new("ssti-object-gadget", Category::Ssti, CRITICAL, 1);
pub const DIRECTIVE: Rule = Rule::new("ssti-directive", Category::Ssti, ERROR, 1);
pub const ENGINE_DIRECTIVE: Rule = Rule::new("ssti-engine-directive", Category::Ssti, CRITICAL, 1);

/// `__init__` alone is not here: Python documentation names it all the time, and the chains that
/// use it go on to `__globals__`, which is.
const GADGETS: NeedleSet = NeedleSet::new(&[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "getruntime()",
    "processbuilder",
    "java.lang.runtime",
    "freemarker.template",
    "objectconstructor",
    "getclass()",
    "__proto__",
]);

/// Whether an expression body looks like code rather than a variable name.
fn looks_like_code(inner: &str) -> bool {
    let t = inner.trim();
    if t.is_empty() {
        return false;
    }
    let arithmetic = t
        .bytes()
        .any(|c| matches!(c, b'*' | b'+' | b'/' | b'%' | b'-'))
        && t.bytes().any(|c| c.is_ascii_digit());
    arithmetic
        || t.contains('(')
        || t.contains('[')
        || t.contains("|attr")
        || t.contains("config")
        || t.contains("self.")
        || t.contains("request.")
        || t.contains("lipsum")
        || t.contains("cycler")
        || t.contains("joiner")
        || t.contains("constructor")
        || t.starts_with("t(")
        || t.contains('\'')
        || t.contains('"')
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &super::Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller.
pub(crate) fn detect_with(s: &str, p: &super::Present, out: &mut Vec<Rule>) {
    let mut found = Vec::new();
    // Every opener and `{%` has one of `{([%`, and the engine directives have `#`: a value with
    // none of them (most) skips these checks. An opener or closer whose bytes are not all in the
    // value cannot be there either: those pairs are not searched for.
    if p.any(b"{([%#") {
        for (open, close) in [
            ("{{", "}}"),
            ("${", "}"),
            ("#{", "}"),
            ("<%=", "%>"),
            ("<%", "%>"),
            ("*{", "}"),
            ("@(", ")"),
            ("[[", "]]"),
        ]
        .into_iter()
        .filter(|(open, close)| p.has_all(open) && p.has_all(close))
        {
            for at in find_all(s, open) {
                let body = s.get(at + open.len()..).unwrap_or_default();
                let body = prefix(body, 256);
                let inner = match body.find(close) {
                    Some(end) => body.get(..end).unwrap_or_default(),
                    None => continue,
                };
                if looks_like_code(inner) {
                    found.push(EXPRESSION);
                    break;
                }
            }
        }
        // A directive needs `{%` and its closing `%}`.
        for at in find_all_in(s, p, "{%") {
            let body = s.get(at + 2..).unwrap_or_default();
            // A directive is short: look at a bounded window, so `{%{%{%…` stays linear.
            let body = prefix(body, 256);
            let head = body.trim_start();
            if [
                "import", "include", "set ", "for ", "if ", "extends", "macro", "raw", "print",
            ]
            .iter()
            .any(|k| head.starts_with(k))
                && body.contains("%}")
            {
                found.push(DIRECTIVE);
                break;
            }
        }
        if p.has(b'#') && (s.contains("<#assign") || s.contains("#set(") || s.contains("<#include"))
        {
            found.push(ENGINE_DIRECTIVE);
        }
    }
    if GADGETS.any_in_present(s, p) {
        found.push(GADGET);
    }
    add_once(out, found);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(s: &str) -> Vec<&'static str> {
        crate::detect::rule_ids(detect, s)
    }

    #[test]
    fn attacks() {
        assert!(rules("{{7*7}}").contains(&"ssti-expression"));
        assert!(rules("${7*7}").contains(&"ssti-expression"));
        assert!(rules("{{ ''.__class__.__mro__[1] }}").contains(&"ssti-object-gadget"));
        assert!(rules("<%= 7 * 7 %>").contains(&"ssti-expression"));
        assert!(
            rules("${T(java.lang.Runtime).getRuntime().exec('id')}").contains(&"ssti-expression")
        );
        assert!(rules("{% import os %}").contains(&"ssti-directive"));
    }

    #[test]
    fn honest_text() {
        for s in [
            "Hello {{name}}",
            "cost: ${price}",
            "use #{id} here",
            "{ \"a\": 1 }",
            "a {b} c",
            "50% {discount}",
        ] {
            assert!(rules(s).is_empty(), "{s}: {:?}", rules(s));
        }
    }
}
