//! The in-process backend (`[respond] server_applies = true`): on a single host the server
//! keeps the firewall object in line with its own ledger, with no `spoor agent`.
//!
//! A pass (the responders crate's reconciler, or its flush when `kill_switch` is on) runs
//! on the blocking pool on a connection of its own, so a slow firewall never holds the
//! policy or the decision endpoints. Passes run at start, after every ledger change
//! ([`Responders::subscribe`]; changes during a pass coalesce into one more pass) and
//! every `reconcile_interval`. Each pass is reported as a [`BackendStatus`] with
//! reporter [`SERVER_REPORTER`].

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use spoor_responders::agent::{self, KILL_SWITCH_ACTOR};
use spoor_responders::config::BackendKind;
use spoor_responders::guard::GuardedBackend;
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::reconcile::{self, Report};
use tokio::sync::watch;

use super::{BackendStatus, Responders};
use crate::metrics::{Metrics, inc};

/// The reporter name of the server's own backend in [`BackendStatus`].
pub const SERVER_REPORTER: &str = "server";

/// Why the in-process backend could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InProcessError {
    #[error("cannot open the firewall backend for server_applies = true ([respond] backend): {0}")]
    Backend(#[from] spoor_responders::BackendError),
    #[error("the in-process backend cannot open the decisions ledger: {0}")]
    Ledger(#[from] spoor_responders::LedgerError),
}

/// The config's backend kind as the status names it.
pub fn kind_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::DryRun => "dry-run",
        BackendKind::Pf => "pf",
        BackendKind::Nftables => "nftables",
        BackendKind::Opnsense => "opnsense",
    }
}

/// The backend and its own ledger connection.
#[derive(Debug)]
struct Applier {
    conn: Connection,
    backend: GuardedBackend,
    kill_switch: bool,
}

impl Applier {
    fn pass(&mut self) -> Result<Report, reconcile::ReconcileError> {
        let l = Ledger::new(&self.conn);
        let now = ledger::now();
        if self.kill_switch {
            reconcile::flush(&l, &mut self.backend, KILL_SWITCH_ACTOR, now)
        } else {
            reconcile::reconcile(&l, &mut self.backend, now)
        }
    }

    /// Spoor's entries in the backend, as the ledger records them.
    fn entries(&self) -> usize {
        Ledger::new(&self.conn)
            .owned(&self.backend.name())
            .map(|o| o.len())
            .unwrap_or(0)
    }
}

/// Open the backend the config names (blocking: nftables may create its table here) and
/// start reconciling until `stopped`.
pub async fn start(
    r: &Arc<Responders>,
    db: &Path,
    metrics: &Arc<Metrics>,
    stopped: watch::Receiver<bool>,
) -> Result<(), InProcessError> {
    let cfg = r.config().clone();
    let allowlist = r.allowlist().clone();
    let db = db.to_path_buf();
    let applier = tokio::task::spawn_blocking(move || -> Result<Applier, InProcessError> {
        let backend = agent::backend(&cfg)?;
        let conn = super::connect(&db)?;
        Ok(Applier {
            conn,
            backend: GuardedBackend::new(backend, allowlist, agent::guards(&cfg)),
            kill_switch: cfg.kill_switch,
        })
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    tokio::spawn(run(
        Arc::clone(r),
        Arc::new(Mutex::new(applier)),
        Arc::clone(metrics),
        stopped,
    ));
    Ok(())
}

async fn run(
    r: Arc<Responders>,
    applier: Arc<Mutex<Applier>>,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut changes = r.subscribe();
    let interval = r.config().reconcile_interval.as_std();
    let kind = kind_name(r.config().backend);
    let mut last_sync = spoor_core::Micros(0);
    loop {
        let a = Arc::clone(&applier);
        let done = tokio::task::spawn_blocking(move || {
            let mut a = a.lock().unwrap_or_else(PoisonError::into_inner);
            let result = a.pass();
            (result, a.backend.name(), a.backend.limit(), a.entries())
        })
        .await;
        let Ok((result, object, capacity, entries)) = done else {
            tracing::error!("the in-process backend's pass panicked");
            return;
        };
        let last_error = match result {
            Ok(report) => {
                last_sync = ledger::now();
                log_report(&report, &object);
                if report.activated > 0 || report.revoked > 0 || report.expired > 0 {
                    r.changed();
                }
                None
            }
            Err(e) => {
                inc(&metrics.respond_reconcile_failed);
                tracing::error!("the in-process backend's reconcile failed: {e}");
                Some(e.to_string())
            }
        };
        r.report_status(BackendStatus {
            reporter: SERVER_REPORTER.into(),
            backend: kind.into(),
            object,
            entries,
            capacity,
            last_sync,
            last_error,
        });
        tokio::select! {
            c = changes.changed() => {
                if c.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => return,
        }
    }
}

fn log_report(r: &Report, object: &str) {
    if r.added.is_empty()
        && r.removed.is_empty()
        && r.expired == 0
        && r.refused.is_empty()
        && r.revoked == 0
    {
        return;
    }
    tracing::info!(
        added = r.added.len(),
        removed = r.removed.len(),
        expired = r.expired,
        activated = r.activated,
        revoked = r.revoked,
        refused = r.refused.len(),
        "reconciled {object}"
    );
    for (t, why) in &r.refused {
        tracing::warn!(target = %t, "not written to {object}: {why}");
    }
}
