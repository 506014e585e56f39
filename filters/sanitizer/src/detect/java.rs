//! Java-side code injection: expression languages (JSP/JSF EL, Struts OGNL, Spring SpEL) and
//! serialised Java objects. An expression injection must reach a class or an object that runs
//! code — a static-member reference (`@java.lang.Runtime@`, `T(java.lang.Runtime)`), OGNL's
//! context variables (`#_memberAccess`, `#context`), reflection (`getClass().forName`), the
//! implicit EL objects; a deserialisation attack must send the stream's magic (`AC ED 00 05`,
//! `rO0AB` in base64).

use super::{contains, find_all_in, is_word, push, Category, NeedleSet, Present, Rule, CRITICAL};

pub const OGNL: Rule = Rule::new("java-ognl", Category::Java, CRITICAL, 1);
pub const SPEL_TYPE: Rule = Rule::new("java-spel-type", Category::Java, CRITICAL, 1);
pub const REFLECTION: Rule = Rule::new("java-reflection", Category::Java, CRITICAL, 1);
pub const EL_IMPLICIT: Rule = Rule::new("java-el-implicit-object", Category::Java, CRITICAL, 1);
pub const SERIALIZED: Rule = Rule::new("java-serialized-object", Category::Java, CRITICAL, 1);

/// Classes and members that execute code or load classes: no honest request names them.
const GADGETS: NeedleSet = NeedleSet::new(&[
    "java.lang.runtime",
    "java.lang.processbuilder",
    "java.lang.system@",
    "getruntime()",
    ".getclass().forname(",
    "getclass().getclassloader",
    "class.module.classloader",
    "class.classloader",
    "javax.script.scriptengine",
    "java.lang.reflect",
    "new processbuilder(",
    "getdeclaredmethod(",
    "xwork.methodaccessor",
    "#_memberaccess",
    "@ognl",
    "org.apache.commons.collections",
]);

/// EL implicit objects: only meaningful inside `${…}` / `#{…}`.
const EL_OBJECTS: [&str; 10] = [
    "pagecontext",
    "applicationscope",
    "sessionscope",
    "requestscope",
    "pagescope",
    "initparam",
    "facescontext",
    "request.getclass",
    "request.getsession",
    "session.getattribute",
];

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller: each search below is
/// skipped when a byte it needs is not in the value.
pub(crate) fn detect_with(s: &str, p: &Present, out: &mut Vec<Rule>) {
    if GADGETS.any_in_present(s, p) {
        push(out, REFLECTION);
    }
    // The expression languages' shapes below all have one of `%#($`: most values skip them.
    if p.any(b"%#($") {
        // OGNL: `%{#…}`, `%{(#…`, `%{@…`, `(#x=…)`, `#context[`.
        for i in find_all_in(s, p, "%{") {
            let rest = s
                .get(i + 2..)
                .unwrap_or_default()
                .trim_start_matches(['(', ' ']);
            if rest.starts_with('#') || rest.starts_with('@') {
                push(out, OGNL);
            }
        }
        if contains(s, p, "#context[") || contains(s, p, "(#") && contains(s, p, "@java.") {
            push(out, OGNL);
        }
        // SpEL `T(qualified.name)`: `t(` not preceded by a word character, a dotted name, `)`.
        let b = s.as_bytes();
        for i in find_all_in(s, p, "t(") {
            if i > 0 && b.get(i - 1).is_some_and(|c| is_word(*c) || *c == b'.') {
                continue;
            }
            let mut j = i + 2;
            while b.get(j) == Some(&b' ') {
                j += 1;
            }
            let start = j;
            let mut dots = 0;
            while let Some(c) = b.get(j) {
                if *c == b'.' {
                    dots += 1;
                } else if !is_word(*c) {
                    break;
                }
                j += 1;
            }
            if dots >= 1 && j > start && b.get(j) == Some(&b')') {
                push(out, SPEL_TYPE);
            }
        }
        for open in ["${", "#{"] {
            for i in find_all_in(s, p, open) {
                let inner = super::prefix(s.get(i + 2..).unwrap_or_default(), 64);
                let inner = inner.trim_start();
                if EL_OBJECTS.iter().any(|o| inner.starts_with(o)) {
                    push(out, EL_IMPLICIT);
                }
            }
        }
    }
    // The stream magic, raw hex or base64 (`rO0AB` lower-cased), at the start of a token.
    let b = s.as_bytes();
    for magic in ["aced0005", "ro0ab"] {
        for i in find_all_in(s, p, magic) {
            if i == 0 || !b.get(i - 1).is_some_and(u8::is_ascii_alphanumeric) {
                push(out, SERIALIZED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn expression_languages_and_streams() {
        for h in [
            "%{(#rt=@java.lang.runtime@getruntime()).(#rt.exec('id'))}",
            "%{#_memberaccess['allowstaticmethodaccess']=true}",
            "#{t(java.lang.runtime).getruntime().exec('id')}",
            "t(org.springframework.util.streamutils).copy(x)",
            "${pagecontext.request.getsession()}",
            "${applicationscope}",
            "${''.getclass().forname('java.lang.processbuilder')}",
            "ro0abxnyabdqyxzhlnv0awwuuhjpb3jpdhlrdwv1zq==",
            "aced00057372",
            "class.module.classloader.resources.context.parent.pipeline.first.pattern=x",
        ] {
            assert!(!rule_ids(detect, h).is_empty(), "{h}");
        }
        for ok in [
            "t(x) is the temperature at time x",
            "the t(2) test result",
            "#{name} placeholders in ruby",
            "${total} items",
            "pro0ably a typo",
            "at(home.page)",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
