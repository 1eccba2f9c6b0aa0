//! How fast the overview renders in a real browser with 2 million events in the chosen
//! range (the last 24 h). Events go straight into the store (not over HTTP) so that the
//! setup takes seconds, not minutes. A measurement, not a test of a number: run it with
//!
//! `cargo test --release -p spoor-server --test dashboard_bench -- --ignored --nocapture`
//!
//! and record the result in BENCHMARKS.md.

mod browser;
mod common;

use std::time::Instant;

use serde_json::json;
use spoor_core::{Context, Event, EventId, EventKind, Micros, Proto, SensorStatus, Severity};
use spoor_server::store::Row;

const EVENTS: u64 = 2_000_000;
const BATCH: u64 = 20_000;
const RUNS: usize = 7;

const KINDS: [EventKind; 6] = [
    EventKind::Ip,
    EventKind::Dns,
    EventKind::Url,
    EventKind::Sni,
    EventKind::IpPort,
    EventKind::Heuristic,
];

fn event(n: u64, now: i64) -> Event {
    // A cheap mix: 4 sensors, 50,000 sources, 20,000 destinations, 5,000 trails, spread
    // over the last 20 hours.
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Within the last 20 h: the browser's "last 24 h" starts later than `now` (storing
    // takes minutes), and must still hold every event. Times rise with `n` (with up to a
    // second of jitter), as sensors ship their events.
    const SPAN: i64 = 72_000_000_000;
    let time = now - 60_000_000 - SPAN + n as i64 * (SPAN / EVENTS as i64) + (h % 1_000_000) as i64;
    let src = 0x0a00_0000u32 + (h >> 20) as u32 % 50_000;
    let dst = 0xc633_6400u32 + (h >> 40) as u32 % 20_000;
    let sev = match h % 10 {
        0 => Severity::High,
        1..=3 => Severity::Medium,
        _ => Severity::Low,
    };
    Event {
        id: EventId(u128::from(n) + 1),
        time: Micros(time),
        sensor: format!("sensor-{}", h % 4),
        src: std::net::Ipv4Addr::from(src).into(),
        src_port: Some(40_000 + (h % 20_000) as u16),
        dst: std::net::Ipv4Addr::from(dst).into(),
        dst_port: Some(443),
        proto: Proto::TCP,
        kind: KINDS[(h >> 8) as usize % KINDS.len()],
        trail: format!("trail-{}.example", (h >> 30) % 5_000),
        info: "bench (malware)".into(),
        reference: "(bench)".into(),
        severity: sev,
        offender: None,
        answers: vec![],
        count: 1,
        first_seen: Micros(time),
        last_seen: Micros(time),
        context: Context::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release, see the file's doc"]
async fn overview_renders_two_million_events() {
    let run = common::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let t = Instant::now();
    for start in (0..EVENTS).step_by(BATCH as usize) {
        let rows: Vec<Row> = (start..start + BATCH)
            .map(|n| Row::new(event(n, now)))
            .collect();
        let status = SensorStatus {
            name: format!("sensor-{}", start / BATCH % 4),
            version: "bench".into(),
            uptime_secs: 1,
            packets: 0,
            drops: 0,
            trails_age_secs: None,
            spool_dropped: 0,
        };
        let ack = run.server.store().ingest(status, rows).await.unwrap();
        assert_eq!(ack.accepted, BATCH);
    }
    eprintln!(
        "stored {EVENTS} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let admin = run.admin().await;
    let r = admin
        .post(
            "/api/v1/users",
            json!({"name": "ana", "password": "bench-password-1", "role": "analyst"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // The API alone, for comparison.
    let mut api = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let s = admin
            .get_json(&format!(
                "/api/v1/summary?from={}&to={now}&top=10",
                now - 86_400_000_000
            ))
            .await;
        api.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(s["total"], EVENTS);
    }

    let driver = browser::Driver::start().await;
    let b = driver.browser(1366, 1000).await;
    b.goto(&format!("{}/", run.base)).await;
    b.type_into(&b.find("#login-user").await, "ana").await;
    b.type_into(&b.find("#login-password").await, "bench-password-1")
        .await;
    b.click(&b.find("#login-form button[type=submit]").await)
        .await;
    b.wait_until("sign-in", "return document.body.dataset.overviewMs")
        .await;
    let mut page = Vec::new();
    for _ in 0..RUNS {
        // A fresh page load each time: the time runs from navigation start (the HTML
        // request) to the charts drawn, in the page's own clock.
        b.goto("about:blank").await;
        b.goto(&format!("{}/#/?range=24h", run.base)).await;
        let ms = b
            .wait_until("the overview", "return document.body.dataset.overviewMs")
            .await;
        let ms: f64 = ms.as_str().unwrap().parse().unwrap();
        let total = b
            .text(&b.find("#total").await)
            .await
            .replace([',', '.', ' ', '\u{a0}', '\u{202f}'], "");
        assert_eq!(total, EVENTS.to_string());
        // 20 hours of events in 15-minute buckets: 80 drawn (the edges may split).
        let buckets = b.count("[data-chart=severity-over-time] .bucket").await;
        assert!(buckets >= 79, "{buckets} buckets drawn");
        eprintln!("overview drawn in {ms:.0} ms ({buckets} buckets)");
        page.push(ms);
    }
    b.screenshot("overview-2m").await;
    b.close().await;
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (a0, a1, a2) = med(&mut api);
    let (p0, p1, p2) = med(&mut page);
    eprintln!("summary API, {RUNS} runs: min {a0:.0} ms, median {a1:.0} ms, max {a2:.0} ms");
    eprintln!(
        "overview in the browser (navigation start → charts drawn), {RUNS} runs: min {p0:.0} ms, median {p1:.0} ms, max {p2:.0} ms"
    );
}
