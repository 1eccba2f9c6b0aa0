//! Event search: filters → one SQL `WHERE`, in a chosen order (newest first by default),
//! keyset pagination on `(column, time, rowid)` so page 1000 costs what page 1 costs.
//!
//! What a user may see ([`Visibility`]: their network scope, the team's suppressions and
//! hidden trails) is added to every query here, so no endpoint can forget it.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use rusqlite::Connection;
use rusqlite::types::Value;
use serde::Serialize;
use spoor_core::{EventKind, Severity};

use super::StoreError;
use super::codec::{ip_bytes, net_key, net_range, severity_code};
use super::text;
use super::triage::{TriageRules, TriageStatus};

/// Largest page of a search.
pub const MAX_PAGE: usize = 1000;
/// The share of events the query planner is told one network's address filter keeps.
const NETWORK_SHARE: f64 = 0.5;
/// Default page size.
pub const DEFAULT_PAGE: usize = 100;
/// Rows one export writes at most; a bigger export must be narrowed or split by time.
pub const MAX_EXPORT_ROWS: usize = 200_000;

/// What to look for. Empty lists and `None` mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventFilter {
    /// µs, inclusive.
    pub from: Option<i64>,
    /// µs, exclusive.
    pub to: Option<i64>,
    pub sensors: Vec<String>,
    pub severities: Vec<Severity>,
    pub kinds: Vec<EventKind>,
    /// Source or destination in one of these.
    pub ip: Vec<IpNet>,
    pub src: Vec<IpNet>,
    pub dst: Vec<IpNet>,
    /// Substring of the trail (case-insensitive for ASCII).
    pub trail: Option<String>,
    /// Substring of the event's text: addresses, trail, feed info and reference, DNS
    /// answers, protocol context ([`text::event_text`]); case-insensitive.
    pub text: Option<String>,
    pub status: Option<TriageStatus>,
    /// Show events the team's suppression rules hide.
    pub include_suppressed: bool,
    /// Show events of hidden trails.
    pub include_hidden: bool,
}

/// What the asking user may see.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    /// The user's networks; empty: everything.
    pub scope: Vec<IpNet>,
    pub rules: TriageRules,
}

/// A growing `WHERE` clause with its parameters.
#[derive(Debug, Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) params: Vec<Value>,
}

impl Where {
    pub(crate) fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }
    pub(crate) fn param(&mut self, v: impl Into<Value>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".to_string()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// `column` (src or dst) in one of `nets`. Each term also bounds `{column}_net`, the
    /// leading column of the address index: one network (a host, or a CIDR inside one
    /// /24 or /48) is an equality there, served in time order; a wider CIDR is the range
    /// of its networks' keys.
    fn nets(&mut self, column: &str, nets: &[IpNet]) -> String {
        let mut parts = Vec::new();
        for n in nets {
            let (lo, hi) = net_range(*n);
            let (klo, khi) = (net_key(&lo), net_key(&hi));
            // Without statistics SQLite takes an equality on an index for about ten rows,
            // and would then gather a busy network's events and sort them rather than
            // walk the time index; `likelihood` tells it that a network is a fair share.
            let key = if klo == khi {
                let k = self.param(klo.to_vec());
                format!("likelihood({column}_net = {k}, {NETWORK_SHARE})")
            } else {
                let (klo, khi) = (self.param(klo.to_vec()), self.param(khi.to_vec()));
                format!("{column}_net BETWEEN {klo} AND {khi}")
            };
            let addr = if lo == hi {
                let ip = self.param(lo.to_vec());
                format!("{column} = {ip}")
            } else {
                let (lo, hi) = (self.param(lo.to_vec()), self.param(hi.to_vec()));
                format!("{column} BETWEEN {lo} AND {hi}")
            };
            parts.push(format!("({key} AND {addr})"));
        }
        format!("({})", parts.join(" OR "))
    }

    /// `src` is `ip`, written so that the address index serves it.
    fn src_is(&mut self, ip: IpAddr) -> String {
        let b = ip_bytes(ip);
        let k = self.param(net_key(&b).to_vec());
        let ip = self.param(b.to_vec());
        format!("(src_net = {k} AND src = {ip})")
    }

    /// Events touching one of `nets` (either side).
    pub(crate) fn scope(&mut self, nets: &[IpNet]) {
        if nets.is_empty() {
            return;
        }
        let s = self.nets("src", nets);
        let d = self.nets("dst", nets);
        self.push(format!("({s} OR {d})"));
    }

    pub(crate) fn time(&mut self, from: Option<i64>, to: Option<i64>) {
        if let Some(f) = from {
            let p = self.param(f);
            self.push(format!("time >= {p}"));
        }
        if let Some(t) = to {
            let p = self.param(t);
            self.push(format!("time < {p}"));
        }
    }

    /// The events the triage rules hide, as one condition (None: no rules). Written with
    /// explicit values, so that SQLite can answer each term from the trail or src index.
    pub(crate) fn hidden_by(
        &mut self,
        rules: &TriageRules,
        suppressed: bool,
        hidden: bool,
    ) -> Option<String> {
        let mut terms = Vec::new();
        if suppressed {
            for s in &rules.suppressions {
                match (&s.trail, s.src) {
                    (Some(t), Some(ip)) => {
                        let t = self.param(t.clone());
                        let src = self.src_is(ip);
                        terms.push(format!("(trail = {t} AND {src})"));
                    }
                    (Some(t), None) => {
                        let t = self.param(t.clone());
                        terms.push(format!("trail = {t}"));
                    }
                    (None, Some(ip)) => terms.push(self.src_is(ip)),
                    (None, None) => {}
                }
            }
        }
        if hidden {
            for t in &rules.hidden_trails {
                let t = self.param(t.clone());
                terms.push(format!("trail = {t}"));
            }
        }
        (!terms.is_empty()).then(|| format!("({})", terms.join(" OR ")))
    }

    /// Everything in `filter` and `vis`.
    pub(crate) fn from_filter(
        conn: &Connection,
        filter: &EventFilter,
        vis: &Visibility,
    ) -> Result<Where, StoreError> {
        let mut w = Where::default();
        w.time(filter.from, filter.to);
        w.scope(&vis.scope);
        if !filter.sensors.is_empty() {
            let ps: Vec<String> = filter.sensors.iter().map(|s| w.param(s.clone())).collect();
            w.push(format!("sensor IN ({})", ps.join(", ")));
        }
        if !filter.severities.is_empty() {
            let ps: Vec<String> = filter
                .severities
                .iter()
                .map(|s| w.param(severity_code(*s)))
                .collect();
            w.push(format!("severity IN ({})", ps.join(", ")));
        }
        if !filter.kinds.is_empty() {
            let ps: Vec<String> = filter
                .kinds
                .iter()
                .map(|k| w.param(k.as_str().to_string()))
                .collect();
            w.push(format!("kind IN ({})", ps.join(", ")));
        }
        if !filter.ip.is_empty() {
            let s = w.nets("src", &filter.ip);
            let d = w.nets("dst", &filter.ip);
            w.push(format!("({s} OR {d})"));
        }
        if !filter.src.is_empty() {
            let s = w.nets("src", &filter.src);
            w.push(s);
        }
        if !filter.dst.is_empty() {
            let d = w.nets("dst", &filter.dst);
            w.push(d);
        }
        if let Some(t) = &filter.trail {
            let p = w.param(format!("%{}%", like_escape(t)));
            w.push(format!("trail LIKE {p} ESCAPE '\\'"));
        }
        if let Some(t) = &filter.text {
            let c = text::contains(conn, &mut w, t)?;
            w.push(c);
        }
        if let Some(status) = filter.status {
            let p = w.param(status.as_str().to_string());
            w.push(format!(
                "COALESCE((SELECT status FROM triage WHERE triage.event_id = events.id), 'new') = {p}"
            ));
        }
        if let Some(hidden) = w.hidden_by(
            &vis.rules,
            !filter.include_suppressed,
            !filter.include_hidden,
        ) {
            w.push(format!("NOT {hidden}"));
        }
        Ok(w)
    }
}

pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The column a search is ordered by. Every order ends with `(time, rowid)`, so it is
/// total and keyset pagination works for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Time,
    Severity,
    Sensor,
    Src,
    Dst,
    Kind,
    Trail,
}

impl SortKey {
    pub const NAMES: &[&str] = &["time", "severity", "sensor", "src", "dst", "kind", "trail"];

    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "time" => SortKey::Time,
            "severity" => SortKey::Severity,
            "sensor" => SortKey::Sensor,
            "src" => SortKey::Src,
            "dst" => SortKey::Dst,
            "kind" => SortKey::Kind,
            "trail" => SortKey::Trail,
            _ => return None,
        })
    }

    /// The column in `events`; None for time (already the tie-breaker).
    fn column(self) -> Option<&'static str> {
        match self {
            SortKey::Time => None,
            SortKey::Severity => Some("severity"),
            SortKey::Sensor => Some("sensor"),
            SortKey::Src => Some("src"),
            SortKey::Dst => Some("dst"),
            SortKey::Kind => Some("kind"),
            SortKey::Trail => Some("trail"),
        }
    }
}

/// A search order: newest first unless asked otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort {
            key: SortKey::Time,
            descending: true,
        }
    }
}

/// The sort column's value in the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Integer(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Where a page ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub rowid: i64,
    /// The sort column's value (None when sorted by time).
    pub key: Option<SortValue>,
}

impl Cursor {
    /// `time.rowid` when sorted by time; `time.rowid.TYPE HEX` otherwise (`i` integer,
    /// `t` UTF-8 text, `b` bytes), so any value survives a URL.
    pub fn encode(self) -> String {
        let mut out = format!("{}.{}", self.time, self.rowid);
        let (tag, bytes) = match &self.key {
            None => return out,
            Some(SortValue::Integer(i)) => {
                let _ = write!(out, ".i{i}");
                return out;
            }
            Some(SortValue::Text(t)) => ('t', t.as_bytes()),
            Some(SortValue::Blob(b)) => ('b', b.as_slice()),
        };
        out.push('.');
        out.push(tag);
        for b in bytes {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// The cursor a page sorted by `key` gave out, or None for anything else.
    pub fn decode(s: &str, key: SortKey) -> Option<Cursor> {
        let mut parts = s.splitn(3, '.');
        let time = parts.next()?.parse().ok()?;
        let rowid = parts.next()?.parse().ok()?;
        let value = parts.next();
        let key = match (key, value) {
            (SortKey::Time, None) => None,
            (SortKey::Time, Some(_)) | (_, None) => return None,
            (k, Some(v)) => {
                let (tag, rest) = v.split_at_checked(1)?;
                let value = match tag {
                    "i" => SortValue::Integer(rest.parse().ok()?),
                    "t" => SortValue::Text(String::from_utf8(unhex(rest)?).ok()?),
                    "b" => SortValue::Blob(unhex(rest)?),
                    _ => return None,
                };
                let expected = match k {
                    SortKey::Severity => matches!(value, SortValue::Integer(_)),
                    SortKey::Src | SortKey::Dst => matches!(value, SortValue::Blob(_)),
                    _ => matches!(value, SortValue::Text(_)),
                };
                if !expected {
                    return None;
                }
                Some(value)
            }
        };
        Some(Cursor { time, rowid, key })
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The event as stored.
    pub event: serde_json::Value,
    pub status: TriageStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub events: Vec<Hit>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One page in `sort` order.
pub fn search(
    conn: &Connection,
    filter: &EventFilter,
    vis: &Visibility,
    limit: usize,
    sort: Sort,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    // One snapshot for the free-text candidates and the query.
    let _snapshot = conn.unchecked_transaction()?;
    let mut w = Where::from_filter(conn, filter, vis)?;
    let column = sort.key.column();
    let (dir, cmp) = if sort.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(c) = cursor {
        let t = w.param(c.time);
        let r = w.param(c.rowid);
        match (column, c.key) {
            (Some(col), Some(v)) => {
                let v = w.param(match v {
                    SortValue::Integer(i) => Value::Integer(i),
                    SortValue::Text(s) => Value::Text(s),
                    SortValue::Blob(b) => Value::Blob(b),
                });
                w.push(format!("({col}, time, rowid) {cmp} ({v}, {t}, {r})"));
            }
            _ => w.push(format!("(time, rowid) {cmp} ({t}, {r})")),
        }
    }
    let order = match column {
        Some(col) => format!("{col} {dir}, time {dir}, rowid {dir}"),
        None => format!("time {dir}, rowid {dir}"),
    };
    let mut sql = String::new();
    let _ = write!(
        sql,
        "SELECT rowid, time, body, COALESCE((SELECT status FROM triage WHERE triage.event_id = events.id), 'new'), {}
         FROM events WHERE {} ORDER BY {order} LIMIT {}",
        column.unwrap_or("NULL"),
        w.sql(),
        limit + 1
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(w.params.iter()))?;
    let mut events = Vec::with_capacity(limit);
    let mut last = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if events.len() == limit {
            more = true;
            break;
        }
        let rowid: i64 = row.get(0)?;
        let time: i64 = row.get(1)?;
        let body: String = row.get(2)?;
        let status: String = row.get(3)?;
        let key = match row.get::<_, Value>(4)? {
            Value::Integer(i) => Some(SortValue::Integer(i)),
            Value::Text(t) => Some(SortValue::Text(t)),
            Value::Blob(b) => Some(SortValue::Blob(b)),
            _ => None,
        };
        last = Some(Cursor { time, rowid, key });
        events.push(Hit {
            event: serde_json::from_str(&body)
                .map_err(|e| StoreError::Invalid(format!("stored event is not JSON: {e}")))?,
            status: TriageStatus::parse(&status).unwrap_or(TriageStatus::New),
        });
    }
    Ok(Page {
        events,
        next: if more { last.map(Cursor::encode) } else { None },
    })
}

/// Every matching event's stored JSON, newest first, at most [`MAX_EXPORT_ROWS`]; `each`
/// gets the body and the triage status. Returns the rows written.
pub fn export(
    conn: &Connection,
    filter: &EventFilter,
    vis: &Visibility,
    mut each: impl FnMut(&str, TriageStatus) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let _snapshot = conn.unchecked_transaction()?;
    let w = Where::from_filter(conn, filter, vis)?;
    let sql = format!(
        "SELECT body, COALESCE((SELECT status FROM triage WHERE triage.event_id = events.id), 'new')
         FROM events WHERE {} ORDER BY time DESC, rowid DESC LIMIT {MAX_EXPORT_ROWS}",
        w.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(w.params.iter()))?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let body: String = row.get(0)?;
        let status: String = row.get(1)?;
        each(
            &body,
            TriageStatus::parse(&status).unwrap_or(TriageStatus::New),
        )?;
        n += 1;
    }
    Ok(n)
}

/// One event by id, if the user may see it (scope only: a suppressed event can still be
/// opened from a link).
pub fn event_by_id(
    conn: &Connection,
    id: [u8; 16],
    scope: &[IpNet],
) -> Result<Option<serde_json::Value>, StoreError> {
    let mut w = Where::default();
    let p = w.param(id.to_vec());
    w.push(format!("id = {p}"));
    w.scope(scope);
    let sql = format!("SELECT body FROM events WHERE {}", w.sql());
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(w.params.iter()))?;
    match rows.next()? {
        Some(row) => {
            let body: String = row.get(0)?;
            Ok(Some(serde_json::from_str(&body).map_err(|e| {
                StoreError::Invalid(format!("stored event is not JSON: {e}"))
            })?))
        }
        None => Ok(None),
    }
}
