//! The database schema as a list of versioned migrations. `PRAGMA user_version` holds how
//! many have run; each runs once, in its own transaction, in order. Never edit a released
//! migration: append a new one.
//!
//! Addresses are stored as 16-byte BLOBs (IPv4 as `::ffff:a.b.c.d`), so that a CIDR is a
//! byte range and uses the index. Times are microseconds since the Unix epoch.

use rusqlite::Connection;

use super::StoreError;

/// Each entry is one migration; the position + 1 is the schema version it brings.
const MIGRATIONS: &[&str] = &[
    // 1: events, rollups, sensors, triage, users, sessions, audit.
    r#"
    CREATE TABLE events (
        id        BLOB PRIMARY KEY,            -- 16-byte event id: ingest is idempotent
        time      INTEGER NOT NULL,            -- µs, packet time of the first occurrence
        sensor    TEXT NOT NULL,
        src       BLOB NOT NULL,
        dst       BLOB NOT NULL,
        kind      TEXT NOT NULL,
        severity  INTEGER NOT NULL,            -- 0 low, 1 medium, 2 high
        trail     TEXT NOT NULL,
        offender  BLOB,
        received  INTEGER NOT NULL,            -- µs, wall clock at ingest
        body      TEXT NOT NULL                -- the whole event as JSON (as stored: pseudonymised)
    );
    CREATE INDEX events_time ON events(time);
    CREATE INDEX events_src ON events(src, time);
    CREATE INDEX events_dst ON events(dst, time);
    CREATE INDEX events_trail ON events(trail, time);
    CREATE INDEX events_sensor ON events(sensor, time);
    CREATE INDEX events_kind ON events(kind, severity, time);

    -- Counts maintained at ingest so that a day's summary reads thousands of rows, not millions.
    CREATE TABLE rollup_minute (
        minute INTEGER NOT NULL, sensor TEXT NOT NULL, kind TEXT NOT NULL,
        severity INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (minute, sensor, kind, severity)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_hour_trail (
        hour INTEGER NOT NULL, trail TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (hour, trail)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_hour_src (
        hour INTEGER NOT NULL, addr BLOB NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (hour, addr)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_hour_dst (
        hour INTEGER NOT NULL, addr BLOB NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (hour, addr)
    ) WITHOUT ROWID;

    CREATE TABLE sensors (
        name TEXT PRIMARY KEY,
        last_seen INTEGER NOT NULL,            -- µs, wall clock of the last batch
        version TEXT NOT NULL,
        uptime_secs INTEGER NOT NULL,
        packets INTEGER NOT NULL,
        drops INTEGER NOT NULL,
        trails_age_secs INTEGER,
        spool_dropped INTEGER NOT NULL,
        events INTEGER NOT NULL DEFAULT 0      -- events stored from it
    );

    -- Triage, shared by the team.
    CREATE TABLE suppressions (
        id INTEGER PRIMARY KEY,
        trail TEXT,                            -- NULL: any trail
        src BLOB,                              -- NULL: any source
        comment TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        CHECK (trail IS NOT NULL OR src IS NOT NULL)
    );
    CREATE TABLE hidden_trails (
        trail TEXT PRIMARY KEY,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE triage (
        event_id BLOB PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('new', 'investigating', 'resolved')),
        updated_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        event_id BLOB NOT NULL,
        author TEXT NOT NULL,
        time INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX notes_event ON notes(event_id);

    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,           -- argon2id PHC string
        role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
        scope TEXT NOT NULL DEFAULT '[]',      -- JSON array of CIDRs; empty: everything
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,           -- SHA-256 of the cookie value
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL                   -- JSON
    );
    CREATE INDEX audit_time ON audit(time);

    CREATE TABLE privacy_keys (
        period INTEGER PRIMARY KEY,
        key BLOB NOT NULL
    );
    "#,
    // 2: the time index covers every column a summary reads, so the parts of a range
    // that the rollups do not hold (partial hours, hidden events, scoped users) are
    // counted from the index alone, in time order, without a lookup per event.
    r#"
    DROP INDEX events_time;
    CREATE INDEX events_time ON events(time, sensor, kind, severity, trail, src, dst);
    "#,
    // 3: the address indexes are keyed by network (/24, /48; `codec::net_key`) and
    // time, so that events of one network are appended at one place: keyed by address,
    // nearly every event wrote its own index page and ingest slowed as the indexes grew.
    r#"
    ALTER TABLE events ADD COLUMN src_net BLOB GENERATED ALWAYS AS (CASE WHEN substr(src, 1, 12) = x'00000000000000000000ffff'
        THEN substr(src, 1, 15) WHEN substr(src, 1, 6) = x'000000000000' THEN src ELSE substr(src, 1, 6) END) VIRTUAL;
    ALTER TABLE events ADD COLUMN dst_net BLOB GENERATED ALWAYS AS (CASE WHEN substr(dst, 1, 12) = x'00000000000000000000ffff'
        THEN substr(dst, 1, 15) WHEN substr(dst, 1, 6) = x'000000000000' THEN dst ELSE substr(dst, 1, 6) END) VIRTUAL;
    DROP INDEX events_src;
    DROP INDEX events_dst;
    CREATE INDEX events_src ON events(src_net, time, src);
    CREATE INDEX events_dst ON events(dst_net, time, dst);
    "#,
    // 4: free-text search (`text`): a trigram index over each event's text
    // (`event_text(body)`), filled behind ingest up to `text_indexed.upto`.
    r#"
    CREATE VIRTUAL TABLE events_text USING fts5(text, tokenize = 'trigram', detail = 'none', content = '', contentless_delete = 1);
    CREATE TABLE text_indexed (upto INTEGER NOT NULL);
    INSERT INTO text_indexed VALUES (0);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Bring `conn` to [`SCHEMA_VERSION`]. A database from a newer Spoor is refused.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_gets_the_covering_time_index_and_keeps_its_events() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO events (id, time, sensor, src, dst, kind, severity, trail, received, body)
             VALUES (x'01', 5, 's', x'02', x'03', 'ip', 0, 't', 6, '{}')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info('events_time') ORDER BY seqno")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            columns,
            ["time", "sensor", "kind", "severity", "trail", "src", "dst"]
        );
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // A summary's pass over the events reads the index alone.
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT time, sensor, kind, severity, trail, src, dst
                 FROM events WHERE time >= 0 AND time < 10",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX events_time"), "{plan}");
    }

    #[test]
    fn the_generated_network_columns_match_net_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for (i, a) in crate::store::codec::tests::addrs().iter().enumerate() {
            conn.execute(
                "INSERT INTO events (id, time, sensor, src, dst, kind, severity, trail, received, body)
                 VALUES (?1, 5, 's', ?2, ?2, 'ip', 0, 't', 6, '{}')",
                rusqlite::params![i as i64, &a[..]],
            )
            .unwrap();
            let (s, d): (Vec<u8>, Vec<u8>) = conn
                .query_row(
                    "SELECT src_net, dst_net FROM events WHERE id = ?1",
                    [i as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let want = crate::store::codec::net_key(a);
            assert_eq!((s.as_slice(), d.as_slice()), (want, want), "{a:?}");
        }
    }
}
