//! Daily log files in Maltrail's layout: `<dir>/YYYY-MM-DD.log`, one event line per event,
//! appended, so Maltrail's server and existing log readers can read Spoor's logs.
//!
//! The day comes from the event's packet time (UTC, see [`super`]), not the wall clock, so
//! replaying a capture files events under the day they happened; the file is reopened when
//! that day changes. Each event is one `write` on an append-mode file (no user-space
//! buffer to lose on a crash); [`EventSink::flush`] fsyncs. After a failed write the file
//! is reopened on the next event (the folder may have been rotated or remounted).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use spoor_core::Event;

use super::encoder::{Encoder, Format};
use super::time::civil_from_days;
use super::{EventSink, OutputError};

fn default_format() -> Format {
    Format::Maltrail
}

/// `[output.daily]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyLogConfig {
    /// Folder of the daily files (Maltrail's `LOG_DIR`); created when missing.
    pub dir: PathBuf,
    /// What each line is: `maltrail` (default) or `json`, `cef`.
    #[serde(default = "default_format")]
    pub format: Format,
}

impl DailyLogConfig {
    pub fn new(dir: impl Into<PathBuf>) -> DailyLogConfig {
        DailyLogConfig {
            dir: dir.into(),
            format: Format::Maltrail,
        }
    }
}

#[derive(Debug)]
struct OpenDay {
    day: i64,
    file: File,
}

/// Appends events to `<dir>/YYYY-MM-DD.log` by event day.
#[derive(Debug)]
pub struct DailyLogSink {
    dir: PathBuf,
    encoder: Encoder,
    current: Option<OpenDay>,
}

impl DailyLogSink {
    pub fn new(config: DailyLogConfig) -> Result<DailyLogSink, OutputError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| OutputError::io(format!("creating {}", config.dir.display()), e))?;
        Ok(DailyLogSink {
            dir: config.dir,
            encoder: Encoder::new(config.format, None),
            current: None,
        })
    }

    /// The file events of `day` (days since the epoch) go to.
    pub fn path_for_day(dir: &Path, day: i64) -> PathBuf {
        let (y, m, d) = civil_from_days(day);
        dir.join(format!("{y:04}-{m:02}-{d:02}.log"))
    }

    fn file_for(&mut self, day: i64) -> Result<&mut File, OutputError> {
        if self.current.as_ref().is_none_or(|c| c.day != day) {
            if let Some(old) = self.current.take() {
                // The old day is finished: make it durable before moving on.
                let _ = old.file.sync_data();
            }
            let path = Self::path_for_day(&self.dir, day);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| OutputError::io(format!("opening {}", path.display()), e))?;
            self.current = Some(OpenDay { day, file });
        }
        match &mut self.current {
            Some(open) => Ok(&mut open.file),
            None => unreachable!("opened above"),
        }
    }
}

impl EventSink for DailyLogSink {
    fn name(&self) -> &str {
        "daily-log"
    }

    fn emit(&mut self, event: &Event) -> Result<(), OutputError> {
        let mut line = self.encoder.encode(event);
        line.push('\n');
        let day = event.time.secs().div_euclid(86_400);
        let file = self.file_for(day)?;
        if let Err(e) = file.write_all(line.as_bytes()) {
            self.current = None;
            return Err(OutputError::io("writing the daily log", e));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        match &self.current {
            Some(open) => open
                .file
                .sync_data()
                .map_err(|e| OutputError::io("syncing the daily log", e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;
    use spoor_core::Micros;

    #[test]
    fn files_roll_over_by_event_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut sink = DailyLogSink::new(DailyLogConfig::new(&dir)).unwrap();
        let mut e = dns_event();
        // 2023-11-14 23:59:59.999999 UTC, then the next day, then back (a late packet).
        e.time = Micros::from_secs_micros(1_700_006_399, 999_999);
        sink.emit(&e).unwrap();
        e.time = Micros::from_secs_micros(1_700_006_400, 0);
        sink.emit(&e).unwrap();
        sink.emit(&e).unwrap();
        e.time = Micros::from_secs_micros(1_700_000_000, 1);
        sink.emit(&e).unwrap();
        sink.flush().unwrap();

        let first = std::fs::read_to_string(dir.join("2023-11-14.log")).unwrap();
        let second = std::fs::read_to_string(dir.join("2023-11-15.log")).unwrap();
        assert_eq!(first.lines().count(), 2, "{first}");
        assert!(first.starts_with("\"2023-11-14 23:59:59.999999\" sensor1 10.0.0.5 "));
        assert!(
            first
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("\"2023-11-14 22:13:20.000001\"")
        );
        assert_eq!(second.lines().count(), 2);
        assert!(second.ends_with("(www).evil.com \"malware (test)\" (static)\n"));

        // Appends, never truncates.
        drop(sink);
        let mut sink = DailyLogSink::new(DailyLogConfig::new(&dir)).unwrap();
        sink.emit(&e).unwrap();
        let first = std::fs::read_to_string(dir.join("2023-11-14.log")).unwrap();
        assert_eq!(first.lines().count(), 3);
    }

    #[test]
    fn write_errors_are_returned_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut sink = DailyLogSink::new(DailyLogConfig::new(&dir)).unwrap();
        let e = dns_event();
        // A folder where the day's file should be: opening it fails.
        std::fs::create_dir(dir.join("2023-11-14.log")).unwrap();
        assert!(matches!(sink.emit(&e), Err(OutputError::Io { .. })));
        std::fs::remove_dir(dir.join("2023-11-14.log")).unwrap();
        sink.emit(&e).unwrap();
    }
}
