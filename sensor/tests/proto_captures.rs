//! The protocol parsers against real captures from `shared/data/pcaps`.
//!
//! Frames are sliced here with a deliberately minimal Ethernet/IP/UDP/TCP walk (no
//! reassembly beyond concatenating a flow's payloads in capture order); the sensor's real
//! decoder lives elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spoor_sensor::proto::{dns, http, tls};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pcaps");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum L4 {
    Udp,
    Tcp,
}

/// (src, sport, dst, dport) as text: enough to tell flows apart in a test.
type FlowKey = (L4, String, u16, String, u16);

struct Segment {
    key: FlowKey,
    /// TCP sequence number (0 for UDP).
    seq: u32,
    payload: Vec<u8>,
}

fn pcap_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(PCAPS).join(dir))
        .unwrap_or_else(|e| panic!("{PCAPS}/{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    files
}

fn segments(path: &Path) -> Vec<Segment> {
    let mut cap = pcap::Capture::from_file(path).unwrap();
    let link = cap.get_datalink().0;
    let mut out = Vec::new();
    while let Ok(packet) = cap.next_packet() {
        let data = packet.data;
        let ip = match link {
            1 => ethernet(data),
            0 => data.get(4..),
            // LINKTYPE_RAW arrives as DLT_RAW, which is 12 or 14 depending on the platform.
            12 | 14 | 101 => Some(data),
            113 => data.get(16..),
            _ => None,
        };
        if let Some(seg) = ip.and_then(ip_packet) {
            out.push(seg);
        }
    }
    out
}

fn ethernet(frame: &[u8]) -> Option<&[u8]> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut at = 14;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([*frame.get(at + 2)?, *frame.get(at + 3)?]);
        at += 4;
    }
    matches!(ethertype, 0x0800 | 0x86dd)
        .then(|| frame.get(at..))
        .flatten()
}

fn ip_packet(ip: &[u8]) -> Option<Segment> {
    let (src, dst, proto, l4) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let src = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
            let dst = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
            (
                src.to_string(),
                dst.to_string(),
                *ip.get(9)?,
                ip.get(ihl..total.min(ip.len()))?,
            )
        }
        6 => {
            let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?);
            let dst = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(24..40)?).ok()?);
            (src.to_string(), dst.to_string(), *ip.get(6)?, ip.get(40..)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    let (kind, seq, payload) = match proto {
        17 => (L4::Udp, 0, l4.get(8..)?),
        6 => {
            let seq = u32::from_be_bytes(<[u8; 4]>::try_from(l4.get(4..8)?).ok()?);
            (L4::Tcp, seq, l4.get(usize::from(l4.get(12)? >> 4) * 4..)?)
        }
        _ => return None,
    };
    Some(Segment {
        key: (kind, src, sport, dst, dport),
        seq,
        payload: payload.to_vec(),
    })
}

/// TCP payloads per flow direction, ordered by sequence number (one capture is stored
/// backwards), retransmissions of the same sequence number dropped. No wrap handling: the
/// test captures are short.
fn tcp_streams(segs: &[Segment]) -> BTreeMap<FlowKey, Vec<u8>> {
    let mut flows: BTreeMap<FlowKey, BTreeMap<u32, &[u8]>> = BTreeMap::new();
    for s in segs
        .iter()
        .filter(|s| s.key.0 == L4::Tcp && !s.payload.is_empty())
    {
        flows
            .entry(s.key.clone())
            .or_default()
            .entry(s.seq)
            .or_insert(&s.payload);
    }
    flows
        .into_iter()
        .map(|(k, parts)| (k, parts.into_values().flatten().copied().collect()))
        .collect()
}

fn is_dns_port(key: &FlowKey) -> bool {
    [53, 5353, 5355].contains(&key.2) || [53, 5353, 5355].contains(&key.4)
}

#[test]
fn dns_captures_parse() {
    let mut total = 0;
    for path in pcap_files("dns") {
        let segs = segments(&path);
        let mut messages = 0;
        for s in segs
            .iter()
            .filter(|s| s.key.0 == L4::Udp && is_dns_port(&s.key))
        {
            let msg = dns::parse_message(&s.payload)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(dns::is_probably_dns(&s.payload), "{}", path.display());
            assert_eq!(msg.anomalies.bad_name, None, "{}", path.display());
            let _ = msg.questions().count() + msg.answers().count();
            messages += 1;
        }
        for (key, stream) in tcp_streams(&segs).iter().filter(|(k, _)| is_dns_port(k)) {
            for part in dns::split_tcp_messages(stream) {
                let part = part.unwrap_or_else(|e| panic!("{}: {key:?}: {e}", path.display()));
                let msg = dns::parse_message(part).unwrap();
                assert!(msg.first_question().is_some(), "{}", path.display());
                messages += 1;
            }
        }
        assert!(messages > 0, "no DNS in {}", path.display());
        total += messages;
    }
    assert!(total > 10);
}

#[test]
fn dns_over_tcp_multirequest_yields_several_messages() {
    let path = Path::new(PCAPS).join(
        "dns/suricata-verify__dns__dns-tcp-multirequest-buffer__dns-tcp-multirequest-buffer.pcap",
    );
    let streams = tcp_streams(&segments(&path));
    let to_server = streams
        .iter()
        .find(|(k, _)| k.4 == 53)
        .expect("a client stream")
        .1;
    let messages: Vec<_> = dns::split_tcp_messages(to_server)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(messages.len() >= 3, "{} messages", messages.len());
    for m in messages {
        let msg = dns::parse_message(m).unwrap();
        assert!(!msg.header.is_response());
        assert!(!msg.first_question().unwrap().name.is_empty());
    }
}

#[test]
fn mdns_capture_parses() {
    let path = Path::new(PCAPS).join("dns/zeek__dns__mdns.pcap");
    let mut names = 0;
    for s in segments(&path)
        .iter()
        .filter(|s| s.key.4 == 5353 || s.key.2 == 5353)
    {
        let msg = dns::parse_message(&s.payload).unwrap();
        names += msg.questions().count() + msg.answers().count();
    }
    assert!(names > 0);
}

#[test]
fn malformed_dns_captures_do_not_panic() {
    for path in pcap_files("malformed") {
        for s in segments(&path) {
            if let Ok(msg) = dns::parse_message(&s.payload) {
                let _ = msg.questions().count() + msg.answers().count();
            }
            let _ = dns::is_probably_dns(&s.payload);
            for part in dns::split_tcp_messages(&s.payload).flatten() {
                let _ = dns::parse_message(part);
            }
            let _ = http::parse_request(&s.payload);
            let _ = tls::client_hello_needs(&s.payload);
        }
    }
}

/// Skips an HTTP proxy's `CONNECT` request or its response: TLS starts after the head
/// (bug-2430 is TLS through a proxy on port 8080).
fn after_proxy_connect(stream: &[u8]) -> &[u8] {
    match (http::parse_request(stream), http::parse_response(stream)) {
        (Ok(req), _) if req.method == "CONNECT" && req.complete => &stream[req.head_len..],
        (_, Ok(resp)) if resp.complete => &stream[resp.head_len..],
        _ => stream,
    }
}

/// Client hellos found in a capture: (sni, ja4).
fn client_hellos(path: &Path) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    let mut scratch = Vec::new();
    for stream in tcp_streams(&segments(path)).values() {
        let stream = after_proxy_connect(stream);
        if !matches!(
            tls::client_hello_needs(stream),
            tls::Needed::Complete { .. }
        ) {
            continue;
        }
        let payload = tls::handshake_payload(stream, &mut scratch).unwrap();
        let hello = tls::parse_client_hello(payload).unwrap();
        found.push((
            hello.sni.map(|n| n.to_string()),
            tls::ja4(&hello, tls::Transport::Tcp),
        ));
    }
    found
}

#[test]
fn tls_bug_2646_sni() {
    let path = Path::new(PCAPS).join("tls/suricata-verify__bug-2646-01__input.pcap");
    let hellos = client_hellos(&path);
    assert!(
        hellos
            .iter()
            .any(|(sni, _)| sni.as_deref() == Some("raw.githubusercontent.com")),
        "{hellos:?}"
    );
    for (_, ja4) in &hellos {
        assert_eq!(ja4.len(), 36, "{ja4}");
    }
}

#[test]
fn tls_captures_parse() {
    let mut scratch = Vec::new();
    let mut certs = 0;
    for path in pcap_files("tls") {
        assert!(
            !client_hellos(&path).is_empty(),
            "no ClientHello in {}",
            path.display()
        );
        for stream in tcp_streams(&segments(&path)).values() {
            let stream = after_proxy_connect(stream);
            if let Ok(payload) = tls::handshake_payload(stream, &mut scratch)
                && let Ok(flight) = tls::parse_server_flight(payload)
                && let Some(der) = flight.first_certificate
            {
                assert_eq!(der.first(), Some(&0x30), "DER SEQUENCE");
                certs += 1;
            }
        }
    }
    assert!(certs > 0, "no server certificate found in the TLS captures");
}

#[test]
fn http_captures_parse() {
    let mut requests = 0;
    for path in pcap_files("http") {
        for stream in tcp_streams(&segments(&path)).values() {
            if let Ok(req) = http::parse_request(stream) {
                assert!(!req.method.is_empty());
                requests += 1;
            }
        }
    }
    assert!(requests > 0);
}
