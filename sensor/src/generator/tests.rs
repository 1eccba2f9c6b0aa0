//! End-to-end checks of generated captures: read back with libpcap, every checksum verified,
//! payloads recognised, listed indicators counted independently of the generator's summary.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use super::dns::tests::read_name;
use super::frame::checksum;
use super::*;

fn listed_config(seed: u64, packets: u64, share: f64) -> GeneratorConfig {
    GeneratorConfig {
        listed_ips: vec![Ipv4Addr::new(203, 0, 113, 9), Ipv4Addr::new(45, 9, 148, 3)],
        listed_domains: vec!["evil-c2.example.com".into(), "Phish.Example.NET".into()],
        listed_urls: vec![
            "dropper.example.org/payload/stage2.bin".into(),
            "http://gate.example.info:8081/panel/gate.php?id=7".into(),
        ],
        listed_share: share,
        ..GeneratorConfig::new(seed, packets)
    }
}

/// The parts of a frame the checks need.
#[derive(Debug)]
struct Parsed<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parses a generated frame, asserting every length and checksum on the way.
fn parse(frame: &[u8]) -> Parsed<'_> {
    let ethertype = be16(frame, 12);
    let (src, dst, proto, l4, pseudo) = match ethertype {
        0x0800 => {
            let ip = &frame[14..];
            assert_eq!(ip[0], 0x45);
            assert_eq!(usize::from(be16(ip, 2)), ip.len(), "IPv4 total length");
            assert_eq!(checksum(0, &ip[..20]), 0, "IPv4 header checksum");
            let src = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap()));
            let dst = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap()));
            let l4 = &ip[20..];
            let pseudo = words(&ip[12..20]) + l4.len() as u64 + u64::from(ip[9]);
            (src, dst, ip[9], l4, pseudo)
        }
        0x86dd => {
            let ip = &frame[14..];
            assert_eq!(ip[0] >> 4, 6);
            assert_eq!(
                usize::from(be16(ip, 4)),
                ip.len() - 40,
                "IPv6 payload length"
            );
            let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()));
            let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()));
            let l4 = &ip[40..];
            let pseudo = words(&ip[8..40]) + l4.len() as u64 + u64::from(ip[6]);
            (src, dst, ip[6], l4, pseudo)
        }
        other => panic!("unexpected ethertype {other:#x}"),
    };
    let (sport, dport, payload) = match proto {
        17 => {
            assert_eq!(usize::from(be16(l4, 4)), l4.len(), "UDP length");
            assert_ne!(be16(l4, 6), 0);
            (be16(l4, 0), be16(l4, 2), &l4[8..])
        }
        6 => {
            let header = usize::from(l4[12] >> 4) * 4;
            (be16(l4, 0), be16(l4, 2), &l4[header..])
        }
        1 | 58 => (0, 0, &l4[8..]),
        other => panic!("unexpected protocol {other}"),
    };
    let pseudo = if proto == 1 { 0 } else { pseudo };
    assert_eq!(
        checksum(pseudo, l4),
        0,
        "transport checksum, protocol {proto}"
    );
    Parsed {
        src,
        dst,
        proto,
        sport,
        dport,
        payload,
    }
}

fn words(b: &[u8]) -> u64 {
    b.chunks(2).map(|w| u64::from(be16(w, 0))).sum()
}

/// A libpcap timestamp in microseconds.
// time_t and suseconds_t are i64 on this platform but narrower on some others.
#[allow(clippy::useless_conversion)]
fn micros(header: &pcap::PacketHeader) -> i64 {
    i64::from(header.ts.tv_sec) * 1_000_000 + i64::from(header.ts.tv_usec)
}

/// Reads a capture with libpcap: (microsecond timestamp, frame) pairs.
fn read_back(path: &std::path::Path) -> Vec<(i64, Vec<u8>)> {
    let mut capture = pcap::Capture::from_file(path).unwrap();
    assert_eq!(capture.get_datalink(), pcap::Linktype(1));
    let mut frames = Vec::new();
    while let Ok(packet) = capture.next_packet() {
        assert_eq!(packet.header.caplen, packet.header.len);
        let ts = micros(packet.header);
        frames.push((ts, packet.data.to_vec()));
    }
    frames
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ["a", "b", "c"].map(|n| dir.path().join(format!("{n}.pcap")));
    let config = listed_config(42, 5_000, 0.02);
    let sa = write_capture(&paths[0], &config).unwrap();
    let sb = write_capture(&paths[1], &config).unwrap();
    let sc = write_capture(&paths[2], &GeneratorConfig { seed: 43, ..config }).unwrap();
    let [a, b, c] = paths.map(|p| std::fs::read(p).unwrap());
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_ne!(a, c);
    assert_ne!(sa, sc);
    assert_eq!(a.len() as u64, 24 + 16 * sa.packets + sa.bytes);
}

#[test]
fn capture_reads_back_and_every_packet_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mix.pcap");
    let config = listed_config(7, 50_000, 0.01);
    let summary = write_capture(&path, &config).unwrap();
    let frames = read_back(&path);
    assert_eq!(frames.len(), 50_000);
    assert_eq!(summary.packets, 50_000);
    assert_eq!(summary.packets_by_kind.total(), 50_000);
    assert_eq!(frames[0].0, DEFAULT_START.0);

    let listed_ips: HashSet<IpAddr> = config.listed_ips.iter().map(|&ip| ip.into()).collect();
    let listed_domains: HashSet<&str> = ["evil-c2.example.com", "phish.example.net"].into();
    let listed_urls: HashSet<&str> = [
        "dropper.example.org/payload/stage2.bin",
        "gate.example.info:8081/panel/gate.php?id=7",
    ]
    .into();

    let mut seen = ListedCounts::default();
    let mut kinds = KindCounts::default();
    let mut ipv6 = 0;
    let mut http_odd_port = 0;
    let mut tls_versions = HashSet::new();
    let mut dns_with_pointer_chain = 0;
    let mut flows: HashMap<(IpAddr, u16, IpAddr, u16, u8), u64> = HashMap::new();
    let mut last_ts = i64::MIN;
    for (ts, frame) in &frames {
        assert!(*ts > last_ts, "the packet clock moves forward");
        last_ts = *ts;
        let p = parse(frame);
        ipv6 += u64::from(p.src.is_ipv6());
        let key = if (p.src, p.sport) < (p.dst, p.dport) {
            (p.src, p.sport, p.dst, p.dport, p.proto)
        } else {
            (p.dst, p.dport, p.src, p.sport, p.proto)
        };
        *flows.entry(key).or_default() += 1;
        if listed_ips.contains(&p.dst) || listed_ips.contains(&p.src) {
            seen.ip.packets += 1;
        }
        let pl = p.payload;
        if p.proto == 17 && (p.sport == 53 || p.dport == 53) {
            kinds.dns += 1;
            let is_answer = pl[2] & 0x80 != 0;
            assert_eq!(is_answer, p.sport == 53);
            assert_eq!(be16(pl, 4), 1, "qdcount");
            let ancount = be16(pl, 6);
            if !is_answer {
                assert_eq!(ancount, 0);
            } else if pl[3] & 0x0f == 0 {
                assert!(ancount >= 1);
                // The first answer's owner is a pointer to the question name.
                let q_end = 12 + read_name(pl, 12).len() + 2 + 4;
                assert_eq!(&pl[q_end..q_end + 2], &[0xc0, 0x0c]);
                if be16(pl, q_end + 2) == 5 {
                    dns_with_pointer_chain += 1;
                }
            }
            let qname = read_name(pl, 12);
            assert!(dns::valid_name(&qname), "{qname}");
            if listed_domains.contains(qname.as_str()) {
                seen.dns.packets += 1;
            }
        } else if p.proto == 6 && pl.len() > 5 && pl[0] == 22 && pl[5] == 1 {
            kinds.tls += 1;
            assert_eq!(p.dport, 443);
            let sni = tls::sni_of(pl).expect("a ClientHello with SNI");
            tls_versions.insert(pl.windows(4).any(|w| w == [0, 43, 0, 5]));
            if listed_domains.contains(sni.as_str()) {
                seen.sni.packets += 1;
            }
        } else if p.proto == 6 && (pl.starts_with(b"GET ") || pl.starts_with(b"POST ")) {
            kinds.http += 1;
            let text = std::str::from_utf8(pl).unwrap();
            let (line, rest) = text.split_once("\r\n").unwrap();
            let mut parts = line.split(' ');
            let (_, path, version) = (parts.next(), parts.next().unwrap(), parts.next());
            assert!(path.starts_with('/'));
            assert_eq!(version, Some("HTTP/1.1"));
            let host = rest
                .strip_prefix("Host: ")
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap();
            assert!(rest.contains("\r\nUser-Agent: "));
            assert!(text.contains("\r\n\r\n"));
            if p.dport != 80 {
                http_odd_port += 1;
                assert!(host.ends_with(&format!(":{}", p.dport)));
            }
            if listed_urls.contains(format!("{host}{path}").as_str()) {
                seen.url.packets += 1;
            }
        } else if p.proto == 1 || p.proto == 58 {
            kinds.icmp += 1;
        }
    }
    // Independent counts agree with the summary.
    assert_eq!(seen.ip.packets, summary.listed.ip.packets);
    assert_eq!(seen.dns.packets, summary.listed.dns.packets);
    assert_eq!(seen.sni.packets, summary.listed.sni.packets);
    assert_eq!(seen.url.packets, summary.listed.url.packets);
    assert!(seen.ip.packets > 0 && seen.dns.packets > 0);
    assert!(seen.sni.packets > 0 && seen.url.packets > 0);
    assert_eq!(kinds.dns, summary.packets_by_kind.dns);
    assert_eq!(kinds.icmp, summary.packets_by_kind.icmp);
    // One request / ClientHello per conversation (the last few may be cut off).
    assert!(
        kinds.http <= summary.flows_by_kind.http && kinds.http + 300 > summary.flows_by_kind.http
    );
    assert!(kinds.tls <= summary.flows_by_kind.tls && kinds.tls + 300 > summary.flows_by_kind.tls);
    assert!(http_odd_port > 0);
    assert_eq!(tls_versions.len(), 2, "both TLS 1.3 and 1.2 hellos");
    assert!(dns_with_pointer_chain > 0);
    assert_eq!(ipv6, summary.ipv6_packets);
    assert!(ipv6 > 1000 && ipv6 < 10_000, "{ipv6}");
    // Flows are reused: several packets per 5-tuple on average.
    let per_flow = frames.len() as f64 / flows.len() as f64;
    assert!(per_flow > 3.0, "{per_flow} packets per flow");
    // Every kind shows up in roughly the documented packet share.
    let share = |n: u64| n as f64 / summary.packets as f64;
    let by_kind = summary.packets_by_kind;
    assert!((0.05..0.2).contains(&share(by_kind.dns)), "{by_kind:?}");
    assert!((0.15..0.35).contains(&share(by_kind.http)), "{by_kind:?}");
    assert!((0.4..0.7).contains(&share(by_kind.tls)), "{by_kind:?}");
    assert!((0.03..0.15).contains(&share(by_kind.udp)), "{by_kind:?}");
    assert!((0.005..0.05).contains(&share(by_kind.icmp)), "{by_kind:?}");
}

#[test]
fn listed_share_is_close_to_the_configured_share() {
    for (share, seed) in [(0.01, 1), (0.05, 2), (0.2, 3)] {
        let mut generator = Generator::new(&listed_config(seed, 50_000, share));
        while generator.next_frame().is_some() {}
        let s = generator.into_summary();
        let measured = s.listed.flows() as f64 / s.flows as f64;
        // Binomial standard deviation of the share, times four, plus slack for small counts.
        let sd = (share * (1.0 - share) / s.flows as f64).sqrt();
        assert!(
            (measured - share).abs() < 4.0 * sd + 0.002,
            "share {share}: measured {measured} over {} flows",
            s.flows
        );
        // Each kind of list is used.
        let l = s.listed;
        assert!(l.ip.flows > 0 && l.dns.flows + l.sni.flows > 0 && l.url.flows > 0);
    }
}

#[test]
fn no_lists_no_listed_traffic_and_zero_share_none_either() {
    let mut generator = Generator::new(&GeneratorConfig::new(9, 5_000));
    while generator.next_frame().is_some() {}
    assert_eq!(generator.summary().listed, ListedCounts::default());
    let mut generator = Generator::new(&listed_config(9, 5_000, 0.0));
    while generator.next_frame().is_some() {}
    assert_eq!(generator.summary().listed, ListedCounts::default());
}

#[test]
fn listed_sni_names_the_listed_domain() {
    let config = GeneratorConfig {
        listed_domains: vec!["only-sni.example.com".into()],
        listed_share: 1.0,
        mix: TrafficMix {
            dns: 0,
            http: 0,
            tls: 1,
            udp: 0,
            icmp: 0,
        },
        ..GeneratorConfig::new(5, 2_000)
    };
    let mut generator = Generator::new(&config);
    let mut hellos = 0;
    while let Some(frame) = generator.next_frame() {
        let p = parse(frame.data);
        if p.payload.first() == Some(&22) && p.payload.get(5) == Some(&1) {
            assert_eq!(tls::sni_of(p.payload).unwrap(), "only-sni.example.com");
            hellos += 1;
        }
    }
    assert!(hellos > 100);
    assert_eq!(generator.summary().listed.sni.packets, hellos);
}

#[test]
fn odd_configs_do_not_panic() {
    let config = GeneratorConfig {
        listed_domains: vec!["".into(), "bad name".into(), "x".repeat(300)],
        listed_urls: vec!["/no-host".into(), "".into()],
        listed_share: f64::NAN,
        ipv6_share: 7.0,
        max_concurrent_flows: 0,
        max_gap_micros: 0,
        mix: TrafficMix {
            dns: 0,
            http: 0,
            tls: 0,
            udp: 0,
            icmp: 0,
        },
        ..GeneratorConfig::new(3, 3_000)
    };
    let mut generator = Generator::new(&config);
    let mut n = 0;
    while let Some(frame) = generator.next_frame() {
        let p = parse(frame.data);
        assert!(p.src.is_ipv6());
        n += 1;
    }
    assert_eq!(n, 3_000);
    assert_eq!(generator.summary().listed, ListedCounts::default());
}

#[test]
fn trail_folder_sample_drives_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let trails = dir.path().join("trails");
    std::fs::create_dir(&trails).unwrap();
    std::fs::write(
        trails.join("demo.txt"),
        "# demo\n192.0.2.200\n198.51.100.7:443\nbad.example.org\nbad.example.org/x.php\n",
    )
    .unwrap();
    let listed = ListedIndicators::sample_trail_folder(&trails, 5, 1).unwrap();
    let config = GeneratorConfig {
        listed_share: 0.5,
        ..GeneratorConfig::new(1, 2_000).with_listed(listed)
    };
    let path = dir.path().join("t.pcap");
    let summary = write_capture(&path, &config).unwrap();
    assert!(summary.listed.ip.flows > 0 && summary.listed.url.flows > 0);
    assert!(summary.listed.dns.flows + summary.listed.sni.flows > 0);
}

/// Throughput check, run by hand:
/// `cargo test --release -p spoor-sensor generate_two_million -- --ignored --nocapture`
#[test]
#[ignore = "timing run for the benchmark record"]
fn generate_two_million_packets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2m.pcap");
    let config = listed_config(2024, 2_000_000, DEFAULT_LISTED_SHARE);
    let started = Instant::now();
    let summary = write_capture(&path, &config).unwrap();
    let elapsed = started.elapsed();
    let file = std::fs::metadata(&path).unwrap().len();
    println!(
        "{} packets, {} MB file, {:.2} s, {:.0} packets/s\n{summary:#?}",
        summary.packets,
        file / 1_000_000,
        elapsed.as_secs_f64(),
        summary.packets as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(summary.packets, 2_000_000);
}

/// Samples the real Maltrail static trails, run by hand:
/// `cargo test --release -p spoor-sensor sample_real_trail_folder -- --ignored --nocapture`
#[test]
#[ignore = "reads the 58 MB shared trail folder"]
fn sample_real_trail_folder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/maltrail/trails/static");
    let started = Instant::now();
    let listed = ListedIndicators::sample_trail_folder(&dir, 100, 1).unwrap();
    println!(
        "sampled in {:.2} s: {:?} ... {:?} ... {:?}",
        started.elapsed().as_secs_f64(),
        &listed.ips[..3],
        &listed.domains[..3],
        &listed.urls[..3]
    );
    assert_eq!(
        listed,
        ListedIndicators::sample_trail_folder(&dir, 100, 1).unwrap()
    );
    assert_eq!(
        (listed.ips.len(), listed.domains.len(), listed.urls.len()),
        (100, 100, 100)
    );
    let config = GeneratorConfig::new(1, 50_000).with_listed(listed);
    let mut generator = Generator::new(&config);
    while generator.next_frame().is_some() {}
    let l = generator.summary().listed;
    println!("{l:?}");
    assert!(l.ip.flows > 0 && l.dns.flows + l.sni.flows > 0 && l.url.flows > 0);
}
