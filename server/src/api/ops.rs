//! Operations endpoints: Prometheus `/metrics` and Maltrail-compatible `/fail2ban`
//! (both only for allowlisted client addresses), and the sensors' status.

use std::sync::Arc;

use rusqlite::params;
use warp::reply::Reply;

use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, allowed, json};
use crate::store::codec::{ip_from_bytes, severity_code};
use crate::store::retention::used_bytes;
use crate::store::users::Role;
use crate::store::{now_micros, sensors};

/// Addresses `/fail2ban` lists at most.
pub const MAX_FAIL2BAN: usize = 100_000;

fn text(body: String) -> Answer {
    let mut r = body.into_response();
    r.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    Ok(r)
}

pub async fn metrics(state: &Arc<AppState>, req: &Req) -> Answer {
    if !allowed(req.client, &state.config.metrics_allow) {
        return Err(ApiError::forbidden(
            "not_allowed",
            "this address may not read /metrics (see [server] metrics_allow)",
        ));
    }
    let db = state.store.read(used_bytes).await.ok();
    text(state.metrics.render(db))
}

/// One address per line: the offenders (else the sources) of events newer than the
/// window, at least the configured severity.
pub async fn fail2ban(state: &Arc<AppState>, req: &Req) -> Answer {
    let f = &state.config.fail2ban;
    if !allowed(req.client, &f.allow) {
        return Err(ApiError::forbidden(
            "not_allowed",
            "this address may not read /fail2ban (see [server.fail2ban] allow)",
        ));
    }
    let since = now_micros() - f.window.as_micros() as i64;
    let sev = severity_code(f.min_severity);
    let list = state
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT COALESCE(offender, src) FROM events
                 WHERE time >= ?1 AND severity >= ?2 LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![since, sev, MAX_FAIL2BAN as i64], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
            let mut ips = Vec::new();
            for r in rows {
                if let Some(ip) = ip_from_bytes(&r?) {
                    ips.push(ip);
                }
            }
            ips.sort();
            Ok(ips)
        })
        .await?;
    let mut out = String::new();
    for ip in list {
        out.push_str(&ip.to_string());
        out.push('\n');
    }
    text(out)
}

pub async fn sensors(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    json(&state.store.read(sensors::list).await?)
}
