//! The one writer: a thread that owns the write connection.
//!
//! Ingest batches waiting in the queue are stored together in one transaction (up to
//! [`MAX_EVENTS_PER_TRANSACTION`] events), each event with `INSERT OR IGNORE` on its id,
//! so a replayed batch is stored once. The rollups and the sensor's status are updated in
//! the same transaction, and every caller is answered after the commit. Other writes
//! (triage, users, retention) run one per transaction between ingest groups. When no
//! job has come for [`INDEX_WHEN_IDLE`], the writer brings the free-text index up to
//! date ([`super::text`]) a chunk at a time, each chunk its own transaction, and stops as
//! soon as a job waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};
use spoor_core::{BatchAck, Event, SensorStatus};
use tokio::sync::{broadcast, oneshot};

use super::codec::{ip_bytes, severity_code};
use super::{StoreError, now_micros, text};

/// Events stored in one transaction at most: bounds the time a commit holds the lock
/// and the memory of the pending rollups.
pub const MAX_EVENTS_PER_TRANSACTION: usize = 50_000;
/// Jobs waiting for the writer at most; a full queue makes ingest wait (back-pressure to
/// the sensors, which retry), never drops.
const QUEUE: usize = 256;
/// A pause in the jobs this long lets the writer index text: under sustained ingest
/// (batches more often than this) indexing waits, and searches scan the rows not yet
/// indexed.
const INDEX_WHEN_IDLE: Duration = Duration::from_millis(50);
/// Events indexed per transaction: about 10 ms of work, the longest a job that arrives
/// meanwhile waits.
const INDEX_CHUNK: i64 = 1000;

/// One event ready to store: indexed columns plus the JSON body.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: [u8; 16],
    pub time: i64,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub kind: &'static str,
    pub severity: i64,
    pub trail: String,
    pub offender: Option<[u8; 16]>,
    pub body: String,
    pub event: Arc<Event>,
}

impl Row {
    /// `event` as it is to be stored (already pseudonymised).
    pub fn new(event: Event) -> Row {
        Row {
            id: event.id.0.to_be_bytes(),
            time: event.time.0,
            src: ip_bytes(event.src),
            dst: ip_bytes(event.dst),
            kind: event.kind.as_str(),
            severity: severity_code(event.severity),
            trail: event.trail.clone(),
            offender: event.offender.map(ip_bytes),
            body: serde_json::to_string(&event).unwrap_or_default(),
            event: Arc::new(event),
        }
    }
}

/// Called once the commit (or rollback) is done, with its outcome.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs in the transaction; says whether to commit, and how to answer afterwards.
type WriteFn = Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> (bool, Completion) + Send>;

pub(super) enum Job {
    Ingest {
        status: SensorStatus,
        rows: Vec<Row>,
        reply: oneshot::Sender<Result<BatchAck, StoreError>>,
    },
    Write(WriteFn),
    Close(oneshot::Sender<()>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Ingest { rows, .. } => write!(f, "Ingest({} events)", rows.len()),
            Job::Write(_) => f.write_str("Write"),
            Job::Close(_) => f.write_str("Close"),
        }
    }
}

/// A write job that answers on `reply`; a failed job is rolled back.
pub(super) fn job<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    Job::Write(Box::new(move |tx| {
        let result = f(tx);
        let commit = result.is_ok();
        let done: Completion = Box::new(move |outcome: Result<(), StoreError>| {
            let _ = reply.send(outcome.and(result));
        });
        (commit, done)
    }))
}

#[derive(Debug)]
pub(super) struct WriterHandle {
    tx: mpsc::SyncSender<Job>,
}

impl WriterHandle {
    pub(super) fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(job).map_err(|_| StoreError::WriterGone)
    }

    pub(super) fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Close(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
    }
}

/// The lossless consumers of new events ([`super::Store::follow`]): the writer hands each
/// committed event to each of them, waiting when a queue is full.
#[derive(Debug, Clone, Default)]
pub(super) struct Follower {
    txs: Arc<std::sync::Mutex<Vec<mpsc::SyncSender<Arc<Event>>>>>,
}

impl Follower {
    pub(super) fn add(&self, capacity: usize) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        self.txs.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Hand over `events` (after their commit); a follower that went away is forgotten.
    fn send(&self, events: &[Arc<Event>]) {
        if events.is_empty() {
            return;
        }
        let mut txs = self.txs.lock().unwrap_or_else(|p| p.into_inner());
        let mut waited = false;
        txs.retain(|tx| {
            for e in events {
                match tx.try_send(Arc::clone(e)) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(e)) => {
                        waited = true;
                        if tx.send(e).is_err() {
                            return false;
                        }
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
        if waited {
            tracing::warn!(
                "a follower of new events (the responders' policy) is a whole queue behind: \
                 ingest waited for it"
            );
        }
    }
}

pub(super) fn start(
    conn: Connection,
    live: broadcast::Sender<Arc<Event>>,
    follower: Follower,
) -> WriterHandle {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || run(conn, rx, live, follower))
        .expect("cannot start the database writer thread");
    WriterHandle { tx }
}

type IngestJob = (
    SensorStatus,
    Vec<Row>,
    oneshot::Sender<Result<BatchAck, StoreError>>,
);

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    live: broadcast::Sender<Arc<Event>>,
    follower: Follower,
) {
    let mut held: Option<Job> = None;
    // Whether events may wait for the text index (at start: from a previous run).
    let mut text_behind = true;
    loop {
        let first = match held.take() {
            Some(j) => j,
            None if text_behind => match rx.recv_timeout(INDEX_WHEN_IDLE) {
                Ok(j) => j,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    (text_behind, held) = index_text(&mut conn, &rx);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        match first {
            Job::Close(done) => {
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                let _ = done.send(());
                return;
            }
            Job::Write(f) => match conn.transaction() {
                Ok(tx) => {
                    let (commit, done) = f(&tx);
                    let outcome = if commit {
                        tx.commit().map_err(StoreError::from)
                    } else {
                        // Dropping the transaction rolls it back; the job's own error is
                        // what the caller gets.
                        drop(tx);
                        Ok(())
                    };
                    done(outcome);
                }
                Err(e) => tracing::error!("cannot begin a write transaction: {e}"),
            },
            Job::Ingest {
                status,
                rows,
                reply,
            } => {
                let mut events = rows.len();
                let mut group: Vec<IngestJob> = vec![(status, rows, reply)];
                while events < MAX_EVENTS_PER_TRANSACTION {
                    match rx.try_recv() {
                        Ok(Job::Ingest {
                            status,
                            rows,
                            reply,
                        }) => {
                            events += rows.len();
                            group.push((status, rows, reply));
                        }
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                store_group(&mut conn, group, &live, &follower);
                text_behind = true;
            }
        }
    }
}

/// Index text a chunk at a time until it is done or a job waits (returned, to run next).
/// Says whether events still wait. A failure is logged and retried after the next ingest.
fn index_text(conn: &mut Connection, rx: &mpsc::Receiver<Job>) -> (bool, Option<Job>) {
    loop {
        let chunk = conn.transaction().and_then(|tx| {
            let more = text::index_chunk(&tx, INDEX_CHUNK)?;
            tx.commit()?;
            Ok(more)
        });
        match chunk {
            Ok(true) => {}
            Ok(false) => return (false, None),
            Err(e) => {
                tracing::error!(
                    "cannot index event text for free-text search: {e}; searches scan the events not indexed"
                );
                return (false, None);
            }
        }
        if let Ok(job) = rx.try_recv() {
            return (true, Some(job));
        }
    }
}

#[derive(Default)]
struct Rollups {
    minute: HashMap<(i64, String, &'static str, i64), i64>,
    trail: HashMap<(i64, String), i64>,
    src: HashMap<(i64, [u8; 16]), i64>,
    dst: HashMap<(i64, [u8; 16]), i64>,
}

fn store_group(
    conn: &mut Connection,
    group: Vec<IngestJob>,
    live: &broadcast::Sender<Arc<Event>>,
    follower: &Follower,
) {
    let mut acks = Vec::with_capacity(group.len());
    let mut fresh: Vec<Arc<Event>> = Vec::new();
    let result = (|| -> Result<(), rusqlite::Error> {
        let tx = conn.transaction()?;
        let received = now_micros();
        let mut rollups = Rollups::default();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, time, sensor, src, dst, kind, severity, trail, offender, received, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut sensor = tx.prepare_cached(
                "INSERT INTO sensors (name, last_seen, version, uptime_secs, packets, drops, trails_age_secs, spool_dropped, events)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen, version = excluded.version,
                   uptime_secs = excluded.uptime_secs, packets = excluded.packets, drops = excluded.drops,
                   trails_age_secs = excluded.trails_age_secs, spool_dropped = excluded.spool_dropped,
                   events = events + excluded.events",
            )?;
            for (status, rows, _) in &group {
                let mut ack = BatchAck::default();
                for row in rows {
                    let n = insert.execute(params![
                        &row.id[..],
                        row.time,
                        &status.name,
                        &row.src[..],
                        &row.dst[..],
                        row.kind,
                        row.severity,
                        &row.trail,
                        row.offender.as_ref().map(|o| &o[..]),
                        received,
                        &row.body,
                    ])?;
                    if n == 0 {
                        ack.duplicates += 1;
                        continue;
                    }
                    ack.accepted += 1;
                    let minute = row.time.div_euclid(60_000_000);
                    let hour = row.time.div_euclid(3_600_000_000);
                    *rollups
                        .minute
                        .entry((minute, status.name.clone(), row.kind, row.severity))
                        .or_default() += 1;
                    *rollups.trail.entry((hour, row.trail.clone())).or_default() += 1;
                    *rollups.src.entry((hour, row.src)).or_default() += 1;
                    *rollups.dst.entry((hour, row.dst)).or_default() += 1;
                    fresh.push(Arc::clone(&row.event));
                }
                sensor.execute(params![
                    &status.name,
                    received,
                    &status.version,
                    status.uptime_secs as i64,
                    status.packets as i64,
                    status.drops as i64,
                    status.trails_age_secs.map(|a| a as i64),
                    status.spool_dropped as i64,
                    ack.accepted as i64,
                ])?;
                acks.push(ack);
            }
        }
        write_rollups(&tx, rollups)?;
        tx.commit()
    })();
    match result {
        Ok(()) => {
            for ((_, _, reply), ack) in group.into_iter().zip(acks) {
                let _ = reply.send(Ok(ack));
            }
            follower.send(&fresh);
            for e in fresh {
                // No subscriber is fine.
                let _ = live.send(e);
            }
        }
        Err(e) => {
            tracing::error!("storing {} batches failed: {e}", group.len());
            let message = e.to_string();
            for (_, _, reply) in group {
                let _ = reply.send(Err(StoreError::Invalid(message.clone())));
            }
        }
    }
}

fn write_rollups(tx: &rusqlite::Transaction<'_>, r: Rollups) -> Result<(), rusqlite::Error> {
    let mut minute = tx.prepare_cached(
        "INSERT INTO rollup_minute (minute, sensor, kind, severity, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    for ((m, sensor, kind, sev), n) in r.minute {
        minute.execute(params![m, sensor, kind, sev, n])?;
    }
    let mut trail = tx.prepare_cached(
        "INSERT INTO rollup_hour_trail (hour, trail, n) VALUES (?1, ?2, ?3)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    for ((h, t), n) in r.trail {
        trail.execute(params![h, t, n])?;
    }
    let mut src = tx.prepare_cached(
        "INSERT INTO rollup_hour_src (hour, addr, n) VALUES (?1, ?2, ?3)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    for ((h, a), n) in r.src {
        src.execute(params![h, &a[..], n])?;
    }
    let mut dst = tx.prepare_cached(
        "INSERT INTO rollup_hour_dst (hour, addr, n) VALUES (?1, ?2, ?3)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    for ((h, a), n) in r.dst {
        dst.execute(params![h, &a[..], n])?;
    }
    Ok(())
}
