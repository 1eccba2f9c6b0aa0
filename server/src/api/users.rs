//! User management and the audit log (admin only). Passwords are hashed here, never
//! stored or logged in clear.

use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;
use warp::http::StatusCode;

use super::query;
use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, json, json_status};
use crate::auth::password;
use crate::store::users::{self, Role};
use crate::store::{StoreError, audit};

pub async fn list(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Admin).await?;
    json(&state.store.read(users::list_users).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: Option<String>,
    password: Option<String>,
    role: Option<Role>,
    scope: Option<Vec<IpNet>>,
}

async fn hash(pw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(pw) = pw else { return Ok(None) };
    password::check_strength(&pw)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", m))?;
    tokio::task::spawn_blocking(move || Some(password::hash(&pw)))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

pub async fn create(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Admin).await?;
    let b: UserBody = req.json()?;
    let name = b
        .name
        .ok_or_else(|| ApiError::bad_request("bad_body", "give the new user's `name`"))?;
    if b.password.is_none() {
        return Err(ApiError::bad_request(
            "bad_body",
            "give the new user's `password`",
        ));
    }
    let hash = hash(b.password).await?;
    let admin = a.user.name.clone();
    let n = name.clone();
    state
        .store
        .write(move |tx| {
            if users::user_with_hash(tx, &n)?.is_some() {
                return Err(StoreError::Invalid(format!(
                    "user `{n}` exists; use PUT /api/v1/users/{n}"
                )));
            }
            users::upsert_user(tx, &n, hash.as_deref(), b.role, b.scope.as_deref())?;
            audit::record(
                tx,
                &admin,
                "user.create",
                &serde_json::json!({"user": n, "role": b.role, "scope": b.scope}),
            )
        })
        .await?;
    json_status(&serde_json::json!({"created": name}), StatusCode::CREATED)
}

pub async fn update(state: &Arc<AppState>, req: &Req, name: &str) -> Answer {
    let a = authenticate(state, req, Role::Admin).await?;
    let b: UserBody = req.json()?;
    if b.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request("bad_body", "users cannot be renamed"));
    }
    let hash = hash(b.password).await?;
    let admin = a.user.name.clone();
    let n = name.to_string();
    state
        .store
        .write(move |tx| {
            if users::user_with_hash(tx, &n)?.is_none() {
                return Err(StoreError::NotFound(format!("user `{n}`")));
            }
            users::upsert_user(tx, &n, hash.as_deref(), b.role, b.scope.as_deref())?;
            if users::admins(tx)? == 0 {
                return Err(StoreError::Invalid("the last admin cannot lose the admin role".into()));
            }
            audit::record(
                tx,
                &admin,
                "user.update",
                &serde_json::json!({"user": n, "role": b.role, "scope": b.scope, "password_changed": hash.is_some()}),
            )
        })
        .await?;
    json(&serde_json::json!({"updated": name}))
}

pub async fn delete(state: &Arc<AppState>, req: &Req, name: &str) -> Answer {
    let a = authenticate(state, req, Role::Admin).await?;
    let admin = a.user.name.clone();
    let n = name.to_string();
    state
        .store
        .write(move |tx| {
            users::delete_user(tx, &n)?;
            if users::admins(tx)? == 0 {
                return Err(StoreError::Invalid(
                    "the last admin cannot be deleted".into(),
                ));
            }
            audit::record(tx, &admin, "user.delete", &serde_json::json!({"user": n}))
        })
        .await?;
    json(&serde_json::json!({"deleted": name}))
}

pub async fn audit(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Admin).await?;
    let m = query::params(req.params()?, &["before", "limit"])?;
    let before = query::number(&m, "before")?;
    let limit = query::number(&m, "limit")?
        .unwrap_or(100)
        .clamp(1, audit::MAX_AUDIT_PAGE as i64);
    json(
        &state
            .store
            .read(move |c| audit::list(c, before, limit as usize))
            .await?,
    )
}
