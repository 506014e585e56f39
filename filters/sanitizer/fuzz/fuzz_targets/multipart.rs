//! Any bytes as a multipart body (with the RFC 2231/5987 parameters and the ambiguity rules) and
//! any text as a Content-Type: no panic; a part's data always lies inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::body::{classify, multipart, params};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0);
    let (ct, body) = data.split_at(split);
    if let Ok(ct) = std::str::from_utf8(ct) {
        let _ = params(ct);
        let _ = classify(Some(ct));
    }
    if let Ok(parts) = multipart(body, "B", 20) {
        assert!(parts.len() <= 20);
        let range = body.as_ptr_range();
        for p in parts {
            assert!(p.data.is_empty() || range.contains(&p.data.as_ptr()));
        }
    }
});
