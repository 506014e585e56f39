//! The pure core: a request head (and, when needed, its body) in, an [`Outcome`] out. The adapter
//! feeds it what the host has and applies what it returns.

use std::borrow::Cow;
use std::collections::BTreeMap;

use portcullis_common::config::Mode;
use portcullis_common::decision::{Decision, Outcome as DecisionOutcome};

use crate::body::{self, Kind, MultipartError, UploadProblem};
use crate::charset::{self, Charset};
use crate::config::{Charsets, Compiled, Compressed, Policy, UnknownContentType};
use crate::decode::{self, canonicalize};
use crate::decompress::{self, Encoding, InflateError};
use crate::detect::{self, names, nosql, scanner, Category, Rule};
use crate::graphql;
use crate::json::{self, JsonError, Node};
use crate::xml::{self, XmlError};

/// Findings kept per request: enough to explain a block, bounded whatever the request holds.
const MAX_HITS: usize = 32;

/// Values up to this length have their detector results remembered for the rest of the request
/// (see [`Findings::scan`]): short values are the ones that repeat (the keys of every object in
/// a JSON array, enumerations), and a cap keeps the memo small whatever the request holds.
const MEMO_MAX_LEN: usize = 64;
const MEMO_MAX_ENTRIES: usize = 256;
/// The memo starts with a request's 17th value: a head of a few distinct headers has nothing to
/// reuse, and copying each value into the memo cost more than scanning it again would have.
const MEMO_FROM: usize = 16;

/// The request as the adapter read it from the host.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub method: &'a str,
    pub authority: &'a str,
    /// `:path`, with its query string.
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    /// Whether a body follows the headers.
    pub has_body: bool,
}

impl Head<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A rule that fired, and where. `field` names the location (`query.id`, `body.user.name`);
/// names taken from the request are cleaned before they reach a log or the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: Rule,
    pub field: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// Shadow mode: would have denied.
    WouldDeny,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub status: u16,
    /// Machine reason (`sqli_detected`, `body_too_large` …).
    pub reason: String,
    /// Human explanation, never containing what the client sent.
    pub detail: String,
    /// The finding that decided, if a detector decided.
    pub top: Option<Hit>,
    pub score: u32,
    pub findings: usize,
    pub security_event: bool,
    /// The policy's route, for logs.
    pub route: String,
}

impl Outcome {
    fn allow(score: u32, findings: usize, route: &str) -> Outcome {
        Outcome {
            verdict: Verdict::Allow,
            status: 200,
            reason: String::new(),
            detail: String::new(),
            top: None,
            score,
            findings,
            security_event: false,
            route: route.to_string(),
        }
    }

    fn deny(policy: &Policy, status: u16, reason: &str, detail: String) -> Outcome {
        Outcome {
            verdict: match policy.mode {
                Mode::Enforce => Verdict::Deny,
                Mode::Shadow => Verdict::WouldDeny,
            },
            status,
            reason: reason.to_string(),
            detail,
            top: None,
            score: 0,
            findings: 0,
            security_event: false,
            route: policy.route.clone(),
        }
    }

    /// The decision published for the audit record: category, rule, score and field, never the
    /// payload.
    pub fn decision(&self) -> Decision {
        let mut d = match self.verdict {
            Verdict::Allow => Decision::allow(),
            Verdict::Deny => Decision::deny(self.status, &self.reason),
            Verdict::WouldDeny => Decision {
                outcome: DecisionOutcome::ShadowDeny,
                ..Decision::deny(self.status, &self.reason)
            },
        };
        d.security_event = self.security_event && self.verdict != Verdict::Allow;
        if self.score > 0 {
            d = d.with("score", self.score);
        }
        if let Some(hit) = &self.top {
            d = d
                .with("category", hit.rule.category.name())
                .with("rule", hit.rule.id)
                .with("field", hit.field.clone());
        }
        d
    }
}

/// Keeps only characters safe for a log line or an audit record, and at most 64 of them.
pub fn clean_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '[' | ']' | '*' | '{' | '}')
            {
                c
            } else {
                '?'
            }
        })
        .collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Where a value sits, for the field label of a finding. The label (`header.x-request-id`,
/// `query.q`) is only written out when the value has a finding that counts at the policy's
/// paranoia: most values have none, and formatting a label for each of them was a large part of
/// the cost of a clean request.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    /// A label already written out (`path`, `body.items[0].name`).
    Text(&'a str),
    /// `prefix.name`: a header, parameter or cookie value.
    Named(&'a str, &'a str),
    /// `prefix{name}`: a parameter or cookie name (the name itself is not repeated: it may be the
    /// payload).
    NameOf(&'a str),
}

impl<'a> Field<'a> {
    fn label(self) -> Cow<'a, str> {
        match self {
            Field::Text(t) => Cow::Borrowed(t),
            Field::Named(prefix, name) => Cow::Owned(format!("{prefix}.{name}")),
            Field::NameOf(prefix) => Cow::Owned(format!("{prefix}{{name}}")),
        }
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(t: &'a str) -> Self {
        Field::Text(t)
    }
}

impl<'a> From<&'a String> for Field<'a> {
    fn from(t: &'a String) -> Self {
        Field::Text(t)
    }
}

/// Findings accumulated over one request, with the policy's paranoia level and exclusions
/// applied as they arrive.
struct Findings<'p> {
    policy: &'p Policy,
    hits: Vec<Hit>,
    score: u32,
    count: usize,
    /// What the detectors found in short values already scanned in this request. Never kept
    /// across requests: the values may be secrets (cookies, passwords), which must neither stay
    /// in memory nor make a later request measurably faster when it repeats them.
    memo: BTreeMap<Vec<u8>, Vec<Rule>>,
    /// Values scanned so far (see [`MEMO_FROM`]).
    scanned: usize,
}

impl<'p> Findings<'p> {
    fn new(policy: &'p Policy) -> Self {
        Findings {
            policy,
            hits: Vec::new(),
            score: 0,
            count: 0,
            memo: BTreeMap::new(),
            scanned: 0,
        }
    }

    fn add<'f>(&mut self, rule: Rule, field: impl Into<Field<'f>>) {
        if rule.paranoia > self.policy.paranoia {
            return;
        }
        let field = field.into().label();
        let field = field.as_ref();
        if self
            .policy
            .exclusions
            .iter()
            .any(|e| e.covers(field, rule.category))
        {
            return;
        }
        self.score = self.score.saturating_add(rule.score);
        self.count += 1;
        if self.hits.len() < MAX_HITS {
            self.hits.push(Hit {
                rule,
                field: clean_name(field),
            });
        }
    }

    fn add_all<'f>(&mut self, rules: &[Rule], field: impl Into<Field<'f>>) {
        let field = field.into();
        for r in rules {
            self.add(*r, field);
        }
    }

    /// Canonicalises a value and runs every value detector on it.
    fn scan<'f>(&mut self, field: impl Into<Field<'f>>, raw: &[u8]) {
        let field = field.into();
        if raw.is_empty() {
            return;
        }
        // The detectors are pure functions of the raw value and the decode passes, so a value
        // seen earlier in this request is not canonicalised and scanned again; paranoia and
        // exclusions depend on the field and are applied to every occurrence by `add`.
        self.scanned += 1;
        let memo_key = (self.scanned > MEMO_FROM && raw.len() <= MEMO_MAX_LEN).then_some(raw);
        if let Some(rules) = memo_key.and_then(|k| self.memo.get(k)) {
            let rules = rules.clone();
            self.add_all(&rules, field);
            return;
        }
        let canon = canonicalize(raw, self.policy.decode_passes);
        let mut rules = Vec::new();
        detect::scan_value(&canon, &mut rules);
        self.add_all(&rules, field);
        if let Some(key) = memo_key {
            if self.memo.len() >= MEMO_MAX_ENTRIES {
                self.memo.clear();
            }
            self.memo.insert(key.to_vec(), rules);
        }
    }

    /// What the value detectors find in a value, without the memo (the caller keeps its own).
    fn value_rules(&self, raw: &[u8], out: &mut Vec<Rule>) {
        if raw.is_empty() {
            return;
        }
        let canon = canonicalize(raw, self.policy.decode_passes);
        detect::scan_value(&canon, out);
    }

    /// A query or form parameter: its name (operators, injection) and its value.
    fn scan_param(&mut self, prefix: &str, name: &[u8], value: &[u8]) {
        self.scan_pair(prefix, name, value, names::check_param_name);
    }

    /// A cookie: its name is the client's text like a parameter name (`${jndi:...}=1` reaches
    /// every server that logs cookie names), and its value.
    fn scan_cookie(&mut self, name: &[u8], value: &[u8]) {
        self.scan_pair("cookie", name, value, names::check_cookie_name);
    }

    /// A name and its value: `check_name` for what only names carry, every value detector on
    /// both.
    fn scan_pair(
        &mut self,
        prefix: &str,
        name: &[u8],
        value: &[u8],
        check_name: fn(&str, &mut Vec<Rule>),
    ) {
        let name_text = String::from_utf8_lossy(name);
        let field = Field::Named(prefix, &name_text);
        // Findings in the name are reported without the name: it may be the payload.
        let name_field = Field::NameOf(prefix);
        let mut rules = Vec::new();
        check_name(&name_text, &mut rules);
        self.add_all(&rules, name_field);
        self.scan(name_field, name);
        self.scan(field, value);
        self.scan_named(&name_text, field, value);
    }

    /// Checks that need the name of what carries a value (a URL in `callback_url`, a remote
    /// file in `page`); only names that ask for one cost a second look at the value.
    fn scan_named<'f>(&mut self, name: &str, field: impl Into<Field<'f>>, raw: &[u8]) {
        if raw.is_empty() || !names::wants_value(name) {
            return;
        }
        let canon = canonicalize(raw, self.policy.decode_passes);
        let mut rules = Vec::new();
        names::check_named_value(name, &canon.lower, &mut rules);
        self.add_all(&rules, field);
    }

    fn blocking(&self) -> bool {
        self.score >= self.policy.threshold
    }

    fn outcome(self) -> Outcome {
        let policy = self.policy;
        if !self.blocking() {
            return Outcome::allow(self.score, self.count, &policy.route);
        }
        // The decisive finding: the highest-scoring one, first seen on a tie.
        let top = self
            .hits
            .iter()
            .fold(None::<&Hit>, |best, h| match best {
                Some(b) if b.rule.score >= h.rule.score => Some(b),
                _ => Some(h),
            })
            .cloned();
        let (reason, detail) = match &top {
            Some(hit) => (
                format!("{}_detected", hit.rule.category.name()),
                format!(
                    "request blocked: {} (rule {}) in the {}; anomaly score {} reached the threshold {}",
                    hit.rule.category.name(),
                    hit.rule.id,
                    location(&hit.field),
                    self.score,
                    policy.threshold
                ),
            ),
            None => ("attack_detected".to_string(), "request blocked".to_string()),
        };
        let mut o = Outcome::deny(policy, 403, &reason, detail);
        o.top = top;
        o.score = self.score;
        o.findings = self.count;
        o.security_event = true;
        o
    }
}

/// The kind of place a field is, for the client-facing detail (never the name, which the client
/// chose).
fn location(field: &str) -> &'static str {
    match field.split('.').next().unwrap_or_default() {
        "path" => "path",
        "query" => "query string",
        "header" => "headers",
        "cookie" => "cookies",
        _ => "body",
    }
}

/// The result of looking at the head.
#[derive(Debug)]
pub enum Step {
    Done(Outcome),
    /// Buffer the body (up to `limit` bytes) and call [`finish`] with it.
    NeedBody(Pending),
}

/// What the head inspection leaves for the body inspection.
#[derive(Debug, Clone)]
pub struct Pending {
    route_key: (String, String, String),
    kind: Kind,
    encoding: Encoding,
    /// The declared charset; `None`: none declared (a UTF-16/32 byte-order mark is honoured).
    charset: Option<Charset>,
    head_hits: Vec<Hit>,
    head_score: u32,
    head_count: usize,
    pub limit: usize,
}

/// Inspects the request head: method and content type allow-lists, declared length, path, query,
/// configured headers and cookies.
pub fn inspect_head(compiled: &Compiled, head: &Head<'_>) -> Step {
    let policy = compiled.policy_for(head.method, head.authority, head.path);
    if !policy.inspect {
        return Step::Done(Outcome::allow(0, 0, &policy.route));
    }
    if !policy.allowed_methods.is_empty()
        && !policy.allowed_methods.iter().any(|m| m == head.method)
    {
        return Step::Done(Outcome::deny(
            policy,
            405,
            "method_not_allowed",
            format!("method {} is not allowed here", clean_name(head.method)),
        ));
    }
    let (media, kind) = body::classify(head.header("content-type"));
    let carries_body = head.has_body
        || head
            .header("content-length")
            .is_some_and(|l| l.trim() != "0");
    if carries_body || kind != Kind::Missing {
        if !body::media_allowed(&media, &policy.allowed_content_types) {
            return Step::Done(unsupported(policy));
        }
        if matches!(kind, Kind::Other)
            && policy.unknown_content_type == UnknownContentType::Refuse
            && carries_body
        {
            return Step::Done(unsupported(policy));
        }
        if policy.schema.is_some() && carries_body && kind != Kind::Json {
            return Step::Done(unsupported(policy));
        }
        if kind == Kind::Ambiguous {
            return Step::Done(malformed(
                policy,
                "content_type_ambiguous",
                "the Content-Type header names a parameter twice",
            ));
        }
    }
    let encoding = match decompress::encoding(head.header("content-encoding")) {
        Some(Encoding::Identity) => Encoding::Identity,
        Some(e) if policy.compressed_bodies == Compressed::Decompress => e,
        _ if !carries_body => Encoding::Identity,
        _ => {
            return Step::Done(Outcome::deny(
                policy,
                415,
                "unsupported_content_encoding",
                "this content encoding is not accepted here".to_string(),
            ))
        }
    };
    let charset = match body::charset(head.header("content-type")) {
        // A multipart body's parts carry their own types; its header's charset means nothing.
        _ if matches!(kind, Kind::Multipart(_)) => None,
        None => None,
        Some(label) => match Charset::from_label(&label) {
            Some(Charset::Utf8) => Some(Charset::Utf8),
            Some(cs) if policy.charsets == Charsets::Decode => Some(cs),
            _ if !carries_body => None,
            _ => return Step::Done(unsupported_charset(policy)),
        },
    };
    if let Some(len) = head
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        if len > policy.body_limit as u64 {
            return Step::Done(too_large(policy));
        }
    }

    let mut f = Findings::new(policy);
    let (path, query) = match head.path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (head.path, ""),
    };
    f.scan("path", path.as_bytes());
    for (name, value) in decode::form_pairs(query.as_bytes()) {
        f.scan_param("query", &name, &value);
    }
    for (name, value) in head.headers {
        // Pseudo-headers are the method, path and authority, inspected as such above.
        if name.starts_with(':') || skipped(&policy.skip_headers, name) {
            continue;
        }
        if name.eq_ignore_ascii_case("cookie") {
            for pair in value.split(';') {
                // A pair without `=` is a name to some servers and a value to others: scanned
                // as a name, which every detector sees all the same.
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                f.scan_cookie(k.trim().as_bytes(), v.trim().as_bytes());
            }
            continue;
        }
        let field = Field::Named("header", name);
        if name.eq_ignore_ascii_case("user-agent") {
            let mut rules = Vec::new();
            scanner::check_user_agent(&value.to_ascii_lowercase(), &mut rules);
            f.add_all(&rules, field);
        }
        f.scan(field, value.as_bytes());
    }

    let inspect_body = match &kind {
        Kind::Json | Kind::Form | Kind::Multipart(_) | Kind::Xml | Kind::GraphQl | Kind::Text => {
            true
        }
        Kind::Missing | Kind::Other | Kind::Ambiguous => {
            policy.unknown_content_type == UnknownContentType::InspectAsText
        }
    };
    if f.blocking() || !carries_body || !inspect_body {
        return Step::Done(f.outcome());
    }
    Step::NeedBody(Pending {
        route_key: (
            head.method.to_string(),
            head.authority.to_string(),
            head.path.to_string(),
        ),
        kind,
        encoding,
        charset,
        head_hits: f.hits,
        head_score: f.score,
        head_count: f.count,
        limit: policy.body_limit,
    })
}

/// Whether a header is in the skip list (lower-case names; a trailing `*` is a prefix).
fn skipped(skip: &[String], name: &str) -> bool {
    skip.iter().any(|s| match s.strip_suffix('*') {
        Some(prefix) => name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        None => name.eq_ignore_ascii_case(s),
    })
}

fn unsupported(policy: &Policy) -> Outcome {
    Outcome::deny(
        policy,
        415,
        "unsupported_media_type",
        "this content type is not accepted here".to_string(),
    )
}

fn unsupported_charset(policy: &Policy) -> Outcome {
    Outcome::deny(
        policy,
        415,
        "unsupported_charset",
        "this charset is not accepted here".to_string(),
    )
}

fn too_large(policy: &Policy) -> Outcome {
    Outcome::deny(
        policy,
        413,
        "body_too_large",
        format!(
            "the request body is larger than the {} bytes this route accepts",
            policy.body_limit
        ),
    )
}

fn malformed(policy: &Policy, reason: &str, detail: &str) -> Outcome {
    Outcome::deny(policy, 400, reason, detail.to_string())
}

/// The body grew past the limit while buffering.
pub fn body_over_limit(compiled: &Compiled, pending: &Pending) -> Outcome {
    let (m, a, p) = &pending.route_key;
    too_large(compiled.policy_for(m, a, p))
}

/// Inspects the complete body.
pub fn inspect_body(compiled: &Compiled, pending: &Pending, body: &[u8]) -> Outcome {
    let (m, a, p) = &pending.route_key;
    let policy = compiled.policy_for(m, a, p);
    if body.len() > policy.body_limit {
        return too_large(policy);
    }
    let inflated;
    let body = match pending.encoding {
        Encoding::Identity => body,
        e => {
            match decompress::inflate(e, body, policy.body_limit, policy.max_decompression_ratio) {
                Ok(b) => {
                    inflated = b;
                    &inflated[..]
                }
                Err(InflateError::TooLarge) => return too_large(policy),
                Err(InflateError::Bomb) => {
                    let mut o = Outcome::deny(
                        policy,
                        413,
                        "decompression_bomb",
                        format!(
                            "the request body inflates more than {} times its size",
                            policy.max_decompression_ratio
                        ),
                    );
                    o.security_event = true;
                    return o;
                }
                Err(InflateError::Malformed) => {
                    return malformed(
                        policy,
                        "malformed_compressed_body",
                        "the request body does not inflate in its declared content encoding",
                    )
                }
            }
        }
    };
    let decoded;
    // The charset the body arrived in (multipart parts carry their own).
    let mut source = Charset::Utf8;
    let body = if matches!(pending.kind, Kind::Multipart(_)) {
        body
    } else {
        // A body declared as something other than text (an image, `application/octet-stream`)
        // is only sniffed for a BOM: its NULs are data.
        let textual = !matches!(pending.kind, Kind::Other | Kind::Ambiguous);
        let cs = pending.charset.unwrap_or_else(|| {
            if textual {
                Charset::sniff_text(body)
            } else {
                Charset::sniff(body)
            }
        });
        source = cs;
        if cs != Charset::Utf8 && policy.charsets == Charsets::Utf8Only {
            return unsupported_charset(policy);
        }
        match charset::decode(cs, body) {
            Ok(b) => {
                decoded = b;
                &decoded[..]
            }
            Err(charset::Malformed) => {
                return malformed(
                    policy,
                    "malformed_charset",
                    "the request body does not decode in its charset",
                )
            }
        }
    };
    let mut f = Findings::new(policy);
    f.hits = pending.head_hits.clone();
    f.score = pending.head_score;
    f.count = pending.head_count;
    match &pending.kind {
        Kind::Json => {
            let doc = match json::parse(body) {
                Ok(v) => v,
                Err(JsonError::TooDeep) => {
                    return malformed(
                        policy,
                        "json_too_deep",
                        "the JSON body is nested too deeply",
                    )
                }
                Err(JsonError::DuplicateKey) => {
                    return malformed(
                        policy,
                        "json_duplicate_key",
                        "an object in the JSON body names the same key twice",
                    )
                }
                Err(JsonError::Malformed) => {
                    return malformed(policy, "malformed_json", "the body is not valid JSON")
                }
            };
            let mut walk = JsonWalk {
                f: &mut f,
                fields: 0,
                max_fields: policy.json.max_fields,
                max_depth: policy.json.max_depth,
                keys: BTreeMap::new(),
            };
            let mut path = String::from("body");
            if let Err(reason) = walk.value(&doc, &mut path, 0) {
                return match reason {
                    JsonLimit::Depth => malformed(
                        policy,
                        "json_too_deep",
                        "the JSON body is nested too deeply",
                    ),
                    JsonLimit::Fields => malformed(
                        policy,
                        "json_too_many_fields",
                        "the JSON body has too many fields",
                    ),
                };
            }
            if let Some(refusal) = graphql_in_json(&mut f, &doc) {
                return refusal;
            }
            if f.blocking() {
                return f.outcome();
            }
            if let Some(schema) = &policy.schema {
                // The schema checks numbers and values, which the inspection's tree does not
                // keep: the body, a valid document without repeated keys, read again as a `Value`.
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
                    return malformed(policy, "malformed_json", "the body is not valid JSON");
                };
                if let Some(v) = schema.validate(&value) {
                    let mut o = Outcome::deny(
                        policy,
                        400,
                        "schema_violation",
                        format!("{}: {}", v.path, v.message),
                    );
                    o.score = f.score;
                    return o;
                }
            }
        }
        Kind::Form => {
            for (name, value) in decode::form_pairs(body) {
                f.scan_param("body", &name, &value);
            }
        }
        Kind::Multipart(boundary) => {
            match body::multipart(body, boundary, policy.uploads.max_parts) {
                Ok(parts) => {
                    for part in parts {
                        // The name is the client's text, like a form parameter's: inspected,
                        // and reported without itself.
                        f.scan("body{name}", part.name.as_bytes());
                        let field = format!("body.{}", part.name);
                        match &part.filename {
                            None => f.scan(&field, part.data),
                            Some(filename) => {
                                f.scan(&format!("{field}{{filename}}"), filename.as_bytes());
                                if let Some(other) = &part.other_filename {
                                    f.scan(&format!("{field}{{filename}}"), other.as_bytes());
                                }
                                if let Some(problem) = body::check_upload(&part, &policy.uploads) {
                                    f.add(upload_rule(problem), &field);
                                }
                            }
                        }
                    }
                }
                Err(MultipartError::Malformed) => {
                    return malformed(
                        policy,
                        "malformed_multipart",
                        "the multipart body is malformed or truncated",
                    )
                }
                Err(MultipartError::TooManyParts) => {
                    return malformed(
                        policy,
                        "too_many_parts",
                        "the multipart body has too many parts",
                    )
                }
                Err(MultipartError::Ambiguous) => {
                    return malformed(
                        policy,
                        "multipart_ambiguous",
                        "a part of the multipart body has headers servers read differently \
                         (a repeated Content-Disposition or parameter, a Content-Transfer-Encoding)",
                    )
                }
            }
        }
        Kind::Xml => {
            if let Some(refusal) = inspect_xml(&mut f, body, source) {
                return refusal;
            }
        }
        Kind::GraphQl => {
            // A document that is not UTF-8 is refused, never inspected as an empty one: the
            // upstream may read past the bad byte and run what the detectors never saw.
            let Ok(text) = std::str::from_utf8(body) else {
                return malformed(
                    policy,
                    "malformed_graphql",
                    "the GraphQL document is not valid UTF-8",
                );
            };
            if let Some(refusal) = inspect_graphql(&mut f, "body", text) {
                return refusal;
            }
        }
        Kind::Text | Kind::Other | Kind::Missing | Kind::Ambiguous => f.scan("body", body),
    }
    f.outcome()
}

/// Hands every value of an XML body to the detectors; refuses what cannot be inspected safely.
/// `source` is the charset the body arrived in: an XML declaration naming another encoding
/// (UTF-7, UTF-16 in a UTF-8 body, EBCDIC, ...) makes the upstream's parser read other
/// characters than every filter in front of it, so it is refused.
fn inspect_xml(f: &mut Findings<'_>, body: &[u8], source: Charset) -> Option<Outcome> {
    struct Scan<'a, 'p>(&'a mut Findings<'p>, String);
    impl xml::Visitor for Scan<'_, '_> {
        fn value(&mut self, path: &str, value: &str) {
            self.1.clear();
            self.1.push_str("body");
            if !path.starts_with('{') {
                self.1.push('.');
            }
            self.1.push_str(path);
            self.0.scan(&self.1, value.as_bytes());
        }
    }
    let policy = f.policy;
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(malformed(
            policy,
            "malformed_xml",
            "the body is not well-formed XML",
        ));
    };
    if !xml::declared_encoding_agrees(text, source) {
        let mut o = Outcome::deny(
            policy,
            403,
            "xml_encoding_switch_detected",
            "the XML declaration names another encoding than the body arrived in".to_string(),
        );
        o.security_event = true;
        return Some(o);
    }
    let mut scan = Scan(f, String::new());
    let result = xml::walk(
        text,
        policy.json.max_depth,
        policy.json.max_fields,
        &mut scan,
    );
    let (status, reason, detail) = match result {
        Ok(()) => return None,
        Err(XmlError::Malformed) => (400, "malformed_xml", "the body is not well-formed XML"),
        Err(XmlError::TooDeep) => (400, "xml_too_deep", "the XML body is nested too deeply"),
        Err(XmlError::TooManyNodes) => {
            (400, "xml_too_many_nodes", "the XML body has too many nodes")
        }
        Err(XmlError::EntityDeclared) => (
            403,
            "xml_entity_detected",
            "the XML body declares an entity or an external DTD, which is never accepted",
        ),
    };
    let mut o = Outcome::deny(policy, status, reason, detail.to_string());
    o.security_event = status == 403;
    Some(o)
}

/// A GraphQL document: its string arguments to the detectors, introspection refused where the
/// route asks for it.
fn inspect_graphql(f: &mut Findings<'_>, field: &str, text: &str) -> Option<Outcome> {
    let policy = f.policy;
    let Ok(doc) = graphql::lex(text, policy.json.max_fields) else {
        return Some(malformed(
            policy,
            "malformed_graphql",
            "the GraphQL document does not tokenize",
        ));
    };
    if doc.introspection && policy.refuse_graphql_introspection {
        let mut o = Outcome::deny(
            policy,
            403,
            "graphql_introspection",
            "schema introspection is not allowed here".to_string(),
        );
        o.security_event = true;
        return Some(o);
    }
    let at = format!("{field}{{string}}");
    for s in &doc.strings {
        f.scan(&at, s.as_bytes());
    }
    None
}

/// A JSON body that carries a GraphQL request (`{"query": "...", "variables": {...}}`, or a batch
/// of them): the document inside `query` is inspected as GraphQL.
fn graphql_in_json(f: &mut Findings<'_>, doc: &Node<'_>) -> Option<Outcome> {
    let requests: Vec<&Node<'_>> = match doc {
        Node::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    for (i, r) in requests.iter().enumerate() {
        let Some(query) = r.get("query").and_then(Node::as_str) else {
            continue;
        };
        if !graphql::looks_like_document(query) {
            continue;
        }
        let field = if matches!(doc, Node::Array(_)) {
            format!("body[{i}].query")
        } else {
            "body.query".to_string()
        };
        if let Some(refusal) = inspect_graphql(f, &field, query) {
            return Some(refusal);
        }
    }
    None
}

pub const UPLOAD_EXTENSION: Rule =
    Rule::new("upload-extension", Category::Upload, detect::CRITICAL, 1);
pub const UPLOAD_TYPE: Rule = Rule::new(
    "upload-declared-type",
    Category::Upload,
    detect::CRITICAL,
    1,
);
pub const UPLOAD_CONTENT: Rule =
    Rule::new("upload-magic-bytes", Category::Upload, detect::CRITICAL, 1);

fn upload_rule(p: UploadProblem) -> Rule {
    match p {
        UploadProblem::Extension => UPLOAD_EXTENSION,
        UploadProblem::DeclaredType => UPLOAD_TYPE,
        UploadProblem::Content => UPLOAD_CONTENT,
    }
}

enum JsonLimit {
    Depth,
    Fields,
}

/// What a key alone tells, remembered per request: the same keys come back in every item of an
/// array, and their checks (lower-casing, a dozen substring searches, every value detector) gave
/// the same answer each time.
struct KeyFacts {
    /// [`names::check_key`]'s rules, then the value detectors' on the key's text.
    rules: Vec<Rule>,
    /// [`names::wants_value`].
    wants_value: bool,
}

/// Keys remembered per document, at most (then forgotten, so the memo stays small).
const KEY_MEMO_ENTRIES: usize = 256;

struct JsonWalk<'a, 'p, 'd> {
    f: &'a mut Findings<'p>,
    fields: usize,
    max_fields: usize,
    max_depth: usize,
    keys: BTreeMap<&'d str, KeyFacts>,
}

impl<'d> JsonWalk<'_, '_, 'd> {
    /// Checks a key (findings against `field`), from the memo when this document had it before;
    /// returns whether its value wants a named check.
    fn key(&mut self, parent: Option<&str>, key: &'d str, field: &str) -> bool {
        if let Some(facts) = self.keys.get(key) {
            self.f.add_all(&facts.rules, field);
            return facts.wants_value;
        }
        let mut rules = Vec::new();
        names::check_key(parent, key, &mut rules);
        // The detectors add a rule once per list: the key's text gets a list of its own, as
        // `Findings::scan` gives it, so a rule both checks find is counted twice as before.
        let mut text_rules = Vec::new();
        self.f.value_rules(key.as_bytes(), &mut text_rules);
        rules.extend(text_rules);
        self.f.add_all(&rules, field);
        let wants_value = names::wants_value(key);
        // `prototype` is judged with its parent's name (`constructor`): not remembered.
        if !key.trim().eq_ignore_ascii_case("prototype") {
            if self.keys.len() >= KEY_MEMO_ENTRIES {
                self.keys.clear();
            }
            self.keys.insert(key, KeyFacts { rules, wants_value });
        }
        wants_value
    }

    fn count(&mut self) -> Result<(), JsonLimit> {
        self.fields += 1;
        if self.fields > self.max_fields {
            Err(JsonLimit::Fields)
        } else {
            Ok(())
        }
    }

    fn value(&mut self, v: &'d Node<'d>, path: &mut String, depth: usize) -> Result<(), JsonLimit> {
        self.value_in(v, path, depth, None)
    }

    /// `parent`: the key this value is under, for checks of a key that depend on its parent's
    /// (`constructor` → `prototype`).
    fn value_in(
        &mut self,
        v: &'d Node<'d>,
        path: &mut String,
        depth: usize,
        parent: Option<&str>,
    ) -> Result<(), JsonLimit> {
        if depth > self.max_depth {
            return Err(JsonLimit::Depth);
        }
        match v {
            Node::String(s) => {
                self.count()?;
                // Only a value that opens an object can hold an operator: lowercase just those.
                if s.trim_start().starts_with('{') {
                    let mut rules = Vec::new();
                    nosql::check_value(&s.to_ascii_lowercase(), &mut rules);
                    self.f.add_all(&rules, path.as_str());
                }
                self.f.scan(path.as_str(), s.as_bytes());
            }
            Node::Array(items) => {
                let len = path.len();
                path.push_str("[*]");
                for item in items {
                    self.value_in(item, path, depth + 1, None)?;
                }
                path.truncate(len);
            }
            Node::Object(members) => {
                for (key, child) in members {
                    self.count()?;
                    // A finding in a key is reported against its object: the key is the
                    // client's text and may be the payload itself.
                    // The field name is built in `path` itself, saving an allocation per key.
                    let len = path.len();
                    path.push_str("{key}");
                    let wants_value = self.key(parent, key, path.as_str());
                    path.truncate(len);
                    path.push('.');
                    path.push_str(key);
                    if let Node::String(text) = child {
                        if wants_value {
                            self.f.scan_named(key, path.as_str(), text.as_bytes());
                        }
                    }
                    self.value_in(child, path, depth + 1, Some(key))?;
                    path.truncate(len);
                }
            }
            _ => self.count()?,
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
