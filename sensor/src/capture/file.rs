//! Reading pcap and pcapng files, several in order.
//!
//! Classic pcap files are read without libpcap (one copy, into a buffer that stays in
//! cache; see [`super::classic`]); pcapng and anything else libpcap understands is read
//! through libpcap.

use std::path::{Path, PathBuf};

use super::classic::ClassicPcap;
use super::{CaptureError, CaptureSource, CaptureStats, Frame, Next, micros_of};

/// A file that could not be read, or stopped being readable part-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub path: PathBuf,
    pub reason: String,
    /// Frames read from it before the problem.
    pub frames: u64,
}

enum Reader {
    Mapped(ClassicPcap),
    Libpcap(pcap::Capture<pcap::Offline>, i32),
}

struct Current {
    reader: Reader,
    path: PathBuf,
    frames: u64,
}

/// Reads the given files one after another.
pub struct FileCapture {
    paths: Vec<PathBuf>,
    next: usize,
    current: Option<Current>,
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
                Ok(reader) => {
                    self.name = path.display().to_string();
                    self.current = Some(Current {
                        reader,
                        path,
                        frames: 0,
                    });
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

fn open(path: &Path) -> Result<Reader, String> {
    if let Some(mapped) = ClassicPcap::open(path)? {
        return Ok(Reader::Mapped(mapped));
    }
    // Microsecond timestamps whatever the file holds (nanosecond pcaps, pcapng).
    let cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Micro)
        .map_err(|e| e.to_string())?;
    let linktype = cap.get_datalink().0;
    Ok(Reader::Libpcap(cap, linktype))
}

impl CaptureSource for FileCapture {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            let Some(current) = self.current.as_mut() else {
                if !self.open_next() {
                    return Ok(Next::End);
                }
                continue;
            };
            let problem = match &mut current.reader {
                Reader::Mapped(m) => match m.next() {
                    Ok(Some(frame)) => {
                        current.frames += 1;
                        self.frames += 1;
                        let (ts, linktype, wire_len) = (frame.ts, frame.linktype, frame.wire_len);
                        let data: *const [u8] = frame.data;
                        // SAFETY: the bytes are in the read buffer owned by `self.current`,
                        // which is neither dropped nor moved before the next call; the frame
                        // borrows `self` mutably until then. (Returning the borrow straight
                        // from inside this loop is a case the borrow checker cannot prove.)
                        let data = unsafe { &*data };
                        return Ok(Next::Frame(Frame {
                            ts,
                            linktype,
                            data,
                            wire_len,
                        }));
                    }
                    Ok(None) => None,
                    Err(reason) => Some(reason),
                },
                Reader::Libpcap(cap, linktype) => match cap.next_packet() {
                    Ok(packet) => {
                        let ts = micros_of(packet.header);
                        let wire_len = packet.header.len;
                        let data: *const [u8] = packet.data;
                        let linktype = *linktype;
                        current.frames += 1;
                        self.frames += 1;
                        // SAFETY: libpcap keeps the bytes in its buffer for this capture,
                        // which is neither read again nor closed before the next call.
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
                },
            };
            let done = self.current.take().expect("current file is open");
            if let Some(reason) = problem {
                tracing::error!(
                    file = %done.path.display(),
                    "capture file ends badly after {} frames: {reason}",
                    done.frames
                );
                self.problems.push(FileProblem {
                    path: done.path,
                    reason,
                    frames: done.frames,
                });
            }
        }
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        None
    }
}
