//! The responders inside the server: the policy on every newly stored event (HTTP ingest
//! and `ingest_local`), never on replays; the allowlist; the expiry timer; the in-process
//! backend (dry-run) applying what the policy decided.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use spoor_core::{Duration as CfgDuration, Event, KeyPath, Severity};
use spoor_responders::config::{RawRespond, RawRule};
use spoor_responders::policy::{Action, Mode};
use spoor_responders::{Decision, DecisionState};
use spoor_server::config::ServerConfig;
use spoor_server::respond::Responders;
use spoor_server::respond::in_process::SERVER_REPORTER;

/// Long enough for the slowest CI machine; the tests wait for a condition, not a time.
const WAIT: Duration = Duration::from_secs(30);
/// Offenders in documentation ranges: never routed, never allowlisted by default.
const BAD: &str = "203.0.113.7";
const BAD2: &str = "198.51.100.20";

fn rule(name: &str, action: Action, min_count: u64, ttl: Option<Vec<CfgDuration>>) -> RawRule {
    RawRule {
        name: Some(name.into()),
        kinds: vec![],
        min_severity: Some(Severity::High),
        references: vec![],
        heuristics: vec![],
        min_count,
        window: CfgDuration::from_secs(600),
        action,
        ttl,
        quarantine_internal: false,
        enabled: true,
    }
}

fn respond(c: &mut ServerConfig, f: impl FnOnce(&mut RawRespond)) {
    let mut raw = RawRespond {
        mode: Mode::Auto,
        ..RawRespond::default()
    };
    f(&mut raw);
    c.respond = Some(
        raw.validate(&KeyPath::root().key("respond"), &c.data_dir, &c.data_dir)
            .expect("valid [respond]"),
    );
}

fn now() -> i64 {
    spoor_responders::ledger::now().0
}

/// A high-severity IP hit whose offender is `offender`.
fn hit(n: u128, offender: &str) -> Event {
    event(
        n,
        "s1",
        "198.18.0.5",
        offender,
        offender,
        Severity::High,
        now(),
    )
}

fn responders(r: &Running) -> &Arc<Responders> {
    r.server.responders().expect("responders configured")
}

async fn decisions(r: &Running) -> Vec<Decision> {
    responders(r).ledger(|l| l.list(&[])).await.unwrap()
}

/// Poll the ledger until `pred` holds for its decisions; panics with them after [`WAIT`].
async fn wait_for(r: &Running, what: &str, pred: impl Fn(&[Decision]) -> bool) -> Vec<Decision> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ds = decisions(r).await;
        if pred(&ds) {
            return ds;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {ds:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn owned(r: &Running) -> Vec<String> {
    responders(r)
        .ledger(|l| l.owned("dry-run"))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

async fn ack(r: &Running, events: Vec<Event>) -> serde_json::Value {
    let resp = r.ingest(TOKEN, &batch("s1", events)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_rule_blocks_in_the_in_process_backend_with_its_ttl() {
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.server_applies = true;
            raw.rule = vec![rule(
                "malware",
                Action::Auto,
                1,
                Some(vec![CfgDuration::from_secs(7200)]),
            )];
        })
    })
    .await;
    let before = now();
    ack(&r, vec![hit(1, BAD)]).await;
    let ds = wait_for(&r, "an active decision", |ds| {
        ds.iter().any(|d| d.state == DecisionState::Active)
    })
    .await;
    assert_eq!(ds.len(), 1);
    let d = &ds[0];
    assert_eq!(d.target.to_string(), format!("{BAD}/32"));
    assert_eq!(d.reason.rule, "malware");
    assert_eq!(d.ttl_secs, 7200);
    assert!(!d.dry_run);
    let expires = d.expires.expect("an approved decision expires").0;
    let ttl = expires - before;
    assert!(
        (7_200_000_000..7_200_000_000 + WAIT.as_micros() as i64).contains(&ttl),
        "expires {ttl} µs after ingest"
    );
    assert_eq!(owned(&r).await, [format!("{BAD}/32")]);
    let audit = responders(&r).ledger({
        let id = d.id;
        move |l| l.audit(id)
    });
    let steps: Vec<_> = audit
        .await
        .unwrap()
        .iter()
        .map(|a| (a.to, a.actor.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (DecisionState::Proposed, "policy".to_string()),
            (DecisionState::Approved, "policy".to_string()),
            (DecisionState::Active, "agent".to_string()),
        ]
    );
    // The server reports its backend.
    let deadline = Instant::now() + WAIT;
    loop {
        let st = responders(&r).statuses();
        if let Some(s) = st.iter().find(|s| s.reporter == SERVER_REPORTER)
            && s.entries == 1
        {
            assert_eq!(s.backend, "dry-run");
            assert_eq!(s.object, "dry-run");
            assert!(s.last_error.is_none());
            assert!(s.last_sync.0 >= before);
            assert_eq!(s.capacity, spoor_responders::config::DEFAULT_MAX_ACTIVE);
            break;
        }
        assert!(Instant::now() < deadline, "no status with 1 entry: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = r.server.metrics();
    assert_eq!(
        m.respond_decisions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approve_rule_is_proposed_and_not_applied() {
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.server_applies = true;
            raw.rule = vec![rule("scanner", Action::Approve, 1, None)];
        })
    })
    .await;
    ack(&r, vec![hit(1, BAD)]).await;
    let ds = wait_for(&r, "a decision", |ds| !ds.is_empty()).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].state, DecisionState::Proposed);
    assert_eq!(ds[0].expires, None);
    // The ledger change woke the in-process backend; it must not have applied anything.
    let deadline = Instant::now() + WAIT;
    while !responders(&r)
        .statuses()
        .iter()
        .any(|s| s.reporter == SERVER_REPORTER && s.last_sync.0 >= ds[0].created.0)
    {
        assert!(Instant::now() < deadline, "the backend never ran a pass");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(owned(&r).await.is_empty());
    assert_eq!(decisions(&r).await[0].state, DecisionState::Proposed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_makes_no_decision_and_no_count() {
    let r = start_with(|c| {
        respond(c, |raw| {
            // Two sightings needed: a replay of the first must not be the second.
            raw.rule = vec![rule("twice", Action::Auto, 2, None)];
        })
    })
    .await;
    let first = vec![hit(1, BAD), hit(2, BAD2)];
    assert_eq!(
        ack(&r, first.clone()).await,
        serde_json::json!({"accepted": 2, "duplicates": 0})
    );
    assert_eq!(
        ack(&r, first.clone()).await,
        serde_json::json!({"accepted": 0, "duplicates": 2})
    );
    // A new sighting of BAD2 only: BAD2 reaches two, BAD stays at one.
    ack(&r, vec![hit(3, BAD2)]).await;
    let ds = wait_for(&r, "the decision on BAD2", |ds| !ds.is_empty()).await;
    // Everything before hit 3 was evaluated before it (one queue, in order).
    assert_eq!(ds.len(), 1, "{ds:#?}");
    assert_eq!(ds[0].target.to_string(), format!("{BAD2}/32"));
    assert_eq!(ds[0].state, DecisionState::Approved);
    // Replaying everything again changes nothing.
    ack(&r, vec![hit(1, BAD), hit(2, BAD2), hit(3, BAD2)]).await;
    ack(&r, vec![hit(4, BAD2)]).await;
    let m = r.server.metrics();
    let deadline = Instant::now() + WAIT;
    while m.respond_events.load(std::sync::atomic::Ordering::Relaxed) < 4 {
        assert!(Instant::now() < deadline, "hit 4 never evaluated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Exactly the four new events were evaluated, none of the replays.
    assert_eq!(
        m.respond_events.load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    let ds = decisions(&r).await;
    assert_eq!(ds.len(), 1, "{ds:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_offenders_never_become_decisions() {
    let infra = "192.0.2.44";
    let configured = "198.51.100.0/24";
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.server_applies = true;
            raw.local_networks = vec![];
            raw.infrastructure = vec![infra.into()];
            raw.allow = vec![configured.into()];
            raw.rule = vec![rule("any", Action::Auto, 1, None)];
        })
    })
    .await;
    let listen = r.server.local_addr.ip();
    let a = responders(&r).allowlist();
    assert!(
        a.entries()
            .iter()
            .any(|e| e.net.addr() == listen && e.source.to_string().contains("listen address")),
        "the server's own address is on the allowlist: {:?}",
        a.entries()
    );
    let offenders = [
        listen.to_string(),     // the server itself
        "10.1.2.3".into(),      // private, block_private = false
        "172.16.9.9".into(),    // private
        infra.into(),           // infrastructure
        "198.51.100.77".into(), // [respond] allow
        "169.254.1.1".into(),   // link-local
        "224.0.0.251".into(),   // multicast
        "fd00::1".into(),       // unique local
    ];
    let events: Vec<Event> = offenders
        .iter()
        .enumerate()
        .map(|(i, o)| hit(i as u128 + 1, o))
        .collect();
    ack(&r, events).await;
    // A sentinel after them: once it is decided, every earlier event was evaluated.
    ack(&r, vec![hit(100, BAD)]).await;
    let ds = wait_for(&r, "the sentinel's decision", |ds| !ds.is_empty()).await;
    assert_eq!(ds.len(), 1, "{ds:#?}");
    assert_eq!(ds[0].target.to_string(), format!("{BAD}/32"));
    let m = r.server.metrics();
    assert_eq!(
        m.respond_refused.load(std::sync::atomic::Ordering::Relaxed),
        offenders.len() as u64
    );
    wait_for(&r, "the sentinel active", |ds| {
        ds[0].state == DecisionState::Active
    })
    .await;
    assert_eq!(owned(&r).await, [format!("{BAD}/32")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_timer_ends_an_active_block_and_the_backend_drops_it() {
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.server_applies = true;
            // Passes only at start and on changes: the expiry must come from the timer.
            raw.reconcile_interval = CfgDuration::from_secs(3600);
            raw.rule = vec![rule(
                "short",
                Action::Auto,
                1,
                Some(vec![CfgDuration::from_secs(2)]),
            )];
        })
    })
    .await;
    ack(&r, vec![hit(1, BAD)]).await;
    wait_for(&r, "an active decision", |ds| {
        ds.iter().any(|d| d.state == DecisionState::Active)
    })
    .await;
    assert_eq!(owned(&r).await, [format!("{BAD}/32")]);
    let ds = wait_for(&r, "the decision expired", |ds| {
        ds.iter().all(|d| d.state == DecisionState::Expired)
    })
    .await;
    let id = ds[0].id;
    let audit = responders(&r).ledger(move |l| l.audit(id)).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.actor.as_str()),
        (Some(DecisionState::Active), DecisionState::Expired, "ttl")
    );
    // The change woke the backend, which removed Spoor's entry.
    let deadline = Instant::now() + WAIT;
    while !owned(&r).await.is_empty() {
        assert!(Instant::now() < deadline, "the expired entry stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ingest_feeds_the_policy_too() {
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.rule = vec![rule("up", Action::Approve, 1, None)]
        })
    })
    .await;
    let b = batch("s1", vec![hit(1, BAD)]);
    let a = r
        .server
        .ingest_local(b.status.clone(), b.events.clone())
        .await
        .unwrap();
    assert_eq!(a.accepted, 1);
    let ds = wait_for(&r, "a decision", |ds| !ds.is_empty()).await;
    assert_eq!(ds[0].state, DecisionState::Proposed);
    let a = r
        .server
        .ingest_local(b.status.clone(), b.events.clone())
        .await
        .unwrap();
    assert_eq!(a.duplicates, 1);
    ack(&r, vec![hit(2, BAD2)]).await;
    let ds = wait_for(&r, "the second decision", |ds| ds.len() >= 2).await;
    assert_eq!(ds.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_respond_there_are_no_responders() {
    let r = start().await;
    assert!(r.server.responders().is_none());
    ack(&r, vec![hit(1, BAD)]).await;
}

/// Ingest → decision → entry in the (dry-run) in-process backend, in ms. A measurement,
/// not an assertion: `cargo test -p spoor-server --test responders -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn measure_ingest_to_block_latency() {
    let r = start_with(|c| {
        respond(c, |raw| {
            raw.server_applies = true;
            raw.max_new_per_minute = 100_000;
            raw.rule = vec![rule("auto", Action::Auto, 1, None)];
        })
    })
    .await;
    let mut samples = Vec::new();
    for i in 0..50u128 {
        let target = format!("203.0.113.{}", i + 1);
        let started = Instant::now();
        ack(&r, vec![hit(i + 1, &target)]).await;
        let want = format!("{target}/32");
        loop {
            if owned(&r).await.contains(&want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "ingest → active in the dry-run backend, {} samples: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1])
    );
}

/// The store's follower (what the policy reads) misses nothing when it is slow — the
/// writer waits for it — and never sees a replayed event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_of_new_events_is_lossless_and_skips_replays() {
    const QUEUE: usize = 4;
    const EVENTS: u128 = 300;
    let r = start().await;
    let rx = r.server.store().follow(QUEUE);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Slow on purpose for the first events: the queue fills and the writer must wait.
        while let Ok(e) = rx.recv_timeout(WAIT) {
            if seen.len() < 20 {
                std::thread::sleep(Duration::from_millis(5));
            }
            seen.push(e.id.0);
            if seen.len() as u128 == EVENTS {
                // Anything after this would be a replay delivered by mistake.
                if let Ok(extra) = rx.recv_timeout(Duration::from_millis(500)) {
                    seen.push(extra.id.0);
                }
                break;
            }
        }
        seen
    });
    let events: Vec<Event> = (1..=EVENTS)
        .map(|n| hit(n, &format!("203.0.113.{}", n % 250 + 1)))
        .collect();
    let (a, b) = events.split_at(EVENTS as usize / 2);
    ack(&r, a.to_vec()).await;
    ack(&r, a.to_vec()).await; // replay
    ack(&r, b.to_vec()).await;
    ack(&r, events.clone()).await; // replay of everything
    let seen = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    let want: Vec<u128> = (1..=EVENTS).collect();
    assert_eq!(seen, want, "every new event once, in order, and no replay");
}
