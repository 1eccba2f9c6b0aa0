//! How values are laid out in the database: addresses as 16 bytes (IPv4 mapped into
//! `::ffff:0:0/96`, so a CIDR is one byte range), severities as small integers.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use spoor_core::Severity;

pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = b.try_into().ok()?;
    let v6 = Ipv6Addr::from(octets);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// First and last stored address of `net`.
pub fn net_range(net: IpNet) -> ([u8; 16], [u8; 16]) {
    (ip_bytes(net.network()), ip_bytes(net.broadcast()))
}

/// The first 12 bytes of an IPv4-mapped address.
const V4_MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// The network an address is indexed under: its /24 for IPv4, its /48 for IPv6; an
/// address in `::/48` (loopback, IPv4-compatible) is its own key. The address indexes
/// are keyed by (network, time) rather than (address, time): events for one network
/// are appended at one place, so the write cost follows the number of active networks,
/// not of hosts. The key never decreases as the address grows, so a range of addresses
/// maps to the range of their keys. Migration 3 computes the same in SQL.
pub fn net_key(a: &[u8; 16]) -> &[u8] {
    if a[..12] == V4_MAPPED {
        &a[..15]
    } else if a[..6] == [0; 6] {
        &a[..]
    } else {
        &a[..6]
    }
}

pub fn severity_code(s: Severity) -> i64 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
    }
}

pub fn severity_from_code(n: i64) -> Severity {
    match n {
        0 => Severity::Low,
        1 => Severity::Medium,
        _ => Severity::High,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn v4_cidr_ranges_cover_exactly_the_network() {
        let (lo, hi) = net_range("10.1.0.0/16".parse().unwrap());
        let inside = ip_bytes("10.1.255.3".parse().unwrap());
        let outside = ip_bytes("10.2.0.0".parse().unwrap());
        assert!(lo <= inside && inside <= hi);
        assert!(outside > hi);
        let v6 = ip_bytes("2001:db8::1".parse().unwrap());
        assert!(!(lo <= v6 && v6 <= hi));
        assert_eq!(ip_from_bytes(&inside), Some("10.1.255.3".parse().unwrap()));
        assert_eq!(ip_from_bytes(&v6), Some("2001:db8::1".parse().unwrap()));
    }

    pub(crate) fn addrs() -> Vec<[u8; 16]> {
        [
            "::",
            "::1",
            "::2:0:0",
            "::1:0:0:0",
            "::fffe:ffff:ffff",
            "::ffff:0.0.0.0",
            "::ffff:10.0.0.1",
            "::ffff:10.0.0.255",
            "::ffff:10.0.1.0",
            "::ffff:255.255.255.255",
            "::1:0:0:0:0",
            "0:0:0:1::",
            "0:0:1::",
            "2001:db8::1",
            "2001:db8:0:1::",
            "2001:db8:1::",
            "fe80::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| ip_bytes(s.parse().unwrap()))
        .collect()
    }

    #[test]
    fn net_keys_never_decrease_as_addresses_grow() {
        let mut a = addrs();
        a.sort();
        for pair in a.windows(2) {
            assert!(net_key(&pair[0]) <= net_key(&pair[1]), "{pair:?}");
        }
        let v4 = |s: &str| ip_bytes(s.parse().unwrap());
        assert_eq!(net_key(&v4("10.0.0.1")), net_key(&v4("10.0.0.254")));
        assert_ne!(net_key(&v4("10.0.0.1")), net_key(&v4("10.0.1.1")));
        assert_eq!(
            net_key(&v4("2001:db8::1")),
            net_key(&v4("2001:db8:0:ffff::1"))
        );
        assert_ne!(net_key(&v4("2001:db8::1")), net_key(&v4("2001:db8:1::1")));
    }
}
