//! `spoor doctor`: each finding is produced by a situation the test builds.
//!
//! - stale trails: a snapshot whose compile time is rewritten to three days ago;
//! - unreachable server: the shipper pointed at a closed port on 127.0.0.1;
//! - no capture permission: the doctor run as `nobody` (setpriv, no capabilities) on `lo`;
//! - interface down: one end of a veth pair, left down, in a network namespace of the test's own;
//! - unreachable backend: nftables in a fresh namespace without the table and with
//!   `create = false`, and the OPNsense API at a closed port;
//! - healthy: in a namespace, an interface up, a fresh snapshot, a real `spoor server`
//!   (self-signed TLS, pinned) with the sensor's token, and the nftables table and sets
//!   as `spoor agent` makes them, holding one block it applied.
//!
//! Tests needing root, iproute2, setpriv or nft say why and pass where those are missing.
//! Traffic stays on loopback interfaces; namespaces are deleted on drop, and only the
//! processes the tests started are killed, by their PID.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

const SENSOR: &str = "doctor-test";
const TOKEN: &str = "doctor-test-token";
/// Bound on waiting for the server to start, generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------
// helpers

fn root_and(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    for tool in tools {
        let ok = Command::new(tool)
            .arg(if *tool == "setpriv" {
                "--version"
            } else {
                "-V"
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("`{tool}` is not usable"));
        }
    }
    None
}

macro_rules! require {
    ($($tool:expr),*) => {
        if let Some(why) = root_and(&[$($tool),*]) {
            eprintln!("skipped: {why}");
            return;
        }
    };
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

/// A network namespace of the test's own, with its loopback up; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Netns {
        let name = format!(
            "spoor-doc-{}-{}",
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

/// A process the test started; killed by its PID on drop.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A scratch folder everyone may read (the doctor runs as `nobody` in one test), holding a
/// trail list, a token file and, once compiled, the snapshot.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = TempDir::new().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = Setup { dir };
        s.write(
            "bad.list",
            "bad-doctor-test.example\nworse-doctor-test.example\n",
        );
        s.write("sensor.token", &format!("{TOKEN}\n"));
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// A config: state here, catalog feeds off, the trail list as the one source, then
    /// `extra` (more tables).
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let off: Vec<String> = spoor_feeds::catalog::builtin()
            .iter()
            .filter(|f| f.default_enabled)
            .map(|f| format!("{:?}", f.name))
            .collect();
        let text = format!(
            "[spoor]\nstate_dir = \"state\"\n\n[feeds]\ndisable = [{}]\n\n\
             [[trails.source]]\nname = \"bad\"\npath = \"bad.list\"\nformat = \"domain\"\n\n\
             [sensor]\nname = \"{SENSOR}\"\n{extra}",
            off.join(", ")
        );
        self.write(name, &text)
    }

    fn snapshot(&self) -> PathBuf {
        self.path("state/trails.snapshot")
    }

    fn compile(&self, cfg: &Path) {
        run_ok(
            Command::new(env!("CARGO_BIN_EXE_spoor"))
                .arg("-c")
                .arg(cfg)
                .args(["trails", "compile"])
                .env_remove("SPOOR_LOG"),
        );
        std::fs::set_permissions(self.path("state"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::set_permissions(self.snapshot(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// `spoor -c CFG doctor --format json`, optionally under a wrapper (`ip netns exec NS`,
/// `setpriv ...`): the exit code and the parsed report.
fn doctor(wrapper: &[&str], cfg: &Path) -> (Option<i32>, Value) {
    let bin = env!("CARGO_BIN_EXE_spoor");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
        .arg("-c")
        .arg(cfg)
        .args(["doctor", "--format", "json"])
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run spoor doctor");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// The one finding of `area`/`subject`/`check`.
#[track_caller]
fn finding<'a>(report: &'a Value, area: &str, subject: &str, check: &str) -> &'a Value {
    let all = report["findings"].as_array().unwrap();
    let hits: Vec<&Value> = all
        .iter()
        .filter(|f| {
            f["area"] == area
                && f["check"] == check
                && f["subject"].as_str().unwrap().contains(subject)
        })
        .collect();
    assert_eq!(hits.len(), 1, "{area} {subject} {check} in {report:#}");
    hits[0]
}

fn level(f: &Value) -> &str {
    f["level"].as_str().unwrap()
}

fn fix(f: &Value) -> &str {
    f["fix"].as_str().unwrap_or("")
}

/// A local port nobody listens on: bound, then closed.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Rewrite the snapshot's compile time (header and metadata) and its checksum: a snapshot
/// compiled `secs_ago` seconds ago, valid in every other way.
fn age_snapshot(path: &Path, secs_ago: u64) {
    let mut image = std::fs::read(path).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let then = now - secs_ago;
    let created = u64::from_le_bytes(image[24..32].try_into().unwrap());
    // Same number of digits, so the metadata keeps its length and every offset holds.
    assert_eq!(created.to_string().len(), then.to_string().len());
    image[24..32].copy_from_slice(&then.to_le_bytes());
    let from = format!("\"created\":{created}");
    let to = format!("\"created\":{then}");
    let at = image
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("the metadata's created field");
    image[at..at + to.len()].copy_from_slice(to.as_bytes());
    let sum = spoor_feeds::snapshot::checksum(&image);
    image[16..24].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(path, image).unwrap();
}

// ---------------------------------------------------------------------------------------
// situations

#[test]
fn stale_trails_warn_with_the_refresh_commands() {
    let s = Setup::new();
    let cfg = s.config("spoor.toml", "");
    s.compile(&cfg);

    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(0), "{report:#}");
    let loaded = finding(&report, "trails", "trails.snapshot", "snapshot loads");
    assert_eq!(level(loaded), "ok");
    assert_eq!(loaded["detail"], "2 trails");
    assert_eq!(
        level(finding(
            &report,
            "trails",
            "trails.snapshot",
            "snapshot age"
        )),
        "ok"
    );

    // Three days old with the default interval of 6h.
    age_snapshot(&s.snapshot(), 3 * 86_400);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(0), "a stale snapshot is a warning: {report:#}");
    let age = finding(&report, "trails", "trails.snapshot", "snapshot age");
    assert_eq!(level(age), "warn", "{age:#}");
    assert!(
        age["detail"].as_str().unwrap().contains("3d 0h ago"),
        "{age:#}"
    );
    assert!(fix(age).contains("feeds update") && fix(age).contains("trails compile"));

    // No snapshot at all: nothing is detected by trails, a failure.
    std::fs::remove_file(s.snapshot()).unwrap();
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1));
    let missing = finding(&report, "trails", "trails.snapshot", "snapshot present");
    assert_eq!(level(missing), "fail");
}

#[test]
fn an_unreachable_server_fails_with_how_to_start_it() {
    let s = Setup::new();
    let port = closed_port();
    let cfg = s.config(
        "spoor.toml",
        &format!(
            "\n[[sensor.output]]\ntype = \"server\"\nurl = \"http://127.0.0.1:{port}\"\ntoken_file = \"sensor.token\"\n"
        ),
    );
    s.compile(&cfg);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "server", &port.to_string(), "server reachable");
    assert_eq!(level(f), "fail");
    assert!(
        f["detail"].as_str().unwrap().contains("/api/v1/events"),
        "{f:#}"
    );
    assert!(fix(f).contains("start the server"), "{f:#}");
    // The token is never printed.
    assert!(!report.to_string().contains(TOKEN));
}

#[test]
fn no_capture_permission_names_the_privileges_the_sensor_needs() {
    require!("setpriv");
    let s = Setup::new();
    let cfg = s.config("spoor.toml", "interfaces = [\"lo\"]\n");
    s.compile(&cfg);
    // As root the same interface opens: the failure below is about privileges only.
    let (_, report) = doctor(&[], &cfg);
    assert_eq!(
        level(finding(&report, "capture", "lo", "capture permission")),
        "ok",
        "{report:#}"
    );
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ];
    let (code, report) = doctor(&nobody, &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "capture", "lo", "capture permission");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("permi"),
        "{f:#}"
    );
    assert!(fix(f).contains("CAP_NET_RAW"), "{f:#}");
    // The interface itself is fine.
    assert_eq!(
        level(finding(&report, "capture", "lo", "interface is up")),
        "ok"
    );
}

#[test]
fn a_down_interface_fails_with_the_command_that_brings_it_up() {
    require!("ip");
    let ns = Netns::create();
    run_ok(&mut ns.exec(&[
        "ip", "link", "add", "dtest0", "type", "veth", "peer", "name", "dtest1",
    ]));
    let s = Setup::new();
    let cfg = s.config("spoor.toml", "interfaces = [\"dtest0\", \"nosuch0\"]\n");
    s.compile(&cfg);
    let wrapper = ["ip", "netns", "exec", ns.name.as_str()];
    let (code, report) = doctor(&wrapper, &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let down = finding(&report, "capture", "dtest0", "interface is up");
    assert_eq!(level(down), "fail", "{down:#}");
    assert_eq!(fix(down), "ip link set dev dtest0 up");
    // libpcap refuses a down interface; that is the same failure, not a second one.
    let open = finding(&report, "capture", "dtest0", "capture permission");
    assert_ne!(level(open), "fail", "{open:#}");
    let missing = finding(&report, "capture", "nosuch0", "interface exists");
    assert_eq!(level(missing), "fail");
    assert!(
        missing["detail"].as_str().unwrap().contains("dtest0"),
        "{missing:#}"
    );

    // Up, but its peer down: no carrier, a warning.
    run_ok(&mut ns.exec(&["ip", "link", "set", "dtest0", "up"]));
    let (_, report) = doctor(&wrapper, &cfg);
    let carrier = finding(&report, "capture", "dtest0", "link is running");
    assert_eq!(level(carrier), "warn", "{carrier:#}");

    // Both ends up: every capture check passes.
    run_ok(&mut ns.exec(&["ip", "link", "set", "dtest1", "up"]));
    let (_, report) = doctor(&wrapper, &cfg);
    for check in [
        "interface is up",
        "link is running",
        "promiscuous mode",
        "capture permission",
        "link type decoded",
    ] {
        let f = finding(&report, "capture", "dtest0", check);
        assert_eq!(level(f), "ok", "{f:#}");
    }
    let lt = finding(&report, "capture", "dtest0", "link type decoded");
    assert!(
        lt["detail"].as_str().unwrap().contains("link type 1 "),
        "{lt:#}"
    );
}

#[test]
fn an_nftables_table_that_is_missing_fails_unless_the_agent_creates_it() {
    require!("ip", "nft");
    let ns = Netns::create();
    let s = Setup::new();
    let respond = |create: bool| {
        format!(
            "\n[respond]\nmode = \"approve\"\nbackend = \"nftables\"\n\n[respond.nftables]\ntable = \"spoor_doctor\"\ncreate = {create}\n"
        )
    };
    let cfg = s.config("spoor.toml", &respond(false));
    s.compile(&cfg);
    let wrapper = ["ip", "netns", "exec", ns.name.as_str()];
    let (code, report) = doctor(&wrapper, &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", "nftables", "backend reachable");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("create = true"), "{f:#}");
    assert!(fix(f).contains("nft list table inet spoor_doctor"), "{f:#}");

    // With create = true it is the agent's job, and the doctor leaves the ruleset alone.
    let cfg = s.config("create.toml", &respond(true));
    let (code, report) = doctor(&wrapper, &cfg);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        level(finding(&report, "backend", "nftables", "backend reachable")),
        "ok"
    );
    let ruleset = run_ok(&mut ns.exec(&["nft", "list", "ruleset"]));
    assert!(
        !String::from_utf8_lossy(&ruleset.stdout).contains("spoor_doctor"),
        "the doctor changed the ruleset"
    );
}

#[test]
fn an_unreachable_opnsense_api_fails_and_keeps_the_secret() {
    let s = Setup::new();
    let port = closed_port();
    s.write("opnsense.key", "doctor-key\n");
    s.write("opnsense.secret", "doctor-secret-never-printed\n");
    let cfg = s.config(
        "spoor.toml",
        &format!(
            "\n[respond]\nmode = \"auto\"\nbackend = \"opnsense\"\n\n[respond.opnsense]\n\
             url = \"https://127.0.0.1:{port}\"\nkey_file = \"opnsense.key\"\n\
             secret_file = \"opnsense.secret\"\nretries = 0\n"
        ),
    );
    s.compile(&cfg);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", "opnsense", "backend reachable");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(
        f["detail"].as_str().unwrap().contains(&port.to_string()),
        "{f:#}"
    );
    assert!(fix(f).contains("[respond.opnsense] url"), "{f:#}");
    assert!(!report.to_string().contains("doctor-secret-never-printed"));
}

#[test]
fn a_healthy_setup_is_all_ok() {
    require!("ip", "nft");
    let ns = Netns::create();
    run_ok(&mut ns.exec(&[
        "ip", "link", "add", "dtest0", "type", "veth", "peer", "name", "dtest1",
    ]));
    run_ok(&mut ns.exec(&["ip", "link", "set", "dtest0", "up"]));
    run_ok(&mut ns.exec(&["ip", "link", "set", "dtest1", "up"]));
    let s = Setup::new();
    // The server, inside the namespace, with a self-signed certificate and this sensor's
    // token.
    let server_cfg = s.config(
        "server.toml",
        &format!(
            "\n[server]\nlisten = \"127.0.0.1:8338\"\n\n[server.tls]\nmode = \"self-signed\"\n\n\
             [[server.sensor]]\nname = \"{SENSOR}\"\ntoken_file = \"sensor.token\"\n"
        ),
    );
    let mut child = ns
        .exec(&[env!("CARGO_BIN_EXE_spoor"), "-c"])
        .arg(&server_cfg)
        .arg("server")
        .env_remove("SPOOR_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Started(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut pin = None;
    while pin.is_none() {
        let line = rx
            .recv_timeout(WAIT)
            .expect("the server announces its certificate");
        pin = line
            .split_once("(pin it in the sensors): ")
            .map(|(_, fp)| fp.trim().to_string());
    }
    let pin = pin.unwrap();

    let cfg = s.config(
        "spoor.toml",
        &format!(
            "interfaces = [\"dtest0\"]\n\n[[sensor.output]]\ntype = \"server\"\n\
             url = \"https://127.0.0.1:8338\"\ntoken_file = \"sensor.token\"\npin_sha256 = \"{pin}\"\n\n\
             [respond]\nmode = \"approve\"\nbackend = \"nftables\"\nmax_active = 1000\n\n\
             [respond.nftables]\ntable = \"spoor_doctor\"\ncreate = false\n"
        ),
    );
    s.compile(&cfg);
    let wrapper = ["ip", "netns", "exec", ns.name.as_str()];
    // The table and its sets as the agent makes them (create = true), holding one block
    // put there by the agent: whatever the set layout, the doctor lists what the agent
    // built.
    let agent_cfg = s.path("agent.toml");
    std::fs::write(
        &agent_cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("create = false", "create = true"),
    )
    .unwrap();
    let spoor_in_ns = |args: &[&str]| {
        let mut c = ns.exec(&[env!("CARGO_BIN_EXE_spoor"), "-c"]);
        c.arg(&agent_cfg).args(args).env_remove("SPOOR_LOG");
        run_ok(&mut c);
    };
    spoor_in_ns(&[
        "block",
        "add",
        "198.51.100.7",
        "--ttl",
        "1h",
        "--reason",
        "doctor test",
    ]);
    spoor_in_ns(&["agent", "--once"]);
    let (code, report) = doctor(&wrapper, &cfg);
    let bad: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] != "ok")
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(code, Some(0));
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{report:#}");
    let token = finding(&report, "server", "127.0.0.1:8338", "sensor token accepted");
    assert!(
        token["detail"].as_str().unwrap().contains(SENSOR),
        "{token:#}"
    );
    assert!(
        finding(&report, "server", "127.0.0.1:8338", "server reachable")["detail"]
            .as_str()
            .unwrap()
            .contains("certificate trusted")
    );
    finding(
        &report,
        "clock",
        "127.0.0.1:8338",
        "clock agrees with the server",
    );
    let room = finding(&report, "backend", "spoor_doctor", "room for new blocks");
    assert!(
        room["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 entries; limit 1000"),
        "{room:#}"
    );

    // A wrong pin: the certificate is not trusted, and the fix names pin_sha256.
    let wrong = s.config(
        "wrong-pin.toml",
        &format!(
            "[[sensor.output]]\ntype = \"server\"\nurl = \"https://127.0.0.1:8338\"\n\
             token_file = \"sensor.token\"\npin_sha256 = \"{}\"\n",
            ["00"; 32].join(":")
        ),
    );
    let (code, report) = doctor(&wrapper, &wrong);
    assert_eq!(code, Some(1));
    let f = finding(&report, "server", "127.0.0.1:8338", "server reachable");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("pin_sha256"), "{f:#}");

    // The right token under another sensor name: the server refuses the batch (403).
    let renamed = s.path("renamed.toml");
    std::fs::write(
        &renamed,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(&format!("name = \"{SENSOR}\""), "name = \"renamed-sensor\""),
    )
    .unwrap();
    let (code, report) = doctor(&wrapper, &renamed);
    assert_eq!(code, Some(1));
    let f = finding(&report, "server", "127.0.0.1:8338", "sensor token accepted");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(f["detail"].as_str().unwrap().contains("403"), "{f:#}");
    assert!(fix(f).contains("[sensor] name"), "{f:#}");

    // A token the server does not know.
    s.write("other.token", "not-the-sensors-token\n");
    let unknown = s.config(
        "unknown-token.toml",
        &format!(
            "[[sensor.output]]\ntype = \"server\"\nurl = \"https://127.0.0.1:8338\"\n\
             token_file = \"other.token\"\npin_sha256 = \"{pin}\"\n"
        ),
    );
    let (code, report) = doctor(&wrapper, &unknown);
    assert_eq!(code, Some(1));
    let f = finding(&report, "server", "127.0.0.1:8338", "sensor token accepted");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("[[server.sensor]]"), "{f:#}");
}

// ---------------------------------------------------------------------------------------
// OPNsense: an in-test API over HTTPS on 127.0.0.1

const OPN_KEY: &str = "doctor-opnsense-key";
const OPN_SECRET: &str = "doctor-opnsense-secret-never-printed";
const ALIAS: &str = "spoor_block";

/// `user:password` for HTTP basic auth (RFC 4648 base64, with padding).
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A fake OPNsense answering `alias/getAliasUUID` and `alias_util/list` for [`ALIAS`];
/// it records every request line.
struct FakeOpnsense {
    url: String,
    ca_pem: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeOpnsense {
    fn start(alias_exists: bool) -> FakeOpnsense {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![ck.cert.der().clone()], key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tls, seen) = (Arc::clone(&tls), Arc::clone(&seen));
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut s = rustls::StreamOwned::new(conn, stream);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or("").to_string();
                    let authorized = head.lines().any(|h| {
                        h.to_ascii_lowercase().starts_with("authorization:")
                            && h["authorization:".len()..].trim() == basic(OPN_KEY, OPN_SECRET)
                    });
                    seen.lock().unwrap().push(line.clone());
                    let path = line.split(' ').nth(1).unwrap_or("");
                    let (status, body) = if !authorized {
                        (
                            "401 Unauthorized",
                            r#"{"status":401,"message":"Authentication Failed"}"#.to_string(),
                        )
                    } else if path == format!("/api/firewall/alias/getAliasUUID/{ALIAS}") {
                        let body = if alias_exists {
                            r#"{"uuid":"6a2c5a3e-0000-4000-8000-00000000d0c7"}"#
                        } else {
                            "[]"
                        };
                        ("200 OK", body.to_string())
                    } else if path == format!("/api/firewall/alias_util/list/{ALIAS}") {
                        let rows = if alias_exists {
                            r#"[{"ip":"198.51.100.7"},{"ip":"203.0.113.0/24"}]"#
                        } else {
                            "[]"
                        };
                        (
                            "200 OK",
                            format!(r#"{{"total":2,"rowCount":2,"current":1,"rows":{rows}}}"#),
                        )
                    } else {
                        ("404 Not Found", "{}".to_string())
                    };
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.flush();
                    s.conn.send_close_notify();
                    let _ = s.flush();
                });
            }
        });
        FakeOpnsense {
            url,
            ca_pem: ck.cert.pem(),
            requests,
        }
    }

    fn config(&self, s: &Setup, name: &str, secret: &str, create_alias: bool) -> PathBuf {
        s.write("opnsense-ca.pem", &self.ca_pem);
        s.write("opn.key", &format!("{OPN_KEY}\n"));
        s.write("opn.secret", &format!("{secret}\n"));
        s.config(
            name,
            &format!(
                "\n[respond]\nmode = \"auto\"\nbackend = \"opnsense\"\nmax_active = 1000\n\n\
                 [respond.opnsense]\nurl = \"{}\"\nalias = \"{ALIAS}\"\nkey_file = \"opn.key\"\n\
                 secret_file = \"opn.secret\"\nca_file = \"opnsense-ca.pem\"\n\
                 create_alias = {create_alias}\nretries = 0\n",
                self.url
            ),
        )
    }
}

#[test]
fn opnsense_api_key_and_alias_are_checked_without_changing_anything() {
    let s = Setup::new();

    let healthy = FakeOpnsense::start(true);
    let cfg = healthy.config(&s, "healthy.toml", OPN_SECRET, false);
    s.compile(&cfg);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(0), "{report:#}");
    for check in ["backend reachable", "alias present", "room for new blocks"] {
        let f = finding(&report, "backend", ALIAS, check);
        assert_eq!(level(f), "ok", "{f:#}");
    }
    let room = finding(&report, "backend", ALIAS, "room for new blocks");
    assert!(
        room["detail"].as_str().unwrap().starts_with("2 entries"),
        "{room:#}"
    );

    // No alias: a failure naming where to make it; with create_alias it is the agent's job.
    let bare = FakeOpnsense::start(false);
    let cfg = bare.config(&s, "bare.toml", OPN_SECRET, false);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", ALIAS, "alias present");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(
        fix(f).contains("External") && fix(f).contains("create_alias = true"),
        "{f:#}"
    );
    let cfg = bare.config(&s, "create.toml", OPN_SECRET, true);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        level(finding(&report, "backend", ALIAS, "alias present")),
        "ok"
    );
    let requests = bare.requests.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "the doctor only reads: {requests:?}"
    );

    // A secret the firewall refuses: 401, the fix names the key files, no secret shown.
    let cfg = healthy.config(&s, "wrong.toml", "not-the-secret-either", false);
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", "opnsense", "backend reachable");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("key_file"), "{f:#}");
    let text = report.to_string();
    assert!(!text.contains("not-the-secret-either") && !text.contains(OPN_SECRET));
}

// ---------------------------------------------------------------------------------------
// pf: a stand-in pfctl (FreeBSD cannot run here)

#[test]
fn pf_is_listed_through_pfctl_and_a_refusal_names_the_fix() {
    let s = Setup::new();
    let pfctl = |body: &str| {
        let p = s.write("pfctl", &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let cfg = |name: &str, pfctl: &Path| {
        s.config(
            name,
            &format!(
                "\n[respond]\nmode = \"approve\"\nbackend = \"pf\"\nmax_active = 100\n\n\
                 [respond.pf]\npfctl = {:?}\ntable = \"spoor_block\"\n",
                pfctl.display().to_string()
            ),
        )
    };
    let show = pfctl(
        "case \" $* \" in *\" -T show \"*) printf '   198.51.100.7\\n   203.0.113.0/24\\n' ;; \
         *) echo \"pfctl: unexpected: $*\" >&2; exit 2 ;; esac",
    );
    let ok = cfg("pf.toml", &show);
    s.compile(&ok);
    let (code, report) = doctor(&[], &ok);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        level(finding(&report, "backend", "pf", "firewall tool present")),
        "ok"
    );
    // The subject is the backend's name (`pf:TABLE`, or `pf:ANCHOR:TABLE` with an anchor).
    let room = finding(&report, "backend", "spoor_block", "room for new blocks");
    assert!(
        room["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 entries; limit 100"),
        "{room:#}"
    );

    pfctl("echo 'pfctl: /dev/pf: Permission denied' >&2; exit 1");
    let (code, report) = doctor(&[], &ok);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", "pf", "backend reachable");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("root"), "{f:#}");

    let missing = cfg("nopf.toml", &s.path("no-such-pfctl"));
    let (code, report) = doctor(&[], &missing);
    assert_eq!(code, Some(1), "{report:#}");
    let f = finding(&report, "backend", "pf", "firewall tool present");
    assert_eq!(level(f), "fail", "{f:#}");
    assert!(fix(f).contains("nftables"), "{f:#}");
}

// ---------------------------------------------------------------------------------------
// the sensor's user

#[test]
fn the_sensor_user_must_reach_what_it_opens_after_the_switch() {
    if let Some(why) = root_and(&[]) {
        eprintln!("skipped: {why}");
        return;
    }
    let s = Setup::new();
    let cfg = s.config(
        "spoor.toml",
        "user = \"nobody\"\n\n[[sensor.output]]\ntype = \"server\"\n\
         url = \"http://127.0.0.1:9\"\ntoken_file = \"sensor.token\"\n",
    );
    s.compile(&cfg);
    std::fs::set_permissions(s.snapshot(), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        s.path("sensor.token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (_, report) = doctor(&[], &cfg);
    assert_eq!(
        level(finding(
            &report,
            "privileges",
            "nobody",
            "[sensor] user exists"
        )),
        "ok"
    );
    let snap = finding(
        &report,
        "privileges",
        "trails.snapshot",
        "snapshot readable",
    );
    assert_eq!(level(snap), "warn", "{snap:#}");
    assert!(fix(snap).contains("chmod 0644"), "{snap:#}");
    let token = finding(&report, "privileges", "sensor.token", "token readable");
    assert_eq!(level(token), "fail", "{token:#}");
    // The log and spool folders do not exist yet: the sensor would create them in
    // `state`, which only root may write to.
    let log = finding(&report, "privileges", "state/log", "log folder writable");
    assert_eq!(level(log), "fail", "{log:#}");
    assert!(fix(log).starts_with("install -d -o nobody"), "{log:#}");
    assert_eq!(
        level(finding(
            &report,
            "privileges",
            "state/spool",
            "spool writable"
        )),
        "fail"
    );

    // Fixed as the findings say: all ok.
    std::fs::set_permissions(s.snapshot(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let nobody = |p: &Path| {
        run_ok(Command::new("chown").arg("nobody").arg(p));
    };
    nobody(&s.path("sensor.token"));
    for dir in ["state/log", "state/spool"] {
        std::fs::create_dir(s.path(dir)).unwrap();
        nobody(&s.path(dir));
    }
    let (_, report) = doctor(&[], &cfg);
    let privileges: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["area"] == "privileges")
        .collect();
    assert_eq!(privileges.len(), 5, "{privileges:#?}");
    assert!(
        privileges.iter().all(|f| f["level"] == "ok"),
        "{privileges:#?}"
    );

    // A user that does not exist stops the sensor: a failure with the command.
    let cfg = s.config("ghost.toml", "user = \"spoor-doctor-no-such-user\"\n");
    let (code, report) = doctor(&[], &cfg);
    assert_eq!(code, Some(1));
    let f = finding(
        &report,
        "privileges",
        "no-such-user",
        "[sensor] user exists",
    );
    assert!(f["detail"].as_str().unwrap().contains("useradd"), "{f:#}");
}
