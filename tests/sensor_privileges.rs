//! The sensor drops root once its capture is open, keeps detecting as `nobody`, reloads its
//! trails on SIGHUP, and refuses to start with a user that does not exist.
//!
//! Runs `spoor sensor -i lo` inside a network namespace the test creates and deletes, and
//! reads the sensor's credentials from `/proc/PID/status`. Needs root and iproute2 (CI has
//! both); elsewhere the test says why and passes. Traffic goes only to the namespace's
//! loopback; only the process the test started is signalled, by its PID.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const FIRST: &str = "first-privdrop-test.example";
const ADDED: &str = "added-privdrop-test.example";
/// Bounds on each wait, generous for a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(15);

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of our own, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Netns {
        let name = format!(
            "spoor-priv-{}-{}",
            std::process::id(),
            NAMESPACES.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(&mut ns.exec(&["ip", "link", "set", "lo", "up"]));
        ns
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// One DNS query for `name` to 127.0.0.1:53 inside the namespace (bash's /dev/udp).
    fn query(&self, name: &str) {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).unwrap());
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let escaped: String = q.iter().map(|b| format!("\\x{b:02x}")).collect();
        run_ok(&mut self.exec(&[
            "bash",
            "-c",
            "printf \"$1\" > /dev/udp/127.0.0.1/53",
            "send",
            &escaped,
        ]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The sensor the test started; killed by its PID on drop if still running.
struct Sensor {
    child: Child,
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn unsupported() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (namespaces and switching users need it)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) is not usable".into()),
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(rx: &Receiver<String>, seen: &mut Vec<String>, want: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(want);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// Write the trail list and compile it (as root, the way `spoor trails compile` runs from
/// cron or the rc script); the files stay readable for the unprivileged sensor.
fn compile(cfg: &Path, trails: &Path, names: &[&str]) {
    let text: String = names
        .iter()
        .map(|n| format!("{n},malware (privdrop test),(local)\n"))
        .collect();
    std::fs::write(trails, text).unwrap();
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_spoor"))
            .arg("-c")
            .arg(cfg)
            .args(["trails", "compile"])
            .env_remove("SPOOR_LOG"),
    );
}

fn config(dir: &TempDir, user: &str) -> (PathBuf, PathBuf) {
    // The unprivileged sensor must reach the snapshot: the temp dir is 0700 by default.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    let trails = dir.path().join("privdrop.csv");
    let toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n\
         [feeds]\ndisable = [{}]\n\n\
         [[trails.source]]\nname = \"privdrop\"\npath = {:?}\nformat = \"maltrail-csv\"\n\n\
         [sensor]\nname = \"privdrop-test\"\ncondense_window = \"1s\"\n\
         reload_interval = \"1h\"\nuser = {user:?}\n",
        off.join(", "),
        trails.display().to_string(),
    );
    let cfg = dir.path().join("spoor.toml");
    std::fs::write(&cfg, toml).unwrap();
    (cfg, trails)
}

fn start(ns: &Netns, cfg: &Path) -> Sensor {
    let child = ns
        .exec(&[
            env!("CARGO_BIN_EXE_spoor"),
            "-c",
            cfg.to_str().unwrap(),
            "sensor",
            "-i",
            "lo",
            "--console",
            "--format",
            "json",
            "--no-log",
        ])
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sensor");
    Sensor { child }
}

/// `field:` of /proc/PID/status, split on whitespace.
fn status_field(pid: u32, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn id_of(flag: &str) -> String {
    let out = run_ok(Command::new("id").args([flag, "nobody"]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_sensor_drops_to_nobody_keeps_capturing_and_reloads_on_sighup() {
    if let Some(why) = unsupported() {
        eprintln!("skipping the privilege test: {why}");
        return;
    }
    let dir = TempDir::new().unwrap();
    let (cfg, trails) = config(&dir, "nobody");
    compile(&cfg, &trails, &[FIRST]);
    let ns = Netns::create();
    let mut sensor = start(&ns, &cfg);
    let pid = sensor.child.id();
    let stdout = lines_of(sensor.child.stdout.take().unwrap());
    let stderr = lines_of(sensor.child.stderr.take().unwrap());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(
        wait_for_line(&stderr, &mut err, "now running unprivileged"),
        "no privilege drop:\n{}",
        err.join("\n")
    );

    let (uid, gid) = (id_of("-u"), id_of("-g"));
    assert_ne!(uid, "0");
    assert_eq!(status_field(pid, "Uid"), [uid.as_str(); 4]);
    assert_eq!(status_field(pid, "Gid"), [gid.as_str(); 4]);
    assert_eq!(status_field(pid, "Groups"), [gid.as_str()]);
    assert_eq!(status_field(pid, "CapEff"), ["0000000000000000"]);
    assert_eq!(status_field(pid, "CapPrm"), ["0000000000000000"]);

    // The capture opened as root still delivers packets.
    ns.query(FIRST);
    assert!(
        wait_for_line(&stdout, &mut out, FIRST),
        "no event after the drop:\nstdout:\n{}\nstderr:\n{}",
        out.join("\n"),
        err.join("\n")
    );

    // A new snapshot and SIGHUP: the new trail detects without a restart.
    compile(&cfg, &trails, &[FIRST, ADDED]);
    // SAFETY: signalling the process this test started, by its PID.
    assert_eq!(
        unsafe { libc::kill(libc::pid_t::try_from(pid).unwrap(), libc::SIGHUP) },
        0
    );
    assert!(
        wait_for_line(&stderr, &mut err, "SIGHUP: newer trail snapshot loaded"),
        "no reload on SIGHUP:\n{}",
        err.join("\n")
    );
    ns.query(ADDED);
    assert!(
        wait_for_line(&stdout, &mut out, ADDED),
        "the reloaded trail did not detect:\nstdout:\n{}\nstderr:\n{}",
        out.join("\n"),
        err.join("\n")
    );

    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::kill(libc::pid_t::try_from(pid).unwrap(), libc::SIGTERM) },
        0
    );
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = sensor.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the sensor did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", err.join("\n"));
}

#[test]
fn a_user_that_does_not_exist_stops_the_sensor_with_the_fix() {
    if let Some(why) = unsupported() {
        eprintln!("skipping the privilege test: {why}");
        return;
    }
    let dir = TempDir::new().unwrap();
    let (cfg, trails) = config(&dir, "no-such-user-spoor-test");
    compile(&cfg, &trails, &[FIRST]);
    let ns = Netns::create();
    let out = ns
        .exec(&[
            env!("CARGO_BIN_EXE_spoor"),
            "-c",
            cfg.to_str().unwrap(),
            "sensor",
            "-i",
            "lo",
            "--no-log",
        ])
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("user `no-such-user-spoor-test` does not exist"),
        "{stderr}"
    );
}
