//! The decisions ledger: decisions, their append-only audit log, and the entries Spoor
//! added to each backend, in SQLite.
//!
//! The ledger works on a `rusqlite::Connection` it is handed: the server passes its own
//! database (each crate owns its tables, all prefixed `responder_`, and its migrations,
//! recorded in `responder_migrations`), the agent and the CLI open a file of their own
//! with [`open`]. The audit table refuses UPDATE and DELETE by trigger, so "append-only"
//! holds for any client of the file, not only for this code.
//!
//! The decision stream an agent follows is [`Ledger::snapshot`] (every decision that is
//! not final, with the cursor) and then [`Ledger::changes_since`] that cursor.

use std::collections::BTreeSet;
use std::path::Path;

use ipnet::IpNet;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use spoor_core::{EventId, Micros};

use crate::decision::{
    AuditEntry, Decision, DecisionId, DecisionState, NewDecision, Reason, parse_target, target_text,
};

/// The schema, one step per version; a step is never edited once released, only appended.
const MIGRATIONS: &[&str] = &[
    // 1: decisions, audit, owned entries.
    "CREATE TABLE responder_decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        rule TEXT NOT NULL,
        events TEXT NOT NULL,
        note TEXT,
        ttl_secs INTEGER NOT NULL,
        dry_run INTEGER NOT NULL,
        state TEXT NOT NULL,
        actor TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        seq INTEGER NOT NULL
    );
    CREATE INDEX responder_decisions_state ON responder_decisions(state);
    CREATE INDEX responder_decisions_target ON responder_decisions(target);
    CREATE INDEX responder_decisions_seq ON responder_decisions(seq);
    CREATE TABLE responder_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        decision INTEGER NOT NULL REFERENCES responder_decisions(id),
        from_state TEXT,
        to_state TEXT NOT NULL,
        actor TEXT NOT NULL,
        at INTEGER NOT NULL,
        note TEXT
    );
    CREATE INDEX responder_audit_decision ON responder_audit(decision);
    CREATE TRIGGER responder_audit_no_update BEFORE UPDATE ON responder_audit
        BEGIN SELECT RAISE(ABORT, 'the responder audit log is append-only'); END;
    CREATE TRIGGER responder_audit_no_delete BEFORE DELETE ON responder_audit
        BEGIN SELECT RAISE(ABORT, 'the responder audit log is append-only'); END;
    CREATE TABLE responder_owned (
        backend TEXT NOT NULL,
        target TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (backend, target)
    );",
];

/// How long a writer waits for another process's lock before giving up (the agent and
/// the CLI share the file).
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("decision ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("decision {0} does not exist")]
    NoSuchDecision(DecisionId),
    #[error("decision {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        id: DecisionId,
        from: DecisionState,
        to: DecisionState,
    },
    #[error("decision ledger row {id} is corrupt: {message}")]
    Corrupt { id: i64, message: String },
    #[error(
        "decision ledger schema version {found} is newer than this Spoor knows ({known}); upgrade Spoor"
    )]
    TooNew { found: usize, known: usize },
}

/// Open (or create) a ledger file and bring its schema up to date.
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&conn)?;
    Ok(conn)
}

/// Apply the responder's migrations that `conn` has not seen yet, each in its own
/// transaction. Safe to call on every start.
pub fn migrate(conn: &Connection) -> Result<(), LedgerError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS responder_migrations (
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let have: usize = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM responder_migrations",
        [],
        |r| r.get::<_, i64>(0),
    )? as usize;
    if have > MIGRATIONS.len() {
        return Err(LedgerError::TooNew {
            found: have,
            known: MIGRATIONS.len(),
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(have) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(step)?;
        tx.execute(
            "INSERT INTO responder_migrations (version, applied_at) VALUES (?1, ?2)",
            params![(i + 1) as i64, now().0],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The wall clock as the ledger records it.
pub fn now() -> Micros {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The first message of the decision stream: everything not final, and where to go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSnapshot {
    pub cursor: i64,
    pub decisions: Vec<Decision>,
}

/// A later message: each decision that changed after the cursor, in its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChanges {
    pub cursor: i64,
    pub changes: Vec<Decision>,
}

/// The ledger over a connection whose schema is migrated.
#[derive(Debug, Clone, Copy)]
pub struct Ledger<'c> {
    conn: &'c Connection,
}

const COLUMNS: &str = "id, target, rule, events, note, ttl_secs, dry_run, state, actor, \
                       created_at, updated_at, expires_at, seq";

fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Decision, LedgerError>> {
    let id: i64 = row.get(0)?;
    let target: String = row.get(1)?;
    let events: String = row.get(3)?;
    let state: String = row.get(7)?;
    let corrupt = |message: String| LedgerError::Corrupt { id, message };
    let parsed = (|| {
        let target = parse_target(&target).map_err(corrupt)?;
        let events: Vec<String> =
            serde_json::from_str(&events).map_err(|e| corrupt(format!("events: {e}")))?;
        let events = events
            .iter()
            .map(|e| e.parse::<EventId>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let state: DecisionState = state.parse().map_err(corrupt)?;
        Ok((target, events, state))
    })();
    let (target, events, state) = match parsed {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Decision {
        id: DecisionId(id),
        target,
        reason: Reason {
            rule: row.get(2)?,
            events,
            note: row.get(4)?,
        },
        ttl_secs: row.get::<_, i64>(5)?.max(0) as u64,
        dry_run: row.get(6)?,
        state,
        actor: row.get(8)?,
        created: Micros(row.get(9)?),
        updated: Micros(row.get(10)?),
        expires: row.get::<_, Option<i64>>(11)?.map(Micros),
        seq: row.get(12)?,
    }))
}

impl<'c> Ledger<'c> {
    /// `conn` must have been through [`migrate`] (or [`open`]).
    pub fn new(conn: &'c Connection) -> Self {
        Ledger { conn }
    }

    fn query(
        &self,
        sql_where: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Decision>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM responder_decisions {sql_where}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, decision_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    fn audit_insert(
        &self,
        id: DecisionId,
        from: Option<DecisionState>,
        to: DecisionState,
        actor: &str,
        at: Micros,
        note: Option<&str>,
    ) -> Result<i64, LedgerError> {
        self.conn.execute(
            "INSERT INTO responder_audit (decision, from_state, to_state, actor, at, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.0,
                from.map(|f| f.as_str()),
                to.as_str(),
                actor,
                at.0,
                note
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record a new decision in state `proposed`.
    pub fn propose(
        &self,
        new: &NewDecision,
        actor: &str,
        at: Micros,
    ) -> Result<Decision, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let events: Vec<String> = new.reason.events.iter().map(ToString::to_string).collect();
        self.conn.execute(
            "INSERT INTO responder_decisions
             (target, rule, events, note, ttl_secs, dry_run, state, actor, created_at, updated_at, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'proposed', ?7, ?8, ?8, 0)",
            params![
                target_text(&new.target),
                new.reason.rule,
                serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
                new.reason.note,
                i64::try_from(new.ttl_secs).unwrap_or(i64::MAX),
                new.dry_run,
                actor,
                at.0,
            ],
        )?;
        let id = DecisionId(self.conn.last_insert_rowid());
        let seq = self.audit_insert(
            id,
            None,
            DecisionState::Proposed,
            actor,
            at,
            new.reason.note.as_deref(),
        )?;
        self.conn.execute(
            "UPDATE responder_decisions SET seq = ?1 WHERE id = ?2",
            params![seq, id.0],
        )?;
        tx.commit()?;
        self.get(id)
    }

    /// Move a decision to `to`, if that is legal from its current state, and log it.
    /// Approval starts the TTL.
    pub fn transition(
        &self,
        id: DecisionId,
        to: DecisionState,
        actor: &str,
        at: Micros,
        note: Option<&str>,
    ) -> Result<Decision, LedgerError> {
        // IMMEDIATE: the read below must not be a stale snapshot when another connection
        // to the same file (the server's event writer) commits before the write; a
        // deferred transaction would then fail with SQLITE_BUSY instead of waiting.
        let tx = rusqlite::Transaction::new_unchecked(
            self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let current = self.get(id)?;
        if !current.state.can_become(to) {
            return Err(LedgerError::IllegalTransition {
                id,
                from: current.state,
                to,
            });
        }
        let seq = self.audit_insert(id, Some(current.state), to, actor, at, note)?;
        let expires = match to {
            DecisionState::Approved => Some(Micros(
                at.0.saturating_add(
                    i64::try_from(current.ttl_secs)
                        .unwrap_or(i64::MAX)
                        .saturating_mul(1_000_000),
                ),
            )),
            _ => current.expires,
        };
        self.conn.execute(
            "UPDATE responder_decisions SET state = ?1, actor = ?2, updated_at = ?3,
             expires_at = ?4, seq = ?5 WHERE id = ?6",
            params![to.as_str(), actor, at.0, expires.map(|e| e.0), seq, id.0],
        )?;
        tx.commit()?;
        self.get(id)
    }

    pub fn get(&self, id: DecisionId) -> Result<Decision, LedgerError> {
        self.query("WHERE id = ?1", &[&id.0])?
            .pop()
            .ok_or(LedgerError::NoSuchDecision(id))
    }

    /// Decisions in any of `states`, oldest first (all of them for an empty list).
    pub fn list(&self, states: &[DecisionState]) -> Result<Vec<Decision>, LedgerError> {
        if states.is_empty() {
            return self.query("ORDER BY id", &[]);
        }
        // The state names are this crate's constants, never input.
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        self.query(
            &format!("WHERE state IN ({}) ORDER BY id", names.join(", ")),
            &[],
        )
    }

    /// Decisions on exactly this target that are not final.
    pub fn open_for(&self, target: &IpNet) -> Result<Vec<Decision>, LedgerError> {
        let text = target_text(target);
        Ok(self
            .query("WHERE target = ?1 ORDER BY id", &[&text])?
            .into_iter()
            .filter(|d| !d.state.is_final())
            .collect())
    }

    /// How many earlier decisions on this target were approved (so were blocks) since
    /// `since`: the step on the escalation ladder.
    pub fn repeat_count(&self, target: &IpNet, since: Micros) -> Result<usize, LedgerError> {
        let text = target_text(target);
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM responder_decisions WHERE target = ?1 AND created_at >= ?2
             AND dry_run = 0 AND expires_at IS NOT NULL",
            params![text, since.0],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as usize)
    }

    /// Every approved or active decision whose time is up becomes `expired` (actor
    /// `ttl`). Returns them.
    pub fn expire_due(&self, at: Micros) -> Result<Vec<Decision>, LedgerError> {
        let due = self.query(
            "WHERE state IN ('approved', 'active') AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY id",
            &[&at.0],
        )?;
        due.iter()
            .map(|d| self.transition(d.id, DecisionState::Expired, "ttl", at, None))
            .collect()
    }

    /// The audit log of one decision, in order.
    pub fn audit(&self, id: DecisionId) -> Result<Vec<AuditEntry>, LedgerError> {
        self.audit_where("WHERE decision = ?1 ORDER BY seq", &[&id.0])
    }

    /// The whole audit log after `seq`, in order.
    pub fn audit_since(&self, seq: i64) -> Result<Vec<AuditEntry>, LedgerError> {
        self.audit_where("WHERE seq > ?1 ORDER BY seq", &[&seq])
    }

    fn audit_where(
        &self,
        sql_where: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<AuditEntry>, LedgerError> {
        let sql = format!(
            "SELECT seq, decision, from_state, to_state, actor, at, note FROM responder_audit {sql_where}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, decision, from, to, actor, at, note) = row?;
            let corrupt = |message: String| LedgerError::Corrupt {
                id: decision,
                message,
            };
            out.push(AuditEntry {
                seq,
                decision: DecisionId(decision),
                from: from.map(|f| f.parse()).transpose().map_err(corrupt)?,
                to: to.parse().map_err(corrupt)?,
                actor,
                at: Micros(at),
                note,
            });
        }
        Ok(out)
    }

    fn cursor(&self) -> Result<i64, LedgerError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM responder_audit",
            [],
            |r| r.get(0),
        )?)
    }

    /// The stream's start: every decision that is not final, and the cursor to follow.
    pub fn snapshot(&self) -> Result<StreamSnapshot, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let cursor = self.cursor()?;
        let decisions = self.query(
            "WHERE state IN ('proposed', 'approved', 'active') ORDER BY id",
            &[],
        )?;
        tx.commit()?;
        Ok(StreamSnapshot { cursor, decisions })
    }

    /// Every decision whose last transition came after `cursor`, in its current state.
    pub fn changes_since(&self, cursor: i64) -> Result<StreamChanges, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let new_cursor = self.cursor()?;
        let changes = self.query("WHERE seq > ?1 ORDER BY seq", &[&cursor])?;
        tx.commit()?;
        Ok(StreamChanges {
            cursor: new_cursor,
            changes,
        })
    }

    /// The entries Spoor added to `backend` and has not removed.
    pub fn owned(&self, backend: &str) -> Result<BTreeSet<IpNet>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT target FROM responder_owned WHERE backend = ?1")?;
        let rows = stmt.query_map([backend], |r| r.get::<_, String>(0))?;
        let mut out = BTreeSet::new();
        for row in rows {
            let text = row?;
            out.insert(
                parse_target(&text).map_err(|message| LedgerError::Corrupt { id: 0, message })?,
            );
        }
        Ok(out)
    }

    /// Remember that Spoor added these to `backend`.
    pub fn mark_owned<'a>(
        &self,
        backend: &str,
        targets: impl IntoIterator<Item = &'a IpNet>,
        at: Micros,
    ) -> Result<(), LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = self.conn.prepare_cached(
                "INSERT OR IGNORE INTO responder_owned (backend, target, added_at) VALUES (?1, ?2, ?3)",
            )?;
            for t in targets {
                stmt.execute(params![backend, target_text(t), at.0])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forget entries Spoor removed from `backend` (or that someone else removed).
    pub fn unmark_owned<'a>(
        &self,
        backend: &str,
        targets: impl IntoIterator<Item = &'a IpNet>,
    ) -> Result<(), LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = self
                .conn
                .prepare_cached("DELETE FROM responder_owned WHERE backend = ?1 AND target = ?2")?;
            for t in targets {
                stmt.execute(params![backend, target_text(t)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        migrate(&c).unwrap();
        c
    }

    fn new(target: &str) -> NewDecision {
        NewDecision {
            target: parse_target(target).unwrap(),
            reason: Reason {
                rule: "malware".into(),
                events: vec![EventId(7)],
                note: None,
            },
            ttl_secs: 3600,
            dry_run: false,
        }
    }

    #[test]
    fn transitions_are_checked_and_audited() {
        let c = conn();
        let l = Ledger::new(&c);
        let d = l
            .propose(&new("203.0.113.5"), "policy", Micros(1_000_000))
            .unwrap();
        assert_eq!(d.state, DecisionState::Proposed);
        assert_eq!(d.expires, None);
        let err = l
            .transition(
                d.id,
                DecisionState::Active,
                "agent",
                Micros(2_000_000),
                None,
            )
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::IllegalTransition { .. }),
            "{err}"
        );
        let d = l
            .transition(
                d.id,
                DecisionState::Approved,
                "alice",
                Micros(2_000_000),
                Some("seen it"),
            )
            .unwrap();
        assert_eq!(d.expires, Some(Micros(2_000_000 + 3600 * 1_000_000)));
        let d = l
            .transition(
                d.id,
                DecisionState::Active,
                "agent",
                Micros(3_000_000),
                None,
            )
            .unwrap();
        assert_eq!(d.actor, "agent");
        let audit = l.audit(d.id).unwrap();
        let steps: Vec<_> = audit
            .iter()
            .map(|a| (a.from, a.to, a.actor.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                (None, DecisionState::Proposed, "policy"),
                (
                    Some(DecisionState::Proposed),
                    DecisionState::Approved,
                    "alice"
                ),
                (
                    Some(DecisionState::Approved),
                    DecisionState::Active,
                    "agent"
                ),
            ]
        );
        assert_eq!(audit[1].note.as_deref(), Some("seen it"));
        assert_eq!(d.reason.events, [EventId(7)]);
        // the audit log cannot be rewritten, whoever writes to the file
        let e = c
            .execute("UPDATE responder_audit SET actor = 'mallory'", [])
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        assert!(c.execute("DELETE FROM responder_audit", []).is_err());
    }

    #[test]
    fn expiry_and_stream() {
        let c = conn();
        let l = Ledger::new(&c);
        let a = l.propose(&new("203.0.113.5"), "policy", Micros(0)).unwrap();
        let b = l
            .propose(&new("2001:db8::/48"), "policy", Micros(0))
            .unwrap();
        l.transition(a.id, DecisionState::Approved, "policy", Micros(0), None)
            .unwrap();
        let snap = l.snapshot().unwrap();
        assert_eq!(snap.decisions.len(), 2);
        let cursor = snap.cursor;
        assert!(l.changes_since(cursor).unwrap().changes.is_empty());
        l.transition(b.id, DecisionState::Rejected, "bob", Micros(5), None)
            .unwrap();
        let expired = l.expire_due(Micros(3600 * 1_000_000)).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, a.id);
        let ch = l.changes_since(cursor).unwrap();
        let states: Vec<_> = ch.changes.iter().map(|d| (d.id, d.state)).collect();
        assert_eq!(
            states,
            [
                (b.id, DecisionState::Rejected),
                (a.id, DecisionState::Expired)
            ]
        );
        assert!(l.changes_since(ch.cursor).unwrap().changes.is_empty());
        assert!(l.snapshot().unwrap().decisions.is_empty());
        assert_eq!(l.repeat_count(&a.target, Micros(0)).unwrap(), 1);
        assert_eq!(l.repeat_count(&b.target, Micros(0)).unwrap(), 0);
    }

    #[test]
    fn migrations_run_once_and_refuse_a_newer_schema() {
        let c = conn();
        migrate(&c).unwrap();
        c.execute("INSERT INTO responder_migrations VALUES (99, 0)", [])
            .unwrap();
        assert!(matches!(
            migrate(&c),
            Err(LedgerError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn owned_entries_per_backend() {
        let c = conn();
        let l = Ledger::new(&c);
        let t = [
            parse_target("192.0.2.1").unwrap(),
            parse_target("2001:db8::/64").unwrap(),
        ];
        l.mark_owned("nft", &t, Micros(0)).unwrap();
        l.mark_owned("pf", &t[..1], Micros(0)).unwrap();
        assert_eq!(l.owned("nft").unwrap().len(), 2);
        l.unmark_owned("nft", &t[..1]).unwrap();
        assert_eq!(
            l.owned("nft").unwrap().into_iter().collect::<Vec<_>>(),
            [t[1]]
        );
        assert_eq!(l.owned("pf").unwrap().len(), 1);
    }
}
