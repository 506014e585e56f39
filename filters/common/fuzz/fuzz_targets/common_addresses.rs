//! Any bytes as the small formats every filter shares: client addresses as Envoy reports them
//! (`ip:port`, `[v6]:port`), CIDR lists from configurations, the identity auth publishes to the
//! later filters, and problem+json / configuration error shapes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_common::client::{parse_source_address, Cidr, CidrSet};
use portcullis_common::identity::Identity;

fuzz_target!(|data: &[u8]| {
    if let Some(identity) = Identity::from_json(data) {
        // What is read back must write out and read back the same.
        let again = Identity::from_json(&identity.to_json());
        assert_eq!(
            again.as_ref(),
            Some(&identity),
            "identity does not round-trip"
        );
    }
    let text = String::from_utf8_lossy(data);
    let list: Vec<String> = text.split('\n').map(str::to_string).collect();
    let set = CidrSet::parse(&list);
    for line in &list {
        let ip = parse_source_address(line);
        if let Ok(cidr) = Cidr::parse(line) {
            if let Some(ip) = ip {
                let _ = cidr.contains(ip);
            }
        }
        if let (Ok(set), Some(ip)) = (&set, ip) {
            let _ = set.contains(ip);
        }
    }
});
