//! Fuzz the whole packet path: decode, DNS/HTTP/TLS parsing, trail lookups, flows and
//! condensing. The first byte picks the link type, the rest is the frame; trails are a
//! small set compiled once (names, addresses and an IP:port the inputs can reach).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use spoor_core::{KeyPath, Micros};
use spoor_feeds::TrailHandle;
use spoor_feeds::compile::{CompileSource, compile};
use spoor_feeds::config::{BaseDirs, OriginDefaults};
use spoor_feeds::format::FormatSpec;
use spoor_sensor::capture::Frame;
use spoor_sensor::config::RawSensor;
use spoor_sensor::decode::LinkType;
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::pipeline::Pipeline;

fn pipeline() -> &'static Mutex<Pipeline> {
    static PIPELINE: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spoor-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trails = dir.join("trails.txt");
        std::fs::write(&trails, "evil.example\n10.0.0.1\n10.0.0.0/8\n10.0.0.2:80\n/x.php\n").unwrap();
        let snapshot = dir.join("trails.snapshot");
        compile(
            &[CompileSource {
                name: "fuzz".into(),
                path: trails,
                format: FormatSpec::Maltrail,
                defaults: OriginDefaults::default(),
                required: true,
            }],
            &snapshot,
        )
        .unwrap();
        let handle = Arc::new(TrailHandle::open(&snapshot).unwrap());
        let dirs = BaseDirs {
            config_dir: &dir,
            state_dir: &dir,
        };
        let config = RawSensor::default()
            .validate(&KeyPath::root().key("sensor"), &dirs)
            .unwrap();
        Mutex::new(Pipeline::new(&config, handle, MetricsHub::default()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let linktype = LinkType::SUPPORTED
        .get(usize::from(pick) % (LinkType::SUPPORTED.len() + 1))
        .map_or(127, |l| l.0);
    let mut p = pipeline().lock().unwrap();
    let frame = Frame {
        ts: Micros(i64::from(pick) * 1_000_000),
        linktype,
        data: frame,
        wire_len: frame.len() as u32,
    };
    p.process(&frame, &mut |_| {});
    assert_eq!(p.snapshot().packet_panics, 0);
});
