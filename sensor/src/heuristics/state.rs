//! Bounded, shared state for the counting heuristics.
//!
//! A heuristic counts distinct things per key within a window: ports per (source, host),
//! hosts per source, NXDOMAIN names per client, subdomains per domain. Two tables do it:
//!
//! - [`DistinctTable`] remembers up to `threshold + 1` distinct 32-bit values per key,
//!   each with the second it was last seen, so the window slides exactly;
//! - [`SketchTable`] estimates large counts (DNS exhaustion's 1000 subdomains) with a
//!   fixed bitmap per key (linear counting, about ±2 % at the threshold) in a window
//!   that starts with the key's first value.
//!
//! Both are fixed arrays allocated once (zeroed pages: memory becomes resident as keys
//! arrive, up to the cap), split into [`MAX_SHARDS`] shards behind their own locks so
//! workers share one view of every key (a scan spread over workers is counted once,
//! whole). A key's first value is only a 16-byte sighting; at its second distinct
//! value within the window it moves to an evidence slot (a quarter of the capacity,
//! [`EVIDENCE_SHARE`]), so the many keys that never see a second value (a client on one
//! port of a server) stay cheap. A key lives in the 8-slot bucket its keyed 64-bit hash names and is stored as
//! that hash (a tag); nothing is allocated per key. A key idle for a window gives its
//! slot to a new key; a bucket full of live keys refuses the new key and counts it
//! (evicting live keys would let an attacker push evidence out).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per bucket: a key lives in the bucket its hash names, so a lookup scans 64
/// bytes of tags and never wanders.
pub const BUCKET: usize = 8;
/// Most shards (locks) a table is split into. More shards than workers keeps two
/// workers from waiting on each other except when they count the same neighbourhood.
pub const MAX_SHARDS: usize = 64;
/// Keys per shard below which a table uses fewer shards (small tables in tests).
const MIN_KEYS_PER_SHARD: usize = 1024;

/// splitmix64's finaliser: every input bit reaches every output bit.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Packet time in whole seconds, as the tables store it (wrapping u32: 136 years).
pub fn secs_of(ts: spoor_core::Micros) -> u32 {
    ts.0.div_euclid(1_000_000) as u32
}

/// Seconds from `then` to `now`, 0 when `then` is later (another worker ran ahead).
#[inline]
fn age(now: u32, then: u32) -> u32 {
    (now.wrapping_sub(then) as i32).max(0) as u32
}

/// The later of two packet seconds (wrapping-aware).
#[inline]
fn later(a: u32, b: u32) -> u32 {
    if (b.wrapping_sub(a) as i32) > 0 { b } else { a }
}

/// Per-key bookkeeping, beside the key's values.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Meta {
    /// Newest packet second seen for the key.
    last: u32,
    /// The second the key's evidence started (sketch tables: the window's start).
    start: u32,
    /// The second of the last alert, when `alerted`.
    alerted_at: u32,
    /// Distinct values held (distinct table) or bits set (sketch table).
    len: u16,
    alerted: bool,
}

/// A key's first sighting (16 bytes, eight to a bucket: two adjacent cache lines). Most
/// keys never see a second value (a client on one port of a server) and never cost more.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Sighting {
    /// The key's tag; [`PROMOTED`] set once the key has an evidence slot.
    tag: u64,
    value: u32,
    secs: u32,
}

/// Tag bit marking a sighting whose key moved on to an evidence slot.
const PROMOTED: u64 = 2;

/// Types whose all-zero bytes are a valid value (plain integers and bools).
///
/// # Safety
/// Implement only for types made of integers and bools, without padding invariants.
unsafe trait Zeroable: Copy {}
// SAFETY: integers are valid as zero bytes.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for u64 {}
// SAFETY: u32 and u16 fields and a bool, for which zero is `false`.
unsafe impl Zeroable for Meta {}
// SAFETY: integer fields.
unsafe impl Zeroable for Sighting {}

/// `n` zeroed values from the zeroing allocator: untouched pages stay unmapped, so a
/// table costs resident memory only as keys arrive.
fn zeroed<T: Zeroable>(n: usize) -> Box<[T]> {
    let n = n.max(1);
    let layout = std::alloc::Layout::array::<T>(n).expect("table size fits the address space");
    // SAFETY: the layout is non-zero-sized (n ≥ 1, T is not a ZST); `T: Zeroable` makes
    // zero bytes valid values; the pointer is checked and owned by the returned box,
    // which frees it with the same layout.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n))
    }
}

/// One lock's worth of a table: first sightings, and keys with evidence (tags,
/// bookkeeping, values; index-aligned).
#[derive(Debug)]
struct Shard {
    first: Box<[Sighting]>,
    tags: Box<[u64]>,
    meta: Box<[Meta]>,
    /// `stride` u32 words per slot.
    words: Box<[u32]>,
    /// Evidence slots and sightings holding a key (idle ones included until reused).
    occupied: usize,
    first_occupied: usize,
}

/// What every table has: shards, geometry, the window and the saturation count.
#[derive(Debug)]
struct Slots {
    shards: Box<[Mutex<Shard>]>,
    first_buckets: usize,
    buckets: usize,
    stride: usize,
    window_secs: u32,
    seed: u64,
    saturated: AtomicU64,
}

/// Share of a distinct table's keys that can hold evidence of several values at once
/// (the rest of the capacity holds keys seen with one value): a quarter.
pub const EVIDENCE_SHARE: usize = 4;
/// The same for sketch tables, whose evidence (a bitmap) is larger: a sixteenth.
pub const SKETCH_EVIDENCE_SHARE: usize = 16;

impl Slots {
    /// `max_keys` keys in all, `1 / share` of them with room for `stride` words of
    /// evidence.
    fn new(max_keys: usize, share: usize, stride: usize, window_secs: u32, seed: u64) -> Self {
        let max_keys = max_keys.max(1);
        let shard_count = (max_keys / MIN_KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        let per_shard = max_keys.div_ceil(shard_count);
        let first_buckets = per_shard.div_ceil(BUCKET);
        let buckets = per_shard.div_ceil(BUCKET * share.max(1));
        let (first_slots, slots) = (first_buckets * BUCKET, buckets * BUCKET);
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    first: zeroed(first_slots),
                    tags: zeroed(slots),
                    meta: zeroed(slots),
                    words: zeroed(slots * stride),
                    occupied: 0,
                    first_occupied: 0,
                })
            })
            .collect();
        Slots {
            shards,
            first_buckets,
            buckets,
            stride,
            window_secs: window_secs.max(1),
            seed: mix64(seed),
            saturated: AtomicU64::new(0),
        }
    }

    /// The keyed tag of a key hash: bit 0 set (0 marks an empty slot), bit 1 clear
    /// ([`PROMOTED`]).
    fn tag(&self, key: u64) -> u64 {
        (mix64(key ^ self.seed) & !PROMOTED) | 1
    }

    /// Keys with evidence of several values the table can hold.
    fn evidence_capacity(&self) -> usize {
        self.shards.len() * self.buckets * BUCKET
    }

    /// Keys the table can hold (each first seen with one value).
    fn capacity(&self) -> usize {
        self.shards.len() * self.first_buckets * BUCKET
    }

    /// Note `value` for `key`. A key's first value is only a sighting; at its second
    /// distinct value within the window it gets an evidence slot and `f` runs on it
    /// (with the earlier sighting when the slot is new), under the shard's lock.
    fn with_slot<R>(
        &self,
        key: u64,
        value: u32,
        now: u32,
        expired: impl Fn(&Meta, u32) -> bool,
        f: impl FnOnce(&mut Meta, &mut [u32], Option<Sighting>) -> R,
    ) -> Option<R> {
        let tag = self.tag(key);
        let window = self.window_secs;
        // The shard from the tag's low bits, the buckets from the high bits: independent.
        let shard_index = (tag >> 2) as usize % self.shards.len();
        let mut guard = self.shards[shard_index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let shard = &mut *guard;
        let first_base = ((u128::from(tag) * self.first_buckets as u128) >> 64) as usize * BUCKET;
        let mut seen = None;
        let mut free = None;
        for (j, s) in shard.first.iter().enumerate().skip(first_base).take(BUCKET) {
            if s.tag & !PROMOTED == tag {
                seen = Some(j);
                break;
            }
            if free.is_none() && (s.tag == 0 || age(now, s.secs) >= window) {
                free = Some(j);
            }
        }
        let Some(j) = seen.filter(|&j| age(now, shard.first[j].secs) < window) else {
            // A new key (or one back after a silence): its sighting.
            let Some(j) = seen.or(free) else {
                self.saturated.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if shard.first[j].tag == 0 {
                shard.first_occupied += 1;
            }
            shard.first[j] = Sighting {
                tag,
                value,
                secs: now,
            };
            return None;
        };
        let sighting = shard.first[j];
        if sighting.tag & PROMOTED == 0 && sighting.value == value {
            shard.first[j].secs = later(sighting.secs, now);
            return None;
        }
        // The key has (or now needs) an evidence slot.
        let base =
            ((u128::from(tag.rotate_left(32)) * self.buckets as u128) >> 64) as usize * BUCKET;
        let mut found = None;
        let mut slot_free = None;
        for i in base..base + BUCKET {
            let t = shard.tags[i];
            if t == tag {
                found = Some(i);
                break;
            }
            if slot_free.is_none() && (t == 0 || expired(&shard.meta[i], now)) {
                slot_free = Some(i);
            }
        }
        let stride = self.stride;
        if let Some(i) = found
            && !expired(&shard.meta[i], now)
        {
            shard.first[j].tag = tag | PROMOTED;
            shard.first[j].secs = later(sighting.secs, now);
            let m = &mut shard.meta[i];
            m.last = later(m.last, now);
            return Some(f(m, &mut shard.words[i * stride..(i + 1) * stride], None));
        }
        if sighting.tag & PROMOTED != 0 {
            // Its evidence expired: start over from this value.
            shard.first[j] = Sighting {
                tag,
                value,
                secs: now,
            };
            return None;
        }
        let Some(i) = found.or(slot_free) else {
            // Keep the newest value as the sighting; the evidence is refused.
            shard.first[j] = Sighting {
                tag,
                value,
                secs: now,
            };
            self.saturated.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        shard.first[j].tag = tag | PROMOTED;
        shard.first[j].secs = later(sighting.secs, now);
        if shard.tags[i] == 0 {
            shard.occupied += 1;
        }
        shard.tags[i] = tag;
        shard.meta[i] = Meta {
            last: later(sighting.secs, now),
            start: sighting.secs,
            ..Meta::default()
        };
        Some(f(
            &mut shard.meta[i],
            &mut shard.words[i * stride..(i + 1) * stride],
            Some(sighting),
        ))
    }

    fn occupied(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.occupied + s.first_occupied
            })
            .sum()
    }

    fn bytes(&self) -> usize {
        let per_slot = std::mem::size_of::<u64>()
            + std::mem::size_of::<Meta>()
            + self.stride * std::mem::size_of::<u32>();
        let per_first = std::mem::size_of::<Sighting>();
        self.evidence_capacity() * per_slot + self.capacity() * per_first
    }
}

/// A threshold crossing: the key's count when it crossed, and over how many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    pub distinct: u32,
    pub span_secs: u32,
}

/// Exact distinct values per key within a sliding window (see the module doc).
#[derive(Debug)]
pub struct DistinctTable {
    slots: Slots,
    threshold: u32,
}

impl DistinctTable {
    /// `max_keys` keys (rounded up to whole buckets), alerting when a key has more than
    /// `threshold` distinct values within `window_secs`.
    pub fn new(max_keys: usize, threshold: u32, window_secs: u32, seed: u64) -> Self {
        let values = threshold as usize + 1;
        DistinctTable {
            // Each value: (value, second last seen).
            slots: Slots::new(max_keys, EVIDENCE_SHARE, values * 2, window_secs, seed),
            threshold,
        }
    }

    /// Note `value` for `key` at packet second `now`; `Some` when this makes the key
    /// cross its threshold (once per window and key).
    pub fn observe(&self, key: u64, value: u32, now: u32) -> Option<Crossing> {
        let window = self.slots.window_secs;
        let threshold = self.threshold;
        let expired = |m: &Meta, now: u32| {
            age(now, m.last) >= window && !(m.alerted && age(now, m.alerted_at) < window)
        };
        self.slots
            .with_slot(key, value, now, expired, |m, words, earlier| {
                if let Some(e) = earlier {
                    words[0] = e.value;
                    words[1] = e.secs;
                    m.len = 1;
                }
                let cap = words.len() / 2;
                // Forget values that left the window (keep the rest in place, in order).
                let mut kept = 0;
                let mut present = false;
                for j in 0..usize::from(m.len) {
                    let (v, t) = (words[2 * j], words[2 * j + 1]);
                    if age(now, t) >= window {
                        continue;
                    }
                    let t = if v == value {
                        present = true;
                        later(t, now)
                    } else {
                        t
                    };
                    words[2 * kept] = v;
                    words[2 * kept + 1] = t;
                    kept += 1;
                }
                if !present && kept < cap {
                    words[2 * kept] = value;
                    words[2 * kept + 1] = now;
                    kept += 1;
                }
                m.len = kept as u16;
                if m.alerted && age(now, m.alerted_at) >= window {
                    m.alerted = false;
                }
                if m.alerted || kept as u32 <= threshold {
                    return None;
                }
                m.alerted = true;
                m.alerted_at = now;
                let oldest = (0..kept)
                    .map(|j| age(now, words[2 * j + 1]))
                    .max()
                    .unwrap_or(0);
                Some(Crossing {
                    distinct: kept as u32,
                    span_secs: oldest,
                })
            })
            .flatten()
    }

    /// New keys refused because their bucket was full of live keys.
    pub fn saturated(&self) -> u64 {
        self.slots.saturated.load(Ordering::Relaxed)
    }

    /// Slots holding a key (idle ones included until reused).
    pub fn occupied(&self) -> usize {
        self.slots.occupied()
    }

    /// Keys the table can hold.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// The table's size when every page is touched.
    pub fn bytes(&self) -> usize {
        self.slots.bytes()
    }
}

/// Estimated distinct values per key within a window that starts at the key's first
/// value (see the module doc).
#[derive(Debug)]
pub struct SketchTable {
    slots: Slots,
    threshold: u32,
    bits: u32,
}

impl SketchTable {
    /// `max_keys` keys, alerting when a key's estimate reaches `threshold` within
    /// `window_secs`. The bitmap has twice the next power of two at or above `threshold`
    /// bits (2048 for 1000: a standard error of 1.7 % at the threshold).
    pub fn new(max_keys: usize, threshold: u32, window_secs: u32, seed: u64) -> Self {
        let bits = (threshold.max(32).next_power_of_two() * 2).min(1 << 15);
        SketchTable {
            slots: Slots::new(
                max_keys,
                SKETCH_EVIDENCE_SHARE,
                bits as usize / 32,
                window_secs,
                seed,
            ),
            threshold,
            bits,
        }
    }

    /// Note `value` (a hash) for `key` at packet second `now`; `Some` when the estimate
    /// reaches the threshold (once per window and key).
    pub fn observe(&self, key: u64, value: u32, now: u32) -> Option<Crossing> {
        let window = self.slots.window_secs;
        let (threshold, bits) = (self.threshold, self.bits);
        let expired = |m: &Meta, now: u32| age(now, m.start) >= window;
        let bit_of = |v: u32| mix64(u64::from(v)) as u32 & (bits - 1);
        self.slots
            .with_slot(key, value, now, expired, |m, words, earlier| {
                if let Some(e) = earlier {
                    words.fill(0);
                    let bit = bit_of(e.value);
                    words[(bit / 32) as usize] |= 1 << (bit % 32);
                    m.len = 1;
                }
                let bit = bit_of(value);
                let (w, b) = ((bit / 32) as usize, 1u32 << (bit % 32));
                if words[w] & b != 0 {
                    return None;
                }
                words[w] |= b;
                m.len = m.len.saturating_add(1);
                let estimate = linear_count(bits, u32::from(m.len));
                if m.alerted || estimate < threshold {
                    return None;
                }
                m.alerted = true;
                m.alerted_at = now;
                Some(Crossing {
                    distinct: estimate,
                    span_secs: age(now, m.start),
                })
            })
            .flatten()
    }

    pub fn saturated(&self) -> u64 {
        self.slots.saturated.load(Ordering::Relaxed)
    }

    pub fn occupied(&self) -> usize {
        self.slots.occupied()
    }

    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub fn bytes(&self) -> usize {
        self.slots.bytes()
    }
}

/// Linear counting: `m` bits of which `set` are set estimate `-m ln(zeros / m)` distinct
/// hashed values (Whang et al., 1990).
fn linear_count(m: u32, set: u32) -> u32 {
    let zeros = m.saturating_sub(set);
    if zeros == 0 {
        return u32::MAX;
    }
    let m = f64::from(m);
    (-m * (f64::from(zeros) / m).ln()).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_cross_once_per_window() {
        let t = DistinctTable::new(100, 3, 30, 1);
        assert_eq!(t.observe(7, 1, 100), None);
        assert_eq!(t.observe(7, 1, 101), None, "a repeat is not distinct");
        assert_eq!(t.observe(7, 2, 102), None);
        assert_eq!(t.observe(7, 3, 103), None);
        assert_eq!(
            t.observe(7, 4, 110),
            Some(Crossing {
                distinct: 4,
                span_secs: 9
            }),
            "value 1 was last seen at 101"
        );
        assert_eq!(t.observe(7, 5, 111), None, "once per window");
        // Other keys are separate.
        assert_eq!(t.observe(8, 4, 110), None);
    }

    #[test]
    fn the_window_slides() {
        let t = DistinctTable::new(100, 3, 30, 1);
        for (v, s) in [(1, 0), (2, 10), (3, 20)] {
            assert_eq!(t.observe(1, v, s), None);
        }
        // At 31 the first value has left the window: 2, 3, 4 are not more than 3.
        assert_eq!(t.observe(1, 4, 31), None);
        assert!(t.observe(1, 5, 32).is_some(), "2, 3, 4, 5 within 30 s");
    }

    #[test]
    fn out_of_order_seconds_do_not_expire_live_values() {
        let t = DistinctTable::new(100, 2, 30, 1);
        assert_eq!(t.observe(1, 1, 50), None);
        // A worker behind by a few seconds.
        assert_eq!(t.observe(1, 2, 45), None);
        assert!(t.observe(1, 3, 51).is_some());
    }

    #[test]
    fn a_full_bucket_refuses_and_counts_and_idle_keys_give_way() {
        // One bucket: 8 keys.
        let t = DistinctTable::new(8, 3, 30, 1);
        for k in 0..8 {
            t.observe(k, 1, 0);
        }
        assert_eq!(t.occupied(), 8);
        assert_eq!(t.capacity(), 8);
        assert_eq!(t.observe(100, 1, 1), None);
        assert_eq!(t.saturated(), 1);
        // Live keys still count.
        for v in 2..=3 {
            t.observe(0, v, 2);
        }
        assert!(t.observe(0, 4, 3).is_some());
        // After a silent window the idle keys give their slots to new ones.
        t.observe(100, 1, 100);
        assert_eq!(t.saturated(), 1);
        assert!(
            t.occupied() <= 9,
            "8 sightings and one key with evidence at most"
        );
    }

    #[test]
    fn an_alerted_key_is_kept_until_its_window_ends() {
        let t = DistinctTable::new(8, 1, 30, 1);
        t.observe(0, 1, 0);
        assert!(t.observe(0, 2, 0).is_some());
        // Values expired, key idle, but the alert is recent: the slot is not reused
        // (else the same scan would alert again at once).
        for k in 1..8 {
            t.observe(k, 1, 20);
        }
        assert_eq!(t.observe(0, 3, 29), None);
        assert_eq!(t.observe(0, 4, 29), None, "still within the alert's window");
    }

    #[test]
    fn sketch_estimates_near_the_threshold() {
        let t = SketchTable::new(100, 1000, 60, 1);
        let mut crossed_at = None;
        for v in 0..2000u32 {
            if let Some(c) = t.observe(5, mix64(u64::from(v)) as u32, 10) {
                crossed_at = Some((v + 1, c.distinct));
                break;
            }
        }
        let (n, estimate) = crossed_at.expect("crossed");
        assert!((950..=1050).contains(&n), "crossed after {n} values");
        assert!(estimate >= 1000);
        // 40 values stay far below.
        let t = SketchTable::new(100, 1000, 60, 1);
        for v in 0..40u32 {
            assert_eq!(t.observe(6, v, 10), None);
        }
    }

    #[test]
    fn sketch_window_restarts() {
        let t = SketchTable::new(100, 64, 60, 1);
        for v in 0..50u32 {
            assert_eq!(t.observe(1, v, 0), None);
        }
        // A new window: the 50 earlier values are forgotten.
        for v in 50..100u32 {
            assert_eq!(t.observe(1, v, 61), None);
        }
    }

    #[test]
    fn shards_share_the_capacity() {
        let t = DistinctTable::new(1 << 16, 10, 30, 1);
        assert_eq!(t.slots.shards.len(), MAX_SHARDS);
        assert_eq!(t.capacity(), 1 << 16);
        for k in 0..50_000u64 {
            t.observe(k, 1, 0);
        }
        assert_eq!(t.occupied() as u64 + t.saturated(), 50_000);
        // Keys spread evenly: at a quarter of the capacity, (almost) nothing is refused.
        let t = DistinctTable::new(1 << 16, 10, 30, 2);
        for k in 0..(1u64 << 14) {
            t.observe(k, 1, 0);
        }
        assert!(t.saturated() < 16, "{} refused", t.saturated());
    }
}
