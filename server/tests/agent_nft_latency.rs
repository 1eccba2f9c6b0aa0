//! Benchmark (issue 7): one event batch in → its offender in the agent's nftables set, in
//! auto mode. Ignored (needs root, `ip` and `nft`); a measurement, nothing is asserted
//! about time:
//!
//! ```text
//! cargo test -p spoor-server --test agent_nft_latency -- --ignored --nocapture
//! ```
//!
//! A thread enters a network namespace made for the run (`ip netns add`, removed at the
//! end) and starts everything from there, so the server, its threads, the agent and every
//! `nft` it runs live in that namespace: the server (mode auto, one `auto` rule for ip
//! events, an agent token) on the namespace's loopback, and a `RemoteAgent` following it
//! with the nftables backend (`create = true`). Each run POSTs one batch with one event
//! for a new address and polls `nft -j list set` until the address is there.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use spoor_core::Severity;
use spoor_responders::HostFacts;
use spoor_responders::agent::client::ServerClient;
use spoor_responders::agent::config::{RemoteConfig, ServerTrust};
use spoor_responders::agent::remote::{self, RemoteAgent};
use spoor_responders::backend::nftables::{NftBackend, NftSettings};
use spoor_responders::config::{RawRespond, RespondConfig};
use spoor_server::config::{SensorAuth, TokenSource};

const AGENT_TOKEN: &str = "agent-bench-token-0123456789";
/// Runs measured.
const RUNS: usize = 20;
/// How often the set is listed while waiting.
const POLL: Duration = Duration::from_millis(2);
/// Give up on one run after this long (a bound, not a goal).
const GIVE_UP: Duration = Duration::from_secs(30);

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?}: {st}");
}

fn respond_config(dir: &std::path::Path, raw: serde_json::Value) -> RespondConfig {
    let raw: RawRespond = serde_json::from_value(raw).unwrap();
    raw.validate(&spoor_core::KeyPath::root().key("respond"), dir, dir)
        .unwrap()
}

fn set_holds(addr: &str) -> bool {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "spoor", "block_v4"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("\"{addr}\""))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[test]
#[ignore = "benchmark: needs root, ip and nft; run with --ignored --nocapture"]
fn ingest_to_nftables_set() {
    let ns = Netns(format!("spoor-lat-{}", std::process::id()));
    run("ip", &["netns", "add", &ns.0]);
    let path = format!("/run/netns/{}", ns.0);
    let samples = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd; affects this thread and what it starts.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        run("ip", &["link", "set", "lo", "up"]);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(measure())
    })
    .join()
    .unwrap();
    let mut sorted = samples.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "event batch → address in the nftables set, {} runs: median {:.1} ms, p95 {:.1} ms, min {:.1} ms, max {:.1} ms",
        sorted.len(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.95)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
    );
    println!(
        "samples (ms): {:?}",
        samples
            .iter()
            .map(|d| (ms(*d) * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
}

async fn measure() -> Vec<Duration> {
    let s = start_with(|c| {
        c.respond = Some(respond_config(
            &c.data_dir,
            json!({
                "mode": "auto",
                "rule": [{"name": "malware", "kinds": ["ip"], "action": "auto"}],
            }),
        ));
        c.agents = vec![SensorAuth {
            name: "bench".into(),
            token: TokenSource::Sha256(spoor_server::auth::sha256(AGENT_TOKEN.as_bytes())),
        }];
    })
    .await;
    let agent_dir = tempfile::tempdir().unwrap();
    std::fs::write(agent_dir.path().join("token"), AGENT_TOKEN).unwrap();
    let remote_cfg = RemoteConfig {
        server: s.base.clone(),
        token_file: agent_dir.path().join("token"),
        trust: ServerTrust::System,
        wait: spoor_core::Duration::from_secs(30),
        timeout: spoor_core::Duration::from_secs(5),
        backoff_min: spoor_core::Duration(Duration::from_millis(100)),
        backoff_max: spoor_core::Duration::from_secs(1),
        state_file: agent_dir.path().join("state.json"),
    };
    let agent_respond = respond_config(
        agent_dir.path(),
        json!({"backend": "nftables", "nftables": {"create": true}}),
    );
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let agent = {
        let (respond_cfg, remote_cfg) = (agent_respond.clone(), remote_cfg.clone());
        std::thread::spawn(move || {
            let backend = NftBackend::new(NftSettings {
                command: vec!["nft".into()],
                family: "inet".into(),
                table: "spoor".into(),
                set_v4: "block_v4".into(),
                set_v6: "block_v6".into(),
                net_set_v4: "block_net_v4".into(),
                net_set_v6: "block_net_v6".into(),
                create: true,
                capacity: 65_536,
            })
            .unwrap();
            let client = ServerClient::new(&remote_cfg).unwrap();
            let conn = remote::open_local(&respond_cfg).unwrap();
            let mut a = RemoteAgent::new(
                conn,
                &respond_cfg,
                &remote_cfg,
                Box::new(backend),
                &HostFacts::default(),
            );
            a.run(client, &remote_cfg, stop);
        })
    };
    // warm-up: the agent has its snapshot and the set exists
    let warm = "198.51.100.200";
    let mut samples = Vec::new();
    for i in 0..=RUNS {
        let addr = if i == 0 {
            warm.to_string()
        } else {
            format!("198.51.100.{}", 10 + i)
        };
        let ev = event(
            1000 + i as u128,
            "s1",
            "10.0.0.5",
            &addr,
            &addr,
            Severity::High,
            spoor_responders::ledger::now().0,
        );
        let t0 = Instant::now();
        let r = s.ingest(TOKEN, &batch("s1", vec![ev])).await;
        assert_eq!(r.status(), 200);
        let seen = {
            let addr = addr.clone();
            tokio::task::spawn_blocking(move || {
                while !set_holds(&addr) {
                    if t0.elapsed() > GIVE_UP {
                        return None;
                    }
                    std::thread::sleep(POLL);
                }
                Some(t0.elapsed())
            })
            .await
            .unwrap()
        };
        let took = seen.unwrap_or_else(|| panic!("{addr} never reached the set"));
        if i > 0 {
            samples.push(took);
        }
    }
    stop.store(true, Ordering::Relaxed);
    agent.join().unwrap();
    s.server.stop().await;
    samples
}
