//! What the responders do on their own inside the server: the policy on every newly
//! stored event, and the expiry timer.
//!
//! The policy follows the store losslessly ([`Store::follow`]): the writer hands each
//! committed, newly stored event (never a replayed duplicate) to a bounded queue after
//! the callers have their ack; a dedicated thread evaluates them in order on the
//! responders' ledger connection. When the policy falls [`POLICY_QUEUE`] events behind,
//! the writer waits for it (back-pressure to the sensors, which retry) rather than
//! dropping events a rule would have counted.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use spoor_core::Event;
use spoor_responders::agent::guards;
use spoor_responders::ledger;
use spoor_responders::policy::{Mode, Outcome, Policy, PolicySettings};
use tokio::sync::watch;

use super::Responders;
use crate::metrics::{Metrics, add, inc};
use crate::store::Store;

/// New events waiting for the policy at most before the writer waits for it.
pub const POLICY_QUEUE: usize = 65_536;
/// Events taken from the queue at once at most: one change notification per batch.
pub const POLICY_BATCH: usize = 1024;
/// How often approved and active decisions whose time is up become `expired`.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(5);

/// The policy's settings from `[respond]`.
pub fn policy_settings(r: &Responders) -> PolicySettings {
    let c = r.config();
    PolicySettings {
        mode: c.mode,
        rules: c.rules.clone(),
        local_networks: c.local_networks.clone(),
        max_ttl: c.max_ttl,
        repeat_window: c.repeat_window,
        guards: guards(c),
    }
}

/// Start the policy thread on the store's new events (none in mode `off`). It ends when
/// the store closes.
pub fn start_policy(
    responders: &Arc<Responders>,
    store: &Store,
    metrics: &Arc<Metrics>,
) -> std::io::Result<()> {
    if responders.config().mode == Mode::Off {
        tracing::info!("[respond] mode = \"off\": the policy makes no decisions");
        return Ok(());
    }
    let rx = store.follow(POLICY_QUEUE);
    let policy = Policy::new(policy_settings(responders), responders.allowlist().clone());
    let (r, m) = (Arc::clone(responders), Arc::clone(metrics));
    std::thread::Builder::new()
        .name("respond-policy".into())
        .spawn(move || policy_loop(&r, policy, &rx, &m))?;
    Ok(())
}

fn policy_loop(r: &Responders, mut policy: Policy, rx: &Receiver<Arc<Event>>, m: &Metrics) {
    let mut batch: Vec<Arc<Event>> = Vec::with_capacity(POLICY_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < POLICY_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let decided = evaluate(r, &mut policy, &batch, m);
        batch.clear();
        if decided > 0 {
            r.changed();
        }
    }
}

/// Run a batch through the policy; returns how many decisions it made. The ledger
/// connection is taken per event, so the decision endpoints get their turn in a flood.
pub fn evaluate(r: &Responders, policy: &mut Policy, events: &[Arc<Event>], m: &Metrics) -> u64 {
    let now = ledger::now();
    let refused_before = policy.tracking_refused;
    let mut decided = 0;
    for e in events {
        match r.ledger_blocking(|l| policy.evaluate(e, l, now)) {
            Ok(outcomes) => {
                for o in outcomes {
                    match o {
                        Outcome::Decided(d) => {
                            decided += 1;
                            tracing::info!(
                                decision = d.id.0,
                                target = %d.target,
                                rule = %d.reason.rule,
                                state = %d.state,
                                ttl_secs = d.ttl_secs,
                                dry_run = d.dry_run,
                                "policy: new decision"
                            );
                        }
                        Outcome::Refused { target, why } => {
                            inc(&m.respond_refused);
                            tracing::debug!(%target, "policy: not a target: {why}");
                        }
                        _ => {}
                    }
                }
            }
            Err(err) => {
                inc(&m.respond_policy_failed);
                tracing::error!(
                    event = %e.id,
                    "the policy could not record its decision for this event: {err}"
                );
            }
        }
    }
    add(&m.respond_events, events.len() as u64);
    add(&m.respond_decisions, decided);
    let full = policy.tracking_refused - refused_before;
    if full > 0 {
        add(&m.respond_tracking_full, full);
        tracing::warn!(
            "the policy's counting table is full ({} targets): {full} occurrences not counted",
            spoor_responders::policy::MAX_TRACKED
        );
    }
    decided
}

/// Expire decisions whose time is up every [`EXPIRY_INTERVAL`] until `stopped`.
pub async fn expiry_loop(
    r: Arc<Responders>,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match r.ledger(|l| l.expire_due(ledger::now())).await {
            Ok(expired) if !expired.is_empty() => {
                add(&metrics.respond_expired, expired.len() as u64);
                for d in &expired {
                    tracing::info!(decision = d.id.0, target = %d.target, "decision expired");
                }
                r.changed();
            }
            Ok(_) => {}
            Err(e) => tracing::error!("expiring decisions failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_INTERVAL) => {}
            _ = stopped.changed() => return,
        }
    }
}
