//! Sensors as they last reported (one row each, updated with every batch).

use rusqlite::Connection;
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensorRow {
    pub name: String,
    /// µs, wall clock of the last batch.
    pub last_seen: i64,
    pub version: String,
    pub uptime_secs: i64,
    pub packets: i64,
    pub drops: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trails_age_secs: Option<i64>,
    pub spool_dropped: i64,
    /// Events stored from this sensor.
    pub events: i64,
}

pub fn list(conn: &Connection) -> Result<Vec<SensorRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, last_seen, version, uptime_secs, packets, drops, trails_age_secs, spool_dropped, events
         FROM sensors ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SensorRow {
            name: r.get(0)?,
            last_seen: r.get(1)?,
            version: r.get(2)?,
            uptime_secs: r.get(3)?,
            packets: r.get(4)?,
            drops: r.get(5)?,
            trails_age_secs: r.get(6)?,
            spool_dropped: r.get(7)?,
            events: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
