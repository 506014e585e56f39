//! Any bytes as a route pattern (path with `{param}`, `*`, `**`; methods; host with `*.` suffix)
//! and requests matched against it: the first line is the pattern, the second the host pattern,
//! the third the methods (comma-separated), every later line `METHOD HOST PATH`. The route is
//! compiled both as a guarding and as an exempting route (case-sensitive when the input's first
//! byte is odd), and each path is read in both `;` parameter modes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_common::route::{compile_as, Kind, PathParameters, RequestPath, RouteSpec};

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
    let spec = RouteSpec {
        path,
        methods,
        host,
        case_sensitive: data.first().is_some_and(|b| b % 2 == 1),
    };
    let routes: Vec<_> = [Kind::Guard, Kind::Exempt]
        .into_iter()
        .filter_map(|kind| compile_as(&spec, kind).ok())
        .collect();
    for line in lines {
        let mut words = line.splitn(3, ' ');
        let method = words.next().unwrap_or_default();
        let host = words.next().unwrap_or_default();
        let path = words.next().unwrap_or_default();
        for mode in [PathParameters::Refuse, PathParameters::Strip] {
            let Some(read) = RequestPath::parse(path, mode) else {
                continue;
            };
            let _ = read.ambiguity();
            for route in &routes {
                if let Some(params) = route.matches_path(method, host, &read) {
                    for (name, _) in params.iter() {
                        let _ = params.get(name);
                    }
                }
            }
        }
    }
});
