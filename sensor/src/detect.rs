//! Detection: one decoded packet in, trail events out.
//!
//! Per packet the detector parses the application layer it recognises (DNS on the DNS
//! ports, HTTP requests on any TCP port, TLS ClientHellos), matches names, URLs, user
//! agents and fingerprints against the trail store, and then checks the packet's
//! addresses (IP, CIDR and IP:port trails) once per flow and direction. Events carry the
//! protocol context they were found in; condensing happens after this stage.

use std::net::IpAddr;
use std::sync::Arc;

use spoor_core::{
    Context, DnsContext, Event, EventId, EventKind, HeuristicContext, HttpContext, Micros, Proto,
    TlsContext,
};
use spoor_feeds::TrailHandle;
use spoor_feeds::store::{Matched, TrailHit, TrailStore};

use crate::config::IgnoreRule;
use crate::flow::{FlowKey, FlowSlot, FlowTable};
use crate::heuristics::content::{ContentConfig, ContentHeuristics, Offender, Verdict};
use crate::proto::{dns, http, tls};

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
    pub http_responses: u64,
}

/// Random-enough event ids without a dependency: splitmix64 over a per-process seed.
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
    fn next(&mut self) -> EventId {
        EventId((u128::from(self.next_u64()) << 64) | u128::from(self.next_u64()))
    }
}

/// Turns packets into trail events.
#[derive(Debug)]
pub struct Detector {
    sensor: String,
    trails: Arc<TrailHandle>,
    flows: FlowTable,
    ids: IdGen,
    ignore: Vec<IgnoreRule>,
    tls_scratch: Vec<u8>,
    url_buf: String,
    content: ContentHeuristics,
    pub counters: DetectCounters,
}

impl Detector {
    pub fn new(
        sensor: String,
        trails: Arc<TrailHandle>,
        flows: FlowTable,
        ignore: Vec<IgnoreRule>,
    ) -> Self {
        Detector {
            sensor,
            trails,
            flows,
            ids: IdGen::new(),
            ignore,
            tls_scratch: Vec::new(),
            url_buf: String::new(),
            content: ContentHeuristics::default(),
            counters: DetectCounters::default(),
        }
    }

    /// Runs the content heuristics with these switches (all on by default).
    pub fn with_content_heuristics(mut self, config: ContentConfig) -> Self {
        self.content = ContentHeuristics::new(config);
        self
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
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
        if !p.payload.is_empty() {
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
                // A client's port can be a DNS port too (`53 → 80`): what is not DNS on a
                // DNS port is tried as HTTP and TLS.
                let mut dns_seen = false;
                if on_dns_port {
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
                }
                if !dns_seen {
                    if let Ok(request) = http::parse_request(p.payload) {
                        self.http(&store, p, &request, keep, &mut context, &mut found);
                    } else if p.payload.starts_with(b"HTTP/1.") {
                        self.http_response(p, &mut found);
                    } else if p.payload.first() == Some(&22) {
                        self.tls(&store, p, keep, &mut context, &mut found);
                    }
                }
            }
        }

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
        let rcode_of = || response.then(|| msg.header.rcode().to_string());
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

    fn tls(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        keep: bool,
        context: &mut Context,
        found: &mut Vec<Event>,
    ) {
        match tls::client_hello_needs(p.payload) {
            tls::Needed::Complete { .. } => {}
            tls::Needed::NotClientHello => {
                self.server_certificate(store, p, found);
                return;
            }
            tls::Needed::Incomplete { .. } => return,
        }
        let mut scratch = std::mem::take(&mut self.tls_scratch);
        let mut parsed = None;
        if let Ok(msg) = tls::handshake_payload(p.payload, &mut scratch)
            && let Ok(hello) = tls::parse_client_hello(msg)
        {
            let sni = hello
                .sni
                .as_ref()
                .and_then(|s| s.as_str())
                .map(str::to_string);
            let sni_hit = sni
                .as_deref()
                .filter(|n| !is_local_name(n) && !store.is_whitelisted_domain(n))
                .and_then(|n| lookup_name(store, n));
            // JA4 costs a SHA-256 and some formatting: only when something uses it.
            let want_ja4 = keep || sni_hit.is_some() || store.has_ja4_trails();
            let ja4 = want_ja4.then(|| tls::ja4(&hello, tls::Transport::Tcp));
            parsed = Some((sni, sni_hit, ja4));
        }
        scratch.clear();
        self.tls_scratch = scratch;
        let Some((sni, sni_hit, ja4)) = parsed else {
            self.counters.tls_malformed += 1;
            return;
        };
        self.counters.tls_client_hellos += 1;
        let tls_context = TlsContext {
            sni,
            ja4: ja4.clone(),
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
        if let Some(ja4) = &ja4
            && let Some(hit) = store.lookup_ja4(ja4)
        {
            found.push(self.event(p, EventKind::Ja4, &hit, Some(p.src), ctx()));
        }
    }

    /// A server's first certificate (TLS ≤ 1.2 sends it in clear) against certificate
    /// trails. Only a certificate inside this one segment is seen here; certificates
    /// spread over segments need stream reassembly.
    fn server_certificate(
        &mut self,
        store: &TrailStore,
        p: &PacketView<'_>,
        found: &mut Vec<Event>,
    ) {
        let mut scratch = std::mem::take(&mut self.tls_scratch);
        let sha1 = tls::handshake_payload(p.payload, &mut scratch)
            .ok()
            .and_then(|payload| tls::parse_server_flight(payload).ok())
            .and_then(|flight| flight.first_certificate)
            .map(|der| {
                let digest =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
                let mut sha1 = [0u8; 20];
                sha1.copy_from_slice(digest.as_ref());
                sha1
            });
        scratch.clear();
        self.tls_scratch = scratch;
        let Some(sha1) = sha1 else { return };
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
        Event {
            id: self.ids.next(),
            time: p.ts,
            sensor: self.sensor.clone(),
            src: p.src,
            src_port: (p.src_port != 0).then_some(p.src_port),
            dst: p.dst,
            dst_port: (p.dst_port != 0).then_some(p.dst_port),
            proto: p.proto,
            kind: EventKind::Heuristic,
            trail: v.trail,
            info: v.info,
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
            id: self.ids.next(),
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
}
