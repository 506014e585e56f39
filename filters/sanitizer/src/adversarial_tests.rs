//! Hostile inputs of the maximum size, and a bounded fuzz-style property test: every detector,
//! decoder and parser must finish (linear scanners, no backtracking) and never panic. Nothing here
//! is timed — performance is never asserted by a test — but a quadratic path on 1 MiB would take
//! minutes and be impossible to miss.

use crate::config::load;
use crate::decode::canonicalize;
use crate::detect::scan_value;
use crate::engine::{inspect_body, inspect_head, Head, Step, Verdict};

const MAX: usize = 1024 * 1024;

/// Repeats `unit` to exactly `MAX` bytes (cut on a char boundary).
fn fill(unit: &str) -> String {
    let mut s = unit.repeat(MAX / unit.len().max(1) + 1);
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

const UNITS: [&str; 72] = [
    "'",
    "\"",
    "<",
    "<a",
    "<a onx=",
    " onabc=",
    "\" onab=",
    "%",
    "%25",
    "%2525",
    "&#",
    "&#x",
    "&#0000000",
    "\\u",
    "\\x",
    "../",
    "..\\",
    "....//",
    "{{",
    "${",
    "{%",
    "{%if ",
    "$(",
    "`",
    ";",
    "|",
    "/*",
    "-- ",
    "select ",
    "union (((((",
    // The scanners added for issue 14: each one's trigger, repeated.
    "<!entity % a system ",
    "<!doctype a system ",
    "<?xml encoding=",
    "<!--#exec ",
    "\r\nx-a: ",
    "\nlocation:a",
    "http://a/ ",
    "powershell -e ",
    "\n.\r",
    "\r\na1 select ",
    ")(",
    "(|(",
    "(|",
    "${${",
    "${lower:",
    "${::-",
    "%{#",
    "t(a.",
    "#{pagecontext",
    "ro0ab",
    "system(",
    "o:1:\"",
    ":\"a",
    "$_get[",
    "://",
    "http://a/",
    "gopher://",
    "['",
    "(alert)",
    "=>",
    ".call(",
    "__proto__",
    "constructor.",
    "document.cookie=",
    "{$ne:",
    "{ $",
    "' ||",
    "; return ",
    "a^",
    " `",
    "1 and a(",
    "::",
];

#[test]
fn every_detector_finishes_on_max_size_hostile_values() {
    for unit in UNITS {
        let value = fill(unit);
        let canon = canonicalize(value.as_bytes(), 3);
        let mut rules = Vec::new();
        scan_value(&canon, &mut rules);
        assert!(rules.len() < 64, "{unit}: {} rules", rules.len());
    }
}

/// The checks that also read the name a value came under (SSRF/RFI in URL-valued and
/// include-like parameters, prototype pollution and session names) on hostile names and values.
#[test]
fn named_checks_finish_on_max_size_hostile_input() {
    use crate::detect::names;
    for unit in [
        "http://",
        "://[",
        "http://a@",
        "//",
        "0x",
        "[::ffff:",
        "a.nip.io",
    ] {
        let value = fill(unit);
        for name in ["url", "page", "callback_url"] {
            let mut rules = Vec::new();
            names::check_named_value(name, &value, &mut rules);
            assert!(rules.len() < 16, "{unit}: {} rules", rules.len());
        }
    }
    for unit in ["[", "__proto__[", "constructor[prototype]", "a.", "[$ne]"] {
        let name = fill(unit);
        let mut rules = Vec::new();
        names::check_param_name(&name, &mut rules);
        names::check_key(Some("constructor"), &name, &mut rules);
        assert!(rules.len() < 16, "{unit}: {} rules", rules.len());
    }
}

fn post(body: &[u8], content_type: &str) -> Verdict {
    let c = load(b"{}").unwrap();
    let len = body.len().to_string();
    let h = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("content-length".to_string(), len),
    ];
    let head = Head {
        method: "POST",
        authority: "h",
        path: "/x",
        headers: &h,
        has_body: true,
    };
    match inspect_head(&c, &head) {
        Step::Done(o) => o.verdict,
        Step::NeedBody(p) => inspect_body(&c, &p, body).verdict,
    }
}

#[test]
fn every_body_parser_finishes_on_max_size_hostile_bodies() {
    // Just under the 1 MiB default cap.
    let n = MAX - 64;
    let deep_but_legal = format!("{}{}", "[".repeat(30), "]".repeat(30));
    let many_keys: String = {
        let mut s = String::from("{");
        let mut i = 0;
        while s.len() < n - 32 {
            s.push_str(&format!("\"k{i}\":\"v\","));
            i += 1;
        }
        s.push_str("\"end\":1}");
        s
    };
    let long_string = format!("{{\"a\":\"{}\"}}", "'".repeat(n - 10));
    let long_key = format!("{{\"{}\":1}}", "on".repeat((n - 10) / 2));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        ("[".repeat(n).into_bytes(), "application/json"),
        (deep_but_legal.into_bytes(), "application/json"),
        (many_keys.into_bytes(), "application/json"),
        (long_string.into_bytes(), "application/json"),
        (long_key.into_bytes(), "application/json"),
        (
            "a=&".repeat(n / 3).into_bytes(),
            "application/x-www-form-urlencoded",
        ),
        (
            "%".repeat(n).into_bytes(),
            "application/x-www-form-urlencoded",
        ),
        (
            "--B\r\n".repeat(n / 5).into_bytes(),
            "multipart/form-data; boundary=B",
        ),
        (
            format!(
                "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n{}",
                "\r\n--".repeat(n / 5)
            )
            .into_bytes(),
            "multipart/form-data; boundary=B",
        ),
        (vec![0xff; n], "text/plain"),
        (vec![0xc0; n], "text/plain"),
        (fill("<a onx=").into_bytes()[..n].to_vec(), "text/html"),
    ];
    for (body, ct) in cases {
        // Any verdict is fine; finishing without a panic is the point.
        let _ = post(&body, ct);
    }
}

/// A small deterministic generator (xorshift), so the property test needs no dependency and
/// fails the same way every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Fragments that steer random inputs into the interesting paths of every scanner.
const PIECES: [&str; 70] = [
    "'",
    "\"",
    "`",
    "(",
    ")",
    ";",
    "|",
    "&",
    "&&",
    "$(",
    "${",
    "{{",
    "}}",
    "{%",
    "%}",
    "<",
    ">",
    "/",
    "\\",
    "..",
    "../",
    "%",
    "%2",
    "%25",
    "%c0%af",
    "&#",
    "&#x3c;",
    "\\u00",
    "\\x3",
    "--",
    "#",
    "/*",
    "*/",
    "/*!",
    "=",
    " ",
    "\t",
    "\n",
    "or",
    "union",
    "select",
    "script",
    "onerror",
    "javascript:",
    "$ne",
    "cat",
    "7*7",
    "é",
    "\r\n",
    "<!entity",
    "<!--#",
    ")(",
    "jndi:",
    "${lower:",
    ":-",
    "%{",
    "t(",
    "ro0ab",
    "system(",
    "o:4:\"",
    "://",
    "127.1",
    "0x7f",
    "[::ffff:",
    "__proto__",
    "[",
    "]",
    "=>",
    ".call(",
    "^",
];

#[test]
fn random_inputs_never_panic_and_decide_deterministically() {
    let c = load(b"{}").unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    for _ in 0..20_000 {
        let len = (rng.next() % 24) as usize;
        let mut s = String::new();
        for _ in 0..len {
            if rng.next().is_multiple_of(4) {
                // A raw byte, possibly invalid UTF-8, as percent-encoding.
                s.push_str(&format!("%{:02x}", rng.next() as u8));
            } else {
                s.push_str(rng.pick(&PIECES));
            }
        }
        let a = canonicalize(s.as_bytes(), 3);
        let mut r1 = Vec::new();
        scan_value(&a, &mut r1);
        let mut r2 = Vec::new();
        scan_value(&canonicalize(s.as_bytes(), 3), &mut r2);
        assert_eq!(r1, r2, "{s:?}");
        let q = s.replace(['#', ' ', '\n', '\t'], "+");
        // Also as a URL-valued and an include-like parameter, and as a parameter name.
        let path = format!("/x?q={q}&url={q}&page={q}&{q}=1");
        let h: Vec<(String, String)> = vec![("cookie".into(), format!("c={s}"))];
        let head = Head {
            method: "GET",
            authority: "h",
            path: &path,
            headers: &h,
            has_body: false,
        };
        let _ = inspect_head(&c, &head);
        let json =
            serde_json::json!({ s.clone(): [s.clone()], "callback_url": s.clone(), "constructor": { s.clone(): 1 } })
                .to_string();
        let _ = post(json.as_bytes(), "application/json");
    }
}
