//! PHP code injection. To run, injected PHP must be a code block (`<?php`, `<?=`), a call of a
//! function that executes or evaluates (with an argument that is code, not prose: `system('id')`,
//! not "operating system(s)"), a read of request data to execute (`$_GET[…]`), or a serialised
//! object for `unserialize` (`O:8:"stdClass":1:{…}`). Stream wrappers (`php://`, `phar://`) are the
//! traversal detector's.

use super::{find_all, is_word, push, Category, Rule, CRITICAL};

pub const OPEN_TAG: Rule = Rule::new("php-open-tag", Category::Php, CRITICAL, 1);
pub const FUNCTION_CALL: Rule = Rule::new("php-function-call", Category::Php, CRITICAL, 1);
pub const SUPERGLOBAL: Rule = Rule::new("php-superglobal", Category::Php, CRITICAL, 1);
pub const SERIALIZED: Rule = Rule::new("php-serialized-object", Category::Php, CRITICAL, 1);

/// Functions that execute commands or code, or write/read files for it.
const FUNCTIONS: [&str; 36] = [
    "system",
    "exec",
    "shell_exec",
    "passthru",
    "popen",
    "proc_open",
    "pcntl_exec",
    "assert",
    "create_function",
    "call_user_func",
    "call_user_func_array",
    "preg_replace",
    "base64_decode",
    "gzinflate",
    "gzuncompress",
    "str_rot13",
    "file_put_contents",
    "file_get_contents",
    "fwrite",
    "fopen",
    "readfile",
    "include",
    "include_once",
    "require",
    "require_once",
    "phpinfo",
    "unserialize",
    "highlight_file",
    "show_source",
    "move_uploaded_file",
    "array_map",
    "usort",
    "ob_start",
    "posix_getpwuid",
    "parse_str",
    "extract",
];

/// After `name(`: is the argument code? A quote, a variable, a backtick, `)`, or another call.
fn code_argument(rest: &[u8]) -> bool {
    let mut i = 0;
    while rest.get(i) == Some(&b' ') {
        i += 1;
    }
    match rest.get(i) {
        Some(b'\'' | b'"' | b'$' | b'`' | b')') => true,
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
            let mut j = i;
            while rest.get(j).is_some_and(|c| is_word(*c)) {
                j += 1;
            }
            rest.get(j) == Some(&b'(') && rest.get(j..).is_some_and(|r| r.len() > 1)
        }
        _ => false,
    }
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    if s.contains("<?php") || s.contains("<?=") {
        push(out, OPEN_TAG);
    }
    let b = s.as_bytes();
    if s.contains('(') {
        for (i, _) in s.match_indices('(') {
            // Back over spaces, then the function name.
            let mut end = i;
            while end > 0 && b.get(end - 1) == Some(&b' ') {
                end -= 1;
            }
            let mut start = end;
            while start > 0 && b.get(start - 1).is_some_and(|c| is_word(*c)) {
                start -= 1;
                if end - start > 24 {
                    break;
                }
            }
            let name = s.get(start..end).unwrap_or_default();
            // `$x->system(` or `obj.exec(` are method calls in other languages; PHP's
            // functions are called bare (or after `@`, which silences errors).
            let before = start.checked_sub(1).and_then(|p| b.get(p));
            if matches!(before, Some(b'.' | b'>' | b':')) {
                continue;
            }
            if FUNCTIONS.contains(&name) && code_argument(b.get(i + 1..).unwrap_or_default()) {
                push(out, FUNCTION_CALL);
                break;
            }
        }
    }
    for g in [
        "$_get",
        "$_post",
        "$_request",
        "$_cookie",
        "$_server",
        "$_files",
        "$_env",
    ] {
        for i in find_all(s, g) {
            if matches!(b.get(i + g.len()), Some(b'[' | b'{' | b')' | b';')) {
                push(out, SUPERGLOBAL);
            }
        }
    }
    // `O:<len>:"<class>":<n>:{` (also `C:` for custom serialisation).
    for i in find_all(s, ":\"") {
        let mut j = i;
        while j > 0 && b.get(j - 1).is_some_and(u8::is_ascii_digit) {
            j -= 1;
        }
        if j == i || j < 2 || b.get(j - 1) != Some(&b':') {
            continue;
        }
        if !matches!(b.get(j - 2), Some(b'o' | b'c')) {
            continue;
        }
        if j >= 3 && b.get(j - 3).is_some_and(|c| is_word(*c)) {
            continue;
        }
        // The class name, then `":<digits>:{`.
        let mut k = i + 2;
        while b.get(k).is_some_and(|c| is_word(*c) || *c == b'\\') {
            k += 1;
        }
        if b.get(k) == Some(&b'"') && b.get(k + 1) == Some(&b':') {
            push(out, SERIALIZED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn code_not_prose() {
        for h in [
            "<?php system($_get['c']); ?>",
            "<?= `id` ?>",
            "1;phpinfo();",
            "passthru(\"ls -la\")",
            "assert(base64_decode('cghwaw5mbygp'))",
            "o:8:\"stdclass\":1:{s:1:\"a\";s:1:\"b\";}",
            "a:1:{i:0;o:4:\"evil\":0:{}}",
            "${@eval($_request[c])}",
            "@system('id')",
        ] {
            assert!(!rule_ids(detect, h).is_empty(), "{h}");
        }
        for ok in [
            "the operating system(s) we support",
            "include (optional) fields",
            "exec(utive) summary",
            "os.system is python; subprocess.run(['ls']) too",
            "$5 price, 10:\"quoted\": ok",
            "extract (the zip) first",
        ] {
            assert!(rule_ids(detect, ok).is_empty(), "{ok}");
        }
    }
}
