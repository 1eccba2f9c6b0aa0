//! The event store: one SQLite database in WAL mode.
//!
//! All writes go through one writer thread ([`writer`]) that groups ingest batches into
//! one transaction and answers each caller after the commit (an acknowledged batch is on
//! disk). Reads run on a small pool of read-only connections on the blocking thread pool,
//! so a slow query never holds up ingest. Each area has its file: [`schema`] (migrations),
//! [`summary`] and [`search`] (queries), [`text`] (the free-text index), [`triage`], [`users`], [`sensors`], [`audit`],
//! [`retention`].

pub mod audit;
mod checkpoint;
pub mod codec;
pub mod retention;
pub mod schema;
pub mod search;
pub mod sensors;
pub mod summary;
pub mod text;
pub mod triage;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use spoor_core::{BatchAck, Event, SensorStatus};
use tokio::sync::{broadcast, oneshot};

pub use writer::Row;

/// Read connections kept open for reuse; more are opened when needed and closed after.
const MAX_IDLE_READERS: usize = 8;
/// SQLite page cache per connection (KiB): the writer's indexes must stay in memory for
/// fast ingest.
const WRITER_CACHE_KIB: i64 = 128 * 1024;
const READER_CACHE_KIB: i64 = 32 * 1024;
/// How long a connection waits for a lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// New events buffered for slow live subscribers; a subscriber further behind is told
/// how many it missed.
const LIVE_BUFFER: usize = 4096;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database has schema version {found}, this Spoor knows up to {known}: run a newer Spoor or restore a backup"
    )]
    NewerSchema { found: usize, known: usize },
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
}

/// The store, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: writer::WriterHandle,
    live: broadcast::Sender<Arc<Event>>,
    /// Stops the checkpoint thread.
    stop_checkpoints: Arc<AtomicBool>,
    /// The lossless followers of new events (the responders' policy).
    follower: writer::Follower,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_checkpoints.store(true, Ordering::Relaxed);
    }
}

fn configure(conn: &Connection, cache_kib: i64) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    text::register(conn)?;
    Ok(())
}

impl Store {
    /// Open (or create) the database at `path`, migrate it, and start the writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        // NORMAL in WAL mode: a commit survives a crash of the process (what an ack
        // promises); a power cut may lose the last commits, never corrupt the file.
        conn.pragma_update(None, "synchronous", "normal")?;
        configure(&conn, WRITER_CACHE_KIB)?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
        )?;
        schema::migrate(&mut conn)?;
        let stop_checkpoints = Arc::new(AtomicBool::new(false));
        checkpoint::start(path, Arc::clone(&stop_checkpoints))?;
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let follower = writer::Follower::default();
        let writer = writer::start(conn, live.clone(), follower.clone());
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                readers: Mutex::new(Vec::new()),
                writer,
                live,
                stop_checkpoints,
                follower,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Store a sensor's batch; answers after the commit.
    pub async fn ingest(
        &self,
        status: SensorStatus,
        rows: Vec<Row>,
    ) -> Result<BatchAck, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner.writer.send(writer::Job::Ingest {
            status,
            rows,
            reply,
        })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Run `f` in its own write transaction on the writer thread.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.inner.writer.send(writer::job(f, reply))?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// [`Store::write`] for callers outside the async runtime (the CLI).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.inner.writer.send(writer::job(f, reply))?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Run `f` on a read-only connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Invalid(format!("query task failed: {e}")))?
    }

    /// Run `f` on a read-only connection on this thread.
    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c, READER_CACHE_KIB)?;
                c
            }
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < MAX_IDLE_READERS
        {
            pool.push(conn);
        }
        result
    }

    /// New events as they are committed (already pseudonymised).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.live.subscribe()
    }

    /// New events as they are committed (never a replayed duplicate), without loss:
    /// unlike [`Store::subscribe`], a follower that falls `capacity` events behind makes
    /// the writer wait (and ingest with it) instead of missing events, so only a consumer
    /// that keeps up belongs here (the responders' policy). Dropping the receiver ends
    /// the following; the channel ends when the store closes.
    pub fn follow(&self, capacity: usize) -> std::sync::mpsc::Receiver<Arc<Event>> {
        self.inner.follower.add(capacity)
    }

    /// Ask the writer to finish what it has and stop; waits for it.
    pub fn close(&self) {
        self.inner.stop_checkpoints.store(true, Ordering::Relaxed);
        self.inner.writer.close();
    }
}

/// Wall clock in µs since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
