//! `spoor doctor`: a preflight for "it detects nothing" and "it blocks nothing".
//!
//! It reads the config and checks, for the sections that are in use, what the services
//! would meet when they start: the capture interfaces (present, up, promiscuous, opened
//! with libpcap the way the sensor opens them, link type decodable), the trail snapshot
//! (present, loadable, not empty, not stale), the server each `[[sensor.output]] type =
//! "server"` ships to (reachable, certificate trusted, token accepted, clocks agreeing),
//! the `[respond]` backend (reachable, listable, room left), what `[sensor] user` must
//! reach after the sensor switches to it, and the clock itself. One file per area below
//! `doctor/`; this file holds the finding type, the order of the checks and the output.
//!
//! Every finding is a [`Level`], what was checked, what was found, and the fix an admin
//! applies (a command or a config key). Nothing is changed anywhere: nftables is listed
//! with `create` switched off, the OPNsense alias is not created, and the server probe is
//! a batch the server refuses without storing anything (see [`server::probe_batch`]).
//!
//! Exit code: 0 when no finding fails (warnings allowed), [`EXIT_FAILED`] when one does,
//! 2 for a config that does not load.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde::Serialize;
use spoor_responders::policy::Mode;
use spoor_sensor::config::RawOutput;
use spoor_sensor::output::ShipperConfig;

use super::Context;
use crate::config::{Config, Origin};

mod backend;
mod capture;
mod clock;
mod privileges;
mod server;
mod trails;

use clock::clock_fix;

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

/// The longest the server probe or the OPNsense alias lookup may take, whatever longer
/// timeout the config gives the service itself. (The backend's own `list()` runs with
/// its configured timeout and retries, as the agent's would.)
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
    clock::check_clock(now, clock::current_exe_time(), &mut r.findings);
    if config.sensor.interfaces.is_empty() {
        r.skipped.push(
            "capture: [sensor] interfaces is empty (the sensor reads capture files only)".into(),
        );
    }
    for iface in &config.sensor.interfaces {
        capture::check_interface(iface, &config.sensor, &mut r.findings);
    }
    trails::check_trails(config, &cfg_arg, now, &mut r.findings);
    privileges::check_sensor_user(config, &mut r.findings);
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
        server::check_server(s, &config.sensor.name, now, &mut r.findings);
    }
    if config.respond.mode == Mode::Off {
        r.skipped.push(
            "backend: [respond] mode = \"off\": nothing is ever blocked (set mode = \"approve\" or \"auto\" to block)"
                .into(),
        );
    } else {
        backend::check_backend(&config.respond, &mut r.findings);
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
            // Tool output (nft's error with its caret line) stays under the finding.
            f.detail.trim_end().replace('\n', "\n      ")
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let multi = Report {
            findings: vec![
                Finding::new(Level::Fail, "backend", "nftables", "listed")
                    .detail("Error: No such file\nlist set inet spoor block_v4\n"),
            ],
            ..Report::default()
        };
        assert!(
            render_text(&multi).contains("No such file\n      list set inet spoor block_v4\n0 ok"),
            "{}",
            render_text(&multi)
        );
        assert!(t.ends_with("0 ok, 0 warn, 1 fail\n"));
        assert_eq!(r.worst(), Level::Fail);
    }
}
