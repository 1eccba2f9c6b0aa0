//! Triage shared by the team: false-positive suppression rules (scope: a trail, a trail
//! from one source, or a source), hidden trails, and per-event status and notes. Rules are
//! few and read on every query ([`load_rules`]); they hide events from summaries and
//! searches without deleting anything.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::codec::{ip_bytes, ip_from_bytes};
use super::{StoreError, now_micros};

/// Rules a team may keep at most (each one is a term of every query).
pub const MAX_RULES: usize = 2000;
/// Longest note.
pub const MAX_NOTE_LEN: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriageStatus {
    New,
    Investigating,
    Resolved,
}

impl TriageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TriageStatus::New => "new",
            TriageStatus::Investigating => "investigating",
            TriageStatus::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<TriageStatus> {
        match s {
            "new" => Some(TriageStatus::New),
            "investigating" => Some(TriageStatus::Investigating),
            "resolved" => Some(TriageStatus::Resolved),
            _ => None,
        }
    }
}

/// A false-positive rule: events matching every given part are suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    pub comment: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HiddenTrail {
    pub trail: String,
    pub created_by: String,
    pub created_at: i64,
}

/// All rules, as every query applies them.
#[derive(Debug, Clone, Default)]
pub struct TriageRules {
    pub suppressions: Vec<Suppression>,
    pub hidden_trails: Vec<String>,
}

impl TriageRules {
    pub fn is_empty(&self) -> bool {
        self.suppressions.is_empty() && self.hidden_trails.is_empty()
    }
}

pub fn list_suppressions(conn: &Connection) -> Result<Vec<Suppression>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, trail, src, comment, created_by, created_at FROM suppressions ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let src: Option<Vec<u8>> = r.get(2)?;
        Ok(Suppression {
            id: r.get(0)?,
            trail: r.get(1)?,
            src: src.as_deref().and_then(ip_from_bytes),
            comment: r.get(3)?,
            created_by: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn list_hidden(conn: &Connection) -> Result<Vec<HiddenTrail>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT trail, created_by, created_at FROM hidden_trails ORDER BY trail")?;
    let rows = stmt.query_map([], |r| {
        Ok(HiddenTrail {
            trail: r.get(0)?,
            created_by: r.get(1)?,
            created_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn load_rules(conn: &Connection) -> Result<TriageRules, StoreError> {
    Ok(TriageRules {
        suppressions: list_suppressions(conn)?,
        hidden_trails: list_hidden(conn)?.into_iter().map(|h| h.trail).collect(),
    })
}

fn rule_count(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM hidden_trails)",
        [],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

pub fn add_suppression(
    conn: &Connection,
    trail: Option<&str>,
    src: Option<IpAddr>,
    comment: &str,
    user: &str,
) -> Result<i64, StoreError> {
    if trail.is_none() && src.is_none() {
        return Err(StoreError::Invalid(
            "a suppression needs a `trail`, a `src`, or both".into(),
        ));
    }
    if rule_count(conn)? >= MAX_RULES {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_RULES} suppressions and hidden trails; delete some first"
        )));
    }
    conn.execute(
        "INSERT INTO suppressions (trail, src, comment, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![trail, src.map(|s| ip_bytes(s).to_vec()), comment, user, now_micros()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn delete_suppression(conn: &Connection, id: i64) -> Result<(), StoreError> {
    match conn.execute("DELETE FROM suppressions WHERE id = ?1", [id])? {
        0 => Err(StoreError::NotFound(format!("suppression {id}"))),
        _ => Ok(()),
    }
}

pub fn hide_trail(conn: &Connection, trail: &str, user: &str) -> Result<(), StoreError> {
    if trail.is_empty() {
        return Err(StoreError::Invalid("`trail` must not be empty".into()));
    }
    if rule_count(conn)? >= MAX_RULES {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_RULES} suppressions and hidden trails; delete some first"
        )));
    }
    conn.execute(
        "INSERT OR IGNORE INTO hidden_trails (trail, created_by, created_at) VALUES (?1, ?2, ?3)",
        params![trail, user, now_micros()],
    )?;
    Ok(())
}

pub fn unhide_trail(conn: &Connection, trail: &str) -> Result<(), StoreError> {
    match conn.execute("DELETE FROM hidden_trails WHERE trail = ?1", [trail])? {
        0 => Err(StoreError::NotFound(format!("hidden trail `{trail}`"))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub author: String,
    pub time: i64,
    pub text: String,
}

/// An event's triage: status (new when never set) and notes, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct EventTriage {
    pub status: TriageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    pub notes: Vec<Note>,
}

pub fn event_triage(conn: &Connection, id: [u8; 16]) -> Result<EventTriage, StoreError> {
    let row: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT status, updated_by, updated_at FROM triage WHERE event_id = ?1",
            [&id[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let mut stmt = conn
        .prepare_cached("SELECT author, time, text FROM notes WHERE event_id = ?1 ORDER BY id")?;
    let notes = stmt
        .query_map([&id[..]], |r| {
            Ok(Note {
                author: r.get(0)?,
                time: r.get(1)?,
                text: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(match row {
        Some((status, by, at)) => EventTriage {
            status: TriageStatus::parse(&status).unwrap_or(TriageStatus::New),
            updated_by: Some(by),
            updated_at: Some(at),
            notes,
        },
        None => EventTriage {
            status: TriageStatus::New,
            updated_by: None,
            updated_at: None,
            notes,
        },
    })
}

/// Set the status and/or append a note. The event must exist.
pub fn update_event(
    conn: &Connection,
    id: [u8; 16],
    status: Option<TriageStatus>,
    note: Option<&str>,
    user: &str,
) -> Result<(), StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM events WHERE id = ?1)",
        [&id[..]],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound("event".into()));
    }
    let now = now_micros();
    if let Some(s) = status {
        conn.execute(
            "INSERT INTO triage (event_id, status, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(event_id) DO UPDATE SET status = excluded.status,
               updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            params![&id[..], s.as_str(), user, now],
        )?;
    }
    if let Some(text) = note {
        if text.len() > MAX_NOTE_LEN {
            return Err(StoreError::Invalid(format!(
                "a note may have at most {MAX_NOTE_LEN} bytes"
            )));
        }
        conn.execute(
            "INSERT INTO notes (event_id, author, time, text) VALUES (?1, ?2, ?3, ?4)",
            params![&id[..], user, now, text],
        )?;
    }
    Ok(())
}
