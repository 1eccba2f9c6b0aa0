//! `spoor sensor`: capture (live or from files), detect, condense, and write events.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use spoor_core::Event;
use spoor_feeds::{Reload, TrailHandle};
use spoor_sensor::capture::{FileCapture, LiveCapture};
use spoor_sensor::config::RawOutput;
use spoor_sensor::heuristics::Heuristics;
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::output::{
    DailyLogSink, EventSink, FileSink, Outputs, ShipperSink, TcpSink, UdpSink, maltrail,
};
use spoor_sensor::pipeline::Pipeline;
use spoor_sensor::privilege;
use spoor_sensor::workers::{
    EventStage, STAGE_QUEUE, StageClock, StageMsg, run_distributed, spawn_capture_worker,
    spawn_distributed,
};

use super::{Context, EXIT_RUNTIME};

#[derive(Debug, Args)]
pub(crate) struct SensorArgs {
    /// Capture live on these interfaces (repeatable); default: `[sensor] interfaces`
    #[arg(short = 'i', long = "interface", value_name = "IFACE", num_args = 1..)]
    interfaces: Vec<String>,
    /// Read these pcap/pcapng files in order instead of capturing
    #[arg(short = 'r', long = "read", value_name = "FILE", num_args = 1.., conflicts_with = "interfaces")]
    files: Vec<PathBuf>,
    /// Print each event on standard output
    #[arg(long)]
    console: bool,
    /// Console format
    #[arg(long, value_enum, default_value_t = ConsoleFormat::Maltrail)]
    format: ConsoleFormat,
    /// Trail snapshot to use instead of `[trails] snapshot`
    #[arg(long, value_name = "PATH")]
    snapshot: Option<PathBuf>,
    /// Do not write the daily event logs
    #[arg(long)]
    no_log: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9310)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConsoleFormat {
    /// One JSON object per event (the fields of the event: id, time, src, dst, kind, trail, ...)
    Json,
    /// Maltrail's event line
    Maltrail,
}

pub(crate) static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP (`service spoor_sensor reload`, `systemctl reload`): look for a newer trail
/// snapshot now instead of at the next `reload_interval`.
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

pub(crate) fn install_signal_handlers() {
    // SAFETY: the handlers only store to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
    }
}

/// SIGHUP: reload the trails if the snapshot file changed.
fn reload_on_hangup(trails: &TrailHandle) {
    if !RELOAD.swap(false, Ordering::Relaxed) {
        return;
    }
    match trails.reload_if_changed() {
        Ok(Reload::Swapped) => tracing::info!("SIGHUP: newer trail snapshot loaded"),
        Ok(Reload::Unchanged) => tracing::info!("SIGHUP: trail snapshot unchanged"),
        Err(e) => tracing::error!("SIGHUP: kept the current trails: {e}"),
    }
}

/// Switch to `[sensor] user`/`group` once the capture devices are open.
fn drop_privileges(sensor: &spoor_sensor::config::SensorConfig) -> anyhow::Result<()> {
    let Some(user) = &sensor.user else {
        return Ok(());
    };
    let id = privilege::lookup(user, sensor.group.as_deref())?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == id.uid {
        tracing::info!(user = %id, "already running as the configured user");
        return Ok(());
    }
    privilege::drop_to(&id).with_context(|| format!("cannot switch to {id}"))?;
    tracing::info!(user = %id, "capture open; now running unprivileged");
    Ok(())
}

/// The console as one more sink.
#[derive(Debug)]
struct ConsoleSink {
    format: ConsoleFormat,
}

impl EventSink for ConsoleSink {
    fn name(&self) -> &str {
        "console"
    }
    fn emit(&mut self, event: &Event) -> Result<(), spoor_sensor::output::OutputError> {
        let line = match self.format {
            ConsoleFormat::Json => serde_json::to_string(event).unwrap_or_default(),
            ConsoleFormat::Maltrail => maltrail::render_line(event),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| spoor_sensor::output::OutputError::io("writing to stdout", e))
    }
    fn flush(&mut self) -> Result<(), spoor_sensor::output::OutputError> {
        Ok(())
    }
}

/// The status the shipper sends with each batch, from the sensor's published counters.
fn status_fn(name: &str, metrics: &MetricsHub) -> spoor_sensor::output::shipper::StatusFn {
    let name = name.to_string();
    let metrics = metrics.clone();
    let started = std::time::Instant::now();
    Box::new(move || {
        let s = metrics.latest();
        spoor_core::SensorStatus {
            name: name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: started.elapsed().as_secs(),
            packets: s.packets,
            drops: s.capture_dropped + s.capture_if_dropped,
            trails_age_secs: (s.trails > 0).then_some(s.trail_age_seconds),
            spool_dropped: 0,
        }
    })
}

pub(crate) fn run(ctx: &Context, args: SensorArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let sensor = config.sensor.clone();
    let snapshot = args
        .snapshot
        .unwrap_or_else(|| config.trails.snapshot.clone());
    if !snapshot.exists() {
        anyhow::bail!(
            "no trail snapshot at {}; build it with `spoor trails compile`",
            snapshot.display()
        );
    }
    let trails = Arc::new(TrailHandle::open(&snapshot)?);
    let counts: u64 = trails.current().meta().counts.values().sum();
    tracing::info!(snapshot = %snapshot.display(), trails = counts, "trails loaded");
    let _watcher = trails.watch(sensor.reload_interval.as_std(), |result| match result {
        Ok(Reload::Swapped) => tracing::info!("newer trail snapshot loaded"),
        Ok(Reload::Unchanged) => {}
        Err(e) => tracing::error!("kept the current trails: {e}"),
    });

    let stop = Arc::new(AtomicBool::new(false));
    // Live capture: open every device first, then drop root, then everything else (log
    // files, spool) is created as the unprivileged user.
    let per_iface = sensor.workers.max(1);
    let mut sources = Vec::new();
    if args.files.is_empty() {
        let interfaces = if args.interfaces.is_empty() {
            sensor.interfaces.clone()
        } else {
            args.interfaces.clone()
        };
        if interfaces.is_empty() {
            anyhow::bail!(
                "nothing to capture: give -i IFACE or -r FILE, or set `[sensor] interfaces` in the config"
            );
        }
        for (i, iface) in interfaces.iter().enumerate() {
            // Linux spreads one interface over several handles in the kernel (PACKET_FANOUT
            // by flow); elsewhere one reader spreads frames over the workers.
            let count = if per_iface == 1 || cfg!(target_os = "linux") {
                per_iface
            } else {
                1
            };
            // One fanout group id per interface and process.
            let group = (std::process::id() as u16).wrapping_add(i as u16);
            let mut handles = Vec::with_capacity(count);
            for _ in 0..count {
                let source = LiveCapture::open(iface, &sensor.live, Arc::clone(&stop))?;
                #[cfg(target_os = "linux")]
                if count > 1 {
                    source.join_fanout(group)?;
                }
                handles.push(source);
            }
            let _ = group;
            sources.push((iface.clone(), handles));
        }
        drop_privileges(&sensor)?;
    }

    let metrics = MetricsHub::default();
    let mut outputs = Outputs::new();
    if !args.no_log
        && let Some(log) = &sensor.log
    {
        outputs.add(Box::new(
            DailyLogSink::new(log.clone()).context("cannot open the daily event log")?,
        ));
    }
    for output in &sensor.outputs {
        let sink: Box<dyn EventSink> = match output.clone() {
            RawOutput::File(c) => Box::new(FileSink::new(c)?),
            RawOutput::Tcp(c) => Box::new(TcpSink::new(c)?),
            RawOutput::Udp(c) => Box::new(UdpSink::new(c)?),
            RawOutput::Daily(c) => Box::new(DailyLogSink::new(c)?),
            RawOutput::Server(c) => Box::new(
                ShipperSink::new(c, status_fn(&sensor.name, &metrics), Some(metrics.clone()))
                    .context("cannot start the shipper to the server")?,
            ),
        };
        outputs.add(sink);
    }
    if args.console {
        outputs.add(Box::new(ConsoleSink {
            format: args.format,
        }));
    }

    if let Some(addr) = args.metrics {
        let bound = metrics
            .serve(addr)
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    install_signal_handlers();

    let heuristics = Arc::new(Heuristics::new(sensor.heuristics));
    if !args.files.is_empty() {
        let source = FileCapture::new(args.files.clone());
        let mut emit = |e: Event| outputs.emit(&e);
        let (source, snapshot) = if sensor.workers <= 1 {
            let mut source = source;
            let mut pipeline = Pipeline::with_heuristics(
                &sensor,
                Arc::clone(&trails),
                metrics.clone(),
                Arc::clone(&heuristics),
            );
            pipeline.run(&mut source, &mut emit, &STOP)?;
            pipeline.finish(&mut emit);
            (source, pipeline.snapshot())
        } else {
            let (source, report) = run_distributed(
                &sensor,
                Arc::clone(&trails),
                metrics.clone(),
                heuristics,
                source,
                sensor.workers,
                StageClock::Packets,
                &mut emit,
                &STOP,
            )?;
            let source = source.context("the capture reader thread failed")?;
            (source, report.snapshot)
        };
        outputs.flush();
        tracing::info!("{}", snapshot.stats_line());
        for sink in outputs.reports() {
            tracing::debug!("{sink}");
        }
        if source.problems().is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for p in source.problems() {
            eprintln!(
                "spoor: {}: {} (after {} frames)",
                p.path.display(),
                p.reason,
                p.frames
            );
        }
        return Ok(ExitCode::from(EXIT_RUNTIME));
    }

    let (tx, rx) = sync_channel::<StageMsg>(STAGE_QUEUE);
    let mut worker_no = 0;
    let mut capture_threads = Vec::new();
    let mut distributed = Vec::new();
    for (iface, handles) in sources {
        if handles.len() < per_iface {
            let source = handles
                .into_iter()
                .next()
                .expect("every interface has a handle");
            tracing::info!(interface = %iface, workers = per_iface, "capturing (one reader)");
            distributed.push(
                spawn_distributed(
                    &sensor,
                    &trails,
                    &metrics,
                    &heuristics,
                    source,
                    per_iface,
                    worker_no,
                    &tx,
                    &STOP,
                )
                .context("cannot start the worker threads")?,
            );
            worker_no += per_iface;
            continue;
        }
        for (n, source) in handles.into_iter().enumerate() {
            let pipeline = Pipeline::worker(
                &sensor,
                Arc::clone(&trails),
                metrics.clone(),
                Arc::clone(&heuristics),
                format!("{iface}#{n}"),
                worker_no == 0,
            );
            capture_threads.push(
                spawn_capture_worker(
                    pipeline,
                    Box::new(source),
                    worker_no,
                    tx.clone(),
                    Arc::clone(&stop),
                )
                .context("cannot start a capture thread")?,
            );
            worker_no += 1;
        }
        tracing::info!(interface = %iface, workers = per_iface, "capturing");
    }
    drop(tx);
    let mut stage = EventStage::new(&sensor, metrics.clone(), StageClock::Wall, worker_no);
    let outputs = std::cell::RefCell::new(outputs);
    stage.run(
        &rx,
        &mut |e: Event| outputs.borrow_mut().emit(&e),
        &mut || {
            if STOP.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            reload_on_hangup(&trails);
            outputs.borrow_mut().flush();
        },
    );
    let mut outputs = outputs.into_inner();
    outputs.flush();
    tracing::info!("{}", stage.total().stats_line());
    let mut failed = false;
    for w in capture_threads {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("spoor: {e}");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    for d in distributed {
        if let (_, Err(e), _) = d.join() {
            eprintln!("spoor: {e}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    })
}
