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
mod tests {
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
}
