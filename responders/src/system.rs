//! What this host says about itself: its interface addresses (`getifaddrs`), its gateways
//! (Linux: `/proc/net/route` and `/proc/net/ipv6_route`; FreeBSD: `netstat -rn`), and the
//! DNS resolvers in `/etc/resolv.conf`. These join the allowlist so that Spoor never
//! blocks the machine it runs on or the path out of it.
//!
//! The parsers are pure functions over the text so they are tested on captured output;
//! [`discover`] does the reading and reports (never fails on) what it cannot read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::allowlist::HostFacts;

/// Read everything; a source that cannot be read is logged and left out (the built-in
/// and configured allowlist still hold).
pub fn discover() -> HostFacts {
    let addresses = interface_addresses().unwrap_or_else(|e| {
        tracing::warn!("cannot list this host's addresses (getifaddrs): {e}");
        Vec::new()
    });
    HostFacts {
        addresses,
        gateways: gateways(),
        resolvers: read_resolvers(Path::new("/etc/resolv.conf")),
    }
}

/// Every address on every interface, from `getifaddrs(3)`.
pub fn interface_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET means a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6 means a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    Ok(out)
}

/// The gateways of the routing table.
#[cfg(target_os = "linux")]
pub fn gateways() -> Vec<IpAddr> {
    let mut out = Vec::new();
    match std::fs::read_to_string("/proc/net/route") {
        Ok(text) => out.extend(parse_proc_route(&text)),
        Err(e) => tracing::warn!("cannot read /proc/net/route: {e}"),
    }
    match std::fs::read_to_string("/proc/net/ipv6_route") {
        Ok(text) => out.extend(parse_proc_ipv6_route(&text)),
        // A kernel without IPv6 has no such file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot read /proc/net/ipv6_route: {e}"),
    }
    out.sort();
    out.dedup();
    out
}

/// The gateways of the routing table.
#[cfg(not(target_os = "linux"))]
pub fn gateways() -> Vec<IpAddr> {
    match std::process::Command::new("netstat").args(["-rn"]).output() {
        Ok(o) if o.status.success() => parse_netstat_rn(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            tracing::warn!(
                "`netstat -rn` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
            Vec::new()
        }
        Err(e) => {
            tracing::warn!("cannot run `netstat -rn`: {e}");
            Vec::new()
        }
    }
}

/// `/proc/net/route`: tab-separated, gateway in column 3 as the address's bytes in host
/// order written as hex; 0 means "directly connected".
pub fn parse_proc_route(text: &str) -> Vec<IpAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let hex = line.split_whitespace().nth(2)?;
            let raw = u32::from_str_radix(hex, 16).ok()?;
            (raw != 0).then(|| IpAddr::V4(Ipv4Addr::from(raw.to_ne_bytes())))
        })
        .collect()
}

/// `/proc/net/ipv6_route`: whitespace-separated, next hop in column 5 as 32 hex digits.
pub fn parse_proc_ipv6_route(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().nth(4)?;
            let raw = u128::from_str_radix(hex, 16).ok()?;
            (raw != 0 && hex.len() == 32).then(|| IpAddr::V6(Ipv6Addr::from(raw)))
        })
        .collect()
}

/// FreeBSD's `netstat -rn`: tables with a header line naming a `Gateway` column; the
/// gateway values that are addresses (not `link#3` or a MAC address) are kept.
pub fn parse_netstat_rn(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut column = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"Destination") {
            column = fields.iter().position(|f| *f == "Gateway");
            continue;
        }
        let Some(c) = column else { continue };
        if let Some(gw) = fields.get(c) {
            // `fe80::1%em0`: the scope is not part of the address.
            let gw = gw.split('%').next().unwrap_or(gw);
            if let Ok(a) = gw.parse::<IpAddr>()
                && !a.is_loopback()
            {
                out.push(a);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `nameserver` lines of a resolv.conf (scope ids dropped).
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            addr.split('%').next()?.parse().ok()
        })
        .collect()
}

fn read_resolvers(path: &Path) -> Vec<IpAddr> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn linux_route_tables() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(parse_proc_route(v4), [ip("192.0.2.1")]);
        }
        let v6 = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n";
        assert_eq!(parse_proc_ipv6_route(v6), [ip("fd00::1")]);
    }

    #[test]
    fn freebsd_netstat() {
        let text = "Routing tables\n\nInternet:\n\
            Destination        Gateway            Flags     Netif Expire\n\
            default            192.0.2.1          UGS         em0\n\
            127.0.0.1          link#2             UH          lo0\n\
            192.0.2.0/24       link#1             U           em0\n\
            \nInternet6:\n\
            Destination                       Gateway                       Flags     Netif Expire\n\
            default                           fe80::1%em0                   UG          em0\n\
            ::1                               ::1                           UHS         lo0\n\
            2001:db8::/64                     00:0c:29:aa:bb:cc             U           em0\n";
        assert_eq!(parse_netstat_rn(text), [ip("192.0.2.1"), ip("fe80::1")]);
    }

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver fe80::53%eth0\nnameserver bogus\n";
        assert_eq!(parse_resolv_conf(text), [ip("192.0.2.53"), ip("fe80::53")]);
    }

    #[test]
    fn this_host_has_loopback() {
        let addrs = interface_addresses().unwrap();
        assert!(addrs.iter().any(|a| a.is_loopback()), "{addrs:?}");
    }
}
