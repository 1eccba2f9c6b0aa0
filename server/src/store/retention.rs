//! Retention: events (with their rollups and triage) older than the configured age, the
//! oldest events while the database is over its size limit, and old audit records.
//!
//! Work is done in whole hours (so rollups and events stay consistent) and in chunks of
//! [`CHUNK`] rows per transaction, so that ingest is held up for milliseconds, not for
//! the minutes a large delete takes.

use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, text};

/// Events deleted per transaction at most.
pub const CHUNK: i64 = 20_000;
const HOUR: i64 = 3_600_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// µs.
    pub max_event_age: i64,
    /// µs.
    pub max_audit_age: i64,
    /// Bytes; 0: no limit.
    pub max_size: u64,
}

/// What one step did; call again while `more` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    pub events_deleted: usize,
    pub more: bool,
}

/// Bytes the database holds in used pages (free pages are reused, not returned to the
/// file system).
pub fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// One retention step at wall-clock time `now` (µs).
pub fn step(conn: &Connection, policy: &Policy, now: i64) -> Result<Step, StoreError> {
    let mut cutoff = (now - policy.max_event_age).div_euclid(HOUR) * HOUR;
    let over_size = policy.max_size > 0 && used_bytes(conn)? > policy.max_size;
    if over_size {
        let oldest: Option<i64> = conn
            .query_row("SELECT min(time) FROM events", [], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(oldest) = oldest {
            cutoff = cutoff.max((oldest.div_euclid(HOUR) + 1) * HOUR);
        }
    }
    conn.execute(
        "DELETE FROM triage WHERE event_id IN (SELECT id FROM events WHERE time < ?1 LIMIT ?2)",
        params![cutoff, CHUNK],
    )?;
    conn.execute(
        "DELETE FROM notes WHERE event_id IN (SELECT id FROM events WHERE time < ?1 LIMIT ?2)",
        params![cutoff, CHUNK],
    )?;
    let victims = "SELECT rowid FROM events WHERE time < ?1 LIMIT ?2";
    text::forget(conn, victims, params![cutoff, CHUNK])?;
    let deleted = conn.execute(
        &format!("DELETE FROM events WHERE rowid IN ({victims})"),
        params![cutoff, CHUNK],
    )?;
    text::lower_mark(conn)?;
    let more = deleted as i64 == CHUNK || (over_size && deleted > 0);
    if !more {
        conn.execute(
            "DELETE FROM rollup_minute WHERE minute < ?1",
            [cutoff / 60_000_000],
        )?;
        for t in ["rollup_hour_trail", "rollup_hour_src", "rollup_hour_dst"] {
            conn.execute(&format!("DELETE FROM {t} WHERE hour < ?1"), [cutoff / HOUR])?;
        }
        conn.execute(
            "DELETE FROM audit WHERE time < ?1",
            [now - policy.max_audit_age],
        )?;
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    }
    Ok(Step {
        events_deleted: deleted,
        more,
    })
}
