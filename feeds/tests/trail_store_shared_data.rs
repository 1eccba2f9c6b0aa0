//! Acceptance: compile the whole shared Maltrail static trail set, Maltrail's whitelist and
//! every shared feed snapshot; then every non-whitelisted indicator of those files must be
//! found with its info (all of them, not a sample), and 100,000 random unlisted IPs and
//! domains must miss.
//!
//! The expectations are built here independently of the compiler: files are walked and
//! split into lines by this test, and only the per-value classifier (`parse_trail`, tested
//! on its own) is shared with the code under test.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use spoor_core::{Indicator, TrailKind};
use spoor_feeds::compile::{CompileSource, build_image};
use spoor_feeds::config::OriginDefaults;
use spoor_feeds::format::{CsvOptions, FormatSpec, parse_kind, parse_trail};
use spoor_feeds::{Matched, TrailStore};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

fn source(name: &str, rel: &str, format: FormatSpec, info: Option<&str>) -> CompileSource {
    CompileSource {
        name: name.into(),
        path: shared(rel),
        format,
        defaults: OriginDefaults {
            info: info.map(Into::into),
            min_consensus: 1,
            ..OriginDefaults::default()
        },
        required: true,
    }
}

/// What one file line promises: this indicator is in the store with this info.
struct Expected {
    indicator: Indicator,
    info: String,
    origin: String,
}

fn value_of(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or("").trim();
    (!line.is_empty()).then_some(line)
}

/// Maltrail `.txt` trail files: info from the file name and its folder.
fn maltrail_expectations(root: &Path, out: &mut Vec<Expected>) {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let stem = path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('_', " ");
            let info = if dir == root {
                stem
            } else {
                format!("{stem} ({})", dir.file_name().unwrap().to_string_lossy())
            };
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for (n, line) in text.lines().enumerate() {
                let Some(value) = value_of(line) else {
                    continue;
                };
                if let Ok(indicator) = parse_trail(value) {
                    out.push(Expected {
                        indicator,
                        info: info.clone(),
                        origin: format!("{}:{}", path.display(), n + 1),
                    });
                }
            }
        }
    }
}

fn list_expectations(rel: &str, kind: TrailKind, info: &str, out: &mut Vec<Expected>) {
    let text = std::fs::read_to_string(shared(rel)).unwrap();
    for (n, line) in text.lines().enumerate() {
        let Some(value) = value_of(line) else {
            continue;
        };
        let value = value.split_whitespace().next().unwrap_or(value);
        if let Ok(indicator) = parse_kind(kind, value) {
            out.push(Expected {
                indicator,
                info: info.into(),
                origin: format!("{rel}:{}", n + 1),
            });
        }
    }
}

#[derive(Default)]
struct WhitelistOracle {
    domains: HashSet<String>,
    nets: Vec<IpNet>,
}

impl WhitelistOracle {
    fn load(rel: &str) -> Self {
        let mut me = WhitelistOracle::default();
        for line in std::fs::read_to_string(shared(rel)).unwrap().lines() {
            let Some(value) = value_of(line) else {
                continue;
            };
            match parse_trail(value) {
                Ok(Indicator::Domain(d)) => {
                    me.domains.insert(d);
                }
                Ok(Indicator::Ip(ip)) => me.nets.push(IpNet::from(ip)),
                Ok(Indicator::Cidr(net)) => me.nets.push(net),
                _ => {}
            }
        }
        me
    }
    fn covers(&self, ind: &Indicator) -> bool {
        match ind {
            Indicator::Domain(d) => {
                let mut rest = d.as_str();
                loop {
                    if self.domains.contains(rest) {
                        return true;
                    }
                    match rest.split_once('.') {
                        Some((_, parent)) => rest = parent,
                        None => return false,
                    }
                }
            }
            Indicator::Ip(ip) | Indicator::IpPort(ip, _) => {
                self.nets.iter().any(|n| n.contains(ip))
            }
            Indicator::Cidr(net) => self.nets.iter().any(|n| n.contains(net)),
            _ => false,
        }
    }
}

fn found(store: &TrailStore, e: &Expected) -> Result<(), String> {
    let has_info = |infos: Vec<String>| {
        if infos.contains(&e.info) {
            Ok(())
        } else {
            Err(format!("found with infos {infos:?}, expected {:?}", e.info))
        }
    };
    let infos_of = |hit: &spoor_feeds::TrailHit<'_>| -> Vec<String> {
        hit.origins().map(|o| o.info.to_string()).collect()
    };
    match &e.indicator {
        Indicator::Ip(ip) => {
            let hits = store.lookup_ip_all(*ip);
            let hit = hits
                .iter()
                .find(|h| h.trail == Matched::Ip(*ip))
                .ok_or("IP not found")?;
            has_info(infos_of(hit))
        }
        Indicator::Cidr(net) => {
            let hits = store.lookup_ip_all(net.network());
            let hit = hits
                .iter()
                .find(|h| h.trail == Matched::Net(*net))
                .ok_or("CIDR not found")?;
            has_info(infos_of(hit))
        }
        Indicator::IpPort(ip, port) => {
            let hit = store
                .lookup_ip_port(*ip, *port)
                .ok_or("IP:port not found")?;
            has_info(infos_of(&hit))
        }
        Indicator::Domain(d) => {
            let hit = store.lookup_domain(d).ok_or("domain not found")?;
            if hit.parent || hit.trail != Matched::Text(d) {
                return Err(format!("matched {} instead of itself", hit.trail));
            }
            has_info(infos_of(&hit))
        }
        Indicator::Url(u) => {
            let hit = store.lookup_url(u).ok_or("URL not found")?;
            if hit.trail != Matched::Text(u) {
                return Err(format!("matched {} instead of itself", hit.trail));
            }
            has_info(infos_of(&hit))
        }
        Indicator::Path(p) => {
            let hit = store.lookup_path(p).ok_or("path not found")?;
            has_info(infos_of(&hit))
        }
        Indicator::Wildcard(w) => {
            let hit = store
                .pattern_trails(TrailKind::Wildcard)
                .find(|h| h.trail == Matched::Text(w))
                .ok_or("wildcard not listed")?;
            has_info(infos_of(&hit))
        }
        other => Err(format!("unexpected kind in the shared data: {other:?}")),
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn every_listed_indicator_is_found_and_random_ones_miss() {
    let blackbook = CsvOptions {
        column: 0,
        info_column: Some(1),
        delimiter: b',',
        header: true,
        kind: Some(TrailKind::Domain),
    };
    let sources = vec![
        source(
            "maltrail-static",
            "maltrail/trails/static",
            FormatSpec::Maltrail,
            None,
        ),
        source(
            "maltrail-whitelist",
            "maltrail/data/whitelist.txt",
            FormatSpec::Whitelist,
            None,
        ),
        source(
            "feodo",
            "feeds/firehol/feodo.ipset",
            FormatSpec::Ipset,
            Some("feodo (malware)"),
        ),
        source(
            "dshield",
            "feeds/firehol/dshield.netset",
            FormatSpec::Ipset,
            Some("dshield attackers"),
        ),
        source(
            "spamhaus-drop",
            "feeds/firehol/spamhaus_drop.netset",
            FormatSpec::Ipset,
            Some("spamhaus drop"),
        ),
        source(
            "blackbook",
            "feeds/blackbook/blackbook_2018-12-13.csv",
            FormatSpec::Csv(blackbook),
            Some("blackbook (malware)"),
        ),
        source(
            "ipsum",
            "feeds/ipsum/level5.txt",
            FormatSpec::Ipsum { min_count: 1 },
            Some("ipsum (reputation)"),
        ),
    ];
    let (image, report) = build_image(&sources).expect("compile");
    for s in &report.sources {
        assert!(s.error.is_none(), "{}: {:?}", s.name, s.error);
    }
    let store = TrailStore::from_image(&image, Path::new("shared.snapshot")).unwrap();

    let mut expected = Vec::new();
    maltrail_expectations(&shared("maltrail/trails/static"), &mut expected);
    assert!(
        expected.len() > 1_800_000,
        "only {} trail lines",
        expected.len()
    );
    list_expectations(
        "feeds/firehol/feodo.ipset",
        TrailKind::Cidr,
        "feodo (malware)",
        &mut expected,
    );
    list_expectations(
        "feeds/firehol/dshield.netset",
        TrailKind::Cidr,
        "dshield attackers",
        &mut expected,
    );
    list_expectations(
        "feeds/firehol/spamhaus_drop.netset",
        TrailKind::Cidr,
        "spamhaus drop",
        &mut expected,
    );
    list_expectations(
        "feeds/ipsum/level5.txt",
        TrailKind::Ip,
        "ipsum (reputation)",
        &mut expected,
    );
    let csv = std::fs::read_to_string(shared("feeds/blackbook/blackbook_2018-12-13.csv")).unwrap();
    for (n, line) in csv.lines().enumerate().skip(1) {
        let mut cols = line.split(',');
        let (Some(domain), Some(family)) = (cols.next(), cols.next()) else {
            continue;
        };
        if let Ok(indicator) = parse_kind(TrailKind::Domain, domain) {
            expected.push(Expected {
                indicator,
                info: family.trim().to_string(),
                origin: format!("blackbook:{}", n + 1),
            });
        }
    }

    let whitelist = WhitelistOracle::load("maltrail/data/whitelist.txt");
    let mut checked = 0usize;
    let mut whitelisted = 0usize;
    let mut failures = Vec::new();
    for e in &expected {
        if whitelist.covers(&e.indicator) {
            whitelisted += 1;
            continue;
        }
        checked += 1;
        if let Err(why) = found(&store, e) {
            failures.push(format!("{} ({}): {why}", e.indicator, e.origin));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} indicators not found correctly, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert!(whitelisted > 0, "the whitelist covered nothing");
    // Whitelisted trails are really gone.
    for e in expected
        .iter()
        .filter(|e| whitelist.covers(&e.indicator))
        .take(1000)
    {
        match &e.indicator {
            Indicator::Domain(d) => assert!(store.lookup_domain(d).is_none(), "{d} whitelisted"),
            Indicator::Ip(ip) => assert!(store.lookup_ip(*ip).is_none(), "{ip} whitelisted"),
            _ => {}
        }
    }

    // Random unlisted addresses and names miss.
    let mut listed_v4: Vec<(u32, u32)> = Vec::new();
    let mut listed_domains: HashSet<&str> = HashSet::new();
    for e in &expected {
        match &e.indicator {
            Indicator::Ip(IpAddr::V4(ip)) => listed_v4.push((u32::from(*ip), u32::from(*ip))),
            Indicator::Cidr(IpNet::V4(n)) => {
                listed_v4.push((u32::from(n.network()), u32::from(n.broadcast())))
            }
            Indicator::Domain(d) => {
                listed_domains.insert(d.as_str());
            }
            _ => {}
        }
    }
    listed_v4.sort_unstable();
    let max_span = listed_v4.iter().map(|r| r.1 - r.0).max().unwrap_or(0);
    let is_listed_v4 = |ip: u32| {
        let i = listed_v4.partition_point(|r| r.0 <= ip);
        listed_v4[..i]
            .iter()
            .rev()
            .take_while(|r| ip - r.0 <= max_span)
            .any(|r| r.1 >= ip)
    };
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut misses = 0;
    while misses < 100_000 {
        let ip = rng.next() as u32;
        if is_listed_v4(ip) {
            continue;
        }
        misses += 1;
        let addr = IpAddr::V4(Ipv4Addr::from(ip));
        assert!(
            store.lookup_ip(addr).is_none(),
            "{addr} is not listed but matched"
        );
    }
    for _ in 0..10_000 {
        let addr = IpAddr::V6(Ipv6Addr::from(
            (u128::from(rng.next()) << 64) | u128::from(rng.next()),
        ));
        assert!(store.lookup_ip(addr).is_none(), "{addr} matched");
    }
    let tlds = ["com", "net", "org", "info", "ru", "io"];
    let mut domain_misses = 0;
    let mut parent_walk: HashMap<bool, usize> = HashMap::new();
    while domain_misses < 100_000 {
        let mut label = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    b"abcdefghijklmnopqrstuvwxyz0123456789"[(rng.next() % 36) as usize] as char
                })
                .collect()
        };
        let name = format!(
            "{}.{}.{}",
            label(4),
            label(10),
            tlds[(rng.next() % tlds.len() as u64) as usize]
        );
        let mut rest = name.as_str();
        let listed = loop {
            if listed_domains.contains(rest) {
                break true;
            }
            match rest.split_once('.') {
                Some((_, p)) => rest = p,
                None => break false,
            }
        };
        *parent_walk.entry(listed).or_default() += 1;
        if listed {
            continue;
        }
        domain_misses += 1;
        assert!(
            store.lookup_domain(&name).is_none(),
            "{name} is not listed but matched"
        );
    }
}

#[test]
fn the_acceptance_examples() {
    let dir = tempfile::tempdir().unwrap();
    let trails = dir.path().join("trails.txt");
    std::fs::write(
        &trails,
        "evil.example\n6.6.6.6:8443\n203.0.113.0/24\n# comment\n",
    )
    .unwrap();
    let sources = vec![CompileSource {
        name: "t".into(),
        path: trails,
        format: FormatSpec::Maltrail,
        defaults: OriginDefaults::default(),
        required: true,
    }];
    let (image, _) = build_image(&sources).unwrap();
    let store = TrailStore::from_image(&image, Path::new("t")).unwrap();
    let hit = store
        .lookup_domain("x.y.evil.example")
        .expect("parent match");
    assert!(hit.parent);
    assert_eq!(hit.trail, Matched::Text("evil.example"));
    assert!(store.lookup_domain("notevil.example").is_none());
    let ip: IpAddr = "6.6.6.6".parse().unwrap();
    assert!(store.lookup_ip_port(ip, 8443).is_some());
    assert!(store.lookup_ip_port(ip, 8080).is_none());
    assert_eq!(
        store
            .lookup_ip("203.0.113.77".parse().unwrap())
            .map(|h| h.trail.to_string()),
        Some("203.0.113.0/24".to_string())
    );
    assert!(store.lookup_ip("203.0.114.1".parse().unwrap()).is_none());
}
