//! Helpers for the sensor acceptance tests: trail snapshots compiled into temp dirs, a
//! pipeline that keeps the events it releases, and byte builders for crafted frames.
//!
//! The frame builders write headers by hand (no checksums: the decoder does not verify
//! them) so that a test states exactly which layers a frame has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spoor_core::{Event, KeyPath, Micros};
use spoor_feeds::TrailHandle;
use spoor_feeds::compile::{CompileSource, compile};
use spoor_feeds::config::{BaseDirs, OriginDefaults};
use spoor_feeds::format::FormatSpec;
use spoor_sensor::capture::{FileCapture, FileProblem, Frame};
use spoor_sensor::config::{RawSensor, SensorConfig};
use spoor_sensor::metrics::{MetricsHub, Snapshot};
use spoor_sensor::pipeline::Pipeline;

/// The shared test data (`shared/data`), read only.
pub(crate) const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// A capture time well inside the pcap range.
pub(crate) const T0: Micros = Micros(1_700_000_000_000_000);

pub(crate) const LINKTYPE_ETHERNET: i32 = 1;

pub(crate) fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

/// A compiled trail snapshot in a temp dir (kept alive as long as the handle is used).
#[derive(Debug)]
pub(crate) struct Trails {
    _dir: tempfile::TempDir,
    pub(crate) handle: Arc<TrailHandle>,
}

impl Trails {
    /// Trails from Maltrail's `trails.csv` format (`trail,info,reference` per line).
    pub(crate) fn csv(text: &str) -> Trails {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("trails.csv");
        std::fs::write(&path, text).expect("write trails.csv");
        Trails::compile_in(
            dir,
            vec![CompileSource {
                name: "acceptance".into(),
                path,
                format: FormatSpec::MaltrailCsv,
                defaults: OriginDefaults::default(),
                required: true,
            }],
        )
    }

    /// Compile `sources` into a snapshot in a fresh temp dir.
    pub(crate) fn compile(sources: Vec<CompileSource>) -> Trails {
        Trails::compile_in(tempfile::tempdir().expect("temp dir"), sources)
    }

    fn compile_in(dir: tempfile::TempDir, sources: Vec<CompileSource>) -> Trails {
        let snapshot = dir.path().join("trails.snapshot");
        compile(&sources, &snapshot).expect("compile trails");
        let handle = Arc::new(TrailHandle::open(&snapshot).expect("open snapshot"));
        Trails { _dir: dir, handle }
    }
}

/// The default sensor config (5 s condense window), named `sensor1`.
pub(crate) fn sensor_config() -> SensorConfig {
    let dirs = BaseDirs {
        config_dir: Path::new("/"),
        state_dir: Path::new("/nonexistent"),
    };
    RawSensor {
        name: Some("sensor1".into()),
        ..RawSensor::default()
    }
    .validate(&KeyPath::root().key("sensor"), &dirs)
    .expect("default sensor config")
}

/// A pipeline with a sink that keeps every released event.
#[derive(Debug)]
pub(crate) struct Sensor {
    pub(crate) pipeline: Pipeline,
    pub(crate) events: Vec<Event>,
}

impl Sensor {
    pub(crate) fn new(trails: &Trails) -> Sensor {
        Sensor {
            pipeline: Pipeline::new(
                &sensor_config(),
                Arc::clone(&trails.handle),
                MetricsHub::default(),
            ),
            events: Vec::new(),
        }
    }

    /// Feed one frame of `linktype` captured at `ts`.
    pub(crate) fn feed(&mut self, ts: Micros, linktype: i32, data: &[u8]) {
        let events = &mut self.events;
        self.pipeline.process(
            &Frame {
                ts,
                linktype,
                data,
                wire_len: data.len() as u32,
            },
            &mut |e| events.push(e),
        );
    }

    /// Feed Ethernet frames 1 ms apart from `T0`.
    pub(crate) fn feed_ethernet(&mut self, frames: &[Vec<u8>]) {
        for (i, f) in frames.iter().enumerate() {
            self.feed(Micros(T0.0 + i as i64 * 1_000), LINKTYPE_ETHERNET, f);
        }
    }

    /// Run the pipeline over capture files; the files it could not read (fully).
    pub(crate) fn run_files(&mut self, paths: Vec<PathBuf>) -> Vec<FileProblem> {
        let mut source = FileCapture::new(paths);
        let events = &mut self.events;
        self.pipeline
            .run(
                &mut source,
                &mut |e| events.push(e),
                &AtomicBool::new(false),
            )
            .expect("file capture never fails as a whole");
        source.problems().to_vec()
    }

    /// Release every held event; all events and the final counters.
    pub(crate) fn finish(mut self) -> (Vec<Event>, Snapshot) {
        let events = &mut self.events;
        self.pipeline.finish(&mut |e| events.push(e));
        let snapshot = self.pipeline.snapshot();
        (self.events, snapshot)
    }
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

// ---------------------------------------------------------------------------------------
// Frame builders.

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(crate) const TPID_8021Q: u16 = 0x8100;
pub(crate) const TPID_8021AD: u16 = 0x88a8;

pub(crate) const IPPROTO_HOPOPTS: u8 = 0;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_FRAGMENT: u8 = 44;
pub(crate) const IPPROTO_DSTOPTS: u8 = 60;

pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;

/// Ethernet II: `tags` are (TPID, VLAN id) from the outside in, then `ethertype`.
pub(crate) fn ethernet(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IP packet in Ethernet, the ethertype picked by the version nibble.
pub(crate) fn eth(ip_packet: &[u8]) -> Vec<u8> {
    let ty = if ip_packet.first().is_some_and(|b| b >> 4 == 6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    };
    ethernet(&[], ty, ip_packet)
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => panic!("IPv4 header with an IPv6 address"),
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// An IPv4 header (no options) with `id` and the fragment fields, then `payload`.
/// `offset` is in bytes (a multiple of 8).
pub(crate) fn ipv4_fragment(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u16,
    offset: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(offset % 8, 0, "fragment offsets count 8-byte units");
    let total = (20 + payload.len()) as u16;
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&v4(src).octets());
    h.extend_from_slice(&v4(dst).octets());
    h.extend_from_slice(payload);
    h
}

/// A whole IPv4 datagram.
pub(crate) fn ipv4(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_fragment(src, dst, proto, 0x1234, 0, false, payload)
}

/// An IPv6 header whose next header is `next`, then `payload` (extension headers
/// included).
pub(crate) fn ipv6(src: IpAddr, dst: IpAddr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&v6(src).octets());
    h.extend_from_slice(&v6(dst).octets());
    h.extend_from_slice(payload);
    h
}

/// A hop-by-hop or destination options header of 8 bytes (one PadN option).
pub(crate) fn ipv6_options(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header.
pub(crate) fn ipv6_fragment_header(next: u8, offset: usize, more: bool, id: u32) -> Vec<u8> {
    let field = (offset as u16 & !7) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&field.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub(crate) fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes()); // ack
    t.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// A UDP datagram in IPv4 or IPv6 (by the address family) in Ethernet.
pub(crate) fn udp_frame(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = udp(sport, dport, payload);
    eth(&if src.is_ipv6() {
        ipv6(src, dst, IPPROTO_UDP, &l4)
    } else {
        ipv4(src, dst, IPPROTO_UDP, &l4)
    })
}

/// A TCP segment in IPv4 or IPv6 (by the address family) in Ethernet.
pub(crate) fn tcp_frame(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = tcp(sport, dport, 1000, flags, payload);
    eth(&if src.is_ipv6() {
        ipv6(src, dst, IPPROTO_TCP, &l4)
    } else {
        ipv4(src, dst, IPPROTO_TCP, &l4)
    })
}

// ---------------------------------------------------------------------------------------
// DNS and TLS payloads.

pub(crate) const QTYPE_A: u16 = 1;
pub(crate) const QTYPE_CNAME: u16 = 5;
pub(crate) const QTYPE_AAAA: u16 = 28;

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A resource record of a crafted DNS response.
#[derive(Debug, Clone)]
pub(crate) enum Rr<'a> {
    A(&'a str, Ipv4Addr),
    Aaaa(&'a str, Ipv6Addr),
    Cname(&'a str, &'a str),
}

/// A recursive query for `name`.
pub(crate) fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// A NOERROR response to a query for `name` with `answers` (names written uncompressed).
pub(crate) fn dns_response(id: u16, name: &str, qtype: u16, answers: &[Rr<'_>]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    for rr in answers {
        let (owner, rtype, rdata) = match rr {
            Rr::A(owner, a) => (*owner, QTYPE_A, a.octets().to_vec()),
            Rr::Aaaa(owner, a) => (*owner, QTYPE_AAAA, a.octets().to_vec()),
            Rr::Cname(owner, target) => {
                let mut t = Vec::new();
                dns_name(&mut t, target);
                (*owner, QTYPE_CNAME, t)
            }
        };
        dns_name(&mut m, owner);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&300u32.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// DNS messages as a TCP stream: each behind its two-byte length.
pub(crate) fn dns_tcp_stream(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for m in messages {
        s.extend_from_slice(&(m.len() as u16).to_be_bytes());
        s.extend_from_slice(m);
    }
    s
}

fn vec16(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn extension(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    vec16(out, body);
}

/// A TLS 1.3 ClientHello record (as a browser sends it, trimmed) naming `sni`.
pub(crate) fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut names = vec![0u8];
    vec16(&mut names, sni.as_bytes());
    let mut list = Vec::new();
    vec16(&mut list, &names);
    extension(&mut ext, 0x0000, &list); // server_name
    extension(&mut ext, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // supported_groups
    extension(&mut ext, 0x000b, &[1, 0]); // ec_point_formats
    extension(&mut ext, 0x000d, &[0, 4, 0x04, 0x03, 0x08, 0x04]); // signature_algorithms
    extension(&mut ext, 0x0010, &[0, 3, 2, b'h', b'2']); // ALPN h2
    extension(&mut ext, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    vec16(&mut body, &[0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression: null
    vec16(&mut body, &ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    vec16(&mut record, &hs);
    record
}

// ---------------------------------------------------------------------------------------
// Capture files.

/// Every file under `dir`, recursively, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Frames with their capture times.
pub(crate) type TimedFrames = Vec<(Micros, Vec<u8>)>;

/// The frames of a capture file: link type and (time, bytes); `None` if libpcap cannot
/// open it.
pub(crate) fn read_capture(path: &Path) -> Option<(i32, TimedFrames)> {
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let linktype = cap.get_datalink().0;
    let mut frames = Vec::new();
    while let Ok(p) = cap.next_packet() {
        frames.push((
            Micros::from_secs_micros(p.header.ts.tv_sec, p.header.ts.tv_usec),
            p.data.to_vec(),
        ));
    }
    Some((linktype, frames))
}
