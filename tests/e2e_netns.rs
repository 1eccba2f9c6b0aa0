//! Issue 8's end-to-end proof: from a packet to a blocked address and back, with the real
//! `spoor` binary, in network namespaces the test creates and deletes.
//!
//! ```text
//!  client ns                     fw ns                                   net ns
//!  198.51.100.2 ── veth ── 198.51.100.1 (e2e-fwc)     203.0.113.1 ── veth ── 203.0.113.80
//!  default via .1          DNS server on :53, forwarding on           TCP listener :18080
//!                          spoor server (127.0.0.1), spoor sensor     default via .1
//!                          live on e2e-fwc, spoor agent (nftables)
//! ```
//!
//! The listed address lives in a third namespace behind the firewall: a block drops
//! forwarded traffic (Spoor's `spoor_forward` chain), and an address of the firewall
//! itself would be refused by the allowlist (the host's own addresses are never
//! blocked). The client resolves the listed test domain through the firewall's DNS
//! server, which answers with the listed address, and connects to it; the sensor sees
//! both, ships the events to the server, the server's auto rule makes a decision, the
//! agent following the server puts the address in its nftables set; the client's next
//! connection is dropped, and once the short TTL passes it works again.
//!
//! Needs root, iproute2 and nft; elsewhere the test says why and passes. No packet leaves
//! the three namespaces (documentation addresses on veth pairs only). Only processes the
//! test started are signalled, by PID.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The listed test domain and the listed address it resolves to.
const LISTED_DOMAIN: &str = "e2e-c2.example";
const LISTED_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
const CLIENT_ADDR: &str = "198.51.100.2";
const FW_LAN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const FW_NET_ADDR: &str = "203.0.113.1";
/// The firewall-side interface toward the client, where the sensor captures.
const FW_LAN_IF: &str = "e2e-fwc";
const TCP_PORT: u16 = 18_080;
/// The server's port on the firewall namespace's loopback (the namespace is ours).
const SERVER_PORT: u16 = 18_338;
/// The auto rule's block length: short, so that the test sees it expire.
const TTL: Duration = Duration::from_secs(15);
/// Bounds on each wait, generous for a loaded 2-core machine.
const STARTUP_WAIT: Duration = Duration::from_secs(30);
const BLOCK_WAIT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const AGENT_TOKEN: &str = "e2e-agent-token-0123456789abcdef";
const SENSOR_TOKEN: &str = "e2e-sensor-token-0123456789abcdef";

/// A network namespace of our own, deleted on drop (also when the test fails).
#[derive(Debug)]
struct Netns {
    name: String,
}

impl Netns {
    fn create(role: &str) -> Netns {
        let name = format!("spoor-e2e-{role}-{}", std::process::id());
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

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run_ok(Command::new(all[0]).args(&all[1..]));
    }

    /// Run `f` on a thread that has entered this namespace.
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only; the fd is valid for the call.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
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

/// A `veth` pair made inside `a` with its peer end moved to `b`, so the names never meet
/// the host's.
fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    a.ip(&["addr", "add", a_addr, "dev", a_if]);
    b.ip(&["addr", "add", b_addr, "dev", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A process the test started (`ip netns exec` execs it, so the PID is its own); killed
/// by that PID on drop if it still runs.
#[derive(Debug)]
struct Proc {
    name: &'static str,
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn start(name: &'static str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .env_remove("SPOOR_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Proc {
            name,
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Wait until a line of stdout or stderr contains `needle`.
    fn wait_for(&mut self, needle: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            for line in self.stdout.try_iter().chain(self.stderr.try_iter()) {
                let hit = line.contains(needle);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                panic!(
                    "{} ended ({status}) before saying `{needle}`:\n{}",
                    self.name,
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.drain();
        panic!(
            "{} did not say `{needle}` within {bound:?}:\n{}",
            self.name,
            self.seen.join("\n")
        );
    }

    fn drain(&mut self) {
        let more: Vec<String> = self
            .stdout
            .try_iter()
            .chain(self.stderr.try_iter())
            .collect();
        self.seen.extend(more);
    }

    fn output(&mut self) -> String {
        self.drain();
        format!("--- {} ---\n{}", self.name, self.seen.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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
    for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
        match Command::new(tool).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Some(format!("`{tool} {arg}` failed: {}", o.status)),
            Err(e) => return Some(format!("`{tool}` is not usable: {e}")),
        }
    }
    None
}

/// A DNS query for `name`, type A, class IN, recursion desired (RFC 1035 4.1).
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

/// The firewall's DNS server: answers an A query for [`LISTED_DOMAIN`] with
/// [`LISTED_ADDR`] (TTL 60), anything else with NXDOMAIN. Runs on a thread inside `ns`.
fn dns_server(ns: &Netns) {
    let socket = ns.within(|| UdpSocket::bind(SocketAddr::from((FW_LAN_ADDR, 53))).unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let q = &buf[..n];
            if n < 12 + 5 {
                continue;
            }
            // the question: labels up to the root, then type and class
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += usize::from(q[end]) + 1;
            }
            let end = end + 5;
            if end > n {
                continue;
            }
            let name: Vec<String> = {
                let mut labels = Vec::new();
                let mut i = 12;
                while q[i] != 0 {
                    let len = usize::from(q[i]);
                    labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + len]).into_owned());
                    i += len + 1;
                }
                labels
            };
            let listed = name.join(".").eq_ignore_ascii_case(LISTED_DOMAIN);
            let mut r = Vec::with_capacity(end + 16);
            r.extend_from_slice(&q[..2]);
            // response, recursion desired + available; NOERROR or NXDOMAIN
            r.extend_from_slice(&[0x81, if listed { 0x80 } else { 0x83 }]);
            r.extend_from_slice(&[0, 1, 0, u8::from(listed), 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            if listed {
                // name: pointer to the question's name at offset 12
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&LISTED_ADDR.octets());
            }
            let _ = socket.send_to(&r, from);
        }
    });
}

/// Resolve [`LISTED_DOMAIN`] from the client namespace through the firewall's server.
fn resolve(client: &Netns, id: u16) -> Option<Ipv4Addr> {
    client.within(move || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
        s.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
        s.send_to(&dns_query(id, LISTED_DOMAIN), (FW_LAN_ADDR, 53))
            .ok()?;
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).ok()?;
        // one answer, its RDATA the last 4 bytes
        (n >= 4 && buf[7] == 1)
            .then(|| Ipv4Addr::new(buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]))
    })
}

/// A TCP connect from the client namespace to the listed address.
fn connects(client: &Netns) -> bool {
    client.within(|| {
        TcpStream::connect_timeout(&SocketAddr::from((LISTED_ADDR, TCP_PORT)), PROBE_TIMEOUT)
            .is_ok()
    })
}

/// Whether the firewall's hash set for IPv4 addresses holds the listed address.
fn in_set(fw: &Netns) -> bool {
    let out = run_ok(&mut fw.exec(&["nft", "-j", "list", "set", "inet", "spoor", "block_v4"]));
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains(&format!("\"{LISTED_ADDR}\""))
}

/// One HTTP/1.1 request to the server on the firewall namespace's loopback: status,
/// head and body (chunked bodies decoded).
fn http(
    fw: &Netns,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> (u16, String, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        headers
            .iter()
            .map(|h| format!("{h}\r\n"))
            .collect::<String>(),
        body.len()
    );
    let raw = fw.within(move || {
        let mut s = TcpStream::connect(("127.0.0.1", SERVER_PORT)).unwrap();
        s.set_read_timeout(Some(STARTUP_WAIT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        raw
    });
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// The decisions an agent gets from the server's snapshot.
fn decisions(fw: &Netns) -> Vec<Value> {
    let (status, _, body) = http(
        fw,
        "GET",
        "/api/v1/agent/decisions",
        &[format!("Authorization: Bearer {AGENT_TOKEN}")],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["decisions"].as_array().cloned().unwrap_or_default()
}

/// The events the server stored, as the first admin sees them (its password is printed
/// once, at the first start).
fn events(fw: &Netns, password: &str) -> Vec<Value> {
    let login = serde_json::json!({"user": "admin", "password": password}).to_string();
    let (status, head, body) = http(fw, "POST", "/api/v1/login", &[], &login);
    assert_eq!(status, 200, "login: {body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim())
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in\n{head}"))
        .to_string();
    let (status, _, body) = http(
        fw,
        "GET",
        "/api/v1/events?limit=100",
        &[format!("Cookie: {cookie}")],
        "",
    );
    assert_eq!(status, 200, "events: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["event"].clone())
        .collect()
}

/// Poll `f` every 250 ms until it holds or `bound` passes.
fn eventually(bound: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Trails, tokens and one config for sensor, server and agent; the trails compiled.
fn configure(dir: &Path) -> PathBuf {
    let off: Vec<String> = spoor_feeds::catalog::builtin()
        .iter()
        .filter(|f| f.default_enabled)
        .map(|f| format!("{:?}", f.name))
        .collect();
    std::fs::write(
        dir.join("e2e.csv"),
        format!(
            "{LISTED_DOMAIN},malware (e2e test),(local)\n{LISTED_ADDR},malware (e2e test),(local)\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("sensor.token"), format!("{SENSOR_TOKEN}\n")).unwrap();
    std::fs::write(dir.join("agent.token"), format!("{AGENT_TOKEN}\n")).unwrap();
    let server = format!("http://127.0.0.1:{SERVER_PORT}");
    let toml = format!(
        r#"[spoor]
state_dir = "state"

[feeds]
disable = [{off}]

[[trails.source]]
name = "e2e"
path = "e2e.csv"
format = "maltrail-csv"

[sensor]
name = "fw-sensor"
condense_window = "1s"

[[sensor.output]]
type = "server"
url = "{server}"
token_file = "sensor.token"
flush_interval = "1s"

[server]
listen = "127.0.0.1:{SERVER_PORT}"

[[server.sensor]]
name = "fw-sensor"
token_file = "sensor.token"

[[server.agent]]
name = "gw1"
token_file = "agent.token"

[respond]
mode = "auto"
backend = "nftables"
reconcile_interval = "1s"
escalation = ["{ttl}s"]

[[respond.rule]]
name = "malware"
kinds = ["ip", "dns"]
action = "auto"

[respond.nftables]
create = true

[agent]
server = "{server}"
token_file = "agent.token"
wait = "1s"
"#,
        off = off.join(", "),
        ttl = TTL.as_secs(),
    );
    let cfg = dir.join("spoor.toml");
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

#[test]
fn a_listed_connection_is_blocked_then_released() {
    if let Some(why) = unsupported() {
        eprintln!("skipping the end-to-end test: {why}");
        return;
    }
    let dir = TempDir::new().unwrap();
    let cfg = configure(dir.path());
    let cfg_s = cfg.to_str().unwrap();

    // Namespaces first: dropped last, after the processes inside them.
    let client = Netns::create("client");
    let fw = Netns::create("fw");
    let net = Netns::create("net");
    veth(
        &fw,
        FW_LAN_IF,
        &format!("{FW_LAN_ADDR}/24"),
        &client,
        "e2e-c",
        &format!("{CLIENT_ADDR}/24"),
    );
    veth(
        &fw,
        "e2e-fwn",
        &format!("{FW_NET_ADDR}/24"),
        &net,
        "e2e-n",
        &format!("{LISTED_ADDR}/24"),
    );
    client.ip(&["route", "add", "default", "via", &FW_LAN_ADDR.to_string()]);
    net.ip(&["route", "add", "default", "via", FW_NET_ADDR]);
    run_ok(&mut fw.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]));
    let listener =
        net.within(|| TcpListener::bind(SocketAddr::from((LISTED_ADDR, TCP_PORT))).unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    dns_server(&fw);
    assert_eq!(
        resolve(&client, 1),
        Some(LISTED_ADDR),
        "DNS through the firewall"
    );
    assert!(
        connects(&client),
        "no TCP to the listed address before any block"
    );

    let spoor = env!("CARGO_BIN_EXE_spoor");
    let mut server = Proc::start("server", fw.exec(&[spoor, "-c", cfg_s, "server"]));
    server.wait_for("spoor server on", STARTUP_WAIT);
    server.wait_for("with password", STARTUP_WAIT);
    let password = server
        .seen
        .iter()
        .find_map(|l| l.split("with password ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the first admin's password")
        .to_string();
    let mut sensor = Proc::start(
        "sensor",
        fw.exec(&[spoor, "-c", cfg_s, "sensor", "-i", FW_LAN_IF]),
    );
    sensor.wait_for("capturing", STARTUP_WAIT);
    let mut agent = Proc::start("agent", fw.exec(&[spoor, "-c", cfg_s, "agent"]));
    // the agent made Spoor's table and sets (create = true) before following the server
    assert!(
        eventually(STARTUP_WAIT, || fw
            .exec(&["nft", "list", "set", "inet", "spoor", "block_v4"])
            .output()
            .is_ok_and(|o| o.status.success())),
        "the agent never made its sets\n{}",
        agent.output()
    );

    // The client looks the listed name up and connects: the sensor sees both (the SYN is
    // captured on the veth whether or not the DNS hit's block already dropped it, so the
    // outcome of this first attempt is not asserted).
    assert_eq!(resolve(&client, 2), Some(LISTED_ADDR));
    connects(&client);

    // The server's auto rule decides, the agent following it fills the set.
    let blocked = eventually(BLOCK_WAIT, || in_set(&fw));
    assert!(
        blocked,
        "{LISTED_ADDR} never reached the nftables set\n{}\n{}\n{}",
        server.output(),
        sensor.output(),
        agent.output()
    );
    assert!(
        !connects(&client),
        "the client's next connection passes the block"
    );

    // The server holds the sensor's events and the active decision with its reason.
    let stored = events(&fw, &password);
    for (kind, trail) in [
        ("dns", LISTED_DOMAIN.to_string()),
        ("ip", LISTED_ADDR.to_string()),
    ] {
        assert!(
            stored.iter().any(|e| e["kind"] == kind
                && e["trail"] == trail.as_str()
                && e["sensor"] == "fw-sensor"),
            "no {kind} event for {trail} on the server: {stored:#?}"
        );
    }
    let target = format!("{LISTED_ADDR}/32");
    let open = decisions(&fw);
    let d = open
        .iter()
        .find(|d| d["target"] == target.as_str())
        .unwrap_or_else(|| panic!("no decision for {target}: {open:#?}"));
    assert_eq!(d["state"], "active", "{d}");
    assert_eq!(d["reason"]["rule"], "malware", "{d}");
    assert_eq!(d["ttl_secs"], TTL.as_secs(), "{d}");

    // The block expires after its TTL (the element's own timeout, and the server's
    // expiry the agent follows): the connection works again.
    let released = eventually(TTL + BLOCK_WAIT, || !in_set(&fw));
    assert!(
        released,
        "the block never expired\n{}\n{}",
        server.output(),
        agent.output()
    );
    assert!(connects(&client), "the connection still fails after expiry");
    assert!(
        eventually(BLOCK_WAIT, || !decisions(&fw)
            .iter()
            .any(|d| d["target"] == target.as_str() && d["state"] == "active")),
        "the server still has the decision active after its TTL"
    );
}
