//! `spoor sensor`: capture (live or from files), detect, condense, and write events.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use spoor_core::Event;
use spoor_feeds::{Reload, TrailHandle};
use spoor_sensor::capture::{FileCapture, LiveCapture};
use spoor_sensor::config::RawOutput;
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::output::{
    DailyLogSink, EventSink, FileSink, Outputs, TcpSink, UdpSink, maltrail,
};
use spoor_sensor::pipeline::Pipeline;

use super::{Context, EXIT_RUNTIME};

/// Events waiting between capture threads and the output thread; a full queue makes
/// capture wait (frames may then be dropped by the kernel, counted), never events lost.
const EVENT_QUEUE: usize = 65_536;

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

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub(crate) fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
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
        };
        outputs.add(sink);
    }
    if args.console {
        outputs.add(Box::new(ConsoleSink {
            format: args.format,
        }));
    }

    let metrics = MetricsHub::default();
    if let Some(addr) = args.metrics {
        let bound = metrics
            .serve(addr)
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    install_signal_handlers();

    if !args.files.is_empty() {
        let mut pipeline = Pipeline::new(&sensor, Arc::clone(&trails), metrics.clone());
        let mut source = FileCapture::new(args.files.clone());
        let mut emit = |e: Event| outputs.emit(&e);
        pipeline.run(&mut source, &mut emit, &STOP)?;
        pipeline.finish(&mut emit);
        outputs.flush();
        let snapshot = pipeline.snapshot();
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
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Event>(EVENT_QUEUE);
    let mut workers = Vec::new();
    for iface in &interfaces {
        let mut source = LiveCapture::open(iface, &sensor.live, Arc::clone(&stop))?;
        tracing::info!(interface = %iface, "capturing");
        let mut pipeline = Pipeline::new(&sensor, Arc::clone(&trails), metrics.clone());
        let tx = tx.clone();
        let stop = Arc::clone(&stop);
        let iface = iface.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("capture-{iface}"))
                .spawn(move || {
                    let mut emit = |e: Event| {
                        let _ = tx.send(e);
                    };
                    let result = pipeline.run(&mut source, &mut emit, &stop);
                    pipeline.finish(&mut emit);
                    tracing::info!(interface = %iface, "{}", pipeline.snapshot().stats_line());
                    result.map_err(|e| anyhow::anyhow!(e))
                })
                .context("cannot start a capture thread")?,
        );
    }
    drop(tx);
    loop {
        if STOP.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(event) => outputs.emit(&event),
            Err(mpsc::RecvTimeoutError::Timeout) => outputs.flush(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    outputs.flush();
    let mut failed = false;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("spoor: {e:#}");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    })
}
