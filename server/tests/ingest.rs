//! Ingest: idempotent by event id, and a precise 4xx for each kind of bad input, with
//! nothing stored from a refused batch.

mod common;

use common::*;
use spoor_core::Severity;
use spoor_core::wire::MAX_BATCH_EVENTS;

async fn stored(r: &Running) -> i64 {
    r.server
        .store()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_is_stored_once() {
    let r = start().await;
    let events: Vec<_> = (0..10)
        .map(|i| {
            event(
                i + 1,
                "s1",
                "10.0.0.1",
                "203.0.113.9",
                "203.0.113.9",
                Severity::High,
                DAY0 + i as i64,
            )
        })
        .collect();
    let b = batch("s1", events);
    let a: serde_json::Value = r.ingest(TOKEN, &b).await.json().await.unwrap();
    assert_eq!(a, serde_json::json!({"accepted": 10, "duplicates": 0}));
    let a: serde_json::Value = r.ingest(TOKEN, &b).await.json().await.unwrap();
    assert_eq!(a, serde_json::json!({"accepted": 0, "duplicates": 10}));
    assert_eq!(stored(&r).await, 10);
    let s = r.admin().await;
    let sensors = s.get_json("/api/v1/sensors").await;
    assert_eq!(sensors[0]["name"], "s1");
    assert_eq!(sensors[0]["events"], 10);
    assert_eq!(sensors[0]["drops"], 1);
}

async fn post_raw(r: &Running, token: Option<&str>, body: Vec<u8>) -> (u16, serde_json::Value) {
    let mut req = r
        .http
        .post(r.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_4xx_and_nothing_is_stored() {
    let r = start_with(|c| c.max_body = 4 * 1024 * 1024).await;
    let good = |id| {
        event(
            id,
            "s1",
            "10.0.0.1",
            "203.0.113.9",
            "203.0.113.9",
            Severity::High,
            DAY0,
        )
    };
    let body = |b: &spoor_core::EventBatch| serde_json::to_vec(b).unwrap();

    let (s, e) = post_raw(&r, None, body(&batch("s1", vec![good(1)]))).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("unauthorized")), "{e}");
    let (s, _) = post_raw(&r, Some("wrong-token"), body(&batch("s1", vec![good(1)]))).await;
    assert_eq!(s, 401);
    let (s, e) = post_raw(&r, Some(TOKEN), b"{\"status\": {".to_vec()).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("malformed_json")),
        "{e}"
    );
    // The token is s2's, the batch claims s1.
    let (s, e) = post_raw(&r, Some(TOKEN2), body(&batch("s1", vec![good(1)]))).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (403, Some("sensor_mismatch")),
        "{e}"
    );
    // An event inside claims another sensor.
    let mut other = good(2);
    other.sensor = "s2".into();
    let (s, e) = post_raw(&r, Some(TOKEN), body(&batch("s1", vec![good(1), other]))).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (403, Some("sensor_mismatch")),
        "{e}"
    );
    // Unknown field in an event.
    let mut v = serde_json::to_value(batch("s1", vec![good(1)])).unwrap();
    v["events"][0]["colour"] = "red".into();
    let (s, e) = post_raw(&r, Some(TOKEN), serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["message"].as_str().unwrap().contains("colour"), "{e}");
    // Out of range: a port past 65535, a count of 0, a time in 1970.
    let mut v = serde_json::to_value(batch("s1", vec![good(1)])).unwrap();
    v["events"][0]["dst_port"] = 70000.into();
    let (s, e) = post_raw(&r, Some(TOKEN), serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(s, 422, "{e}");
    let mut zero = good(1);
    zero.count = 0;
    let (s, e) = post_raw(&r, Some(TOKEN), body(&batch("s1", vec![zero]))).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_event")),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("events[0].count"),
        "{e}"
    );
    let mut old = good(1);
    old.time = spoor_core::Micros(5);
    let (s, _) = post_raw(&r, Some(TOKEN), body(&batch("s1", vec![old]))).await;
    assert_eq!(s, 422);
    // Too many events in one batch.
    let many: Vec<_> = (0..MAX_BATCH_EVENTS as u128 + 1)
        .map(|i| good(i + 10))
        .collect();
    let (s, e) = post_raw(&r, Some(TOKEN), body(&batch("s1", many))).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (413, Some("batch_too_large")),
        "{e}"
    );
    // A body past max_body.
    let (s, e) = post_raw(&r, Some(TOKEN), vec![b' '; 5 * 1024 * 1024]).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (413, Some("body_too_large")),
        "{e}"
    );

    assert_eq!(
        stored(&r).await,
        0,
        "nothing from a refused batch is stored"
    );
    // And a good batch still goes through.
    let (s, e) = post_raw(&r, Some(TOKEN), body(&batch("s1", vec![good(1)]))).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(stored(&r).await, 1);
}
