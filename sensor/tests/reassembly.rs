//! Messages that span segments and packets: HTTP request heads over several TCP segments,
//! ClientHellos over two, server certificates over many, QUIC ClientHellos in Initial
//! packets (v1 and v2, real captures with CRYPTO frames across packets), the reassembly
//! bounds under a flood, and hostile segment orders.
//!
//! Expected fingerprints come from outside this code: JA3 hashes and certificate SHA-1s
//! from suricata-verify's test expectations, JA4/JA3 of the crafted hello worked out by
//! hand (hashes by Python's hashlib), QUIC server names from an independent Python decoder.

#[allow(dead_code)] // helpers shared with the acceptance tests; this file uses some
mod support;

use std::net::IpAddr;
use std::sync::Arc;

use spoor_core::{Event, EventKind, Micros, Proto};
use spoor_feeds::compile::CompileSource;
use spoor_feeds::config::OriginDefaults;
use spoor_feeds::format::FormatSpec;
use spoor_sensor::detect::{Detector, PacketView};
use spoor_sensor::flow::{DEFAULT_FLOW_TIMEOUT_MICROS, FlowTable};
use spoor_sensor::heuristics::Heuristics;
use spoor_sensor::proto::tls;
use spoor_sensor::reassembly::ReassemblyLimits;
use support::{
    Sensor, T0, TCP_ACK, TCP_PSH, Trails, client_hello, data, eth, ip, ipv4, ipv6, tcp, udp_frame,
};

const CLIENT: &str = "10.0.0.7";
const SERVER: &str = "198.51.100.20";
const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;

/// One TCP segment with an explicit sequence number, in IPv4 or IPv6 over Ethernet.
fn seg(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (s, d) = (ip(src), ip(dst));
    let l4 = tcp(sport, dport, seq, flags, payload);
    eth(&if s.is_ipv6() {
        ipv6(s, d, 6, &l4)
    } else {
        ipv4(s, d, 6, &l4)
    })
}

/// Client → server segments carrying `parts` back to back from `seq`.
fn client_segments(parts: &[&[u8]], seq: u32) -> Vec<Vec<u8>> {
    let mut at = seq;
    parts
        .iter()
        .map(|p| {
            let f = seg(CLIENT, 40000, SERVER, 80, at, TCP_PSH | TCP_ACK, p);
            at = at.wrapping_add(p.len() as u32);
            f
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    let mut k: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    k.sort_by_key(|k| format!("{k:?}"));
    k
}

fn plain_list(format: FormatSpec, lines: &str, info: &str) -> Trails {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.txt");
    std::fs::write(&path, lines).unwrap();
    let trails = Trails::compile(vec![CompileSource {
        name: "list".into(),
        path,
        format,
        defaults: OriginDefaults {
            info: Some(info.into()),
            ..OriginDefaults::default()
        },
        required: true,
    }]);
    drop(dir);
    trails
}

const REQUEST: &[u8] = b"GET /gate.php?id=7 HTTP/1.1\r\nHost: evil-host.example\r\n\
    User-Agent: Mozilla/5.0 (X11)\r\nAccept: */*\r\n\r\n";

fn http_trails() -> Trails {
    Trails::csv(
        "evil-host.example,malware (test),(static)\n\
         evil-host.example/gate.php,malware url (test),(static)\n",
    )
}

#[test]
fn http_request_split_over_three_segments_hits_host_and_url() {
    let trails = http_trails();
    // Cut inside the request line, then inside the Host header.
    let parts: [&[u8]; 3] = [&REQUEST[..9], &REQUEST[9..40], &REQUEST[40..]];
    let mut sensor = Sensor::new(&trails);
    sensor.feed_ethernet(&client_segments(&parts, 1_000));
    let (events, snapshot) = sensor.finish();
    assert_eq!(
        kinds(&events),
        [EventKind::Host, EventKind::Url],
        "{events:?}"
    );
    for e in &events {
        let http = e.context.http.as_ref().unwrap();
        assert_eq!(http.host, "evil-host.example");
        assert_eq!(http.uri, "/gate.php?id=7");
        assert_eq!(http.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
        assert_eq!(e.offender, Some(ip(SERVER)));
    }
    assert_eq!(snapshot.http_requests, 1, "one request, read once");
}

#[test]
fn http_segments_out_of_order_retransmitted_and_overlapping() {
    let trails = http_trails();
    let seq = u32::MAX - 20; // the sequence numbers wrap inside the request
    let at = |n: usize| seq.wrapping_add(n as u32);
    let frames = vec![
        seg(CLIENT, 40000, SERVER, 80, at(0), TCP_ACK, &REQUEST[..20]),
        // The third piece before the second, then the first again, then a retransmission
        // overlapping both neighbours with different bytes (the first bytes stay).
        seg(CLIENT, 40000, SERVER, 80, at(50), TCP_ACK, &REQUEST[50..]),
        seg(CLIENT, 40000, SERVER, 80, at(0), TCP_ACK, &REQUEST[..20]),
        seg(CLIENT, 40000, SERVER, 80, at(10), TCP_ACK, &[b'X'; 10]),
        seg(CLIENT, 40000, SERVER, 80, at(15), TCP_ACK, &REQUEST[15..55]),
    ];
    let mut sensor = Sensor::new(&trails);
    sensor.feed_ethernet(&frames);
    let (events, _) = sensor.finish();
    assert_eq!(
        kinds(&events),
        [EventKind::Host, EventKind::Url],
        "{events:?}"
    );
    assert_eq!(
        events[0].context.http.as_ref().unwrap().uri,
        "/gate.php?id=7"
    );
}

#[test]
fn a_fin_reads_what_came_and_an_unfinished_request_is_not_lost() {
    let trails = http_trails();
    // The header block never ends: the FIN makes the sensor read what it has.
    let head = &REQUEST[..REQUEST.len() - 2];
    let frames = vec![
        seg(CLIENT, 40001, SERVER, 80, 5, TCP_ACK, &head[..30]),
        seg(
            CLIENT,
            40001,
            SERVER,
            80,
            35,
            TCP_ACK | TCP_FIN,
            &head[30..],
        ),
    ];
    let mut sensor = Sensor::new(&trails);
    sensor.feed_ethernet(&frames);
    let (events, _) = sensor.finish();
    assert_eq!(
        kinds(&events),
        [EventKind::Host, EventKind::Url],
        "{events:?}"
    );
}

#[test]
fn a_message_whole_in_one_segment_opens_no_stream() {
    let trails = http_trails();
    let mut d = detector(&trails, ReassemblyLimits::default());
    let mut events = Vec::new();
    let hello = client_hello("whole.example");
    for (payload, port) in [(REQUEST, 80), (&hello[..], 443)] {
        d.inspect(
            &view(ip(CLIENT), 40000, ip(SERVER), port, 1, payload),
            &mut |e| events.push(e),
        );
    }
    assert_eq!(kinds(&events), [EventKind::Host, EventKind::Url]);
    assert_eq!(d.reassembly().counters.opened, 0);
    assert!(d.reassembly().is_empty());
}

/// The crafted hello's fingerprints, worked out by hand: TLS 1.3 (supported_versions), SNI,
/// 3 suites, 6 extensions, ALPN h2; sorted suites `1301,1302,c02f`; sorted extensions
/// without SNI and ALPN `000a,000b,000d,002b`; signature algorithms `0403,0804`.
const HELLO_JA4: &str = "t13d0306h2_40b44b994229_fb71836bce29";
/// MD5 of `771,4865-4866-49199,0-10-11-13-16-43,29-23,0`.
const HELLO_JA3: &str = "c9e264cb3675678ee364e81f3b6da7ad";

#[test]
fn client_hello_split_over_two_segments_matches_sni_and_ja4() {
    let hello = client_hello("c2.evil-tls.example");
    let dir = tempfile::tempdir().unwrap();
    let domains = dir.path().join("domains.csv");
    std::fs::write(&domains, "evil-tls.example,malware (test),(static)\n").unwrap();
    let ja4s = dir.path().join("ja4.txt");
    std::fs::write(&ja4s, format!("{HELLO_JA4}\n")).unwrap();
    let source = |name: &str, path, format| CompileSource {
        name: name.into(),
        path,
        format,
        defaults: OriginDefaults {
            info: Some("bad client (malware)".into()),
            ..OriginDefaults::default()
        },
        required: true,
    };
    let trails = Trails::compile(vec![
        source("domains", domains, FormatSpec::MaltrailCsv),
        source("ja4", ja4s, FormatSpec::Ja4),
    ]);
    let mut sensor = Sensor::new(&trails);
    let cut = 60; // inside the cipher suites
    let frames = vec![
        seg(CLIENT, 40100, SERVER, 443, 77, TCP_ACK, &hello[..cut]),
        seg(
            CLIENT,
            40100,
            SERVER,
            443,
            77 + cut as u32,
            TCP_ACK | TCP_PSH,
            &hello[cut..],
        ),
    ];
    sensor.feed_ethernet(&frames);
    let (events, snapshot) = sensor.finish();
    assert_eq!(
        kinds(&events),
        [EventKind::Ja4, EventKind::Sni],
        "{events:?}"
    );
    for e in &events {
        let t = e.context.tls.as_ref().unwrap();
        assert_eq!(t.sni.as_deref(), Some("c2.evil-tls.example"));
        assert_eq!(t.ja4.as_deref(), Some(HELLO_JA4));
        assert_eq!(t.ja3.as_deref(), Some(HELLO_JA3));
    }
    let ja4 = events.iter().find(|e| e.kind == EventKind::Ja4).unwrap();
    assert_eq!(ja4.trail, HELLO_JA4);
    assert_eq!(
        ja4.offender,
        Some(ip(CLIENT)),
        "the client is the JA4 offender"
    );
    assert_eq!(snapshot.tls_client_hellos, 1);
}

/// A TLS 1.2 server flight: ServerHello, Certificate (`leaf`, then an issuer), and
/// ServerHelloDone, in records of at most `record` octets.
fn server_flight(leaf: &[u8], record: usize) -> Vec<u8> {
    let mut hs = Vec::new();
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0x33; 32]);
    sh.push(0);
    sh.extend_from_slice(&[0xc0, 0x2f, 0, 0, 0]);
    hs.push(2);
    hs.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
    hs.extend(sh);
    let issuer = vec![0x30; 1200];
    let mut list = Vec::new();
    for c in [leaf, &issuer[..]] {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(list);
    hs.push(11);
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    hs.extend_from_slice(&[14, 0, 0, 0]);
    let mut stream = Vec::new();
    for part in hs.chunks(record) {
        stream.extend_from_slice(&[22, 3, 3]);
        stream.extend_from_slice(&(part.len() as u16).to_be_bytes());
        stream.extend_from_slice(part);
    }
    stream
}

fn sha1_hex(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn certificate_over_several_records_and_segments_hits_its_trail() {
    let leaf: Vec<u8> = (0..2600u32).map(|i| (i * 31 + 7) as u8).collect();
    let sha1 = sha1_hex(&leaf);
    let trails = plain_list(
        FormatSpec::CertSha1,
        &format!("{sha1}\n"),
        "bad cert (malware)",
    );
    let stream = server_flight(&leaf, 1000);
    // 1448-octet segments (an Ethernet MSS with timestamps), the second one arriving last.
    let segs: Vec<(u32, &[u8])> = stream
        .chunks(1448)
        .enumerate()
        .map(|(i, c)| (9_000 + (i * 1448) as u32, c))
        .collect();
    assert!(segs.len() >= 3);
    let mut order: Vec<usize> = (0..segs.len()).collect();
    order.swap(1, 2);
    let frames: Vec<Vec<u8>> = order
        .iter()
        .map(|&i| seg(SERVER, 443, CLIENT, 40200, segs[i].0, TCP_ACK, segs[i].1))
        .collect();
    let mut sensor = Sensor::new(&trails);
    sensor.feed_ethernet(&frames);
    let (events, _) = sensor.finish();
    assert_eq!(kinds(&events), [EventKind::Cert], "{events:?}");
    let e = &events[0];
    assert_eq!(e.trail, sha1);
    assert_eq!(e.offender, Some(ip(SERVER)));
    assert_eq!(
        e.context.tls.as_ref().unwrap().cert_sha1.as_deref(),
        Some(sha1.as_str())
    );
}

/// Real captures whose server certificates span segments, with the fingerprints
/// suricata-verify expects for them.
#[test]
fn certificates_in_real_captures_span_segments() {
    let cases = [
        (
            "suricata-verify/tests/tls/tls-fingerprint-alert/input.pcap",
            "90:86:a4:3b:f5:cf:1b:2e:4e:f7:97:96:f9:de:ba:b9:66:35:86:3f",
        ),
        (
            "suricata-verify/tests/tls/tls-glupteba/input.pcap",
            "e9:a0:69:50:ba:18:dc:ac:d3:a7:fe:58:22:4a:1f:42:5b:bc:96:b0",
        ),
    ];
    for (rel, fingerprint) in cases {
        let sha1 = fingerprint.replace(':', "");
        let trails = plain_list(
            FormatSpec::CertSha1,
            &format!("{sha1}\n"),
            "bad cert (malware)",
        );
        let mut sensor = Sensor::new(&trails);
        assert!(sensor.run_files(vec![data(rel)]).is_empty());
        let (events, _) = sensor.finish();
        let certs: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Cert)
            .collect();
        assert!(!certs.is_empty(), "{rel}: {events:?}");
        assert!(certs.iter().all(|e| e.trail == sha1), "{rel}");
    }
}

/// suricata-verify's capture of a ClientHello cut at an MTU of 300 octets.
#[test]
fn client_hello_fragmented_at_mtu_300_is_read() {
    let trails = Trails::csv("google.com,test (malware),(static)\n");
    let mut sensor = Sensor::new(&trails);
    let rel = "suricata-verify/tests/tls/tls-client-hello-frag-01/dump_mtu300.pcap";
    assert!(sensor.run_files(vec![data(rel)]).is_empty());
    let (events, _) = sensor.finish();
    let sni: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Sni).collect();
    assert_eq!(sni.len(), 1, "{events:?}");
    assert_eq!(
        sni[0].context.tls.as_ref().unwrap().sni.as_deref(),
        Some("www.google.com")
    );
}

/// JA3 against the hashes suricata-verify expects for its TLS 1.3 draft captures: the
/// ClientHellos are read with the sensor's own decoder and parser.
#[test]
fn ja3_matches_suricata_verify() {
    use spoor_sensor::decode::Decoder;
    let cases = [
        (
            "tls13-draft14/tls13_draft14.pcap",
            "65825469c473e48f3ee2571129256ab0",
        ),
        (
            "tls13-draft18/tls13_draft18.pcap",
            "23d254f72096d25c350e4a4a792f4948",
        ),
        (
            "tls13-draft19/tls13_draft19.pcap",
            "0e870cb29dd59424064948532781a7f6",
        ),
        (
            "tls13-draft22/tls13_draft22.pcap",
            "786468211b4d23f9b725987b0de9d090",
        ),
        (
            "tls13-draft23/tls13_draft23.pcap",
            "0558cf38ebac58d332d7f39308fcd006",
        ),
        (
            "tls13-draft28/tls13_draft28.pcap",
            "d00857e0c8e7a7f35e446508c6233460",
        ),
    ];
    for (rel, want) in cases {
        let path = data(&format!("suricata-verify/tests/tls/{rel}"));
        let (linktype, frames) = support::read_capture(&path).unwrap();
        let mut decoder = Decoder::default();
        let mut hashes = Vec::new();
        for (ts, frame) in &frames {
            let Ok(p) = decoder.decode(linktype, *ts, frame) else {
                continue;
            };
            let mut scratch = Vec::new();
            if let tls::Needed::Complete { .. } = tls::client_hello_needs(p.payload)
                && let Ok(msg) = tls::handshake_payload(p.payload, &mut scratch)
                && let Ok(hello) = tls::parse_client_hello(msg)
            {
                hashes.push(tls::ja3(&hello));
            }
        }
        assert!(hashes.iter().any(|h| h == want), "{rel}: {hashes:?}");
    }
}

/// The RFC test vectors as UDP datagrams: v1 (RFC 9001 A.2) and v2 (RFC 9369 A.2) client
/// Initials naming `example.com`.
fn rfc_initial(v2: bool) -> Vec<u8> {
    let hex = if v2 {
        include_str!("../src/proto/testdata/rfc9369_a2_client_initial.hex")
    } else {
        include_str!("../src/proto/testdata/rfc9001_a2_client_initial.hex")
    };
    let hex: String = hex.chars().filter(char::is_ascii_hexdigit).collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn quic_initial_sni_v1_and_v2() {
    let trails = Trails::csv("example.com,quic test (malware),(static)\n");
    for v2 in [false, true] {
        let mut sensor = Sensor::new(&trails);
        let frame = udp_frame(ip(CLIENT), 50000, ip(SERVER), 443, &rfc_initial(v2));
        sensor.feed_ethernet(&[frame]);
        let (events, snapshot) = sensor.finish();
        assert_eq!(kinds(&events), [EventKind::Sni], "v2 {v2}: {events:?}");
        let e = &events[0];
        assert_eq!(e.proto, Proto::UDP);
        assert_eq!(e.offender, Some(ip(SERVER)));
        let t = e.context.tls.as_ref().unwrap();
        assert_eq!(t.sni.as_deref(), Some("example.com"));
        // Worked out by hand from the RFC's ClientHello (see proto::quic's unit test).
        assert_eq!(
            t.ja4.as_deref(),
            Some("q13d0211an_62ed6f6ca7ad_4d634acda6c0")
        );
        assert_eq!(snapshot.tls_client_hellos, 1);
    }
}

/// Real QUIC captures (Zeek's test traces): Chromium splits its ClientHello into many
/// CRYPTO frames, some across two Initial packets; curl and Firefox send one. Server names
/// from an independent decoder (Python `cryptography`).
#[test]
fn quic_captures_yield_their_server_names() {
    let cases = [
        (
            "chromium-115.0.5790.110-api-cirrus-com.pcap",
            "api.cirrus-ci.com",
        ),
        ("curl-8.1.2-dev-http3-www-google-de.pcap", "www.google.de"),
        (
            "firefox-102.13.0esr-blog-cloudflare-com.pcap",
            "blog.cloudflare.com",
        ),
        ("quic-39264-rand.pcap", "tr6.snapchat.com"),
        (
            "quic-multiple-initial-fragmented-crypto.pcap",
            "googleads.g.doubleclick.net",
        ),
        ("quic_win11_firefox_google.pcap", "www.google.com"),
    ];
    for (file, name) in cases {
        let trails = Trails::csv(&format!("{name},quic test (malware),(static)\n"));
        let mut sensor = Sensor::new(&trails);
        let path = data(&format!("zeek-traces/Traces/quic/{file}"));
        assert!(sensor.run_files(vec![path]).is_empty(), "{file}");
        let (events, _) = sensor.finish();
        let sni: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Sni).collect();
        assert!(!sni.is_empty(), "{file}: {events:?}");
        for e in sni {
            let t = e.context.tls.as_ref().unwrap();
            assert_eq!(t.sni.as_deref(), Some(name), "{file}");
            assert!(
                t.ja4.as_deref().is_some_and(|j| j.starts_with("q13")),
                "{file}"
            );
        }
    }
}

fn detector(trails: &Trails, limits: ReassemblyLimits) -> Detector {
    Detector::new(
        "sensor1".into(),
        Arc::clone(&trails.handle),
        FlowTable::new(1024, DEFAULT_FLOW_TIMEOUT_MICROS),
        Arc::new(Heuristics::default()),
        Vec::new(),
    )
    .with_reassembly(limits)
}

fn view<'a>(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    payload: &'a [u8],
) -> PacketView<'a> {
    PacketView {
        ts: T0,
        src,
        dst,
        proto: Proto::TCP,
        src_port: sport,
        dst_port: dport,
        tcp: Some(spoor_sensor::decode::TcpInfo {
            flags: spoor_sensor::decode::TcpFlags::ACK,
            seq,
            ack: 1,
            window: 512,
        }),
        payload,
    }
}

/// A flood of half-open messages (the first segment of ClientHellos and request heads that
/// never finish) from many sources: the budget is reached, new streams are refused and
/// counted, memory stays under the budget, and a stream that was admitted still completes.
#[test]
fn a_flood_of_half_open_streams_stays_within_the_budget() {
    let trails = http_trails();
    let limits = ReassemblyLimits {
        memory: 1024 * 1024,
        ..ReassemblyLimits::default()
    };
    let mut d = detector(&trails, limits);
    let hello = client_hello("flood.example");
    let server = ip(SERVER);
    let mut emitted = Vec::new();
    for i in 0..200_000u32 {
        let src = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let payload: &[u8] = if i % 2 == 0 {
            &hello[..50]
        } else {
            &REQUEST[..30]
        };
        d.inspect(
            &view(src, 20_000 + (i % 40_000) as u16, server, 443, i, payload),
            &mut |e| emitted.push(e),
        );
        assert!(d.reassembly().reserved() <= limits.memory);
    }
    let r = d.reassembly();
    assert!(r.allocated() <= limits.memory, "{} bytes", r.allocated());
    // 1 MiB / 8 KiB per client stream (the source ports avoid the DNS ports).
    assert_eq!(r.len(), 128);
    assert_eq!(r.counters.opened, 128);
    assert_eq!(r.counters.saturated, 200_000 - 128);
    assert!(emitted.is_empty());

    // An admitted request finishing still alerts; its stream is freed.
    let first = IpAddr::from([10, 0, 0, 1]);
    d.inspect(
        &view(first, 20_001, server, 443, 1 + 30, &REQUEST[30..]),
        &mut |e| emitted.push(e),
    );
    assert_eq!(kinds(&emitted), [EventKind::Host, EventKind::Url]);
    assert_eq!(d.reassembly().len(), 127);
    assert_eq!(d.reassembly().counters.completed, 1);
}

/// Idle streams give way after the timeout (packet time); a RST ends both directions.
#[test]
fn idle_streams_expire_and_resets_close() {
    let trails = http_trails();
    let limits = ReassemblyLimits {
        memory: 64 * 1024,
        timeout_micros: 5_000_000,
        ..ReassemblyLimits::default()
    };
    let mut d = detector(&trails, limits);
    let server = ip(SERVER);
    let client = ip(CLIENT);
    for port in 0..8u16 {
        d.inspect(
            &view(client, 30000 + port, server, 80, 1, &REQUEST[..20]),
            &mut |_| {},
        );
    }
    assert_eq!(d.reassembly().len(), 8);
    let mut later = view(client, 31000, server, 80, 1, &REQUEST[..20]);
    later.ts = Micros(T0.0 + 6_000_000);
    d.inspect(&later, &mut |_| {});
    assert_eq!(d.reassembly().counters.expired, 8);
    assert_eq!(d.reassembly().len(), 1);
    // The server resets the connection: the client's stream goes.
    let mut rst = view(server, 80, client, 31000, 1, &[]);
    rst.tcp.as_mut().unwrap().flags = spoor_sensor::decode::TcpFlags(TCP_RST);
    d.inspect(&rst, &mut |_| {});
    assert_eq!(d.reassembly().len(), 0);
    assert_eq!(d.reassembly().counters.closed, 1);
}

/// Every order of a request's segments, with duplicates and overlaps, from a seeded
/// generator: never a panic, and the request is read whenever its first segment opens the
/// stream and every byte arrives.
#[test]
fn shuffled_duplicated_and_overlapping_segments() {
    let trails = http_trails();
    let mut rng = 0x5eed_u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut read = 0;
    for round in 0..300 {
        // Random cuts, a few duplicates and overlapping re-sends.
        let mut cuts: Vec<usize> = (0..4).map(|_| 1 + next(REQUEST.len() - 1)).collect();
        cuts.push(0);
        cuts.push(REQUEST.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        for _ in 0..3 {
            let s = next(REQUEST.len());
            let e = (s + 1 + next(30)).min(REQUEST.len());
            pieces.push((s, e));
        }
        for i in (1..pieces.len()).rev() {
            pieces.swap(i, next(i + 1));
        }
        // The stream opens on the segment that starts the request.
        let first = pieces.iter().position(|&(s, _)| s == 0).unwrap();
        let p0 = pieces.remove(first);
        pieces.insert(0, p0);
        let base = 1_000 * round as u32;
        let frames: Vec<Vec<u8>> = pieces
            .iter()
            .map(|&(s, e)| {
                seg(
                    CLIENT,
                    20000 + round as u16,
                    SERVER,
                    80,
                    base + s as u32,
                    TCP_ACK,
                    &REQUEST[s..e],
                )
            })
            .collect();
        let mut sensor = Sensor::new(&trails);
        sensor.feed_ethernet(&frames);
        let (events, _) = sensor.finish();
        if !events.is_empty() {
            assert_eq!(
                kinds(&events),
                [EventKind::Host, EventKind::Url],
                "round {round}"
            );
            read += 1;
        }
    }
    // A piece that starts the request but ends inside the request line may be whole
    // enough only with the rest; every round delivers every byte, so all are read.
    assert_eq!(read, 300);
}
