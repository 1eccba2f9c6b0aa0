//! `spoor config import-maltrail`: a Maltrail `maltrail.conf` turned into a Spoor config.
//!
//! Maltrail's file is `KEY value` lines, `#` comments, and indented continuation lines for
//! the list keys (`USERS`, `IP_ALIASES`, `BLACKLIST`). Every key that is set gets one of two
//! outcomes: converted into the Spoor key with the same effect, or listed as not converted
//! with the reason (no such feature, a different mechanism, or a setting of a component this
//! command does not write). Nothing is dropped silently. The result is checked with the same
//! loader as `spoor config check` before it is written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use spoor_sensor::config::IgnoreRule;

/// Maltrail's `$SYSTEM_LOG_DIR` on Unix systems.
const SYSTEM_LOG_DIR: &str = "/var/log";
/// Largest kernel capture buffer the sensor accepts.
const MAX_BUFFER: u64 = 2 * 1024 * 1024 * 1024 - 1;

/// Maltrail feed modules (`trails/feeds/NAME.py`, as `DISABLED_FEEDS` names them) and the
/// catalog feeds that carry the same list.
const FEED_NAMES: &[(&str, &[&str])] = &[
    ("abuseipdb", &[]),
    ("alienvault", &[]),
    ("binarydefense", &["binarydefense"]),
    ("blackbook", &["blackbook"]),
    ("blocklist", &["blocklist-de"]),
    ("botscout", &[]),
    ("bruteforceblocker", &["bruteforceblocker"]),
    ("ciarmy", &["cins-army"]),
    ("cinsscore", &["cins-army"]),
    (
        "dataplane",
        &[
            "dataplane-sshpwauth",
            "dataplane-sshclient",
            "dataplane-vncrfb",
            "dataplane-sipinvitation",
            "dataplane-dnsrd",
        ],
    ),
    ("dshieldip", &["dshield-block", "dshield-top1000"]),
    ("emergingthreatsbot", &["et-compromised"]),
    ("emergingthreatscip", &["et-compromised"]),
    ("emergingthreatsdns", &[]),
    ("feodotrackerip", &["feodotracker"]),
    ("greensnow", &["greensnow"]),
    ("ipsum", &["ipsum"]),
    ("minerchk", &["minerchk"]),
    ("myip", &["myip-blacklist"]),
    ("openphish", &["openphish"]),
    ("policeman", &[]),
    ("sblam", &["sblam"]),
    ("sslbl", &["sslbl-ip"]),
    ("sslproxies", &[]),
    ("torproject", &["tor-exits"]),
    ("turris", &["turris-greylist"]),
    ("urlhaus", &["urlhaus-hosts", "urlhaus-urls"]),
    ("viriback", &["viriback"]),
];

/// Keys with no equivalent, and why.
const NOT_CONVERTED: &[(&str, &str)] = &[
    (
        "PROCESS_COUNT",
        "Spoor runs one capture thread per interface; there is no worker count",
    ),
    (
        "CAPTURE_WORKERS",
        "Spoor runs one capture thread per interface; there is no worker count",
    ),
    (
        "CAPTURE_FANOUT",
        "no PACKET_FANOUT in Spoor; one capture thread per interface",
    ),
    ("CAPTURE_FANOUT_MODE", "no PACKET_FANOUT in Spoor"),
    ("CAPTURE_FANOUT_DEFRAG", "no PACKET_FANOUT in Spoor"),
    ("CAPTURE_FANOUT_GROUP", "no PACKET_FANOUT in Spoor"),
    ("USE_CAPTURE_AFFINITY", "no worker pool to route between"),
    ("DISABLE_CPU_AFFINITY", "Spoor sets no CPU affinity"),
    (
        "USE_FAST_PREFILTER",
        "Spoor's decoder has no separate prefilter; use sensor.filter (BPF)",
    ),
    ("FAST_FLOW_CUTOFF", "no prefilter in Spoor"),
    ("FAST_ADMIT_LEVEL", "no prefilter in Spoor"),
    ("FAST_ADMIT_ADAPTIVE", "no prefilter in Spoor"),
    (
        "CAPTURE_TIMEOUT",
        "the libpcap read timeout is fixed (sensor.immediate controls batching)",
    ),
    (
        "OFFLINE_TIMESTAMPS",
        "Spoor always uses the capture's own timestamps for -r",
    ),
    (
        "IP_MINIMUM_FEEDS",
        "set per feed instead: [feeds.override.NAME] min_consensus = N (reputation feeds default to 2)",
    ),
    (
        "DISABLED_TRAILS_INFO_REGEX",
        "no info filter; disable the feed ([feeds] disable) or whitelist the trail",
    ),
    (
        "REMOTE_SEVERITY_REGEX",
        "severity comes from each trail's info and feed ([feeds.override.NAME] severity)",
    ),
    (
        "IGNORE_EVENTS_REGEX",
        "no regex over event lines; use sensor.ignore rules (src;sport;dst;dport)",
    ),
    (
        "USE_HEURISTICS",
        "Spoor's heuristics have no on/off switch in this version",
    ),
    (
        "DISABLED_HEURISTICS",
        "Spoor's heuristics have no per-heuristic switch in this version",
    ),
    (
        "SCAN_WINDOW",
        "Spoor's scan heuristics have no window setting in this version",
    ),
    ("CHECK_MISSING_HOST", "no equivalent switch"),
    ("CHECK_HOST_DOMAINS", "no equivalent switch"),
    (
        "CHECK_TLS_CERTIFICATES",
        "always on in Spoor when certificate trails are loaded (sslbl-certs feed)",
    ),
    ("USE_CONDENSED_STORAGE", "no observable store in the sensor"),
    (
        "EVENT_THROTTLE_MODE",
        "Spoor condenses repeats into one event with a count: sensor.condense_window",
    ),
    (
        "EVENT_THROTTLE_WINDOW",
        "Spoor condenses repeats into one event with a count: sensor.condense_window",
    ),
    (
        "EVENT_THROTTLE_BURST",
        "Spoor condenses repeats into one event with a count: sensor.condense_window",
    ),
    (
        "EVENT_THROTTLE_MAX_KEYS",
        "the condenser's table size is a built-in bound",
    ),
    (
        "DOMAIN_CACHE_ENTRIES",
        "no domain result cache (lookups read the memory-mapped snapshot)",
    ),
    (
        "DISABLE_TRAIL_UPDATES",
        "the sensor never downloads; `spoor feeds update` and `spoor trails compile` do",
    ),
    (
        "REPAIR_TRUNCATED_TRAILS",
        "no equivalent; bad feed lines are reported and skipped",
    ),
    (
        "TRAILS_FILE",
        "Spoor compiles trails into a snapshot (trails.snapshot); trails.csv is not read",
    ),
    (
        "ALLOW_EMPTY_TRAILS",
        "no equivalent; `spoor sensor` refuses to start without a snapshot",
    ),
    (
        "TRAIL_RELOAD_MIN_RATIO",
        "no equivalent; a snapshot that fails its checksum is never loaded",
    ),
    (
        "METRICS_INTERVAL",
        "not converted: sensor.stats_interval is the stats line's interval (default 60s)",
    ),
    (
        "STATS_ADDRESS",
        "a command-line flag in Spoor: `spoor sensor --metrics ADDR`",
    ),
    (
        "LOG_SERVER",
        "Maltrail's unauthenticated UDP log transport is not supported; ship to Spoor's server with [[sensor.output]] type = \"server\"",
    ),
    (
        "LOG_SERVER_SECRET",
        "Maltrail's UDP log transport is not supported",
    ),
    (
        "UPDATE_SERVER",
        "no trail pull from a server; run `spoor feeds update` on each sensor",
    ),
    (
        "USE_SERVER_UPDATE_TRAILS",
        "no trail serving; run `spoor feeds update` on each sensor",
    ),
    (
        "CUSTOM_TRAILS_URL",
        "not converted: add it as [[feeds.custom]] with the format of that list",
    ),
    (
        "PROXY_ADDRESS",
        "no config key: set HTTPS_PROXY in the environment of `spoor feeds update`",
    ),
    (
        "DISABLE_CHECK_SUDO",
        "no equivalent: the sensor opens capture as root and drops to sensor.user",
    ),
    (
        "HTTP_ADDRESS",
        "a server setting; this command writes the sensor, trail and feed settings only",
    ),
    (
        "HTTP_PORT",
        "a server setting; this command writes the sensor, trail and feed settings only",
    ),
    (
        "USE_SSL",
        "a server setting: Spoor's server makes a self-signed certificate or uses yours",
    ),
    (
        "SSL_PEM",
        "a server setting: Spoor's server makes a self-signed certificate or uses yours",
    ),
    (
        "USERS",
        "not imported: Maltrail's unsalted password hashes are not reused; create users with `spoor passwd`",
    ),
    (
        "ENABLE_MASK_CUSTOM",
        "a server setting; Spoor scopes users by network instead",
    ),
    (
        "UDP_ADDRESS",
        "Spoor's server takes events over HTTPS only (sensor shipper)",
    ),
    (
        "UDP_PORT",
        "Spoor's server takes events over HTTPS only (sensor shipper)",
    ),
    ("IP_ALIASES", "no address aliases in Spoor's dashboard"),
    ("HEADER_LOGO", "no custom logo"),
    ("HOME_LAT", "no attack map"),
    ("HOME_LON", "no attack map"),
    (
        "DISABLE_RIPE_LOOKUPS",
        "Spoor's dashboard makes no outbound lookups",
    ),
    (
        "MAX_REQUEST_THREADS",
        "a server setting with its own limits in Spoor",
    ),
    (
        "MAX_LIVE_STREAMS",
        "a server setting with its own limits in Spoor",
    ),
    (
        "HUNT_TIME_BUDGET",
        "a server setting; Spoor queries its database",
    ),
    (
        "FAIL2BAN_REGEX",
        "a server setting: Spoor's IP list endpoint filters by severity and kind",
    ),
    (
        "FAIL2BAN_ALLOWLIST",
        "a server setting (allowlisted clients of the IP list endpoint)",
    ),
    (
        "BLACKLIST_ALLOWLIST",
        "a server setting (allowlisted clients of the IP list endpoint)",
    ),
    (
        "BLACKLIST",
        "blocking is done by Spoor's responders (policy rules), not a blacklist endpoint",
    ),
    (
        "ALERT_WEBHOOK_URL",
        "a server setting: Spoor's server sends webhooks",
    ),
    (
        "ALERT_SEVERITY",
        "a server setting: Spoor's server sends webhooks",
    ),
    (
        "ALERT_FORMAT",
        "a server setting: Spoor's webhooks send JSON",
    ),
    (
        "ALERT_THROTTLE",
        "a server setting: Spoor's server sends webhooks",
    ),
];

/// One `KEY value` (continuation lines joined with newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) line: usize,
}

/// Parse Maltrail's format: later entries of a key replace earlier ones, as in Maltrail.
pub(crate) fn parse(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            // A continuation line of the key before (USERS, IP_ALIASES, BLACKLIST).
            if let Some(last) = entries.last_mut() {
                let item = trimmed.split(" #").next().unwrap_or("").trim();
                if !item.is_empty() {
                    if !last.value.is_empty() {
                        last.value.push('\n');
                    }
                    last.value.push_str(item);
                }
            }
            continue;
        }
        let (key, value) = match trimmed.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => (trimmed, ""),
        };
        entries.retain(|e| e.key != key);
        entries.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            line: i + 1,
        });
    }
    entries
}

/// A key that was not converted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) key: String,
    pub(crate) line: usize,
    pub(crate) reason: String,
}

/// The converted config and what was left out.
#[derive(Debug)]
pub(crate) struct Import {
    pub(crate) toml: String,
    pub(crate) converted: Vec<String>,
    pub(crate) skipped: Vec<Skipped>,
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Maltrail's `512MB`, `1GB`, `65536` (bytes); None for a percentage or garbage.
fn bytes(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_uppercase();
    let (number, unit) = v
        .find(|c: char| !c.is_ascii_digit())
        .map_or((v.as_str(), ""), |i| (&v[..i], v[i..].trim()));
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        "" | "B" => 1,
        "K" | "KB" => 1024,
        "M" | "MB" => 1024 * 1024,
        "G" | "GB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Maltrail's relative paths are relative to its install folder (where maltrail.conf is).
fn resolve(base: &Path, value: &str) -> PathBuf {
    let value = value.replace("$SYSTEM_LOG_DIR", SYSTEM_LOG_DIR);
    let p = Path::new(&value);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let mut out = base.to_path_buf();
    for part in p.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Sections of the output, written in a fixed order.
#[derive(Debug, Default)]
struct Out {
    spoor: Vec<String>,
    feeds: Vec<String>,
    sources: Vec<String>,
    sensor: Vec<String>,
    outputs: Vec<String>,
}

/// Convert `text` (a maltrail.conf from `base`'s folder) into a Spoor config.
pub(crate) fn convert(text: &str, base: &Path) -> Import {
    let entries = parse(text);
    let reasons: BTreeMap<&str, &str> = NOT_CONVERTED.iter().copied().collect();
    let mut out = Out::default();
    let mut converted = Vec::new();
    let mut skipped = Vec::new();
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    let mut disabled_feeds: Vec<String> = Vec::new();

    for e in &entries {
        let v = e.value.as_str();
        macro_rules! done {
            ($section:expr, $line:expr) => {{
                $section.push($line);
                converted.push(e.key.clone());
            }};
        }
        macro_rules! skip {
            ($reason:expr) => {
                skipped.push(Skipped {
                    key: e.key.clone(),
                    line: e.line,
                    reason: $reason,
                })
            };
        }
        match e.key.as_str() {
            "SENSOR_NAME" => {
                let name = v.replace("$HOSTNAME", "");
                if v == "$HOSTNAME" || name.trim().is_empty() {
                    // Spoor's default is the host name too: nothing to write.
                    converted.push(e.key.clone());
                } else if name.contains(char::is_whitespace) {
                    skip!(format!("`{v}` has spaces; sensor.name must be one word"));
                } else {
                    done!(out.sensor, format!("name = {}", quote(&name)));
                }
            }
            "MONITOR_INTERFACE" => {
                let ifaces: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if ifaces.is_empty() {
                    skip!("empty".into());
                } else {
                    if ifaces.iter().any(|i| i == "any") {
                        out.sensor.push(
                            "# \"any\" is Linux only (all interfaces, cooked link type); on FreeBSD name the interfaces"
                                .into(),
                        );
                    }
                    done!(out.sensor, format!("interfaces = {}", list(&ifaces)));
                }
            }
            "CAPTURE_FILTER" => done!(out.sensor, format!("filter = {}", quote(v))),
            "CAPTURE_SNAPLEN" => match v.parse::<u32>() {
                Ok(n) if (96..=262_144).contains(&n) => {
                    done!(out.sensor, format!("snaplen = {n}"))
                }
                _ => skip!(format!("`{v}` is not a snap length from 96 to 262144")),
            },
            "CAPTURE_IMMEDIATE" => done!(out.sensor, format!("immediate = {}", truthy(v))),
            "CAPTURE_BUFFER_SIZE" | "CAPTURE_BUFFER" => {
                // CAPTURE_BUFFER_SIZE is the per-interface ring and wins when both are set.
                if e.key == "CAPTURE_BUFFER" && get("CAPTURE_BUFFER_SIZE").is_some() {
                    skip!("CAPTURE_BUFFER_SIZE is set and used instead".into());
                    continue;
                }
                match bytes(v) {
                    Some(n) if (65_536..=MAX_BUFFER).contains(&n) => {
                        done!(out.sensor, format!("buffer_size = \"{n}B\""))
                    }
                    Some(_) => skip!(format!("`{v}` is outside 64KiB..2GiB (sensor.buffer_size)")),
                    None => skip!(format!(
                        "`{v}` is a share of memory; sensor.buffer_size is bytes per interface (default 32MiB kept)"
                    )),
                }
            }
            "LOG_DIR" => {
                let dir = resolve(base, v);
                done!(
                    out.sensor,
                    format!("log_dir = {}", quote(&dir.display().to_string()))
                )
            }
            "DISABLE_LOCAL_LOG_STORAGE" => {
                if truthy(v) {
                    // Overrides LOG_DIR: no local logs.
                    out.sensor.retain(|l| !l.starts_with("log_dir"));
                    done!(out.sensor, "log_dir = \"\"".into());
                } else {
                    converted.push(e.key.clone());
                }
            }
            "USER_IGNORELIST" => {
                let path = resolve(base, v);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let mut rules = Vec::new();
                        for (n, line) in text.lines().enumerate() {
                            let line = line.trim();
                            if line.is_empty() || line.starts_with('#') {
                                continue;
                            }
                            match IgnoreRule::parse(line) {
                                Ok(_) => rules.push(line.to_string()),
                                Err(why) => skipped.push(Skipped {
                                    key: format!("{}:{}", path.display(), n + 1),
                                    line: e.line,
                                    reason: why,
                                }),
                            }
                        }
                        out.sensor.push(format!("# from {}", path.display()));
                        done!(out.sensor, format!("ignore = {}", list(&rules)));
                    }
                    Err(err) => skip!(format!(
                        "cannot read {}: {err}; copy its rules into sensor.ignore",
                        path.display()
                    )),
                }
            }
            "SYSLOG_SERVER" | "LOGSTASH_SERVER" => {
                let syslog = e.key == "SYSLOG_SERVER";
                let mut n = 0;
                for address in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    let mut table = format!(
                        "[[sensor.output]]\ntype = \"udp\"\naddress = {}\n",
                        quote(address)
                    );
                    if syslog {
                        // Maltrail sends CEF in a BSD syslog header over UDP.
                        table.push_str("format = \"cef\"\nsyslog = { rfc = \"rfc3164\" }\n");
                    } else {
                        // Maltrail sends one JSON object per UDP datagram to Logstash.
                        table.push_str("format = \"json\"\n");
                    }
                    out.outputs.push(table);
                    n += 1;
                }
                if n > 0 {
                    converted.push(e.key.clone());
                } else {
                    skip!("no address".into());
                }
            }
            "USE_FEED_UPDATES" => {
                if truthy(v) {
                    converted.push(e.key.clone());
                } else {
                    for f in spoor_feeds::catalog::builtin() {
                        if f.default_enabled {
                            disabled_feeds.push(f.name.to_string());
                        }
                    }
                    converted.push(e.key.clone());
                }
            }
            "DISABLED_FEEDS" => {
                let mut unknown = Vec::new();
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let lower = name.to_ascii_lowercase();
                    let mapped: Vec<String> = match FEED_NAMES.iter().find(|(m, _)| *m == lower) {
                        Some((_, spoor)) => spoor.iter().map(|s| s.to_string()).collect(),
                        None => spoor_feeds::catalog::find(&lower)
                            .map(|f| vec![f.name.to_string()])
                            .unwrap_or_default(),
                    };
                    if mapped.is_empty() {
                        unknown.push(name.to_string());
                    }
                    disabled_feeds.extend(mapped);
                }
                converted.push(e.key.clone());
                if !unknown.is_empty() {
                    skipped.push(Skipped {
                        key: format!("DISABLED_FEEDS {}", unknown.join(", ")),
                        line: e.line,
                        reason: "not in Spoor's feed catalog (nothing to disable)".into(),
                    });
                }
            }
            "UPDATE_PERIOD" => match v.parse::<u64>() {
                Ok(secs) if secs >= 60 => done!(out.feeds, format!("interval = \"{secs}s\"")),
                _ => skip!(format!("`{v}` is not a number of seconds of at least 60")),
            },
            "CUSTOM_TRAILS_DIR" => {
                let dir = resolve(base, v);
                done!(
                    out.sources,
                    format!(
                        "[[trails.source]]\nname = \"maltrail-custom\"\npath = {}\nformat = \"maltrail\"\nreference = \"(custom)\"\n",
                        quote(&dir.display().to_string())
                    )
                )
            }
            "USER_WHITELIST" => {
                if v.is_empty() {
                    converted.push(e.key.clone());
                } else {
                    let path = resolve(base, v);
                    done!(
                        out.sources,
                        format!(
                            "[[trails.source]]\nname = \"maltrail-user-whitelist\"\npath = {}\nformat = \"whitelist\"\n",
                            quote(&path.display().to_string())
                        )
                    )
                }
            }
            "SHOW_DEBUG" => {
                if truthy(v) {
                    done!(out.spoor, "log_level = \"debug\"".into());
                } else {
                    converted.push(e.key.clone());
                }
            }
            key => match reasons.get(key) {
                Some(reason) => skip!((*reason).to_string()),
                None => skip!("unknown to this importer".into()),
            },
        }
    }
    disabled_feeds.sort();
    disabled_feeds.dedup();
    if !disabled_feeds.is_empty() {
        out.feeds
            .push(format!("disable = {}", list(&disabled_feeds)));
    }
    Import {
        toml: render(&out, &skipped),
        converted,
        skipped,
    }
}

fn render(out: &Out, skipped: &[Skipped]) -> String {
    let mut s = String::from(
        "# Converted from maltrail.conf by `spoor config import-maltrail`.\n\
         # Keys not set here keep Spoor's defaults (`spoor config sample` lists them all).\n",
    );
    let mut section = |name: &str, lines: &[String]| {
        if !lines.is_empty() {
            let _ = write!(s, "\n[{name}]\n");
            for l in lines {
                let _ = writeln!(s, "{l}");
            }
        }
    };
    section("spoor", &out.spoor);
    section("feeds", &out.feeds);
    section("sensor", &out.sensor);
    for t in out.sources.iter().chain(&out.outputs) {
        let _ = write!(s, "\n{t}");
    }
    if !skipped.is_empty() {
        s.push_str("\n# Not converted (maltrail.conf line: key: why):\n");
        for k in skipped {
            let _ = writeln!(s, "#   {}: {}: {}", k.line, k.key, k.reason);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_and_comments() {
        let entries = parse(
            "# c\nUSERS\n    admin:x:0:   # changeme!\n#    other:y\nHTTP_PORT 8338\nHTTP_PORT 9000\n",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key, "USERS");
        assert_eq!(entries[0].value, "admin:x:0:");
        assert_eq!(entries[1].value, "9000");
        assert_eq!(entries[1].line, 6);
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("512MB"), Some(512 * 1024 * 1024));
        assert_eq!(bytes("65536"), Some(65536));
        assert_eq!(bytes("10%"), None);
    }

    #[test]
    fn every_key_is_converted_or_listed() {
        let import = convert(
            "SENSOR_NAME fw 1\nMONITOR_INTERFACE em0, em1\nCAPTURE_BUFFER 64MB\nUPDATE_PERIOD 3600\n\
             DISABLED_FEEDS turris, nosuchfeed\nSYSLOG_SERVER 127.0.0.1:514, 127.0.0.2:514\nFOO bar\n",
            Path::new("/opt/maltrail"),
        );
        assert!(
            import.toml.contains("interfaces = [\"em0\", \"em1\"]"),
            "{}",
            import.toml
        );
        assert!(import.toml.contains("buffer_size = \"67108864B\""));
        assert!(import.toml.contains("interval = \"3600s\""));
        assert!(import.toml.contains("disable = [\"turris-greylist\"]"));
        assert_eq!(import.toml.matches("type = \"udp\"").count(), 2);
        let skipped: Vec<&str> = import.skipped.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(skipped, ["SENSOR_NAME", "DISABLED_FEEDS nosuchfeed", "FOO"]);
    }
}
