//! Logging to stderr with `tracing`.
//!
//! The level comes from, strongest first: the `SPOOR_LOG` environment variable (an
//! `EnvFilter` directive such as `debug` or `spoor_feeds=trace`), else the config's
//! `[spoor] log_level` moved up by each `-v` and down by each `-q`. Logging starts before
//! the config is read (loading it may log), so the level is swapped in once it is known.
//! While a progress bar is drawn ([`show_progress_bar`]), log lines are written above it
//! instead of through it.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

use crate::config::LogLevel;

/// The environment variable that overrides every other level setting.
pub(crate) const ENV_VAR: &str = "SPOOR_LOG";

/// The running subscriber's filter, for [`Logging::apply_config_level`].
#[derive(Debug)]
pub(crate) struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `-v` count minus `-q` count.
    shift: i8,
    /// `SPOOR_LOG` was set: config levels are ignored.
    from_env: bool,
}

/// Start logging at `info` shifted by `shift` (`-v` minus `-q`), or at `SPOOR_LOG`.
pub(crate) fn init(shift: i8) -> Logging {
    let env = std::env::var(ENV_VAR).ok().filter(|v| !v.trim().is_empty());
    let (filter, from_env, bad_env) = match env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, true, None),
        Some(Err(e)) => (level_filter(LogLevel::Info, shift), false, Some(e)),
        None => (level_filter(LogLevel::Info, shift), false, None),
    };
    let (filter, handle) = reload::Layer::new(filter);
    // `try_init`: tests or an embedding may have set a subscriber already; keep theirs.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| BarAwareStderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init();
    if let Some(e) = bad_env {
        tracing::warn!("ignoring {ENV_VAR}: {e}");
    }
    Logging {
        handle,
        shift,
        from_env,
    }
}

impl Logging {
    /// Use the config's level (still moved by `-v`/`-q`) unless `SPOOR_LOG` is set.
    pub(crate) fn apply_config_level(&self, level: LogLevel) {
        if self.from_env {
            return;
        }
        if let Err(e) = self.handle.reload(level_filter(level, self.shift)) {
            tracing::warn!("cannot change the log level: {e}");
        }
    }
}

/// `level` moved `shift` steps towards trace (positive) or off (negative).
fn level_filter(level: LogLevel, shift: i8) -> EnvFilter {
    const STEPS: [LevelFilter; 6] = [
        LevelFilter::OFF,
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
        LevelFilter::TRACE,
    ];
    let base: i8 = match level {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    };
    let step = base.saturating_add(shift).clamp(0, 5) as usize;
    EnvFilter::default().add_directive(STEPS[step].into())
}

/// The progress bar on stderr, if one is drawn: log lines must suspend it while they print.
static PROGRESS_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Route log lines around `bar` until [`hide_progress_bar`].
pub(crate) fn show_progress_bar(bar: &ProgressBar) {
    *PROGRESS_BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

/// Log straight to stderr again.
pub(crate) fn hide_progress_bar() {
    *PROGRESS_BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Stderr that clears the progress bar (if any) around each write. The fmt layer writes
/// each event in one `write_all`, so a line is never split around a redraw.
struct BarAwareStderr;

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bar = PROGRESS_BAR
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
