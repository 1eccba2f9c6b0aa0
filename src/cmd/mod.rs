//! Subcommands. Each family (`config`, later `trails`, `feeds`, ...) has its own file
//! with a clap `Subcommand` enum and a `run(&Context, ...)` function; `main.rs` only
//! dispatches.
//!
//! Exit codes, for scripts:
//! - 0: success
//! - 1: ran fine but found nothing (a lookup that matched nothing), or `doctor` found a
//!   failing check
//! - 2: bad config or bad usage (clap uses 2 for usage errors too)
//! - 3: a runtime error (I/O, network, a failed download...)

pub(crate) mod agent;
pub(crate) mod block;
pub(crate) mod config;
pub(crate) mod doctor;
pub(crate) mod feeds;
pub(crate) mod generate;
pub(crate) mod sensor;
pub(crate) mod server;
pub(crate) mod trails;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args};

use crate::config::{Config, LoadError};
use crate::logging::Logging;

/// See the module docs.
pub(crate) const EXIT_NOTHING_FOUND: u8 = 1;
pub(crate) const EXIT_BAD_CONFIG: u8 = 2;
pub(crate) const EXIT_RUNTIME: u8 = 3;

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Config file [default: /etc/spoor/spoor.toml, /usr/local/etc/spoor/spoor.toml on
    /// FreeBSD; the bundled defaults if that does not exist]
    #[arg(short, long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// More log output: -v debug, -vv trace
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Less log output: -q warnings, -qq errors, -qqq nothing
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) quiet: u8,
}

impl GlobalArgs {
    /// How far `-v`/`-q` move the log level from the config's.
    pub(crate) fn verbosity(&self) -> i8 {
        let v = i8::try_from(self.verbose).unwrap_or(i8::MAX);
        let q = i8::try_from(self.quiet).unwrap_or(i8::MAX);
        v.saturating_sub(q)
    }
}

/// What every subcommand gets: the global flags and the running logger.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) args: GlobalArgs,
    logging: Logging,
}

impl Context {
    pub(crate) fn new(args: GlobalArgs, logging: Logging) -> Self {
        Context { args, logging }
    }

    /// Load and validate the config (`-c FILE`, else the default path, else the bundled
    /// defaults) and switch logging to its level. Subcommands that need settings call this
    /// once, first thing, and propagate the error with `?`: `main` prints every problem
    /// and exits with [`EXIT_BAD_CONFIG`].
    pub(crate) fn load_config(&self) -> Result<Config, LoadError> {
        let config = crate::config::load(self.args.config.as_deref())?;
        self.logging.apply_config_level(config.spoor.log_level);
        Ok(config)
    }
}

/// The exit code for an error that ended a subcommand.
pub(crate) fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<LoadError>()) {
        ExitCode::from(EXIT_BAD_CONFIG)
    } else {
        ExitCode::from(EXIT_RUNTIME)
    }
}

/// The message for an error that ended a subcommand: the error and its causes joined with
/// ": " (like anyhow's `{:#}`), leaving out a cause whose text is already in the message.
/// Several library errors put their cause in their own message as well as in `source()`,
/// which would otherwise print "Is a directory (os error 21)" twice.
pub(crate) fn error_message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Repeats(std::io::Error);

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read x: {}", self.0)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_message_names_each_cause_once() {
        let io = || std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(Repeats(io()));
        assert_eq!(error_message(&err), "cannot read x: disk on fire");
        let err = anyhow::Error::new(io()).context("compiling");
        assert_eq!(error_message(&err), "compiling: disk on fire");
    }
}
