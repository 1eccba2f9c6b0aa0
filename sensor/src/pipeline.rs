//! The packet loop: frames → decode → detect → condense → events.
//!
//! One [`Pipeline`] runs on one thread over one capture source, or as one of several
//! workers ([`Pipeline::worker`], see [`crate::workers`]): then it shares the heuristics
//! with the other workers and passes its events on uncondensed. Every frame is processed
//! inside `catch_unwind`, so a parser bug costs that frame (counted as a packet panic),
//! not the sensor. Counters are published to the [`MetricsHub`] about once a second and
//! logged as a stats line every `stats_interval`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use spoor_core::Event;
use spoor_feeds::TrailHandle;

use crate::capture::{CaptureError, CaptureSource, CaptureStats, Frame, Next};
use crate::condense::Condenser;
use crate::config::SensorConfig;
use crate::decode::{DecodeError, DecodeLimits, Decoder};
use crate::detect::{Detector, PacketView};
use crate::flow::FlowTable;
use crate::heuristics::Heuristics;
use crate::metrics::{MetricsHub, Snapshot, thread_cpu_nanos};

/// Frames between looks at the wall clock (publishing metrics, stats lines).
const CLOCK_CHECK_EVERY: u64 = 4096;

/// One capture source's processing chain.
#[derive(Debug)]
pub struct Pipeline {
    decoder: Decoder,
    detector: Detector,
    condenser: Condenser,
    trails: Arc<TrailHandle>,
    metrics: MetricsHub,
    stats_interval: std::time::Duration,
    packets: u64,
    bytes: u64,
    panics: u64,
    capture: CaptureStats,
    cpu_mark: (u64, u64),
    ns_per_packet: f64,
    last_publish: Instant,
    last_stats: Instant,
    name: String,
    /// Fold repeats here (one pipeline) or pass every event on (a worker of several,
    /// whose events meet in one [`crate::workers`] condenser).
    condense: bool,
    /// Report the shared heuristics' saturations (one worker of several does).
    report_shared: bool,
}

impl Pipeline {
    pub fn new(config: &SensorConfig, trails: Arc<TrailHandle>, metrics: MetricsHub) -> Self {
        let heuristics = Arc::new(Heuristics::new(config.heuristics));
        Pipeline::with_heuristics(config, trails, metrics, heuristics)
    }

    /// A pipeline whose heuristics are shared with other pipelines (the workers of one
    /// sensor).
    pub fn with_heuristics(
        config: &SensorConfig,
        trails: Arc<TrailHandle>,
        metrics: MetricsHub,
        heuristics: Arc<Heuristics>,
    ) -> Self {
        let detector = Detector::new(
            config.name.clone(),
            Arc::clone(&trails),
            FlowTable::new(config.max_flows, config.flow_timeout_micros),
            heuristics,
            config.ignore.clone(),
        )
        .with_reassembly(config.reassembly)
        .with_content_heuristics(config.content_heuristics);
        Pipeline {
            decoder: Decoder::new(DecodeLimits::default()),
            detector,
            condenser: Condenser::new(config.condense_window_micros, config.max_pending_events),
            trails,
            metrics,
            stats_interval: config.stats_interval.as_std(),
            packets: 0,
            bytes: 0,
            panics: 0,
            capture: CaptureStats::default(),
            cpu_mark: (thread_cpu_nanos(), 0),
            ns_per_packet: 0.0,
            last_publish: Instant::now(),
            last_stats: Instant::now(),
            name: String::new(),
            condense: true,
            report_shared: true,
        }
    }

    /// One worker of several: events are passed on uncondensed (one condenser downstream
    /// folds the repeats of all workers), and only the worker with `report_shared`
    /// reports the shared heuristics' saturations (so sums over workers stay right).
    pub fn worker(
        config: &SensorConfig,
        trails: Arc<TrailHandle>,
        metrics: MetricsHub,
        heuristics: Arc<Heuristics>,
        name: String,
        report_shared: bool,
    ) -> Self {
        let mut p = Pipeline::with_heuristics(config, trails, metrics, heuristics);
        p.condense = false;
        p.report_shared = report_shared;
        p.name = name;
        p
    }

    /// Process one frame; released events go to `sink`.
    pub fn process(&mut self, frame: &Frame<'_>, sink: &mut impl FnMut(Event)) {
        self.packets += 1;
        self.bytes += u64::from(frame.wire_len);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.process_inner(frame, sink)));
        if outcome.is_err() {
            self.panics += 1;
        }
        if self.packets.is_multiple_of(CLOCK_CHECK_EVERY) {
            self.tick();
        }
    }

    fn process_inner(&mut self, frame: &Frame<'_>, sink: &mut impl FnMut(Event)) {
        let Pipeline {
            decoder,
            detector,
            condenser,
            condense,
            ..
        } = self;
        let condense = *condense;
        let mut release = |e: Event| {
            if condense {
                condenser.push(e, sink);
            } else {
                sink(e);
            }
        };
        match decoder.decode(frame.linktype, frame.ts, frame.data) {
            Ok(packet) => {
                let view = PacketView::from(&packet);
                detector.inspect(&view, &mut release);
            }
            Err(DecodeError::FragmentPending) => {
                // The datagram is not whole yet, but its addresses are known: IP trails
                // still match a fragment to a listed host.
                if let Some(meta) = decoder.last_fragment() {
                    let view = PacketView::fragment(frame.ts, &meta);
                    detector.inspect(&view, &mut release);
                }
            }
            Err(_) => {}
        }
        if condense {
            condenser.advance(frame.ts, sink);
        }
    }

    /// Read `source` until it ends or `stop` is set. Capture counters are taken from the
    /// source as it goes.
    pub fn run(
        &mut self,
        source: &mut dyn CaptureSource,
        sink: &mut impl FnMut(Event),
        stop: &AtomicBool,
    ) -> Result<(), CaptureError> {
        if self.name.is_empty() {
            self.name = source.name().to_string();
        }
        while !stop.load(Ordering::Relaxed) {
            match source.next_frame()? {
                Next::Frame(frame) => {
                    self.process(&frame, sink);
                    if self.packets.is_multiple_of(CLOCK_CHECK_EVERY)
                        && let Some(s) = source.stats()
                    {
                        self.capture = s;
                    }
                }
                Next::Idle => {
                    // A quiet link: release what waited long enough by the wall clock.
                    self.release_expired(wall_clock(), sink);
                    if let Some(s) = source.stats() {
                        self.capture = s;
                    }
                    self.tick();
                }
                Next::End => break,
            }
        }
        if let Some(s) = source.stats() {
            self.capture = s;
        }
        Ok(())
    }

    /// Release every held event (end of input, shutdown) and publish final counters.
    pub fn finish(&mut self, sink: &mut impl FnMut(Event)) {
        self.condenser.flush(sink);
        self.publish();
    }

    /// Release events whose window ended, by the wall clock (a quiet live link).
    pub fn release_expired(&mut self, now: spoor_core::Micros, sink: &mut impl FnMut(Event)) {
        self.condenser.advance(now, sink);
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_publish).as_millis() >= 1000 {
            self.publish();
            self.last_publish = now;
        }
        if now.duration_since(self.last_stats) >= self.stats_interval {
            tracing::info!(source = %self.name, "{}", self.snapshot().stats_line());
            self.last_stats = now;
        }
    }

    fn publish(&mut self) {
        let cpu = thread_cpu_nanos();
        let (cpu0, packets0) = self.cpu_mark;
        let packets = self.packets.saturating_sub(packets0);
        if packets > 0 {
            self.ns_per_packet = cpu.saturating_sub(cpu0) as f64 / packets as f64;
            self.cpu_mark = (cpu, self.packets);
        }
        self.metrics.publish(&self.name, self.snapshot());
    }

    /// The counters as of now.
    pub fn snapshot(&self) -> Snapshot {
        let d = self.decoder.counters();
        let detect = self.detector.counters;
        let mut decode_errors = std::collections::BTreeMap::new();
        for (name, n) in d.iter() {
            if name.starts_with("truncated.")
                || name.starts_with("malformed.")
                || name.starts_with("unsupported.")
            {
                decode_errors.insert(name.into_owned(), n);
            }
        }
        let mut saturations = std::collections::BTreeMap::new();
        let flows = self.detector.flows();
        saturations.insert("flows".to_string(), flows.saturated);
        saturations.insert(
            "condense_pending".to_string(),
            self.condenser.released_early,
        );
        saturations.insert(
            "reassembly".to_string(),
            self.detector.reassembly().counters.saturated,
        );
        saturations.insert(
            "fragments".to_string(),
            d.fragments_refused_table_full + d.fragments_refused_budget,
        );
        if self.report_shared {
            for (name, refused) in self.detector.heuristics().saturations() {
                saturations.insert(name.to_string(), refused);
            }
        }
        let store = self.trails.current();
        let meta = store.meta();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Snapshot {
            packets: self.packets,
            bytes: self.bytes,
            capture_received: self.capture.received,
            capture_dropped: self.capture.dropped,
            capture_if_dropped: self.capture.if_dropped,
            decode_errors,
            packet_panics: self.panics,
            events: detect.events,
            events_folded: self.condenser.folded,
            dns_messages: detect.dns_messages,
            http_requests: detect.http_requests,
            tls_client_hellos: detect.tls_client_hellos,
            saturations,
            flows: flows.len() as u64,
            ns_per_packet: self.ns_per_packet,
            trail_age_seconds: now.saturating_sub(meta.created),
            trails: meta.counts.values().sum(),
        }
    }
}

fn wall_clock() -> spoor_core::Micros {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    spoor_core::Micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
