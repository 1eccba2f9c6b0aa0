//! Query benchmark (release): 2 million events in one day stored through the writer
//! (rollups included), then the day's summary and first pages of filtered searches,
//! each timed over several runs (median and worst reported).
//!
//! ```text
//! cargo run --release -p spoor-server --example query_bench -- [EVENTS] [DB_PATH]
//! ```
//! With DB_PATH given and already filled, the fill is skipped (to rerun queries).

use std::time::{Duration, Instant};

use spoor_core::{Context, Event, EventId, EventKind, Micros, Proto, SensorStatus, Severity};
use spoor_server::store::search::{self, EventFilter, Visibility};
use spoor_server::store::summary::{self, SummaryQuery};
use spoor_server::store::{Row, Store};

/// 2026-01-01T00:00:00Z in µs.
const DAY0: i64 = 1_767_225_600_000_000;
const DAY: i64 = 86_400_000_000;
const RUNS: usize = 7;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A plausible day: 4 sensors, 5000 internal hosts, 20000 remote hosts, 3000 trails
/// with a skew (a few trails and hosts make most events).
fn event(seq: u64, rng: &mut Rng) -> Event {
    let r = rng.next();
    let t = DAY0 + (r % DAY as u64) as i64;
    let skew = |x: u64, n: u64| {
        if x.is_multiple_of(4) {
            x % (n / 50).max(1)
        } else {
            x % n
        }
    };
    let src_n = skew(r >> 12, 5000);
    let dst_n = skew(r >> 28, 20000);
    let sev = match (r >> 44) % 10 {
        0 => Severity::High,
        1..=3 => Severity::Medium,
        _ => Severity::Low,
    };
    let kind = [
        EventKind::Ip,
        EventKind::Dns,
        EventKind::Url,
        EventKind::Sni,
        EventKind::Heuristic,
    ][(r >> 50) as usize % 5];
    Event {
        id: EventId(seq as u128 + 1),
        time: Micros(t),
        sensor: format!("sensor{}", (r >> 8) % 4),
        src: format!(
            "10.{}.{}.{}",
            src_n / 65536,
            (src_n / 256) % 256,
            src_n % 256
        )
        .parse()
        .unwrap(),
        src_port: Some(1024 + (r >> 32) as u16 % 60000),
        dst: format!(
            "198.{}.{}.{}",
            18 + dst_n / 65536,
            (dst_n / 256) % 256,
            dst_n % 256
        )
        .parse()
        .unwrap(),
        dst_port: Some(443),
        proto: Proto::TCP,
        kind,
        trail: format!("bad{}.example", skew(r >> 20, 3000)),
        info: "emotet (malware)".into(),
        reference: "(static)".into(),
        severity: sev,
        offender: None,
        answers: vec![],
        count: 1,
        first_seen: Micros(t),
        last_seen: Micros(t),
        context: Context::default(),
    }
}

fn time<T>(name: &str, mut f: impl FnMut() -> T) -> T {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        out = Some(f());
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<58} median {:>8.1} ms   worst {:>8.1} ms",
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    out.unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2_000_000);
    let keep = std::env::args().nth(2);
    let tmp = tempfile::tempdir().unwrap();
    let path = keep
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("spoor.db"));
    let store = Store::open(&path).unwrap();
    let have: i64 = store
        .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?))
        .unwrap();
    if have < n as i64 {
        let t = Instant::now();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let status = SensorStatus {
            name: "bench".into(),
            ..SensorStatus::default()
        };
        let mut seq = 0;
        while seq < n {
            let k = (n - seq).min(5000);
            let rows: Vec<Row> = (seq..seq + k)
                .map(|q| Row::new(event(q, &mut rng)))
                .collect();
            seq += k;
            store.ingest(status.clone(), rows).await.unwrap();
        }
        println!(
            "stored {n} events in {:.1} s ({:.0} events/s through the writer)",
            t.elapsed().as_secs_f64(),
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
    // The writer indexes text while ingest pauses: wait for it, as a quiet server would.
    let t = Instant::now();
    loop {
        let behind = store
            .read_blocking(spoor_server::store::text::behind)
            .unwrap();
        if behind == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "text index caught up after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let db_mib = std::fs::metadata(&path)
        .map(|m| m.len() / (1024 * 1024))
        .unwrap_or(0);
    println!("database: {db_mib} MiB for {n} events");

    let vis = Visibility::default();
    let day = SummaryQuery {
        from: DAY0,
        to: DAY0 + DAY,
        bucket_secs: None,
        top: 10,
    };
    let s = store
        .read_blocking(|c| {
            Ok(time("summary: the day (00:00-24:00)", || {
                summary::summary(c, &day, &vis).unwrap()
            }))
        })
        .unwrap();
    assert_eq!(s.total, n as i64);
    let shifted = SummaryQuery {
        from: DAY0 + 37 * 60_000_000,
        to: DAY0 + DAY - 23 * 60_000_000,
        ..day
    };
    store
        .read_blocking(|c| {
            Ok(time(
                "summary: 00:37-23:37 (partial hours from events)",
                || summary::summary(c, &shifted, &vis).unwrap(),
            ))
        })
        .unwrap();
    let mut with_rules = Visibility::default();
    store
        .read_blocking(|c| {
            // Three suppressions and a hidden trail, of popular trails and sources.
            c.execute_batch("")?;
            Ok(())
        })
        .unwrap();
    with_rules.rules.hidden_trails = vec!["bad7.example".into()];
    with_rules.rules.suppressions = vec![
        spoor_server::store::triage::Suppression {
            id: 1,
            trail: Some("bad3.example".into()),
            src: None,
            comment: String::new(),
            created_by: String::new(),
            created_at: 0,
        },
        spoor_server::store::triage::Suppression {
            id: 2,
            trail: None,
            src: Some("10.0.0.5".parse().unwrap()),
            comment: String::new(),
            created_by: String::new(),
            created_at: 0,
        },
        spoor_server::store::triage::Suppression {
            id: 3,
            trail: Some("bad11.example".into()),
            src: Some("10.0.0.11".parse().unwrap()),
            comment: String::new(),
            created_by: String::new(),
            created_at: 0,
        },
    ];
    store
        .read_blocking(|c| {
            Ok(time(
                "summary: the day, 3 suppressions + 1 hidden trail",
                || summary::summary(c, &day, &with_rules).unwrap(),
            ))
        })
        .unwrap();
    let scoped = Visibility {
        scope: vec!["10.0.0.0/24".parse().unwrap()],
        ..Visibility::default()
    };
    // Counted from the events, not the rollups: minutes per run at 2 M events.
    // `SPOOR_SKIP_SCOPED=1` leaves it out to rerun the rest.
    if std::env::var_os("SPOOR_SKIP_SCOPED").is_none() {
        store
            .read_blocking(|c| {
                Ok(time("summary: the day, user scoped to 10.0.0.0/24", || {
                    summary::summary(c, &day, &scoped).unwrap()
                }))
            })
            .unwrap();
    }

    let day_filter = EventFilter {
        from: Some(DAY0),
        to: Some(DAY0 + DAY),
        ..EventFilter::default()
    };
    let searches: Vec<(&str, EventFilter)> = vec![
        ("search: the day, no filter", day_filter.clone()),
        (
            "search: severity=high",
            EventFilter {
                severities: vec![Severity::High],
                ..day_filter.clone()
            },
        ),
        (
            "search: kind=dns, severity=high, sensor=bench",
            EventFilter {
                kinds: vec![EventKind::Dns],
                severities: vec![Severity::High],
                sensors: vec!["bench".into()],
                ..day_filter.clone()
            },
        ),
        (
            "search: ip=10.0.0.0/24 (either side)",
            EventFilter {
                ip: vec!["10.0.0.0/24".parse().unwrap()],
                ..day_filter.clone()
            },
        ),
        (
            "search: src=10.0.19.7 (one host)",
            EventFilter {
                src: vec!["10.0.19.7/32".parse().unwrap()],
                ..day_filter.clone()
            },
        ),
        (
            "search: trail text \"bad2999\"",
            EventFilter {
                trail: Some("bad2999".into()),
                ..day_filter.clone()
            },
        ),
        (
            "search: free text \"bad1234.example\"",
            EventFilter {
                text: Some("bad1234.example".into()),
                ..day_filter.clone()
            },
        ),
        (
            "search: free text \"emotet\" (in every event)",
            EventFilter {
                text: Some("emotet".into()),
                ..day_filter.clone()
            },
        ),
        (
            "search: free text \"198.18.5.7\" (addresses)",
            EventFilter {
                text: Some("198.18.5.7".into()),
                ..day_filter.clone()
            },
        ),
        (
            "search: severity=high with the triage rules",
            EventFilter {
                severities: vec![Severity::High],
                ..day_filter.clone()
            },
        ),
    ];
    for (i, (name, f)) in searches.iter().enumerate() {
        let v = if i == searches.len() - 1 {
            &with_rules
        } else {
            &vis
        };
        let page = store
            .read_blocking(|c| {
                Ok(time(&format!("{name} (first 100)"), || {
                    search::search(c, f, v, 100, search::Sort::default(), None).unwrap()
                }))
            })
            .unwrap();
        assert!(!page.events.is_empty(), "{name} found nothing");
    }
    // The events table sorted by another column than time (the dashboard's headers).
    for (name, key) in [
        ("search: the day sorted by src", search::SortKey::Src),
        (
            "search: the day sorted by severity",
            search::SortKey::Severity,
        ),
        ("search: the day sorted by trail", search::SortKey::Trail),
    ] {
        let sort = search::Sort {
            key,
            descending: false,
        };
        let page = store
            .read_blocking(|c| {
                Ok(time(&format!("{name} (first 100)"), || {
                    search::search(c, &day_filter, &vis, 100, sort, None).unwrap()
                }))
            })
            .unwrap();
        assert_eq!(page.events.len(), 100, "{name}");
    }
    tokio::task::block_in_place(|| store.close());
}
