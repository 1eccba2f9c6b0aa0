//! Live capture on one interface through libpcap.
//!
//! The handle is non-blocking and the wait is ours (`poll` on its descriptor, bounded by
//! the read timeout): libpcap's own blocking read on Linux (TPACKET_V2, immediate mode)
//! keeps polling past its timeout until a frame arrives, so a quiet link would never
//! report [`Next::Idle`] (held events stay held) and never see the stop flag.

use super::{CaptureError, CaptureSource, CaptureStats, Frame, Next, micros_of};

/// How to open an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    pub promiscuous: bool,
    /// Bytes kept per frame. The default keeps whole frames up to jumbo size: HTTP headers
    /// and TLS handshakes need the payload, not just the headers.
    pub snaplen: i32,
    /// Kernel buffer in bytes; bigger absorbs bursts without drops.
    pub buffer_size: i32,
    /// Deliver frames as they arrive instead of batching (lower latency, more wakeups).
    pub immediate: bool,
    /// BPF filter expression (`tcp or udp`); empty for everything.
    pub filter: String,
    /// How long a read may wait for a frame before reporting [`Next::Idle`] (releasing
    /// held events, checking for shutdown), in milliseconds.
    pub read_timeout_ms: i32,
}

pub const DEFAULT_SNAPLEN: i32 = 65_535;
pub const DEFAULT_BUFFER_SIZE: i32 = 32 << 20;
pub const DEFAULT_READ_TIMEOUT_MS: i32 = 250;

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            promiscuous: true,
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: DEFAULT_BUFFER_SIZE,
            immediate: true,
            filter: String::new(),
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
        }
    }
}

/// Frames from one interface.
pub struct LiveCapture {
    iface: String,
    cap: pcap::Capture<pcap::Active>,
    linktype: i32,
    read_timeout_ms: i32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("iface", &self.iface)
            .field("linktype", &self.linktype)
            .finish()
    }
}

impl LiveCapture {
    /// Open `iface`; `stop` ends `next_frame` with `Ok(None)` within one read timeout.
    pub fn open(
        iface: &str,
        options: &LiveOptions,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<LiveCapture, CaptureError> {
        let open_err = |e: pcap::Error| CaptureError::OpenInterface {
            iface: iface.to_string(),
            reason: e.to_string(),
        };
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(open_err)?
            .promisc(options.promiscuous)
            .snaplen(options.snaplen)
            .buffer_size(options.buffer_size)
            .immediate_mode(options.immediate)
            .timeout(options.read_timeout_ms)
            .open()
            .and_then(pcap::Capture::setnonblock)
            .map_err(open_err)?;
        if !options.filter.trim().is_empty() {
            cap.filter(&options.filter, true)
                .map_err(|e| CaptureError::Filter {
                    iface: iface.to_string(),
                    filter: options.filter.clone(),
                    reason: e.to_string(),
                })?;
        }
        let linktype = cap.get_datalink().0;
        Ok(LiveCapture {
            iface: iface.to_string(),
            cap,
            linktype,
            read_timeout_ms: options.read_timeout_ms,
            stop,
        })
    }
}

impl LiveCapture {
    /// Block until the capture descriptor is readable, the read timeout passes, or a
    /// signal arrives (all three just end the wait).
    fn wait_readable(&self) {
        use std::os::fd::AsRawFd as _;
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid, writable pollfd for the duration of the call.
        unsafe { libc::poll(&mut fds, 1, self.read_timeout_ms) };
    }
}

impl CaptureSource for LiveCapture {
    fn name(&self) -> &str {
        &self.iface
    }

    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Next::End);
        }
        let failure = match self.cap.next_packet() {
            Ok(packet) => {
                let ts = micros_of(packet.header);
                let wire_len = packet.header.len;
                let data: *const [u8] = packet.data;
                // SAFETY: as in `FileCapture::next_frame`: libpcap's buffer stays valid
                // until the next read, and the frame borrows `self` until then.
                let data = unsafe { &*data };
                return Ok(Next::Frame(Frame {
                    ts,
                    linktype: self.linktype,
                    data,
                    wire_len,
                }));
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing buffered. Wait for the next frame up to the read timeout; a frame
                // arriving ends the wait early and is read by the next call.
                self.wait_readable();
                return Ok(Next::Idle);
            }
            Err(pcap::Error::NoMorePackets) => return Ok(Next::End),
            Err(e) => e,
        };
        Err(CaptureError::Read {
            iface: self.iface.clone(),
            reason: failure.to_string(),
        })
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        self.cap.stats().ok().map(|s| CaptureStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}

/// Linux `PACKET_FANOUT` (uapi `linux/if_packet.h`): spread one interface's frames over
/// several sockets.
#[cfg(target_os = "linux")]
mod fanout {
    pub(super) const PACKET_FANOUT: libc::c_int = 18;
    /// Pick the socket by the kernel's symmetric flow hash: both directions of a flow
    /// reach the same socket.
    pub(super) const PACKET_FANOUT_HASH: libc::c_int = 0;
    /// Reassemble IP fragments before hashing, so every fragment follows its flow.
    pub(super) const PACKET_FANOUT_FLAG_DEFRAG: libc::c_int = 0x8000;
}

#[cfg(target_os = "linux")]
impl LiveCapture {
    /// Join the interface's fanout group `group` (one id per interface, shared by its
    /// workers' handles): from now on the kernel gives this handle only its share of the
    /// flows. Frames that arrived between opening and joining are seen by every handle
    /// (a few duplicates at start).
    pub fn join_fanout(&self, group: u16) -> Result<(), CaptureError> {
        use std::os::fd::AsRawFd as _;
        let arg: libc::c_int = libc::c_int::from(group)
            | ((fanout::PACKET_FANOUT_HASH | fanout::PACKET_FANOUT_FLAG_DEFRAG) << 16);
        // SAFETY: `arg` is a valid c_int for the duration of the call and its size is
        // passed; the descriptor is the open pcap handle's packet socket.
        let rc = unsafe {
            libc::setsockopt(
                self.cap.as_raw_fd(),
                libc::SOL_PACKET,
                fanout::PACKET_FANOUT,
                (&arg as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(CaptureError::OpenInterface {
                iface: self.iface.clone(),
                reason: format!(
                    "cannot join packet fanout group {group} for several workers: {} (set `[sensor] workers = 1`)",
                    std::io::Error::last_os_error()
                ),
            });
        }
        Ok(())
    }
}
