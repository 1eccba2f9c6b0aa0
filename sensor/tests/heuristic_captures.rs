//! The content heuristics over real captures and over generated ordinary browsing.
//!
//! `shared/data/pcaps/http-attack` holds real attack traffic (Suricata and Zeek test
//! traces): each capture must raise the classes listed here. `pcaps/suspicious` holds a
//! real lookup of an IP-information service: a trail event and no heuristic noise. A
//! capture of ordinary browsing from the generator must raise no content heuristic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spoor_core::{Event, EventKind, KeyPath};
use spoor_feeds::TrailHandle;
use spoor_feeds::compile::{CompileSource, compile};
use spoor_feeds::config::{BaseDirs, OriginDefaults};
use spoor_feeds::format::FormatSpec;
use spoor_sensor::capture::FileCapture;
use spoor_sensor::config::RawSensor;
use spoor_sensor::generator::{GeneratorConfig, write_capture};
use spoor_sensor::heuristics::content::Heuristic;
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::output::maltrail::render_line;
use spoor_sensor::pipeline::Pipeline;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

/// A snapshot of `path` (in `format`) in a temp dir.
fn trails(dir: &Path, path: PathBuf, format: FormatSpec) -> Arc<TrailHandle> {
    let snapshot = dir.join("trails.snapshot");
    compile(
        &[CompileSource {
            name: "test".into(),
            path,
            format,
            defaults: OriginDefaults::default(),
            required: true,
        }],
        &snapshot,
    )
    .expect("compile trails");
    Arc::new(TrailHandle::open(&snapshot).expect("open snapshot"))
}

fn corpus_trails(dir: &Path) -> Arc<TrailHandle> {
    trails(
        dir,
        data("maltrail/corpus/trails.csv"),
        FormatSpec::MaltrailCsv,
    )
}

/// Every event the default sensor raises on `files`.
fn run(trails: &Arc<TrailHandle>, files: Vec<PathBuf>) -> Vec<Event> {
    let dirs = BaseDirs {
        config_dir: Path::new("/"),
        state_dir: Path::new("/nonexistent"),
    };
    let config = RawSensor {
        name: Some("sensor1".into()),
        ..RawSensor::default()
    }
    .validate(&KeyPath::root().key("sensor"), &dirs)
    .expect("default sensor config");
    let mut pipeline = Pipeline::new(&config, Arc::clone(trails), MetricsHub::default());
    let mut source = FileCapture::new(files);
    let mut events = Vec::new();
    pipeline
        .run(
            &mut source,
            &mut |e| events.push(e),
            &AtomicBool::new(false),
        )
        .expect("capture");
    pipeline.finish(&mut |e| events.push(e));
    assert!(source.problems().is_empty(), "{:?}", source.problems());
    events
}

/// The content heuristic behind an event, if it is one.
fn content_heuristic(e: &Event) -> Option<Heuristic> {
    (e.kind == EventKind::Heuristic)
        .then_some(e.context.heuristic.as_ref())
        .flatten()
        .and_then(|h| Heuristic::from_name(&h.name))
}

/// Real attack captures and the content heuristics each must raise (with a piece of the
/// trail), and none other.
const ATTACKS: &[(&str, &[(Heuristic, &str)])] = &[
    (
        // Nikto probing /cgi-bin/cart32.exe over IPv6 in a VLAN: the tool's agent; the
        // .exe under /cgi-bin/ is a server program, not a download.
        "http-attack/suricata-verify__bug-814__input.pcap",
        &[(Heuristic::SuspiciousUserAgent, "Nikto")],
    ),
    (
        // `page=../../../etc/passwd` in the data of a TCP Fast Open SYN.
        "http-attack/suricata-verify__tcp-fastopen-01__tfo.pcap",
        &[(Heuristic::PathTraversal, "page=../../../etc/passwd")],
    ),
    (
        // `/%2e%2e/images.gif` from a client whose source port is 53.
        "http-attack/suricata-verify__uricontent__detect-uricontent-05__input.pcap",
        &[(Heuristic::PathTraversal, "/%2e%2e/images.gif")],
    ),
    (
        // DVWA: `1' OR '1'='1`, `UNION SELECT NULL, version() #`, `2' OR '2'='2`.
        "http-attack/zeek__http__cooper-grill-dvwa.pcapng",
        &[
            (Heuristic::SqlInjection, "id=1%27+OR+%271%27%3D%271"),
            (Heuristic::SqlInjection, "UNION+SELECT"),
            (Heuristic::SqlInjection, "id=2%27+OR+%272%27%3D%272"),
        ],
    ),
    (
        // `GET /../a/b/../c` + `/./d.html HTTP/1.1...` in two segments: read whole through
        // stream reassembly.
        "http-attack/suricata-verify__detect-http-uri__DetectEngineHttpRawUriTest01__test.fpc.pcap",
        &[(Heuristic::PathTraversal, "/../a/b")],
    ),
];

#[test]
fn real_attack_captures_raise_their_classes() {
    let dir = tempfile::tempdir().unwrap();
    let trails = corpus_trails(dir.path());
    let mut failures = Vec::new();
    for (capture, expected) in ATTACKS {
        let events = run(&trails, vec![data(&format!("pcaps/{capture}"))]);
        let raised: Vec<(Heuristic, &Event)> = events
            .iter()
            .filter_map(|e| content_heuristic(e).map(|h| (h, e)))
            .collect();
        let lines = || {
            events
                .iter()
                .map(render_line)
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        for (h, piece) in *expected {
            let hit = raised
                .iter()
                .find(|(got, e)| got == h && e.trail.contains(piece));
            match hit {
                Some((_, e)) => {
                    assert_eq!(e.reference, "(heuristic)");
                    let reason = &e.context.heuristic.as_ref().unwrap().reason;
                    assert!(!reason.is_empty(), "{capture}: no reason");
                }
                None => failures.push(format!(
                    "{capture}: no {} event with `{piece}`; events:\n  {}",
                    h.name(),
                    lines()
                )),
            }
        }
        for (h, e) in &raised {
            if !expected.iter().any(|(want, _)| want == h) {
                failures.push(format!(
                    "{capture}: unexpected {}: {}",
                    h.name(),
                    render_line(e)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ip_lookup_service_capture_is_a_trail_hit_without_heuristic_noise() {
    let dir = tempfile::tempdir().unwrap();
    let trails = trails(
        dir.path(),
        data("maltrail/trails/static/suspicious/ipinfo.txt"),
        FormatSpec::Maltrail,
    );
    let events = run(
        &trails,
        vec![data(
            "pcaps/suspicious/zeek__tcp__qi_internet_SYNACK_curl_jsonip.pcap",
        )],
    );
    let lines: Vec<String> = events.iter().map(render_line).collect();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Host && e.trail == "jsonip.com"),
        "{lines:#?}"
    );
    assert!(
        !events.iter().any(|e| content_heuristic(e).is_some()),
        "{lines:#?}"
    );
}

#[test]
fn generated_browsing_raises_no_content_heuristic() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("browsing.pcap");
    let summary = write_capture(&pcap, &GeneratorConfig::new(7, 60_000)).unwrap();
    assert!(summary.flows_by_kind.total() > 1_000);
    let trails = corpus_trails(dir.path());
    let events = run(&trails, vec![pcap]);
    let noisy: Vec<String> = events
        .iter()
        .filter(|e| content_heuristic(e).is_some())
        .map(render_line)
        .collect();
    assert!(noisy.is_empty(), "{}", noisy.join("\n"));
}
