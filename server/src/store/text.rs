//! Free-text search: a trigram index (SQLite FTS5) over each event's text, built behind
//! ingest.
//!
//! An event's searchable text ([`event_text`]: addresses, trail, feed info and reference,
//! DNS answers and the protocol context) is derived from its stored JSON by the SQL
//! function `event_text(body)` ([`register`]), so it costs ingest nothing. A substring
//! search by `LIKE` must read every row of the range (about 0.4 s for 2 million events);
//! the trigram index `events_text` finds the rows holding the text's trigrams instead.
//! Indexing costs about 10 µs per event, more than storing the event, so the writer does
//! it while ingest pauses ([`index_chunk`]), never in the ingest transaction.
//! `text_indexed.upto` is the highest rowid indexed; a search also scans the rows above
//! it, so its results are complete whether the index has caught up or not.

use std::fmt::Write as _;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, params};
use spoor_core::Event;

use super::StoreError;
use super::search::{Where, like_escape};

/// A text found in more events than this (anywhere in time) is common: walking the
/// time index and testing each event finds a page of it sooner than gathering every
/// match and sorting them.
const COMMON: i64 = 20_000;
/// Trigrams of a text whose frequency is probed, at most (spread over the text).
const PROBES: usize = 16;
/// A probe counts up to this many events (about 2 ms); a trigram in more is "frequent".
const PROBE_CAP: i64 = 50_000;
/// Trigrams whose events are intersected for the candidates.
const PICKED: usize = 3;

/// Make `event_text(body)` ([`event_text`] of a stored event) known to `conn`. A body
/// that is not an event is searched as it is.
pub fn register(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.create_scalar_function(
        "event_text",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let body = ctx
                .get_raw(0)
                .as_str()
                .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
            Ok(match serde_json::from_str::<Event>(body) {
                Ok(e) => event_text(&e),
                Err(_) => body.to_string(),
            })
        },
    )
}

/// The text free-text search looks in, values separated by a space.
pub fn event_text(e: &Event) -> String {
    let mut out = String::with_capacity(160);
    let _ = write!(out, "{} {}", e.src, e.dst);
    for a in [&e.trail, &e.info, &e.reference] {
        out.push(' ');
        out.push_str(a);
    }
    for a in &e.answers {
        let _ = write!(out, " {a}");
    }
    let c = &e.context;
    let mut add = |s: &String| {
        out.push(' ');
        out.push_str(s);
    };
    if let Some(h) = &c.http {
        [&h.method, &h.host, &h.uri].into_iter().for_each(&mut add);
        h.user_agent.iter().chain(&h.xff).for_each(&mut add);
    }
    if let Some(d) = &c.dns {
        [&d.qname, &d.qtype].into_iter().for_each(&mut add);
        d.rcode.iter().for_each(&mut add);
    }
    if let Some(t) = &c.tls {
        [&t.sni, &t.ja4, &t.ja3, &t.cert_sha1]
            .into_iter()
            .flatten()
            .for_each(&mut add);
    }
    if let Some(h) = &c.heuristic {
        add(&h.name);
        add(&h.reason);
    }
    out
}

/// The condition "the event's text contains `needle`" (case-insensitive), using the
/// trigram index when that is the faster way. Run it and the query that uses it in one
/// transaction: the candidates and the mark of what is indexed must be one snapshot.
///
/// FTS5 reads the whole list of events of every trigram in a query, and a trigram of a
/// common word lists nearly every event (70 ms for 2 million); so the candidates are
/// the events holding the rarest few of the text's trigrams (each probed with a capped
/// count), and `LIKE` confirms them.
pub(crate) fn contains(
    conn: &Connection,
    w: &mut Where,
    needle: &str,
) -> Result<String, StoreError> {
    contains_with(conn, w, needle, COMMON)
}

fn contains_with(
    conn: &Connection,
    w: &mut Where,
    needle: &str,
    common: i64,
) -> Result<String, StoreError> {
    let like = w.param(format!("%{}%", like_escape(needle)));
    let scan = format!("event_text(body) LIKE {like} ESCAPE '\\'");
    let trigrams = trigrams(needle);
    // A trigram index knows nothing of texts shorter than three characters.
    if trigrams.is_empty() {
        return Ok(scan);
    }
    let mut count = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM events_text WHERE events_text MATCH ?1 LIMIT ?2)",
    )?;
    let step = trigrams.len().div_ceil(PROBES);
    let mut ranked = Vec::new();
    for t in trigrams.iter().step_by(step) {
        let n: i64 = count.query_row(params![t, PROBE_CAP], |r| r.get(0))?;
        ranked.push((n, t.as_str()));
    }
    ranked.sort();
    // The rarest trigrams; the frequent ones only when there is nothing rarer.
    let rare = ranked.iter().filter(|(n, _)| *n < PROBE_CAP).count();
    let picked: Vec<&str> = ranked
        .iter()
        .take(if rare > 0 { rare.min(PICKED) } else { PICKED })
        .map(|(_, t)| *t)
        .collect();
    let query = picked.join(" AND ");
    let candidates: i64 = count.query_row(params![query, common + 1], |r| r.get(0))?;
    if candidates > common {
        return Ok(scan);
    }
    let query = w.param(query);
    Ok(format!(
        "({scan} AND rowid IN (SELECT rowid FROM events_text WHERE events_text MATCH {query}
                               UNION ALL
                               SELECT rowid FROM events WHERE rowid > (SELECT upto FROM text_indexed)))"
    ))
}

/// The distinct trigrams of `needle`, each quoted as an FTS5 string.
fn trigrams(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        let t: String = w.iter().collect::<String>().to_lowercase();
        let quoted = format!("\"{}\"", t.replace('"', "\"\""));
        if !out.contains(&quoted) {
            out.push(quoted);
        }
    }
    out
}

/// Index the next `max` events at most; says whether more wait. The caller commits.
pub(super) fn index_chunk(conn: &Connection, max: i64) -> Result<bool, rusqlite::Error> {
    let upto: i64 = conn.query_row("SELECT upto FROM text_indexed", [], |r| r.get(0))?;
    let (last, n): (Option<i64>, i64) = conn.query_row(
        "SELECT max(rowid), count(*) FROM (SELECT rowid FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)",
        params![upto, max],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(last) = last else {
        return Ok(false);
    };
    conn.execute(
        "INSERT INTO events_text (rowid, text) SELECT rowid, event_text(body) FROM events WHERE rowid > ?1 AND rowid <= ?2",
        params![upto, last],
    )?;
    conn.execute("UPDATE text_indexed SET upto = ?1", [last])?;
    Ok(n == max)
}

/// Drop the index entries of the events `victims` selects (a `SELECT rowid ...`, run in
/// the same transaction just before they are deleted).
pub(super) fn forget(
    conn: &Connection,
    victims: &str,
    p: impl rusqlite::Params,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        &format!(
            "DELETE FROM events_text WHERE rowid IN ({victims}) AND rowid <= (SELECT upto FROM text_indexed)"
        ),
        p,
    )?;
    Ok(())
}

/// After events were deleted: SQLite gives the next event the highest rowid left + 1, so
/// a mark above it would take new events for indexed ones.
pub(super) fn lower_mark(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute(
        "UPDATE text_indexed SET upto = min(upto, coalesce((SELECT max(rowid) FROM events), 0))",
        [],
    )?;
    Ok(())
}

/// Events stored but not yet in the trigram index.
pub fn behind(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM events WHERE rowid > (SELECT upto FROM text_indexed)",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{retention, schema};

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        schema::migrate(&mut conn).unwrap();
        conn
    }

    /// An event whose text is `text` between its two addresses and empty info and
    /// reference.
    fn insert(conn: &Connection, time: i64, text: &str) {
        let e = Event {
            id: spoor_core::EventId(time as u128 + 1),
            time: spoor_core::Micros(time),
            sensor: "s".into(),
            src: "192.0.2.1".parse().unwrap(),
            src_port: None,
            dst: "192.0.2.2".parse().unwrap(),
            dst_port: None,
            proto: spoor_core::Proto::TCP,
            kind: spoor_core::EventKind::Ip,
            trail: text.into(),
            info: String::new(),
            reference: String::new(),
            severity: spoor_core::Severity::Low,
            offender: None,
            answers: vec![],
            count: 1,
            first_seen: spoor_core::Micros(time),
            last_seen: spoor_core::Micros(time),
            context: Default::default(),
        };
        conn.execute(
            "INSERT INTO events (id, time, sensor, src, dst, kind, severity, trail, received, body)
             VALUES (randomblob(16), ?1, 's', x'00', x'00', 'ip', 0, 't', 0, ?2)",
            params![time, serde_json::to_string(&e).unwrap()],
        )
        .unwrap();
    }

    fn found(conn: &Connection, needle: &str, common: i64) -> Vec<i64> {
        let mut w = Where::default();
        let c = contains_with(conn, &mut w, needle, common).unwrap();
        w.push(c);
        let sql = format!("SELECT rowid FROM events WHERE {} ORDER BY rowid", w.sql());
        let mut stmt = conn.prepare(&sql).unwrap();
        stmt.query_map(rusqlite::params_from_iter(w.params.iter()), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn expected(conn: &Connection, needle: &str) -> Vec<i64> {
        let needle = needle.to_ascii_lowercase();
        let mut stmt = conn
            .prepare("SELECT rowid, body FROM events ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(_, body)| {
                let e: Event = serde_json::from_str(body).unwrap();
                event_text(&e).to_ascii_lowercase().contains(&needle)
            })
            .map(|(id, _)| id)
            .collect()
    }

    const NEEDLES: &[&str] = &[
        "EVIL3.example",
        "mozilla/5.0 (windows",
        "nxdomain",
        "10.0.0.1",
        "2001:db8::1",
        "ab",
        "gate.php",
        "\"quoted\"",
        "100%",
        "zzzz-nothing",
        "(threshold 10)",
    ];

    fn fill(conn: &Connection, n: i64) {
        for i in 0..n {
            let text = match i % 3 {
                0 => format!(
                    "10.0.0.{i} 198.51.100.7 evil{}.example emotet (malware) abuse.ch GET evil.example /gate.php Mozilla/5.0 (Windows NT 10.0)",
                    i % 7
                ),
                1 => format!("10.0.1.{i} 203.0.113.9 bad.example dns A NXDOMAIN"),
                _ => format!(
                    "fe80::{i:x} 2001:db8::1 port_scan 12 distinct ports within 30 s (threshold 10)"
                ),
            };
            insert(conn, i, &text);
        }
    }

    fn check_all(conn: &Connection, state: &str) {
        for needle in NEEDLES {
            let want = expected(conn, needle);
            for common in [0, COMMON] {
                assert_eq!(
                    found(conn, needle, common),
                    want,
                    "{needle:?}, {state}, common above {common}"
                );
            }
        }
    }

    #[test]
    fn free_text_finds_the_same_events_whether_indexed_or_not() {
        let conn = db();
        fill(&conn, 200);
        assert_eq!(behind(&conn).unwrap(), 200);
        check_all(&conn, "nothing indexed");
        assert!(index_chunk(&conn, 90).unwrap());
        assert_eq!(behind(&conn).unwrap(), 110);
        check_all(&conn, "90 indexed");
        while index_chunk(&conn, 90).unwrap() {}
        assert_eq!(behind(&conn).unwrap(), 0);
        check_all(&conn, "all indexed");
        // More events after the index caught up.
        fill(&conn, 30);
        check_all(&conn, "30 new");
        // A rare text is served by the index, not by reading every event.
        let mut w = Where::default();
        let c = contains(&conn, &mut w, "gate.php").unwrap();
        assert!(c.contains("events_text MATCH"), "{c}");
    }

    #[test]
    fn retention_forgets_indexed_text_and_new_events_are_found() {
        let conn = db();
        fill(&conn, 50);
        while index_chunk(&conn, 1000).unwrap() {}
        let policy = retention::Policy {
            max_event_age: 3_600_000_000,
            max_audit_age: 3_600_000_000,
            max_size: 0,
        };
        // Every event is from the first µs of 1970: all go.
        while retention::step(&conn, &policy, 100 * 3_600_000_000)
            .unwrap()
            .more
        {}
        let left: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        let indexed: i64 = conn
            .query_row(
                "SELECT count(*) FROM events_text WHERE events_text MATCH '\"exa\"'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 0);
        // SQLite starts rowids again at 1: the new events are not taken for indexed ones.
        insert(&conn, 200 * 3_600_000_000, "new.example after retention");
        assert_eq!(behind(&conn).unwrap(), 1);
        assert_eq!(found(&conn, "new.example", COMMON), [1]);
        while index_chunk(&conn, 1000).unwrap() {}
        assert_eq!(found(&conn, "new.example", COMMON), [1]);
        assert!(found(&conn, "evil", COMMON).is_empty());
    }

    #[test]
    fn the_sql_function_reads_the_text_of_a_stored_event() {
        use spoor_core::{Context, DnsContext, HttpContext};
        let conn = db();
        insert(&conn, 7, "evil.example");
        let body: String = conn
            .query_row("SELECT body FROM events", [], |r| r.get(0))
            .unwrap();
        let mut e: Event = serde_json::from_str(&body).unwrap();
        e.answers = vec!["203.0.113.9".parse().unwrap(), "::1".parse().unwrap()];
        e.context = Context {
            http: Some(HttpContext {
                method: "GET".into(),
                host: "evil.example".into(),
                uri: "/gate.php".into(),
                user_agent: Some("Mozilla/5.0 (X11)".into()),
                xff: None,
            }),
            dns: Some(DnsContext {
                qname: "x.evil.example".into(),
                qtype: "A".into(),
                rcode: Some("NXDOMAIN".into()),
            }),
            ..Context::default()
        };
        let want = "192.0.2.1 192.0.2.2 evil.example   203.0.113.9 ::1 GET evil.example /gate.php Mozilla/5.0 (X11) x.evil.example A NXDOMAIN";
        assert_eq!(event_text(&e), want);
        let sql = |body: &str| -> String {
            conn.query_row("SELECT event_text(?1)", [body], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(sql(&serde_json::to_string(&e).unwrap()), want);
        // Not an event: searched as it is.
        assert_eq!(sql("{\"note\": 1}"), "{\"note\": 1}");
    }
}
