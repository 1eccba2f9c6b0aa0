//! Addresses Spoor never blocks: built-ins that are always on, the host's own addresses,
//! gateways and resolvers, Spoor's own infrastructure, the admin's list, and the private
//! ranges unless the admin opts in.
//!
//! A target is refused when it overlaps an allowlisted network in either direction: a
//! block of `10.0.0.0/8` would cover the gateway `10.0.0.1`, and a block of `127.0.0.5` is
//! inside loopback. The allowlist is consulted twice: when a decision is made (policy) and
//! again just before every backend write (`guard::GuardedBackend`).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Why an entry is on the allowlist (shown in refusals, so the admin knows which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowSource {
    /// Always on: loopback, link-local, multicast, broadcast, unspecified...
    BuiltIn(&'static str),
    /// RFC 1918, unique local, carrier-grade NAT; off with `block_private = true`.
    Private(&'static str),
    /// Read from this host: an interface address, a gateway, a DNS resolver.
    Host(&'static str),
    /// Spoor's own infrastructure from the config: server, sensors, OPNsense API host.
    Infrastructure(String),
    /// `[respond] allow`.
    Configured,
}

impl fmt::Display for AllowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowSource::BuiltIn(what) => write!(f, "built-in: {what}"),
            AllowSource::Private(what) => {
                write!(
                    f,
                    "private range ({what}); set block_private = true to allow"
                )
            }
            AllowSource::Host(what) => write!(f, "this host's {what}"),
            AllowSource::Infrastructure(what) => write!(f, "Spoor infrastructure: {what}"),
            AllowSource::Configured => f.write_str("[respond] allow"),
        }
    }
}

/// One allowlisted network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub net: IpNet,
    pub source: AllowSource,
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.net, self.source)
    }
}

/// Networks that are never blocked, whatever the config says.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified / this network"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    (
        "::ffff:0:0/96",
        "IPv4-mapped (block the IPv4 address instead)",
    ),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// Private ranges, allowlisted unless `block_private = true`.
pub const PRIVATE: &[(&str, &str)] = &[
    ("10.0.0.0/8", "RFC 1918"),
    ("172.16.0.0/12", "RFC 1918"),
    ("192.168.0.0/16", "RFC 1918"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("fc00::/7", "unique local"),
];

/// The host's addresses, gateways and resolvers as read from the OS (see `system`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub addresses: Vec<IpAddr>,
    pub gateways: Vec<IpAddr>,
    pub resolvers: Vec<IpAddr>,
}

/// Everything that must never be blocked.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    entries: Vec<AllowEntry>,
}

fn parsed(
    list: &'static [(&'static str, &'static str)],
) -> impl Iterator<Item = (IpNet, &'static str)> {
    // The tables above are constants checked by a unit test.
    list.iter()
        .filter_map(|(net, what)| net.parse().ok().map(|n| (n, *what)))
}

impl Allowlist {
    /// The built-ins, plus the private ranges unless `block_private`.
    pub fn new(block_private: bool) -> Self {
        let mut entries: Vec<AllowEntry> = parsed(BUILT_IN)
            .map(|(net, what)| AllowEntry {
                net,
                source: AllowSource::BuiltIn(what),
            })
            .collect();
        if !block_private {
            entries.extend(parsed(PRIVATE).map(|(net, what)| AllowEntry {
                net,
                source: AllowSource::Private(what),
            }));
        }
        Allowlist { entries }
    }

    /// Add the host's own addresses, gateways and resolvers.
    pub fn with_host(mut self, facts: &HostFacts) -> Self {
        let groups = [
            (&facts.addresses, "interface address"),
            (&facts.gateways, "gateway"),
            (&facts.resolvers, "DNS resolver"),
        ];
        for (addrs, what) in groups {
            for a in addrs {
                self.push(IpNet::from(*a), AllowSource::Host(what));
            }
        }
        self
    }

    pub fn push(&mut self, net: IpNet, source: AllowSource) {
        self.entries.push(AllowEntry { net, source });
    }

    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// The allowlist entry `target` overlaps, if any.
    pub fn protects(&self, target: &IpNet) -> Option<&AllowEntry> {
        self.entries.iter().find(|e| overlaps(&e.net, target))
    }

    /// Whether `addr` itself is allowlisted.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        self.entries.iter().any(|e| e.net.contains(&addr))
    }
}

/// Two networks of the same family share at least one address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn tables_parse() {
        assert_eq!(parsed(BUILT_IN).count(), BUILT_IN.len());
        assert_eq!(parsed(PRIVATE).count(), PRIVATE.len());
    }

    #[test]
    fn built_ins_private_and_host_facts() {
        let facts = HostFacts {
            addresses: vec!["203.0.113.2".parse().unwrap()],
            gateways: vec!["203.0.113.1".parse().unwrap()],
            resolvers: vec!["2001:db8::53".parse().unwrap()],
        };
        let a = Allowlist::new(false).with_host(&facts);
        for t in [
            "127.0.0.2/32",
            "::1/128",
            "169.254.1.1/32",
            "fe80::1/128",
            "239.1.1.1/32",
            "ff02::1/128",
            "255.255.255.255/32",
            "0.0.0.0/32",
            "::/128",
            "::ffff:198.51.100.1/128",
            "10.1.2.3/32",
            "192.168.0.0/16",
            "100.64.1.1/32",
            "fd00::1/128",
            "203.0.113.1/32",
            "203.0.113.0/24", // covers the gateway
            "0.0.0.0/0",
            "2001:db8::53/128",
        ] {
            assert!(a.protects(&net(t)).is_some(), "{t} should be protected");
        }
        for t in ["198.51.100.7/32", "2001:db8:1::/48", "203.0.113.3/32"] {
            assert!(a.protects(&net(t)).is_none(), "{t} should be blockable");
        }
        let opted_in = Allowlist::new(true);
        assert!(opted_in.protects(&net("10.1.2.3/32")).is_none());
        assert!(opted_in.protects(&net("127.0.0.1/32")).is_some());
        let why = a.protects(&net("10.0.0.1/32")).unwrap().to_string();
        assert!(why.contains("block_private"), "{why}");
    }
}
