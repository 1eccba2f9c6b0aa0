//! Longest-prefix matching by flattened ranges.
//!
//! Every IP and CIDR trail of one family becomes a prefix; nested prefixes are flattened
//! into disjoint ranges that cover the whole address space in order, each labelled with the
//! most specific prefix covering it (or none). A lookup is one binary search over range
//! starts; for IPv4 a 65,536-entry index by the top 16 bits narrows that search to the
//! ranges of one /16, which usually fit in a cache line or two. Each prefix keeps its
//! parent (the next wider prefix containing it), so a hit can list every covering trail.

use bytemuck::{Pod, Zeroable};

/// "No trail here" in a range's value and "no parent" in an entry.
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Entry4 {
    pub(crate) net: u32,
    pub(crate) parent: u32,
    pub(crate) set: u32,
    pub(crate) len: u8,
    pub(crate) _pad: [u8; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Entry6 {
    pub(crate) net: u128,
    pub(crate) parent: u32,
    pub(crate) set: u32,
    pub(crate) len: u8,
    pub(crate) _pad: [u8; 7],
}

/// An address family's integer.
pub(crate) trait Addr: Copy + Ord + std::fmt::Debug {
    const BITS: u8;
    const ZERO: Self;
    fn last_of(net: Self, len: u8) -> Self;
    fn checked_inc(self) -> Option<Self>;
}

impl Addr for u32 {
    const BITS: u8 = 32;
    const ZERO: Self = 0;
    fn last_of(net: Self, len: u8) -> Self {
        net | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn checked_inc(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Addr for u128 {
    const BITS: u8 = 128;
    const ZERO: Self = 0;
    fn last_of(net: Self, len: u8) -> Self {
        net | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
    }
    fn checked_inc(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// The flattened form of a set of prefixes.
#[derive(Debug, Default)]
pub(crate) struct Flattened<A> {
    /// Start of each range; the first is always 0.
    pub(crate) starts: Vec<A>,
    /// Index into the prefix list (sorted order) of the most specific prefix, or [`NONE`].
    pub(crate) values: Vec<u32>,
    /// Parent of each prefix (in sorted order), or [`NONE`].
    pub(crate) parents: Vec<u32>,
}

/// Flatten `prefixes`, which must be sorted by `(net, len)`, deduplicated, and have host
/// bits cleared.
pub(crate) fn flatten<A: Addr>(prefixes: &[(A, u8)]) -> Flattened<A> {
    let mut out = Flattened {
        starts: Vec::new(),
        values: Vec::new(),
        parents: vec![NONE; prefixes.len()],
    };
    let emit = |out: &mut Flattened<A>, start: A, value: u32| {
        if out.values.last() != Some(&value) {
            out.starts.push(start);
            out.values.push(value);
        }
    };
    // Open prefixes, innermost last: (last address, index).
    let mut stack: Vec<(A, u32)> = Vec::new();
    // Next address not yet assigned; None once the whole space is assigned.
    let mut cur: Option<A> = Some(A::ZERO);
    for (i, &(net, len)) in prefixes.iter().enumerate() {
        debug_assert!(len <= A::BITS);
        // Close prefixes that end before this one starts.
        while let Some(&(last, idx)) = stack.last() {
            if last >= net {
                break;
            }
            if let Some(c) = cur
                && c <= last
            {
                emit(&mut out, c, idx);
            }
            cur = last.checked_inc();
            stack.pop();
        }
        if let Some(c) = cur
            && c < net
        {
            emit(&mut out, c, stack.last().map_or(NONE, |s| s.1));
            cur = Some(net);
        }
        out.parents[i] = stack.last().map_or(NONE, |s| s.1);
        stack.push((A::last_of(net, len), i as u32));
    }
    while let Some((last, idx)) = stack.pop() {
        if let Some(c) = cur
            && c <= last
        {
            emit(&mut out, c, idx);
        }
        cur = last.checked_inc();
    }
    if let Some(c) = cur {
        emit(&mut out, c, NONE);
    }
    out
}

/// A /16 bucket with more ranges than this gets a /24 sub-index, so that no lookup
/// binary-searches more than a handful of ranges.
pub(crate) const DENSE_BUCKET: usize = 16;
/// Marks an index entry that points into the sub-index instead of at a range.
const DENSE_FLAG: u32 = 1 << 31;
/// Entries per sub-index block: one per /24 of the /16, plus the next /16's start.
const SUB_BLOCK: usize = 257;

/// The IPv4 range index: for each /16 bucket `b` (and one past the last), the range that
/// contains address `b << 16`; for dense buckets instead `DENSE_FLAG | offset` of a block
/// in `sub` holding the same for each /24 of the bucket and the next bucket's start.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct V4Index {
    pub(crate) index: Vec<u32>,
    pub(crate) sub: Vec<u32>,
}

pub(crate) fn v4_index(starts: &[u32]) -> V4Index {
    // The range containing `addr`, for addresses visited in increasing order.
    let mut r = 0usize;
    let mut range_at = |addr: u64| -> u32 {
        while r + 1 < starts.len() && u64::from(starts[r + 1]) <= addr {
            r += 1;
        }
        r as u32
    };
    let mut plain = Vec::with_capacity(65_537);
    for b in 0u64..65_536 {
        plain.push(range_at(b << 16));
    }
    plain.push(starts.len() as u32);
    let mut out = V4Index {
        index: plain.clone(),
        sub: Vec::new(),
    };
    let mut r = 0usize;
    for b in 0..65_536usize {
        let (lo, hi) = (plain[b] as usize, plain[b + 1] as usize);
        if hi.saturating_sub(lo) <= DENSE_BUCKET {
            continue;
        }
        out.index[b] = DENSE_FLAG | out.sub.len() as u32;
        r = r.max(lo);
        for c in 0u64..256 {
            let addr = ((b as u64) << 16) | (c << 8);
            while r + 1 < starts.len() && u64::from(starts[r + 1]) <= addr {
                r += 1;
            }
            out.sub.push(r as u32);
        }
        out.sub.push(plain[b + 1]);
    }
    out
}

/// The range containing `ip`, using the /16 index and, in dense buckets, the /24 one.
#[inline]
pub(crate) fn find_v4(index: &[u32], sub: &[u32], starts: &[u32], ip: u32) -> Option<usize> {
    let b = (ip >> 16) as usize;
    let entry = *index.get(b)?;
    let (lo, next) = if entry & DENSE_FLAG == 0 {
        (entry as usize, *index.get(b + 1)? as usize)
    } else {
        let at = (entry & !DENSE_FLAG) as usize + ((ip >> 8) & 0xff) as usize;
        (*sub.get(at)? as usize, *sub.get(at + 1)? as usize)
    };
    // The range containing the next block's first address may start inside this block.
    let hi = (next + 1).min(starts.len());
    let window = starts.get(lo..hi)?;
    let n = window.partition_point(|&s| s <= ip);
    n.checked_sub(1).map(|k| lo + k)
}

/// Check a loaded index: sizes, and every pointer inside its table.
pub(crate) fn v4_index_is_sound(index: &[u32], sub: &[u32], ranges: usize) -> bool {
    index.len() == 65_537
        && index.iter().all(|&e| {
            if e & DENSE_FLAG == 0 {
                e as usize <= ranges
            } else {
                (e & !DENSE_FLAG) as usize + SUB_BLOCK <= sub.len()
            }
        })
        && sub.iter().all(|&r| r as usize <= ranges)
}

/// Exact IPv4 trails also sit in a small open-addressing table, so that a hit costs one
/// probe instead of the range search (whose branches a hit cannot predict). A bitmap of
/// the /16s that hold any exact trail (8 KiB) keeps the probe off the miss path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ExactSlot {
    pub(crate) ip: u32,
    /// Origin set, or [`NONE`] for an empty slot.
    pub(crate) set: u32,
}

/// Words of the /16 bitmap.
pub(crate) const EXACT_BITMAP_WORDS: usize = 65_536 / 64;

#[inline(always)]
fn exact_slot(ip: u32, bits: u32) -> usize {
    (ip.wrapping_mul(0x9e37_79b1) >> (32 - bits)) as usize
}

/// `(bitmap, slots)` for `(ip, set)` pairs with distinct IPs.
pub(crate) fn build_exact_v4(ips: &[(u32, u32)]) -> (Vec<u64>, Vec<ExactSlot>) {
    let mut bitmap = vec![0u64; EXACT_BITMAP_WORDS];
    let capacity = (ips.len() * 2).next_power_of_two().max(16);
    let bits = capacity.trailing_zeros();
    let mut slots = vec![ExactSlot { ip: 0, set: NONE }; capacity];
    for &(ip, set) in ips {
        let b = (ip >> 16) as usize;
        bitmap[b / 64] |= 1 << (b % 64);
        let mut i = exact_slot(ip, bits);
        while slots[i].set != NONE {
            i = (i + 1) & (capacity - 1);
        }
        slots[i] = ExactSlot { ip, set };
    }
    (bitmap, slots)
}

/// The origin set of an exact IPv4 trail.
#[inline(always)]
pub(crate) fn find_exact_v4(bitmap: &[u64], slots: &[ExactSlot], ip: u32) -> Option<u32> {
    let b = (ip >> 16) as usize;
    if bitmap.get(b / 64)? & (1 << (b % 64)) == 0 {
        return None;
    }
    // Sound tables are a power of two long with at least one empty slot.
    let mask = slots.len().checked_sub(1)?;
    let mut i = exact_slot(ip, slots.len().trailing_zeros());
    for _ in 0..slots.len() {
        let slot = slots.get(i)?;
        if slot.set == NONE {
            return None;
        }
        if slot.ip == ip {
            return Some(slot.set);
        }
        i = (i + 1) & mask;
    }
    None
}

/// The range containing `ip` by plain binary search (IPv6, whitelist).
#[inline]
pub(crate) fn find<A: Addr>(starts: &[A], ip: A) -> Option<usize> {
    starts.partition_point(|&s| s <= ip).checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_table_finds_its_ips_only() {
        let ips: Vec<(u32, u32)> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761), i))
            .collect();
        let (bitmap, slots) = build_exact_v4(&ips);
        assert!(slots.len().is_power_of_two());
        for &(ip, set) in &ips {
            assert_eq!(find_exact_v4(&bitmap, &slots, ip), Some(set));
        }
        for &(ip, _) in &ips {
            assert_eq!(find_exact_v4(&bitmap, &slots, ip ^ 1), None);
        }
        let (bitmap, slots) = build_exact_v4(&[]);
        assert_eq!(find_exact_v4(&bitmap, &slots, 0), None);
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    /// Brute-force longest prefix for comparison.
    fn naive(prefixes: &[(u32, u8)], ip: u32) -> u32 {
        let mut best: Option<(u8, usize)> = None;
        for (i, &(net, len)) in prefixes.iter().enumerate() {
            if ip >= net && ip <= u32::last_of(net, len) && best.is_none_or(|b| len > b.0) {
                best = Some((len, i));
            }
        }
        best.map_or(NONE, |b| b.1 as u32)
    }

    #[test]
    fn nested_prefixes_pick_the_most_specific() {
        let mut p = vec![
            (v4("10.0.0.0"), 8),
            (v4("10.1.0.0"), 16),
            (v4("10.1.2.3"), 32),
            (v4("192.168.0.0"), 24),
            (v4("255.255.255.255"), 32),
            (v4("0.0.0.0"), 32),
        ];
        p.sort();
        let f = flatten(&p);
        let V4Index { index, sub } = v4_index(&f.starts);
        for ip in [
            "10.1.2.3",
            "10.1.2.4",
            "10.2.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "192.168.0.77",
            "192.168.1.0",
            "255.255.255.255",
            "255.255.255.254",
            "0.0.0.0",
            "0.0.0.1",
        ] {
            let ip = v4(ip);
            let got = find_v4(&index, &sub, &f.starts, ip).map_or(NONE, |r| f.values[r]);
            assert_eq!(got, naive(&p, ip), "{ip:#x}");
        }
        // 10.1.2.3/32 → parent 10.1/16 → parent 10/8
        let i32 = p
            .iter()
            .position(|x| x.1 == 32 && x.0 == v4("10.1.2.3"))
            .unwrap();
        let i16 = f.parents[i32] as usize;
        assert_eq!(p[i16], (v4("10.1.0.0"), 16));
        assert_eq!(p[f.parents[i16] as usize], (v4("10.0.0.0"), 8));
    }

    #[test]
    fn matches_brute_force_on_random_prefixes() {
        // Small deterministic generator; no external randomness in tests.
        let mut x: u64 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut p: Vec<(u32, u8)> = (0..300)
            .map(|_| {
                let len = (next() % 33) as u8;
                let net = if len == 0 {
                    0
                } else {
                    (next() as u32) & (u32::MAX << (32 - len))
                };
                (net, len)
            })
            .collect();
        // A dense /16 (10.11.0.0/16) with hosts and nested networks.
        for i in 0..200u32 {
            p.push((0x0a0b_0000 | (i * 331 % 65_536), 32));
        }
        p.push((0x0a0b_4000, 18));
        p.push((0x0a0b_4400, 24));
        p.sort();
        p.dedup();
        let f = flatten(&p);
        let V4Index { index, sub } = v4_index(&f.starts);
        assert!(!sub.is_empty(), "the dense /16 must get a sub-index");
        assert!(v4_index_is_sound(&index, &sub, f.starts.len()));
        for _ in 0..20_000 {
            let ip = next() as u32;
            let got = find_v4(&index, &sub, &f.starts, ip).map_or(NONE, |r| f.values[r]);
            assert_eq!(got, naive(&p, ip));
        }
        // and every prefix's own first and last address
        for &(net, len) in &p {
            for ip in [net, u32::last_of(net, len)] {
                let got = find_v4(&index, &sub, &f.starts, ip).map_or(NONE, |r| f.values[r]);
                assert_eq!(got, naive(&p, ip));
            }
        }
        // and every address of the dense /16
        for low in 0..65_536u32 {
            let ip = 0x0a0b_0000 | low;
            let got = find_v4(&index, &sub, &f.starts, ip).map_or(NONE, |r| f.values[r]);
            assert_eq!(got, naive(&p, ip));
        }
    }
}
