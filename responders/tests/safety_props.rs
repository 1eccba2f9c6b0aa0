//! The safety property: whatever the events, rules, mode and hand-made decisions (even
//! decisions written straight into the ledger, bypassing the policy), no allowlisted
//! address (built-ins, this host's real addresses, gateways and resolvers, private
//! ranges, infrastructure, configured) is ever written to a backend, no prefix shorter
//! than allowed is written, no 60 s window sees more additions than the rate guard allows,
//! and the backend never holds more than the size guard allows.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use proptest::prelude::*;
use spoor_core::{Context, Duration, Event, EventId, EventKind, Micros, Proto, Severity};
use spoor_responders::allowlist::{AllowSource, overlaps};
use spoor_responders::decision::{NewDecision, Reason};
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::policy::{Action, Mode, Policy, PolicySettings, Rule};
use spoor_responders::reconcile::reconcile;
use spoor_responders::{
    Allowlist, Backend, BackendError, Changes, DecisionState, GuardedBackend, Guards, HostFacts,
    system,
};

/// Every write a backend received, with the pass time.
#[derive(Debug, Default)]
struct Record {
    adds: Vec<(Micros, IpNet)>,
    max_held: usize,
}

#[derive(Debug)]
struct RecordingBackend {
    held: BTreeSet<IpNet>,
    capacity: usize,
    clock: Arc<Mutex<Micros>>,
    record: Arc<Mutex<Record>>,
}

impl Backend for RecordingBackend {
    fn name(&self) -> String {
        "recording".into()
    }
    fn apply(&mut self, c: &Changes) -> Result<(), BackendError> {
        let now = *self.clock.lock().unwrap();
        let mut r = self.record.lock().unwrap();
        for t in &c.remove {
            self.held.remove(t);
        }
        for t in &c.add {
            r.adds.push((now, *t));
            self.held.insert(*t);
        }
        r.max_held = r.max_held.max(self.held.len());
        Ok(())
    }
    fn list(&mut self) -> Result<BTreeSet<IpNet>, BackendError> {
        Ok(self.held.clone())
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
}

fn facts() -> HostFacts {
    let mut f = system::discover();
    f.addresses.push("198.51.100.1".parse().unwrap());
    f.gateways.push("198.51.100.254".parse().unwrap());
    f.resolvers.push("2001:db8:53::53".parse().unwrap());
    f
}

fn allowlist(f: &HostFacts, block_private: bool) -> Allowlist {
    let mut a = Allowlist::new(block_private).with_host(f);
    a.push(
        "203.0.113.10/32".parse().unwrap(),
        AllowSource::Infrastructure("server".into()),
    );
    a.push("192.0.2.0/28".parse().unwrap(), AllowSource::Configured);
    a
}

/// Addresses to draw from: allowlisted ones of every kind and blockable public ones.
fn address_pool(f: &HostFacts) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "169.254.3.4",
        "fe80::1",
        "224.0.0.251",
        "ff02::fb",
        "255.255.255.255",
        "0.0.0.0",
        "::",
        "::ffff:198.51.100.77",
        "10.0.0.5",
        "172.20.1.1",
        "192.168.1.1",
        "100.64.0.9",
        "fd12::5",
        "203.0.113.10",
        "192.0.2.3",
        "192.0.2.15",
        "198.51.100.1",
        "198.51.100.254",
        "2001:db8:53::53",
        // blockable
        "198.51.100.7",
        "198.51.100.77",
        "203.0.113.99",
        "192.0.2.16",
        "2001:db8:1::1",
        "2001:db8:2::7",
        "45.33.32.156",
        "185.220.101.4",
        "2a00:1450::1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    v.extend(f.addresses.iter().chain(&f.gateways).chain(&f.resolvers));
    v
}

const KINDS: [EventKind; 6] = [
    EventKind::Ip,
    EventKind::IpPort,
    EventKind::Dns,
    EventKind::Url,
    EventKind::Sni,
    EventKind::Heuristic,
];

#[derive(Debug, Clone)]
struct EventSpec {
    kind: usize,
    severity: u8,
    offender: Option<usize>,
    answers: Vec<usize>,
    count: u64,
    dt_secs: u64,
}

#[derive(Debug, Clone)]
struct RuleSpec {
    kinds: Vec<usize>,
    min_count: u64,
    action: u8,
    quarantine: bool,
}

#[derive(Debug, Clone)]
struct ManualSpec {
    addr: usize,
    prefix: u8,
}

fn event_spec() -> impl Strategy<Value = EventSpec> {
    (
        0..KINDS.len(),
        0u8..3,
        proptest::option::of(0usize..64),
        proptest::collection::vec(0usize..64, 0..4),
        1u64..5,
        0u64..90,
    )
        .prop_map(
            |(kind, severity, offender, answers, count, dt_secs)| EventSpec {
                kind,
                severity,
                offender,
                answers,
                count,
                dt_secs,
            },
        )
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        proptest::collection::vec(0..KINDS.len(), 0..3),
        1u64..3,
        0u8..3,
        any::<bool>(),
    )
        .prop_map(|(kinds, min_count, action, quarantine)| RuleSpec {
            kinds,
            min_count,
            action,
            quarantine,
        })
}

fn manual_spec() -> impl Strategy<Value = ManualSpec> {
    (0usize..64, 0u8..=128).prop_map(|(addr, prefix)| ManualSpec { addr, prefix })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_allowlisted_address_is_ever_written_and_guards_hold(
        events in proptest::collection::vec(event_spec(), 1..60),
        rules in proptest::collection::vec(rule_spec(), 1..4),
        manual in proptest::collection::vec(manual_spec(), 0..12),
        mode in 0u8..4,
        block_private in any::<bool>(),
        max_new_per_minute in 1usize..6,
        max_active in 1usize..10,
        capacity in 1usize..10,
    ) {
        let f = facts();
        let pool = address_pool(&f);
        let pick = |i: usize| pool[i % pool.len()];
        let guards = Guards { min_prefix_v4: 24, min_prefix_v6: 48, max_new_per_minute, max_active };
        let rules: Vec<Rule> = rules.iter().enumerate().map(|(i, r)| Rule {
            name: format!("r{i}"),
            kinds: r.kinds.iter().map(|k| KINDS[*k]).collect(),
            min_severity: None,
            references: vec![],
            heuristics: vec![],
            min_count: r.min_count,
            window: Duration::from_secs(600),
            action: [Action::Auto, Action::Approve, Action::DryRun][r.action as usize],
            ladder: vec![Duration::from_secs(120), Duration::from_secs(3600)],
            quarantine_internal: r.quarantine,
        }).collect();
        let mode = [Mode::Off, Mode::DryRun, Mode::Approve, Mode::Auto][mode as usize];
        let mut policy = Policy::new(
            PolicySettings {
                mode,
                rules,
                local_networks: vec!["10.0.0.0/8".parse().unwrap(), "198.51.100.0/24".parse().unwrap()],
                max_ttl: Duration::from_secs(7200),
                repeat_window: Duration::from_secs(86400),
                guards,
            },
            allowlist(&f, block_private),
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        ledger::migrate(&conn).unwrap();
        let l = Ledger::new(&conn);
        let clock = Arc::new(Mutex::new(Micros(1_700_000_000_000_000)));
        let record = Arc::new(Mutex::new(Record::default()));
        let mut backend = GuardedBackend::new(
            Box::new(RecordingBackend {
                held: BTreeSet::new(),
                capacity,
                clock: clock.clone(),
                record: record.clone(),
            }),
            allowlist(&f, block_private),
            guards,
        );
        // Decisions written straight into the ledger, bypassing every check.
        for m in &manual {
            let a = pick(m.addr);
            let net = IpNet::new(a, m.prefix.min(if a.is_ipv4() { 32 } else { 128 })).unwrap().trunc();
            let d = l.propose(&NewDecision {
                target: net,
                reason: Reason { rule: "manual".into(), events: vec![], note: None },
                ttl_secs: 300,
                dry_run: false,
            }, "mallory", *clock.lock().unwrap()).unwrap();
            l.transition(d.id, DecisionState::Approved, "mallory", *clock.lock().unwrap(), None).unwrap();
        }
        for (i, e) in events.iter().enumerate() {
            let now = {
                let mut c = clock.lock().unwrap();
                *c = Micros(c.0 + e.dt_secs as i64 * 1_000_000);
                *c
            };
            let event = Event {
                id: EventId(i as u128 + 1),
                time: now,
                sensor: "s".into(),
                src: pick(e.offender.unwrap_or(0)),
                src_port: None,
                dst: pick(1),
                dst_port: None,
                proto: Proto::TCP,
                kind: KINDS[e.kind],
                trail: "t".into(),
                info: "i".into(),
                reference: "(static)".into(),
                severity: [Severity::Low, Severity::Medium, Severity::High][e.severity as usize],
                offender: e.offender.map(pick),
                answers: e.answers.iter().map(|a| pick(*a)).collect(),
                count: e.count,
                first_seen: now,
                last_seen: now,
                context: Context::default(),
            };
            policy.evaluate(&event, &l, now).unwrap();
            // An admin who approves everything.
            for d in l.list(&[DecisionState::Proposed]).unwrap() {
                l.transition(d.id, DecisionState::Approved, "admin", now, None).unwrap();
            }
            reconcile(&l, &mut backend, now).unwrap();
        }

        let full = allowlist(&f, block_private);
        let r = record.lock().unwrap();
        for (t, net) in &r.adds {
            if let Some(entry) = full.entries().iter().find(|e| overlaps(&e.net, net)) {
                prop_assert!(false, "{net} written at {t:?} though allowlisted by {entry}");
            }
            let min = if net.addr().is_ipv4() { 24 } else { 48 };
            prop_assert!(net.prefix_len() >= min, "{net} is shorter than /{min}");
        }
        for (t, _) in &r.adds {
            let in_window = r.adds.iter().filter(|(u, _)| u.0 <= t.0 && u.0 > t.0 - 60_000_000).count();
            prop_assert!(in_window <= max_new_per_minute, "{in_window} adds within 60 s, limit {max_new_per_minute}");
        }
        prop_assert!(r.max_held <= max_active.min(capacity), "held {} > limit", r.max_held);
    }
}
