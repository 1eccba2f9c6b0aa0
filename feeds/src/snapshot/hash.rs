//! Static hash tables over byte strings, built once at compile time and probed in place in
//! the mapped file.
//!
//! Layout of a table section: `{buckets u64, count u64}`, then `buckets × 8` slots of u64
//! (`fingerprint << 32 | entry + 1`, 0 = empty), then `count` entries of
//! `{key string ref u32, value u32}`. A bucket is one 64-byte cache line, so a miss costs one
//! line read and eight compares; overflow moves on to the next bucket (linear probing by
//! bucket), and an empty slot ends a probe.
//!
//! Domain names are hashed label by label from the right ([`DomainHasher`]), so the hashes
//! of `evil.example`, `x.evil.example` and `y.x.evil.example` come out of one pass over the
//! name: the parent walk costs one filter check per label, not one hash per suffix.

use bytemuck::{Pod, Zeroable};

pub(crate) const SLOTS_PER_BUCKET: usize = 8;
/// Fill at most 80 % of the slots: with 8-slot buckets overflow stays rare.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;

const S0: u64 = 0xa076_1d64_78bd_642f;
const S1: u64 = 0xe703_7ed1_a0b4_28db;
const S2: u64 = 0x8ebc_6af0_9c88_c6e3;
const SEED: u64 = 0x5350_4f4f_5254_524c;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read8(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

#[inline(always)]
fn read4(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// One label's hash. Short labels (nearly all) are read with two overlapping loads and no
/// loop or copy, in the manner of wyhash.
#[inline(always)]
fn label_hash(b: &[u8]) -> u64 {
    let len = b.len();
    let (x, y) = if len <= 16 {
        if len >= 8 {
            (read8(b, 0), read8(b, len - 8))
        } else if len >= 4 {
            (read4(b, 0), read4(b, len - 4))
        } else if len > 0 {
            let v = (u64::from(b[0]) << 16) | (u64::from(b[len / 2]) << 8) | u64::from(b[len - 1]);
            (v, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut h = S0;
        let mut at = 0;
        while at + 16 < len {
            h = fold_mul(read8(b, at) ^ S1, read8(b, at + 8) ^ h);
            at += 16;
        }
        (read8(b, len - 16) ^ h, read8(b, len - 8))
    };
    fold_mul(x ^ S1 ^ len as u64, y ^ S2)
}

/// Hash of an IPv4 address for the IP:port filter: one multiply, no loop.
#[inline(always)]
pub(crate) fn ip_hash(ip: u32) -> u64 {
    fold_mul(u64::from(ip) ^ S1, S2)
}

/// Hash of a name's suffix given the hash of the shorter suffix to its right.
#[inline(always)]
fn extend(suffix_hash: u64, label: &[u8]) -> u64 {
    fold_mul(suffix_hash ^ S2, label_hash(label) ^ S0)
}

/// The hash of a whole key (domain tables and every other table alike): labels folded from
/// the right. For keys without dots this is one label hash.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let mut h = SEED;
    for label in key.rsplit(|b| *b == b'.') {
        h = extend(h, label);
    }
    h
}

/// Walk the suffixes of a domain name that start at a label boundary, shortest first
/// (`c`, `b.c`, `a.b.c`), calling `f(start offset, hash)` for each; stops early when `f`
/// returns `false`. Each label is hashed once, and nothing is allocated.
#[inline(always)]
pub(crate) fn for_each_suffix(name: &[u8], mut f: impl FnMut(usize, u64) -> bool) {
    let mut h = SEED;
    let mut end = name.len();
    loop {
        let start = name[..end]
            .iter()
            .rposition(|b| *b == b'.')
            .map_or(0, |p| p + 1);
        h = extend(h, &name[start..end]);
        if !f(start, h) || start == 0 {
            return;
        }
        end = start - 1;
    }
}

#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct TableHeader {
    pub(crate) buckets: u64,
    pub(crate) count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct TableEntry {
    /// Offset of the key in the strings section.
    pub(crate) key: u32,
    pub(crate) value: u32,
}

#[inline(always)]
fn bucket_of(hash: u64, buckets: usize) -> usize {
    ((hash as u128 * buckets as u128) >> 64) as usize
}

#[inline(always)]
fn fingerprint(hash: u64) -> u32 {
    hash as u32
}

/// Build the slot array for `hashes` (entry i has hash `hashes[i]`).
pub(crate) fn build_slots(hashes: &[u64]) -> (TableHeader, Vec<u64>) {
    let min_slots = (hashes.len() * MAX_LOAD_DEN).div_ceil(MAX_LOAD_NUM);
    let buckets = min_slots.div_ceil(SLOTS_PER_BUCKET).max(1);
    let mut slots = vec![0u64; buckets * SLOTS_PER_BUCKET];
    for (i, &h) in hashes.iter().enumerate() {
        let mut b = bucket_of(h, buckets);
        'probe: loop {
            for s in &mut slots[b * SLOTS_PER_BUCKET..(b + 1) * SLOTS_PER_BUCKET] {
                if *s == 0 {
                    *s = (u64::from(fingerprint(h)) << 32) | (i as u64 + 1);
                    break 'probe;
                }
            }
            b = (b + 1) % buckets;
        }
    }
    let header = TableHeader {
        buckets: buckets as u64,
        count: hashes.len() as u64,
    };
    (header, slots)
}

/// A table as it sits in the mapped file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableView<'a> {
    pub(crate) slots: &'a [u64],
    pub(crate) entries: &'a [TableEntry],
    pub(crate) buckets: usize,
}

impl<'a> TableView<'a> {
    pub(crate) const EMPTY: TableView<'static> = TableView {
        slots: &[],
        entries: &[],
        buckets: 0,
    };

    /// Probe for `hash`; `matches(entry)` confirms a fingerprint hit against the key.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u64,
        mut matches: impl FnMut(&TableEntry) -> bool,
    ) -> Option<&'a TableEntry> {
        if self.buckets == 0 {
            return None;
        }
        let fp = fingerprint(hash);
        let mut b = bucket_of(hash, self.buckets);
        for _ in 0..self.buckets {
            let bucket = self
                .slots
                .get(b * SLOTS_PER_BUCKET..(b + 1) * SLOTS_PER_BUCKET)?;
            for &slot in bucket {
                if slot == 0 {
                    return None;
                }
                if (slot >> 32) as u32 == fp {
                    let entry = self.entries.get((slot as u32 as usize).wrapping_sub(1))?;
                    if matches(entry) {
                        return Some(entry);
                    }
                }
            }
            b += 1;
            if b == self.buckets {
                b = 0;
            }
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A blocked Bloom filter in front of the domain table, answering two questions about a
/// suffix from one 64-bit word: "is it a trail or the parent of one?" (three bits) and
/// "is it a trail?" (two more bits). `x.evil.example` as a trail puts in `x.evil.example`
/// (both answers) and `evil.example`, `example` (parent only).
///
/// A suffix that is neither a trail nor a parent ends a domain lookup's walk from the
/// right: no longer suffix can be a trail. Only suffixes that may be trails are probed in
/// the table, which gives the exact answer; false positives (a few %) cost one probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyFilter<'a> {
    pub(crate) words: &'a [u64],
}

/// Filter bits per key (trails and parents together): 8 keeps the filter at 1.1 MiB for
/// the full Maltrail set, well inside a core's L2 cache.
const FILTER_BITS_PER_KEY: usize = 8;

/// `(word, parent-or-trail mask, trail mask)` of a hash.
#[inline(always)]
fn filter_probe(hash: u64, words: usize) -> (usize, u64, u64) {
    let g = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let word = ((u128::from(g) * words as u128) >> 64) as usize;
    let bit = |shift: u32| 1u64 << ((g >> shift) & 63);
    (word, bit(0) | bit(6) | bit(12), bit(18) | bit(24))
}

/// Build the filter from `(hash, is a trail)` for every trail and every parent of one.
pub(crate) fn build_filter(keys: &[(u64, bool)]) -> Vec<u64> {
    if keys.is_empty() {
        return Vec::new();
    }
    let words = (keys.len() * FILTER_BITS_PER_KEY).div_ceil(64);
    let mut bits = vec![0u64; words];
    for &(h, is_trail) in keys {
        let (w, walk, trail) = filter_probe(h, words);
        bits[w] |= walk;
        if is_trail {
            bits[w] |= trail;
        }
    }
    bits
}

/// What the filter says about one suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilterAnswer {
    /// May be a trail or a parent of one (false: certainly neither).
    pub(crate) walk_on: bool,
    /// May be a trail (false: certainly not).
    pub(crate) maybe_trail: bool,
}

impl KeyFilter<'_> {
    #[inline(always)]
    pub(crate) fn check(&self, hash: u64) -> FilterAnswer {
        if self.words.is_empty() {
            return FilterAnswer {
                walk_on: true,
                maybe_trail: true,
            };
        }
        let (w, walk, trail) = filter_probe(hash, self.words.len());
        let bits = self.words.get(w).copied().unwrap_or(u64::MAX);
        FilterAnswer {
            walk_on: bits & walk == walk,
            maybe_trail: bits & (walk | trail) == walk | trail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_hashes_equal_whole_key_hashes() {
        let name = b"x.y.evil.example";
        let mut got: Vec<(usize, u64)> = Vec::new();
        for_each_suffix(name, |start, h| {
            got.push((start, h));
            true
        });
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, 9, "shortest suffix first");
        for (start, h) in got {
            assert_eq!(h, key_hash(&name[start..]), "suffix at {start}");
        }
        assert_ne!(key_hash(b"evil.example"), key_hash(b"notevil.example"));
        assert_ne!(key_hash(b"ab.c"), key_hash(b"a.bc"));
    }

    #[test]
    fn table_finds_every_key_and_rejects_others() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}.example")).collect();
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k.as_bytes())).collect();
        let (header, slots) = build_slots(&hashes);
        let entries: Vec<TableEntry> = (0..keys.len() as u32)
            .map(|i| TableEntry {
                key: i,
                value: i * 2,
            })
            .collect();
        let view = TableView {
            slots: &slots,
            entries: &entries,
            buckets: header.buckets as usize,
        };
        for (i, k) in keys.iter().enumerate() {
            let e = view
                .find(key_hash(k.as_bytes()), |e| keys[e.key as usize] == *k)
                .unwrap();
            assert_eq!(e.value, i as u32 * 2);
        }
        for i in 0..10_000 {
            let k = format!("miss{i}.example");
            assert!(
                view.find(key_hash(k.as_bytes()), |e| keys[e.key as usize] == k)
                    .is_none()
            );
        }
    }
}
