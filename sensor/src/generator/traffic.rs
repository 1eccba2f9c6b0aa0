//! The generator proper: a pool of open conversations, each a small state machine that emits
//! its next frame when picked.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use spoor_core::Micros;

use super::dns::{self, QTYPE_A, QTYPE_AAAA};
use super::frame::{self, Headers, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, Transport};
use super::http;
use super::names::{self, USER_AGENTS};
use super::rng::Rng;
use super::tls;
use super::{GeneratedSummary, GeneratorConfig, ListedCount, TrafficKind, TrafficMix};

/// Distinct client hosts on the LAN side (IPv4 and IPv6 each).
const CLIENTS: usize = 1024;
/// Distinct server addresses per family; popular ones are drawn more often.
const SERVERS_V4: usize = 4096;
const SERVERS_V6: usize = 1024;
/// Distinct benign host names.
const HOST_NAMES: usize = 4096;
/// Bytes of random data that encrypted and noise payloads are cut from.
const RANDOM_BLOCK: usize = 64 * 1024;
/// Chance that a step starts a new conversation while the pool has room; below 1 so that open
/// conversations progress and the pool fills gradually.
const NEW_CONVERSATION_CHANCE: f64 = 0.25;
/// TCP payload per segment: MSS for Ethernet without options.
const MSS_V4: usize = 1460;
const MSS_V6: usize = 1440;
/// The gateway every server packet comes through (locally administered).
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const RESOLVERS_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(10, 0, 0, 1),
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(1, 1, 1, 1),
    Ipv4Addr::new(9, 9, 9, 9),
];
const RESOLVERS_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111),
];
const HTTP_ODD_PORTS: &[u16] = &[8080, 8000, 8008, 8888, 81, 3128, 8081, 591];
const UDP_SERVICE_PORTS: &[u16] = &[123, 1900, 3478, 500, 4500, 51820, 27015, 5060, 161];

/// One frame: its capture time and bytes (valid until the next call to `next_frame`).
#[derive(Debug)]
pub struct GeneratedFrame<'a> {
    /// Capture time; strictly increasing from frame to frame.
    pub time: Micros,
    /// The Ethernet frame.
    pub data: &'a [u8],
}

/// Produces the frames of a [`GeneratorConfig`], one at a time; see the module docs.
pub struct Generator {
    rng: Rng,
    packets: u64,
    mix: TrafficMix,
    listed_share: f64,
    ipv6_share: f64,
    http_odd_port_share: f64,
    max_flows: usize,
    max_gap: u64,
    clock: i64,
    ip_id: u16,
    listed_ips: Vec<Ipv4Addr>,
    listed_domains: Vec<String>,
    listed_urls: Vec<ListedUrl>,
    servers_v4: Vec<Ipv4Addr>,
    servers_v6: Vec<Ipv6Addr>,
    host_names: Vec<String>,
    random: Vec<u8>,
    html: Vec<u8>,
    open: Vec<Conversation>,
    buf: Vec<u8>,
    summary: GeneratedSummary,
}

impl std::fmt::Debug for Generator {
    // The pools and filler blocks are large and say nothing; show progress instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("packets", &self.packets)
            .field("produced", &self.summary.packets)
            .field("open_conversations", &self.open.len())
            .field("clock", &Micros(self.clock))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct ListedUrl {
    host: String,
    port: u16,
    path: String,
}

/// Which listed indicator a conversation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Ip,
    Dns,
    Sni,
    Url,
}

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    mac: [u8; 6],
    ip: IpAddr,
    port: u16,
    ttl: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpStep {
    Syn,
    SynAck,
    Ack,
    Request,
    ServerHello,
    ClientData,
    Response,
    ClientAck,
    Fin,
    FinAck,
    LastAck,
}

#[derive(Debug)]
enum Detail {
    Dns {
        id: u16,
        name: String,
        qtype: u16,
        answered: bool,
    },
    Http {
        host: String,
        path: String,
        user_agent: &'static str,
        post: bool,
    },
    Tls {
        sni: String,
        tls13: bool,
        browser: bool,
    },
    Udp {
        left: u8,
        to_server: bool,
    },
    Icmp {
        id: u16,
        seq: u16,
        pairs_left: u8,
        reply_next: bool,
    },
}

#[derive(Debug)]
struct Conversation {
    kind: TrafficKind,
    listed: Option<Listed>,
    client: Endpoint,
    server: Endpoint,
    detail: Detail,
    step: TcpStep,
    client_seq: u32,
    server_seq: u32,
    /// Response bytes still to send (HTTP body or TLS application data).
    response_left: usize,
    response_started: bool,
}

impl Generator {
    pub fn new(config: &GeneratorConfig) -> Generator {
        let mut rng = Rng::new(config.seed);
        let mut setup = rng.fork(1);
        let listed_ips = config.listed_ips.clone();
        let listed_domains: Vec<String> = config
            .listed_domains
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| dns::valid_name(d))
            .collect();
        let listed_urls: Vec<ListedUrl> = config
            .listed_urls
            .iter()
            .filter_map(|u| parse_url(u))
            .collect();

        let listed_ip_set: HashSet<Ipv4Addr> = listed_ips.iter().copied().collect();
        let mut servers_v4 = Vec::with_capacity(SERVERS_V4);
        while servers_v4.len() < SERVERS_V4 {
            let ip = Ipv4Addr::from(setup.next_u32());
            if is_public_v4(ip) && !listed_ip_set.contains(&ip) {
                servers_v4.push(ip);
            }
        }
        let servers_v6 = (0..SERVERS_V6)
            .map(|_| {
                // Global unicast 2000::/3, in the ranges real providers use.
                let hi = 0x2001 + setup.below(0x0a00) as u16;
                let rest = setup.next_u64();
                Ipv6Addr::new(
                    hi,
                    setup.next_u16(),
                    (rest >> 48) as u16,
                    0,
                    0,
                    0,
                    (rest >> 16) as u16,
                    rest as u16 | 1,
                )
            })
            .collect();
        let listed_domain_set: HashSet<&str> = listed_domains.iter().map(String::as_str).collect();
        let mut host_names = Vec::with_capacity(HOST_NAMES);
        while host_names.len() < HOST_NAMES {
            let name = names::host_name(&mut setup);
            if !under_listed(&name, &listed_domain_set) {
                host_names.push(name);
            }
        }
        let mut random = vec![0u8; RANDOM_BLOCK];
        setup.fill(&mut random);
        let html = html_filler();

        let mix = if TrafficKind::ALL.iter().all(|&k| config.mix.weight(k) == 0) {
            TrafficMix::default()
        } else {
            config.mix
        };
        Generator {
            rng,
            packets: config.packets,
            mix,
            listed_share: clamp_share(config.listed_share),
            ipv6_share: clamp_share(config.ipv6_share),
            http_odd_port_share: clamp_share(config.http_odd_port_share),
            max_flows: config.max_concurrent_flows.max(1),
            max_gap: u64::from(config.max_gap_micros.max(1)),
            clock: config.start.0,
            ip_id: 0,
            listed_ips,
            listed_domains,
            listed_urls,
            servers_v4,
            servers_v6,
            host_names,
            random,
            html,
            open: Vec::with_capacity(config.max_concurrent_flows.clamp(1, 1 << 16)),
            buf: Vec::with_capacity(2048),
            summary: GeneratedSummary::default(),
        }
    }

    /// The next frame, or `None` once the configured number of packets has been produced.
    pub fn next_frame(&mut self) -> Option<GeneratedFrame<'_>> {
        if self.summary.packets >= self.packets {
            return None;
        }
        let start_new = self.open.is_empty()
            || (self.open.len() < self.max_flows && self.rng.chance(NEW_CONVERSATION_CHANCE));
        let mut conv = if start_new {
            self.start_conversation()
        } else {
            let at = self.rng.index(self.open.len());
            self.open.swap_remove(at)
        };
        let done = self.emit(&mut conv);
        if !done {
            self.open.push(conv);
        }
        if self.summary.packets > 1 {
            self.clock += self.rng.range(1, self.max_gap) as i64;
        }
        Some(GeneratedFrame {
            time: Micros(self.clock),
            data: &self.buf,
        })
    }

    /// What has been produced so far.
    pub fn summary(&self) -> &GeneratedSummary {
        &self.summary
    }

    pub fn into_summary(self) -> GeneratedSummary {
        self.summary
    }

    fn pick_kind(&mut self, allowed: &[TrafficKind]) -> TrafficKind {
        let total: u64 = allowed.iter().map(|&k| u64::from(self.mix.weight(k))).sum();
        if total == 0 {
            return allowed[0];
        }
        let mut draw = self.rng.below(total);
        for &kind in allowed {
            let w = u64::from(self.mix.weight(kind));
            if draw < w {
                return kind;
            }
            draw -= w;
        }
        allowed[0]
    }

    /// Skewed towards the start of the pool: popular servers and names come up more often.
    fn popular(&mut self, len: usize) -> usize {
        self.rng.index(len).min(self.rng.index(len))
    }

    fn host_name(&mut self) -> String {
        let at = self.popular(HOST_NAMES);
        self.host_names[at].clone()
    }

    fn start_conversation(&mut self) -> Conversation {
        let mut choices: [Option<Listed>; 3] = [None; 3];
        let mut n = 0;
        for (present, kind) in [
            (!self.listed_ips.is_empty(), Listed::Ip),
            (!self.listed_domains.is_empty(), Listed::Dns),
            (!self.listed_urls.is_empty(), Listed::Url),
        ] {
            if present {
                choices[n] = Some(kind);
                n += 1;
            }
        }
        let mut listed = None;
        if n > 0 && self.rng.chance(self.listed_share) {
            listed = choices[self.rng.index(n)];
        }
        use TrafficKind::*;
        let kind = match listed {
            None => self.pick_kind(&TrafficKind::ALL),
            Some(Listed::Ip) => self.pick_kind(&[Http, Tls, Udp, Icmp]),
            Some(Listed::Dns | Listed::Sni) => self.pick_kind(&[Dns, Tls]),
            Some(Listed::Url) => Http,
        };
        if listed == Some(Listed::Dns) && kind == Tls {
            listed = Some(Listed::Sni);
        }
        let v6 = listed != Some(Listed::Ip) && self.rng.chance(self.ipv6_share);

        let c = self.rng.index(CLIENTS);
        let client_ip = if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, c as u16 + 2))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, (c / 250) as u8, (c % 250) as u8 + 2))
        };
        let client = Endpoint {
            mac: [0x02, 0x00, 0x0a, 0x00, (c >> 8) as u8, c as u8],
            ip: client_ip,
            port: self.rng.range(32768, 60999) as u16,
            ttl: if c.is_multiple_of(3) { 128 } else { 64 },
        };
        let server_ip = if listed == Some(Listed::Ip) {
            IpAddr::V4(self.rng.pick(&self.listed_ips))
        } else if kind == Dns {
            if v6 {
                IpAddr::V6(self.rng.pick(RESOLVERS_V6))
            } else {
                IpAddr::V4(self.rng.pick(RESOLVERS_V4))
            }
        } else if v6 {
            let at = self.popular(SERVERS_V6);
            IpAddr::V6(self.servers_v6[at])
        } else {
            let at = self.popular(SERVERS_V4);
            IpAddr::V4(self.servers_v4[at])
        };
        let mut server = Endpoint {
            mac: GATEWAY_MAC,
            ip: server_ip,
            port: 0,
            ttl: self.rng.range(44, 60) as u8,
        };
        let mut response_left = 0;
        let detail = match kind {
            Dns => {
                server.port = 53;
                let name = if listed == Some(Listed::Dns) {
                    self.listed_domains[self.rng.index(self.listed_domains.len())].clone()
                } else {
                    self.host_name()
                };
                let qtype = if v6 || self.rng.chance(0.3) {
                    QTYPE_AAAA
                } else {
                    QTYPE_A
                };
                Detail::Dns {
                    id: self.rng.next_u16(),
                    name,
                    qtype,
                    answered: false,
                }
            }
            Http => {
                let (host, path) = if listed == Some(Listed::Url) {
                    let url = self.listed_urls[self.rng.index(self.listed_urls.len())].clone();
                    server.port = url.port;
                    (url.host, url.path)
                } else {
                    server.port = if self.rng.chance(self.http_odd_port_share) {
                        self.rng.pick(HTTP_ODD_PORTS)
                    } else {
                        80
                    };
                    (self.host_name(), names::url_path(&mut self.rng))
                };
                response_left = if self.rng.chance(0.7) {
                    self.rng.range(200, 2000)
                } else {
                    self.rng.range(2000, 16000)
                } as usize;
                Detail::Http {
                    host,
                    path,
                    user_agent: self.rng.pick(USER_AGENTS),
                    post: self.rng.chance(0.1),
                }
            }
            Tls => {
                server.port = 443;
                let sni = if listed == Some(Listed::Sni) {
                    self.listed_domains[self.rng.index(self.listed_domains.len())].clone()
                } else {
                    self.host_name()
                };
                response_left = self.rng.range(300, 12000) as usize;
                Detail::Tls {
                    sni,
                    tls13: self.rng.chance(0.8),
                    browser: self.rng.chance(0.7),
                }
            }
            Udp => {
                server.port = if self.rng.chance(0.7) {
                    self.rng.pick(UDP_SERVICE_PORTS)
                } else {
                    self.rng.range(1024, 65535) as u16
                };
                Detail::Udp {
                    left: self.rng.range(1, 4) as u8,
                    to_server: true,
                }
            }
            Icmp => Detail::Icmp {
                id: self.rng.next_u16(),
                seq: 1,
                pairs_left: self.rng.range(1, 4) as u8,
                reply_next: false,
            },
        };
        self.summary.flows += 1;
        self.summary.flows_by_kind.bump(kind);
        if let Some(l) = listed {
            self.listed_count(l).flows += 1;
        }
        Conversation {
            kind,
            listed,
            client,
            server,
            detail,
            step: TcpStep::Syn,
            client_seq: self.rng.next_u32(),
            server_seq: self.rng.next_u32(),
            response_left,
            response_started: false,
        }
    }

    fn listed_count(&mut self, listed: Listed) -> &mut ListedCount {
        let counts = &mut self.summary.listed;
        match listed {
            Listed::Ip => &mut counts.ip,
            Listed::Dns => &mut counts.dns,
            Listed::Sni => &mut counts.sni,
            Listed::Url => &mut counts.url,
        }
    }

    fn headers(&mut self, conv: &Conversation, from_client: bool, transport: Transport) -> Headers {
        self.ip_id = self.ip_id.wrapping_add(1 + self.rng.below(4) as u16);
        let (src, dst) = if from_client {
            (&conv.client, &conv.server)
        } else {
            (&conv.server, &conv.client)
        };
        Headers {
            src_mac: src.mac,
            dst_mac: dst.mac,
            src: src.ip,
            dst: dst.ip,
            ttl: src.ttl,
            ip_id: self.ip_id,
            transport,
        }
    }

    fn tcp(&mut self, conv: &Conversation, from_client: bool, flags: u8) -> Headers {
        let (sport, dport, seq, ack, window) = if from_client {
            let (a, b) = (conv.client.port, conv.server.port);
            let ack = if flags & TCP_ACK != 0 {
                conv.server_seq
            } else {
                0
            };
            (a, b, conv.client_seq, ack, 502)
        } else {
            (
                conv.server.port,
                conv.client.port,
                conv.server_seq,
                conv.client_seq,
                501,
            )
        };
        let window = if flags & TCP_SYN != 0 { 64240 } else { window };
        let transport = Transport::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
        };
        self.headers(conv, from_client, transport)
    }

    fn udp(&mut self, conv: &Conversation, from_client: bool) -> Headers {
        let (sport, dport) = if from_client {
            (conv.client.port, conv.server.port)
        } else {
            (conv.server.port, conv.client.port)
        };
        self.headers(conv, from_client, Transport::Udp { sport, dport })
    }

    /// Writes the conversation's next frame into `self.buf`; true when the conversation is over.
    fn emit(&mut self, conv: &mut Conversation) -> bool {
        let (done, carries_listed) = match conv.kind {
            TrafficKind::Dns => self.emit_dns(conv),
            TrafficKind::Udp => self.emit_udp(conv),
            TrafficKind::Icmp => self.emit_icmp(conv),
            TrafficKind::Http | TrafficKind::Tls => self.emit_tcp(conv),
        };
        let s = &mut self.summary;
        s.packets += 1;
        s.bytes += self.buf.len() as u64;
        s.packets_by_kind.bump(conv.kind);
        if conv.client.ip.is_ipv6() {
            s.ipv6_packets += 1;
        }
        if let Some(listed) = conv.listed
            && (carries_listed || listed == Listed::Ip)
        {
            self.listed_count(listed).packets += 1;
        }
        done
    }

    fn emit_dns(&mut self, conv: &mut Conversation) -> (bool, bool) {
        let Detail::Dns {
            id,
            ref name,
            qtype,
            answered,
        } = conv.detail
        else {
            return (true, false);
        };
        let h = self.udp(conv, !answered);
        if !answered {
            let layout = frame::begin(&mut self.buf, &h);
            dns::query(&mut self.buf, id, name, qtype);
            frame::finish(&mut self.buf, layout);
        } else {
            let mut addrs = [IpAddr::V4(Ipv4Addr::UNSPECIFIED); 3];
            let n = if self.rng.chance(0.05) {
                0 // NXDOMAIN
            } else {
                self.rng.range(1, 3) as usize
            };
            for slot in addrs.iter_mut().take(n) {
                *slot = if qtype == QTYPE_AAAA {
                    let at = self.popular(SERVERS_V6);
                    IpAddr::V6(self.servers_v6[at])
                } else {
                    let at = self.popular(SERVERS_V4);
                    IpAddr::V4(self.servers_v4[at])
                };
            }
            let cname = (n > 0 && self.rng.chance(0.25)).then(|| self.rng.below(20) as u16);
            let answer = dns::Answer {
                cname,
                ttl: self.rng.range(30, 3600) as u32,
                addrs: &addrs[..n],
            };
            let layout = frame::begin(&mut self.buf, &h);
            dns::answer(&mut self.buf, id, name, qtype, &answer);
            frame::finish(&mut self.buf, layout);
        }
        if let Detail::Dns { answered, .. } = &mut conv.detail {
            *answered = true;
        }
        (answered, true)
    }

    fn emit_udp(&mut self, conv: &mut Conversation) -> (bool, bool) {
        let Detail::Udp {
            ref mut left,
            ref mut to_server,
        } = conv.detail
        else {
            return (true, false);
        };
        let from_client = *to_server;
        *left -= 1;
        *to_server = !*to_server;
        let done = *left == 0;
        let h = self.udp(conv, from_client);
        let len = self.rng.range(20, 512) as usize;
        self.frame_with_random(&h, len);
        (done, false)
    }

    fn emit_icmp(&mut self, conv: &mut Conversation) -> (bool, bool) {
        let Detail::Icmp {
            id,
            ref mut seq,
            ref mut pairs_left,
            ref mut reply_next,
        } = conv.detail
        else {
            return (true, false);
        };
        let reply = *reply_next;
        let transport = Transport::Echo {
            reply,
            id,
            seq: *seq,
        };
        let mut done = false;
        if reply {
            *seq += 1;
            *pairs_left -= 1;
            done = *pairs_left == 0;
        }
        *reply_next = !reply;
        // `ping` payload: an 8-byte timestamp, then the bytes 0x10, 0x11, ...
        let stamp = (self.clock as u64).to_be_bytes();
        let h = self.headers(conv, !reply, transport);
        let layout = frame::begin(&mut self.buf, &h);
        self.buf.extend_from_slice(&stamp);
        self.buf.extend((0x10u8..0x40).take(48));
        frame::finish(&mut self.buf, layout);
        (done, false)
    }

    fn frame_with_random(&mut self, h: &Headers, len: usize) {
        let layout = frame::begin(&mut self.buf, h);
        let at = self.rng.index(RANDOM_BLOCK - len);
        self.buf.extend_from_slice(&self.random[at..at + len]);
        frame::finish(&mut self.buf, layout);
    }

    fn emit_tcp(&mut self, conv: &mut Conversation) -> (bool, bool) {
        let mss = if conv.client.ip.is_ipv6() {
            MSS_V6
        } else {
            MSS_V4
        };
        let tls = matches!(conv.detail, Detail::Tls { .. });
        let mut carries_listed = false;
        let mut done = false;
        match conv.step {
            TcpStep::Syn => {
                let h = self.tcp(conv, true, TCP_SYN);
                self.empty_frame(&h);
                conv.client_seq = conv.client_seq.wrapping_add(1);
                conv.step = TcpStep::SynAck;
            }
            TcpStep::SynAck => {
                let h = self.tcp(conv, false, TCP_SYN | TCP_ACK);
                self.empty_frame(&h);
                conv.server_seq = conv.server_seq.wrapping_add(1);
                conv.step = TcpStep::Ack;
            }
            TcpStep::Ack => {
                let h = self.tcp(conv, true, TCP_ACK);
                self.empty_frame(&h);
                conv.step = TcpStep::Request;
            }
            TcpStep::Request => {
                let h = self.tcp(conv, true, TCP_PSH | TCP_ACK);
                let layout = frame::begin(&mut self.buf, &h);
                let start = self.buf.len();
                match &conv.detail {
                    Detail::Http {
                        host,
                        path,
                        user_agent,
                        post,
                    } => {
                        let request = http::Request {
                            post: *post,
                            host,
                            port: conv.server.port,
                            path,
                            user_agent,
                        };
                        http::request(&mut self.buf, &request);
                        carries_listed = conv.listed == Some(Listed::Url);
                    }
                    Detail::Tls {
                        sni,
                        tls13,
                        browser,
                    } => {
                        let hello = tls::ClientHello {
                            sni,
                            tls13: *tls13,
                            browser: *browser,
                        };
                        tls::client_hello(&mut self.buf, &mut self.rng, &hello);
                        carries_listed = conv.listed == Some(Listed::Sni);
                    }
                    _ => {}
                }
                let len = self.buf.len() - start;
                frame::finish(&mut self.buf, layout);
                conv.client_seq = conv.client_seq.wrapping_add(len as u32);
                conv.step = if tls {
                    TcpStep::ServerHello
                } else {
                    TcpStep::Response
                };
            }
            TcpStep::ServerHello => {
                let tls13 = matches!(conv.detail, Detail::Tls { tls13: true, .. });
                let h = self.tcp(conv, false, TCP_PSH | TCP_ACK);
                let layout = frame::begin(&mut self.buf, &h);
                let start = self.buf.len();
                let encrypted = self.rng.range(400, 1100) as usize;
                let at = self.rng.index(RANDOM_BLOCK - encrypted);
                tls::server_hello(
                    &mut self.buf,
                    &mut self.rng,
                    tls13,
                    &self.random[at..at + encrypted],
                );
                let len = self.buf.len() - start;
                frame::finish(&mut self.buf, layout);
                conv.server_seq = conv.server_seq.wrapping_add(len as u32);
                conv.step = TcpStep::ClientData;
            }
            TcpStep::ClientData => {
                let h = self.tcp(conv, true, TCP_PSH | TCP_ACK);
                let layout = frame::begin(&mut self.buf, &h);
                let start = self.buf.len();
                // The client's ChangeCipherSpec, then its encrypted Finished + request.
                self.buf
                    .extend_from_slice(&[tls::CONTENT_CHANGE_CIPHER_SPEC, 3, 3, 0, 1, 1]);
                let n = self.rng.range(80, 600) as usize;
                let at = self.rng.index(RANDOM_BLOCK - n);
                tls::application_data(&mut self.buf, &self.random[at..at + n]);
                let len = self.buf.len() - start;
                frame::finish(&mut self.buf, layout);
                conv.client_seq = conv.client_seq.wrapping_add(len as u32);
                conv.step = TcpStep::Response;
            }
            TcpStep::Response => {
                let h = self.tcp(conv, false, TCP_ACK);
                let layout = frame::begin(&mut self.buf, &h);
                let start = self.buf.len();
                if tls {
                    let n = conv.response_left.min(mss - 5);
                    let at = self.rng.index(RANDOM_BLOCK - n);
                    tls::application_data(&mut self.buf, &self.random[at..at + n]);
                    conv.response_left -= n;
                } else {
                    if !conv.response_started {
                        http::response_head(&mut self.buf, conv.response_left);
                    }
                    let room = mss - (self.buf.len() - start);
                    let n = conv.response_left.min(room);
                    let at = self.rng.index(self.html.len() - n);
                    self.buf.extend_from_slice(&self.html[at..at + n]);
                    conv.response_left -= n;
                }
                conv.response_started = true;
                let len = self.buf.len() - start;
                if conv.response_left == 0 {
                    // The last segment of a response is pushed.
                    frame::add_tcp_flags(&mut self.buf, layout, TCP_PSH);
                    conv.step = TcpStep::ClientAck;
                }
                frame::finish(&mut self.buf, layout);
                conv.server_seq = conv.server_seq.wrapping_add(len as u32);
            }
            TcpStep::ClientAck => {
                let h = self.tcp(conv, true, TCP_ACK);
                self.empty_frame(&h);
                conv.step = TcpStep::Fin;
            }
            TcpStep::Fin => {
                let h = self.tcp(conv, true, TCP_FIN | TCP_ACK);
                self.empty_frame(&h);
                conv.client_seq = conv.client_seq.wrapping_add(1);
                conv.step = TcpStep::FinAck;
            }
            TcpStep::FinAck => {
                let h = self.tcp(conv, false, TCP_FIN | TCP_ACK);
                self.empty_frame(&h);
                conv.server_seq = conv.server_seq.wrapping_add(1);
                conv.step = TcpStep::LastAck;
            }
            TcpStep::LastAck => {
                let h = self.tcp(conv, true, TCP_ACK);
                self.empty_frame(&h);
                done = true;
            }
        }
        (done, carries_listed)
    }

    fn empty_frame(&mut self, h: &Headers) {
        let layout = frame::begin(&mut self.buf, h);
        frame::finish(&mut self.buf, layout);
    }
}

fn clamp_share(share: f64) -> f64 {
    if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    }
}

/// Not in a private, shared, loopback, link-local, multicast, reserved or documentation range.
fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19)))
}

/// Whether `name` or one of its parent domains is listed.
fn under_listed(name: &str, listed: &HashSet<&str>) -> bool {
    let mut rest = name;
    loop {
        if listed.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return false,
        }
    }
}

/// `[http[s]://]host[:port][/path]` → host, port (80 unless given), path (`/` unless given).
fn parse_url(url: &str) -> Option<ListedUrl> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        url
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok().filter(|&p| p != 0)?),
        None => (authority, 80),
    };
    let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !clean(host) || !clean(path) {
        return None;
    }
    Some(ListedUrl {
        host: host.to_ascii_lowercase(),
        port,
        path: path.to_owned(),
    })
}

/// HTML-looking bytes for response bodies (served from slices, so make it long enough).
fn html_filler() -> Vec<u8> {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Welcome</title><link rel=\"stylesheet\" href=\"/static/main.css\"></head>\n\
        <body><div class=\"container\"><h1>Latest news</h1><p>Lorem ipsum dolor sit amet, \
        consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna \
        aliqua.</p><ul><li><a href=\"/news/1\">First story</a></li><li><a href=\"/news/2\">\
        Second story</a></li></ul></div><script src=\"/static/app.js\"></script></body></html>\n";
    PAGE.repeat(16 * 1024 / PAGE.len() + 2).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_path() {
        let u = parse_url("http://Evil.example.com:8081/gate.php?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("evil.example.com", 8081, "/gate.php?x=1")
        );
        let u = parse_url("bad.example/dl/").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/dl/"));
        assert_eq!(parse_url("bad.example").unwrap().path, "/");
        assert!(parse_url("/only/a/path").is_none());
        assert!(parse_url("host:notaport/x").is_none());
        assert!(parse_url("sp ace.example/x").is_none());
    }

    #[test]
    fn parents_of_listed_domains_are_recognised() {
        let listed: HashSet<&str> = ["bad.example"].into_iter().collect();
        assert!(under_listed("bad.example", &listed));
        assert!(under_listed("www.bad.example", &listed));
        assert!(!under_listed("notbad.example", &listed));
    }

    #[test]
    fn server_pool_is_public() {
        assert!(!is_public_v4(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!is_public_v4(Ipv4Addr::new(100, 64, 0, 1)));
        assert!(!is_public_v4(Ipv4Addr::new(224, 0, 0, 1)));
        assert!(is_public_v4(Ipv4Addr::new(93, 184, 216, 34)));
    }
}
