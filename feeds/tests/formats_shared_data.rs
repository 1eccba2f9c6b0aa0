//! Every format against the real files in `shared/data` (read only, never copied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spoor_core::{Indicator, TrailKind};
use spoor_feeds::format::{CsvOptions, FormatSpec, ParseReport, Record, Sink};
use spoor_feeds::source::{LoadStats, load_source};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

fn data(relative: &str) -> PathBuf {
    Path::new(DATA).join(relative)
}

/// Load `relative` and hand each record to `each`; panics on a path error.
fn load_with(
    relative: &str,
    format: &FormatSpec,
    mut each: impl FnMut(Record),
) -> (LoadStats, ParseReport) {
    let mut report = ParseReport::default();
    let mut push = |r: Record| each(r);
    let mut sink = Sink::new(&mut report, &mut push);
    let stats = load_source(&data(relative), format, &mut sink)
        .unwrap_or_else(|e| panic!("{relative}: {e}"));
    (stats, report)
}

fn load(relative: &str, format: &FormatSpec) -> (Vec<Record>, ParseReport) {
    let mut out = Vec::new();
    let (_, report) = load_with(relative, format, |r| out.push(r));
    assert_eq!(report.accepted as usize, out.len());
    (out, report)
}

#[test]
fn maltrail_static_folder() {
    let mut by_kind: BTreeMap<TrailKind, u64> = BTreeMap::new();
    let (mut emotet, mut mass_scanner) = (0u64, 0u64);
    let mut bad_info = Vec::new();
    let (stats, report) = load_with("maltrail/trails/static", &FormatSpec::Maltrail, |r| {
        *by_kind.entry(r.indicator.kind()).or_default() += 1;
        let info = r.info.as_deref().unwrap_or_default();
        match info {
            "emotet (malware)" => {
                emotet += 1;
                assert_eq!(r.reference.as_deref(), Some("(static)"));
            }
            "mass scanner" => mass_scanner += 1,
            _ => {}
        }
        if (info.is_empty() || info.contains("(static)")) && bad_info.len() < 5 {
            bad_info.push(r);
        }
    });
    eprintln!(
        "static: {stats:?}, accepted {}, malformed {}, by kind {by_kind:?}",
        report.accepted, report.malformed_count
    );
    assert_eq!(stats.files, 3113);
    // 1,852,460 trail lines (1.63M distinct); the few bad ones are real typos such as
    // `31.76.252.47:443:443` or ports above 65535.
    assert_eq!(report.accepted + report.malformed_count, 1_852_460);
    assert!(report.malformed_count < 100, "{}", report.malformed_count);
    // Every trail of malware/emotet.txt, and only those, carries its info.
    let (_, alone) = load_with(
        "maltrail/trails/static/malware/emotet.txt",
        &FormatSpec::Maltrail,
        |_| {},
    );
    assert!(emotet > 1_000, "emotet trails: {emotet}");
    assert_eq!(emotet, alone.accepted);
    assert!(mass_scanner > 100, "mass scanner trails: {mass_scanner}");
    assert!(bad_info.is_empty(), "{bad_info:?}");
    for kind in [
        TrailKind::Ip,
        TrailKind::Cidr,
        TrailKind::IpPort,
        TrailKind::Domain,
        TrailKind::Url,
        TrailKind::Wildcard,
    ] {
        assert!(
            by_kind.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind} trails"
        );
    }
}

#[test]
fn maltrail_corpus_trails_csv() {
    let (recs, report) = load("maltrail/corpus/trails.csv", &FormatSpec::MaltrailCsv);
    assert_eq!(report.malformed_count, 0, "{:?}", report.malformed);
    assert_eq!(recs.len(), 20);
    let wildcard = recs
        .iter()
        .find(|r| r.indicator.kind() == TrailKind::Wildcard)
        .unwrap();
    assert_eq!(wildcard.info.as_deref(), Some("malware (test)"));
    assert_eq!(wildcard.reference.as_deref(), Some("(static)"));
}

#[test]
fn maltrail_whitelist() {
    let (recs, report) = load("maltrail/data/whitelist.txt", &FormatSpec::Whitelist);
    // `www.nirsoft.net/utils` and `185.125.188.59:443` are not whitelistable values.
    assert_eq!(report.malformed_count, 2, "{:?}", report.malformed);
    assert!(recs.len() > 3_500, "{}", recs.len());
    assert!(recs.iter().all(|r| matches!(
        r.indicator,
        Indicator::Domain(_) | Indicator::Ip(_) | Indicator::Cidr(_)
    )));
    assert!(recs.contains(&Record::new(Indicator::Domain("localhost".into()))));
}

#[test]
fn firehol_sets() {
    for (file, expected) in [
        ("feeds/firehol/dshield.netset", 20),
        ("feeds/firehol/feodo.ipset", 235),
        ("feeds/firehol/spamhaus_drop.netset", 683),
    ] {
        let (recs, report) = load(file, &FormatSpec::Ipset);
        assert_eq!(report.malformed_count, 0, "{file}: {:?}", report.malformed);
        assert_eq!(recs.len(), expected, "{file}");
    }
}

#[test]
fn blackbook_csv() {
    let spec = FormatSpec::Csv(CsvOptions {
        column: 0,
        info_column: Some(1),
        delimiter: b',',
        header: true,
        kind: Some(TrailKind::Domain),
    });
    let (recs, report) = load("feeds/blackbook/blackbook_2018-12-13.csv", &spec);
    // One row, `queda212..duckdns.org`, is not a domain name.
    assert_eq!(recs.len() as u64 + report.malformed_count, 1868);
    assert_eq!(report.malformed_count, 1, "{:?}", report.malformed);
    assert_eq!(recs[0].indicator, Indicator::Domain("gracebytry.tk".into()));
    assert_eq!(recs[0].info.as_deref(), Some("lokibot"));
}

#[test]
fn ipsum_level5() {
    let (recs, report) = load(
        "feeds/ipsum/level5.txt",
        &FormatSpec::Ipsum { min_count: 5 },
    );
    assert_eq!(report.malformed_count, 0, "{:?}", report.malformed);
    assert_eq!(recs.len(), 1413);
    assert!(recs.iter().all(|r| r.indicator.kind() == TrailKind::Ip));
}

#[test]
fn suricata_verify_iprep() {
    let root = data("suricata-verify/tests");
    let mut files = Vec::new();
    for entry in walk(&root) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("iprep.list") || name == "iprep-data.txt" {
            files.push(entry);
        }
    }
    assert!(files.len() >= 14, "{files:?}");
    for file in files {
        let relative = file
            .strip_prefix(DATA)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (recs, report) = load(&relative, &FormatSpec::SuricataIprep { min_score: 0 });
        assert_eq!(
            report.malformed_count, 0,
            "{relative}: {:?}",
            report.malformed
        );
        assert!(!recs.is_empty(), "{relative}");
        if relative.contains("reputation-config") {
            // CR-only, CRLF and LF variants of the same three lines.
            assert_eq!(recs.len(), 3, "{relative}");
        }
    }
}

#[test]
fn suricata_verify_datasets() {
    let ua = TrailKind::UserAgent;
    let domain = TrailKind::Domain;
    let ip = TrailKind::Ip;
    // (file, dataset kind, expected first value, malformed lines)
    let cases: &[(&str, TrailKind, Option<&str>, u64)] = &[
        (
            "datasets-02-load/datasets.csv",
            ua,
            Some(r"^curl/7\.43\.0$"),
            0,
        ),
        (
            "datasets-memcap-01/datasets.csv",
            ua,
            Some(r"^curl/7\.43\.0$"),
            0,
        ),
        (
            "datasets-memcap-02/datasets.csv",
            ua,
            Some(r"^curl/7\.43\.0$"),
            0,
        ),
        (
            "datasets/datarep-datasets-mix/datasets.csv",
            ua,
            Some(r"^curl/7\.43\.0$"),
            0,
        ),
        // Not base64: Suricata refuses it, Spoor takes the line as a plain value.
        (
            "datasets-invalid-encoding/datasets.csv",
            ua,
            Some(r"^Y3VybC83Lj!QzLjA=$"),
            0,
        ),
        (
            "datasets-match-subdomain/domains.lst",
            domain,
            Some("evil.com"),
            0,
        ),
        (
            "datasets-09-load/datasets-ip.csv",
            ip,
            Some("82.165.177.154"),
            0,
        ),
        (
            "datasets-09-load/datasets-ipv4.csv",
            ip,
            Some("82.165.177.154"),
            0,
        ),
        ("datarep-01/dns_string.rep", domain, Some("google.com"), 0),
        ("datarep-02/dns_string.rep", domain, Some("google.com"), 0),
        (
            "datasets/datasets-datarep-mix/dns_string.rep",
            domain,
            None,
            0,
        ),
        ("datarep-02/dns_md5.rep", domain, None, 2),
        ("datarep-02/dns_sha256.rep", domain, None, 2),
        ("datarep-03-bad-reputation/dns_md5.rep", domain, None, 2),
        (
            "datasets/datarep-bad-datarep-string/dns_string.rep",
            domain,
            None,
            1,
        ),
        (
            "datasets/datarep-bad-datarep-value/dns_string.rep",
            domain,
            None,
            1,
        ),
    ];
    for &(file, kind, first, malformed) in cases {
        let relative = format!("suricata-verify/tests/{file}");
        let (recs, report) = load(&relative, &FormatSpec::SuricataDataset { kind });
        assert_eq!(
            report.malformed_count, malformed,
            "{file}: {:?}",
            report.malformed
        );
        if let Some(first) = first {
            assert_eq!(recs[0].indicator.to_string(), first, "{file}");
        }
    }
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
