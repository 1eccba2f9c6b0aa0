//! The `[trails]` and `[feeds]` config sections, raw and validated.
//!
//! The validated types ([`TrailsConfig`], [`FeedsConfig`]) cannot hold an invalid
//! configuration: the binary parses the TOML into the raw serde structs ([`RawTrails`],
//! [`RawFeeds`]), and their `validate` turns those into these or names every key that is
//! wrong (see `spoor_core::ConfigError`). The raw structs are the documentation of the
//! sections: each field says what it does and what its default is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use spoor_core::{ByteSize, ConfigError, Duration, KeyPath, Severity, TrailKind};

use crate::catalog::CatalogFeed;
use crate::format::{CsvOptions, FormatSpec};

/// Where state lives by default: FreeBSD keeps daemon state in /var/db, Linux in /var/lib.
pub const DEFAULT_STATE_DIR: &str = if cfg!(target_os = "freebsd") {
    "/var/db/spoor"
} else {
    "/var/lib/spoor"
};

/// `[trails]`: the local sources and where the compiled snapshot goes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailsConfig {
    /// The compiled snapshot file (default `<state_dir>/trails.snapshot`).
    pub snapshot: PathBuf,
    /// `[[trails.source]]` entries, in file order.
    pub sources: Vec<SourceSpec>,
}

/// One local trail source: a file or folder with a format.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Unique name, used for provenance (`trails stats`, lookups). Defaults to the
    /// path's file name.
    pub name: String,
    pub path: PathBuf,
    pub format: FormatSpec,
    pub defaults: OriginDefaults,
}

/// What a source says about its trails when a line does not say more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginDefaults {
    /// Info for trails whose line carries none (e.g. `malware`, `tor exit`). Maltrail
    /// folders derive it from the file name instead.
    pub info: Option<String>,
    /// Reference shown with each hit (a feed's site, `(static)`, `(custom)`).
    pub reference: Option<String>,
    /// Fixed severity for this source, overriding the rules of `Severity::from_info`.
    pub severity: Option<Severity>,
    /// Keep a trail from this source only if at least this many sources list it
    /// (1 = no consensus needed).
    pub min_consensus: u32,
}

/// `[feeds]`: the catalog switches, user feeds and the updater's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedsConfig {
    /// Downloaded copies (last good) and the conditional-GET state live here.
    pub dir: PathBuf,
    /// How often long-running processes refresh feeds.
    pub interval: Duration,
    /// Per-request timeout (connect + whole body).
    pub timeout: Duration,
    /// A body larger than this is rejected (and the last good copy kept).
    pub max_size: ByteSize,
    /// Downloads running at once.
    pub parallel: usize,
    /// Every feed known: the built-in catalog with the config's switches and overrides
    /// applied, then `[[feeds.custom]]`.
    pub feeds: Vec<FeedSpec>,
}

/// One downloadable feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSpec {
    pub name: String,
    pub url: String,
    pub format: FormatSpec,
    pub enabled: bool,
    pub defaults: OriginDefaults,
    /// One line on what the feed lists (shown by `spoor feeds list`).
    pub description: String,
}

// ---------------------------------------------------------------------------------------
// Raw sections: what serde reads from the file, before anything is checked.
// ---------------------------------------------------------------------------------------

/// Default snapshot file name inside the state dir.
pub const SNAPSHOT_FILE_NAME: &str = "trails.snapshot";
/// Default folder for downloaded feeds inside the state dir.
pub const FEEDS_DIR_NAME: &str = "feeds";
/// Default refresh interval: public lists change a few times a day at most.
pub const DEFAULT_FEED_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Shortest refresh interval accepted: feed publishers throttle or ban clients that poll
/// more often.
pub const MIN_FEED_INTERVAL: Duration = Duration::from_secs(60);
/// Default per-request timeout.
pub const DEFAULT_FEED_TIMEOUT: Duration = Duration::from_secs(60);
/// Default body limit: the largest public lists (IPsum, Blackbook) are a few MiB.
pub const DEFAULT_FEED_MAX_SIZE: ByteSize = ByteSize(64 << 20);
/// Default number of downloads at once.
pub const DEFAULT_FEED_PARALLEL: usize = 8;
/// More parallel downloads than this only gets the host rate-limited.
pub const MAX_FEED_PARALLEL: usize = 64;
/// 1 = a single source listing an indicator is enough.
pub const DEFAULT_MIN_CONSENSUS: u32 = 1;
/// Default `min_count` of the `ipsum` format: every listed address.
pub const DEFAULT_IPSUM_MIN_COUNT: u32 = 1;
/// Default `min_score` of the `suricata-iprep` format: every listed address.
pub const DEFAULT_IPREP_MIN_SCORE: u8 = 0;
/// Suricata's iprep scores are 0..=127.
pub const MAX_IPREP_SCORE: u8 = 127;

/// The folders relative paths in the config are resolved against.
#[derive(Debug, Clone, Copy)]
pub struct BaseDirs<'a> {
    /// The folder holding the config file: relative paths in the file are relative to it.
    pub config_dir: &'a Path,
    /// `[spoor] state_dir`, already resolved: derived defaults live below it.
    pub state_dir: &'a Path,
}

impl BaseDirs<'_> {
    /// `p` as an absolute path: relative paths are relative to the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.config_dir.join(p)
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_min_consensus() -> u32 {
    DEFAULT_MIN_CONSENSUS
}
fn default_interval() -> Duration {
    DEFAULT_FEED_INTERVAL
}
fn default_timeout() -> Duration {
    DEFAULT_FEED_TIMEOUT
}
fn default_max_size() -> ByteSize {
    DEFAULT_FEED_MAX_SIZE
}
fn default_parallel() -> usize {
    DEFAULT_FEED_PARALLEL
}

/// `[trails]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrails {
    /// The compiled snapshot file. Default: `<state_dir>/trails.snapshot`.
    pub snapshot: Option<PathBuf>,
    /// `[[trails.source]]`: local trail files and folders. Default: none.
    pub source: Vec<RawSource>,
}

/// One `[[trails.source]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSource {
    /// Unique name for provenance. Default: the file name of `path`.
    pub name: Option<String>,
    /// File or folder to read (required). Relative paths are relative to the config file.
    pub path: Option<PathBuf>,
    /// List format (required), one of [`FormatSpec::NAMES`].
    pub format: Option<String>,
    /// Info for trails whose line carries none. Default: none (the format decides).
    pub info: Option<String>,
    /// Reference shown with each hit. Default: none.
    pub reference: Option<String>,
    /// Fixed severity (low, medium, high). Default: derived from each trail's info.
    pub severity: Option<Severity>,
    /// Keep a trail only if at least this many sources list it. Default 1.
    #[serde(default = "default_min_consensus")]
    pub min_consensus: u32,
    /// `false` keeps the entry in the file but ignores it. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// csv: 0-based column of the indicator. Default 0.
    pub column: Option<usize>,
    /// csv: 0-based column whose text becomes the info. Default: none.
    pub info_column: Option<usize>,
    /// csv: the one-character field delimiter. Default `,`.
    pub delimiter: Option<String>,
    /// csv: skip the first row. Default false.
    pub header: Option<bool>,
    /// csv, suricata-dataset: the kind of indicator (required for suricata-dataset).
    pub kind: Option<String>,
    /// ipsum: skip addresses listed by fewer than this many blacklists. Default 1.
    pub min_count: Option<u32>,
    /// suricata-iprep: skip entries scored below this (0..=127). Default 0.
    pub min_score: Option<u32>,
}

impl Default for RawSource {
    fn default() -> Self {
        RawSource {
            name: None,
            path: None,
            format: None,
            info: None,
            reference: None,
            severity: None,
            min_consensus: default_min_consensus(),
            enabled: default_true(),
            column: None,
            info_column: None,
            delimiter: None,
            header: None,
            kind: None,
            min_count: None,
            min_score: None,
        }
    }
}

/// `[feeds]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFeeds {
    /// Downloaded copies and conditional-GET state. Default: `<state_dir>/feeds`.
    pub dir: Option<PathBuf>,
    /// How often long-running processes refresh feeds. Default 6h.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Per-request timeout. Default 60s.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Largest body accepted. Default 64MiB.
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// Downloads at once (1..=64). Default 8.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// Catalog feeds to switch on. Default: none.
    pub enable: Vec<String>,
    /// Catalog feeds to switch off. Default: none.
    pub disable: Vec<String>,
    /// `[feeds.override.NAME]`: per catalog feed settings. Default: none.
    #[serde(rename = "override")]
    pub overrides: BTreeMap<String, RawFeedOverride>,
    /// `[[feeds.custom]]`: feeds not in the catalog. Default: none.
    pub custom: Vec<RawCustomFeed>,
}

impl Default for RawFeeds {
    fn default() -> Self {
        RawFeeds {
            dir: None,
            interval: default_interval(),
            timeout: default_timeout(),
            max_size: default_max_size(),
            parallel: default_parallel(),
            enable: Vec::new(),
            disable: Vec::new(),
            overrides: BTreeMap::new(),
            custom: Vec::new(),
        }
    }
}

/// `[feeds.override.NAME]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFeedOverride {
    /// Fixed severity for the feed. Default: the catalog's.
    pub severity: Option<Severity>,
    /// Consensus the feed's indicators need. Default: the catalog's.
    pub min_consensus: Option<u32>,
}

/// One `[[feeds.custom]]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCustomFeed {
    /// Unique name (required); must not clash with a catalog feed. Also names the
    /// downloaded file, so letters, digits, `-`, `_` and `.` only.
    pub name: Option<String>,
    /// Where to download it (required): http or https.
    pub url: Option<String>,
    /// List format (required), one of [`FormatSpec::NAMES`].
    pub format: Option<String>,
    /// Info for trails whose line carries none. Default: none.
    pub info: Option<String>,
    /// Reference shown with each hit. Default: none.
    pub reference: Option<String>,
    /// Fixed severity (low, medium, high). Default: derived from each trail's info.
    pub severity: Option<Severity>,
    /// Keep a trail only if at least this many sources list it. Default 1.
    #[serde(default = "default_min_consensus")]
    pub min_consensus: u32,
    /// Download and use the feed. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// One line on what the feed lists. Default: empty.
    pub description: String,
    /// csv: 0-based column of the indicator. Default 0.
    pub column: Option<usize>,
    /// csv: 0-based column whose text becomes the info. Default: none.
    pub info_column: Option<usize>,
    /// csv: the one-character field delimiter. Default `,`.
    pub delimiter: Option<String>,
    /// csv: skip the first row. Default false.
    pub header: Option<bool>,
    /// csv, suricata-dataset: the kind of indicator (required for suricata-dataset).
    pub kind: Option<String>,
    /// ipsum: skip addresses listed by fewer than this many blacklists. Default 1.
    pub min_count: Option<u32>,
    /// suricata-iprep: skip entries scored below this (0..=127). Default 0.
    pub min_score: Option<u32>,
}

impl Default for RawCustomFeed {
    fn default() -> Self {
        RawCustomFeed {
            name: None,
            url: None,
            format: None,
            info: None,
            reference: None,
            severity: None,
            min_consensus: default_min_consensus(),
            enabled: default_true(),
            description: String::new(),
            column: None,
            info_column: None,
            delimiter: None,
            header: None,
            kind: None,
            min_count: None,
            min_score: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation: raw → validated, collecting every problem.
// ---------------------------------------------------------------------------------------

/// The format keys of a source or custom feed, borrowed from either raw struct.
struct FormatOptions<'a> {
    format: Option<&'a str>,
    column: Option<usize>,
    info_column: Option<usize>,
    delimiter: Option<&'a str>,
    header: Option<bool>,
    kind: Option<&'a str>,
    min_count: Option<u32>,
    min_score: Option<u32>,
}

/// Which formats each option applies to.
const OPTION_FORMATS: &[(&str, &[&str])] = &[
    ("column", &["csv"]),
    ("info_column", &["csv"]),
    ("delimiter", &["csv"]),
    ("header", &["csv"]),
    ("kind", &["csv", "suricata-dataset"]),
    ("min_count", &["ipsum"]),
    ("min_score", &["suricata-iprep"]),
];

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn kind_names() -> String {
    TrailKind::ALL.map(|k| k.as_str()).join(", ")
}

impl FormatOptions<'_> {
    fn is_set(&self, option: &str) -> bool {
        match option {
            "column" => self.column.is_some(),
            "info_column" => self.info_column.is_some(),
            "delimiter" => self.delimiter.is_some(),
            "header" => self.header.is_some(),
            "kind" => self.kind.is_some(),
            "min_count" => self.min_count.is_some(),
            "min_score" => self.min_score.is_some(),
            _ => false,
        }
    }

    /// The [`FormatSpec`] these keys describe, or `None` after pushing every problem.
    fn build(&self, key: &KeyPath, errors: &mut Vec<ConfigError>) -> Option<FormatSpec> {
        let before = errors.len();
        let Some(name) = self.format else {
            errors.push(ConfigError::new(
                key.key("format"),
                format!("required (one of: {})", FormatSpec::NAMES.join(", ")),
            ));
            return None;
        };
        if !FormatSpec::NAMES.contains(&name) {
            errors.push(ConfigError::new(
                key.key("format"),
                format!(
                    "unknown format `{name}` (expected one of: {})",
                    FormatSpec::NAMES.join(", ")
                ),
            ));
            return None;
        }
        for (option, formats) in OPTION_FORMATS {
            if self.is_set(option) && !formats.contains(&name) {
                let plural = if formats.len() > 1 { "s" } else { "" };
                errors.push(ConfigError::new(
                    key.key(option),
                    format!("only applies to format{plural} {}", quoted_list(formats)),
                ));
            }
        }
        let delimiter = match self.delimiter {
            None => b',',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some(d) => {
                errors.push(ConfigError::new(
                    key.key("delimiter"),
                    format!("`{d}` is not one ASCII character (e.g. \",\", \";\" or \"\\t\")"),
                ));
                b','
            }
        };
        let kind = match self.kind.map(str::parse::<TrailKind>) {
            None => None,
            Some(Ok(kind)) => Some(kind),
            Some(Err(_)) => {
                errors.push(ConfigError::new(
                    key.key("kind"),
                    format!(
                        "unknown kind `{}` (expected one of: {})",
                        self.kind.unwrap_or_default(),
                        kind_names()
                    ),
                ));
                None
            }
        };
        let min_score = match self.min_score {
            None => DEFAULT_IPREP_MIN_SCORE,
            Some(s) if s <= u32::from(MAX_IPREP_SCORE) => s as u8,
            Some(s) => {
                errors.push(ConfigError::new(
                    key.key("min_score"),
                    format!("{s} is out of range (0..={MAX_IPREP_SCORE})"),
                ));
                DEFAULT_IPREP_MIN_SCORE
            }
        };
        let spec = match name {
            "maltrail" => FormatSpec::Maltrail,
            "maltrail-csv" => FormatSpec::MaltrailCsv,
            "whitelist" => FormatSpec::Whitelist,
            "ip" => FormatSpec::Ip,
            "cidr" => FormatSpec::Cidr,
            "domain" => FormatSpec::Domain,
            "url" => FormatSpec::Url,
            "ua" => FormatSpec::UserAgent,
            "ja4" => FormatSpec::Ja4,
            "cert-sha1" => FormatSpec::CertSha1,
            "ipset" => FormatSpec::Ipset,
            "hosts" => FormatSpec::Hosts,
            "csv" => FormatSpec::Csv(CsvOptions {
                column: self.column.unwrap_or(0),
                info_column: self.info_column,
                delimiter,
                header: self.header.unwrap_or(false),
                kind,
            }),
            "ipsum" => FormatSpec::Ipsum {
                min_count: self.min_count.unwrap_or(DEFAULT_IPSUM_MIN_COUNT),
            },
            "suricata-iprep" => FormatSpec::SuricataIprep { min_score },
            "suricata-dataset" => match kind {
                Some(kind) => FormatSpec::SuricataDataset { kind },
                None => {
                    if self.kind.is_none() {
                        errors.push(ConfigError::new(
                            key.key("kind"),
                            format!(
                                "required for format `suricata-dataset` (one of: {})",
                                kind_names()
                            ),
                        ));
                    }
                    return None;
                }
            },
            "tor-exits" => FormatSpec::TorExits,
            other => {
                // FormatSpec::NAMES grew a name this match does not know yet.
                errors.push(ConfigError::new(
                    key.key("format"),
                    format!("format `{other}` cannot be configured yet"),
                ));
                return None;
            }
        };
        (errors.len() == before).then_some(spec)
    }
}

fn check_min_consensus(value: u32, key: &KeyPath, errors: &mut Vec<ConfigError>) {
    if value == 0 {
        errors.push(ConfigError::new(
            key.clone(),
            "must be at least 1 (1 = no consensus needed)",
        ));
    }
}

impl RawSource {
    fn options(&self) -> FormatOptions<'_> {
        FormatOptions {
            format: self.format.as_deref(),
            column: self.column,
            info_column: self.info_column,
            delimiter: self.delimiter.as_deref(),
            header: self.header,
            kind: self.kind.as_deref(),
            min_count: self.min_count,
            min_score: self.min_score,
        }
    }

    /// The validated source, or `None` after pushing every problem.
    fn validate(
        self,
        key: &KeyPath,
        dirs: &BaseDirs<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<SourceSpec> {
        let before = errors.len();
        let format = self.options().build(key, errors);
        check_min_consensus(self.min_consensus, &key.key("min_consensus"), errors);
        let path = match &self.path {
            None => {
                errors.push(ConfigError::new(
                    key.key("path"),
                    "required: the trail file or folder to read",
                ));
                None
            }
            Some(p) if p.as_os_str().is_empty() => {
                errors.push(ConfigError::new(key.key("path"), "must not be empty"));
                None
            }
            Some(p) => Some(dirs.resolve(p)),
        };
        let name = match (self.name, &path) {
            (Some(name), _) if name.trim().is_empty() => {
                errors.push(ConfigError::new(key.key("name"), "must not be empty"));
                None
            }
            (Some(name), _) => Some(name),
            (None, Some(path)) => match path.file_name() {
                Some(n) => Some(n.to_string_lossy().into_owned()),
                None => {
                    errors.push(ConfigError::new(
                        key.key("path"),
                        "has no file name to name the source after; set `name`",
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        if errors.len() != before {
            return None;
        }
        Some(SourceSpec {
            name: name?,
            path: path?,
            format: format?,
            defaults: OriginDefaults {
                info: self.info,
                reference: self.reference,
                severity: self.severity,
                min_consensus: self.min_consensus,
            },
        })
    }
}

impl RawTrails {
    /// Check `[trails]` (written at `key`) and build the validated section. Disabled
    /// sources are checked too, then dropped.
    pub fn validate(
        self,
        key: &KeyPath,
        dirs: &BaseDirs<'_>,
    ) -> Result<TrailsConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let snapshot = match &self.snapshot {
            Some(p) if p.as_os_str().is_empty() => {
                errors.push(ConfigError::new(key.key("snapshot"), "must not be empty"));
                PathBuf::new()
            }
            Some(p) => dirs.resolve(p),
            None => dirs.state_dir.join(SNAPSHOT_FILE_NAME),
        };
        let mut sources = Vec::new();
        // name → index of the entry that used it first
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in self.source.into_iter().enumerate() {
            let entry = key.key("source").index(i);
            let name_key = if raw.name.is_some() {
                entry.key("name")
            } else {
                entry.key("path")
            };
            let enabled = raw.enabled;
            let Some(spec) = raw.validate(&entry, dirs, &mut errors) else {
                continue;
            };
            if let Some(first) = seen.get(&spec.name) {
                errors.push(ConfigError::new(
                    name_key,
                    format!(
                        "source name `{}` is already used by {}; set a unique `name`",
                        spec.name,
                        key.key("source").index(*first)
                    ),
                ));
                continue;
            }
            seen.insert(spec.name.clone(), i);
            if enabled {
                sources.push(spec);
            }
        }
        if errors.is_empty() {
            Ok(TrailsConfig { snapshot, sources })
        } else {
            Err(errors)
        }
    }
}

/// Custom feed names become file names in the feeds dir.
fn is_safe_feed_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `http://host...` or `https://host...`, nothing else (no file://, no ftp).
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` contains blanks; percent-encode them"));
    }
    Ok(())
}

impl RawCustomFeed {
    fn options(&self) -> FormatOptions<'_> {
        FormatOptions {
            format: self.format.as_deref(),
            column: self.column,
            info_column: self.info_column,
            delimiter: self.delimiter.as_deref(),
            header: self.header,
            kind: self.kind.as_deref(),
            min_count: self.min_count,
            min_score: self.min_score,
        }
    }
}

impl RawFeeds {
    /// Check `[feeds]` (written at `key`) against the built-in catalog and build the
    /// validated section.
    pub fn validate(
        self,
        key: &KeyPath,
        dirs: &BaseDirs<'_>,
    ) -> Result<FeedsConfig, Vec<ConfigError>> {
        self.validate_with_catalog(key, dirs, &crate::catalog::builtin())
    }

    /// [`RawFeeds::validate`] against a given catalog.
    pub fn validate_with_catalog(
        self,
        key: &KeyPath,
        dirs: &BaseDirs<'_>,
        catalog: &[CatalogFeed],
    ) -> Result<FeedsConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let dir = match &self.dir {
            Some(p) if p.as_os_str().is_empty() => {
                errors.push(ConfigError::new(key.key("dir"), "must not be empty"));
                PathBuf::new()
            }
            Some(p) => dirs.resolve(p),
            None => dirs.state_dir.join(FEEDS_DIR_NAME),
        };
        if self.interval < MIN_FEED_INTERVAL {
            errors.push(ConfigError::new(
                key.key("interval"),
                format!(
                    "{} is too often (at least {MIN_FEED_INTERVAL})",
                    self.interval
                ),
            ));
        }
        if self.timeout.as_std().is_zero() {
            errors.push(ConfigError::new(key.key("timeout"), "must be more than 0s"));
        }
        if self.max_size.0 == 0 {
            errors.push(ConfigError::new(
                key.key("max_size"),
                "must be more than 0B",
            ));
        }
        if !(1..=MAX_FEED_PARALLEL).contains(&self.parallel) {
            errors.push(ConfigError::new(
                key.key("parallel"),
                format!(
                    "{} is out of range (1..={MAX_FEED_PARALLEL})",
                    self.parallel
                ),
            ));
        }

        let known = || {
            catalog
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let is_catalog = |name: &str| catalog.iter().any(|f| f.name == name);
        let is_custom = |name: &str| self.custom.iter().any(|c| c.name.as_deref() == Some(name));
        let check_switch = |list: &str, i: usize, name: &str, errors: &mut Vec<ConfigError>| {
            let at = key.key(list).index(i);
            if is_catalog(name) {
                return true;
            }
            let message = if is_custom(name) {
                format!(
                    "`{name}` is a custom feed: switch it with `enabled` in its [[feeds.custom]]"
                )
            } else {
                format!("unknown feed `{name}` (known: {})", known())
            };
            errors.push(ConfigError::new(at, message));
            false
        };
        for (i, name) in self.enable.iter().enumerate() {
            check_switch("enable", i, name, &mut errors);
        }
        for (i, name) in self.disable.iter().enumerate() {
            if check_switch("disable", i, name, &mut errors) && self.enable.contains(name) {
                errors.push(ConfigError::new(
                    key.key("disable").index(i),
                    format!("`{name}` is in both feeds.enable and feeds.disable"),
                ));
            }
        }
        for (name, over) in &self.overrides {
            let at = key.key("override").key(name);
            if !is_catalog(name) {
                let message = if is_custom(name) {
                    format!(
                        "`{name}` is a custom feed: set severity and min_consensus in its [[feeds.custom]]"
                    )
                } else {
                    format!("unknown feed `{name}` (known: {})", known())
                };
                errors.push(ConfigError::new(at, message));
                continue;
            }
            if let Some(n) = over.min_consensus {
                check_min_consensus(n, &at.key("min_consensus"), &mut errors);
            }
        }

        let mut feeds: Vec<FeedSpec> = catalog
            .iter()
            .map(|f| {
                let over = self.overrides.get(f.name);
                let enabled = if self.disable.iter().any(|n| n == f.name) {
                    false
                } else {
                    f.default_enabled || self.enable.iter().any(|n| n == f.name)
                };
                FeedSpec {
                    name: f.name.to_string(),
                    url: f.url.to_string(),
                    format: f.format.clone(),
                    enabled,
                    defaults: OriginDefaults {
                        info: Some(f.info.to_string()),
                        reference: Some(f.reference.to_string()),
                        severity: over.and_then(|o| o.severity).or(f.severity),
                        min_consensus: over
                            .and_then(|o| o.min_consensus)
                            .unwrap_or(f.min_consensus),
                    },
                    description: f.description.to_string(),
                }
            })
            .collect();

        let mut custom_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in self.custom.into_iter().enumerate() {
            let at = key.key("custom").index(i);
            let before = errors.len();
            let format = raw.options().build(&at, &mut errors);
            check_min_consensus(raw.min_consensus, &at.key("min_consensus"), &mut errors);
            match raw.url.as_deref() {
                None => errors.push(ConfigError::new(
                    at.key("url"),
                    "required: where to download the feed (http or https)",
                )),
                Some(url) => {
                    if let Err(message) = check_url(url) {
                        errors.push(ConfigError::new(at.key("url"), message));
                    }
                }
            }
            match raw.name.as_deref() {
                None => errors.push(ConfigError::new(at.key("name"), "required")),
                Some(name) if !is_safe_feed_name(name) => errors.push(ConfigError::new(
                    at.key("name"),
                    format!("`{name}` is not a feed name (letters, digits, `-`, `_` and `.`; not starting with `.`)"),
                )),
                Some(name) if is_catalog(name) => errors.push(ConfigError::new(
                    at.key("name"),
                    format!("`{name}` is a built-in feed: pick another name, or use feeds.enable and [feeds.override.{name}]"),
                )),
                Some(name) => {
                    if let Some(first) = custom_names.get(name) {
                        errors.push(ConfigError::new(
                            at.key("name"),
                            format!(
                                "custom feed name `{name}` is already used by {}",
                                key.key("custom").index(*first)
                            ),
                        ));
                    } else {
                        custom_names.insert(name.to_string(), i);
                    }
                }
            }
            if errors.len() != before {
                continue;
            }
            let (Some(name), Some(url), Some(format)) = (raw.name, raw.url, format) else {
                continue;
            };
            feeds.push(FeedSpec {
                name,
                url,
                format,
                enabled: raw.enabled,
                defaults: OriginDefaults {
                    info: raw.info,
                    reference: raw.reference,
                    severity: raw.severity,
                    min_consensus: raw.min_consensus,
                },
                description: raw.description,
            });
        }

        if errors.is_empty() {
            Ok(FeedsConfig {
                dir,
                interval: self.interval,
                timeout: self.timeout,
                max_size: self.max_size,
                parallel: self.parallel,
                feeds,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> BaseDirs<'static> {
        BaseDirs {
            config_dir: Path::new("/etc/spoor"),
            state_dir: Path::new("/var/lib/spoor"),
        }
    }

    fn trails_root() -> KeyPath {
        KeyPath::root().key("trails")
    }

    fn source(path: &str, format: &str) -> RawSource {
        RawSource {
            path: Some(path.into()),
            format: Some(format.into()),
            ..RawSource::default()
        }
    }

    /// The errors as `key: message` strings.
    fn trails_errors(raw: RawTrails) -> Vec<String> {
        match raw.validate(&trails_root(), &dirs()) {
            Ok(cfg) => panic!("expected errors, got {cfg:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn catalog() -> Vec<CatalogFeed> {
        let feed = |name: &'static str, on: bool| CatalogFeed {
            name,
            url: "https://example.org/list.txt",
            format: FormatSpec::Ip,
            info: "test (malware)",
            reference: "example.org",
            severity: None,
            min_consensus: 1,
            default_enabled: on,
            description: "test feed",
        };
        vec![feed("alpha", true), feed("beta", false)]
    }

    fn feeds(raw: RawFeeds) -> Result<FeedsConfig, Vec<String>> {
        raw.validate_with_catalog(&KeyPath::root().key("feeds"), &dirs(), &catalog())
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn empty_sections_get_derived_defaults() {
        let t = RawTrails::default()
            .validate(&trails_root(), &dirs())
            .unwrap();
        assert_eq!(t.snapshot, Path::new("/var/lib/spoor/trails.snapshot"));
        assert!(t.sources.is_empty());
        let f = feeds(RawFeeds::default()).unwrap();
        assert_eq!(f.dir, Path::new("/var/lib/spoor/feeds"));
        assert_eq!(f.interval, DEFAULT_FEED_INTERVAL);
        assert_eq!(f.parallel, DEFAULT_FEED_PARALLEL);
        let names: Vec<_> = f
            .feeds
            .iter()
            .map(|f| (f.name.as_str(), f.enabled))
            .collect();
        assert_eq!(names, [("alpha", true), ("beta", false)]);
    }

    #[test]
    fn every_format_name_is_configurable() {
        for name in FormatSpec::NAMES {
            let mut raw = source("/x", name);
            if *name == "suricata-dataset" {
                raw.kind = Some("domain".into());
            }
            let t = RawTrails {
                source: vec![raw],
                ..RawTrails::default()
            };
            let t = t.validate(&trails_root(), &dirs()).unwrap();
            assert_eq!(t.sources[0].format.name(), *name);
        }
    }

    #[test]
    fn sources_resolve_paths_and_names() {
        let mut csv = source("lists/blackbook.csv", "csv");
        csv.column = Some(1);
        csv.delimiter = Some("\t".into());
        csv.kind = Some("domain".into());
        let mut off = source("/srv/off.txt", "ip");
        off.enabled = false;
        let raw = RawTrails {
            snapshot: Some("snap/trails.snapshot".into()),
            source: vec![source("/opt/maltrail/trails/static", "maltrail"), csv, off],
        };
        let t = raw.validate(&trails_root(), &dirs()).unwrap();
        assert_eq!(t.snapshot, Path::new("/etc/spoor/snap/trails.snapshot"));
        assert_eq!(t.sources.len(), 2, "disabled source dropped");
        assert_eq!(t.sources[0].name, "static");
        assert_eq!(t.sources[1].name, "blackbook.csv");
        assert_eq!(
            t.sources[1].path,
            Path::new("/etc/spoor/lists/blackbook.csv")
        );
        assert_eq!(
            t.sources[1].format,
            FormatSpec::Csv(CsvOptions {
                column: 1,
                info_column: None,
                delimiter: b'\t',
                header: false,
                kind: Some(TrailKind::Domain),
            })
        );
    }

    #[test]
    fn missing_and_unknown_format() {
        let errors = trails_errors(RawTrails {
            source: vec![
                RawSource {
                    path: Some("/x".into()),
                    ..RawSource::default()
                },
                source("/y", "plain"),
            ],
            ..RawTrails::default()
        });
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("trails.source[0].format: required (one of: maltrail,"));
        assert!(
            errors[1].starts_with("trails.source[1].format: unknown format `plain` (expected one of: maltrail, maltrail-csv,"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn options_for_other_formats_are_named() {
        let mut a = source("/a", "ip");
        a.min_count = Some(3);
        a.column = Some(2);
        let mut b = source("/b", "ipsum");
        b.kind = Some("ip".into());
        let errors = trails_errors(RawTrails {
            source: vec![a, b],
            ..RawTrails::default()
        });
        assert_eq!(
            errors,
            [
                "trails.source[0].column: only applies to format `csv`",
                "trails.source[0].min_count: only applies to format `ipsum`",
                "trails.source[1].kind: only applies to formats `csv` and `suricata-dataset`",
            ]
        );
    }

    #[test]
    fn bad_option_values() {
        let mut csv = source("/a", "csv");
        csv.delimiter = Some(";;".into());
        csv.kind = Some("hostname".into());
        let mut iprep = source("/b", "suricata-iprep");
        iprep.min_score = Some(200);
        let dataset = source("/c", "suricata-dataset");
        let errors = trails_errors(RawTrails {
            source: vec![csv, iprep, dataset],
            ..RawTrails::default()
        });
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors[0].starts_with("trails.source[0].delimiter: `;;` is not one ASCII character")
        );
        assert!(errors[1].starts_with(
            "trails.source[0].kind: unknown kind `hostname` (expected one of: ip, cidr,"
        ));
        assert_eq!(
            errors[2],
            "trails.source[1].min_score: 200 is out of range (0..=127)"
        );
        assert!(
            errors[3].starts_with("trails.source[2].kind: required for format `suricata-dataset`")
        );
    }

    #[test]
    fn source_required_keys_consensus_and_unique_names() {
        let mut zero = source("/a/list.txt", "ip");
        zero.min_consensus = 0;
        let no_path = RawSource {
            format: Some("ip".into()),
            ..RawSource::default()
        };
        let errors = trails_errors(RawTrails {
            source: vec![
                source("/a/list.txt", "ip"),
                source("/b/list.txt", "domain"),
                zero,
                no_path,
            ],
            ..RawTrails::default()
        });
        assert_eq!(
            errors,
            [
                "trails.source[1].path: source name `list.txt` is already used by trails.source[0]; set a unique `name`",
                "trails.source[2].min_consensus: must be at least 1 (1 = no consensus needed)",
                "trails.source[3].path: required: the trail file or folder to read",
            ]
        );
    }

    #[test]
    fn feed_limits() {
        let errors = feeds(RawFeeds {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(0),
            max_size: ByteSize(0),
            parallel: 65,
            ..RawFeeds::default()
        })
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "feeds.interval: 10s is too often (at least 1m)",
                "feeds.timeout: must be more than 0s",
                "feeds.max_size: must be more than 0B",
                "feeds.parallel: 65 is out of range (1..=64)",
            ]
        );
    }

    #[test]
    fn switches_and_overrides() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "beta".to_string(),
            RawFeedOverride {
                severity: Some(Severity::Low),
                min_consensus: Some(2),
            },
        );
        let f = feeds(RawFeeds {
            enable: vec!["beta".into()],
            disable: vec!["alpha".into()],
            overrides,
            ..RawFeeds::default()
        })
        .unwrap();
        assert!(!f.feeds[0].enabled);
        assert!(f.feeds[1].enabled);
        assert_eq!(f.feeds[1].defaults.severity, Some(Severity::Low));
        assert_eq!(f.feeds[1].defaults.min_consensus, 2);
    }

    #[test]
    fn bad_switches_and_overrides() {
        let mut overrides = BTreeMap::new();
        overrides.insert("gamma".to_string(), RawFeedOverride::default());
        overrides.insert(
            "alpha".to_string(),
            RawFeedOverride {
                min_consensus: Some(0),
                ..RawFeedOverride::default()
            },
        );
        let errors = feeds(RawFeeds {
            enable: vec!["alpha".into(), "nope".into()],
            disable: vec!["alpha".into()],
            overrides,
            ..RawFeeds::default()
        })
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "feeds.enable[1]: unknown feed `nope` (known: alpha, beta)",
                "feeds.disable[0]: `alpha` is in both feeds.enable and feeds.disable",
                "feeds.override.alpha.min_consensus: must be at least 1 (1 = no consensus needed)",
                "feeds.override.gamma: unknown feed `gamma` (known: alpha, beta)",
            ]
        );
    }

    #[test]
    fn custom_feeds() {
        let custom = |name: &str, url: &str| RawCustomFeed {
            name: Some(name.into()),
            url: Some(url.into()),
            format: Some("domain".into()),
            ..RawCustomFeed::default()
        };
        let f = feeds(RawFeeds {
            custom: vec![custom("my-list", "https://lists.example/bad.txt")],
            ..RawFeeds::default()
        })
        .unwrap();
        assert_eq!(f.feeds.len(), 3);
        assert_eq!(f.feeds[2].name, "my-list");
        assert!(f.feeds[2].enabled);

        let errors = feeds(RawFeeds {
            enable: vec!["mine".into()],
            custom: vec![
                custom("alpha", "https://a.example/"),
                custom("mine", "ftp://a.example/x"),
                custom("mine", "https:///x"),
                custom("../etc", "http://a.example/"),
                RawCustomFeed::default(),
            ],
            ..RawFeeds::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 9, "{errors:#?}");
        assert_eq!(
            errors[0],
            "feeds.enable[0]: `mine` is a custom feed: switch it with `enabled` in its [[feeds.custom]]"
        );
        assert!(errors[1].starts_with("feeds.custom[0].name: `alpha` is a built-in feed"));
        assert_eq!(
            errors[2],
            "feeds.custom[1].url: `ftp://a.example/x` is not an http:// or https:// URL"
        );
        assert_eq!(errors[3], "feeds.custom[2].url: `https:///x` has no host");
        assert_eq!(
            errors[4],
            "feeds.custom[2].name: custom feed name `mine` is already used by feeds.custom[1]"
        );
        assert!(errors[5].starts_with("feeds.custom[3].name: `../etc` is not a feed name"));
        assert!(errors[6].starts_with("feeds.custom[4].format: required"));
        assert!(errors[7].starts_with("feeds.custom[4].url: required"));
        assert_eq!(errors[8], "feeds.custom[4].name: required");
    }
}
