//! Path traversal and local file inclusion: `../` in every spelling (the decoder has already undone
//! percent, overlong and `%u` encodings; here `\` counts as `/`), sensitive Unix and Windows files,
//! and stream wrappers.

use std::borrow::Cow;

use super::{add_once, Category, NeedleSet, Rule, CRITICAL, ERROR, WARNING};

pub const DOT_DOT: Rule = Rule::new("traversal-dot-dot", Category::Traversal, WARNING, 1);
pub const DOT_DOT_REPEATED: Rule =
    Rule::new("traversal-repeated", Category::Traversal, CRITICAL, 1);
pub const LEADING_DOT_DOT: Rule = Rule::new("traversal-leading", Category::Traversal, ERROR, 1);
pub const SENSITIVE_FILE: Rule =
    Rule::new("traversal-sensitive-file", Category::Traversal, CRITICAL, 1);
pub const WRAPPER: Rule = Rule::new("traversal-stream-wrapper", Category::Traversal, CRITICAL, 1);

const SENSITIVE: NeedleSet = NeedleSet::new(&[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/sudoers",
    "etc/crontab",
    "proc/self/",
    "proc/version",
    "proc/1/",
    "windows/win.ini",
    "win.ini",
    "boot.ini",
    "system32/",
    "windows/system.ini",
    "web-inf/web.xml",
    "web-inf/",
    ".htpasswd",
    ".htaccess",
    ".ssh/id_rsa",
    ".ssh/authorized_keys",
    ".bash_history",
    "var/log/",
    ".git/config",
    "c:/windows",
    "c:/boot.ini",
    "/root/",
    "etc/nginx/",
    "etc/apache2/",
    "wp-config.php",
]);

const WRAPPERS: NeedleSet = NeedleSet::new(&[
    "file://",
    "php://",
    "phar://",
    "zip://",
    "expect://",
    "glob://",
    "data://",
    "zlib://",
    "ogg://",
    "jar:file:",
]);

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &super::Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller.
pub(crate) fn detect_with(s: &str, p: &super::Present, out: &mut Vec<Rule>) {
    // The look-alikes (U+FF0E, U+2024 …) are non-ASCII: any byte >= 0x80 keeps the gate open.
    if !p.any(b".:/\\") && !p.non_ascii() {
        return;
    }
    // `\` and the Unicode look-alikes that best-fit mappings turn into `/`, `\` or `.`.
    // All of them but `\` are non-ASCII: plain ASCII without `\` is used as it is, uncopied.
    let norm: Cow<'_, str> = if s.is_ascii() && !s.contains('\\') {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| match c {
                    '\\' | '\u{2215}' | '\u{2216}' | '\u{2044}' | '\u{ff0f}' | '\u{ff3c}'
                    | '\u{29f5}' => '/',
                    '\u{ff0e}' | '\u{2024}' => '.',
                    c => c,
                })
                .collect(),
        )
    };
    let b = norm.as_bytes();
    let mut found = Vec::new();
    let mut count = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b.get(i) == Some(&b'.') && b.get(i + 1) == Some(&b'.') {
            let mut j = i + 2;
            // `....//` and `..;/` survive naive filters and some servers.
            while matches!(b.get(j), Some(b'.' | b';')) {
                j += 1;
            }
            let segment_start =
                i == 0 || matches!(b.get(i - 1), Some(b'/' | b'=' | b'"' | b'\'' | b' '));
            if segment_start && matches!(b.get(j), Some(b'/') | None) {
                count += 1;
                if i == 0 && j < b.len() {
                    found.push(LEADING_DOT_DOT);
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    if count == 1 {
        found.push(DOT_DOT);
    } else if count > 1 {
        found.push(DOT_DOT_REPEATED);
    }
    // The byte set of `norm`: the value's own when `norm` is the value.
    let own;
    let pn = match &norm {
        Cow::Borrowed(_) => p,
        Cow::Owned(n) => {
            own = super::Present::of(n);
            &own
        }
    };
    if SENSITIVE.any_in_present(&norm, pn) {
        found.push(SENSITIVE_FILE);
    }
    if WRAPPERS.any_in_present(&norm, pn) {
        found.push(WRAPPER);
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
        assert!(rules("../../../etc/passwd").contains(&"traversal-repeated"));
        assert!(rules("..\\..\\windows\\win.ini").contains(&"traversal-sensitive-file"));
        assert!(rules("....//....//x").contains(&"traversal-repeated"));
        assert!(rules("php://filter/convert.base64-encode/resource=index")
            .contains(&"traversal-stream-wrapper"));
        assert!(rules("/etc/shadow").contains(&"traversal-sensitive-file"));
        assert!(rules("../secret").contains(&"traversal-leading"));
        assert!(rules("..\u{2216}..\u{2216}secret.txt").contains(&"traversal-repeated"));
    }

    #[test]
    fn honest_text() {
        for s in [
            "Wait... what?",
            "v1.2.3",
            "see docs/guide.md",
            "https://example.com/a/b",
            "c:/users/me/report.docx",
            "1..10",
        ] {
            assert!(rules(s).is_empty(), "{s}: {:?}", rules(s));
        }
    }
}
