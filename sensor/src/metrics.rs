//! Counters of a running sensor: the periodic stats line and Prometheus `/metrics`.
//!
//! The packet loop owns its counters; every second (and at the end) it publishes a
//! [`Snapshot`] into a [`MetricsHub`]. The stats line and the `/metrics` endpoint read the
//! latest snapshot, so neither ever touches the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the sensor counts, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub packets: u64,
    pub bytes: u64,
    pub capture_received: u64,
    pub capture_dropped: u64,
    pub capture_if_dropped: u64,
    /// Decode errors by reason (`truncated_ipv4`, `malformed_tcp`, ...).
    pub decode_errors: BTreeMap<String, u64>,
    /// Packets whose processing panicked (a parser bug costs that packet only).
    pub packet_panics: u64,
    /// Detections, every occurrence (those folded into an earlier event included).
    pub events: u64,
    pub events_folded: u64,
    pub dns_messages: u64,
    pub http_requests: u64,
    pub tls_client_hellos: u64,
    /// Saturations of bounded state, by table.
    pub saturations: BTreeMap<String, u64>,
    pub flows: u64,
    /// CPU time spent per packet, in nanoseconds (thread CPU time / packets).
    pub ns_per_packet: f64,
    /// Seconds since the trail snapshot was compiled.
    pub trail_age_seconds: u64,
    pub trails: u64,
}

impl Snapshot {
    /// One log line for the periodic stats.
    pub fn stats_line(&self) -> String {
        let errors: u64 = self.decode_errors.values().sum();
        let saturations: u64 = self.saturations.values().sum();
        let mut line = format!(
            "packets {} bytes {} drops {} (if {}) decode_errors {} events {} (folded {}) flows {} saturations {} ns/packet {:.0} trails {} (age {} s)",
            self.packets,
            self.bytes,
            self.capture_dropped,
            self.capture_if_dropped,
            errors,
            self.events,
            self.events_folded,
            self.flows,
            saturations,
            self.ns_per_packet,
            self.trails,
            self.trail_age_seconds,
        );
        if errors > 0 {
            let reasons: Vec<String> = self
                .decode_errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = write!(line, " [{}]", reasons.join(" "));
        }
        if self.packet_panics > 0 {
            let _ = write!(line, " packet_panics {}", self.packet_panics);
        }
        line
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP spoor_sensor_{name} {help}");
            let _ = writeln!(out, "# TYPE spoor_sensor_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "spoor_sensor_{name}{labels} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v as f64)];
        let labelled = |key: &str, map: &BTreeMap<String, u64>| -> Vec<(String, f64)> {
            map.iter()
                .map(|(k, v)| (format!("{{{key}=\"{}\"}}", k.replace('"', "")), *v as f64))
                .collect()
        };
        metric(
            "packets_total",
            "counter",
            "Frames read.",
            &one(self.packets),
        );
        metric("bytes_total", "counter", "Bytes read.", &one(self.bytes));
        metric(
            "capture_dropped_total",
            "counter",
            "Frames the kernel dropped (libpcap).",
            &one(self.capture_dropped),
        );
        metric(
            "capture_if_dropped_total",
            "counter",
            "Frames the interface dropped (libpcap).",
            &one(self.capture_if_dropped),
        );
        metric(
            "decode_errors_total",
            "counter",
            "Frames not decoded, by reason.",
            &labelled("reason", &self.decode_errors),
        );
        metric(
            "packet_panics_total",
            "counter",
            "Frames whose processing hit a bug (skipped).",
            &one(self.packet_panics),
        );
        metric(
            "events_total",
            "counter",
            "Detections reported, each occurrence counted (events_folded_total of them were folded into an earlier event).",
            &one(self.events),
        );
        metric(
            "events_folded_total",
            "counter",
            "Occurrences folded into an earlier event's count.",
            &one(self.events_folded),
        );
        metric(
            "saturations_total",
            "counter",
            "Keys refused by a full bounded table, by table.",
            &labelled("table", &self.saturations),
        );
        metric("flows", "gauge", "Flows tracked.", &one(self.flows));
        metric(
            "ns_per_packet",
            "gauge",
            "CPU nanoseconds per packet over the last interval.",
            &[(String::new(), self.ns_per_packet)],
        );
        metric(
            "trails",
            "gauge",
            "Trails in the loaded snapshot.",
            &one(self.trails),
        );
        metric(
            "trail_age_seconds",
            "gauge",
            "Age of the loaded trail snapshot.",
            &one(self.trail_age_seconds),
        );
        out
    }
}

/// Where packet loops publish and readers read. Each capture source publishes under its
/// own name; readers see the sum.
#[derive(Debug, Clone, Default)]
pub struct MetricsHub {
    latest: Arc<Mutex<BTreeMap<String, Snapshot>>>,
}

impl Snapshot {
    /// Fold another source's counters into this one.
    pub fn add(&mut self, o: &Snapshot) {
        let packets_before = self.packets;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.capture_received += o.capture_received;
        self.capture_dropped += o.capture_dropped;
        self.capture_if_dropped += o.capture_if_dropped;
        for (k, v) in &o.decode_errors {
            *self.decode_errors.entry(k.clone()).or_default() += v;
        }
        self.packet_panics += o.packet_panics;
        self.events += o.events;
        self.events_folded += o.events_folded;
        self.dns_messages += o.dns_messages;
        self.http_requests += o.http_requests;
        self.tls_client_hellos += o.tls_client_hellos;
        for (k, v) in &o.saturations {
            *self.saturations.entry(k.clone()).or_default() += v;
        }
        self.flows += o.flows;
        // Weighted by packets: the cost of the average packet across sources.
        if self.packets > 0 {
            self.ns_per_packet = (self.ns_per_packet * packets_before as f64
                + o.ns_per_packet * o.packets as f64)
                / self.packets as f64;
        }
        self.trail_age_seconds = self.trail_age_seconds.max(o.trail_age_seconds);
        self.trails = self.trails.max(o.trails);
    }
}

impl MetricsHub {
    pub fn publish(&self, source: &str, s: Snapshot) {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(source.to_string(), s);
    }

    /// The sum over every source.
    pub fn latest(&self) -> Snapshot {
        let map = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = Snapshot::default();
        for s in map.values() {
            total.add(s);
        }
        total
    }

    /// Serve `GET /metrics` on `addr` from a background thread.
    pub fn serve(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let hub = self.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(&stream);
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    // Drain the headers (bounded by the read timeout and line count).
                    let mut line = String::new();
                    for _ in 0..100 {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                            break;
                        }
                    }
                    let (status, body, kind) = if request_line.starts_with("GET /metrics ") {
                        ("200 OK", hub.latest().prometheus(), "text/plain; version=0.0.4")
                    } else {
                        ("404 Not Found", "try /metrics\n".to_string(), "text/plain")
                    };
                    let mut w = &stream;
                    let _ = write!(
                        w,
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            })?;
        Ok(local)
    }
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant both Linux
    // and FreeBSD define.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn stats_line_and_prometheus_text() {
        let mut s = Snapshot {
            packets: 10,
            events: 2,
            ..Snapshot::default()
        };
        s.decode_errors.insert("truncated_ipv4".into(), 3);
        let line = s.stats_line();
        assert!(
            line.contains("packets 10") && line.contains("truncated_ipv4=3"),
            "{line}"
        );
        let text = s.prometheus();
        assert!(text.contains("spoor_sensor_packets_total 10"));
        assert!(text.contains("spoor_sensor_decode_errors_total{reason=\"truncated_ipv4\"} 3"));
    }

    #[test]
    fn serves_metrics_on_loopback() {
        let hub = MetricsHub::default();
        hub.publish(
            "a",
            Snapshot {
                packets: 40,
                ..Snapshot::default()
            },
        );
        hub.publish(
            "b",
            Snapshot {
                packets: 2,
                ..Snapshot::default()
            },
        );
        let addr = hub.serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("spoor_sensor_packets_total 42"));
    }
}
