//! Stream reassembly for the first bytes of a direction: just enough to read an HTTP
//! request head, a TLS ClientHello or a server's certificate when they span TCP segments,
//! and a ClientHello spread over CRYPTO frames of several QUIC Initial packets.
//!
//! Only a flow that needs it gets a buffer: the detector opens one when a segment starts a
//! message it cannot finish (an HTTP request without its header end, an incomplete
//! ClientHello, a server flight whose certificate has not come yet), and drops it as soon
//! as the message is read, the byte cap of its side is reached, the flow ends (FIN, RST)
//! or it idles past the timeout. Everything else never touches this module beyond one probe
//! of a small counting filter, and only while some stream is open.
//!
//! Bounds: a byte cap per side (client and server), a total memory budget that every open
//! stream reserves its cap from (at the budget a new stream is refused and counted as a
//! saturation, as the flow table does: evicting would let an attacker flush a stream
//! being read), at most [`MAX_RANGES`] disjoint pieces per stream for out-of-order data.
//! Overlapping data keeps the bytes that came first (a retransmission cannot rewrite what
//! was already read).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use serde::Deserialize;
use spoor_core::{ByteSize, ConfigError, Duration, KeyPath, Micros};

/// Bytes kept of a client's stream: an HTTP request head (headers with cookies run to a few
/// KiB; the HTTP parser's line limit is 8 KiB) or a ClientHello (2 KiB with post-quantum key
/// shares).
pub const DEFAULT_CLIENT_BYTES: usize = 8 * 1024;
/// Bytes kept of a server's stream: ServerHello plus the leaf certificate, which a chain of
/// three 2 KiB certificates in 16 KiB records leaves well inside.
pub const DEFAULT_SERVER_BYTES: usize = 16 * 1024;
/// Memory all open streams may reserve together: 2,048 server streams or 4,096 client
/// streams at the default caps.
pub const DEFAULT_MEMORY: usize = 32 * 1024 * 1024;
/// A stream idle this long (packet time) is dropped.
pub const DEFAULT_TIMEOUT_MICROS: i64 = 30 * 1_000_000;
/// Disjoint pieces a stream holds while waiting for a gap to fill. Real loss leaves one or
/// two holes in a handshake's few segments; more is someone playing games.
pub const MAX_RANGES: usize = 8;
/// Freed buffers kept for reuse, so that a busy link does not allocate per stream.
const SPARE_BUFFERS: usize = 64;
/// Slots of the counting filter consulted before the stream table (2 bytes each: 128 KiB).
const FILTER_SLOTS: usize = 1 << 16;
/// Open streams at most, whatever the memory budget.
const MAX_STREAMS: usize = 1 << 16;
/// Sweeps for idle streams that a full budget may trigger per timeout period.
const SWEEPS_PER_TIMEOUT: i64 = 8;

/// The bounds of the reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    pub client_bytes: usize,
    pub server_bytes: usize,
    pub memory: usize,
    pub timeout_micros: i64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            client_bytes: DEFAULT_CLIENT_BYTES,
            server_bytes: DEFAULT_SERVER_BYTES,
            memory: DEFAULT_MEMORY,
            timeout_micros: DEFAULT_TIMEOUT_MICROS,
        }
    }
}

/// `[sensor.reassembly]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReassembly {
    /// Bytes kept of a client's stream (HTTP request head, ClientHello). Default 8KiB.
    pub client_bytes: ByteSize,
    /// Bytes kept of a server's stream (ServerHello and certificate). Default 16KiB.
    pub server_bytes: ByteSize,
    /// Memory all open streams may reserve together; past it new streams are refused and
    /// counted as `reassembly` saturations. Default 32MiB.
    pub memory: ByteSize,
    /// A stream idle this long (packet time) is dropped. Default 30s.
    pub timeout: Duration,
}

impl Default for RawReassembly {
    fn default() -> Self {
        RawReassembly {
            client_bytes: ByteSize(DEFAULT_CLIENT_BYTES as u64),
            server_bytes: ByteSize(DEFAULT_SERVER_BYTES as u64),
            memory: ByteSize(DEFAULT_MEMORY as u64),
            timeout: Duration::from_secs((DEFAULT_TIMEOUT_MICROS / 1_000_000) as u64),
        }
    }
}

/// Smallest per-side cap: a ClientHello or a short request head must fit.
pub const MIN_SIDE_BYTES: u64 = 1024;
/// Largest per-side cap: a TLS handshake message is bounded by the TLS parser anyway.
pub const MAX_SIDE_BYTES: u64 = crate::proto::tls::MAX_HANDSHAKE_LEN as u64;

impl RawReassembly {
    pub fn validate(&self, key: &KeyPath) -> Result<ReassemblyLimits, Vec<ConfigError>> {
        let mut errors = Vec::new();
        for (name, size) in [
            ("client_bytes", self.client_bytes),
            ("server_bytes", self.server_bytes),
        ] {
            if !(MIN_SIDE_BYTES..=MAX_SIDE_BYTES).contains(&size.0) {
                errors.push(ConfigError::new(
                    key.key(name),
                    format!(
                        "must be between {} and {}",
                        ByteSize(MIN_SIDE_BYTES),
                        ByteSize(MAX_SIDE_BYTES)
                    ),
                ));
            }
        }
        let largest = self.client_bytes.max(self.server_bytes);
        if self.memory < largest || self.memory.0 > 1 << 40 {
            errors.push(ConfigError::new(
                key.key("memory"),
                format!("must hold at least one stream ({largest}) and be at most 1TiB"),
            ));
        }
        if self.timeout.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("timeout"), "must be above 0"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ReassemblyLimits {
            client_bytes: self.client_bytes.0 as usize,
            server_bytes: self.server_bytes.0 as usize,
            memory: usize::try_from(self.memory.0).unwrap_or(usize::MAX),
            timeout_micros: i64::try_from(self.timeout.as_std().as_micros()).unwrap_or(i64::MAX),
        })
    }
}

/// What an open stream waits for; decides its side and what reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// The end of an HTTP request head (client side).
    HttpRequest,
    /// The rest of a TLS ClientHello (client side).
    ClientHello,
    /// A TLS ≤ 1.2 server's Certificate message (server side).
    ServerCertificate,
    /// CRYPTO frames of QUIC Initial packets holding a ClientHello (client side).
    QuicClientHello,
}

impl Awaiting {
    fn cap(self, limits: &ReassemblyLimits) -> usize {
        match self {
            Awaiting::ServerCertificate => limits.server_bytes,
            _ => limits.client_bytes,
        }
    }
}

/// What [`StreamBuf::insert`] did with a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// New bytes were stored (possibly only part of the piece).
    Added,
    /// Every byte of the piece was already there, or it lies past the cap.
    Nothing,
    /// The piece would open more than [`MAX_RANGES`] holes: refused.
    TooManyPieces,
}

/// The first `cap` bytes of one direction, filled in any order.
#[derive(Debug, Default)]
pub struct StreamBuf {
    data: Vec<u8>,
    /// Disjoint, sorted, non-touching `[start, end)` ranges of received bytes.
    ranges: [(u32, u32); MAX_RANGES],
    len: u8,
    cap: u32,
}

impl StreamBuf {
    /// An empty buffer that keeps the first `cap` bytes, reusing `data`'s allocation.
    pub fn with_storage(mut data: Vec<u8>, cap: usize) -> Self {
        data.clear();
        StreamBuf {
            data,
            ranges: [(0, 0); MAX_RANGES],
            len: 0,
            cap: u32::try_from(cap).unwrap_or(u32::MAX),
        }
    }

    /// Empties the buffer, keeping its allocation.
    pub fn reset(&mut self, cap: usize) {
        self.data.clear();
        self.len = 0;
        self.cap = u32::try_from(cap).unwrap_or(u32::MAX);
    }

    /// The allocation, for reuse.
    pub fn into_storage(self) -> Vec<u8> {
        self.data
    }

    /// Bytes of the allocation (what the buffer costs).
    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// The bytes received without a gap from offset 0.
    pub fn contiguous(&self) -> &[u8] {
        match self.ranges[..usize::from(self.len)].first() {
            Some(&(0, end)) => &self.data[..end as usize],
            _ => &[],
        }
    }

    /// True once the contiguous bytes reach the cap: nothing more will be added.
    pub fn is_full(&self) -> bool {
        self.contiguous().len() >= self.cap as usize
    }

    /// Stores `bytes` at stream `offset`; what lies past the cap is dropped, bytes already
    /// held are kept as they were.
    pub fn insert(&mut self, offset: u64, bytes: &[u8]) -> Inserted {
        let cap = u64::from(self.cap);
        if offset >= cap || bytes.is_empty() {
            return Inserted::Nothing;
        }
        let start = offset as u32; // < cap ≤ u32::MAX
        let end = (offset + bytes.len() as u64).min(cap) as u32;

        // The ranges after the merge, computed before anything is written.
        let mut merged = [(0u32, 0u32); MAX_RANGES + 1];
        let mut n = 0;
        let (mut s, mut e) = (start, end);
        let mut placed = false;
        let mut covered = false;
        for &(rs, re) in &self.ranges[..usize::from(self.len)] {
            if re < s {
                merged[n] = (rs, re);
                n += 1;
            } else if rs > e {
                if !placed {
                    merged[n] = (s, e);
                    n += 1;
                    placed = true;
                }
                merged[n] = (rs, re);
                n += 1;
            } else {
                covered |= rs <= start && re >= end;
                s = s.min(rs);
                e = e.max(re);
            }
            if n > MAX_RANGES {
                return Inserted::TooManyPieces;
            }
        }
        if covered {
            return Inserted::Nothing;
        }
        if !placed {
            if n == MAX_RANGES {
                return Inserted::TooManyPieces;
            }
            merged[n] = (s, e);
            n += 1;
        }

        // Write only the gaps between the old ranges inside [start, end).
        if self.data.len() < end as usize {
            let want = end as usize;
            if want > self.data.capacity() {
                let grow = want.max(self.data.capacity() * 2).min(self.cap as usize);
                self.data.reserve_exact(grow - self.data.len());
            }
            self.data.resize(want, 0);
        }
        let mut at = start;
        let old = self.ranges;
        for &(rs, re) in &old[..usize::from(self.len)] {
            if re <= at || rs >= end {
                continue;
            }
            if rs > at {
                self.copy_in(at, rs, start, bytes);
            }
            at = at.max(re);
        }
        if at < end {
            self.copy_in(at, end, start, bytes);
        }
        self.ranges[..n].copy_from_slice(&merged[..n]);
        self.len = n as u8;
        Inserted::Added
    }

    fn copy_in(&mut self, from: u32, to: u32, piece_start: u32, bytes: &[u8]) {
        let (from, to) = (from as usize, to as usize);
        let skip = from - piece_start as usize;
        self.data[from..to].copy_from_slice(&bytes[skip..skip + (to - from)]);
    }
}

/// An open stream.
#[derive(Debug)]
pub struct Stream {
    pub awaiting: Awaiting,
    /// The TCP sequence number of offset 0 (unused for QUIC, where offsets are explicit).
    pub base: u32,
    pub buf: StreamBuf,
    last_seen: i64,
    reserved: usize,
}

impl Stream {
    /// Marks the stream as seen at packet time `now`.
    pub fn seen(&mut self, now: Micros) {
        self.last_seen = now.0;
    }

    /// Adds a TCP segment by its sequence number; bytes before the stream start are cut.
    pub fn add_segment(&mut self, seq: u32, payload: &[u8]) -> Inserted {
        let rel = seq.wrapping_sub(self.base) as i32;
        if rel < 0 {
            let skip = rel.unsigned_abs() as usize;
            match payload.get(skip..) {
                Some(rest) if !rest.is_empty() => self.buf.insert(0, rest),
                _ => Inserted::Nothing,
            }
        } else {
            self.buf.insert(rel as u64, payload)
        }
    }
}

/// What the reassembler has done, for the stats line and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Streams opened.
    pub opened: u64,
    /// Streams whose message was read whole.
    pub completed: u64,
    /// Streams refused because the memory budget or the stream count was used up.
    pub saturated: u64,
    /// Streams that reached their side's cap before the message ended.
    pub overflowed: u64,
    /// Streams dropped after idling past the timeout.
    pub expired: u64,
    /// Streams ended by FIN or RST before the message was whole.
    pub closed: u64,
    /// Pieces refused because they would open too many holes.
    pub pieces_refused: u64,
}

/// Identity hasher: stream keys are already keyed 64-bit hashes.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The open streams of one detector.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    streams: HashMap<u64, Stream, BuildHasherDefault<KeyHasher>>,
    /// Counts of open streams per key slot: a zero means "certainly no stream".
    filter: Box<[u16]>,
    seed: u64,
    reserved: usize,
    spare: Vec<Vec<u8>>,
    /// Packet time of the last sweep of idle streams.
    last_sweep: i64,
    pub counters: ReassemblyCounters,
}

/// splitmix64's finaliser.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) ^ (1 << 127),
    }
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x7ea5, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 20);
        Reassembler {
            limits,
            streams: HashMap::default(),
            filter: vec![0u16; FILTER_SLOTS].into_boxed_slice(),
            seed: mix64(seed),
            reserved: 0,
            spare: Vec::new(),
            last_sweep: i64::MIN,
            counters: ReassemblyCounters::default(),
        }
    }

    pub fn limits(&self) -> &ReassemblyLimits {
        &self.limits
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Bytes reserved by open streams (an upper bound of their buffers).
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Bytes actually allocated by open streams and spare buffers.
    pub fn allocated(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.buf.capacity())
            .chain(self.spare.iter().map(Vec::capacity))
            .sum()
    }

    /// The key of one direction of a conversation; `extra` tells apart streams of the same
    /// addresses (QUIC connection IDs), 0 for TCP. Keyed by a per-process seed, so nobody
    /// outside can aim collisions at it.
    #[inline]
    pub fn key(
        &self,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        proto: u8,
        extra: u64,
    ) -> u64 {
        let s = ip_bits(src);
        let d = ip_bits(dst);
        let mut h = self.seed;
        for x in [
            s as u64,
            (s >> 64) as u64,
            d as u64,
            (d >> 64) as u64,
            (u64::from(src_port) << 32) | (u64::from(dst_port) << 8) | u64::from(proto),
            extra,
        ] {
            h = mix64(h ^ x);
        }
        h
    }

    fn slot(key: u64) -> usize {
        (key >> 48) as usize & (FILTER_SLOTS - 1)
    }

    /// False when no stream has `key` (one probe of a 128 KiB filter); true means "look".
    #[inline]
    pub fn may_hold(&self, key: u64) -> bool {
        !self.streams.is_empty() && self.filter[Self::slot(key)] != 0
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut Stream> {
        self.streams.get_mut(&key)
    }

    /// Opens a stream for `key` at packet time `now`, unless the budget is used up (counted
    /// as a saturation; idle streams are dropped first to make room).
    pub fn open(
        &mut self,
        key: u64,
        awaiting: Awaiting,
        base: u32,
        now: Micros,
    ) -> Option<&mut Stream> {
        if self.streams.contains_key(&key) {
            self.close(key);
        }
        let cap = awaiting.cap(&self.limits);
        if self.reserved + cap > self.limits.memory || self.streams.len() >= MAX_STREAMS {
            // Sweeping walks every stream: under a flood of refusals, at most a few times
            // per timeout period.
            let sweep_gap = (self.limits.timeout_micros / SWEEPS_PER_TIMEOUT).max(1);
            if now.0.saturating_sub(self.last_sweep) >= sweep_gap {
                self.expire(now);
            }
            if self.reserved + cap > self.limits.memory || self.streams.len() >= MAX_STREAMS {
                self.counters.saturated += 1;
                return None;
            }
        }
        self.counters.opened += 1;
        self.reserved += cap;
        let slot = &mut self.filter[Self::slot(key)];
        *slot = slot.saturating_add(1);
        let storage = self.spare.pop().unwrap_or_default();
        let stream = Stream {
            awaiting,
            base,
            buf: StreamBuf::with_storage(storage, cap),
            last_seen: now.0,
            reserved: cap,
        };
        Some(self.streams.entry(key).or_insert(stream))
    }

    /// Marks `key`'s stream as seen at `now`.
    pub fn touch(&mut self, key: u64, now: Micros) {
        if let Some(s) = self.streams.get_mut(&key) {
            s.last_seen = now.0;
        }
    }

    /// Takes `key`'s stream out of the table to read it; give it back with [`Self::put_back`]
    /// or end it with [`Self::finish`]. Its reservation stays until then.
    pub fn take(&mut self, key: u64) -> Option<Stream> {
        self.streams.remove(&key)
    }

    /// Returns a stream taken with [`Self::take`].
    pub fn put_back(&mut self, key: u64, stream: Stream) {
        self.streams.insert(key, stream);
    }

    /// Ends a taken stream: its reservation and filter count are released and its buffer
    /// is kept for reuse.
    pub fn finish(&mut self, key: u64, stream: Stream) {
        self.reserved -= stream.reserved;
        let slot = &mut self.filter[Self::slot(key)];
        *slot = slot.saturating_sub(1);
        if self.spare.len() < SPARE_BUFFERS {
            let mut storage = stream.buf.into_storage();
            // A spare buffer larger than a client stream's cap is not worth keeping.
            if storage.capacity() <= self.limits.client_bytes {
                storage.clear();
                self.spare.push(storage);
            }
        }
    }

    /// Drops `key`'s stream if there is one (the flow ended).
    pub fn close(&mut self, key: u64) -> bool {
        match self.take(key) {
            Some(stream) => {
                self.finish(key, stream);
                true
            }
            None => false,
        }
    }

    /// Drops every stream idle past the timeout at packet time `now`.
    pub fn expire(&mut self, now: Micros) {
        self.last_sweep = now.0;
        let timeout = self.limits.timeout_micros;
        let Reassembler {
            streams,
            filter,
            reserved,
            counters,
            ..
        } = self;
        streams.retain(|&key, s| {
            let live = now.0.saturating_sub(s.last_seen) < timeout;
            if !live {
                *reserved -= s.reserved;
                let slot = &mut filter[Self::slot(key)];
                *slot = slot.saturating_sub(1);
                counters.expired += 1;
            }
            live
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(cap: usize) -> StreamBuf {
        StreamBuf::with_storage(Vec::new(), cap)
    }

    #[test]
    fn in_order_and_out_of_order_pieces_join() {
        let mut b = buf(100);
        assert_eq!(b.insert(0, b"hello "), Inserted::Added);
        assert_eq!(b.insert(12, b"!!"), Inserted::Added);
        assert_eq!(b.contiguous(), b"hello ");
        assert_eq!(b.insert(6, b"world!"), Inserted::Added);
        assert_eq!(b.contiguous(), b"hello world!!!");
        assert_eq!(b.insert(0, b"hello"), Inserted::Nothing);
    }

    #[test]
    fn first_bytes_win_on_overlap() {
        let mut b = buf(100);
        b.insert(4, b"EFGH");
        // Overlaps both sides of the held piece: only the gaps are written.
        assert_eq!(b.insert(0, b"abcdefghij"), Inserted::Added);
        assert_eq!(b.contiguous(), b"abcdEFGHij");
        assert_eq!(b.insert(2, b"XXXXXXXXXXXX"), Inserted::Added);
        assert_eq!(b.contiguous(), b"abcdEFGHijXXXX");
    }

    #[test]
    fn the_cap_cuts_and_full_is_reported() {
        let mut b = buf(8);
        assert_eq!(b.insert(0, b"0123456789"), Inserted::Added);
        assert_eq!(b.contiguous(), b"01234567");
        assert!(b.is_full());
        assert_eq!(b.insert(8, b"zz"), Inserted::Nothing);
        assert_eq!(b.insert(u64::MAX - 1, b"zz"), Inserted::Nothing);
    }

    #[test]
    fn holes_are_bounded() {
        let mut b = buf(1000);
        for i in 0..MAX_RANGES as u64 {
            assert_eq!(b.insert(10 + i * 10, b"x"), Inserted::Added);
        }
        assert_eq!(b.insert(500, b"x"), Inserted::TooManyPieces);
        assert_eq!(b.insert(5, b"x"), Inserted::TooManyPieces);
        // Filling a hole between two pieces merges them and is fine.
        assert_eq!(b.insert(11, b"123456789"), Inserted::Added);
        assert_eq!(b.insert(500, b"x"), Inserted::Added);
        assert_eq!(b.contiguous(), b"");
        assert_eq!(b.insert(0, &[b'a'; 10]), Inserted::Added);
        assert_eq!(&b.contiguous()[..11], b"aaaaaaaaaax");
    }

    #[test]
    fn every_order_gives_the_same_bytes() {
        let text: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let pieces: Vec<(usize, usize)> =
            vec![(0, 100), (90, 150), (150, 300), (250, 420), (420, 600)];
        // All 120 orders of five overlapping pieces.
        let mut order: Vec<usize> = (0..pieces.len()).collect();
        let mut count = 0;
        permute(&mut order, 0, &mut |o| {
            let mut b = buf(600);
            for &i in o {
                let (s, e) = pieces[i];
                b.insert(s as u64, &text[s..e]);
            }
            assert_eq!(b.contiguous(), &text[..], "{o:?}");
            count += 1;
        });
        assert_eq!(count, 120);
    }

    fn permute(v: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }

    /// Random pieces against a plain model (one optional byte per offset, first write
    /// wins): the contiguous prefix always agrees, whatever was refused.
    #[test]
    fn matches_a_first_bytes_win_model() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        const CAP: usize = 512;
        for _ in 0..2_000 {
            let mut b = buf(CAP);
            let mut model: Vec<Option<u8>> = vec![None; CAP];
            for op in 0..24u8 {
                let offset = next(CAP as u64 + 32);
                let len = next(96) as usize;
                let fill = next(256) as u8;
                let bytes: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8) ^ op).collect();
                if b.insert(offset, &bytes) != Inserted::TooManyPieces {
                    for (i, &v) in bytes.iter().enumerate() {
                        if let Some(slot) = model.get_mut(offset as usize + i) {
                            slot.get_or_insert(v);
                        }
                    }
                }
                let want: Vec<u8> = model.iter().map_while(|v| *v).collect();
                assert_eq!(b.contiguous(), &want[..]);
                assert!(usize::from(b.len) <= MAX_RANGES);
            }
        }
    }

    #[test]
    fn segments_before_the_start_are_cut() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let key = 7;
        let s = r.open(key, Awaiting::HttpRequest, 1000, Micros(0)).unwrap();
        s.add_segment(1000, b"GET ");
        // A retransmission starting 4 bytes earlier (before the stream) and a wrapped seq.
        s.add_segment(996, b"xxxxGET /a");
        assert_eq!(s.buf.contiguous(), b"GET /a");
        let mut r2 = Reassembler::new(ReassemblyLimits::default());
        let s = r2
            .open(key, Awaiting::HttpRequest, u32::MAX - 1, Micros(0))
            .unwrap();
        s.add_segment(u32::MAX - 1, b"ab");
        s.add_segment(0, b"cd");
        assert_eq!(s.buf.contiguous(), b"abcd");
    }

    #[test]
    fn the_budget_refuses_and_counts() {
        let limits = ReassemblyLimits {
            client_bytes: 1024,
            server_bytes: 4096,
            memory: 10 * 1024,
            timeout_micros: 10_000_000,
        };
        let mut r = Reassembler::new(limits);
        for k in 0..10u64 {
            assert!(r.open(k, Awaiting::ClientHello, 0, Micros(0)).is_some());
        }
        assert!(r.open(99, Awaiting::ClientHello, 0, Micros(1)).is_none());
        assert_eq!(r.counters.saturated, 1);
        assert_eq!(r.reserved(), 10 * 1024);
        // Closing one makes room; idle ones expire when room is needed.
        assert!(r.close(3));
        assert!(r.open(99, Awaiting::ClientHello, 0, Micros(1)).is_some());
        assert!(
            r.open(100, Awaiting::ServerCertificate, 0, Micros(20_000_000))
                .is_some()
        );
        assert_eq!(r.counters.expired, 10);
        assert_eq!(r.len(), 1);
        assert_eq!(r.reserved(), 4096);
        assert!(r.may_hold(100));
    }
}
