//! Maltrail's sensor test corpus as a behaviour spec: every case of
//! `../shared/data/maltrail/corpus/manifest.json` must produce the events it expects
//! (each expected string appears in one of the Maltrail event lines), with the corpus
//! `trails.csv` as the only trail source. Heuristic cases included: none is skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Deserialize;
use spoor_core::{Event, KeyPath};
use spoor_feeds::TrailHandle;
use spoor_feeds::compile::{CompileSource, compile};
use spoor_feeds::config::{BaseDirs, OriginDefaults};
use spoor_feeds::format::FormatSpec;
use spoor_sensor::capture::FileCapture;
use spoor_sensor::config::RawSensor;
use spoor_sensor::heuristics::Heuristics;
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::output::maltrail::render_line;
use spoor_sensor::pipeline::Pipeline;
use spoor_sensor::workers::{StageClock, run_distributed};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/maltrail/corpus")
        .join(rel)
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    pcap: String,
    expect: Vec<String>,
    notes: String,
}

/// Run the sensor over one capture with the corpus trails and `workers` packet workers;
/// the events it releases.
fn run(trails: &Arc<TrailHandle>, pcap: &Path, workers: usize) -> Vec<Event> {
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
    let mut source = FileCapture::new(vec![pcap.to_path_buf()]);
    let mut events = Vec::new();
    let stop = AtomicBool::new(false);
    if workers > 1 {
        static NEVER: AtomicBool = AtomicBool::new(false);
        let (source, _) = run_distributed(
            &config,
            Arc::clone(trails),
            MetricsHub::default(),
            Arc::new(Heuristics::new(config.heuristics)),
            source,
            workers,
            StageClock::Packets,
            &mut |e| events.push(e),
            &NEVER,
        )
        .expect("capture");
        let problems = source.expect("the reader ends").problems().to_vec();
        assert!(problems.is_empty(), "{problems:?}");
        return events;
    }
    let mut pipeline = Pipeline::new(&config, Arc::clone(trails), MetricsHub::default());
    pipeline
        .run(&mut source, &mut |e| events.push(e), &stop)
        .expect("capture");
    pipeline.finish(&mut |e| events.push(e));
    assert!(source.problems().is_empty(), "{:?}", source.problems());
    events
}

#[test]
fn manifest_cases_produce_their_events() {
    check_manifest(1);
}

#[test]
fn manifest_cases_produce_their_events_at_two_workers() {
    check_manifest(2);
}

fn check_manifest(workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("trails.snapshot");
    compile(
        &[CompileSource {
            name: "corpus".into(),
            path: corpus("trails.csv"),
            format: FormatSpec::MaltrailCsv,
            defaults: OriginDefaults::default(),
            required: true,
        }],
        &snapshot,
    )
    .unwrap();
    let trails = Arc::new(TrailHandle::open(&snapshot).unwrap());
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(corpus("manifest.json")).unwrap()).unwrap();
    assert_eq!(cases.len(), 39);

    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &cases {
        checked += 1;
        let events = run(&trails, &corpus(&case.pcap), workers);
        let lines: Vec<String> = events.iter().map(render_line).collect();
        // `mixed_soup` interleaves the other cases' traffic and states no expectations of
        // its own: it must simply run through. Every other empty list means "no events".
        if case.name == "mixed_soup" {
            assert!(!lines.is_empty(), "mixed_soup found nothing");
            continue;
        }
        if case.expect.is_empty() && !lines.is_empty() {
            failures.push(format!(
                "{} ({}): expected no events, got:\n  {}",
                case.name,
                case.notes,
                lines.join("\n  ")
            ));
        }
        for want in &case.expect {
            if !lines.iter().any(|l| l.contains(want.as_str())) {
                failures.push(format!(
                    "{} ({}): no event line contains `{want}`; lines:\n  {}",
                    case.name,
                    case.notes,
                    lines.join("\n  ")
                ));
            }
        }
    }
    assert!(checked >= 35, "only {checked} cases checked");
    assert!(
        failures.is_empty(),
        "{workers} workers:\n{}",
        failures.join("\n")
    );
}
