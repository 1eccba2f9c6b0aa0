//! One appended file of events in any [`Format`] (JSON lines for a log shipper such as
//! Filebeat, CEF for a syslog daemon that tails files, ...).
//!
//! Each event is one `write` on an append-mode file; [`EventSink::flush`] fsyncs. The file
//! is reopened after a failed write and on the next event after [`FileSink::reopen`]
//! (call it after log rotation, e.g. on SIGHUP).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;
use spoor_core::Event;

use super::encoder::{Encoder, Format};
use super::syslog::SyslogConfig;
use super::{EventSink, OutputError};

/// `[output.file]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append to; its folder must exist.
    pub path: PathBuf,
    /// `json` (default), `maltrail` or `cef`.
    #[serde(default)]
    pub format: Format,
    /// Write a syslog header in front of each line (none by default).
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
}

impl FileConfig {
    pub fn new(path: impl Into<PathBuf>, format: Format) -> FileConfig {
        FileConfig {
            path: path.into(),
            format,
            syslog: None,
        }
    }
}

/// Appends one line per event to a file.
#[derive(Debug)]
pub struct FileSink {
    name: String,
    path: PathBuf,
    encoder: Encoder,
    file: Option<File>,
}

impl FileSink {
    /// Opens (creates) the file now, so a bad path is reported at start-up.
    pub fn new(config: FileConfig) -> Result<FileSink, OutputError> {
        let mut sink = FileSink {
            name: format!("{:?}-file", config.format).to_lowercase(),
            path: config.path,
            encoder: Encoder::new(config.format, config.syslog),
            file: None,
        };
        sink.open()?;
        Ok(sink)
    }

    /// Close the file; the next event opens it again (after rotation).
    pub fn reopen(&mut self) {
        self.file = None;
    }

    fn open(&mut self) -> Result<&mut File, OutputError> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| OutputError::io(format!("opening {}", self.path.display()), e))?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => Ok(file),
            None => unreachable!("opened above"),
        }
    }
}

impl EventSink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn emit(&mut self, event: &Event) -> Result<(), OutputError> {
        let mut line = self.encoder.encode(event);
        line.push('\n');
        let file = self.open()?;
        if let Err(e) = file.write_all(line.as_bytes()) {
            self.file = None;
            return Err(OutputError::io(
                format!("writing {}", self.path.display()),
                e,
            ));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        match &self.file {
            Some(file) => file
                .sync_data()
                .map_err(|e| OutputError::io(format!("syncing {}", self.path.display()), e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::test_support::dns_event;

    #[test]
    fn json_lines_are_appended() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.json");
        let mut sink = FileSink::new(FileConfig::new(&path, Format::Json)).unwrap();
        assert_eq!(sink.name(), "json-file");
        sink.emit(&dns_event()).unwrap();
        sink.reopen();
        sink.emit(&dns_event()).unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["event_type"], "alert");
        }
    }
}
