//! Make the backend hold what the ledger says.
//!
//! The ledger is the truth. One pass: expire decisions whose time is up; work out the
//! targets that should be blocked (approved and active decisions, not dry runs, networks
//! swallowing the hosts inside them); list the backend; add what is missing; remove what
//! Spoor added earlier and no longer wants. Entries Spoor did not add are never removed,
//! and nothing outside the backend's own table, set or alias is touched. Everything goes
//! in one batch through the guarded backend.
//!
//! After the write, approved decisions the backend now holds become `active`; decisions
//! whose target the guard refuses for good (allowlist, prefix) are revoked with the reason,
//! so an admin sees why; those held back by the rate or size guard stay approved and are
//! tried again next pass.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use spoor_core::Micros;

use crate::backend::{BackendError, Changes};
use crate::decision::{Decision, DecisionState};
use crate::guard::{GuardedBackend, Refusal};

use crate::ledger::{Ledger, LedgerError};

/// The actor recorded for what the reconciler does.
pub const AGENT_ACTOR: &str = "agent";
/// The actor recorded when the guard refuses a decision's target for good.
pub const GUARD_ACTOR: &str = "guard";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("backend {backend}: {source}")]
    Backend {
        backend: String,
        source: BackendError,
    },
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub expired: usize,
    pub added: Vec<IpNet>,
    pub removed: Vec<IpNet>,
    pub refused: Vec<(IpNet, Refusal)>,
    pub activated: usize,
    pub revoked: usize,
    /// Entries Spoor thought it had added but the backend no longer holds.
    pub vanished: usize,
}

/// The targets to hold: each wanted decision's target, without those inside another
/// wanted network (an interval set refuses overlapping elements, and the network blocks
/// them anyway), with the longest time left for each.
pub fn desired(decisions: &[Decision], now: Micros) -> BTreeMap<IpNet, u64> {
    let mut want: BTreeMap<IpNet, u64> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d.wants_block(now)) {
        let left = d
            .expires
            .map(|e| ((e.0 - now.0).max(0) as u64).div_ceil(1_000_000))
            .unwrap_or(d.ttl_secs);
        let slot = want.entry(d.target).or_default();
        *slot = (*slot).max(left);
    }
    let nets: Vec<IpNet> = want.keys().copied().collect();
    want.retain(|t, _| {
        !nets
            .iter()
            .any(|n| n != t && n.prefix_len() < t.prefix_len() && n.contains(t))
    });
    want
}

/// One reconcile pass.
pub fn reconcile(
    ledger: &Ledger<'_>,
    backend: &mut GuardedBackend,
    now: Micros,
) -> Result<Report, ReconcileError> {
    let name = backend.name();
    let be = |source| ReconcileError::Backend {
        backend: name.clone(),
        source,
    };
    let mut report = Report {
        expired: ledger.expire_due(now)?.len(),
        ..Report::default()
    };
    let mut revoke = Vec::new();
    let mut decisions = ledger.list(&[DecisionState::Approved, DecisionState::Active])?;
    // Targets the guard refuses for good are revoked before anything is planned, so a
    // refused network cannot hide the hosts inside it that may be blocked.
    decisions.retain(|d| {
        if !d.wants_block(now) {
            return true;
        }
        match backend.check(&d.target) {
            Ok(()) => true,
            Err(why) => {
                revoke.push((d.id, format!("refused by the guard: {why}")));
                false
            }
        }
    });
    for (id, note) in &revoke {
        ledger.transition(*id, DecisionState::Revoked, GUARD_ACTOR, now, Some(note))?;
        report.revoked += 1;
    }
    let want = desired(&decisions, now);
    let held = backend.list().map_err(be)?;
    let mut owned = ledger.owned(&name)?;
    let vanished: Vec<IpNet> = owned.difference(&held).copied().collect();
    if !vanished.is_empty() {
        ledger.unmark_owned(&name, &vanished)?;
        for t in &vanished {
            owned.remove(t);
        }
        report.vanished = vanished.len();
    }
    let remove: Vec<IpNet> = owned
        .iter()
        .filter(|t| !want.contains_key(t))
        .copied()
        .collect();
    // Already covered by something the backend keeps holding (a wider entry of the
    // admin's): blocked anyway, and an interval set would refuse the overlap.
    let kept: Vec<&IpNet> = held.iter().filter(|h| !remove.contains(h)).collect();
    let missing: Vec<(IpNet, u64)> = want
        .iter()
        .filter(|(t, _)| !kept.iter().any(|h| h.contains(*t)))
        .map(|(t, s)| (*t, *s))
        .collect();
    let changes = Changes {
        add: missing.iter().map(|(t, _)| *t).collect(),
        remove,
        expires_in: missing.into_iter().collect(),
    };
    let applied = backend.apply(&changes, now).map_err(be)?;
    ledger.mark_owned(&name, &applied.added, now)?;
    ledger.unmark_owned(&name, &applied.removed)?;
    let mut now_held: BTreeSet<IpNet> = held;
    for t in &applied.removed {
        now_held.remove(t);
    }
    now_held.extend(applied.added.iter().copied());
    for d in decisions.iter().filter(|d| d.wants_block(now)) {
        if d.state == DecisionState::Approved && now_held.iter().any(|h| h.contains(&d.target)) {
            ledger.transition(d.id, DecisionState::Active, AGENT_ACTOR, now, None)?;
            report.activated += 1;
        }
    }
    report.added = applied.added;
    report.removed = applied.removed;
    report.refused = applied.refused;
    Ok(report)
}

/// The kill switch: revoke every approved and active decision, and remove every entry
/// Spoor added from the backend (nothing else), through [`GuardedBackend::flush_own`].
pub fn flush(
    ledger: &Ledger<'_>,
    backend: &mut GuardedBackend,
    actor: &str,
    now: Micros,
) -> Result<Report, ReconcileError> {
    let name = backend.name();
    let be = |source| ReconcileError::Backend {
        backend: name.clone(),
        source,
    };
    let mut report = Report::default();
    for d in ledger.list(&[DecisionState::Approved, DecisionState::Active])? {
        ledger.transition(d.id, DecisionState::Revoked, actor, now, Some("flush"))?;
        report.revoked += 1;
    }
    let owned = ledger.owned(&name)?;
    // One flush rather than a deletion per entry: nftables takes minutes to delete a
    // large batch from an interval set, and milliseconds to flush it.
    report.removed = backend.flush_own(&owned).map_err(be)?;
    ledger.unmark_owned(&name, &owned)?;
    Ok(report)
}
