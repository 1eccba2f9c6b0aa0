//! nftables for real: two network namespaces joined by a veth pair. Namespace "fw" holds
//! Spoor's table and sets (the backend runs `ip netns exec fw nft ...`); namespace
//! "peer" is the other side. Decisions in a ledger file are reconciled into the sets and
//! the peer's traffic to fw (ping, TCP) is dropped or let through accordingly.
//!
//! Addresses are documentation ranges that exist only on the veth pair; no packet leaves
//! the two namespaces. Needs root, `ip` and `nft` (CI installs nftables).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use spoor_core::Micros;
use spoor_responders::backend::nftables::{NftBackend, NftSettings};
use spoor_responders::decision::{NewDecision, Reason, parse_target};
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::reconcile::{flush, reconcile};
use spoor_responders::{Allowlist, DecisionState, GuardedBackend, Guards};

const FW_V4: &str = "198.51.100.1";
const PEER_V4: &str = "198.51.100.2";
const PEER_V4_CIDR_HOST: &str = "198.51.100.130";
const FW_V6: &str = "2001:db8:51::1";
const PEER_V6: &str = "2001:db8:51::2";
const TCP_PORT: u16 = 18_080;
/// How long a ping or connect may take before it counts as dropped.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces and the veth pair between them; removed on drop, even after a failed
/// assertion.
struct NetnsPair {
    fw: String,
    peer: String,
}

impl NetnsPair {
    fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let pair = NetnsPair {
            fw: format!("spoor-fw-{id}"),
            peer: format!("spoor-peer-{id}"),
        };
        sh(&["ip", "netns", "add", &pair.fw]);
        sh(&["ip", "netns", "add", &pair.peer]);
        // Made inside fw (and its peer end moved to peer), so the interface names never
        // meet the host's or another test's.
        sh(&[
            "ip", "-n", &pair.fw, "link", "add", "v-fw", "type", "veth", "peer", "name", "v-peer",
            "netns", &pair.peer,
        ]);
        for (ns, dev, addrs) in [
            (
                &pair.fw,
                "v-fw",
                &[format!("{FW_V4}/24"), format!("{FW_V6}/64")][..],
            ),
            (
                &pair.peer,
                "v-peer",
                &[
                    format!("{PEER_V4}/24"),
                    format!("{PEER_V4_CIDR_HOST}/24"),
                    format!("{PEER_V6}/64"),
                ][..],
            ),
        ] {
            for a in addrs {
                let mut args = vec!["ip", "-n", ns, "addr", "add", a, "dev", dev];
                if a.contains(':') {
                    args.push("nodad");
                }
                sh(&args);
            }
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    fn in_fw(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.fw];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Ping fw from the peer, optionally from a chosen source address.
    fn ping(&self, dst: &str, src: Option<&str>) -> bool {
        let wait = PROBE_TIMEOUT.as_secs().to_string();
        let mut args = vec![
            "netns", "exec", &self.peer, "ping", "-n", "-c", "1", "-W", &wait,
        ];
        if let Some(s) = src {
            args.extend(["-I", s]);
        }
        args.push(dst);
        Command::new("ip")
            .args(&args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Run `f` on a thread that has entered namespace `ns`.
    fn within<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{ns}");
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

    /// A TCP listener inside fw, accepting in the background.
    fn listen(&self) {
        let listener = Self::within(&self.fw, || {
            TcpListener::bind(SocketAddr::from(([0u16; 8], TCP_PORT))).unwrap()
        });
        std::thread::spawn(move || {
            for s in listener.incoming() {
                drop(s);
            }
        });
    }

    /// A TCP connect from the peer to fw.
    fn connect(&self, dst: &str) -> bool {
        let addr = SocketAddr::new(dst.parse().unwrap(), TCP_PORT);
        Self::within(&self.peer, move || {
            TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok()
        })
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the pair.
        for ns in [&self.fw, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn backend(pair: &NetnsPair) -> GuardedBackend {
    let nft = NftBackend::new(NftSettings {
        command: ["ip", "netns", "exec", &pair.fw, "nft"]
            .iter()
            .map(Into::into)
            .collect(),
        family: "inet".into(),
        table: "spoor".into(),
        set_v4: "block_v4".into(),
        set_v6: "block_v6".into(),
        net_set_v4: "block_net_v4".into(),
        net_set_v6: "block_net_v6".into(),
        create: true,
        capacity: 1000,
    })
    .unwrap();
    GuardedBackend::new(
        Box::new(nft),
        Allowlist::new(false),
        Guards {
            min_prefix_v4: 24,
            min_prefix_v6: 48,
            max_new_per_minute: 100,
            max_active: 100,
        },
    )
}

fn approve(l: &Ledger<'_>, target: &str, ttl_secs: u64, at: Micros) -> spoor_responders::Decision {
    let d = l
        .propose(
            &NewDecision {
                target: parse_target(target).unwrap(),
                reason: Reason {
                    rule: "test".into(),
                    events: vec![],
                    note: None,
                },
                ttl_secs,
                dry_run: false,
            },
            "policy",
            at,
        )
        .unwrap();
    l.transition(d.id, DecisionState::Approved, "alice", at, None)
        .unwrap()
}

fn set_elements(pair: &NetnsPair, table: &str, set: &str) -> std::collections::BTreeSet<IpNet> {
    let out = pair.in_fw(&["nft", "-j", "list", "set", "inet", table, set]);
    spoor_responders::backend::nftables::parse_set_listing(&out).unwrap()
}

fn net(s: &str) -> IpNet {
    parse_target(s).unwrap()
}

#[test]
fn decisions_drop_traffic_and_reconcile_after_restart() {
    assert!(
        Command::new("nft").arg("--version").output().is_ok(),
        "nft is not installed (apt-get install nftables)"
    );
    let pair = NetnsPair::new();
    pair.listen();
    assert!(pair.ping(FW_V4, None), "no ping before any block");
    assert!(pair.ping(FW_V6, None), "no IPv6 ping before any block");
    assert!(pair.connect(FW_V4), "no TCP before any block");

    // Objects Spoor must never touch: another table with a set, a set of the admin's in
    // Spoor's table, and an entry the admin put in Spoor's own set.
    pair.in_fw(&["nft", "add", "table", "inet", "other"]);
    pair.in_fw(&["nft", "add set inet other keep { type ipv4_addr; }"]);
    pair.in_fw(&["nft", "add element inet other keep { 192.0.2.99 }"]);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("decisions.sqlite");
    let conn = ledger::open(&db).unwrap();
    let l = Ledger::new(&conn);
    let t0 = ledger::now();

    let mut be = backend(&pair);
    pair.in_fw(&["nft", "add set inet spoor admin_set { type ipv4_addr; }"]);
    pair.in_fw(&["nft", "add element inet spoor admin_set { 192.0.2.55 }"]);
    pair.in_fw(&["nft", "add element inet spoor block_v4 { 192.0.2.77 }"]);

    // An approved decision becomes active and drops the peer.
    let d = approve(&l, PEER_V4, 3600, t0);
    let r = reconcile(&l, &mut be, t0).unwrap();
    assert_eq!(r.added, [net(PEER_V4)]);
    assert_eq!(l.get(d.id).unwrap().state, DecisionState::Active);
    assert!(set_elements(&pair, "spoor", "block_v4").contains(&net(PEER_V4)));
    // the element carries the decision's time as its own timeout (the safety net)
    let listing = pair.in_fw(&["nft", "-j", "list", "set", "inet", "spoor", "block_v4"]);
    assert!(
        listing.contains("\"timeout\": 3600") || listing.contains("\"timeout\":3600"),
        "{listing}"
    );
    assert!(!pair.ping(FW_V4, None), "ping passes a block");
    assert!(!pair.connect(FW_V4), "TCP passes a block");

    // Expiry restores traffic.
    let later = Micros(t0.0 + 3601 * 1_000_000);
    let r = reconcile(&l, &mut be, later).unwrap();
    assert_eq!(r.expired, 1);
    assert_eq!(r.removed, [net(PEER_V4)]);
    assert_eq!(l.get(d.id).unwrap().state, DecisionState::Expired);
    assert!(pair.ping(FW_V4, None), "ping still dropped after expiry");
    assert!(pair.connect(FW_V4), "TCP still dropped after expiry");

    // A CIDR decision drops the addresses inside it only; an IPv6 one drops IPv6.
    let cidr = approve(&l, "198.51.100.128/25", 3600, later);
    let v6 = approve(&l, PEER_V6, 3600, later);
    reconcile(&l, &mut be, later).unwrap();
    // networks go to the interval set, single addresses to the hash sets
    assert_eq!(
        set_elements(&pair, "spoor", "block_net_v4"),
        [net("198.51.100.128/25")].into_iter().collect()
    );
    assert_eq!(
        set_elements(&pair, "spoor", "block_v6"),
        [net(PEER_V6)].into_iter().collect()
    );
    assert!(
        !pair.ping(FW_V4, Some(PEER_V4_CIDR_HOST)),
        "CIDR block let .130 through"
    );
    assert!(pair.ping(FW_V4, Some(PEER_V4)), "CIDR block dropped .2 too");
    assert!(!pair.ping(FW_V6, None), "IPv6 ping passes a block");
    assert!(pair.ping(FW_V4, None), "IPv6 block dropped IPv4");

    // "Restart" with a changed ledger: the CIDR decision was revoked meanwhile, a new one
    // approved, and someone deleted the IPv6 element by hand.
    drop(be);
    l.transition(
        cidr.id,
        DecisionState::Revoked,
        "bob",
        later,
        Some("false positive"),
    )
    .unwrap();
    approve(&l, PEER_V4, 600, later);
    pair.in_fw(&[
        "nft",
        &format!("delete element inet spoor block_v6 {{ {PEER_V6} }}"),
    ]);
    let mut be = backend(&pair);
    let r = reconcile(&l, &mut be, later).unwrap();
    let mut added = r.added.clone();
    added.sort();
    assert_eq!(added, [net(PEER_V4), net(PEER_V6)]);
    assert_eq!(r.removed, [net("198.51.100.128/25")]);
    assert_eq!(r.vanished, 1, "the hand-deleted element");
    assert_eq!(l.get(v6.id).unwrap().state, DecisionState::Active);
    assert_eq!(
        set_elements(&pair, "spoor", "block_v4"),
        [net("192.0.2.77"), net(PEER_V4)].into_iter().collect()
    );
    assert_eq!(
        set_elements(&pair, "spoor", "block_v6"),
        [net(PEER_V6)].into_iter().collect()
    );
    assert!(
        pair.ping(FW_V4, Some(PEER_V4_CIDR_HOST)),
        "revoked CIDR still drops .130"
    );
    assert!(!pair.ping(FW_V4, Some(PEER_V4)), "re-approved .2 passes");
    assert!(!pair.ping(FW_V6, None), "re-added IPv6 block passes");
    // untouched
    assert_eq!(
        set_elements(&pair, "other", "keep"),
        [net("192.0.2.99")].into_iter().collect()
    );
    assert_eq!(
        set_elements(&pair, "spoor", "admin_set"),
        [net("192.0.2.55")].into_iter().collect()
    );
    // A second pass with nothing changed writes nothing.
    let r = reconcile(&l, &mut be, later).unwrap();
    assert!(r.added.is_empty() && r.removed.is_empty(), "{r:?}");

    // The kill switch flushes Spoor's sets and puts back only the admin's entries, the
    // one with a timeout keeping its time left.
    let net_d = approve(&l, "198.51.100.128/25", 3600, later);
    reconcile(&l, &mut be, later).unwrap();
    assert_eq!(l.get(net_d.id).unwrap().state, DecisionState::Active);
    pair.in_fw(&[
        "nft",
        "add element inet spoor block_v4 { 192.0.2.78 timeout 1h }",
    ]);
    pair.in_fw(&[
        "nft",
        "add element inet spoor block_net_v4 { 203.0.113.0/28 }",
    ]);
    let r = flush(&l, &mut be, "kill-switch", later).unwrap();
    let mut removed = r.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        [net(PEER_V4), net("198.51.100.128/25"), net(PEER_V6)]
    );
    assert_eq!(r.revoked, 3);
    assert_eq!(
        set_elements(&pair, "spoor", "block_v4"),
        [net("192.0.2.77"), net("192.0.2.78")].into_iter().collect()
    );
    assert_eq!(
        set_elements(&pair, "spoor", "block_net_v4"),
        [net("203.0.113.0/28")].into_iter().collect()
    );
    assert!(set_elements(&pair, "spoor", "block_v6").is_empty());
    let listing = pair.in_fw(&["nft", "-j", "list", "set", "inet", "spoor", "block_v4"]);
    let doc: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let timed = doc["nftables"][1]["set"]["elem"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["elem"]["val"] == "192.0.2.78")
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(timed["elem"]["timeout"], 3600, "{listing}");
    assert!(
        timed["elem"]["expires"].as_u64().unwrap() <= 3600,
        "{listing}"
    );
    assert!(pair.ping(FW_V4, None), "ping dropped after the kill switch");
    assert!(pair.ping(FW_V6, None), "IPv6 dropped after the kill switch");
    assert!(
        pair.ping(FW_V4, Some(PEER_V4_CIDR_HOST)),
        "CIDR still dropped after the kill switch"
    );
    assert_eq!(
        set_elements(&pair, "other", "keep"),
        [net("192.0.2.99")].into_iter().collect()
    );
    assert_eq!(
        set_elements(&pair, "spoor", "admin_set"),
        [net("192.0.2.55")].into_iter().collect()
    );
    assert!(l.owned(&be.name()).unwrap().is_empty());
}

/// A set of the configured name with other flags (an interval set for single addresses,
/// as an older Spoor made it) stops setup with a message naming the set and the fix.
#[test]
fn setup_names_a_conflicting_set() {
    let pair = NetnsPair::new();
    pair.in_fw(&["nft", "add table inet spoor"]);
    pair.in_fw(&[
        "nft",
        "add set inet spoor block_v4 { type ipv4_addr; flags interval, timeout; }",
    ]);
    let err = NftBackend::new(NftSettings {
        command: ["ip", "netns", "exec", &pair.fw, "nft"]
            .iter()
            .map(Into::into)
            .collect(),
        family: "inet".into(),
        table: "spoor".into(),
        set_v4: "block_v4".into(),
        set_v6: "block_v6".into(),
        net_set_v4: "block_net_v4".into(),
        net_set_v6: "block_net_v6".into(),
        create: true,
        capacity: 1000,
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nftables set inet spoor block_v4")
            && err.contains("flags [interval, timeout]")
            && err.contains("needs type ipv4_addr with flags [timeout]"),
        "{err}"
    );
}

/// A table of family `ip` holds only IPv4 sets and rules (nft refuses `ip6 saddr` in it):
/// setup works, an IPv4 block drops, an IPv6 decision is revoked by the guard with the
/// reason instead of being reported active.
#[test]
fn ipv4_only_table() {
    let pair = NetnsPair::new();
    let nft = NftBackend::new(NftSettings {
        command: ["ip", "netns", "exec", &pair.fw, "nft"]
            .iter()
            .map(Into::into)
            .collect(),
        family: "ip".into(),
        table: "spoor4".into(),
        set_v4: "block_v4".into(),
        set_v6: "block_v6".into(),
        net_set_v4: "block_net_v4".into(),
        net_set_v6: "block_net_v6".into(),
        create: true,
        capacity: 1000,
    })
    .unwrap();
    let mut be = GuardedBackend::new(
        Box::new(nft),
        Allowlist::new(false),
        Guards {
            min_prefix_v4: 24,
            min_prefix_v6: 48,
            max_new_per_minute: 100,
            max_active: 100,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let conn = ledger::open(&dir.path().join("decisions.sqlite")).unwrap();
    let l = Ledger::new(&conn);
    let t0 = ledger::now();
    let v4 = approve(&l, PEER_V4, 3600, t0);
    let v6 = approve(&l, PEER_V6, 3600, t0);
    let r = reconcile(&l, &mut be, t0).unwrap();
    assert_eq!(r.added, [net(PEER_V4)]);
    assert_eq!(r.revoked, 1);
    assert_eq!(l.get(v4.id).unwrap().state, DecisionState::Active);
    assert_eq!(l.get(v6.id).unwrap().state, DecisionState::Revoked);
    let note = l
        .audit(v6.id)
        .unwrap()
        .last()
        .unwrap()
        .note
        .clone()
        .unwrap();
    assert!(note.contains("family ip"), "{note}");
    let listing = pair.in_fw(&["nft", "list", "table", "ip", "spoor4"]);
    assert!(!listing.contains("ip6"), "{listing}");
    assert!(!pair.ping(FW_V4, None), "ping passes an IPv4 block");
    assert!(pair.ping(FW_V6, None), "IPv6 dropped by an IPv4-only table");
}
