//! The responders' decisions for admins and the dashboard: list, one decision with its
//! audit trail, bulk approve / reject / revoke / extend with a result per id, a manual
//! block, the audit log, the allowlist (admin only) and the backends' status.
//!
//! Reading needs a viewer; every change needs an admin and the session's CSRF token, and
//! is followed by [`Responders::changed`] so agents and the in-process backend act on it
//! at once. The ledger keeps the audit (actor = the user's name). A server without
//! `[respond]` answers 404 (reads) or 409 (changes) with code `no_responders`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spoor_core::Micros;
use spoor_responders::decision::{parse_target, target_text};
use spoor_responders::guard::check_target;
use spoor_responders::ledger::{self, MAX_RECENT};
use spoor_responders::policy::Mode;
use spoor_responders::{
    AuditEntry, Decision, DecisionId, DecisionState, Extension, Ledger, LedgerError, NewDecision,
    Reason,
};
use warp::http::{Method, StatusCode};

use super::query;
use super::session::authenticate;
use super::{Answer, ApiError, AppState, Req, json, json_status};
use crate::respond::Responders;
use crate::store::users::Role;

/// Decisions a list returns when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Audit entries returned when `limit` is not given.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;
/// Most ids in one bulk request (each is its own ledger transaction).
pub const MAX_BULK_IDS: usize = 1000;
/// Longest reason kept in the audit log, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Rule name of a decision added by hand (as `spoor block add` does).
pub const MANUAL_RULE: &str = "manual";

fn responders<'s>(state: &'s AppState, req: &Req) -> Result<&'s Arc<Responders>, ApiError> {
    state.responders.as_ref().ok_or_else(|| {
        let status = if req.method == Method::GET {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::CONFLICT
        };
        ApiError::new(
            status,
            "no_responders",
            "responders are not configured on this server: add a [respond] section to its config and restart it",
        )
    })
}

/// The code and status of a ledger error, for one id of a bulk answer or a whole request.
fn classify(e: &LedgerError) -> (StatusCode, &'static str) {
    match e {
        LedgerError::NoSuchDecision(_) => (StatusCode::NOT_FOUND, "not_found"),
        LedgerError::IllegalTransition { .. } => (StatusCode::CONFLICT, "illegal_transition"),
        LedgerError::NotExtendable { .. } => (StatusCode::CONFLICT, "not_extendable"),
        LedgerError::NotLater { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_later"),
        LedgerError::BeyondMaxTtl { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "beyond_max_ttl"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "ledger_failed"),
    }
}

fn ledger_error(e: LedgerError) -> ApiError {
    let (status, code) = classify(&e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("{e}");
    }
    ApiError::new(status, code, e.to_string())
}

/// Why `target` may not be blocked: the allowlist, the shortest prefix, or a sensor's
/// address the server learned from its ingest.
fn refusal(r: &Responders, target: &ipnet::IpNet) -> Option<String> {
    let guards = spoor_responders::agent::guards(r.config());
    if let Err(why) = check_target(r.allowlist(), &guards, target) {
        return Some(why.to_string());
    }
    r.sensor_in(target).map(|(addr, name)| {
        format!("allowlisted: {addr} (Spoor sensor `{name}`, learned from its ingest)")
    })
}

/// `/decisions?...` page.
#[derive(Debug, Serialize)]
struct DecisionPage {
    /// The server's clock (µs), so a page can count time left without trusting its own.
    now: Micros,
    decisions: Vec<Decision>,
    /// `before=` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<DecisionId>,
}

/// `GET /api/v1/decisions?state=S&state=T&limit=N&before=ID` (viewer).
pub async fn list(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    let r = responders(state, req)?;
    let m = query::params(req.params()?, &["state", "limit", "before"])?;
    let states = m
        .get("state")
        .into_iter()
        .flatten()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<DecisionState>().map_err(|e| {
                ApiError::bad_request(
                    "bad_parameter",
                    format!(
                        "state: {e}; give proposed, approved, rejected, active, expired or revoked"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = match query::number(&m, "limit")? {
        Some(n) if n < 1 || n > MAX_RECENT as i64 => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("limit must be 1 to {MAX_RECENT}"),
            ));
        }
        Some(n) => n as usize,
        None => DEFAULT_LIST_LIMIT,
    };
    let before = query::number(&m, "before")?.map(DecisionId);
    let decisions = r
        .ledger(move |l| l.recent(&states, before, limit))
        .await
        .map_err(ledger_error)?;
    let next = (decisions.len() == limit)
        .then(|| decisions.last().map(|d| d.id))
        .flatten();
    json(&DecisionPage {
        now: ledger::now(),
        decisions,
        next,
    })
}

fn parse_id(id: &str) -> Result<DecisionId, ApiError> {
    id.parse::<i64>()
        .map(DecisionId)
        .map_err(|_| ApiError::bad_request("bad_id", format!("`{id}` is not a decision id")))
}

/// `GET /api/v1/decisions/{id}` (viewer): the decision and its audit trail.
pub async fn get(state: &Arc<AppState>, req: &Req, id: &str) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    let r = responders(state, req)?;
    let id = parse_id(id)?;
    let (decision, audit) = r
        .ledger(move |l| Ok((l.get(id)?, l.audit(id)?)))
        .await
        .map_err(ledger_error)?;
    json(&serde_json::json!({"now": ledger::now(), "decision": decision, "audit": audit}))
}

/// A bulk change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Approve,
    Reject,
    Revoke,
    Extend,
}

impl BulkAction {
    pub fn from_path(s: &str) -> Option<BulkAction> {
        Some(match s {
            "approve" => BulkAction::Approve,
            "reject" => BulkAction::Reject,
            "revoke" => BulkAction::Revoke,
            "extend" => BulkAction::Extend,
            _ => return None,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<i64>,
    #[serde(default)]
    reason: Option<String>,
    /// Extend: this much more time (after the current expiry).
    #[serde(default)]
    ttl_secs: Option<u64>,
    /// Extend: end at this time (µs since the epoch) instead.
    #[serde(default)]
    until: Option<i64>,
}

/// One id's outcome.
#[derive(Debug, Serialize)]
struct BulkResult {
    id: DecisionId,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl BulkResult {
    fn refused(id: DecisionId, code: &'static str, message: String) -> BulkResult {
        BulkResult {
            id,
            ok: false,
            decision: None,
            error: Some(code),
            message: Some(message),
        }
    }
}

fn reason_of(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && r.chars().count() > MAX_REASON_CHARS
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_too_long",
            format!("the reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(reason)
}

/// `POST /api/v1/decisions/{approve|reject|revoke|extend}` (admin) with
/// `{ids, reason?, ttl_secs? | until?}`: each id on its own, a result for each.
pub async fn bulk(state: &Arc<AppState>, req: &Req, action: BulkAction) -> Answer {
    let a = authenticate(state, req, Role::Admin).await?;
    let r = responders(state, req)?;
    let b: BulkBody = req.json()?;
    if b.ids.is_empty() {
        return Err(ApiError::bad_request(
            "bad_body",
            "give at least one id in `ids`",
        ));
    }
    if b.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_ids",
            format!("at most {MAX_BULK_IDS} ids per request; split the list"),
        ));
    }
    let extension = match (action, b.ttl_secs, b.until) {
        (BulkAction::Extend, Some(0), None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_ttl",
                "ttl_secs must be more than 0",
            ));
        }
        (BulkAction::Extend, Some(s), None) => Some(Extension::By(s)),
        (BulkAction::Extend, None, Some(t)) => Some(Extension::Until(Micros(t))),
        (BulkAction::Extend, _, _) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "extend needs exactly one of `ttl_secs` (more time) or `until` (µs since the epoch)",
            ));
        }
        (_, None, None) => None,
        (_, _, _) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "`ttl_secs` and `until` only go with extend",
            ));
        }
    };
    let reason = reason_of(b.reason)?;
    // Each id once, in the order given.
    let mut seen = BTreeSet::new();
    let ids: Vec<DecisionId> = b
        .ids
        .into_iter()
        .filter(|i| seen.insert(*i))
        .map(DecisionId)
        .collect();
    let actor = a.user.name.clone();
    let max_ttl = r.config().max_ttl.as_std();
    let rs = Arc::clone(r);
    let results = r
        .ledger(move |l| {
            let now = ledger::now();
            let mut out = Vec::with_capacity(ids.len());
            // After a failure of the database itself the rest is not attempted (and said so).
            let mut failed: Option<DecisionId> = None;
            for id in ids {
                if let Some(at) = failed {
                    out.push(BulkResult::refused(
                        id,
                        "not_attempted",
                        format!("not attempted: the ledger failed on decision {at}"),
                    ));
                    continue;
                }
                let note = reason.as_deref();
                let one = match action {
                    BulkAction::Approve => l.get(id).and_then(|d| match refusal(&rs, &d.target) {
                        None => l
                            .transition(id, DecisionState::Approved, &actor, now, note)
                            .map(Ok),
                        Some(why) => Ok(Err(format!(
                            "decision {id} on {} cannot be approved: {why}",
                            target_text(&d.target)
                        ))),
                    }),
                    BulkAction::Reject => l
                        .transition(id, DecisionState::Rejected, &actor, now, note)
                        .map(Ok),
                    BulkAction::Revoke => l
                        .transition(id, DecisionState::Revoked, &actor, now, note)
                        .map(Ok),
                    BulkAction::Extend => l
                        .extend(
                            id,
                            extension.expect("checked above"),
                            Some(max_ttl),
                            &actor,
                            now,
                            note,
                        )
                        .map(Ok),
                };
                out.push(match one {
                    Ok(Ok(d)) => BulkResult {
                        id,
                        ok: true,
                        decision: Some(d),
                        error: None,
                        message: None,
                    },
                    Ok(Err(why)) => BulkResult::refused(id, "refused", why),
                    Err(e) => {
                        let (status, code) = classify(&e);
                        if status == StatusCode::INTERNAL_SERVER_ERROR {
                            tracing::error!("decision {id}: {e}");
                            failed = Some(id);
                        }
                        BulkResult::refused(id, code, e.to_string())
                    }
                });
            }
            Ok(out)
        })
        .await
        .map_err(ledger_error)?;
    if results.iter().any(|r| r.ok) {
        r.changed();
    }
    json(&serde_json::json!({ "results": results }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualBlock {
    target: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/decisions` (admin) `{target, ttl_secs?, reason?}`: a block added by hand,
/// proposed and approved by the admin at once (two audit entries). A dry run when
/// `[respond] mode = "dry-run"`.
pub async fn create(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Admin).await?;
    let r = responders(state, req)?;
    let b: ManualBlock = req.json()?;
    let target = parse_target(&b.target)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_target", m))?;
    if let Some(why) = refusal(r, &target) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
            format!("{} cannot be blocked: {why}", target_text(&target)),
        ));
    }
    let cfg = r.config();
    let max_ttl = cfg.max_ttl.as_std().as_secs();
    let ttl = b.ttl_secs.unwrap_or_else(|| {
        cfg.escalation
            .first()
            .map_or(max_ttl, |d| d.as_std().as_secs())
    });
    if ttl == 0 || ttl > max_ttl {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_ttl",
            format!("ttl_secs must be 1 to {max_ttl} ([respond] max_ttl)"),
        ));
    }
    let new = NewDecision {
        target,
        reason: Reason {
            rule: MANUAL_RULE.into(),
            events: Vec::new(),
            note: reason_of(b.reason)?,
        },
        ttl_secs: ttl,
        dry_run: cfg.mode == Mode::DryRun,
    };
    let actor = a.user.name.clone();
    let outcome = r
        .ledger(move |l| {
            if let Some(open) = l.open_for(&new.target)?.first() {
                return Ok(Err(open.clone()));
            }
            let now = ledger::now();
            let d = l.propose(&new, &actor, now)?;
            Ok(Ok(l.transition(
                d.id,
                DecisionState::Approved,
                &actor,
                now,
                None,
            )?))
        })
        .await
        .map_err(ledger_error)?;
    match outcome {
        Ok(d) => {
            r.changed();
            json_status(&d, StatusCode::CREATED)
        }
        Err(open) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_open",
            format!(
                "{} already has decision {} ({}); extend or revoke that one",
                target_text(&open.target),
                open.id,
                open.state
            ),
        )),
    }
}

#[derive(Debug, Serialize)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// The target of each decision the entries name (decision id → target), so a reader
    /// needs no request per line.
    targets: BTreeMap<i64, String>,
    /// `since=` for the next request (the last seq shown, or the one given).
    cursor: i64,
}

/// `GET /api/v1/decisions/audit[?since=SEQ][&limit=N]` (viewer): with `since`, the entries
/// after it in order; without, the newest first.
pub async fn audit(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    let r = responders(state, req)?;
    let m = query::params(req.params()?, &["since", "limit"])?;
    let since = query::number(&m, "since")?;
    let limit = match query::number(&m, "limit")? {
        Some(n) if n < 1 || n > MAX_RECENT as i64 => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("limit must be 1 to {MAX_RECENT}"),
            ));
        }
        Some(n) => n as usize,
        None => DEFAULT_AUDIT_LIMIT,
    };
    let (entries, targets) = r
        .ledger(move |l: &Ledger<'_>| {
            let entries = match since {
                Some(s) => l.audit_after(s, limit)?,
                None => l.audit_latest(limit)?,
            };
            let mut targets = BTreeMap::new();
            for e in &entries {
                if let std::collections::btree_map::Entry::Vacant(v) = targets.entry(e.decision.0) {
                    v.insert(target_text(&l.get(e.decision)?.target));
                }
            }
            Ok((entries, targets))
        })
        .await
        .map_err(ledger_error)?;
    let cursor = entries
        .iter()
        .map(|e| e.seq)
        .max()
        .unwrap_or(since.unwrap_or(0))
        .max(since.unwrap_or(0));
    json(&AuditPage {
        entries,
        targets,
        cursor,
    })
}

#[derive(Debug, Serialize)]
struct AllowRow {
    net: String,
    source: String,
}

/// `GET /api/v1/responders/allowlist` (admin): every allowlisted network and why.
pub async fn allowlist(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Admin).await?;
    let r = responders(state, req)?;
    let mut rows: Vec<AllowRow> = r
        .allowlist()
        .entries()
        .iter()
        .map(|e| AllowRow {
            net: e.net.to_string(),
            source: e.source.to_string(),
        })
        .collect();
    rows.extend(
        r.sensor_addresses()
            .into_iter()
            .map(|(addr, name)| AllowRow {
                net: ipnet::IpNet::from(addr).to_string(),
                source: format!("Spoor sensor `{name}` (learned from its ingest)"),
            }),
    );
    json(&rows)
}

/// `GET /api/v1/responders/status` (viewer): what each backend last reported.
pub async fn status(state: &Arc<AppState>, req: &Req) -> Answer {
    authenticate(state, req, Role::Viewer).await?;
    let r = responders(state, req)?;
    json(&r.statuses())
}
