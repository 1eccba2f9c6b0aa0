//! Trail store benchmark on the full shared Maltrail trail set.
//!
//! `cargo bench -p spoor-feeds --bench trail_store` prints compile time, snapshot size,
//! load time, resident memory and per-lookup costs (one thread). Results are recorded in
//! BENCHMARKS.md. Plain harness (no framework): each figure is the best of several rounds
//! of a timed loop over prepared queries, with `black_box` around inputs and results.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spoor_feeds::compile::{CompileSource, compile};
use spoor_feeds::config::OriginDefaults;
use spoor_feeds::format::FormatSpec;
use spoor_feeds::{Matched, TrailStore};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

/// A field of /proc/self/status in KiB (Linux).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn rss_parts() -> String {
    format!(
        "anon {:.1} MiB, file {:.1} MiB",
        status_kib("RssAnon:") as f64 / 1024.0,
        status_kib("RssFile:") as f64 / 1024.0
    )
}

/// Deterministic xorshift generator: the same queries every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Best-of-`rounds` nanoseconds per call of `f` over `inputs`.
fn ns_per_op<T>(inputs: &[T], rounds: usize, mut f: impl FnMut(&T) -> bool) -> (f64, usize) {
    let mut best = Duration::MAX;
    let mut hits = 0;
    for _ in 0..rounds {
        hits = 0;
        let t = Instant::now();
        for q in inputs {
            if f(black_box(q)) {
                hits += 1;
            }
        }
        best = best.min(t.elapsed());
    }
    (best.as_nanos() as f64 / inputs.len() as f64, hits)
}

fn main() {
    // `cargo bench` runs this twice over: the compiling parent, then a fresh child process
    // that only loads and queries the snapshot, so its memory figures are the store's alone.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        measure(Path::new(&args[i + 1]));
        return;
    }
    let static_dir = shared("maltrail/trails/static");
    if !static_dir.is_dir() {
        eprintln!(
            "shared Maltrail trails not found at {}",
            static_dir.display()
        );
        std::process::exit(1);
    }
    let sources = vec![
        CompileSource {
            name: "maltrail-static".into(),
            path: static_dir,
            format: FormatSpec::Maltrail,
            defaults: OriginDefaults {
                reference: Some("(static)".into()),
                min_consensus: 1,
                ..OriginDefaults::default()
            },
            required: true,
        },
        CompileSource {
            name: "maltrail-whitelist".into(),
            path: shared("maltrail/data/whitelist.txt"),
            format: FormatSpec::Whitelist,
            defaults: OriginDefaults::default(),
            required: true,
        },
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = dir.path().join("trails.snapshot");

    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        report = Some(compile(&sources, &snapshot).expect("compile"));
        best = best.min(t.elapsed());
    }
    let report = report.expect("compiled");
    let total: u64 = report.meta.counts.values().sum();
    println!("machine: {}", machine());
    println!(
        "compile: {:.2} s (best of 3) for {} records → {} trails, snapshot {:.1} MiB",
        best.as_secs_f64(),
        report.sources.iter().map(|s| s.records).sum::<u64>(),
        total,
        report.bytes as f64 / (1024.0 * 1024.0)
    );
    println!("counts: {:?}", report.meta.counts);
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg("--measure")
        .arg(&snapshot)
        .status()
        .expect("run the measuring child");
    assert!(status.success(), "measuring child failed");
}

fn random_label(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
        .collect()
}

fn measure(snapshot: &Path) {
    // Queries first, so that the memory they take is not counted as the store's.
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    // Every listed IPv4 address of the static set, in a shuffled order.
    let mut listed: Vec<Ipv4Addr> = Vec::new();
    let mut dirs = vec![shared("maltrail/trails/static")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("trail folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                listed.extend(
                    text.lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .filter_map(|w| w.parse::<Ipv4Addr>().ok()),
                );
            }
        }
    }
    listed.sort_unstable();
    listed.dedup();
    for i in (1..listed.len()).rev() {
        listed.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let hits_v4: Vec<IpAddr> = (0..1_000_000)
        .map(|i| IpAddr::V4(listed[i % listed.len()]))
        .collect();
    let random_v4: Vec<IpAddr> = (0..1_000_000)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let random_domains: Vec<String> = (0..1_000_000)
        .map(|_| {
            let a = random_label(&mut rng, 3);
            let b = random_label(&mut rng, 8);
            let c = random_label(&mut rng, 6);
            format!("{a}.{b}.{c}.com")
        })
        .collect();
    let parents: Vec<String> =
        std::fs::read_to_string(shared("maltrail/trails/static/malware/emotet.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.contains([':', '/']))
            .filter(|l| l.parse::<IpAddr>().is_err())
            .map(|l| format!("www.{l}"))
            .collect();
    let via_parent: Vec<String> = (0..1_000_000)
        .map(|i| parents[i % parents.len()].clone())
        .collect();

    let rss_before = rss_kib();
    println!("rss before load: {}", rss_parts());
    let t = Instant::now();
    let store = TrailStore::open(snapshot).expect("open");
    let load = t.elapsed();
    let rss_loaded = rss_kib();
    println!("rss after load: {}", rss_parts());
    let mut best = Duration::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let s = TrailStore::open(snapshot).expect("open");
        best = best.min(t.elapsed());
        drop(black_box(s));
    }
    println!(
        "load: {:.1} ms first, {:.1} ms best of 10 (page cache warm)",
        load.as_secs_f64() * 1000.0,
        best.as_secs_f64() * 1000.0
    );

    let (ns, n) = ns_per_op(&hits_v4, 5, |ip| store.lookup_ip(*ip).is_some());
    println!(
        "ipv4 hit: {ns:.1} ns/lookup ({n} hits of {}, cycling over {} listed addresses)",
        hits_v4.len(),
        listed.len()
    );
    println!("rss after ipv4 hits: {}", rss_parts());
    let (ns, n) = ns_per_op(&random_v4, 5, |ip| store.lookup_ip(*ip).is_some());
    println!(
        "ipv4 random (miss): {ns:.1} ns/lookup ({n} hits of {})",
        random_v4.len()
    );
    println!("rss after ipv4 random: {}", rss_parts());
    let (ns, n) = ns_per_op(&random_domains, 5, |d| store.lookup_domain(d).is_some());
    println!(
        "domain random 4 labels (miss, parent walk): {ns:.1} ns/lookup ({n} hits of {})",
        random_domains.len()
    );
    println!("rss after domain random: {}", rss_parts());
    let (ns, n) = ns_per_op(&via_parent, 5, |d| {
        store
            .lookup_domain(d)
            .is_some_and(|h| h.parent && matches!(h.trail, Matched::Text(_)))
    });
    println!(
        "domain hit via parent: {ns:.1} ns/lookup ({n} hits of {})",
        via_parent.len()
    );
    let t = Instant::now();
    black_box(store.match_wildcard("first-use.example"));
    println!(
        "wildcard patterns compiled on first use in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let wildcard_hits = random_domains[..100_000]
        .iter()
        .filter(|d| store.match_wildcard(d).is_some())
        .count();
    println!(
        "wildcard patterns (regex set): {:.0} ns/lookup over 100,000 random names ({wildcard_hits} hits)",
        t.elapsed().as_nanos() as f64 / 100_000.0
    );
    let rss_swept = rss_kib();
    println!("rss after domain parent hits: {}", rss_parts());

    // Upper bound: every page of the snapshot resident.
    let mut sum = 0u64;
    for d in &random_domains[..1000] {
        sum += u64::from(store.lookup_domain(d).is_some());
    }
    black_box(sum);
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "rss: {:.1} MiB with the queries built; +{:.1} MiB after load; +{:.1} MiB after the \
         lookup sweeps (store pages touched), snapshot file {:.1} MiB",
        mib(rss_before),
        mib(rss_loaded.saturating_sub(rss_before)),
        mib(rss_swept.saturating_sub(rss_before)),
        store.image_len() as f64 / (1024.0 * 1024.0)
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!(
        "{cpu}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}
