//! `POST /api/v1/events`: a sensor's batch. Checks, in order: bearer token (401), body
//! size (413), JSON (400), shape and unknown fields (422), batch size (413), sensor name
//! against the token (403), value ranges (422); then pseudonymises if configured and
//! stores idempotently by event id. The answer comes after the commit.

use std::sync::Arc;

use spoor_core::wire::MAX_BATCH_EVENTS;
use spoor_core::{BatchAck, Event, EventBatch};
use warp::http::StatusCode;

use super::{Answer, ApiError, AppState, Req, json, json_error};
use crate::auth::{constant_time_eq, sha256};
use crate::metrics::{add, inc};
use crate::privacy::PeriodKey;
use crate::store::{Row, now_micros};

/// Longest trail, info or reference text accepted.
pub const MAX_TEXT: usize = 4096;
/// DNS answers per event at most.
pub const MAX_ANSWERS: usize = 64;
/// Earliest event time accepted: 2000-01-01 (µs). Earlier is a broken clock.
pub const MIN_TIME: i64 = 946_684_800_000_000;
/// How far in the future an event may be (sensor clock ahead).
pub const MAX_CLOCK_AHEAD: i64 = 86_400_000_000;

fn token_sensor<'a>(state: &'a AppState, req: &Req) -> Result<&'a str, ApiError> {
    let header = req.header("authorization").ok_or_else(|| {
        ApiError::unauthorized("missing `Authorization: Bearer <sensor token>` header")
            .with_header("www-authenticate", "Bearer")
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <sensor token>`")
                .with_header("www-authenticate", "Bearer")
        })?
        .trim();
    let hash = sha256(token.as_bytes());
    let mut found = None;
    for (h, name) in &state.sensor_tokens {
        if constant_time_eq(h, &hash) {
            found = Some(name.as_str());
        }
    }
    found.ok_or_else(|| {
        ApiError::unauthorized(
            "unknown sensor token (see [[server.sensor]] in the server's config)",
        )
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
    })
}

fn check_event(i: usize, e: &Event, now: i64) -> Result<(), ApiError> {
    let bad = |field: &str, msg: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            format!("events[{i}].{field}: {msg}"),
        )
    };
    if e.count == 0 {
        return Err(bad("count", "must be at least 1".into()));
    }
    for (f, t) in [
        ("time", e.time.0),
        ("first_seen", e.first_seen.0),
        ("last_seen", e.last_seen.0),
    ] {
        if t < MIN_TIME || t > now + MAX_CLOCK_AHEAD {
            return Err(bad(
                f,
                format!(
                    "{t} µs is not a plausible time (before 2000 or more than a day ahead of the server's clock)"
                ),
            ));
        }
    }
    if e.last_seen < e.first_seen {
        return Err(bad("last_seen", "is before first_seen".into()));
    }
    if e.trail.is_empty() {
        return Err(bad("trail", "must not be empty".into()));
    }
    for (f, t) in [
        ("trail", &e.trail),
        ("info", &e.info),
        ("reference", &e.reference),
    ] {
        if t.len() > MAX_TEXT {
            return Err(bad(f, format!("longer than {MAX_TEXT} bytes")));
        }
    }
    if e.answers.len() > MAX_ANSWERS {
        return Err(bad("answers", format!("more than {MAX_ANSWERS}")));
    }
    if e.src_port == Some(0) || e.dst_port == Some(0) {
        return Err(bad(
            "src_port",
            "port 0 is not a port (leave it out)".into(),
        ));
    }
    Ok(())
}

pub(crate) fn rows(events: Vec<Event>, key: Option<&PeriodKey>) -> Vec<Row> {
    events
        .into_iter()
        .map(|mut e| {
            if let Some(k) = key {
                k.apply(&mut e);
            }
            Row::new(e)
        })
        .collect()
}

pub async fn post(state: &Arc<AppState>, req: Req) -> Answer {
    let m = &state.metrics;
    let sensor = match token_sensor(state, &req) {
        Ok(s) => s.to_string(),
        Err(e) => {
            inc(&m.ingest_rejected_unauthorized);
            return Err(e);
        }
    };
    if let (Some(r), Some(addr)) = (&state.responders, req.client) {
        r.note_sensor(&sensor, addr);
    }
    let key = match &state.pseudonymiser {
        Some(p) => Some(p.key(&state.store).await?),
        None => None,
    };
    let body = req.body;
    let prepared = tokio::task::spawn_blocking(move || {
        let batch: EventBatch = serde_json::from_slice(&body).map_err(json_error)?;
        if batch.events.len() > MAX_BATCH_EVENTS {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                format!(
                    "{} events in one batch; at most {MAX_BATCH_EVENTS}",
                    batch.events.len()
                ),
            ));
        }
        if batch.status.name != sensor {
            return Err(ApiError::forbidden(
                "sensor_mismatch",
                format!(
                    "the token is sensor `{sensor}`'s but the batch says it comes from `{}`",
                    batch.status.name
                ),
            ));
        }
        let now = now_micros();
        for (i, e) in batch.events.iter().enumerate() {
            if e.sensor != sensor {
                return Err(ApiError::forbidden(
                    "sensor_mismatch",
                    format!(
                        "events[{i}].sensor is `{}` but the token is sensor `{sensor}`'s",
                        e.sensor
                    ),
                ));
            }
            check_event(i, e, now)?;
        }
        Ok((batch.status, rows(batch.events, key.as_ref())))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let (status, rows) = match prepared {
        Ok(p) => p,
        Err(e) => {
            match e.status {
                StatusCode::FORBIDDEN => inc(&m.ingest_rejected_forbidden),
                StatusCode::PAYLOAD_TOO_LARGE => inc(&m.ingest_rejected_too_large),
                _ => inc(&m.ingest_rejected_bad_request),
            }
            return Err(e);
        }
    };
    let ack: BatchAck = match state.store.ingest(status, rows).await {
        Ok(a) => a,
        Err(e) => {
            inc(&m.ingest_failed);
            return Err(e.into());
        }
    };
    inc(&m.ingest_batches);
    add(&m.ingest_accepted, ack.accepted);
    add(&m.ingest_duplicates, ack.duplicates);
    json(&ack)
}
