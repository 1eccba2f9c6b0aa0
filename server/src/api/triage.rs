//! Team triage rules: false-positive suppressions and hidden trails. Reading needs a
//! viewer, changing an analyst; every change is in the audit log.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;

use super::query;
use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, json, json_status};
use crate::store::audit;
use crate::store::triage;
use crate::store::users::Role;

pub async fn list_suppressions(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    json(&state.store.read(triage::list_suppressions).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSuppression {
    trail: Option<String>,
    src: Option<IpAddr>,
    #[serde(default)]
    comment: String,
}

pub async fn add_suppression(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let b: NewSuppression = req.json()?;
    let user = a.user.name.clone();
    let id = state
        .store
        .write(move |tx| {
            let id = triage::add_suppression(tx, b.trail.as_deref(), b.src, &b.comment, &user)?;
            audit::record(
                tx,
                &user,
                "suppression.add",
                &serde_json::json!({"id": id, "trail": b.trail, "src": b.src, "comment": b.comment}),
            )?;
            Ok(id)
        })
        .await?;
    json_status(&serde_json::json!({"id": id}), StatusCode::CREATED)
}

pub async fn delete_suppression(state: &Arc<AppState>, req: &Req, id: &str) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("`{id}` is not a suppression id")))?;
    let user = a.user.name.clone();
    state
        .store
        .write(move |tx| {
            triage::delete_suppression(tx, id)?;
            audit::record(
                tx,
                &user,
                "suppression.delete",
                &serde_json::json!({"id": id}),
            )
        })
        .await?;
    json(&serde_json::json!({"deleted": id}))
}

pub async fn list_hidden(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    json(&state.store.read(triage::list_hidden).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hide {
    trail: String,
}

pub async fn hide(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let b: Hide = req.json()?;
    let user = a.user.name.clone();
    let trail = b.trail.clone();
    state
        .store
        .write(move |tx| {
            triage::hide_trail(tx, &trail, &user)?;
            audit::record(
                tx,
                &user,
                "trail.hide",
                &serde_json::json!({"trail": trail}),
            )
        })
        .await?;
    json_status(&serde_json::json!({"hidden": b.trail}), StatusCode::CREATED)
}

/// `DELETE /api/v1/hidden-trails?trail=...` (trails may hold `/`, so not in the path).
pub async fn unhide(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let m = query::params(req.params()?, &["trail"])?;
    let trail = query::one(&m, "trail")?
        .ok_or_else(|| ApiError::bad_request("bad_parameter", "give `trail=`"))?
        .to_string();
    let user = a.user.name.clone();
    let t = trail.clone();
    state
        .store
        .write(move |tx| {
            triage::unhide_trail(tx, &t)?;
            audit::record(tx, &user, "trail.unhide", &serde_json::json!({"trail": t}))
        })
        .await?;
    json(&serde_json::json!({"unhidden": trail}))
}
