//! Privacy (pseudonyms at ingest, in storage and export), `/fail2ban` and `/metrics`
//! (allowlisted clients only), TLS with the self-signed certificate, and retention.

mod common;

use common::*;
use spoor_core::Severity;
use spoor_server::store::now_micros;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_addresses_are_pseudonymised_before_storage() {
    let r = start_with(|c| c.privacy.pseudonymise = true).await;
    let now = now_micros();
    let a = event(
        1,
        "s1",
        "192.168.1.20",
        "203.0.113.9",
        "t",
        Severity::High,
        now,
    );
    let b = event(
        2,
        "s1",
        "192.168.1.20",
        "203.0.113.9",
        "t",
        Severity::High,
        now + 1,
    );
    let c = event(
        3,
        "s1",
        "192.168.1.21",
        "203.0.113.9",
        "t",
        Severity::High,
        now + 2,
    );
    assert_eq!(
        r.ingest(TOKEN, &batch("s1", vec![a, b, c])).await.status(),
        200
    );
    let s = r.admin().await;
    let js = s
        .get(&format!("/api/v1/events/export?from={}", now - 1))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !js.contains("192.168.1.2"),
        "a local address was stored or exported: {js}"
    );
    let events: Vec<serde_json::Value> = serde_json::from_str(&js).unwrap();
    let src = |id: u32| {
        events
            .iter()
            .find(|e| e["id"] == format!("{id:032x}"))
            .unwrap()["src"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        src(1),
        src(2),
        "same host, same pseudonym within the period"
    );
    assert_ne!(src(1), src(3));
    assert!(
        src(1).starts_with("24") || src(1).starts_with("25"),
        "{}",
        src(1)
    );
    assert_eq!(events[0]["dst"], "203.0.113.9", "remote addresses stay");
    // Nothing in the database file either.
    let raw: Vec<String> = r
        .server
        .store()
        .read(|c| {
            let mut st = c.prepare("SELECT body FROM events")?;
            let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(v)
        })
        .await
        .unwrap();
    assert!(raw.iter().all(|b| !b.contains("192.168.")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail2ban_and_metrics_only_for_allowlisted_clients() {
    let r = start().await;
    let now = now_micros();
    let e1 = event(1, "s1", "10.0.0.1", "203.0.113.9", "t", Severity::High, now);
    let mut e2 = event(2, "s1", "198.51.100.4", "10.0.0.1", "t", Severity::Low, now);
    e2.offender = None;
    let old = event(
        3,
        "s1",
        "10.0.0.1",
        "203.0.113.77",
        "t",
        Severity::High,
        now - 3 * 86_400_000_000,
    );
    r.ingest(TOKEN, &batch("s1", vec![e1, e2, old])).await;
    let list = r
        .http
        .get(r.url("/fail2ban"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        list, "198.51.100.4\n203.0.113.9\n",
        "recent offenders (else sources), nothing older"
    );
    let m = r
        .http
        .get(r.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("spoor_ingest_events_total 3"), "{m}");

    let r2 = start_with(|c| {
        c.fail2ban.allow = vec!["192.0.2.0/24".parse().unwrap()];
        c.metrics_allow = vec![];
    })
    .await;
    assert_eq!(
        r2.http
            .get(r2.url("/fail2ban"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        r2.http
            .get(r2.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_tls_serves_with_its_printed_fingerprint() {
    let r =
        start_with(|c| c.tls = spoor_server::config::TlsConfig::SelfSigned { names: vec![] }).await;
    let fp = r.server.fingerprint.clone().expect("a fingerprint");
    assert_eq!(fp.len(), 32 * 3 - 1);
    let pem = std::fs::read(r._dir.path().join("tls/cert.pem")).unwrap();
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(cert)
        .build()
        .unwrap();
    let url = format!(
        "https://localhost:{}/api/v1/health",
        r.server.local_addr.port()
    );
    let resp = https.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Plain HTTP on the TLS port does not get through.
    let plain = r.http.get(r.url("/api/v1/health")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // Cookies are Secure over TLS.
    let login = https
        .post(format!(
            "https://localhost:{}/api/v1/login",
            r.server.local_addr.port()
        ))
        .json(&serde_json::json!({"user": "admin", "password": r.admin_password}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_events_and_their_rollups() {
    use spoor_server::store::retention::{Policy, step};
    let r = start().await;
    let now = now_micros();
    let hour = 3_600_000_000;
    let old = event(
        1,
        "s1",
        "10.0.0.1",
        "203.0.113.9",
        "old",
        Severity::High,
        now - 10 * hour,
    );
    let new = event(
        2,
        "s1",
        "10.0.0.1",
        "203.0.113.9",
        "new",
        Severity::High,
        now - hour / 2,
    );
    r.ingest(TOKEN, &batch("s1", vec![old, new])).await;
    let policy = Policy {
        max_event_age: 5 * hour,
        max_audit_age: 5 * hour,
        max_size: 0,
    };
    let s = r
        .server
        .store()
        .write(move |tx| step(tx, &policy, now))
        .await
        .unwrap();
    assert_eq!(s.events_deleted, 1);
    let sess = r.admin().await;
    let sum = sess
        .get_json(&format!(
            "/api/v1/summary?from={}&to={}",
            now - 24 * hour,
            now + hour
        ))
        .await;
    assert_eq!(sum["total"], 1, "{sum}");
    assert_eq!(sum["top_trails"][0]["key"], "new");
}
