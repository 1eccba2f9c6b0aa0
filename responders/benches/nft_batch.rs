//! 100,000 entries applied to nftables sets in one batch, inside a network namespace
//! made for each run (and removed after it). Needs root and nft.
//!
//! Run: `cargo bench -p spoor-responders --bench nft_batch`
//!
//! Each run, in a fresh namespace with Spoor's table, four sets and drop chains:
//! 1. `json`: the add batch written to `cat > /dev/null` instead of nft (our JSON);
//! 2. `add`: the batch through `NftBackend::apply`;
//! 3. `list`: `NftBackend::list` reads the entries back;
//! 4. `flush`: the kill switch's `flush_own` removes them all (flush + re-add of others);
//! 5. `add` again, then `delete`: the same entries removed with one deletion batch (what
//!    the kill switch did before `flush_own`); skipped for networks unless
//!    `SPOOR_BENCH_DELETE=1`, since an interval set takes minutes for it.
//!
//! Wall time of each step, CPU time (user + sys) of the child processes it ran
//! (`ip netns exec` and nft, including the kernel's commit) and of the bench process
//! itself (our JSON writing and parsing), medians of the runs.
//!
//! Environment: `SPOOR_BENCH_ENTRIES` (default 100000), `SPOOR_BENCH_RUNS` (default 5),
//! `SPOOR_BENCH_PREFIX` (default 32 for IPv4 addresses, which go to the hash set; e.g. 30
//! for /30 networks, which go to the interval set), `SPOOR_BENCH_DELETE`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use spoor_responders::backend::nftables::{NftBackend, NftSettings};
use spoor_responders::{Backend, Changes};

/// Entries in the batch (`SPOOR_BENCH_ENTRIES` overrides).
const ENTRIES: u32 = 100_000;
/// Runs, each in its own namespace (`SPOOR_BENCH_RUNS` overrides).
const RUNS: usize = 5;
/// The element timeout: an hour, as a typical first block.
const TIMEOUT_SECS: u64 = 3600;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + sys) so far of `who`: this process or the children waited for.
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn settings(command: Vec<OsString>, create: bool) -> NftSettings {
    NftSettings {
        command,
        family: "inet".into(),
        table: "spoor".into(),
        set_v4: "block_v4".into(),
        set_v6: "block_v6".into(),
        net_set_v4: "block_net_v4".into(),
        net_set_v6: "block_net_v6".into(),
        create,
        capacity: 10_000_000,
    }
}

/// Wall, CPU of the children, CPU of this process.
type Times = (Duration, Duration, Duration);

/// `f`'s result and times.
fn measure<T>(f: impl FnOnce() -> T) -> (T, Times) {
    let (children, me) = (cpu(libc::RUSAGE_CHILDREN), cpu(libc::RUSAGE_SELF));
    let t = Instant::now();
    let out = f();
    let wall = t.elapsed();
    (
        out,
        (
            wall,
            cpu(libc::RUSAGE_CHILDREN) - children,
            cpu(libc::RUSAGE_SELF) - me,
        ),
    )
}

fn main() {
    let entries: u32 = env("SPOOR_BENCH_ENTRIES", ENTRIES);
    let runs: usize = env("SPOOR_BENCH_RUNS", RUNS);
    let prefix: u8 = env("SPOOR_BENCH_PREFIX", 32);
    let delete_nets = std::env::var("SPOOR_BENCH_DELETE").is_ok_and(|v| v == "1");
    assert!((8..=32).contains(&prefix), "SPOOR_BENCH_PREFIX: 8 to 32");
    // Spread over 45.0.0.0/8 and beyond with a gap after each entry, so no two entries
    // touch (nft would keep them as separate elements anyway: no auto-merge).
    let step = 2u32 << (32 - prefix);
    let add: Vec<IpNet> = (0..entries)
        .map(|i| {
            let a = std::net::Ipv4Addr::from((45u32 << 24).wrapping_add(i.wrapping_mul(step)));
            IpNet::V4(Ipv4Net::new(a, prefix).unwrap())
        })
        .collect();
    let changes = Changes {
        expires_in: add.iter().map(|t| (*t, TIMEOUT_SECS)).collect(),
        add: add.clone(),
        remove: vec![],
    };
    let nets = prefix < 32;
    let mut times: BTreeMap<&str, Vec<Times>> = BTreeMap::new();
    for run in 0..runs {
        // 1. our side only: the same batch, piped to cat
        let mut sink = NftBackend::new(settings(
            ["sh", "-c", "cat > /dev/null"]
                .iter()
                .map(Into::into)
                .collect(),
            false,
        ))
        .unwrap();
        let ((), m) = measure(|| sink.apply(&changes).unwrap());
        times.entry("1 json").or_default().push(m);

        let ns = Netns(format!("spoor-bench-{}-{run}", std::process::id()));
        let st = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add failed (root needed)");
        let mut nft = NftBackend::new(settings(
            ["ip", "netns", "exec", &ns.0, "nft"]
                .iter()
                .map(Into::into)
                .collect(),
            true,
        ))
        .unwrap();
        let ((), m) = measure(|| nft.apply(&changes).unwrap());
        times.entry("2 add").or_default().push(m);
        let (held, m) = measure(|| nft.list().unwrap());
        times.entry("3 list").or_default().push(m);
        assert_eq!(held.len(), entries as usize);
        let own = add.iter().copied().collect();
        let (removed, m) = measure(|| nft.flush_own(&own).unwrap());
        assert_eq!(removed.len(), add.len());
        times.entry("4 flush").or_default().push(m);
        assert!(nft.list().unwrap().is_empty());
        if !nets || delete_nets {
            nft.apply(&changes).unwrap();
            let removal = Changes {
                remove: add.clone(),
                ..Changes::default()
            };
            let ((), m) = measure(|| nft.apply(&removal).unwrap());
            times.entry("5 delete").or_default().push(m);
            assert!(nft.list().unwrap().is_empty());
        }
        eprintln!("run {} of {runs} done", run + 1);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "nft sets, {entries} {} with {TIMEOUT_SECS} s timeouts, median of {runs} runs (load average now {}):",
        if nets {
            format!("/{prefix} networks (interval set)")
        } else {
            "IPv4 addresses (hash set)".into()
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (step, v) in times {
        let median = |pick: fn(&Times) -> Duration| {
            let mut d: Vec<Duration> = v.iter().map(pick).collect();
            d.sort();
            d[d.len() / 2]
        };
        let mut walls: Vec<f64> = v.iter().map(|x| x.0.as_secs_f64()).collect();
        walls.sort_by(f64::total_cmp);
        println!(
            "  {step:<9} wall {:>6.3} s   CPU: children {:>6.3} s, bench {:>6.3} s   (walls, sorted: {})",
            median(|x| x.0).as_secs_f64(),
            median(|x| x.1).as_secs_f64(),
            median(|x| x.2).as_secs_f64(),
            walls
                .iter()
                .map(|w| format!("{w:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
