//! The dashboard's server side without a browser: the embedded pages and their security
//! headers, and `GET /api/v1/feeds` (what the feeds page shows).

mod common;

use serde_json::json;
use spoor_core::KeyPath;
use spoor_feeds::config::{BaseDirs, RawFeeds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_embedded_with_a_strict_content_security_policy() {
    let run = common::start().await;
    for (path, ctype) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/charts.js", "text/javascript"),
        ("/assets/blocks.js", "text/javascript"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let r = run.http.get(run.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ctype),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        let body = r.text().await.unwrap();
        assert!(!body.is_empty());
        // Nothing is loaded from elsewhere: no CDN, no web fonts (the SVG namespace is a
        // name, not a download).
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{path} refers to another site"
        );
    }
    let index = run
        .http
        .get(run.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains(r#"<script type="module" src="/assets/app.js">"#));
    assert_eq!(
        run.http
            .get(run.url("/assets/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        run.http
            .get(run.url("/assets/../Cargo.toml"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The API stays JSON: an unknown endpoint is not answered with the page.
    let r = run.http.get(run.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_report_trails_updates_and_redacted_errors() {
    // Without a feeds configuration the endpoint says so.
    let run = common::start().await;
    let admin = run.admin().await;
    let r = admin.get("/api/v1/feeds").await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_feeds");
    assert_eq!(
        run.http
            .get(run.url("/api/v1/feeds"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let state = tempfile::tempdir().unwrap();
    let dirs = BaseDirs {
        config_dir: state.path(),
        state_dir: state.path(),
    };
    let feeds = RawFeeds::default()
        .validate(&KeyPath::root().key("feeds"), &dirs)
        .unwrap();
    let enabled: Vec<String> = feeds
        .feeds
        .iter()
        .filter(|f| f.enabled)
        .map(|f| f.name.clone())
        .collect();
    assert!(enabled.len() >= 2);
    std::fs::create_dir_all(&feeds.dir).unwrap();
    let state_file = json!({"version": 1, "feeds": {
        &enabled[0]: {"url": "https://example.invalid/list.txt", "updated": 1_767_225_600u64, "checked": 1_767_229_200u64, "trails": 1234, "bytes": 5678, "failures": 0},
        &enabled[1]: {"url": "https://example.invalid/x", "checked": 1_767_229_200u64, "last_error": "HTTP 503 from https://user:secret@example.invalid/x?key=secret", "failures": 3},
    }});
    std::fs::write(
        feeds.dir.join("feeds-state.json"),
        serde_json::to_vec(&state_file).unwrap(),
    )
    .unwrap();
    let run = common::start_with(|c| c.feeds = Some(feeds.clone())).await;
    let viewer = {
        let admin = run.admin().await;
        let r = admin
            .post(
                "/api/v1/users",
                json!({"name": "vera", "password": "viewer-password-1", "role": "viewer"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        run.login("vera", "viewer-password-1").await
    };
    let list = viewer.get_json("/api/v1/feeds").await;
    assert_eq!(list["dir"], feeds.dir.display().to_string());
    let all = list["feeds"].as_array().unwrap();
    assert_eq!(
        all.len(),
        feeds.feeds.len(),
        "every configured feed, enabled or not"
    );
    let first = all
        .iter()
        .find(|f| f["name"] == enabled[0].as_str())
        .unwrap();
    assert_eq!(first["trails"], 1234);
    assert_eq!(first["updated"], 1_767_225_600u64);
    assert_eq!(first["enabled"], true);
    assert!(first["last_error"].is_null());
    let second = all
        .iter()
        .find(|f| f["name"] == enabled[1].as_str())
        .unwrap();
    let err = second["last_error"].as_str().unwrap();
    assert!(err.starts_with("HTTP 503"), "{err}");
    assert!(!err.contains("secret"), "credentials redacted: {err}");
    assert_eq!(second["failures"], 3);
    assert!(second["trails"].is_null());
}
