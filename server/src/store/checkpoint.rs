//! WAL checkpoints on their own thread. Left to SQLite, every commit that pushes the WAL
//! past `wal_autocheckpoint` copies pages back into the database inside the writer's
//! commit, so ingest waits for it. Here a second connection copies them (PASSIVE: it
//! never blocks the writer or readers) while the writer goes on; the writer keeps a
//! large automatic checkpoint only as a bound in case this thread falls behind.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How often the WAL is copied back.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);
/// The writer's own automatic checkpoint (pages): only reached when this thread falls
/// behind; bounds the WAL at about 256 MiB.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 65_536;
/// The stop flag is looked at this often.
const TICK: Duration = Duration::from_millis(100);

/// Runs until `stop` is set (the store closes or is dropped).
pub(super) fn start(path: &Path, stop: Arc<AtomicBool>) -> Result<(), rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    std::thread::Builder::new()
        .name("db-checkpoint".into())
        .spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                if last.elapsed() < INTERVAL {
                    continue;
                }
                last = Instant::now();
                if let Err(e) =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                {
                    tracing::warn!(
                        "WAL checkpoint failed (the writer's own checkpoint takes over): {e}"
                    );
                }
            }
        })
        .expect("cannot start the checkpoint thread");
    Ok(())
}
