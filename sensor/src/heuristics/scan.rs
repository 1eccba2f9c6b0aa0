//! Scan heuristics: many distinct things touched by one source within a sliding window.
//!
//! | heuristic | key | counted | default |
//! |---|---|---|---|
//! | port scan | (source, host) | TCP probe destination ports | > 10 in 30 s |
//! | udp scan | (source, host) | UDP destination ports | > 10 in 30 s |
//! | infection scan | source | hosts probed on worm ports | > 32 in 30 s |
//! | web scan | (client, server) | first path segments requested | > 10 in 30 s |
//!
//! Thresholds are Maltrail's (`PORT_SCANNING_THRESHOLD = 10`,
//! `INFECTION_SCANNING_THRESHOLD = 32`, `WEB_SCANNING_THRESHOLD = 10`); the window is
//! sliding and runs on packet time, so twenty ports spread over twenty seconds count.
//!
//! A TCP probe is a segment without ACK or RST: SYN, NULL, FIN and XMAS scans qualify,
//! replies and established traffic (and ACK sweeps, which map firewalls, not services)
//! do not. UDP from a well-known port (< 1024) is a service answering, not a scanner.
//!
//! Limits: each table holds at most `max_tracked` keys; at the cap new keys are refused
//! and counted (live evidence is never evicted), and idle keys are swept once per window
//! of packet time. Each key remembers at most `threshold + 1` distinct values, all that
//! the decision needs. One event per key per window; repeats fold in the condenser.
//! Every probe from a new (source, host) pair takes a key, so a link opening more than
//! `max_tracked` new conversations per window saturates the table: the refusals show in
//! the pipeline's `saturations` as `heuristic_<name>`.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use spoor_core::{Micros, Proto, Severity};

use crate::decode::TcpFlags;
use crate::detect::PacketView;

const SECOND: i64 = 1_000_000;

/// Maltrail's `PORT_SCANNING_THRESHOLD`: more distinct ports than this is a scan.
pub const DEFAULT_PORT_SCAN_THRESHOLD: usize = 10;
/// UDP scans use the port-scan threshold, as Maltrail does.
pub const DEFAULT_UDP_SCAN_THRESHOLD: usize = 10;
/// Maltrail's `INFECTION_SCANNING_THRESHOLD`: a worm sweeps a subnet, /27 and up.
pub const DEFAULT_INFECTION_SCAN_THRESHOLD: usize = 32;
/// Maltrail's `WEB_SCANNING_THRESHOLD`; a browser loading one site stays well below it.
pub const DEFAULT_WEB_SCAN_THRESHOLD: usize = 10;
/// Sliding window for every scan heuristic: slow enough to catch `nmap -T2`-ish pacing,
/// short enough that an ordinary busy client does not accumulate.
pub const DEFAULT_SCAN_WINDOW_MICROS: i64 = 30 * SECOND;
/// Keys one table tracks at most (~100 bytes each plus the remembered values).
pub const DEFAULT_MAX_TRACKED: usize = 65_536;
/// Ports that self-propagating malware sweeps: RPC, NetBIOS, SMB, MSSQL, RDP, Redis.
pub const INFECTION_PORTS: [u16; 6] = [135, 139, 445, 1433, 3389, 6379];
/// Below this, a UDP source port belongs to a service answering a client.
const WELL_KNOWN_PORT_END: u16 = 1024;

pub const PORT_SCAN: &str = "port scan";
pub const UDP_SCAN: &str = "udp scan";
pub const INFECTION_SCAN: &str = "infection scan";
pub const WEB_SCAN: &str = "web scan";

/// One scan heuristic's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanConfig {
    /// Whether the heuristic runs at all.
    pub enabled: bool,
    /// Alert when more distinct values than this are seen within `window_micros`.
    pub threshold: usize,
    /// The sliding window, in packet-time microseconds.
    pub window_micros: i64,
    /// Keys tracked at most; new keys beyond this are refused and counted.
    pub max_tracked: usize,
}

impl ScanConfig {
    const fn with_threshold(threshold: usize) -> Self {
        ScanConfig {
            enabled: true,
            threshold,
            window_micros: DEFAULT_SCAN_WINDOW_MICROS,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }
}

/// Settings of every scan heuristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeuristicsConfig {
    /// TCP SYN/NULL/FIN/XMAS probes to many ports of one host.
    pub port_scan: ScanConfig,
    /// UDP datagrams to many ports of one host.
    pub udp_scan: ScanConfig,
    /// Probes to many hosts on [`INFECTION_PORTS`].
    pub infection_scan: ScanConfig,
    /// HTTP requests for many distinct first path segments of one server.
    pub web_scan: ScanConfig,
}

impl Default for HeuristicsConfig {
    fn default() -> Self {
        HeuristicsConfig {
            port_scan: ScanConfig::with_threshold(DEFAULT_PORT_SCAN_THRESHOLD),
            udp_scan: ScanConfig::with_threshold(DEFAULT_UDP_SCAN_THRESHOLD),
            infection_scan: ScanConfig::with_threshold(DEFAULT_INFECTION_SCAN_THRESHOLD),
            web_scan: ScanConfig::with_threshold(DEFAULT_WEB_SCAN_THRESHOLD),
        }
    }
}

/// A heuristic that fired: its name (the event's trail), why, and how bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: &'static str,
    pub info: String,
    pub severity: Severity,
}

/// What one key has shown within the window.
#[derive(Debug)]
struct Evidence {
    /// Distinct values, each with when it was last seen.
    /// Values are ports, folded addresses or path hashes; most keys only ever hold one,
    /// so the list starts unallocated and grows on demand.
    seen: Vec<(u64, Micros)>,
    /// When this key last alerted; no second alert within the window.
    alerted: Option<Micros>,
    /// Newest packet time for this key, for sweeping.
    last: Micros,
}

/// A threshold crossing: how many distinct values, over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Crossing {
    distinct: usize,
    span_secs: i64,
}

/// Distinct values per key within a sliding window, with a capped number of keys.
#[derive(Debug)]
struct DistinctTable<K> {
    config: ScanConfig,
    entries: HashMap<K, Evidence>,
    next_sweep: Micros,
    /// New keys refused because the table was full.
    saturated: u64,
}

impl<K: Hash + Eq> DistinctTable<K> {
    fn new(config: ScanConfig) -> Self {
        DistinctTable {
            config,
            entries: HashMap::new(),
            next_sweep: Micros(i64::MIN),
            saturated: 0,
        }
    }

    fn observe(&mut self, key: K, value: u64, ts: Micros) -> Option<Crossing> {
        if !self.config.enabled {
            return None;
        }
        let window = self.config.window_micros;
        let horizon = ts.0.saturating_sub(window);
        if ts >= self.next_sweep {
            self.entries.retain(|_, e| e.last.0 > horizon);
            self.next_sweep = Micros(ts.0.saturating_add(window));
        }
        let len = self.entries.len();
        let evidence = match self.entries.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                if len >= self.config.max_tracked {
                    self.saturated += 1;
                    return None;
                }
                v.insert(Evidence {
                    seen: Vec::new(),
                    alerted: None,
                    last: ts,
                })
            }
        };
        evidence.last = evidence.last.max(ts);
        evidence.seen.retain(|&(_, t)| t.0 > horizon);
        if evidence
            .alerted
            .is_some_and(|at| ts.0.saturating_sub(at.0) >= window)
        {
            evidence.alerted = None;
        }
        let room = evidence.seen.len() <= self.config.threshold;
        match evidence.seen.iter_mut().find(|(v, _)| *v == value) {
            Some(slot) => slot.1 = slot.1.max(ts),
            // More than threshold + 1 values cannot change the decision.
            None if room => evidence.seen.push((value, ts)),
            None => {}
        }
        let distinct = evidence.seen.len();
        if distinct <= self.config.threshold || evidence.alerted.is_some() {
            return None;
        }
        evidence.alerted = Some(ts);
        let first = evidence
            .seen
            .iter()
            .map(|&(_, t)| t.0)
            .min()
            .unwrap_or(ts.0);
        Some(Crossing {
            distinct,
            span_secs: ts.0.saturating_sub(first) / SECOND,
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The scan heuristics' state for one pipeline.
#[derive(Debug)]
pub struct Heuristics {
    port_scan: DistinctTable<(IpAddr, IpAddr)>,
    udp_scan: DistinctTable<(IpAddr, IpAddr)>,
    infection_scan: DistinctTable<IpAddr>,
    web_scan: DistinctTable<(IpAddr, IpAddr)>,
}

impl Default for Heuristics {
    fn default() -> Self {
        Heuristics::new(HeuristicsConfig::default())
    }
}

impl Heuristics {
    pub fn new(config: HeuristicsConfig) -> Self {
        Heuristics {
            port_scan: DistinctTable::new(config.port_scan),
            udp_scan: DistinctTable::new(config.udp_scan),
            infection_scan: DistinctTable::new(config.infection_scan),
            web_scan: DistinctTable::new(config.web_scan),
        }
    }

    /// Feed one packet's transport facts; findings are pushed to `out`.
    pub fn packet(&mut self, p: &PacketView<'_>, out: &mut Vec<Finding>) {
        if p.proto == Proto::TCP {
            let Some(flags) = p.tcp_flags else { return };
            if !is_probe(flags) {
                return;
            }
            if let Some(c) = self
                .port_scan
                .observe((p.src, p.dst), u64::from(p.dst_port), p.ts)
            {
                out.push(Finding {
                    name: PORT_SCAN,
                    info: format!(
                        "potential port scanning ({} ports in {} s)",
                        c.distinct, c.span_secs
                    ),
                    severity: Severity::Medium,
                });
            }
            if INFECTION_PORTS.contains(&p.dst_port)
                && let Some(c) = self.infection_scan.observe(p.src, addr_bits(p.dst), p.ts)
            {
                out.push(Finding {
                    name: INFECTION_SCAN,
                    info: format!(
                        "potential infection ({} hosts on worm ports in {} s)",
                        c.distinct, c.span_secs
                    ),
                    severity: Severity::Medium,
                });
            }
        } else if p.proto == Proto::UDP
            && p.src_port >= WELL_KNOWN_PORT_END
            && p.dst_port != 0
            && let Some(c) = self
                .udp_scan
                .observe((p.src, p.dst), u64::from(p.dst_port), p.ts)
        {
            out.push(Finding {
                name: UDP_SCAN,
                info: format!(
                    "potential udp scanning ({} ports in {} s)",
                    c.distinct, c.span_secs
                ),
                severity: Severity::Medium,
            });
        }
    }

    /// Feed one HTTP request's target (origin or absolute form); findings go to `out`.
    pub fn http_request(&mut self, p: &PacketView<'_>, target: &[u8], out: &mut Vec<Finding>) {
        let mut hasher = DefaultHasher::new();
        first_segment(target).hash(&mut hasher);
        if let Some(c) = self.web_scan.observe((p.src, p.dst), hasher.finish(), p.ts) {
            out.push(Finding {
                name: WEB_SCAN,
                info: format!(
                    "potential web scanning ({} paths in {} s)",
                    c.distinct, c.span_secs
                ),
                severity: Severity::Low,
            });
        }
    }

    /// New keys refused at each table's cap, by name, for the `saturations` map.
    pub fn saturations(&self) -> [(&'static str, u64); 4] {
        [
            ("heuristic_port_scan", self.port_scan.saturated),
            ("heuristic_udp_scan", self.udp_scan.saturated),
            ("heuristic_infection_scan", self.infection_scan.saturated),
            ("heuristic_web_scan", self.web_scan.saturated),
        ]
    }

    /// Keys currently tracked over all tables.
    pub fn tracked(&self) -> usize {
        self.port_scan.len() + self.udp_scan.len() + self.infection_scan.len() + self.web_scan.len()
    }
}

/// A segment that probes for a service: no ACK (not a reply, not established traffic)
/// and no RST. SYN, NULL, FIN and XMAS scans all qualify.
fn is_probe(flags: TcpFlags) -> bool {
    !flags.intersects(TcpFlags::ACK | TcpFlags::RST)
}

/// An address as a distinct-value key: IPv4 as is, IPv6 folded to 64 bits (distinct
/// counting only needs distinct values, and a fold collision merely undercounts by one).
fn addr_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()),
        IpAddr::V6(v6) => {
            let b = v6.to_bits();
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17)
        }
    }
}

/// The first path segment of a request target: `/admin/x?y` → `admin`,
/// `http://h/admin/` → `admin`, `/` → empty.
fn first_segment(target: &[u8]) -> &[u8] {
    let path = match target.windows(3).position(|w| w == b"://") {
        Some(at) => {
            let rest = &target[at + 3..];
            rest.iter()
                .position(|&b| b == b'/')
                .map_or(&[][..], |i| &rest[i..])
        }
        None => target,
    };
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
    use std::net::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    fn secs(s: i64) -> Micros {
        Micros(1_700_000_000 * SECOND + s * SECOND)
    }

    fn tcp(ts: Micros, dst: IpAddr, dst_port: u16, flags: TcpFlags) -> PacketView<'static> {
        PacketView {
            ts,
            src: SRC,
            dst,
            proto: Proto::TCP,
            src_port: 40_000,
            dst_port,
            tcp_flags: Some(flags),
            payload: &[],
        }
    }

    fn udp(ts: Micros, dst_port: u16) -> PacketView<'static> {
        PacketView {
            proto: Proto::UDP,
            tcp_flags: None,
            ..tcp(ts, DST, dst_port, TcpFlags::default())
        }
    }

    fn run(
        h: &mut Heuristics,
        packets: impl IntoIterator<Item = PacketView<'static>>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in packets {
            h.packet(&p, &mut out);
        }
        out
    }

    #[test]
    fn port_scan_fires_just_over_the_threshold() {
        let mut h = Heuristics::default();
        let ten = run(
            &mut h,
            (0..10).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN)),
        );
        assert!(ten.is_empty(), "10 ports is not more than 10");
        let eleventh = run(&mut h, [tcp(secs(10), DST, 1010, TcpFlags::SYN)]);
        assert_eq!(eleventh.len(), 1);
        assert_eq!(eleventh[0].name, PORT_SCAN);
        assert_eq!(
            eleventh[0].info,
            "potential port scanning (11 ports in 10 s)"
        );
        // Once per window: more ports add nothing.
        let more = run(
            &mut h,
            (11..20).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN)),
        );
        assert!(more.is_empty());
    }

    #[test]
    fn repeated_port_is_not_distinct() {
        let mut h = Heuristics::default();
        let out = run(
            &mut h,
            (0..30).map(|i| tcp(secs(i % 5), DST, 80 + (i % 3) as u16, TcpFlags::SYN)),
        );
        assert!(out.is_empty());
    }

    #[test]
    fn stealth_probes_count_but_acks_and_replies_do_not() {
        for flags in [
            TcpFlags(0),
            TcpFlags::FIN,
            TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
        ] {
            let mut h = Heuristics::default();
            let out = run(
                &mut h,
                (0..11).map(|i| tcp(secs(i), DST, 2000 + i as u16, flags)),
            );
            assert_eq!(out.len(), 1, "{flags:?}");
        }
        for flags in [TcpFlags::ACK, TcpFlags::SYN | TcpFlags::ACK, TcpFlags::RST] {
            let mut h = Heuristics::default();
            let out = run(
                &mut h,
                (0..20).map(|i| tcp(secs(i), DST, 3000 + i as u16, flags)),
            );
            assert!(out.is_empty(), "{flags:?}");
        }
    }

    #[test]
    fn ports_outside_the_window_expire() {
        let mut h = Heuristics::default();
        // Six ports, then six more 31 s later: never more than 10 within 30 s.
        let early = (0..6).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN));
        let late = (0..6).map(|i| tcp(secs(37 + i), DST, 2000 + i as u16, TcpFlags::SYN));
        assert!(run(&mut h, early.chain(late)).is_empty());
    }

    #[test]
    fn a_scan_alerts_again_in_a_later_window() {
        let mut h = Heuristics::default();
        let first = run(
            &mut h,
            (0..11).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN)),
        );
        let second = run(
            &mut h,
            (0..11).map(|i| tcp(secs(100 + i), DST, 1000 + i as u16, TcpFlags::SYN)),
        );
        assert_eq!((first.len(), second.len()), (1, 1));
    }

    #[test]
    fn udp_scan_and_service_replies() {
        let mut h = Heuristics::default();
        assert!(run(&mut h, (0..10).map(|i| udp(secs(i), 1000 + i as u16))).is_empty());
        let out = run(&mut h, [udp(secs(10), 1010)]);
        assert_eq!(out[0].info, "potential udp scanning (11 ports in 10 s)");
        // A resolver answering one client's many ephemeral ports is not scanning it.
        let mut h = Heuristics::default();
        let replies = (0..50).map(|i| PacketView {
            src_port: 53,
            ..udp(secs(i / 10), 30_000 + i as u16)
        });
        assert!(run(&mut h, replies).is_empty());
    }

    #[test]
    fn infection_scan_needs_more_than_32_hosts_on_worm_ports() {
        let host = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 9, 9, i));
        let mut h = Heuristics::default();
        assert!(
            run(
                &mut h,
                (0..32).map(|i| tcp(secs(0), host(i), 445, TcpFlags::SYN))
            )
            .is_empty()
        );
        let out = run(&mut h, [tcp(secs(1), host(32), 3389, TcpFlags::SYN)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, INFECTION_SCAN);
        assert_eq!(
            out[0].info,
            "potential infection (33 hosts on worm ports in 1 s)"
        );
        // Other ports are not worm ports.
        let mut h = Heuristics::default();
        assert!(
            run(
                &mut h,
                (0..50).map(|i| tcp(secs(0), host(i), 443, TcpFlags::SYN))
            )
            .is_empty()
        );
    }

    #[test]
    fn web_scan_counts_first_path_segments() {
        let mut h = Heuristics::default();
        let p = tcp(secs(0), DST, 80, TcpFlags::ACK | TcpFlags::PSH);
        let mut out = Vec::new();
        for i in 0..10 {
            h.http_request(&p, format!("/scan{i}/x?a=1").as_bytes(), &mut out);
            h.http_request(&p, format!("/scan{i}/y").as_bytes(), &mut out);
        }
        assert!(out.is_empty(), "10 segments is not more than 10");
        h.http_request(&p, b"http://webscan.example/admin/", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].info, "potential web scanning (11 paths in 0 s)");
        assert_eq!(out[0].severity, Severity::Low);
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
    fn a_full_table_refuses_new_keys_and_counts_them() {
        let config = HeuristicsConfig {
            port_scan: ScanConfig {
                max_tracked: 2,
                ..ScanConfig::with_threshold(DEFAULT_PORT_SCAN_THRESHOLD)
            },
            ..HeuristicsConfig::default()
        };
        let mut h = Heuristics::new(config);
        let host = |i: u8| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
        // Two scanned hosts fill the table; a third is refused while they are live.
        run(
            &mut h,
            [
                tcp(secs(0), host(1), 1, TcpFlags::SYN),
                tcp(secs(0), host(2), 1, TcpFlags::SYN),
            ],
        );
        let refused = run(
            &mut h,
            (0..20).map(|i| tcp(secs(1), host(3), 1000 + i, TcpFlags::SYN)),
        );
        assert!(refused.is_empty());
        assert_eq!(h.saturations()[0], ("heuristic_port_scan", 20));
        // The live keys still gather evidence and alert.
        let live = run(
            &mut h,
            (0..11).map(|i| tcp(secs(2), host(1), 2000 + i, TcpFlags::SYN)),
        );
        assert_eq!(live.len(), 1);
        // Once the old keys are idle for a window they are swept and room returns.
        let later = run(
            &mut h,
            (0..11).map(|i| tcp(secs(40), host(3), 1000 + i, TcpFlags::SYN)),
        );
        assert_eq!(later.len(), 1);
        assert_eq!(h.saturations()[0].1, 20);
    }

    #[test]
    fn disabled_heuristics_keep_no_state() {
        let mut config = HeuristicsConfig::default();
        config.port_scan.enabled = false;
        let mut h = Heuristics::new(config);
        assert!(
            run(
                &mut h,
                (0..20).map(|i| tcp(secs(i), DST, 1000 + i as u16, TcpFlags::SYN))
            )
            .is_empty()
        );
        assert_eq!(h.tracked(), 0);
    }
}
