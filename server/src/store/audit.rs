//! The audit log: who exported what (with the filter), user and rule changes. Append-only
//! except for retention.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{StoreError, now_micros};

/// Records one listing returns at most.
pub const MAX_AUDIT_PAGE: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub time: i64,
    pub user: String,
    pub action: String,
    pub detail: serde_json::Value,
}

pub fn record(
    conn: &Connection,
    user: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (time, user, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_micros(), user, action, detail.to_string()],
    )?;
    Ok(())
}

/// Newest first; `before`: only records with a smaller id (pagination).
pub fn list(
    conn: &Connection,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, time, user, action, detail FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![before.unwrap_or(i64::MAX), limit.min(MAX_AUDIT_PAGE) as i64],
        |r| {
            let detail: String = r.get(4)?;
            Ok(AuditRecord {
                id: r.get(0)?,
                time: r.get(1)?,
                user: r.get(2)?,
                action: r.get(3)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
