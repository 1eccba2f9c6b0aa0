//! The sensor → server wire format: what `POST /api/v1/events` carries.
//!
//! A sensor sends its events in batches, in order, each with a snapshot of its own health.
//! The server answers with what it stored; because every [`Event`] has a unique id, a batch
//! sent twice (a retry after a lost answer, a spool replayed after a crash) is stored once.
//!
//! ```text
//! POST /api/v1/events
//! Authorization: Bearer <sensor token>
//! Content-Type: application/json
//!
//! {"status": {...SensorStatus...}, "events": [ {...Event...}, ... ]}
//!
//! 200 {"accepted": 120, "duplicates": 3}
//! ```

use serde::{Deserialize, Serialize};

use crate::Event;

/// Events a batch may carry at most; the server refuses bigger batches with 413.
pub const MAX_BATCH_EVENTS: usize = 5_000;

/// A sensor's health as it reports it with every batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorStatus {
    /// The sensor's configured name (must match the token's sensor on the server).
    pub name: String,
    /// Spoor version of the sensor.
    pub version: String,
    /// Seconds since the sensor started.
    pub uptime_secs: u64,
    /// Packets seen since start.
    pub packets: u64,
    /// Packets the kernel or libpcap dropped since start.
    pub drops: u64,
    /// Age of the loaded trail snapshot in seconds (None when no trails are loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trails_age_secs: Option<u64>,
    /// Events the shipper had to drop because its spool was full, since start.
    #[serde(default)]
    pub spool_dropped: u64,
}

/// One `POST /api/v1/events` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub status: SensorStatus,
    pub events: Vec<Event>,
}

/// The server's answer to a stored batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    /// Events stored by this request.
    pub accepted: u64,
    /// Events already stored before (same id): not stored again.
    pub duplicates: u64,
}
