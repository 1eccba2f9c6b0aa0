//! The one door to a backend. Every write goes through [`GuardedBackend::apply`], which
//! checks each addition again, whatever decided it:
//!
//! - not on the allowlist (built-ins, host, infrastructure, configured, private);
//! - a prefix no shorter than the shortest allowed for its family;
//! - no more than `max_new_per_minute` additions in any 60 s (a runaway rule or a flood of
//!   spoofed sources cannot fill the table in one go);
//! - no more than `max_active` entries held, and never more than the backend's capacity.
//!
//! A refused addition is reported, not applied; a decision whose target was refused for
//! rate or size stays approved and is tried again at the next reconcile. Removals always
//! pass: unblocking is never unsafe.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use ipnet::IpNet;
use spoor_core::Micros;

use crate::allowlist::{AllowEntry, Allowlist};
use crate::backend::{Backend, BackendError, Changes};

/// The window of the rate guard.
pub const RATE_WINDOW_MICROS: i64 = 60_000_000;

/// Limits on what may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    /// Shortest IPv4 prefix that may be blocked (e.g. 24: no /16 blocks).
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix that may be blocked.
    pub min_prefix_v6: u8,
    /// Additions allowed in any 60 s.
    pub max_new_per_minute: usize,
    /// Entries the backend may hold at most (further capped by its capacity).
    pub max_active: usize,
}

/// Why an addition was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Allowlisted(AllowEntry),
    PrefixTooShort {
        min: u8,
    },
    /// The backend's object can never hold it (an IPv6 address for an nftables table
    /// of family `ip`).
    Unsupported(String),
    RateLimited {
        per_minute: usize,
    },
    Full {
        limit: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Allowlisted(e) => write!(f, "allowlisted: {e}"),
            Refusal::Unsupported(why) => write!(f, "the firewall object cannot hold it: {why}"),
            Refusal::PrefixTooShort { min } => {
                write!(f, "prefix shorter than the shortest allowed (/{min})")
            }
            Refusal::RateLimited { per_minute } => {
                write!(
                    f,
                    "more than {per_minute} new blocks in a minute; retried later"
                )
            }
            Refusal::Full { limit } => write!(f, "the backend holds its limit of {limit} entries"),
        }
    }
}

/// What a guarded apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<IpNet>,
    pub removed: Vec<IpNet>,
    pub refused: Vec<(IpNet, Refusal)>,
}

/// A backend behind the allowlist and the guards.
#[derive(Debug)]
pub struct GuardedBackend {
    inner: Box<dyn Backend>,
    allowlist: Allowlist,
    guards: Guards,
    /// (time, count) of recent additions, for the rate guard.
    recent: VecDeque<(Micros, usize)>,
    /// What the backend held after the last list or apply (`None`: not known yet).
    held: Option<BTreeSet<IpNet>>,
}

impl GuardedBackend {
    pub fn new(inner: Box<dyn Backend>, allowlist: Allowlist, guards: Guards) -> Self {
        GuardedBackend {
            inner,
            allowlist,
            guards,
            recent: VecDeque::new(),
            held: None,
        }
    }

    pub fn name(&self) -> String {
        self.inner.name()
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    pub fn guards(&self) -> Guards {
        self.guards
    }

    /// The most entries this backend may hold: `max_active`, capped by its capacity.
    pub fn limit(&self) -> usize {
        self.guards.max_active.min(self.inner.capacity())
    }

    /// What the backend holds now (and remember it for the size guard).
    pub fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        let held = self.inner.list()?;
        self.held = Some(held.clone());
        Ok(held)
    }

    /// The allowlist and prefix checks alone (no state): what policy asks too; and
    /// whether the backend can hold the target at all. A refusal here is for good.
    pub fn check(&self, target: &IpNet) -> Result<(), Refusal> {
        check_target(&self.allowlist, &self.guards, target)?;
        match self.inner.cannot_hold(target) {
            Some(why) => Err(Refusal::Unsupported(why)),
            None => Ok(()),
        }
    }

    /// Check every addition, then write what passed in one batch.
    pub fn apply(&mut self, changes: &Changes, now: Micros) -> Result<Applied, BackendError> {
        let held = match &self.held {
            Some(h) => h.clone(),
            None => self.list()?,
        };
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| t.0 <= now.0 - RATE_WINDOW_MICROS)
        {
            self.recent.pop_front();
        }
        let recent: usize = self.recent.iter().map(|(_, n)| n).sum();
        let mut rate_left = self.guards.max_new_per_minute.saturating_sub(recent);
        let removed: Vec<IpNet> = changes
            .remove
            .iter()
            .filter(|t| held.contains(t))
            .copied()
            .collect();
        let limit = self.limit();
        let mut size = held.len() - removed.len();
        let mut out = Applied {
            removed,
            ..Applied::default()
        };
        let mut seen = BTreeSet::new();
        for t in &changes.add {
            if held.contains(t) || !seen.insert(*t) {
                continue;
            }
            if let Err(why) = self.check(t) {
                tracing::error!(target = %t, "refused to block: {why}");
                out.refused.push((*t, why));
            } else if rate_left == 0 {
                out.refused.push((
                    *t,
                    Refusal::RateLimited {
                        per_minute: self.guards.max_new_per_minute,
                    },
                ));
            } else if size >= limit {
                out.refused.push((*t, Refusal::Full { limit }));
            } else {
                rate_left -= 1;
                size += 1;
                out.added.push(*t);
            }
        }
        let limited = out
            .refused
            .iter()
            .filter(|(_, r)| {
                !matches!(
                    r,
                    Refusal::Allowlisted(_)
                        | Refusal::PrefixTooShort { .. }
                        | Refusal::Unsupported(_)
                )
            })
            .count();
        if limited > 0 {
            tracing::warn!(
                "{limited} blocks held back by the rate or size guard (limit {limit} entries, {} per minute)",
                self.guards.max_new_per_minute
            );
        }
        let batch = Changes {
            expires_in: out
                .added
                .iter()
                .filter_map(|t| changes.expires_in.get(t).map(|s| (*t, *s)))
                .collect(),
            add: out.added.clone(),
            remove: out.removed.clone(),
        };
        if batch.is_empty() {
            return Ok(out);
        }
        if let Err(e) = self.inner.apply(&batch) {
            // What the backend holds is unknown now: list again next time.
            self.held = None;
            return Err(e);
        }
        if !out.added.is_empty() {
            self.recent.push_back((now, out.added.len()));
        }
        let mut held = held;
        for t in &out.removed {
            held.remove(t);
        }
        held.extend(out.added.iter().copied());
        self.held = Some(held);
        Ok(out)
    }
}

impl GuardedBackend {
    /// Remove every entry in `own` that the backend holds, through the backend's fastest
    /// way to empty its object of them. Removals always pass.
    pub fn flush_own(&mut self, own: &BTreeSet<IpNet>) -> Result<Vec<IpNet>, BackendError> {
        // What the backend holds afterwards is listed again when next needed.
        self.held = None;
        self.inner.flush_own(own)
    }
}

/// The stateless checks: allowlist and shortest prefix.
pub fn check_target(allowlist: &Allowlist, guards: &Guards, target: &IpNet) -> Result<(), Refusal> {
    if let Some(entry) = allowlist.protects(target) {
        return Err(Refusal::Allowlisted(entry.clone()));
    }
    let min = match target {
        IpNet::V4(_) => guards.min_prefix_v4,
        IpNet::V6(_) => guards.min_prefix_v6,
    };
    if target.prefix_len() < min {
        return Err(Refusal::PrefixTooShort { min });
    }
    Ok(())
}
