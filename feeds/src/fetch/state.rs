//! What the updater remembers between runs, and where the downloaded copies live.
//!
//! Per feed: the conditional-GET validators (ETag, Last-Modified) of the last good copy, when
//! it was written and how many trails it had, and how the last attempt went. All of it sits in
//! one small JSON file in the feeds dir ([`STATE_FILE`]); the copies sit beside it as
//! `<name>.list` ([`copy_path`]). Both are replaced atomically (temp file + rename in the same
//! folder), so a crash or a parallel reader never sees half a file.
//!
//! Two updaters running at once on the same dir do not corrupt anything, but the later state
//! write wins; run one updater per dir.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The state file's name inside the feeds dir.
pub const STATE_FILE: &str = "feeds-state.json";

/// Extension of a feed's last good copy: `<dir>/<name>.list`.
pub const COPY_EXTENSION: &str = "list";

/// Bumped when the state file's shape changes incompatibly; an unknown version is ignored
/// (validators are lost, which costs one full download per feed, nothing else).
const STATE_VERSION: u32 = 1;

/// Where the last good copy of feed `name` lives. Compile reads feeds from here.
pub fn copy_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{COPY_EXTENSION}"))
}

/// A point in time, in whole seconds since the Unix epoch (UTC). Shown as
/// `2026-11-25 10:00 UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Self {
        Timestamp(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// `(year, month, day, hour, minute, second)` in UTC.
    pub fn to_utc(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (secs / 3600) as u32,
            (secs / 60 % 60) as u32,
            (secs % 60) as u32,
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, _) = self.to_utc();
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
    }
}

/// Days since 1970-01-01 → proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What is known locally about one feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedState {
    /// The URL the last good copy came from. Validators are only sent to that URL: after the
    /// config points the feed elsewhere, the first download is unconditional.
    pub url: String,
    /// `ETag` of the last good copy, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified` of the last good copy, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// When the last good copy was written (or last confirmed unchanged by a 304).
    pub updated: Option<Timestamp>,
    /// Trails in the last good copy.
    pub trails: Option<u64>,
    /// Size of the last good copy.
    pub bytes: Option<u64>,
    /// When the last attempt finished, whatever its result.
    pub checked: Option<Timestamp>,
    /// Why the last attempt failed; `None` after a success.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Consecutive downloads rejected for shrinking below the last good copy (see
    /// `SHRINK_CONFIRMATIONS`).
    pub shrink_rejections: u32,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateFile {
    pub(crate) version: u32,
    pub(crate) feeds: BTreeMap<String, FeedState>,
}

impl StateFile {
    /// Read `<dir>/feeds-state.json`; a missing file is an empty state.
    pub(crate) fn load(dir: &Path) -> Result<StateFile, StateError> {
        let path = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StateFile::default()),
            Err(e) => return Err(StateError::Read { path, error: e }),
        };
        let state: StateFile = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Ok(StateFile::default());
        }
        Ok(state)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(STATE_FILE);
        let mut copy = self.clone();
        copy.version = STATE_VERSION;
        let json = serde_json::to_vec_pretty(&copy).expect("state serializes");
        write_atomic(&path, &json).map_err(|error| StateError::Write { path, error })
    }
}

/// The state file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot read feed state {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error(
        "feed state {} is not valid JSON ({detail}); delete it to start fresh \
         (the downloaded copies are kept)",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot write feed state {}: {error}", path.display())]
    Write { path: PathBuf, error: io::Error },
}

/// Replace `path` with `bytes` so that readers see either the old or the new file, never a
/// mix: write a temp file in the same folder (same filesystem), flush it to disk, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01 00:00 UTC");
        // 2026-11-25 10:00:00 UTC
        assert_eq!(Timestamp(1_795_600_800).to_string(), "2026-11-25 10:00 UTC");
        // leap day
        assert_eq!(Timestamp(951_782_400).to_utc(), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn state_round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StateFile::load(dir.path()).unwrap(), StateFile::default());
        let mut state = StateFile::default();
        state.feeds.insert(
            "feodotracker".into(),
            FeedState {
                etag: Some("\"abc\"".into()),
                trails: Some(235),
                ..FeedState::default()
            },
        );
        state.save(dir.path()).unwrap();
        let back = StateFile::load(dir.path()).unwrap();
        assert_eq!(back.feeds, state.feeds);
        // no temp files left behind
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn corrupt_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let err = StateFile::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(STATE_FILE) && err.contains("delete it"),
            "{err}"
        );
    }
}
