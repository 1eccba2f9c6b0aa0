//! Scan heuristics: one source touching many distinct things within a sliding window.
//!
//! | heuristic | key | counted | default | trail |
//! |---|---|---|---|---|
//! | `port_scan` | (source, host) | TCP probe destination ports | > 10 in 30 s | the source |
//! | `udp_scan` | (source, host) | UDP destination ports | > 10 in 30 s | the source |
//! | `infection_scan` | (source, worm port) | hosts probed on that port | > 32 in 30 s | the port |
//! | `web_scan` | (client, server) | first path segments requested | > 10 in 30 s | the client |
//!
//! Thresholds are Maltrail's. A TCP probe is a segment without ACK or RST: SYN, NULL,
//! FIN and XMAS scans qualify; replies, established traffic and ACK sweeps (which map
//! firewalls, not services) do not. A UDP datagram counts when it comes from a port at or
//! above 1024 (below is a service answering) and goes to a port below 32768 that is not
//! a DNS port (replies to clients go to ephemeral ports, which start at 32768 on Linux
//! and 49152 on Windows and FreeBSD; DNS queries are the most common UDP there is and
//! one port per pair cannot make a scan). A scan of ephemeral ports only is not seen.

use std::net::IpAddr;

use spoor_core::{Proto, Severity};

use super::state::{Crossing, secs_of};
use super::{Finding, Heuristics, addr_key, bytes_hash32, pair_key};
use crate::decode::TcpFlags;
use crate::detect::{DNS_PORTS, PacketView};

/// Ports that self-propagating malware sweeps: RPC, NetBIOS, SMB, MSSQL, RDP, Redis.
pub const INFECTION_PORTS: [u16; 6] = [135, 139, 445, 1433, 3389, 6379];
/// Below this a UDP source port belongs to a service answering a client.
pub const WELL_KNOWN_PORT_END: u16 = 1024;
/// From this port up, UDP destinations are clients' ephemeral ports (Linux's default
/// range starts here), not services a scanner probes.
pub const EPHEMERAL_PORT_START: u16 = 32768;

const PORT_SCAN_SALT: u64 = 0x7063;
const UDP_SCAN_SALT: u64 = 0x7564;
const INFECTION_SALT: u64 = 0x696e;
const WEB_SCAN_SALT: u64 = 0x7765;

/// A TCP segment that opens or probes rather than answers: no ACK, no RST.
pub fn is_probe(flags: TcpFlags) -> bool {
    !flags.intersects(TcpFlags::ACK | TcpFlags::RST)
}

impl Heuristics {
    /// Feed one packet to the scan heuristics (cheap unless it is a probe).
    #[inline]
    pub fn packet(&self, p: &PacketView<'_>, out: &mut Vec<Finding>) {
        if p.dst_port == 0 {
            return;
        }
        if p.proto == Proto::TCP {
            if let Some(tcp) = p.tcp
                && is_probe(tcp.flags)
            {
                self.tcp_probe(p, out);
            }
        } else if p.proto == Proto::UDP
            && p.src_port >= WELL_KNOWN_PORT_END
            && p.dst_port < EPHEMERAL_PORT_START
            && !DNS_PORTS.contains(&p.dst_port)
            && let Some(table) = &self.udp_scan
        {
            let now = secs_of(p.ts);
            if let Some(c) = table.observe(
                pair_key(p.src, p.dst, UDP_SCAN_SALT),
                u32::from(p.dst_port),
                now,
            ) {
                out.push(scan_finding(
                    "udp_scan",
                    "potential udp scanning",
                    p.src,
                    p.dst,
                    c,
                    "UDP ports",
                    self.config.udp_scan.threshold,
                    self.config.udp_scan.window_secs,
                ));
            }
        }
    }

    fn tcp_probe(&self, p: &PacketView<'_>, out: &mut Vec<Finding>) {
        let now = secs_of(p.ts);
        if let Some(table) = &self.port_scan
            && let Some(c) = table.observe(
                pair_key(p.src, p.dst, PORT_SCAN_SALT),
                u32::from(p.dst_port),
                now,
            )
        {
            out.push(scan_finding(
                "port_scan",
                "potential port scanning",
                p.src,
                p.dst,
                c,
                "TCP ports (SYN/NULL/FIN/XMAS probes)",
                self.config.port_scan.threshold,
                self.config.port_scan.window_secs,
            ));
        }
        if INFECTION_PORTS.contains(&p.dst_port)
            && let Some(table) = &self.infection_scan
        {
            let key = addr_key(p.src, INFECTION_SALT ^ (u64::from(p.dst_port) << 16));
            let host = addr_key(p.dst, INFECTION_SALT) as u32;
            if let Some(c) = table.observe(key, host, now) {
                let cfg = &self.config.infection_scan;
                out.push(Finding {
                    name: "infection_scan",
                    trail: p.dst_port.to_string(),
                    info: "potential infection",
                    reason: format!(
                        "{} hosts probed on worm port {} by {} within {} s (threshold {} in {} s)",
                        c.distinct, p.dst_port, p.src, c.span_secs, cfg.threshold, cfg.window_secs
                    ),
                    severity: Severity::High,
                    offender: p.src,
                    qname: None,
                    qtype: None,
                    rcode: None,
                });
            }
        }
    }

    /// Feed one parsed HTTP request (its request target) to the web scan heuristic.
    pub fn http_request(&self, p: &PacketView<'_>, target: &[u8], out: &mut Vec<Finding>) {
        let Some(table) = &self.web_scan else {
            return;
        };
        let segment = first_segment(target);
        if let Some(c) = table.observe(
            pair_key(p.src, p.dst, WEB_SCAN_SALT),
            bytes_hash32(segment),
            secs_of(p.ts),
        ) {
            out.push(scan_finding(
                "web_scan",
                "potential web scanning",
                p.src,
                p.dst,
                c,
                "first path segments",
                self.config.web_scan.threshold,
                self.config.web_scan.window_secs,
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn scan_finding(
    name: &'static str,
    info: &'static str,
    src: IpAddr,
    dst: IpAddr,
    c: Crossing,
    what: &str,
    threshold: u32,
    window: u32,
) -> Finding {
    Finding {
        name,
        trail: src.to_string(),
        info,
        reason: format!(
            "{} distinct {what} of {dst} within {} s (threshold {threshold} in {window} s)",
            c.distinct, c.span_secs
        ),
        severity: Severity::Low,
        offender: src,
        qname: None,
        qtype: None,
        rcode: None,
    }
}

/// The first segment of a request target's path: `/admin/x?y` → `admin`; an absolute
/// target (`http://host/admin/`) is read from its path.
pub fn first_segment(target: &[u8]) -> &[u8] {
    let mut path = target;
    if let Some(at) = path.windows(3).position(|w| w == b"://") {
        let rest = &path[at + 3..];
        path = match rest.iter().position(|&b| b == b'/') {
            Some(slash) => &rest[slash..],
            None => b"",
        };
    }
    let path = path.strip_prefix(b"/").unwrap_or(path);
    let end = path
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpInfo;
    use crate::heuristics::{CountingConfig, HeuristicsConfig};
    use spoor_core::Micros;
    use std::net::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    fn secs(s: i64) -> Micros {
        Micros(1_700_000_000_000_000 + s * 1_000_000)
    }

    fn tcp(ts: Micros, dst: IpAddr, dst_port: u16, flags: TcpFlags) -> PacketView<'static> {
        PacketView {
            ts,
            src: SRC,
            dst,
            proto: Proto::TCP,
            src_port: 40000,
            dst_port,
            tcp: Some(TcpInfo {
                flags,
                seq: 1,
                ack: 0,
                window: 1024,
            }),
            payload: &[],
        }
    }

    fn udp(ts: Micros, src_port: u16, dst_port: u16) -> PacketView<'static> {
        PacketView {
            ts,
            src: SRC,
            dst: DST,
            proto: Proto::UDP,
            src_port,
            dst_port,
            tcp: None,
            payload: &[],
        }
    }

    fn run<'a>(h: &Heuristics, packets: impl IntoIterator<Item = PacketView<'a>>) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in packets {
            h.packet(&p, &mut out);
        }
        out
    }

    #[test]
    fn more_than_ten_ports_is_a_port_scan() {
        let h = Heuristics::default();
        let ten = (0..10).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN));
        assert!(run(&h, ten).is_empty(), "10 ports is not more than 10");
        let out = run(&h, [tcp(secs(10), DST, 1010, TcpFlags::SYN)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "port_scan");
        assert_eq!(out[0].trail, "203.0.113.9");
        assert_eq!(out[0].info, "potential port scanning");
        assert_eq!(
            out[0].reason,
            "11 distinct TCP ports (SYN/NULL/FIN/XMAS probes) of 198.51.100.7 within 10 s (threshold 10 in 30 s)"
        );
        let more = (11..20).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN));
        assert!(run(&h, more).is_empty(), "once per window");
    }

    #[test]
    fn stealth_probes_count_but_acks_and_replies_do_not() {
        for flags in [
            TcpFlags(0),
            TcpFlags::FIN,
            TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
        ] {
            let h = Heuristics::default();
            let out = run(
                &h,
                (0..11).map(|i| tcp(secs(i), DST, 2000 + i as u16, flags)),
            );
            assert_eq!(out.len(), 1, "{flags:?}");
        }
        for flags in [TcpFlags::ACK, TcpFlags::SYN | TcpFlags::ACK, TcpFlags::RST] {
            let h = Heuristics::default();
            let out = run(
                &h,
                (0..20).map(|i| tcp(secs(i), DST, 3000 + i as u16, flags)),
            );
            assert!(out.is_empty(), "{flags:?}");
            assert_eq!(h.tracked(), 0, "replies touch no state");
        }
    }

    #[test]
    fn ports_spread_over_more_than_the_window_are_no_scan() {
        let h = Heuristics::default();
        let early = (0..6).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN));
        let late = (0..6).map(|i| tcp(secs(37 + i), DST, 2000 + i as u16, TcpFlags::SYN));
        assert!(run(&h, early.chain(late)).is_empty());
    }

    #[test]
    fn udp_scans_and_service_replies() {
        let h = Heuristics::default();
        assert!(run(&h, (0..10).map(|i| udp(secs(i), 40000, 1000 + i as u16))).is_empty());
        let out = run(&h, [udp(secs(10), 40000, 1010)]);
        assert_eq!(out[0].info, "potential udp scanning");
        // Replies from a service port to a client's many ephemeral ports, and queries to
        // DNS, are not scans.
        let h = Heuristics::default();
        let replies = (0..50).map(|i| udp(secs(i / 10), 123, 1000 + i as u16));
        let to_clients = (0..50).map(|i| udp(secs(i / 10), 51820, 33000 + i as u16));
        assert!(run(&h, replies.chain(to_clients)).is_empty());
        assert_eq!(h.tracked(), 0);
    }

    #[test]
    fn infection_needs_more_than_32_hosts_on_one_worm_port() {
        let host = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 9, 9, i));
        let h = Heuristics::default();
        assert!(
            run(
                &h,
                (0..32).map(|i| tcp(secs(0), host(i), 445, TcpFlags::SYN))
            )
            .is_empty()
        );
        let out = run(&h, [tcp(secs(1), host(32), 445, TcpFlags::SYN)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].name, out[0].trail.as_str()),
            ("infection_scan", "445")
        );
        assert!(
            out[0]
                .reason
                .starts_with("33 hosts probed on worm port 445")
        );
        let h = Heuristics::default();
        assert!(
            run(
                &h,
                (0..50).map(|i| tcp(secs(0), host(i), 443, TcpFlags::SYN))
            )
            .is_empty()
        );
    }

    #[test]
    fn web_scan_counts_first_path_segments() {
        let h = Heuristics::default();
        let p = tcp(secs(0), DST, 80, TcpFlags::ACK | TcpFlags::PSH);
        let mut out = Vec::new();
        for i in 0..10 {
            h.http_request(&p, format!("/scan{i}/x?a=1").as_bytes(), &mut out);
            h.http_request(&p, format!("/scan{i}/y").as_bytes(), &mut out);
        }
        assert!(out.is_empty(), "10 segments is not more than 10");
        h.http_request(&p, b"http://webscan.example/admin/", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].info, "potential web scanning");
    }

    #[test]
    fn first_segments() {
        assert_eq!(first_segment(b"/admin/x?y"), b"admin");
        assert_eq!(first_segment(b"/"), b"");
        assert_eq!(first_segment(b"/a?b/c"), b"a");
        assert_eq!(first_segment(b"http://h/admin/"), b"admin");
        assert_eq!(first_segment(b"http://h"), b"");
        assert_eq!(first_segment(b"*"), b"*");
    }

    #[test]
    fn disabled_heuristics_keep_no_state() {
        let mut config = HeuristicsConfig::default();
        config.port_scan.enabled = false;
        let h = Heuristics::new(config);
        assert!(
            run(
                &h,
                (0..20).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN))
            )
            .is_empty()
        );
        assert_eq!(h.tracked(), 0);
    }

    #[test]
    fn thresholds_are_configurable() {
        let config = HeuristicsConfig {
            port_scan: CountingConfig::new(3, 5, 64),
            ..HeuristicsConfig::default()
        };
        let h = Heuristics::new(config);
        let out = run(
            &h,
            (0..4).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN)),
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].reason.ends_with("(threshold 3 in 5 s)"));
    }
}
