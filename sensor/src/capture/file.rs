//! Reading pcap and pcapng files, several in order.

use std::path::{Path, PathBuf};

use super::{CaptureError, CaptureSource, CaptureStats, Frame, Next, micros_of};

/// A file that could not be read, or stopped being readable part-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub path: PathBuf,
    pub reason: String,
    /// Frames read from it before the problem.
    pub frames: u64,
}

/// Reads the given files one after another.
pub struct FileCapture {
    paths: Vec<PathBuf>,
    next: usize,
    current: Option<(pcap::Capture<pcap::Offline>, i32, PathBuf, u64)>,
    name: String,
    problems: Vec<FileProblem>,
    frames: u64,
}

impl std::fmt::Debug for FileCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCapture")
            .field("paths", &self.paths)
            .field("next", &self.next)
            .field("problems", &self.problems)
            .finish()
    }
}

impl FileCapture {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        FileCapture {
            name: paths
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            paths,
            next: 0,
            current: None,
            problems: Vec::new(),
            frames: 0,
        }
    }

    /// Files that could not be read (fully), in order.
    pub fn problems(&self) -> &[FileProblem] {
        &self.problems
    }

    /// Frames read from all files so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn open_next(&mut self) -> bool {
        while self.next < self.paths.len() {
            let path = self.paths[self.next].clone();
            self.next += 1;
            match open(&path) {
                Ok(cap) => {
                    let linktype = cap.get_datalink().0;
                    self.name = path.display().to_string();
                    self.current = Some((cap, linktype, path, 0));
                    return true;
                }
                Err(reason) => {
                    tracing::error!(file = %path.display(), "cannot read capture: {reason}");
                    self.problems.push(FileProblem {
                        path,
                        reason,
                        frames: 0,
                    });
                }
            }
        }
        false
    }
}

fn open(path: &Path) -> Result<pcap::Capture<pcap::Offline>, String> {
    // Microsecond timestamps whatever the file holds (nanosecond pcaps, pcapng).
    pcap::Capture::from_file_with_precision(path, pcap::Precision::Micro).map_err(|e| e.to_string())
}

impl CaptureSource for FileCapture {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            let Some((cap, linktype, _, frames)) = self.current.as_mut() else {
                if !self.open_next() {
                    return Ok(Next::End);
                }
                continue;
            };
            let problem = match cap.next_packet() {
                Ok(packet) => {
                    let ts = micros_of(packet.header);
                    let wire_len = packet.header.len;
                    let data: *const [u8] = packet.data;
                    let linktype = *linktype;
                    *frames += 1;
                    self.frames += 1;
                    // SAFETY: the bytes live in libpcap's buffer for this capture, which is
                    // neither read again nor closed before the next call to `next_frame`,
                    // and the returned frame borrows `self` mutably until then. (Returning
                    // the borrow straight from inside this loop is a case today's borrow
                    // checker cannot prove.)
                    let data = unsafe { &*data };
                    return Ok(Next::Frame(Frame {
                        ts,
                        linktype,
                        data,
                        wire_len,
                    }));
                }
                Err(pcap::Error::NoMorePackets) => None,
                Err(e) => Some(e.to_string()),
            };
            let (_, _, path, frames) = self.current.take().expect("current file is open");
            if let Some(reason) = problem {
                tracing::error!(
                    file = %path.display(),
                    "capture file ends badly after {frames} frames: {reason}"
                );
                self.problems.push(FileProblem {
                    path,
                    reason,
                    frames,
                });
            }
        }
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        None
    }
}
