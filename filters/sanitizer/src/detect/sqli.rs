//! SQL injection: a small SQL tokenizer and rules over the token stream.
//!
//! An injection has to leave the context its value is pasted into. So the input is tokenized three
//! times: as is (a numeric or raw context), and as if it sat inside a `'…'` or `"…"` literal, in
//! which case its first unescaped quote "breaks out" and what follows is SQL. The rules then look
//! for what an attacker must write after a break-out — a tautology, a comment that cuts the rest of
//! the query, `UNION SELECT`, a stacked statement, a time-delay or file function — rather than for
//! SQL words, which honest text is full of ("select the best from our range").

use super::{add_once, Category, NeedleSet, Rule, CRITICAL, ERROR, WARNING};

pub const UNION: Rule = Rule::new("sqli-union-select", Category::Sqli, CRITICAL, 1);
pub const TAUTOLOGY: Rule = Rule::new("sqli-tautology", Category::Sqli, CRITICAL, 1);
pub const COMMENT_CUT: Rule = Rule::new("sqli-breakout-comment", Category::Sqli, CRITICAL, 1);
pub const STACKED: Rule = Rule::new("sqli-stacked-query", Category::Sqli, CRITICAL, 1);
pub const DANGEROUS_FUNCTION: Rule =
    Rule::new("sqli-dangerous-function", Category::Sqli, CRITICAL, 1);
pub const BREAKOUT_CLAUSE: Rule = Rule::new("sqli-breakout-clause", Category::Sqli, CRITICAL, 1);
pub const BOOLEAN_FUNCTION: Rule = Rule::new("sqli-boolean-function", Category::Sqli, CRITICAL, 1);
pub const SUBQUERY: Rule = Rule::new("sqli-subquery", Category::Sqli, CRITICAL, 1);
pub const STATEMENT: Rule = Rule::new("sqli-statement", Category::Sqli, WARNING, 2);
pub const MYSQL_COMMENT: Rule = Rule::new("sqli-versioned-comment", Category::Sqli, ERROR, 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Str,
    Num,
    Word(&'a str),
    /// `=`, `<`, `>`, `<>`, `!=`, `<=`, `>=`, `<=>`
    Cmp,
    /// `||`, `&&`
    LogicOp,
    Op,
    Comment,
    LParen,
    RParen,
    Comma,
    Semi,
}

/// Maximum tokens examined per context: attacks are short; a long honest text is not worth more.
const MAX_TOKENS: usize = 4096;

fn tokenize(s: &str) -> (Vec<Tok<'_>>, bool) {
    let b = s.as_bytes();
    // Room for a token every other byte up front: growing from empty cost several reallocations per
    // value. Bounded by MAX_TOKENS like the loop.
    let mut toks = Vec::with_capacity((s.len() / 2 + 2).min(MAX_TOKENS));
    let mut versioned = false;
    let mut i = 0;
    while i < b.len() && toks.len() < MAX_TOKENS {
        let c = b.get(i).copied().unwrap_or(0);
        let next = b.get(i + 1).copied().unwrap_or(0);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => i += 1,
            b'\'' | b'"' | b'`' => {
                i = skip_string(b, i + 1, c);
                toks.push(if c == b'`' { Tok::Word("`") } else { Tok::Str });
            }
            b'-' if next == b'-' => {
                toks.push(Tok::Comment);
                i = line_end(b, i);
            }
            b'#' => {
                toks.push(Tok::Comment);
                i = line_end(b, i);
            }
            b'/' if next == b'*' => {
                if b.get(i + 2) == Some(&b'!') {
                    // MySQL runs the inside of /*! … */: tokenize it as code.
                    versioned = true;
                    i += 3;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                } else {
                    let end = find_from(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
                    // An inline comment is whitespace to SQL; only a trailing one cuts the query.
                    if end >= b.len() {
                        toks.push(Tok::Comment);
                    }
                    i = end;
                }
            }
            b'*' if next == b'/' => i += 2,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b';' => {
                toks.push(Tok::Semi);
                i += 1;
            }
            b'0'..=b'9' => {
                let start = i;
                i += 1;
                while b
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'.')
                {
                    i += 1;
                }
                let text = s.get(start..i).unwrap_or_default();
                if text.bytes().all(|d| d.is_ascii_digit() || d == b'.') || text.starts_with("0x") {
                    toks.push(Tok::Num);
                } else {
                    toks.push(Tok::Word(text));
                }
            }
            b'=' => {
                toks.push(Tok::Cmp);
                i += 1;
            }
            b'<' | b'>' | b'!' => {
                let mut j = i + 1;
                while matches!(b.get(j), Some(b'=' | b'>' | b'<')) && j < i + 3 {
                    j += 1;
                }
                let op = s.get(i..j).unwrap_or_default();
                toks.push(if op == "!" { Tok::Op } else { Tok::Cmp });
                i = j;
            }
            b':' if next == b':' => {
                // A PostgreSQL cast `x::type` changes nothing about the operand's role in a
                // comparison: skip it with its type name.
                i += 2;
                while b
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'_')
                {
                    i += 1;
                }
            }
            b'|' if next == b'|' => {
                toks.push(Tok::LogicOp);
                i += 2;
            }
            b'&' if next == b'&' => {
                toks.push(Tok::LogicOp);
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'$' || c >= 0x80 => {
                let start = i;
                while b.get(i).is_some_and(|d| {
                    d.is_ascii_alphanumeric()
                        || matches!(d, b'_' | b'@' | b'$' | b'.')
                        || *d >= 0x80
                }) {
                    i += 1;
                }
                toks.push(Tok::Word(s.get(start..i).unwrap_or_default()));
            }
            _ => {
                toks.push(Tok::Op);
                i += 1;
            }
        }
    }
    (toks, versioned)
}

fn skip_string(b: &[u8], mut i: usize, q: u8) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            i += 2;
        } else if c == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn line_end(b: &[u8], i: usize) -> usize {
    (i..b.len())
        .find(|&k| b.get(k) == Some(&b'\n'))
        .unwrap_or(b.len())
}

fn find_from(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn is_kw(t: Option<&Tok<'_>>, words: &[&str]) -> bool {
    matches!(t, Some(Tok::Word(w)) if words.contains(w))
}

fn is_logic(t: Option<&Tok<'_>>) -> bool {
    matches!(t, Some(Tok::LogicOp)) || is_kw(t, &["or", "and", "xor", "div", "not"])
}

fn is_cmp(t: Option<&Tok<'_>>) -> bool {
    matches!(t, Some(Tok::Cmp))
        || is_kw(
            t,
            &[
                "like", "rlike", "regexp", "is", "in", "between", "sounds", "glob",
            ],
        )
}

fn is_operand(t: Option<&Tok<'_>>) -> bool {
    match t {
        Some(Tok::Str | Tok::Num) => true,
        Some(Tok::Word(w)) => !SQL_RESERVED.contains(w),
        _ => false,
    }
}

const SQL_RESERVED: [&str; 20] = [
    "or", "and", "xor", "not", "select", "union", "from", "where", "like", "is", "in", "order",
    "group", "by", "having", "limit", "insert", "update", "delete", "drop",
];

/// Functions that have no business in an honest value: time delays, file access, error-based
/// extraction, command execution.
const DANGEROUS_FUNCTIONS: [&str; 25] = [
    "lo_import",
    "lo_export",
    "lo_get",
    "lo_put",
    "lo_from_bytea",
    "pg_read_file",
    "pg_ls_dir",
    "gtid_subset",
    "dbms_xmlgen.getxml",
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "sys_eval",
    "sys_exec",
    "dbms_pipe.receive_message",
    "utl_http.request",
    "utl_inaddr.get_host_name",
    "randomblob",
    "dbms_lock.sleep",
    "exp",
    "geometrycollection",
];

/// Functions that are ordinary English or code on their own but an injection in a boolean
/// position (`' AND substring(...)`).
const SQL_FUNCTIONS: [&str; 22] = [
    "substring",
    "substr",
    "mid",
    "ascii",
    "ord",
    "char",
    "chr",
    "concat",
    "concat_ws",
    "group_concat",
    "version",
    "database",
    "user",
    "current_user",
    "system_user",
    "if",
    "ifnull",
    "count",
    "length",
    "hex",
    "cast",
    "convert",
];

/// Function families that only a database has: JSON functions (MySQL `json_extract`, PostgreSQL
/// `jsonb_…`), large objects (`lo_…`), the engines' own packages and catalogs.
fn dialect_function(w: &str) -> bool {
    [
        "json_", "jsonb_", "lo_", "pg_", "dbms_", "utl_", "sys_", "regexp_", "xp_", "st_",
    ]
    .iter()
    .any(|p| w.starts_with(p) && w.len() > p.len())
}

/// `f(…) <cmp> …`: a call at `toks[open]` (its `(`) whose result is compared — what a boolean
/// blind probe does with any function. The scan for the closing parenthesis is bounded.
fn compared_after_call(toks: &[Tok<'_>], open: usize) -> bool {
    let mut depth = 0usize;
    for k in open..toks.len().min(open + 64) {
        match toks.get(k) {
            Some(Tok::LParen) => depth += 1,
            Some(Tok::RParen) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return is_cmp(toks.get(k + 1))
                        && (is_operand(toks.get(k + 2))
                            || matches!(toks.get(k + 2), Some(Tok::LParen)));
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether `toks[i]` starts a complete-looking SQL statement.
fn statement_at(toks: &[Tok<'_>], i: usize) -> bool {
    let t = |k: usize| toks.get(i + k);
    match toks.get(i) {
        Some(Tok::Word("select")) => {
            // select <anything> from | select <function>( | select <number/@@var>
            // The column list must look like SQL (a number, `*`, a function call, a list,
            // `@@var`, `null`), not English ("select the best one from our range").
            matches!(t(1), Some(Tok::Num | Tok::Op | Tok::Str))
                || matches!(t(1), Some(Tok::Word(w)) if w.starts_with("@@") || *w == "null")
                || (matches!(t(1), Some(Tok::Word(_)))
                    && matches!(t(2), Some(Tok::LParen | Tok::Comma)))
                || (is_kw(t(1), &["distinct", "all", "top"]))
                || (is_kw(t(1), &["case"]) && is_kw(t(2), &["when"]))
        }
        Some(Tok::Word("insert")) => is_kw(t(1), &["into"]),
        Some(Tok::Word("delete")) => is_kw(t(1), &["from"]),
        Some(Tok::Word("update")) => is_kw(t(2), &["set"]),
        Some(Tok::Word("drop" | "create" | "alter" | "truncate")) => is_kw(
            t(1),
            &[
                "table",
                "database",
                "user",
                "procedure",
                "function",
                "view",
                "schema",
                "index",
            ],
        ),
        Some(Tok::Word("exec" | "execute")) => matches!(t(1), Some(Tok::Word(_) | Tok::LParen)),
        Some(Tok::Word("declare")) => matches!(t(1), Some(Tok::Word(w)) if w.starts_with('@')),
        Some(Tok::Word("waitfor")) => is_kw(t(1), &["delay", "time"]),
        Some(Tok::Word("shutdown")) => true,
        Some(Tok::Word("grant" | "revoke")) => true,
        _ => false,
    }
}

/// Rules that need a break-out: `toks` starts right after the closing quote (or at a numeric
/// value's first token).
fn after_breakout(toks: &[Tok<'_>], out: &mut Vec<Rule>) {
    let mut i = 0;
    while matches!(toks.get(i), Some(Tok::RParen)) {
        i += 1;
    }
    let t = |k: usize| toks.get(i + k);
    if matches!(t(0), Some(Tok::Comment))
        || (matches!(t(0), Some(Tok::Semi)) && matches!(t(1), Some(Tok::Comment) | None))
    {
        out.push(COMMENT_CUT);
    }
    if is_logic(t(0)) {
        let mut j = 1;
        while matches!(t(j), Some(Tok::LParen)) || is_kw(t(j), &["not"]) {
            j += 1;
        }
        let a = t(j);
        // `('x')=('x')`: parentheses around either side change nothing.
        let mut k = j + 1;
        while matches!(t(k), Some(Tok::RParen)) {
            k += 1;
        }
        if is_kw(a, &["select"]) {
            // `' and (select …)`: a subquery in a boolean position.
            out.push(SUBQUERY);
        } else if is_operand(a)
            && is_cmp(t(k))
            && (is_operand(t(k + 1)) || matches!(t(k + 1), Some(Tok::LParen)))
        {
            out.push(TAUTOLOGY);
        } else if is_operand(a)
            && matches!(t(j + 1), Some(Tok::Comment) | None)
            && !matches!(a, Some(Tok::Word(_)))
        {
            // `' or 1--`, `' or true`
            out.push(TAUTOLOGY);
        } else if is_kw(a, &["true", "false", "null"]) {
            out.push(TAUTOLOGY);
        } else if let Some(Tok::Word(w)) = a {
            if matches!(t(j + 1), Some(Tok::LParen))
                && (SQL_FUNCTIONS.contains(w)
                    || DANGEROUS_FUNCTIONS.contains(w)
                    || *w == "exists"
                    || dialect_function(w)
                    || compared_after_call(toks, i + j + 1))
            {
                out.push(BOOLEAN_FUNCTION);
            }
        } else if matches!(a, Some(Tok::Str | Tok::Num)) && matches!(t(j + 1), Some(Tok::Op)) {
            // `' or 2>1`, `' and 1*1`
            out.push(TAUTOLOGY);
        }
    }
    if is_kw(t(0), &["order", "group"]) && is_kw(t(1), &["by"]) {
        out.push(BREAKOUT_CLAUSE);
    }
    if is_kw(t(0), &["having", "procedure", "into", "limit"])
        && matches!(t(1), Some(Tok::Num | Tok::Word(_)))
    {
        out.push(BREAKOUT_CLAUSE);
    }
    if is_cmp(t(0)) {
        // `' rlike (select …)`, `1 = (select …)`
        let mut k = 1;
        while matches!(t(k), Some(Tok::LParen)) {
            k += 1;
        }
        if k > 1 && is_kw(t(k), &["select"]) {
            out.push(SUBQUERY);
        }
    }
    if is_cmp(t(0)) && is_operand(t(1)) && is_logic(t(2)) {
        // `'='' or`, `' = 1 or ...`
        out.push(TAUTOLOGY);
    }
    if matches!(t(0), Some(Tok::Op))
        && matches!(t(1), Some(Tok::Word(w)) if DANGEROUS_FUNCTIONS.contains(w) || SQL_FUNCTIONS.contains(w))
        && matches!(t(2), Some(Tok::LParen))
    {
        // `'+sleep(5)+'`, `'||version()||'`
        out.push(BOOLEAN_FUNCTION);
    }
    if matches!(t(0), Some(Tok::LogicOp))
        && matches!(t(1), Some(Tok::Word(w)) if DANGEROUS_FUNCTIONS.contains(w) || SQL_FUNCTIONS.contains(w))
    {
        out.push(BOOLEAN_FUNCTION);
    }
}

/// Rules that hold anywhere in the token stream.
fn anywhere(toks: &[Tok<'_>], out: &mut Vec<Rule>) {
    for (i, tok) in toks.iter().enumerate() {
        let t = |k: usize| toks.get(i + k);
        match tok {
            Tok::Word("union") => {
                let mut j = 1;
                while is_kw(t(j), &["all", "distinct"]) || matches!(t(j), Some(Tok::LParen)) {
                    j += 1;
                }
                if is_kw(t(j), &["select", "values"]) {
                    out.push(UNION);
                }
            }
            Tok::Semi if statement_at(toks, i + 1) => out.push(STACKED),
            // `(select case when …)`, `(select 1 from …)`: a parenthesised subquery.
            Tok::LParen if is_kw(t(1), &["select"]) && statement_at(toks, i + 1) => {
                out.push(SUBQUERY)
            }
            Tok::Word(w) if DANGEROUS_FUNCTIONS.contains(w) && *w != "exp" && *w != "sleep" => {
                if matches!(t(1), Some(Tok::LParen)) {
                    out.push(DANGEROUS_FUNCTION);
                }
            }
            Tok::Word("waitfor") if is_kw(t(1), &["delay", "time"]) => out.push(DANGEROUS_FUNCTION),
            Tok::Word(w) if w.starts_with("@@") && w.len() > 2 => out.push(DANGEROUS_FUNCTION),
            Tok::Word(w)
                if w.starts_with("information_schema")
                    || w.starts_with("sysobjects")
                    || w.starts_with("pg_catalog")
                    || w.starts_with("sqlite_master")
                    || w.starts_with("mysql.user") =>
            {
                out.push(DANGEROUS_FUNCTION)
            }
            _ => {}
        }
    }
    if toks.first().is_some_and(|_| statement_at(toks, 0)) {
        out.push(STATEMENT);
    }
}

/// Runs the SQL rules on one lower-cased value.
/// The words that open the gate in [`detect`] when none of its characters is there.
const GATE_WORDS: NeedleSet = NeedleSet::new(&[
    "union", "select", "insert", "delete", "drop", "update", "exec", "waitfor", "shutdown", " or ",
    " and ",
]);

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &super::Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller.
pub(crate) fn detect_with(s: &str, p: &super::Present, out: &mut Vec<Rule>) {
    // Cheap gate: every rule needs one of these characters or words.
    let b = s.as_bytes();
    if !p.any(b"'\";(#-=|&@/`") && !GATE_WORDS.any_in_present(s, p) {
        return;
    }
    if !may_fire(s, p) {
        return;
    }
    let mut found = Vec::new();
    let (raw, versioned) = tokenize(s);
    if versioned {
        found.push(MYSQL_COMMENT);
    }
    anywhere(&raw, &mut found);
    // Numeric context: a value that starts with a number (or a closing parenthesis) and goes on.
    if matches!(raw.first(), Some(Tok::Num)) {
        after_breakout(raw.get(1..).unwrap_or_default(), &mut found);
    } else if matches!(raw.first(), Some(Tok::Op)) && matches!(raw.get(1), Some(Tok::Num)) {
        // A signed number: `-5 or 5=5`.
        after_breakout(raw.get(2..).unwrap_or_default(), &mut found);
    }
    // String contexts: from the first unescaped quote of each kind.
    for q in [b'\'', b'"'] {
        if let Some(close) = first_unescaped(b, q) {
            let (rest, _) = tokenize(s.get(close + 1..).unwrap_or_default());
            after_breakout(&rest, &mut found);
            anywhere(&rest, &mut found);
        }
    }
    add_once(out, found);
}

/// Whether any rule could fire on `s`; `false` is a proof that none does, so the tokenizer and the
/// rules need not run. `-` and `/` open the gate above, and paths and identifiers are full of
/// them, but to SQL they only matter as `--` and `/*`. Without those, and without any byte that
/// makes a token other than a word, a number or a one-byte operator (quotes, `;`, `(`, `#`, `=`,
/// `|`, `&`, `@`, …), every rule needs a [`trigger_word`] as a token; such a token is a
/// whole run of `[a-z0-9_]` in the value (a word token starts after a byte outside that set, and
/// ends before one), or for the catalog names the start of one.
fn may_fire(s: &str, p: &super::Present) -> bool {
    if p.any(b"'\";(#=|&@`)<>!,") {
        return true;
    }
    // One pass: `--` and `/*`, and each run of `[a-z0-9_]` that starts with a letter (every
    // trigger word does; runs of digits, as in ids and UUIDs, are passed over).
    let b = s.as_bytes();
    let is_run = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if is_run(c) {
            let start = i;
            while b.get(i).is_some_and(|c| is_run(*c)) {
                i += 1;
            }
            if c.is_ascii_lowercase() && b.get(start..i).is_some_and(trigger_word) {
                return true;
            }
            continue;
        }
        if matches!((c, b.get(i + 1)), (b'-', Some(b'-')) | (b'/', Some(b'*'))) {
            return true;
        }
        i += 1;
    }
    false
}

/// Every word a rule starts from (see [`may_fire`]): the logic and comparison words after a
/// break-out, the clauses, `union`, `waitfor`, the words that open a statement, and the catalog
/// names [`anywhere`] looks for at the start of a word (`mysql.user` is the word `mysql` up to
/// its dot).
fn trigger_word(run: &[u8]) -> bool {
    matches!(
        run,
        b"or"
            | b"and"
            | b"xor"
            | b"div"
            | b"not"
            | b"like"
            | b"rlike"
            | b"regexp"
            | b"is"
            | b"in"
            | b"between"
            | b"sounds"
            | b"glob"
            | b"order"
            | b"group"
            | b"having"
            | b"procedure"
            | b"into"
            | b"limit"
            | b"union"
            | b"waitfor"
            | b"select"
            | b"insert"
            | b"delete"
            | b"update"
            | b"drop"
            | b"create"
            | b"alter"
            | b"truncate"
            | b"exec"
            | b"execute"
            | b"declare"
            | b"shutdown"
            | b"grant"
            | b"revoke"
            | b"true"
            | b"false"
            | b"null"
            | b"exists"
            | b"mysql"
    ) || run.len() >= 10
        && [
            &b"information_schema"[..],
            b"sysobjects",
            b"pg_catalog",
            b"sqlite_master",
        ]
        .iter()
        .any(|c| run.starts_with(c))
}

fn first_unescaped(b: &[u8], q: u8) -> Option<usize> {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == q {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(s: &str) -> Vec<&'static str> {
        crate::detect::rule_ids(detect, s)
    }

    #[test]
    fn classic_attacks() {
        assert!(rules("' OR 1=1--").contains(&"sqli-tautology"));
        assert!(rules("admin'--").contains(&"sqli-breakout-comment"));
        assert!(rules("x' or 'a'='a").contains(&"sqli-tautology"));
        assert!(rules("\" or \"\"=\"").contains(&"sqli-tautology"));
        assert!(rules("1 UNION ALL SELECT username, password FROM users")
            .contains(&"sqli-union-select"));
        assert!(rules("1; DROP TABLE users").contains(&"sqli-stacked-query"));
        assert!(rules("1' AND SLEEP(5)#").contains(&"sqli-boolean-function"));
        assert!(rules("1') or ('1'='1").contains(&"sqli-tautology"));
        assert!(rules("1 or 1=1").contains(&"sqli-tautology"));
        assert!(rules("' ORDER BY 3--").contains(&"sqli-breakout-clause"));
        assert!(rules("x'; waitfor delay '0:0:5'--").contains(&"sqli-stacked-query"));
        assert!(rules("1/**/union/**/select/**/1,2").contains(&"sqli-union-select"));
        assert!(rules("1 /*!50000union*/ /*!select*/ 1").contains(&"sqli-union-select"));
        assert!(
            rules("extractvalue(1,concat(0x7e,version()))").contains(&"sqli-dangerous-function")
        );
        assert!(rules("') OR ('x')=('x").contains(&"sqli-tautology"));
        assert!(rules("-5 OR 5=5").contains(&"sqli-tautology"));
        assert!(rules("1 AND (SELECT 1 FROM dual)").contains(&"sqli-subquery"));
        assert!(rules("1' RLIKE (SELECT 1)-- x").contains(&"sqli-subquery"));
    }

    #[test]
    fn honest_text() {
        for s in [
            "O'Brien",
            "It's a dog's life; select the best one from our range",
            "Select your size from the list below",
            "rock 'n' roll",
            "Tom & Jerry -- the movie",
            "price: $5 - $10 (approx.)",
            "She said \"hello\" and left",
            "1 or 2 items",
            "SELECT id FROM users WHERE id = ?",
            "time.sleep(5)",
            "don't -- really",
            "a=1&b=2",
            "-5 degrees or colder",
            "Pick one (select a size) and go",
        ] {
            assert!(
                rules(s).iter().all(|r| *r == "sqli-statement"),
                "{s}: {:?}",
                rules(s)
            );
        }
    }

    #[test]
    fn unterminated_everything_is_fine() {
        for s in ["'", "\"", "/*", "--", "'''''", "(((((", "/*!", "\\", "'\\"] {
            let _ = rules(s);
        }
    }
}
