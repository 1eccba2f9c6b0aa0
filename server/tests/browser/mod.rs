//! A small WebDriver client (W3C WebDriver is JSON over HTTP) for the dashboard's
//! browser tests: chromedriver as a child process on a free loopback port, headless
//! Chromium with a fresh profile, and the dozen commands the tests use. Written here
//! over reqwest (already a dev-dependency) rather than pulling in a WebDriver crate.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long the tests wait for something to appear on a page.
pub const WAIT: Duration = Duration::from_secs(15);
/// How long chromedriver may take to start answering.
const DRIVER_START: Duration = Duration::from_secs(20);
/// Key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver_path() -> PathBuf {
    std::env::var_os("CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// chromedriver, killed (by its PID, via `Child::kill`) when dropped, even when a test
/// fails.
pub struct Driver {
    child: Child,
    pub url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group (see `start`): ending the group ends
        // the browsers it started too, even those of a test that panicked before closing
        // its session.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Start chromedriver; panics with what to install when it or Chromium is missing
    /// (a browser test must fail, not pass, without a browser).
    pub async fn start() -> Driver {
        let driver = chromedriver_path();
        let browser = chromium_path();
        for (what, path, pkg) in [
            ("chromedriver", &driver, "chromium-driver"),
            ("Chromium", &browser, "chromium"),
        ] {
            assert!(
                path.is_file(),
                "{what} not found at {} : install the Debian package `{pkg}` (as .ci/run does) or set {} to its path",
                path.display(),
                if what == "Chromium" {
                    "CHROMIUM"
                } else {
                    "CHROMEDRIVER"
                }
            );
        }
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().unwrap(),
        };
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/status", d.url)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(
                start.elapsed() < DRIVER_START,
                "chromedriver did not become ready within {DRIVER_START:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d
    }

    /// A new headless browser session (its own temporary profile).
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir_in(self._profile.path()).unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium_path(), "args": args},
        }}});
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {r}"))
            .to_string();
        Browser {
            http,
            base: format!("{}/session/{id}", self.url),
            _profile: profile,
        }
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

/// An element on the page.
#[derive(Debug, Clone)]
pub struct El(String);

impl Browser {
    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let ok = r.status().is_success();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await.unwrap();
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn try_find(&self, css: &str) -> Option<El> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
            .ok()?;
        Some(El(v[ELEMENT_KEY].as_str()?.to_string()))
    }

    pub async fn find_all(&self, css: &str) -> Vec<El> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| El(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it.
    pub async fn find(&self, css: &str) -> El {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if start.elapsed() > WAIT {
                let text = self.page_text().await;
                panic!("`{css}` did not appear within {WAIT:?}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `script` (a function body returning a value) returns something truthy;
    /// returns it.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.exec(script, json!([])).await;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if start.elapsed() > WAIT {
                let text = self.page_text().await;
                panic!("waited {WAIT:?} for {what}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn page_text(&self) -> String {
        self.exec(
            "return document.body ? document.body.innerText : ''",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    pub async fn click(&self, e: &El) {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await
            .unwrap();
    }

    pub async fn clear(&self, e: &El) {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await
            .unwrap();
    }

    pub async fn type_into(&self, e: &El, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
            .await
            .unwrap();
    }

    pub async fn text(&self, e: &El) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Texts of every element matching `css`, read in one script.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let v = self
            .exec("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())", json!([css]))
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.exec(
            "return document.querySelectorAll(arguments[0]).length",
            json!([css]),
        )
        .await
        .as_u64()
        .unwrap() as usize
    }

    /// Save a PNG of the viewport under `target/screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self
            .cmd(reqwest::Method::GET, "/screenshot", None)
            .await
            .unwrap();
        let png = base64_decode(b64.as_str().unwrap());
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .unwrap();
    }

    pub async fn close(self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

/// `target/screenshots/` of the target dir in use (CARGO_TARGET_DIR aware).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
