//! The `[sensor]` config section: raw as written, then validated.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use spoor_core::{ByteSize, ConfigError, Duration, KeyPath};
use spoor_feeds::config::BaseDirs;

use crate::capture::{DEFAULT_BUFFER_SIZE, DEFAULT_READ_TIMEOUT_MS, DEFAULT_SNAPLEN, LiveOptions};
use crate::condense::{DEFAULT_MAX_PENDING, DEFAULT_WINDOW_MICROS};
use crate::flow::{DEFAULT_FLOW_TIMEOUT_MICROS, DEFAULT_MAX_FLOWS};
use crate::heuristics::{
    CountingConfig, HeuristicsConfig, MAX_DISTINCT_THRESHOLD, MAX_SKETCH_THRESHOLD, MAX_TRACKED,
    MAX_WINDOW_SECS,
};
use crate::output::shipper::SPOOL_DIR_NAME;
use crate::output::{DailyLogConfig, FileConfig, Format, ShipperConfig, TcpConfig, UdpConfig};
use crate::reassembly::{RawReassembly, ReassemblyLimits};

/// Default folder of the daily Maltrail-format logs inside the state dir.
pub const LOG_DIR_NAME: &str = "log";
/// Default interval of the stats line.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);
/// Default interval at which the snapshot file is checked for a newer version.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Smallest snaplen that still holds the headers the sensor parses.
pub const MIN_SNAPLEN: u32 = 96;
/// Most packet workers a sensor runs (per interface on live capture).
pub const MAX_WORKERS: usize = 256;

/// `[sensor]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSensor {
    /// Name written into every event. Default: the host name.
    pub name: Option<String>,
    /// Interfaces to capture on when `spoor sensor` is given neither `-i` nor `-r`.
    /// Default: none.
    pub interfaces: Vec<String>,
    /// BPF capture filter, e.g. `not port 22`. Default: everything.
    pub filter: String,
    /// Bytes kept per frame. Default 65535 (whole frames).
    pub snaplen: u32,
    /// Kernel capture buffer. Default 32MiB.
    pub buffer_size: ByteSize,
    /// Promiscuous mode. Default true.
    pub promiscuous: bool,
    /// Deliver frames as they arrive. Default true.
    pub immediate: bool,
    /// Repeats of the same (offender, trail) within this window become one event with a
    /// count. Default 5s.
    pub condense_window: Duration,
    /// Flows tracked at most. Default 262144.
    pub max_flows: usize,
    /// A flow idle this long is forgotten. Default 60s.
    pub flow_timeout: Duration,
    /// How often the stats line is logged. Default 60s.
    pub stats_interval: Duration,
    /// How often the trail snapshot is checked for a newer version. Default 30s.
    pub reload_interval: Duration,
    /// Daily event logs in Maltrail's layout (`YYYY-MM-DD.log`). Default:
    /// `<state_dir>/log`; set `log_dir = ""` to write none.
    pub log_dir: Option<PathBuf>,
    /// Line format of the daily logs: maltrail (default), json or cef.
    pub log_format: Format,
    /// Events matching one of these are not reported. Maltrail's ignore syntax:
    /// `src_ip;src_port;dst_ip;dst_port`, `*` for any; addresses may be CIDRs.
    pub ignore: Vec<String>,
    /// `[[sensor.output]]`: more sinks (file, tcp, udp, daily, server).
    pub output: Vec<RawOutput>,
    /// `[sensor.reassembly]`: bounds of TCP/QUIC stream reassembly.
    pub reassembly: RawReassembly,
    /// Packet workers (threads) per capture: 1 (default) runs everything on the capture
    /// thread; 0 means one per CPU core. Frames are spread by a symmetric flow hash.
    pub workers: usize,
    /// `[sensor.heuristics]`: one table per heuristic.
    pub heuristics: RawHeuristics,
    /// After opening the capture devices, run as this user (a name or a numeric id).
    /// Default: keep the user it was started as.
    pub user: Option<String>,
    /// ... and this group. Default: the user's primary group.
    pub group: Option<String>,
}

pub use crate::heuristics::content::RawHeuristics;

/// A counting heuristic as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCounting {
    pub enabled: Option<bool>,
    /// Distinct things counted per key before it alerts.
    pub threshold: Option<u32>,
    /// The window of packet time they are counted in.
    pub window: Option<Duration>,
    /// Keys tracked at most; new keys beyond are refused and counted as saturations.
    pub max_tracked: Option<usize>,
}

/// `[sensor.heuristics.dga]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDga {
    pub enabled: Option<bool>,
    /// Entropy (bits per character) of the registrable label above which it looks generated.
    pub entropy: Option<f64>,
    /// A run of consonants in the registrable label longer than this looks generated.
    pub consonant_run: Option<u32>,
    /// With the entropy above `entropy`, a run of consonants longer than this suffices.
    pub entropy_consonant_run: Option<u32>,
}

/// `[sensor.heuristics.long_domain]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLongDomain {
    pub enabled: Option<bool>,
    /// Leftmost labels longer than this are reported.
    pub max_label_length: Option<u32>,
}

impl RawCounting {
    fn validate(
        &self,
        key: &KeyPath,
        default: CountingConfig,
        max_threshold: u32,
        errors: &mut Vec<ConfigError>,
    ) -> CountingConfig {
        let threshold = self.threshold.unwrap_or(default.threshold);
        if threshold == 0 || threshold > max_threshold {
            errors.push(ConfigError::new(
                key.key("threshold"),
                format!("must be between 1 and {max_threshold}"),
            ));
        }
        let window_secs = self.window.map_or(default.window_secs, |w| {
            u32::try_from(w.as_std().as_secs()).unwrap_or(u32::MAX)
        });
        if window_secs == 0 || window_secs > MAX_WINDOW_SECS {
            errors.push(ConfigError::new(
                key.key("window"),
                "must be between 1s and 24h (whole seconds)",
            ));
        }
        let max_tracked = self.max_tracked.unwrap_or(default.max_tracked);
        if max_tracked == 0 || max_tracked > MAX_TRACKED {
            errors.push(ConfigError::new(
                key.key("max_tracked"),
                format!("must be between 1 and {MAX_TRACKED}"),
            ));
        }
        CountingConfig {
            enabled: self.enabled.unwrap_or(default.enabled),
            threshold,
            window_secs,
            max_tracked,
        }
    }
}

impl RawHeuristics {
    pub fn validate(&self, key: &KeyPath, errors: &mut Vec<ConfigError>) -> HeuristicsConfig {
        let d = HeuristicsConfig::default();
        let distinct = MAX_DISTINCT_THRESHOLD;
        let mut c = HeuristicsConfig {
            port_scan: self.port_scan.validate(
                &key.key("port_scan"),
                d.port_scan,
                distinct,
                errors,
            ),
            udp_scan: self
                .udp_scan
                .validate(&key.key("udp_scan"), d.udp_scan, distinct, errors),
            infection_scan: self.infection_scan.validate(
                &key.key("infection_scan"),
                d.infection_scan,
                distinct,
                errors,
            ),
            web_scan: self
                .web_scan
                .validate(&key.key("web_scan"), d.web_scan, distinct, errors),
            dns_exhaustion: self.dns_exhaustion.validate(
                &key.key("dns_exhaustion"),
                d.dns_exhaustion,
                MAX_SKETCH_THRESHOLD,
                errors,
            ),
            nxdomain: self
                .nxdomain
                .validate(&key.key("nxdomain"), d.nxdomain, distinct, errors),
            dga: d.dga,
            long_domain: d.long_domain,
        };
        c.dga.enabled = self.dga.enabled.unwrap_or(d.dga.enabled);
        c.dga.entropy = self.dga.entropy.unwrap_or(d.dga.entropy);
        if !(c.dga.entropy > 0.0 && c.dga.entropy <= 8.0) {
            errors.push(ConfigError::new(
                key.key("dga").key("entropy"),
                "must be above 0 and at most 8 (bits per character)",
            ));
        }
        c.dga.consonant_run = self.dga.consonant_run.unwrap_or(d.dga.consonant_run);
        if c.dga.consonant_run == 0 || c.dga.consonant_run > 63 {
            errors.push(ConfigError::new(
                key.key("dga").key("consonant_run"),
                "must be between 1 and 63 (a label's length)",
            ));
        }
        c.dga.entropy_consonant_run = self
            .dga
            .entropy_consonant_run
            .unwrap_or(d.dga.entropy_consonant_run);
        if c.dga.entropy_consonant_run > 63 {
            errors.push(ConfigError::new(
                key.key("dga").key("entropy_consonant_run"),
                "must be at most 63 (a label's length)",
            ));
        }
        c.long_domain.enabled = self.long_domain.enabled.unwrap_or(d.long_domain.enabled);
        c.long_domain.max_label_length = self
            .long_domain
            .max_label_length
            .unwrap_or(d.long_domain.max_label_length);
        if c.long_domain.max_label_length == 0 || c.long_domain.max_label_length > 62 {
            errors.push(ConfigError::new(
                key.key("long_domain").key("max_label_length"),
                "must be between 1 and 62 (labels are at most 63 characters)",
            ));
        }
        c
    }
}

impl Default for RawSensor {
    fn default() -> Self {
        RawSensor {
            name: None,
            interfaces: Vec::new(),
            filter: String::new(),
            snaplen: DEFAULT_SNAPLEN as u32,
            buffer_size: ByteSize(DEFAULT_BUFFER_SIZE as u64),
            promiscuous: true,
            immediate: true,
            condense_window: Duration::from_secs((DEFAULT_WINDOW_MICROS / 1_000_000) as u64),
            max_flows: DEFAULT_MAX_FLOWS,
            flow_timeout: Duration::from_secs((DEFAULT_FLOW_TIMEOUT_MICROS / 1_000_000) as u64),
            stats_interval: DEFAULT_STATS_INTERVAL,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            log_dir: None,
            log_format: Format::Maltrail,
            ignore: Vec::new(),
            output: Vec::new(),
            reassembly: RawReassembly::default(),
            workers: 1,
            heuristics: RawHeuristics::default(),
            user: None,
            group: None,
        }
    }
}

/// One `[[sensor.output]]`, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RawOutput {
    /// JSON (or maltrail/cef) lines appended to a file.
    File(FileConfig),
    /// A Logstash-style or syslog collector over TCP.
    Tcp(TcpConfig),
    /// A collector over UDP, one datagram per event.
    Udp(UdpConfig),
    /// Another set of daily files.
    Daily(DailyLogConfig),
    /// Spoor's server (`POST /api/v1/events`), batched and spooled.
    Server(ShipperConfig),
}

/// `src;src_port;dst;dst_port`, each part optional (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    pub src: Option<IpNet>,
    pub src_port: Option<u16>,
    pub dst: Option<IpNet>,
    pub dst_port: Option<u16>,
}

impl IgnoreRule {
    pub fn parse(s: &str) -> Result<IgnoreRule, String> {
        let parts: Vec<&str> = s.split(';').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(format!(
                "`{s}` is not `src_ip;src_port;dst_ip;dst_port` (use * for any)"
            ));
        }
        let net = |p: &str| -> Result<Option<IpNet>, String> {
            if p == "*" || p.is_empty() {
                return Ok(None);
            }
            if let Ok(ip) = p.parse::<IpAddr>() {
                return Ok(Some(IpNet::from(ip)));
            }
            p.parse::<IpNet>()
                .map(|n| Some(n.trunc()))
                .map_err(|_| format!("`{p}` is not an IP address, a CIDR or *"))
        };
        let port = |p: &str| -> Result<Option<u16>, String> {
            if p == "*" || p.is_empty() {
                return Ok(None);
            }
            p.parse::<u16>()
                .map(Some)
                .map_err(|_| format!("`{p}` is not a port or *"))
        };
        Ok(IgnoreRule {
            src: net(parts[0])?,
            src_port: port(parts[1])?,
            dst: net(parts[2])?,
            dst_port: port(parts[3])?,
        })
    }

    pub fn matches(
        &self,
        src: IpAddr,
        src_port: Option<u16>,
        dst: IpAddr,
        dst_port: Option<u16>,
    ) -> bool {
        self.src.is_none_or(|n| n.contains(&src))
            && self.dst.is_none_or(|n| n.contains(&dst))
            && self.src_port.is_none_or(|p| src_port == Some(p))
            && self.dst_port.is_none_or(|p| dst_port == Some(p))
    }
}

/// The validated `[sensor]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorConfig {
    pub name: String,
    pub interfaces: Vec<String>,
    pub live: LiveOptions,
    pub condense_window_micros: i64,
    pub max_pending_events: usize,
    pub max_flows: usize,
    pub flow_timeout_micros: i64,
    pub stats_interval: Duration,
    pub reload_interval: Duration,
    /// The daily Maltrail-format log, unless switched off.
    pub log: Option<DailyLogConfig>,
    pub outputs: Vec<RawOutput>,
    pub ignore: Vec<IgnoreRule>,
    pub reassembly: ReassemblyLimits,
    /// Packet workers per capture (at least 1).
    pub workers: usize,
    pub heuristics: HeuristicsConfig,
    /// Unprivileged user and group to switch to once capture is open.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Which content heuristics run, at which severity.
    pub content_heuristics: crate::heuristics::content::ContentConfig,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_std().as_micros()).unwrap_or(i64::MAX)
}

/// The machine's host name, for the default sensor name.
pub fn host_name() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "spoor".to_string())
}

impl RawSensor {
    pub fn validate(
        self,
        key: &KeyPath,
        dirs: &BaseDirs<'_>,
    ) -> Result<SensorConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let name = match self.name {
            Some(n) if n.trim().is_empty() || n.contains(char::is_whitespace) => {
                errors.push(ConfigError::new(
                    key.key("name"),
                    "must be one word (it is a column of the event log)",
                ));
                String::new()
            }
            Some(n) => n,
            None => host_name(),
        };
        for (i, iface) in self.interfaces.iter().enumerate() {
            if iface.trim().is_empty() {
                errors.push(ConfigError::new(
                    key.key("interfaces").index(i),
                    "must not be empty",
                ));
            }
        }
        if self.snaplen < MIN_SNAPLEN || self.snaplen > 262_144 {
            errors.push(ConfigError::new(
                key.key("snaplen"),
                format!("must be between {MIN_SNAPLEN} and 262144 bytes"),
            ));
        }
        let buffer_size = i32::try_from(self.buffer_size.0).unwrap_or(-1);
        if buffer_size < 65_536 {
            errors.push(ConfigError::new(
                key.key("buffer_size"),
                "must be between 64KiB and 2GiB",
            ));
        }
        if self.max_flows == 0 {
            errors.push(ConfigError::new(key.key("max_flows"), "must be at least 1"));
        }
        if self.flow_timeout.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("flow_timeout"), "must be above 0"));
        }
        if self.stats_interval.as_std().as_secs() < 1 {
            errors.push(ConfigError::new(
                key.key("stats_interval"),
                "must be at least 1s",
            ));
        }
        if self.reload_interval.as_std().as_secs() < 1 {
            errors.push(ConfigError::new(
                key.key("reload_interval"),
                "must be at least 1s",
            ));
        }
        let mut ignore = Vec::new();
        for (i, rule) in self.ignore.iter().enumerate() {
            match IgnoreRule::parse(rule) {
                Ok(r) => ignore.push(r),
                Err(e) => errors.push(ConfigError::new(key.key("ignore").index(i), e)),
            }
        }
        let reassembly = self
            .reassembly
            .validate(&key.key("reassembly"))
            .unwrap_or_else(|e| {
                errors.extend(e);
                ReassemblyLimits::default()
            });
        let log = match &self.log_dir {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(dirs.resolve(p)),
            None => Some(dirs.state_dir.join(LOG_DIR_NAME)),
        }
        .map(|dir| DailyLogConfig {
            dir,
            format: self.log_format,
        });
        for (field, value) in [("user", &self.user), ("group", &self.group)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                errors.push(ConfigError::new(key.key(field), "must not be empty"));
            }
        }
        if self.group.is_some() && self.user.is_none() {
            errors.push(ConfigError::new(
                key.key("group"),
                "needs `user` too (the sensor drops to a user and its group)",
            ));
        }
        for (i, o) in self.output.iter().enumerate() {
            if let RawOutput::Server(s) = o {
                for (field, problem) in s.problems() {
                    errors.push(ConfigError::new(
                        key.key("output").index(i).key(field),
                        problem,
                    ));
                }
            }
        }
        let outputs = self
            .output
            .into_iter()
            .map(|o| match o {
                RawOutput::Server(mut s) => {
                    s.token_file = dirs.resolve(&s.token_file);
                    s.ca_file = s.ca_file.map(|p| dirs.resolve(&p));
                    s.spool_dir = Some(match s.spool_dir {
                        Some(p) => dirs.resolve(&p),
                        None => dirs.state_dir.join(SPOOL_DIR_NAME),
                    });
                    RawOutput::Server(s)
                }
                RawOutput::File(mut f) => {
                    f.path = dirs.resolve(&f.path);
                    RawOutput::File(f)
                }
                RawOutput::Daily(mut d) => {
                    d.dir = dirs.resolve(&d.dir);
                    RawOutput::Daily(d)
                }
                other => other,
            })
            .collect();
        let heuristics = self
            .heuristics
            .validate(&key.key("heuristics"), &mut errors);
        let workers = match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if workers > MAX_WORKERS {
            errors.push(ConfigError::new(
                key.key("workers"),
                format!("must be at most {MAX_WORKERS} (0 = one per CPU core)"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SensorConfig {
            name,
            interfaces: self.interfaces,
            live: LiveOptions {
                promiscuous: self.promiscuous,
                snaplen: self.snaplen as i32,
                buffer_size,
                immediate: self.immediate,
                filter: self.filter,
                read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
            },
            condense_window_micros: micros(self.condense_window),
            max_pending_events: DEFAULT_MAX_PENDING,
            max_flows: self.max_flows,
            flow_timeout_micros: micros(self.flow_timeout),
            stats_interval: self.stats_interval,
            reload_interval: self.reload_interval,
            log,
            outputs,
            ignore,
            content_heuristics: self.heuristics.content(),
            reassembly,
            workers,
            heuristics,
            user: self.user,
            group: self.group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn dirs() -> BaseDirs<'static> {
        BaseDirs {
            config_dir: Path::new("/etc/spoor"),
            state_dir: Path::new("/var/lib/spoor"),
        }
    }

    #[test]
    fn defaults_validate() {
        let c = RawSensor::default()
            .validate(&KeyPath::root().key("sensor"), &dirs())
            .unwrap();
        assert_eq!(c.log.unwrap().dir, Path::new("/var/lib/spoor/log"));
        assert_eq!(c.condense_window_micros, 5_000_000);
        assert!(!c.name.is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        let raw = RawSensor {
            snaplen: 10,
            ignore: vec!["1.2.3.4;*;*".into()],
            name: Some("two words".into()),
            ..RawSensor::default()
        };
        let errors = raw
            .validate(&KeyPath::root().key("sensor"), &dirs())
            .unwrap_err();
        let keys: Vec<String> = errors.iter().map(|e| e.key.to_string()).collect();
        assert_eq!(keys, ["sensor.name", "sensor.snaplen", "sensor.ignore[0]"]);
    }

    #[test]
    fn heuristics_take_their_own_defaults_and_name_bad_keys() {
        let raw = RawSensor {
            heuristics: RawHeuristics {
                port_scan: RawCounting {
                    threshold: Some(20),
                    ..RawCounting::default()
                },
                infection_scan: RawCounting {
                    enabled: Some(false),
                    ..RawCounting::default()
                },
                ..RawHeuristics::default()
            },
            ..RawSensor::default()
        };
        let c = raw
            .validate(&KeyPath::root().key("sensor"), &dirs())
            .unwrap();
        let h = c.heuristics;
        assert_eq!((h.port_scan.threshold, h.port_scan.window_secs), (20, 30));
        assert!(!h.infection_scan.enabled);
        assert_eq!(
            h.infection_scan.threshold, 32,
            "its own default, not port_scan's"
        );
        assert_eq!(h.nxdomain.window_secs, 3600);
        assert_eq!(c.workers, 1);

        let raw = RawSensor {
            workers: 100_000,
            heuristics: RawHeuristics {
                web_scan: RawCounting {
                    threshold: Some(0),
                    max_tracked: Some(0),
                    ..RawCounting::default()
                },
                dga: RawDga {
                    entropy: Some(-1.0),
                    ..RawDga::default()
                },
                ..RawHeuristics::default()
            },
            ..RawSensor::default()
        };
        let errors = raw
            .validate(&KeyPath::root().key("sensor"), &dirs())
            .unwrap_err();
        let keys: Vec<String> = errors.iter().map(|e| e.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "sensor.heuristics.web_scan.threshold",
                "sensor.heuristics.web_scan.max_tracked",
                "sensor.heuristics.dga.entropy",
                "sensor.workers"
            ]
        );
    }

    #[test]
    fn ignore_rules() {
        let r = IgnoreRule::parse("10.0.0.0/8;*;*;53").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(r.matches(ip("10.1.2.3"), Some(5000), ip("8.8.8.8"), Some(53)));
        assert!(!r.matches(ip("10.1.2.3"), Some(5000), ip("8.8.8.8"), Some(80)));
        assert!(!r.matches(ip("11.1.2.3"), None, ip("8.8.8.8"), Some(53)));
        assert!(IgnoreRule::parse("x;*;*;*").is_err());
    }
}
