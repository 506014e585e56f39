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
}
