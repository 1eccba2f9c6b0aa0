//! `GET /api/v1/summary`: counts per bucket and top lists for a time range.

use std::sync::Arc;

use super::query;
use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, json};
use crate::store::now_micros;
use crate::store::summary::{self, SummaryQuery};
use crate::store::users::Role;

/// Default range: the last day.
const DEFAULT_RANGE: i64 = 86_400_000_000;
/// Default length of the top lists.
const DEFAULT_TOP: i64 = 10;

pub async fn get(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Viewer).await?;
    let m = query::params(req.params()?, &["from", "to", "bucket", "top"])?;
    let to = query::number(&m, "to")?.unwrap_or_else(now_micros);
    let from = query::number(&m, "from")?.unwrap_or(to - DEFAULT_RANGE);
    let top = query::number(&m, "top")?.unwrap_or(DEFAULT_TOP);
    if !(0..=summary::MAX_TOP as i64).contains(&top) {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("`top` must be 0..={}", summary::MAX_TOP),
        ));
    }
    let q = SummaryQuery {
        from,
        to,
        bucket_secs: query::number(&m, "bucket")?,
        top: top as usize,
    };
    let vis = a.visibility(state).await?;
    let s = state
        .store
        .read(move |c| summary::summary(c, &q, &vis))
        .await?;
    json(&s)
}
