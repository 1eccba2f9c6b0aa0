//! Spoor's responders: confirmed alerts become blocks on a firewall, safely.
//!
//! ```text
//! events ─► policy (rules, local networks, escalation) ─► ledger (decisions + audit, SQLite)
//!                                                            │ approve / reject / expire
//!                                                            ▼
//!        backend (pf, nftables, OPNsense, dry-run) ◄─ guard ◄─ reconciler (ledger = truth)
//! ```
//! - [`decision`]: the decision and its legal state transitions;
//! - [`ledger`]: decisions, the append-only audit log, the decision stream, owned entries;
//! - [`config`]: the `[respond]` section, raw and validated;
//! - [`policy`]: which events become which decisions, with what TTL;
//! - [`allowlist`] and [`system`]: what is never blocked, including this host's facts;
//! - [`guard`]: the one door every backend write goes through (allowlist again, prefix,
//!   rate and size limits);
//! - [`backend`]: one trait, one file per firewall;
//! - [`reconcile`]: make the backend hold what the ledger says, touching only Spoor's own
//!   entries;
//! - [`agent`]: the loop `spoor agent` runs, on the local ledger or following a server;
//! - [`stream`]: the decision stream's wire types (server ↔ agent).

pub mod agent;
pub mod allowlist;
pub mod backend;
pub mod config;
pub mod decision;
pub mod guard;
pub mod ledger;
pub mod policy;
pub mod reconcile;
pub mod stream;
pub mod system;

pub use allowlist::{AllowEntry, AllowSource, Allowlist, HostFacts};
pub use backend::{Backend, BackendError, Changes};
pub use decision::{AuditEntry, Decision, DecisionId, DecisionState, NewDecision, Reason};
pub use guard::{Applied, GuardedBackend, Guards, Refusal};
pub use ledger::{Ledger, LedgerError, StreamChanges, StreamSnapshot};
