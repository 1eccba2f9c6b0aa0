//! Classic pcap files read without libpcap.
//!
//! libpcap reads a file through stdio: the kernel copies each block into stdio's buffer
//! and libpcap copies it again. For the classic pcap format (by far the most common for
//! offline analysis) the records are walked in one reusable buffer instead, filled with
//! large `read`s: one copy, into a buffer small enough to stay in cache. pcapng and
//! anything else still goes through libpcap.
//!
//! Layout (all fields in the writer's byte order, told by the magic):
//!
//! ```text
//! global header  magic u32 | version 2+2 | thiszone i32 | sigfigs u32 | snaplen u32 | linktype u32
//! record         ts_sec u32 | ts_frac u32 (µs, or ns for the nanosecond magic) | incl_len u32 | orig_len u32 | data
//! ```

use std::io::Read;
use std::path::Path;

use spoor_core::Micros;

use super::Frame;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const GLOBAL_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;
/// Largest record accepted: libpcap's own limit for a captured frame (256 KiB).
const MAX_RECORD: usize = 262_144;
/// Read buffer: holds the largest record several times over and fits in a core's L2.
const BUFFER: usize = 1 << 20;

/// A classic pcap file being read.
#[derive(Debug)]
pub(crate) struct ClassicPcap {
    file: std::fs::File,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`, for error messages.
    offset: u64,
    eof: bool,
    swapped: bool,
    nanos: bool,
    pub(crate) linktype: i32,
}

/// Whether the bytes start like a classic pcap file (either byte order, µs or ns).
pub(crate) fn is_classic_pcap(head: &[u8]) -> bool {
    head.len() >= 4 && {
        let le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        [MAGIC_MICROS, MAGIC_NANOS].contains(&le) || [MAGIC_MICROS, MAGIC_NANOS].contains(&be)
    }
}

impl ClassicPcap {
    /// Open `path`; `Ok(None)` if it is not a classic pcap file (let libpcap read it).
    pub(crate) fn open(path: &Path) -> Result<Option<ClassicPcap>, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut me = ClassicPcap {
            file,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            swapped: false,
            nanos: false,
            linktype: 0,
        };
        me.fill(GLOBAL_HEADER).map_err(|e| e.to_string())?;
        let head = &me.buf[me.start..me.end];
        if head.len() < GLOBAL_HEADER || !is_classic_pcap(head) {
            return Ok(None);
        }
        let le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        me.swapped = ![MAGIC_MICROS, MAGIC_NANOS].contains(&le);
        let magic = if me.swapped { le.swap_bytes() } else { le };
        me.nanos = magic == MAGIC_NANOS;
        // The upper bits of the link-type field carry FCS information (pcap-savefile(5)).
        me.linktype = (me.u32_at(20) & 0x0fff_ffff) as i32;
        me.start += GLOBAL_HEADER;
        me.offset += GLOBAL_HEADER as u64;
        Ok(Some(me))
    }

    /// Make at least `want` unread bytes available, unless the file ends first.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        if self.end - self.start >= want || self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < want.max(BUFFER / 2) && self.end < self.buf.len() {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A field of the record at `buf[start + at..]` (bounds known by the caller).
    fn u32_at(&self, at: usize) -> u32 {
        let i = self.start + at;
        let v = u32::from_le_bytes([
            self.buf[i],
            self.buf[i + 1],
            self.buf[i + 2],
            self.buf[i + 3],
        ]);
        if self.swapped { v.swap_bytes() } else { v }
    }

    /// The next record; `Ok(None)` at a clean end, `Err` for a damaged file.
    pub(crate) fn next(&mut self) -> Result<Option<Frame<'_>>, String> {
        self.fill(RECORD_HEADER).map_err(|e| e.to_string())?;
        let available = self.end - self.start;
        if available == 0 {
            return Ok(None);
        }
        let at = self.offset;
        if available < RECORD_HEADER {
            return Err(format!("file ends inside a record header at byte {at}"));
        }
        let (sec, frac, incl, orig) = (
            self.u32_at(0),
            self.u32_at(4),
            self.u32_at(8) as usize,
            self.u32_at(12),
        );
        if incl > MAX_RECORD {
            return Err(format!(
                "record at byte {at} claims {incl} bytes, more than the {MAX_RECORD}-byte limit"
            ));
        }
        self.fill(RECORD_HEADER + incl).map_err(|e| e.to_string())?;
        if self.end - self.start < RECORD_HEADER + incl {
            return Err(format!("file ends inside the record at byte {at}"));
        }
        let data_start = self.start + RECORD_HEADER;
        self.start = data_start + incl;
        self.offset += (RECORD_HEADER + incl) as u64;
        let micros = if self.nanos { frac / 1_000 } else { frac };
        Ok(Some(Frame {
            ts: Micros::from_secs_micros(i64::from(sec), i64::from(micros)),
            linktype: self.linktype,
            data: &self.buf[data_start..data_start + incl],
            wire_len: orig,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, big_endian: bool, nanos: bool, records: &[(u32, u32, &[u8])]) {
        let mut out = Vec::new();
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        let put = |out: &mut Vec<u8>, v: u32| {
            out.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        put(&mut out, magic);
        out.extend_from_slice(&if big_endian {
            [0, 2, 0, 4]
        } else {
            [2, 0, 4, 0]
        });
        put(&mut out, 0);
        put(&mut out, 0);
        put(&mut out, 65_535);
        put(&mut out, 1);
        for (sec, frac, data) in records {
            put(&mut out, *sec);
            put(&mut out, *frac);
            put(&mut out, data.len() as u32);
            put(&mut out, data.len() as u32 + 10);
            out.extend_from_slice(data);
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn both_byte_orders_and_nanosecond_files() {
        let dir = tempfile::tempdir().unwrap();
        for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let path = dir.path().join(format!("{be}-{nanos}.pcap"));
            let frac = if nanos { 5_000 } else { 5 };
            write(&path, be, nanos, &[(100, frac, b"abc"), (101, 0, b"")]);
            let mut p = ClassicPcap::open(&path).unwrap().unwrap();
            assert_eq!(p.linktype, 1);
            let f = p.next().unwrap().unwrap();
            assert_eq!(f.ts, Micros::from_secs_micros(100, 5));
            assert_eq!(f.data, b"abc");
            assert_eq!(f.wire_len, 13);
            assert_eq!(p.next().unwrap().unwrap().data, b"");
            assert!(p.next().unwrap().is_none());
        }
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        write(&path, false, false, &[(1, 0, b"0123456789")]);
        let bytes = std::fs::read(&path).unwrap();
        for cut in GLOBAL_HEADER + 1..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let mut p = ClassicPcap::open(&path).unwrap().unwrap();
            assert!(p.next().is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[GLOBAL_HEADER + 8..GLOBAL_HEADER + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(ClassicPcap::open(&path).unwrap().unwrap().next().is_err());
        std::fs::write(&path, b"not a pcap at all, just text here").unwrap();
        assert!(ClassicPcap::open(&path).unwrap().is_none());
    }
}
