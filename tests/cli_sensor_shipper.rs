//! `spoor sensor -r` with `[[sensor.output]] type = "server"`: the events of a corpus
//! capture reach an ingest server in the test (127.0.0.1) with the sensor's status and its
//! token, the spool lives in the state folder, and a bad URL is refused by the config check.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tempfile::TempDir;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/maltrail/corpus"
);
const TOKEN: &str = "cli-test-token";

fn spoor(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoor"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor")
}

/// Each request's authorization header line and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A server answering every request 200 with an ack; returns its URL and what it got.
fn ingest_server() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let (mut length, mut auth) = (0usize, String::new());
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    auth = line.trim_end().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let n = serde_json::from_slice::<Value>(&body).unwrap()["events"]
                .as_array()
                .unwrap()
                .len();
            seen2.lock().unwrap().push((auth, body));
            let answer = format!("{{\"accepted\":{n},\"duplicates\":0}}");
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

fn config(dir: &TempDir, url: &str) -> PathBuf {
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    let toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n\
         [feeds]\ndisable = [{}]\n\n\
         [[trails.source]]\nname = \"corpus\"\npath = \"{CORPUS}/trails.csv\"\nformat = \"maltrail-csv\"\n\n\
         [sensor]\nname = \"ship-test\"\nlog_dir = \"\"\n\n\
         [[sensor.output]]\ntype = \"server\"\nurl = \"{url}\"\ntoken_file = \"token\"\n",
        off.join(", "),
    );
    let path = dir.path().join("spoor.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn events_of_a_capture_reach_the_server_with_status_and_token() {
    let (url, seen) = ingest_server();
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir, &url);
    let out = spoor(&cfg, &["trails", "compile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = spoor(
        &cfg,
        &[
            "sensor",
            "-r",
            &format!("{CORPUS}/ip_trails.pcap"),
            "--console",
            "--format",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(console.len(), 3, "the capture's three events");

    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "nothing reached the server");
    let mut shipped = Vec::new();
    for (auth, body) in seen.iter() {
        // Header names are case-insensitive; the token is not.
        let (name, value) = auth.split_once(':').unwrap();
        assert_eq!(name.to_ascii_lowercase(), "authorization");
        assert_eq!(value.trim(), format!("Bearer {TOKEN}"));
        let batch: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(batch["status"]["name"], "ship-test");
        assert_eq!(batch["status"]["spool_dropped"], 0);
        for e in batch["events"].as_array().unwrap() {
            shipped.push(e.clone());
        }
    }
    assert_eq!(shipped, console, "the same events, in the same order");
    // The spool sits in the state folder, with its cursor past everything sent.
    assert!(dir.path().join("state/spool/cursor").exists());
}

#[test]
fn plain_http_to_another_host_is_refused_by_the_config_check() {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir, "http://192.0.2.10:8338");
    let out = spoor(&cfg, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sensor.output[0].url"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
}
