//! Webhooks: delivered from a queue with retries; the receiver fails twice, then takes it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use spoor_core::{EventKind, Severity};
use spoor_server::config::Webhook;
use tokio::sync::Mutex;
use warp::Filter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_retried_until_the_receiver_takes_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let (c, b) = (Arc::clone(&calls), Arc::clone(&bodies));
    let receiver = warp::post()
        .and(warp::path("hook"))
        .and(warp::body::json())
        .then(move |body: serde_json::Value| {
            let (c, b) = (Arc::clone(&c), Arc::clone(&b));
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    return warp::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                b.lock().await.push(body);
                warp::http::StatusCode::OK
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(receiver).incoming(listener).run());

    let r = start_with(|c| {
        c.webhooks = vec![Webhook {
            url: format!("http://{addr}/hook"),
            min_severity: Severity::Medium,
            kinds: vec![EventKind::Ip],
            timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(50),
            max_attempts: 5,
        }];
    })
    .await;
    let wanted = event(
        1,
        "s1",
        "10.0.0.1",
        "203.0.113.9",
        "wanted",
        Severity::High,
        DAY0,
    );
    let too_low = event(
        2,
        "s1",
        "10.0.0.1",
        "203.0.113.9",
        "too-low",
        Severity::Low,
        DAY0,
    );
    let mut wrong_kind = event(
        3,
        "s1",
        "10.0.0.1",
        "203.0.113.9",
        "wrong-kind",
        Severity::High,
        DAY0,
    );
    wrong_kind.kind = EventKind::Dns;
    let resp = r
        .ingest(TOKEN, &batch("s1", vec![wanted, too_low, wrong_kind]))
        .await;
    assert_eq!(resp.status(), 200, "ingest does not wait for the webhook");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while bodies.lock().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a wrongly queued second event time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = bodies.lock().await.clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["trail"], "wanted");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then the delivery"
    );
    let m = r.server.metrics();
    assert_eq!(m.webhook_retries.load(Ordering::Relaxed), 2);
    assert_eq!(m.webhook_delivered.load(Ordering::Relaxed), 1);
}
