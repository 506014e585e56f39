//! NoSQL operator injection: a query operator (`$ne`, `$where` …) where the application expects
//! data — as a JSON object key, or in a query/form parameter name such as `user[$ne]`.

use super::{Category, Rule, CRITICAL};

pub const OPERATOR: Rule = Rule::new("nosql-operator", Category::Nosql, CRITICAL, 1);

const OPERATORS: [&str; 24] = [
    "$ne",
    "$eq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$where",
    "$exists",
    "$expr",
    "$or",
    "$and",
    "$not",
    "$nor",
    "$elemmatch",
    "$function",
    "$accumulator",
    "$type",
    "$size",
    "$all",
    "$mod",
    "$jsonschema",
];

/// Whether a JSON object key is a query operator.
pub fn is_operator_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    OPERATORS.contains(&k.as_str())
}

/// Checks a JSON key.
pub fn check_key(key: &str, out: &mut Vec<Rule>) {
    if is_operator_key(key) && !out.contains(&OPERATOR) {
        out.push(OPERATOR);
    }
}

/// Checks a parameter name: `user[$ne]`, `a[b][$gt]`, or a bare `$where`.
pub fn check_param_name(name: &str, out: &mut Vec<Rule>) {
    let lower = name.to_ascii_lowercase();
    let hit = lower
        .split(['[', ']', '.'])
        .any(|part| OPERATORS.contains(&part.trim()));
    if hit && !out.contains(&OPERATOR) {
        out.push(OPERATOR);
    }
}

/// `$where` bodies often arrive as a string value: `"this.password.match(/.*/)"` is caught by the
/// key; a value that is itself an operator object serialised into a string is caught here.
pub fn check_value(lower: &str, out: &mut Vec<Rule>) {
    let t = lower.trim_start();
    if t.starts_with('{')
        && OPERATORS.iter().any(|op| t.contains(&format!("\"{op}\"")))
        && !out.contains(&OPERATOR)
    {
        out.push(OPERATOR);
    }
}

pub const OPERATOR_TEXT: Rule = Rule::new("nosql-operator-text", Category::Nosql, CRITICAL, 1);
pub const JS_INJECTION: Rule = Rule::new("nosql-js-injection", Category::Nosql, CRITICAL, 1);

/// Any value: an operator written as the key of object text — `{$ne: 1}`, `{'$gt': ''}`,
/// `{"a": {"$regex": "x"}}` — wherever it sits (a path segment, a query value); and the shapes
/// of JavaScript injected into a `$where` / `mapReduce` string.
pub fn detect(s: &str, out: &mut Vec<Rule>) {
    let b = s.as_bytes();
    if s.contains('$') && s.contains('{') {
        for (at, _) in s.match_indices('$') {
            // Back over an opening quote and spaces: `{` or `,` must open the key.
            let mut j = at;
            while j > 0 && matches!(b.get(j - 1), Some(b' ' | b'"' | b'\'')) {
                j -= 1;
            }
            if !(j > 0 && matches!(b.get(j - 1), Some(b'{' | b','))) {
                continue;
            }
            let mut k = at + 1;
            while b.get(k).is_some_and(u8::is_ascii_alphabetic) {
                k += 1;
            }
            let op = s.get(at..k).unwrap_or_default();
            while matches!(b.get(k), Some(b' ' | b'"' | b'\'')) {
                k += 1;
            }
            if b.get(k) == Some(&b':') && OPERATORS.contains(&op) && !out.contains(&OPERATOR_TEXT) {
                out.push(OPERATOR_TEXT);
            }
        }
    }
    if js_injection(s) && !out.contains(&JS_INJECTION) {
        out.push(JS_INJECTION);
    }
}

/// A JavaScript string break-out into a `$where`: `'; return true; var x='`,
/// `' || this.role == 'admin`, `'||1==1//`, `1; while(true){}`.
fn js_injection(s: &str) -> bool {
    let b = s.as_bytes();
    for (at, _) in s.match_indices("return") {
        let before = s.get(..at).unwrap_or_default().trim_end();
        let after = s.get(at + 6..).unwrap_or_default().trim_start();
        if before.ends_with(';')
            && ["true", "this.", "1", "!", "function", "(", "sleep("]
                .iter()
                .any(|w| after.starts_with(w))
        {
            return true;
        }
    }
    if s.contains("while(true)") || s.contains("while (true)") || s.contains("while(1)") {
        return true;
    }
    for op in ["||", "&&"] {
        for (at, _) in s.match_indices(op) {
            let before = s.get(..at).unwrap_or_default().trim_end();
            let after = s.get(at + 2..).unwrap_or_default();
            let after = super::prefix(after, 48);
            let quoted = before.ends_with(['\'', '"']);
            if quoted && (after.contains("==") || after.contains("!=") || after.contains("this.")) {
                return true;
            }
        }
    }
    // `this.password.match(/…/)`: a regex test on a document field.
    s.contains("this.") && s.contains(".match(") && b.contains(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators() {
        let mut out = Vec::new();
        check_key("$ne", &mut out);
        assert_eq!(out, vec![OPERATOR]);
        let mut out = Vec::new();
        check_param_name("password[$regex]", &mut out);
        assert_eq!(out, vec![OPERATOR]);
        let mut out = Vec::new();
        check_value("{\"$gt\": \"\"}", &mut out);
        assert_eq!(out, vec![OPERATOR]);
        let mut out = Vec::new();
        check_key("price$", &mut out);
        check_key("$currency", &mut out);
        check_param_name("items[0]", &mut out);
        check_value("costs $5 or more", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn operator_text_and_javascript() {
        for h in [
            "{$ne: 1}",
            "{'$gt': ''}",
            "{\"x\": {\"$regex\": \"\"}}",
            "'; return true; var a='",
            "\" || this.role == \"admin",
            "'||1==1//",
            "1; while(true){}",
        ] {
            assert!(!crate::detect::rule_ids(detect, h).is_empty(), "{h}");
        }
        for ok in [
            "use `$gt` and `$lt` operators in mongodb queries",
            "{\"price\": \"$5\"}",
            "fix it; return the item",
            "a == b || c",
        ] {
            assert!(crate::detect::rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
