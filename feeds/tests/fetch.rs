//! The updater against a tiny HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose:
//! slow, truncated, oversize, HTML, empty, 5xx. Nothing here leaves the loopback interface.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use spoor_core::{ByteSize, Duration};
use spoor_feeds::config::{FeedSpec, FeedsConfig, OriginDefaults};
use spoor_feeds::fetch::{
    FeedOutcome, FetchError, NoProgress, Progress, STATE_FILE, UpdateStatus, Updater, copy_path,
    feed_statuses,
};
use spoor_feeds::format::FormatSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

fn data(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(DATA).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 server: one request per connection, answers decided by a handler.

/// What the test server saw.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    /// Header names lower-cased.
    headers: HashMap<String, String>,
}

/// What the test server sends back.
#[derive(Debug, Clone)]
struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Content-Length to announce; `None` = the body's length; `Some(None)` = none at all
    /// (the body ends when the connection closes).
    content_length: Option<Option<usize>>,
    /// Wait this long before answering.
    delay: StdDuration,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: "200 OK",
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.into(),
            content_length: None,
            delay: StdDuration::ZERO,
        }
    }
    fn status(status: &'static str) -> Self {
        Reply {
            status,
            ..Reply::ok("")
        }
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
    fn announce(mut self, length: Option<usize>) -> Self {
        self.content_length = Some(length);
        self
    }
    fn delayed(mut self, delay: StdDuration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct Server {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
    /// Most connections being answered at the same time.
    peak: Arc<AtomicUsize>,
}

impl Server {
    async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handler: Handler = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let (log, peak2) = (Arc::clone(&requests), Arc::clone(&peak));
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (handler, log, peak, active) = (
                    Arc::clone(&handler),
                    Arc::clone(&log),
                    Arc::clone(&peak2),
                    Arc::clone(&active),
                );
                tokio::spawn(async move {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    if let Some(request) = read_request(&mut socket).await {
                        log.lock().unwrap().push(request.clone());
                        let reply = handler(&request);
                        tokio::time::sleep(reply.delay).await;
                        // The client may hang up early (oversize, timeout): ignore write errors.
                        let _ = write_reply(&mut socket, &reply).await;
                    }
                    let _ = socket.shutdown().await;
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server {
            base,
            requests,
            peak,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests_to(&self, path: &str) -> Vec<Request> {
        let all = self.requests.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request { path, headers })
}

async fn write_reply(socket: &mut tokio::net::TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {}\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match reply.content_length {
        None => head.push_str(&format!("Content-Length: {}\r\n", reply.body.len())),
        Some(Some(n)) => head.push_str(&format!("Content-Length: {n}\r\n")),
        Some(None) => {}
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&reply.body).await?;
    socket.flush().await
}

// ---------------------------------------------------------------------------------------
// Config helpers

fn spec(name: &str, url: String, format: FormatSpec) -> FeedSpec {
    FeedSpec {
        name: name.into(),
        url,
        format,
        enabled: true,
        defaults: OriginDefaults {
            min_consensus: 1,
            ..OriginDefaults::default()
        },
        description: format!("test feed {name}"),
    }
}

fn config(dir: &Path, feeds: Vec<FeedSpec>) -> FeedsConfig {
    FeedsConfig {
        dir: dir.to_path_buf(),
        interval: Duration::from_secs(3600),
        timeout: Duration(StdDuration::from_secs(10)),
        max_size: ByteSize(4 << 20),
        parallel: 4,
        feeds,
    }
}

async fn run(config: &FeedsConfig) -> Vec<FeedOutcome> {
    let updater = Updater::new(config.clone()).unwrap();
    let summary = updater.update(&NoProgress).await;
    assert!(summary.state_error.is_none(), "{:?}", summary.state_error);
    summary.outcomes
}

async fn run_one(config: &FeedsConfig) -> FeedOutcome {
    let mut outcomes = run(config).await;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn copy(config: &FeedsConfig, name: &str) -> Vec<u8> {
    std::fs::read(copy_path(&config.dir, name)).unwrap()
}

/// Serves `good` on the first request and `bad` afterwards.
fn good_then(good: Reply, bad: Reply) -> impl Fn(&Request) -> Reply + Send + Sync {
    let calls = AtomicUsize::new(0);
    move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            good.clone()
        } else {
            bad.clone()
        }
    }
}

/// Feodo: 235 IPs behind a FireHOL comment header.
fn feodo() -> Vec<u8> {
    data("feeds/firehol/feodo.ipset")
}

/// Fetch a good copy, then misbehave: the failure must name the error, keep the copy
/// byte-identical and say so.
async fn assert_rejected_after_good(bad: Reply, tune: impl Fn(&mut FeedsConfig)) -> FetchError {
    let server = Server::start(good_then(Reply::ok(feodo()), bad)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/feodo.ipset"), FormatSpec::Ipset)],
    );
    tune(&mut cfg);
    let first = run_one(&cfg).await;
    assert_eq!(
        first.status,
        UpdateStatus::Updated {
            trails: 235,
            bytes: feodo().len() as u64
        }
    );
    let second = run_one(&cfg).await;
    assert_eq!(copy(&cfg, "feodo"), feodo(), "last good copy changed");
    let message = second.to_string();
    assert!(
        message.contains("kept last good copy from") && message.contains("(235 trails)"),
        "{message}"
    );
    assert!(message.contains(&server.url("/feodo.ipset")), "{message}");
    let UpdateStatus::Failed {
        error,
        kept_last_good: Some(kept),
    } = second.status
    else {
        panic!("expected a failure keeping the copy: {message}");
    };
    assert_eq!(kept.trails, Some(235));
    assert_eq!(kept.path, copy_path(&cfg.dir, "feodo"));
    // no temp files next to the copies
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&cfg.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // the failure is recorded for `feeds list`
    let status = &feed_statuses(&cfg).unwrap()[0];
    assert_eq!(
        status.state.last_error.as_deref(),
        Some(&*error.to_string())
    );
    assert_eq!(status.state.failures, 1);
    error
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn ok_200_writes_copies_and_counts_trails() {
    let server = Server::start(|r: &Request| match r.path.as_str() {
        "/feodo.ipset" => Reply::ok(feodo()),
        "/level5.txt" => Reply::ok(data("feeds/ipsum/level5.txt")),
        "/drop.netset" => Reply::ok(data("feeds/firehol/spamhaus_drop.netset")),
        "/whitelist.txt" => Reply::ok(data("maltrail/data/whitelist.txt")),
        _ => Reply::status("404 Not Found"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut disabled = spec("never", server.url("/never"), FormatSpec::Ip);
    disabled.enabled = false;
    let cfg = config(
        dir.path(),
        vec![
            spec("feodo", server.url("/feodo.ipset"), FormatSpec::Ipset),
            spec(
                "ipsum",
                server.url("/level5.txt"),
                FormatSpec::Ipsum { min_count: 3 },
            ),
            spec("drop", server.url("/drop.netset"), FormatSpec::Ipset),
            spec("wl", server.url("/whitelist.txt"), FormatSpec::Whitelist),
            disabled,
        ],
    );
    let updater = Updater::new(cfg.clone()).unwrap();
    let summary = updater.update(&NoProgress).await;
    assert!(summary.all_ok(), "{summary}");
    assert!(summary.changed());
    assert_eq!(summary.updated(), 4);
    // config order, disabled feed not fetched
    let names: Vec<&str> = summary.outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["feodo", "ipsum", "drop", "wl"]);
    assert!(server.requests_to("/never").is_empty());

    assert_eq!(summary.outcomes[0].trails(), 235);
    assert_eq!(summary.outcomes[1].trails(), 1413);
    assert_eq!(summary.outcomes[2].trails(), 683);
    assert!(summary.outcomes[3].trails() > 0);
    assert_eq!(copy(&cfg, "feodo"), feodo());
    assert_eq!(copy(&cfg, "ipsum"), data("feeds/ipsum/level5.txt"));
    assert!(dir.path().join(STATE_FILE).is_file());
    assert!(dir.path().join("feodo.list").is_file());

    // `feeds list`: every configured feed, state for the fetched ones
    let statuses = feed_statuses(&cfg).unwrap();
    assert_eq!(statuses.len(), 5);
    assert_eq!(statuses[0].state.trails, Some(235));
    assert!(statuses[0].state.updated.is_some());
    assert!(statuses[0].copy.is_some() && !statuses[0].failing());
    assert_eq!(statuses[4].name, "never");
    assert!(statuses[4].copy.is_none() && statuses[4].state.updated.is_none());
    // first download is unconditional
    let first = &server.requests_to("/feodo.ipset")[0];
    assert!(!first.headers.contains_key("if-none-match"));
    assert!(first.headers["user-agent"].starts_with("spoor/"));
}

#[tokio::test]
async fn etag_304_keeps_copy() {
    let server = Server::start(|r: &Request| {
        if r.headers.get("if-none-match").map(String::as_str) == Some("\"v1\"") {
            Reply::status("304 Not Modified").header("ETag", "\"v1\"")
        } else {
            Reply::ok(feodo()).header("ETag", "\"v1\"")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/f"), FormatSpec::Ipset)],
    );
    assert!(run_one(&cfg).await.changed());
    let second = run_one(&cfg).await;
    assert_eq!(second.status, UpdateStatus::NotModified { trails: 235 });
    assert_eq!(second.to_string(), "feodo: not modified, 235 trails");
    let requests = server.requests_to("/f");
    assert_eq!(requests[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(copy(&cfg, "feodo"), feodo());
    assert_eq!(
        feed_statuses(&cfg).unwrap()[0].state.etag.as_deref(),
        Some("\"v1\"")
    );
}

#[tokio::test]
async fn last_modified_304_keeps_copy() {
    const DATE: &str = "Wed, 25 Nov 2026 10:00:00 GMT";
    let server = Server::start(|r: &Request| {
        if r.headers.get("if-modified-since").map(String::as_str) == Some(DATE) {
            Reply::status("304 Not Modified")
        } else {
            Reply::ok(feodo()).header("Last-Modified", DATE)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/f"), FormatSpec::Ipset)],
    );
    assert!(run_one(&cfg).await.changed());
    assert_eq!(
        run_one(&cfg).await.status,
        UpdateStatus::NotModified { trails: 235 }
    );
    let requests = server.requests_to("/f");
    assert_eq!(requests[1].headers["if-modified-since"], DATE);
    assert!(!requests[1].headers.contains_key("if-none-match"));
    assert_eq!(copy(&cfg, "feodo"), feodo());
}

#[tokio::test]
async fn changed_url_downloads_unconditionally() {
    let server = Server::start(|_: &Request| Reply::ok(feodo()).header("ETag", "\"v1\"")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/old"), FormatSpec::Ipset)],
    );
    run_one(&cfg).await;
    cfg.feeds[0].url = server.url("/new");
    assert!(run_one(&cfg).await.changed());
    assert!(
        !server.requests_to("/new")[0]
            .headers
            .contains_key("if-none-match")
    );
}

#[tokio::test]
async fn timeout_keeps_last_good() {
    let slow = Reply::ok(feodo()).delayed(StdDuration::from_secs(3));
    let error = assert_rejected_after_good(slow, |cfg| {
        cfg.timeout = Duration(StdDuration::from_millis(300));
    })
    .await;
    assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
    assert!(
        error.to_string().contains("timed out after 300ms"),
        "{error}"
    );
}

#[tokio::test]
async fn http_500_keeps_last_good() {
    let error =
        assert_rejected_after_good(Reply::status("500 Internal Server Error"), |_| {}).await;
    assert_eq!(error.to_string(), "HTTP 500 Internal Server Error");
}

#[tokio::test]
async fn truncated_body_keeps_last_good() {
    let short = Reply::ok(feodo()[..100].to_vec()).announce(Some(feodo().len()));
    let error = assert_rejected_after_good(short, |_| {}).await;
    assert!(
        matches!(
            error,
            FetchError::Truncated {
                received: 100,
                expected: Some(_),
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn html_page_keeps_last_good() {
    // Lines that parse as trails: rejection must come from sniffing, not from parsing.
    let page = "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\n<body>\n\
                1.2.3.4\n5.6.7.8\n</body></html>\n";
    let reply = Reply::ok(page).header("Content-Type", "text/html; charset=utf-8");
    let error = assert_rejected_after_good(reply, |_| {}).await;
    assert!(matches!(error, FetchError::Html { .. }), "{error}");
    assert!(error.to_string().contains("HTML page instead of a list"));
}

#[tokio::test]
async fn html_page_with_plain_content_type_is_still_rejected() {
    let reply = Reply::ok("<html>\n10.0.0.1\n</html>\n");
    let error = assert_rejected_after_good(reply, |_| {}).await;
    assert!(matches!(error, FetchError::Html { .. }), "{error}");
}

#[tokio::test]
async fn oversize_announced_body_keeps_last_good() {
    let big = Reply::ok(vec![b'1'; 256 * 1024]);
    let error = assert_rejected_after_good(big, |cfg| cfg.max_size = ByteSize(64 << 10)).await;
    assert!(
        matches!(
            error,
            FetchError::Oversize {
                announced: Some(262_144),
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("max_size = 64KiB"), "{error}");
}

#[tokio::test]
async fn oversize_streamed_body_is_capped() {
    // No Content-Length: the cap must be enforced while reading.
    let line = b"10.20.30.40\n";
    let body: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 50_000)
        .collect();
    let big = Reply::ok(body).announce(None);
    let error = assert_rejected_after_good(big, |cfg| cfg.max_size = ByteSize(64 << 10)).await;
    assert!(
        matches!(
            error,
            FetchError::Oversize {
                announced: None,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn empty_body_keeps_last_good() {
    let error = assert_rejected_after_good(Reply::ok(""), |_| {}).await;
    assert_eq!(error, FetchError::Empty);
}

#[tokio::test]
async fn body_without_trails_keeps_last_good() {
    let error = assert_rejected_after_good(Reply::ok("# no entries today\n"), |_| {}).await;
    assert!(matches!(error, FetchError::NoTrails { .. }), "{error}");
}

#[tokio::test]
async fn collapsed_feed_is_rejected_until_it_persists() {
    let server = Server::start(good_then(
        Reply::ok(feodo()),
        Reply::ok("1.2.3.4\n5.6.7.8\n"),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/f"), FormatSpec::Ipset)],
    );
    run_one(&cfg).await;
    for _ in 0..2 {
        let outcome = run_one(&cfg).await;
        let message = outcome.to_string();
        assert!(
            matches!(
                outcome.error(),
                Some(FetchError::Shrunk { previous: 235, .. })
            ),
            "{message}"
        );
        assert!(
            message.contains("only 2 trails where the last good copy has 235 (under 10%)"),
            "{message}"
        );
        assert_eq!(copy(&cfg, "feodo"), feodo());
    }
    // the third download in a row agrees: the feed really shrank
    assert_eq!(
        run_one(&cfg).await.status,
        UpdateStatus::Updated {
            trails: 2,
            bytes: 16
        }
    );
}

#[tokio::test]
async fn first_failure_without_copy_says_so() {
    let server = Server::start(|_: &Request| Reply::status("404 Not Found")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![spec("gone", server.url("/gone"), FormatSpec::Ip)],
    );
    let outcome = run_one(&cfg).await;
    assert!(!copy_path(&cfg.dir, "gone").exists());
    assert_eq!(
        outcome.to_string(),
        format!(
            "gone: HTTP 404 Not Found from {}; no earlier copy, so this feed adds no trails yet",
            server.url("/gone")
        )
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind then drop: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![spec(
            "down",
            format!("http://127.0.0.1:{port}/"),
            FormatSpec::Ip,
        )],
    );
    let outcome = run_one(&cfg).await;
    assert!(
        matches!(outcome.error(), Some(FetchError::Connect { .. })),
        "{outcome}"
    );
}

#[tokio::test]
async fn downloads_run_in_parallel_up_to_the_limit() {
    let server =
        Server::start(|_: &Request| Reply::ok(feodo()).delayed(StdDuration::from_millis(150)))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let feeds = (0..6)
        .map(|i| {
            spec(
                &format!("f{i}"),
                server.url(&format!("/{i}")),
                FormatSpec::Ip,
            )
        })
        .collect();
    let mut cfg = config(dir.path(), feeds);
    cfg.parallel = 2;

    #[derive(Default)]
    struct Counting {
        total: AtomicUsize,
        done: AtomicUsize,
    }
    impl Progress for Counting {
        fn started(&self, total: usize) {
            self.total.store(total, Ordering::SeqCst);
        }
        fn finished(&self, _outcome: &FeedOutcome) {
            self.done.fetch_add(1, Ordering::SeqCst);
        }
    }
    let progress = Counting::default();
    let summary = Updater::new(cfg).unwrap().update(&progress).await;
    assert_eq!(summary.updated(), 6, "{summary}");
    assert_eq!(progress.total.load(Ordering::SeqCst), 6);
    assert_eq!(progress.done.load(Ordering::SeqCst), 6);
    let peak = server.peak.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "peak {peak} connections");
}

#[tokio::test]
async fn runs_on_interval_until_shutdown() {
    let server = Server::start(|_: &Request| Reply::ok(feodo()).header("ETag", "\"v1\"")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        dir.path(),
        vec![spec("feodo", server.url("/f"), FormatSpec::Ipset)],
    );
    cfg.interval = Duration(StdDuration::from_millis(100));
    let updater = Updater::new(cfg).unwrap();
    let mut runs = Vec::new();
    updater
        .run_every_interval(
            tokio::time::sleep(StdDuration::from_millis(1500)),
            &NoProgress,
            |summary| runs.push(summary.changed()),
        )
        .await;
    assert!(runs.len() >= 2, "{runs:?}");
    // the first run downloads; later ones send the ETag (this server ignores it)
    assert!(runs[0]);
    assert!(
        server.requests_to("/f")[1]
            .headers
            .contains_key("if-none-match")
    );
}
