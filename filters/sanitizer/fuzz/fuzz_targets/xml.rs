//! Any text through the XML tokenizer: it must end (linear, bounded) without a panic, and never
//! report a path deeper than the limit allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::xml::{walk, Visitor};

struct Count(usize);

impl Visitor for Count {
    fn value(&mut self, path: &str, _value: &str) {
        self.0 += 1;
        assert!(path.matches('.').count() < 16, "path deeper than max_depth");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut count = Count(0);
    let _ = walk(text, 16, 1000, &mut count);
    assert!(count.0 <= 1000);
});
