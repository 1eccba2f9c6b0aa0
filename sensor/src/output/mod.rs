//! Outputs: render each [`Event`] and ship it to every configured sink.
//!
//! A sink is one config struct plus one [`EventSink`] implementation, each in its own file:
//!
//! | sink | file | what it writes |
//! |---|---|---|
//! | [`DailyLogSink`] | `daily.rs` | Maltrail's `<dir>/YYYY-MM-DD.log`, one event line each |
//! | [`FileSink`] | `file.rs` | one appended file, any [`Format`] |
//! | [`TcpSink`] | `tcp.rs` | a collector over TCP (Logstash JSON lines, syslog/CEF), queued |
//! | [`UdpSink`] | `udp.rs` | one datagram per event (syslog/CEF, JSON), size-capped |
//! | [`ShipperSink`] | `shipper.rs` | Spoor's server over HTTPS, batched, through an on-disk spool (`spool.rs`), pinned or CA-verified TLS (`pin.rs`) |
//!
//! Renderers are pure functions from an event to text: [`maltrail`] (byte-compatible event
//! line), [`json`] (EVE-compatible JSON), [`cef`] (ArcSight CEF) and [`syslog`] (RFC 5424 /
//! RFC 3164 headers around a CEF message). [`Encoder`] picks one for a sink.
//!
//! [`Outputs`] fans each event out to every sink and counts successes and failures per sink
//! for the stats line. One broken sink (a full disk, a collector that went away, even a
//! panicking sink) never stops the others or the sensor: its failures are counted and logged
//! at most once per [`ERROR_LOG_INTERVAL`].
//!
//! Times: every renderer writes the event's packet time in UTC. Maltrail writes local time,
//! but Rust's standard library has no time-zone database and a sensor on a firewall should
//! not depend on one; UTC is unambiguous across sensors and DST changes.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use spoor_core::Event;

pub mod cef;
pub mod daily;
pub mod encoder;
pub mod file;
pub mod json;
pub mod maltrail;
pub use spoor_core::pin;
pub mod shipper;
pub mod spool;
pub mod syslog;
pub mod tcp;
pub mod time;
pub mod udp;
#[cfg(test)]
pub(crate) mod vectors;

pub use daily::{DailyLogConfig, DailyLogSink};
pub use encoder::{Encoder, Format};
pub use file::{FileConfig, FileSink};
pub use shipper::{ShipperConfig, ShipperSink};
pub use syslog::{SyslogConfig, SyslogRfc};
pub use tcp::{TcpConfig, TcpFraming, TcpSink};
pub use udp::{UdpConfig, UdpSink};

/// The most often one sink's failures are logged; the ones in between are counted and
/// reported with the next log line, so a dead collector cannot flood the log.
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Why a sink could not take an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Writing, opening or syncing a file or socket failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The in-memory queue in front of a network sink is full; the event was dropped.
    #[error("queue full ({capacity} events), event dropped")]
    QueueFull { capacity: usize },
    /// The rendered event is larger than one datagram may be; the event was dropped.
    #[error("event is {len} bytes, more than the {max} allowed in one datagram")]
    Oversize { len: usize, max: usize },
    /// A flush did not finish in time (e.g. the collector is unreachable).
    #[error("{pending} events still queued after {waited:?}")]
    FlushTimeout { pending: usize, waited: Duration },
    /// The sink panicked; the event is lost but the sensor goes on.
    #[error("sink panicked")]
    Panicked,
}

impl OutputError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> OutputError {
        OutputError::Io {
            what: what.into(),
            source,
        }
    }
}

/// One destination for events.
pub trait EventSink: Send + fmt::Debug {
    /// A short name for logs and the stats line (`maltrail-log`, `json-tcp`, ...).
    fn name(&self) -> &str;
    /// Render and write (or queue) one event.
    fn emit(&mut self, event: &Event) -> Result<(), OutputError>;
    /// Push buffered data to its destination (fsync for files, drain the queue for sockets).
    fn flush(&mut self) -> Result<(), OutputError>;
    /// Counters of a sink that ships in the background (queued network sinks).
    fn transport_stats(&self) -> Option<TransportStats> {
        None
    }
}

/// What a background shipper did, for the stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Events written to the socket.
    pub sent: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Failed connects and writes.
    pub errors: u64,
    /// Successful (re)connects.
    pub connects: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
}

/// Per-sink counters kept by [`Outputs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Events the sink accepted (for queued network sinks: put on the queue; what was
    /// actually written is in [`TransportStats::sent`]).
    pub emitted: u64,
    /// Events the sink refused or failed on.
    pub failed: u64,
    /// Failed flushes.
    pub flush_failed: u64,
}

/// A sink's name with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkReport {
    pub name: String,
    pub stats: SinkStats,
    pub transport: Option<TransportStats>,
}

impl fmt::Display for SinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: ok={} failed={}",
            self.name, self.stats.emitted, self.stats.failed
        )?;
        if self.stats.flush_failed > 0 {
            write!(f, " flush_failed={}", self.stats.flush_failed)?;
        }
        if let Some(t) = self.transport {
            write!(
                f,
                " sent={} dropped={} errors={} connects={} queued={}",
                t.sent, t.dropped, t.errors, t.connects, t.queued
            )?;
        }
        Ok(())
    }
}

/// Logs one sink's errors at most once per [`ERROR_LOG_INTERVAL`].
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn report(&mut self, sink: &str, action: &str, err: &OutputError) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < ERROR_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            sink,
            action,
            error = %err,
            suppressed = self.suppressed,
            "output failed"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[derive(Debug)]
struct Slot {
    sink: Box<dyn EventSink>,
    stats: SinkStats,
    errors: ErrorLog,
}

/// Fan-out: every event goes to every sink; each sink's outcome is counted on its own.
#[derive(Debug, Default)]
pub struct Outputs {
    slots: Vec<Slot>,
}

impl Outputs {
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// Add a sink; events go to sinks in the order they were added.
    pub fn add(&mut self, sink: Box<dyn EventSink>) {
        self.slots.push(Slot {
            sink,
            stats: SinkStats::default(),
            errors: ErrorLog::default(),
        });
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Send one event to every sink. Failures are counted and logged, never returned: the
    /// sensor goes on whatever a sink does.
    pub fn emit(&mut self, event: &Event) {
        for slot in &mut self.slots {
            let outcome = catch_unwind(AssertUnwindSafe(|| slot.sink.emit(event)))
                .unwrap_or(Err(OutputError::Panicked));
            match outcome {
                Ok(()) => slot.stats.emitted += 1,
                Err(err) => {
                    slot.stats.failed += 1;
                    slot.errors.report(slot.sink.name(), "emit", &err);
                }
            }
        }
    }

    /// Flush every sink (e.g. once a second and at shutdown).
    pub fn flush(&mut self) {
        for slot in &mut self.slots {
            let outcome = catch_unwind(AssertUnwindSafe(|| slot.sink.flush()))
                .unwrap_or(Err(OutputError::Panicked));
            if let Err(err) = outcome {
                slot.stats.flush_failed += 1;
                slot.errors.report(slot.sink.name(), "flush", &err);
            }
        }
    }

    /// Counters of every sink, in the order the sinks were added.
    pub fn reports(&self) -> Vec<SinkReport> {
        self.slots
            .iter()
            .map(|s| SinkReport {
                name: s.sink.name().to_owned(),
                stats: s.stats,
                transport: s.sink.transport_stats(),
            })
            .collect()
    }

    /// One line for the periodic stats log: `maltrail-log: ok=3 failed=0; json-tcp: ...`.
    pub fn stats_line(&self) -> String {
        self.reports()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use spoor_core::{Context, Event, EventId, EventKind, Micros, Proto, Severity};

    /// A DNS hit at 2023-11-14 22:13:20.123456 UTC.
    pub(crate) fn dns_event() -> Event {
        Event {
            id: EventId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            time: Micros::from_secs_micros(1_700_000_000, 123_456),
            sensor: "sensor1".into(),
            src: "10.0.0.5".parse().unwrap(),
            src_port: Some(50000),
            dst: "8.8.8.8".parse().unwrap(),
            dst_port: Some(53),
            proto: Proto::UDP,
            kind: EventKind::Dns,
            trail: "evil.com".into(),
            info: "malware (test)".into(),
            reference: "(static)".into(),
            severity: Severity::High,
            offender: Some("10.0.0.5".parse().unwrap()),
            answers: vec!["203.0.113.9".parse().unwrap()],
            count: 3,
            first_seen: Micros::from_secs_micros(1_700_000_000, 123_456),
            last_seen: Micros::from_secs_micros(1_700_000_060, 0),
            context: Context {
                dns: Some(spoor_core::DnsContext {
                    qname: "www.evil.com".into(),
                    qtype: "A".into(),
                    rcode: Some("NOERROR".into()),
                }),
                ..Context::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Broken {
        panic: bool,
    }

    impl EventSink for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn emit(&mut self, _: &Event) -> Result<(), OutputError> {
            if self.panic {
                panic!("sink bug");
            }
            Err(OutputError::QueueFull { capacity: 0 })
        }
        fn flush(&mut self) -> Result<(), OutputError> {
            Err(OutputError::QueueFull { capacity: 0 })
        }
    }

    #[derive(Debug, Default)]
    struct Counting(u64);

    impl EventSink for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn emit(&mut self, _: &Event) -> Result<(), OutputError> {
            self.0 += 1;
            Ok(())
        }
        fn flush(&mut self) -> Result<(), OutputError> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_sink_does_not_stop_the_others() {
        let mut outputs = Outputs::new();
        outputs.add(Box::new(Broken { panic: false }));
        outputs.add(Box::new(Broken { panic: true }));
        outputs.add(Box::new(Counting::default()));
        let event = test_support::dns_event();
        for _ in 0..3 {
            outputs.emit(&event);
        }
        outputs.flush();
        let reports = outputs.reports();
        assert_eq!(reports[0].stats.failed, 3);
        assert_eq!(reports[0].stats.flush_failed, 1);
        assert_eq!(reports[1].stats.failed, 3);
        assert_eq!(reports[2].stats.emitted, 3);
        assert_eq!(reports[2].stats.failed, 0);
        let line = outputs.stats_line();
        assert!(line.contains("counting: ok=3 failed=0"), "{line}");
    }
}
