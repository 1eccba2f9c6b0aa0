//! Events to a collector over TCP: JSON lines to Logstash's `tcp` input (`codec =>
//! json_lines`), or syslog/CEF to a syslog server (RFC 6587 octet counting or newlines).
//!
//! The packet path must never wait on a network: [`TcpSink::emit`] renders the event and
//! puts it on a bounded in-memory queue; a background thread owns the connection, connects
//! (and reconnects after any error) with exponential backoff between
//! [`TcpConfig::backoff_min`] and [`TcpConfig::backoff_max`], and writes. When the queue is
//! full the event is dropped and counted, never blocked on. Events queued while the
//! collector is away are delivered when it returns. TCP has no acknowledgements, so the
//! event written just before a collector vanishes can be lost without an error; the
//! shipper to Spoor's own server (not this sink) is the at-least-once path.
//!
//! Dropping the sink stops the thread without waiting: call [`EventSink::flush`] first
//! (as [`super::Outputs::flush`] does at shutdown) to drain the queue.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Deserialize;
use spoor_core::{Duration as ConfigDuration, Event};

use super::encoder::{Encoder, Format};
use super::syslog::SyslogConfig;
use super::{ErrorLog, EventSink, OutputError, TransportStats};

/// Events held while the collector is slow or away (default of `queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// How often a sleeping writer looks whether the sink was dropped.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// How often [`EventSink::flush`] looks whether the queue is empty.
const FLUSH_POLL: Duration = Duration::from_millis(5);

/// How events are delimited on the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpFraming {
    /// Each event followed by `\n` (JSON lines, RFC 6587 non-transparent framing).
    #[default]
    Newline,
    /// `<length> <event>` (RFC 6587 octet counting; RFC 5425/6587 syslog receivers).
    OctetCounting,
}

fn default_queue_capacity() -> usize {
    DEFAULT_QUEUE_CAPACITY
}
fn default_backoff_min() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(500))
}
fn default_backoff_max() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}
fn default_connect_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}
fn default_write_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}
fn default_flush_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}

/// `[[output.tcp]]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// `host:port` of the collector; resolved at every connect.
    pub address: String,
    /// `json` (default), `cef` or `maltrail`.
    #[serde(default)]
    pub format: Format,
    /// Write a syslog header in front of each event (for syslog/CEF receivers).
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
    /// `newline` (default) or `octet-counting`.
    #[serde(default)]
    pub framing: TcpFraming,
    /// Events held while the collector is slow or away; more are dropped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// First wait after a failed connect or write (default 500ms); doubles each time.
    #[serde(default = "default_backoff_min")]
    pub backoff_min: ConfigDuration,
    /// Longest wait between connect attempts (default 60s).
    #[serde(default = "default_backoff_max")]
    pub backoff_max: ConfigDuration,
    /// Give up one connect attempt after this long (default 5s).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// A write blocked this long counts as a failure and reconnects (default 10s).
    #[serde(default = "default_write_timeout")]
    pub write_timeout: ConfigDuration,
    /// How long `flush` waits for the queue to drain (default 5s).
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout: ConfigDuration,
}

impl TcpConfig {
    /// A config with every default but the address and format.
    pub fn new(address: impl Into<String>, format: Format) -> TcpConfig {
        TcpConfig {
            address: address.into(),
            format,
            syslog: None,
            framing: TcpFraming::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
            connect_timeout: default_connect_timeout(),
            write_timeout: default_write_timeout(),
            flush_timeout: default_flush_timeout(),
        }
    }
}

/// Counters shared by the sink and its writer thread.
#[derive(Debug, Default)]
struct Shared {
    sent: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
    /// Events accepted by `emit` and not yet written (in the channel or being retried).
    queued: AtomicU64,
    shutdown: AtomicBool,
}

/// Ships events to a TCP collector from a background thread.
#[derive(Debug)]
pub struct TcpSink {
    name: String,
    encoder: Encoder,
    framing: TcpFraming,
    capacity: usize,
    flush_timeout: Duration,
    tx: Option<SyncSender<Vec<u8>>>,
    shared: Arc<Shared>,
}

impl TcpSink {
    /// Starts the writer thread; the first connect happens in the background, so an absent
    /// collector does not keep the sensor from starting.
    pub fn new(config: TcpConfig) -> Result<TcpSink, OutputError> {
        let capacity = config.queue_capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let shared = Arc::new(Shared::default());
        let name = format!("{:?}-tcp", config.format).to_lowercase();
        let writer = Writer {
            address: config.address,
            rx,
            shared: Arc::clone(&shared),
            backoff_min: config.backoff_min.as_std().max(Duration::from_millis(1)),
            backoff_max: config.backoff_max.as_std(),
            connect_timeout: config.connect_timeout.as_std(),
            write_timeout: config.write_timeout.as_std(),
            name: name.clone(),
            errors: ErrorLog::default(),
        };
        std::thread::Builder::new()
            .name(format!("spoor-{name}"))
            .spawn(move || writer.run())
            .map_err(|e| OutputError::io("starting the TCP writer thread", e))?;
        Ok(TcpSink {
            name,
            encoder: Encoder::new(config.format, config.syslog),
            framing: config.framing,
            capacity,
            flush_timeout: config.flush_timeout.as_std(),
            tx: Some(tx),
            shared,
        })
    }

    fn frame(&self, message: String) -> Vec<u8> {
        match self.framing {
            TcpFraming::Newline => {
                let mut bytes = message.into_bytes();
                bytes.push(b'\n');
                bytes
            }
            TcpFraming::OctetCounting => format!("{} {message}", message.len()).into_bytes(),
        }
    }
}

impl EventSink for TcpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn emit(&mut self, event: &Event) -> Result<(), OutputError> {
        let bytes = self.frame(self.encoder.encode(event));
        let Some(tx) = &self.tx else {
            return Err(OutputError::io(
                "TCP sink",
                std::io::ErrorKind::BrokenPipe.into(),
            ));
        };
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                match err {
                    TrySendError::Full(_) => {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        Err(OutputError::QueueFull {
                            capacity: self.capacity,
                        })
                    }
                    TrySendError::Disconnected(_) => Err(OutputError::io(
                        "TCP writer thread is gone",
                        std::io::ErrorKind::BrokenPipe.into(),
                    )),
                }
            }
        }
    }

    /// Waits until every queued event is written, up to the configured flush timeout.
    fn flush(&mut self) -> Result<(), OutputError> {
        let start = Instant::now();
        loop {
            let pending = self.shared.queued.load(Ordering::Relaxed);
            if pending == 0 {
                return Ok(());
            }
            if start.elapsed() >= self.flush_timeout {
                return Err(OutputError::FlushTimeout {
                    pending: pending as usize,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(FLUSH_POLL);
        }
    }

    fn transport_stats(&self) -> Option<TransportStats> {
        let s = &self.shared;
        Some(TransportStats {
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            connects: s.connects.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
        })
    }
}

impl Drop for TcpSink {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.tx = None;
    }
}

/// The background half: owns the connection.
struct Writer {
    address: String,
    rx: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    backoff_min: Duration,
    backoff_max: Duration,
    connect_timeout: Duration,
    write_timeout: Duration,
    name: String,
    errors: ErrorLog,
}

impl Writer {
    fn run(mut self) {
        let mut conn: Option<TcpStream> = None;
        let mut backoff = self.backoff_min;
        while let Ok(message) = self.rx.recv() {
            // Retry this event until it is written or the sink is dropped.
            loop {
                if self.shared.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                let stream = match &mut conn {
                    Some(stream) => stream,
                    None => match self.connect() {
                        Ok(stream) => {
                            self.shared.connects.fetch_add(1, Ordering::Relaxed);
                            backoff = self.backoff_min;
                            conn.insert(stream)
                        }
                        Err(e) => {
                            self.failed("connect", e);
                            self.sleep(backoff);
                            backoff = (backoff * 2).min(self.backoff_max);
                            continue;
                        }
                    },
                };
                match stream.write_all(&message) {
                    Ok(()) => {
                        self.shared.sent.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => {
                        conn = None;
                        self.failed("write", e);
                    }
                }
            }
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} resolves to no address", self.address),
        );
        for addr in self.address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => {
                    stream.set_write_timeout(Some(self.write_timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn failed(&mut self, action: &str, e: std::io::Error) {
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        let err = OutputError::io(format!("{action} {}", self.address), e);
        self.errors.report(&self.name, action, &err);
    }

    /// Sleeps `total`, waking early when the sink is dropped.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(SHUTDOWN_POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;

    fn fast_config(port: u16, format: Format) -> TcpConfig {
        let mut config = TcpConfig::new(format!("127.0.0.1:{port}"), format);
        config.backoff_min = ConfigDuration(Duration::from_millis(10));
        config.backoff_max = ConfigDuration(Duration::from_millis(40));
        config.connect_timeout = ConfigDuration(Duration::from_secs(1));
        config.flush_timeout = ConfigDuration(Duration::from_secs(10));
        config
    }

    /// A port on 127.0.0.1 with nothing listening on it (bound once, then released).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn read_lines(stream: TcpStream, n: usize) -> Vec<String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        (0..n)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line
            })
            .collect()
    }

    #[test]
    fn config_reads_with_defaults() {
        let config: TcpConfig = serde_json::from_str(
            r#"{"address": "127.0.0.1:6514", "format": "cef", "framing": "octet-counting",
                "syslog": {"rfc": "rfc3164"}, "backoff_min": "10ms"}"#,
        )
        .unwrap();
        assert_eq!(config.format, Format::Cef);
        assert_eq!(config.framing, TcpFraming::OctetCounting);
        assert_eq!(config.syslog.unwrap().facility, 16);
        assert_eq!(config.backoff_min.as_std(), Duration::from_millis(10));
        assert_eq!(config.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert!(serde_json::from_str::<TcpConfig>(r#"{"address": "x:1", "bogus": 1}"#).is_err());
    }

    #[test]
    fn json_lines_reach_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sink = TcpSink::new(fast_config(port, Format::Json)).unwrap();
        assert_eq!(sink.name(), "json-tcp");
        for _ in 0..3 {
            sink.emit(&dns_event()).unwrap();
        }
        let (stream, _) = listener.accept().unwrap();
        let lines = read_lines(stream, 3);
        for line in &lines {
            assert!(line.ends_with('\n'));
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["event_type"], "alert");
        }
        sink.flush().unwrap();
        let stats = sink.transport_stats().unwrap();
        assert_eq!((stats.sent, stats.dropped, stats.queued), (3, 0, 0));
        assert_eq!(stats.connects, 1);
    }

    #[test]
    fn syslog_cef_with_octet_counting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = fast_config(port, Format::Cef);
        config.syslog = Some(SyslogConfig::default());
        config.framing = TcpFraming::OctetCounting;
        let mut sink = TcpSink::new(config).unwrap();
        sink.emit(&dns_event()).unwrap();
        sink.emit(&dns_event()).unwrap();
        sink.flush().unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut data = Vec::new();
        while data.iter().filter(|&&b| b == b'|').count() < 14 {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            data.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(data).unwrap();
        let mut rest = text.as_str();
        for _ in 0..2 {
            let (len, tail) = rest.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            let (message, tail) = tail.split_at(len);
            assert!(message.starts_with(
                "<130>1 2023-11-14T22:13:20.123456Z sensor1 spoor - - - CEF:0|Spoor|Spoor Sensor|"
            ));
            assert!(message.contains(" cs1Label=trail cs1=evil.com "));
            rest = tail;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn absent_collector_counts_failures_and_reconnects_when_it_returns() {
        let port = free_port();
        let mut config = fast_config(port, Format::Json);
        config.queue_capacity = 4;
        let mut sink = TcpSink::new(config).unwrap();
        let (mut accepted, mut dropped) = (0, 0);
        for _ in 0..8 {
            match sink.emit(&dns_event()) {
                Ok(()) => accepted += 1,
                Err(OutputError::QueueFull { capacity: 4 }) => dropped += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(
            dropped >= 3,
            "queue of 4 (+1 in the writer) took {accepted}"
        );
        // Give the writer time to fail a few connects.
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.transport_stats().unwrap().errors < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = sink.transport_stats().unwrap();
        assert!(stats.errors >= 2, "{stats:?}");
        assert_eq!(stats.dropped, dropped);
        assert_eq!(stats.sent, 0);
        // A flush gives up after its timeout while the collector is away.
        let mut impatient = fast_config(port, Format::Json);
        impatient.flush_timeout = ConfigDuration(Duration::from_millis(50));
        let mut impatient = TcpSink::new(impatient).unwrap();
        impatient.emit(&dns_event()).unwrap();
        assert!(matches!(
            impatient.flush(),
            Err(OutputError::FlushTimeout { pending: 1, .. })
        ));
        drop(impatient);
        // Let its writer see the drop before the collector returns.
        std::thread::sleep(Duration::from_millis(200));

        // The collector comes back on the same port: everything queued arrives.
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let lines = read_lines(stream, accepted);
        assert!(lines.iter().all(|l| l.contains("\"event_type\":\"alert\"")));
        sink.flush().unwrap();
        let stats = sink.transport_stats().unwrap();
        assert_eq!(stats.sent, accepted as u64);
        assert_eq!(stats.connects, 1);

        // The collector goes away and returns again: the sink reconnects.
        drop(listener);
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            assert!(
                Instant::now() < deadline,
                "no reconnect: {:?}",
                sink.transport_stats()
            );
            sink.emit(&dns_event()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            if let Ok((stream, _)) = listener.accept() {
                break stream;
            }
        };
        stream.set_nonblocking(false).unwrap();
        let line = read_lines(stream, 1).remove(0);
        assert!(line.contains("\"event_type\":\"alert\""));
        assert!(sink.transport_stats().unwrap().connects >= 2);
    }
}
