//! Dashboard auth: no session → 401, wrong role → 403, missing CSRF → 403, throttled
//! logins → 429, and a scoped user never sees another network's events in any endpoint
//! (summary, search, export, detail, live).

mod common;

use std::time::Duration;

use common::*;
use spoor_core::Severity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_roles_and_csrf_are_enforced() {
    let r = start().await;
    // No session.
    for path in [
        "/api/v1/summary",
        "/api/v1/events",
        "/api/v1/sensors",
        "/api/v1/live",
        "/api/v1/users",
    ] {
        let resp = r.http.get(r.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let admin = r.admin().await;
    let resp = admin
        .post(
            "/api/v1/users",
            serde_json::json!({"name": "vera", "password": "viewer-password-1", "role": "viewer"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    // Missing CSRF token on a state-changing request, with a valid session.
    let resp = r
        .http
        .post(r.url("/api/v1/suppressions"))
        .header("cookie", &admin.cookie)
        .json(&serde_json::json!({"trail": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "csrf");
    // Wrong role: a viewer may read but not triage, export or manage users.
    let vera = r.login("vera", "viewer-password-1").await;
    assert_eq!(vera.get("/api/v1/summary").await.status(), 200);
    assert_eq!(
        vera.post("/api/v1/suppressions", serde_json::json!({"trail": "x"}))
            .await
            .status(),
        403
    );
    assert_eq!(vera.get("/api/v1/events/export").await.status(), 403);
    assert_eq!(vera.get("/api/v1/users").await.status(), 403);
    assert_eq!(vera.get("/api/v1/audit").await.status(), 403);
    // Logout ends the session.
    assert_eq!(
        vera.post("/api/v1/logout", serde_json::json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(vera.get("/api/v1/summary").await.status(), 401);
    // Wrong passwords are throttled.
    for _ in 0..5 {
        let resp = r
            .http
            .post(r.url("/api/v1/login"))
            .json(&serde_json::json!({"user": "vera", "password": "nope-nope-nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let resp = r
        .http
        .post(r.url("/api/v1/login"))
        .json(&serde_json::json!({"user": "vera", "password": "viewer-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "even the right password waits out the lockout"
    );
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_user_sees_only_their_networks_everywhere() {
    let r = start().await;
    let admin = r.admin().await;
    let resp = admin
        .post(
            "/api/v1/users",
            serde_json::json!({"name": "branch", "password": "branch-password-1", "role": "analyst", "scope": ["10.1.0.0/16"]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let scoped = r.login("branch", "branch-password-1").await;

    // Open the live stream before the events arrive.
    let mut live = scoped.get("/api/v1/live").await;
    assert_eq!(live.status(), 200);

    let mine = event(
        1,
        "s1",
        "10.1.2.3",
        "203.0.113.9",
        "mine.example",
        Severity::High,
        DAY0 + 1_000_000,
    );
    let inbound = event(
        2,
        "s1",
        "198.51.100.7",
        "10.1.9.9",
        "inbound.example",
        Severity::Low,
        DAY0 + 2_000_000,
    );
    let theirs = event(
        3,
        "s1",
        "10.2.0.5",
        "203.0.113.10",
        "theirs.example",
        Severity::High,
        DAY0 + 3_000_000,
    );
    let ack = r
        .ingest(TOKEN, &batch("s1", vec![mine, inbound, theirs]))
        .await;
    assert_eq!(ack.status(), 200);

    let range = format!("from={}&to={}", DAY0, DAY0 + 3_600_000_000);
    // Summary.
    let s = scoped.get_json(&format!("/api/v1/summary?{range}")).await;
    assert_eq!(s["total"], 2, "{s}");
    let trails: Vec<&str> = s["top_trails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(!trails.contains(&"theirs.example"), "{s}");
    let all = admin.get_json(&format!("/api/v1/summary?{range}")).await;
    assert_eq!(all["total"], 3);
    // Search, even when asking for the other network explicitly.
    let p = scoped.get_json(&format!("/api/v1/events?{range}")).await;
    assert_eq!(p["events"].as_array().unwrap().len(), 2);
    let p = scoped
        .get_json(&format!("/api/v1/events?{range}&ip=10.2.0.0/16"))
        .await;
    assert_eq!(p["events"].as_array().unwrap().len(), 0);
    // Export.
    let csv = scoped
        .get(&format!("/api/v1/events/export?{range}&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !csv.contains("theirs.example") && csv.contains("mine.example"),
        "{csv}"
    );
    let js = scoped
        .get(&format!("/api/v1/events/export?{range}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!js.contains("theirs.example") && js.contains("inbound.example"));
    // Detail: the other network's event does not exist for them.
    let id3 = format!("{:032x}", 3);
    assert_eq!(
        scoped.get(&format!("/api/v1/events/{id3}")).await.status(),
        404
    );
    assert_eq!(
        admin.get(&format!("/api/v1/events/{id3}")).await.status(),
        200
    );
    // Nor can they triage it.
    let resp = scoped
        .post(
            &format!("/api/v1/events/{id3}/triage"),
            serde_json::json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    // Live: their two events arrive, the other network's never does (a later event of
    // theirs arrives after it, so it was not merely late).
    let later = event(
        4,
        "s1",
        "10.1.2.4",
        "203.0.113.11",
        "mine-later.example",
        Severity::Low,
        DAY0 + 4_000_000,
    );
    r.ingest(TOKEN, &batch("s1", vec![later])).await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("mine-later.example") {
        let chunk = tokio::time::timeout_at(deadline, live.chunk())
            .await
            .expect("live events in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("mine.example") && seen.contains("inbound.example"),
        "{seen}"
    );
    assert!(!seen.contains("theirs.example"), "{seen}");
    // The export is in the audit log with its filter.
    let audit = admin.get_json("/api/v1/audit").await;
    let exports: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "export" && a["user"] == "branch")
        .collect();
    assert_eq!(exports.len(), 2, "{audit}");
    assert_eq!(exports[0]["detail"]["filter"]["from"], DAY0);
}
