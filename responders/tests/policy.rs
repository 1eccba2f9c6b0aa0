//! Policy: targets, counting windows, local networks, modes and actions, escalation.

use ipnet::IpNet;
use spoor_core::{
    Context, Duration, Event, EventId, EventKind, HeuristicContext, Micros, Proto, Severity,
};
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::policy::{Action, Mode, Outcome, Policy, PolicySettings, Rule};
use spoor_responders::{Allowlist, DecisionState, Guards, Refusal};

const H: u64 = 3600;

fn rule(name: &str) -> Rule {
    Rule {
        name: name.into(),
        kinds: vec![],
        min_severity: None,
        references: vec![],
        heuristics: vec![],
        min_count: 1,
        window: Duration::from_secs(600),
        action: Action::Auto,
        ladder: vec![
            Duration::from_secs(H),
            Duration::from_secs(6 * H),
            Duration::from_secs(24 * H),
        ],
        quarantine_internal: false,
    }
}

fn policy(mode: Mode, rules: Vec<Rule>) -> Policy {
    Policy::new(
        PolicySettings {
            mode,
            rules,
            local_networks: vec!["10.0.0.0/8".parse().unwrap()],
            max_ttl: Duration::from_secs(12 * H),
            repeat_window: Duration::from_secs(30 * 24 * H),
            guards: Guards {
                min_prefix_v4: 24,
                min_prefix_v6: 48,
                max_new_per_minute: 100,
                max_active: 100,
            },
        },
        // private ranges blockable, so that local_networks alone decides about 10/8
        Allowlist::new(true),
    )
}

fn event(kind: EventKind, offender: &str, answers: &[&str], secs: i64) -> Event {
    let t = Micros(secs * 1_000_000);
    Event {
        id: EventId(secs as u128 + 1),
        time: t,
        sensor: "s1".into(),
        src: "10.0.0.5".parse().unwrap(),
        src_port: Some(40000),
        dst: offender.parse().unwrap(),
        dst_port: Some(443),
        proto: Proto::TCP,
        kind,
        trail: "evil.example".into(),
        info: "emotet (malware)".into(),
        reference: "abuse.ch feodotracker".into(),
        severity: Severity::High,
        offender: Some(offender.parse().unwrap()),
        answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
        count: 1,
        first_seen: t,
        last_seen: t,
        context: Context::default(),
    }
}

fn decided(out: &[Outcome]) -> Vec<(String, DecisionState, bool, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Outcome::Decided(d) => Some((d.target.to_string(), d.state, d.dry_run, d.ttl_secs)),
            _ => None,
        })
        .collect()
}

fn db() -> rusqlite::Connection {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    ledger::migrate(&c).unwrap();
    c
}

#[test]
fn name_hits_target_their_answers_others_their_offender() {
    let c = db();
    let l = Ledger::new(&c);
    let mut p = policy(Mode::Auto, vec![rule("all")]);
    let now = Micros(1_000_000);
    let dns = event(
        EventKind::Dns,
        "10.0.0.5",
        &["203.0.113.9", "2001:db8:9::1", "203.0.113.9"],
        1,
    );
    let got = decided(&p.evaluate(&dns, &l, now).unwrap());
    assert_eq!(
        got,
        [
            ("203.0.113.9/32".into(), DecisionState::Approved, false, H),
            (
                "2001:db8:9::1/128".into(),
                DecisionState::Approved,
                false,
                H
            ),
        ]
    );
    let ip = event(EventKind::Ip, "198.51.100.4", &["203.0.113.77"], 2);
    let got = decided(&p.evaluate(&ip, &l, now).unwrap());
    assert_eq!(got[0].0, "198.51.100.4/32");
    assert_eq!(got.len(), 1);
}

#[test]
fn min_count_within_the_window() {
    let c = db();
    let l = Ledger::new(&c);
    let mut r = rule("scan");
    r.min_count = 3;
    r.kinds = vec![EventKind::Heuristic];
    r.heuristics = vec!["port_scan".into()];
    let mut p = policy(Mode::Auto, vec![r]);
    let now = Micros(0);
    let scan = |secs| {
        let mut e = event(EventKind::Heuristic, "198.51.100.4", &[], secs);
        e.context.heuristic = Some(HeuristicContext {
            name: "port_scan".into(),
            reason: "12 ports".into(),
        });
        e
    };
    // a heuristic of another name does not match
    let mut other = scan(0);
    other.context.heuristic.as_mut().unwrap().name = "dga".into();
    assert!(p.evaluate(&other, &l, now).unwrap().is_empty());
    assert!(matches!(
        p.evaluate(&scan(0), &l, now).unwrap()[..],
        [Outcome::Counting { seen: 1, .. }]
    ));
    // 700 s later the first one is out of the 600 s window
    assert!(matches!(
        p.evaluate(&scan(700), &l, now).unwrap()[..],
        [Outcome::Counting { seen: 1, .. }]
    ));
    let mut burst = scan(710);
    burst.count = 2; // condensed repeats count
    assert_eq!(decided(&p.evaluate(&burst, &l, now).unwrap()).len(), 1);
    // already open: no second decision
    let mut again = scan(720);
    again.count = 5;
    assert!(matches!(
        p.evaluate(&again, &l, now).unwrap()[..],
        [Outcome::Open { .. }]
    ));
}

#[test]
fn local_networks_need_quarantine_and_the_allowlist_always_wins() {
    let c = db();
    let l = Ledger::new(&c);
    let now = Micros(0);
    let inside = event(EventKind::Ip, "10.1.2.3", &[], 1);
    let mut p = policy(Mode::Auto, vec![rule("ext")]);
    assert!(matches!(
        p.evaluate(&inside, &l, now).unwrap()[..],
        [Outcome::Local { .. }]
    ));
    let mut q = rule("quarantine");
    q.quarantine_internal = true;
    let mut p = policy(Mode::Auto, vec![q]);
    assert_eq!(decided(&p.evaluate(&inside, &l, now).unwrap()).len(), 1);
    let lo = event(EventKind::Ip, "127.0.0.1", &[], 2);
    assert!(matches!(
        p.evaluate(&lo, &l, now).unwrap()[..],
        [Outcome::Refused {
            why: Refusal::Allowlisted(_),
            ..
        }]
    ));
}

#[test]
fn the_mode_caps_the_action() {
    let now = Micros(0);
    let e = event(EventKind::Ip, "198.51.100.4", &[], 1);
    let cases = [
        (Mode::Off, Action::Auto, None),
        (
            Mode::DryRun,
            Action::Auto,
            Some((DecisionState::Approved, true)),
        ),
        (
            Mode::Approve,
            Action::Auto,
            Some((DecisionState::Proposed, false)),
        ),
        (
            Mode::Auto,
            Action::Auto,
            Some((DecisionState::Approved, false)),
        ),
        (
            Mode::Auto,
            Action::Approve,
            Some((DecisionState::Proposed, false)),
        ),
        (
            Mode::Auto,
            Action::DryRun,
            Some((DecisionState::Approved, true)),
        ),
    ];
    for (mode, action, want) in cases {
        let c = db();
        let l = Ledger::new(&c);
        let mut r = rule("r");
        r.action = action;
        let got = decided(&policy(mode, vec![r]).evaluate(&e, &l, now).unwrap());
        assert_eq!(got.first().map(|g| (g.1, g.2)), want, "{mode:?} {action:?}");
    }
}

#[test]
fn repeat_offenders_climb_the_ladder_up_to_max_ttl() {
    let c = db();
    let l = Ledger::new(&c);
    let mut p = policy(Mode::Auto, vec![rule("r")]);
    let target: IpNet = "198.51.100.4/32".parse().unwrap();
    let mut now = Micros(0);
    let mut ttls = Vec::new();
    for i in 0..4 {
        let e = event(EventKind::Ip, "198.51.100.4", &[], i * 100_000);
        let got = decided(&p.evaluate(&e, &l, now).unwrap());
        ttls.push(got[0].3);
        // let it run out before the next offence
        now = Micros(now.0 + (got[0].3 as i64 + 1) * 1_000_000);
        assert_eq!(l.expire_due(now).unwrap().len(), 1);
        assert!(l.open_for(&target).unwrap().is_empty());
    }
    // 1h, 6h, then 24h capped at max_ttl 12h, and the last step repeats
    assert_eq!(ttls, [H, 6 * H, 12 * H, 12 * H]);
}
