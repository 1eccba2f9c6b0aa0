//! Which events become decisions, on which targets, for how long.
//!
//! Rules are tried in file order; the first that matches an event decides. A rule matches
//! on the event's kind, severity, reference (feed) and heuristic name, and fires once the
//! same target was seen `min_count` times (condensed counts included) within `window`
//! (packet time). Targets are the event's offender, or for name hits (DNS, URL, host, SNI)
//! the addresses the name resolved to. Addresses inside `local_networks` are only targeted
//! by rules with `quarantine_internal`; allowlisted addresses and too-short prefixes never.
//!
//! The global mode caps every rule's action: `off` makes nothing, `dry-run` records
//! decisions that are never applied, `approve` queues `auto` rules for an admin too, and
//! `auto` lets each rule's action stand. TTLs climb the rule's escalation ladder with the
//! number of earlier blocks of the same target within `repeat_window`, capped at `max_ttl`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use spoor_core::{Duration, Event, EventKind, Micros, Severity};

use crate::allowlist::Allowlist;
use crate::decision::{Decision, DecisionState, NewDecision, Reason};
use crate::guard::{Guards, Refusal, check_target};
use crate::ledger::{Ledger, LedgerError};

/// Targets being counted towards a rule's `min_count` at most. At the cap new targets are
/// refused (and counted), not evicted: eviction would let an attacker push out evidence.
pub const MAX_TRACKED: usize = 100_000;
/// Occurrence records kept per counted target; older ones are folded into the count.
pub const MAX_SAMPLES_PER_TARGET: usize = 64;
/// The actor recorded for what the policy does.
pub const POLICY_ACTOR: &str = "policy";

/// The global mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Off,
    #[serde(rename = "dry-run")]
    DryRun,
    Approve,
    Auto,
}

/// What a rule does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Approved at once by the policy.
    Auto,
    /// Queued for an admin.
    Approve,
    /// Recorded, never applied.
    #[serde(rename = "dry-run")]
    DryRun,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Empty: any kind.
    pub kinds: Vec<EventKind>,
    pub min_severity: Option<Severity>,
    /// Lower-case; empty: any reference.
    pub references: Vec<String>,
    /// Empty: any heuristic (and any non-heuristic event).
    pub heuristics: Vec<String>,
    pub min_count: u64,
    pub window: Duration,
    pub action: Action,
    /// TTLs for the 1st, 2nd, ... block of a target.
    pub ladder: Vec<Duration>,
    pub quarantine_internal: bool,
}

impl Rule {
    pub fn matches(&self, e: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        if self.min_severity.is_some_and(|m| e.severity < m) {
            return false;
        }
        if !self.references.is_empty() {
            let r = e.reference.to_lowercase();
            if !self.references.iter().any(|x| r.contains(x.as_str())) {
                return false;
            }
        }
        if !self.heuristics.is_empty() {
            let name = e.context.heuristic.as_ref().map(|h| h.name.as_str());
            if !name.is_some_and(|n| self.heuristics.iter().any(|h| h == n)) {
                return false;
            }
        }
        true
    }
}

/// The addresses an event would block: the answers of a name hit, else the offender.
pub fn targets_of(e: &Event) -> Vec<IpAddr> {
    match e.kind {
        EventKind::Dns | EventKind::Url | EventKind::Host | EventKind::Sni => {
            let mut v = e.answers.clone();
            v.sort();
            v.dedup();
            v
        }
        _ => e.offender.into_iter().collect(),
    }
}

/// Everything the policy needs besides its rules.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub mode: Mode,
    pub rules: Vec<Rule>,
    pub local_networks: Vec<IpNet>,
    pub max_ttl: Duration,
    pub repeat_window: Duration,
    pub guards: Guards,
}

/// What the policy did with one target of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new decision (proposed, or approved when the action is auto or dry-run).
    Decided(Decision),
    /// Counted; not yet `min_count` within the window.
    Counting {
        rule: String,
        target: IpAddr,
        seen: u64,
    },
    /// Already proposed, approved or active.
    Open { target: IpAddr },
    /// Inside `local_networks` and the rule does not quarantine.
    Local { target: IpAddr },
    /// On the allowlist or too short a prefix.
    Refused { target: IpAddr, why: Refusal },
    /// The counting table is full.
    TrackingFull { target: IpAddr },
}

/// The policy with its counting state.
#[derive(Debug)]
pub struct Policy {
    settings: PolicySettings,
    allowlist: Allowlist,
    /// (rule index, target) → occurrences (packet time, count), oldest first.
    counts: HashMap<(usize, IpAddr), VecDeque<(Micros, u64)>>,
    /// Targets refused because [`MAX_TRACKED`] was reached.
    pub tracking_refused: u64,
}

impl Policy {
    pub fn new(settings: PolicySettings, allowlist: Allowlist) -> Self {
        Policy {
            settings,
            allowlist,
            counts: HashMap::new(),
            tracking_refused: 0,
        }
    }

    /// The first rule matching `e`, if any.
    pub fn rule_for(&self, e: &Event) -> Option<(usize, &Rule)> {
        self.settings
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(e))
    }

    /// Run one event through the rules and record the decisions it makes. `now` is the
    /// wall clock (decision times); windows use the event's packet times.
    pub fn evaluate(
        &mut self,
        e: &Event,
        ledger: &Ledger<'_>,
        now: Micros,
    ) -> Result<Vec<Outcome>, LedgerError> {
        if self.settings.mode == Mode::Off {
            return Ok(Vec::new());
        }
        let Some((idx, rule)) = self.rule_for(e) else {
            return Ok(Vec::new());
        };
        let rule = rule.clone();
        let mut out = Vec::new();
        for target in targets_of(e) {
            let local = self
                .settings
                .local_networks
                .iter()
                .any(|n| n.contains(&target));
            if local && !rule.quarantine_internal {
                out.push(Outcome::Local { target });
                continue;
            }
            let net = IpNet::from(target);
            if let Err(why) = check_target(&self.allowlist, &self.settings.guards, &net) {
                out.push(Outcome::Refused { target, why });
                continue;
            }
            let Some(seen) = self.count(idx, &rule, target, e) else {
                self.tracking_refused += 1;
                out.push(Outcome::TrackingFull { target });
                continue;
            };
            if seen < rule.min_count {
                out.push(Outcome::Counting {
                    rule: rule.name.clone(),
                    target,
                    seen,
                });
                continue;
            }
            self.counts.remove(&(idx, target));
            if !ledger.open_for(&net)?.is_empty() {
                out.push(Outcome::Open { target });
                continue;
            }
            let since = Micros(now.0.saturating_sub(micros(self.settings.repeat_window)));
            let step = ledger.repeat_count(&net, since)?;
            let ttl = rule.ladder[step.min(rule.ladder.len() - 1)]
                .as_std()
                .min(self.settings.max_ttl.as_std());
            let dry_run = self.settings.mode == Mode::DryRun || rule.action == Action::DryRun;
            let auto = rule.action == Action::Auto && self.settings.mode == Mode::Auto;
            let new = NewDecision {
                target: net,
                reason: Reason {
                    rule: rule.name.clone(),
                    events: vec![e.id],
                    note: Some(format!(
                        "{} {} `{}` ({}), {} seen",
                        e.severity_word(),
                        e.kind,
                        e.trail,
                        e.info,
                        seen
                    )),
                },
                ttl_secs: ttl.as_secs(),
                dry_run,
            };
            let mut d = ledger.propose(&new, POLICY_ACTOR, now)?;
            if auto || dry_run {
                d = ledger.transition(d.id, DecisionState::Approved, POLICY_ACTOR, now, None)?;
            }
            out.push(Outcome::Decided(d));
        }
        Ok(out)
    }

    /// Add the event to the count of (rule, target) and return the total within the
    /// window, or `None` when the table is full.
    fn count(&mut self, idx: usize, rule: &Rule, target: IpAddr, e: &Event) -> Option<u64> {
        let key = (idx, target);
        if !self.counts.contains_key(&key) && self.counts.len() >= MAX_TRACKED {
            // Make room from targets whose windows have passed before refusing.
            let horizon = e.last_seen.0.saturating_sub(micros(rule.window));
            self.counts
                .retain(|_, q| q.back().is_some_and(|(t, _)| t.0 > horizon));
            if self.counts.len() >= MAX_TRACKED {
                return None;
            }
        }
        let q = self.counts.entry(key).or_default();
        q.push_back((e.last_seen, e.count.max(1)));
        let horizon = e.last_seen.0.saturating_sub(micros(rule.window));
        while q.front().is_some_and(|(t, _)| t.0 <= horizon) {
            q.pop_front();
        }
        if q.len() > MAX_SAMPLES_PER_TARGET {
            // Fold the two oldest: the sum stays, the window edge moves a little later.
            if let (Some((_, a)), Some((t, b))) = (q.pop_front(), q.pop_front()) {
                q.push_front((t, a + b));
            }
        }
        Some(q.iter().map(|(_, n)| n).sum())
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_std().as_micros()).unwrap_or(i64::MAX)
}

trait SeverityWord {
    fn severity_word(&self) -> &'static str;
}

impl SeverityWord for Event {
    fn severity_word(&self) -> &'static str {
        match self.severity {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}
