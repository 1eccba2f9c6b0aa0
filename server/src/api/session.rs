//! Login, logout, the current session, and [`authenticate`]: the check every dashboard
//! endpoint starts with (session cookie → user; CSRF token on state-changing requests;
//! role).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};
use warp::reply::Reply;

use super::{Answer, ApiError, AppState, Req, json};
use crate::auth::session::{CSRF_HEADER, clear_cookie, cookie, token_from_cookie};
use crate::auth::{constant_time_eq, password, random_token, sha256};
use crate::metrics::inc;
use crate::store::search::Visibility;
use crate::store::users::{self, Role, User};
use crate::store::{now_micros, triage};

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Authed {
    pub user: User,
    pub csrf: String,
}

impl Authed {
    /// What this user may see: their scope and the team's triage rules.
    pub async fn visibility(&self, state: &AppState) -> Result<Visibility, ApiError> {
        let rules = state.store.read(triage::load_rules).await?;
        Ok(Visibility {
            scope: self.user.scope.clone(),
            rules,
        })
    }
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session's user, if they have at least `role`; state-changing requests must carry
/// the session's CSRF token.
pub async fn authenticate(state: &AppState, req: &Req, role: Role) -> Result<Authed, ApiError> {
    let token = req
        .header("cookie")
        .and_then(token_from_cookie)
        .ok_or_else(|| ApiError::unauthorized("not signed in: POST /api/v1/login first"))?;
    let hash = sha256(token.as_bytes());
    let session = state
        .store
        .read(move |c| users::session(c, &hash))
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("the session has expired or was ended; sign in again")
        })?;
    if changes_state(&req.method) {
        let sent = req.header(CSRF_HEADER).unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return Err(ApiError::forbidden(
                "csrf",
                "missing or wrong X-CSRF-Token header (take it from GET /api/v1/session)",
            ));
        }
    }
    if session.user.role < role {
        return Err(ApiError::forbidden(
            "role",
            format!(
                "this needs the {} role; {} is {}",
                role.as_str(),
                session.user.name,
                session.user.role.as_str()
            ),
        ));
    }
    Ok(Authed {
        user: session.user,
        csrf: session.csrf,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct SessionInfo<'a> {
    user: &'a str,
    role: Role,
    scope: &'a [ipnet::IpNet],
    csrf: &'a str,
}

pub async fn login(state: &Arc<AppState>, req: &Req) -> Answer {
    let body: Login = req.json()?;
    if let Some(wait) = state.throttle.check(req.client, &body.user) {
        inc(&state.metrics.logins_throttled);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs() + 1
            ),
        )
        .with_header("retry-after", (wait.as_secs() + 1).to_string()));
    }
    let name = body.user.clone();
    let found = state
        .store
        .read(move |c| users::user_with_hash(c, &name))
        .await?;
    let pw = body.password.clone();
    // Verify on the blocking pool: argon2 takes tens of milliseconds on purpose. An
    // unknown user costs the same as a known one.
    let verified = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) => password::verify(&pw, &hash).then_some(user),
        None => {
            password::verify(&pw, &DUMMY_HASH);
            None
        }
    })
    .await
    .ok()
    .flatten();
    let Some(user) = verified else {
        inc(&state.metrics.logins_failed);
        state.throttle.failed(req.client, &body.user);
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    state.throttle.succeeded(req.client, &body.user);
    inc(&state.metrics.logins);
    let token = random_token();
    let csrf = random_token();
    let hash = sha256(token.as_bytes());
    let lifetime = state.config.session_lifetime;
    let expires = now_micros() + lifetime.as_micros() as i64;
    let (name, c) = (user.name.clone(), csrf.clone());
    state
        .store
        .write(move |tx| users::create_session(tx, &hash, &name, &c, expires))
        .await?;
    let info = SessionInfo {
        user: &user.name,
        role: user.role,
        scope: &user.scope,
        csrf: &csrf,
    };
    let mut r = warp::reply::json(&info).into_response();
    r.headers_mut().insert(
        "set-cookie",
        cookie(&token, lifetime, state.secure_cookies)
            .parse()
            .expect("valid header"),
    );
    Ok(r)
}

/// A hash of a random password, verified when the user does not exist (same cost).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash(&crate::auth::random_token()));

pub async fn logout(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    if let Some(token) = req.header("cookie").and_then(token_from_cookie) {
        let hash = sha256(token.as_bytes());
        state
            .store
            .write(move |tx| users::delete_session(tx, &hash))
            .await?;
    }
    let mut r = warp::reply::json(&serde_json::json!({"signed_out": true})).into_response();
    r.headers_mut().insert(
        "set-cookie",
        clear_cookie(state.secure_cookies)
            .parse()
            .expect("valid header"),
    );
    Ok(r)
}

pub async fn get(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Viewer).await?;
    json(&SessionInfo {
        user: &a.user.name,
        role: a.user.role,
        scope: &a.user.scope,
        csrf: &a.csrf,
    })
}
