//! `spoor sensor -r FILE...`, run as an admin would run it: a config in a temp dir with
//! every catalog feed off, the shared corpus trails compiled by `spoor trails compile`,
//! and the corpus captures read offline. Every capture's packets are stamped from
//! 1700000000 s (2023-11-14 22:13:20 UTC) on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// The shared Maltrail corpus: captures and the trail list they are checked against.
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/maltrail/corpus"
);

/// First packet time of every corpus capture, in seconds.
const CORPUS_EPOCH: i64 = 1_700_000_000;

/// Fields every JSON event has. `src_port`/`dst_port` are there when the protocol has
/// ports, `offender` when the hostile party is known (an IP trail names it, a domain trail
/// does not), `answers` and `context` when they carry something.
const EVENT_FIELDS: [&str; 14] = [
    "id",
    "time",
    "sensor",
    "src",
    "dst",
    "proto",
    "kind",
    "trail",
    "info",
    "reference",
    "severity",
    "count",
    "first_seen",
    "last_seen",
];

/// `ip_trails.pcap`: 10.0.0.66 to two listed hosts, then a listed host back to it.
const IP_TRAILS: [&str; 3] = ["66.66.66.66", "6.6.6.6:8443", "198.51.100.66"];

/// `dns_queries.pcap`: 10.0.0.66 asks 8.8.8.8 for five listed names.
const DNS_TRAILS: [&str; 5] = [
    "evil-test-domain.com",
    "evil-parent.com",
    "badsite.onion",
    "evilname",
    r"dga[0-9]+\.wildcard-test\.com",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn capture(name: &str) -> PathBuf {
    Path::new(CORPUS).join(name)
}

/// Run `spoor -c CONFIG ARGS`.
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

/// Panic with both streams unless `out` exited with `code`.
#[track_caller]
fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A config in `dir`: catalog feeds off, state in `dir/state`, the corpus trails as the
/// only source, a fixed sensor name, and `sensor_extra` appended inside `[sensor]`.
fn config(dir: &TempDir, sensor_extra: &str) -> PathBuf {
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    let toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n\
         [feeds]\ndisable = [{}]\n\n\
         [[trails.source]]\nname = \"corpus\"\npath = {:?}\nformat = \"maltrail-csv\"\n\n\
         [sensor]\nname = \"test-sensor\"\n{sensor_extra}\n",
        off.join(", "),
        capture("trails.csv").display().to_string(),
    );
    let path = dir.path().join("spoor.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// `config` with its trails compiled.
fn compiled(sensor_extra: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir, sensor_extra);
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    (dir, cfg)
}

/// `sensor -r FILES... EXTRA...`.
fn read_files(cfg: &Path, files: &[PathBuf], extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["sensor", "-r"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend_from_slice(extra);
    spoor(cfg, &args)
}

/// Console JSON: one parsed object per line.
fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn trails_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["trail"].as_str().unwrap())
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn reads_several_files_in_order_and_prints_json_events() {
    let (_dir, cfg) = compiled("");
    let files = [capture("ip_trails.pcap"), capture("dns_queries.pcap")];
    let out = read_files(&cfg, &files, &["--console", "--format", "json", "--no-log"]);
    expect_code(&out, 0);
    let events = json_lines(&out);
    let expected: Vec<&str> = IP_TRAILS.iter().chain(&DNS_TRAILS).copied().collect();
    assert_eq!(trails_of(&events), expected, "{}", text(&out.stdout));

    for e in &events {
        for field in EVENT_FIELDS {
            assert!(e.get(field).is_some(), "no `{field}` in {e}");
        }
        // Every event here is TCP or UDP.
        assert!(e["src_port"].is_u64() && e["dst_port"].is_u64(), "{e}");
        if e["kind"] == "ip" || e["kind"] == "ip_port" {
            assert!(e["offender"].is_string(), "{e}");
        }
        assert_eq!(e["sensor"], "test-sensor", "{e}");
        assert_eq!(e["count"], 1, "{e}");
        // Packet time, not the wall clock: every capture starts at CORPUS_EPOCH.
        let time = e["time"].as_i64().unwrap();
        let secs = time / 1_000_000;
        assert!(
            (CORPUS_EPOCH..CORPUS_EPOCH + 10).contains(&secs),
            "time {time} is not a packet time: {e}"
        );
        assert_eq!(e["first_seen"], e["time"], "{e}");
        assert_eq!(e["last_seen"], e["time"], "{e}");
    }

    let first = &events[0];
    assert_eq!(first["time"], CORPUS_EPOCH * 1_000_000);
    assert_eq!(first["src"], "10.0.0.66");
    assert_eq!(first["src_port"], 50002);
    assert_eq!(first["dst"], "66.66.66.66");
    assert_eq!(first["dst_port"], 443);
    assert_eq!(first["proto"], "TCP");
    assert_eq!(first["kind"], "ip");
    assert_eq!(first["info"], "malware (test)");
    assert_eq!(first["reference"], "(static)");
    assert_eq!(first["offender"], "66.66.66.66");

    let dns = &events[IP_TRAILS.len()];
    assert_eq!(dns["kind"], "dns");
    assert_eq!(dns["proto"], "UDP");
    assert_eq!(dns["dst"], "8.8.8.8");
    assert_eq!(dns["dst_port"], 53);
    assert_eq!(dns["context"]["dns"]["qname"], "evil-test-domain.com");
    assert_eq!(dns["context"]["dns"]["qtype"], "A");

    // The other order gives the other order: files are read as given, one after another.
    let files = [capture("dns_queries.pcap"), capture("ip_trails.pcap")];
    let out = read_files(&cfg, &files, &["--console", "--format", "json", "--no-log"]);
    expect_code(&out, 0);
    let expected: Vec<&str> = DNS_TRAILS.iter().chain(&IP_TRAILS).copied().collect();
    assert_eq!(trails_of(&json_lines(&out)), expected);
}

#[test]
fn dns_answer_events_carry_the_answers() {
    let (_dir, cfg) = compiled("");
    let files = [capture("dns_responses.pcap")];
    let out = read_files(&cfg, &files, &["--console", "--format", "json", "--no-log"]);
    expect_code(&out, 0);
    let events = json_lines(&out);
    // The answer is on a sinkhole trail: the sinkholed_answer heuristic reports the name.
    let sinkhole = events
        .iter()
        .find(|e| e["trail"] == "sinkholed.com")
        .unwrap_or_else(|| panic!("no sinkhole event: {}", text(&out.stdout)));
    assert_eq!(sinkhole["answers"], serde_json::json!(["198.51.100.90"]));
    assert_eq!(sinkhole["kind"], "heuristic");
    assert_eq!(sinkhole["info"], "sinkholed by testsink (malware)");
}

#[test]
fn maltrail_console_lines() {
    let (_dir, cfg) = compiled("");
    let files = [capture("ip_trails.pcap"), capture("dns_queries.pcap")];
    let out = read_files(
        &cfg,
        &files,
        &["--console", "--format", "maltrail", "--no-log"],
    );
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), IP_TRAILS.len() + DNS_TRAILS.len(), "{stdout}");
    assert_eq!(
        lines[0],
        "\"2023-11-14 22:13:20.000000\" test-sensor 10.0.0.66 50002 66.66.66.66 443 TCP IP \
         66.66.66.66 \"malware (test)\" (static)"
    );
    assert_eq!(
        lines[1],
        "\"2023-11-14 22:13:21.000000\" test-sensor 10.0.0.66 50003 6.6.6.6 8443 TCP IPORT \
         6.6.6.6:8443 \"malware (test)\" (static)"
    );
    // Maltrail writes the part of the name that matched, the rest in parentheses.
    assert!(
        stdout.contains(
            " 10.0.0.66 50001 8.8.8.8 53 UDP DNS (www).evil-parent.com \"malware (test)\" (static)"
        ),
        "{stdout}"
    );
    // `--format maltrail` is the default.
    let default = read_files(&cfg, &files, &["--console", "--no-log"]);
    expect_code(&default, 0);
    assert_eq!(text(&default.stdout), stdout);
}

#[test]
fn an_unreadable_file_is_reported_and_the_others_are_still_read() {
    let (dir, cfg) = compiled("");
    let missing = dir.path().join("no-such-capture.pcap");
    let not_pcap = dir.path().join("not-a-capture.pcap");
    std::fs::write(&not_pcap, "this is not a capture\n").unwrap();
    let files = [
        capture("ip_trails.pcap"),
        missing.clone(),
        not_pcap.clone(),
        capture("dns_queries.pcap"),
    ];
    let out = read_files(&cfg, &files, &["--console", "--format", "json", "--no-log"]);
    expect_code(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains(&not_pcap.display().to_string()), "{stderr}");
    let expected: Vec<&str> = IP_TRAILS.iter().chain(&DNS_TRAILS).copied().collect();
    assert_eq!(trails_of(&json_lines(&out)), expected, "{stderr}");
}

#[test]
fn daily_log_is_named_by_the_packet_date() {
    let (dir, cfg) = compiled("log_dir = \"logs\"");
    let files = [capture("ip_trails.pcap"), capture("dns_queries.pcap")];
    let out = read_files(&cfg, &files, &[]);
    expect_code(&out, 0);
    assert!(out.stdout.is_empty(), "no --console: {}", text(&out.stdout));
    let logs = dir.path().join("logs");
    assert_eq!(files_in(&logs), ["2023-11-14.log"]);
    let log = std::fs::read_to_string(logs.join("2023-11-14.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), IP_TRAILS.len() + DNS_TRAILS.len(), "{log}");
    assert!(
        lines[0].starts_with("\"2023-11-14 22:13:20.000000\" test-sensor 10.0.0.66 50002 "),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" UDP DNS evil-test-domain.com \"malware (test)\" (static)")),
        "{log}"
    );

    // `--no-log` leaves the daily logs alone.
    let out = read_files(&cfg, &files, &["--no-log"]);
    expect_code(&out, 0);
    assert_eq!(
        std::fs::read_to_string(logs.join("2023-11-14.log")).unwrap(),
        log
    );
}

#[test]
fn file_output_writes_eve_style_json() {
    let (dir, cfg) = compiled(
        "log_dir = \"\"\n\n[[sensor.output]]\ntype = \"file\"\npath = \"events.json\"\nformat = \"json\"",
    );
    let out = read_files(&cfg, &[capture("ip_trails.pcap")], &[]);
    expect_code(&out, 0);
    let path = dir.path().join("events.json");
    let body = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), text(&out.stderr)));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), IP_TRAILS.len(), "{body}");
    for line in &lines {
        assert!(line.contains("\"event_type\":\"alert\""), "{line}");
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("src_ip").is_some() && v.get("dest_ip").is_some(),
            "{v}"
        );
    }
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["src_ip"], "10.0.0.66");
    assert_eq!(first["dest_ip"], "66.66.66.66");
    assert!(
        !dir.path().join("state/log").exists(),
        "log_dir = \"\" writes no daily logs"
    );
}

#[test]
fn missing_snapshot_says_to_compile() {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir, "");
    let out = read_files(&cfg, &[capture("ip_trails.pcap")], &["--console"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("spoor trails compile"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // `--snapshot` pointing nowhere gets the same advice, naming the path.
    let (_dir, cfg) = compiled("");
    let elsewhere = dir.path().join("elsewhere.snapshot");
    let out = read_files(
        &cfg,
        &[capture("ip_trails.pcap")],
        &["--snapshot", elsewhere.to_str().unwrap()],
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("spoor trails compile") && stderr.contains("elsewhere.snapshot"),
        "{stderr}"
    );
}

#[test]
fn ignore_rule_suppresses_events_from_that_source() {
    let (_dir, cfg) = compiled("ignore = [\"10.0.0.66;*;*;*\"]");
    let files = [capture("ip_trails.pcap"), capture("dns_queries.pcap")];
    let out = read_files(&cfg, &files, &["--console", "--format", "json", "--no-log"]);
    expect_code(&out, 0);
    let events = json_lines(&out);
    // Only the inbound packet from the listed host is left: its source is not 10.0.0.66.
    assert_eq!(
        trails_of(&events),
        ["198.51.100.66"],
        "{}",
        text(&out.stdout)
    );
    assert_eq!(events[0]["src"], "198.51.100.66");
}
