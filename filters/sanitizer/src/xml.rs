//! XML and SOAP bodies: a bounded tokenizer that hands every text node, CDATA section and
//! attribute value to the detectors, and never resolves an entity. Only the five predefined
//! entities and character references are decoded; any other reference is an error, and a
//! DOCTYPE that declares an entity or points at an external DTD is reported, for the engine to
//! refuse (XXE, billion laughs). The prolog (the XML declaration, the DOCTYPE, processing
//! instructions and comments) is also handed over raw, as `xml-prolog`, for the detectors of
//! XML-borne attacks.
//!
//! Hand-written rather than a crate: the sanitizer needs tokens, not a tree, must see the
//! DOCTYPE verbatim, and must be sure nothing is ever expanded or fetched; a forward scanner of
//! this size is linear by construction and fuzzed (`fuzz/fuzz_targets/xml.rs`).

use std::borrow::Cow;

use crate::charset::Charset;

/// What the tokenizer hands over, with the element path it was found at (`order.note`,
/// `order@id`, `{xml-prolog}`).
pub trait Visitor {
    fn value(&mut self, path: &str, value: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlError {
    Malformed,
    TooDeep,
    TooManyNodes,
    /// A DOCTYPE declaring an entity, a parameter-entity reference or an external DTD.
    EntityDeclared,
}

/// Whether the encoding an XML declaration names (if any) is the one the body arrived in (and was
/// decoded from): UTF-8, US-ASCII and ISO-8859-1 read the markup alike; UTF-16 and UTF-32 only
/// match themselves; anything else (UTF-7, EBCDIC, an unknown label) never agrees.
pub fn declared_encoding_agrees(text: &str, source: Charset) -> bool {
    let text = text.trim_start_matches('\u{feff}');
    let Some(decl) = text
        .strip_prefix("<?xml")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .and_then(|rest| rest.split("?>").next())
    else {
        return true;
    };
    let Some(at) = decl.find("encoding") else {
        return true;
    };
    let value = decl
        .get(at + "encoding".len()..)
        .unwrap_or_default()
        .trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '=');
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return false;
    };
    let label = value
        .get(1..)
        .and_then(|v| v.split(quote).next())
        .unwrap_or_default();
    Charset::from_label(label).is_some_and(|declared| width(declared) == width(source))
}

/// Code-unit width: charsets of one width read XML markup alike.
fn width(cs: Charset) -> u8 {
    match cs {
        Charset::Utf8 | Charset::Latin1 => 1,
        Charset::Utf16 | Charset::Utf16Le | Charset::Utf16Be => 2,
        Charset::Utf32 | Charset::Utf32Le | Charset::Utf32Be => 4,
    }
}

/// The field name the prolog is reported under.
pub const PROLOG: &str = "{xml-prolog}";

struct Tokenizer<'a, V: Visitor> {
    text: &'a str,
    pos: usize,
    path: String,
    /// Where each open element's name starts in `path`, and its name.
    open: Vec<(usize, &'a str)>,
    nodes: usize,
    max_depth: usize,
    max_nodes: usize,
    visitor: &'a mut V,
    seen_root: bool,
}

/// Tokenizes `text`, handing every value to `visitor`.
pub fn walk<V: Visitor>(
    text: &str,
    max_depth: usize,
    max_nodes: usize,
    visitor: &mut V,
) -> Result<(), XmlError> {
    let mut t = Tokenizer {
        text,
        pos: 0,
        path: String::new(),
        open: Vec::new(),
        nodes: 0,
        max_depth,
        max_nodes,
        visitor,
        seen_root: false,
    };
    t.run()
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') || (c as u32) > 0x7f
}

impl<'a, V: Visitor> Tokenizer<'a, V> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn count(&mut self) -> Result<(), XmlError> {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            Err(XmlError::TooManyNodes)
        } else {
            Ok(())
        }
    }

    /// Moves past `end`, returning what came before it.
    fn until(&mut self, end: &str) -> Result<&'a str, XmlError> {
        let rest = self.rest();
        let at = rest.find(end).ok_or(XmlError::Malformed)?;
        self.pos += at + end.len();
        Ok(rest.get(..at).unwrap_or_default())
    }

    fn name(&mut self) -> Result<&'a str, XmlError> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return Err(XmlError::Malformed);
        }
        self.pos += len;
        Ok(rest.get(..len).unwrap_or_default())
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn prolog(&mut self, raw: &str) -> Result<(), XmlError> {
        self.count()?;
        self.visitor.value(PROLOG, raw);
        Ok(())
    }

    fn run(&mut self) -> Result<(), XmlError> {
        while self.pos < self.text.len() {
            let rest = self.rest();
            if rest.starts_with("<?") {
                self.pos += 2;
                let pi = self.until("?>")?;
                self.prolog(pi)?;
            } else if rest.starts_with("<!--") {
                self.pos += 4;
                let comment = self.until("-->")?;
                self.prolog(comment)?;
            } else if rest.starts_with("<![CDATA[") {
                if self.open.is_empty() {
                    return Err(XmlError::Malformed);
                }
                self.pos += 9;
                let data = self.until("]]>")?;
                self.text_value(data)?;
            } else if rest.starts_with("<!DOCTYPE") {
                if self.seen_root {
                    return Err(XmlError::Malformed);
                }
                self.doctype()?;
            } else if rest.starts_with("</") {
                self.pos += 2;
                let name = self.name()?;
                self.skip_space();
                if !self.rest().starts_with('>') {
                    return Err(XmlError::Malformed);
                }
                self.pos += 1;
                match self.open.pop() {
                    Some((start, open)) if open == name => self.path.truncate(start),
                    _ => return Err(XmlError::Malformed),
                }
            } else if rest.starts_with('<') {
                self.pos += 1;
                self.element()?;
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let raw = rest.get(..end).unwrap_or_default();
                self.pos += end;
                if self.open.is_empty() {
                    // Outside the root only white space is allowed.
                    if !raw.trim().is_empty() {
                        return Err(XmlError::Malformed);
                    }
                } else if !raw.trim().is_empty() {
                    let value = unescape(raw)?;
                    self.text_value(&value)?;
                }
            }
        }
        if !self.open.is_empty() || !self.seen_root {
            return Err(XmlError::Malformed);
        }
        Ok(())
    }

    fn text_value(&mut self, value: &str) -> Result<(), XmlError> {
        self.count()?;
        let path = self.path.clone();
        self.visitor.value(&path, value);
        Ok(())
    }

    fn element(&mut self) -> Result<(), XmlError> {
        if self.open.is_empty() && self.seen_root {
            return Err(XmlError::Malformed);
        }
        self.count()?;
        let name = self.name()?;
        if self.open.len() >= self.max_depth {
            return Err(XmlError::TooDeep);
        }
        let start = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        loop {
            self.skip_space();
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.pos += 2;
                self.path.truncate(start);
                self.seen_root = true;
                return Ok(());
            }
            if rest.starts_with('>') {
                self.pos += 1;
                self.open.push((start, name));
                self.seen_root = true;
                return Ok(());
            }
            let attr = self.name()?;
            self.skip_space();
            if !self.rest().starts_with('=') {
                return Err(XmlError::Malformed);
            }
            self.pos += 1;
            self.skip_space();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(XmlError::Malformed),
            };
            self.pos += 1;
            let raw = self.until(if quote == '"' { "\"" } else { "'" })?;
            if raw.contains('<') {
                return Err(XmlError::Malformed);
            }
            let value = unescape(raw)?;
            self.count()?;
            let field = format!("{}@{attr}", self.path);
            self.visitor.value(&field, &value);
        }
    }

    /// `<!DOCTYPE name (SYSTEM|PUBLIC ...)? ([ internal subset ])? >`: found by its quotes and
    /// brackets, reported raw, and refused if it could bring an entity into the document.
    fn doctype(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut i = self.pos + "<!DOCTYPE".len();
        let (mut quote, mut depth) = (None::<u8>, 0usize);
        loop {
            let b = *bytes.get(i).ok_or(XmlError::Malformed)?;
            match (quote, b) {
                (Some(q), b) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'[') => depth += 1,
                (None, b']') => depth = depth.saturating_sub(1),
                (None, b'>') if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let raw = self.text.get(start..=i).unwrap_or_default();
        self.pos = i + 1;
        self.prolog(raw)?;
        let head = raw.get("<!DOCTYPE".len()..).unwrap_or_default();
        let external = head
            .split(['[', '>'])
            .next()
            .is_some_and(|h| h.contains("SYSTEM") || h.contains("PUBLIC"));
        if external || raw.contains("<!ENTITY") || raw.contains('%') {
            return Err(XmlError::EntityDeclared);
        }
        Ok(())
    }
}

/// Decodes the predefined entities and character references; any other reference is an error
/// (its declaration would have been refused, so it can only be undefined).
fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at + 1..).unwrap_or_default();
        let end = after.find(';').ok_or(XmlError::Malformed)?;
        let entity = after.get(..end).unwrap_or_default();
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or(XmlError::Malformed)?
            }
        };
        out.push(c);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(String, String)>);

    impl Visitor for Collect {
        fn value(&mut self, path: &str, value: &str) {
            self.0.push((path.to_string(), value.to_string()));
        }
    }

    fn values(doc: &str) -> Result<Vec<(String, String)>, XmlError> {
        let mut c = Collect::default();
        walk(doc, 8, 100, &mut c).map(|()| c.0)
    }

    #[test]
    fn texts_attributes_and_cdata_with_their_paths() {
        let v = values(
            r#"<?xml version="1.0"?><a x="1 &amp; 2"><b>&lt;i&gt; &#65;&#x42;</b><c/><d><![CDATA[<raw & >]]></d></a>"#,
        )
        .unwrap();
        assert_eq!(
            v,
            [
                ("{xml-prolog}", r#"xml version="1.0""#),
                ("a@x", "1 & 2"),
                ("a.b", "<i> AB"),
                ("a.d", "<raw & >"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn entities_are_never_resolved() {
        for doc in [
            r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#,
            r#"<!DOCTYPE a [<!ENTITY x "y">]><a/>"#,
            r#"<!DOCTYPE a [<!ENTITY % p SYSTEM "http://e/p"> %p;]><a/>"#,
            r#"<!DOCTYPE a SYSTEM "http://e/a.dtd"><a/>"#,
            r#"<!DOCTYPE a PUBLIC "-//x" "http://e/a.dtd"><a/>"#,
        ] {
            assert_eq!(values(doc), Err(XmlError::EntityDeclared), "{doc}");
        }
        // A DOCTYPE without declarations is allowed; an undefined entity is malformed.
        assert!(values("<!DOCTYPE a [<!ELEMENT a ANY>]><a/>").is_ok());
        assert_eq!(values("<a>&x;</a>"), Err(XmlError::Malformed));
    }

    #[test]
    fn malformed_and_bounded() {
        for doc in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text<a/>",
            "<a x=1/>",
            "<a x='<'/>",
            "<a>&#xD800;</a>",
            "<![CDATA[x]]>",
            "<a><!-- open",
            "<!DOCTYPE a [",
            "</a>",
        ] {
            assert_eq!(values(doc), Err(XmlError::Malformed), "{doc:?}");
        }
        assert_eq!(values(&"<a>".repeat(9)), Err(XmlError::TooDeep));
        assert_eq!(
            values(&format!("<a>{}</a>", "<b/>".repeat(100))),
            Err(XmlError::TooManyNodes)
        );
    }

    #[test]
    fn a_declared_encoding_must_be_the_one_the_body_arrived_in() {
        let agrees = |text: &str, cs| declared_encoding_agrees(text, cs);
        // No declaration, or none naming an encoding: nothing to disagree with.
        assert!(agrees("<a/>", Charset::Utf8));
        assert!(agrees(r#"<?xml version="1.0"?><a/>"#, Charset::Utf8));
        assert!(agrees(
            r#"<?xml version="1.0" encoding="UTF-8"?><a/>"#,
            Charset::Utf8
        ));
        assert!(agrees(
            r#"<?xml version='1.0' encoding = 'iso-8859-1'?><a/>"#,
            Charset::Utf8
        ));
        // Honest UTF-16: the body arrived in UTF-16 and was decoded from it.
        assert!(agrees(
            r#"<?xml version="1.0" encoding="UTF-16"?><a/>"#,
            Charset::Utf16Le
        ));
        // The switch: UTF-8 bytes declared as UTF-16/32/7 or an unknown encoding.
        for decl in ["UTF-16", "utf-32", "UTF-7", "ebcdic-cp-us", "x"] {
            let text = format!(r#"<?xml version="1.0" encoding="{decl}"?><a/>"#);
            assert!(!agrees(&text, Charset::Utf8), "{decl}");
        }
        assert!(!agrees(
            r#"<?xml version="1.0" encoding=UTF-16?><a/>"#,
            Charset::Utf8
        ));
        assert!(!agrees(
            r#"<?xml version="1.0" encoding="UTF-8"?><a/>"#,
            Charset::Utf32Be
        ));
    }
}
