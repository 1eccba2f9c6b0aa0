//! The whole config file as written: one raw serde struct per table, before any check
//! beyond TOML types. Every field says what it does and what its default is; unknown keys
//! are refused. [`super::parse`] turns a [`RawConfig`] into a validated [`super::Config`].
//!
//! The `[trails]` and `[feeds]` sections belong to the feeds crate
//! (`spoor_feeds::config`), `[sensor]` to the sensor crate (`spoor_sensor::config`),
//! `[server]` to the server crate (`spoor_server::config`), `[respond]` to the responders
//! crate (`spoor_responders::config`, `[agent]` in `spoor_responders::agent::config`); each crate validates its own.

use std::path::PathBuf;

use serde::Deserialize;
use spoor_feeds::config::{DEFAULT_STATE_DIR, RawFeeds, RawTrails};
use spoor_responders::agent::config::RawAgent;
use spoor_responders::config::RawRespond;
use spoor_sensor::config::RawSensor;
use spoor_server::config::RawServer;

use super::LogLevel;

/// The whole file. An empty file is this struct's `Default`: the bundled defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    /// `[spoor]`: settings every Spoor process shares.
    pub(crate) spoor: RawSpoor,
    /// `[trails]`: local trail sources and the compiled snapshot.
    pub(crate) trails: RawTrails,
    /// `[feeds]`: the built-in feed catalog's switches, custom feeds, download limits.
    pub(crate) feeds: RawFeeds,
    /// `[sensor]`: capture, condensing, event logs and outputs.
    pub(crate) sensor: RawSensor,
    /// `[server]`: listener, TLS, sensors' tokens, retention, privacy, webhooks.
    pub(crate) server: RawServer,
    /// `[respond]`: blocking policy, allowlist, guards and the firewall backend.
    pub(crate) respond: RawRespond,
    /// `[agent]`: where `spoor agent` gets its decisions (the local ledger or a server).
    pub(crate) agent: RawAgent,
}

/// `[spoor]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSpoor {
    /// Where Spoor keeps its state (snapshot, downloaded feeds, databases). Default:
    /// [`DEFAULT_STATE_DIR`] (`/var/db/spoor` on FreeBSD, `/var/lib/spoor` elsewhere).
    #[serde(default = "default_state_dir")]
    pub(crate) state_dir: PathBuf,
    /// Log level: error, warn, info, debug, trace. Default: info. `-v`/`-q` move it,
    /// `SPOOR_LOG` replaces it.
    #[serde(default = "default_log_level")]
    pub(crate) log_level: LogLevel,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

fn default_log_level() -> LogLevel {
    LogLevel::Info
}

impl Default for RawSpoor {
    fn default() -> Self {
        RawSpoor {
            state_dir: default_state_dir(),
            log_level: default_log_level(),
        }
    }
}
