//! Injections that add protocol lines: HTTP response splitting (CRLF), and mail header / SMTP /
//! IMAP command injection. To work, the payload must end the current line (CR or LF, which the
//! decoder has already recovered from `%0d%0a`, `%u000d`, double encoding …) and start a new one
//! the protocol acts on: a header field (`Name:`), an SMTP verb, or a tagged IMAP command. Text
//! that merely spans lines ("line one\nline two") does neither.
//!
//! U+560A / U+560D (`嘊`, `嘍`) are included: servers that truncate a UTF-16 code unit to a byte
//! turn them into LF / CR.

use super::{is_word, push, Category, Rule, CRITICAL, WARNING};

pub const HEADER_INJECTION: Rule = Rule::new("crlf-header-injection", Category::Crlf, CRITICAL, 1);
pub const RESPONSE_SPLIT: Rule = Rule::new("crlf-response-split", Category::Crlf, CRITICAL, 1);
/// A new line that starts with any `token:`: in a path or query it is an attack, in a multi-line
/// text field it is often prose ("Note: …"), so it needs a higher paranoia level.
pub const ANY_FIELD: Rule = Rule::new("crlf-any-field", Category::Crlf, WARNING, 2);
pub const MAIL_HEADER: Rule = Rule::new("mail-header-injection", Category::Mail, CRITICAL, 1);
pub const SMTP_COMMAND: Rule = Rule::new("mail-smtp-command", Category::Mail, CRITICAL, 1);
pub const IMAP_COMMAND: Rule = Rule::new("mail-imap-command", Category::Mail, CRITICAL, 1);
pub const MAIL_FIELD: Rule = Rule::new("mail-address-field", Category::Mail, WARNING, 2);

/// Response headers an attacker sets through a split; all but prose-like words.
const HTTP_FIELDS: [&str; 10] = [
    "set-cookie",
    "content-type",
    "content-length",
    "content-disposition",
    "content-security-policy",
    "transfer-encoding",
    "refresh",
    "cache-control",
    "access-control-allow-",
    "x-xss-protection",
];
/// Fields that add recipients: the reason for mail header injection.
const RECIPIENT_FIELDS: [&str; 4] = ["bcc", "cc", "resent-to", "resent-bcc"];
/// Fields that are ordinary words at the start of a line of prose: a higher paranoia level.
const MAIL_FIELDS: [&str; 5] = ["to", "from", "subject", "reply-to", "sender"];
const SMTP_VERBS: [&str; 9] = [
    "mail from:",
    "rcpt to:",
    "data\r",
    "data\n",
    "helo ",
    "ehlo ",
    "quit",
    "rset",
    "vrfy ",
];
const IMAP_VERBS: [&str; 16] = [
    "login",
    "logout",
    "select",
    "examine",
    "create",
    "delete",
    "rename",
    "fetch",
    "store",
    "copy",
    "search",
    "list",
    "append",
    "uid",
    "expunge",
    "capability",
];

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{560a}' | '\u{560d}')
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    if !s.contains(is_break) {
        return;
    }
    let mut rest = s;
    while let Some(at) = rest.find(is_break) {
        // Skip the whole run of line breaks (CR LF, LF LF …).
        let after = rest.get(at..).unwrap_or_default();
        let line = after.trim_start_matches(is_break);
        line_start(line, after.len() - line.len(), out);
        rest = line;
    }
}

/// Looks at what starts the new line.
fn line_start(line: &str, breaks: usize, out: &mut Vec<Rule>) {
    let line = line.trim_start_matches([' ', '\t']);
    let b = line.as_bytes();
    if line.starts_with("http/1.") || line.starts_with("http/2") {
        push(out, RESPONSE_SPLIT);
    }
    // A header field name: a token directly followed by `:`.
    let name_len = b.iter().take_while(|c| is_word(**c) || **c == b'-').count();
    let field = (name_len > 0 && b.get(name_len) == Some(&b':'))
        .then(|| line.get(..name_len).unwrap_or_default());
    if let Some(name) = field {
        if HTTP_FIELDS
            .iter()
            .any(|h| name == *h || (h.ends_with('-') && name.starts_with(h)))
            || name.starts_with("x-")
            || (name == "location" && redirect_target(line.get(name_len + 1..)))
        {
            push(out, HEADER_INJECTION);
        } else if RECIPIENT_FIELDS.contains(&name) {
            push(out, MAIL_HEADER);
        } else if MAIL_FIELDS.contains(&name) {
            push(out, MAIL_FIELD);
        } else {
            push(out, ANY_FIELD);
        }
    }
    if SMTP_VERBS.iter().any(|v| line.starts_with(v)) || (breaks >= 2 && line.starts_with(".\r")) {
        push(out, SMTP_COMMAND);
    }
    // `.` alone on a line ends an SMTP DATA section.
    if line.starts_with('.') && line.get(1..).is_some_and(|r| r.starts_with(is_break)) {
        push(out, SMTP_COMMAND);
    }
    // IMAP: a tag (letters/digits) then a command verb.
    let tag_len = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if (1..=8).contains(&tag_len) && b.get(tag_len) == Some(&b' ') {
        let verb = line.get(tag_len + 1..).unwrap_or_default();
        let hit = IMAP_VERBS.iter().any(|v| {
            verb.starts_with(v) && !verb.as_bytes().get(v.len()).is_some_and(|c| is_word(*c))
        });
        // A tag has a digit (`a1`, `3`): "and select …" in prose has none.
        if hit && b.iter().take(tag_len).any(u8::is_ascii_digit) {
            push(out, IMAP_COMMAND);
        }
    }
}

/// `Location:` is also a word of prose ("Location: Berlin"); a redirect needs a URL or a path.
fn redirect_target(value: Option<&str>) -> bool {
    // Bounded: the rest of the value may be long and hold many `Location:` lines.
    let v = super::prefix(value.unwrap_or_default(), 256).trim_start();
    v.starts_with('/') || v.starts_with("http:") || v.starts_with("https:") || v.contains("://")
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn new_lines_that_speak_a_protocol() {
        for h in [
            "en\r\nset-cookie: admin=1",
            "a\nlocation: https://evil.example/",
            "x\r\nx-injected: 1",
            "x\r\n\r\nhttp/1.1 200 ok",
            "\u{560a}\u{560d}set-cookie:x=1",
            "user@example.com\r\nbcc: victim@example.org",
            "x\r\nrcpt to:<v@evil.example>",
            "inbox\r\na1 logout",
            "hi\r\n.\r\nmail from:<a@b>",
        ] {
            assert!(!rule_ids(detect, h).is_empty(), "{h:?}");
        }
    }

    #[test]
    fn multi_line_prose_passes_at_paranoia_1() {
        for ok in [
            "line one\nline two\nline three",
            "Dear team,\r\nNote: the meeting moved.\r\nThanks",
            "From: Alice\nTo: Bob\nSubject: hi",
            "1. select a plan\n2. delete the old one",
        ] {
            let mut out = Vec::new();
            detect(&ok.to_ascii_lowercase(), &mut out);
            assert!(out.iter().all(|r| r.paranoia > 1), "{ok:?}: {out:?}");
        }
    }
}
