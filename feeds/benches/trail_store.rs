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

/// Resident set size of this process, in KiB (Linux /proc).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
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

    let t = Instant::now();
    let report = compile(&sources, &snapshot).expect("compile");
    let compile_time = t.elapsed();
    let total: u64 = report.meta.counts.values().sum();
    println!("machine: {}", machine());
    println!(
        "compile: {:.2} s for {} records → {} trails, snapshot {:.1} MiB",
        compile_time.as_secs_f64(),
        report.sources.iter().map(|s| s.records).sum::<u64>(),
        total,
        report.bytes as f64 / (1024.0 * 1024.0)
    );
    println!("counts: {:?}", report.meta.counts);

    // Load time: best of several opens (page cache warm, as on a running firewall).
    let mut best = Duration::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let s = TrailStore::open(&snapshot).expect("open");
        best = best.min(t.elapsed());
        drop(black_box(s));
    }
    println!("load: {:.1} ms (best of 10)", best.as_secs_f64() * 1000.0);

    let rss_before = rss_kib();
    let store = TrailStore::open(&snapshot).expect("open");
    let rss_loaded = rss_kib();

    // Queries: listed IPv4 addresses (hits) and random addresses that miss.
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let listed: Vec<Ipv4Addr> =
        std::fs::read_to_string(shared("maltrail/trails/static/mass_scanner.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|w| w.parse().ok())
            .collect();
    let hits_v4: Vec<IpAddr> = (0..1_000_000)
        .map(|i| IpAddr::V4(listed[i % listed.len()]))
        .collect();
    let misses_v4: Vec<IpAddr> = (0..1_000_000)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .filter(|ip| store.lookup_ip(*ip).is_none())
        .collect();
    let domains_miss: Vec<String> = (0..1_000_000)
        .map(|_| {
            let mut label = |n: usize| -> String {
                (0..n)
                    .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
                    .collect()
            };
            format!("{}.{}.{}.com", label(3), label(8), label(6))
        })
        .filter(|d| store.lookup_domain(d).is_none())
        .collect();
    let all_domains: Vec<String> =
        std::fs::read_to_string(shared("maltrail/trails/static/malware/emotet.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                !l.starts_with('#') && !l.is_empty() && !l.contains(':') && !l.contains('/')
            })
            .filter(|l| l.parse::<IpAddr>().is_err())
            .map(|l| format!("www.{l}"))
            .collect();
    let hits_domain: Vec<String> = (0..1_000_000)
        .map(|i| all_domains[i % all_domains.len()].clone())
        .collect();

    let (ns, n) = ns_per_op(&hits_v4, 5, |ip| store.lookup_ip(*ip).is_some());
    println!(
        "ipv4 hit: {ns:.1} ns/lookup ({n} hits of {})",
        hits_v4.len()
    );
    let (ns, n) = ns_per_op(&misses_v4, 5, |ip| store.lookup_ip(*ip).is_some());
    println!(
        "ipv4 miss: {ns:.1} ns/lookup ({n} hits of {})",
        misses_v4.len()
    );
    let (ns, n) = ns_per_op(&domains_miss, 5, |d| store.lookup_domain(d).is_some());
    println!(
        "domain miss (4 labels, parent walk): {ns:.1} ns/lookup ({n} hits of {})",
        domains_miss.len()
    );
    let (ns, n) = ns_per_op(&hits_domain, 5, |d| {
        store
            .lookup_domain(d)
            .is_some_and(|h| h.parent && matches!(h.trail, Matched::Text(_)))
    });
    println!(
        "domain hit via parent: {ns:.1} ns/lookup ({n} hits of {})",
        hits_domain.len()
    );
    let rss_swept = rss_kib();
    println!(
        "rss: {:.1} MiB before load, {:.1} MiB after load (+{:.1}), {:.1} MiB after the lookup sweep (+{:.1} over before load; includes the query vectors)",
        rss_before as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        (rss_loaded - rss_before) as f64 / 1024.0,
        rss_swept as f64 / 1024.0,
        (rss_swept.saturating_sub(rss_before)) as f64 / 1024.0,
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
