//! The shipper against a small HTTP server in the test, on 127.0.0.1: a server that is
//! down at first, one that fails before it succeeds, one that refuses a batch, a full
//! spool, and a sensor restart. Every wait is bounded; no timing is asserted.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spoor_core::{
    BatchAck, ByteSize, Context, Event, EventBatch, EventId, EventKind, Micros, Proto,
    SensorStatus, Severity,
};
use spoor_sensor::output::shipper::{ShipperConfig, ShipperCounters, StatusFn};
use spoor_sensor::output::{EventSink, ShipperSink};

const TOKEN: &str = "sensor1-test-token";
/// Longest wait for anything in these tests (a loaded CI machine is slow, never this slow).
const WAIT: Duration = Duration::from_secs(30);

fn event(n: u64) -> Event {
    Event {
        id: EventId(0x5eed_0000_0000_0000_0000_0000_0000_0000 | u128::from(n)),
        time: Micros::from_secs_micros(1_700_000_000 + n as i64, 0),
        sensor: "sensor1".into(),
        src: "10.0.0.5".parse().unwrap(),
        src_port: Some(50000),
        dst: "192.0.2.53".parse().unwrap(),
        dst_port: Some(53),
        proto: Proto::UDP,
        kind: EventKind::Dns,
        trail: format!("listed-{n}.example"),
        info: "malware (test)".into(),
        reference: "(static)".into(),
        severity: Severity::High,
        offender: Some("10.0.0.5".parse().unwrap()),
        answers: vec![],
        count: 1,
        first_seen: Micros::from_secs_micros(1_700_000_000 + n as i64, 0),
        last_seen: Micros::from_secs_micros(1_700_000_000 + n as i64, 0),
        context: Context::default(),
    }
}

/// What the test server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Status answered to each request, in order.
    answers: Vec<u16>,
    /// Ids stored (first time each), in the order they arrived.
    stored: Vec<u128>,
    /// Ids that arrived again after being stored.
    duplicates: u64,
    /// The status of the last stored batch.
    last_status: Option<SensorStatus>,
    /// Requests without the right token.
    unauthorized: u64,
}

/// A tiny ingest server: answers the scripted statuses first, then 200 and stores.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(addr: SocketAddr, script: Vec<u16>) -> TestServer {
        TestServer::start_tls(addr, script, None)
    }

    fn start_tls(
        addr: SocketAddr,
        script: Vec<u16>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        let listener = TcpListener::bind(addr).expect("bind the test server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut script: VecDeque<u16> = script.into();
            let mut known: HashMap<u128, ()> = HashMap::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        serve(stream, tls.as_ref(), &mut script, &mut known, &seen2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stored(&self) -> Vec<u128> {
        self.seen.lock().unwrap().stored.clone()
    }

    fn wait_stored(&self, n: usize) -> Vec<u128> {
        let start = Instant::now();
        while self.stored().len() < n {
            assert!(
                start.elapsed() < WAIT,
                "server stored {:?}, expected {n}",
                self.stored().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stored()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP/1.1 request per connection, answered with `Connection: close`.
fn serve(
    stream: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    script: &mut VecDeque<u16>,
    known: &mut HashMap<u128, ()>,
    seen: &Mutex<Seen>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tls {
        None => exchange(stream, script, known, seen),
        Some(config) => {
            let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
            exchange(rustls::StreamOwned::new(conn, stream), script, known, seen);
        }
    }
}

fn exchange<S: Read + Write>(
    mut stream: S,
    script: &mut VecDeque<u16>,
    known: &mut HashMap<u128, ()>,
    seen: &Mutex<Seen>,
) {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line.trim_end() == format!("authorization: Bearer {TOKEN}")
            || line.trim_end() == format!("Authorization: Bearer {TOKEN}")
        {
            authorized = true;
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);
    assert!(
        request_line.starts_with("POST /api/v1/events "),
        "{request_line}"
    );
    let mut seen = seen.lock().unwrap();
    let (status, answer) = if !authorized {
        seen.unauthorized += 1;
        (401, "{\"error\":\"unknown token\"}".to_string())
    } else if let Some(status) = script.pop_front() {
        (status, format!("{{\"error\":\"scripted {status}\"}}"))
    } else {
        let batch: EventBatch = serde_json::from_slice(&body).expect("a valid batch");
        let mut ack = BatchAck::default();
        for e in &batch.events {
            if known.insert(e.id.0, ()).is_none() {
                seen.stored.push(e.id.0);
                ack.accepted += 1;
            } else {
                seen.duplicates += 1;
                ack.duplicates += 1;
            }
        }
        seen.last_status = Some(batch.status);
        (200, serde_json::to_string(&ack).unwrap())
    };
    seen.answers.push(status);
    drop(seen);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.flush();
}

/// A free port on 127.0.0.1 with nothing listening (yet).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config(dir: &Path, url: &str) -> ShipperConfig {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut c = ShipperConfig::new(url, token, dir.join("spool"));
    c.batch_size = 7;
    c.flush_interval = spoor_core::Duration(Duration::from_millis(50));
    c.backoff_min = spoor_core::Duration(Duration::from_millis(10));
    c.backoff_max = spoor_core::Duration(Duration::from_millis(100));
    c.timeout = spoor_core::Duration::from_secs(5);
    c.queue_capacity = 4;
    c
}

fn status() -> StatusFn {
    Box::new(|| SensorStatus {
        name: "sensor1".into(),
        version: "test".into(),
        ..SensorStatus::default()
    })
}

fn ids(range: std::ops::Range<u64>) -> Vec<u128> {
    range.map(|n| event(n).id.0).collect()
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn load(c: &ShipperCounters) -> (u64, u64, u64, u64) {
    (
        c.sent.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.rejected_events.load(Ordering::Relaxed),
        c.spool_dropped.load(Ordering::Relaxed),
    )
}

fn spool_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect()
}

#[test]
fn a_server_that_is_down_at_first_gets_every_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut sink = ShipperSink::new(
        config(dir.path(), &format!("http://{addr}")),
        status(),
        None,
    )
    .unwrap();
    let counters = sink.counters();
    // More events than the queue holds: the rest go to the spool directly, in order.
    for n in 0..50 {
        sink.emit(&event(n)).unwrap();
    }
    sink.flush().unwrap();
    wait_for("failed attempts", || {
        counters.errors.load(Ordering::Relaxed) >= 1
    });
    assert_eq!(counters.unsent.load(Ordering::Relaxed), 50);
    assert!(!spool_files(dir.path()).is_empty());
    let server = TestServer::start(addr, vec![]);
    let stored = server.wait_stored(50);
    assert_eq!(stored, ids(0..50), "every id, once, in the order emitted");
    assert_eq!(
        server.seen.lock().unwrap().answers,
        [200],
        "the backlog goes in one request, not in batches of batch_size (7)"
    );
    wait_for("the spool to empty", || {
        counters.unsent.load(Ordering::Relaxed) == 0
    });
    assert_eq!(server.seen.lock().unwrap().duplicates, 0);
    assert_eq!(server.seen.lock().unwrap().unauthorized, 0);
    assert_eq!(counters.spool_bytes.load(Ordering::Relaxed), 0);
    assert_eq!(load(&counters).0, 50);
}

#[test]
fn answers_503_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_addr(), vec![503, 503]);
    let mut sink = ShipperSink::new(config(dir.path(), &server.url()), status(), None).unwrap();
    let counters = sink.counters();
    for n in 0..5 {
        sink.emit(&event(n)).unwrap();
    }
    assert_eq!(server.wait_stored(5), ids(0..5));
    assert_eq!(server.seen.lock().unwrap().answers, [503, 503, 200]);
    wait_for("the acknowledgement", || {
        counters.unsent.load(Ordering::Relaxed) == 0
    });
    let (sent, errors, rejected, _) = load(&counters);
    assert_eq!((sent, errors, rejected), (5, 2, 0));
}

#[test]
fn a_batch_refused_with_400_is_set_aside_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_addr(), vec![400]);
    let mut sink = ShipperSink::new(config(dir.path(), &server.url()), status(), None).unwrap();
    let counters = sink.counters();
    for n in 0..3 {
        sink.emit(&event(n)).unwrap();
    }
    wait_for("the refused batch", || {
        counters.rejected_batches.load(Ordering::Relaxed) == 1
    });
    for n in 3..5 {
        sink.emit(&event(n)).unwrap();
    }
    assert_eq!(server.wait_stored(2), ids(3..5));
    assert_eq!(
        server.seen.lock().unwrap().answers,
        [400, 200],
        "not retried"
    );
    wait_for("the acknowledgement", || {
        counters.unsent.load(Ordering::Relaxed) == 0
    });
    let (sent, errors, rejected, _) = load(&counters);
    assert_eq!((sent, errors, rejected), (2, 0, 3));
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("spool/rejected"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    let body = std::fs::read(kept[0].as_ref().unwrap().path()).unwrap();
    let batch: EventBatch = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        batch.events.iter().map(|e| e.id.0).collect::<Vec<_>>(),
        ids(0..3)
    );
}

#[test]
fn a_full_spool_drops_counts_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut c = config(dir.path(), &format!("http://{addr}"));
    c.spool_max_size = ByteSize(8 * 1024);
    let hub = spoor_sensor::metrics::MetricsHub::default();
    let mut sink = ShipperSink::new(c, status(), Some(hub.clone())).unwrap();
    let counters = sink.counters();
    for n in 0..200 {
        sink.emit(&event(n)).unwrap();
    }
    sink.flush().unwrap();
    wait_for("events in the spool", || {
        counters.unsent.load(Ordering::Relaxed) + counters.spool_dropped.load(Ordering::Relaxed)
            == 200
    });
    let dropped = counters.spool_dropped.load(Ordering::Relaxed);
    let kept = counters.unsent.load(Ordering::Relaxed);
    assert!(dropped > 0 && kept > 0, "kept {kept} dropped {dropped}");
    let on_disk: u64 = spool_files(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= 8 * 1024, "{on_disk}");
    let server = TestServer::start(addr, vec![]);
    let stored = server.wait_stored(kept as usize);
    // The oldest events were kept, the newest dropped.
    assert_eq!(stored, ids(0..kept));
    let status = server.seen.lock().unwrap().last_status.clone().unwrap();
    assert_eq!(status.spool_dropped, dropped);
    assert_eq!(sink.transport_stats().unwrap().dropped, dropped);
    // ... and on /metrics, as the shipper_spool saturation.
    wait_for("the metrics", || {
        hub.latest().saturations.get("shipper_spool") == Some(&dropped)
    });
    assert!(
        hub.latest()
            .prometheus()
            .contains(&format!("{{table=\"shipper_spool\"}} {dropped}"))
    );
}

#[test]
fn a_restart_replays_the_spool_and_resends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let url = format!("http://{addr}");
    let server = TestServer::start(addr, vec![]);
    {
        let mut sink = ShipperSink::new(config(dir.path(), &url), status(), None).unwrap();
        for n in 0..10 {
            sink.emit(&event(n)).unwrap();
        }
        server.wait_stored(10);
        wait_for("the acknowledgement", || {
            sink.counters().unsent.load(Ordering::Relaxed) == 0
        });
    }
    drop(server);
    {
        // The server goes away; these wait in the spool when the sensor stops.
        let mut sink = ShipperSink::new(config(dir.path(), &url), status(), None).unwrap();
        for n in 10..40 {
            sink.emit(&event(n)).unwrap();
        }
        sink.flush().unwrap();
    }
    let server = TestServer::start(addr, vec![]);
    let sink = ShipperSink::new(config(dir.path(), &url), status(), None).unwrap();
    assert_eq!(server.wait_stored(30), ids(10..40), "replayed in order");
    wait_for("the spool to empty", || {
        sink.counters().unsent.load(Ordering::Relaxed) == 0
    });
    assert_eq!(server.seen.lock().unwrap().duplicates, 0);
}

#[test]
fn a_wrong_token_is_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_addr(), vec![]);
    let c = config(dir.path(), &server.url());
    std::fs::write(&c.token_file, "wrong-token\n").unwrap();
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    let counters = sink.counters();
    sink.emit(&event(1)).unwrap();
    wait_for("retries", || counters.errors.load(Ordering::Relaxed) >= 2);
    assert_eq!(counters.rejected_events.load(Ordering::Relaxed), 0);
    assert_eq!(counters.unsent.load(Ordering::Relaxed), 1);
    assert!(server.stored().is_empty());
}

/// A self-signed certificate for `name`, and a rustls server config serving it.
fn self_signed(name: &str) -> (Vec<u8>, String, Arc<rustls::ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let der = certified.cert.der().to_vec();
    let pem = certified.cert.pem();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone().into()], key)
        .unwrap();
    (der, pem, Arc::new(config))
}

#[test]
fn https_with_the_pinned_certificate_delivers_and_another_certificate_is_refused() {
    use spoor_sensor::output::pin::{fingerprint, format_fingerprint};
    // The certificate names a host the URL does not: the pin, not the name, is checked.
    let (der, _, tls) = self_signed("spoor-server.invalid");
    let server = TestServer::start_tls(free_addr(), vec![], Some(tls));
    let url = format!("https://{}", server.addr);

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &url);
    c.pin_sha256 = Some(format_fingerprint(&fingerprint(&der)));
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    for n in 0..3 {
        sink.emit(&event(n)).unwrap();
    }
    assert_eq!(server.wait_stored(3), ids(0..3));

    let other = tempfile::tempdir().unwrap();
    let mut c = config(other.path(), &url);
    let (other_der, _, _) = self_signed("spoor-server.invalid");
    c.pin_sha256 = Some(format_fingerprint(&fingerprint(&other_der)));
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    let counters = sink.counters();
    sink.emit(&event(10)).unwrap();
    wait_for("refused handshakes", || {
        counters.errors.load(Ordering::Relaxed) >= 2
    });
    assert_eq!(counters.unsent.load(Ordering::Relaxed), 1, "kept for later");
    assert_eq!(server.stored(), ids(0..3));
}

#[test]
fn https_with_a_ca_file_verifies_the_name() {
    let (_, pem, tls) = self_signed("localhost");
    let server = TestServer::start_tls(free_addr(), vec![], Some(tls));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();

    let mut c = config(
        dir.path(),
        &format!("https://localhost:{}", server.addr.port()),
    );
    c.ca_file = Some(ca.clone());
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    sink.emit(&event(1)).unwrap();
    assert_eq!(server.wait_stored(1), ids(1..2));

    // The same certificate reached by an address it does not name: refused.
    let other = tempfile::tempdir().unwrap();
    let mut c = config(other.path(), &format!("https://{}", server.addr));
    c.ca_file = Some(ca);
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    let counters = sink.counters();
    sink.emit(&event(2)).unwrap();
    wait_for("refused handshakes", || {
        counters.errors.load(Ordering::Relaxed) >= 2
    });
    assert_eq!(server.stored(), ids(1..2));
}

#[test]
fn events_spooled_at_shutdown_are_sent_before_the_sink_is_gone() {
    // `spoor sensor -r capture.pcap` ends right after its last event: the shipper sends
    // what it holds before it stops, without waiting for flush_interval.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_addr(), vec![]);
    let mut c = config(dir.path(), &server.url());
    c.flush_interval = spoor_core::Duration::from_secs(3600);
    c.batch_size = 1000;
    let mut sink = ShipperSink::new(c, status(), None).unwrap();
    for n in 0..20 {
        sink.emit(&event(n)).unwrap();
    }
    drop(sink);
    assert_eq!(server.stored(), ids(0..20));
}
