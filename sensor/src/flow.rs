//! The flow table: which conversations have been reported for their addresses.
//!
//! IP, CIDR and IP:port trails are reported once per flow and direction, at whatever point
//! of the flow the sensor first sees a matching packet in that direction (not only on a
//! SYN), so a capture that starts mid-connection still alerts. The detector looks address
//! trails up on every packet (cheaper than a flow lookup) and consults this table only for
//! packets that match, so the table holds the flows worth remembering. The table is bounded: a flow idle
//! past the timeout (packet time) gives its slot to a new one, and when a flow's bucket is
//! full of live flows the new flow is not tracked (counted as a saturation); its packets
//! are then checked every time, which costs time, never detections.
//!
//! The table stores a keyed 64-bit hash of each flow's 5-tuple in fixed buckets allocated
//! once, so a lookup touches two cache lines and the hot path never allocates.

use std::net::IpAddr;

use spoor_core::Micros;

/// Flows tracked at most. 16 bytes a slot, 2 slots a flow: 262,144 flows take 8 MiB.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// A flow idle this long (packet time) is forgotten and its slot reused.
pub const DEFAULT_FLOW_TIMEOUT_MICROS: i64 = 60 * 1_000_000;
/// Slots per bucket: a flow lives in the bucket its hash names (128 bytes, two cache
/// lines), so a lookup never wanders. A bucket full of live flows refuses a new one.
const BUCKET: usize = 8;

/// A conversation, with its endpoints in a canonical order so both directions share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
    proto: u8,
}

/// Which way a packet goes relative to the flow key's canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    LoToHi,
    HiToLo,
}

impl FlowKey {
    pub fn new(
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        proto: u8,
    ) -> (FlowKey, Direction) {
        let a = (src, src_port);
        let b = (dst, dst_port);
        if a <= b {
            (
                FlowKey {
                    lo: a,
                    hi: b,
                    proto,
                },
                Direction::LoToHi,
            )
        } else {
            (
                FlowKey {
                    lo: b,
                    hi: a,
                    proto,
                },
                Direction::HiToLo,
            )
        }
    }

    /// 64-bit keyed hash: the table stores this tag instead of the key. The key is a
    /// per-table random seed, so nobody outside can aim collisions at it; two flows
    /// sharing a tag (about one in 2^61 per bucket) would share one check.
    fn tag(&self, seed: u64) -> u64 {
        fn ip_bits(ip: IpAddr) -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)),
                IpAddr::V6(v6) => u128::from(v6) ^ (1 << 127),
            }
        }
        let mut h = seed;
        let mut mix = |x: u64| {
            h = mix64(h ^ x);
        };
        let lo = ip_bits(self.lo.0);
        let hi = ip_bits(self.hi.0);
        mix(lo as u64);
        mix((lo >> 64) as u64);
        mix(hi as u64);
        mix((hi >> 64) as u64);
        mix((u64::from(self.lo.1) << 32) | (u64::from(self.hi.1) << 8) | u64::from(self.proto));
        h | 1 // 0 marks an empty slot
    }
}

/// New flows land in random buckets all over the table; with 4 KiB pages nearly each one
/// costs a TLB miss (and in a VM a two-level page walk). Asking for huge pages makes the
/// table a handful of TLB entries. Linux only; FreeBSD promotes superpages by itself.
fn advise_huge_pages(table: &[FlowState]) {
    #[cfg(target_os = "linux")]
    {
        let ptr = table.as_ptr() as *mut libc::c_void;
        let len = std::mem::size_of_val(table);
        // SAFETY: the range is exactly the table's allocation; MADV_HUGEPAGE only changes
        // how the kernel backs it, never its contents. Failure (no THP) is harmless.
        unsafe {
            libc::madvise(ptr, len, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = table;
}

/// splitmix64's finaliser: every input bit reaches every output bit.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the sensor remembers about one flow: one slot of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowState {
    tag: u64,
    /// Packet time of the last packet, in whole seconds (wrapping).
    last_seen: u32,
    /// Packets seen, saturating.
    pub packets: u16,
    checked: u16,
}

const CHECKED_LO_TO_HI: u16 = 1;
const CHECKED_HI_TO_LO: u16 = 2;

impl FlowState {
    /// Mark `dir` checked; true if it was not before (the caller checks now).
    pub fn check_once(&mut self, dir: Direction) -> bool {
        let bit = match dir {
            Direction::LoToHi => CHECKED_LO_TO_HI,
            Direction::HiToLo => CHECKED_HI_TO_LO,
        };
        let first = self.checked & bit == 0;
        self.checked |= bit;
        first
    }
}

/// The outcome of looking a packet's flow up.
#[derive(Debug)]
pub enum FlowSlot<'a> {
    Tracked(&'a mut FlowState),
    /// The flow's bucket is full of live flows: this flow is not tracked.
    Untracked,
}

/// Bounded flow table: fixed buckets of slots, allocated once; idle flows are replaced
/// lazily when their bucket needs room.
#[derive(Debug)]
pub struct FlowTable {
    slots: Vec<FlowState>,
    buckets: usize,
    timeout_secs: u32,
    seed: u64,
    occupied: usize,
    /// Flows not tracked because their bucket was full.
    pub saturated: u64,
    /// Idle flows whose slot was given to a new flow.
    pub expired: u64,
}

impl FlowTable {
    pub fn new(max_flows: usize, timeout_micros: i64) -> Self {
        let slots = (max_flows.max(1) * 2).div_ceil(BUCKET) * BUCKET;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 40);
        let table = vec![FlowState::default(); slots];
        advise_huge_pages(&table);
        FlowTable {
            slots: table,
            buckets: slots / BUCKET,
            timeout_secs: u32::try_from((timeout_micros / 1_000_000).max(1)).unwrap_or(u32::MAX),
            seed: mix64(seed),
            occupied: 0,
            saturated: 0,
            expired: 0,
        }
    }

    /// Slots holding a flow (idle ones included until their slot is reused).
    pub fn len(&self) -> usize {
        self.occupied
    }

    pub fn is_empty(&self) -> bool {
        self.occupied == 0
    }

    /// The state of `key`'s flow at packet time `now`, creating it if there is room.
    #[inline]
    pub fn touch(&mut self, key: FlowKey, now: Micros) -> FlowSlot<'_> {
        let tag = key.tag(self.seed);
        let now_secs = now.0.div_euclid(1_000_000) as u32;
        let timeout = self.timeout_secs;
        let idle = |s: &FlowState| now_secs.wrapping_sub(s.last_seen) >= timeout;
        let b = ((u128::from(tag) * self.buckets as u128) >> 64) as usize;
        let bucket = &mut self.slots[b * BUCKET..(b + 1) * BUCKET];
        let mut free: Option<usize> = None;
        for (i, slot) in bucket.iter().enumerate() {
            if slot.tag == tag {
                let slot = &mut bucket[i];
                if idle(slot) {
                    // The same conversation after a long silence counts as a new flow.
                    *slot = FlowState {
                        tag,
                        ..FlowState::default()
                    };
                }
                slot.last_seen = now_secs;
                slot.packets = slot.packets.saturating_add(1);
                return FlowSlot::Tracked(slot);
            }
            if free.is_none() && (slot.tag == 0 || idle(slot)) {
                free = Some(i);
            }
        }
        let Some(i) = free else {
            self.saturated += 1;
            return FlowSlot::Untracked;
        };
        let slot = &mut bucket[i];
        if slot.tag == 0 {
            self.occupied += 1;
        } else {
            self.expired += 1;
        }
        *slot = FlowState {
            tag,
            last_seen: now_secs,
            packets: 1,
            checked: 0,
        };
        FlowSlot::Tracked(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_directions_share_a_flow_and_each_is_checked_once() {
        let mut t = FlowTable::new(10, DEFAULT_FLOW_TIMEOUT_MICROS);
        let (k1, d1) = FlowKey::new(ip("10.0.0.1"), 40000, ip("66.66.66.66"), 443, 6);
        let (k2, d2) = FlowKey::new(ip("66.66.66.66"), 443, ip("10.0.0.1"), 40000, 6);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        let FlowSlot::Tracked(f) = t.touch(k1, Micros(1)) else {
            panic!()
        };
        assert!(f.check_once(d1));
        assert!(!f.check_once(d1));
        let FlowSlot::Tracked(f) = t.touch(k2, Micros(2)) else {
            panic!()
        };
        assert!(f.check_once(d2));
        assert_eq!(f.packets, 2);
    }

    #[test]
    fn the_table_is_bounded_and_expires_by_packet_time() {
        // One bucket of 8 slots.
        let mut t = FlowTable::new(2, 10 * 1_000_000);
        for port in 0..12u16 {
            let (k, _) = FlowKey::new(ip("10.0.0.1"), port, ip("10.0.0.2"), 80, 6);
            t.touch(k, Micros(0));
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.saturated, 4);
        // 20 s of packet time later the idle flows give way to new ones.
        let (k, _) = FlowKey::new(ip("10.0.0.1"), 99, ip("10.0.0.2"), 80, 6);
        assert!(matches!(
            t.touch(k, Micros(20_000_000)),
            FlowSlot::Tracked(_)
        ));
        assert_eq!(t.expired, 1);
    }

    #[test]
    fn a_flow_silent_past_the_timeout_is_checked_again() {
        let mut t = FlowTable::new(100, 10 * 1_000_000);
        let (k, d) = FlowKey::new(ip("10.0.0.1"), 1, ip("66.66.66.66"), 80, 6);
        let FlowSlot::Tracked(f) = t.touch(k, Micros(0)) else {
            panic!()
        };
        assert!(f.check_once(d));
        let FlowSlot::Tracked(f) = t.touch(k, Micros(5_000_000)) else {
            panic!()
        };
        assert!(!f.check_once(d));
        let FlowSlot::Tracked(f) = t.touch(k, Micros(30_000_000)) else {
            panic!()
        };
        assert!(f.check_once(d), "a new flow after the timeout");
    }
}
