//! Capture sources: where frames come from.
//!
//! A [`CaptureSource`] hands out one frame at a time with its packet timestamp and link
//! type. [`FileCapture`] reads pcap and pcapng files in order (a file that cannot be read
//! is reported and skipped, the others are still read); [`LiveCapture`] reads an interface
//! through libpcap (promiscuous mode, BPF filter, snaplen, buffer size, immediate mode).

mod classic;
mod file;
mod live;

pub use file::{FileCapture, FileProblem};
pub use live::{
    DEFAULT_BUFFER_SIZE, DEFAULT_READ_TIMEOUT_MS, DEFAULT_SNAPLEN, LiveCapture, LiveOptions,
};

use spoor_core::Micros;

/// One captured frame, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Packet time from the capture (never the wall clock for files).
    pub ts: Micros,
    /// pcap link type (`DLT_*` / `LINKTYPE_*`), which picks the decoder.
    pub linktype: i32,
    /// Bytes captured (at most the snaplen).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub wire_len: u32,
}

/// Counters a source can report (libpcap's for live captures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub received: u64,
    /// Dropped by the kernel because the buffer was full.
    pub dropped: u64,
    /// Dropped by the interface or driver.
    pub if_dropped: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error(
        "cannot open interface {iface}: {reason} (is it up, and does spoor run as root or with CAP_NET_RAW?)"
    )]
    OpenInterface { iface: String, reason: String },
    #[error("invalid capture filter `{filter}` on {iface}: {reason}")]
    Filter {
        iface: String,
        filter: String,
        reason: String,
    },
    #[error("capture on {iface} failed: {reason}")]
    Read { iface: String, reason: String },
}

/// What a source has next.
#[derive(Debug, Clone, Copy)]
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// Nothing arrived within the read timeout (a quiet live link): a chance to release
    /// held events and check for shutdown.
    Idle,
    /// The input ended (files) or the source was stopped.
    End,
}

/// A source of frames.
pub trait CaptureSource {
    /// A name for logs and stats (`eth0`, `capture.pcap`).
    fn name(&self) -> &str;
    /// The next frame, an idle tick, or the end.
    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError>;
    /// Counters, when the source keeps any.
    fn stats(&mut self) -> Option<CaptureStats>;
}

// `time_t` and `suseconds_t` are 32 bits on some platforms.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn micros_of(ts: &pcap::PacketHeader) -> Micros {
    Micros::from_secs_micros(ts.ts.tv_sec as i64, ts.ts.tv_usec as i64)
}
