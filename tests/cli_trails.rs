//! `spoor trails compile | lookup | stats`, run as an admin would run them: a config in a
//! temp dir with every catalog feed off, the shared corpus trail file and small trail files
//! written here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// Maltrail's merged trail list used across the project's tests (20 trails).
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/maltrail/corpus/trails.csv"
);

/// A local list in `maltrail-csv`: a CIDR, one good domain, and two malformed lines (2, 4).
const LOCAL_CSV: &str = "10.20.0.0/16,scanner net (test),(local)\n\
                         bad..name,broken,(local)\n\
                         local-only.example,malware (local),(local)\n\
                         1.2.3.999,broken,(local)\n";

/// A trail source as `(name, path, format)`.
type Source<'a> = (&'a str, &'a Path, &'a str);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run `spoor ARGS -c CONFIG` with `stdin` as standard input.
fn spoor_with_stdin(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spoor"));
    cmd.args(args)
        .arg("-c")
        .arg(config)
        .env_remove("SPOOR_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Some(input) = stdin else {
        return cmd.stdin(Stdio::null()).output().expect("run spoor");
    };
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("run spoor");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("wait for spoor")
}

fn spoor(config: &Path, args: &[&str]) -> Output {
    spoor_with_stdin(config, args, None)
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

/// A config in `dir`: catalog feeds off except `keep_enabled`, state in `dir/state`.
fn config_with_feeds(dir: &TempDir, sources: &[Source<'_>], keep_enabled: &[&str]) -> PathBuf {
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled && !keep_enabled.contains(&f.name))
        .map(|f| format!("{:?}", f.name))
        .collect();
    let on: Vec<String> = keep_enabled.iter().map(|n| format!("{n:?}")).collect();
    let mut toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n[feeds]\nenable = [{}]\ndisable = [{}]\n",
        on.join(", "),
        off.join(", ")
    );
    for (name, path, format) in sources {
        toml.push_str(&format!(
            "\n[[trails.source]]\nname = \"{name}\"\npath = {:?}\nformat = \"{format}\"\n",
            path.display().to_string()
        ));
    }
    let path = dir.path().join("spoor.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn config(dir: &TempDir, sources: &[Source<'_>]) -> PathBuf {
    config_with_feeds(dir, sources, &[])
}

fn snapshot(dir: &TempDir) -> PathBuf {
    dir.path().join("state/trails.snapshot")
}

fn write(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// The corpus and the local list, compiled: the usual starting point for lookups.
fn compiled() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let local = write(&dir, "local.csv", LOCAL_CSV);
    let cfg = config(
        &dir,
        &[
            ("corpus", Path::new(CORPUS), "maltrail-csv"),
            ("local", &local, "maltrail-csv"),
        ],
    );
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    (dir, cfg)
}

/// `trails lookup --format json`: one parsed object per line.
fn lookup_json(cfg: &Path, indicators: &[&str]) -> (Output, Vec<Value>) {
    let mut args = vec!["trails", "lookup", "--format", "json"];
    args.extend_from_slice(indicators);
    let out = spoor(cfg, &args);
    let rows = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, rows)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- compile ------------------------------------------------------------------------

#[test]
fn compile_writes_the_snapshot_and_prints_counts() {
    let dir = TempDir::new().unwrap();
    let local = write(&dir, "local.csv", LOCAL_CSV);
    let cfg = config(
        &dir,
        &[
            ("corpus", Path::new(CORPUS), "maltrail-csv"),
            ("local", &local, "maltrail-csv"),
        ],
    );
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "corpus: 20 records, 0 malformed"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "local: 2 records, 2 malformed"),
        "{stdout}"
    );
    let file = local.display();
    assert!(stdout.contains(&format!("  {file}:2: ")), "{stdout}");
    assert!(stdout.contains(&format!("  {file}:4: ")), "{stdout}");
    assert!(!stdout.contains(&format!("{file}:1:")), "{stdout}");
    let totals = stdout
        .lines()
        .find(|l| l.starts_with("trails: "))
        .unwrap_or_else(|| panic!("no totals: {stdout}"));
    assert!(totals.starts_with("trails: 22 ("), "{totals}");
    assert!(
        totals.contains("cidr 1") && totals.contains("ip_port 2"),
        "{totals}"
    );
    assert!(
        stdout.contains(&format!("wrote {}", snapshot(&dir).display())),
        "{stdout}"
    );
    assert!(snapshot(&dir).is_file());
    // Nothing is optional here, so nothing is reported as missing.
    assert!(!stdout.contains("not downloaded"), "{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");

    // `-o` writes elsewhere and leaves the configured snapshot alone.
    let before = std::fs::read(snapshot(&dir)).unwrap();
    let other = dir.path().join("elsewhere/other.snapshot");
    let out = spoor(&cfg, &["trails", "compile", "-o", other.to_str().unwrap()]);
    expect_code(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("wrote {}", other.display())),
        "{}",
        text(&out.stdout)
    );
    assert!(other.is_file());
    assert_eq!(std::fs::read(snapshot(&dir)).unwrap(), before);
    let out = spoor(
        &cfg,
        &[
            "trails",
            "lookup",
            "--snapshot",
            other.to_str().unwrap(),
            "10.20.1.1",
        ],
    );
    expect_code(&out, 0);
}

#[test]
fn missing_required_source_exits_3_and_writes_nothing() {
    let (dir, _) = compiled();
    let before = std::fs::read(snapshot(&dir)).unwrap();
    let missing = dir.path().join("lists/gone.txt");
    let cfg = config(
        &dir,
        &[
            ("corpus", Path::new(CORPUS), "maltrail-csv"),
            ("gone", &missing, "domain"),
        ],
    );
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("spoor: "), "{stderr}");
    assert!(stderr.contains("gone"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(
        !text(&out.stdout).contains("wrote"),
        "{}",
        text(&out.stdout)
    );
    // The old snapshot is untouched and no temporary file is left beside it.
    assert_eq!(std::fs::read(snapshot(&dir)).unwrap(), before);
    assert_eq!(files_in(&dir.path().join("state")), ["trails.snapshot"]);

    // With `-o` to a new place, nothing appears there either.
    let other = dir.path().join("out/new.snapshot");
    let out = spoor(&cfg, &["trails", "compile", "-o", other.to_str().unwrap()]);
    expect_code(&out, 3);
    assert!(!other.exists());
    assert!(files_in(&dir.path().join("out")).is_empty());
}

#[test]
fn enabled_feeds_not_downloaded_are_summarised_in_one_line() {
    let catalog = spoor_feeds::catalog::builtin();
    // In catalog order, as `spoor feeds list` shows them.
    let wanted: Vec<&str> = catalog.iter().map(|f| f.name).take(3).collect();
    let dir = TempDir::new().unwrap();
    let cfg = config_with_feeds(
        &dir,
        &[("corpus", Path::new(CORPUS), "maltrail-csv")],
        &wanted,
    );
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let expected = format!(
        "3 enabled feeds not downloaded yet: {} (run `spoor feeds update`)",
        wanted.join(", ")
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("not downloaded"))
            .count(),
        1,
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
    for name in &wanted {
        assert!(
            !stdout.lines().any(|l| l.starts_with(&format!("{name}:"))),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("check the source"), "{stdout}");
    assert!(snapshot(&dir).is_file());

    // Stats say plainly that those feeds brought nothing.
    let out = spoor(&cfg, &["trails", "stats"]);
    expect_code(&out, 0);
    let stats = text(&out.stdout);
    let row = stats
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} (", wanted[0])))
        .unwrap_or_else(|| panic!("no row for {}: {stats}", wanted[0]));
    assert!(row.contains("0 records, no trails"), "{row}");

    // A copy that exists but cannot be read is not "not downloaded": it gets its own line.
    let unreadable = dir.path().join(format!("state/feeds/{}.list", wanted[2]));
    std::fs::create_dir_all(&unreadable).unwrap();
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let expected = format!(
        "2 enabled feeds not downloaded yet: {}, {} (run `spoor feeds update`)",
        wanted[0], wanted[1]
    );
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{}: skipped: ", wanted[2]))),
        "{stdout}"
    );

    let dir = TempDir::new().unwrap();
    let cfg = config_with_feeds(&dir, &[], &wanted[..1]);
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let expected = format!(
        "1 enabled feed not downloaded yet: {} (run `spoor feeds update`)",
        wanted[0]
    );
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
    assert!(stdout.contains("the snapshot is empty"), "{stdout}");
}

#[test]
fn failed_write_leaves_no_temporary_file_and_names_the_cause_once() {
    let (dir, cfg) = compiled();
    // The output path is a folder: the rename over it fails after the image is written.
    let out_dir = dir.path().join("target");
    let blocked = out_dir.join("is-a-folder.snapshot");
    std::fs::create_dir_all(&blocked).unwrap();
    let out = spoor(
        &cfg,
        &["trails", "compile", "-o", blocked.to_str().unwrap()],
    );
    expect_code(&out, 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot write trail snapshot"), "{stderr}");
    assert!(stderr.contains(&blocked.display().to_string()), "{stderr}");
    assert_eq!(files_in(&out_dir), ["is-a-folder.snapshot"]);
    assert!(files_in(&blocked).is_empty());

    // Reading a folder as a snapshot: refused, the OS's reason given once.
    let out = spoor(
        &cfg,
        &[
            "trails",
            "lookup",
            "--snapshot",
            blocked.to_str().unwrap(),
            "7.7.7.7",
        ],
    );
    expect_code(&out, 3);
    let stderr = text(&out.stderr);
    let reason = stderr.rsplit(": ").next().unwrap_or_default().trim();
    assert!(!reason.is_empty(), "{stderr}");
    assert_eq!(stderr.matches(reason).count(), 1, "{stderr}");
}

// ---- lookup -------------------------------------------------------------------------

#[test]
fn lookup_reports_parent_matches_and_exit_codes() {
    let (_dir, cfg) = compiled();
    let out = spoor(&cfg, &["trails", "lookup", "x.y.evil-parent.com"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let line = stdout.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("x.y.evil-parent.com: evil-parent.com [domain]"),
        "{stdout}"
    );
    assert!(line.contains("parent"), "{stdout}");
    assert!(line.contains("malware (test)"), "{stdout}");

    let out = spoor(&cfg, &["trails", "lookup", "harmless.example"]);
    expect_code(&out, 1);
    assert_eq!(text(&out.stdout), "harmless.example: no match\n");

    // Any match among several indicators is a match.
    let out = spoor(&cfg, &["trails", "lookup", "harmless.example", "7.7.7.7"]);
    expect_code(&out, 0);
}

#[test]
fn lookup_json_has_the_documented_shape() {
    let (_dir, cfg) = compiled();
    let queries = [
        "x.y.evil-parent.com",
        "evil-test-domain.com",
        "6.6.6.6:8443",
        "6.6.6.6:80",
        "10.20.30.40",
        "harmless.example",
    ];
    let (out, rows) = lookup_json(&cfg, &queries);
    expect_code(&out, 0);
    assert_eq!(rows.len(), queries.len(), "{}", text(&out.stdout));
    for (row, q) in rows.iter().zip(queries) {
        assert_eq!(row["query"], q, "{row}");
        for hit in row["hits"].as_array().unwrap() {
            for key in ["trail", "kind", "info", "reference", "severity"] {
                assert!(hit[key].is_string(), "{key} in {hit}");
            }
            // `parent` is given for domain trails only.
            let domain = hit["kind"] == "domain";
            assert_eq!(hit.get("parent").is_some(), domain, "{hit}");
        }
    }
    let hits = |i: usize| rows[i]["hits"].as_array().unwrap().clone();

    let parent = &hits(0)[0];
    assert_eq!(parent["trail"], "evil-parent.com");
    assert_eq!(parent["kind"], "domain");
    assert_eq!(parent["parent"], true);
    assert_eq!(parent["info"], "malware (test)");
    assert_eq!(parent["reference"], "(static)");
    assert_eq!(parent["severity"], "high");

    let exact = &hits(1)[0];
    assert_eq!(exact["trail"], "evil-test-domain.com");
    assert_eq!(exact["parent"], false);

    let port = hits(2);
    assert_eq!(port.len(), 1, "{port:?}");
    assert_eq!(port[0]["trail"], "6.6.6.6:8443");
    assert_eq!(port[0]["kind"], "ip_port");
    assert!(
        hits(3).iter().all(|h| h["kind"] != "ip_port"),
        "{:?}",
        hits(3)
    );
    assert!(hits(3).is_empty(), "{:?}", hits(3));

    let cidr = hits(4);
    assert_eq!(cidr.len(), 1, "{cidr:?}");
    assert_eq!(cidr[0]["trail"], "10.20.0.0/16");
    assert_eq!(cidr[0]["kind"], "cidr");
    assert_eq!(cidr[0]["info"], "scanner net (test)");

    assert!(hits(5).is_empty());

    // Nothing matched: exit 1, still one object per query.
    let (out, rows) = lookup_json(&cfg, &["6.6.6.6:80", "harmless.example"]);
    expect_code(&out, 1);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["hits"] == Value::Array(Vec::new())));
}

#[test]
fn lookup_reads_indicators_from_stdin_among_arguments() {
    let (_dir, cfg) = compiled();
    let out = spoor_with_stdin(
        &cfg,
        &[
            "trails",
            "lookup",
            "--format",
            "json",
            "7.7.7.7",
            "-",
            "harmless.example",
        ],
        Some("66.66.66.66\n# a comment\n\n  sub.evil-parent.com  \r\nnothing.example\n"),
    );
    expect_code(&out, 0);
    let rows: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let queries: Vec<&str> = rows.iter().map(|r| r["query"].as_str().unwrap()).collect();
    assert_eq!(
        queries,
        [
            "7.7.7.7",
            "66.66.66.66",
            "sub.evil-parent.com",
            "nothing.example",
            "harmless.example"
        ]
    );
    let matched: Vec<bool> = rows
        .iter()
        .map(|r| !r["hits"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(matched, [true, true, true, false, false]);
    assert_eq!(rows[2]["hits"][0]["trail"], "sub.evil-parent.com");
    assert_eq!(rows[2]["hits"][0]["parent"], false);

    // Only unknown names on stdin: exit 1.
    let out = spoor_with_stdin(&cfg, &["trails", "lookup", "-"], Some("nothing.example\n"));
    expect_code(&out, 1);
}

#[test]
fn lookup_without_a_snapshot_says_to_compile() {
    let dir = TempDir::new().unwrap();
    let cfg = config(&dir, &[("corpus", Path::new(CORPUS), "maltrail-csv")]);
    for args in [
        &["trails", "lookup", "7.7.7.7"][..],
        &["trails", "stats"][..],
    ] {
        let out = spoor(&cfg, args);
        expect_code(&out, 3);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("spoor trails compile"), "{stderr}");
        assert!(
            stderr.contains(&snapshot(&dir).display().to_string()),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

// ---- stats --------------------------------------------------------------------------

#[test]
fn stats_counts_by_kind_and_source() {
    let (dir, cfg) = compiled();
    let out = spoor(&cfg, &["trails", "stats"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&snapshot(&dir).display().to_string()),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "trails: 22"), "{stdout}");
    let kind = |k: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no count for {k}: {stdout}"))
    };
    assert_eq!(kind("cidr"), 1);
    assert_eq!(kind("ip_port"), 2);
    let by_source = stdout.split("by source:").nth(1).unwrap_or_default();
    assert!(
        by_source.contains("corpus (maltrail-csv") && by_source.contains("20 records"),
        "{stdout}"
    );
    assert!(
        by_source.contains("local (maltrail-csv") && by_source.contains("2 malformed"),
        "{stdout}"
    );

    let out = spoor(&cfg, &["trails", "stats", "--format", "json"]);
    expect_code(&out, 0);
    let stats: Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert_eq!(stats["counts"]["cidr"], 1);
    let total: u64 = stats["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 22);
    let sources = stats["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corpus", "local"]);
    assert!(!stdout.contains("→ ;"), "{stdout}");
    assert_eq!(sources[0]["records"], 20);
    assert_eq!(sources[1]["malformed"], 2);
}

// ---- damaged snapshots --------------------------------------------------------------

#[test]
fn damaged_snapshot_is_refused() {
    let (dir, cfg) = compiled();
    let good = std::fs::read(snapshot(&dir)).unwrap();

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(snapshot(&dir), &flipped).unwrap();
    let out = spoor(&cfg, &["trails", "lookup", "7.7.7.7"]);
    assert!(!out.status.success());
    assert_ne!(
        out.status.code(),
        Some(1),
        "a damaged file is not `no match`"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("corrupt") || stderr.contains("checksum"),
        "{stderr}"
    );
    assert!(stderr.contains("spoor trails compile"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // A snapshot from another format version (bytes 8..12 of the header).
    let mut old = good.clone();
    old[8..12].copy_from_slice(&9999u32.to_le_bytes());
    std::fs::write(snapshot(&dir), &old).unwrap();
    let out = spoor(&cfg, &["trails", "lookup", "7.7.7.7"]);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("version"), "{stderr}");
    assert!(stderr.contains("spoor trails compile"), "{stderr}");

    // Truncated to half.
    std::fs::write(snapshot(&dir), &good[..good.len() / 2]).unwrap();
    let out = spoor(&cfg, &["trails", "stats"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("spoor trails compile"),
        "{}",
        text(&out.stderr)
    );

    // Not a snapshot at all.
    std::fs::write(snapshot(&dir), b"hello").unwrap();
    let out = spoor(&cfg, &["trails", "lookup", "7.7.7.7"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("spoor trails compile"),
        "{}",
        text(&out.stderr)
    );

    // A fresh compile repairs it.
    let out = spoor(&cfg, &["trails", "compile"]);
    expect_code(&out, 0);
    let out = spoor(&cfg, &["trails", "lookup", "7.7.7.7"]);
    expect_code(&out, 0);
}
