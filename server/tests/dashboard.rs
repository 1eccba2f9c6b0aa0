//! The dashboard in a real browser: headless Chromium driven over WebDriver against a
//! server running in this process on a loopback port, with events ingested through the
//! real ingest API. Screenshots of the overview, the events table and an event detail go
//! to `target/screenshots/`. Without chromedriver and Chromium these tests fail (CI
//! installs them), they never pass silently.

mod browser;
mod common;

use std::time::Duration;

use browser::{Browser, Driver};
use common::{Running, Session, TOKEN, TOKEN2, batch, event};
use serde_json::json;
use spoor_core::{Context, DnsContext, EventKind, HttpContext, Proto, Severity, TlsContext};

/// One browser test at a time: each starts its own Chromium, and the machine is small.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PASSWORD: &str = "dashboard-test-pw-1";
const DNS_TRAIL: &str = "evil-domain.example";
const SCAN_TRAIL: &str = "198.51.100.9";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Events of the last hours: one DNS hit with answers, one HTTP, one TLS, and a source
/// hitting one address many times; two sensors.
fn events(t: i64) -> (Vec<spoor_core::Event>, Vec<spoor_core::Event>) {
    let min = 60_000_000;
    let mut dns = event(
        1,
        "s1",
        "10.0.0.5",
        "192.0.2.53",
        DNS_TRAIL,
        Severity::High,
        t - 50 * min,
    );
    dns.kind = EventKind::Dns;
    dns.proto = Proto::UDP;
    dns.dst_port = Some(53);
    dns.offender = Some("10.0.0.5".parse().unwrap());
    dns.answers = vec![
        "203.0.113.7".parse().unwrap(),
        "203.0.113.8".parse().unwrap(),
    ];
    dns.info = "emotet (malware)".into();
    dns.reference = "abuse.ch".into();
    dns.context = Context {
        dns: Some(DnsContext {
            qname: format!("x.{DNS_TRAIL}"),
            qtype: "A".into(),
            rcode: Some("NOERROR".into()),
        }),
        ..Context::default()
    };
    let mut http = event(
        2,
        "s1",
        "10.0.0.6",
        "192.0.2.80",
        "bad.example/gate.php",
        Severity::Medium,
        t - 40 * min,
    );
    http.kind = EventKind::Url;
    http.context = Context {
        http: Some(HttpContext {
            method: "GET".into(),
            host: "bad.example".into(),
            uri: "/gate.php?id=1".into(),
            user_agent: Some("curl/8.0".into()),
            xff: None,
        }),
        ..Context::default()
    };
    let mut tls = event(
        3,
        "s1",
        "10.0.0.6",
        "192.0.2.44",
        "c2.example",
        Severity::High,
        t - 30 * min,
    );
    tls.kind = EventKind::Sni;
    tls.context = Context {
        tls: Some(TlsContext {
            sni: Some("c2.example".into()),
            ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
            ja3: None,
            cert_sha1: None,
        }),
        ..Context::default()
    };
    let mut s1 = vec![dns, http, tls];
    for i in 0..6 {
        s1.push(event(
            10 + i,
            "s1",
            "10.0.0.7",
            SCAN_TRAIL,
            SCAN_TRAIL,
            Severity::Low,
            t - (180 - 20 * i as i64) * min,
        ));
    }
    let s2 = (0..3)
        .map(|i| {
            event(
                100 + i,
                "s2",
                "10.0.1.9",
                "192.0.2.99",
                "miner.example",
                Severity::Medium,
                t - (100 + 10 * i as i64) * min,
            )
        })
        .collect();
    (s1, s2)
}

struct Fixture {
    run: Running,
    admin: Session,
    driver: Driver,
    total: usize,
    _feeds: tempfile::TempDir,
}

/// The default feeds with an updater state: one updated, one failing.
fn feeds(dir: &std::path::Path) -> spoor_feeds::config::FeedsConfig {
    let dirs = spoor_feeds::config::BaseDirs {
        config_dir: dir,
        state_dir: dir,
    };
    let feeds = spoor_feeds::config::RawFeeds::default()
        .validate(&spoor_core::KeyPath::root().key("feeds"), &dirs)
        .unwrap();
    let on: Vec<&str> = feeds
        .feeds
        .iter()
        .filter(|f| f.enabled)
        .map(|f| f.name.as_str())
        .collect();
    let t = now() / 1_000_000;
    let state = json!({"version": 1, "feeds": {
        on[0]: {"url": "https://example.invalid/a", "updated": t - 3600, "checked": t - 600, "trails": 15_234, "failures": 0},
        on[1]: {"url": "https://example.invalid/b", "updated": t - 3 * 86_400, "checked": t - 600, "trails": 812, "last_error": "HTTP 503 Service Unavailable", "failures": 4},
    }});
    std::fs::create_dir_all(&feeds.dir).unwrap();
    std::fs::write(feeds.dir.join("feeds-state.json"), state.to_string()).unwrap();
    feeds
}

async fn fixture() -> Fixture {
    let feeds_dir = tempfile::tempdir().unwrap();
    let feeds = feeds(feeds_dir.path());
    let run = common::start_with(|c| c.feeds = Some(feeds)).await;
    let (s1, s2) = events(now());
    let total = s1.len() + s2.len();
    assert_eq!(run.ingest(TOKEN, &batch("s1", s1)).await.status(), 200);
    assert_eq!(run.ingest(TOKEN2, &batch("s2", s2)).await.status(), 200);
    let admin = run.admin().await;
    for (name, role) in [("ana", "analyst"), ("andy", "analyst"), ("vera", "viewer")] {
        let r = admin
            .post(
                "/api/v1/users",
                json!({"name": name, "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(r.status(), 201, "create {name}");
    }
    let driver = Driver::start().await;
    Fixture {
        run,
        admin,
        driver,
        total,
        _feeds: feeds_dir,
    }
}

async fn sign_in(b: &Browser, base: &str, user: &str) {
    b.goto(&format!("{base}/")).await;
    let name = b.find("#login-user").await;
    b.type_into(&name, user).await;
    let pw = b.find("#login-password").await;
    b.type_into(&pw, PASSWORD).await;
    b.click(&b.find("#login-form button[type=submit]").await)
        .await;
    b.wait_until(
        &format!("{user} to be signed in"),
        &format!("return document.getElementById('who').textContent.startsWith('{user} ')"),
    )
    .await;
}

async fn sign_out(b: &Browser) {
    b.click(&b.find("#logout").await).await;
    b.find("#login-form").await;
}

/// Elements sticking out of the window on the right (a phone would scroll sideways);
/// what scrolls inside its own box (wide tables, the menu) does not count.
async fn overflowing(b: &Browser) -> serde_json::Value {
    b.exec(
        "const w = document.documentElement.clientWidth;
         const inScroller = (e) => {
           for (let p = e.parentElement; p && p !== document.body; p = p.parentElement)
             if (getComputedStyle(p).overflowX !== 'visible') return true;
           return false;
         };
         return [...document.querySelectorAll('body *')]
           .filter(e => !inScroller(e) && e.getBoundingClientRect().right > w + 1)
           .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)
           .concat(document.documentElement.scrollWidth > w ? [`page ${document.documentElement.scrollWidth}px > ${w}px`] : []);",
        json!([]),
    )
    .await
}

/// Rows of the events table once it has loaded.
async fn table_trails(b: &Browser) -> Vec<String> {
    b.wait_until(
        "the events table",
        "return document.querySelector('.table-box[aria-busy=false]')",
    )
    .await;
    b.texts("#events-table tbody td.trail").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_the_overview_charts_the_ingested_events() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1000).await;
    // A wrong password is refused with the server's message.
    b.goto(&format!("{}/", f.run.base)).await;
    b.type_into(&b.find("#login-user").await, "ana").await;
    b.type_into(&b.find("#login-password").await, "not-the-password")
        .await;
    b.click(&b.find("#login-form button[type=submit]").await)
        .await;
    let err = b
        .wait_until(
            "a login error",
            "return document.getElementById('login-error').textContent",
        )
        .await;
    assert!(
        err.as_str()
            .unwrap()
            .contains("wrong user name or password"),
        "{err}"
    );

    sign_in(&b, &f.run.base, "ana").await;
    b.wait_until("the overview", "return document.body.dataset.overviewMs")
        .await;
    let bars = b
        .count("[data-chart=severity-over-time] .bucket rect")
        .await;
    assert!(bars >= 5, "stacked bars drawn from the events: {bars}");
    // Each severity present in the data has bars of its colour.
    for sev in ["high", "medium", "low"] {
        assert!(
            b.count(&format!("[data-chart=severity-over-time] rect.fill-{sev}"))
                .await
                > 0,
            "{sev} bars"
        );
    }
    assert_eq!(b.text(&b.find("#total").await).await, f.total.to_string());
    let trails = b.texts("[data-chart=top-trails] th").await;
    assert_eq!(
        trails.first().map(String::as_str),
        Some(SCAN_TRAIL),
        "{trails:?}"
    );
    assert!(trails.iter().any(|t| t == DNS_TRAIL), "{trails:?}");
    let kinds = b.texts("[data-chart=kinds] th").await;
    for k in ["ip", "dns", "url", "sni"] {
        assert!(kinds.iter().any(|x| x == k), "kind {k} in {kinds:?}");
    }
    assert_eq!(
        b.texts("[data-chart=top-sensors] th").await,
        vec!["s1", "s2"]
    );
    assert!(
        b.texts("[data-chart=top-sources] th")
            .await
            .contains(&"10.0.0.7".to_string())
    );
    assert_eq!(b.count("#latest li").await, f.total.min(10));
    // A shorter range narrows the charts: the last hour holds the DNS, HTTP and TLS hits.
    b.click(&b.find("button.preset:first-child").await).await;
    b.wait_until("the 1h overview", "return location.hash.includes('range=1h') && document.getElementById('total')?.textContent === '3'").await;
    b.goto(&format!("{}/#/", f.run.base)).await;
    b.wait_until("the overview", "return document.body.dataset.overviewMs")
        .await;
    let shot = b.screenshot("overview").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Sensors and feeds pages.
    b.goto(&format!("{}/#/sensors", f.run.base)).await;
    b.find("#sensors-table").await;
    assert_eq!(b.texts("#sensors-table tbody th").await, vec!["s1", "s2"]);
    let s1 = b.text(&b.find("#sensors-table tbody tr").await).await;
    assert!(
        s1.contains("1,000") && s1.contains("OK"),
        "packets and health: {s1}"
    );
    b.screenshot("sensors").await;
    b.goto(&format!("{}/#/feeds", f.run.base)).await;
    b.find("#feeds-table").await;
    let feeds = b.text(&b.find("#feeds-table").await).await;
    assert!(
        feeds.contains("15,234")
            && feeds.contains("HTTP 503 Service Unavailable (4 failed attempts)"),
        "{feeds}"
    );
    b.screenshot("feeds").await;

    // A phone-sized window.
    b.set_window(390, 844).await;
    b.goto(&format!("{}/#/", f.run.base)).await;
    b.wait_until("the overview", "return document.body.dataset.overviewMs")
        .await;
    b.screenshot("overview-phone").await;
    assert_eq!(
        overflowing(&b).await,
        json!([]),
        "the overview fits a phone"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_the_events_table() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1000).await;
    sign_in(&b, &f.run.base, "ana").await;
    b.goto(&format!("{}/#/events", f.run.base)).await;
    let all = table_trails(&b).await;
    assert_eq!(all.len(), f.total);
    b.screenshot("events").await;
    b.set_window(390, 844).await;
    table_trails(&b).await;
    b.screenshot("events-phone").await;
    assert_eq!(
        overflowing(&b).await,
        json!([]),
        "the events page fits a phone"
    );
    b.set_window(1366, 1000).await;

    // IP filter (a CIDR): only the scanning source's events.
    let ip = b.find("#f-ip").await;
    b.type_into(&ip, "10.0.0.7/32").await;
    b.click(&b.find("#apply-filters").await).await;
    b.wait_until("the IP filter", "return location.hash.includes('ip=')")
        .await;
    let rows = table_trails(&b).await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|t| t == SCAN_TRAIL));

    // Severity high: two events.
    b.click(&b.find("#reset-filters").await).await;
    b.wait_until("reset", "return !location.hash.includes('ip=')")
        .await;
    b.click(&b.find("input[name=severity][value=high]").await)
        .await;
    b.click(&b.find("#apply-filters").await).await;
    b.wait_until(
        "the severity filter",
        "return location.hash.includes('severity=high')",
    )
    .await;
    let mut rows = table_trails(&b).await;
    rows.sort();
    assert_eq!(rows, vec!["c2.example", DNS_TRAIL]);

    // Free text finds the HTTP user agent; the trail filter a substring.
    b.click(&b.find("#reset-filters").await).await;
    b.wait_until("reset", "return !location.hash.includes('severity')")
        .await;
    b.type_into(&b.find("#f-q").await, "curl/8").await;
    b.click(&b.find("#apply-filters").await).await;
    b.wait_until("the text filter", "return location.hash.includes('q=')")
        .await;
    assert_eq!(table_trails(&b).await, vec!["bad.example/gate.php"]);
    b.click(&b.find("#reset-filters").await).await;
    b.wait_until("reset", "return !location.hash.includes('q=')")
        .await;
    b.type_into(&b.find("#f-sensor").await, "s2").await;
    b.click(&b.find("#apply-filters").await).await;
    b.wait_until(
        "the sensor filter",
        "return location.hash.includes('sensor=')",
    )
    .await;
    assert_eq!(table_trails(&b).await, vec!["miner.example"; 3]);

    // Keyset pages: 50 per page is the smallest choice, so page through 2 with the API's
    // own limit instead: the pager buttons follow `next`.
    let older_disabled = b
        .exec(
            "return document.getElementById('older').disabled",
            json!([]),
        )
        .await;
    assert_eq!(older_disabled, json!(true), "one page only");

    // Sorting by source (the server orders every matching event) puts 10.0.0.5 first.
    b.click(&b.find("#reset-filters").await).await;
    b.wait_until("reset", "return !location.hash.includes('sensor=')")
        .await;
    table_trails(&b).await;
    let src_header = b.find("#events-table thead th:nth-child(4) button").await;
    b.click(&src_header).await;
    b.wait_until("sorted", "return location.hash.includes('sort=src')")
        .await;
    table_trails(&b).await;
    let srcs = b.texts("#events-table tbody td:nth-child(4)").await;
    let mut sorted = srcs.clone();
    sorted.sort();
    assert_eq!(srcs, sorted);
    // Export links carry the filters and answer with the events.
    let href = b
        .exec(
            "return document.getElementById('export-csv').href",
            json!([]),
        )
        .await;
    let href = href.as_str().unwrap().to_string();
    assert!(href.contains("format=csv"));
    let path = href.strip_prefix(&f.run.base).unwrap();
    let csv = f.admin.get(path).await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + f.total, "{csv}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_shows_its_dns_answers_and_context() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1300).await;
    sign_in(&b, &f.run.base, "ana").await;
    b.goto(&format!("{}/#/events?trail=evil-domain", f.run.base))
        .await;
    assert_eq!(table_trails(&b).await, vec![DNS_TRAIL]);
    b.click(&b.find("#events-table tbody a.event-link").await)
        .await;
    b.find("#dns-answers").await;
    let answers = b.texts("#dns-answers li").await;
    assert_eq!(answers, vec!["203.0.113.7", "203.0.113.8"]);
    let dns = b.text(&b.find("#ctx-dns").await).await;
    assert!(
        dns.contains(&format!("x.{DNS_TRAIL} A")) && dns.contains("NOERROR"),
        "{dns}"
    );
    let fields = b.text(&b.find("#fields").await).await;
    for want in [
        "emotet (malware)",
        "abuse.ch",
        "10.0.0.5",
        "192.0.2.53:53",
        "UDP",
        "dns",
    ] {
        assert!(fields.contains(want), "{want} in {fields}");
    }
    // Related: the other events of the same offender (none for 10.0.0.5 but itself).
    let related = b.text(&b.find("#related").await).await;
    assert!(related.contains("No other events"), "{related}");
    b.screenshot("event").await;

    // TLS context and related events of a repeated offender.
    b.goto(&format!("{}/#/events?trail=c2.example", f.run.base))
        .await;
    table_trails(&b).await;
    b.click(&b.find("#events-table tbody a.event-link").await)
        .await;
    let tls = b.text(&b.find("#ctx-tls").await).await;
    assert!(
        tls.contains("c2.example") && tls.contains("t13d1516h2_8daaf6152771_02713d6af862"),
        "{tls}"
    );
    b.goto(&format!("{}/#/events?sensor=s1&ip=10.0.0.7", f.run.base))
        .await;
    table_trails(&b).await;
    b.click(&b.find("#events-table tbody a.event-link").await)
        .await;
    b.find("#related table").await;
    assert_eq!(
        b.count("#related tbody tr").await,
        5,
        "the other five hits on {SCAN_TRAIL}"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysts_false_positive_is_suppressed_for_everyone() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1000).await;
    sign_in(&b, &f.run.base, "ana").await;
    b.goto(&format!("{}/#/events?trail=miner", f.run.base))
        .await;
    assert_eq!(table_trails(&b).await.len(), 3);
    b.click(&b.find("#events-table tbody button.fp").await)
        .await;
    b.click(&b.find("#fp-trail").await).await;
    b.type_into(&b.find("#fp-comment").await, "our own mining pool")
        .await;
    b.click(&b.find("#fp-confirm").await).await;
    b.wait_until("the rows to go", "return document.querySelector('.table-box[aria-busy=false]') && !document.querySelector('#events-table') && !document.querySelector('dialog[open]')").await;

    // Status set from the table is stored too.
    b.goto(&format!("{}/#/events?trail=c2.example", f.run.base))
        .await;
    table_trails(&b).await;
    b.exec(
        "const s = document.querySelector('#events-table .status-select'); s.value = 'investigating'; s.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    sign_out(&b).await;

    // Another user, in the same browser after sign-out: the trail is gone for them too,
    // and the status shows.
    sign_in(&b, &f.run.base, "andy").await;
    b.goto(&format!("{}/#/events", f.run.base)).await;
    let rows = table_trails(&b).await;
    assert_eq!(rows.len(), f.total - 3);
    assert!(!rows.iter().any(|t| t == "miner.example"), "{rows:?}");
    b.goto(&format!("{}/#/events?status=investigating", f.run.base))
        .await;
    assert_eq!(table_trails(&b).await, vec!["c2.example"]);
    // The overview counts without them; the suppressed events are still there on request.
    b.goto(&format!("{}/#/", f.run.base)).await;
    b.wait_until(
        "the overview without suppressed events",
        &format!(
            "return document.getElementById('total')?.textContent === '{}'",
            f.total - 3
        ),
    )
    .await;
    b.goto(&format!(
        "{}/#/events?trail=miner&include_suppressed=true",
        f.run.base
    ))
    .await;
    assert_eq!(table_trails(&b).await.len(), 3);
    // The rule is the server's, with its scope and author.
    let rules = f.admin.get_json("/api/v1/suppressions").await;
    assert_eq!(rules[0]["trail"], "miner.example");
    assert!(rules[0].get("src").is_none());
    assert_eq!(rules[0]["created_by"], "ana");
    assert_eq!(rules[0]["comment"], "our own mining pool");

    // Detail view: a note and "hide trail".
    b.goto(&format!("{}/#/events?trail=bad.example", f.run.base))
        .await;
    table_trails(&b).await;
    b.click(&b.find("#events-table tbody a.event-link").await)
        .await;
    b.type_into(&b.find("#note-text").await, "checked with the web team")
        .await;
    b.click(&b.find("#add-note").await).await;
    b.wait_until("the note", "return document.querySelector('#notes')?.textContent.includes('checked with the web team')").await;
    b.click(&b.find("#detail-hide").await).await;
    b.wait_until("the rule", "return true").await;
    let hidden = f.admin.get_json("/api/v1/hidden-trails").await;
    let t0 = std::time::Instant::now();
    let mut hidden = hidden;
    while hidden.as_array().unwrap().is_empty() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        hidden = f.admin.get_json("/api/v1/hidden-trails").await;
    }
    assert_eq!(hidden[0]["trail"], "bad.example/gate.php");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_triage_controls_and_the_api_refuses_them() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1000).await;
    sign_in(&b, &f.run.base, "vera").await;
    b.goto(&format!("{}/#/events", f.run.base)).await;
    assert_eq!(table_trails(&b).await.len(), f.total);
    for css in [
        "button.fp",
        "button.hide",
        ".status-select",
        "#export-csv",
        "#export-json",
    ] {
        assert_eq!(b.count(css).await, 0, "a viewer sees no {css}");
    }
    assert_eq!(
        b.count("#events-table tbody .status").await,
        f.total,
        "status shown read-only"
    );
    b.click(&b.find("#events-table tbody a.event-link").await)
        .await;
    let triage = b.text(&b.find("#triage").await).await;
    assert!(triage.contains("viewer"), "{triage}");
    for css in ["#detail-fp", "#detail-hide", "#note-text", "#detail-status"] {
        assert_eq!(b.count(css).await, 0, "a viewer sees no {css}");
    }
    // The server refuses a viewer's triage even when asked directly from the page, with
    // the session's CSRF token.
    let status = b
        .exec(
            "const done = arguments[0];
             fetch('/api/v1/session').then(r => r.json()).then(s =>
               fetch('/api/v1/suppressions', {method: 'POST', headers: {'content-type': 'application/json', 'x-csrf-token': s.csrf},
                 body: JSON.stringify({trail: 'miner.example'})})).then(r => { window.__status = r.status; });
             return 1;",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(1));
    let code = b
        .wait_until("the API answer", "return window.__status")
        .await;
    assert_eq!(code, json!(403));
    let vera = f.run.login("vera", PASSWORD).await;
    let r = vera
        .post("/api/v1/hidden-trails", json!({"trail": "miner.example"}))
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        f.admin
            .get_json("/api/v1/suppressions")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_show_new_events_without_a_reload() {
    let _one = ONE_BROWSER.lock().await;
    let f = fixture().await;
    let b = f.driver.browser(1366, 1000).await;
    sign_in(&b, &f.run.base, "ana").await;
    b.wait_until("the overview", "return document.body.dataset.overviewMs")
        .await;
    b.wait_until(
        "the live stream",
        "return document.getElementById('live-state').textContent === 'Live'",
    )
    .await;
    // A marker that a reload would wipe.
    b.exec("window.__noReload = 'still here'", json!([])).await;
    let mut e = event(
        500,
        "s2",
        "10.0.1.50",
        "192.0.2.200",
        "live-new.example",
        Severity::High,
        now() - 1_000_000,
    );
    e.kind = EventKind::Host;
    assert_eq!(
        f.run.ingest(TOKEN2, &batch("s2", vec![e])).await.status(),
        200
    );
    b.wait_until(
        "the new event in Latest",
        "return document.querySelector('#latest')?.textContent.includes('live-new.example')",
    )
    .await;
    b.wait_until(
        "the charts to count it",
        &format!(
            "return document.getElementById('total')?.textContent === '{}'",
            f.total + 1
        ),
    )
    .await;

    // The events table too.
    b.exec("location.hash = '#/events'", json!([])).await;
    table_trails(&b).await;
    let mut e = event(
        501,
        "s2",
        "10.0.1.51",
        "192.0.2.201",
        "live-second.example",
        Severity::Low,
        now() - 1_000_000,
    );
    e.kind = EventKind::Host;
    assert_eq!(
        f.run.ingest(TOKEN2, &batch("s2", vec![e])).await.status(),
        200
    );
    b.wait_until("the new row", "return [...document.querySelectorAll('#events-table td.trail')].some(td => td.textContent === 'live-second.example')").await;
    assert_eq!(
        b.exec("return window.__noReload", json!([])).await,
        json!("still here")
    );
    b.close().await;
}
