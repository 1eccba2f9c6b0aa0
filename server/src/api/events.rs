//! Events for the dashboard: search (keyset pages), export (CSV or JSON, audited),
//! one event with its triage, and setting an event's status or adding a note.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use spoor_core::EventId;

use super::query::{self, FILTER_KEYS};
use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, json};
use crate::metrics::inc;
use crate::store::audit;
use crate::store::search::{self, Cursor, DEFAULT_PAGE, Sort, SortKey};
use crate::store::triage::{self, TriageStatus};
use crate::store::users::Role;

fn parse_id(id: &str) -> Result<[u8; 16], ApiError> {
    id.parse::<EventId>()
        .map(|e| e.0.to_be_bytes())
        .map_err(|e| ApiError::bad_request("bad_id", e))
}

pub async fn search(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Viewer).await?;
    let mut keys = FILTER_KEYS.to_vec();
    keys.extend(["limit", "cursor", "sort", "dir"]);
    let m = query::params(req.params()?, &keys)?;
    let filter = query::filter(&m)?;
    let limit = query::number(&m, "limit")?.unwrap_or(DEFAULT_PAGE as i64);
    if !(1..=search::MAX_PAGE as i64).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("`limit` must be 1..={}", search::MAX_PAGE),
        ));
    }
    let sort = sort_param(&m)?;
    let cursor = query::one(&m, "cursor")?
        .map(|c| {
            Cursor::decode(c, sort.key).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_parameter",
                    "`cursor` is not one this server gave out for this `sort`",
                )
            })
        })
        .transpose()?;
    let vis = a.visibility(state).await?;
    let page = state
        .store
        .read(move |c| search::search(c, &filter, &vis, limit as usize, sort, cursor))
        .await?;
    json(&page)
}

/// `sort` (a column, default time) and `dir` (`asc` or `desc`; default descending for time
/// and severity, so newest and worst come first, ascending for the others).
fn sort_param(m: &HashMap<String, Vec<String>>) -> Result<Sort, ApiError> {
    let key = match query::one(m, "sort")? {
        None => SortKey::Time,
        Some(s) => SortKey::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "bad_parameter",
                format!("`sort={s}`: use one of {}", SortKey::NAMES.join(", ")),
            )
        })?,
    };
    let descending = match query::one(m, "dir")? {
        None => matches!(key, SortKey::Time | SortKey::Severity),
        Some("desc") => true,
        Some("asc") => false,
        Some(d) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("`dir={d}`: use asc or desc"),
            ));
        }
    };
    Ok(Sort { key, descending })
}

/// CSV columns of an export.
const CSV_COLUMNS: &[&str] = &[
    "id",
    "time",
    "sensor",
    "src",
    "src_port",
    "dst",
    "dst_port",
    "proto",
    "kind",
    "trail",
    "info",
    "reference",
    "severity",
    "offender",
    "count",
    "first_seen",
    "last_seen",
    "status",
];

fn csv_field(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::Null => return String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn export(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let mut keys = FILTER_KEYS.to_vec();
    keys.push("format");
    let m = query::params(req.params()?, &keys)?;
    let filter = query::filter(&m)?;
    let format = query::one(&m, "format")?.unwrap_or("json").to_string();
    if format != "json" && format != "csv" {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!("`format={format}`: use json or csv"),
        ));
    }
    let vis = a.visibility(state).await?;
    let f2 = filter.clone();
    let fmt = format.clone();
    let (body, rows) = state
        .store
        .read(move |c| {
            let mut out = String::new();
            if fmt == "csv" {
                out.push_str(&CSV_COLUMNS.join(","));
                out.push('\n');
            } else {
                out.push('[');
            }
            let mut first = true;
            let n = search::export(c, &f2, &vis, |body, status| {
                if fmt == "csv" {
                    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                    let cols: Vec<String> = CSV_COLUMNS
                        .iter()
                        .map(|k| match *k {
                            "status" => status.as_str().to_string(),
                            k => csv_field(v.get(k).unwrap_or(&serde_json::Value::Null)),
                        })
                        .collect();
                    out.push_str(&cols.join(","));
                    out.push('\n');
                } else {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(body);
                }
                Ok(())
            })?;
            if fmt != "csv" {
                out.push(']');
            }
            Ok((out, n))
        })
        .await?;
    inc(&state.metrics.exports);
    let user = a.user.name.clone();
    let detail = serde_json::json!({"format": format, "filter": filter, "rows": rows});
    state
        .store
        .write(move |tx| audit::record(tx, &user, "export", &detail))
        .await?;
    let (ctype, ext) = if format == "csv" {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/json", "json")
    };
    let mut r = warp::http::Response::new(body.into());
    let h = r.headers_mut();
    h.insert("content-type", ctype.parse().expect("valid"));
    h.insert(
        "content-disposition",
        format!("attachment; filename=\"spoor-events.{ext}\"")
            .parse()
            .expect("valid"),
    );
    Ok(r)
}

pub async fn detail(state: &Arc<AppState>, req: &Req, id: &str) -> Answer {
    let a = authenticate(state, req, Role::Viewer).await?;
    let id = parse_id(id)?;
    let scope = a.user.scope.clone();
    let found = state
        .store
        .read(move |c| {
            let Some(event) = search::event_by_id(c, id, &scope)? else {
                return Ok(None);
            };
            Ok(Some((event, triage::event_triage(c, id)?)))
        })
        .await?;
    match found {
        Some((event, triage)) => json(&serde_json::json!({"event": event, "triage": triage})),
        None => Err(ApiError::not_found("no such event (or not in your scope)")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriageBody {
    status: Option<TriageStatus>,
    note: Option<String>,
}

pub async fn triage(state: &Arc<AppState>, req: &Req, id: &str) -> Answer {
    let a = authenticate(state, req, Role::Analyst).await?;
    let id = parse_id(id)?;
    let body: TriageBody = req.json()?;
    if body.status.is_none() && body.note.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "empty",
            "give a `status` (new, investigating, resolved), a `note`, or both",
        ));
    }
    let scope = a.user.scope.clone();
    let visible = state
        .store
        .read(move |c| Ok(search::event_by_id(c, id, &scope)?.is_some()))
        .await?;
    if !visible {
        return Err(ApiError::not_found("no such event (or not in your scope)"));
    }
    let user = a.user.name.clone();
    let note = body.note.filter(|n| !n.is_empty());
    let t = state
        .store
        .write(move |tx| {
            triage::update_event(tx, id, body.status, note.as_deref(), &user)?;
            triage::event_triage(tx, id)
        })
        .await?;
    json(&t)
}
