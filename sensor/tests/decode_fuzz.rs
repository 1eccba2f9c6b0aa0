//! Deterministic fuzz-style test: mutate the frames of a few shared captures with a
//! seeded xorshift (bit flips, truncation, byte insertions, header-length stomps) and
//! decode each mutant as every link type in use. The only assertion is the decoder's
//! promise: no panic, and every frame accounted for. Bounded to run in well under 5 s
//! in a debug build; `cargo fuzz run decode_frame` (sensor/fuzz) is the open-ended version.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use spoor_core::Micros;
use spoor_sensor::decode::{DecodeError, DecodeLimits, Decoder, LinkType};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// Captures covering every encapsulation the decoder walks.
const SEEDS: &[&str] = &[
    "pcaps/encap/suricata-verify__bug-4810__pppoe-session-http.pcap",
    "pcaps/encap/suricata-verify__bug-5633-gre-01__gre-udp.pcap",
    "pcaps/encap/suricata-verify__defrag__bug-6887-defrag-ipv4-tcp-syn__frag-ip-tcp-syn.pcap",
    "pcaps/encap/suricata-verify__defrag__bug-6887-defrag-ppp-ipv4-tcp-syn__frag-ppp-ip-tcp-syn.pcap",
    "pcaps/encap/zeek__mixed-vlan-mpls.pcap",
    "pcaps/vlan/zeek__vlan-qinqinq.pcap",
    "pcaps/linktype/zeek__linux_dlt_sll2.pcap",
    "pcaps/ipv6/suricata-verify__http-ipv6__input.pcap",
    "pcaps/ipv6/zeek__ipv6-fragmented-dns.pcap",
    "maltrail/corpus/dlt_sll.pcap",
    "maltrail/corpus/dlt_raw.pcap",
    "maltrail/corpus/ipv4_options.pcap",
];

/// Fixed seed: the same mutants on every run, so a failure reproduces.
const SEED: u64 = 0x5eed_f00d_cafe_0001;
/// Mutants per frame per link type.
const MUTANTS: usize = 40;
/// Longest frame fed (keeps debug-build time bounded; headers are what matter).
const MAX_FRAME: usize = 256;
/// A safety net for slow CI machines: the loop stops early rather than time out.
const TIME_BUDGET: Duration = Duration::from_secs(4);

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
    out.extend_from_slice(&frame[..frame.len().min(MAX_FRAME)]);
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 => {
                // Bit flip, biased towards the first 64 bytes where the headers are.
                if !out.is_empty() {
                    let at = rng.below(out.len().min(64));
                    out[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let keep = rng.below(out.len() + 1);
                out.truncate(keep);
            }
            2 => {
                let at = rng.below(out.len() + 1);
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    out.insert(at, rng.next() as u8);
                }
            }
            3 => {
                // Stomp a byte with a length-ish extreme (0x00, 0x0f, 0xff, 0x45...).
                if !out.is_empty() {
                    let at = rng.below(out.len().min(64));
                    out[at] = [0x00, 0x0f, 0x45, 0x4f, 0x60, 0x81, 0xff][rng.below(7)];
                }
            }
            _ => {
                let at = rng.below(out.len() + 1);
                out.drain(at..(at + rng.below(8)).min(out.len()));
            }
        }
    }
}

#[test]
fn mutated_frames_never_panic() {
    let start = Instant::now();
    let mut frames: Vec<(i32, Vec<u8>)> = Vec::new();
    for rel in SEEDS {
        let path = PathBuf::from(DATA).join(rel);
        let mut cap =
            pcap::Capture::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lt = cap.get_datalink().0;
        while let Ok(p) = cap.next_packet() {
            frames.push((lt, p.data.to_vec()));
        }
    }
    let mut linktypes: Vec<i32> = LinkType::SUPPORTED.iter().map(|l| l.0).collect();
    linktypes.push(127); // one unsupported type
    // Small tables so that the caps are reached and exercised too.
    let limits = DecodeLimits {
        max_frag_datagrams: 8,
        max_frag_total_bytes: 64 << 10,
        ..DecodeLimits::default()
    };
    let mut decoders: Vec<Decoder> = linktypes
        .iter()
        .map(|_| Decoder::new(limits.clone()))
        .collect();
    let mut rng = XorShift(SEED);
    let mut mutant = Vec::new();
    let (mut decoded, mut fed) = (0u64, 0u64);
    'outer: for (i, (lt, frame)) in frames.iter().enumerate() {
        if start.elapsed() > TIME_BUDGET {
            break 'outer;
        }
        let ts = Micros(1_700_000_000_000_000 + i as i64 * 1_000);
        // The original under its own link type first.
        let own = linktypes.iter().position(|l| l == lt).unwrap_or(0);
        let _ = decoders[own].decode(*lt, ts, frame);
        for (k, &as_lt) in linktypes.iter().enumerate() {
            for _ in 0..MUTANTS {
                mutate(&mut rng, frame, &mut mutant);
                fed += 1;
                match decoders[k].decode(as_lt, ts, &mutant) {
                    Ok(p) => {
                        decoded += 1;
                        assert!(p.payload.len() <= mutant.len() || p.reassembled);
                    }
                    Err(DecodeError::FragmentPending) => {}
                    Err(e) => {
                        // Every error renders.
                        assert!(!e.to_string().is_empty());
                    }
                }
            }
        }
    }
    let accounted: u64 = decoders.iter().map(|d| d.counters().frames).sum();
    assert!(accounted >= fed);
    eprintln!(
        "decode_fuzz: {fed} mutants, {decoded} decoded to packets, {:?}",
        start.elapsed()
    );
    assert!(fed > 50_000, "only {fed} mutants in the time budget");
}
