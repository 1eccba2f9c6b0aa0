//! `spoor sensor -i lo` capturing live, inside a network namespace the test creates and
//! deletes: DNS queries for a listed name sent to the namespace's own 127.0.0.1 must
//! become events on the console, counters must show on `/metrics`, and SIGTERM must end
//! the sensor cleanly after it flushes what it held.
//!
//! Needs root and iproute2 (CI has both); elsewhere the test says why and passes. No
//! traffic leaves the namespace: everything is sent to its loopback, and the host's
//! interfaces are never touched. Only processes the test started are signalled, by PID.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The listed name queried in the first phase, and the one held at shutdown.
const LISTED: &str = "evil-live-test.example";
const LISTED_AT_STOP: &str = "stop-live-test.example";

/// Port of `/metrics` on the namespace's loopback (the namespace is ours: nothing else
/// listens there).
const METRICS_PORT: u16 = 9310;

/// Bounds on each wait, generous for a loaded 2-core CI machine.
const STARTUP_WAIT: Duration = Duration::from_secs(15);
const EVENT_WAIT: Duration = Duration::from_secs(10);
const METRICS_WAIT: Duration = Duration::from_secs(10);
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Numbers the namespaces of this process.
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of our own, deleted on drop (also when the test fails).
#[derive(Debug)]
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Netns {
        let name = format!(
            "spoor-test-{}-{}",
            std::process::id(),
            NAMESPACES.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(&mut ns.exec(&["ip", "link", "set", "lo", "up"]));
        ns
    }

    /// `ip netns exec NAME ARGS...`.
    fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Send `payload` as one UDP datagram to 127.0.0.1:53 inside the namespace, through
    /// bash's `/dev/udp` (no server needs to listen).
    fn send_udp_dns(&self, payload: &[u8]) {
        let escaped: String = payload.iter().map(|b| format!("\\x{b:02x}")).collect();
        run_ok(&mut self.exec(&[
            "bash",
            "-c",
            "printf \"$1\" > /dev/udp/127.0.0.1/53",
            "send",
            &escaped,
        ]));
    }

    /// `GET /metrics` from inside the namespace, through bash's `/dev/tcp`.
    fn fetch_metrics(&self) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{METRICS_PORT}; \
             printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        );
        let out = run_ok(&mut self.exec(&["timeout", "10", "bash", "-c", &script]));
        String::from_utf8_lossy(&out.stdout).into_owned()
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

/// The sensor the test started; killed by its PID on drop if it is still running (a
/// failed assertion must not leave it behind).
#[derive(Debug)]
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

/// Run `cmd` to the end; panic with its output unless it succeeded.
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

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need it)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("`ip -V` failed: {}", o.status)),
        Err(e) => Some(format!("`ip` (iproute2) is not usable: {e}")),
    }
}

/// A DNS query (RFC 1035 4.1): header with one question, recursion desired, then `name`
/// as labels, type A, class IN.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Lines of `stream`, as they come, on a channel.
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

/// Receive lines into `seen` until one satisfies `want` or `bound` passes.
fn wait_for_line(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    bound: Duration,
    want: impl Fn(&str) -> bool,
) -> bool {
    let deadline = Instant::now() + bound;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = want(&line);
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

/// The value of an unlabelled sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// The event for `trail` among console JSON lines.
fn event_for(lines: &[String], trail: &str) -> Option<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["trail"] == trail)
}

/// A config and a compiled snapshot listing the two test names; `workers` packet
/// workers (more than one: one capture handle each, joined to a PACKET_FANOUT group).
fn compiled(dir: &TempDir, workers: usize) -> PathBuf {
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    let trails = dir.path().join("live.csv");
    std::fs::write(
        &trails,
        format!(
            "{LISTED},malware (live test),(local)\n{LISTED_AT_STOP},malware (live test),(local)\n"
        ),
    )
    .unwrap();
    let toml = format!(
        "[spoor]\nstate_dir = \"state\"\n\n\
         [feeds]\ndisable = [{}]\n\n\
         [[trails.source]]\nname = \"live\"\npath = {:?}\nformat = \"maltrail-csv\"\n\n\
         [sensor]\nname = \"live-test\"\ncondense_window = \"1s\"\nworkers = {workers}\n",
        off.join(", "),
        trails.display().to_string(),
    );
    let cfg = dir.path().join("spoor.toml");
    std::fs::write(&cfg, toml).unwrap();
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_spoor"))
            .arg("-c")
            .arg(&cfg)
            .args(["trails", "compile"])
            .env_remove("SPOOR_LOG"),
    );
    cfg
}

fn start_sensor(ns: &Netns, cfg: &Path) -> Sensor {
    let metrics = format!("127.0.0.1:{METRICS_PORT}");
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
            "--metrics",
            &metrics,
        ])
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sensor");
    Sensor { child }
}

#[test]
fn live_capture_on_a_namespace_loopback() {
    live_capture(1);
}

/// The same with two workers: on Linux two capture handles share the interface through
/// PACKET_FANOUT, their events meet in one condenser.
#[test]
fn live_capture_with_two_fanout_workers() {
    live_capture(2);
}

fn live_capture(workers: usize) {
    if let Some(why) = unsupported() {
        eprintln!("skipping the live capture test: {why}");
        return;
    }
    let dir = TempDir::new().unwrap();
    let cfg = compiled(&dir, workers);
    // Declared before the sensor so it is dropped after it: the sensor dies first.
    let ns = Netns::create();
    let mut sensor = start_sensor(&ns, &cfg);
    // `ip netns exec` execs the sensor, so this PID is the sensor's own.
    let pid = libc::pid_t::try_from(sensor.child.id()).unwrap();
    let stdout = lines_of(sensor.child.stdout.take().unwrap());
    let stderr = lines_of(sensor.child.stderr.take().unwrap());
    let mut out_lines = Vec::new();
    let mut err_lines = Vec::new();

    let capturing = wait_for_line(&stderr, &mut err_lines, STARTUP_WAIT, |l| {
        l.contains("capturing")
    });
    assert!(
        capturing,
        "the sensor never said it is capturing:\n{}",
        err_lines.join("\n")
    );

    for id in 1..=3 {
        ns.send_udp_dns(&dns_query(id, LISTED));
    }
    let found = wait_for_line(&stdout, &mut out_lines, EVENT_WAIT, |l| l.contains(LISTED));
    assert!(
        found,
        "no event for {LISTED}\nstdout:\n{}\nstderr:\n{}",
        out_lines.join("\n"),
        err_lines.join("\n")
    );
    let event = event_for(&out_lines, LISTED).expect("the event line is JSON");
    assert_eq!(event["kind"], "dns", "{event}");
    assert_eq!(event["sensor"], "live-test", "{event}");
    assert_eq!(event["src"], "127.0.0.1", "{event}");
    assert_eq!(event["dst"], "127.0.0.1", "{event}");
    assert_eq!(event["dst_port"], 53, "{event}");
    assert_eq!(event["proto"], "UDP", "{event}");
    assert_eq!(event["info"], "malware (live test)", "{event}");
    assert_eq!(event["reference"], "(local)", "{event}");
    assert_eq!(event["context"]["dns"]["qname"], LISTED, "{event}");
    let count = event["count"].as_u64().unwrap();
    assert!((1..=3).contains(&count), "{event}");

    // Counters are published about once a second: poll until the packets show.
    let deadline = Instant::now() + METRICS_WAIT;
    let metrics = loop {
        let text = ns.fetch_metrics();
        if sample(&text, "spoor_sensor_packets_total").unwrap_or(0.0) > 0.0
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    for name in [
        "spoor_sensor_packets_total",
        "spoor_sensor_bytes_total",
        "spoor_sensor_events_total",
    ] {
        let value = sample(&metrics, name).unwrap_or(0.0);
        assert!(value > 0.0, "{name} is {value}:\n{metrics}");
    }
    assert_eq!(
        sample(&metrics, "spoor_sensor_trails"),
        Some(2.0),
        "{metrics}"
    );

    // A query held by the condense window when SIGTERM arrives is flushed on the way out.
    // (Should the window pass first, it is released anyway; the event must be there.)
    ns.send_udp_dns(&dns_query(4, LISTED_AT_STOP));
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling the process this test started, by its PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + EXIT_WAIT;
    let status = loop {
        if let Some(status) = sensor.child.try_wait().expect("wait for the sensor") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(status) = status else {
        err_lines.extend(stderr.try_iter());
        panic!(
            "the sensor did not stop within {EXIT_WAIT:?} of SIGTERM\nstderr:\n{}",
            err_lines.join("\n")
        );
    };
    // The pipes closed when the sensor ended: collect the rest of both streams.
    out_lines.extend(stdout.iter());
    err_lines.extend(stderr.iter());
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out_lines.join("\n"),
        err_lines.join("\n")
    );
    assert!(
        event_for(&out_lines, LISTED_AT_STOP).is_some(),
        "the held event was not flushed at shutdown:\n{}",
        out_lines.join("\n")
    );
    // Each capture thread logs its final counters when it ends.
    let finals = err_lines
        .iter()
        .filter(|l| l.contains("interface=lo") && l.contains("packets "))
        .count();
    assert_eq!(
        finals,
        workers,
        "one final stats line per worker:\n{}",
        err_lines.join("\n")
    );
}
