//! `spoor agent --once` with `[agent] server`: it takes the snapshot from a server started
//! in the test (127.0.0.1), applies it to the dry-run backend and reports, so the
//! decision becomes active on the server; a sensor's token and an unreachable server
//! give precise errors that never show the token.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use spoor_responders::config::RawRespond;
use spoor_responders::{DecisionState, NewDecision, Reason};
use spoor_server::Server;
use spoor_server::config::{SensorAuth, ServerConfig, TokenSource};
use tempfile::TempDir;

const AGENT_TOKEN: &str = "cli-agent-token-0123456789";
const SENSOR_TOKEN: &str = "cli-sensor-token-0123456789";

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

fn agent_config(dir: &Path, server: &str, token: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("agent.token"), format!("{token}\n")).unwrap();
    let path = dir.join("spoor.toml");
    std::fs::write(
        &path,
        format!(
            "[spoor]\nstate_dir = \"{}\"\n[respond]\nbackend = \"dry-run\"\n[agent]\nserver = \"{server}\"\ntoken_file = \"agent.token\"\nwait = \"1s\"\ntimeout = \"2s\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    path
}

#[test]
fn agent_once_follows_the_server_and_errors_are_precise() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server_dir = TempDir::new().unwrap();
    let mut c = ServerConfig::with_data_dir(server_dir.path());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.respond = Some(
        RawRespond::default()
            .validate(
                &spoor_core::KeyPath::root().key("respond"),
                server_dir.path(),
                server_dir.path(),
            )
            .unwrap(),
    );
    c.sensors = vec![SensorAuth {
        name: "s1".into(),
        token: TokenSource::Sha256(spoor_server::auth::sha256(SENSOR_TOKEN.as_bytes())),
    }];
    c.agents = vec![SensorAuth {
        name: "gw1".into(),
        token: TokenSource::Sha256(spoor_server::auth::sha256(AGENT_TOKEN.as_bytes())),
    }];
    let server = rt.block_on(Server::start(c)).unwrap();
    let base = format!("http://{}", server.local_addr);
    let r = std::sync::Arc::clone(server.responders().unwrap());
    let id = rt
        .block_on(r.ledger(|l| {
            let now = spoor_responders::ledger::now();
            let d = l.propose(
                &NewDecision {
                    target: spoor_responders::decision::parse_target("198.51.100.77").unwrap(),
                    reason: Reason {
                        rule: "manual".into(),
                        events: vec![],
                        note: None,
                    },
                    ttl_secs: 3600,
                    dry_run: false,
                },
                "alice",
                now,
            )?;
            l.transition(d.id, DecisionState::Approved, "alice", now, None)?;
            Ok(d.id)
        }))
        .unwrap();

    let dir = TempDir::new().unwrap();
    let config = agent_config(dir.path(), &base, AGENT_TOKEN);
    let o = spoor(&config, &["agent", "--once"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("added 1, removed 0, activated 1, refused 0"),
        "{stdout}"
    );
    let d = rt.block_on(r.ledger(move |l| l.get(id))).unwrap();
    assert_eq!(d.state, DecisionState::Active);
    assert_eq!(d.actor, "agent:gw1");
    assert!(
        dir.path().join("state/agent-decisions.json").exists(),
        "the known decisions are saved for a restart"
    );

    // a sensor's token: 403, with what to do, and the token is not shown
    let config = agent_config(dir.path(), &base, SENSOR_TOKEN);
    let o = spoor(&config, &["agent", "--once"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("[[server.agent]]"), "{stderr}");
    assert!(!stderr.contains(SENSOR_TOKEN), "{stderr}");

    // nothing listening: the URL and what to check
    rt.block_on(server.stop());
    let config = agent_config(dir.path(), &base, AGENT_TOKEN);
    let o = spoor(&config, &["agent", "--once"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot reach the server at {base}/api/v1/agent/decisions"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("check [agent] server"), "{stderr}");
    assert!(!stderr.contains(AGENT_TOKEN), "{stderr}");
}
