//! A classic pcap ("libpcap format", not pcapng) file writer.
//!
//! Writing needs no libpcap: the format is a 24-byte global header followed by a 16-byte record
//! header per packet. We write little-endian with the microsecond magic, link type Ethernet and a
//! snaplen of 65535, which every reader (tcpdump, Wireshark, libpcap, Maltrail) accepts.
//!
//! ```text
//! global header: magic u32 (a1b2c3d4) | version 2.4 (u16, u16) | thiszone i32 | sigfigs u32
//!                | snaplen u32 | network (link type) u32
//! record header: ts_sec u32 | ts_usec u32 | incl_len u32 | orig_len u32, then incl_len bytes
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use spoor_core::Micros;

/// Magic for microsecond timestamps; written little-endian, readers detect the byte order.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const VERSION_MAJOR: u16 = 2;
const VERSION_MINOR: u16 = 4;
/// The largest frame a record carries in full; longer frames are cut (orig_len keeps the truth).
pub const SNAPLEN: u32 = 65_535;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Buffer size for the file writer: large enough that a write syscall moves many packets.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes packets to a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the global header.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        PcapWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out` (link type Ethernet, microsecond timestamps).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        header[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        // thiszone and sigfigs stay 0: timestamps are UTC.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame captured at `time`. Frames longer than [`SNAPLEN`] are truncated;
    /// times outside the 32-bit seconds range of the format are an error.
    pub fn write_packet(&mut self, time: Micros, frame: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(time.secs()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "timestamp outside the pcap range",
            )
        })?;
        let orig_len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
        let incl_len = orig_len.min(SNAPLEN);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&secs.to_le_bytes());
        record[4..8].copy_from_slice(&time.subsec_micros().to_le_bytes());
        record[8..12].copy_from_slice(&incl_len.to_le_bytes());
        record[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(&frame[..incl_len as usize])
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Micros::from_secs_micros(1_700_000_000, 42), &[0xaa; 60])
            .unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(
            u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
            65_535
        );
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(bytes[32..36].try_into().unwrap()), 60);
        assert_eq!(u32::from_le_bytes(bytes[36..40].try_into().unwrap()), 60);
    }

    #[test]
    fn long_frames_are_cut_at_snaplen() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Micros(0), &vec![0u8; 70_000]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 24 + 16 + SNAPLEN as usize);
        assert_eq!(
            u32::from_le_bytes(bytes[32..36].try_into().unwrap()),
            SNAPLEN
        );
        assert_eq!(
            u32::from_le_bytes(bytes[36..40].try_into().unwrap()),
            70_000
        );
    }

    #[test]
    fn negative_time_is_rejected() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        assert!(w.write_packet(Micros(-1), &[0; 14]).is_err());
    }
}
