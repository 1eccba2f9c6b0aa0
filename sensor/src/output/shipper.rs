//! The shipper: events to Spoor's server (`POST /api/v1/events`), at least once, in order.
//!
//! ```text
//! output thread ──emit──► bounded queue ──► shipper thread ──append+fsync──► spool segments
//!      │ (queue full)                                         │
//!      └────────────── append to the spool directly ──────────┘
//!                                shipper thread ◄──read oldest first── spool
//!                                       │  POST batch (one in flight), 200 → move the cursor
//! ```
//!
//! [`ShipperSink::emit`] never waits on the network: it renders the event as one JSON line
//! and puts it on a bounded queue; when the queue is full it appends the line to the spool
//! itself (after moving the queue's older lines there, to keep the order). The shipper
//! thread writes queued lines to the spool, fsyncs once per batch, and sends batches read
//! from the spool, oldest first, one request at a time. A batch leaves the spool only when
//! the server acknowledged it; a restart replays what was not, and the server stores each
//! event id once. The spool is bounded by `spool_max_size`: events past it are dropped,
//! counted, logged, reported to the server in [`SensorStatus::spool_dropped`] and in the
//! metrics (saturation `shipper_spool`).
//!
//! Answers: 200 moves on. 5xx, timeouts, connection errors, 401/403 (a token the server
//! does not know yet), 408 and 429 are retried with exponential backoff and jitter between
//! `backoff_min` and `backoff_max`. Any other 4xx means the server refuses the batch itself
//! (malformed, too large): it is set aside into `<spool_dir>/rejected/`, counted and logged
//! with the server's answer, and the shipper goes on with the next batch.
//!
//! Transport: `https://` with normal CA verification (the system's roots, or only the ones
//! in `ca_file`), or with the server's certificate pinned by SHA-256 fingerprint
//! (`pin_sha256`, for the self-signed certificate `spoor server` makes); `http://` only to a
//! loopback address.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use spoor_core::wire::MAX_BATCH_EVENTS;
use spoor_core::{BatchAck, ByteSize, Duration as ConfigDuration, Event, EventBatch, SensorStatus};

use super::spool::{self, Chunk, Cursor, SpoolWriter};
use super::{ErrorLog, EventSink, OutputError, TransportStats};
use crate::metrics::{MetricsHub, Snapshot};

/// The ingest path under the server's URL.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// Default events per batch.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// Default of `spool_max_size`.
pub const DEFAULT_SPOOL_MAX_SIZE: ByteSize = ByteSize(256 * 1024 * 1024);
/// Default of `queue_capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default folder of the spool inside the state dir.
pub const SPOOL_DIR_NAME: &str = "spool";
/// Batches kept in `rejected/` at most; later ones are only counted and logged.
pub const MAX_REJECTED_FILES: usize = 100;
/// How long an idle shipper thread sleeps before it looks at the clock again (an event
/// wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// At shutdown, how long the shipper goes on sending what is spooled (while the server
/// answers); what is left is sent by the next start.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Extra wait for the thread's last request beyond [`SHUTDOWN_WAIT`].
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Bytes of a refusing server's answer quoted in the log.
const ANSWER_QUOTE: usize = 300;
/// Metrics source name the shipper publishes under.
const METRICS_SOURCE: &str = "shipper";

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}
fn default_flush_interval() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}
fn default_spool_max_size() -> ByteSize {
    DEFAULT_SPOOL_MAX_SIZE
}
fn default_queue_capacity() -> usize {
    DEFAULT_QUEUE_CAPACITY
}
fn default_backoff_min() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}
fn default_backoff_max() -> ConfigDuration {
    ConfigDuration::from_secs(60)
}
fn default_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(30)
}

/// `[[sensor.output]] type = "server"`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipperConfig {
    /// The server's base URL, e.g. `https://spoor.example:8338`; events go to
    /// `<url>/api/v1/events`. `http://` only to a loopback address.
    pub url: String,
    /// File holding this sensor's token (made on the server); relative to the config file.
    pub token_file: PathBuf,
    /// Trust only the server certificate with this SHA-256 fingerprint (as `spoor server`
    /// prints it). Default: verify the certificate against CAs.
    #[serde(default)]
    pub pin_sha256: Option<String>,
    /// Trust only the CA certificates in this PEM file. Default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Events that make a batch due (1 to 5000). Default 500. A request carries every
    /// event waiting, up to the server's limit of 5000: a backlog (a busy network, or a
    /// server that was away) drains in large batches, which the server stores at a
    /// lower cost per event.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Send a smaller batch once its oldest event waited this long. Default 2s.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: ConfigDuration,
    /// Where unsent events wait on disk. Default: `<state_dir>/spool`.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Disk the spool may use; events beyond it are dropped and counted. Default 256MiB.
    #[serde(default = "default_spool_max_size")]
    pub spool_max_size: ByteSize,
    /// Events waiting in memory for the shipper thread; more go to the spool directly.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// First wait after a failed request (default 1s); doubles each time, with jitter.
    #[serde(default = "default_backoff_min")]
    pub backoff_min: ConfigDuration,
    /// Longest wait between retries (default 60s).
    #[serde(default = "default_backoff_max")]
    pub backoff_max: ConfigDuration,
    /// One request (connect, send, answer) may take this long (default 30s).
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

impl ShipperConfig {
    /// A config with every default but the URL, token file and spool folder.
    pub fn new(url: impl Into<String>, token_file: PathBuf, spool_dir: PathBuf) -> ShipperConfig {
        ShipperConfig {
            url: url.into(),
            token_file,
            pin_sha256: None,
            ca_file: None,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: default_flush_interval(),
            spool_dir: Some(spool_dir),
            spool_max_size: DEFAULT_SPOOL_MAX_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
            timeout: default_timeout(),
        }
    }

    /// Problems with the values, as (key, message) pairs for the config checker.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = endpoint(&self.url) {
            out.push(("url", e));
        }
        if let Some(pin) = &self.pin_sha256 {
            if let Err(e) = super::pin::parse_fingerprint(pin) {
                out.push(("pin_sha256", e));
            }
            if self.ca_file.is_some() {
                out.push((
                    "ca_file",
                    "set either pin_sha256 or ca_file, not both".to_string(),
                ));
            }
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_EVENTS {
            out.push((
                "batch_size",
                format!("must be between 1 and {MAX_BATCH_EVENTS} (the server's limit)"),
            ));
        }
        if self.flush_interval.as_std().is_zero() {
            out.push(("flush_interval", "must be above 0".to_string()));
        }
        if self.spool_max_size.0 < 64 * 1024 {
            out.push(("spool_max_size", "must be at least 64KiB".to_string()));
        }
        if self.queue_capacity == 0 {
            out.push(("queue_capacity", "must be at least 1".to_string()));
        }
        if self.backoff_min.as_std().is_zero() || self.backoff_max < self.backoff_min {
            out.push((
                "backoff_max",
                "backoff_min must be above 0 and backoff_max at least backoff_min".to_string(),
            ));
        }
        if self.timeout.as_std().is_zero() {
            out.push(("timeout", "must be above 0".to_string()));
        }
        out
    }
}

/// `<url>/api/v1/events`, or why the URL is refused.
pub fn endpoint(url: &str) -> Result<String, String> {
    let base = url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("https://") {
        rest
    } else if let Some(rest) = base.strip_prefix("http://") {
        let host = host_of(rest);
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "`{url}`: plain http:// is allowed only to a loopback address (127.0.0.1, ::1, \
                 localhost); use https:// with pin_sha256 or a CA"
            ));
        }
        rest
    } else {
        return Err(format!(
            "`{url}` must start with https:// (or http:// to loopback)"
        ));
    };
    if host_of(rest).is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if base.ends_with(EVENTS_PATH) {
        return Ok(base.to_string());
    }
    Ok(format!("{base}{EVENTS_PATH}"))
}

/// The host part of `host[:port][/path]`.
fn host_of(rest: &str) -> &str {
    let authority = rest.split('/').next().unwrap_or("");
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[');
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Builds the status sent with each batch (counters from the running sensor).
pub type StatusFn = Box<dyn Fn() -> SensorStatus + Send>;

/// Counters shared by the sink and its thread.
#[derive(Debug, Default)]
pub struct ShipperCounters {
    /// Events the server acknowledged (accepted or duplicate).
    pub sent: AtomicU64,
    /// Of those, events the server already had (replays).
    pub duplicates: AtomicU64,
    /// Events dropped because the spool was full.
    pub spool_dropped: AtomicU64,
    /// Requests that failed and will be retried.
    pub errors: AtomicU64,
    /// Batches acknowledged.
    pub batches: AtomicU64,
    /// Batches the server refused (4xx) and events in them.
    pub rejected_batches: AtomicU64,
    pub rejected_events: AtomicU64,
    /// Spool lines that were not events (torn by a crash, or damaged): skipped.
    pub bad_lines: AtomicU64,
    /// Events in the queue or the spool, not yet acknowledged.
    pub unsent: AtomicU64,
    /// Bytes of the spool's files.
    pub spool_bytes: AtomicU64,
}

/// What the sink and the thread share under one lock: the queue's receiving end and the
/// spool writer, so that whoever moves lines from the queue to the spool keeps their order.
#[derive(Debug)]
struct Intake {
    rx: Receiver<Vec<u8>>,
    spool: SpoolWriter,
}

impl Intake {
    /// Move every queued line to the spool; returns how many lines left the queue (a line
    /// whose write failed included: it is lost, and the error is returned to be logged).
    fn drain(&mut self) -> (usize, std::io::Result<()>) {
        let mut n = 0;
        loop {
            match self.rx.try_recv() {
                Ok(line) => {
                    n += 1;
                    if let Err(e) = self.spool.append(&line) {
                        return (n, Err(e));
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return (n, Ok(())),
            }
        }
    }
}

type SharedIntake = Arc<Mutex<Intake>>;

fn lock(intake: &SharedIntake) -> MutexGuard<'_, Intake> {
    intake.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ships events to Spoor's server from a background thread, through the spool.
#[derive(Debug)]
pub struct ShipperSink {
    tx: Option<SyncSender<Vec<u8>>>,
    intake: SharedIntake,
    counters: Arc<ShipperCounters>,
    queued: Arc<AtomicU64>,
    /// The shipper thread, woken (unparked) when an event is queued.
    thread: std::thread::Thread,
    done: Option<std::sync::mpsc::Receiver<()>>,
    stop: Arc<AtomicBool>,
}

impl ShipperSink {
    /// Open the spool, read the token and start the shipper thread. The first request
    /// happens in the background: an absent server does not keep the sensor from starting.
    pub fn new(
        config: ShipperConfig,
        status: StatusFn,
        metrics: Option<MetricsHub>,
    ) -> Result<ShipperSink, OutputError> {
        let url = endpoint(&config.url)
            .map_err(|e| OutputError::io(e, std::io::ErrorKind::InvalidInput.into()))?;
        let token = read_token(&config.token_file)?;
        let spool_dir = config.spool_dir.clone().ok_or_else(|| {
            OutputError::io(
                "the shipper has no spool_dir",
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?;
        let writer = SpoolWriter::open(&spool_dir, config.spool_max_size.0).map_err(|e| {
            OutputError::io(format!("opening the spool in {}", spool_dir.display()), e)
        })?;
        if writer.unsent > 0 {
            tracing::info!(
                events = writer.unsent,
                spool = %spool_dir.display(),
                "replaying events spooled before the restart"
            );
        }
        let counters = Arc::new(ShipperCounters::default());
        counters.unsent.store(writer.unsent, Ordering::Relaxed);
        counters
            .spool_bytes
            .store(writer.total_bytes(), Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue_capacity.max(1));
        let intake = Arc::new(Mutex::new(Intake { rx, spool: writer }));
        let queued = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let shipper = Shipper {
            url,
            token,
            config,
            spool_dir,
            intake: Arc::clone(&intake),
            counters: Arc::clone(&counters),
            queued: Arc::clone(&queued),
            stop: Arc::clone(&stop),
            status,
            metrics,
            errors: ErrorLog::default(),
            rng: seed(),
            cursor: Cursor::default(),
            failures: 0,
            next_attempt: Instant::now(),
            logged_drops: 0,
        };
        let handle = std::thread::Builder::new()
            .name("spoor-shipper".into())
            .spawn(move || {
                shipper.run();
                let _ = done_tx.send(());
            })
            .map_err(|e| OutputError::io("starting the shipper thread", e))?;
        Ok(ShipperSink {
            tx: Some(tx),
            intake,
            counters,
            queued,
            thread: handle.thread().clone(),
            done: Some(done_rx),
            stop,
        })
    }

    /// The live counters (for tests and the stats line).
    pub fn counters(&self) -> Arc<ShipperCounters> {
        Arc::clone(&self.counters)
    }

    /// Move the queue and `extra` to the spool under the lock (the overflow path).
    fn spool_directly(&self, extra: Option<&[u8]>) -> Result<(), OutputError> {
        let mut intake = lock(&self.intake);
        let (moved, result) = intake.drain();
        self.queued.fetch_sub(moved as u64, Ordering::Relaxed);
        result.map_err(|e| OutputError::io("writing to the spool", e))?;
        if let Some(line) = extra {
            intake
                .spool
                .append(line)
                .map_err(|e| OutputError::io("writing to the spool", e))?;
        }
        self.counters
            .spool_dropped
            .store(intake.spool.dropped, Ordering::Relaxed);
        Ok(())
    }
}

fn read_token(path: &Path) -> Result<String, OutputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        OutputError::io(
            format!(
                "reading the sensor token from {} (token_file; create it with the token the server made for this sensor)",
                path.display()
            ),
            e,
        )
    })?;
    let token = text.trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(OutputError::io(
            format!("{} must hold one token on one line", path.display()),
            std::io::ErrorKind::InvalidData.into(),
        ));
    }
    Ok(token)
}

impl EventSink for ShipperSink {
    fn name(&self) -> &str {
        "server"
    }

    fn emit(&mut self, event: &Event) -> Result<(), OutputError> {
        let mut line = serde_json::to_vec(event).map_err(|e| {
            OutputError::io("rendering the event as JSON", std::io::Error::other(e))
        })?;
        line.push(b'\n');
        let Some(tx) = &self.tx else {
            return Err(OutputError::io(
                "shipper",
                std::io::ErrorKind::BrokenPipe.into(),
            ));
        };
        match tx.try_send(line) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.thread.unpark();
                Ok(())
            }
            Err(TrySendError::Full(line)) => self.spool_directly(Some(&line)),
            Err(TrySendError::Disconnected(line)) => {
                // The thread is gone (a bug); the spool still takes the event, and the
                // next start sends it.
                self.spool_directly(Some(&line))
            }
        }
    }

    /// Put every emitted event into the spool and fsync it; delivery is the thread's job.
    /// The spool is what survives a restart. Never waits on the network: the thread holds
    /// the lock only while it moves lines to the spool, not during a request.
    fn flush(&mut self) -> Result<(), OutputError> {
        self.spool_directly(None)?;
        let mut intake = lock(&self.intake);
        intake
            .spool
            .commit()
            .map_err(|e| OutputError::io("syncing the spool", e))
    }

    fn transport_stats(&self) -> Option<TransportStats> {
        let c = &self.counters;
        Some(TransportStats {
            sent: c.sent.load(Ordering::Relaxed),
            dropped: c.spool_dropped.load(Ordering::Relaxed)
                + c.rejected_events.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            connects: c.batches.load(Ordering::Relaxed),
            queued: c.unsent.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed),
        })
    }
}

impl Drop for ShipperSink {
    /// Put what is still queued into the spool (durably), then let the thread send what it
    /// can for up to [`SHUTDOWN_WAIT`] (at once, not waiting for `flush_interval`; not at
    /// all while the server is failing). What is left is sent by the next start.
    fn drop(&mut self) {
        if let Err(e) = self.spool_directly(None) {
            tracing::error!("shipper: could not spool the queued events at shutdown: {e}");
        }
        if let Err(e) = lock(&self.intake).spool.commit() {
            tracing::error!("shipper: could not sync the spool at shutdown: {e}");
        }
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
        self.thread.unpark();
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(SHUTDOWN_WAIT + SHUTDOWN_GRACE);
        }
    }
}

/// The shipper thread's state.
struct Shipper {
    url: String,
    token: String,
    config: ShipperConfig,
    spool_dir: PathBuf,
    intake: SharedIntake,
    counters: Arc<ShipperCounters>,
    queued: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    status: StatusFn,
    metrics: Option<MetricsHub>,
    errors: ErrorLog,
    rng: u64,
    /// Where the next batch starts.
    cursor: Cursor,
    /// Failed attempts in a row (for the backoff).
    failures: u32,
    next_attempt: Instant,
    logged_drops: u64,
}

/// What one request came to.
enum Outcome {
    Delivered(BatchAck),
    Retry(String),
    Rejected(u16, String),
}

impl Shipper {
    fn run(mut self) {
        self.cursor = spool::read_cursor(&self.spool_dir)
            .ok()
            .flatten()
            .unwrap_or_default();
        let client = match self.client() {
            Ok(c) => Some(c),
            Err(e) => {
                // Keep spooling: the admin fixes the config and restarts; nothing is lost.
                tracing::error!(
                    "shipper: cannot set up HTTPS to {}: {e}; events are kept in the spool",
                    self.url
                );
                None
            }
        };
        let mut finish_by: Option<Instant> = None;
        loop {
            let (moved, mut ready) = self.take_in();
            if self.stop.load(Ordering::Relaxed) {
                // Shutting down: send what is spooled now, unless the server is failing
                // or the time is up; the spool keeps the rest for the next start.
                let deadline = *finish_by.get_or_insert_with(|| Instant::now() + SHUTDOWN_WAIT);
                if self.counters.unsent.load(Ordering::Relaxed) == 0
                    || client.is_none()
                    || self.failures > 0
                    || Instant::now() >= deadline
                {
                    break;
                }
                ready = true;
            }
            let mut sent = false;
            if let (Some(client), true) = (&client, ready)
                && Instant::now() >= self.next_attempt
            {
                self.send_one(client);
                sent = true;
            }
            self.publish();
            if moved == 0 && !sent {
                std::thread::park_timeout(IDLE_POLL);
            }
        }
        self.publish();
    }

    /// Move queued lines to the spool and commit them (one fsync); returns how many were
    /// moved and whether a batch is due.
    fn take_in(&mut self) -> (usize, bool) {
        let mut intake = lock(&self.intake);
        let (moved, result) = intake.drain();
        let result = result.and_then(|()| intake.spool.commit());
        self.queued.fetch_sub(moved as u64, Ordering::Relaxed);
        if let Err(e) = result {
            self.errors.report(
                "server",
                "spool",
                &OutputError::io(
                    format!("writing to the spool in {}", self.spool_dir.display()),
                    e,
                ),
            );
        }
        let dropped = intake.spool.dropped;
        self.counters
            .spool_dropped
            .store(dropped, Ordering::Relaxed);
        self.counters
            .unsent
            .store(intake.spool.unsent, Ordering::Relaxed);
        self.counters
            .spool_bytes
            .store(intake.spool.total_bytes(), Ordering::Relaxed);
        if dropped > self.logged_drops {
            self.errors.report(
                "server",
                "spool",
                &OutputError::io(
                    format!(
                        "spool in {} is full ({} bytes, spool_max_size): {} events dropped so far",
                        self.spool_dir.display(),
                        self.config.spool_max_size.0,
                        dropped
                    ),
                    std::io::ErrorKind::StorageFull.into(),
                ),
            );
            self.logged_drops = dropped;
        }
        let unsent = intake.spool.unsent;
        let due = unsent > 0
            && (unsent >= self.config.batch_size as u64
                || intake
                    .spool
                    .oldest_unsent
                    .is_some_and(|t| t.elapsed() >= self.config.flush_interval.as_std()));
        (moved, due)
    }

    /// Read the oldest batch from the spool, send it, and act on the answer.
    fn send_one(&mut self, client: &reqwest::blocking::Client) {
        let chunk = match spool::read_chunk(&self.spool_dir, self.cursor, MAX_BATCH_EVENTS) {
            Ok(c) => c,
            Err(e) => {
                self.fail(format!(
                    "reading the spool in {}: {e}",
                    self.spool_dir.display()
                ));
                return;
            }
        };
        let mut events = Vec::with_capacity(chunk.lines.len());
        let mut bad = chunk.torn;
        for line in &chunk.lines {
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            self.counters.bad_lines.fetch_add(bad, Ordering::Relaxed);
            tracing::warn!(
                lines = bad,
                spool = %self.spool_dir.display(),
                "skipped spool lines that are not events (torn by a crash or damaged)"
            );
        }
        if events.is_empty() {
            self.acknowledge(&chunk);
            return;
        }
        let mut status = (self.status)();
        status.spool_dropped = self.counters.spool_dropped.load(Ordering::Relaxed);
        let batch = EventBatch { status, events };
        let body = match serde_json::to_vec(&batch) {
            Ok(b) => b,
            Err(e) => {
                self.fail(format!("rendering the batch: {e}"));
                return;
            }
        };
        match self.post(client, body.clone()) {
            Outcome::Delivered(ack) => {
                let n = batch.events.len() as u64;
                self.counters.sent.fetch_add(n, Ordering::Relaxed);
                self.counters
                    .duplicates
                    .fetch_add(ack.duplicates, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                if self.failures > 0 {
                    tracing::info!(url = %self.url, "server reachable again; sending the spool");
                }
                self.failures = 0;
                self.next_attempt = Instant::now();
                self.acknowledge(&chunk);
            }
            Outcome::Rejected(status, answer) => {
                let n = batch.events.len() as u64;
                self.counters
                    .rejected_batches
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .rejected_events
                    .fetch_add(n, Ordering::Relaxed);
                let kept = self.set_aside(&body);
                tracing::error!(
                    url = %self.url,
                    status,
                    events = n,
                    kept = %kept.as_deref().map_or("no (rejected/ is full)".into(), |p| p.display().to_string()),
                    "server refused a batch as malformed; it is set aside, not retried: {answer}"
                );
                self.acknowledge(&chunk);
            }
            Outcome::Retry(why) => self.fail(why),
        }
    }

    fn post(&self, client: &reqwest::blocking::Client, body: Vec<u8>) -> Outcome {
        let response = client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(describe(&e)),
        };
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        let quote: String = text.chars().take(ANSWER_QUOTE).collect();
        match status {
            200..=299 => match serde_json::from_str::<BatchAck>(&text) {
                Ok(ack) => Outcome::Delivered(ack),
                // The server stored the batch (2xx); an answer we can't read changes nothing.
                Err(_) => Outcome::Delivered(BatchAck::default()),
            },
            401 | 403 => Outcome::Retry(format!(
                "server answered {status} (token not accepted: check token_file and that the server knows this sensor): {quote}"
            )),
            408 | 429 => Outcome::Retry(format!("server answered {status} (busy): {quote}")),
            400..=499 => Outcome::Rejected(status, quote),
            _ => Outcome::Retry(format!("server answered {status}: {quote}")),
        }
    }

    /// Move past `chunk` in the spool.
    fn acknowledge(&mut self, chunk: &Chunk) {
        let mut intake = lock(&self.intake);
        match intake.spool.acknowledge(chunk.next, chunk.consumed()) {
            Ok(()) => {
                self.cursor = spool::read_cursor(&self.spool_dir)
                    .ok()
                    .flatten()
                    .unwrap_or(chunk.next);
            }
            Err(e) => {
                // The cursor could not be saved: go on in memory; a restart resends this
                // batch, which the server stores once.
                self.cursor = chunk.next;
                self.errors.report(
                    "server",
                    "spool",
                    &OutputError::io(
                        format!("saving the spool cursor in {}", self.spool_dir.display()),
                        e,
                    ),
                );
            }
        }
        self.counters
            .unsent
            .store(intake.spool.unsent, Ordering::Relaxed);
        self.counters
            .spool_bytes
            .store(intake.spool.total_bytes(), Ordering::Relaxed);
    }

    /// Keep a refused batch in `rejected/` (bounded) for the admin; returns its path.
    fn set_aside(&self, body: &[u8]) -> Option<PathBuf> {
        let dir = self.spool_dir.join("rejected");
        std::fs::create_dir_all(&dir).ok()?;
        if std::fs::read_dir(&dir).ok()?.count() >= MAX_REJECTED_FILES {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let path = dir.join(format!(
            "{}-{:016}-{}.json",
            now.as_micros(),
            self.cursor.segment,
            self.cursor.offset
        ));
        let mut f = std::fs::File::create(&path).ok()?;
        f.write_all(body).ok()?;
        f.sync_all().ok()?;
        Some(path)
    }

    /// A failed attempt: count, log (rate-limited), and wait before the next one.
    fn fail(&mut self, why: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.errors.report(
            "server",
            "send",
            &OutputError::io(
                format!("{}: {why}; retrying", self.url),
                std::io::ErrorKind::Other.into(),
            ),
        );
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(
            self.config.backoff_min.as_std(),
            self.config.backoff_max.as_std(),
            self.failures,
            next_random(&mut self.rng),
        );
        self.next_attempt = Instant::now() + delay;
    }

    fn publish(&self) {
        if let Some(hub) = &self.metrics {
            let mut s = Snapshot::default();
            s.saturations.insert(
                "shipper_spool".into(),
                self.counters.spool_dropped.load(Ordering::Relaxed),
            );
            hub.publish(METRICS_SOURCE, s);
        }
    }

    fn client(&self) -> Result<reqwest::blocking::Client, String> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(self.config.timeout.as_std())
            .connect_timeout(self.config.timeout.as_std())
            .user_agent(concat!("spoor-sensor/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pin) = &self.config.pin_sha256 {
            let pin = super::pin::parse_fingerprint(pin)?;
            let tls = super::pin::pinned_client_config(pin).map_err(|e| e.to_string())?;
            builder = builder.tls_backend_preconfigured(tls);
        } else if let Some(ca) = &self.config.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| format!("reading ca_file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_file {} holds no PEM certificate", ca.display()));
            }
            builder = builder.tls_certs_only(certs);
        }
        builder.build().map_err(|e| describe(&e))
    }
}

/// An error with its causes (reqwest's own message hides them).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Exponential backoff with jitter: the `failures`-th wait is drawn between half and all
/// of `min * 2^(failures-1)`, capped at `max`, so many sensors don't retry in step.
fn backoff(min: Duration, max: Duration, failures: u32, random: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = min.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if nanos == 0 { 0 } else { random % (nanos + 1) };
    half + Duration::from_nanos(jitter)
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// xorshift64: enough to spread retries, no dependency.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(
            endpoint("http://127.0.0.1:8338").unwrap(),
            "http://127.0.0.1:8338/api/v1/events"
        );
        assert!(endpoint("http://[::1]:8338/").is_ok());
        assert!(endpoint("http://localhost").is_ok());
        assert!(
            endpoint("http://192.0.2.1:8338")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(endpoint("http://127.0.0.1.example:80").is_err());
        assert!(endpoint("ftp://x").is_err());
        assert_eq!(
            endpoint("https://spoor.example:8338/api/v1/events").unwrap(),
            "https://spoor.example:8338/api/v1/events"
        );
    }

    #[test]
    fn backoff_grows_stays_within_bounds_and_jitters() {
        let min = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for failures in 1..40 {
            for r in [0, 1, u64::MAX / 3, u64::MAX] {
                let d = backoff(min, max, failures, r);
                let full = min.saturating_mul(1 << (failures - 1).min(30)).min(max);
                assert!(d >= full / 2 && d <= full, "{failures} {d:?}");
            }
        }
        assert_ne!(backoff(min, max, 3, 1), backoff(min, max, 3, 123_456_789));
    }

    #[test]
    fn config_problems_name_their_key() {
        let mut c = ShipperConfig::new("http://10.0.0.1", "t".into(), "s".into());
        c.batch_size = MAX_BATCH_EVENTS + 1;
        c.pin_sha256 = Some("nope".into());
        let keys: Vec<&str> = c.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["url", "pin_sha256", "batch_size"]);
    }
}
