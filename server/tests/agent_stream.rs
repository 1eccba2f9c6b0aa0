//! The decision stream for agents: snapshot, long poll, cursor semantics, tokens, and
//! reports that activate or revoke; then a real `RemoteAgent` following an in-test server
//! with a dry-run backend, through a server stop and restart.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ipnet::IpNet;
use serde_json::{Value, json};
use spoor_core::Severity;
use spoor_responders::agent::client::ServerClient;
use spoor_responders::agent::config::{RemoteConfig, ServerTrust};
use spoor_responders::agent::remote::{self, RemoteAgent};
use spoor_responders::backend::dry_run::DryRunBackend;
use spoor_responders::config::{RawRespond, RespondConfig};
use spoor_responders::decision::parse_target;
use spoor_responders::{
    Backend, BackendError, Changes, DecisionId, DecisionState, HostFacts, NewDecision, Reason,
};
use spoor_server::config::{SensorAuth, ServerConfig, TokenSource};
use spoor_server::respond::Responders;

const AGENT_TOKEN: &str = "agent-gw1-token-0123456789";

fn respond_config(dir: &std::path::Path) -> RespondConfig {
    let raw: RawRespond = serde_json::from_value(json!({
        "mode": "auto",
        "rule": [{"name": "malware", "kinds": ["ip"], "action": "auto"}],
    }))
    .unwrap();
    raw.validate(&spoor_core::KeyPath::root().key("respond"), dir, dir)
        .unwrap()
}

fn with_responders(c: &mut ServerConfig) {
    c.respond = Some(respond_config(&c.data_dir));
    c.agents = vec![SensorAuth {
        name: "gw1".into(),
        token: TokenSource::Sha256(spoor_server::auth::sha256(AGENT_TOKEN.as_bytes())),
    }];
}

fn responders(s: &Running) -> Arc<Responders> {
    Arc::clone(s.server.responders().expect("responders configured"))
}

/// An approved manual decision on `target`, as an admin would make it.
async fn approved(r: &Responders, target: &str) -> DecisionId {
    let target = parse_target(target).unwrap();
    let id = r
        .ledger(move |l| {
            let now = spoor_responders::ledger::now();
            let d = l.propose(
                &NewDecision {
                    target,
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
        })
        .await
        .unwrap();
    r.changed();
    id
}

async fn revoke(r: &Responders, id: DecisionId) {
    r.ledger(move |l| {
        l.transition(
            id,
            DecisionState::Revoked,
            "alice",
            spoor_responders::ledger::now(),
            Some("test"),
        )
    })
    .await
    .unwrap();
    r.changed();
}

async fn get(s: &Running, token: Option<&str>, query: &str) -> reqwest::Response {
    let mut req = s
        .http
        .get(s.url(&format!("/api/v1/agent/decisions{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn stream(s: &Running, query: &str) -> Value {
    let r = get(s, Some(AGENT_TOKEN), query).await;
    assert_eq!(r.status(), 200, "GET decisions{query}");
    r.json().await.unwrap()
}

async fn report(s: &Running, token: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url("/api/v1/agent/report"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ids(v: &Value) -> Vec<(i64, String)> {
    v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_i64().unwrap(),
                d["state"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_precisely() {
    let s = start_with(with_responders).await;
    let r = get(&s, None, "").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = get(&s, Some(TOKEN), "").await;
    assert_eq!(r.status(), 403, "a sensor token is not an agent token");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_an_agent_token");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("[[server.agent]]")
    );
    let r = get(&s, Some("nope-not-a-token"), "").await;
    assert_eq!(r.status(), 401);
    let r = report(&s, TOKEN, json!({"backend": "pf", "object": "spoor"})).await;
    assert_eq!(r.status(), 403);
    assert_eq!(get(&s, Some(AGENT_TOKEN), "").await.status(), 200);
    // the agent token is no sensor token either
    assert_eq!(
        s.ingest(AGENT_TOKEN, &batch("s1", vec![])).await.status(),
        401
    );
    let r = get(&s, Some(AGENT_TOKEN), "?cursor=-1").await;
    assert_eq!(r.status(), 400);
    let r = get(&s, Some(AGENT_TOKEN), "?cursor=1&wait=soon").await;
    assert_eq!(r.status(), 400);
    s.server.stop().await;

    // no [respond]: the endpoints say so
    let s = start_with(|c| {
        with_responders(c);
        c.respond = None;
    })
    .await;
    let r = get(&s, Some(AGENT_TOKEN), "").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("not configured"));
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_changes_after_the_cursor() {
    let s = start_with(with_responders).await;
    let r = responders(&s);
    let snap = stream(&s, "").await;
    assert_eq!(snap["snapshot"], true);
    assert!(ids(&snap).is_empty());
    let a = approved(&r, "198.51.100.7").await;
    let snap = stream(&s, "").await;
    assert_eq!(ids(&snap), [(a.0, "approved".to_string())]);
    let c1 = snap["cursor"].as_i64().unwrap();
    // nothing after the cursor: an empty answer at the same cursor (no wait asked)
    let none = stream(&s, &format!("?cursor={c1}")).await;
    assert_eq!(none["snapshot"], false);
    assert!(ids(&none).is_empty());
    assert_eq!(none["cursor"], c1);
    let b = approved(&r, "2001:db8:77::/48").await;
    revoke(&r, a).await;
    let ch = stream(&s, &format!("?cursor={c1}")).await;
    assert_eq!(
        ids(&ch),
        [(b.0, "approved".to_string()), (a.0, "revoked".to_string())]
    );
    let c2 = ch["cursor"].as_i64().unwrap();
    assert!(c2 > c1);
    assert!(ids(&stream(&s, &format!("?cursor={c2}&wait=0")).await).is_empty());
    // a cursor ahead of the ledger (a restored database) gets a snapshot
    let ahead = stream(&s, &format!("?cursor={}", c2 + 1000)).await;
    assert_eq!(ahead["snapshot"], true);
    assert_eq!(ids(&ahead), [(b.0, "approved".to_string())]);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_a_new_decision_from_an_event() {
    let s = start_with(with_responders).await;
    let cursor = stream(&s, "").await["cursor"].as_i64().unwrap();
    let base = s.base.clone();
    let poll = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!(
                "{base}/api/v1/agent/decisions?cursor={cursor}&wait=60"
            ))
            .bearer_auth(AGENT_TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev = event(
        1,
        "s1",
        "10.0.0.5",
        "198.51.100.23",
        "198.51.100.23",
        Severity::High,
        spoor_responders::ledger::now().0,
    );
    assert_eq!(s.ingest(TOKEN, &batch("s1", vec![ev])).await.status(), 200);
    // the answer holds the decision: it came from the wake, not from the 60 s timeout
    // (which answers with no decisions)
    let answer = poll.await.unwrap();
    assert_eq!(answer["snapshot"], false);
    let d = &answer["decisions"][0];
    assert_eq!(d["target"], "198.51.100.23/32");
    assert_eq!(d["state"], "approved");
    assert_eq!(d["reason"]["rule"], "malware");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_activate_and_refusals_revoke() {
    let s = start_with(with_responders).await;
    let r = responders(&s);
    let a = approved(&r, "198.51.100.8").await;
    let b = approved(&r, "198.51.100.9").await;
    let ack: Value = report(
        &s,
        AGENT_TOKEN,
        json!({
            "backend": "nftables", "object": "inet spoor", "entries": 1, "capacity": 65536,
            "activated": [a.0, 999_999],
            "refused": [{"id": b.0, "reason": "refused by the agent's guard: allowlisted: gateway"}],
        }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(ack, json!({"activated": [a.0], "revoked": [b.0]}));
    let (da, db, audit_b) = r
        .ledger(move |l| Ok((l.get(a)?, l.get(b)?, l.audit(b)?)))
        .await
        .unwrap();
    assert_eq!(da.state, DecisionState::Active);
    assert_eq!(da.actor, "agent:gw1");
    assert_eq!(db.state, DecisionState::Revoked);
    let last = audit_b.last().unwrap();
    assert_eq!(last.actor, "agent:gw1");
    assert!(
        last.note
            .as_deref()
            .unwrap()
            .contains("allowlisted: gateway")
    );
    // the same report again changes nothing (idempotent)
    let ack: Value = report(
        &s,
        AGENT_TOKEN,
        json!({"backend": "nftables", "object": "inet spoor", "entries": 1, "capacity": 65536,
               "activated": [a.0], "refused": [{"id": b.0, "reason": "x"}], "error": "nft: boom"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(ack, json!({"activated": [], "revoked": []}));
    let status = r.statuses();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].reporter, "gw1");
    assert_eq!(status[0].backend, "nftables");
    assert_eq!(status[0].object, "inet spoor");
    assert_eq!(status[0].capacity, 65536);
    assert_eq!(status[0].last_error.as_deref(), Some("nft: boom"));
    // bad reports are refused precisely
    let bad = report(&s, AGENT_TOKEN, json!({"backend": "nftables"})).await;
    assert_eq!(bad.status(), 422);
    s.server.stop().await;
}

/// A dry-run backend whose contents the test can see.
#[derive(Debug)]
struct Observed {
    inner: DryRunBackend,
    seen: Arc<Mutex<BTreeSet<IpNet>>>,
}

impl Backend for Observed {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn apply(&mut self, changes: &Changes) -> Result<(), BackendError> {
        self.inner.apply(changes)?;
        *self.seen.lock().unwrap() = self.inner.list()?;
        Ok(())
    }
    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        self.inner.list()
    }
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

/// Poll `f` until it holds; panics after `limit` (a bound against hanging, not a timing
/// assertion).
async fn eventually(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < end, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_follows_the_server_and_keeps_its_blocks_while_it_is_down() {
    let s = start_with(with_responders).await;
    let data_dir = s._dir.path().to_path_buf();
    let listen = s.server.local_addr;
    let agent_dir = tempfile::tempdir().unwrap();
    std::fs::write(agent_dir.path().join("token"), format!("{AGENT_TOKEN}\n")).unwrap();
    let remote_cfg = RemoteConfig {
        server: s.base.clone(),
        token_file: agent_dir.path().join("token"),
        trust: ServerTrust::System,
        wait: spoor_core::Duration::from_secs(2),
        timeout: spoor_core::Duration::from_secs(2),
        backoff_min: spoor_core::Duration(Duration::from_millis(100)),
        backoff_max: spoor_core::Duration(Duration::from_millis(400)),
        state_file: agent_dir.path().join("state.json"),
    };
    let agent_respond: RespondConfig = RawRespond::default()
        .validate(
            &spoor_core::KeyPath::root().key("respond"),
            agent_dir.path(),
            agent_dir.path(),
        )
        .unwrap();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let agent_thread = {
        let backend = Observed {
            inner: DryRunBackend::new(),
            seen: Arc::clone(&seen),
        };
        let (respond_cfg, remote_cfg) = (agent_respond.clone(), remote_cfg.clone());
        std::thread::spawn(move || {
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
    let holds = |t: &str| {
        let t = parse_target(t).unwrap();
        let seen = Arc::clone(&seen);
        move || seen.lock().unwrap().contains(&t)
    };
    let limit = Duration::from_secs(20);

    // approved → applied, and reported active by the agent
    let r = responders(&s);
    let a = approved(&r, "198.51.100.40").await;
    let held = holds("198.51.100.40");
    eventually("the agent applies the decision", limit, async || held()).await;
    let r2 = Arc::clone(&r);
    eventually("the decision becomes active", limit, async || {
        r2.ledger(move |l| l.get(a)).await.unwrap().state == DecisionState::Active
    })
    .await;
    assert_eq!(
        r.ledger(move |l| l.get(a)).await.unwrap().actor,
        "agent:gw1"
    );
    eventually("the agent reports its backend", limit, async || {
        r2.statuses()
            .iter()
            .any(|st| st.reporter == "gw1" && st.entries == 1)
    })
    .await;

    // revoked → removed
    let b = approved(&r, "198.51.100.41").await;
    let held_b = holds("198.51.100.41");
    eventually("the second decision is applied", limit, async || held_b()).await;
    revoke(&r, a).await;
    eventually("the revoked decision is removed", limit, async || !held()).await;

    // the server goes away: the agent keeps enforcing what it knows
    s.server.stop().await;
    drop(r);
    drop(r2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(held_b(), "kept while the server is unreachable");
    assert!(!held());

    // the server comes back on the same address: the agent resumes
    let mut c = config(&data_dir);
    with_responders(&mut c);
    c.listen = listen;
    let server = spoor_server::Server::start(c).await.unwrap();
    let r = Arc::clone(server.responders().unwrap());
    revoke(&r, b).await;
    eventually(
        "the agent follows the restarted server",
        limit,
        async || !held_b(),
    )
    .await;
    approved(&r, "2001:db8:99::/64").await;
    let held_d = holds("2001:db8:99::/64");
    eventually(
        "a new decision after the restart is applied",
        limit,
        async || held_d(),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    agent_thread.join().unwrap();
    server.stop().await;
    drop(s._dir);
}
