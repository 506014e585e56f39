//! The detectors. Each looks at one canonical value and reports findings; none of them uses a
//! backtracking pattern: they are hand-written forward scanners, linear in the input.

pub mod cmdi;
pub mod java;
pub mod jndi;
pub mod ldap;
pub mod lines;
pub mod markup;
pub mod names;
mod needles;
pub mod nosql;
pub mod php;
pub mod scanner;
pub mod sqli;
pub mod ssrf;
pub mod ssti;
pub mod traversal;
pub mod xss;

use crate::decode::Canonical;
pub(crate) use needles::NeedleSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Sqli,
    Xss,
    Cmdi,
    Traversal,
    Nosql,
    Ssti,
    /// XML external entities, entity expansion, XInclude.
    Xxe,
    /// HTTP response splitting / header injection.
    Crlf,
    Ldap,
    /// Server-side includes.
    Ssi,
    /// Mail header, SMTP and IMAP command injection.
    Mail,
    /// JNDI lookups (Log4Shell).
    Jndi,
    /// Java expression languages and serialised objects.
    Java,
    Php,
    Ssrf,
    /// Remote file inclusion.
    Rfi,
    Prototype,
    Session,
    Scanner,
    /// Evasion visible in the encoding itself (overlong UTF-8, stacked encodings, NUL).
    Protocol,
    /// A multipart file part that breaks the upload policy.
    Upload,
}

impl Category {
    pub const ALL: [Category; 21] = [
        Category::Sqli,
        Category::Xss,
        Category::Cmdi,
        Category::Traversal,
        Category::Nosql,
        Category::Ssti,
        Category::Xxe,
        Category::Crlf,
        Category::Ldap,
        Category::Ssi,
        Category::Mail,
        Category::Jndi,
        Category::Java,
        Category::Php,
        Category::Ssrf,
        Category::Rfi,
        Category::Prototype,
        Category::Session,
        Category::Scanner,
        Category::Protocol,
        Category::Upload,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Sqli => "sqli",
            Category::Xss => "xss",
            Category::Cmdi => "cmdi",
            Category::Traversal => "traversal",
            Category::Nosql => "nosql",
            Category::Ssti => "ssti",
            Category::Xxe => "xxe",
            Category::Crlf => "crlf",
            Category::Ldap => "ldap",
            Category::Ssi => "ssi",
            Category::Mail => "mail",
            Category::Jndi => "jndi",
            Category::Java => "java",
            Category::Php => "php",
            Category::Ssrf => "ssrf",
            Category::Rfi => "rfi",
            Category::Prototype => "prototype_pollution",
            Category::Session => "session_fixation",
            Category::Scanner => "scanner",
            Category::Protocol => "protocol",
            Category::Upload => "upload",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A rule: what fired, how much it weighs, and from which paranoia level it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub category: Category,
    pub score: u32,
    /// 1 = always on; 2–4 add rules with more false positives.
    pub paranoia: u8,
}

/// Adds each of a detector's findings to `out` once: several checks of one detector may report
/// the same rule, and a finding counts once towards the score.
pub(crate) fn add_once(out: &mut Vec<Rule>, found: impl IntoIterator<Item = Rule>) {
    for rule in found {
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
}

/// Adds one finding to `out` unless it is there already (see [`add_once`]).
pub(crate) fn push(out: &mut Vec<Rule>, rule: Rule) {
    add_once(out, [rule]);
}

/// The rule ids a detector reports for `s` (lower-cased first, as the engine does).
#[cfg(test)]
pub(crate) fn rule_ids(detect: fn(&str, &mut Vec<Rule>), s: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    detect(&s.to_ascii_lowercase(), &mut out);
    out.iter().map(|r| r.id).collect()
}

impl Rule {
    pub const fn new(id: &'static str, category: Category, score: u32, paranoia: u8) -> Rule {
        Rule {
            id,
            category,
            score,
            paranoia,
        }
    }
}

/// Scores: a critical finding alone reaches the default threshold (5).
pub const CRITICAL: u32 = 5;
pub const ERROR: u32 = 4;
pub const WARNING: u32 = 3;
pub const NOTICE: u32 = 2;

/// Runs every value detector (not the header-only scanner check) on one canonical value.
pub fn scan_value(value: &Canonical, out: &mut Vec<Rule>) {
    protocol(value, out);
    // Every detector gates on characters its rules need. One pass records which bytes the value
    // has, so those gates are lookups, and a value like `/api/orders/1` is not searched a dozen
    // times for nothing (each substring search has a set-up cost that dominated short values).
    let s = value.lower.as_str();
    let p = Present::of(s);
    sqli::detect_with(s, &p, out);
    xss::detect_with(s, &p, out);
    cmdi::detect_with(s, &p, out);
    traversal::detect_with(s, &p, out);
    ssti::detect_with(s, &p, out);
    if p.any(b"${;|&(") {
        nosql::detect(s, out);
    }
    if p.has(b'<') {
        markup::detect(s, out);
    }
    // CR, LF, or the lead byte of U+560A / U+560D.
    if p.any(b"\r\n\xe5") {
        lines::detect(s, out);
    }
    if p.has(b'(') && p.has(b')') {
        ldap::detect(s, out);
    }
    if p.has(b'$') && p.has(b'{') {
        jndi::detect(s, out);
    }
    if p.any(b".(#{0") {
        java::detect_with(s, &p, out);
    }
    if p.any(b"<($:") {
        php::detect(s, out);
    }
    if p.any(b":.-") {
        ssrf::detect_with(s, &p, out);
    }
    if p.any(b"_.[=") {
        names::detect_with(s, &p, out);
    }
}

/// Which bytes occur in a value: a 256-bit set filled in one pass.
///
/// A needle can only be in a value if every one of its bytes is, so [`Present::has_all`] (and
/// [`NeedleSet::any_in_present`]) rule out a substring search before paying for it. This is
/// exact: it only skips searches that could not have found anything.
pub(crate) struct Present {
    bits: [u64; 4],
    /// The same set folded into 64 classes ([`byte_class`]), so a needle's bytes are checked
    /// with one mask test instead of one lookup per byte.
    sig: u64,
}

/// The class of a byte in [`Present::sig`]: lower-case letters and digits have a class each (they
/// are what needles are made of), every other byte shares one of the 28 remaining classes.
/// Any mapping would be sound; this one keeps the test sharp for lower-cased text.
pub(crate) const fn byte_class(b: u8) -> u32 {
    match b {
        b'a'..=b'z' => (b - b'a') as u32,
        b'0'..=b'9' => 26 + (b - b'0') as u32,
        _ => 36 + (b % 28) as u32,
    }
}

/// The classes of every byte of `s` (see [`Present::sig`]).
pub(crate) const fn signature(s: &[u8]) -> u64 {
    let mut sig = 0u64;
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        sig |= 1 << byte_class(*b);
        rest = tail;
    }
    sig
}

/// [`byte_class`] of every byte, looked up rather than computed in the pass over each value.
const CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = byte_class(b as u8) as u8;
        b += 1;
    }
    table
};

impl Present {
    pub(crate) fn of(s: &str) -> Present {
        let mut bits = [0u64; 4];
        let mut sig = 0u64;
        for b in s.bytes() {
            if let Some(w) = bits.get_mut(usize::from(b >> 6)) {
                *w |= 1 << (b & 63);
            }
            sig |= 1 << CLASSES.get(usize::from(b)).copied().unwrap_or(63);
        }
        Present { bits, sig }
    }

    pub(crate) fn has(&self, b: u8) -> bool {
        self.bits
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
    }

    pub(crate) fn any(&self, bytes: &[u8]) -> bool {
        bytes.iter().any(|b| self.has(*b))
    }

    /// Every byte of `needle` occurs in the value: false means the value cannot contain it.
    pub(crate) fn has_all(&self, needle: &str) -> bool {
        needle.bytes().all(|b| self.has(b))
    }

    /// Whether a needle of signature `sig` (see [`signature`]) may occur in the value.
    pub(crate) fn may_hold(&self, sig: u64) -> bool {
        sig & !self.sig == 0
    }

    /// Some byte >= 0x80: the value has non-ASCII characters.
    pub(crate) fn non_ascii(&self) -> bool {
        self.bits
            .get(2..)
            .is_some_and(|hi| hi.iter().any(|w| *w != 0))
    }
}

/// `s.contains(needle)`, skipped when `p` (the bytes of `s`) already rules it out.
pub(crate) fn contains(s: &str, p: &Present, needle: &str) -> bool {
    p.has_all(needle) && s.contains(needle)
}

pub const OVERLONG_UTF8: Rule =
    Rule::new("protocol-overlong-utf8", Category::Protocol, CRITICAL, 1);
pub const TOO_MANY_LAYERS: Rule = Rule::new(
    "protocol-excessive-encoding",
    Category::Protocol,
    CRITICAL,
    1,
);
pub const NUL_BYTE: Rule = Rule::new("protocol-nul-byte", Category::Protocol, ERROR, 1);
pub const DOUBLE_ENCODED: Rule =
    Rule::new("protocol-double-encoding", Category::Protocol, NOTICE, 2);
pub const INVALID_UTF8: Rule = Rule::new("protocol-invalid-utf8", Category::Protocol, NOTICE, 3);

fn protocol(value: &Canonical, out: &mut Vec<Rule>) {
    let f = value.flags;
    if f.overlong_utf8 {
        out.push(OVERLONG_UTF8);
    }
    if f.too_many_layers {
        out.push(TOO_MANY_LAYERS);
    }
    if f.nul {
        out.push(NUL_BYTE);
    }
    if f.layers >= 2 {
        out.push(DOUBLE_ENCODED);
    }
    if f.invalid_utf8 {
        out.push(INVALID_UTF8);
    }
}

/// Byte-level helpers shared by the scanners.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every start offset of `needle` in `hay` (non-overlapping scan, linear).
pub(crate) fn find_all<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    hay.match_indices(needle).map(|(i, _)| i)
}

/// [`find_all`], not even started when `p` (the bytes of `hay`) rules the needle out.
pub(crate) fn find_all_in<'a>(
    hay: &'a str,
    p: &Present,
    needle: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    p.has_all(needle)
        .then(|| find_all(hay, needle))
        .into_iter()
        .flatten()
}

/// Skips ASCII whitespace from `i`.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// At most the first `n` bytes of `s`, cut back to a character boundary.
pub(crate) fn prefix(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}
