//! Reading claims by dotted path (`realm_access.roles`) and turning a roles claim into a list.

use serde_json::{Map, Value};

/// Most roles taken from one token; more is refused as malformed rather than processed.
pub const MAX_ROLES: usize = 64;

/// The value at a dotted path inside the custom claims, if present.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Roles from a claim holding a string (space-separated, as OAuth `scope`) or an array of
/// strings. Absent means no roles; any other shape is `None` (a claim we cannot trust).
pub fn roles(claims: &Map<String, Value>, path: &str) -> Option<Vec<String>> {
    let roles: Vec<String> = match lookup(claims, path) {
        None => return Some(Vec::new()),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(item.as_str()?.to_string());
            }
            out
        }
        Some(_) => return None,
    };
    (roles.len() <= MAX_ROLES).then_some(roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_paths() {
        let c = map(json!({"realm_access": {"roles": ["a", "b"]}, "flat": "x"}));
        assert_eq!(lookup(&c, "flat"), Some(&json!("x")));
        assert_eq!(lookup(&c, "realm_access.roles"), Some(&json!(["a", "b"])));
        assert_eq!(lookup(&c, "realm_access.nope"), None);
        assert_eq!(lookup(&c, "flat.deeper"), None);
        assert_eq!(lookup(&c, ""), None);
    }

    #[test]
    fn roles_from_string_array_or_absent() {
        let c = map(json!({"r": ["admin", "viewer"], "s": "read  write", "n": 3, "m": [1]}));
        assert_eq!(roles(&c, "r").unwrap(), vec!["admin", "viewer"]);
        assert_eq!(roles(&c, "s").unwrap(), vec!["read", "write"]);
        assert_eq!(roles(&c, "absent").unwrap(), Vec::<String>::new());
        assert_eq!(roles(&c, "n"), None);
        assert_eq!(roles(&c, "m"), None);
        let many: Vec<String> = (0..=MAX_ROLES).map(|i| format!("r{i}")).collect();
        assert_eq!(roles(&map(json!({ "r": many })), "r"), None);
    }
}
