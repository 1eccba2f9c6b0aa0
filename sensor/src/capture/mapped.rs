//! Classic pcap files read straight from a memory mapping.
//!
//! libpcap reads a file through stdio: the kernel copies each block into stdio's buffer
//! and libpcap copies it again. For the classic pcap format (by far the most common for
//! offline analysis) the records are simply walked in the mapped file instead, with no
//! copy at all. pcapng and anything else still goes through libpcap.
//!
//! Layout (all fields in the writer's byte order, told by the magic):
//!
//! ```text
//! global header  magic u32 | version 2+2 | thiszone i32 | sigfigs u32 | snaplen u32 | linktype u32
//! record         ts_sec u32 | ts_frac u32 (µs, or ns for the nanosecond magic) | incl_len u32 | orig_len u32 | data
//! ```

use std::path::Path;

use spoor_core::Micros;

use super::Frame;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const GLOBAL_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;
/// Largest record accepted: libpcap's own limit for a captured frame (256 KiB).
const MAX_RECORD: usize = 262_144;
/// Pages behind the read position are handed back in steps of this size, so a large file
/// does not stay resident in this process once read (the page cache keeps what it likes).
const RELEASE_STEP: usize = 4 << 20;

/// A mapped classic pcap file.
#[derive(Debug)]
pub(crate) struct MappedPcap {
    map: memmap2::Mmap,
    pos: usize,
    /// Everything before this offset has been handed back to the kernel.
    released: usize,
    swapped: bool,
    nanos: bool,
    pub(crate) linktype: i32,
}

/// Whether `path` starts like a classic pcap file (either byte order, µs or ns).
pub(crate) fn is_classic_pcap(head: &[u8]) -> bool {
    head.len() >= 4 && {
        let le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        [MAGIC_MICROS, MAGIC_NANOS].contains(&le) || [MAGIC_MICROS, MAGIC_NANOS].contains(&be)
    }
}

impl MappedPcap {
    /// Map `path`; `Ok(None)` if it is not a classic pcap file (let libpcap read it).
    pub(crate) fn open(path: &Path) -> Result<Option<MappedPcap>, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: the mapping is read-only; a capture file changing under a reader is
        // read as whatever bytes are there, every length is bounds-checked below.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
        if map.len() < GLOBAL_HEADER || !is_classic_pcap(&map) {
            return Ok(None);
        }
        let le = u32::from_le_bytes([map[0], map[1], map[2], map[3]]);
        let swapped = ![MAGIC_MICROS, MAGIC_NANOS].contains(&le);
        let magic = if swapped { le.swap_bytes() } else { le };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        let mut me = MappedPcap {
            map,
            pos: GLOBAL_HEADER,
            released: 0,
            swapped,
            nanos: magic == MAGIC_NANOS,
            linktype: 0,
        };
        // The upper bits of the link-type field carry FCS information (pcap-savefile(5)).
        me.linktype = (me.u32_at(20).unwrap_or(0) & 0x0fff_ffff) as i32;
        Ok(Some(me))
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.map.get(at..at + 4)?;
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        Some(if self.swapped { v.swap_bytes() } else { v })
    }

    /// Drop the mapping's pages before `upto` from this process (no frame borrows them:
    /// the caller has moved past them).
    fn release_behind(&mut self, upto: usize) {
        let upto = upto - upto % RELEASE_STEP;
        if upto <= self.released {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: the range lies inside the mapping and no reference into it is alive
            // (frames borrow the reader mutably, and this runs before the next frame is
            // made); for a read-only file mapping DONTNEED only unmaps the pages, a later
            // access would read the same bytes back from the file.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    upto - self.released,
                )
            };
        }
        self.released = upto;
    }

    /// The next record; `Ok(None)` at a clean end, `Err` for a damaged file.
    pub(crate) fn next(&mut self) -> Result<Option<Frame<'_>>, String> {
        if self.pos == self.map.len() {
            return Ok(None);
        }
        let at = self.pos;
        if at - self.released >= RELEASE_STEP {
            self.release_behind(at);
        }
        let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            self.u32_at(at),
            self.u32_at(at + 4),
            self.u32_at(at + 8),
            self.u32_at(at + 12),
        ) else {
            return Err(format!("file ends inside a record header at byte {at}"));
        };
        let incl = incl as usize;
        if incl > MAX_RECORD {
            return Err(format!(
                "record at byte {at} claims {incl} bytes, more than the {MAX_RECORD}-byte limit"
            ));
        }
        let start = at + RECORD_HEADER;
        let Some(data) = self.map.get(start..start + incl) else {
            return Err(format!("file ends inside the record at byte {at}"));
        };
        self.pos = start + incl;
        let micros = if self.nanos { frac / 1_000 } else { frac };
        Ok(Some(Frame {
            ts: Micros::from_secs_micros(i64::from(sec), i64::from(micros)),
            linktype: self.linktype,
            data,
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
            let mut p = MappedPcap::open(&path).unwrap().unwrap();
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
            let mut p = MappedPcap::open(&path).unwrap().unwrap();
            assert!(p.next().is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[GLOBAL_HEADER + 8..GLOBAL_HEADER + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(MappedPcap::open(&path).unwrap().unwrap().next().is_err());
        std::fs::write(&path, b"not a pcap at all, just text here").unwrap();
        assert!(MappedPcap::open(&path).unwrap().is_none());
    }
}
