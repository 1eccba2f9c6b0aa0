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
use crate::output::{DailyLogConfig, FileConfig, Format, TcpConfig, UdpConfig};

/// Default folder of the daily Maltrail-format logs inside the state dir.
pub const LOG_DIR_NAME: &str = "log";
/// Default interval of the stats line.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);
/// Default interval at which the snapshot file is checked for a newer version.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Smallest snaplen that still holds the headers the sensor parses.
pub const MIN_SNAPLEN: u32 = 96;

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
    /// `[[sensor.output]]`: more sinks (file, tcp, udp, daily).
    pub output: Vec<RawOutput>,
    /// `[sensor.heuristics.<name>]`: the content heuristics' switches.
    pub heuristics: crate::heuristics::content::RawContentHeuristics,
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
            heuristics: Default::default(),
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
        let log = match &self.log_dir {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(dirs.resolve(p)),
            None => Some(dirs.state_dir.join(LOG_DIR_NAME)),
        }
        .map(|dir| DailyLogConfig {
            dir,
            format: self.log_format,
        });
        let outputs = self
            .output
            .into_iter()
            .map(|o| match o {
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
            content_heuristics: self.heuristics.validate(),
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
    fn ignore_rules() {
        let r = IgnoreRule::parse("10.0.0.0/8;*;*;53").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(r.matches(ip("10.1.2.3"), Some(5000), ip("8.8.8.8"), Some(53)));
        assert!(!r.matches(ip("10.1.2.3"), Some(5000), ip("8.8.8.8"), Some(80)));
        assert!(!r.matches(ip("11.1.2.3"), None, ip("8.8.8.8"), Some(53)));
        assert!(IgnoreRule::parse("x;*;*;*").is_err());
    }
}
