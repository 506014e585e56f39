//! Any text through the GraphQL lexer and the document sniff: no panic, bounded string count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::graphql::{lex, looks_like_document};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = looks_like_document(text);
    if let Ok(doc) = lex(text, 64) {
        assert!(doc.strings.len() <= 64);
        // A string's decoded value is never longer than the document it came from.
        assert!(doc.strings.iter().all(|s| s.len() <= text.len() * 3));
    }
});
