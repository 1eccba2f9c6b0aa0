//! Acceptance tests for the sensor (capture, decoding, trail detection, events, outputs):
//! crafted frames and real shared captures go through the whole [`Pipeline`] with trails
//! compiled from small trail files written here, and the tests pin the events that come
//! out (kind, trail, endpoints, answers, count) and the counters of what went wrong.
//!
//! Condensing: the pipeline folds repeats of the same (offender, kind, trail) within the
//! 5 s window into one event with a count, so "how many times did it match" is the
//! event's `count` and "how many raw matches" is the snapshot's `events`.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use spoor_core::{Event, EventKind, Micros, Proto};
use spoor_feeds::compile::CompileSource;
use spoor_feeds::config::OriginDefaults;
use spoor_feeds::format::FormatSpec;
use spoor_sensor::generator::{Generator, GeneratorConfig};
use spoor_sensor::output::maltrail::render_line;

use support::*;

/// Trails of the crafted tests: one per behaviour, names under `.example` (RFC 2606)
/// and addresses from the documentation ranges, so nothing here is a real indicator.
const CRAFTED_TRAILS: &str = "\
aaaa-lookup.example,acceptance-aaaa (malware),(static)
cname-target.example,acceptance-cname (malware),(static)
listed-name.example,acceptance-answers (malware),(static)
ext-headers.example,acceptance-ipv6 (malware),(static)
frag-name.example,acceptance-frag (malware),(static)
tcp-dns.example,acceptance-tcp-dns (malware),(static)
tls-sni.example,acceptance-sni (malware),(static)
198.51.100.66,acceptance-qinq (malware),(static)
198.51.100.77,acceptance-frag-ip (malware),(static)
198.51.100.99,acceptance-midflow (malware),(static)
203.0.113.200,acceptance-truncated (malware),(static)
";

fn crafted_trails() -> Trails {
    Trails::csv(CRAFTED_TRAILS)
}

const CLIENT: &str = "10.0.0.5";
const RESOLVER: &str = "192.0.2.53";
const CLIENT6: &str = "2001:db8::5";
const RESOLVER6: &str = "2001:db8::53";

fn run_ethernet(
    trails: &Trails,
    frames: &[Vec<u8>],
) -> (Vec<Event>, spoor_sensor::metrics::Snapshot) {
    let mut sensor = Sensor::new(trails);
    sensor.feed_ethernet(frames);
    let (events, snapshot) = sensor.finish();
    assert_eq!(snapshot.packet_panics, 0);
    (events, snapshot)
}

/// The one event of `kind` for `trail`; fails listing all events otherwise.
fn only<'e>(events: &'e [Event], kind: EventKind, trail: &str) -> &'e Event {
    let hits: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == kind && e.trail == trail)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "want one {kind} event for {trail}, got:\n  {}",
        lines(events)
    );
    hits[0]
}

fn lines(events: &[Event]) -> String {
    events
        .iter()
        .map(render_line)
        .collect::<Vec<_>>()
        .join("\n  ")
}

// ---------------------------------------------------------------------------------------
// 1. DNS: AAAA lookups, CNAME targets, answers.

#[test]
fn aaaa_query_for_a_listed_domain_is_an_event() {
    let trails = crafted_trails();
    let query = dns_query(0x0101, "aaaa-lookup.example", QTYPE_AAAA);
    let (events, snap) = run_ethernet(
        &trails,
        &[udp_frame(ip(CLIENT), 40000, ip(RESOLVER), 53, &query)],
    );
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Dns, "aaaa-lookup.example");
    assert_eq!((e.src, e.dst), (ip(CLIENT), ip(RESOLVER)));
    assert_eq!((e.src_port, e.dst_port), (Some(40000), Some(53)));
    assert_eq!(e.proto, Proto::UDP);
    assert_eq!(e.count, 1);
    assert!(e.answers.is_empty());
    let dns = e.context.dns.as_ref().expect("dns context");
    assert_eq!(
        (dns.qname.as_str(), dns.qtype.as_str()),
        ("aaaa-lookup.example", "AAAA")
    );
    assert_eq!(dns.rcode, None);
    assert_eq!(e.info, "acceptance-aaaa (malware)");
    assert_eq!(snap.dns_messages, 1);
}

#[test]
fn cname_to_a_listed_domain_is_an_event_with_the_answers() {
    let trails = crafted_trails();
    let response = dns_response(
        0x0202,
        "innocent.example",
        QTYPE_A,
        &[
            Rr::Cname("innocent.example", "cname-target.example"),
            Rr::A("cname-target.example", Ipv4Addr::new(203, 0, 113, 7)),
            Rr::Aaaa("cname-target.example", "2001:db8::7".parse().unwrap()),
        ],
    );
    let frames = [
        udp_frame(
            ip(CLIENT),
            40001,
            ip(RESOLVER),
            53,
            &dns_query(0x0202, "innocent.example", QTYPE_A),
        ),
        udp_frame(ip(RESOLVER), 53, ip(CLIENT), 40001, &response),
    ];
    let (events, _) = run_ethernet(&trails, &frames);
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Dns, "cname-target.example");
    // Reported the way the query went: client → resolver.
    assert_eq!((e.src, e.dst), (ip(CLIENT), ip(RESOLVER)));
    assert_eq!((e.src_port, e.dst_port), (Some(40001), Some(53)));
    assert_eq!(e.answers, [ip("203.0.113.7"), ip("2001:db8::7")]);
    assert_eq!(e.count, 1);
    let dns = e.context.dns.as_ref().expect("dns context");
    assert_eq!(
        (dns.qname.as_str(), dns.qtype.as_str()),
        ("cname-target.example", "CNAME")
    );
    assert_eq!(dns.rcode.as_deref(), Some("NOERROR"));
}

#[test]
fn response_for_a_listed_name_carries_its_answer_addresses() {
    let trails = crafted_trails();
    let response = dns_response(
        0x0303,
        "listed-name.example",
        QTYPE_A,
        &[
            Rr::A("listed-name.example", Ipv4Addr::new(198, 51, 100, 9)),
            Rr::A("listed-name.example", Ipv4Addr::new(198, 51, 100, 10)),
        ],
    );
    let frames = [
        udp_frame(
            ip(CLIENT),
            40002,
            ip(RESOLVER),
            53,
            &dns_query(0x0303, "listed-name.example", QTYPE_A),
        ),
        udp_frame(ip(RESOLVER), 53, ip(CLIENT), 40002, &response),
    ];
    let (events, snap) = run_ethernet(&trails, &frames);
    // Query and response are the same (client, resolver, trail): condensed into one event
    // of count 2 that holds the response's answers.
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Dns, "listed-name.example");
    assert_eq!((e.src, e.dst), (ip(CLIENT), ip(RESOLVER)));
    assert_eq!(e.count, 2);
    assert_eq!(e.answers, [ip("198.51.100.9"), ip("198.51.100.10")]);
    assert_eq!((snap.events, snap.events_folded), (2, 1));

    // The response alone gives the same answers on a count-1 event.
    let (events, _) = run_ethernet(&trails, &frames[1..]);
    let e = only(&events, EventKind::Dns, "listed-name.example");
    assert_eq!((e.count, e.src), (1, ip(CLIENT)));
    assert_eq!(e.answers, [ip("198.51.100.9"), ip("198.51.100.10")]);
    let line = render_line(e);
    assert!(line.contains("listed-name.example"), "{line}");
}

// ---------------------------------------------------------------------------------------
// 2. QinQ.

#[test]
fn qinq_frame_to_a_listed_ip_is_an_event() {
    let trails = crafted_trails();
    let syn = ipv4(
        ip(CLIENT),
        ip("198.51.100.66"),
        IPPROTO_TCP,
        &tcp(50000, 443, 7, TCP_SYN, &[]),
    );
    for tags in [
        vec![(TPID_8021AD, 100), (TPID_8021Q, 200)],
        vec![(TPID_8021Q, 100), (TPID_8021Q, 200)],
        vec![(TPID_8021AD, 10), (TPID_8021Q, 20), (TPID_8021Q, 30)],
    ] {
        let frame = ethernet(&tags, ETHERTYPE_IPV4, &syn);
        let (events, snap) = run_ethernet(&trails, &[frame]);
        assert!(
            snap.decode_errors.is_empty(),
            "{tags:?}: {:?}",
            snap.decode_errors
        );
        assert_eq!(events.len(), 1, "{tags:?}: {}", lines(&events));
        let e = only(&events, EventKind::Ip, "198.51.100.66");
        assert_eq!(e.offender, Some(ip("198.51.100.66")));
        assert_eq!((e.src, e.dst), (ip(CLIENT), ip("198.51.100.66")));
        assert_eq!((e.dst_port, e.proto, e.count), (Some(443), Proto::TCP, 1));
    }
}

// ---------------------------------------------------------------------------------------
// 3. IPv6 extension headers.

fn ipv6_dns_query(chain: &[(u8, Vec<u8>)], name: &str) -> Vec<u8> {
    // `chain`: (protocol number of the header, its bytes), in order; each header's next
    // header field is already set by its builder.
    let mut payload = Vec::new();
    for (_, h) in chain {
        payload.extend_from_slice(h);
    }
    payload.extend_from_slice(&udp(40003, 53, &dns_query(0x0404, name, QTYPE_A)));
    let first = chain.first().map_or(IPPROTO_UDP, |(p, _)| *p);
    eth(&ipv6(ip(CLIENT6), ip(RESOLVER6), first, &payload))
}

#[test]
fn ipv6_extension_headers_carrying_dns_for_a_listed_domain() {
    let trails = crafted_trails();
    let chains = [
        // hop-by-hop → destination options → UDP
        vec![
            (IPPROTO_HOPOPTS, ipv6_options(IPPROTO_DSTOPTS)),
            (IPPROTO_DSTOPTS, ipv6_options(IPPROTO_UDP)),
        ],
        // an atomic fragment (offset 0, no more fragments) → UDP
        vec![(
            IPPROTO_FRAGMENT,
            ipv6_fragment_header(IPPROTO_UDP, 0, false, 77),
        )],
        // all three
        vec![
            (IPPROTO_HOPOPTS, ipv6_options(IPPROTO_DSTOPTS)),
            (IPPROTO_DSTOPTS, ipv6_options(IPPROTO_FRAGMENT)),
            (
                IPPROTO_FRAGMENT,
                ipv6_fragment_header(IPPROTO_UDP, 0, false, 78),
            ),
        ],
    ];
    for chain in &chains {
        let kinds: Vec<u8> = chain.iter().map(|(p, _)| *p).collect();
        let (events, snap) = run_ethernet(&trails, &[ipv6_dns_query(chain, "ext-headers.example")]);
        assert!(
            snap.decode_errors.is_empty(),
            "{kinds:?}: {:?}",
            snap.decode_errors
        );
        assert_eq!(events.len(), 1, "{kinds:?}: {}", lines(&events));
        let e = only(&events, EventKind::Dns, "ext-headers.example");
        assert_eq!((e.src, e.dst), (ip(CLIENT6), ip(RESOLVER6)));
        assert_eq!(
            (e.src_port, e.dst_port, e.proto),
            (Some(40003), Some(53), Proto::UDP)
        );
        assert_eq!(e.count, 1);
    }
}

// ---------------------------------------------------------------------------------------
// 4. IPv4 fragments.

/// `payload` cut into IPv4 fragments of `size` bytes (a multiple of 8), in order.
fn fragments(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u16,
    payload: &[u8],
    size: usize,
) -> Vec<Vec<u8>> {
    payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * size;
            let more = offset + chunk.len() < payload.len();
            eth(&ipv4_fragment(src, dst, proto, id, offset, more, chunk))
        })
        .collect()
}

#[test]
fn fragmented_ipv4_to_a_listed_address_is_one_event() {
    let trails = crafted_trails();
    let segment = tcp(50001, 8080, 9, TCP_SYN, &[0x41; 40]);
    let frags = fragments(
        ip(CLIENT),
        ip("198.51.100.77"),
        IPPROTO_TCP,
        0x77,
        &segment,
        32,
    );
    assert_eq!(frags.len(), 2);
    for order in [[0, 1], [1, 0]] {
        let frames: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
        let (events, snap) = run_ethernet(&trails, &frames);
        assert!(
            snap.decode_errors.is_empty(),
            "{order:?}: {:?}",
            snap.decode_errors
        );
        assert_eq!(events.len(), 1, "{order:?}: {}", lines(&events));
        let e = only(&events, EventKind::Ip, "198.51.100.77");
        assert_eq!(e.offender, Some(ip("198.51.100.77")));
        assert_eq!(
            (e.src, e.dst, e.proto),
            (ip(CLIENT), ip("198.51.100.77"), Proto::TCP)
        );
        // Today a fragmented datagram counts twice: its first fragment is checked while
        // pending (ports unknown, flow without ports) and the reassembled datagram again
        // (flow with ports). Condensing keeps it to one event; the count says 2.
        assert_eq!((e.count, snap.events), (2, 2), "{order:?}");
    }
    // A datagram that never completes still reports who it went to.
    let (events, snap) = run_ethernet(&trails, &frags[..1]);
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Ip, "198.51.100.77");
    assert_eq!((e.count, e.dst_port, e.proto), (1, None, Proto::TCP));
    assert_eq!(snap.events, 1);
}

#[test]
fn reassembled_udp_dns_for_a_listed_name_is_an_event() {
    let trails = crafted_trails();
    let datagram = udp(40004, 53, &dns_query(0x0505, "frag-name.example", QTYPE_A));
    let frags = fragments(ip(CLIENT), ip(RESOLVER), IPPROTO_UDP, 0x55, &datagram, 16);
    assert_eq!(frags.len(), 3);
    for order in [[0, 1, 2], [2, 0, 1], [2, 1, 0], [1, 2, 0]] {
        let frames: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
        let (events, snap) = run_ethernet(&trails, &frames);
        assert!(
            snap.decode_errors.is_empty(),
            "{order:?}: {:?}",
            snap.decode_errors
        );
        assert_eq!(events.len(), 1, "{order:?}: {}", lines(&events));
        let e = only(&events, EventKind::Dns, "frag-name.example");
        assert_eq!((e.src, e.dst), (ip(CLIENT), ip(RESOLVER)));
        assert_eq!(
            (e.src_port, e.dst_port, e.count),
            (Some(40004), Some(53), 1)
        );
        assert_eq!(snap.dns_messages, 1);
    }
}

// ---------------------------------------------------------------------------------------
// 5. DNS over TCP.

#[test]
fn dns_over_tcp_second_message_of_a_segment_is_matched() {
    let trails = crafted_trails();
    let stream = dns_tcp_stream(&[
        dns_query(0x0606, "innocent.example", QTYPE_A),
        dns_query(0x0607, "tcp-dns.example", QTYPE_A),
    ]);
    let frame = tcp_frame(
        ip(CLIENT),
        50002,
        ip(RESOLVER),
        53,
        TCP_PSH | TCP_ACK,
        &stream,
    );
    let (events, snap) = run_ethernet(&trails, &[frame]);
    assert_eq!(snap.dns_messages, 2);
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Dns, "tcp-dns.example");
    assert_eq!(
        (e.src, e.dst, e.proto),
        (ip(CLIENT), ip(RESOLVER), Proto::TCP)
    );
    assert_eq!(
        (e.src_port, e.dst_port, e.count),
        (Some(50002), Some(53), 1)
    );
    assert_eq!(
        e.context.dns.as_ref().map(|d| d.qname.as_str()),
        Some("tcp-dns.example")
    );
}

// ---------------------------------------------------------------------------------------
// 6. TLS SNI.

#[test]
fn tls_client_hello_sni_over_ipv4_and_ipv6() {
    let trails = crafted_trails();
    let hello = client_hello("tls-sni.example");
    for (client, server) in [(CLIENT, "203.0.113.43"), (CLIENT6, "2001:db8::443")] {
        let frame = tcp_frame(
            ip(client),
            50003,
            ip(server),
            443,
            TCP_PSH | TCP_ACK,
            &hello,
        );
        let (events, snap) = run_ethernet(&trails, &[frame]);
        assert_eq!(snap.tls_client_hellos, 1, "{client}");
        assert_eq!(events.len(), 1, "{client}: {}", lines(&events));
        let e = only(&events, EventKind::Sni, "tls-sni.example");
        assert_eq!((e.src, e.dst), (ip(client), ip(server)));
        assert_eq!((e.dst_port, e.count), (Some(443), 1));
        assert_eq!(e.offender, Some(ip(server)));
        let tls = e.context.tls.as_ref().expect("tls context");
        assert_eq!(tls.sni.as_deref(), Some("tls-sni.example"));
        let ja4 = tls.ja4.as_deref().expect("ja4");
        // TCP, TLS 1.3, SNI to a domain, 3 ciphers, 6 extensions, ALPN h2.
        assert!(ja4.starts_with("t13d0306h2_"), "{ja4}");
        assert_eq!(ja4.len(), 36, "{ja4}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. Mid-flow packets.

#[test]
fn mid_flow_packets_are_checked_once_per_flow_and_direction() {
    let trails = crafted_trails();
    let server = ip("198.51.100.99");
    let mut sensor = Sensor::new(&trails);
    // No SYN ever: the capture starts inside an established connection.
    for i in 0..5 {
        let data = [b'x'; 100];
        let f = tcp_frame(ip(CLIENT), 51000, server, 8443, TCP_PSH | TCP_ACK, &data);
        sensor.feed(Micros(T0.0 + i * 10_000), LINKTYPE_ETHERNET, &f);
    }
    let snap = sensor.pipeline.snapshot();
    assert_eq!(
        (snap.events, snap.flows),
        (1, 1),
        "one check for the client's direction"
    );
    for i in 5..10 {
        let f = tcp_frame(server, 8443, ip(CLIENT), 51000, TCP_ACK, &[b'y'; 60]);
        sensor.feed(Micros(T0.0 + i * 10_000), LINKTYPE_ETHERNET, &f);
    }
    let snap = sensor.pipeline.snapshot();
    assert_eq!(snap.events, 2, "and one for the server's");
    let (events, snap) = sensor.finish();
    assert_eq!(snap.packet_panics, 0);
    assert_eq!(events.len(), 1, "{}", lines(&events));
    let e = only(&events, EventKind::Ip, "198.51.100.99");
    assert_eq!(e.offender, Some(server));
    // Reported as first seen: client → listed server.
    assert_eq!((e.src, e.dst, e.dst_port), (ip(CLIENT), server, Some(8443)));
    assert_eq!(e.count, 2, "one occurrence per direction, not per packet");
    assert_eq!((e.first_seen, e.last_seen), (T0, Micros(T0.0 + 50_000)));

    // Only the client's direction: the condensed count stays 1.
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|_| tcp_frame(ip(CLIENT), 51001, server, 8443, TCP_ACK, &[b'z'; 10]))
        .collect();
    let (events, snap) = run_ethernet(&trails, &frames);
    assert_eq!((events.len(), snap.events), (1, 1), "{}", lines(&events));
    assert_eq!(only(&events, EventKind::Ip, "198.51.100.99").count, 1);
}

/// Regression: a packet from a listed host to itself matched once per end (count 2).
#[test]
fn packet_from_a_listed_host_to_itself_is_one_match() {
    let trails = crafted_trails();
    let host = ip("198.51.100.99");
    let frame = udp_frame(host, 7, host, 7, b"loop");
    let (events, snap) = run_ethernet(&trails, &[frame]);
    assert_eq!((events.len(), snap.events), (1, 1), "{}", lines(&events));
    let e = only(&events, EventKind::Ip, "198.51.100.99");
    assert_eq!((e.count, e.offender), (1, Some(host)));
}

// ---------------------------------------------------------------------------------------
// 8. Truncated packets.

#[test]
fn truncated_packets_are_counted_not_reported() {
    let trails = crafted_trails();
    let listed = ip("203.0.113.200");
    let tcp4 = tcp_frame(ip(CLIENT), 50004, listed, 443, TCP_SYN, &[]);
    let udp4 = udp_frame(
        ip(CLIENT),
        40005,
        listed,
        53,
        &dns_query(1, "x.example", QTYPE_A),
    );
    let udp6 = udp_frame(ip(CLIENT6), 40006, ip("2001:db8::200"), 53, b"");
    let cuts: [(&str, Vec<u8>); 5] = [
        ("truncated.ipv4", tcp4[..14 + 10].to_vec()),
        ("truncated.ipv4", tcp4[..14 + 19].to_vec()),
        ("truncated.tcp", tcp4[..14 + 20 + 13].to_vec()),
        ("truncated.udp", udp4[..14 + 20 + 4].to_vec()),
        ("truncated.ipv6", udp6[..14 + 39].to_vec()),
    ];
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    let mut sensor = Sensor::new(&trails);
    for (i, (counter, frame)) in cuts.iter().enumerate() {
        *want.entry((*counter).to_string()).or_default() += 1;
        sensor.feed(Micros(T0.0 + i as i64), LINKTYPE_ETHERNET, frame);
    }
    // Cut inside the Ethernet header too.
    sensor.feed(T0, LINKTYPE_ETHERNET, &tcp4[..9]);
    want.insert("truncated.ethernet".into(), 1);
    let (events, snap) = sensor.finish();
    assert!(events.is_empty(), "{}", lines(&events));
    assert_eq!(snap.packet_panics, 0);
    assert_eq!(snap.decode_errors, want);
    assert_eq!((snap.packets, snap.events, snap.flows), (6, 0, 0));
}

// ---------------------------------------------------------------------------------------
// 9. Themed shared captures, events pinned.

/// Trails for the themed captures: names and addresses their traffic contains.
const THEMED_TRAILS: &str = "\
evil.com,acceptance-subdomain (malware),(static)
7.google.com,acceptance-dns-tcp (malware),(static)
dne.oisf.net,acceptance-nxdomain (malware),(static)
vaaaakardli.pirate.sea,acceptance-null (malware),(static)
netalyzr.icsi.berkeley.edu,acceptance-ipv6-frag (malware),(static)
raw.githubusercontent.com,acceptance-sni (malware),(static)
qagpublic.qg1.apps.qualys.com,acceptance-proxy (malware),(static)
xp.apple.com,acceptance-pppoe-qinq (malware),(static)
catenacyber.fr,acceptance-junk-first (malware),(static)
172.19.51.37,acceptance-qinq (malware),(static)
192.150.187.43,acceptance-qinqinq (malware),(static)
2.2.2.2,acceptance-vlan-gre-defrag (malware),(static)
192.168.0.1,acceptance-vlan-flow (malware),(static)
2::1,acceptance-ipv6-dataset (malware),(static)
fe80::20c:29ff:faf2:ab42,acceptance-ipv6-http (malware),(static)
2607:f740:b::f93,acceptance-ipv6-resolver (malware),(static)
142.250.179.131,acceptance-pppoe (malware),(static)
125.190.109.199,acceptance-mpls (malware),(static)
192.0.2.1,acceptance-sll2 (malware),(static)
172.23.0.22,acceptance-dlt-raw (malware),(static)
";

/// Expected events as (kind, trail, count), sorted.
type Expected = &'static [(&'static str, &'static str, u64)];
/// Events as they came out, in the same shape.
type Summary = Vec<(String, String, u64)>;
/// (capture under `pcaps/`, its events).
type Pinned = (&'static str, Expected);

const THEMED: &[Pinned] = &[
    // A synthetic `GET /` without a User-Agent to a public address: the
    // missing_user_agent heuristic.
    (
        "dns/suricata-verify__datasets-04-http-dns__input.pcap",
        &[("heuristic", "example.com(/)", 1)],
    ),
    // domains.lst holds ".evil.com" (base64): mail.evil.com and sub.mail.evil.com
    // match it as a parent, one client and resolver, so one event of count 2.
    (
        "dns/suricata-verify__datasets-match-subdomain__input.pcap",
        &[("dns", "evil.com", 2)],
    ),
    // Query and response of one lookup condense into one event of count 2.
    (
        "dns/suricata-verify__dns-eve-v2-udp-nxdomain-soa__dns-udp-nxdomain-soa.pcap",
        &[("dns", "dne.oisf.net", 2)],
    ),
    (
        "dns/suricata-verify__dns__dns-tcp-multirequest-buffer__dns-tcp-multirequest-buffer.pcap",
        &[("dns", "7.google.com", 2)],
    ),
    (
        "dns/suricata-verify__dns__dns-tcp-www-google-com__dns.pcap",
        &[],
    ),
    (
        "dns/suricata-verify__dns__dns-udp-eve-log-srv__input.pcap",
        &[("ip", "172.23.0.22", 2)],
    ),
    ("dns/suricata-verify__dns__dns-udp-eve-txt__input.pcap", &[]),
    (
        "dns/suricata-verify__dns__dns-udp-null__input.pcap",
        &[("dns", "vaaaakardli.pirate.sea", 2)],
    ),
    ("dns/zeek__dns-https.pcap", &[]),
    ("dns/zeek__dns__mdns.pcap", &[]),
    // Through a proxy: the CONNECT names the host, the ClientHello the SNI.
    (
        "tls/suricata-verify__bug-2430__backwards.pcap",
        &[
            ("host", "qagpublic.qg1.apps.qualys.com", 1),
            ("sni", "qagpublic.qg1.apps.qualys.com", 1),
        ],
    ),
    (
        "tls/suricata-verify__bug-2646-01__input.pcap",
        &[("sni", "raw.githubusercontent.com", 1)],
    ),
    (
        "tls/suricata-verify__tls__tls-subjectaltname__input.pcap",
        &[],
    ),
    (
        "vlan/suricata-verify__detect-vlan-id__input.pcap",
        &[("ip", "2.2.2.2", 2)],
    ),
    (
        "vlan/suricata-verify__eve-flow-vlan-02__input.pcap",
        &[("ip", "192.168.0.1", 1)],
    ),
    ("vlan/zeek__q-in-q.pcap", &[("ip", "172.19.51.37", 1)]),
    (
        "vlan/zeek__vlan-qinqinq.pcap",
        &[("ip", "192.150.187.43", 2)],
    ),
    (
        "ipv6/suricata-verify__compress_ipv6-01__input.pcap",
        // Nikto names itself in the User-Agent: the suspicious_user_agent heuristic.
        &[
            (
                "heuristic",
                r"Nikto (Mozilla/4.75 \(Nikto/2.1.4\) \(Evasions:None\) \(Test:000003\))",
                1,
            ),
            ("ip", "fe80::20c:29ff:faf2:ab42", 2),
        ],
    ),
    (
        "ipv6/suricata-verify__datasets-08-state-ipv6__input.pcap",
        &[("ip", "2::1", 2)],
    ),
    ("ipv6/suricata-verify__http-ipv6__input.pcap", &[]),
    // Lookups at 0 s, 15 s and 20 s: three 5 s condense windows. The address
    // counts include the check of a pending fragment (see the IPv4 fragment test).
    (
        "ipv6/zeek__ipv6-fragmented-dns.pcap",
        &[
            ("dns", "netalyzr.icsi.berkeley.edu", 1),
            ("dns", "netalyzr.icsi.berkeley.edu", 2),
            ("dns", "netalyzr.icsi.berkeley.edu", 2),
            ("ip", "2607:f740:b::f93", 1),
            ("ip", "2607:f740:b::f93", 2),
            ("ip", "2607:f740:b::f93", 2),
        ],
    ),
    (
        "encap/suricata-verify__bug-4810__pppoe-session-http.pcap",
        &[("ip", "142.250.179.131", 2)],
    ),
    (
        "encap/suricata-verify__bug-5633-gre-01__gre-udp.pcap",
        &[("ip", "2.2.2.2", 1)],
    ),
    // Two fragments pending, then the whole SYN: counted twice (see the IPv4
    // fragment test).
    (
        "encap/suricata-verify__defrag__bug-6887-defrag-ipv4-tcp-syn__frag-ip-tcp-syn.pcap",
        &[("ip", "2.2.2.2", 2)],
    ),
    (
        "encap/suricata-verify__defrag__bug-6887-defrag-ppp-ipv4-tcp-syn__frag-ppp-ip-tcp-syn.pcap",
        &[("ip", "2.2.2.2", 2)],
    ),
    (
        "encap/zeek__mixed-vlan-mpls.pcap",
        &[("ip", "125.190.109.199", 2)],
    ),
    // The conversation spans more than one 5 s window.
    (
        "encap/zeek__pppoe-over-qinq.pcap",
        &[
            ("ip", "2.2.2.2", 1),
            ("ip", "2.2.2.2", 2),
            ("sni", "xp.apple.com", 1),
        ],
    ),
    // ICMP from 192.0.2.1 to itself (two packets, one flow and direction): one
    // match, not one per end.
    (
        "linktype/zeek__linux_dlt_sll2.pcap",
        &[("ip", "192.0.2.1", 1)],
    ),
    (
        "malformed/suricata-verify__dns-udp-junkrequest-first__input.pcap",
        &[("dns", "catenacyber.fr", 2)],
    ),
    (
        "malformed/suricata-verify__dns__dns-truncated-rname__poc2.pcap",
        &[],
    ),
    (
        "malformed/suricata-verify__firewall__tcp-session-decode-malformed-ipv4__input.pcap",
        &[],
    ),
    (
        "malformed/suricata-verify__ipv4-truncated__truncated.pcap",
        &[],
    ),
    ("malformed/zeek__dns__dns-corrupt.pcap", &[]),
    ("malformed/zeek__dns__dns-invalid-names.pcap", &[]),
    ("malformed/zeek__trunc__ip4-trunc.pcap", &[]),
    ("malformed/zeek__trunc__ip6-trunc.pcap", &[]),
];

/// Events of one capture, summarised for pinning.
fn summary(events: &[Event]) -> Summary {
    let mut s: Summary = events
        .iter()
        .map(|e| (e.kind.to_string(), e.trail.clone(), e.count))
        .collect();
    s.sort();
    s
}

fn owned(expected: Expected) -> Summary {
    expected
        .iter()
        .map(|(k, t, c)| (k.to_string(), t.to_string(), *c))
        .collect()
}

fn run_capture(trails: &Trails, path: &Path) -> (Vec<Event>, spoor_sensor::metrics::Snapshot) {
    let mut sensor = Sensor::new(trails);
    let problems = sensor.run_files(vec![path.to_path_buf()]);
    assert!(problems.is_empty(), "{problems:?}");
    let (events, snap) = sensor.finish();
    assert_eq!(snap.packet_panics, 0, "{}", path.display());
    (events, snap)
}

#[test]
fn themed_captures_produce_their_pinned_events() {
    let trails = Trails::csv(THEMED_TRAILS);
    let mut got = Vec::new();
    for theme in [
        "dns",
        "tls",
        "vlan",
        "ipv6",
        "encap",
        "linktype",
        "malformed",
    ] {
        for path in files_under(&data(&format!("pcaps/{theme}"))) {
            let (events, _) = run_capture(&trails, &path);
            let rel = path
                .strip_prefix(data("pcaps"))
                .unwrap()
                .display()
                .to_string();
            got.push((rel, summary(&events)));
        }
    }
    let want: Vec<(String, Summary)> = THEMED
        .iter()
        .map(|(rel, evs)| (rel.to_string(), owned(evs)))
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "captures added or removed under pcaps/"
    );
    for ((rel, events), (want_rel, want_events)) in got.iter().zip(&want) {
        assert_eq!(rel, want_rel);
        assert_eq!(events, want_events, "{rel}");
    }
}

/// The IP reputation lists of suricata-verify's iprep tests (`ip,category,score`) as
/// trails: the addresses as listed, the category as the info.
fn iprep_trails(test: &str) -> Trails {
    let list = std::fs::read_to_string(data(&format!("suricata-verify/tests/{test}/iprep.list")))
        .expect("iprep list");
    let mut csv = String::new();
    for line in list
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (addr, rest) = line.split_once(',').expect("ip,category,score");
        let category = rest.split(',').next().unwrap_or("0");
        csv.push_str(&format!(
            "{addr},iprep-category-{category} (malware),(static)\n"
        ));
    }
    Trails::csv(&csv)
}

#[test]
fn iprep_lists_match_the_iprep_capture() {
    let pcap = data("pcaps/iprep/suricata-verify__issue-4280-iprep__input.pcap");
    // 192.168.0.13 pings 4.4.4.4 and 8.8.8.8 (which answers), five times each, 1 s apart.
    let cases: [(&str, Expected); 3] = [
        ("iprep-04-bug-6834-any", &[("ip", "192.168.0.13", 3)]),
        (
            "iprep-05-bug-6834-both",
            &[("ip", "192.168.0.13", 3), ("ip", "8.8.8.8", 2)],
        ),
        // Listed as 192.168.0.13/24 and 8.8.8.8/8: trails name the network.
        (
            "iprep-09-bug-6834-both-cidr",
            &[("cidr", "192.168.0.0/24", 3), ("cidr", "8.0.0.0/8", 2)],
        ),
    ];
    for (test, want) in cases {
        let (events, snap) = run_capture(&iprep_trails(test), &pcap);
        let want = owned(want);
        assert_eq!(summary(&events), want, "{test}: {}", lines(&events));
        assert_eq!(events.len(), want.len());
        assert!(snap.decode_errors.is_empty());
    }
}

#[test]
fn malformed_captures_count_their_errors() {
    let trails = Trails::csv(THEMED_TRAILS);
    let mut got = Vec::new();
    for path in files_under(&data("pcaps/malformed")) {
        let (_, snap) = run_capture(&trails, &path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        got.push((name, snap.decode_errors));
    }
    // Only the cut headers are decode errors; the rest is damage above the transport
    // layer (DNS names, junk payloads) or a short capture, which the parsers absorb.
    let errors = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let want = vec![
        (
            "suricata-verify__dns-udp-junkrequest-first__input.pcap",
            errors(&[]),
        ),
        (
            "suricata-verify__dns__dns-truncated-rname__poc2.pcap",
            errors(&[]),
        ),
        (
            "suricata-verify__firewall__tcp-session-decode-malformed-ipv4__input.pcap",
            errors(&[]),
        ),
        (
            "suricata-verify__ipv4-truncated__truncated.pcap",
            errors(&[]),
        ),
        ("zeek__dns__dns-corrupt.pcap", errors(&[])),
        ("zeek__dns__dns-invalid-names.pcap", errors(&[])),
        (
            "zeek__trunc__ip4-trunc.pcap",
            errors(&[("truncated.ipv4", 1)]),
        ),
        (
            "zeek__trunc__ip6-trunc.pcap",
            errors(&[("truncated.ipv6", 1)]),
        ),
    ];
    let want: Vec<(String, BTreeMap<String, u64>)> =
        want.into_iter().map(|(n, e)| (n.to_string(), e)).collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// 10. Every shared capture with the full Maltrail trail set.

/// Maltrail's static trails and whitelist, compiled once per test binary (10-30 s in a
/// debug build).
fn full_trails() -> &'static Trails {
    static TRAILS: OnceLock<Trails> = OnceLock::new();
    TRAILS.get_or_init(|| {
        let t = Instant::now();
        let trails = Trails::compile(vec![
            CompileSource {
                name: "maltrail-static".into(),
                path: data("maltrail/trails/static"),
                format: FormatSpec::Maltrail,
                defaults: OriginDefaults {
                    reference: Some("(static)".into()),
                    ..OriginDefaults::default()
                },
                required: true,
            },
            CompileSource {
                name: "maltrail-whitelist".into(),
                path: data("maltrail/data/whitelist.txt"),
                format: FormatSpec::Whitelist,
                defaults: OriginDefaults::default(),
                required: true,
            },
        ]);
        eprintln!("full Maltrail trail set compiled in {:?}", t.elapsed());
        trails
    })
}

/// Every file under the shared capture folders that libpcap opens.
fn shared_capture_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["pcaps", "suricata-verify", "zeek-traces"] {
        files.extend(
            files_under(&data(dir))
                .into_iter()
                .filter(|p| pcap::Capture::from_file(p).is_ok()),
        );
    }
    files
}

#[test]
fn every_shared_capture_runs_with_the_full_trail_set() {
    let trails = full_trails();
    let start = Instant::now();
    let files = shared_capture_files();
    assert!(
        files.len() > 900,
        "only {} capture files found",
        files.len()
    );
    let (mut packets, mut events, mut damaged) = (0u64, 0usize, 0usize);
    for path in &files {
        let mut sensor = Sensor::new(trails);
        // A file may end in a damaged record (zeek keeps a few): what was read counts.
        damaged += sensor.run_files(vec![path.clone()]).len();
        let (found, snap) = sensor.finish();
        assert_eq!(snap.packet_panics, 0, "{}", path.display());
        for e in &found {
            assert!(
                e.count >= 1 && !e.trail.is_empty(),
                "{}: {e:?}",
                path.display()
            );
            assert!(!render_line(e).is_empty());
        }
        packets += snap.packets;
        events += found.len();
    }
    eprintln!(
        "{} captures ({damaged} ending in a damaged record), {packets} packets, {events} events in {:?}",
        files.len(),
        start.elapsed()
    );
    assert!(packets > 50_000, "only {packets} packets");
}

// ---------------------------------------------------------------------------------------
// 11. Fuzz-style: the whole packet path on mutated frames.

/// Fixed seed: the same mutants on every run, so a failure reproduces.
const FUZZ_SEED: u64 = 0x5eed_acce_97a0_0011;
/// Mutants per seed frame per link type.
const FUZZ_MUTANTS: usize = 30;
/// Longest frame fed: the headers and the start of DNS/TLS/HTTP are what matter.
const FUZZ_MAX_FRAME: usize = 512;
/// The loop stops early on a slow machine rather than time out.
const FUZZ_BUDGET: Duration = Duration::from_secs(4);

/// Captures whose frames seed the mutants: DNS over UDP and TCP, TLS, HTTP, tunnels,
/// fragments, several link types.
const FUZZ_CAPTURES: &[&str] = &[
    "pcaps/dns/suricata-verify__dns__dns-tcp-multirequest-buffer__dns-tcp-multirequest-buffer.pcap",
    "pcaps/dns/zeek__dns__mdns.pcap",
    "pcaps/tls/suricata-verify__bug-2646-01__input.pcap",
    "pcaps/tls/suricata-verify__bug-2430__backwards.pcap",
    "pcaps/encap/zeek__pppoe-over-qinq.pcap",
    "pcaps/encap/suricata-verify__bug-5633-gre-01__gre-udp.pcap",
    "pcaps/ipv6/zeek__ipv6-fragmented-dns.pcap",
    "pcaps/linktype/zeek__linux_dlt_sll2.pcap",
    "pcaps/dns/suricata-verify__dns__dns-udp-eve-log-srv__input.pcap",
    "maltrail/corpus/dlt_sll.pcap",
];

#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut XorShift, frame: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&frame[..frame.len().min(FUZZ_MAX_FRAME)]);
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 | 1 => {
                // Bit flips, mostly in the headers.
                if !out.is_empty() {
                    let span = if rng.below(2) == 0 {
                        out.len().min(80)
                    } else {
                        out.len()
                    };
                    let at = rng.below(span);
                    out[at] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let keep = rng.below(out.len() + 1);
                out.truncate(keep);
            }
            3 => {
                let at = rng.below(out.len() + 1);
                for _ in 0..1 + rng.below(8) {
                    out.insert(at, rng.next() as u8);
                }
            }
            4 => {
                // A length-ish extreme where a length or count field may sit.
                if !out.is_empty() {
                    let at = rng.below(out.len());
                    out[at] = [0x00, 0x01, 0x0f, 0x45, 0x60, 0x7f, 0x80, 0xc0, 0xff][rng.below(9)];
                }
            }
            _ => {
                let at = rng.below(out.len() + 1);
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at..end);
            }
        }
    }
}

/// Seed frames as (link type, bytes): shared captures, generator output, crafted frames.
fn fuzz_seeds() -> Vec<(i32, Vec<u8>)> {
    let mut seeds = Vec::new();
    for rel in FUZZ_CAPTURES {
        let (lt, frames) = read_capture(&data(rel)).unwrap_or_else(|| panic!("cannot read {rel}"));
        seeds.extend(frames.into_iter().map(|(_, f)| (lt, f)));
    }
    let mut generator = Generator::new(&GeneratorConfig::new(7, 300));
    while let Some(f) = generator.next_frame() {
        seeds.push((LINKTYPE_ETHERNET, f.data.to_vec()));
    }
    let stream = dns_tcp_stream(&[
        dns_query(1, "a.example", QTYPE_A),
        dns_response(
            1,
            "a.example",
            QTYPE_A,
            &[Rr::Cname("a.example", "b.example")],
        ),
    ]);
    seeds.push((
        LINKTYPE_ETHERNET,
        tcp_frame(ip(CLIENT), 1, ip(RESOLVER), 53, TCP_PSH | TCP_ACK, &stream),
    ));
    seeds.push((
        LINKTYPE_ETHERNET,
        tcp_frame(
            ip(CLIENT6),
            2,
            ip("2001:db8::443"),
            443,
            TCP_PSH,
            &client_hello("x.example"),
        ),
    ));
    seeds.push((
        LINKTYPE_ETHERNET,
        tcp_frame(
            ip(CLIENT),
            3,
            ip("203.0.113.80"),
            80,
            TCP_PSH,
            b"GET /a HTTP/1.1\r\nHost: h.example\r\nUser-Agent: x\r\n\r\n",
        ),
    ));
    seeds.extend(
        fragments(
            ip(CLIENT),
            ip(RESOLVER),
            IPPROTO_UDP,
            9,
            &udp(5, 53, &dns_query(2, "c.example", QTYPE_A)),
            16,
        )
        .into_iter()
        .map(|f| (LINKTYPE_ETHERNET, f)),
    );
    seeds
}

#[test]
fn mutated_frames_never_panic_the_pipeline() {
    let trails = full_trails();
    let seeds = fuzz_seeds();
    let start = Instant::now();
    // Own link type first, then others that read the same bytes differently.
    let others = [1, 0, 9, 101, 113, 228, 229, 276];
    let mut sensor = Sensor::new(trails);
    let mut rng = XorShift(FUZZ_SEED);
    let mut mutant = Vec::new();
    let mut fed = 0u64;
    let mut ts = T0.0;
    'outer: for (lt, frame) in &seeds {
        for as_lt in std::iter::once(*lt).chain(others.iter().copied().filter(|o| o != lt)) {
            if start.elapsed() > FUZZ_BUDGET {
                break 'outer;
            }
            for _ in 0..FUZZ_MUTANTS {
                mutate(&mut rng, frame, &mut mutant);
                // Time mostly moves forward, sometimes jumps (condensing, fragment and
                // flow expiry all run).
                ts += if rng.below(50) == 0 {
                    60_000_000
                } else {
                    1_000
                };
                sensor.feed(Micros(ts), as_lt, &mutant);
                fed += 1;
            }
        }
    }
    let (events, snap) = sensor.finish();
    eprintln!(
        "pipeline fuzz: {fed} mutants of {} seeds, {} events, {:?}",
        seeds.len(),
        events.len(),
        start.elapsed()
    );
    assert_eq!(snap.packet_panics, 0);
    assert_eq!(snap.packets, fed);
    assert!(fed > 5_000, "only {fed} mutants in the time budget");
}

/// A server certificate in clear (TLS ≤ 1.2) whose SHA-1 is a trail is reported. The
/// fingerprint is taken from a real capture by parsing it here, then listed as a trail.
#[test]
fn a_listed_server_certificate_is_reported() {
    use spoor_sensor::decode::Decoder;
    use spoor_sensor::proto::tls;

    let captures = [
        "pcaps/tls/suricata-verify__bug-2646-01__input.pcap",
        "pcaps/tls/suricata-verify__bug-2430__backwards.pcap",
        "pcaps/tls/suricata-verify__tls__tls-subjectaltname__input.pcap",
    ];
    let mut found: Option<(String, &str)> = None;
    'files: for rel in captures {
        let mut cap = pcap::Capture::from_file(support::data(rel)).unwrap();
        let linktype = cap.get_datalink().0;
        let mut decoder = Decoder::default();
        while let Ok(packet) = cap.next_packet() {
            let Ok(p) = decoder.decode(linktype, Micros(0), packet.data) else {
                continue;
            };
            if p.payload.first() != Some(&22) {
                continue;
            }
            let mut scratch = Vec::new();
            let Some(der) = tls::handshake_payload(p.payload, &mut scratch)
                .ok()
                .and_then(|h| tls::parse_server_flight(h).ok())
                .and_then(|f| f.first_certificate)
            else {
                continue;
            };
            let digest =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            found = Some((hex, rel));
            break 'files;
        }
    }
    let (sha1, rel) = found.expect("a TLS capture with a certificate in one segment");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("certs.txt");
    std::fs::write(&list, format!("{sha1}\n")).unwrap();
    let trails = Trails::compile(vec![CompileSource {
        name: "certs".into(),
        path: list,
        format: FormatSpec::CertSha1,
        defaults: OriginDefaults {
            info: Some("bad cert (malware)".into()),
            ..OriginDefaults::default()
        },
        required: true,
    }]);
    let mut sensor = Sensor::new(&trails);
    assert!(sensor.run_files(vec![support::data(rel)]).is_empty());
    let (events, _) = sensor.finish();
    let certs: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Cert)
        .collect();
    // Every handshake presenting the certificate counts; repeats within the condense
    // window fold into one event each.
    assert!(!certs.is_empty(), "{events:?}");
    for cert in &certs {
        assert_eq!(cert.trail, sha1);
        assert_eq!(cert.info, "bad cert (malware)");
        let fingerprint = cert
            .context
            .tls
            .as_ref()
            .and_then(|t| t.cert_sha1.as_deref());
        assert_eq!(fingerprint, Some(sha1.as_str()));
        assert_eq!(cert.offender, Some(cert.src), "the server is the offender");
        assert_eq!(cert.src_port, Some(443));
    }
}
