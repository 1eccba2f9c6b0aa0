//! `spoor config check` and `spoor config sample`, run as an admin would run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

fn spoor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoor"))
        .args(args)
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor")
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &Path) -> Output {
    spoor(&["config", "check", "-c", path.to_str().unwrap()])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn sample_passes_check() {
    let out = spoor(&["config", "sample"]);
    assert!(out.status.success());
    let sample = text(&out.stdout);
    assert!(sample.contains("[trails]") && sample.contains("[feeds]"));
    assert!(sample.contains("path = \"/opt/maltrail/trails/static\""));

    let dir = TempDir::new().unwrap();
    let path = write(&dir, "spoor.toml", &sample);
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains(": ok"), "{summary}");
    assert!(summary.contains("trails.snapshot"), "{summary}");
}

#[test]
fn broken_file_names_key_and_line() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "spoor.toml",
        "[spoor]\nlog_level = \"info\"\n\n[[trails.source]]\npath = \"lists/a.txt\"\nformat = \"ip\"\nmin_count = 5\nbogus = true\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let file = path.display();
    assert!(
        stderr.contains(&format!(
            "{file}:7: trails.source[0].min_count: only applies to format `ipsum`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:8: unknown key `bogus` in [trails.source]")),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn syntax_error_names_the_line() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "spoor.toml",
        "[feeds]\ninterval = \"6h\"\ntimeout = 60s\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:3:11: ", path.display())),
        "{stderr}"
    );
}

#[test]
fn missing_explicit_file_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nope.toml");
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("spoor: "), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn relative_source_paths_are_shown_resolved() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "spoor.toml",
        "[[trails.source]]\npath = \"lists/bad.txt\"\nformat = \"domain\"\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let resolved = dir.path().join("lists/bad.txt");
    assert!(
        summary.contains(&format!("bad.txt (domain): {}", resolved.display())),
        "{summary}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = spoor(&["config", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}
