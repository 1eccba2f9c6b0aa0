//! The shipper's on-disk spool: every event bound for the server is written here first, so
//! a server that is away, a full queue or a sensor restart loses nothing.
//!
//! Layout in the spool folder:
//!
//! ```text
//! 0000000000000007.seg   append-only segments: one event as one JSON line each
//! 0000000000000008.seg   (only the newest is written to; a restart starts a new one)
//! cursor                 "SEGMENT OFFSET": the first byte not yet acknowledged by the server
//! rejected/              batches the server refused as malformed (4xx), kept for a look
//! ```
//!
//! The writer appends and fsyncs once per batch; the reader reads complete lines from the
//! cursor on, oldest segment first, and the cursor only moves (written to a temporary file,
//! fsynced, renamed) after the server acknowledged what it covers. Segments wholly behind
//! the cursor are deleted. A crash can at worst resend a batch whose answer was lost, which
//! the server stores once (event ids are idempotent), or leave a torn last line in a
//! segment, which is skipped and counted.
//!
//! The spool is bounded by `max_bytes` (all segment files together): an event that does not
//! fit is dropped and counted, never written past the bound.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Segments a full spool is cut into: the space of one segment is what a fully sent but
/// still open segment may hold back from new events.
const SEGMENTS_PER_SPOOL: u64 = 8;
/// Largest segment, so deleting sent events frees space soon on a big spool.
const MAX_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Smallest segment (a tiny spool still holds a few events per segment).
const MIN_SEGMENT_BYTES: u64 = 512;
/// Name of the cursor file.
const CURSOR_FILE: &str = "cursor";
/// Extension of segment files.
const SEGMENT_EXT: &str = "seg";

/// A position in the spool: a segment number and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

/// Appends events; shared by the shipper thread and the sink's overflow path.
#[derive(Debug)]
pub struct SpoolWriter {
    dir: PathBuf,
    segment: u64,
    file: File,
    segment_bytes: u64,
    segment_max: u64,
    /// Bytes of every segment file on disk.
    total_bytes: u64,
    max_bytes: u64,
    /// Lines written and not yet acknowledged.
    pub unsent: u64,
    /// When the oldest unsent line was written (approximately, after a partial send).
    pub oldest_unsent: Option<Instant>,
    /// Events refused because the spool was full, since start.
    pub dropped: u64,
    /// Written since the last fsync.
    dirty: bool,
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016}.{SEGMENT_EXT}"))
}

/// Segment numbers present in `dir`, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name
            .strip_suffix(".seg")
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push(number);
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Read the cursor; a missing one means "from the oldest segment".
pub fn read_cursor(dir: &Path) -> std::io::Result<Option<Cursor>> {
    let text = match fs::read_to_string(dir.join(CURSOR_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Cursor { segment, offset })),
        _ => {
            // A damaged cursor: replaying from the oldest segment resends events the
            // server already has, which it stores once. Losing events would be worse.
            tracing::warn!(
                dir = %dir.display(),
                "spool cursor file is damaged; replaying the spool from its oldest segment"
            );
            Ok(None)
        }
    }
}

/// Replace the cursor atomically (temporary file, fsync, rename, fsync of the folder).
pub fn write_cursor(dir: &Path, cursor: Cursor) -> std::io::Result<()> {
    let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    writeln!(f, "{} {}", cursor.segment, cursor.offset)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(CURSOR_FILE))?;
    sync_dir(dir)
}

impl SpoolWriter {
    /// Open the spool in `dir` (created if missing) and start a new segment after the
    /// newest one, so a torn line a crash left behind is never appended to.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<SpoolWriter> {
        fs::create_dir_all(dir)?;
        let existing = segments(dir)?;
        let mut total_bytes = 0;
        for s in &existing {
            total_bytes += fs::metadata(segment_path(dir, *s))?.len();
        }
        let segment = existing.last().map_or(1, |s| s + 1);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, segment))?;
        sync_dir(dir)?;
        let segment_max =
            (max_bytes / SEGMENTS_PER_SPOOL).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
        let cursor = read_cursor(dir)?.unwrap_or_default();
        let unsent = count_lines_from(dir, cursor)?;
        Ok(SpoolWriter {
            dir: dir.to_path_buf(),
            segment,
            file,
            segment_bytes: 0,
            segment_max,
            total_bytes,
            max_bytes,
            unsent,
            oldest_unsent: (unsent > 0).then(Instant::now),
            dropped: 0,
            dirty: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of all segment files.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Where the next line will be written.
    pub fn end(&self) -> Cursor {
        Cursor {
            segment: self.segment,
            offset: self.segment_bytes,
        }
    }

    /// Append one line (`line` must end with `\n` and hold no other newline). Returns false
    /// (and counts the drop) when the spool has no room for it.
    pub fn append(&mut self, line: &[u8]) -> std::io::Result<bool> {
        let len = line.len() as u64;
        if self.total_bytes + len > self.max_bytes {
            self.dropped += 1;
            return Ok(false);
        }
        if self.segment_bytes > 0 && self.segment_bytes + len > self.segment_max {
            self.roll()?;
        }
        self.file.write_all(line)?;
        self.segment_bytes += len;
        self.total_bytes += len;
        self.dirty = true;
        if self.unsent == 0 {
            self.oldest_unsent = Some(Instant::now());
        }
        self.unsent += 1;
        Ok(true)
    }

    /// Make what was appended durable (one fsync per batch of appends).
    pub fn commit(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Close the current segment (durably) and start the next one.
    fn roll(&mut self) -> std::io::Result<()> {
        self.commit()?;
        self.segment += 1;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, self.segment))?;
        self.segment_bytes = 0;
        sync_dir(&self.dir)
    }

    /// The server acknowledged everything before `cursor` (`lines` lines): persist the
    /// cursor and delete the segments wholly behind it. When everything written has been
    /// sent, the open segment is closed too so that its space is freed.
    pub fn acknowledge(&mut self, mut cursor: Cursor, lines: u64) -> std::io::Result<()> {
        self.unsent = self.unsent.saturating_sub(lines);
        self.oldest_unsent = (self.unsent > 0).then(Instant::now);
        if cursor == self.end() && self.segment_bytes > 0 {
            self.roll()?;
            cursor = self.end();
        }
        write_cursor(&self.dir, cursor)?;
        for s in segments(&self.dir)? {
            if s >= cursor.segment {
                break;
            }
            let path = segment_path(&self.dir, s);
            let len = fs::metadata(&path).map_or(0, |m| m.len());
            fs::remove_file(&path)?;
            self.total_bytes = self.total_bytes.saturating_sub(len);
        }
        Ok(())
    }
}

/// Lines (complete or torn) from `cursor` to the end of the spool.
fn count_lines_from(dir: &Path, cursor: Cursor) -> std::io::Result<u64> {
    let mut n = 0;
    for s in segments(dir)? {
        if s < cursor.segment {
            continue;
        }
        let mut f = File::open(segment_path(dir, s))?;
        if s == cursor.segment {
            f.seek(SeekFrom::Start(cursor.offset))?;
        }
        let mut r = BufReader::new(f);
        let mut line = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Lines read from the spool, and where the next read starts.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Complete lines, without their newline.
    pub lines: Vec<Vec<u8>>,
    /// Torn lines a crash left at a segment's end (skipped).
    pub torn: u64,
    /// The position just after the last line (or torn line) read.
    pub next: Cursor,
}

impl Chunk {
    /// Lines consumed, torn ones included (what to subtract from the unsent count).
    pub fn consumed(&self) -> u64 {
        self.lines.len() as u64 + self.torn
    }
}

/// Read up to `max_lines` complete lines from `from` on, crossing into newer segments.
/// A line without its newline at the end of a segment that is not the newest is torn (the
/// writer never returns to an older segment) and is skipped; at the end of the newest
/// segment it may still be being written and is left for the next read.
pub fn read_chunk(dir: &Path, from: Cursor, max_lines: usize) -> std::io::Result<Chunk> {
    let all = segments(dir)?;
    let mut chunk = Chunk {
        next: from,
        ..Chunk::default()
    };
    let mut pending: Vec<u64> = all.iter().copied().filter(|s| *s >= from.segment).collect();
    if pending.first() != Some(&from.segment) {
        // The cursor's segment is gone (fully sent and deleted, or a fresh spool): start at
        // the oldest one there is.
        chunk.next = Cursor {
            segment: pending.first().copied().unwrap_or(from.segment),
            offset: 0,
        };
    }
    let newest = all.last().copied();
    while let Some(&segment) = pending.first() {
        let mut f = File::open(segment_path(dir, segment))?;
        f.seek(SeekFrom::Start(chunk.next.offset))?;
        let mut r = BufReader::new(f);
        loop {
            if chunk.lines.len() >= max_lines {
                return Ok(chunk);
            }
            let mut line = Vec::new();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                if Some(segment) == newest {
                    // Still being written.
                    return Ok(chunk);
                }
                chunk.torn += 1;
                chunk.next.offset += n as u64;
                break;
            }
            line.pop();
            chunk.next.offset += n as u64;
            chunk.lines.push(line);
        }
        pending.remove(0);
        if let Some(&next) = pending.first() {
            chunk.next = Cursor {
                segment: next,
                offset: 0,
            };
        }
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: u32) -> Vec<u8> {
        format!("{{\"n\":{i}}}\n").into_bytes()
    }

    #[test]
    fn lines_come_back_in_order_across_segments_and_acks_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 4096).unwrap();
        for i in 0..100 {
            assert!(w.append(&line(i)).unwrap());
        }
        w.commit().unwrap();
        assert!(segments(dir.path()).unwrap().len() > 1, "rolled");
        let mut at = Cursor::default();
        let mut seen = Vec::new();
        loop {
            let chunk = read_chunk(dir.path(), at, 7).unwrap();
            if chunk.lines.is_empty() {
                break;
            }
            for l in &chunk.lines {
                seen.push(String::from_utf8(l.clone()).unwrap());
            }
            w.acknowledge(chunk.next, chunk.consumed()).unwrap();
            at = chunk.next;
        }
        let want: Vec<String> = (0..100).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(seen, want);
        assert_eq!(w.unsent, 0);
        // Everything sent: only the fresh, empty segment is left.
        assert_eq!(w.total_bytes(), 0);
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn the_cap_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 1000).unwrap();
        let mut kept = 0;
        for i in 0..200 {
            if w.append(&line(i)).unwrap() {
                kept += 1;
            }
        }
        assert!(kept > 0 && kept < 200);
        assert_eq!(w.dropped, 200 - kept);
        assert!(w.total_bytes() <= 1000);
    }

    #[test]
    fn a_torn_line_in_an_old_segment_is_skipped_and_a_restart_resumes_at_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = SpoolWriter::open(dir.path(), 1 << 20).unwrap();
            for i in 0..5 {
                w.append(&line(i)).unwrap();
            }
            w.commit().unwrap();
            let chunk = read_chunk(dir.path(), Cursor::default(), 2).unwrap();
            w.acknowledge(chunk.next, chunk.consumed()).unwrap();
            // A crash in the middle of a write.
            w.file.write_all(b"{\"n\":99").unwrap();
        }
        let w = SpoolWriter::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(w.unsent, 4, "three whole lines and the torn one");
        let at = read_cursor(dir.path()).unwrap().unwrap();
        let chunk = read_chunk(dir.path(), at, 100).unwrap();
        let got: Vec<&[u8]> = chunk.lines.iter().map(Vec::as_slice).collect();
        assert_eq!(got, [&b"{\"n\":2}"[..], b"{\"n\":3}", b"{\"n\":4}"]);
        assert_eq!(chunk.torn, 1);
    }

    #[test]
    fn a_half_written_line_in_the_newest_segment_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 1 << 20).unwrap();
        w.append(&line(1)).unwrap();
        w.file.write_all(b"{\"n\":").unwrap();
        let chunk = read_chunk(dir.path(), Cursor::default(), 100).unwrap();
        assert_eq!(chunk.lines.len(), 1);
        assert_eq!(chunk.torn, 0);
        w.file.write_all(b"2}\n").unwrap();
        let chunk = read_chunk(dir.path(), chunk.next, 100).unwrap();
        assert_eq!(chunk.lines, [b"{\"n\":2}".to_vec()]);
    }
}
