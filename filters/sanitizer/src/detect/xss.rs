//! Cross-site scripting: tags that run script, event-handler attributes, script-bearing URI
//! schemes and JavaScript string break-outs, on the fully decoded value (entities and escapes
//! already resolved by `decode`).

use super::{
    add_once, find_all, is_word, skip_ws, Category, Rule, CRITICAL, ERROR, NOTICE, WARNING,
};

pub const SCRIPT_TAG: Rule = Rule::new("xss-script-tag", Category::Xss, CRITICAL, 1);
pub const DANGEROUS_TAG: Rule = Rule::new("xss-dangerous-tag", Category::Xss, CRITICAL, 1);
pub const EVENT_HANDLER: Rule = Rule::new("xss-event-handler", Category::Xss, CRITICAL, 1);
pub const SCRIPT_URI: Rule = Rule::new("xss-script-uri", Category::Xss, CRITICAL, 1);
pub const JS_BREAKOUT: Rule = Rule::new("xss-js-breakout", Category::Xss, CRITICAL, 1);
pub const CSS_EXPRESSION: Rule = Rule::new("xss-css-expression", Category::Xss, ERROR, 1);
pub const JS_SINK: Rule = Rule::new("xss-js-sink", Category::Xss, WARNING, 1);
/// A dialog or eval sink reached indirectly — `.call(`/`.apply(`/`.bind(`, a bracket property
/// access `window['al'+'ert'](…)`, a parenthesised reference `(alert)(1)`, an arrow body — shapes
/// that exist to call the function while hiding the plain `alert(` from filters.
pub const INDIRECT_CALL: Rule = Rule::new("xss-js-indirect-call", Category::Xss, CRITICAL, 1);
pub const ANY_TAG: Rule = Rule::new("xss-html-tag", Category::Xss, NOTICE, 3);

/// Elements that run script or load active content by themselves.
const DANGEROUS_TAGS: [&str; 14] = [
    "iframe", "frame", "frameset", "object", "embed", "applet", "base", "meta", "svg", "math",
    "isindex", "import", "xml", "xss",
];

/// Elements commonly abused with an event handler or a URI attribute.
const HTML_TAGS: [&str; 30] = [
    "img", "image", "body", "input", "form", "button", "video", "audio", "source", "details",
    "marquee", "style", "link", "a", "div", "span", "p", "table", "td", "select", "textarea",
    "keygen", "object", "animate", "set", "html", "title", "iframe", "svg", "b",
];

fn tag_name_at(b: &[u8], i: usize) -> (usize, usize) {
    let start = i;
    let mut end = i;
    while b
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b':')
    {
        end += 1;
    }
    (start, end)
}

pub fn detect(s: &str, out: &mut Vec<Rule>) {
    detect_with(s, &super::Present::of(s), out);
}

/// [`detect`] with the value's byte set computed once by the caller: the gates below are
/// lookups, not passes over the value.
pub(crate) fn detect_with(s: &str, p: &super::Present, out: &mut Vec<Rule>) {
    let b = s.as_bytes();
    let mut found: Vec<Rule> = Vec::new();
    let has_lt = p.has(b'<');
    if has_lt {
        tags(s, b, &mut found);
    }
    if p.has(b'o') && p.has(b'n') && s.contains("on") {
        handlers(b, &mut found);
    }
    if p.has(b':') {
        schemes(b, &mut found);
    }
    if p.any(b"(`") {
        js(s, b, &mut found);
    }
    add_once(out, found);
}

fn tags(s: &str, b: &[u8], out: &mut Vec<Rule>) {
    for lt in find_all(s, "<") {
        let mut i = lt + 1;
        if b.get(i) == Some(&b'/') {
            i += 1;
        }
        // `<` directly followed by a letter opens a tag; `<!` / `<?` are markup declarations.
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let (start, end) = tag_name_at(b, i);
        let name = s.get(start..end).unwrap_or_default();
        let terminated = matches!(
            b.get(end),
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/' | b'>')
        );
        if !terminated {
            continue;
        }
        if name == "script" {
            out.push(SCRIPT_TAG);
        } else if DANGEROUS_TAGS.contains(&name) {
            out.push(DANGEROUS_TAG);
        } else if HTML_TAGS.contains(&name) {
            out.push(ANY_TAG);
        }
    }
}

/// Event-handler attributes (`onerror=`). One forward pass: whether we are inside a tag and
/// whether a quote has been seen are tracked as we go, never by looking back (which would make a
/// value full of `onx=` quadratic).
fn handlers(b: &[u8], out: &mut Vec<Rule>) {
    let mut last_lt: Option<usize> = None;
    let mut last_gt: Option<usize> = None;
    let mut seen_quote = false;
    let mut i = 0;
    while i + 2 < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        match c {
            b'<' => last_lt = Some(i),
            b'>' => last_gt = Some(i),
            b'"' | b'\'' => seen_quote = true,
            _ => {}
        }
        let prev = if i == 0 { None } else { b.get(i - 1).copied() };
        if c == b'o' && b.get(i + 1) == Some(&b'n') && !prev.is_some_and(is_word) {
            let mut j = i + 2;
            while b.get(j).is_some_and(u8::is_ascii_lowercase) {
                j += 1;
            }
            let k = skip_ws(b, j);
            if j - i - 2 >= 3 && b.get(k) == Some(&b'=') && !inert_arrow(b, k + 1) {
                // Right after a quote that closed the attribute we were pasted into, or after
                // whitespace with such a quote earlier (`" autofocus onfocus=`).
                let breakout = matches!(prev, Some(b'"' | b'\'' | b'/' | b'`'))
                    || (matches!(prev, Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0c)) && seen_quote);
                let inside_tag = last_lt.is_some_and(|lt| {
                    b.get(lt + 1).is_some_and(u8::is_ascii_alphabetic)
                        && last_gt.is_none_or(|gt| gt <= lt)
                });
                if breakout || inside_tag || prev.is_none() {
                    out.push(EVENT_HANDLER);
                    return;
                }
            }
            // The handler name holds only letters: no `<`, `>` or quote skipped.
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
}

/// `onClick={() => setCount(1)}` (JSX in a code sample): as an HTML handler the body is a block
/// that defines an arrow function and never calls it, so it runs nothing. Bounded look-ahead.
fn inert_arrow(b: &[u8], from: usize) -> bool {
    let i = skip_ws(b, from);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    let j = skip_ws(b, i + 1);
    // `(args) =>` or `name =>`
    let mut k = j;
    if b.get(k) == Some(&b'(') {
        while k < j + 40 && b.get(k).is_some_and(|c| *c != b')') {
            k += 1;
        }
        k += 1;
    } else {
        while b.get(k).is_some_and(|c| is_word(*c)) {
            k += 1;
        }
        if k == j {
            return false;
        }
    }
    let k = skip_ws(b, k);
    b.get(k) == Some(&b'=') && b.get(k + 1) == Some(&b'>')
}

fn schemes(b: &[u8], out: &mut Vec<Rule>) {
    // Browsers drop tabs and newlines inside a URL scheme: compare while skipping them.
    for scheme in [&b"javascript"[..], b"vbscript", b"livescript", b"data"] {
        let mut i = 0;
        while i < b.len() {
            if let Some(end) = scheme_at(b, i, scheme) {
                if b.get(end) == Some(&b':')
                    && (i == 0
                        || !b
                            .get(i - 1)
                            .copied()
                            .is_some_and(|c| c.is_ascii_alphabetic()))
                {
                    let after = b.get(end + 1).copied();
                    if scheme == b"data" {
                        let rest = b.get(end + 1..).unwrap_or_default();
                        let rest = rest.get(..rest.len().min(40)).unwrap_or(rest);
                        let active = [
                            &b"text/html"[..],
                            b"image/svg",
                            b"text/javascript",
                            b"application/javascript",
                            b"application/x-javascript",
                            b"text/xml",
                            b"application/xhtml",
                        ];
                        if active.iter().any(|a| rest.starts_with(a)) {
                            out.push(SCRIPT_URI);
                            return;
                        }
                    } else if after.is_some_and(|c| !c.is_ascii_whitespace()) {
                        out.push(SCRIPT_URI);
                        return;
                    }
                }
            }
            i += 1;
        }
    }
}

/// The end of `scheme` if it is spelled at `i`, allowing tabs/newlines between its letters.
fn scheme_at(b: &[u8], i: usize, scheme: &[u8]) -> Option<usize> {
    let mut j = i;
    for (n, &want) in scheme.iter().enumerate() {
        if n > 0 {
            while matches!(b.get(j), Some(b'\t' | b'\n' | b'\r' | 0)) {
                j += 1;
            }
        }
        if b.get(j) != Some(&want) {
            return None;
        }
        j += 1;
    }
    while matches!(b.get(j), Some(b'\t' | b'\n' | b'\r' | 0)) {
        j += 1;
    }
    Some(j)
}

const JS_CALLS: [&str; 12] = [
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "fetch",
    "atob",
    "document.write",
    "string.fromcharcode",
    "window.open",
    "function",
];

/// Sinks an attacker calls indirectly. `print` is in: it opens a dialog like `alert`.
const INDIRECT_SINKS: [&str; 11] = [
    "alert",
    "prompt",
    "confirm",
    "eval",
    "print",
    "function",
    "settimeout",
    "setinterval",
    "execscript",
    "constructor",
    "open",
];

fn is_sink(name: &str) -> bool {
    INDIRECT_SINKS.contains(&name)
}

/// The indirect call shapes of [`INDIRECT_CALL`].
fn indirect(s: &str, b: &[u8], out: &mut Vec<Rule>) {
    // `alert.call(`, `eval.apply(`, `prompt.bind(`
    for m in [".call(", ".apply(", ".bind("] {
        for at in find_all(s, m) {
            let mut j = at;
            while j > 0 && b.get(j - 1).is_some_and(|c| is_word(*c)) {
                j -= 1;
            }
            if is_sink(s.get(j..at).unwrap_or_default()) && s.get(j..at) != Some("open") {
                out.push(INDIRECT_CALL);
            }
        }
    }
    // `x['al'+'ert'](`, `top["eval"]`, ``self[`alert`]` ``: the bracket's text without quotes,
    // `+` and spaces, then a call.
    for (at, _) in s.match_indices('[') {
        let inner_start = at + 1;
        let Some(q) = b.get(inner_start) else {
            continue;
        };
        if !matches!(q, b'\'' | b'"' | b'`') {
            continue;
        }
        // Bounded: searching the whole rest for `]` from every `['` would be quadratic.
        let rest = super::prefix(s.get(inner_start..).unwrap_or_default(), 49);
        let Some(close) = rest.find(']') else {
            continue;
        };
        let name: String = rest
            .get(..close)
            .unwrap_or_default()
            .chars()
            .filter(|c| !matches!(c, '\'' | '"' | '`' | '+' | ' '))
            .collect();
        let after = skip_ws(b, inner_start + close + 1);
        if is_sink(&name) && matches!(b.get(after), Some(b'(' | b'`')) {
            out.push(INDIRECT_CALL);
        }
    }
    // `(alert)(1)`, `(0,eval)('…')`
    for (at, _) in s.match_indices(')') {
        if b.get(at + 1) != Some(&b'(') && b.get(at + 1) != Some(&b'`') {
            continue;
        }
        let mut j = at;
        while j > 0 && b.get(j - 1).is_some_and(|c| is_word(*c)) {
            j -= 1;
        }
        let opened = j > 0 && matches!(b.get(j - 1), Some(b'(' | b','));
        if opened && is_sink(s.get(j..at).unwrap_or_default()) {
            out.push(INDIRECT_CALL);
        }
    }
    // ``print`1` ``: a tagged template calls the function. Not `` `print` `` (markdown code).
    for (at, _) in s.match_indices('`') {
        let mut j = at;
        while j > 0 && b.get(j - 1).is_some_and(|c| is_word(*c)) {
            j -= 1;
        }
        let before = j.checked_sub(1).and_then(|p| b.get(p));
        if j < at
            && !matches!(before, Some(b'`' | b'.'))
            && is_sink(s.get(j..at).unwrap_or_default())
        {
            out.push(INDIRECT_CALL);
        }
    }
    // `x=>alert(1)`: an arrow function whose body is a sink call.
    for at in find_all(s, "=>") {
        let j = skip_ws(b, at + 2);
        let mut k = j;
        while b.get(k).is_some_and(|c| is_word(*c)) {
            k += 1;
        }
        if is_sink(s.get(j..k).unwrap_or_default())
            && s.get(j..k) != Some("open")
            && matches!(b.get(skip_ws(b, k)), Some(b'(' | b'`'))
        {
            out.push(INDIRECT_CALL);
        }
    }
}

fn js(s: &str, b: &[u8], out: &mut Vec<Rule>) {
    // Only reached with a `(` or a backtick in the value: every indirect shape has one.
    indirect(s, b, out);
    for call in JS_CALLS {
        for at in find_all(s, call) {
            let end = skip_ws(b, at + call.len());
            let callable = matches!(b.get(end), Some(b'(' | b'`'));
            let standalone = at == 0
                || !b
                    .get(at - 1)
                    .copied()
                    .is_some_and(|c| is_word(c) || c == b'.');
            if !(callable && standalone) {
                continue;
            }
            out.push(JS_SINK);
            // A string break-out right before the call: `';alert(1)//`, `"-alert(1)-"`.
            let before = b.get(..at).unwrap_or_default();
            let mut k = before.len();
            while k > 0 && before.get(k - 1).is_some_and(|c| c.is_ascii_whitespace()) {
                k -= 1;
            }
            if k > 0
                && matches!(
                    before.get(k - 1),
                    Some(
                        b';' | b'+' | b'-' | b'*' | b'|' | b'&' | b'(' | b'{' | b'}' | b'>' | b'='
                    )
                )
            {
                let quote = before
                    .get(..k - 1)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find(|c| !c.is_ascii_whitespace());
                if matches!(quote, Some(b'\'' | b'"' | b'`' | b')' | b'>' | b';')) || k == 1 {
                    out.push(JS_BREAKOUT);
                }
            }
            // `fetch(` and `atob(` start honest code samples too (`fetch(url).then(…)`); alone they
            // stay a sink finding, below the threshold.
            if k == 0
                && matches!(b.get(end), Some(b'(' | b'`'))
                && !matches!(call, "fetch" | "atob")
            {
                // The whole value is a call: `alert(1)`, `eval(atob(...))`.
                out.push(JS_BREAKOUT);
            }
        }
    }
    for sink in [
        "document.cookie",
        "document.domain",
        "document.location",
        "window.location",
        ".innerhtml",
        "constructor.constructor",
        "top[",
        "self[",
    ] {
        if s.contains(sink) {
            out.push(JS_SINK);
        }
    }
    if s.contains("expression(")
        || s.contains("-moz-binding")
        || s.contains("behavior:url")
        || s.contains("srcdoc")
    {
        out.push(CSS_EXPRESSION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(s: &str) -> Vec<&'static str> {
        crate::detect::rule_ids(detect, s)
    }

    #[test]
    fn attacks() {
        assert!(rules("<script>alert(1)</script>").contains(&"xss-script-tag"));
        assert!(rules("<SCRIPT src=//x.y/a.js>").contains(&"xss-script-tag"));
        assert!(rules("<img src=x onerror=alert(1)>").contains(&"xss-event-handler"));
        assert!(rules("\" onmouseover=\"alert(1)").contains(&"xss-event-handler"));
        assert!(rules("<svg/onload=alert(1)>").contains(&"xss-event-handler"));
        assert!(rules("java\tscript:alert(1)").contains(&"xss-script-uri"));
        assert!(rules("data:text/html;base64,PHNjcmlwdD4=").contains(&"xss-script-uri"));
        assert!(rules("';alert(String.fromCharCode(88))//").contains(&"xss-js-breakout"));
        assert!(rules("<iframe src=\"x\">").contains(&"xss-dangerous-tag"));
    }

    #[test]
    fn honest_text() {
        for s in [
            "JavaScript: The Good Parts",
            "use a < b and b > c",
            "Turn it on = yes",
            "the condition=ok; onboarding done",
            "console.log(\"hi\")",
            "1 < 2",
            "metadata: none",
            "I'd like some data: 3 rows",
            "see https://example.com/a?b=c",
        ] {
            let r = rules(s);
            assert!(r.iter().all(|r| *r == "xss-html-tag"), "{s}: {r:?}");
        }
    }
}
