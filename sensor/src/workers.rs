//! Several packet workers, one event stage.
//!
//! ```text
//!                      ┌► worker 0 (decode, flow table, detect) ─┐
//!  capture ─► reader ──┼► worker 1                               ├─► event stage (one condenser) ─► sink
//!     (flow hash)      └► worker N-1        shared heuristics ◄──┘
//! ```
//!
//! [`run_distributed`] reads one source on a reader thread and hands frames, copied into
//! reusable batches, to the worker chosen by the frame's symmetric flow hash
//! ([`crate::decode::flow_hash`]): both directions of a flow reach the same worker, so
//! flow tables, fragment reassembly and per-flow state stay per worker. Offline files use
//! it, and so does live capture where the kernel cannot spread frames (FreeBSD's BPF).
//! On Linux, live capture opens one handle per worker joined to a `PACKET_FANOUT` group
//! instead ([`crate::capture::LiveCapture::join_fanout`]), and each worker reads its own
//! handle ([`spawn_capture_worker`]).
//!
//! The heuristics are one [`Heuristics`] shared by all workers (sharded locks), so a scan
//! whose probes land on different workers is counted whole: the same alerts at 1 and N
//! workers. Every worker passes its events, uncondensed, to one [`EventStage`], whose
//! condenser folds repeats across workers into one event with a count. Offline, the
//! stage's clock is the slowest worker's packet time (a worker behind cannot miss the
//! fold of an event it is about to repeat); live, it is the wall clock.
//!
//! Bounds: each worker has at most [`BATCHES_PER_WORKER`] batches of at most
//! [`BATCH_FRAMES`] frames / [`BATCH_BYTES`] bytes in flight; a full queue makes the
//! reader wait (live: the kernel buffer absorbs it, counted as drops if it overflows).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use spoor_core::{Event, Micros};
use spoor_feeds::TrailHandle;

use crate::capture::{CaptureError, CaptureSource, CaptureStats, Frame, Next};
use crate::condense::Condenser;
use crate::config::SensorConfig;
use crate::decode::flow_hash;
use crate::heuristics::Heuristics;
use crate::metrics::{MetricsHub, Snapshot};
use crate::pipeline::Pipeline;

/// Frames per batch handed to a worker (one channel message).
pub const BATCH_FRAMES: usize = 256;
/// Bytes of frames per batch at most.
pub const BATCH_BYTES: usize = 512 * 1024;
/// Batches in flight per worker: queued, being processed, and being filled.
pub const BATCHES_PER_WORKER: usize = 8;
/// Messages (events, clock ticks) waiting for the event stage; a full queue makes the
/// workers wait, never loses an event.
pub const STAGE_QUEUE: usize = 65_536;
/// A partly filled batch waits at most this long (wall clock) before it is handed over,
/// so a slow live link is not delayed.
const BATCH_MAX_WAIT: Duration = Duration::from_millis(50);
/// Frames read between clock marks for workers that received none of them.
const CLOCK_MARK_EVERY: u64 = 16_384;
/// How often the event stage looks at the wall clock when nothing arrives.
const STAGE_TICK: Duration = Duration::from_millis(200);

/// What workers tell the event stage.
#[derive(Debug)]
pub enum StageMsg {
    Event(Box<Event>),
    /// Worker `worker` has processed every frame up to packet time `ts`.
    Clock {
        worker: usize,
        ts: Micros,
    },
    /// The capture was idle: release held events by the wall clock.
    Idle,
    /// Worker `worker` ended; its final counters.
    Done {
        worker: usize,
        snapshot: Box<Snapshot>,
    },
}

/// How the event stage tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageClock {
    /// Packet time, from the workers' `Clock` messages (offline files).
    Packets,
    /// The wall clock (live capture, where packet time is the wall clock).
    Wall,
}

fn wall_clock() -> Micros {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Where a frame sits in a batch.
#[derive(Debug, Clone, Copy)]
struct FrameMeta {
    ts: Micros,
    linktype: i32,
    wire_len: u32,
    start: usize,
    len: usize,
}

/// Frames copied out of the capture buffer for one worker.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<FrameMeta>,
    /// For an empty batch: the packet time the reader has reached, so a worker without
    /// traffic still moves the event stage's clock.
    mark: Option<Micros>,
}

impl Batch {
    fn with_capacity() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_FRAMES),
            mark: None,
        }
    }

    fn push(&mut self, f: &Frame<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(f.data);
        self.frames.push(FrameMeta {
            ts: f.ts,
            linktype: f.linktype,
            wire_len: f.wire_len,
            start,
            len: f.data.len(),
        });
    }

    fn is_full(&self, next: usize) -> bool {
        self.frames.len() >= BATCH_FRAMES
            || (!self.frames.is_empty() && self.data.len() + next > BATCH_BYTES)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
        self.mark = None;
    }
}

/// The reader's end of one worker's queue.
#[derive(Debug)]
struct Feed {
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
    current: Batch,
    allocated: usize,
    since: Option<Instant>,
    /// Frames given to this worker since the last clock mark.
    recent: u64,
}

impl Feed {
    /// Hand the current batch over and take an empty one. False when the worker is gone.
    fn hand_over(&mut self) -> bool {
        if self.current.frames.is_empty() && self.current.mark.is_none() {
            return true;
        }
        let next = match self.empty.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < BATCHES_PER_WORKER => {
                self.allocated += 1;
                Batch::with_capacity()
            }
            Err(_) => match self.empty.recv() {
                Ok(b) => b,
                Err(_) => return false,
            },
        };
        let full = std::mem::replace(&mut self.current, next);
        self.since = None;
        self.full.send(full).is_ok()
    }
}

/// The totals of a run over several workers.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Every worker's counters and the stage's, summed.
    pub snapshot: Snapshot,
}

/// A reader thread and its workers, running.
#[derive(Debug)]
pub struct Distributed<S> {
    reader: std::thread::JoinHandle<(S, Result<(), CaptureError>, CaptureStats)>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl<S> Distributed<S> {
    /// Wait for the reader (the source's end) and the workers; the source back with the
    /// capture's outcome and counters.
    pub fn join(self) -> (Option<S>, Result<(), CaptureError>, CaptureStats) {
        let joined = self.reader.join();
        for w in self.workers {
            let _ = w.join();
        }
        match joined {
            Ok((source, result, stats)) => (Some(source), result, stats),
            Err(_) => (None, Ok(()), CaptureStats::default()),
        }
    }
}

/// Start a reader thread over `source` and `workers` workers (numbered from
/// `first_worker` in their messages to the stage; see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn spawn_distributed<S: CaptureSource + Send + 'static>(
    config: &SensorConfig,
    trails: &Arc<TrailHandle>,
    metrics: &MetricsHub,
    heuristics: &Arc<Heuristics>,
    mut source: S,
    workers: usize,
    first_worker: usize,
    tx: &SyncSender<StageMsg>,
    stop: &'static AtomicBool,
) -> std::io::Result<Distributed<S>> {
    let workers = workers.max(1);
    let name = source.name().to_string();
    let mut feeds = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for n in 0..workers {
        let k = first_worker + n;
        let (full_tx, full_rx) = sync_channel::<Batch>(BATCHES_PER_WORKER);
        let (empty_tx, empty_rx) = sync_channel::<Batch>(BATCHES_PER_WORKER);
        let mut pipeline = Pipeline::worker(
            config,
            Arc::clone(trails),
            metrics.clone(),
            Arc::clone(heuristics),
            format!("{name}#{n}"),
            k == 0,
        );
        let tx = tx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{k}"))
                .spawn(move || {
                    let mut emit = |e: Event| {
                        let _ = tx.send(StageMsg::Event(Box::new(e)));
                    };
                    while let Ok(mut batch) = full_rx.recv() {
                        let mut last = None;
                        for m in &batch.frames {
                            let frame = Frame {
                                ts: m.ts,
                                linktype: m.linktype,
                                data: &batch.data[m.start..m.start + m.len],
                                wire_len: m.wire_len,
                            };
                            pipeline.process(&frame, &mut emit);
                            last = Some(m.ts);
                        }
                        if let Some(ts) = last.or(batch.mark) {
                            let _ = tx.send(StageMsg::Clock { worker: k, ts });
                        }
                        batch.clear();
                        let _ = empty_tx.send(batch);
                    }
                    pipeline.finish(&mut emit);
                    let _ = tx.send(StageMsg::Done {
                        worker: k,
                        snapshot: Box::new(pipeline.snapshot()),
                    });
                })?,
        );
        feeds.push(Feed {
            full: full_tx,
            empty: empty_rx,
            current: Batch::with_capacity(),
            allocated: 1,
            since: None,
            recent: 0,
        });
    }
    let reader_tx = tx.clone();
    let reader = std::thread::Builder::new()
        .name(format!("reader-{name}"))
        .spawn(move || {
            let (result, stats) = read_into(&mut source, &mut feeds, &reader_tx, stop);
            drop(feeds);
            (source, result, stats)
        })?;
    Ok(Distributed {
        reader,
        workers: handles,
    })
}

/// Read `source` with `workers` workers and condense their events on this thread;
/// events go to `sink`. Returns the source (for its problems), the summed counters, or
/// the capture's error.
#[allow(clippy::too_many_arguments)]
pub fn run_distributed<S: CaptureSource + Send + 'static>(
    config: &SensorConfig,
    trails: Arc<TrailHandle>,
    metrics: MetricsHub,
    heuristics: Arc<Heuristics>,
    source: S,
    workers: usize,
    clock: StageClock,
    sink: &mut impl FnMut(Event),
    stop: &'static AtomicBool,
) -> Result<(Option<S>, RunReport), CaptureError> {
    let workers = workers.max(1);
    let (tx, rx) = sync_channel::<StageMsg>(STAGE_QUEUE);
    let mut stage = EventStage::new(config, metrics.clone(), clock, workers);
    let running = spawn_distributed(
        config,
        &trails,
        &metrics,
        &heuristics,
        source,
        workers,
        0,
        &tx,
        stop,
    )
    .map_err(|e| CaptureError::Read {
        iface: "workers".into(),
        reason: format!("cannot start worker threads: {e}"),
    })?;
    drop(tx);
    stage.run(&rx, sink, &mut || {});
    let (source, result, capture) = running.join();
    let mut snapshot = stage.total();
    snapshot.capture_received = capture.received;
    snapshot.capture_dropped = capture.dropped;
    snapshot.capture_if_dropped = capture.if_dropped;
    result.map(|()| (source, RunReport { snapshot }))
}

/// The reader loop: frames to their worker's batch until the source ends.
fn read_into(
    source: &mut dyn CaptureSource,
    feeds: &mut [Feed],
    stage: &SyncSender<StageMsg>,
    stop: &AtomicBool,
) -> (Result<(), CaptureError>, CaptureStats) {
    let n = feeds.len() as u64;
    let mut frames: u64 = 0;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match source.next_frame() {
            Ok(Next::Frame(frame)) => {
                let hash = flow_hash(frame.linktype, frame.data);
                // Multiply-shift: an even spread of the hash over `n` workers.
                let k = ((u128::from(hash) * u128::from(n)) >> 64) as usize;
                let feed = &mut feeds[k];
                if feed.current.is_full(frame.data.len()) && !feed.hand_over() {
                    break Ok(());
                }
                feed.current.push(&frame);
                feed.since.get_or_insert_with(Instant::now);
                feed.recent += 1;
                frames += 1;
                // Workers that got nothing lately still tell the stage how far time went
                // (through their queue, so after everything they were given).
                if frames.is_multiple_of(CLOCK_MARK_EVERY) {
                    for f in feeds.iter_mut() {
                        if f.recent == 0 && f.current.frames.is_empty() {
                            f.current.mark = Some(frame.ts);
                            f.hand_over();
                        }
                        f.recent = 0;
                    }
                }
                // A slow link: hand over batches that waited long enough.
                if frames.is_multiple_of(64) {
                    for f in feeds.iter_mut() {
                        if f.since.is_some_and(|t| t.elapsed() >= BATCH_MAX_WAIT) {
                            f.hand_over();
                        }
                    }
                }
            }
            Ok(Next::Idle) => {
                for f in feeds.iter_mut() {
                    f.hand_over();
                }
                if let Err(TrySendError::Disconnected(_)) = stage.try_send(StageMsg::Idle) {
                    break Ok(());
                }
            }
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    for f in feeds.iter_mut() {
        f.hand_over();
    }
    let stats = source.stats().unwrap_or_default();
    (result, stats)
}

/// Run `pipeline` (a [`Pipeline::worker`]) over its own `source` on a new thread, its
/// events to `tx` (Linux live capture: one fanout handle per worker).
pub fn spawn_capture_worker(
    mut pipeline: Pipeline,
    mut source: Box<dyn CaptureSource + Send>,
    worker: usize,
    tx: SyncSender<StageMsg>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), CaptureError>>> {
    let name = source.name().to_string();
    std::thread::Builder::new()
        .name(format!("capture-{name}#{worker}"))
        .spawn(move || {
            let mut emit = |e: Event| {
                let _ = tx.send(StageMsg::Event(Box::new(e)));
            };
            let result = pipeline.run(source.as_mut(), &mut emit, &stop);
            pipeline.finish(&mut emit);
            let snapshot = pipeline.snapshot();
            tracing::info!(interface = %name, worker, "{}", snapshot.stats_line());
            let _ = tx.send(StageMsg::Done {
                worker,
                snapshot: Box::new(snapshot),
            });
            result
        })
}

/// The one condenser every worker's events go through.
#[derive(Debug)]
pub struct EventStage {
    condenser: Condenser,
    metrics: MetricsHub,
    clock: StageClock,
    clocks: Vec<i64>,
    snapshots: Vec<Snapshot>,
    last_tick: Instant,
}

impl EventStage {
    /// A stage for `workers` workers (the `worker` numbers in their messages).
    pub fn new(
        config: &SensorConfig,
        metrics: MetricsHub,
        clock: StageClock,
        workers: usize,
    ) -> Self {
        EventStage {
            condenser: Condenser::new(config.condense_window_micros, config.max_pending_events),
            metrics,
            clock,
            clocks: vec![i64::MIN; workers.max(1)],
            snapshots: Vec::new(),
            last_tick: Instant::now(),
        }
    }

    /// Take messages until every sender is gone; `idle` runs when nothing arrived for a
    /// while, and live every [`STAGE_TICK`] (flush outputs, look for shutdown).
    /// Everything held is released at the end.
    pub fn run(
        &mut self,
        rx: &Receiver<StageMsg>,
        sink: &mut impl FnMut(Event),
        idle: &mut dyn FnMut(),
    ) {
        loop {
            match rx.recv_timeout(STAGE_TICK) {
                Ok(msg) => self.take(msg, sink),
                Err(RecvTimeoutError::Timeout) => {
                    if self.clock == StageClock::Wall {
                        self.condenser.advance(wall_clock(), sink);
                    }
                    self.publish();
                    idle();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.clock == StageClock::Wall && self.last_tick.elapsed() >= STAGE_TICK {
                self.condenser.advance(wall_clock(), sink);
                self.publish();
                idle();
                self.last_tick = Instant::now();
            }
        }
        self.condenser.flush(sink);
        self.publish();
    }

    fn take(&mut self, msg: StageMsg, sink: &mut impl FnMut(Event)) {
        match msg {
            StageMsg::Event(e) => self.condenser.push(*e, sink),
            StageMsg::Clock { worker, ts } => {
                if let Some(c) = self.clocks.get_mut(worker) {
                    *c = (*c).max(ts.0);
                }
                self.advance_to_slowest(sink);
            }
            StageMsg::Idle => self.condenser.advance(wall_clock(), sink),
            StageMsg::Done { worker, snapshot } => {
                if let Some(c) = self.clocks.get_mut(worker) {
                    *c = i64::MAX;
                }
                self.snapshots.push(*snapshot);
                self.advance_to_slowest(sink);
            }
        }
    }

    fn advance_to_slowest(&mut self, sink: &mut impl FnMut(Event)) {
        let slowest = self.clocks.iter().copied().min().unwrap_or(i64::MIN);
        if self.clock == StageClock::Packets && slowest != i64::MIN && slowest != i64::MAX {
            self.condenser.advance(Micros(slowest), sink);
        }
    }

    /// The stage's own counters (what the condenser folded).
    fn own(&self) -> Snapshot {
        let mut s = Snapshot {
            events_folded: self.condenser.folded,
            ..Snapshot::default()
        };
        s.saturations.insert(
            "condense_pending".to_string(),
            self.condenser.released_early,
        );
        s
    }

    fn publish(&self) {
        self.metrics.publish("condense", self.own());
    }

    /// The finished workers' counters and the stage's, summed.
    pub fn total(&self) -> Snapshot {
        let mut total = self.own();
        for s in &self.snapshots {
            total.add(s);
        }
        total
    }
}
