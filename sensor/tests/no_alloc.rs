//! The hot path allocates nothing for packets that do not alert: a whole HTTP request, a
//! whole ClientHello, a TLS 1.3 server flight and a bare ACK, checked with a counting global
//! allocator after one warm-up pass (lazily built regex caches and the like).

#[allow(dead_code)] // helpers shared with the acceptance tests; this file uses some
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use spoor_core::Proto;
use spoor_sensor::decode::{TcpFlags, TcpInfo};
use spoor_sensor::detect::{Detector, PacketView};
use spoor_sensor::flow::{DEFAULT_FLOW_TIMEOUT_MICROS, FlowTable};
use spoor_sensor::heuristics::Heuristics;
use support::{T0, Trails, client_hello, ip};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn view<'a>(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: TcpFlags,
    payload: &'a [u8],
) -> PacketView<'a> {
    PacketView {
        ts: T0,
        src,
        dst,
        proto: Proto::TCP,
        src_port: sport,
        dst_port: dport,
        tcp: Some(TcpInfo {
            flags,
            seq: 1,
            ack: 1,
            window: 512,
        }),
        payload,
    }
}

#[test]
fn packets_that_do_not_alert_allocate_nothing() {
    let trails = Trails::csv("evil-host.example,malware (test),(static)\n");
    let mut d = Detector::new(
        "sensor1".into(),
        Arc::clone(&trails.handle),
        FlowTable::new(1024, DEFAULT_FLOW_TIMEOUT_MICROS),
        Arc::new(Heuristics::default()),
        Vec::new(),
    );
    let request =
        b"GET /index.html HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: curl/8.5\r\n\r\n";
    let hello = client_hello("www.example.org");
    // A TLS 1.3 ServerHello (supported_versions 0x0304), then ChangeCipherSpec.
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[7; 32]);
    sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 3, 4]);
    let mut flight = vec![22, 3, 3];
    flight.extend_from_slice(&((sh.len() + 4) as u16).to_be_bytes());
    flight.push(2);
    flight.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
    flight.extend_from_slice(&sh);
    flight.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    let (c, s) = (ip("10.0.0.7"), ip("198.51.100.20"));
    let ack = TcpFlags::ACK;
    let packets = [
        view(c, 40000, s, 80, ack, request),
        view(c, 40001, s, 443, ack, &hello),
        view(s, 443, c, 40001, ack, &flight),
        view(c, 40001, s, 443, ack, &[]),
    ];
    let mut events = 0;
    for p in &packets {
        d.inspect(p, &mut |_| events += 1); // warm-up
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1_000 {
        for p in &packets {
            d.inspect(p, &mut |_| events += 1);
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(events, 0);
    assert_eq!(allocations, 0, "allocations over 4,000 packets");
    assert!(d.reassembly().is_empty());
    assert_eq!(d.counters.http_requests, 1_001);
    assert_eq!(d.counters.tls_client_hellos, 1_001);
}
