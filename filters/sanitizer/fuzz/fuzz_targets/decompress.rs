//! Any bytes as a gzip or deflate body: inflating must end without a panic and never return
//! more than the limit or the ratio allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sanitizer::decompress::{inflate, Encoding};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let encoding = if selector & 1 == 0 { Encoding::Gzip } else { Encoding::Deflate };
    let limit = 1 + usize::from(selector >> 1) * 512;
    let ratio = 1 + u32::from(selector % 7) * 20;
    if let Ok(out) = inflate(encoding, body, limit, ratio) {
        assert!(out.len() <= limit);
        assert!(out.len() <= (body.len() * ratio as usize).max(1024));
    }
});
