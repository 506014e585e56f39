//! Any bytes as a route pattern (path with `{param}`, `*`, `**`; methods; host with `*.` suffix)
//! and requests matched against it: the first line is the pattern, the second the host pattern,
//! the third the methods (comma-separated), every later line `METHOD HOST PATH`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_common::route::{compile, RouteSpec};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or_default().to_string();
    let host = lines.next().filter(|h| !h.is_empty()).map(str::to_string);
    let methods = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    let Ok(route) = compile(&RouteSpec {
        path,
        methods,
        host,
    }) else {
        return;
    };
    for line in lines {
        let mut words = line.splitn(3, ' ');
        let method = words.next().unwrap_or_default();
        let host = words.next().unwrap_or_default();
        let path = words.next().unwrap_or_default();
        if let Some(params) = route.matches(method, host, path) {
            for (name, _) in params.iter() {
                let _ = params.get(name);
            }
        }
    }
});
