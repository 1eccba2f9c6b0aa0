//! `spoor server`, `spoor passwd` and `spoor up`: the server alone, a dashboard user's
//! password, and server plus sensor in one process with embedded defaults.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use ipnet::IpNet;
use spoor_core::wire::MAX_BATCH_EVENTS;
use spoor_core::{Event, SensorStatus};
use spoor_feeds::TrailHandle;
use spoor_sensor::capture::{FileCapture, LiveCapture};
use spoor_sensor::metrics::MetricsHub;
use spoor_sensor::pipeline::Pipeline;
use spoor_server::Server;
use spoor_server::auth::password;
use spoor_server::store::Store;
use spoor_server::store::users::{self, Role};

use super::Context;
use crate::config::Config;

/// Worker threads of the server's runtime (queries run on the blocking pool besides).
const SERVER_WORKER_THREADS: usize = 4;
/// Events the in-process sensor hands over at most this long after they happen.
const UP_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Events waiting between capture threads and the hand-over thread.
const UP_EVENT_QUEUE: usize = 65_536;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_WORKER_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn until_stopped() {
    while !STOP.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn announce(server: &Server) {
    let scheme = if server.fingerprint.is_some() {
        "https"
    } else {
        "http"
    };
    println!("spoor server on {scheme}://{}", server.local_addr);
    if let Some(fp) = &server.fingerprint {
        println!("TLS certificate SHA-256 fingerprint (pin it in the sensors): {fp}");
    }
    if let Some(pw) = &server.initial_admin_password {
        println!(
            "created the first user `{}` with password {pw}\n\
             (shown once, stored hashed; change it with `spoor passwd {}`)",
            spoor_server::FIRST_ADMIN,
            spoor_server::FIRST_ADMIN
        );
    }
    let _ = std::io::stdout().flush();
}

/// The `[server]` section plus what the dashboard's feeds page reads (`[feeds]`) and
/// the responders' section (`[respond]`).
fn server_config(config: &Config) -> spoor_server::config::ServerConfig {
    let mut c = config.server.clone();
    c.feeds = Some(config.feeds.clone());
    c.respond = Some(config.respond.clone());
    c
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {}

pub(crate) fn run_server(ctx: &Context, _args: ServerArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    install_signal_handlers();
    let rt = runtime()?;
    rt.block_on(async {
        let server = Server::start(server_config(&config))
            .await
            .context("cannot start the server")?;
        announce(&server);
        until_stopped().await;
        tracing::info!("stopping");
        server.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// The dashboard user (made if new)
    user: String,
    /// Role: admin, analyst or viewer [default: the user's, viewer for a new user]
    #[arg(long, value_parser = ["admin", "analyst", "viewer"])]
    role: Option<String>,
    /// Networks the user may see (repeatable); `--scope all` clears the scope
    #[arg(long, value_name = "CIDR")]
    scope: Vec<String>,
    /// Make a random password and print it instead of reading one
    #[arg(long)]
    generate: bool,
}

/// Read a password from standard input; on a terminal without echo, twice.
fn read_password(user: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let read = |prompt: &str| -> anyhow::Result<String> {
        if tty {
            eprint!("{prompt}");
        }
        let echo = tty.then(disable_echo).flatten();
        let mut line = String::new();
        let r = stdin.lock().read_line(&mut line);
        if let Some(old) = echo {
            restore_echo(&old);
            eprintln!();
        }
        r.context("cannot read the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let pw = read(&format!("new password for {user}: "))?;
    if tty && read("again: ")? != pw {
        anyhow::bail!("the passwords differ; nothing changed");
    }
    Ok(pw)
}

fn disable_echo() -> Option<libc::termios> {
    // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios they fill in.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return None;
        }
        let old = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        Some(old)
    }
}

fn restore_echo(old: &libc::termios) {
    // SAFETY: restores the settings read by tcgetattr.
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, old);
    }
}

pub(crate) fn run_passwd(ctx: &Context, args: PasswdArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    users::check_name(&args.user)?;
    let scope: Option<Vec<IpNet>> = match args.scope.as_slice() {
        [] => None,
        [all] if all == "all" => Some(Vec::new()),
        list => Some(
            list.iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| anyhow::anyhow!("--scope {s}: not a CIDR or address"))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    let pw = if args.generate {
        password::generate()
    } else {
        read_password(&args.user)?
    };
    password::check_strength(&pw).map_err(|m| anyhow::anyhow!(m))?;
    let hash = password::hash(&pw);
    let role = args.role.as_deref().and_then(Role::parse);
    let path = spoor_server::db_path(&config.server);
    let store = Store::open(&path)
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    let user = args.user.clone();
    store.write_blocking(move |tx| {
        users::upsert_user(tx, &user, Some(&hash), role, scope.as_deref())?;
        spoor_server::store::audit::record(
            tx,
            "(cli)",
            "user.passwd",
            &serde_json::json!({"user": user, "role": role}),
        )
    })?;
    store.close();
    if args.generate {
        println!("password of {}: {pw}", args.user);
    } else {
        println!("password of {} set", args.user);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Capture on these interfaces (repeatable) [default: `[sensor] interfaces`]
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// Read these capture files into the store, then keep serving
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "interfaces"
    )]
    files: Vec<PathBuf>,
}

/// The in-process sensor's health, as a remote one would report it.
fn status(config: &Config, metrics: &MetricsHub, started: Instant) -> SensorStatus {
    let s = metrics.latest();
    SensorStatus {
        name: config.sensor.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: started.elapsed().as_secs(),
        packets: s.packets,
        drops: s.capture_dropped,
        trails_age_secs: (s.trails > 0).then_some(s.trail_age_seconds),
        spool_dropped: 0,
    }
}

pub(crate) fn run_up(ctx: &Context, args: UpArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let snapshot = config.trails.snapshot.clone();
    if !snapshot.exists() {
        println!(
            "no trail snapshot at {}: downloading the enabled feeds and compiling it",
            snapshot.display()
        );
        super::feeds::run(ctx, super::feeds::FeedsCommand::Update { only: Vec::new() })?;
        super::trails::run(ctx, super::trails::TrailsCommand::Compile { output: None })?;
    }
    let trails = Arc::new(TrailHandle::open(&snapshot)?);
    let _watcher = trails.watch(config.sensor.reload_interval.as_std(), |r| {
        if let Err(e) = r {
            tracing::error!("kept the current trails: {e}");
        }
    });
    install_signal_handlers();
    let rt = runtime()?;
    let server = rt
        .block_on(Server::start(server_config(&config)))
        .context("cannot start the server")?;
    announce(&server);
    let server = Arc::new(server);
    let metrics = MetricsHub::default();
    let started = Instant::now();
    let interfaces = if args.interfaces.is_empty() {
        config.sensor.interfaces.clone()
    } else {
        args.interfaces.clone()
    };
    let hand_over = |events: Vec<Event>| -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let st = status(&config, &metrics, started);
        for chunk in events.chunks(MAX_BATCH_EVENTS) {
            rt.block_on(server.ingest_local(st.clone(), chunk.to_vec()))?;
        }
        Ok(())
    };

    if !args.files.is_empty() {
        let mut pipeline = Pipeline::new(&config.sensor, Arc::clone(&trails), metrics.clone());
        let mut source = FileCapture::new(args.files.clone());
        let mut buf = Vec::new();
        let mut emit = |e: Event| buf.push(e);
        pipeline.run(&mut source, &mut emit, &STOP)?;
        pipeline.finish(&mut emit);
        metrics.publish("files", pipeline.snapshot());
        let n = buf.len();
        hand_over(buf)?;
        for p in source.problems() {
            eprintln!("spoor: {}: {}", p.path.display(), p.reason);
        }
        println!("stored {n} events from the capture files; serving until Ctrl-C");
    } else if interfaces.is_empty() {
        println!(
            "no interfaces to capture on (give -i IFACE or set [sensor] interfaces); serving the dashboard only"
        );
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel::<Event>(UP_EVENT_QUEUE);
        let mut workers = Vec::new();
        for iface in &interfaces {
            let mut source = LiveCapture::open(iface, &config.sensor.live, Arc::clone(&stop))?;
            tracing::info!(interface = %iface, "capturing");
            let mut pipeline = Pipeline::new(&config.sensor, Arc::clone(&trails), metrics.clone());
            let (tx, stop) = (tx.clone(), Arc::clone(&stop));
            workers.push(
                std::thread::Builder::new()
                    .name(format!("capture-{iface}"))
                    .spawn(move || {
                        let mut emit = |e: Event| {
                            let _ = tx.send(e);
                        };
                        let result = pipeline.run(&mut source, &mut emit, &stop);
                        pipeline.finish(&mut emit);
                        result
                    })
                    .context("cannot start a capture thread")?,
            );
        }
        drop(tx);
        let mut buf = Vec::new();
        let mut last = Instant::now();
        loop {
            if STOP.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(e) => buf.push(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if buf.len() >= MAX_BATCH_EVENTS || last.elapsed() >= UP_FLUSH_INTERVAL {
                if let Err(e) = hand_over(std::mem::take(&mut buf)) {
                    tracing::error!("storing events failed: {e:#}");
                }
                last = Instant::now();
            }
        }
        hand_over(buf)?;
        for w in workers {
            if let Ok(Err(e)) = w.join() {
                eprintln!("spoor: {e}");
            }
        }
    }
    rt.block_on(until_stopped());
    if let Ok(server) = Arc::try_unwrap(server) {
        rt.block_on(server.stop());
    }
    Ok(ExitCode::SUCCESS)
}
