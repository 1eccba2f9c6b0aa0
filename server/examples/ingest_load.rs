//! Ingest load test (release, loopback): 4 sensors post batches concurrently to a
//! `spoor server` started as a child process; the server is killed (SIGKILL, by PID)
//! while they post and started again. Clients retry every batch until it is
//! acknowledged. At the end every event must be in the database exactly once.
//!
//! ```text
//! cargo build --release --bin spoor
//! cargo run --release -p spoor-server --example ingest_load -- [EVENTS_PER_SENSOR]
//! ```
//! Prints the sustained rate before the kill, after the restart, and overall.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spoor_core::{
    Context, Event, EventBatch, EventId, EventKind, Micros, Proto, SensorStatus, Severity,
};

const SENSORS: usize = 4;
/// Events per batch unless `SPOOR_BATCH` says otherwise (at most the wire's 5,000).
const BATCH: usize = 2000;
/// Events fall in the day before the run: older ones would be taken by retention
/// (`[server.retention] events`, 30 days by default) while the test counts them.
const DAY: i64 = 86_400_000_000;

fn token(i: usize) -> String {
    format!("load-test-token-of-sensor-{i}-0123456789")
}

fn sha_hex(s: &str) -> String {
    spoor_server::auth::hex(&spoor_server::auth::sha256(s.as_bytes()))
}

/// Deterministic pseudo-random numbers (xorshift), no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Event `seq` of `per_sensor`: a sensor reports in packet-time order, so times rise
/// through the day (with up to a second of jitter, as condensing and several workers
/// give); addresses, trails and kinds are random.
fn event(day0: i64, sensor: usize, seq: u64, per_sensor: u64, rng: &mut Rng) -> Event {
    let r = rng.next();
    let t = day0 + (seq as i64 * (DAY / per_sensor as i64)) + (r % 1_000_000) as i64;
    let sev = match r % 10 {
        0..=1 => Severity::High,
        2..=4 => Severity::Medium,
        _ => Severity::Low,
    };
    let kind = [
        EventKind::Ip,
        EventKind::Dns,
        EventKind::Url,
        EventKind::Sni,
    ][(r >> 8) as usize % 4];
    Event {
        // Laid out as a sensor makes them: milliseconds of the packet time, then bits
        // that are unique (here: sensor and sequence, instead of random).
        id: EventId((((t / 1000) as u128) << 80) | ((sensor as u128 + 1) << 64) | seq as u128),
        time: Micros(t),
        sensor: format!("sensor{sensor}"),
        src: format!("10.{}.{}.{}", sensor, (r >> 16) % 64, (r >> 24) % 250 + 1)
            .parse()
            .unwrap(),
        src_port: Some(1024 + (r >> 32) as u16 % 60000),
        dst: format!("203.0.{}.{}", (r >> 40) % 100, (r >> 48) % 250 + 1)
            .parse()
            .unwrap(),
        dst_port: Some(443),
        proto: Proto::TCP,
        kind,
        trail: format!("bad{}.example", (r >> 20) % 2000),
        info: "emotet (malware)".into(),
        reference: "(static)".into(),
        severity: sev,
        offender: None,
        answers: vec![],
        count: 1,
        first_seen: Micros(t),
        last_seen: Micros(t),
        context: Context::default(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(spoor: &Path, config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(spoor)
        .args(["server", "-q", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start spoor server")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/api/v1/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not come up");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let per_sensor: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(250_000);
    let spoor = std::env::var_os("SPOOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/spoor")
        });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cfg = format!(
        "[spoor]\nstate_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
        dir.path().display()
    );
    for i in 0..SENSORS {
        cfg.push_str(&format!(
            "[[server.sensor]]\nname = \"sensor{i}\"\ntoken_sha256 = \"{}\"\n",
            sha_hex(&token(i))
        ));
    }
    let config = dir.path().join("spoor.toml");
    std::fs::write(&config, cfg).unwrap();
    let log = dir.path().join("server.log");
    let base = format!("http://127.0.0.1:{port}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let day0 = now.as_micros() as i64 - DAY;
    let batch: u64 = std::env::var("SPOOR_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(BATCH as u64);
    // Batches are made before the clock starts: this measures the server.
    eprintln!("preparing {} events", per_sensor * SENSORS as u64);
    let mut all: Vec<Vec<Vec<u8>>> = Vec::new();
    for s in 0..SENSORS {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (s as u64 + 1));
        let mut batches = Vec::new();
        let mut seq = 0;
        while seq < per_sensor {
            let n = (per_sensor - seq).min(batch);
            let events: Vec<Event> = (seq..seq + n)
                .map(|q| event(day0, s, q, per_sensor, &mut rng))
                .collect();
            seq += n;
            let b = EventBatch {
                status: SensorStatus {
                    name: format!("sensor{s}"),
                    version: "load".into(),
                    ..SensorStatus::default()
                },
                events,
            };
            batches.push(serde_json::to_vec(&b).unwrap());
        }
        all.push(batches);
    }
    let total = per_sensor * SENSORS as u64;

    let mut child = spawn(&spoor, &config, &log);
    let http = reqwest::Client::new();
    wait_healthy(&http, &base).await;

    let acked = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut clients = Vec::new();
    for (s, batches) in all.into_iter().enumerate() {
        let (http, base, acked, retries) = (
            http.clone(),
            base.clone(),
            Arc::clone(&acked),
            Arc::clone(&retries),
        );
        clients.push(tokio::spawn(async move {
            for body in batches {
                loop {
                    let r = http
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(token(s))
                        .header("content-type", "application/json")
                        .timeout(Duration::from_secs(30))
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let ack: serde_json::Value = r.json().await.unwrap_or_default();
                            let n = ack["accepted"].as_u64().unwrap_or(0)
                                + ack["duplicates"].as_u64().unwrap_or(0);
                            acked.fetch_add(n, Ordering::Relaxed);
                            break;
                        }
                        Ok(r) if r.status().is_client_error() => {
                            panic!(
                                "refused: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            )
                        }
                        _ => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }

    // Kill the server when 40 % are acknowledged, start it again.
    while acked.load(Ordering::Relaxed) < total * 4 / 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_kill = acked.load(Ordering::Relaxed);
    let t_kill = start.elapsed();
    let pid = child.id();
    // The server's own CPU time: on a shared machine the wall-clock rate depends on the
    // other load, CPU per event does not.
    let server_cpu = cpu_seconds(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "killed server pid {pid} after {before_kill} acknowledged events ({:.2} s)",
        t_kill.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut child = spawn(&spoor, &config, &log);
    eprintln!("restarted as pid {}", child.id());
    wait_healthy(&http, &base).await;
    let (restarted_at, acked_at_restart) = (start.elapsed(), acked.load(Ordering::Relaxed));
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = start.elapsed();
    let after_restart = (total - acked_at_restart) as f64 / (elapsed - restarted_at).as_secs_f64();

    // Stop the server cleanly, then count by id.
    let pid = child.id() as i32;
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    let db = dir.path().join("server/spoor.db");
    let (rows, ids, per_sensor_ok) = tokio::task::spawn_blocking(move || count(&db, per_sensor))
        .await
        .unwrap();

    let rate_before = before_kill as f64 / t_kill.as_secs_f64();
    println!("events: {total} from {SENSORS} sensors in batches of {batch}");
    println!(
        "sustained before the kill: {rate_before:.0} events/s ({before_kill} in {:.2} s)",
        t_kill.as_secs_f64()
    );
    if let Some(cpu) = server_cpu {
        println!(
            "server CPU before the kill: {cpu:.2} s = {:.1} µs/event = {:.0} events per CPU-second",
            cpu * 1e6 / before_kill as f64,
            before_kill as f64 / cpu
        );
    }
    println!(
        "sustained after the restart (into the filled database): {after_restart:.0} events/s ({} in {:.2} s)",
        total - acked_at_restart,
        (elapsed - restarted_at).as_secs_f64()
    );
    println!(
        "overall including kill + restart: {:.0} events/s ({total} in {:.2} s), {} retried requests",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        retries.load(Ordering::Relaxed)
    );
    println!(
        "stored rows: {rows}, distinct ids: {ids}, expected: {total}, per sensor complete: {per_sensor_ok}"
    );
    assert_eq!(rows, total as i64, "every event stored exactly once");
    assert_eq!(ids, total as i64);
    assert!(per_sensor_ok);
    println!("OK: every event stored exactly once");
}

/// utime + stime of a process, from /proc (Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Rows, distinct ids, and whether every sensor has all its events.
fn count(db: &Path, per_sensor: u64) -> (i64, i64, bool) {
    let store = spoor_server::store::Store::open(db).unwrap();
    let (rows, ids): (i64, i64) = store
        .read_blocking(|c| {
            Ok(
                c.query_row("SELECT count(*), count(DISTINCT id) FROM events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?,
            )
        })
        .unwrap();
    let per_sensor_ok = store
        .read_blocking(|c| {
            let mut ok = true;
            for s in 0..SENSORS {
                let n: i64 = c.query_row(
                    "SELECT count(*) FROM events WHERE sensor = ?1",
                    [format!("sensor{s}")],
                    |r| r.get(0),
                )?;
                ok &= n == per_sensor as i64;
            }
            Ok(ok)
        })
        .unwrap();
    store.close();
    (rows, ids, per_sensor_ok)
}
