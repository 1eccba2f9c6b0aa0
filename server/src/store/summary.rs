//! Time-range summaries: counts per time bucket by severity and kind, and the top
//! sources, destinations, trails and sensors.
//!
//! For an unscoped user the counts come from the rollups kept at ingest (per minute by
//! sensor/kind/severity, per hour by trail/source/destination); the parts of the range
//! that are not whole hours are counted from the events themselves, and so are the events
//! the triage rules hide, which are then subtracted. A user with a network scope is
//! counted from the events directly (rollups do not know both addresses of an event).
//! Passes over the events read only the time index, which covers their columns
//! (migration 2). Ranges are widened to whole minutes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use rusqlite::Connection;
use serde::Serialize;
use spoor_core::Severity;

use super::StoreError;
use super::codec::{ip_from_bytes, severity_from_code};
use super::search::{Visibility, Where};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
/// Buckets a summary aims for when the caller names no bucket size.
const TARGET_BUCKETS: i64 = 96;
/// Buckets a summary may have at most.
pub const MAX_BUCKETS: i64 = 10_000;
/// Entries per top list at most.
pub const MAX_TOP: usize = 100;
/// Bucket sizes chosen automatically (seconds).
const NICE_BUCKETS: &[i64] = &[
    60,
    300,
    600,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryQuery {
    /// µs, inclusive.
    pub from: i64,
    /// µs, exclusive.
    pub to: i64,
    /// Seconds; None: about [`TARGET_BUCKETS`] buckets.
    pub bucket_secs: Option<i64>,
    pub top: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BySeverity {
    pub low: i64,
    pub medium: i64,
    pub high: i64,
}

impl BySeverity {
    fn add(&mut self, s: Severity, n: i64) {
        match s {
            Severity::Low => self.low += n,
            Severity::Medium => self.medium += n,
            Severity::High => self.high += n,
        }
    }
    fn total(&self) -> i64 {
        self.low + self.medium + self.high
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// µs, start of the bucket.
    pub time: i64,
    pub total: i64,
    pub severity: BySeverity,
    pub kinds: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Top<K> {
    pub key: K,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub from: i64,
    pub to: i64,
    pub bucket_secs: i64,
    pub total: i64,
    pub severity: BySeverity,
    pub kinds: BTreeMap<String, i64>,
    /// Only buckets with events.
    pub buckets: Vec<Bucket>,
    pub top_sources: Vec<Top<IpAddr>>,
    pub top_destinations: Vec<Top<IpAddr>>,
    pub top_trails: Vec<Top<String>>,
    pub top_sensors: Vec<Top<String>>,
}

/// Counts being added up; `sign` -1 subtracts.
#[derive(Debug, Default)]
struct Acc {
    bucket: i64,
    buckets: BTreeMap<i64, (BySeverity, HashMap<String, i64>)>,
    sensors: HashMap<String, i64>,
    trails: HashMap<String, i64>,
    src: HashMap<Addr, i64>,
    dst: HashMap<Addr, i64>,
}

/// An address as stored (16 bytes).
type Addr = [u8; 16];

/// Add `n` to `key`'s count, allocating a key only the first time it is seen.
fn add_trail(map: &mut HashMap<String, i64>, key: &str, n: i64) {
    match map.get_mut(key) {
        Some(c) => *c += n,
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

fn add_addr(map: &mut HashMap<Addr, i64>, key: &[u8], n: i64) {
    if let Ok(a) = Addr::try_from(key) {
        *map.entry(a).or_default() += n;
    }
}

impl Acc {
    fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket) * self.bucket
    }
    fn counts(&mut self, t: i64, sensor: &str, kind: &str, sev: Severity, n: i64) {
        let b = self.bucket_of(t);
        let e = self.buckets.entry(b).or_default();
        e.0.add(sev, n);
        *e.1.entry(kind.to_string()).or_default() += n;
        *self.sensors.entry(sensor.to_string()).or_default() += n;
    }
}

fn auto_bucket(from: i64, to: i64) -> i64 {
    let want = (to - from) / TARGET_BUCKETS / 1_000_000;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= want)
        .unwrap_or(86_400)
}

/// Which dimensions a pass over the events adds.
#[derive(Debug, Clone, Copy)]
struct Dims {
    counts: bool,
    tops: bool,
}

/// Add (sign 1) or subtract (-1) the events matching `w`.
fn from_events(
    conn: &Connection,
    w: &Where,
    acc: &mut Acc,
    sign: i64,
    dims: Dims,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT time, sensor, kind, severity, trail, src, dst FROM events WHERE {}",
        w.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(w.params.iter()))?;
    while let Some(r) = rows.next()? {
        if dims.counts {
            let time: i64 = r.get(0)?;
            let sensor = r.get_ref(1)?.as_str().unwrap_or("");
            let kind = r.get_ref(2)?.as_str().unwrap_or("");
            let sev: i64 = r.get(3)?;
            acc.counts(time, sensor, kind, severity_from_code(sev), sign);
        }
        if dims.tops {
            add_trail(&mut acc.trails, r.get_ref(4)?.as_str().unwrap_or(""), sign);
            add_addr(&mut acc.src, r.get_ref(5)?.as_blob().unwrap_or(&[]), sign);
            add_addr(&mut acc.dst, r.get_ref(6)?.as_blob().unwrap_or(&[]), sign);
        }
    }
    Ok(())
}

fn from_rollups(conn: &Connection, from: i64, to: i64, acc: &mut Acc) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT minute, sensor, kind, severity, n FROM rollup_minute WHERE minute >= ?1 AND minute < ?2",
    )?;
    let mut rows = stmt.query([from / MINUTE, to / MINUTE])?;
    while let Some(r) = rows.next()? {
        let minute: i64 = r.get(0)?;
        let sensor = r.get_ref(1)?.as_str().unwrap_or("");
        let kind = r.get_ref(2)?.as_str().unwrap_or("");
        let sev: i64 = r.get(3)?;
        let n: i64 = r.get(4)?;
        acc.counts(minute * MINUTE, sensor, kind, severity_from_code(sev), n);
    }
    // Whole hours from the hourly rollups (summed here: a GROUP BY would sort them
    // first), the rest from the events.
    let h0 = (from + HOUR - 1).div_euclid(HOUR);
    let h1 = to.div_euclid(HOUR);
    if h0 < h1 {
        for (table, map) in [
            ("rollup_hour_src", &mut acc.src),
            ("rollup_hour_dst", &mut acc.dst),
        ] {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT addr, n FROM {table} WHERE hour >= ?1 AND hour < ?2"
            ))?;
            let mut rows = stmt.query([h0, h1])?;
            while let Some(r) = rows.next()? {
                add_addr(map, r.get_ref(0)?.as_blob().unwrap_or(&[]), r.get(1)?);
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT trail, n FROM rollup_hour_trail WHERE hour >= ?1 AND hour < ?2",
        )?;
        let mut rows = stmt.query([h0, h1])?;
        while let Some(r) = rows.next()? {
            add_trail(
                &mut acc.trails,
                r.get_ref(0)?.as_str().unwrap_or(""),
                r.get(1)?,
            );
        }
        let tops = Dims {
            counts: false,
            tops: true,
        };
        for (a, b) in [(from, h0 * HOUR), (h1 * HOUR, to)] {
            if a < b {
                let mut w = Where::default();
                w.time(Some(a), Some(b));
                from_events(conn, &w, acc, 1, tops)?;
            }
        }
    } else {
        let mut w = Where::default();
        w.time(Some(from), Some(to));
        from_events(
            conn,
            &w,
            acc,
            1,
            Dims {
                counts: false,
                tops: true,
            },
        )?;
    }
    Ok(())
}

/// The `n` largest counts, largest first (ties by key).
fn top<K: Ord>(map: HashMap<K, i64>, n: usize) -> Vec<Top<K>> {
    let mut v: Vec<Top<K>> = map
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .map(|(key, count)| Top { key, count })
        .collect();
    let order = |a: &Top<K>, b: &Top<K>| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key));
    if n < v.len() {
        v.select_nth_unstable_by(n, order);
        v.truncate(n);
    }
    v.sort_by(order);
    v
}

/// The summary of `[from, to)` as `vis` may see it.
pub fn summary(
    conn: &Connection,
    q: &SummaryQuery,
    vis: &Visibility,
) -> Result<Summary, StoreError> {
    if q.to <= q.from {
        return Err(StoreError::Invalid("`to` must be after `from`".into()));
    }
    let from = q.from.div_euclid(MINUTE) * MINUTE;
    let to = (q.to + MINUTE - 1).div_euclid(MINUTE) * MINUTE;
    let bucket_secs = q.bucket_secs.unwrap_or_else(|| auto_bucket(from, to));
    if bucket_secs < 60 || bucket_secs % 60 != 0 {
        return Err(StoreError::Invalid(
            "`bucket` must be a whole number of minutes".into(),
        ));
    }
    if (to - from) / (bucket_secs * 1_000_000) > MAX_BUCKETS {
        return Err(StoreError::Invalid(format!(
            "more than {MAX_BUCKETS} buckets: choose a larger `bucket`"
        )));
    }
    let mut acc = Acc {
        bucket: bucket_secs * 1_000_000,
        ..Acc::default()
    };
    let all = Dims {
        counts: true,
        tops: true,
    };
    if !vis.scope.is_empty() {
        let mut w = Where::default();
        w.time(Some(from), Some(to));
        w.scope(&vis.scope);
        if let Some(h) = w.hidden_by(&vis.rules, true, true) {
            w.push(format!("NOT {h}"));
        }
        from_events(conn, &w, &mut acc, 1, all)?;
    } else {
        from_rollups(conn, from, to, &mut acc)?;
        let mut w = Where::default();
        w.time(Some(from), Some(to));
        if let Some(h) = w.hidden_by(&vis.rules, true, true) {
            w.push(h);
            from_events(conn, &w, &mut acc, -1, all)?;
        }
    }
    let mut severity = BySeverity::default();
    let mut kinds: BTreeMap<String, i64> = BTreeMap::new();
    let mut buckets = Vec::new();
    for (time, (sev, k)) in acc.buckets {
        let total = sev.total();
        if total <= 0 {
            continue;
        }
        severity.low += sev.low;
        severity.medium += sev.medium;
        severity.high += sev.high;
        let k: BTreeMap<String, i64> = k.into_iter().filter(|(_, n)| *n > 0).collect();
        for (name, n) in &k {
            *kinds.entry(name.clone()).or_default() += n;
        }
        buckets.push(Bucket {
            time,
            total,
            severity: sev,
            kinds: k,
        });
    }
    let n = q.top.min(MAX_TOP);
    let addr_top = |m: HashMap<Addr, i64>| {
        top(m, n)
            .into_iter()
            .filter_map(|t| {
                Some(Top {
                    key: ip_from_bytes(&t.key)?,
                    count: t.count,
                })
            })
            .collect::<Vec<_>>()
    };
    Ok(Summary {
        from,
        to,
        bucket_secs,
        total: severity.total(),
        severity,
        kinds,
        buckets,
        top_sources: addr_top(acc.src),
        top_destinations: addr_top(acc.dst),
        top_trails: top(acc.trails, n),
        top_sensors: top(acc.sensors, n),
    })
}
