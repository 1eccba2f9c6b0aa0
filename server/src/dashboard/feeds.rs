//! `GET /api/v1/feeds`: every configured feed with what the updater last recorded (trail
//! count, last good copy, last attempt, last error). Read from the feeds dir only (the
//! state file `spoor feeds update` writes); never touches the network. URLs and errors
//! are redacted like `spoor feeds list` does, since a feed URL may carry an API key.

use std::sync::Arc;

use serde::Serialize;
use spoor_feeds::fetch::{FeedStatus, feed_statuses, redact_url, redact_urls};
use warp::http::StatusCode;

use crate::api::session::authenticate;
use crate::api::{Answer, ApiError, AppState, Req, json};
use crate::store::users::Role;

/// One feed as the dashboard shows it (the shape of `spoor feeds list --format json`).
#[derive(Debug, Serialize)]
struct FeedView {
    name: String,
    enabled: bool,
    format: &'static str,
    url: String,
    description: String,
    /// Unix seconds of the last good copy (written or confirmed unchanged).
    updated: Option<u64>,
    /// Unix seconds of the last attempt, whatever its result.
    checked: Option<u64>,
    trails: Option<u64>,
    bytes: Option<u64>,
    has_copy: bool,
    last_error: Option<String>,
    failures: u32,
}

impl From<FeedStatus> for FeedView {
    fn from(s: FeedStatus) -> Self {
        FeedView {
            url: redact_url(&s.url),
            has_copy: s.copy.is_some(),
            updated: s.state.updated.map(|t| t.0),
            checked: s.state.checked.map(|t| t.0),
            trails: s.state.trails,
            bytes: s.state.bytes,
            last_error: s.state.last_error.as_deref().map(redact_urls),
            failures: s.state.failures,
            name: s.name,
            enabled: s.enabled,
            format: s.format,
            description: s.description,
        }
    }
}

#[derive(Debug, Serialize)]
struct FeedsAnswer {
    /// The feeds dir read (absolute), for the admin who wonders where this comes from.
    dir: String,
    feeds: Vec<FeedView>,
}

pub async fn list(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    let Some(config) = state.config.feeds.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_feeds",
            "this server was started without a feeds configuration (run it with `spoor server` or `spoor up`)",
        ));
    };
    let dir = config.dir.display().to_string();
    let statuses = tokio::task::spawn_blocking(move || feed_statuses(&config))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "feed_state",
                format!("cannot read the feeds' state: {e}"),
            )
        })?;
    json(&FeedsAnswer {
        dir,
        feeds: statuses.into_iter().map(FeedView::from).collect(),
    })
}
