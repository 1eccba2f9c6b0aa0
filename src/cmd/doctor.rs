//! `spoor doctor`: a preflight for "it detects nothing" and "it blocks nothing".
//!
//! It reads the config and checks, for the sections that are in use, what the services
//! would meet when they start: the capture interfaces (present, up, promiscuous, opened
//! with libpcap the way the sensor opens them, link type decodable), the trail snapshot
//! (present, loadable, not empty, not stale), the server each `[[sensor.output]] type =
//! "server"` ships to (reachable, certificate trusted, token accepted, clocks agreeing),
//! the `[respond]` backend (reachable, listable, room left), and the clock itself.
//!
//! Every finding is a [`Level`], what was checked, what was found, and the fix an admin
//! applies (a command or a config key). Nothing is changed anywhere: nftables is listed
//! with `create` switched off, the OPNsense alias is not created, and the server probe is
//! a batch the server refuses without storing anything (see [`probe_batch`]).
//!
//! Exit code: 0 when no finding fails (warnings allowed), [`EXIT_FAILED`] when one does,
//! 2 for a config that does not load.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde::Serialize;
use spoor_core::{
    Context as EventContext, Event, EventBatch, EventId, EventKind, Micros, Proto, SensorStatus,
    Severity,
};
use spoor_feeds::store::TrailStore;
use spoor_responders::backend::BackendError;
use spoor_responders::config::{BackendKind, RespondConfig};
use spoor_responders::policy::Mode;
use spoor_sensor::config::{RawOutput, SensorConfig};
use spoor_sensor::decode::LinkType;
use spoor_sensor::output::ShipperConfig;

use super::Context;
use crate::config::{Config, Origin};

/// Exit code when at least one finding fails.
pub(crate) const EXIT_FAILED: u8 = 1;

/// A snapshot older than this many `[feeds] interval`s is stale: the refresh job has
/// missed at least one run.
pub(crate) const STALE_INTERVALS: u32 = 2;

/// A snapshot made this far in the future of this host's clock means one of the two
/// clocks is wrong (a few seconds of difference between hosts is normal).
pub(crate) const MAX_SNAPSHOT_AHEAD: Duration = Duration::from_secs(300);

/// Clock difference to the server beyond which a warning is given: event times and the
/// dashboard's "last seen" drift apart, and TLS validity checks start to fail.
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The longest any one network check (server probe, OPNsense call) may take, whatever
/// longer timeout the config gives the service itself.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A backend holding this share of its limit (percent) gets a warning.
pub(crate) const FULL_WARN_PERCENT: usize = 90;

/// Server answer text quoted in a finding.
const ANSWER_QUOTE: usize = 200;

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

/// `doctor --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DoctorFormat {
    /// One block per finding, for people
    Text,
    /// One JSON document: findings and what was not checked
    Json,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Ok,
    /// Works, but something an admin should look at.
    Warn,
    /// Spoor will not detect or block as configured until this is fixed.
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One thing checked and what came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) level: Level,
    /// capture, trails, server, backend, clock.
    pub(crate) area: &'static str,
    /// What it is about: an interface, a file, a URL, a backend object.
    pub(crate) subject: String,
    /// What was checked.
    pub(crate) check: &'static str,
    /// What was found.
    pub(crate) detail: String,
    /// What to do, for warn and fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fix: Option<String>,
}

impl Finding {
    fn new(
        level: Level,
        area: &'static str,
        subject: impl Into<String>,
        check: &'static str,
    ) -> Self {
        Finding {
            level,
            area,
            subject: subject.into(),
            check,
            detail: String::new(),
            fix: None,
        }
    }
    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Everything the doctor found.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) config: String,
    pub(crate) findings: Vec<Finding>,
    /// Areas not checked because the config does not use them, with why.
    pub(crate) skipped: Vec<String>,
}

impl Report {
    fn worst(&self) -> Level {
        self.findings
            .iter()
            .map(|f| f.level)
            .max()
            .unwrap_or(Level::Ok)
    }
}

pub(crate) fn run(ctx: &Context, args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let report = examine(&config);
    match args.format {
        DoctorFormat::Text => print!("{}", render_text(&report)),
        DoctorFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.worst() == Level::Fail {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Run every check the config calls for.
fn examine(config: &Config) -> Report {
    let config_path = match &config.origin {
        Origin::File(p) => p.display().to_string(),
        Origin::Bundled { missing } => {
            format!("(bundled defaults; {} does not exist)", missing.display())
        }
    };
    let cfg_arg = match &config.origin {
        Origin::File(p) => format!("-c {} ", p.display()),
        Origin::Bundled { .. } => String::new(),
    };
    let mut r = Report {
        config: config_path,
        ..Report::default()
    };
    let now = SystemTime::now();
    check_clock(now, current_exe_time(), &mut r.findings);
    if config.sensor.interfaces.is_empty() {
        r.skipped.push(
            "capture: [sensor] interfaces is empty (the sensor reads capture files only)".into(),
        );
    }
    for iface in &config.sensor.interfaces {
        check_interface(iface, &config.sensor, &mut r.findings);
    }
    check_trails(config, &cfg_arg, now, &mut r.findings);
    check_sensor_user(config, &mut r.findings);
    let servers: Vec<&ShipperConfig> = config
        .sensor
        .outputs
        .iter()
        .filter_map(|o| match o {
            RawOutput::Server(s) => Some(s),
            _ => None,
        })
        .collect();
    if servers.is_empty() {
        r.skipped
            .push("server: no [[sensor.output]] with type = \"server\"".into());
    }
    for s in servers {
        check_server(s, &config.sensor.name, now, &mut r.findings);
    }
    if config.respond.mode == Mode::Off {
        r.skipped.push(
            "backend: [respond] mode = \"off\": nothing is ever blocked (set mode = \"approve\" or \"auto\" to block)"
                .into(),
        );
    } else {
        check_backend(&config.respond, &mut r.findings);
    }
    r
}

fn render_text(r: &Report) -> String {
    let mut out = format!("spoor doctor: {}\n", r.config);
    for f in &r.findings {
        out.push_str(&format!(
            "{:<4}  {} {}: {}: {}\n",
            f.level.label(),
            f.area,
            f.subject,
            f.check,
            f.detail
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    for s in &r.skipped {
        out.push_str(&format!("skip  {s}\n"));
    }
    let count = |l| r.findings.iter().filter(|f| f.level == l).count();
    out.push_str(&format!(
        "{} ok, {} warn, {} fail\n",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    ));
    out
}

// ---------------------------------------------------------------------------------------
// clock

/// When this program's file was last written: the clock cannot be earlier than that.
fn current_exe_time() -> Option<SystemTime> {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
}

fn clock_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "set the clock (`ntpdate -b pool.ntp.org` or `service ntpd onestart`) and keep it set: `sysrc ntpd_enable=YES ntpd_sync_on_start=YES`"
    } else {
        "set the clock and keep it set: `timedatectl set-ntp true` (or `chronyc makestep` with chrony)"
    }
}

fn check_clock(now: SystemTime, built: Option<SystemTime>, out: &mut Vec<Finding>) {
    let f = Finding::new(
        Level::Ok,
        "clock",
        "system time",
        "not before this program's file",
    );
    match built {
        Some(b) if now < b => out.push(
            f.detail(format!(
                "the clock says {} but the spoor binary was written at {}: the clock is behind (TLS certificates, trail ages and event times will be wrong)",
                secs_text(now),
                secs_text(b)
            ))
            .fix(clock_fix())
            .with_level(Level::Fail),
        ),
        Some(_) => out.push(f.detail(secs_text(now))),
        None => out.push(
            f.detail("cannot read the spoor binary's modification time; not compared")
                .with_level(Level::Warn)
                .fix("run the installed binary (its file time is the lower bound for the clock)"),
        ),
    }
}

impl Finding {
    fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn secs_text(t: SystemTime) -> String {
    spoor_feeds::fetch::Timestamp(unix_secs(t)).to_string()
}

/// `3d 4h`, `5h 2m`, `12m`, `40s`.
fn age_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

// ---------------------------------------------------------------------------------------
// capture

/// Interface flags as `getifaddrs` reports them, by name.
fn interface_flags() -> std::io::Result<BTreeMap<String, u32>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success it is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut flags = BTreeMap::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed; its
        // name is a NUL-terminated string that lives as long as the list.
        let (name, f, next) = unsafe {
            let node = &*cur;
            (
                CStr::from_ptr(node.ifa_name).to_string_lossy().into_owned(),
                node.ifa_flags,
                node.ifa_next,
            )
        };
        *flags.entry(name).or_insert(0) |= f;
        cur = next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(flags)
}

/// Bits of [`interface_flags`], as the platform defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfState {
    pub(crate) up: bool,
    pub(crate) running: bool,
    pub(crate) promiscuous: bool,
}

impl IfState {
    fn from_flags(f: u32) -> IfState {
        let has = |bit: libc::c_int| f & (bit as u32) != 0;
        IfState {
            up: has(libc::IFF_UP),
            running: has(libc::IFF_RUNNING),
            promiscuous: has(libc::IFF_PROMISC),
        }
    }
}

fn up_command(iface: &str) -> String {
    if cfg!(target_os = "freebsd") {
        format!("ifconfig {iface} up (and ifconfig_{iface}=\"up\" in /etc/rc.conf)")
    } else {
        format!("ip link set dev {iface} up")
    }
}

fn promisc_command(iface: &str) -> String {
    if cfg!(target_os = "freebsd") {
        format!("ifconfig {iface} promisc")
    } else {
        format!("ip link set dev {iface} promisc on")
    }
}

fn capture_permission_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "start the sensor as root (it opens /dev/bpf, then switches to [sensor] user), or give its user read access to /dev/bpf through a devfs rule"
    } else {
        "start the sensor as root (dist/systemd/spoor-sensor.service does, with CAP_NET_RAW, and it switches to [sensor] user after opening), or give the binary the capabilities: `setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/spoor`; run `spoor doctor` the same way the sensor runs"
    }
}

/// The findings about the interface state alone (separate from the capture so that the
/// logic is testable without interfaces).
pub(crate) fn state_findings(
    iface: &str,
    state: Option<IfState>,
    known: &[String],
    sensor_sets_promisc: bool,
) -> Vec<Finding> {
    let subject = iface.to_string();
    let Some(s) = state else {
        let list_cmd = if cfg!(target_os = "freebsd") {
            "ifconfig -l"
        } else {
            "ip -br link"
        };
        return vec![
            Finding::new(Level::Fail, "capture", subject, "interface exists")
                .detail(format!(
                    "no interface `{iface}` on this host (found: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
                .fix(format!(
                    "set [sensor] interfaces to existing interfaces (`{list_cmd}` lists them)"
                )),
        ];
    };
    let mut out = Vec::new();
    if s.up {
        out.push(
            Finding::new(Level::Ok, "capture", subject.clone(), "interface is up").detail("up"),
        );
        if s.running {
            out.push(
                Finding::new(Level::Ok, "capture", subject.clone(), "link is running")
                    .detail("running"),
            );
        } else {
            out.push(
                Finding::new(Level::Warn, "capture", subject.clone(), "link is running")
                    .detail("up but not running (no carrier): nothing arrives to capture")
                    .fix(format!(
                        "check the cable, switch port or peer of {iface} (`{}`)",
                        if cfg!(target_os = "freebsd") {
                            format!("ifconfig {iface}")
                        } else {
                            format!("ip link show {iface}")
                        }
                    )),
            );
        }
    } else {
        out.push(
            Finding::new(Level::Fail, "capture", subject.clone(), "interface is up")
                .detail("the interface is down: the sensor sees no traffic on it")
                .fix(up_command(iface)),
        );
    }
    if s.promiscuous {
        out.push(Finding::new(Level::Ok, "capture", subject, "promiscuous mode").detail("on"));
    } else if sensor_sets_promisc {
        out.push(
            Finding::new(Level::Ok, "capture", subject, "promiscuous mode")
                .detail("off now; the sensor turns it on when it opens the capture ([sensor] promiscuous = true)"),
        );
    } else {
        out.push(
            Finding::new(Level::Warn, "capture", subject, "promiscuous mode")
                .detail("off, and [sensor] promiscuous = false: only traffic to, from or routed through this host is seen")
                .fix(format!(
                    "set [sensor] promiscuous = true, or `{}`",
                    promisc_command(iface)
                )),
        );
    }
    out
}

fn check_interface(iface: &str, sensor: &SensorConfig, out: &mut Vec<Finding>) {
    let flags = match interface_flags() {
        Ok(f) => f,
        Err(e) => {
            out.push(
                Finding::new(Level::Warn, "capture", iface, "interface exists")
                    .detail(format!("cannot list the interfaces (getifaddrs): {e}"))
                    .fix("check the system: getifaddrs(3) should not fail"),
            );
            BTreeMap::new()
        }
    };
    let state = flags.get(iface).map(|f| IfState::from_flags(*f));
    let known: Vec<String> = flags.keys().cloned().collect();
    out.extend(state_findings(
        iface,
        state,
        &known,
        sensor.live.promiscuous,
    ));
    if state.is_some() {
        out.extend(open_capture(iface, sensor));
    }
}

/// Open the interface with libpcap exactly as the sensor does (same options and filter),
/// and report the link type.
fn open_capture(iface: &str, sensor: &SensorConfig) -> Vec<Finding> {
    let o = &sensor.live;
    let opened = pcap::Capture::from_device(iface).and_then(|c| {
        c.promisc(o.promiscuous)
            .snaplen(o.snaplen)
            .buffer_size(o.buffer_size)
            .immediate_mode(o.immediate)
            .timeout(o.read_timeout_ms)
            .open()
    });
    let mut cap = match opened {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let f = Finding::new(Level::Fail, "capture", iface, "capture permission");
            return vec![if is_permission_error(&text) {
                f.detail(format!("libpcap cannot open it: {text}"))
                    .fix(capture_permission_fix())
            } else {
                f.detail(format!("libpcap cannot open it: {text}")).fix(
                    "fix what libpcap reports (an interface that is down or gone cannot be opened); then `spoor doctor` again",
                )
            }];
        }
    };
    let mut out = vec![
        Finding::new(Level::Ok, "capture", iface, "capture permission")
            .detail("opened with libpcap as the sensor opens it"),
    ];
    let lt = cap.get_datalink();
    let name = lt.get_name().unwrap_or_else(|_| "unknown".to_string());
    out.push(link_type_finding(iface, lt.0, &name));
    if !o.filter.trim().is_empty() {
        match cap.filter(&o.filter, true) {
            Ok(()) => out.push(
                Finding::new(Level::Ok, "capture", iface, "BPF filter")
                    .detail(format!("`{}` compiles", o.filter)),
            ),
            Err(e) => out.push(
                Finding::new(Level::Fail, "capture", iface, "BPF filter")
                    .detail(format!("`{}` is refused: {e}", o.filter))
                    .fix("correct [sensor] filter (pcap-filter(7) syntax; `tcpdump -d 'EXPR'` checks it)"),
            ),
        }
    }
    out
}

fn is_permission_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("permission") || t.contains("not permitted")
}

pub(crate) fn link_type_finding(iface: &str, linktype: i32, name: &str) -> Finding {
    let f = Finding::new(Level::Ok, "capture", iface, "link type decoded");
    if LinkType::SUPPORTED.contains(&LinkType(linktype)) {
        f.detail(format!("link type {linktype} ({name}) is decoded"))
    } else {
        f.with_level(Level::Fail)
            .detail(format!(
                "link type {linktype} ({name}) is not decoded: every frame from it is dropped"
            ))
            .fix("capture on an interface with a supported link type (Ethernet, raw IP, Linux cooked, loopback, PPP, pflog), e.g. the parent of this tunnel")
    }
}

// ---------------------------------------------------------------------------------------
// trails

fn check_trails(config: &Config, cfg_arg: &str, now: SystemTime, out: &mut Vec<Finding>) {
    let path = &config.trails.snapshot;
    let subject = path.display().to_string();
    let rebuild = format!("spoor {cfg_arg}feeds update && spoor {cfg_arg}trails compile");
    if !path.exists() {
        out.push(
            Finding::new(Level::Fail, "trails", subject, "snapshot present")
                .detail("no trail snapshot: the sensor matches no trails (heuristics only)")
                .fix(rebuild),
        );
        return;
    }
    let store = match TrailStore::open(path) {
        Ok(s) => s,
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "trails", subject, "snapshot loads")
                    .detail(e.to_string())
                    .fix(rebuild),
            );
            return;
        }
    };
    let meta = store.meta();
    let total: u64 = meta.counts.values().sum();
    out.extend(trail_findings(
        &subject,
        total,
        meta.created,
        unix_secs(now),
        config.feeds.interval.as_std(),
        &rebuild,
    ));
}

/// Count and age of a loaded snapshot.
pub(crate) fn trail_findings(
    subject: &str,
    trails: u64,
    created: u64,
    now: u64,
    interval: Duration,
    rebuild: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let loaded = Finding::new(Level::Ok, "trails", subject, "snapshot loads");
    if trails == 0 {
        out.push(
            loaded
                .with_level(Level::Fail)
                .detail("loads, but holds no trails")
                .fix(format!(
                    "enable feeds ([feeds] enable) or add [[trails.source]], then `{rebuild}`"
                )),
        );
    } else {
        out.push(loaded.detail(format!("{trails} trails")));
    }
    let age = Finding::new(Level::Ok, "trails", subject, "snapshot age");
    let made = spoor_feeds::fetch::Timestamp(created);
    if created > now + MAX_SNAPSHOT_AHEAD.as_secs() {
        out.push(
            age.with_level(Level::Fail)
                .detail(format!(
                    "compiled at {made}, {} in the future of this host's clock: this clock or the compiling host's is wrong",
                    age_text(Duration::from_secs(created - now))
                ))
                .fix(clock_fix()),
        );
        return out;
    }
    let old = Duration::from_secs(now.saturating_sub(created));
    let limit = interval.saturating_mul(STALE_INTERVALS);
    if old > limit {
        out.push(
            age.with_level(Level::Warn)
                .detail(format!(
                    "compiled {} ago ({made}); [feeds] interval is {}: the refresh has missed its runs",
                    age_text(old),
                    age_text(interval)
                ))
                .fix(format!(
                    "`{rebuild}`, then check the job that runs them every [feeds] interval (cron, or the feeds service) and its log"
                )),
        );
    } else {
        out.push(age.detail(format!(
            "compiled {} ago ({made}); refreshed every {}",
            age_text(old),
            age_text(interval)
        )));
    }
    out
}

// ---------------------------------------------------------------------------------------
// the sensor's user

/// Whether `uid`/`gid` (one group: the sensor keeps only its primary group after the
/// switch) may read or write `path`, by the mode bits of the path and of every folder
/// above it (which must be searchable). A path that does not exist yet is judged by the
/// nearest existing folder, which must be writable for the sensor to create it. ACLs
/// are not read.
pub(crate) fn may_access(path: &Path, uid: u32, gid: u32, write: bool) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let allowed = |m: &std::fs::Metadata, bits: u32| {
        let shift = if m.uid() == uid {
            6
        } else if m.gid() == gid {
            3
        } else {
            0
        };
        (m.mode() >> shift) & bits == bits
    };
    let mut target = path.to_path_buf();
    let mut need = if write { 0o2 } else { 0o4 };
    while !target.exists() {
        // Created by the sensor: the folder above must take new entries.
        need = 0o3;
        match target.parent() {
            Some(p) => target = p.to_path_buf(),
            None => return Ok(false),
        }
    }
    if uid == 0 {
        return Ok(true);
    }
    let meta = std::fs::metadata(&target)?;
    if meta.is_dir() && need == 0o2 {
        need = 0o3;
    }
    if !allowed(&meta, need) {
        return Ok(false);
    }
    for dir in target.ancestors().skip(1) {
        if !allowed(&std::fs::metadata(dir)?, 0o1) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn check_sensor_user(config: &Config, out: &mut Vec<Finding>) {
    let sensor = &config.sensor;
    let Some(user) = &sensor.user else {
        return;
    };
    let id = match spoor_sensor::privilege::lookup(user, sensor.group.as_deref()) {
        Ok(id) => id,
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "privileges", user.as_str(), "[sensor] user exists")
                    .detail(e.to_string())
                    .fix("create the user and group (freebsd/README.md, dist/systemd), or correct [sensor] user / group"),
            );
            return;
        }
    };
    out.push(
        Finding::new(
            Level::Ok,
            "privileges",
            user.as_str(),
            "[sensor] user exists",
        )
        .detail(id.to_string()),
    );
    let group = sensor.group.clone().unwrap_or_else(|| id.gid.to_string());
    let mut paths: Vec<(&'static str, std::path::PathBuf, bool)> = Vec::new();
    if config.trails.snapshot.exists() {
        paths.push(("snapshot readable", config.trails.snapshot.clone(), false));
    }
    if let Some(log) = &sensor.log {
        paths.push(("log folder writable", log.dir.clone(), true));
    }
    for o in &sensor.outputs {
        if let RawOutput::Server(s) = o {
            paths.push(("token readable", s.token_file.clone(), false));
            if let Some(spool) = &s.spool_dir {
                paths.push(("spool writable", spool.clone(), true));
            }
        }
    }
    for (check, path, write) in paths {
        let subject = format!("{user}: {}", path.display());
        let f = Finding::new(Level::Ok, "privileges", subject, check);
        out.push(match may_access(&path, id.uid, id.gid, write) {
            Ok(true) => f.detail(format!("{check} by {id}")),
            Ok(false) if !write => {
                // The snapshot is opened before the switch, but reloads happen after it.
                let level = if check == "snapshot readable" { Level::Warn } else { Level::Fail };
                f.with_level(level)
                    .detail(format!(
                        "{} is not readable by {id} (mode bits of the file and its folders)",
                        path.display()
                    ))
                    .fix(if check == "snapshot readable" {
                        format!(
                            "chmod 0644 {p} and make its folders searchable; `spoor trails compile` writes a new file with the umask's mode: run it with umask 022 or as {user}",
                            p = path.display()
                        )
                    } else {
                        format!(
                            "chgrp {group} {p} && chmod 0640 {p}, and make its folders searchable",
                            p = path.display()
                        )
                    })
            }
            Ok(false) => f
                .with_level(Level::Fail)
                .detail(format!(
                    "{} is not writable by {id}: the sensor opens it after switching users",
                    path.display()
                ))
                .fix(format!(
                    "install -d -o {user} -g {group} -m 0750 {}",
                    path.display()
                )),
            Err(e) => f
                .with_level(Level::Warn)
                .detail(format!("cannot read the mode of {}: {e}", path.display()))
                .fix("check the path and its folders"),
        });
    }
}

// ---------------------------------------------------------------------------------------
// server

/// The probe: a batch under this sensor's name holding one event with `count = 0`. The
/// server checks, in this order (server/src/api/ingest.rs): the token (401), the batch's
/// sensor name against the token (403 `sensor_mismatch`), then each event; `count = 0` is
/// refused (422) before anything is stored. So 422 means "token accepted, name right",
/// and the server's data and the sensor's status on the dashboard stay untouched.
pub(crate) fn probe_batch(sensor: &str, now: Micros) -> EventBatch {
    let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    EventBatch {
        status: SensorStatus {
            name: sensor.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..SensorStatus::default()
        },
        events: vec![Event {
            id: EventId(0),
            time: now,
            sensor: sensor.to_string(),
            src: unspecified,
            src_port: None,
            dst: unspecified,
            dst_port: None,
            proto: Proto::TCP,
            kind: EventKind::Ip,
            trail: "spoor-doctor-probe".to_string(),
            info: "spoor doctor probe (never stored: count 0)".to_string(),
            reference: "(doctor)".to_string(),
            severity: Severity::Low,
            offender: None,
            answers: Vec::new(),
            count: 0,
            first_seen: now,
            last_seen: now,
            context: EventContext::default(),
        }],
    }
}

/// What the probe's answer means.
pub(crate) fn token_finding(url: &str, status: u16, body: &str, sensor: &str) -> Finding {
    let f = Finding::new(Level::Ok, "server", url, "sensor token accepted");
    let quote: String = body.chars().take(ANSWER_QUOTE).collect();
    match status {
        422 => f.detail(format!(
            "token accepted for sensor `{sensor}` (the probe event was refused as intended, nothing stored)"
        )),
        401 => f
            .with_level(Level::Fail)
            .detail(format!("the server does not know this token (401): {quote}"))
            .fix(format!(
                "on the server, register it: [[server.sensor]] name = \"{sensor}\" with token_file (or token_sha256 = the output of `printf %s TOKEN | sha256sum`), restart the server; check the sensor's token_file holds that token"
            )),
        403 => f
            .with_level(Level::Fail)
            .detail(format!(
                "the token belongs to another sensor (403): {quote}"
            ))
            .fix(format!(
                "set [sensor] name to the name the server gives this token, or register a token for `{sensor}` in [[server.sensor]]"
            )),
        200..=299 => f
            .with_level(Level::Warn)
            .detail(format!(
                "token accepted, but the server stored a probe event with count 0 ({status}): it does not check events as this version expects"
            ))
            .fix("run the same Spoor version on sensor and server"),
        404 => f
            .with_level(Level::Fail)
            .detail(format!("no ingest endpoint there (404): {quote}"))
            .fix("point url at the Spoor server's base URL (events go to <url>/api/v1/events)"),
        _ => f
            .with_level(Level::Fail)
            .detail(format!("unexpected answer {status}: {quote}"))
            .fix("check the server's log (spoor server) for this request"),
    }
}

/// Clock difference to the server from its `Date` header.
pub(crate) fn skew_finding(url: &str, server: SystemTime, local: SystemTime) -> Finding {
    let (skew, word) = match local.duration_since(server) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    let f = Finding::new(Level::Ok, "clock", url, "clock agrees with the server");
    if skew > MAX_CLOCK_SKEW {
        f.with_level(Level::Warn)
            .detail(format!(
                "this host's clock is {} {word} the server's (more than {}s)",
                age_text(skew),
                MAX_CLOCK_SKEW.as_secs()
            ))
            .fix(format!("{} (on both hosts)", clock_fix()))
    } else {
        f.detail(format!("within {}s", MAX_CLOCK_SKEW.as_secs()))
    }
}

fn http_client(s: &ShipperConfig) -> Result<reqwest::blocking::Client, (String, String)> {
    let timeout = s.timeout.as_std().min(PROBE_TIMEOUT);
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("spoor-doctor/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pin) = &s.pin_sha256 {
        let pin = spoor_sensor::output::pin::parse_fingerprint(pin)
            .map_err(|e| (format!("pin_sha256: {e}"), "correct pin_sha256".to_string()))?;
        let tls = spoor_sensor::output::pin::pinned_client_config(pin).map_err(|e| {
            (
                format!("TLS setup: {e}"),
                "report this as a bug".to_string(),
            )
        })?;
        builder = builder.tls_backend_preconfigured(tls);
    } else if let Some(ca) = &s.ca_file {
        let fix =
            "ca_file must be a readable PEM file with the CA that signed the server's certificate"
                .to_string();
        let pem = std::fs::read(ca).map_err(|e| {
            (
                format!("reading ca_file {}: {e}", ca.display()),
                fix.clone(),
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| (format!("ca_file {}: {e}", ca.display()), fix.clone()))?;
        if certs.is_empty() {
            return Err((
                format!("ca_file {} holds no PEM certificate", ca.display()),
                fix,
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| (describe(&e), "report this as a bug".to_string()))
}

/// An error with its causes (reqwest's own message hides them).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

fn server_start_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "start the server (`service spoor_server start`), check [server] listen on it and this url, and that pf passes the port"
    } else {
        "start the server (`systemctl start spoor-server`), check [server] listen on it and this url, and that the firewall passes the port"
    }
}

fn check_server(s: &ShipperConfig, sensor: &str, now: SystemTime, out: &mut Vec<Finding>) {
    let Ok(endpoint) = spoor_sensor::output::shipper::endpoint(&s.url) else {
        // The config check refuses such a URL; nothing to probe.
        return;
    };
    let subject = s.url.clone();
    let token = match std::fs::read_to_string(&s.token_file) {
        Ok(t) if !t.trim().is_empty() && !t.trim().contains(char::is_whitespace) => {
            t.trim().to_string()
        }
        Ok(_) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "sensor token readable")
                    .detail(format!(
                        "{} must hold one token on one line",
                        s.token_file.display()
                    ))
                    .fix("write the token the server made for this sensor into token_file"),
            );
            return;
        }
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "sensor token readable")
                    .detail(format!("reading {}: {e}", s.token_file.display()))
                    .fix("create token_file with the sensor's token (readable by [sensor] user), or correct [[sensor.output]] token_file"),
            );
            return;
        }
    };
    let client = match http_client(s) {
        Ok(c) => c,
        Err((detail, fix)) => {
            out.push(
                Finding::new(Level::Fail, "server", subject, "server reachable")
                    .detail(detail)
                    .fix(fix),
            );
            return;
        }
    };
    let now_micros = Micros(
        i64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros(),
        )
        .unwrap_or(i64::MAX),
    );
    let body = serde_json::to_vec(&probe_batch(sensor, now_micros)).unwrap_or_default();
    let answer = client
        .post(&endpoint)
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body)
        .send();
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let text = describe(&e);
            let lower = text.to_ascii_lowercase();
            let f = Finding::new(Level::Fail, "server", subject, "server reachable");
            out.push(if lower.contains("certificate") || lower.contains("fingerprint") {
                f.detail(format!("TLS: the server's certificate is not trusted: {text}"))
                    .fix(if s.pin_sha256.is_some() {
                        "set pin_sha256 to the fingerprint `spoor server` logs at start (its self-signed certificate's SHA-256)"
                    } else {
                        "set ca_file to the CA that signed the server's certificate, or pin_sha256 to its fingerprint"
                    })
            } else {
                f.detail(format!("{endpoint}: {text}")).fix(server_start_fix())
            });
            return;
        }
    };
    out.push(
        Finding::new(Level::Ok, "server", subject.clone(), "server reachable").detail(format!(
            "{endpoint} answered{}",
            if s.url.starts_with("https://") {
                " over TLS (certificate trusted)"
            } else {
                ""
            }
        )),
    );
    let date = response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    out.push(token_finding(&subject, status, &text, sensor));
    match date {
        Some(d) => out.push(skew_finding(&subject, d, SystemTime::now())),
        None => out.push(
            Finding::new(
                Level::Warn,
                "clock",
                subject,
                "clock agrees with the server",
            )
            .detail("the answer has no Date header; clocks not compared")
            .fix("check that url points at a Spoor server, not a proxy that strips headers"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// backend

fn backend_kind(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::DryRun => "dry-run",
        BackendKind::Pf => "pf",
        BackendKind::Nftables => "nftables",
        BackendKind::Opnsense => "opnsense",
    }
}

fn program_present(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    if program.is_absolute() {
        return std::fs::metadata(program)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| program_present(&d.join(program)))
    })
}

fn check_backend(cfg: &RespondConfig, out: &mut Vec<Finding>) {
    let kind = backend_kind(cfg.backend);
    if cfg.kill_switch {
        out.push(
            Finding::new(Level::Warn, "backend", kind, "kill switch off")
                .detail("[respond] kill_switch = true: the agent removes every block and applies nothing")
                .fix("set [respond] kill_switch = false when blocking should resume"),
        );
    }
    if cfg.mode == Mode::DryRun {
        out.push(
            Finding::new(Level::Warn, "backend", kind, "blocking mode")
                .detail("[respond] mode = \"dry-run\": decisions are recorded, never applied")
                .fix("set [respond] mode = \"approve\" or \"auto\""),
        );
    }
    let mut probe_cfg = cfg.clone();
    // Never change the firewall from the doctor: list without creating.
    probe_cfg.nftables.create = false;
    probe_cfg.opnsense.create_alias = false;
    match cfg.backend {
        BackendKind::DryRun => {
            out.push(
                Finding::new(Level::Warn, "backend", kind, "backend blocks")
                    .detail("[respond] backend = \"dry-run\": decisions are only logged")
                    .fix("set [respond] backend = \"pf\", \"nftables\" or \"opnsense\" with its section"),
            );
            return;
        }
        BackendKind::Pf | BackendKind::Nftables => {
            let (program, key) = if cfg.backend == BackendKind::Pf {
                (&cfg.pf.pfctl, "[respond.pf] pfctl")
            } else {
                (&cfg.nftables.nft, "[respond.nftables] nft")
            };
            if !program_present(program) {
                out.push(
                    Finding::new(Level::Fail, "backend", kind, "firewall tool present")
                        .detail(format!("{} is not an executable here", program.display()))
                        .fix(if cfg.backend == BackendKind::Pf {
                            format!("pf runs on FreeBSD/OPNsense: run the agent there (set {key} if pfctl lives elsewhere), or on Linux set [respond] backend = \"nftables\"")
                        } else {
                            format!("install nftables (`apt install nftables` / `dnf install nftables`) or set {key} to nft's path")
                        }),
                );
                return;
            }
            out.push(
                Finding::new(Level::Ok, "backend", kind, "firewall tool present")
                    .detail(program.display().to_string()),
            );
        }
        BackendKind::Opnsense => {}
    }
    let listed = spoor_responders::agent::backend(&probe_cfg).and_then(|mut b| {
        let name = b.name();
        b.list().map(|held| (name, held.len(), b.capacity()))
    });
    match listed {
        Ok((name, entries, capacity)) => {
            out.push(
                Finding::new(Level::Ok, "backend", name.clone(), "backend reachable")
                    .detail(format!("listed: {entries} entries")),
            );
            out.extend(capacity_findings(
                &name,
                cfg.backend,
                entries,
                capacity,
                cfg.max_active,
            ));
            if cfg.backend == BackendKind::Opnsense {
                out.push(opnsense_alias(cfg));
            }
        }
        Err(e) => out.push(backend_error_finding(cfg, &e)),
    }
}

fn backend_error_finding(cfg: &RespondConfig, e: &BackendError) -> Finding {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = backend_kind(cfg.backend);
    let f = Finding::new(Level::Fail, "backend", kind, "backend reachable").detail(text.clone());
    match cfg.backend {
        BackendKind::Nftables => {
            let n = &cfg.nftables;
            if lower.contains("not permitted") || lower.contains("permission") {
                f.fix("run the agent as root or with CAP_NET_ADMIN (dist/systemd/spoor-agent.service grants it); check with `sudo spoor doctor`")
            } else if lower.contains("no such file or directory") && n.create {
                f.with_level(Level::Ok).detail(format!(
                    "table {} {} does not exist yet; `spoor agent` creates it at start ([respond.nftables] create = true)",
                    n.family, n.table
                ))
            } else if lower.contains("no such file or directory") {
                f.detail(format!(
                    "table {} {} or its sets {}/{} do not exist, and [respond.nftables] create = false: {text}",
                    n.family, n.table, n.set_v4, n.set_v6
                ))
                .fix(format!(
                    "set [respond.nftables] create = true, or make them: `nft add table {f} {t}; nft add set {f} {t} {s4} '{{ type ipv4_addr; flags interval, timeout; }}'; nft add set {f} {t} {s6} '{{ type ipv6_addr; flags interval, timeout; }}'` plus rules that drop from/to @{s4} and @{s6}",
                    f = n.family,
                    t = n.table,
                    s4 = n.set_v4,
                    s6 = n.set_v6
                ))
            } else {
                f.fix("run the `nft` command from the message by hand and fix what it reports")
            }
        }
        BackendKind::Pf => {
            if lower.contains("permission") || lower.contains("not permitted") {
                f.fix("run the agent as root (pfctl needs /dev/pf): spoor_agent_user=root")
            } else if lower.contains("pf not enabled") || lower.contains("not enabled") {
                f.fix("enable pf: `sysrc pf_enable=YES && service pf start`")
            } else {
                f.fix(format!(
                    "run `{} -t {} -T show` by hand and fix what it reports; load the anchor (freebsd/README.md, \"Blocking with pf\")",
                    cfg.pf.pfctl.display(),
                    cfg.pf.table
                ))
            }
        }
        BackendKind::Opnsense => {
            if matches!(e, BackendError::Unauthorized { .. }) {
                f.fix("create an API key for a user with the firewall alias privileges (System > Access > Users), put key and secret into [respond.opnsense] key_file / secret_file")
            } else if lower.contains("is not set") || lower.contains("reading the opnsense") {
                f.fix("set [respond.opnsense] url, key_file and secret_file (files readable by the agent's user)")
            } else if lower.contains("certificate") {
                f.fix(
                    "set [respond.opnsense] ca_file to the CA of the OPNsense web GUI certificate",
                )
            } else {
                f.fix(format!(
                    "check [respond.opnsense] url, that the OPNsense web GUI/API answers there, that the alias `{}` exists (Firewall > Aliases, type External) or set create_alias = true",
                    cfg.opnsense.alias
                ))
            }
        }
        BackendKind::DryRun => f,
    }
}

/// `GET /api/firewall/alias/getAliasUUID/{alias}`: the alias list of an alias that does
/// not exist looks like an empty one, so its presence is asked for separately. Key and
/// secret are read as the backend reads them and appear in no finding.
fn opnsense_alias(cfg: &RespondConfig) -> Finding {
    let o = &cfg.opnsense;
    let subject = format!("opnsense:{}", o.alias);
    let f = Finding::new(Level::Fail, "backend", subject, "alias present");
    let read = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.trim().to_string())
    };
    let (Some(url), Some(key), Some(secret)) =
        (o.url.as_deref(), read(&o.key_file), read(&o.secret_file))
    else {
        // The list above would have failed first; nothing more to ask.
        return f
            .detail("url, key or secret missing")
            .fix("set [respond.opnsense] url, key_file and secret_file");
    };
    let mut builder =
        reqwest::blocking::Client::builder().timeout(o.timeout.as_std().min(PROBE_TIMEOUT));
    if let Some(certs) = o
        .ca_file
        .as_deref()
        .and_then(|ca| std::fs::read(ca).ok())
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
    {
        builder = builder.tls_certs_only(certs);
    }
    let endpoint = format!(
        "{}/api/firewall/alias/getAliasUUID/{}",
        url.trim_end_matches('/'),
        o.alias
    );
    let answer = builder.build().and_then(|c| {
        c.get(&endpoint)
            .basic_auth(&key, Some(&secret))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
    });
    match answer {
        Ok(body) => alias_finding(f, &o.alias, &body, o.create_alias),
        Err(e) => f
            .detail(format!("{endpoint}: {}", describe(&e).replace(&secret, "<redacted>")))
            .fix("give the API key's user the privilege covering the firewall alias utilities (System > Access > Users; search the privilege list for \"Alias\"; the API answers 403 until it has it)"),
    }
}

/// What `getAliasUUID` answered: `{"uuid": "..."}` when the alias exists, an empty
/// object or list when it does not.
pub(crate) fn alias_finding(f: Finding, alias: &str, body: &str, create: bool) -> Finding {
    let uuid = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("uuid").and_then(|u| u.as_str()).map(str::to_string))
        .filter(|u| !u.is_empty());
    match uuid {
        Some(u) => f
            .with_level(Level::Ok)
            .detail(format!("alias `{alias}` exists ({u})")),
        None if create => f.with_level(Level::Ok).detail(format!(
            "alias `{alias}` does not exist yet; `spoor agent` creates it at start ([respond.opnsense] create_alias = true)"
        )),
        None => f
            .detail(format!("no alias `{alias}` on the firewall: blocks have nowhere to go"))
            .fix(format!(
                "create it (Firewall > Aliases: name {alias}, type External (advanced)) and a block rule that uses it, or set [respond.opnsense] create_alias = true"
            )),
    }
}

fn capacity_key(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Pf => "[respond.pf] capacity (and pf's `set limit table-entries`)",
        BackendKind::Nftables => "[respond.nftables] capacity",
        BackendKind::Opnsense => "[respond.opnsense] capacity",
        BackendKind::DryRun => "capacity",
    }
}

/// Entries held against the limit the guard applies: `min(max_active, capacity)`.
pub(crate) fn capacity_findings(
    subject: &str,
    kind: BackendKind,
    entries: usize,
    capacity: usize,
    max_active: usize,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if max_active > capacity {
        out.push(
            Finding::new(Level::Warn, "backend", subject, "max_active within capacity")
                .detail(format!(
                    "[respond] max_active = {max_active} is above the backend's capacity {capacity}: the guard stops at {capacity}"
                ))
                .fix(format!(
                    "lower [respond] max_active to at most {capacity}, or raise {}",
                    capacity_key(kind)
                )),
        );
    }
    let limit = max_active.min(capacity);
    let f = Finding::new(Level::Ok, "backend", subject, "room for new blocks");
    let detail =
        format!("{entries} entries; limit {limit} (capacity {capacity}, max_active {max_active})");
    out.push(if entries >= limit {
        f.with_level(Level::Fail)
            .detail(format!("{detail}: full, every new block is refused"))
            .fix(format!(
                "raise [respond] max_active and {} if the firewall can hold more, shorten TTLs ([respond] escalation, max_ttl), or remove stale entries (`spoor block list`, `spoor block unblock`)",
                capacity_key(kind)
            ))
    } else if entries.saturating_mul(100) >= limit.saturating_mul(FULL_WARN_PERCENT) {
        f.with_level(Level::Warn)
            .detail(format!("{detail}: at least {FULL_WARN_PERCENT}% full"))
            .fix(format!(
                "raise [respond] max_active and {}, or shorten TTLs ([respond] escalation, max_ttl)",
                capacity_key(kind)
            ))
    } else {
        f.detail(detail)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn a_missing_interface_names_the_ones_that_exist() {
        let f = state_findings("eth9", None, &["lo".into(), "eth0".into()], true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Fail);
        assert!(f[0].detail.contains("lo, eth0"), "{}", f[0].detail);
        assert!(f[0].fix.as_deref().unwrap().contains("[sensor] interfaces"));
    }

    #[test]
    fn a_down_interface_fails_with_the_command_that_brings_it_up() {
        let down = IfState {
            up: false,
            running: false,
            promiscuous: false,
        };
        let f = state_findings("eth1", Some(down), &[], true);
        let up = f.iter().find(|f| f.check == "interface is up").unwrap();
        assert_eq!(up.level, Level::Fail);
        assert!(up.fix.as_deref().unwrap().contains("eth1 up"));
        // The sensor sets promiscuous mode itself: not a problem.
        let p = f.iter().find(|f| f.check == "promiscuous mode").unwrap();
        assert_eq!(p.level, Level::Ok);
    }

    #[test]
    fn no_carrier_and_no_promiscuous_mode_are_warnings() {
        let s = IfState {
            up: true,
            running: false,
            promiscuous: false,
        };
        let f = state_findings("eth1", Some(s), &[], false);
        let levels: Vec<(&str, Level)> = f.iter().map(|f| (f.check, f.level)).collect();
        assert_eq!(
            levels,
            vec![
                ("interface is up", Level::Ok),
                ("link is running", Level::Warn),
                ("promiscuous mode", Level::Warn),
            ]
        );
        assert!(f[2].fix.as_deref().unwrap().contains("promiscuous = true"));
    }

    #[test]
    fn link_types_the_decoder_lacks_fail() {
        assert_eq!(link_type_finding("eth0", 1, "EN10MB").level, Level::Ok);
        assert_eq!(link_type_finding("any", 276, "LINUX_SLL2").level, Level::Ok);
        let f = link_type_finding("wlan0mon", 127, "IEEE802_11_RADIO");
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.contains("127"));
    }

    #[test]
    fn permission_errors_are_recognised() {
        assert!(is_permission_error("socket: Operation not permitted"));
        assert!(is_permission_error(
            "You don't have permission to perform this capture on that device"
        ));
        assert!(!is_permission_error("eth0: No such device exists"));
    }

    #[test]
    fn trail_age_is_judged_against_the_update_interval() {
        let now = 1_800_000_000;
        let interval = Duration::from_secs(6 * HOUR);
        let fresh = trail_findings("s", 10, now - HOUR, now, interval, "rebuild");
        assert!(fresh.iter().all(|f| f.level == Level::Ok), "{fresh:?}");
        // Exactly at the limit is still fine; past it is stale.
        let edge = trail_findings("s", 10, now - 12 * HOUR, now, interval, "rebuild");
        assert!(edge.iter().all(|f| f.level == Level::Ok), "{edge:?}");
        let stale = trail_findings("s", 10, now - 12 * HOUR - 1, now, interval, "rebuild");
        assert_eq!(stale[1].level, Level::Warn);
        assert!(stale[1].fix.as_deref().unwrap().contains("rebuild"));
        let empty = trail_findings("s", 0, now, now, interval, "rebuild");
        assert_eq!(empty[0].level, Level::Fail);
        let future = trail_findings("s", 10, now + 301, now, interval, "rebuild");
        assert_eq!(future[1].level, Level::Fail);
        assert!(future[1].detail.contains("future"));
        let near = trail_findings("s", 10, now + 300, now, interval, "rebuild");
        assert_eq!(near[1].level, Level::Ok);
    }

    #[test]
    fn the_probe_is_refused_by_the_servers_event_check() {
        let b = probe_batch("fw1", Micros(1_800_000_000_000_000));
        assert_eq!(b.status.name, "fw1");
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].count, 0);
        assert_eq!(b.events[0].sensor, "fw1");
        // It is a valid wire batch (the server must parse it to reach the name check).
        let json = serde_json::to_string(&b).unwrap();
        let back: EventBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn probe_answers_map_to_findings() {
        assert_eq!(token_finding("u", 422, "", "fw1").level, Level::Ok);
        let unknown = token_finding("u", 401, "unknown sensor token", "fw1");
        assert_eq!(unknown.level, Level::Fail);
        assert!(
            unknown
                .fix
                .unwrap()
                .contains("[[server.sensor]] name = \"fw1\"")
        );
        let other = token_finding("u", 403, "sensor_mismatch", "fw1");
        assert_eq!(other.level, Level::Fail);
        assert!(other.fix.unwrap().contains("[sensor] name"));
        assert_eq!(token_finding("u", 200, "", "fw1").level, Level::Warn);
        assert_eq!(token_finding("u", 404, "", "fw1").level, Level::Fail);
        assert_eq!(token_finding("u", 500, "", "fw1").level, Level::Fail);
    }

    #[test]
    fn clock_skew_warns_past_the_constant_either_way() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(skew_finding("u", t, t + MAX_CLOCK_SKEW).level, Level::Ok);
        let ahead = skew_finding("u", t, t + MAX_CLOCK_SKEW + Duration::from_secs(1));
        assert_eq!(ahead.level, Level::Warn);
        assert!(ahead.detail.contains("ahead of"));
        let behind = skew_finding("u", t + Duration::from_secs(3 * HOUR), t);
        assert_eq!(behind.level, Level::Warn);
        assert!(behind.detail.contains("3h 0m behind"), "{}", behind.detail);
    }

    #[test]
    fn a_clock_before_the_binary_fails() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut f = Vec::new();
        check_clock(t, Some(t + Duration::from_secs(1)), &mut f);
        check_clock(t, Some(t), &mut f);
        assert_eq!(f[0].level, Level::Fail);
        assert_eq!(f[1].level, Level::Ok);
    }

    #[test]
    fn an_opnsense_alias_is_present_only_with_a_uuid() {
        let f = || {
            Finding::new(
                Level::Fail,
                "backend",
                "opnsense:spoor_block",
                "alias present",
            )
        };
        let found = alias_finding(f(), "spoor_block", r#"{"uuid":"6a1e-77"}"#, false);
        assert_eq!(found.level, Level::Ok);
        assert!(found.detail.contains("6a1e-77"));
        for missing in ["[]", "{}", r#"{"uuid":""}"#, "not json"] {
            let m = alias_finding(f(), "spoor_block", missing, false);
            assert_eq!(m.level, Level::Fail, "{missing}");
            assert!(m.fix.unwrap().contains("create_alias = true"));
            assert_eq!(
                alias_finding(f(), "spoor_block", missing, true).level,
                Level::Ok
            );
        }
    }

    #[test]
    fn capacity_guard_limit_is_the_smaller_of_the_two() {
        let k = BackendKind::Nftables;
        let ok = capacity_findings("b", k, 10, 1000, 100);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].level, Level::Ok);
        let above = capacity_findings("b", k, 10, 100, 1000);
        assert_eq!(above[0].level, Level::Warn);
        assert!(above[0].fix.as_deref().unwrap().contains("max_active"));
        let nearly = capacity_findings("b", k, 90, 1000, 100);
        assert_eq!(nearly[0].level, Level::Warn);
        let full = capacity_findings("b", k, 100, 1000, 100);
        assert_eq!(full[0].level, Level::Fail);
        assert!(full[0].detail.contains("full"));
    }

    #[test]
    fn text_output_shows_level_check_and_fix() {
        let r = Report {
            config: "/etc/spoor/spoor.toml".into(),
            findings: vec![
                Finding::new(Level::Fail, "capture", "eth1", "interface is up")
                    .detail("down")
                    .fix("ip link set dev eth1 up"),
            ],
            skipped: vec!["server: none".into()],
        };
        let t = render_text(&r);
        assert!(
            t.contains(
                "FAIL  capture eth1: interface is up: down\n      fix: ip link set dev eth1 up\n"
            ),
            "{t}"
        );
        assert!(t.contains("skip  server: none"));
        assert!(t.ends_with("0 ok, 0 warn, 1 fail\n"));
        assert_eq!(r.worst(), Level::Fail);
    }
}
