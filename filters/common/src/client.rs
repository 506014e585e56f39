//! The client's address, and the CIDR lists that policies match it against.
//!
//! Envoy (with `use_remote_address` and `xff_num_trusted_hops`) has already decided which address
//! is the real client; filters read it from the `source.address` property and never look at
//! `X-Forwarded-For` themselves.
//!
//! An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the same client as `1.2.3.4`, so both the
//! client address and every configured network are normalised to IPv4: a client cannot dodge a
//! limit or a deny list by switching between the two spellings.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::ConfigError;

/// Parses Envoy's `source.address`: `1.2.3.4:5678`, `[2001:db8::1]:443`, or either address
/// without a port. Anything else (a Unix socket path, a zone id, junk) gives `None`.
pub fn parse_source_address(s: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() && after.strip_prefix(':').and_then(parse_port).is_none() {
            return None;
        }
        IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        // A bare address; tried before splitting on ':' because bare IPv6 is full of colons.
        ip
    } else {
        let (host, port) = s.rsplit_once(':')?;
        parse_port(port)?;
        // Without brackets only IPv4 may carry a port.
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(normalise(ip))
}

/// A port is 1 to 5 decimal digits that fit in a u16 (`str::parse` alone would accept `+80`).
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d`; every other address is returned unchanged. (Only the
/// mapped form: the deprecated "compatible" form `::a.b.c.d` would turn `::1` into `0.0.0.1`.)
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// One network: an address and a prefix length, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). A network
    /// written in IPv4-mapped form (`::ffff:10.0.0.0/104`) becomes the IPv4 one (`10.0.0.0/8`).
    /// Errors have an empty field: the caller knows which entry it was compiling.
    pub fn parse(s: &str) -> Result<Cidr, ConfigError> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            ConfigError::new("", format!("`{s}` is not an IP address or CIDR network"))
        })?;
        let max = max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ConfigError::new(
                        "",
                        format!("`{s}`: prefix length must be a number, got `{p}`"),
                    ));
                }
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => {
                        return Err(ConfigError::new(
                            "",
                            format!(
                                "`{s}`: prefix length /{p} is too long for {} (at most /{max})",
                                family(addr)
                            ),
                        ))
                    }
                }
            }
        };
        let cidr = normalise_net(addr, prefix);
        // Host bits are refused rather than silently cleared: `10.1.2.3/8` is more likely a typo
        // for `10.1.2.3/32` than a deliberate way of writing `10.0.0.0/8`.
        let network = cidr.network();
        if network != cidr.addr {
            return Err(ConfigError::new(
                "",
                format!(
                    "`{s}` has host bits set; the network is {}",
                    Cidr {
                        addr: network,
                        prefix: cidr.prefix
                    }
                ),
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address counts as IPv4; otherwise an
    /// address of one family is never inside a network of the other.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, normalise(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }

    /// The address with the host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(self.prefix))),
        }
    }
}

impl fmt::Display for Cidr {
    /// Canonical form, always with the prefix length: `10.0.0.0/8`, `2001:db8::/32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// A network inside `::ffff:0:0/96` is an IPv4 network in disguise; store it as IPv4 so that it
/// matches the (normalised) IPv4 clients it was meant for.
fn normalise_net(addr: IpAddr, prefix: u8) -> Cidr {
    match addr {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => Cidr {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            None => Cidr { addr, prefix },
        },
        _ => Cidr { addr, prefix },
    }
}

/// The top `prefix` bits set. `checked_shl` handles /0, where a shift by the full width would
/// overflow.
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// The network address of `ip` with `v4_prefix` / `v6_prefix` bits kept (host bits cleared),
/// after IPv4-mapped normalisation: the client a per-address policy counts. A host given a whole
/// IPv6 /64 can rotate through 2^64 addresses, so counting per /128 counts nothing.
pub fn masked(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match normalise(ip) {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(v4_prefix))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(v6_prefix))),
    }
}

/// A list of networks; an address matches if any of them contains it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    nets: Vec<Cidr>,
}

impl CidrSet {
    /// Parses every entry; the first bad one is reported with field `[i]`.
    pub fn parse(list: &[String]) -> Result<CidrSet, ConfigError> {
        let nets = list
            .iter()
            .enumerate()
            .map(|(i, s)| Cidr::parse(s).map_err(|e| e.within(&format!("[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CidrSet { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

#[cfg(test)]
// A failing unwrap is how a test reports failure; the lints guard production code.
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    fn cidr_err(s: &str) -> ConfigError {
        Cidr::parse(s).unwrap_err()
    }

    #[test]
    fn source_address_forms() {
        assert_eq!(
            parse_source_address("203.0.113.7:51234"),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(parse_source_address("203.0.113.7"), Some(ip("203.0.113.7")));
        assert_eq!(
            parse_source_address("[2001:db8::1]:443"),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            parse_source_address("[2001:db8::1]"),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(parse_source_address("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_source_address("::1"), Some(ip("::1")));
        assert_eq!(parse_source_address("[::1]:0"), Some(ip("::1")));
        assert_eq!(parse_source_address("1.2.3.4:65535"), Some(ip("1.2.3.4")));
    }

    #[test]
    fn source_address_mapped_is_ipv4() {
        assert_eq!(parse_source_address("::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(
            parse_source_address("[::ffff:1.2.3.4]:80"),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            parse_source_address("[::FFFF:0102:0304]:80"),
            Some(ip("1.2.3.4"))
        );
        // The deprecated "compatible" form is not mapped: ::1 stays loopback.
        assert_eq!(parse_source_address("::1.2.3.4"), Some(ip("::102:304")));
    }

    #[test]
    fn source_address_junk() {
        for s in [
            "",
            ":",
            ":80",
            "1.2.3.4:",
            "1.2.3.4:+80",
            "1.2.3.4:65536",
            "1.2.3.4:80:80",
            "1.2.3.4.5",
            "01.2.3.4",
            "example.com:80",
            "[2001:db8::1",
            "[2001:db8::1]:",
            "[2001:db8::1]80",
            "[2001:db8::1]:x",
            "[1.2.3.4]:80",
            "[]",
            "fe80::1%eth0",
            "/var/run/envoy.sock",
            "@abstract",
            " 1.2.3.4",
            "1.2.3.4 ",
            "[é]:1",
            "é:1",
        ] {
            assert_eq!(parse_source_address(s), None, "{s:?}");
        }
    }

    #[test]
    fn cidr_parse_and_display() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("2001:DB8:0:0::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("::/0").to_string(), "::/0");
        assert_eq!(cidr("10.0.0.0/08").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn cidr_mapped_becomes_ipv4() {
        assert_eq!(cidr("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::ffff:1.2.3.4").to_string(), "1.2.3.4/32");
        assert_eq!(cidr("::ffff:0:0/96").to_string(), "0.0.0.0/0");
        // Shorter than /96 it is more than the mapped range, so it stays IPv6 (and, as clients
        // in the mapped range are IPv4, it does not match them).
        assert_eq!(cidr("::fffe:0:0/95").to_string(), "::fffe:0:0/95");
        assert!(!cidr("::fffe:0:0/95").contains(ip("::ffff:1.2.3.4")));
        assert!(cidr("::fffe:0:0/95").contains(ip("::fffe:1.2.3.4")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn cidr_errors_say_what_is_wrong() {
        let e = cidr_err("10.0.0.0/33");
        assert_eq!(e.field, "");
        assert_eq!(
            e.message,
            "`10.0.0.0/33`: prefix length /33 is too long for IPv4 (at most /32)"
        );
        let e = cidr_err("2001:db8::/129");
        assert!(
            e.message.contains("too long for IPv6 (at most /128)"),
            "{e}"
        );
        let e = cidr_err("10.0.0.0/999");
        assert!(e.message.contains("/999 is too long"), "{e}");

        for s in [
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
        ] {
            let e = cidr_err(s);
            assert!(
                e.message.contains("prefix length must be a number"),
                "{s}: {e}"
            );
        }

        for s in [
            "",
            "/8",
            "junk",
            "10.0.0/8",
            "10.0.0.256/32",
            "[::1]/128",
            "10.0.0.0 /8",
        ] {
            let e = cidr_err(s);
            assert!(e.message.contains("is not an IP address"), "{s}: {e}");
        }

        let e = cidr_err("10.1.2.3/8");
        assert_eq!(
            e.message,
            "`10.1.2.3/8` has host bits set; the network is 10.0.0.0/8"
        );
        let e = cidr_err("2001:db8::1/32");
        assert!(e.message.ends_with("the network is 2001:db8::/32"), "{e}");
        let e = cidr_err("::ffff:10.1.0.0/104");
        assert!(e.message.ends_with("the network is 10.0.0.0/8"), "{e}");
    }

    #[test]
    fn cidr_contains_v4() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.0.0.0")));
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("9.255.255.255")));
        // Mapped form of a v4 client matches the v4 network...
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        // ...but no other IPv6 address does.
        assert!(!net.contains(ip("::a01:203")));
        assert!(!net.contains(ip("2001:db8::1")));

        let host = cidr("192.0.2.1");
        assert!(host.contains(ip("192.0.2.1")));
        assert!(!host.contains(ip("192.0.2.2")));

        let all = cidr("0.0.0.0/0");
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.contains(ip("::ffff:1.1.1.1")));
        assert!(!all.contains(ip("::1")));

        let odd = cidr("192.168.4.0/22");
        assert!(odd.contains(ip("192.168.7.255")));
        assert!(!odd.contains(ip("192.168.8.0")));
        assert!(!odd.contains(ip("192.168.3.255")));
    }

    #[test]
    fn cidr_contains_v6() {
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8::1")));
        assert!(net.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!net.contains(ip("2001:db9::")));
        assert!(!net.contains(ip("32.1.13.184")));

        let all = cidr("::/0");
        assert!(all.contains(ip("::1")));
        // A mapped client is an IPv4 client, so "all IPv6" does not cover it.
        assert!(!all.contains(ip("::ffff:1.2.3.4")));
        assert!(!all.contains(ip("1.2.3.4")));

        let host = cidr("::1");
        assert!(host.contains(ip("::1")));
        assert!(!host.contains(ip("::2")));

        let odd = cidr("2001:db8:8000::/33");
        assert!(odd.contains(ip("2001:db8:ffff::1")));
        assert!(!odd.contains(ip("2001:db8:7fff::1")));
    }

    #[test]
    fn masks() {
        assert_eq!(mask_v4(0), 0);
        assert_eq!(mask_v4(1), 0x8000_0000);
        assert_eq!(mask_v4(32), u32::MAX);
        assert_eq!(mask_v6(0), 0);
        assert_eq!(mask_v6(127), u128::MAX - 1);
        assert_eq!(mask_v6(128), u128::MAX);
    }

    #[test]
    fn cidr_set() {
        let list: Vec<String> = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let set = CidrSet::parse(&list).unwrap();
        assert!(!set.is_empty());
        assert!(set.contains(ip("10.2.3.4")));
        assert!(set.contains(ip("::ffff:10.2.3.4")));
        assert!(set.contains(ip("2001:db8::5")));
        assert!(set.contains(ip("192.0.2.7")));
        assert!(!set.contains(ip("192.0.2.8")));
        assert!(!set.contains(ip("::1")));

        let empty = CidrSet::parse(&[]).unwrap();
        assert!(empty.is_empty());
        assert!(!empty.contains(ip("10.0.0.1")));
        assert_eq!(empty, CidrSet::default());
    }

    #[test]
    fn cidr_set_error_names_entry() {
        let list = vec!["10.0.0.0/8".to_string(), "10.0.0.1/8".to_string()];
        let e = CidrSet::parse(&list).unwrap_err();
        assert_eq!(e.field, "[1]");
        assert!(e.message.contains("host bits"), "{e}");
        assert_eq!(e.within("allow").field, "allow[1]");
    }

    #[test]
    fn masked_keeps_the_prefix_of_each_family() {
        let m = |ip: &str, v4: u8, v6: u8| masked(ip.parse().unwrap(), v4, v6).to_string();
        assert_eq!(
            m("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 64),
            "2001:db8:1:2::"
        );
        assert_eq!(m("2001:db8:1:2::1", 32, 48), "2001:db8:1::");
        assert_eq!(m("2001:db8::1", 32, 128), "2001:db8::1");
        assert_eq!(m("2001:db8::1", 32, 0), "::");
        assert_eq!(m("203.0.113.9", 32, 64), "203.0.113.9");
        assert_eq!(m("203.0.113.9", 24, 64), "203.0.113.0");
        assert_eq!(m("203.0.113.9", 0, 64), "0.0.0.0");
        // An IPv4-mapped address is the IPv4 client, masked by the IPv4 prefix.
        assert_eq!(m("::ffff:203.0.113.9", 24, 64), "203.0.113.0");
    }
}
