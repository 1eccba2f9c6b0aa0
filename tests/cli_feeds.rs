//! `spoor feeds update` and `spoor feeds list` against feeds served from 127.0.0.1, with a
//! config that switches every catalog feed off.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{Reply, Server};
use tempfile::TempDir;

const FEEDS_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/feeds");

fn data(rel: &str) -> Vec<u8> {
    let path = Path::new(FEEDS_DATA).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn spoor(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoor"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config in `dir` with the catalog off and these `(name, url, format)` custom feeds.
fn config(dir: &TempDir, feeds: &[(&str, String, &str)]) -> PathBuf {
    let on_by_default: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    let mut toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n[feeds]\ntimeout = \"10s\"\ndisable = [{}]\n",
        on_by_default.join(", ")
    );
    for (name, url, format) in feeds {
        toml.push_str(&format!(
            "\n[[feeds.custom]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"{format}\"\n\
             description = \"test feed {name}\"\n"
        ));
    }
    let path = dir.path().join("spoor.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn copy(dir: &TempDir, name: &str) -> PathBuf {
    dir.path().join("state/feeds").join(format!("{name}.list"))
}

#[test]
fn update_prints_the_summary_and_list_shows_trails() {
    let server = Server::start(vec![
        ("/feodo.ipset", Reply::ok(data("firehol/feodo.ipset"))),
        ("/level5.txt", Reply::ok(data("ipsum/level5.txt"))),
    ]);
    let dir = TempDir::new().unwrap();
    let cfg = config(
        &dir,
        &[
            ("feodo", server.url("/feodo.ipset"), "ipset"),
            ("ipsum5", server.url("/level5.txt"), "ipsum"),
        ],
    );

    let out = spoor(&cfg, &["feeds", "update"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("feodo"), ["feodo", "updated", "235", "yes"]);
    assert_eq!(row("ipsum5")[1], "updated");
    assert!(
        stdout.contains("total: 2 feeds, 2 updated, 0 unchanged, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("spoor trails compile"), "{stdout}");
    assert!(copy(&dir, "feodo").is_file());

    let out = spoor(&cfg, &["feeds", "list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let feeds: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(feeds.len(), spoor_feeds::catalog::builtin().len() + 2);
    let feodo = feeds.iter().find(|f| f["name"] == "feodo").unwrap();
    assert_eq!(feodo["trails"], 235);
    assert_eq!(feodo["enabled"], true);
    assert_eq!(feodo["format"], "ipset");
    assert_eq!(feodo["has_copy"], true);
    let ipsum = feeds.iter().find(|f| f["name"] == "ipsum5").unwrap();
    assert!(ipsum["trails"].as_u64().unwrap() > 0, "{ipsum}");
    let catalog = feeds.iter().find(|f| f["name"] == "feodotracker").unwrap();
    assert_eq!(catalog["enabled"], false);
    assert_eq!(catalog["trails"], serde_json::Value::Null);

    let out = spoor(&cfg, &["feeds", "list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("feodo ") && l.contains(" 235 ")),
        "{table}"
    );
}

#[test]
fn a_failing_feed_exits_3_and_keeps_the_good_copies() {
    let server = Server::start(vec![
        ("/feodo.ipset", Reply::ok(data("firehol/feodo.ipset"))),
        ("/broken", Reply::status("500 Internal Server Error")),
    ]);
    let dir = TempDir::new().unwrap();
    let cfg = config(
        &dir,
        &[
            ("feodo", server.url("/feodo.ipset"), "ipset"),
            ("broken", server.url("/broken?key=s3cret"), "ip"),
        ],
    );
    let out = spoor(&cfg, &["feeds", "update"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let broken = stdout.lines().find(|l| l.starts_with("broken")).unwrap();
    assert!(
        broken.contains("failed") && broken.contains("HTTP 500"),
        "{broken}"
    );
    assert!(
        stdout.contains("1 updated, 0 unchanged, 1 failed"),
        "{stdout}"
    );
    assert!(copy(&dir, "feodo").is_file());
    assert!(!copy(&dir, "broken").exists());
    assert!(
        !stdout.contains("s3cret") && !stderr.contains("s3cret"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn only_takes_enabled_names() {
    let server = Server::start(vec![(
        "/feodo.ipset",
        Reply::ok(data("firehol/feodo.ipset")),
    )]);
    let dir = TempDir::new().unwrap();
    let cfg = config(
        &dir,
        &[
            ("feodo", server.url("/feodo.ipset"), "ipset"),
            ("other", server.url("/missing"), "ip"),
        ],
    );
    let out = spoor(&cfg, &["feeds", "update", "--only", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown feed `nope`") && stderr.contains("feodo, other"),
        "{stderr}"
    );

    let out = spoor(&cfg, &["feeds", "update", "--only", "feodo"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("total: 1 feeds, 1 updated"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("other")), "{stdout}");
}
