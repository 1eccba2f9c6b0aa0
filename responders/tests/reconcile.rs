//! Reconciler corner cases on the in-memory dry-run backend: refused targets are revoked
//! with the reason, hosts inside a wanted network are not written twice, entries covered
//! by a wider foreign entry are not re-added, dry-run decisions are never applied, and
//! the decision stream reports every change.

use ipnet::IpNet;
use spoor_core::Micros;
use spoor_responders::backend::dry_run::DryRunBackend;
use spoor_responders::decision::{NewDecision, Reason, parse_target};
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::reconcile::{flush, reconcile};
use spoor_responders::{Allowlist, Backend, Changes, DecisionState, GuardedBackend, Guards};

fn net(s: &str) -> IpNet {
    parse_target(s).unwrap()
}

fn approve(l: &Ledger<'_>, target: &str, dry_run: bool) -> spoor_responders::Decision {
    let d = l
        .propose(
            &NewDecision {
                target: net(target),
                reason: Reason {
                    rule: "r".into(),
                    events: vec![],
                    note: None,
                },
                ttl_secs: 600,
                dry_run,
            },
            "policy",
            Micros(0),
        )
        .unwrap();
    l.transition(d.id, DecisionState::Approved, "alice", Micros(0), None)
        .unwrap()
}

#[test]
fn refusals_coverage_and_dry_runs() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    ledger::migrate(&conn).unwrap();
    let l = Ledger::new(&conn);
    let mut inner = DryRunBackend::new();
    // the admin's own wider entry
    inner
        .apply(&Changes {
            add: vec![net("203.0.113.0/24")],
            ..Changes::default()
        })
        .unwrap();
    let mut be = GuardedBackend::new(
        Box::new(inner),
        Allowlist::new(false),
        Guards {
            min_prefix_v4: 16,
            min_prefix_v6: 48,
            max_new_per_minute: 100,
            max_active: 100,
        },
    );
    let start = l.snapshot().unwrap().cursor;
    let refused = approve(&l, "10.0.0.0/16", false); // private range
    let wide = approve(&l, "198.51.0.0/16", false);
    let inside = approve(&l, "198.51.100.7", false);
    let covered = approve(&l, "203.0.113.5", false);
    let dry = approve(&l, "192.0.2.1", true);
    let r = reconcile(&l, &mut be, Micros(1)).unwrap();
    assert_eq!(r.revoked, 1);
    assert_eq!(
        r.added,
        [net("198.51.0.0/16")],
        "the host inside it and the covered one are not written"
    );
    let state = |d: &spoor_responders::Decision| l.get(d.id).unwrap().state;
    assert_eq!(state(&refused), DecisionState::Revoked);
    let audit = l.audit(refused.id).unwrap();
    let last = audit.last().unwrap();
    assert_eq!(last.actor, "guard");
    assert!(
        last.note.as_deref().unwrap().contains("block_private"),
        "{last:?}"
    );
    assert_eq!(state(&wide), DecisionState::Active);
    assert_eq!(
        state(&inside),
        DecisionState::Active,
        "held through the network"
    );
    assert_eq!(
        state(&covered),
        DecisionState::Active,
        "held through the admin's entry"
    );
    assert_eq!(
        state(&dry),
        DecisionState::Approved,
        "dry runs are never applied"
    );

    // Revoking the network writes the host it was hiding.
    l.transition(wide.id, DecisionState::Revoked, "bob", Micros(2), None)
        .unwrap();
    let r = reconcile(&l, &mut be, Micros(2)).unwrap();
    assert_eq!(r.removed, [net("198.51.0.0/16")]);
    assert_eq!(r.added, [net("198.51.100.7")]);

    // The stream from the start shows each decision once, in its current state.
    let ch = l.changes_since(start).unwrap();
    assert_eq!(ch.changes.len(), 5);
    assert!(
        ch.changes
            .iter()
            .any(|d| d.id == wide.id && d.state == DecisionState::Revoked)
    );

    // The kill switch removes only what Spoor added.
    let r = flush(&l, &mut be, "kill-switch", Micros(3)).unwrap();
    assert_eq!(r.removed, [net("198.51.100.7")]);
    assert_eq!(
        be.list().unwrap(),
        [net("203.0.113.0/24")].into_iter().collect()
    );
    assert!(
        l.list(&[DecisionState::Active, DecisionState::Approved])
            .unwrap()
            .is_empty()
    );
}
