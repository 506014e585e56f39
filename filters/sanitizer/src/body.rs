//! Body formats: content-type classification, and the multipart/form-data parser with the upload
//! checks (extension, declared type, magic bytes). JSON is parsed by `json` and urlencoded
//! forms by `decode::form_pairs`; both are walked by `engine`.

use crate::config::UploadPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Json,
    Form,
    /// With its boundary.
    Multipart(String),
    /// XML and SOAP (`application/xml`, `text/xml`, `*+xml`).
    Xml,
    /// `application/graphql`: the body is a GraphQL document.
    GraphQl,
    Text,
    /// No `Content-Type` header.
    Missing,
    Other,
    /// A `Content-Type` naming a parameter twice (two `boundary`, two `charset`): parsers
    /// disagree on which one counts, so the body cannot be read the way the upstream reads it.
    Ambiguous,
}

/// The `;`-separated parameters after a media type (RFC 9110 5.6.6), names lower-cased, quoted
/// values unquoted. Hand-written: a dozen lines of `token=token|quoted-string`, where a crate
/// would bring a whole MIME model.
pub fn params(raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        // Skip to the next `;` outside quotes (the media type, or garbage after a value).
        let mut quoted = false;
        for c in chars.by_ref() {
            match c {
                '"' => quoted = !quoted,
                ';' if !quoted => break,
                _ => {}
            }
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let name = name.trim().to_ascii_lowercase();
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
        if chars.peek() == Some(&';') {
            // Let the skip loop see this separator as the end of the current parameter.
            continue;
        }
    }
}

/// Whether a parameter list names a parameter twice.
fn repeats(params: &[(String, String)]) -> bool {
    params
        .iter()
        .enumerate()
        .any(|(i, (n, _))| params.iter().skip(i + 1).any(|(m, _)| m == n))
}

/// The media type (lower case, without parameters) and its kind.
pub fn classify(content_type: Option<&str>) -> (String, Kind) {
    let Some(raw) = content_type else {
        return (String::new(), Kind::Missing);
    };
    let media = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = params(raw);
    if repeats(&params) {
        return (media, Kind::Ambiguous);
    }
    let kind = if media == "application/json" || media.ends_with("+json") {
        Kind::Json
    } else if media == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if media == "multipart/form-data" {
        let boundary = params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        match boundary {
            Some(b) if !b.is_empty() && b.len() <= 70 => Kind::Multipart(b),
            _ => Kind::Other,
        }
    } else if media == "application/xml" || media == "text/xml" || media.ends_with("+xml") {
        Kind::Xml
    } else if media == "application/graphql" {
        Kind::GraphQl
    } else if media.starts_with("text/") {
        Kind::Text
    } else {
        Kind::Other
    };
    (media, kind)
}

/// The `charset` parameter, lower case, if any.
pub fn charset(content_type: Option<&str>) -> Option<String> {
    params(content_type?)
        .into_iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.to_ascii_lowercase())
}

/// Whether `media` is in `allowed` (entries may be `type/*`).
pub fn media_allowed(media: &str, allowed: &[String]) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_suffix("/*") {
            Some(top) => media.split('/').next() == Some(top),
            None => a == media,
        })
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    /// The plain `filename` when a `filename*` was given too (and is in `filename`).
    pub other_filename: Option<String>,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartError {
    /// No opening delimiter, a part without headers, or no closing delimiter.
    Malformed,
    TooManyParts,
    /// A part whose headers servers read differently: two `Content-Disposition` lines, a
    /// parameter named twice, or a `Content-Transfer-Encoding` (not part of form-data, RFC 7578
    /// 4.7: some servers decode it, others do not).
    Ambiguous,
}

/// An RFC 8187 (formerly 5987/2231) extended value, `charset'language'percent-encoded`, decoded.
/// UTF-8 and ISO-8859-1 are the two charsets the RFC requires; any other is decoded as UTF-8
/// with replacement characters, so its ASCII (where a payload would be) still reaches the
/// detectors.
fn extended_value(v: &str) -> Option<String> {
    let mut it = v.splitn(3, '\'');
    let charset = it.next()?.to_ascii_lowercase();
    let _language = it.next()?;
    let bytes = crate::decode::percent_decode(it.next()?.as_bytes(), false);
    Some(if charset == "iso-8859-1" {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses a multipart/form-data body (RFC 7578). Linear: each delimiter search starts where the
/// previous one ended.
pub fn multipart<'a>(
    body: &'a [u8],
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<Part<'a>>, MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or(MultipartError::Malformed)?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(after..after + 2) != Some(b"\r\n") {
            return Err(MultipartError::Malformed);
        }
        let head_start = after + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or(MultipartError::Malformed)?;
        let data_start = head_end + 4;
        let mut next_delim = Vec::with_capacity(delim.len() + 2);
        next_delim.extend_from_slice(b"\r\n");
        next_delim.extend_from_slice(delim);
        let next = find(body, &next_delim, head_end + 2).ok_or(MultipartError::Malformed)?;
        if parts.len() >= max_parts {
            return Err(MultipartError::TooManyParts);
        }
        let head = String::from_utf8_lossy(body.get(head_start..head_end).unwrap_or_default());
        let mut part = Part {
            name: String::new(),
            filename: None,
            other_filename: None,
            content_type: None,
            data: body.get(data_start.min(next)..next).unwrap_or_default(),
        };
        let mut dispositions = 0;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(MultipartError::Malformed);
            };
            let k = k.trim().to_ascii_lowercase();
            if k == "content-disposition" {
                dispositions += 1;
                let ps = params(v);
                if dispositions > 1 || repeats(&ps) {
                    return Err(MultipartError::Ambiguous);
                }
                let (mut name, mut name_ext, mut file, mut file_ext) = (None, None, None, None);
                for (pk, pv) in ps {
                    match pk.as_str() {
                        "name" => name = Some(pv),
                        "name*" => name_ext = extended_value(&pv),
                        "filename" => file = Some(pv),
                        "filename*" => file_ext = extended_value(&pv),
                        _ => {}
                    }
                }
                // RFC 6266 4.3: the extended form wins where both are given; the plain one is
                // kept too, for servers that read only that one.
                part.name = name_ext.or(name).unwrap_or_default();
                match (file_ext, file) {
                    (Some(e), plain) => {
                        part.filename = Some(e);
                        part.other_filename = plain;
                    }
                    (None, plain) => part.filename = plain,
                }
            } else if k == "content-transfer-encoding" {
                return Err(MultipartError::Ambiguous);
            } else if k == "content-type" {
                part.content_type = Some(
                    v.split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase(),
                );
            }
        }
        parts.push(part);
        pos = next + 2;
    }
}

/// What is wrong with an uploaded file, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadProblem {
    Extension,
    DeclaredType,
    Content,
}

/// A check of a file's first bytes.
type Magic = fn(&[u8]) -> bool;

/// The content types an extension may be declared as, and a check of the file's first bytes.
fn expected(ext: &str) -> Option<(&'static [&'static str], Magic)> {
    fn png(d: &[u8]) -> bool {
        d.starts_with(b"\x89PNG\r\n\x1a\n")
    }
    fn jpeg(d: &[u8]) -> bool {
        d.starts_with(b"\xff\xd8\xff")
    }
    fn gif(d: &[u8]) -> bool {
        d.starts_with(b"GIF87a") || d.starts_with(b"GIF89a")
    }
    fn webp(d: &[u8]) -> bool {
        d.starts_with(b"RIFF") && d.get(8..12) == Some(b"WEBP")
    }
    fn pdf(d: &[u8]) -> bool {
        d.starts_with(b"%PDF-")
    }
    fn text(d: &[u8]) -> bool {
        std::str::from_utf8(d).is_ok() && !d.contains(&0)
    }
    Some(match ext {
        "png" => (&["image/png"], png),
        "jpg" | "jpeg" => (&["image/jpeg"], jpeg),
        "gif" => (&["image/gif"], gif),
        "webp" => (&["image/webp"], webp),
        "pdf" => (&["application/pdf"], pdf),
        "txt" => (&["text/plain"], text),
        "csv" => (&["text/csv", "text/plain"], text),
        "json" => (&["application/json", "text/plain"], text),
        _ => return None,
    })
}

pub fn check_upload(part: &Part<'_>, policy: &UploadPolicy) -> Option<UploadProblem> {
    // Both names must pass: servers differ on which of `filename` and `filename*` they use.
    if let Some(other) = &part.other_filename {
        let ext = other
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !policy.allowed_extensions.is_empty() && !policy.allowed_extensions.contains(&ext) {
            return Some(UploadProblem::Extension);
        }
    }
    let filename = part.filename.as_deref().unwrap_or_default();
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !policy.allowed_extensions.is_empty() && !policy.allowed_extensions.contains(&ext) {
        return Some(UploadProblem::Extension);
    }
    if !policy.check_content {
        return None;
    }
    let (types, magic) = expected(&ext)?;
    match part.content_type.as_deref() {
        Some(t) if types.contains(&t) || t == "application/octet-stream" => {}
        _ => return Some(UploadProblem::DeclaredType),
    }
    if !magic(part.data) {
        return Some(UploadProblem::Content);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some("application/json; charset=utf-8")).1,
            Kind::Json
        );
        assert_eq!(classify(Some("application/problem+json")).1, Kind::Json);
        assert_eq!(
            classify(Some("Application/X-WWW-Form-Urlencoded")).1,
            Kind::Form
        );
        assert_eq!(
            classify(Some("multipart/form-data; boundary=\"abc\"")).1,
            Kind::Multipart("abc".into())
        );
        assert_eq!(classify(Some("multipart/form-data")).1, Kind::Other);
        assert_eq!(
            classify(Some("multipart/form-data; boundary=a; BOUNDARY=b")).1,
            Kind::Ambiguous
        );
        assert_eq!(
            classify(Some("multipart/form-data; boundary=\"a;b\"")).1,
            Kind::Multipart("a;b".into())
        );
        assert_eq!(classify(Some("application/soap+xml")).1, Kind::Xml);
        assert_eq!(
            charset(Some("text/plain; Charset=\"UTF-16LE\"")).as_deref(),
            Some("utf-16le")
        );
        assert_eq!(
            params("form-data; name=\"a\\\"b\"; filename*=UTF-8''x%20y"),
            vec![
                ("name".to_string(), "a\"b".to_string()),
                ("filename*".to_string(), "UTF-8''x%20y".to_string())
            ]
        );
        assert_eq!(classify(Some("text/markdown")).1, Kind::Text);
        assert_eq!(classify(Some("application/octet-stream")).1, Kind::Other);
        assert_eq!(classify(None).1, Kind::Missing);
        assert!(media_allowed("text/csv", &["text/*".into()]));
        assert!(!media_allowed(
            "application/xml",
            &["application/json".into()]
        ));
    }

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nrest\r\n--XyZ--\r\n";

    #[test]
    fn parses_fields_and_files() {
        let parts = multipart(BODY, "XyZ", 10).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("title", &b"Hello"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(check_upload(&parts[1], &UploadPolicy::default()), None);
    }

    #[test]
    fn malformed_and_truncated() {
        assert_eq!(
            multipart(b"garbage", "XyZ", 10),
            Err(MultipartError::Malformed)
        );
        let cut = &BODY[..BODY.len() - 12];
        assert_eq!(multipart(cut, "XyZ", 10), Err(MultipartError::Malformed));
        assert_eq!(
            multipart(b"--XyZ\r\nno header\r\n\r\nx\r\n--XyZ--", "XyZ", 10),
            Err(MultipartError::Malformed)
        );
        assert_eq!(multipart(BODY, "XyZ", 1), Err(MultipartError::TooManyParts));
    }

    #[test]
    fn upload_checks() {
        let policy = UploadPolicy::default();
        let part = |name: &str, ct: &str, data: &'static [u8]| Part {
            name: "f".into(),
            filename: Some(name.into()),
            other_filename: None,
            content_type: Some(ct.into()),
            data,
        };
        assert_eq!(
            check_upload(&part("x.php", "image/png", b"\x89PNG\r\n\x1a\n"), &policy),
            Some(UploadProblem::Extension)
        );
        assert_eq!(
            check_upload(&part("x.png", "text/html", b"\x89PNG\r\n\x1a\n"), &policy),
            Some(UploadProblem::DeclaredType)
        );
        assert_eq!(
            check_upload(
                &part("x.png", "image/png", b"<?php system($_GET[1]);"),
                &policy
            ),
            Some(UploadProblem::Content)
        );
        assert_eq!(
            check_upload(&part("x.pdf", "application/pdf", b"%PDF-1.7"), &policy),
            None
        );
        assert_eq!(
            check_upload(&part("x.txt", "text/plain", b"a\0b"), &policy),
            Some(UploadProblem::Content)
        );
    }
}
