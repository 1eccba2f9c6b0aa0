//! Hot reload: readers keep working on the snapshot they hold while a newer one is
//! swapped in.
//!
//! A [`TrailHandle`] holds the current [`TrailStore`] behind `arc-swap`: a reader pays one
//! atomic load per [`TrailHandle::current`] (workers take it once per packet batch) and
//! keeps a consistent store for as long as it holds the guard. [`TrailHandle::reload_if_changed`]
//! notices a replaced snapshot file (compile always replaces it by rename), opens and
//! verifies it, and swaps; a snapshot that fails to open is reported and the old one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};

use crate::snapshot::SnapshotError;
use crate::store::TrailStore;

/// What identifies one version of the snapshot file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn version_of(path: &Path) -> std::io::Result<FileVersion> {
    let meta = std::fs::metadata(path)?;
    Ok(FileVersion {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// The shared, swappable trail store.
#[derive(Debug)]
pub struct TrailHandle {
    path: PathBuf,
    current: ArcSwap<TrailStore>,
    loaded: std::sync::Mutex<Option<FileVersion>>,
}

/// What a reload check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The file is the one already loaded.
    Unchanged,
    /// A new snapshot was loaded and swapped in.
    Swapped,
}

impl TrailHandle {
    /// Open the snapshot at `path`.
    pub fn open(path: &Path) -> Result<TrailHandle, SnapshotError> {
        let version = version_of(path).ok();
        let store = TrailStore::open(path)?;
        Ok(TrailHandle {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(store),
            loaded: std::sync::Mutex::new(version),
        })
    }

    /// Wrap an already loaded store (tests, or a store built in memory).
    pub fn from_store(store: TrailStore) -> TrailHandle {
        TrailHandle {
            path: store.path().to_path_buf(),
            current: ArcSwap::from_pointee(store),
            loaded: std::sync::Mutex::new(None),
        }
    }

    /// The store as of now. Hold the guard for a batch of lookups, not forever: a held
    /// guard keeps the old snapshot mapped after a swap.
    #[inline]
    pub fn current(&self) -> Guard<Arc<TrailStore>> {
        self.current.load()
    }

    /// Swap in a store (used by `reload_if_changed`; also for callers that build one).
    pub fn swap(&self, store: TrailStore) {
        self.current.store(Arc::new(store));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load the snapshot file again if it changed since the last load. On an error the
    /// current store stays in place and the error says why the new file was refused.
    pub fn reload_if_changed(&self) -> Result<Reload, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: self.path.clone(),
            source,
        };
        let version = version_of(&self.path).map_err(io)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == Some(version) {
            return Ok(Reload::Unchanged);
        }
        // Remember this version even if it fails, so a broken file is reported once, not
        // on every poll; a fixed file has a new version and is picked up.
        *loaded = Some(version);
        let store = TrailStore::open(&self.path)?;
        self.current.store(Arc::new(store));
        Ok(Reload::Swapped)
    }

    /// Poll the file every `interval` on a background thread until the returned
    /// [`Watcher`] is dropped or stopped. `on_event` hears each swap and each refused file.
    pub fn watch(
        self: &Arc<Self>,
        interval: Duration,
        on_event: impl Fn(Result<Reload, SnapshotError>) + Send + 'static,
    ) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::clone(self);
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("trail-reload".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    // Sleep in short steps so that stopping is prompt.
                    let mut slept = Duration::ZERO;
                    while slept < interval && !stop_flag.load(Ordering::Relaxed) {
                        let step = (interval - slept).min(Duration::from_millis(50));
                        std::thread::sleep(step);
                        slept += step;
                    }
                    if stop_flag.load(Ordering::Relaxed) {
                        break;
                    }
                    match handle.reload_if_changed() {
                        Ok(Reload::Unchanged) => {}
                        other => on_event(other),
                    }
                }
            })
            .expect("spawn the trail reload thread");
        Watcher {
            stop,
            thread: Some(thread),
        }
    }
}

/// A running reload poller; stops when dropped.
#[derive(Debug)]
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileSource, compile};
    use crate::config::OriginDefaults;
    use crate::format::FormatSpec;
    use std::net::IpAddr;

    fn compile_lines(dir: &Path, lines: &str) -> PathBuf {
        let src = dir.join("trails.txt");
        std::fs::write(&src, lines).unwrap();
        let snapshot = dir.join("trails.snapshot");
        let sources = [CompileSource {
            name: "t".into(),
            path: src,
            format: FormatSpec::Maltrail,
            defaults: OriginDefaults::default(),
            required: true,
        }];
        compile(&sources, &snapshot).unwrap();
        snapshot
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn swaps_a_replaced_snapshot_and_old_readers_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = compile_lines(dir.path(), "1.1.1.1\n");
        let handle = TrailHandle::open(&path).unwrap();
        assert_eq!(handle.reload_if_changed().unwrap(), Reload::Unchanged);
        let old = handle.current();
        assert!(old.lookup_ip(ip("1.1.1.1")).is_some());

        compile_lines(dir.path(), "2.2.2.2\n");
        assert_eq!(handle.reload_if_changed().unwrap(), Reload::Swapped);
        let new = handle.current();
        assert!(new.lookup_ip(ip("2.2.2.2")).is_some());
        assert!(new.lookup_ip(ip("1.1.1.1")).is_none());
        // The reader that took the old store before the swap still sees it whole.
        assert!(old.lookup_ip(ip("1.1.1.1")).is_some());
    }

    #[test]
    fn a_broken_new_snapshot_is_refused_and_the_old_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = compile_lines(dir.path(), "1.1.1.1\n");
        let handle = TrailHandle::open(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tmp = dir.path().join("broken");
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let err = handle.reload_if_changed().unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChecksumMismatch { .. }),
            "{err}"
        );
        assert!(handle.current().lookup_ip(ip("1.1.1.1")).is_some());
        // Reported once, not on every poll.
        assert_eq!(handle.reload_if_changed().unwrap(), Reload::Unchanged);
    }

    #[test]
    fn readers_keep_working_while_the_watcher_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = compile_lines(dir.path(), "9.9.9.9\n");
        let handle = Arc::new(TrailHandle::open(&path).unwrap());
        let swaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&swaps);
        let watcher = handle.watch(Duration::from_millis(5), move |r| {
            if matches!(r, Ok(Reload::Swapped)) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let handle = Arc::clone(&handle);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut lookups = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let store = handle.current();
                        // Every version lists 9.9.9.9.
                        assert!(store.lookup_ip(ip("9.9.9.9")).is_some());
                        lookups += 1;
                    }
                    lookups
                })
            })
            .collect();
        for i in 0..5 {
            compile_lines(dir.path(), &format!("9.9.9.9\n10.0.0.{i}\n"));
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while swaps.load(Ordering::Relaxed) <= i && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        watcher.stop();
        assert_eq!(swaps.load(Ordering::Relaxed), 5);
        assert!(handle.current().lookup_ip(ip("10.0.0.4")).is_some());
    }
}
