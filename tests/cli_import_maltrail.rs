//! `spoor config import-maltrail` on Maltrail's real reference `maltrail.conf` (read in
//! place): the keys with an equivalent are converted, every other key that is set is listed
//! with a reason, and the result passes `spoor config check`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn maltrail_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/maltrail/maltrail.conf")
}

fn spoor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoor"))
        .args(args)
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor")
}

/// The keys the file sets (not commented out), as Maltrail reads them.
fn active_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| {
            !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with(char::is_whitespace)
        })
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn the_reference_maltrail_conf_converts_and_validates() {
    let conf = maltrail_conf();
    let Ok(text) = std::fs::read_to_string(&conf) else {
        panic!("{} is missing (shared test data)", conf.display());
    };
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("spoor.toml");
    let out = spoor(&[
        "config",
        "import-maltrail",
        conf.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let toml = std::fs::read_to_string(&out_path).unwrap();

    // What has an equivalent, converted to the Spoor key with the same effect.
    let maltrail_dir = std::path::absolute(conf.parent().unwrap()).unwrap();
    for want in [
        "interfaces = [\"any\"]",
        "filter = \"udp or icmp or (tcp and (tcp[tcpflags] == tcp-syn or port 80",
        "log_dir = \"/var/log/maltrail\"",
        "interval = \"86400s\"",
        "disable = [\"cins-army\", \"myip-blacklist\", \"turris-greylist\"]",
        "format = \"maltrail\"\nreference = \"(custom)\"",
        &format!("path = \"{}/trails/custom\"", maltrail_dir.display()),
    ] {
        assert!(toml.contains(want), "missing `{want}` in:\n{toml}");
    }
    // $HOSTNAME is Spoor's default already: no name is written.
    assert!(!toml.contains("name = \"$HOSTNAME\""));

    // Every key that is set is either converted or listed with its reason.
    let converted = [
        "SENSOR_NAME",
        "MONITOR_INTERFACE",
        "CAPTURE_FILTER",
        "LOG_DIR",
        "UPDATE_PERIOD",
        "DISABLED_FEEDS",
        "USE_FEED_UPDATES",
        "CUSTOM_TRAILS_DIR",
        "SHOW_DEBUG",
        "DISABLE_LOCAL_LOG_STORAGE",
    ];
    let listed: BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("  {}:", conf.display())))
        .map(|rest| {
            let (_line, rest) = rest.split_once(": ").unwrap();
            rest.split([':', ' ']).next().unwrap().to_string()
        })
        .collect();
    for key in [
        "USERS",
        "PROCESS_COUNT",
        "CAPTURE_BUFFER",
        "REMOTE_SEVERITY_REGEX",
        "HTTP_PORT",
    ] {
        assert!(listed.contains(key), "{key} not listed:\n{stderr}");
    }
    assert!(stderr.contains("DISABLED_FEEDS policeman, alienvault: not in Spoor's feed catalog"));
    let mut accounted: BTreeSet<String> = listed.clone();
    accounted.extend(converted.iter().map(|s| s.to_string()));
    assert_eq!(accounted, active_keys(&text), "stderr:\n{stderr}");
    // The same list closes the file, as comments.
    assert!(toml.contains("#   35: USERS: not imported"), "{toml}");

    let check = spoor(&["config", "check", "-c", out_path.to_str().unwrap()]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // An existing output is not replaced without --force.
    let again = spoor(&[
        "config",
        "import-maltrail",
        conf.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}
