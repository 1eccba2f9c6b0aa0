//! The validated `[trails]` and `[feeds]` config sections.
//!
//! These types cannot hold an invalid configuration: the binary parses the TOML into raw
//! serde structs, and `validate` turns those into these or names the key that is wrong
//! (see `spoor_core::ConfigError`).

use std::path::PathBuf;

use spoor_core::{ByteSize, Duration, Severity};

use crate::format::FormatSpec;

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
