//! The config file: find it, read it, and turn it into one validated [`Config`].
//!
//! Two stages. The TOML is deserialized into the raw structs of [`raw`] (types and unknown
//! keys are checked there), then each section is validated by the crate that owns it
//! (`spoor_feeds::config` for `[trails]` and `[feeds]`). Every problem in the file is
//! collected and reported at once, each with the line it is on ([`Problem`]):
//!
//! - TOML syntax errors: `FILE:LINE:COL: message`
//! - wrong types and values serde rejects: `FILE:LINE:COL: key: message`
//! - unknown keys: ``FILE:LINE: unknown key `foo` in [trails.source] (expected one of: ...)``
//! - validation errors: `FILE:LINE: key: message`
//!
//! To go on after a serde error, the offending key is dropped from the document and the
//! whole file deserialized again (at most [`MAX_PROBLEMS`] times); validation errors about
//! a dropped key are then left out, since the admin already has a better one.

mod locate;
pub(crate) mod maltrail;
pub(crate) mod raw;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use spoor_core::{ConfigError, KeyPath};
use spoor_feeds::config::{BaseDirs, FeedsConfig, TrailsConfig};
use spoor_responders::agent::config::AgentConfig;
use spoor_responders::config::RespondConfig;
use spoor_sensor::config::SensorConfig;
use spoor_server::config::ServerConfig;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use raw::RawConfig;

/// The commented default config printed by `spoor config sample`.
pub(crate) const SAMPLE: &str = include_str!("sample.toml");

/// Where the config is read from when `-c` is not given.
pub(crate) const DEFAULT_PATH: &str = if cfg!(target_os = "freebsd") {
    "/usr/local/etc/spoor/spoor.toml"
} else {
    "/etc/spoor/spoor.toml"
};

/// A file with more problems than this is probably not a Spoor config at all; stop there.
pub(crate) const MAX_PROBLEMS: usize = 100;

/// The validated configuration: every section checked, every path absolute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// Where it came from.
    pub(crate) origin: Origin,
    /// `[spoor]`
    pub(crate) spoor: SpoorConfig,
    /// `[trails]`
    pub(crate) trails: TrailsConfig,
    /// `[feeds]`
    pub(crate) feeds: FeedsConfig,
    /// `[sensor]`
    pub(crate) sensor: SensorConfig,
    /// `[server]`
    pub(crate) server: ServerConfig,
    /// `[respond]`
    pub(crate) respond: RespondConfig,
    /// `[agent]`
    pub(crate) agent: AgentConfig,
}

/// Where a [`Config`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Read from this file.
    File(PathBuf),
    /// No file at the default path (given here): the bundled defaults.
    Bundled { missing: PathBuf },
}

/// `[spoor]`: settings every Spoor process shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpoorConfig {
    /// Absolute state folder; the derived defaults of other sections live below it.
    pub(crate) state_dir: PathBuf,
    pub(crate) log_level: LogLevel,
}

/// `[spoor] log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One thing wrong in a config file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) file: PathBuf,
    /// 1-based; `None` when no place in the file can be named.
    pub(crate) line: Option<usize>,
    /// 1-based, in characters; given for TOML syntax and type errors.
    pub(crate) col: Option<usize>,
    /// The key path (`trails.source[1].format`), when the message is about one key.
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        if let Some(col) = self.col {
            write!(f, "{col}:")?;
        }
        if let Some(key) = &self.key {
            write!(f, " {key}:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Why no [`Config`] could be had.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// `-c FILE` names a file that does not exist.
    Missing { path: PathBuf },
    /// The file exists but cannot be read.
    Read { path: PathBuf, source: io::Error },
    /// The file was read; these are all its problems, in file order.
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Missing { path } => {
                write!(f, "config file {} does not exist", path.display())
            }
            LoadError::Read { path, .. } => write!(f, "cannot read config file {}", path.display()),
            LoadError::Invalid { file, problems } => {
                let n = problems.len();
                let s = if n == 1 { "" } else { "s" };
                write!(f, "{n} problem{s} in config file {}", file.display())?;
                for p in problems {
                    write!(f, "\n{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Load the config: `explicit` (from `-c`) must exist; without it, [`DEFAULT_PATH`] is read
/// if it exists and the bundled defaults are used if it does not.
pub(crate) fn load(explicit: Option<&Path>) -> Result<Config, LoadError> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match explicit {
            Some(path) => Err(LoadError::Missing {
                path: path.to_path_buf(),
            }),
            None => {
                tracing::info!(
                    "no config file at {}; running on the bundled defaults",
                    path.display()
                );
                Ok(bundled(path))
            }
        },
        Err(source) => Err(LoadError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The bundled defaults: what an empty file means. `missing` is the file looked for.
pub(crate) fn bundled(missing: &Path) -> Config {
    let config_dir = Path::new("/");
    match validate(RawConfig::default(), config_dir) {
        Ok((spoor, trails, feeds, sensor, server, respond, agent)) => Config {
            origin: Origin::Bundled {
                missing: missing.to_path_buf(),
            },
            spoor,
            trails,
            feeds,
            sensor,
            server,
            respond,
            agent,
        },
        // The defaults are fixed in the code and tested to be valid.
        Err(errors) => unreachable!("bundled defaults are invalid: {errors:?}"),
    }
}

/// Parse and validate the text of `file` (used for messages and for relative paths).
pub(crate) fn parse(text: &str, file: &Path) -> Result<Config, LoadError> {
    let invalid = |problems| LoadError::Invalid {
        file: file.to_path_buf(),
        problems,
    };
    let problem =
        |line_col: Option<(usize, usize)>, col: bool, key: Option<String>, message| Problem {
            file: file.to_path_buf(),
            line: line_col.map(|(l, _)| l),
            col: line_col.filter(|_| col).map(|(_, c)| c),
            key,
            message,
        };
    let at = |offset: usize| Some(locate::line_col(text, offset));

    // Syntax: all errors the parser recovers from, the first on each line (the rest of a
    // line after an error is mostly noise).
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let mut problems: Vec<Problem> = syntax
            .iter()
            .map(|e| {
                let pos = e.span().and_then(|s| at(s.start));
                problem(pos, true, None, e.message().to_string())
            })
            .collect();
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup_by_key(|p| p.line);
        problems.truncate(MAX_PROBLEMS);
        return Err(invalid(problems));
    }

    // Types and unknown keys: deserialize, drop the key in error, again.
    let mut problems = Vec::new();
    let mut dropped: Vec<KeyPath> = Vec::new();
    let mut pruned = doc.clone();
    let raw = loop {
        let value = Spanned::new(pruned.span(), DeValue::Table(pruned.get_ref().clone()));
        let err = match RawConfig::deserialize(ValueDeserializer::from(value)) {
            Ok(raw) => break Some(raw),
            Err(err) => err,
        };
        let offset = err.span().map(|s| s.start);
        let key = offset.and_then(|o| locate::key_at(pruned.get_ref(), o));
        match (&key, unknown_key_message(err.message(), key.as_ref())) {
            (Some(_), Some(message)) => {
                problems.push(problem(offset.and_then(at), false, None, message))
            }
            _ => problems.push(problem(
                offset.and_then(at),
                true,
                key.as_ref().map(ToString::to_string),
                in_toml_terms(err.message()),
            )),
        }
        match key {
            Some(key)
                if problems.len() < MAX_PROBLEMS && locate::remove(pruned.get_mut(), &key) =>
            {
                dropped.push(key);
            }
            _ => break None,
        }
    };

    // Validation, section by section, unless serde could not produce the raw config.
    let config_dir = config_dir(file);
    let result = raw.map(|raw| validate(raw, &config_dir));
    if let Some(Err(errors)) = &result {
        for e in errors {
            let about_dropped = dropped
                .iter()
                .any(|d| e.key.segments().starts_with(d.segments()));
            if about_dropped {
                continue;
            }
            let pos = locate::span_of(doc.get_ref(), &e.key).and_then(|s| at(s.start));
            problems.push(problem(
                pos,
                false,
                Some(e.key.to_string()),
                e.message.clone(),
            ));
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    problems.truncate(MAX_PROBLEMS);
    match result {
        Some(Ok((spoor, trails, feeds, sensor, server, respond, agent))) if problems.is_empty() => {
            Ok(Config {
                origin: Origin::File(file.to_path_buf()),
                spoor,
                trails,
                feeds,
                sensor,
                server,
                respond,
                agent,
            })
        }
        _ => Err(invalid(problems)),
    }
}

/// The folder relative paths in `file` are relative to, made absolute so that the
/// validated config does not depend on the working directory.
fn config_dir(file: &Path) -> PathBuf {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Serde's "unknown field `foo`, expected one of `a`, `b`" rewritten to name the table:
/// "unknown key `foo` in [trails.source] (expected one of: a, b)".
fn unknown_key_message(message: &str, key: Option<&KeyPath>) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, expected) = rest.split_once('`')?;
    let expected = expected.trim_start_matches(',').trim();
    let expected = match expected.strip_prefix("expected ") {
        Some(list) => format!("expected one of: {}", quoted_names(list).join(", ")),
        None => "this table takes no keys".to_string(),
    };
    let place = match key.and_then(locate::table_name) {
        Some(table) => format!("in [{table}]"),
        None => "at the top level".to_string(),
    };
    Some(format!("unknown key `{name}` {place} ({expected})"))
}

/// Serde names Rust types ("expected struct RawTrails", "expected usize"); say it in
/// the words of the file instead.
fn in_toml_terms(message: &str) -> String {
    let Some((head, expected)) = message.split_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected {
        e if e.starts_with("struct ") || e == "a map" => "a table",
        "a sequence" => "an array",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "a boolean" | "bool" => "true or false",
        e => e,
    };
    format!("{head}, expected {expected}")
}

/// The names in serde's "`a`, `b` or `c`" lists.
fn quoted_names(list: &str) -> Vec<&str> {
    list.split('`').skip(1).step_by(2).collect()
}

type Sections = (
    SpoorConfig,
    TrailsConfig,
    FeedsConfig,
    SensorConfig,
    ServerConfig,
    RespondConfig,
    AgentConfig,
);

/// Stage two: every section validated, all errors collected.
fn validate(raw: RawConfig, config_dir: &Path) -> Result<Sections, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let root = KeyPath::root();
    let state_dir = if raw.spoor.state_dir.as_os_str().is_empty() {
        errors.push(ConfigError::new(
            root.key("spoor").key("state_dir"),
            "must not be empty",
        ));
        PathBuf::from(spoor_feeds::config::DEFAULT_STATE_DIR)
    } else {
        config_dir.join(&raw.spoor.state_dir)
    };
    let dirs = BaseDirs {
        config_dir,
        state_dir: &state_dir,
    };
    let trails = raw
        .trails
        .validate(&root.key("trails"), &dirs)
        .map_err(|e| errors.extend(e))
        .ok();
    let feeds = raw
        .feeds
        .validate(&root.key("feeds"), &dirs)
        .map_err(|e| errors.extend(e))
        .ok();
    let sensor = raw
        .sensor
        .validate(&root.key("sensor"), &dirs)
        .map_err(|e| errors.extend(e))
        .ok();
    let server = raw
        .server
        .validate(&root.key("server"), config_dir, &state_dir)
        .map_err(|e| errors.extend(e))
        .ok();
    let respond = raw
        .respond
        .validate(&root.key("respond"), config_dir, &state_dir)
        .map_err(|e| errors.extend(e))
        .ok();
    let agent = raw
        .agent
        .validate(&root.key("agent"), config_dir, &state_dir)
        .map_err(|e| errors.extend(e))
        .ok();
    match (trails, feeds, sensor, server, respond, agent) {
        (Some(trails), Some(feeds), Some(sensor), Some(server), Some(respond), Some(agent))
            if errors.is_empty() =>
        {
            Ok((
                SpoorConfig {
                    state_dir,
                    log_level: raw.spoor.log_level,
                },
                trails,
                feeds,
                sensor,
                server,
                respond,
                agent,
            ))
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests;
