//! The agents' endpoints: the decision stream and the agents' reports.
//!
//! - `GET /api/v1/agent/decisions`: the snapshot (every decision that is not final, and
//!   the cursor); with `cursor=N` the decisions changed after N, waiting up to `wait`
//!   seconds (capped at [`MAX_WAIT_SECS`]) for one. A cursor ahead of the ledger (the
//!   database was restored from a backup) gets a snapshot.
//! - `POST /api/v1/agent/report`: approved decisions the agent now holds become active,
//!   those its guard refused for good are revoked with the reason (actor `agent:NAME`),
//!   and the backend's status is recorded.
//!
//! Both take an agent token (`[[server.agent]]`); a sensor's token gets 403, none or an
//! unknown one 401. Without `[respond]` they answer 409.

use std::sync::Arc;

use spoor_responders::ledger::{self, LedgerError};
use spoor_responders::stream::{AgentReport, DecisionStream, MAX_WAIT_SECS, ReportAck};
use spoor_responders::{DecisionId, DecisionState};
use warp::http::StatusCode;

use super::{Answer, ApiError, AppState, Req, json};
use crate::auth::{constant_time_eq, sha256};
use crate::respond::{BackendStatus, Responders};

/// Longest backend or object name accepted in a report.
pub const MAX_NAME_LEN: usize = 200;
/// A refusal's reason is cut to this many bytes before it goes into the audit log.
pub const MAX_REASON_LEN: usize = 1000;
/// Longest error text kept from a report.
pub const MAX_ERROR_LEN: usize = 2000;

/// The agent's name for the request's bearer token.
fn agent_name(state: &AppState, req: &Req) -> Result<String, ApiError> {
    let header = req.header("authorization").ok_or_else(|| {
        ApiError::unauthorized("missing `Authorization: Bearer <agent token>` header")
            .with_header("www-authenticate", "Bearer")
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <agent token>`")
                .with_header("www-authenticate", "Bearer")
        })?
        .trim();
    let hash = sha256(token.as_bytes());
    let mut agent = None;
    for (h, name) in &state.agent_tokens {
        if constant_time_eq(h, &hash) {
            agent = Some(name.clone());
        }
    }
    if let Some(name) = agent {
        return Ok(name);
    }
    let mut sensor = false;
    for (h, _) in &state.sensor_tokens {
        sensor |= constant_time_eq(h, &hash);
    }
    if sensor {
        return Err(ApiError::forbidden(
            "not_an_agent_token",
            "this is a sensor's token; the decision stream needs an agent token \
             ([[server.agent]] in the server's config)",
        ));
    }
    Err(ApiError::unauthorized(
        "unknown agent token (see [[server.agent]] in the server's config and [agent] token_file on the agent)",
    )
    .with_header("www-authenticate", "Bearer error=\"invalid_token\""))
}

fn responders(state: &AppState) -> Result<&Arc<Responders>, ApiError> {
    state.responders.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "responders_off",
            "responders are not configured on this server (no [respond] section)",
        )
    })
}

fn ledger_error(e: LedgerError) -> ApiError {
    tracing::error!("decision ledger: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ledger_failed",
        format!("the decision ledger failed: {e}"),
    )
}

/// `cursor` and `wait` from the query.
fn stream_params(req: &Req) -> Result<(Option<i64>, u64), ApiError> {
    let mut cursor = None;
    let mut wait = 0u64;
    for (k, v) in req.params()? {
        match k.as_str() {
            "cursor" => {
                cursor = Some(v.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_cursor",
                        format!(
                            "cursor `{v}` is not a whole number ≥ 0 (use the cursor of the last answer)"
                        ),
                    )
                })?);
            }
            "wait" => {
                wait = v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "bad_wait",
                        format!("wait `{v}` is not a whole number of seconds ≥ 0"),
                    )
                })?;
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown parameter `{other}` (expected cursor, wait)"),
                ));
            }
        }
    }
    Ok((cursor, wait.min(MAX_WAIT_SECS)))
}

/// `GET /api/v1/agent/decisions[?cursor=N&wait=S]`
pub async fn decisions(state: &Arc<AppState>, req: &Req) -> Answer {
    agent_name(state, req)?;
    let r = responders(state)?;
    let (cursor, wait) = stream_params(req)?;
    // Subscribed before the first read: a change between the read and the wait wakes it.
    let mut changes = r.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        let answer: DecisionStream = r
            .ledger(move |l| match cursor {
                None => Ok(l.snapshot()?.into()),
                Some(c) => {
                    let ch = l.changes_since(c)?;
                    if c > ch.cursor {
                        Ok(l.snapshot()?.into())
                    } else {
                        Ok(ch.into())
                    }
                }
            })
            .await
            .map_err(ledger_error)?;
        if answer.snapshot || !answer.decisions.is_empty() {
            return json(&answer);
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            // timed out, or the responders are gone (shutting down): nothing changed
            Ok(Err(_)) | Err(_) => return json(&answer),
        }
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// `POST /api/v1/agent/report`
pub async fn report(state: &Arc<AppState>, req: &Req) -> Answer {
    let name = agent_name(state, req)?;
    let r = responders(state)?;
    let report: AgentReport = req.json()?;
    for (field, value) in [("backend", &report.backend), ("object", &report.object)] {
        if value.len() > MAX_NAME_LEN {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("{field} is longer than {MAX_NAME_LEN} bytes"),
            ));
        }
    }
    if report.backend.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "backend must name the agent's backend (nftables, pf, opnsense, dry-run)",
        ));
    }
    let actor = format!("agent:{name}");
    let now = ledger::now();
    let activated = report.activated.clone();
    let refused: Vec<(DecisionId, String)> = report
        .refused
        .iter()
        .map(|f| (f.id, cut(f.reason.clone(), MAX_REASON_LEN)))
        .collect();
    let ack = r
        .ledger(move |l| {
            let mut ack = ReportAck::default();
            // A decision may have moved on since the agent saw it (revoked, expired):
            // only the transitions still legal are made.
            let skip = |e: &LedgerError| {
                matches!(
                    e,
                    LedgerError::NoSuchDecision(_) | LedgerError::IllegalTransition { .. }
                )
            };
            for id in activated {
                let d = match l.get(id) {
                    Ok(d) => d,
                    Err(e) if skip(&e) => continue,
                    Err(e) => return Err(e),
                };
                if d.state != DecisionState::Approved || !d.wants_block(now) {
                    continue;
                }
                match l.transition(id, DecisionState::Active, &actor, now, None) {
                    Ok(_) => ack.activated.push(id),
                    Err(e) if skip(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            for (id, reason) in refused {
                let d = match l.get(id) {
                    Ok(d) => d,
                    Err(e) if skip(&e) => continue,
                    Err(e) => return Err(e),
                };
                if !d.state.wants_block() {
                    continue;
                }
                match l.transition(id, DecisionState::Revoked, &actor, now, Some(&reason)) {
                    Ok(_) => ack.revoked.push(id),
                    Err(e) if skip(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(ack)
        })
        .await
        .map_err(ledger_error)?;
    if !ack.activated.is_empty() || !ack.revoked.is_empty() {
        r.changed();
    }
    if let Some(e) = &report.error {
        tracing::warn!(agent = %name, "the agent's backend failed: {e}");
    }
    r.report_status(BackendStatus {
        reporter: name,
        backend: report.backend,
        object: report.object,
        entries: report.entries,
        capacity: report.capacity,
        last_sync: now,
        last_error: report.error.map(|e| cut(e, MAX_ERROR_LEN)),
    });
    json(&ack)
}
