//! Roles → permissions (with inheritance), and rules that say which permissions a route needs.
//! Everything is resolved at configure time: a request only intersects small sets.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use portcullis_common::config::ConfigError;
use portcullis_common::route::{compile_as, Kind, RequestPath, Route, RouteSpec, RouteTable};
use serde::Deserialize;

/// A role as configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Roles whose permissions this role also has.
    #[serde(default)]
    pub inherits: Vec<String>,
}

/// A rule as configured: a route and what it requires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// For a rule that requires permissions: match the path with exact case, for an upstream
    /// that routes by exact case (by default any case matches, so `/ADMIN` cannot dodge it).
    #[serde(default)]
    pub case_sensitive: bool,
    /// No credentials needed.
    #[serde(default)]
    pub public: bool,
    /// At least one of these permissions.
    #[serde(default)]
    pub any_of: Vec<String>,
    /// Every one of these permissions.
    #[serde(default)]
    pub all_of: Vec<String>,
}

/// What a matching rule demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Public,
    /// Authenticated, and holding the permissions (both lists may be empty).
    Permissions {
        any_of: Vec<String>,
        all_of: Vec<String>,
    },
}

/// A permission is `resource:action`; `*` grants everything and `resource:*` every action on
/// one resource. Checked when compiled so a typo cannot silently grant nothing.
fn check_permission(p: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.:/*".contains(c);
    if p.is_empty() || !p.chars().all(ok_char) {
        return Err(format!("invalid permission {p:?}"));
    }
    if p.contains('*') && !(p == "*" || (p.ends_with(":*") && p.matches('*').count() == 1)) {
        return Err(format!(
            "invalid permission {p:?}: `*` only as the whole permission or as `resource:*`"
        ));
    }
    Ok(())
}

/// Whether a granted permission covers a required one.
pub fn grants(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) => required.starts_with(prefix),
        None => false,
    }
}

/// Roles compiled to their full permission sets.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    effective: BTreeMap<String, Vec<String>>,
}

impl Roles {
    pub fn compile(specs: &BTreeMap<String, RoleSpec>) -> Result<Roles, ConfigError> {
        let mut effective = BTreeMap::new();
        for (name, spec) in specs {
            for (i, p) in spec.permissions.iter().enumerate() {
                check_permission(p)
                    .map_err(|e| ConfigError::new(format!("{name}.permissions[{i}]"), e))?;
            }
            for (i, parent) in spec.inherits.iter().enumerate() {
                if !specs.contains_key(parent) {
                    return Err(ConfigError::new(
                        format!("{name}.inherits[{i}]"),
                        format!("unknown role `{parent}`"),
                    ));
                }
            }
        }
        for name in specs.keys() {
            let mut perms = BTreeSet::new();
            let mut path = Vec::new();
            collect(name, specs, &mut perms, &mut path)
                .map_err(|cycle| ConfigError::new(name.clone(), cycle))?;
            effective.insert(name.clone(), perms.into_iter().collect());
        }
        Ok(Roles { effective })
    }

    /// Permissions of the given roles; unknown roles grant nothing.
    pub fn permissions<'a>(&'a self, roles: &'a [String]) -> impl Iterator<Item = &'a str> + Clone {
        roles
            .iter()
            .filter_map(|r| self.effective.get(r))
            .flatten()
            .map(String::as_str)
    }
}

fn collect(
    name: &str,
    specs: &BTreeMap<String, RoleSpec>,
    perms: &mut BTreeSet<String>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if path.iter().any(|p| p == name) {
        path.push(name.to_string());
        return Err(format!("role inheritance cycle: {}", path.join(" -> ")));
    }
    let Some(spec) = specs.get(name) else {
        return Ok(());
    };
    path.push(name.to_string());
    perms.extend(spec.permissions.iter().cloned());
    for parent in &spec.inherits {
        collect(parent, specs, perms, path)?;
    }
    path.pop();
    Ok(())
}

/// Whether `granted` satisfies `requirement`.
pub fn satisfies<'a>(
    granted: impl Iterator<Item = &'a str> + Clone,
    any_of: &[String],
    all_of: &[String],
) -> bool {
    let has = |need: &str| granted.clone().any(|g| grants(g, need));
    (any_of.is_empty() || any_of.iter().any(|n| has(n))) && all_of.iter().all(|n| has(n))
}

/// The ordered rules; the first match decides.
#[derive(Debug, Default)]
pub struct Rules {
    /// Shared, so a request takes its rule without copying the permission lists.
    table: RouteTable<Rc<Requirement>>,
}

impl Rules {
    pub fn compile(specs: &[RuleSpec]) -> Result<Rules, ConfigError> {
        let mut table = RouteTable::new();
        for (i, spec) in specs.iter().enumerate() {
            let at = format!("rules[{i}]");
            // A public rule exempts, so it matches only the path and method exactly as sent
            // (never widened); a rule requiring permissions guards, so it cannot be dodged by
            // case, encoding or `HEAD` (see `portcullis_common::route`).
            let kind = if spec.public {
                Kind::Exempt
            } else {
                Kind::Guard
            };
            if spec.public && spec.case_sensitive {
                return Err(ConfigError::new(
                    format!("{at}.case_sensitive"),
                    "a public rule always matches exact case; `case_sensitive` is for rules that require permissions",
                ));
            }
            let route: Route = compile_as(
                &RouteSpec {
                    path: spec.path.clone(),
                    methods: spec.methods.clone(),
                    host: spec.host.clone(),
                    case_sensitive: spec.case_sensitive,
                },
                kind,
            )
            .map_err(|e| e.within(&at))?;
            for (list, name) in [(&spec.any_of, "any_of"), (&spec.all_of, "all_of")] {
                for (j, p) in list.iter().enumerate() {
                    check_permission(p)
                        .map_err(|e| ConfigError::new(format!("{at}.{name}[{j}]"), e))?;
                }
            }
            let requirement = if spec.public {
                if !spec.any_of.is_empty() || !spec.all_of.is_empty() {
                    return Err(ConfigError::new(
                        format!("{at}.public"),
                        "a public rule cannot also require permissions",
                    ));
                }
                Requirement::Public
            } else {
                Requirement::Permissions {
                    any_of: spec.any_of.clone(),
                    all_of: spec.all_of.clone(),
                }
            };
            table.push(route, Rc::new(requirement));
        }
        Ok(Rules { table })
    }

    /// The requirement of the first rule matching; `path` was read once by the caller.
    pub fn find_path(
        &self,
        method: &str,
        host: &str,
        path: &RequestPath<'_>,
    ) -> Option<Rc<Requirement>> {
        self.table
            .first_match_path(method, host, path)
            .map(|(r, _)| Rc::clone(r))
    }

    /// As [`Rules::find_path`], reading `path` with `;` parameters treated as ambiguous.
    pub fn find(&self, method: &str, host: &str, path: &str) -> Option<Rc<Requirement>> {
        self.table
            .first_match(method, host, path)
            .map(|(r, _)| Rc::clone(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(json: &str) -> Result<Roles, ConfigError> {
        Roles::compile(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn wildcards() {
        assert!(grants("*", "services:read"));
        assert!(grants("services:*", "services:read"));
        assert!(grants("services:read", "services:read"));
        assert!(!grants("services:read", "services:write"));
        assert!(!grants("services:*", "servicesx:read"));
        assert!(!grants("orders:*", "services:read"));
    }

    #[test]
    fn inheritance_is_transitive() {
        let r = roles(
            r#"{"viewer":{"permissions":["products:read"]},
                "editor":{"permissions":["products:write"],"inherits":["viewer"]},
                "admin":{"permissions":["admin:*"],"inherits":["editor"]}}"#,
        )
        .unwrap();
        let who = ["admin".to_string()];
        let admin: Vec<&str> = r.permissions(&who).collect();
        assert_eq!(admin, vec!["admin:*", "products:read", "products:write"]);
        let who = ["root".to_string()];
        let unknown: Vec<&str> = r.permissions(&who).collect();
        assert!(unknown.is_empty());
    }

    #[test]
    fn cycles_and_unknown_parents_are_config_errors() {
        let e = roles(r#"{"a":{"inherits":["b"]},"b":{"inherits":["a"]}}"#).unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
        let e = roles(r#"{"a":{"inherits":["ghost"]}}"#).unwrap_err();
        assert_eq!(e.field, "a.inherits[0]");
        let e = roles(r#"{"a":{"permissions":["svc:r*d"]}}"#).unwrap_err();
        assert_eq!(e.field, "a.permissions[0]");
    }

    #[test]
    fn any_of_and_all_of() {
        let g = ["a:read", "b:*"];
        let it = || g.iter().copied();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(satisfies(it(), &[], &[]));
        assert!(satisfies(it(), &s(&["x:y", "a:read"]), &[]));
        assert!(!satisfies(it(), &s(&["x:y"]), &[]));
        assert!(satisfies(it(), &[], &s(&["a:read", "b:write"])));
        assert!(!satisfies(it(), &[], &s(&["a:read", "c:write"])));
        assert!(!satisfies(it(), &s(&["a:read"]), &s(&["c:write"])));
    }

    fn rules(json: &str) -> Result<Rules, ConfigError> {
        let specs: Vec<RuleSpec> = serde_json::from_str(json).unwrap();
        Rules::compile(&specs)
    }

    #[test]
    fn rule_shapes_first_match_wins() {
        let r = rules(
            r#"[{"path":"/healthz","public":true},
                {"path":"/api/products/**","methods":["GET","HEAD"],"public":true},
                {"path":"/admin/**","any_of":["admin:*"]},
                {"path":"/tenants/{tenant}/items/*","methods":["DELETE"],"all_of":["items:delete","items:read"]},
                {"path":"/internal/**","host":"*.internal.example","any_of":["internal:read"]},
                {"path":"/**"}]"#,
        )
        .unwrap();
        let perms = |a: &[&str], b: &[&str]| Requirement::Permissions {
            any_of: a.iter().map(|s| s.to_string()).collect(),
            all_of: b.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            r.find("GET", "h", "/healthz").as_deref(),
            Some(&Requirement::Public)
        );
        assert_eq!(
            r.find("GET", "h", "/api/products/1").as_deref(),
            Some(&Requirement::Public)
        );
        assert_eq!(
            r.find("GET", "h", "/api/products").as_deref(),
            Some(&Requirement::Public)
        );
        assert_eq!(
            r.find("POST", "h", "/api/products").as_deref(),
            Some(&perms(&[], &[]))
        );
        assert_eq!(
            r.find("GET", "h", "/admin").as_deref(),
            Some(&perms(&["admin:*"], &[]))
        );
        assert_eq!(
            r.find("DELETE", "h", "/tenants/acme/items/7").as_deref(),
            Some(&perms(&[], &["items:delete", "items:read"]))
        );
        assert_eq!(
            r.find("GET", "h", "/tenants/acme/items/7").as_deref(),
            Some(&perms(&[], &[]))
        );
        assert_eq!(
            r.find("GET", "a.internal.example", "/internal/x")
                .as_deref(),
            Some(&perms(&["internal:read"], &[]))
        );
        assert_eq!(
            r.find("GET", "public.example", "/internal/x").as_deref(),
            Some(&perms(&[], &[]))
        );
    }

    #[test]
    fn no_rule_means_no_match() {
        let r = rules(r#"[{"path":"/a","public":true}]"#).unwrap();
        assert_eq!(r.find("GET", "h", "/b").as_deref(), None);
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = rules(r#"[{"path":"/a"},{"path":"no-slash"}]"#).unwrap_err();
        assert!(e.field.starts_with("rules[1]"), "{e}");
        let e = rules(r#"[{"path":"/a","any_of":["bad perm"]}]"#).unwrap_err();
        assert_eq!(e.field, "rules[0].any_of[0]");
        let e = rules(r#"[{"path":"/a","public":true,"all_of":["x:y"]}]"#).unwrap_err();
        assert_eq!(e.field, "rules[0].public");
        let e = rules(r#"[{"path":"/a","methods":["GTE"]}]"#).unwrap_err();
        assert!(e.field.starts_with("rules[0]"), "{e}");
    }
}
