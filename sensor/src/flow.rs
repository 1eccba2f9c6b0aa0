//! The flow table: which conversations have had their addresses checked.
//!
//! IP, CIDR and IP:port trails are checked once per flow and direction, at whatever point
//! of the flow the sensor first sees a packet in that direction (not only on a SYN), so a
//! capture that starts mid-connection still alerts. The table is bounded: expired flows
//! (by packet time) are swept out, and at the cap new flows are not tracked (counted as a
//! saturation); their packets are then checked every time, which costs time, never
//! detections.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use spoor_core::Micros;

/// Flows tracked at most. About 100 bytes each: 1 M flows is ~100 MiB.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// A flow idle this long (packet time) is forgotten.
pub const DEFAULT_FLOW_TIMEOUT_MICROS: i64 = 120 * 1_000_000;
/// How often (packet time) expired flows are swept out.
const SWEEP_EVERY_MICROS: i64 = 5 * 1_000_000;

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
}

/// What the sensor remembers about one flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowState {
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub packets: u64,
    checked_lo_to_hi: bool,
    checked_hi_to_lo: bool,
}

impl FlowState {
    /// Mark `dir` checked; true if it was not before (the caller checks now).
    pub fn check_once(&mut self, dir: Direction) -> bool {
        let flag = match dir {
            Direction::LoToHi => &mut self.checked_lo_to_hi,
            Direction::HiToLo => &mut self.checked_hi_to_lo,
        };
        !std::mem::replace(flag, true)
    }
}

/// FxHash-style hasher: flow keys are not attacker-chosen in a way that matters for a
/// bounded table, and SipHash would cost more than the rest of the lookup.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowHasher(u64);

impl Hasher for FlowHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// The outcome of looking a packet's flow up.
#[derive(Debug)]
pub enum FlowSlot<'a> {
    Tracked(&'a mut FlowState),
    /// The table is full: this flow is not tracked.
    Untracked,
}

/// Bounded flow table keyed by [`FlowKey`].
#[derive(Debug)]
pub struct FlowTable {
    flows: HashMap<FlowKey, FlowState, BuildHasherDefault<FlowHasher>>,
    max_flows: usize,
    timeout: i64,
    next_sweep: Micros,
    /// Flows not tracked because the table was full.
    pub saturated: u64,
    /// Flows forgotten after their timeout.
    pub expired: u64,
}

impl FlowTable {
    pub fn new(max_flows: usize, timeout_micros: i64) -> Self {
        FlowTable {
            flows: HashMap::with_capacity_and_hasher(max_flows.min(65_536), Default::default()),
            max_flows,
            timeout: timeout_micros,
            next_sweep: Micros(i64::MIN),
            saturated: 0,
            expired: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The state of `key`'s flow at packet time `now`, creating it if there is room.
    pub fn touch(&mut self, key: FlowKey, now: Micros) -> FlowSlot<'_> {
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let at_cap = self.flows.len() >= self.max_flows;
        if at_cap && !self.flows.contains_key(&key) {
            self.saturated += 1;
            return FlowSlot::Untracked;
        }
        let state = self.flows.entry(key).or_insert(FlowState {
            first_seen: now,
            last_seen: now,
            ..FlowState::default()
        });
        state.packets += 1;
        if now > state.last_seen {
            state.last_seen = now;
        }
        FlowSlot::Tracked(state)
    }

    fn sweep(&mut self, now: Micros) {
        let timeout = self.timeout;
        let before = self.flows.len();
        self.flows
            .retain(|_, f| now.0.saturating_sub(f.last_seen.0) < timeout);
        self.expired += (before - self.flows.len()) as u64;
        self.next_sweep = Micros(now.0.saturating_add(SWEEP_EVERY_MICROS));
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
        let mut t = FlowTable::new(2, 10 * 1_000_000);
        for port in 0..5u16 {
            let (k, _) = FlowKey::new(ip("10.0.0.1"), port, ip("10.0.0.2"), 80, 6);
            t.touch(k, Micros(0));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.saturated, 3);
        // 20 s of packet time later the old flows are gone and new ones fit.
        let (k, _) = FlowKey::new(ip("10.0.0.1"), 9, ip("10.0.0.2"), 80, 6);
        assert!(matches!(
            t.touch(k, Micros(20_000_000)),
            FlowSlot::Tracked(_)
        ));
        assert_eq!(t.expired, 2);
    }
}
