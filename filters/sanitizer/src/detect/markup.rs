//! Markup-level injections that are not XSS: XML external entities (XXE) and server-side
//! includes (SSI). Both are declarations a parser acts on — an entity it fetches, an include it
//! executes — so the rules look for the declaration's grammar (`<!ENTITY name SYSTEM "…">`,
//! `<!--#exec …-->`), never for file names or URLs.

use super::{find_all, is_word, push, skip_ws, Category, Rule, CRITICAL};

pub const EXTERNAL_ENTITY: Rule = Rule::new("xxe-external-entity", Category::Xxe, CRITICAL, 1);
/// Any entity declaration: internal ones expand (billion laughs) and parameter entities build
/// external ones; honest API values do not declare entities.
pub const ENTITY_DECLARATION: Rule =
    Rule::new("xxe-entity-declaration", Category::Xxe, CRITICAL, 1);
pub const EXTERNAL_DTD: Rule = Rule::new("xxe-external-dtd", Category::Xxe, CRITICAL, 1);
pub const XINCLUDE: Rule = Rule::new("xxe-xinclude", Category::Xxe, CRITICAL, 1);
/// A UTF-7/16/32 encoding declaration in text that arrived as UTF-8: the parser would read the
/// bytes differently from every filter in front of it.
pub const ENCODING_SWITCH: Rule = Rule::new("xxe-encoding-switch", Category::Xxe, CRITICAL, 1);
pub const SSI_DIRECTIVE: Rule = Rule::new("ssi-directive", Category::Ssi, CRITICAL, 1);

const SSI_DIRECTIVES: [&str; 10] = [
    "exec", "include", "echo", "config", "set", "printenv", "fsize", "flastmod", "if", "elif",
];

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    if !s.contains('<') {
        return;
    }
    let b = s.as_bytes();
    for i in find_all(s, "<!entity") {
        let mut j = skip_ws(b, i + 8);
        let parameter = b.get(j) == Some(&b'%');
        if parameter {
            j = skip_ws(b, j + 1);
        }
        while b
            .get(j)
            .is_some_and(|c| is_word(*c) || matches!(c, b'-' | b'.' | b':'))
        {
            j += 1;
        }
        let j = skip_ws(b, j);
        let rest = b.get(j..).unwrap_or_default();
        if parameter || rest.starts_with(b"system") || rest.starts_with(b"public") {
            push(out, EXTERNAL_ENTITY);
        } else {
            push(out, ENTITY_DECLARATION);
        }
    }
    for i in find_all(s, "<!doctype") {
        // `<!DOCTYPE x SYSTEM "uri">` / `PUBLIC "id" "uri"`: the parser fetches the DTD. The W3C's
        // own public identifiers (XHTML documents) are left alone.
        let head = super::prefix(s.get(i..).unwrap_or_default(), 200);
        let head = head.split(['[', '>']).next().unwrap_or_default();
        if head.contains(" system") || (head.contains(" public") && !head.contains("-//w3c//")) {
            push(out, EXTERNAL_DTD);
        }
    }
    if s.contains("xinclude") && s.contains(":include") || s.contains("<xi:include") {
        push(out, XINCLUDE);
    }
    for i in find_all(s, "<?xml") {
        let decl = super::prefix(s.get(i..).unwrap_or_default(), 120);
        let decl = decl.split("?>").next().unwrap_or_default();
        if let Some(at) = decl.find("encoding") {
            let v = decl
                .get(at + 8..)
                .unwrap_or_default()
                .trim_start_matches([' ', '=', '"', '\'']);
            if v.starts_with("utf-7") || v.starts_with("utf-16") || v.starts_with("utf-32") {
                push(out, ENCODING_SWITCH);
            }
        }
    }
    for i in find_all(s, "<!--") {
        let j = skip_ws(b, i + 4);
        if b.get(j) != Some(&b'#') {
            continue;
        }
        let rest = s.get(j + 1..).unwrap_or_default();
        let hit = SSI_DIRECTIVES.iter().any(|d| {
            rest.starts_with(d) && !rest.as_bytes().get(d.len()).is_some_and(|c| is_word(*c))
        });
        if hit {
            push(out, SSI_DIRECTIVE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn entities_includes_and_encodings() {
        let hits = [
            "<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/hostname\">]><r>&e;</r>",
            "<!DOCTYPE d [<!ENTITY % p SYSTEM \"http://x/e.dtd\"> %p;]>",
            "<!ENTITY lol \"lol\">",
            "<!DOCTYPE note SYSTEM \"http://evil.example/x.dtd\"><note/>",
            "<r xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"/etc/passwd\"/></r>",
            "<?xml version=\"1.0\" encoding=\"UTF-7\"?><r/>",
            "<!--#exec cmd=\"id\" -->",
            "<!-- #include virtual=\"/etc/passwd\" -->",
        ];
        for h in hits {
            assert!(!rule_ids(detect, h).is_empty(), "{h}");
        }
        for ok in [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><order><id>1</id></order>",
            "<!DOCTYPE html><html></html>",
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">",
            "Put <!-- comments --> in HTML sparingly; #include <stdio.h> in C",
            "<!-- #region --> folding markers",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
