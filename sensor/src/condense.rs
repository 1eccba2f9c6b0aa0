//! Condensing repeats: the same (offender, trail) within a window becomes one event with a
//! count and first/last times. No volume is hidden (the count says how many), and a flood
//! of identical packets does not become a flood of identical alerts.
//!
//! Events are held for `window` of packet time after their first occurrence, then released
//! with their count. The number of pending events is bounded: at the cap the oldest is
//! released early (still counted, never dropped).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use spoor_core::{Event, EventKind, Micros};

/// Hold repeats this long (packet time) by default.
pub const DEFAULT_WINDOW_MICROS: i64 = 5 * 1_000_000;
/// Events pending at most before the oldest is released early.
pub const DEFAULT_MAX_PENDING: usize = 65_536;
/// DNS answers kept on one condensed event.
const MAX_ANSWERS: usize = 16;

/// What makes two events "the same".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CondenseKey {
    /// The offender, or both endpoints when the offender is unknown.
    who: (IpAddr, Option<IpAddr>),
    kind: EventKind,
    trail: String,
}

impl CondenseKey {
    fn of(e: &Event) -> Self {
        let who = match e.offender {
            Some(o) => (o, None),
            None => (e.src, Some(e.dst)),
        };
        CondenseKey {
            who,
            kind: e.kind,
            trail: e.trail.clone(),
        }
    }
}

/// Holds events while their repeats are counted.
#[derive(Debug)]
pub struct Condenser {
    window: i64,
    max_pending: usize,
    pending: HashMap<CondenseKey, Event>,
    /// Keys in order of first occurrence, for release by time.
    order: VecDeque<(Micros, CondenseKey)>,
    /// Occurrences folded into an earlier event.
    pub folded: u64,
    /// Events released before their window ended because too many were pending.
    pub released_early: u64,
}

impl Condenser {
    pub fn new(window_micros: i64, max_pending: usize) -> Self {
        Condenser {
            window: window_micros,
            max_pending: max_pending.max(1),
            pending: HashMap::new(),
            order: VecDeque::new(),
            folded: 0,
            released_early: 0,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Take in one occurrence; released events go to `out`.
    pub fn push(&mut self, event: Event, out: &mut impl FnMut(Event)) {
        self.advance(event.time, out);
        let key = CondenseKey::of(&event);
        if let Some(held) = self.pending.get_mut(&key) {
            held.count += event.count.max(1);
            if event.last_seen > held.last_seen {
                held.last_seen = event.last_seen;
            }
            for a in event.answers {
                if held.answers.len() < MAX_ANSWERS && !held.answers.contains(&a) {
                    held.answers.push(a);
                }
            }
            self.folded += 1;
            return;
        }
        if self.pending.len() >= self.max_pending {
            self.release_oldest(out);
            self.released_early += 1;
        }
        self.order.push_back((event.time, key.clone()));
        self.pending.insert(key, event);
    }

    /// Release every event whose window has ended at packet time `now`.
    pub fn advance(&mut self, now: Micros, out: &mut impl FnMut(Event)) {
        while let Some((first, _)) = self.order.front() {
            if now.0.saturating_sub(first.0) < self.window {
                break;
            }
            self.release_oldest(out);
        }
    }

    /// Release everything (end of input, shutdown).
    pub fn flush(&mut self, out: &mut impl FnMut(Event)) {
        while !self.order.is_empty() {
            self.release_oldest(out);
        }
    }

    fn release_oldest(&mut self, out: &mut impl FnMut(Event)) {
        if let Some((_, key)) = self.order.pop_front()
            && let Some(event) = self.pending.remove(&key)
        {
            out(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_core::{Context, EventId, Proto, Severity};

    fn event(t: i64, src: &str, trail: &str) -> Event {
        Event {
            id: EventId(t as u128),
            time: Micros(t),
            sensor: "s".into(),
            src: src.parse().unwrap(),
            src_port: Some(1),
            dst: "66.66.66.66".parse().unwrap(),
            dst_port: Some(80),
            proto: Proto::TCP,
            kind: EventKind::Ip,
            trail: trail.into(),
            info: "x (malware)".into(),
            reference: "(static)".into(),
            severity: Severity::High,
            offender: Some("66.66.66.66".parse().unwrap()),
            answers: vec![],
            count: 1,
            first_seen: Micros(t),
            last_seen: Micros(t),
            context: Context::default(),
        }
    }

    #[test]
    fn repeats_in_the_window_become_one_event_with_a_count() {
        let mut c = Condenser::new(1_000_000, 100);
        let mut out = Vec::new();
        for i in 0..8 {
            c.push(event(i * 100_000, "10.0.0.1", "66.66.66.66"), &mut |e| {
                out.push(e)
            });
        }
        assert!(out.is_empty(), "held during the window");
        c.advance(Micros(1_000_000), &mut |e| out.push(e));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 8);
        assert_eq!(out[0].first_seen, Micros(0));
        assert_eq!(out[0].last_seen, Micros(700_000));
        // A later occurrence starts a new event.
        c.push(event(5_000_000, "10.0.0.1", "66.66.66.66"), &mut |e| {
            out.push(e)
        });
        c.flush(&mut |e| out.push(e));
        assert_eq!(out.len(), 2);
        assert_eq!(out.iter().map(|e| e.count).sum::<u64>(), 9, "nothing lost");
    }

    #[test]
    fn at_the_cap_the_oldest_is_released_not_dropped() {
        let mut c = Condenser::new(60_000_000, 2);
        let mut out = Vec::new();
        for (i, trail) in ["a", "b", "c", "d"].iter().enumerate() {
            c.push(event(i as i64, "10.0.0.1", trail), &mut |e| out.push(e));
        }
        assert_eq!(out.len(), 2);
        assert_eq!(c.released_early, 2);
        c.flush(&mut |e| out.push(e));
        let trails: Vec<&str> = out.iter().map(|e| e.trail.as_str()).collect();
        assert_eq!(trails, ["a", "b", "c", "d"]);
    }
}
