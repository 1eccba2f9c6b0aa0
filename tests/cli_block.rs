//! `spoor block` and `spoor agent --once` against a ledger in a temp dir, with the dry-run
//! backend: blocks added by hand are audited, refused when allowlisted, applied by the
//! agent, and revoked.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

fn spoor(config: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoor"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("SPOOR_LOG")
        .env("USER", "carol")
        .env_remove("SUDO_USER")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("spoor.toml");
    std::fs::write(
        &config,
        format!(
            "[spoor]\nstate_dir = \"{}\"\n[respond]\nbackend = \"dry-run\"\nallow = [\"203.0.113.0/24\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn add_apply_list_remove() {
    let (dir, config) = setup();
    let o = spoor(
        &config,
        &[
            "block",
            "add",
            "198.51.100.7",
            "2001:db8:7::/48",
            "--ttl",
            "2h",
            "--reason",
            "seen scanning",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("approved") && text(&o).contains("by cli:carol"),
        "{}",
        text(&o)
    );
    assert!(dir.path().join("decisions.sqlite").exists());

    // the allowlist and the prefix guard refuse, with the reason
    for (target, why) in [
        ("127.0.0.1", "loopback"),
        ("203.0.113.9", "[respond] allow"),
        ("10.1.2.3", "block_private"),
        ("198.51.0.0/16", "shortest allowed"),
    ] {
        let o = spoor(&config, &["block", "add", target]);
        assert_eq!(o.status.code(), Some(3), "{target}: {}", text(&o));
        assert!(text(&o).contains(why), "{target}: {}", text(&o));
    }
    // a second block on an open target is refused
    let o = spoor(&config, &["block", "add", "198.51.100.7"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let o = spoor(&config, &["agent", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("added 2"), "{}", text(&o));
    assert!(text(&o).contains("activated 2"), "{}", text(&o));

    let o = spoor(&config, &["block", "list", "--format", "json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|d| d["state"] == "active" && d["actor"] == "agent")
    );
    assert_eq!(lines[0]["reason"]["note"], "seen scanning");

    let o = spoor(&config, &["block", "remove", "198.51.100.7"]);
    assert!(text(&o).contains("revoked"), "{}", text(&o));
    let o = spoor(&config, &["block", "remove", "198.51.100.7"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "nothing left to remove: {}",
        text(&o)
    );
    let o = spoor(&config, &["block", "list", "--all"]);
    assert!(
        text(&o).contains("revoked") && text(&o).contains("active"),
        "{}",
        text(&o)
    );

    let o = spoor(&config, &["block", "flush"]);
    assert!(text(&o).contains("revoked 1 decisions"), "{}", text(&o));
    let o = spoor(&config, &["block", "list"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}
