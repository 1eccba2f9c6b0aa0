//! pf against its documented `pfctl` contract. FreeBSD cannot run here, so the test
//! writes a stand-in `pfctl` (a shell script) into a temp dir. It accepts only the forms
//! pfctl(8) documents and Spoor uses:
//!
//! - `pfctl -a ANCHOR -t TABLE -T add|delete|test ADDR...`
//! - `pfctl -a ANCHOR -t TABLE -T add|delete -f FILE` (a file, never `-` / stdin)
//! - `pfctl -a ANCHOR -t TABLE -T show`
//! - `pfctl -k HOST` and `pfctl -k HOST -k HOST` (state kill; states are not per anchor)
//!
//! with the configured anchor (`-a ANCHOR` on every table command, and absent when the
//! table is in the main ruleset), table name and addresses or CIDRs (v4 and v6); anything else is
//! recorded as a violation and fails. It keeps the table in a file and answers like pfctl
//! (`Table does not exist.` before the first add, `N/M addresses added.`, indented `show`
//! lines).

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use spoor_core::Micros;
use spoor_responders::backend::pf::{MAX_ARGS, PfBackend, PfSettings};
use spoor_responders::decision::{NewDecision, Reason, parse_target};
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::reconcile::reconcile;
use spoor_responders::{
    Allowlist, Backend, Changes, DecisionState, GuardedBackend, Guards, Refusal,
};

const TABLE: &str = "spoor_block";
/// The anchor of the shipped `freebsd/pf/spoor.anchor`.
const ANCHOR: &str = "spoor";

const STAND_IN: &str = r#"#!/bin/bash
# Stand-in pfctl: checks the invocation against the documented contract, keeps state.
DIR="$(dirname "$0")"
STATE="$DIR/table.state"
echo "$*" >> "$DIR/calls"
violation() { echo "$*" >> "$DIR/violations"; echo "pfctl: usage: $*" >&2; exit 2; }
is_addr() { [[ "$1" =~ ^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$ ]] && [[ "$1" == *[.:]* ]]; }
if [ -p /dev/stdin ]; then violation "stdin is a pipe: Spoor must not feed pfctl through stdin"; fi
if [ "$1" = "-k" ]; then
  [ $# -eq 2 ] || [ $# -eq 4 -a "$3" = "-k" ] || violation "bad -k form: $*"
  is_addr "$2" || violation "bad -k host $2"
  [ $# -eq 2 ] || is_addr "$4" || violation "bad -k host $4"
  echo "killed 0 states" >&2; exit 0
fi
if [ -n "@ANCHOR@" ]; then
  [ "$1" = "-a" ] || violation "table command without -a @ANCHOR@: $*"
  [ "$2" = "@ANCHOR@" ] || violation "wrong anchor $2"
  shift 2
fi
[ "$1" = "-t" ] || violation "expected -t first (after -a ANCHOR when anchored): $*"
[ "$2" = "@TABLE@" ] || violation "wrong table $2"
[ "$3" = "-T" ] || violation "expected -T third: $*"
CMD="$4"; shift 4
case "$CMD" in
  show)
    [ $# -eq 0 ] || violation "show takes no addresses"
    [ -f "$STATE" ] || { echo "pfctl: Table does not exist." >&2; exit 1; }
    while read -r e; do [ -n "$e" ] && echo "   $e"; done < "$STATE"; exit 0 ;;
  add|delete|test)
    if [ "$1" = "-f" ]; then
      [ $# -eq 2 ] || violation "-f takes one file"
      [ "$2" != "-" ] || violation "-f - (stdin) is not allowed"
      [ -f "$2" ] || violation "-f $2 does not exist"
      mapfile -t ADDRS < "$2"
    else
      [ $# -ge 1 ] || violation "$CMD without addresses"
      ADDRS=("$@")
    fi
    for a in "${ADDRS[@]}"; do is_addr "$a" || violation "not an address: $a"; done
    [ "$CMD" = "test" ] || [ "$CMD" = "add" ] || [ -f "$STATE" ] || { echo "pfctl: Table does not exist." >&2; exit 1; }
    touch "$STATE"
    n=0
    for a in "${ADDRS[@]}"; do
      case "$CMD" in
        add) grep -qxF -- "$a" "$STATE" || { echo "$a" >> "$STATE"; n=$((n+1)); } ;;
        delete) if grep -qxF -- "$a" "$STATE"; then grep -vxF -- "$a" "$STATE" > "$STATE.new"; mv "$STATE.new" "$STATE"; n=$((n+1)); fi ;;
        test) grep -qxF -- "$a" "$STATE" && n=$((n+1)) ;;
      esac
    done
    case "$CMD" in
      add) echo "$n/${#ADDRS[@]} addresses added." >&2 ;;
      delete) echo "$n/${#ADDRS[@]} addresses deleted." >&2 ;;
      test) echo "$n/${#ADDRS[@]} addresses match." >&2; [ $n -eq ${#ADDRS[@]} ] || exit 1 ;;
    esac
    exit 0 ;;
  *) violation "unknown -T command $CMD" ;;
esac
"#;

struct StandIn {
    dir: tempfile::TempDir,
}

impl StandIn {
    /// A stand-in for a table in `anchor` ("" for the main ruleset).
    fn new(anchor: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pfctl");
        std::fs::write(
            &path,
            STAND_IN
                .replace("@TABLE@", TABLE)
                .replace("@ANCHOR@", anchor),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        StandIn { dir }
    }
    fn pfctl(&self) -> PathBuf {
        self.dir.path().join("pfctl")
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
    fn calls(&self) -> Vec<String> {
        self.read("calls").lines().map(String::from).collect()
    }
    fn assert_no_violations(&self) {
        assert_eq!(self.read("violations"), "", "contract violations");
    }
    fn seed(&self, entries: &[&str]) {
        std::fs::write(
            self.dir.path().join("table.state"),
            entries.join("\n") + "\n",
        )
        .unwrap();
    }
}

fn settings(pfctl: &Path, kill_states: bool, capacity: usize) -> PfSettings {
    PfSettings {
        pfctl: pfctl.to_path_buf(),
        anchor: ANCHOR.into(),
        table: TABLE.into(),
        kill_states,
        capacity,
    }
}

fn net(s: &str) -> IpNet {
    parse_target(s).unwrap()
}

#[test]
fn add_show_delete_with_arguments_and_files() {
    let s = StandIn::new(ANCHOR);
    let mut pf = PfBackend::new(settings(&s.pfctl(), true, 1000));
    assert!(
        pf.list().unwrap().is_empty(),
        "a missing table holds nothing"
    );
    let small = Changes {
        add: vec![
            net("192.0.2.7"),
            net("2001:db8::1"),
            net("198.51.100.0/24"),
            net("2001:db8:1::/48"),
        ],
        ..Changes::default()
    };
    pf.apply(&small).unwrap();
    assert_eq!(
        pf.list().unwrap(),
        small.add.iter().copied().collect(),
        "show parses v4, v6 and CIDRs back"
    );
    assert!(pf.test("192.0.2.7".parse().unwrap()).unwrap());
    assert!(!pf.test("192.0.2.8".parse().unwrap()).unwrap());
    let calls = s.calls();
    assert!(
        calls.contains(&format!(
            "-a {ANCHOR} -t {TABLE} -T add 192.0.2.7 2001:db8::1 198.51.100.0/24 2001:db8:1::/48"
        )),
        "{calls:#?}"
    );
    // state kill for each new block: from it, and to it
    assert!(calls.contains(&"-k 192.0.2.7".to_string()), "{calls:#?}");
    assert!(
        calls.contains(&"-k 0.0.0.0/0 -k 192.0.2.7".to_string()),
        "{calls:#?}"
    );
    assert!(
        calls.contains(&"-k ::/0 -k 2001:db8:1::/48".to_string()),
        "{calls:#?}"
    );

    // A big batch goes through a file, in one call.
    let big: Vec<IpNet> = (0..200u32)
        .map(|i| {
            IpNet::from(std::net::IpAddr::from([
                203,
                0,
                113 + (i / 250) as u8,
                (i % 250) as u8,
            ]))
        })
        .collect();
    assert!(big.len() > MAX_ARGS);
    let before = s.calls().len();
    let mut pf = PfBackend::new(settings(&s.pfctl(), false, 1000));
    pf.apply(&Changes {
        add: big.clone(),
        ..Changes::default()
    })
    .unwrap();
    let new_calls = &s.calls()[before..];
    assert_eq!(new_calls.len(), 1, "{new_calls:#?}");
    assert!(
        new_calls[0].starts_with(&format!("-a {ANCHOR} -t {TABLE} -T add -f ")),
        "{new_calls:#?}"
    );
    assert_eq!(pf.list().unwrap().len(), 204);
    pf.apply(&Changes {
        remove: big,
        ..Changes::default()
    })
    .unwrap();
    pf.apply(&Changes {
        remove: vec![net("2001:db8::1")],
        ..Changes::default()
    })
    .unwrap();
    assert_eq!(pf.list().unwrap().len(), 3);
    // every table command names the anchor; state kills never do (states are global)
    for call in s.calls() {
        if call.starts_with("-k ") {
            assert!(!call.contains("-a "), "{call}");
        } else {
            assert!(
                call.starts_with(&format!("-a {ANCHOR} -t {TABLE} -T ")),
                "{call}"
            );
        }
    }
    assert_eq!(pf.name(), format!("pf:{ANCHOR}:{TABLE}"));
    s.assert_no_violations();
}

#[test]
fn capacity_guard_and_reconcile_leave_foreign_entries() {
    let s = StandIn::new(ANCHOR);
    // An entry the admin put in the table; Spoor must leave it.
    s.seed(&["192.0.2.200"]);
    let pf = PfBackend::new(settings(&s.pfctl(), false, 4));
    let mut be = GuardedBackend::new(
        Box::new(pf),
        Allowlist::new(false),
        Guards {
            min_prefix_v4: 24,
            min_prefix_v6: 48,
            max_new_per_minute: 1000,
            max_active: 100,
        },
    );
    assert_eq!(be.limit(), 4, "capacity caps max_active");
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    ledger::migrate(&conn).unwrap();
    let l = Ledger::new(&conn);
    let now = Micros(1_000_000_000_000);
    let mut ids = Vec::new();
    for i in 1..=5u8 {
        let d = l
            .propose(
                &NewDecision {
                    target: IpNet::from(std::net::IpAddr::from([198, 51, 100, i])),
                    reason: Reason {
                        rule: "r".into(),
                        events: vec![],
                        note: None,
                    },
                    ttl_secs: 60,
                    dry_run: false,
                },
                "policy",
                now,
            )
            .unwrap();
        ids.push(
            l.transition(d.id, DecisionState::Approved, "policy", now, None)
                .unwrap()
                .id,
        );
    }
    let r = reconcile(&l, &mut be, now).unwrap();
    assert_eq!(r.added.len(), 3, "1 foreign + 3 = capacity 4");
    assert_eq!(r.refused.len(), 2);
    assert!(
        r.refused
            .iter()
            .all(|(_, why)| matches!(why, Refusal::Full { limit: 4 }))
    );
    // refused for size: still approved, not revoked
    let states: Vec<_> = ids.iter().map(|id| l.get(*id).unwrap().state).collect();
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == DecisionState::Active)
            .count(),
        3
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == DecisionState::Approved)
            .count(),
        2
    );
    // after expiry every Spoor entry goes, the admin's stays
    let r = reconcile(&l, &mut be, Micros(now.0 + 61_000_000)).unwrap();
    assert_eq!(r.removed.len(), 3);
    assert_eq!(
        be.list().unwrap(),
        [net("192.0.2.200")].into_iter().collect()
    );
    s.assert_no_violations();
}

/// The stand-in is strict: the forms the contract forbids fail (so the tests above would
/// notice if the backend used them).
#[test]
fn stand_in_rejects_what_the_contract_forbids() {
    let s = StandIn::new(ANCHOR);
    for args in [
        vec!["-a", ANCHOR, "-t", TABLE, "-T", "add", "-f", "-"],
        vec!["-a", ANCHOR, "-t", "other_table", "-T", "add", "192.0.2.1"],
        vec!["-a", ANCHOR, "-t", TABLE, "-T", "add", "evil.example"],
        vec!["-a", ANCHOR, "-t", TABLE, "-T", "flush"],
        vec!["-a", ANCHOR, "-T", "add", "-t", TABLE, "192.0.2.1"],
        vec!["-t", TABLE, "-T", "add", "192.0.2.1"],
        vec!["-a", "other", "-t", TABLE, "-T", "show"],
    ] {
        let st = std::process::Command::new(s.pfctl())
            .args(&args)
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(2), "{args:?} was accepted");
    }
    assert_eq!(s.read("violations").lines().count(), 7);
}

/// A table of the main ruleset (`anchor = ""`): no `-a` at all, which the stand-in for
/// a main-ruleset table insists on.
#[test]
fn main_ruleset_table_has_no_anchor_argument() {
    let s = StandIn::new("");
    let mut pf = PfBackend::new(PfSettings {
        anchor: String::new(),
        ..settings(&s.pfctl(), false, 1000)
    });
    pf.apply(&Changes {
        add: vec![net("192.0.2.7")],
        ..Changes::default()
    })
    .unwrap();
    assert!(pf.test("192.0.2.7".parse().unwrap()).unwrap());
    assert_eq!(pf.list().unwrap(), [net("192.0.2.7")].into_iter().collect());
    assert_eq!(
        s.calls(),
        [
            format!("-t {TABLE} -T add 192.0.2.7"),
            format!("-t {TABLE} -T test 192.0.2.7"),
            format!("-t {TABLE} -T show"),
        ]
    );
    assert_eq!(pf.name(), format!("pf:{TABLE}"));
    s.assert_no_violations();
    // and the anchored stand-in refuses those same calls
    let anchored = StandIn::new(ANCHOR);
    let mut pf = PfBackend::new(PfSettings {
        anchor: String::new(),
        ..settings(&anchored.pfctl(), false, 1000)
    });
    assert!(pf.list().is_err());
    assert!(!anchored.read("violations").is_empty());
}
