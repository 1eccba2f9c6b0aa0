//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes, fragments and time.
//!
//! Policy:
//! - Overlaps: **first wins**. Bytes already received are never overwritten, so a later
//!   overlapping fragment cannot rewrite what was seen (the Teardrop/"overlap rewrite"
//!   evasion); overlapping and duplicate fragments are counted.
//! - The final fragment (MF clear) fixes the length. A second final fragment that
//!   disagrees, or data beyond the fixed end, is malformed: that fragment is dropped and
//!   the datagram keeps waiting.
//! - A non-final fragment whose length is not a multiple of 8 (the unit of the offset
//!   field) is cut down to one, as Linux does; one with fewer than 8 bytes is malformed.
//!   No datagram may exceed `max_frag_datagram_bytes`.
//! - At the table cap or the byte budget new datagrams are refused and counted; nothing
//!   is evicted except datagrams older than `frag_timeout` by packet time.
//! - A datagram that collects more than `max_fragments_per_datagram` fragments is dropped
//!   whole (tiny-fragment evasion).
//!
//! Keys: IPv4 (src, dst, protocol, id), IPv6 (src, dst, id) as RFC 8200 says.

use std::collections::HashMap;
use std::net::IpAddr;

use spoor_core::{Micros, Proto};

use super::ip::{Datagram, Frag};
use super::{DecodeCounters, DecodeError, DecodeLimits, Layer};

/// Who sent a fragment: kept for the last fragment seen so that a caller can match
/// addresses on fragments that are still pending (or never complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol as the fragment states it.
    pub proto: Proto,
    pub id: u32,
    /// Byte offset of the fragment in its datagram.
    pub offset: u32,
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 protocol; 0 for IPv6 (not part of its key).
    proto: u8,
    id: u32,
}

/// Facts of the offset-0 fragment: they describe the reassembled datagram.
#[derive(Debug, Clone, Copy)]
struct First {
    ttl: u8,
    proto: u8,
    header_len: usize,
}

#[derive(Debug)]
struct Partial {
    data: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and not touching (merged).
    have: Vec<(usize, usize)>,
    /// End of the datagram, once the final fragment arrived.
    total: Option<usize>,
    first: Option<First>,
    fragments: usize,
    started: Micros,
}

/// The reassembled payload and the facts that describe it.
#[derive(Debug)]
pub(super) struct Whole<'t> {
    pub(super) payload: &'t [u8],
    pub(super) ttl: u8,
    pub(super) proto: u8,
    pub(super) ip_len: u16,
}

#[derive(Debug, Default)]
pub(super) struct FragTable {
    partial: HashMap<Key, Partial>,
    /// Sum of `data.len()` over `partial`.
    bytes: usize,
    /// The last completed datagram; borrowed by the packet returned for it.
    done: Vec<u8>,
    last_seen: Option<FragmentMeta>,
}

impl FragTable {
    pub(super) fn len(&self) -> usize {
        self.partial.len()
    }

    pub(super) fn last_seen(&self) -> Option<FragmentMeta> {
        self.last_seen
    }

    /// Drop datagrams older than the timeout (either way: a capture whose clock jumps back
    /// by more than the timeout must not pin entries forever).
    fn expire(&mut self, now: Micros, timeout: Micros, counters: &mut DecodeCounters) {
        let before = self.partial.len();
        let mut freed = 0usize;
        self.partial.retain(|_, p| {
            let keep = now.0.saturating_sub(p.started.0).unsigned_abs() <= timeout.0.unsigned_abs();
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        counters.fragments_expired += (before - self.partial.len()) as u64;
    }

    fn remove(&mut self, key: &Key) {
        if let Some(p) = self.partial.remove(key) {
            self.bytes = self.bytes.saturating_sub(p.data.len());
        }
    }

    /// Store one fragment; `Ok(whole)` when it completed its datagram, `FragmentPending`
    /// while pieces are missing, another error when the fragment was dropped.
    pub(super) fn insert<'t>(
        &'t mut self,
        limits: &DecodeLimits,
        counters: &mut DecodeCounters,
        now: Micros,
        dgram: &Datagram<'_>,
        frag: Frag,
    ) -> Result<Whole<'t>, DecodeError> {
        let malformed = |reason| DecodeError::malformed(Layer::Fragment, reason);
        let v6 = dgram.dst.is_ipv6();
        self.last_seen = Some(FragmentMeta {
            src: dgram.src,
            dst: dgram.dst,
            proto: Proto(dgram.proto),
            id: frag.id,
            offset: u32::try_from(frag.offset).unwrap_or(u32::MAX),
            more: frag.more,
        });
        if dgram.snapped {
            // Part of the fragment was not captured; reassembling would invent bytes.
            return Err(DecodeError::truncated(Layer::Fragment));
        }
        let mut data = dgram.payload;
        if frag.more {
            if data.len() < 8 {
                return Err(malformed("non_final_fragment_below_8_bytes"));
            }
            if !data.len().is_multiple_of(8) {
                counters.fragments_trimmed += 1;
                data = data.get(..data.len() & !7).unwrap_or_default();
            }
        }
        let start = frag.offset;
        let end = start + data.len();
        if end > limits.max_frag_datagram_bytes {
            return Err(malformed("datagram_too_big"));
        }
        self.expire(now, limits.frag_timeout, counters);

        let key = Key {
            src: dgram.src,
            dst: dgram.dst,
            proto: if v6 { 0 } else { dgram.proto },
            id: frag.id,
        };
        if !self.partial.contains_key(&key) {
            if self.partial.len() >= limits.max_frag_datagrams {
                counters.fragments_refused_table_full += 1;
                return Err(DecodeError::FragmentRefused {
                    reason: "table_full",
                });
            }
            self.partial.insert(
                key,
                Partial {
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    first: None,
                    fragments: 0,
                    started: now,
                },
            );
        }
        let Some(p) = self.partial.get_mut(&key) else {
            return Err(malformed("table_inconsistent"));
        };

        p.fragments += 1;
        if p.fragments > limits.max_fragments_per_datagram {
            counters.fragments_too_many += 1;
            self.remove(&key);
            return Err(DecodeError::FragmentRefused {
                reason: "too_many_fragments",
            });
        }
        let received_end = p.have.last().map_or(0, |r| r.1);
        if !frag.more {
            match p.total {
                Some(t) if t != end => return Err(malformed("conflicting_final_fragment")),
                _ if received_end > end => return Err(malformed("data_beyond_final_fragment")),
                _ => p.total = Some(end),
            }
        } else if p.total.is_some_and(|t| end > t) {
            return Err(malformed("data_beyond_final_fragment"));
        }

        if end > p.data.len() {
            let grow = end - p.data.len();
            if self.bytes + grow > limits.max_frag_total_bytes {
                counters.fragments_refused_budget += 1;
                return Err(DecodeError::FragmentRefused {
                    reason: "byte_budget",
                });
            }
            p.data.reserve_exact(grow);
            p.data.resize(end, 0);
            self.bytes += grow;
        }

        // First wins: copy only the gaps of [start, end) not already received.
        let mut covered = 0usize;
        let mut cursor = start;
        for &(a, b) in &p.have {
            if b <= cursor || a >= end {
                continue;
            }
            if a > cursor {
                copy_range(&mut p.data, data, start, cursor, a);
            }
            covered += b.min(end) - a.max(cursor);
            cursor = cursor.max(b);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            copy_range(&mut p.data, data, start, cursor, end);
        }
        if covered == end - start && end > start {
            counters.fragments_duplicate += 1;
        } else if covered > 0 {
            counters.fragments_overlap += 1;
        }
        add_range(&mut p.have, start, end);

        if start == 0 && p.first.is_none() {
            p.first = Some(First {
                ttl: dgram.ttl,
                proto: dgram.proto,
                // The reassembled IPv6 datagram has no fragment header.
                header_len: if v6 {
                    dgram.header_len.saturating_sub(8)
                } else {
                    dgram.header_len
                },
            });
        }
        let complete = matches!((p.total, p.have.as_slice()), (Some(t), [(0, e)]) if *e == t);
        let Some(first) = p.first.filter(|_| complete) else {
            return Err(DecodeError::FragmentPending);
        };
        let Some(p) = self.partial.remove(&key) else {
            return Err(malformed("table_inconsistent"));
        };
        self.bytes = self.bytes.saturating_sub(p.data.len());
        self.done = p.data;
        Ok(Whole {
            payload: &self.done,
            ttl: first.ttl,
            proto: first.proto,
            ip_len: u16::try_from(first.header_len + self.done.len()).unwrap_or(u16::MAX),
        })
    }
}

/// Copy `data[from - start .. to - start]` into `buf[from..to]` (all within bounds by
/// construction; `get` keeps it panic-free regardless).
fn copy_range(buf: &mut [u8], data: &[u8], start: usize, from: usize, to: usize) {
    let (Some(lo), Some(hi)) = (from.checked_sub(start), to.checked_sub(start)) else {
        return;
    };
    if let (Some(dst), Some(src)) = (buf.get_mut(from..to), data.get(lo..hi)) {
        dst.copy_from_slice(src);
    }
}

/// Insert [a, b) into a sorted list of disjoint ranges, merging neighbours.
fn add_range(have: &mut Vec<(usize, usize)>, a: usize, b: usize) {
    if a >= b {
        return;
    }
    let (mut lo, mut hi) = (a, b);
    have.retain(|&(x, y)| {
        if y < lo || x > hi {
            true
        } else {
            lo = lo.min(x);
            hi = hi.max(y);
            false
        }
    });
    let at = have.partition_point(|&(x, _)| x < lo);
    have.insert(at, (lo, hi));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_in_any_order() {
        let mut have = Vec::new();
        add_range(&mut have, 16, 24);
        add_range(&mut have, 0, 8);
        add_range(&mut have, 40, 48);
        assert_eq!(have, vec![(0, 8), (16, 24), (40, 48)]);
        add_range(&mut have, 8, 16);
        assert_eq!(have, vec![(0, 24), (40, 48)]);
        add_range(&mut have, 4, 44);
        assert_eq!(have, vec![(0, 48)]);
        add_range(&mut have, 5, 5);
        assert_eq!(have, vec![(0, 48)]);
    }

    #[test]
    fn copy_range_never_panics_on_bad_bounds() {
        let mut buf = [0u8; 8];
        copy_range(&mut buf, &[1, 2, 3], 4, 4, 7);
        assert_eq!(buf, [0, 0, 0, 0, 1, 2, 3, 0]);
        copy_range(&mut buf, &[1, 2, 3], 6, 6, 9);
        copy_range(&mut buf, &[1, 2, 3], 6, 2, 5);
        copy_range(&mut buf, &[1, 2, 3], 0, 5, 2);
        assert_eq!(buf, [0, 0, 0, 0, 1, 2, 3, 0]);
    }
}
