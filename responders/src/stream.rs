//! The decision stream between the server and its agents, as it travels (JSON).
//!
//! ```text
//! agent ── GET /api/v1/agent/decisions ───────────────► server   (no cursor)
//!       ◄── DecisionStream { snapshot: true,  cursor, decisions: every open decision }
//! agent ── GET /api/v1/agent/decisions?cursor=N&wait=S ► server   (long poll)
//!       ◄── DecisionStream { snapshot: false, cursor, decisions: what changed after N }
//! agent ── POST /api/v1/agent/report  AgentReport ────► server
//!       ◄── ReportAck { activated, revoked }
//! ```
//! A snapshot replaces what the agent knew; changes carry each changed decision in its
//! current state (a final state means "forget it"). A server whose ledger is behind the
//! agent's cursor (restored from a backup) answers with a snapshot, so the agent never
//! keeps decisions the server no longer has.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::{Decision, DecisionId};
use crate::ledger::{StreamChanges, StreamSnapshot};

/// The server caps a long poll's `wait` at this many seconds (a proxy in between may cut
/// an idle request after a minute or two).
pub const MAX_WAIT_SECS: u64 = 60;

/// One answer of `GET /api/v1/agent/decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionStream {
    /// The audit sequence number this answer is complete up to; ask for changes after it.
    pub cursor: i64,
    /// `true`: `decisions` is every decision that is not final, replacing what the agent
    /// held; `false`: only the decisions that changed after the cursor asked for.
    pub snapshot: bool,
    pub decisions: Vec<Decision>,
}

impl From<StreamSnapshot> for DecisionStream {
    fn from(s: StreamSnapshot) -> Self {
        DecisionStream {
            cursor: s.cursor,
            snapshot: true,
            decisions: s.decisions,
        }
    }
}

impl From<StreamChanges> for DecisionStream {
    fn from(c: StreamChanges) -> Self {
        DecisionStream {
            cursor: c.cursor,
            snapshot: false,
            decisions: c.changes,
        }
    }
}

impl DecisionStream {
    /// Fold this answer into what the agent knows: a snapshot replaces it, changes update
    /// it; decisions in a final state are dropped. Returns the new cursor.
    pub fn apply_to(self, known: &mut BTreeMap<DecisionId, Decision>) -> i64 {
        if self.snapshot {
            known.clear();
        }
        for d in self.decisions {
            if d.state.is_final() {
                known.remove(&d.id);
            } else {
                known.insert(d.id, d);
            }
        }
        self.cursor
    }
}

/// A decision the agent would not apply, and why (the guard's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub id: DecisionId,
    pub reason: String,
}

/// `POST /api/v1/agent/report`: what the agent's backend holds and what it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The backend kind: `nftables`, `pf`, `opnsense`, `dry-run`.
    pub backend: String,
    /// The firewall object: `inet spoor`, the pf table, the alias.
    pub object: String,
    /// Entries the object holds now (Spoor's and others').
    pub entries: usize,
    /// Entries it can hold (the guard's limit).
    pub capacity: usize,
    /// Approved decisions whose target the backend now holds: the server makes them active.
    #[serde(default)]
    pub activated: Vec<DecisionId>,
    /// Decisions refused for good (allowlisted, prefix too short): the server revokes them
    /// with the reason.
    #[serde(default)]
    pub refused: Vec<Refused>,
    /// The last backend error, if the last pass failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AgentReport {
    /// Fold a newer report into one not sent yet: ids accumulate, the status is the
    /// newer one's.
    pub fn merge(&mut self, newer: AgentReport) {
        let mut activated = std::mem::take(&mut self.activated);
        let mut refused = std::mem::take(&mut self.refused);
        for id in newer.activated.iter() {
            if !activated.contains(id) {
                activated.push(*id);
            }
        }
        for r in newer.refused.iter() {
            if !refused.iter().any(|o| o.id == r.id) {
                refused.push(r.clone());
            }
        }
        *self = AgentReport {
            activated,
            refused,
            ..newer
        };
    }
}

/// The server's answer to a report: what it changed in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAck {
    /// Decisions that became active.
    pub activated: Vec<DecisionId>,
    /// Decisions revoked because the agent refused them.
    pub revoked: Vec<DecisionId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DecisionState, Reason, parse_target};
    use spoor_core::Micros;

    fn decision(id: i64, target: &str, state: DecisionState) -> Decision {
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
            created: Micros(1),
            updated: Micros(2),
            expires: Some(Micros(60_000_002)),
            seq: id,
        }
    }

    #[test]
    fn stream_json_round_trips_with_documented_names() {
        let s = DecisionStream {
            cursor: 9,
            snapshot: true,
            decisions: vec![decision(1, "2001:db8::/64", DecisionState::Approved)],
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cursor"], 9);
        assert_eq!(v["snapshot"], true);
        assert_eq!(v["decisions"][0]["target"], "2001:db8::/64");
        assert_eq!(v["decisions"][0]["state"], "approved");
        assert_eq!(serde_json::from_value::<DecisionStream>(v).unwrap(), s);
    }

    #[test]
    fn snapshots_replace_and_changes_update() {
        let mut known = BTreeMap::new();
        let snap = DecisionStream {
            cursor: 5,
            snapshot: true,
            decisions: vec![
                decision(1, "192.0.2.1", DecisionState::Approved),
                decision(2, "192.0.2.2", DecisionState::Proposed),
            ],
        };
        assert_eq!(snap.apply_to(&mut known), 5);
        assert_eq!(known.len(), 2);
        let changes = DecisionStream {
            cursor: 7,
            snapshot: false,
            decisions: vec![
                decision(1, "192.0.2.1", DecisionState::Revoked),
                decision(2, "192.0.2.2", DecisionState::Approved),
                decision(3, "192.0.2.3", DecisionState::Approved),
            ],
        };
        assert_eq!(changes.apply_to(&mut known), 7);
        let ids: Vec<_> = known.keys().map(|i| i.0).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(known[&DecisionId(2)].state, DecisionState::Approved);
        // a later snapshot forgets what it does not name
        let snap = DecisionStream {
            cursor: 1,
            snapshot: true,
            decisions: vec![decision(4, "192.0.2.4", DecisionState::Active)],
        };
        snap.apply_to(&mut known);
        assert_eq!(known.keys().map(|i| i.0).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn reports_parse_without_optional_fields_and_merge() {
        let r: AgentReport = serde_json::from_str(
            r#"{"backend":"nftables","object":"inet spoor","entries":3,"capacity":65536}"#,
        )
        .unwrap();
        assert!(r.activated.is_empty() && r.refused.is_empty() && r.error.is_none());
        assert!(serde_json::from_str::<AgentReport>(r#"{"backend":"pf"}"#).is_err());
        let mut pending = AgentReport {
            activated: vec![DecisionId(1)],
            refused: vec![Refused {
                id: DecisionId(2),
                reason: "allowlisted".into(),
            }],
            error: Some("nft failed".into()),
            ..r.clone()
        };
        pending.merge(AgentReport {
            entries: 4,
            activated: vec![DecisionId(1), DecisionId(3)],
            ..r
        });
        assert_eq!(pending.entries, 4);
        assert_eq!(pending.activated, [DecisionId(1), DecisionId(3)]);
        assert_eq!(pending.refused.len(), 1);
        assert_eq!(pending.error, None, "the newer status wins");
        let v = serde_json::to_value(&pending).unwrap();
        assert_eq!(v["refused"][0]["id"], 2);
        assert_eq!(v["refused"][0]["reason"], "allowlisted");
    }
}
