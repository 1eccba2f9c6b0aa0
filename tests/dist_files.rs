//! The files shipped for FreeBSD and Linux services: the FreeBSD starting config passes
//! `spoor config check`, and the rc.d scripts parse as POSIX sh (CI also runs shellcheck).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_freebsd_sample_config_passes_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_spoor"))
        .args(["config", "check", "-c"])
        .arg(repo("freebsd/spoor.toml.sample"))
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("state dir: /var/db/spoor"), "{summary}");
}

#[test]
fn rc_scripts_parse_and_offer_the_standard_knobs() {
    for name in ["spoor_sensor", "spoor_server", "spoor_agent"] {
        let path = repo(&format!("freebsd/rc.d/{name}"));
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("# PROVIDE: {name}\n")), "{name}");
        for knob in ["enable", "config", "flags", "user"] {
            assert!(
                text.contains(&format!(": \"${{{name}_{knob}:=")),
                "{name} lacks {name}_{knob}"
            );
        }
        assert!(text.contains("command=\"/usr/sbin/daemon\""), "{name}");
        assert!(text.contains("-r "), "{name}: no restart on crash");
    }
    let sensor = std::fs::read_to_string(repo("freebsd/rc.d/spoor_sensor")).unwrap();
    assert!(sensor.contains("extra_commands=\"reload\"") && sensor.contains("kill -HUP"));
}
