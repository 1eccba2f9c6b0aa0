//! The agent following a server: the server's ledger is the truth, the agent holds a copy
//! of its open decisions in memory and keeps the local backend in line with it.
//!
//! Three parts. A poller thread asks for the snapshot, then long-polls for changes, and
//! hands each answer to the agent; on failure it retries with exponential backoff (with
//! jitter, so agents do not retry in step). The agent's loop folds the answers in, and
//! reconciles on a change, on the interval, and when a decision's time runs out (expiry
//! is local: an unreachable server does not keep a block alive). A reporter thread sends
//! what each pass did (activated, refused, the backend's status), merging reports while
//! the server is unreachable.
//!
//! The plan is the local reconciler's: the guard refuses allowlisted and too-short
//! targets for good (reported, the server revokes them), [`reconcile::desired`] gives the
//! targets to hold, and only entries this agent added (the `responder_owned` table of
//! the local ledger file) are ever removed. The last decisions received are saved to
//! `[agent] state_file`, so an agent restarted while the server is down keeps enforcing
//! them; until it has a snapshot or that file, it removes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rusqlite::Connection;
use spoor_core::Micros;

use super::client::ServerClient;
use super::config::RemoteConfig;
use super::{KILL_SWITCH_ACTOR, STOP_POLL, allowlist, guards};
use crate::allowlist::{AllowSource, HostFacts};
use crate::backend::{Backend, Changes};
use crate::config::RespondConfig;
use crate::decision::{Decision, DecisionId, DecisionState};
use crate::guard::GuardedBackend;
use crate::ledger::{self, Ledger, LedgerError};
use crate::reconcile::{self, ReconcileError};
use crate::stream::{AgentReport, DecisionStream, Refused};

/// What one pass did, and the report to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemotePass {
    pub added: Vec<IpNet>,
    pub removed: Vec<IpNet>,
    /// Additions held back by the rate or size guard (tried again next pass).
    pub held_back: usize,
    pub report: AgentReport,
}

/// The agent in remote mode.
#[derive(Debug)]
pub struct RemoteAgent {
    /// The local ledger file: only its owned-entries table is used.
    conn: Connection,
    backend: GuardedBackend,
    known: BTreeMap<DecisionId, Decision>,
    /// A snapshot arrived or the state file was read: the agent knows what to hold.
    have_state: bool,
    state_file: PathBuf,
    kill_switch: bool,
    interval: Duration,
}

impl RemoteAgent {
    /// The backend behind the guards (the server's addresses are allowlisted too), the
    /// local ledger file for owned entries, and the last decisions from the state file.
    pub fn new(
        conn: Connection,
        respond: &RespondConfig,
        remote: &RemoteConfig,
        backend: Box<dyn Backend>,
        facts: &HostFacts,
    ) -> Self {
        let mut allow = allowlist(respond, facts);
        for ip in super::url_host_addresses(&remote.server) {
            allow.push(
                IpNet::from(ip),
                AllowSource::Infrastructure("the Spoor server ([agent] server)".into()),
            );
        }
        let mut agent = RemoteAgent {
            conn,
            backend: GuardedBackend::new(backend, allow, guards(respond)),
            known: BTreeMap::new(),
            have_state: false,
            state_file: remote.state_file.clone(),
            kill_switch: respond.kill_switch,
            interval: respond.reconcile_interval.as_std(),
        };
        match load_state(&agent.state_file) {
            Ok(Some(saved)) => {
                tracing::info!(
                    "enforcing the {} decisions saved in {} until the server answers",
                    saved.decisions.len(),
                    agent.state_file.display()
                );
                saved.apply_to(&mut agent.known);
                agent.have_state = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; starting without saved decisions"),
        }
        agent
    }

    /// The decisions the agent holds, by id.
    pub fn known(&self) -> &BTreeMap<DecisionId, Decision> {
        &self.known
    }

    /// The decisions are known (a snapshot arrived or the state file was read).
    pub fn has_state(&self) -> bool {
        self.have_state
    }

    /// Fold in one answer of the stream. Returns whether anything changed.
    pub fn receive(&mut self, answer: DecisionStream) -> bool {
        let changed = answer.snapshot || !answer.decisions.is_empty() || !self.have_state;
        answer.apply_to(&mut self.known);
        self.have_state = true;
        if changed && let Err(e) = self.save_state() {
            tracing::warn!("{e} (after a restart the agent waits for the server)");
        }
        changed
    }

    fn save_state(&self) -> Result<(), String> {
        let state = DecisionStream {
            cursor: 0,
            snapshot: true,
            decisions: self.known.values().cloned().collect(),
        };
        let what = |e: &dyn std::fmt::Display| {
            format!(
                "cannot save the last decisions to {} ([agent] state_file): {e}",
                self.state_file.display()
            )
        };
        let json = serde_json::to_vec(&state).map_err(|e| what(&e))?;
        let tmp = self.state_file.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| what(&e))?;
        std::fs::rename(&tmp, &self.state_file).map_err(|e| what(&e))
    }

    /// One pass: the kill switch's flush, or make the backend hold the known decisions.
    /// Without known decisions (no snapshot, no state file) nothing is written.
    pub fn pass(&mut self, now: Micros) -> Result<RemotePass, ReconcileError> {
        let ledger = Ledger::new(&self.conn);
        let name = self.backend.name();
        let (kind, object) = name.split_once(':').unwrap_or((&name, ""));
        let mut report = AgentReport {
            backend: kind.to_string(),
            object: object.to_string(),
            capacity: self.backend.limit(),
            ..AgentReport::default()
        };
        if self.kill_switch {
            let r = reconcile::flush(&ledger, &mut self.backend, KILL_SWITCH_ACTOR, now)?;
            report.entries = self.backend.list().map(|h| h.len()).unwrap_or(0);
            return Ok(RemotePass {
                removed: r.removed,
                report,
                ..RemotePass::default()
            });
        }
        if !self.have_state {
            return Ok(RemotePass {
                report,
                ..RemotePass::default()
            });
        }
        let be = |source| ReconcileError::Backend {
            backend: name.clone(),
            source,
        };
        // Local expiry: a decision whose time is up is dropped whatever the server says.
        self.known.retain(|_, d| d.expires.is_none_or(|e| e > now));
        let mut kept: Vec<Decision> = Vec::new();
        for d in self.known.values().filter(|d| d.wants_block(now)) {
            match self.backend.check(&d.target) {
                Ok(()) => kept.push(d.clone()),
                Err(why) => report.refused.push(Refused {
                    id: d.id,
                    reason: format!("refused by the agent's guard: {why}"),
                }),
            }
        }
        let want = reconcile::desired(&kept, now);
        let held = self.backend.list().map_err(be)?;
        let mut owned = ledger.owned(&name)?;
        let vanished: Vec<IpNet> = owned.difference(&held).copied().collect();
        if !vanished.is_empty() {
            ledger.unmark_owned(&name, &vanished)?;
            for t in &vanished {
                owned.remove(t);
            }
        }
        let remove: Vec<IpNet> = owned
            .iter()
            .filter(|t| !want.contains_key(t))
            .copied()
            .collect();
        let kept_held: Vec<&IpNet> = held.iter().filter(|h| !remove.contains(h)).collect();
        let missing: Vec<(IpNet, u64)> = want
            .iter()
            .filter(|(t, _)| !kept_held.iter().any(|h| h.contains(*t)))
            .map(|(t, s)| (*t, *s))
            .collect();
        let changes = Changes {
            add: missing.iter().map(|(t, _)| *t).collect(),
            remove,
            expires_in: missing.into_iter().collect(),
        };
        let applied = self.backend.apply(&changes, now).map_err(be)?;
        ledger.mark_owned(&name, &applied.added, now)?;
        ledger.unmark_owned(&name, &applied.removed)?;
        let mut now_held: BTreeSet<IpNet> = held;
        for t in &applied.removed {
            now_held.remove(t);
        }
        now_held.extend(applied.added.iter().copied());
        report.activated = kept
            .iter()
            .filter(|d| d.state == DecisionState::Approved)
            .filter(|d| now_held.iter().any(|h| h.contains(&d.target)))
            .map(|d| d.id)
            .collect();
        report.entries = now_held.len();
        Ok(RemotePass {
            held_back: applied.refused.len(),
            added: applied.added,
            removed: applied.removed,
            report,
        })
    }

    /// When the next known decision runs out, if any.
    fn next_expiry(&self, now: Micros) -> Option<Duration> {
        self.known
            .values()
            .filter(|d| d.wants_block(now))
            .filter_map(|d| d.expires)
            .map(|e| Duration::from_micros((e.0 - now.0).max(0) as u64))
            .min()
    }

    /// Follow the server until `stop` is set: poller and reporter threads, passes on a
    /// change, on the interval and at each expiry. Never ends on a server or backend
    /// error: the last known decisions stay enforced.
    pub fn run(&mut self, client: ServerClient, cfg: &RemoteConfig, stop: &'static AtomicBool) {
        let (tx, rx) = mpsc::channel::<DecisionStream>();
        let (report_tx, report_rx) = mpsc::channel::<AgentReport>();
        let backoff = Backoff::new(cfg.backoff_min.as_std(), cfg.backoff_max.as_std());
        {
            let client = client.clone();
            let backoff = backoff.clone();
            std::thread::Builder::new()
                .name("agent-poll".into())
                .spawn(move || poll(&client, backoff, &tx, stop))
                .expect("spawning the agent's poller thread");
        }
        std::thread::Builder::new()
            .name("agent-report".into())
            .spawn(move || send_reports(&client, backoff, &report_rx, stop))
            .expect("spawning the agent's reporter thread");
        let mut next_pass = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let wait = next_pass
                .saturating_duration_since(Instant::now())
                .min(STOP_POLL);
            match rx.recv_timeout(wait) {
                Ok(answer) => {
                    let mut changed = self.receive(answer);
                    while let Ok(more) = rx.try_recv() {
                        changed |= self.receive(more);
                    }
                    if changed {
                        next_pass = Instant::now();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() < next_pass {
                continue;
            }
            let now = ledger::now();
            let report = match self.pass(now) {
                Ok(p) => {
                    if !p.added.is_empty() || !p.removed.is_empty() || !p.report.refused.is_empty()
                    {
                        tracing::info!(
                            added = p.added.len(),
                            removed = p.removed.len(),
                            refused = p.report.refused.len(),
                            held_back = p.held_back,
                            activated = p.report.activated.len(),
                            "reconciled {} with the server's decisions",
                            self.backend.name()
                        );
                    }
                    p.report
                }
                Err(e) => {
                    tracing::error!("reconcile failed: {e}");
                    let name = self.backend.name();
                    let (kind, object) = name.split_once(':').unwrap_or((&name, ""));
                    AgentReport {
                        backend: kind.to_string(),
                        object: object.to_string(),
                        capacity: self.backend.limit(),
                        error: Some(e.to_string()),
                        ..AgentReport::default()
                    }
                }
            };
            if self.have_state || self.kill_switch {
                let _ = report_tx.send(report);
            }
            let mut step = self.interval;
            if let Some(e) = self.next_expiry(now) {
                step = step.min(e + Duration::from_millis(1));
            }
            next_pass = Instant::now() + step;
        }
    }
}

/// Read the saved decisions; `None` when there is no file yet.
fn load_state(path: &Path) -> Result<Option<DecisionStream>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the saved decisions {} ([agent] state_file): {e}",
                path.display()
            ));
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        format!(
            "the saved decisions {} ([agent] state_file) are unreadable: {e}",
            path.display()
        )
    })
}

/// Exponential backoff with jitter between `min` and `max`.
#[derive(Debug, Clone)]
struct Backoff {
    min: Duration,
    max: Duration,
    seed: u64,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Backoff {
            min,
            max,
            seed: (t ^ u64::from(std::process::id()).rotate_left(32)) | 1,
        }
    }

    /// The wait after the `failures`-th failure in a row: between half and all of
    /// `min * 2^(failures-1)`, capped at `max`.
    fn wait(&mut self, failures: u32) -> Duration {
        let full = self
            .min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(30))
            .min(self.max);
        let half = full / 2;
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if nanos == 0 { 0 } else { x % (nanos + 1) })
    }
}

/// Sleep `d`, waking early when `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(STOP_POLL));
    }
}

/// The poller: the snapshot, then changes after the cursor, until `stop`.
fn poll(
    client: &ServerClient,
    mut backoff: Backoff,
    tx: &mpsc::Sender<DecisionStream>,
    stop: &AtomicBool,
) {
    let mut cursor: Option<i64> = None;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match client.decisions(cursor) {
            Ok(answer) => {
                if failures > 0 {
                    tracing::info!(
                        "the server at {} answers again; following its decisions",
                        client.base()
                    );
                }
                failures = 0;
                cursor = Some(answer.cursor);
                if tx.send(answer).is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                let wait = backoff.wait(failures);
                tracing::warn!(
                    "{e}; retrying in {}ms (failure {failures} in a row); the last known decisions stay enforced",
                    wait.as_millis()
                );
                sleep_unless_stopped(wait, stop);
            }
        }
    }
}

/// The reporter: send each report, merging those that wait while the server is away.
fn send_reports(
    client: &ServerClient,
    mut backoff: Backoff,
    rx: &mpsc::Receiver<AgentReport>,
    stop: &AtomicBool,
) {
    let mut pending: Option<AgentReport> = None;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if pending.is_none() {
            match rx.recv_timeout(STOP_POLL) {
                Ok(r) => pending = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        while let Ok(newer) = rx.try_recv() {
            match &mut pending {
                Some(p) => p.merge(newer),
                None => pending = Some(newer),
            }
        }
        let Some(report) = &pending else { continue };
        match client.report(report) {
            Ok(ack) => {
                if !ack.activated.is_empty() || !ack.revoked.is_empty() {
                    tracing::debug!(
                        activated = ack.activated.len(),
                        revoked = ack.revoked.len(),
                        "report accepted"
                    );
                }
                failures = 0;
                pending = None;
            }
            Err(e) => {
                failures += 1;
                let wait = backoff.wait(failures);
                tracing::warn!(
                    "sending the agent report failed: {e}; retrying in {}ms",
                    wait.as_millis()
                );
                sleep_unless_stopped(wait, stop);
            }
        }
    }
}

/// Open the local ledger file the remote agent keeps its owned entries in.
pub fn open_local(respond: &RespondConfig) -> Result<Connection, LedgerError> {
    ledger::open(&respond.ledger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::dry_run::DryRunBackend;
    use crate::config::RawRespond;
    use crate::decision::{Reason, parse_target};
    use spoor_core::KeyPath;

    fn respond(dir: &Path) -> RespondConfig {
        RawRespond::default()
            .validate(&KeyPath::root().key("respond"), dir, dir)
            .unwrap()
    }

    fn remote(dir: &Path) -> RemoteConfig {
        RemoteConfig {
            server: "http://127.0.0.1:9".into(),
            token_file: dir.join("token"),
            trust: super::super::config::ServerTrust::System,
            wait: spoor_core::Duration::from_secs(1),
            timeout: spoor_core::Duration::from_secs(1),
            backoff_min: spoor_core::Duration::from_secs(1),
            backoff_max: spoor_core::Duration::from_secs(2),
            state_file: dir.join("state.json"),
        }
    }

    fn decision(id: i64, target: &str, state: DecisionState, expires: i64) -> Decision {
        Decision {
            id: DecisionId(id),
            target: parse_target(target).unwrap(),
            reason: Reason {
                rule: "r".into(),
                events: vec![],
                note: None,
            },
            ttl_secs: 60,
            dry_run: false,
            state,
            actor: "policy".into(),
            created: Micros(0),
            updated: Micros(0),
            expires: Some(Micros(expires)),
            seq: id,
        }
    }

    fn agent(dir: &Path) -> RemoteAgent {
        let cfg = respond(dir);
        let conn = open_local(&cfg).unwrap();
        RemoteAgent::new(
            conn,
            &cfg,
            &remote(dir),
            Box::new(DryRunBackend::new()),
            &HostFacts::default(),
        )
    }

    #[test]
    fn applies_reports_expires_and_removes_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = agent(dir.path());
        // nothing known yet: nothing written, nothing reported as done
        let p = a.pass(Micros(0)).unwrap();
        assert!(p.added.is_empty() && p.report.activated.is_empty());
        assert!(a.receive(DecisionStream {
            cursor: 3,
            snapshot: true,
            decisions: vec![
                decision(1, "203.0.113.7", DecisionState::Approved, 10_000_000),
                decision(2, "198.51.100.0/24", DecisionState::Active, 50_000_000),
                decision(3, "127.0.0.1", DecisionState::Approved, 50_000_000),
                decision(4, "203.0.113.9", DecisionState::Proposed, 50_000_000),
            ],
        }));
        let p = a.pass(Micros(1)).unwrap();
        let added: Vec<String> = p.added.iter().map(ToString::to_string).collect();
        assert_eq!(added, ["198.51.100.0/24", "203.0.113.7/32"]);
        assert_eq!(p.report.activated, [DecisionId(1)]);
        assert_eq!(p.report.refused.len(), 1);
        assert_eq!(p.report.refused[0].id, DecisionId(3));
        assert!(
            p.report.refused[0].reason.contains("allowlisted"),
            "{}",
            p.report.refused[0].reason
        );
        assert_eq!(p.report.backend, "dry-run");
        assert_eq!(p.report.entries, 2);
        // decision 1 runs out locally; a revoke of 2 arrives
        assert!(!a.receive(DecisionStream {
            cursor: 4,
            snapshot: false,
            decisions: vec![],
        }));
        let p = a.pass(Micros(10_000_000)).unwrap();
        assert_eq!(p.removed, [parse_target("203.0.113.7").unwrap()]);
        a.receive(DecisionStream {
            cursor: 5,
            snapshot: false,
            decisions: vec![decision(
                2,
                "198.51.100.0/24",
                DecisionState::Revoked,
                50_000_000,
            )],
        });
        let p = a.pass(Micros(10_000_001)).unwrap();
        assert_eq!(p.removed, [parse_target("198.51.100.0/24").unwrap()]);
        assert_eq!(p.report.entries, 0);
    }

    #[test]
    fn a_restarted_agent_enforces_the_saved_decisions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut a = agent(dir.path());
            a.receive(DecisionStream {
                cursor: 1,
                snapshot: true,
                decisions: vec![decision(1, "203.0.113.7", DecisionState::Active, i64::MAX)],
            });
        }
        let a = agent(dir.path());
        assert!(a.has_state());
        assert_eq!(a.known().len(), 1);
        // an unreadable state file is not fatal
        std::fs::write(dir.path().join("state.json"), b"{").unwrap();
        assert!(!agent(dir.path()).has_state());
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)] {
            let w = b.wait(failures);
            let full = Duration::from_secs(full);
            assert!(w >= full / 2 && w <= full, "{failures}: {w:?}");
        }
    }
}
