//! Detection: one decoded packet in, trail events out.
//!
//! Per packet the detector parses the application layer it recognises (DNS on the DNS
//! ports, HTTP requests on any TCP port, TLS ClientHellos and server certificates, QUIC
//! client Initials), matches names, URLs, user agents and fingerprints against the trail
//! store, and then checks the packet's addresses (IP, CIDR and IP:port trails) once per
//! flow and direction. A message that spans segments (or QUIC packets) is gathered in a
//! [`Reassembler`] stream first; a message whole in one segment never touches it. Events
//! carry the protocol context they were found in; condensing happens after this stage.
//! Packets, HTTP requests and DNS messages also feed the [`crate::heuristics`] (shared by
//! every worker), whose findings become `Heuristic` events.

use std::net::IpAddr;
use std::sync::Arc;

use spoor_core::{
    Context, DnsContext, Event, EventId, EventKind, HeuristicContext, HttpContext, Micros, Proto,
    Severity, TlsContext,
};
use spoor_feeds::TrailHandle;
use spoor_feeds::store::{Matched, TrailHit, TrailStore};

use crate::config::IgnoreRule;
use crate::decode::TcpFlags;
use crate::flow::{FlowKey, FlowSlot, FlowTable};
use crate::heuristics::content::{ContentConfig, ContentHeuristics, Offender, Verdict};
use crate::heuristics::{Finding, Heuristics};
use crate::proto::{dns, http, quic, tls};
use crate::reassembly::{Awaiting, Inserted, Reassembler, ReassemblyLimits, Stream, StreamBuf};

/// Ports whose UDP and TCP payloads are read as DNS: DNS, mDNS, LLMNR.
pub const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

/// Name suffixes that never leave the local network; queries for them are not matched.
const LOCAL_SUFFIXES: [&str; 7] = [
    "arpa",
    "local",
    "localdomain",
    "localhost",
    "internal",
    "intranet",
    "home.arpa",
];

/// Packets between sweeps of idle reassembly streams (each sweep walks the open streams).
const REASSEMBLY_SWEEP_EVERY: u64 = 1 << 16;

/// Web gateways that wrap another name: `badsite.onion.to` is `badsite.onion`, and
/// `evilname.ip-adress.com` (a site-information service) is about `evilname`.
const WRAPPING_SUFFIXES: [&str; 1] = [".ip-adress.com"];

/// The reference column of heuristic events, as Maltrail writes it.
pub const HEURISTIC_REFERENCE: &str = "(heuristic)";

/// The packet facts the detector reads (built from the decoder's packet).
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    pub ts: Micros,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP header facts (flags, sequence numbers), for TCP packets.
    pub tcp: Option<crate::decode::TcpInfo>,
    pub payload: &'a [u8],
}

impl<'a> From<&crate::decode::Packet<'a>> for PacketView<'a> {
    fn from(p: &crate::decode::Packet<'a>) -> Self {
        PacketView {
            ts: p.ts,
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            src_port: p.src_port,
            dst_port: p.dst_port,
            tcp: p.tcp,
            payload: p.payload,
        }
    }
}

impl PacketView<'static> {
    /// A fragment whose datagram is not whole yet: addresses known, ports and payload not.
    pub fn fragment(ts: Micros, meta: &crate::decode::FragmentMeta) -> Self {
        PacketView {
            ts,
            src: meta.src,
            dst: meta.dst,
            proto: meta.proto,
            src_port: 0,
            dst_port: 0,
            tcp: None,
            payload: &[],
        }
    }
}

/// What the detector has seen, for the stats line and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectCounters {
    pub packets: u64,
    pub events: u64,
    pub ignored_events: u64,
    pub dns_messages: u64,
    pub dns_malformed: u64,
    pub http_requests: u64,
    pub tls_client_hellos: u64,
    pub tls_malformed: u64,
    /// Server certificates seen in clear (TLS ≤ 1.2).
    pub tls_certificates: u64,
    /// QUIC client Initial packets opened.
    pub quic_initials: u64,
    /// Datagrams that looked like a QUIC Initial but could not be opened.
    pub quic_undecryptable: u64,
    /// Opened Initials whose AEAD tag failed (read anyway: the keys are public).
    pub quic_unauthenticated: u64,
    pub http_responses: u64,
}

/// Event ids without a dependency, laid out as UUIDv7: the packet time in milliseconds
/// (48 bits), then 80 random bits (splitmix64 over a per-process seed). Ids that rise with
/// time land at the end of the server's id index instead of on a random page of it.
#[derive(Debug)]
struct IdGen(u64);

impl IdGen {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        IdGen(nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn next(&mut self, time: Micros) -> EventId {
        let millis = (time.0.div_euclid(1000) as u64 & 0xffff_ffff_ffff) as u128;
        let random = (u128::from(self.next_u64()) << 16) | u128::from(self.next_u64() & 0xffff);
        EventId((millis << 80) | random)
    }
}

/// Turns packets into trail events.
#[derive(Debug)]
pub struct Detector {
    sensor: String,
    trails: Arc<TrailHandle>,
    flows: FlowTable,
    heuristics: Arc<Heuristics>,
    /// Reused for the heuristics' findings (empty between packets).
    findings: Vec<Finding>,
    ids: IdGen,
    ignore: Vec<IgnoreRule>,
    tls_scratch: Vec<u8>,
    url_buf: String,
    reassembly: Reassembler,
    quic_scratch: Vec<u8>,
    quic_crypto: StreamBuf,
    content: ContentHeuristics,
    pub counters: DetectCounters,
}

impl Detector {
    pub fn new(
        sensor: String,
        trails: Arc<TrailHandle>,
        flows: FlowTable,
        heuristics: Arc<Heuristics>,
        ignore: Vec<IgnoreRule>,
    ) -> Self {
        Detector {
            sensor,
            trails,
            flows,
            heuristics,
            findings: Vec::new(),
            ids: IdGen::new(),
            ignore,
            tls_scratch: Vec::new(),
            url_buf: String::new(),
            reassembly: Reassembler::new(ReassemblyLimits::default()),
            quic_scratch: Vec::new(),
            quic_crypto: StreamBuf::default(),
            content: ContentHeuristics::default(),
            counters: DetectCounters::default(),
        }
    }

    /// Replaces the reassembly bounds (the defaults otherwise).
    pub fn with_reassembly(mut self, limits: ReassemblyLimits) -> Self {
        self.reassembly = Reassembler::new(limits);
        self
    }

    /// Runs the content heuristics with these switches (all on by default).
    pub fn with_content_heuristics(mut self, config: ContentConfig) -> Self {
        self.content = ContentHeuristics::new(config);
        self
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    pub fn reassembly(&self) -> &Reassembler {
        &self.reassembly
    }

    pub fn heuristics(&self) -> &Heuristics {
        &self.heuristics
    }

    /// Inspect one packet; events go to `emit`.
    pub fn inspect(&mut self, p: &PacketView<'_>, emit: &mut impl FnMut(Event)) {
        self.counters.packets += 1;
        let store = self.trails.current();
        let mut found: Vec<Event> = Vec::new();
        let mut context = Context::default();
        let mut skip_ip_check = false;

        // Protocol context is kept only when an address matched (to annotate that event);
        // name hits build their own. Most packets build none and allocate nothing.
        let address_hit = self.addresses_hit(&store, p);
        let keep = address_hit;
        let on_dns_port = DNS_PORTS.contains(&p.src_port) || DNS_PORTS.contains(&p.dst_port);
        if p.proto == Proto::TCP && !on_dns_port {
            self.tcp_application(&store, p, keep, &mut context, &mut found);
        } else if !p.payload.is_empty() {
            if p.proto == Proto::UDP && on_dns_port {
                self.dns(
                    &store,
                    p,
                    p.payload,
                    false,
                    keep,
                    &mut context,
                    &mut skip_ip_check,
                    &mut found,
                );
            } else if p.proto == Proto::TCP {
                let mut dns_seen = false;
                for message in dns::split_tcp_messages(p.payload).flatten() {
                    dns_seen = true;
                    self.dns(
                        &store,
                        p,
                        message,
                        true,
                        keep,
                        &mut context,
                        &mut skip_ip_check,
                        &mut found,
                    );
                }
                // A client's port can be a DNS port too (`53 → 80`): what is not DNS on a
                // DNS port is read like any other TCP payload.
                if !dns_seen {
                    self.tcp_application(&store, p, keep, &mut context, &mut found);
                }
            } else if p.proto == Proto::UDP && quic::may_be_client_initial(p.payload) {
                self.quic(&store, p, keep, &mut context, &mut found);
            }
        }
        if self.counters.packets.is_multiple_of(REASSEMBLY_SWEEP_EVERY)
            && !self.reassembly.is_empty()
        {
            self.reassembly.expire(p.ts);
        }

        // Scan heuristics: only probes touch their state.
        let mut findings = std::mem::take(&mut self.findings);
        self.heuristics.packet(p, &mut findings);
        self.heuristic_events(p, &mut findings, &mut found);
        self.findings = findings;

        // Address trails are looked up on every packet (a few nanoseconds each, cheaper
        // than a flow lookup); only a packet that hits consults the flow table, so that a
        // flow is reported once per direction however long it runs.
        if !skip_ip_check && address_hit {
            let (key, dir) = FlowKey::new(p.src, p.src_port, p.dst, p.dst_port, p.proto.0);
            let first = match self.flows.touch(key, p.ts) {
                FlowSlot::Tracked(flow) => flow.check_once(dir),
                FlowSlot::Untracked => true,
            };
            if first {
                self.addresses(&store, p, &context, &mut found);
            }
        }

        for event in found {
            if self
                .ignore
                .iter()
                .any(|r| r.matches(event.src, event.src_port, event.dst, event.dst_port))
            {
                self.counters.ignored_events += 1;
                continue;
            }
            self.counters.events += 1;
            emit(event);
        }
    }

    /// Whether either end of the packet matches an IP, CIDR or IP:port trail.
    #[inline]
    fn addresses_hit(&self, store: &TrailStore, p: &PacketView<'_>) -> bool {
        [(p.dst, p.dst_port), (p.src, p.src_port)]
            .into_iter()
            .any(|(ip, port)| {
                store.lookup_ip(ip).is_some()
                    || (port != 0
                        && store.has_ip_port_trails(ip)
                        && store.lookup_ip_port(ip, port).is_some())
            })
    }

    /// IP, CIDR and IP:port trails for both ends of the packet.
    fn addresses(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        context: &Context,
        found: &mut Vec<Event>,
    ) {
        for (end, (ip, port)) in [(p.dst, p.dst_port), (p.src, p.src_port)]
            .into_iter()
            .enumerate()
        {
            // A packet from a host to itself (loopback captures, LAND) is one match of
            // its address, not two.
            let same_as_dst = end == 1 && p.src == p.dst;
            if !same_as_dst && let Some(hit) = store.lookup_ip(ip) {
                let kind = if hit.kind == spoor_core::TrailKind::Cidr {
                    EventKind::Cidr
                } else {
                    EventKind::Ip
                };
                found.push(self.event(p, kind, &hit, Some(ip), context.clone()));
            }
            if port != 0
                && store.has_ip_port_trails(ip)
                && let Some(hit) = store.lookup_ip_port(ip, port)
            {
                found.push(self.event(p, EventKind::IpPort, &hit, Some(ip), context.clone()));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dns(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        message: &[u8],
        over_tcp: bool,
        keep: bool,
        context: &mut Context,
        skip_ip_check: &mut bool,
        found: &mut Vec<Event>,
    ) {
        if !over_tcp && !dns::is_probably_dns(message) {
            return;
        }
        let Ok(msg) = dns::parse_message(message) else {
            self.counters.dns_malformed += 1;
            return;
        };
        self.counters.dns_messages += 1;
        let response = msg.header.is_response();
        let nxdomain = response && msg.header.rcode() == dns::DnsRcode::NXDOMAIN;
        let rcode_of = || response.then(|| msg.header.rcode().to_string());
        let mut findings = std::mem::take(&mut self.findings);
        // A response is reported the way round the query went: client → resolver.
        let view = if response { flip(p) } else { *p };
        // Collected only when something is reported: most responses match nothing.
        let answers = || -> Vec<IpAddr> {
            if response {
                msg.answer_addrs().take(16).collect()
            } else {
                Vec::new()
            }
        };
        for q in msg.questions() {
            let Some(name) = q.name.as_str() else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let dns_context = || DnsContext {
                qname: name.to_string(),
                qtype: q.qtype.to_string(),
                rcode: rcode_of(),
            };
            if keep && context.dns.is_none() {
                context.dns = Some(dns_context());
            }
            // Reverse and AAAA lookups go to any resolver, listed or not: Maltrail leaves
            // them out of the resolver's IP check, and so does Spoor.
            if !response && (q.qtype == dns::DnsType::AAAA || q.qtype == dns::DnsType::PTR) {
                *skip_ip_check = true;
            }
            if is_local_name(name) || store.is_whitelisted_domain(name) {
                continue;
            }
            if nxdomain {
                self.heuristics
                    .dns_nxdomain(&view, view.src, name, &mut findings);
            } else if !response {
                self.heuristics.dns_query(&view, name, &mut findings);
            }
            if let Some(hit) = lookup_name(store, name) {
                let ctx = Context {
                    dns: Some(dns_context()),
                    ..Context::default()
                };
                let mut event = self.event(&view, EventKind::Dns, &hit, None, ctx);
                event.answers = answers();
                found.push(event);
            }
        }
        for finding in findings.iter_mut() {
            // Heuristic events about a name carry its DNS context (qtype, rcode).
            if let Some(q) = msg.questions().next() {
                finding.qtype = Some(q.qtype.to_string());
            }
            finding.rcode = rcode_of();
        }
        self.heuristic_events(&view, &mut findings, found);
        self.findings = findings;
        // A CNAME leading to a listed name is as bad as asking for it.
        if response {
            for answer in msg.answers() {
                let dns::RData::Cname(target) = answer.data else {
                    continue;
                };
                let Some(target) = target.as_str() else {
                    continue;
                };
                if target.is_empty() || is_local_name(target) || store.is_whitelisted_domain(target)
                {
                    continue;
                }
                if let Some(hit) = lookup_name(store, target) {
                    let ctx = Context {
                        dns: Some(DnsContext {
                            qname: target.to_string(),
                            qtype: "CNAME".to_string(),
                            rcode: rcode_of(),
                        }),
                        ..Context::default()
                    };
                    let mut event = self.event(&view, EventKind::Dns, &hit, None, ctx);
                    event.answers = answers();
                    found.push(event);
                }
            }
        }
        // Answers pointing at listed addresses: the responder can block those. A listed
        // sinkhole or parking address is the heuristic's event instead.
        for addr in msg.answer_addrs().take(16) {
            let addr = &addr;
            if let Some(hit) = store.lookup_ip(*addr) {
                let infos: Vec<&str> = hit.origins().map(|o| o.info).collect();
                let question = msg.questions().find_map(|q| {
                    q.name
                        .as_str()
                        .map(|n| (n.to_string(), q.qtype.to_string()))
                });
                if let Some((name, qtype)) = question
                    && let Some(verdict) = self.content.answer(&name, *addr, &infos)
                {
                    let ctx = Context {
                        dns: Some(DnsContext {
                            qname: name,
                            qtype,
                            rcode: rcode_of(),
                        }),
                        ..Context::default()
                    };
                    let mut event = self.heuristic_event(&view, verdict, ctx);
                    event.answers = vec![*addr];
                    found.push(event);
                    continue;
                }
                let mut event =
                    self.event(&view, EventKind::Ip, &hit, Some(*addr), context.clone());
                event.answers = vec![*addr];
                found.push(event);
            }
        }
    }

    fn http(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        request: &http::HttpRequest<'_>,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        self.counters.http_requests += 1;
        let mut findings = std::mem::take(&mut self.findings);
        self.heuristics.http_request(p, request.uri, &mut findings);
        self.heuristic_events(p, &mut findings, found);
        self.findings = findings;
        let host = request.host.as_ref().and_then(|h| h.as_str()).unwrap_or("");
        let uri = String::from_utf8_lossy(request.uri);
        let user_agent = request.user_agent.map(String::from_utf8_lossy);
        let http_context = || HttpContext {
            method: request.method.to_string(),
            host: host.to_string(),
            uri: uri.to_string(),
            user_agent: user_agent.as_ref().map(|u| u.to_string()),
            xff: request
                .x_forwarded_for
                .map(|x| String::from_utf8_lossy(x).into_owned()),
        };
        if keep {
            context.http = Some(http_context());
        }
        let ctx = || Context {
            http: Some(http_context()),
            ..Context::default()
        };
        let host_is_ip = host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
        if !host.is_empty()
            && !host_is_ip
            && !is_local_name(host)
            && !store.is_whitelisted_domain(host)
            && let Some(hit) = lookup_name(store, host)
        {
            found.push(self.event(p, EventKind::Host, &hit, Some(p.dst), ctx()));
        }
        // host + uri in a reused buffer: no allocation per request.
        let mut url = std::mem::take(&mut self.url_buf);
        url.clear();
        url.push_str(host);
        url.push_str(&uri);
        if let Some(hit) = store.lookup_url(&url) {
            let kind = if hit.kind == spoor_core::TrailKind::Path {
                EventKind::Path
            } else {
                EventKind::Url
            };
            found.push(self.event(p, kind, &hit, Some(p.dst), ctx()));
        }
        self.url_buf = url;
        let mut ua_listed = false;
        if let Some(ua) = &user_agent
            && !self.content.ua_allowlisted(ua.as_bytes())
            && let Some(hit) = store.match_user_agent(ua)
        {
            ua_listed = true;
            found.push(self.event(p, EventKind::Ua, &hit, Some(p.src), ctx()));
        }
        // Content heuristics: the request's class, then its User-Agent (unless a UA trail
        // already reported it).
        let body = &p.payload[request.head_len.min(p.payload.len())..];
        let facts = crate::heuristics::http::RequestFacts {
            request,
            head: &p.payload[..request.head_len.min(p.payload.len())],
            body,
            dst: p.dst,
        };
        let (class, agent) = self.content.request(&facts);
        for verdict in class.into_iter().chain(agent.filter(|_| !ua_listed)) {
            found.push(self.heuristic_event(p, verdict, ctx()));
        }
    }

    /// A response head starting in this segment: the response heuristics.
    fn http_response(&mut self, p: &PacketView<'_>, found: &mut Vec<Event>) {
        let Ok(response) = http::parse_response(p.payload) else {
            return;
        };
        self.counters.http_responses += 1;
        if let Some(verdict) = self.content.response(&response, p.payload) {
            found.push(self.heuristic_event(p, verdict, Context::default()));
        }
    }

    /// HTTP requests, TLS handshakes and their reassembly on a TCP segment (any port but
    /// DNS). A segment of a flow with an open stream feeds that stream; otherwise a segment
    /// holding a whole message is read in place, and one that starts a message it cannot
    /// finish opens a stream.
    fn tcp_application(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        let flags = p.tcp.map_or(TcpFlags(0), |t| t.flags);
        let closing = flags.intersects(TcpFlags::FIN | TcpFlags::RST);
        if p.payload.is_empty() && !closing {
            return; // a bare ACK: nothing to read, nothing to end
        }
        if !self.reassembly.is_empty() {
            let key = self.tcp_key(p, false);
            let mut fed = false;
            if self.reassembly.may_hold(key)
                && let Some(mut stream) = self.reassembly.take(key)
            {
                fed = true;
                if let Some(tcp) = p.tcp
                    && !p.payload.is_empty()
                    && stream.add_segment(tcp.seq, p.payload) == Inserted::TooManyPieces
                {
                    self.reassembly.counters.pieces_refused += 1;
                }
                stream.seen(p.ts);
                self.continue_stream(store, p, key, stream, closing, keep, context, found);
            }
            if flags.intersects(TcpFlags::RST) {
                // A reset ends both directions.
                let back = self.tcp_key(p, true);
                if self.reassembly.may_hold(back) && self.reassembly.close(back) {
                    self.reassembly.counters.closed += 1;
                }
            }
            if fed {
                return; // the segment belonged to a stream
            }
        }
        if p.payload.is_empty() {
            return;
        }
        match http::parse_request(p.payload) {
            Ok(request) => {
                // Headers not finished in this segment: wait for the rest. If no stream can
                // be opened (budget used up), read what there is now.
                if request.complete || closing || !self.open_stream(p, Awaiting::HttpRequest) {
                    self.http(store, p, &request, keep, context, found);
                }
                return;
            }
            Err(http::HttpError::Incomplete) => {
                if !closing {
                    self.open_stream(p, Awaiting::HttpRequest);
                }
                return;
            }
            Err(_) => {}
        }
        if p.payload.starts_with(b"HTTP/1.") {
            self.http_response(p, found);
            return;
        }
        if p.payload.first() != Some(&22) {
            return;
        }
        match tls::client_hello_needs(p.payload) {
            tls::Needed::Complete { .. } => {
                let mut scratch = std::mem::take(&mut self.tls_scratch);
                match tls::handshake_payload(p.payload, &mut scratch) {
                    Ok(msg) => {
                        self.client_hello(store, p, msg, tls::Transport::Tcp, keep, context, found)
                    }
                    Err(_) => self.counters.tls_malformed += 1,
                }
                self.tls_scratch = scratch;
            }
            tls::Needed::Incomplete { .. } => {
                if !closing {
                    self.open_stream(p, Awaiting::ClientHello);
                }
            }
            tls::Needed::NotClientHello => {
                let mut scratch = std::mem::take(&mut self.tls_scratch);
                match tls::server_certificate(p.payload, &mut scratch) {
                    tls::ServerCertificate::Leaf(der) => self.certificate(store, p, der, found),
                    tls::ServerCertificate::Pending if !closing => {
                        self.open_stream(p, Awaiting::ServerCertificate);
                    }
                    _ => {}
                }
                self.tls_scratch = scratch;
            }
        }
    }

    /// The reassembly key of the packet's direction (`reverse`: the other direction).
    fn tcp_key(&self, p: &PacketView<'_>, reverse: bool) -> u64 {
        if reverse {
            self.reassembly
                .key(p.dst, p.dst_port, p.src, p.src_port, Proto::TCP.0, 0)
        } else {
            self.reassembly
                .key(p.src, p.src_port, p.dst, p.dst_port, Proto::TCP.0, 0)
        }
    }

    /// Opens a stream starting with this segment; false if refused (budget used up) or the
    /// packet carries no TCP header facts.
    fn open_stream(&mut self, p: &PacketView<'_>, awaiting: Awaiting) -> bool {
        let Some(tcp) = p.tcp else { return false };
        let key = self.tcp_key(p, false);
        match self.reassembly.open(key, awaiting, tcp.seq, p.ts) {
            Some(stream) => {
                stream.add_segment(tcp.seq, p.payload);
                true
            }
            None => false,
        }
    }

    /// Reads a stream that just received bytes: the message is handled and the stream
    /// ended once it is whole, or once no more will come (FIN/RST, the side's cap); else it
    /// goes back to wait.
    #[allow(clippy::too_many_arguments)]
    fn continue_stream(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        key: u64,
        stream: Stream,
        closing: bool,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        let last_chance = closing || stream.buf.is_full();
        let data = stream.buf.contiguous();
        let done = match stream.awaiting {
            Awaiting::HttpRequest => match http::parse_request(data) {
                Ok(request) if request.complete || last_chance => {
                    self.http(store, p, &request, keep, context, found);
                    Some(request.complete)
                }
                Ok(_) | Err(http::HttpError::Incomplete) if !last_chance => None,
                _ => Some(false),
            },
            Awaiting::ClientHello => match tls::client_hello_needs(data) {
                tls::Needed::Complete { .. } => {
                    let mut scratch = std::mem::take(&mut self.tls_scratch);
                    match tls::handshake_payload(data, &mut scratch) {
                        Ok(msg) => self.client_hello(
                            store,
                            p,
                            msg,
                            tls::Transport::Tcp,
                            keep,
                            context,
                            found,
                        ),
                        Err(_) => self.counters.tls_malformed += 1,
                    }
                    self.tls_scratch = scratch;
                    Some(true)
                }
                tls::Needed::Incomplete { .. } if !last_chance => None,
                _ => Some(false),
            },
            Awaiting::ServerCertificate => {
                let mut scratch = std::mem::take(&mut self.tls_scratch);
                let done = match tls::server_certificate(data, &mut scratch) {
                    tls::ServerCertificate::Leaf(der) => {
                        self.certificate(store, p, der, found);
                        Some(true)
                    }
                    tls::ServerCertificate::Pending if !last_chance => None,
                    tls::ServerCertificate::Absent => Some(true),
                    tls::ServerCertificate::Pending => Some(false),
                };
                self.tls_scratch = scratch;
                done
            }
            // QUIC streams are read in `quic`; a TCP segment never shares their key.
            Awaiting::QuicClientHello => Some(false),
        };
        match done {
            None => self.reassembly.put_back(key, stream),
            Some(whole) => {
                let c = &mut self.reassembly.counters;
                if whole {
                    c.completed += 1;
                } else if closing {
                    c.closed += 1;
                } else {
                    c.overflowed += 1;
                }
                self.reassembly.finish(key, stream);
            }
        }
    }

    /// The client Initial packets of a UDP datagram (QUIC v1/v2): their CRYPTO frames are
    /// gathered (across packets when needed) until the ClientHello is whole.
    fn quic(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        let mut scratch = std::mem::take(&mut self.quic_scratch);
        let mut rest = p.payload;
        for _ in 0..quic::MAX_COALESCED {
            let Ok(header) = quic::parse_initial_header(rest) else {
                break;
            };
            let next = &rest[header.end..];
            match quic::open_initial(rest, &mut scratch) {
                Ok(opened) => {
                    self.counters.quic_initials += 1;
                    self.counters.quic_unauthenticated += u64::from(!opened.authenticated);
                    self.quic_crypto(store, p, &opened, keep, context, found);
                }
                Err(_) => self.counters.quic_undecryptable += 1,
            }
            rest = next;
        }
        self.quic_scratch = scratch;
    }

    fn quic_crypto(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        opened: &quic::OpenedInitial<'_>,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        let dcid = opened
            .header
            .dcid
            .as_bytes()
            .iter()
            .fold(0u64, |h, &b| h.rotate_left(8) ^ u64::from(b));
        let key = self
            .reassembly
            .key(p.src, p.src_port, p.dst, p.dst_port, Proto::UDP.0, dcid);
        let open = if self.reassembly.may_hold(key) {
            self.reassembly.take(key)
        } else {
            None
        };
        let mut buf = std::mem::take(&mut self.quic_crypto);
        if open.is_none() {
            buf.reset(self.reassembly.limits().client_bytes);
        }
        let mut stream = open;
        let target = stream.as_mut().map_or(&mut buf, |s| &mut s.buf);
        let mut pieces = 0;
        let mut refused = 0;
        let frames = quic::for_each_crypto_frame(opened.payload, |offset, data| {
            pieces += 1;
            if target.insert(offset, data) == Inserted::TooManyPieces {
                refused += 1;
            }
        });
        self.reassembly.counters.pieces_refused += refused;
        let full = target.is_full();
        let data = target.contiguous();
        let whole = match tls::split_handshake(data) {
            Ok(_) => {
                self.client_hello(store, p, data, tls::Transport::Quic, keep, context, found);
                Some(true)
            }
            Err(tls::TlsError::Incomplete { .. }) if !full && frames.is_ok() => None,
            Err(_) => Some(false),
        };
        match (stream, whole) {
            (Some(mut s), None) => {
                s.seen(p.ts);
                self.reassembly.put_back(key, s);
            }
            (Some(s), Some(whole)) => {
                if whole {
                    self.reassembly.counters.completed += 1;
                } else {
                    self.reassembly.counters.overflowed += 1;
                }
                self.reassembly.finish(key, s);
            }
            // The first piece of a ClientHello that needs more packets. Only an
            // authenticated packet opens a stream: a server's Initial read with the client's
            // keys is noise that may look like a CRYPTO frame.
            (None, None) if pieces > 0 && opened.authenticated => {
                if let Some(s) = self
                    .reassembly
                    .open(key, Awaiting::QuicClientHello, 0, p.ts)
                {
                    std::mem::swap(&mut s.buf, &mut buf);
                }
            }
            (None, _) => {}
        }
        self.quic_crypto = buf;
    }

    /// A ClientHello handshake message (joined from records over TCP, from CRYPTO frames
    /// over QUIC): SNI against domain trails, JA4 against JA4 trails; JA3 and JA4 go into
    /// the context of any event.
    #[allow(clippy::too_many_arguments)]
    fn client_hello(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        msg: &[u8],
        transport: tls::Transport,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        let Ok(hello) = tls::parse_client_hello(msg) else {
            self.counters.tls_malformed += 1;
            return;
        };
        self.counters.tls_client_hellos += 1;
        let sni = hello.sni.as_ref().and_then(|s| s.as_str());
        let sni_hit = sni
            .filter(|n| !is_local_name(n) && !store.is_whitelisted_domain(n))
            .and_then(|n| lookup_name(store, n));
        // JA4 costs a SHA-256 and some formatting, JA3 an MD5: only when something uses them.
        let want_ja4 = keep || sni_hit.is_some() || store.has_ja4_trails();
        let ja4 = want_ja4.then(|| tls::ja4(&hello, transport));
        let ja4_hit = ja4.as_deref().and_then(|j| store.lookup_ja4(j));
        if !keep && sni_hit.is_none() && ja4_hit.is_none() {
            return;
        }
        let tls_context = TlsContext {
            sni: sni.map(str::to_string),
            ja4,
            ja3: Some(tls::ja3(&hello)),
            ..TlsContext::default()
        };
        if keep {
            context.tls = Some(tls_context.clone());
        }
        let ctx = || Context {
            tls: Some(tls_context.clone()),
            ..Context::default()
        };
        if let Some(hit) = sni_hit {
            found.push(self.event(p, EventKind::Sni, &hit, Some(p.dst), ctx()));
        }
        if let Some(hit) = ja4_hit {
            found.push(self.event(p, EventKind::Ja4, &hit, Some(p.src), ctx()));
        }
    }

    /// A server's leaf certificate (TLS ≤ 1.2 sends it in clear): its SHA-1 against
    /// certificate trails.
    fn certificate(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        der: &[u8],
        found: &mut Vec<Event>,
    ) {
        self.counters.tls_certificates += 1;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(digest.as_ref());
        if let Some(hit) = store.lookup_cert(&sha1) {
            let hex: String = sha1.iter().map(|b| format!("{b:02x}")).collect();
            let ctx = Context {
                tls: Some(TlsContext {
                    cert_sha1: Some(hex),
                    ..TlsContext::default()
                }),
                ..Context::default()
            };
            found.push(self.event(p, EventKind::Cert, &hit, Some(p.src), ctx));
        }
    }

    /// The heuristics' findings as events (draining `findings`).
    fn heuristic_events(
        &mut self,
        p: &PacketView<'_>,
        findings: &mut Vec<Finding>,
        found: &mut Vec<Event>,
    ) {
        for f in findings.drain(..) {
            let dns = f.qname.map(|qname| DnsContext {
                qname,
                qtype: f.qtype.unwrap_or_default(),
                rcode: f.rcode,
            });
            let context = Context {
                dns,
                heuristic: Some(HeuristicContext {
                    name: f.name.to_string(),
                    reason: f.reason,
                }),
                ..Context::default()
            };
            let event = self.heuristic_finding(
                p,
                f.trail,
                f.info.to_string(),
                f.severity,
                f.offender,
                context,
            );
            found.push(event);
        }
    }

    /// An event for a content heuristic's verdict. The offender is the client or the
    /// server of the conversation, whichever the heuristic blames: for a packet from the
    /// server (a response), the client is the destination.
    fn heuristic_event(&mut self, p: &PacketView<'_>, v: Verdict, mut context: Context) -> Event {
        let (client, server) = if v.heuristic.reads_response() {
            (p.dst, p.src)
        } else {
            (p.src, p.dst)
        };
        let offender = match v.heuristic.offender() {
            Offender::Client => client,
            Offender::Server => server,
        };
        let severity = self
            .content
            .config
            .severity(v.heuristic)
            .unwrap_or(v.heuristic.default_severity());
        context.heuristic = Some(HeuristicContext {
            name: v.heuristic.name().to_string(),
            reason: v.reason,
        });
        self.heuristic_finding(p, v.trail, v.info, severity, offender, context)
    }

    /// One heuristic event on this packet (counting or content heuristic alike); `context`
    /// carries the protocol facts and the heuristic's name and evidence.
    fn heuristic_finding(
        &mut self,
        p: &PacketView<'_>,
        trail: String,
        info: String,
        severity: Severity,
        offender: IpAddr,
        context: Context,
    ) -> Event {
        Event {
            id: self.ids.next(p.ts),
            time: p.ts,
            sensor: self.sensor.clone(),
            src: p.src,
            src_port: (p.src_port != 0).then_some(p.src_port),
            dst: p.dst,
            dst_port: (p.dst_port != 0).then_some(p.dst_port),
            proto: p.proto,
            kind: EventKind::Heuristic,
            trail,
            info,
            reference: HEURISTIC_REFERENCE.to_string(),
            severity,
            offender: Some(offender),
            answers: Vec::new(),
            count: 1,
            first_seen: p.ts,
            last_seen: p.ts,
            context,
        }
    }

    fn event(
        &mut self,
        p: &PacketView<'_>,
        kind: EventKind,
        hit: &TrailHit<'_>,
        offender: Option<IpAddr>,
        context: Context,
    ) -> Event {
        let trail = match hit.trail {
            Matched::Text(t) => t.to_string(),
            other => other.to_string(),
        };
        Event {
            id: self.ids.next(p.ts),
            time: p.ts,
            sensor: self.sensor.clone(),
            src: p.src,
            src_port: (p.src_port != 0).then_some(p.src_port),
            dst: p.dst,
            dst_port: (p.dst_port != 0).then_some(p.dst_port),
            proto: p.proto,
            kind,
            trail,
            info: hit.info().to_string(),
            reference: hit.reference().to_string(),
            severity: hit.severity(),
            offender,
            answers: Vec::new(),
            count: 1,
            first_seen: p.ts,
            last_seen: p.ts,
            context,
        }
    }
}

fn flip<'a>(p: &PacketView<'a>) -> PacketView<'a> {
    PacketView {
        src: p.dst,
        dst: p.src,
        src_port: p.dst_port,
        dst_port: p.src_port,
        ..*p
    }
}

fn is_local_name(name: &str) -> bool {
    LOCAL_SUFFIXES.iter().any(|s| {
        name == *s
            || (name.len() > s.len()
                && name.ends_with(s)
                && name.as_bytes()[name.len() - s.len() - 1] == b'.')
    })
}

/// A domain trail for `name`: the name or a parent, a name wrapped by a web gateway
/// (`x.onion.to`, `x.ip-adress.com`), or a wildcard trail.
fn lookup_name<'s>(store: &'s TrailStore, name: &str) -> Option<TrailHit<'s>> {
    if let Some(hit) = store.lookup_domain(name) {
        return Some(hit);
    }
    if let Some(at) = name.find(".onion.")
        && let Some(hit) = store.lookup_domain(&name[..at + ".onion".len()])
    {
        return Some(hit);
    }
    for suffix in WRAPPING_SUFFIXES {
        if let Some(inner) = name.strip_suffix(suffix)
            && !inner.is_empty()
            && let Some(hit) = store.lookup_domain(inner)
        {
            return Some(hit);
        }
    }
    store.match_wildcard(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names() {
        assert!(is_local_name("host.local"));
        assert!(is_local_name("1.0.0.127.in-addr.arpa"));
        assert!(is_local_name("x.intranet"));
        assert!(!is_local_name("notlocal"));
        assert!(!is_local_name("evil-local"));
    }

    #[test]
    fn event_ids_rise_with_packet_time_and_differ_within_a_millisecond() {
        let mut ids = IdGen::new();
        let t = Micros(1_767_225_600_123_456);
        let a = ids.next(t);
        let b = ids.next(t);
        let later = ids.next(Micros(t.0 + 1000));
        assert_ne!(a, b);
        assert_eq!(
            a.0 >> 80,
            1_767_225_600_123,
            "the top 48 bits are the milliseconds"
        );
        assert_eq!(a.0 >> 80, b.0 >> 80);
        assert!(later > a && later > b);
    }
}
