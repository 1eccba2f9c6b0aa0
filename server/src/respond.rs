//! The responders inside the server: the decisions ledger in the server's database, the
//! allowlist the server checks against, the change counter the decision stream waits on,
//! and the backends' reported status.
//!
//! The ledger (`responder_*` tables, migrated by the responders crate) is reached through
//! its own connection to the server's database file, never through the event writer:
//! ledger work runs on tokio's blocking pool behind one mutex ([`Responders::ledger`]).
//! Every transition is followed by [`Responders::changed`], which bumps a counter that
//! stream handlers wait on ([`Responders::subscribe`]).

pub mod in_process;
pub mod tasks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use ipnet::IpNet;
use rusqlite::Connection;
use serde::Serialize;
use spoor_core::Micros;
use spoor_responders::allowlist::{AllowSource, Allowlist, HostFacts};
use spoor_responders::config::RespondConfig;
use spoor_responders::ledger::{self, Ledger, LedgerError};
use tokio::sync::watch;

/// Where the server's pseudonyms live (see `privacy`): never real hosts, never blocked.
pub const PSEUDONYM_RANGES: [&str; 2] = ["240.0.0.0/4", "100::/64"];
/// How long the responders' connection waits for the event writer's lock: the same as the
/// store's own connections.
pub const LEDGER_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection to the ledger in the server's database: migrated, waiting for the event
/// writer's lock like the store's own connections, and committing like the store
/// (`synchronous = NORMAL` in WAL: a commit survives a crash of the process).
pub fn connect(db: &Path) -> Result<Connection, LedgerError> {
    let conn = ledger::open(db)?;
    conn.busy_timeout(LEDGER_BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "normal")?;
    Ok(conn)
}

/// What one backend last reported: the server's in-process backend (`reporter` "server")
/// or an agent (its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendStatus {
    /// An agent's name, or "server" for the in-process backend.
    pub reporter: String,
    /// "nftables", "pf", "opnsense", "dry-run".
    pub backend: String,
    /// The table, set or alias Spoor owns there.
    pub object: String,
    pub entries: usize,
    pub capacity: usize,
    pub last_sync: Micros,
    pub last_error: Option<String>,
}

/// The responders' shared state; one per server, in `AppState::responders`.
#[derive(Debug)]
pub struct Responders {
    config: RespondConfig,
    allowlist: Allowlist,
    conn: Arc<Mutex<Connection>>,
    changes: watch::Sender<u64>,
    /// (reporter, backend, object) → the last report.
    statuses: Mutex<BTreeMap<(String, String, String), BackendStatus>>,
}

/// What the server knows about itself that belongs on the allowlist.
#[derive(Debug, Clone, Copy)]
pub struct ServerFacts {
    /// The listen address (unspecified addresses add nothing: the host's own addresses
    /// are on the allowlist already).
    pub listen: SocketAddr,
    /// Pseudonymisation is on: its ranges are allowlisted.
    pub pseudonyms: bool,
}

impl Responders {
    /// Open the ledger on `db` (the server's database file), migrate it, and build the
    /// allowlist from the config, this host's facts and the server's own facts.
    /// Blocking: call from a blocking thread.
    pub fn open(
        config: RespondConfig,
        db: &Path,
        host: &HostFacts,
        server: ServerFacts,
    ) -> Result<Responders, LedgerError> {
        let conn = connect(db)?;
        let mut allowlist = spoor_responders::agent::allowlist(&config, host);
        let ip = server.listen.ip();
        if !ip.is_unspecified() {
            allowlist.push(
                IpNet::from(ip),
                AllowSource::Infrastructure("this Spoor server (its listen address)".into()),
            );
        }
        if server.pseudonyms {
            for r in PSEUDONYM_RANGES {
                if let Ok(net) = r.parse() {
                    allowlist.push(
                        net,
                        AllowSource::Infrastructure(
                            "pseudonyms of local addresses ([server.privacy])".into(),
                        ),
                    );
                }
            }
        }
        let (changes, _) = watch::channel(0);
        Ok(Responders {
            config,
            allowlist,
            conn: Arc::new(Mutex::new(conn)),
            changes,
            statuses: Mutex::new(BTreeMap::new()),
        })
    }

    /// Run `f` on the ledger, on the blocking pool, on the responders' own connection.
    pub async fn ledger<R, F>(&self, f: F) -> Result<R, LedgerError>
    where
        F: FnOnce(&Ledger<'_>) -> Result<R, LedgerError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        match tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&Ledger::new(&conn))
        })
        .await
        {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(LedgerError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the server is shutting down; the ledger call was not run".into()),
            ))),
        }
    }

    /// [`Responders::ledger`] for a thread that may block (the policy and the in-process
    /// backend).
    pub fn ledger_blocking<R>(
        &self,
        f: impl FnOnce(&Ledger<'_>) -> Result<R, LedgerError>,
    ) -> Result<R, LedgerError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&Ledger::new(&conn))
    }

    /// Tell the stream handlers (and the in-process backend) that the ledger changed.
    /// Call after every transition.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A counter bumped by [`Responders::changed`]: `changed().await` on it waits for
    /// the next ledger change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Everything never blocked, with where each entry comes from.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    pub fn config(&self) -> &RespondConfig {
        &self.config
    }

    /// Record a backend's report (replaces the last one of the same reporter and object).
    pub fn report_status(&self, s: BackendStatus) {
        let key = (s.reporter.clone(), s.backend.clone(), s.object.clone());
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, s);
    }

    /// The last report of each backend, by reporter, backend and object.
    pub fn statuses(&self) -> Vec<BackendStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
