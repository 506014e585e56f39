//! Which requests a rule applies to: a path pattern, optional methods and an optional host,
//! compiled once at configure time and matched on every request (reference for operators:
//! `docs/routes.md`).
//!
//! Path patterns work on `/`-separated segments:
//! - a literal segment matches itself (how exactly depends on the route's [`Kind`], below);
//! - `*` matches exactly one non-empty segment;
//! - `{name}` matches one non-empty segment and captures it as parameter `name`;
//! - `**` matches zero or more segments, so `/api/**` matches `/api`, `/api/` and `/api/x/y`.
//!
//! A trailing slash is a segment of its own (an empty one): `/a/` does not match `/a`, nor the
//! other way round, unless the pattern ends with `/**`.
//!
//! **One normalisation for every filter.** The upstream, not this matcher, decides what a path
//! means, and upstreams disagree: servlet containers strip `;params` per segment (and read `..;`
//! as `..`), ASP.NET and IIS route case-insensitively and drop trailing dots, some decode `%2F`
//! or `\` into separators, ASP.NET Core and Django fold method case. A request path is therefore
//! read once into a [`RequestPath`] with two views, and each route matches the view its
//! [`Kind`] calls for, so that a route that guards cannot be dodged and a route that exempts
//! cannot be widened:
//! - the exact view: the path as sent, `;params` cut off each segment, `.` and `..` segments
//!   resolved (RFC 3986 §5.2.4);
//! - the guard view: each segment also percent-decoded, split again at a decoded `/` or `\`,
//!   dot-segments resolved after decoding, empty segments between others dropped (`//`).
//!
//! A path whose meaning depends on the upstream is *ambiguous* ([`Ambiguity`]): `;` parameters
//! (unless the filter strips them, [`PathParameters::Strip`]), `.` and `..` segments (raw or
//! percent-encoded), empty segments other than the last (`//`), encoded or backslash separators,
//! control characters, a `#`. An ambiguous path never matches
//! an exempting route, and matches guarding routes through the guard view; auth refuses it with
//! a 400 before any rule is consulted.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::config::ConfigError;

/// A rule's route as written in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub path: String,
    /// Empty means any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `api.example.com` or `*.example.com`; absent means any host.
    #[serde(default)]
    pub host: Option<String>,
    /// A guarding route matches the path with exact case (still percent-decoded), for an
    /// upstream that routes by exact case. Exempting routes always match exact case.
    #[serde(default)]
    pub case_sensitive: bool,
}

/// What a route does to the requests it matches, which decides how it matches them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// It guards (permissions required, a rate limit, closer inspection, a purge): it must not
    /// be dodged. The path matches percent-decoded, case-insensitively (unless
    /// `case_sensitive`) and with a segment's trailing dots and spaces ignored; the method in any
    /// case, and `GET` also covers `HEAD`.
    #[default]
    Guard,
    /// It exempts or opts in (a public route, no inspection, caching): it must not be widened.
    /// The path matches exactly as sent, the method exactly, and an ambiguous path never.
    Exempt,
}

/// What a filter does with `;` path parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathParameters {
    /// A path with a `;` (raw or `%3B`) in a segment is ambiguous.
    #[default]
    Refuse,
    /// Cut `;...` off each segment, as servlet containers do, and match what remains (`..;` is
    /// then `..`). For an upstream known to strip them.
    Strip,
}

/// Why a request path means different things to different upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// A `;` (raw or percent-encoded) in a segment.
    Parameters,
    /// A `.` or `..` segment, raw or spelled with percent-encoding: some upstreams resolve it,
    /// some route it as a name, and with `//` around it they resolve it differently.
    DotSegment,
    /// An empty segment other than the last (`//`): some upstreams merge it, some keep it, so
    /// a `..` after it removes different segments.
    EmptySegment,
    /// A percent-encoded `/` or `\`, or a raw `\`.
    Separator,
    /// A NUL or other control character, raw or percent-encoded.
    Control,
    /// A percent-encoded `%` that makes another escape (`%252e`): an upstream that decodes
    /// twice reads what a single decoding did not show.
    DoubleEncoding,
    /// A `#` in the request target.
    Fragment,
}

impl Ambiguity {
    /// The problem+json `reason` of a refusal.
    pub fn reason(self) -> &'static str {
        match self {
            Ambiguity::Parameters => "path_parameters",
            _ => "path_ambiguous",
        }
    }

    /// A `detail` for the refusal, naming what was found (never echoing the path).
    pub fn detail(self) -> &'static str {
        match self {
            Ambiguity::Parameters => {
                "the path has a ';' parameter in a segment, which upstreams read differently"
            }
            Ambiguity::DotSegment => "the path has a '.' or '..' segment",
            Ambiguity::EmptySegment => "the path has an empty segment ('//')",
            Ambiguity::Separator => "the path has an encoded '/' or a '\\'",
            Ambiguity::Control => "the path has a control character",
            Ambiguity::DoubleEncoding => "the path has a percent-encoded '%' escape",
            Ambiguity::Fragment => "the request target has a '#'",
        }
    }
}

/// Whether `method` is an upper-case token (RFC 9110 §9.1 token, without lower-case letters):
/// the only spelling a filter matches methods against; anything else is refused by auth.
pub fn method_is_canonical(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// A request path read once for every route of a filter (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    /// As sent, `;params` cut, dot-segments resolved.
    exact: Vec<&'a str>,
    /// Decoded, re-split, dot-segments resolved, inner empty segments dropped.
    guard: Vec<Cow<'a, str>>,
    ambiguity: Option<Ambiguity>,
    /// The path as sent, before the query and fragment, without its leading `/`: how an
    /// upstream that decodes, cuts and resolves nothing reads it.
    literal: &'a str,
}

/// `segment` without its `;...` (raw or `%3B`), and whether it had one.
fn strip_parameters(segment: &str) -> (&str, bool) {
    let raw = segment.find(';');
    let encoded = segment
        .as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'3' && w[2].eq_ignore_ascii_case(&b'b'));
    match (raw, encoded) {
        (None, None) => (segment, false),
        (a, b) => {
            let cut = a.unwrap_or(usize::MAX).min(b.unwrap_or(usize::MAX));
            (segment.get(..cut).unwrap_or(segment), true)
        }
    }
}

/// Whether `text` holds a percent-escape (`%` and two hex digits).
fn has_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

impl<'a> RequestPath<'a> {
    /// Reads `path` (a `:path`, with any query string). `None` if it does not start with '/'
    /// (e.g. `OPTIONS *`), which no route matches.
    pub fn parse(path: &'a str, parameters: PathParameters) -> Option<RequestPath<'a>> {
        let mut ambiguity = None;
        let mut note = |a: Ambiguity| {
            ambiguity.get_or_insert(a);
        };
        let target = path.split('?').next().unwrap_or_default();
        let target = match target.split_once('#') {
            Some((before, _)) => {
                note(Ambiguity::Fragment);
                before
            }
            None => target,
        };
        let rest = target.strip_prefix('/')?;
        let mut exact: Vec<&'a str> = Vec::new();
        let mut guard: Vec<Cow<'a, str>> = Vec::new();
        let count = rest.split('/').count();
        for (i, raw) in rest.split('/').enumerate() {
            let last = i + 1 == count;
            let (segment, had_parameters) = strip_parameters(raw);
            if had_parameters && parameters == PathParameters::Refuse {
                note(Ambiguity::Parameters);
            }
            // Raw dot-segments and inner `//` (review finding M1): Envoy normalises them only
            // when configured to, and upstreams resolve them in different orders, so the exact
            // and guard views below could disagree. A `..;` cut to `..` under
            // `PathParameters::Strip` is what the operator declared the upstream does.
            if matches!(raw, "." | "..") {
                note(Ambiguity::DotSegment);
            }
            if segment.is_empty() && !last {
                note(Ambiguity::EmptySegment);
            }
            match segment {
                "." => {}
                ".." => {
                    exact.pop();
                }
                _ => exact.push(segment),
            }
            if last && matches!(segment, "." | "..") {
                exact.push("");
            }

            let decoded = percent_decode_str(segment).decode_utf8_lossy();
            if decoded.chars().any(char::is_control) {
                note(Ambiguity::Control);
            }
            if segment.contains('%') && has_escape(&decoded) {
                note(Ambiguity::DoubleEncoding);
            }
            let pieces: Vec<Cow<'a, str>> = if decoded.contains(['/', '\\']) {
                note(Ambiguity::Separator);
                decoded
                    .split(['/', '\\'])
                    .map(|p| Cow::Owned(p.to_string()))
                    .collect()
            } else {
                vec![decoded]
            };
            let n = pieces.len();
            for (j, piece) in pieces.into_iter().enumerate() {
                let end = last && j + 1 == n;
                match piece.as_ref() {
                    "." | ".." => {
                        if segment.contains('%') {
                            note(Ambiguity::DotSegment);
                        }
                        if piece == ".." {
                            guard.pop();
                        }
                        if end {
                            guard.push(Cow::Borrowed(""));
                        }
                    }
                    // `//` inside a path: most upstreams merge it.
                    "" if !end => {}
                    _ => guard.push(piece),
                }
            }
        }
        Some(RequestPath {
            exact,
            guard,
            ambiguity,
            literal: rest,
        })
    }

    /// Why the path is ambiguous, if it is.
    pub fn ambiguity(&self) -> Option<Ambiguity> {
        self.ambiguity
    }
}

/// The methods a route may name. A typo such as `GTE` would otherwise make a rule silently never
/// match. Auth refuses a request with any other method unless configured to accept it: a route
/// that lists methods cannot name it, so it would slip past every method-scoped guard.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PURGE",
];

/// Whether `method` is one of [`METHODS`], spelled exactly.
pub fn method_is_known(method: &str) -> bool {
    METHODS.contains(&method)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// As configured, percent-decoded, and folded for a case-insensitive match.
    Literal {
        exact: String,
        decoded: String,
        folded: String,
    },
    /// `*`
    One,
    /// `{name}`
    Param(String),
    /// `**`
    Rest,
}

/// How a literal segment is compared with a request's segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Exact view, byte for byte.
    Exact,
    /// Guard view, decoded, exact case.
    Decoded,
    /// Guard view, decoded, folded (see [`fold`]).
    Folded,
}

/// A decoded segment as a case-insensitive guard compares it: lower-case (Unicode), without
/// trailing dots and spaces (Windows drops them), unless nothing would be left.
fn fold(decoded: &str) -> impl Iterator<Item = char> + '_ {
    let trimmed = decoded.trim_end_matches(['.', ' ']);
    let kept = if trimmed.is_empty() { decoded } else { trimmed };
    kept.chars().flat_map(char::to_lowercase)
}

impl Segment {
    /// Whether this single-segment element matches `text` (`Rest` is handled by the matcher).
    fn matches(&self, text: &str, compare: Compare) -> bool {
        match self {
            Segment::Literal {
                exact,
                decoded,
                folded,
            } => match compare {
                Compare::Exact => exact == text,
                Compare::Decoded => decoded == text,
                Compare::Folded => fold(text).eq(folded.chars()),
            },
            Segment::One | Segment::Param(_) => !text.is_empty(),
            Segment::Rest => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// Lower-case host name.
    Exact(String),
    /// Lower-case suffix including its leading dot (`.example.com`).
    Suffix(String),
}

impl HostMatch {
    /// `host` has already lost its port and trailing dot; comparison is case-insensitive.
    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(name) => host.eq_ignore_ascii_case(name),
            HostMatch::Suffix(suffix) => {
                // `get` rather than slicing: a non-ASCII host could put the cut inside a char.
                let cut = host.len().saturating_sub(suffix.len());
                host.len() > suffix.len()
                    && host
                        .get(cut..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
                    && host
                        .get(..cut)
                        .is_some_and(|labels| !labels.split('.').any(str::is_empty))
            }
        }
    }
}

/// A compiled route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pattern: String,
    segments: Vec<Segment>,
    /// Empty means any method.
    methods: Vec<&'static str>,
    host: Option<HostMatch>,
    kind: Kind,
    case_sensitive: bool,
}

/// Parameters captured by `{name}` segments, in pattern order. An exempting route captures
/// from the path as sent (not decoded); a guarding route the decoded segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    pairs: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.as_ref())
    }

    /// `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &str)> + '_ {
        self.pairs.iter().map(|(n, v)| (*n, v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Compiles a guarding route ([`Kind::Guard`]); an error's field (`path`, `methods[1]`,
/// `host`) is relative to the spec.
pub fn compile(spec: &RouteSpec) -> Result<Route, ConfigError> {
    compile_as(spec, Kind::Guard)
}

/// Compiles a route that guards or exempts.
pub fn compile_as(spec: &RouteSpec, kind: Kind) -> Result<Route, ConfigError> {
    let segments = compile_path(&spec.path).map_err(|message| ConfigError::new("path", message))?;

    let mut methods: Vec<&'static str> = Vec::new();
    for (i, method) in spec.methods.iter().enumerate() {
        let known = METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(method))
            .ok_or_else(|| {
                ConfigError::new(
                    format!("methods[{i}]"),
                    format!(
                        "unknown method `{method}`; expected one of {}",
                        METHODS.join(", ")
                    ),
                )
            })?;
        // A repeated method is harmless; keep the list short for the per-request scan.
        if !methods.contains(known) {
            methods.push(known);
        }
    }

    let host = match &spec.host {
        None => None,
        Some(h) => Some(compile_host(h).map_err(|message| ConfigError::new("host", message))?),
    };

    Ok(Route {
        pattern: spec.path.clone(),
        segments,
        methods,
        host,
        kind,
        case_sensitive: spec.case_sensitive,
    })
}

fn compile_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("`{path}` must start with '/'"));
    };
    if path.contains(['?', '#']) {
        // The query and fragment are stripped before matching, so such a pattern never matches.
        return Err(format!(
            "`{path}` must not contain a query string or fragment ('?' or '#')"
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len().saturating_sub(1);
    let mut names: Vec<&str> = Vec::new();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let segment = match part {
            // A trailing slash is meaningful; an empty segment anywhere else is a typo.
            "" if i == last => Segment::Literal {
                exact: String::new(),
                decoded: String::new(),
                folded: String::new(),
            },
            "" => return Err(format!("`{path}` has an empty segment ('//')")),
            "**" => Segment::Rest,
            "*" => Segment::One,
            "." | ".." => {
                return Err(format!(
                    "`{path}` has a '{part}' segment, which never matches a normalised path"
                ))
            }
            _ if part.contains(['{', '}']) => {
                let name = param_name(part)?;
                if names.contains(&name) {
                    return Err(format!("duplicate parameter name `{name}`"));
                }
                names.push(name);
                Segment::Param(name.to_string())
            }
            _ if part.contains("**") => {
                return Err(format!("`**` must be a whole segment, got `{part}`"))
            }
            _ if part.contains('*') => {
                return Err(format!("`*` must be a whole segment, got `{part}`"))
            }
            _ if strip_parameters(part).1 => {
                return Err(format!(
                    "`{path}` has a ';' (or %3B): path parameters are refused or stripped before matching, so it would never match"
                ))
            }
            _ => {
                let decoded = percent_decode_str(part).decode_utf8_lossy().into_owned();
                Segment::Literal {
                    exact: part.to_string(),
                    folded: fold(&decoded).collect(),
                    decoded,
                }
            }
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// The name in a `{name}` segment, which must be the whole segment.
fn param_name(part: &str) -> Result<&str, String> {
    // Balanced means each '{' is closed by a '}' before the next '{' opens.
    let mut open = false;
    for c in part.chars() {
        match (c, open) {
            ('{', false) => open = true,
            ('}', true) => open = false,
            ('{', true) | ('}', false) => return Err(format!("unbalanced braces in `{part}`")),
            _ => {}
        }
    }
    if open {
        return Err(format!("unbalanced braces in `{part}`"));
    }
    let name = part
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .filter(|name| !name.contains(['{', '}']))
        .ok_or_else(|| format!("a parameter must be a whole segment, got `{part}`"))?;
    if name.is_empty() {
        return Err(format!("empty parameter name in `{part}`"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "parameter name `{name}` may only contain letters, digits, '_' and '-'"
        ));
    }
    Ok(name)
}

fn compile_host(host: &str) -> Result<HostMatch, String> {
    let lower = host.to_ascii_lowercase();
    // `example.com.` is the same host as `example.com`; requests are normalised the same way.
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    if let Some(inner) = lower.strip_prefix('[') {
        // An IPv6 literal, as it appears in an authority.
        return match inner
            .strip_suffix(']')
            .map(str::parse::<std::net::Ipv6Addr>)
        {
            Some(Ok(_)) => Ok(HostMatch::Exact(lower.to_string())),
            _ => Err(format!("`{host}` is not a valid IPv6 literal")),
        };
    }
    let (name, wildcard) = match lower.strip_prefix("*.") {
        Some(suffix) => (suffix, true),
        None => (lower, false),
    };
    if name.contains('*') {
        return Err(format!(
            "`{host}`: '*' is only allowed as the whole first label, as in `*.example.com`"
        ));
    }
    if name.contains(':') {
        return Err(format!(
            "`{host}` must not include a port; the request's port is ignored"
        ));
    }
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(if wildcard {
        HostMatch::Suffix(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_string())
    })
}

/// The host part of an authority: without `:port` and without a trailing dot.
fn host_of(authority: &str) -> &str {
    let host = if authority.starts_with('[') {
        // `[2001:db8::1]:443`: the colons inside the brackets are not a port separator.
        authority
            .find(']')
            .and_then(|end| authority.get(..=end))
            .unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Matches pattern segments against path segments, returning the captured parameters as
/// (name, index of the path segment).
///
/// Every element but `**` consumes exactly one segment, so this is classic wildcard matching:
/// on a mismatch, only the most recent `**` needs to swallow one more segment and matching
/// resumes after it. Earlier `**`s never need revisiting (whatever they would take, the latest one
/// can take instead), which keeps the cost at O(pattern × path) with no exponential backtracking.
/// Where several matches are possible, each `**` takes as few segments as it can.
fn match_segments<'p, S: AsRef<str>>(
    pattern: &'p [Segment],
    text: &[S],
    compare: Compare,
) -> Option<Vec<(&'p str, usize)>> {
    let mut params = Vec::new();
    let (mut p, mut t) = (0, 0);
    // The latest `**`: its index, where the text after it starts, and the captures before it.
    let mut retry: Option<(usize, usize, usize)> = None;
    while let Some(segment) = text.get(t) {
        match pattern.get(p) {
            Some(Segment::Rest) => {
                retry = Some((p, t, params.len()));
                p += 1;
                continue;
            }
            Some(element) if element.matches(segment.as_ref(), compare) => {
                if let Segment::Param(name) = element {
                    params.push((name.as_str(), t));
                }
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        let (star, resume, kept) = retry?;
        params.truncate(kept);
        retry = Some((star, resume + 1, kept));
        p = star + 1;
        t = resume + 1;
    }
    // The path is used up; whatever is left of the pattern must be able to match nothing.
    let left = pattern.get(p..).unwrap_or_default();
    left.iter().all(|s| *s == Segment::Rest).then_some(params)
}

impl Route {
    /// The path pattern as configured, for logs.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the route guards or exempts.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Matches a request. `host` is the `:authority` (a port is ignored) and `path` may carry a
    /// query string; `;` parameters are treated as ambiguous ([`PathParameters::Refuse`]).
    pub fn matches<'a>(&'a self, method: &str, host: &str, path: &'a str) -> Option<Params<'a>> {
        let path = RequestPath::parse(path, PathParameters::Refuse)?;
        self.matches_path(method, host, &path)
    }

    /// Matches a request whose path is already read (one [`RequestPath`] for every route).
    pub fn matches_path<'a>(
        &'a self,
        method: &str,
        host: &str,
        path: &RequestPath<'a>,
    ) -> Option<Params<'a>> {
        self.matches_split(method, host_of(host), path, Readings::Every)
    }

    /// As [`Route::matches_path`] on the guard view only, for a list where the first matching
    /// route wins (see [`RouteTable::first_match_path`]).
    pub fn matches_guard_view<'a>(
        &'a self,
        method: &str,
        host: &str,
        path: &RequestPath<'a>,
    ) -> Option<Params<'a>> {
        self.matches_split(method, host_of(host), path, Readings::Guard)
    }

    fn method_matches(&self, method: &str) -> bool {
        if self.methods.is_empty() {
            return true;
        }
        match self.kind {
            Kind::Exempt => self.methods.contains(&method),
            Kind::Guard => {
                self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
                    || (method.eq_ignore_ascii_case("HEAD") && self.methods.contains(&"GET"))
            }
        }
    }

    /// Matches a request whose host is already split off its port.
    fn matches_split<'a>(
        &'a self,
        method: &str,
        host: &str,
        path: &RequestPath<'a>,
        readings: Readings,
    ) -> Option<Params<'a>> {
        // Cheap checks first.
        if !self.method_matches(method) {
            return None;
        }
        if let Some(expected) = &self.host {
            if !expected.matches(host) {
                return None;
            }
        }
        let pairs = match self.kind {
            Kind::Exempt => {
                if path.ambiguity.is_some() {
                    return None;
                }
                match_segments(&self.segments, &path.exact, Compare::Exact)?
                    .into_iter()
                    .map(|(name, i)| {
                        let value = path.exact.get(i).copied().unwrap_or_default();
                        (name, Cow::Borrowed(value))
                    })
                    .collect()
            }
            Kind::Guard => {
                let compare = if self.case_sensitive {
                    Compare::Decoded
                } else {
                    Compare::Folded
                };
                if let Some(found) = match_segments(&self.segments, &path.guard, compare) {
                    found
                        .into_iter()
                        .map(|(name, i)| (name, path.guard.get(i).cloned().unwrap_or_default()))
                        .collect()
                } else if readings == Readings::Every && path.ambiguity.is_some() {
                    // Upstreams read an ambiguous path differently: a guard must hold under
                    // each reading, so it also matches the path as sent with only `;`
                    // parameters cut and raw dot-segments resolved, and as sent verbatim.
                    let literal: Vec<&'a str> = path.literal.split('/').collect();
                    let pairs = [&path.exact, &literal].into_iter().find_map(|view| {
                        let found = match_segments(&self.segments, view, compare)?;
                        let value = |i: usize| view.get(i).copied().unwrap_or_default();
                        let pairs: Vec<_> = found
                            .into_iter()
                            .map(|(name, i)| (name, Cow::Borrowed(value(i))))
                            .collect();
                        Some(pairs)
                    });
                    pairs?
                } else {
                    return None;
                }
            }
        };
        Some(Params { pairs })
    }
}

/// Which readings of an ambiguous path a guarding route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readings {
    /// Any of them: a route that adds a check on its own (a rate limit) must hold however the
    /// upstream reads the path.
    Every,
    /// The guard view only: in a first-match table, another reading would let an earlier,
    /// weaker rule win over the one the resolved path meets (auth refuses ambiguous paths
    /// before its table anyway).
    Guard,
}

/// Routes in configuration order, each with its value; the first matching route wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable<T> {
    entries: Vec<(Route, T)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            entries: Vec::new(),
        }
    }
}

impl<T> FromIterator<(Route, T)> for RouteTable<T> {
    fn from_iter<I: IntoIterator<Item = (Route, T)>>(iter: I) -> Self {
        RouteTable {
            entries: iter.into_iter().collect(),
        }
    }
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route after all the others, so it matches only if none of them does.
    pub fn push(&mut self, route: Route, value: T) {
        self.entries.push((route, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of the first route matching the request, with that route's parameters; `;`
    /// parameters are treated as ambiguous ([`PathParameters::Refuse`]).
    pub fn first_match<'a>(
        &'a self,
        method: &str,
        host: &str,
        path: &'a str,
    ) -> Option<(&'a T, Params<'a>)> {
        // Read once, not once per route.
        let path = RequestPath::parse(path, PathParameters::Refuse)?;
        self.first_match_path(method, host, &path)
    }

    /// As [`RouteTable::first_match`], for a path already read.
    pub fn first_match_path<'a>(
        &'a self,
        method: &str,
        host: &str,
        path: &RequestPath<'a>,
    ) -> Option<(&'a T, Params<'a>)> {
        let host = host_of(host);
        self.entries.iter().find_map(|(route, value)| {
            route
                .matches_split(method, host, path, Readings::Guard)
                .map(|params| (value, params))
        })
    }
}

#[cfg(test)]
// A failing unwrap is how a test reports failure; the lints guard production code.
mod tests {
    use super::*;

    fn spec(path: &str) -> RouteSpec {
        RouteSpec {
            path: path.to_string(),
            ..RouteSpec::default()
        }
    }

    fn route(path: &str) -> Route {
        compile(&spec(path)).unwrap()
    }

    fn path_err(path: &str) -> ConfigError {
        let e = compile(&spec(path)).unwrap_err();
        assert_eq!(e.field, "path", "{path}: {e}");
        e
    }

    fn hosted(host: &str) -> Route {
        compile(&RouteSpec {
            host: Some(host.to_string()),
            ..spec("/**")
        })
        .unwrap()
    }

    fn host_err(host: &str) -> ConfigError {
        let e = compile(&RouteSpec {
            host: Some(host.to_string()),
            ..spec("/")
        })
        .unwrap_err();
        assert_eq!(e.field, "host", "{host}: {e}");
        e
    }

    /// Whether `pattern`, as a guard, matches `path` for any method and host.
    fn hit(pattern: &str, path: &str) -> bool {
        route(pattern).matches("GET", "h", path).is_some()
    }

    /// Whether `pattern`, as an exemption, matches `path`.
    fn exempt_hit(pattern: &str, path: &str) -> bool {
        compile_as(&spec(pattern), Kind::Exempt)
            .unwrap()
            .matches("GET", "h", path)
            .is_some()
    }

    fn ambiguity(path: &str) -> Option<Ambiguity> {
        RequestPath::parse(path, PathParameters::Refuse)
            .unwrap()
            .ambiguity()
    }

    #[test]
    fn a_guard_matches_an_ambiguous_path_however_the_upstream_reads_it() {
        // Without auth in front (which refuses these), a rate limit or an inspection on
        // `/api/products/**` must still apply to a path that an upstream decoding or resolving
        // nothing serves from under `/api/products/`.
        for path in [
            "/api/products/%2e%2e/admin",
            "/api/products/%2E%2E/%2E%2E/admin",
            "/api/products/..;/admin",
            "/api/products/.%2e;x/admin",
            "/api/products/x%2f..%2f..%2fadmin",
            "/api/products/%252e%252e/admin",
        ] {
            assert!(ambiguity(path).is_some(), "{path}");
            assert!(hit("/api/products/**", path), "{path}");
            if path.matches('/').count() == 4 {
                assert!(hit("/api/products/{id}/admin", path), "{path}");
            }
        }
        // The resolved reading still counts too.
        assert!(hit("/api/admin", "/api/products/%2e%2e/admin"));
        assert!(hit("/api/admin", "/api/products/..;/admin"));
        // An unambiguous path has one reading.
        assert!(!hit("/api/products/**", "/api/admin"));
        // A first-match table decides on the guard view: an earlier rule does not win through
        // another reading over the one the resolved path meets.
        let table: RouteTable<&str> = [("/api/products/**", "products"), ("/api/admin", "admin")]
            .into_iter()
            .map(|(p, v)| (route(p), v))
            .collect();
        let found = table.first_match("GET", "h", "/api/products/%2e%2e/admin");
        assert_eq!(found.map(|(v, _)| *v), Some("admin"));
    }

    #[test]
    fn path_parameters_are_ambiguous_and_never_exempt() {
        for path in [
            "/admin;x/users",
            "/admin%3Bx/users",
            "/admin%3bx/users",
            "/admin;/users",
            "/admin/users;jsessionid=1",
            "/api/products/..;/..;/admin/users",
            "/a/.;/admin",
        ] {
            assert_eq!(ambiguity(path), Some(Ambiguity::Parameters), "{path}");
            assert_eq!(Ambiguity::Parameters.reason(), "path_parameters");
        }
        // Guards see what a servlet container serves: parameters cut, `..;` as `..`.
        assert!(hit("/admin/**", "/admin;x/users"));
        assert!(hit("/admin/users", "/ADMIN%3Bx/users"));
        assert!(hit("/admin/**", "/api/products/..;/..;/admin/users"));
        assert!(hit("/admin", "/a/.;/..;/admin"));
        // Exemptions never match an ambiguous path, even one that looks like theirs.
        assert!(!exempt_hit(
            "/api/products/**",
            "/api/products/..;/..;/admin/users"
        ));
        assert!(!exempt_hit("/api/products/**", "/api/products;x/1"));
        assert!(exempt_hit("/api/products/**", "/api/products/1"));
        // Stripping, for an upstream known to strip: the stripped path is unambiguous.
        let p = RequestPath::parse("/api/products/..;/..;/admin/users;x", PathParameters::Strip)
            .unwrap();
        assert_eq!(p.ambiguity(), None);
        assert_eq!(p.exact, vec!["admin", "users"]);
        let exempt = compile_as(&spec("/api/products/**"), Kind::Exempt).unwrap();
        assert!(exempt.matches_path("GET", "h", &p).is_none());
        let admin = compile_as(&spec("/admin/users"), Kind::Exempt).unwrap();
        assert!(admin.matches_path("GET", "h", &p).is_some());
        let p = RequestPath::parse("/a;x/b%3B/c", PathParameters::Strip).unwrap();
        assert_eq!(p.exact, vec!["a", "b", "c"]);
        // A query's `;` is not a path parameter.
        assert_eq!(ambiguity("/a?x=1;y=2"), None);
    }

    #[test]
    fn encodings_that_upstreams_read_differently_are_ambiguous() {
        for (path, wanted) in [
            ("/api/%2e%2e/admin", Ambiguity::DotSegment),
            ("/api/.%2E/admin", Ambiguity::DotSegment),
            ("/api/%2e/admin", Ambiguity::DotSegment),
            ("/api/..%2fadmin", Ambiguity::Separator),
            ("/api/..%2Fadmin", Ambiguity::Separator),
            ("/api/..%5cadmin", Ambiguity::Separator),
            ("/api/..\\admin", Ambiguity::Separator),
            ("/admin%00/users", Ambiguity::Control),
            ("/admin%0a/users", Ambiguity::Control),
            ("/static/%252e%252e/admin", Ambiguity::DoubleEncoding),
            ("/static/%255c", Ambiguity::DoubleEncoding),
            ("/public#/../admin", Ambiguity::Fragment),
        ] {
            assert_eq!(ambiguity(path), Some(wanted), "{path}");
            assert_eq!(wanted.reason(), "path_ambiguous");
            assert!(!wanted.detail().is_empty());
        }
        // Guards read them as a decoding upstream would.
        assert!(hit("/admin/**", "/api/products/%2e%2e/%2e%2e/admin/users"));
        assert!(hit("/admin", "/api/..%2fadmin"));
        assert!(hit("/admin", "/api/..%5Cadmin"));
        assert!(!exempt_hit("/api/**", "/api/%2e%2e/admin"));
        assert!(!exempt_hit("/static/**", "/static/%252e%252e/admin"));
        // Ordinary escapes are not ambiguous: an exemption matches them as sent.
        assert_eq!(ambiguity("/caf%C3%A9/a%20b/100%25"), None);
        assert!(exempt_hit("/caf%C3%A9", "/caf%C3%A9"));
        assert!(!exempt_hit("/café", "/caf%C3%A9"));
        assert!(hit("/café", "/caf%C3%A9"));
    }

    #[test]
    fn raw_dot_segments_and_inner_empty_segments_are_ambiguous() {
        // Review finding M1: the exact view kept `//` so `..` popped the empty segment, the guard
        // view merged `//` first so `..` popped a real one; upstreams differ the same way.
        for path in [
            "/api/products////../../../admin/users",
            "/admin//../api/x",
            "/admin/../api/x",
            "/api/products/../../admin",
            "/admin/x/..",
            "/admin/.",
            "/./admin",
            "/..",
            "/admin//users",
            "//admin/users",
            "/api//products/1",
            "//",
        ] {
            let found = ambiguity(path);
            let wanted = if path.contains("//") {
                Ambiguity::EmptySegment
            } else {
                Ambiguity::DotSegment
            };
            assert_eq!(found, Some(wanted), "{path}");
            assert_eq!(wanted.reason(), "path_ambiguous");
            assert!(!exempt_hit("/api/products/**", path), "{path}");
            assert!(!exempt_hit("/**", path), "{path}");
        }
        // A trailing slash is a segment of its own, not an ambiguity; neither is a dot inside
        // a segment.
        for path in [
            "/",
            "/admin/",
            "/api/products/1/",
            "/a.b/..c/...",
            "/v1.0/x",
        ] {
            assert_eq!(ambiguity(path), None, "{path}");
        }
        assert!(exempt_hit("/api/products/**", "/api/products/1/"));
        // Guards still read them as a merging, resolving upstream would (for filters that match
        // without refusing first).
        assert!(hit("/admin/users", "/admin//users"));
        assert!(hit("/admin/", "/admin/x/.."));
        assert!(hit("/", "/.."));
    }

    #[test]
    fn guards_fold_case_and_trailing_dots() {
        for path in [
            "/ADMIN/users",
            "/Admin/Users",
            "/%41DMIN/users",
            "/adm%69n/users",
            "/admin./users",
            "/admin%2e/users",
            "/admin%20/users",
            "/admin. ./users",
        ] {
            assert!(hit("/admin/users", path), "{path}");
            assert!(!exempt_hit("/admin/users", path), "{path}");
        }
        // Unicode case folds too; a trailing-dot-only segment keeps its dots.
        assert!(hit("/Ärger", "/äRGER"));
        assert!(hit("/...", "/..."));
        assert!(!hit("/admin/users", "/admins/users"));
        // The switch for an upstream that routes by exact case.
        let exact_case = compile(&RouteSpec {
            case_sensitive: true,
            ..spec("/admin/**")
        })
        .unwrap();
        assert!(exact_case.matches("GET", "h", "/ADMIN/users").is_none());
        assert!(exact_case.matches("GET", "h", "/adm%69n/users").is_some());
        assert!(exact_case.matches("GET", "h", "/admin;x/users").is_some());
        assert_eq!(exact_case.kind(), Kind::Guard);
    }

    #[test]
    fn exempt_methods_are_exact() {
        let r = compile_as(
            &RouteSpec {
                methods: vec!["GET".into()],
                ..spec("/a")
            },
            Kind::Exempt,
        )
        .unwrap();
        assert_eq!(r.kind(), Kind::Exempt);
        assert!(r.matches("GET", "h", "/a").is_some());
        assert!(r.matches("get", "h", "/a").is_none());
        assert!(r.matches("HEAD", "h", "/a").is_none());
        // A guard over DELETE catches every spelling (finding 3).
        let d = compile(&RouteSpec {
            methods: vec!["DELETE".into()],
            ..spec("/api/**")
        })
        .unwrap();
        for m in ["DELETE", "delete", "Delete"] {
            assert!(d.matches(m, "h", "/api/orders/1").is_some(), "{m}");
        }
        assert!(d.matches("HEAD", "h", "/api/orders/1").is_none());
    }

    #[test]
    fn known_methods() {
        for m in METHODS {
            assert!(method_is_known(m), "{m}");
        }
        for m in ["FOO", "PROPFIND", "get", "", "GET "] {
            assert!(!method_is_known(m), "{m:?}");
        }
    }

    #[test]
    fn canonical_methods() {
        for m in ["GET", "DELETE", "M-SEARCH", "BREW", "X1"] {
            assert!(method_is_canonical(m), "{m}");
        }
        for m in ["", "get", "Delete", "GET ", "G\u{e9}T", "GE(T", "GET\r"] {
            assert!(!method_is_canonical(m), "{m:?}");
        }
    }

    #[test]
    fn table_matches_a_path_read_once() {
        let table: RouteTable<u32> = [
            (
                compile_as(&spec("/api/products/**"), Kind::Exempt).unwrap(),
                1,
            ),
            (route("/admin/**"), 2),
            (route("/**"), 3),
        ]
        .into_iter()
        .collect();
        let at = |path: &str| table.first_match("GET", "h", path).map(|m| *m.0);
        assert_eq!(at("/api/products/1"), Some(1));
        assert_eq!(at("/API/products/1"), Some(3));
        assert_eq!(at("/api/products/..;/..;/admin/users"), Some(2));
        assert_eq!(at("/ADMIN;x"), Some(2));
        let p = RequestPath::parse("/api/products/1", PathParameters::Refuse).unwrap();
        assert_eq!(
            table.first_match_path("GET", "h", &p).map(|m| *m.0),
            Some(1)
        );
    }

    #[test]
    fn spec_deserialises() {
        let s: RouteSpec =
            crate::config::parse(br#"{"path":"/a","methods":["get"],"host":"*.example.com"}"#)
                .unwrap();
        assert_eq!(
            s,
            RouteSpec {
                path: "/a".into(),
                methods: vec!["get".into()],
                host: Some("*.example.com".into()),
                case_sensitive: false,
            }
        );
        let s: RouteSpec = crate::config::parse(br#"{"path":"/a"}"#).unwrap();
        assert_eq!(s, spec("/a"));
    }

    #[test]
    fn spec_refuses_unknown_and_missing_fields() {
        let e =
            crate::config::parse::<RouteSpec>(br#"{"path":"/a","method":["GET"]}"#).unwrap_err();
        assert!(e.message.contains("unknown field `method`"), "{e}");
        let e = crate::config::parse::<RouteSpec>(br#"{"methods":[]}"#).unwrap_err();
        assert!(e.message.contains("missing field `path`"), "{e}");
    }

    #[test]
    fn exact_paths() {
        assert!(hit("/login", "/login"));
        // A guard matches any case; an exemption only the exact one.
        assert!(hit("/login", "/Login"));
        assert!(!exempt_hit("/login", "/Login"));
        assert!(exempt_hit("/login", "/login"));
        assert!(!hit("/login", "/login/x"));
        assert!(!hit("/login", "/logins"));
        assert!(!hit("/login", "/"));
        assert!(hit("/a/b/c", "/a/b/c"));
        assert!(!hit("/a/b/c", "/a/b"));
        assert!(hit("/", "/"));
        assert!(!hit("/", "/a"));
        assert!(hit("/caf%C3%A9/日本", "/caf%C3%A9/日本"));
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert!(hit("/login", "/login?next=/admin"));
        assert!(hit("/login", "/login?"));
        assert!(hit("/login", "/login#top"));
        assert!(hit("/", "/?a=b/c"));
        assert!(!hit("/login", "/log?in"));
        let r = route("/u/{id}");
        assert_eq!(
            r.matches("GET", "h", "/u/7?x=1").unwrap().get("id"),
            Some("7")
        );
    }

    #[test]
    fn path_must_be_origin_form() {
        assert!(!hit("/**", ""));
        assert!(!hit("/**", "*"));
        assert!(!hit("/**", "login"));
        assert!(!hit("/**", "http://example.com/login"));
        assert!(!hit("/**", "?/a"));
    }

    #[test]
    fn trailing_slash() {
        assert!(!hit("/a", "/a/"));
        assert!(!hit("/a/", "/a"));
        assert!(hit("/a/", "/a/"));
        assert!(hit("/a/**", "/a"));
        assert!(hit("/a/**", "/a/"));
        assert!(hit("/a/**", "/a/b/c/"));
        assert!(!hit("/a/*", "/a/"));
        assert!(hit("/a/*/", "/a/b/"));
        assert!(!hit("/a/*/", "/a/b"));
    }

    #[test]
    fn prefix() {
        assert!(hit("/api/**", "/api/v1/users"));
        assert!(hit("/api/**", "/api"));
        assert!(!hit("/api/**", "/apis"));
        assert!(!hit("/api/**", "/api-docs/x"));
        assert!(!hit("/api/**", "/"));
        assert!(hit("/**", "/"));
        assert!(hit("/**", "/anything/at/all"));
        assert!(hit("/**", "//"));
    }

    #[test]
    fn single_star() {
        assert!(hit("/u/*/profile", "/u/42/profile"));
        assert!(!hit("/u/*/profile", "/u/profile"));
        assert!(!hit("/u/*/profile", "/u//profile"));
        assert!(!hit("/u/*/profile", "/u/4/2/profile"));
        assert!(hit("/*", "/x"));
        assert!(!hit("/*", "/"));
        assert!(hit("/*/*", "/x/y"));
        assert!(!hit("/*/*", "/x"));
    }

    #[test]
    fn double_star_in_the_middle_and_repeated() {
        assert!(hit("/a/**/z", "/a/z"));
        assert!(hit("/a/**/z", "/a/b/z"));
        assert!(hit("/a/**/z", "/a/b/c/d/z"));
        assert!(hit("/a/**/z", "/a/z/z"));
        assert!(!hit("/a/**/z", "/a/b/c"));
        assert!(!hit("/a/**/z", "/a/z/"));
        assert!(hit("/**/z", "/z"));
        assert!(hit("/**/z", "/x/y/z"));
        assert!(!hit("/**/z", "/x/y/z/w"));
        // Needs the second `**` to backtrack past a false start (`b` then `x`).
        assert!(hit("/**/b/**/c", "/a/b/x/b/c"));
        assert!(hit("/**/a/*/c/**", "/a/a/b/c"));
        assert!(!hit("/**/a/*/c/**", "/a/b/a/c"));
        assert!(hit("/**/**", "/"));
        assert!(hit("/**/**/x", "/x"));
        assert!(hit("/a/**/**/b", "/a/1/2/3/b"));
    }

    #[test]
    fn params() {
        let r = route("/users/{id}/posts/{post_id}");
        let p = r.matches("GET", "h", "/users/42/posts/abc-1").unwrap();
        assert_eq!(p.get("id"), Some("42"));
        assert_eq!(p.get("post_id"), Some("abc-1"));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.len(), 2);
        assert!(!p.is_empty());
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![("id", "42"), ("post_id", "abc-1")]
        );
        // A guard captures the decoded segment, an exemption the segment as sent.
        let p = r.matches("GET", "h", "/users/caf%C3%A9/posts/x").unwrap();
        assert_eq!(p.get("id"), Some("café"));
        let e = compile_as(&spec("/users/{id}/posts/{post_id}"), Kind::Exempt).unwrap();
        let p = e.matches("GET", "h", "/users/caf%C3%A9/posts/x").unwrap();
        assert_eq!(p.get("id"), Some("caf%C3%A9"));
        // A parameter never captures an empty segment.
        assert!(r.matches("GET", "h", "/users//posts/x").is_none());

        let r = route("/static/**");
        let none = r.matches("GET", "h", "/static/x").unwrap();
        assert!(none.is_empty());
        assert_eq!(none, Params::default());
    }

    #[test]
    fn params_after_backtracking_are_the_final_ones() {
        // The first attempt captures `t=a` before failing on `x`; the match that succeeds is
        // `t=b`, and no stale capture must remain.
        let r = route("/**/{t}/end");
        let p = r.matches("GET", "h", "/a/x/b/end").unwrap();
        assert_eq!(p.get("t"), Some("b"));
        assert_eq!(p.len(), 1);

        let r = route("/{tenant}/**/{kind}/{id}");
        let p = r.matches("GET", "h", "/acme/x/y/users/7").unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![("tenant", "acme"), ("kind", "users"), ("id", "7")]
        );
        let p = r.matches("GET", "h", "/acme/users/7").unwrap();
        assert_eq!(p.get("kind"), Some("users"));
        assert!(r.matches("GET", "h", "/acme/7").is_none());
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let pattern = format!("/{}b", "**/a/".repeat(10));
        let r = route(&pattern);
        // 2000 `a`s and no `b`: a backtracking matcher would try every split of the path among
        // ten `**`s; this one gives up after O(pattern × path) steps.
        let miss = format!("/{}", vec!["a"; 2000].join("/"));
        assert!(r.matches("GET", "h", &miss).is_none());
        let hit = format!("{miss}/b");
        assert!(r.matches("GET", "h", &hit).is_some());

        let r = route(&format!("/{}x", "**/".repeat(10)));
        assert!(r.matches("GET", "h", &miss).is_none());
        assert!(r.matches("GET", "h", &format!("{miss}/x")).is_some());
    }

    #[test]
    fn path_errors() {
        for (path, wanted) in [
            ("", "must start with '/'"),
            ("login", "`login` must start with '/'"),
            ("*", "must start with '/'"),
            ("/a?b=c", "must not contain a query string"),
            ("/a#b", "must not contain a query string"),
            ("/a//b", "empty segment"),
            ("//", "empty segment"),
            ("/a/./b", "'.' segment"),
            ("/a/..", "'..' segment"),
            ("/a**", "`**` must be a whole segment, got `a**`"),
            ("/**b/c", "`**` must be a whole segment"),
            ("/***", "`**` must be a whole segment"),
            ("/a*", "`*` must be a whole segment, got `a*`"),
            ("/*.json", "`*` must be a whole segment"),
            ("/{}", "empty parameter name in `{}`"),
            ("/{id}/{id}", "duplicate parameter name `id`"),
            ("/{id}/x/**/{id}", "duplicate parameter name `id`"),
            ("/{id", "unbalanced braces in `{id`"),
            ("/id}", "unbalanced braces"),
            ("/}id{", "unbalanced braces"),
            ("/{{id}}", "unbalanced braces"),
            ("/{a}}", "unbalanced braces"),
            ("/a{id}", "a parameter must be a whole segment, got `a{id}`"),
            ("/{id}.json", "a parameter must be a whole segment"),
            ("/{a}{b}", "a parameter must be a whole segment"),
            ("/{a.b}", "parameter name `a.b` may only contain"),
            ("/{*}", "parameter name `*` may only contain"),
            ("/{é}", "parameter name `é` may only contain"),
            ("/a;b", "has a ';'"),
            ("/a%3Bb/c", "has a ';'"),
        ] {
            let e = path_err(path);
            assert!(e.message.contains(wanted), "{path}: {e}");
        }
    }

    #[test]
    fn valid_paths_compile() {
        for path in [
            "/",
            "/a/",
            "/**",
            "/a/**/b/",
            "/{id}",
            "/{a-b_C9}",
            "/v1.0/x",
            "/%7B",
        ] {
            assert_eq!(route(path).pattern(), path);
        }
    }

    #[test]
    fn methods() {
        let r = compile(&RouteSpec {
            methods: vec!["get".into(), "Post".into(), "GET".into()],
            ..spec("/a")
        })
        .unwrap();
        assert_eq!(r.methods, vec!["GET", "POST"]);
        assert!(r.matches("GET", "h", "/a").is_some());
        assert!(r.matches("POST", "h", "/a").is_some());
        assert!(r.matches("PUT", "h", "/a").is_none());
        // A guard's GET covers HEAD, and any spelling of the method matches it.
        assert!(r.matches("HEAD", "h", "/a").is_some());
        assert!(r.matches("get", "h", "/a").is_some());
        assert!(r.matches("pOsT", "h", "/a").is_some());
        assert!(r.matches("put", "h", "/a").is_none());
        // Method matches but path does not.
        assert!(r.matches("GET", "h", "/b").is_none());

        let any = route("/a");
        for m in ["GET", "DELETE", "PURGE", "BREW"] {
            assert!(any.matches(m, "h", "/a").is_some(), "{m}");
        }

        let all = compile(&RouteSpec {
            methods: METHODS.iter().map(|m| m.to_lowercase()).collect(),
            ..spec("/a")
        })
        .unwrap();
        assert_eq!(all.methods, METHODS.to_vec());
    }

    #[test]
    fn method_errors_name_the_entry() {
        for (bad, i) in [("GTE", 1), ("", 1), ("GET ", 1), ("BREW", 1)] {
            let e = compile(&RouteSpec {
                methods: vec!["GET".into(), bad.into()],
                ..spec("/a")
            })
            .unwrap_err();
            assert_eq!(e.field, format!("methods[{i}]"));
            assert!(
                e.message.starts_with(&format!(
                    "unknown method `{bad}`; expected one of GET, HEAD"
                )),
                "{e}"
            );
            assert_eq!(e.within("rules[0]").field, "rules[0].methods[1]");
        }
    }

    #[test]
    fn path_error_comes_before_method_error() {
        let e = compile(&RouteSpec {
            methods: vec!["NOPE".into()],
            ..spec("nope")
        })
        .unwrap_err();
        assert_eq!(e.field, "path");
    }

    #[test]
    fn exact_host() {
        let r = hosted("API.example.com");
        assert!(r.matches("GET", "api.example.com", "/").is_some());
        assert!(r.matches("GET", "Api.Example.COM", "/").is_some());
        assert!(r.matches("GET", "api.example.com:8443", "/").is_some());
        assert!(r.matches("GET", "api.example.com.", "/").is_some());
        assert!(r.matches("GET", "api.example.com.:80", "/").is_some());
        assert!(r.matches("GET", "x.api.example.com", "/").is_none());
        assert!(r.matches("GET", "example.com", "/").is_none());
        assert!(r.matches("GET", "api.example.co", "/").is_none());
        assert!(r.matches("GET", "", "/").is_none());
        // Host matches but path does not.
        assert!(r.matches("GET", "api.example.com", "").is_none());

        let trailing = hosted("example.com.");
        assert!(trailing.matches("GET", "example.com", "/").is_some());
    }

    #[test]
    fn wildcard_host() {
        let r = hosted("*.Example.com");
        assert!(r.matches("GET", "a.example.com", "/").is_some());
        assert!(r.matches("GET", "a.b.EXAMPLE.com:443", "/").is_some());
        assert!(r.matches("GET", "example.com", "/").is_none());
        assert!(r.matches("GET", ".example.com", "/").is_none());
        assert!(r.matches("GET", "a..example.com", "/").is_none());
        assert!(r.matches("GET", "aexample.com", "/").is_none());
        assert!(r.matches("GET", "a.example.com.evil", "/").is_none());
        assert!(r.matches("GET", "é.example.com", "/").is_some());
        // A multi-byte character straddling the cut must not panic.
        assert!(r.matches("GET", "日本語日本語日本語日本語a", "/").is_none());
        assert!(r.matches("GET", "", "/").is_none());
    }

    #[test]
    fn ipv6_host() {
        let r = hosted("[2001:DB8::1]");
        assert!(r.matches("GET", "[2001:db8::1]:443", "/").is_some());
        assert!(r.matches("GET", "[2001:db8::1]", "/").is_some());
        assert!(r.matches("GET", "[2001:db8::2]", "/").is_none());
        assert!(r.matches("GET", "[2001:db8::1", "/").is_none());
    }

    #[test]
    fn ipv4_host() {
        let r = hosted("10.0.0.1");
        assert!(r.matches("GET", "10.0.0.1:8080", "/").is_some());
        assert!(r.matches("GET", "10.0.0.10", "/").is_none());
    }

    #[test]
    fn host_of_strips_port_and_dot() {
        assert_eq!(host_of("a.example.com:80"), "a.example.com");
        assert_eq!(host_of("a.example.com"), "a.example.com");
        assert_eq!(host_of("a.example.com."), "a.example.com");
        assert_eq!(host_of("[::1]:80"), "[::1]");
        assert_eq!(host_of("[::1"), "[::1");
        assert_eq!(host_of(":80"), "");
        assert_eq!(host_of(""), "");
    }

    #[test]
    fn host_errors() {
        for (host, wanted) in [
            ("", "is not a valid host name"),
            (".", "is not a valid host name"),
            ("a..b", "is not a valid host name"),
            (".example.com", "is not a valid host name"),
            ("exa mple.com", "is not a valid host name"),
            ("example.com/x", "is not a valid host name"),
            ("é.com", "is not a valid host name"),
            ("*.", "'*' is only allowed"),
            ("*", "'*' is only allowed as the whole first label"),
            ("**.example.com", "'*' is only allowed"),
            ("a.*.com", "'*' is only allowed"),
            ("*example.com", "'*' is only allowed"),
            ("*.*.example.com", "'*' is only allowed"),
            ("example.com:8080", "must not include a port"),
            ("[::1]:80", "not a valid IPv6 literal"),
            ("[nope]", "not a valid IPv6 literal"),
            ("[::1", "not a valid IPv6 literal"),
        ] {
            let e = host_err(host);
            assert!(e.message.contains(wanted), "{host}: {e}");
        }
    }

    #[test]
    fn table_first_match_wins() {
        let mut table = RouteTable::new();
        assert!(table.is_empty());
        assert!(table.first_match("GET", "h", "/a").is_none());
        table.push(
            compile(&RouteSpec {
                methods: vec!["POST".into()],
                ..spec("/login")
            })
            .unwrap(),
            "login-post",
        );
        table.push(route("/users/{id}"), "user");
        table.push(route("/users/me"), "never: shadowed by /users/{id}");
        table.push(route("/**"), "fallback");
        assert_eq!(table.len(), 4);
        assert!(!table.is_empty());

        let (v, p) = table.first_match("POST", "h", "/login").unwrap();
        assert_eq!(*v, "login-post");
        assert!(p.is_empty());
        // Method differs: falls through to the catch-all.
        assert_eq!(
            *table.first_match("GET", "h", "/login").unwrap().0,
            "fallback"
        );
        let (v, p) = table.first_match("GET", "h:80", "/users/me?x").unwrap();
        assert_eq!(*v, "user");
        assert_eq!(p.get("id"), Some("me"));
        assert_eq!(*table.first_match("GET", "h", "/").unwrap().0, "fallback");
        assert!(table.first_match("GET", "h", "*").is_none());
    }

    #[test]
    fn table_no_match_and_hosts() {
        let table: RouteTable<u32> = [
            (hosted("a.example.com"), 1),
            (hosted("*.example.com"), 2),
            (route("/only"), 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            table
                .first_match("GET", "a.example.com", "/x")
                .map(|m| *m.0),
            Some(1)
        );
        assert_eq!(
            table
                .first_match("GET", "b.example.com", "/x")
                .map(|m| *m.0),
            Some(2)
        );
        assert_eq!(
            table.first_match("GET", "other", "/only").map(|m| *m.0),
            Some(3)
        );
        assert!(table.first_match("GET", "other", "/x").is_none());
        assert_eq!(RouteTable::<u32>::default(), RouteTable::new());
    }
}
