//! GraphQL documents (the `query` of a JSON request, or an `application/graphql` body): lexed
//! enough to hand every string argument, decoded, to the detectors and to tell whether the
//! document asks for the schema (`__schema`, `__type`). Variables arrive as JSON and are walked
//! with the rest of the body.
//!
//! Hand-written: only the lexical grammar (GraphQL spec, section 2.1) is needed, not a parser;
//! a lexer is short, linear, and fuzzed (`fuzz/fuzz_targets/graphql.rs`).

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// String values (arguments, defaults, directives' arguments), decoded.
    pub strings: Vec<String>,
    /// The document names `__schema` or `__type` as a field.
    pub introspection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Whether a JSON `query` value looks like a GraphQL document (and not, say, a search text):
/// it starts with a selection set or an operation/fragment keyword.
pub fn looks_like_document(text: &str) -> bool {
    let mut t = text.trim_start();
    // Leading comments.
    while let Some(rest) = t.strip_prefix('#') {
        t = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
    }
    t.starts_with('{')
        || ["query", "mutation", "subscription", "fragment"]
            .iter()
            .any(|k| {
                t.strip_prefix(k).is_some_and(|r| {
                    r.is_empty() || !r.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
}

pub fn lex(text: &str, max_strings: usize) -> Result<Document, Malformed> {
    let mut doc = Document::default();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '"' => {
                let rest = text.get(i..).unwrap_or_default();
                let (value, len) = if rest.starts_with("\"\"\"") {
                    block_string(rest)?
                } else {
                    string(rest)?
                };
                if doc.strings.len() >= max_strings {
                    return Err(Malformed);
                }
                doc.strings.push(value);
                // Skip the rest of the literal (its first character is consumed).
                let end = i + len;
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let name = text.get(i..end).unwrap_or_default();
                if name == "__schema" || name == "__type" {
                    doc.introspection = true;
                }
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {}
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {}
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => {}
            _ => return Err(Malformed),
        }
    }
    Ok(doc)
}

/// A `"..."` string starting at `s`: its decoded value and its length in bytes.
fn string(s: &str) -> Result<(String, usize), Malformed> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' | '\r' => return Err(Malformed),
            '\\' => {
                let (_, e) = it.next().ok_or(Malformed)?;
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let hex: String = it.by_ref().take(4).map(|(_, c)| c).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| Malformed)?;
                        // A surrogate half (one of a pair) is kept as U+FFFD: the detectors
                        // look for ASCII, and a pair never decodes to ASCII.
                        char::from_u32(code).unwrap_or('\u{fffd}')
                    }
                    _ => return Err(Malformed),
                });
            }
            c => out.push(c),
        }
    }
    Err(Malformed)
}

/// A `"""..."""` block string starting at `s` (only `\"""` is an escape in it).
fn block_string(s: &str) -> Result<(String, usize), Malformed> {
    let body = s.get(3..).unwrap_or_default();
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        let rest = body.get(i..).unwrap_or_default();
        if rest.starts_with("\\\"\"\"") {
            out.push_str("\"\"\"");
            i += 4;
        } else if rest.starts_with("\"\"\"") {
            return Ok((out, 3 + i + 3));
        } else {
            let c = rest.chars().next().ok_or(Malformed)?;
            out.push(c);
            i += c.len_utf8();
        }
    }
    Err(Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_introspection() {
        let d = lex(
            r#"query Q($n: String = "d\u0027f") { a: user(name: "x\"y", bio: """b "q" \""" c""") { __typename id } } # "no""#,
            10,
        )
        .unwrap();
        assert_eq!(d.strings, ["d'f", "x\"y", "b \"q\" \"\"\" c"]);
        assert!(!d.introspection);
        assert!(
            lex("{ __schema { types { name } } }", 10)
                .unwrap()
                .introspection
        );
        assert!(
            lex("{ t: __type(name: \"A\") { name } }", 10)
                .unwrap()
                .introspection
        );
        assert!(!lex("{ f(s: \"__schema\") }", 10).unwrap().introspection);
        for bad in [
            "{ f(s: \"open) }",
            "{ f(s: \"\"\"open) }",
            "{ 'x' }",
            "{ f(s: \"\\q\") }",
        ] {
            assert_eq!(lex(bad, 10), Err(Malformed), "{bad}");
        }
        assert_eq!(lex("{ f(a: \"1\", b: \"2\") }", 1), Err(Malformed));
    }

    #[test]
    fn documents_and_search_texts() {
        for doc in [
            "{ a }",
            " query { a }",
            "mutation M { a }",
            "# c\nquery { a }",
            "fragment F on T { a }",
        ] {
            assert!(looks_like_document(doc), "{doc}");
        }
        for text in ["red shoes", "queryable", "it's", ""] {
            assert!(!looks_like_document(text), "{text}");
        }
    }
}
