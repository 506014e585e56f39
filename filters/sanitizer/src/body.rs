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
    Text,
    /// No `Content-Type` header.
    Missing,
    Other,
}

/// The media type (lower case, without parameters) and its kind.
pub fn classify(content_type: Option<&str>) -> (String, Kind) {
    let Some(raw) = content_type else {
        return (String::new(), Kind::Missing);
    };
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let kind = if media == "application/json" || media.ends_with("+json") {
        Kind::Json
    } else if media == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if media == "multipart/form-data" {
        let boundary = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"').to_string())
        });
        match boundary {
            Some(b) if !b.is_empty() && b.len() <= 70 => Kind::Multipart(b),
            _ => Kind::Other,
        }
    } else if media.starts_with("text/") {
        Kind::Text
    } else {
        Kind::Other
    };
    (media, kind)
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
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartError {
    /// No opening delimiter, a part without headers, or no closing delimiter.
    Malformed,
    TooManyParts,
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
            content_type: None,
            data: body.get(data_start.min(next)..next).unwrap_or_default(),
        };
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(MultipartError::Malformed);
            };
            let k = k.trim().to_ascii_lowercase();
            if k == "content-disposition" {
                for param in v.split(';').skip(1) {
                    if let Some((pk, pv)) = param.split_once('=') {
                        let pv = pv.trim().trim_matches('"').to_string();
                        match pk.trim().to_ascii_lowercase().as_str() {
                            "name" => part.name = pv,
                            "filename" => part.filename = Some(pv),
                            _ => {}
                        }
                    }
                }
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
