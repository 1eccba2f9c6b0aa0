//! Decode real captures: every shared capture reads without a panic, and the themed ones
//! decode to the facts their names promise.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use spoor_core::{Micros, Proto};
use spoor_sensor::decode::{DecodeError, Decoder, Layer, TcpFlags};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// One capture file read into memory: link type and (timestamp, frame) pairs.
struct Capture {
    linktype: i32,
    frames: Vec<(Micros, Vec<u8>)>,
}

fn read(path: &Path) -> Option<Capture> {
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let linktype = cap.get_datalink().0;
    let mut frames = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => frames.push((
                Micros::from_secs_micros(p.header.ts.tv_sec, p.header.ts.tv_usec),
                p.data.to_vec(),
            )),
            Err(pcap::Error::NoMorePackets) => break,
            // A damaged record ends the file for libpcap; what was read still counts.
            Err(_) => break,
        }
    }
    Some(Capture { linktype, frames })
}

/// What decoding a file produced, summarised owned so the decoder can be kept around.
#[derive(Debug, Default)]
struct Summary {
    packets: Vec<Seen>,
    errors: Vec<DecodeError>,
    pending: usize,
}

#[derive(Debug, Clone)]
struct Seen {
    src: IpAddr,
    dst: IpAddr,
    proto: Proto,
    src_port: u16,
    dst_port: u16,
    flags: Option<TcpFlags>,
    vlan: Option<u16>,
    reassembled: bool,
    payload: Vec<u8>,
}

fn decode_all(cap: &Capture, decoder: &mut Decoder) -> Summary {
    let mut s = Summary::default();
    for (ts, frame) in &cap.frames {
        match decoder.decode(cap.linktype, *ts, frame) {
            Ok(p) => s.packets.push(Seen {
                src: p.src,
                dst: p.dst,
                proto: p.proto,
                src_port: p.src_port,
                dst_port: p.dst_port,
                flags: p.tcp.map(|t| t.flags),
                vlan: p.vlan,
                reassembled: p.reassembled,
                payload: p.payload.to_vec(),
            }),
            Err(DecodeError::FragmentPending) => s.pending += 1,
            Err(e) => s.errors.push(e),
        }
    }
    s
}

fn themed(rel: &str) -> (Capture, Summary, Decoder) {
    let path = PathBuf::from(DATA).join(rel);
    let cap = read(&path).unwrap_or_else(|| panic!("cannot read {}", path.display()));
    let mut decoder = Decoder::default();
    let summary = decode_all(&cap, &mut decoder);
    (cap, summary, decoder)
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

/// Every capture in the shared data decodes without a panic; files libpcap cannot open
/// (READMEs, rules, zeek baselines) are skipped and counted.
#[test]
fn every_shared_capture_decodes_without_panic() {
    let data = PathBuf::from(DATA);
    let mut files = Vec::new();
    files_under(&data.join("pcaps"), &|_| true, &mut files);
    files_under(
        &data.join("suricata-verify"),
        &|p| has_ext(p, &["pcap", "pcapng"]),
        &mut files,
    );
    files_under(&data.join("zeek-traces"), &|_| true, &mut files);
    files.sort();

    let (mut opened, mut skipped, mut frames, mut packets) = (0usize, 0usize, 0u64, 0u64);
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    for path in &files {
        let Some(cap) = read(path) else {
            skipped += 1;
            continue;
        };
        opened += 1;
        let mut decoder = Decoder::default();
        let summary = decode_all(&cap, &mut decoder);
        let c = decoder.counters();
        // Every frame is accounted for exactly once.
        assert_eq!(c.frames, cap.frames.len() as u64, "{}", path.display());
        assert_eq!(
            c.packets + summary.errors.len() as u64 + summary.pending as u64,
            c.frames,
            "{}",
            path.display()
        );
        frames += c.frames;
        packets += c.packets;
        for (name, count) in c.iter() {
            *totals.entry(name.into_owned()).or_default() += count;
        }
    }
    eprintln!(
        "decode_captures: {opened} captures opened, {skipped} files skipped, \
         {frames} frames, {packets} packets\n{totals:?}"
    );
    assert!(opened > 800, "only {opened} captures opened");
    // Nearly everything in these corpora is IP; a decoder regression shows up here.
    assert!(
        packets * 100 > frames * 90,
        "{packets} packets of {frames} frames"
    );
}

fn any_packet(s: &Summary, pred: impl Fn(&Seen) -> bool) -> bool {
    s.packets.iter().any(pred)
}

#[test]
fn vlan_captures() {
    let (_, s, _) = themed("pcaps/vlan/suricata-verify__detect-vlan-id__input.pcap");
    assert!(any_packet(&s, |p| p.vlan == Some(200)));

    let (_, s, _) = themed("pcaps/vlan/zeek__q-in-q.pcap");
    assert!(!s.packets.is_empty());
    assert!(s.packets.iter().all(|p| p.vlan.is_some()));
    assert!(any_packet(&s, |p| p.proto == Proto::UDP && p.dst_port == 9875));

    let (cap, s, _) = themed("pcaps/vlan/zeek__vlan-qinqinq.pcap");
    assert_eq!(s.packets.len(), cap.frames.len(), "{:?}", s.errors);
    assert!(any_packet(&s, |p| p.dst_port == 80 && p.payload.starts_with(b"GET ")));
}

#[test]
fn encapsulation_captures() {
    let (cap, s, _) = themed("pcaps/encap/suricata-verify__bug-4810__pppoe-session-http.pcap");
    assert_eq!(s.packets.len(), cap.frames.len(), "{:?}", s.errors);
    assert!(any_packet(&s, |p| p.proto == Proto::TCP
        && p.dst_port == 80
        && p.payload.starts_with(b"GET ")));

    let (_, s, d) = themed("pcaps/encap/suricata-verify__bug-5633-gre-01__gre-udp.pcap");
    assert!(any_packet(&s, |p| p.proto == Proto::UDP && p.payload == b"EVIL"));
    assert!(d.counters().tunnels > 0);

    for rel in [
        "pcaps/encap/suricata-verify__defrag__bug-6887-defrag-ipv4-tcp-syn__frag-ip-tcp-syn.pcap",
        "pcaps/encap/suricata-verify__defrag__bug-6887-defrag-ppp-ipv4-tcp-syn__frag-ppp-ip-tcp-syn.pcap",
    ] {
        let (_, s, d) = themed(rel);
        assert_eq!(s.packets.len(), 1, "{rel}: {:?}", s.errors);
        let p = &s.packets[0];
        assert!(p.reassembled);
        assert_eq!(p.proto, Proto::TCP);
        assert_eq!(p.flags, Some(TcpFlags::SYN));
        assert_eq!(d.counters().fragments_reassembled, 1);
        assert!(s.pending > 0);
    }

    let (cap, s, _) = themed("pcaps/encap/zeek__mixed-vlan-mpls.pcap");
    assert_eq!(s.packets.len(), cap.frames.len(), "{:?}", s.errors);
    assert!(any_packet(&s, |p| p.vlan.is_some()));
    assert!(any_packet(&s, |p| p.vlan.is_none()));

    let (cap, s, _) = themed("pcaps/encap/zeek__pppoe-over-qinq.pcap");
    assert_eq!(s.packets.len(), cap.frames.len(), "{:?}", s.errors);
    assert!(any_packet(&s, |p| p.vlan.is_some() && p.dst_port == 443));
}

#[test]
fn link_type_and_ipv6_captures() {
    let (cap, s, _) = themed("pcaps/linktype/zeek__linux_dlt_sll2.pcap");
    assert_eq!(cap.linktype, 276);
    assert!(any_packet(&s, |p| p.proto == Proto::ICMP));
    assert!(any_packet(&s, |p| p.proto == Proto::ICMPV6));

    let (cap, s, _) = themed("pcaps/ipv6/suricata-verify__http-ipv6__input.pcap");
    assert_eq!(cap.linktype, 0);
    assert_eq!(s.packets.len(), cap.frames.len());
    assert!(any_packet(&s, |p| p.proto == Proto::TCP
        && p.src.is_ipv6()
        && p.payload.starts_with(b"GET ")));

    let (_, s, d) = themed("pcaps/ipv6/zeek__ipv6-fragmented-dns.pcap");
    assert!(any_packet(&s, |p| p.reassembled
        && p.proto == Proto::UDP
        && p.src_port == 53
        && p.src.is_ipv6()));
    assert!(d.counters().fragments_reassembled >= 1);
}

#[test]
fn malformed_captures_give_counted_errors() {
    let (_, s, d) = themed("pcaps/malformed/zeek__trunc__ip4-trunc.pcap");
    assert_eq!(
        s.errors,
        vec![DecodeError::Truncated { layer: Layer::Ipv4 }]
    );
    assert_eq!(d.counters().truncated(Layer::Ipv4), 1);

    let (_, s, d) = themed("pcaps/malformed/zeek__trunc__ip6-trunc.pcap");
    assert_eq!(
        s.errors,
        vec![DecodeError::Truncated { layer: Layer::Ipv6 }]
    );
    assert_eq!(d.counters().truncated(Layer::Ipv6), 1);

    // The IPv4 total length exceeds the bytes captured: the packet is kept with what
    // was captured (a snap length looks the same) and counted.
    let (_, s, d) = themed("pcaps/malformed/suricata-verify__ipv4-truncated__truncated.pcap");
    assert_eq!(s.packets.len(), 1);
    assert_eq!(d.counters().ip_payload_snapped, 1);

    // Total length 0 from segmentation offload on the capturing host: decoded with the
    // captured length, as Zeek does, and counted.
    let (cap, s, d) = themed("zeek-traces/Traces/krb/kerberos_tso.pcapng");
    assert_eq!(s.packets.len(), cap.frames.len(), "{:?}", s.errors);
    assert!(d.counters().ipv4_zero_total_length > 0);

    let mut files = Vec::new();
    files_under(
        &PathBuf::from(DATA).join("pcaps/malformed"),
        &|_| true,
        &mut files,
    );
    assert!(files.len() >= 6);
    for path in files {
        if let Some(cap) = read(&path) {
            decode_all(&cap, &mut Decoder::default());
        }
    }
}

const EVIL_V4: &str = "66.66.66.66";
const EVIL_V6: &str = "dead::beef";

fn corpus(name: &str) -> (Capture, Summary, Decoder) {
    themed(&format!("maltrail/corpus/{name}.pcap"))
}

fn mentions_evil(s: &Summary) -> bool {
    let evil: [IpAddr; 2] = [EVIL_V4.parse().unwrap(), EVIL_V6.parse().unwrap()];
    any_packet(s, |p| evil.contains(&p.src) || evil.contains(&p.dst))
}

#[test]
fn maltrail_corpus_reaches_the_trail_addresses() {
    for name in [
        "dlt_raw",
        "dlt_sll",
        "pppoe",
        "vlan",
        "ipv4_options",
        "ipv6",
        "icmp",
    ] {
        let (_, s, _) = corpus(name);
        assert!(mentions_evil(&s), "{name}: {:?} {:?}", s.packets, s.errors);
    }

    // VLAN: the single tag and the QinQ frame both decode (Maltrail drops QinQ).
    let (cap, s, _) = corpus("vlan");
    assert_eq!(s.packets.len(), cap.frames.len());
    assert!(any_packet(&s, |p| p.vlan == Some(100)));

    // PPPoE: IPv4 sessions decode (also behind a VLAN tag); LCP is not IP.
    let (_, s, d) = corpus("pppoe");
    assert_eq!(s.packets.len(), 2);
    assert_eq!(d.counters().unsupported_ppp_protocol, 1);

    // IPv4 options shift the transport header.
    let (_, s, _) = corpus("ipv4_options");
    assert_eq!(s.packets[0].dst_port, 443);
    assert_eq!(s.packets[0].flags, Some(TcpFlags::SYN));

    // IPv6: SYN, DNS and ICMPv6 echo.
    let (_, s, _) = corpus("ipv6");
    assert!(any_packet(&s, |p| p.proto == Proto::TCP));
    assert!(any_packet(&s, |p| p.proto == Proto::UDP && p.dst_port == 53));
    assert!(any_packet(&s, |p| p.proto == Proto::ICMPV6));

    // The corpus fragments are inconsistent: the first carries 20 bytes with MF set (cut
    // to 16, as Linux does), the second is a final fragment covering [8, 16), which
    // completes a 16-byte datagram too short for a TCP header; the third claims a new
    // datagram ending at 1488. No packet comes out, everything is counted, and the
    // address stays reachable through `last_fragment`.
    let (cap, s, d) = corpus("fragments");
    assert!(s.packets.is_empty());
    assert_eq!(s.pending + s.errors.len(), cap.frames.len());
    let c = d.counters();
    assert_eq!(c.fragments_trimmed, 1, "{:?}", c.iter().collect::<Vec<_>>());
    assert_eq!(c.fragments_reassembled, 1);
    assert_eq!(c.truncated(Layer::Tcp), 1);
    assert_eq!(c.fragments_pending, 2);
    let last = d.last_fragment().expect("fragments were seen");
    assert_eq!(last.dst, EVIL_V4.parse::<IpAddr>().unwrap());

    // Truncated frames: all errors, all counted, no packets.
    let (cap, s, d) = corpus("truncated");
    assert!(s.packets.is_empty(), "{:?}", s.packets);
    assert_eq!(s.errors.len(), cap.frames.len());
    assert_eq!(
        d.counters().truncated_total() + d.counters().malformed_total(),
        cap.frames.len() as u64
    );
}
