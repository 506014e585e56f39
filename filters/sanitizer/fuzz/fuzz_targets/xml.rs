//! Any text through the XML tokenizer: it must end (linear, bounded) without a panic, hand over
//! no more values than the node limit, and build paths only from the document's own names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::xml::{walk, Visitor};

struct Count {
    values: usize,
    text_len: usize,
}

impl Visitor for Count {
    fn value(&mut self, path: &str, _value: &str) {
        self.values += 1;
        // Each path segment is a name from the text plus one separator (names may hold dots).
        assert!(path.len() <= 2 * self.text_len + 16, "path longer than the document");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut count = Count { values: 0, text_len: text.len() };
    let _ = walk(text, 16, 1000, &mut count);
    assert!(count.values <= 1000);
});
