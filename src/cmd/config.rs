//! `spoor config check` and `spoor config sample`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::{Context, EXIT_BAD_CONFIG};
use crate::config::{Config, LoadError, Origin, SAMPLE};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the config file: print a summary and exit 0, or print every problem
    /// (FILE:LINE: key: message) and exit 2
    Check,
    /// Print a fully commented default config (every key with its default)
    Sample,
}

pub(crate) fn run(ctx: &Context, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => check(ctx),
        ConfigCommand::Sample => {
            std::io::stdout()
                .write_all(SAMPLE.as_bytes())
                .context("cannot write the sample to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(ctx: &Context) -> anyhow::Result<ExitCode> {
    match ctx.load_config() {
        Ok(config) => {
            print!("{}", summary(&config));
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid { file, problems }) => {
            for p in &problems {
                eprintln!("{p}");
            }
            let n = problems.len();
            let s = if n == 1 { "" } else { "s" };
            eprintln!("spoor: {}: {n} problem{s}", file.display());
            Ok(ExitCode::from(EXIT_BAD_CONFIG))
        }
        Err(e) => Err(e.into()),
    }
}

/// A few lines an admin can eyeball: where things go and what will be read.
fn summary(config: &Config) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    match &config.origin {
        Origin::File(path) => line(format!("{}: ok", path.display())),
        Origin::Bundled { missing } => line(format!(
            "no config file at {}: the bundled defaults are ok",
            missing.display()
        )),
    }
    line(format!("state dir: {}", config.spoor.state_dir.display()));
    line(format!("snapshot:  {}", config.trails.snapshot.display()));
    line(format!("sources:   {}", config.trails.sources.len()));
    for s in &config.trails.sources {
        line(format!(
            "  {} ({}): {}",
            s.name,
            s.format.name(),
            s.path.display()
        ));
    }
    let enabled: Vec<&str> = config
        .feeds
        .feeds
        .iter()
        .filter(|f| f.enabled)
        .map(|f| f.name.as_str())
        .collect();
    line(format!(
        "feeds:     {} of {} enabled{}{}",
        enabled.len(),
        config.feeds.feeds.len(),
        if enabled.is_empty() { "" } else { ": " },
        enabled.join(", ")
    ));
    line(format!("feeds dir: {}", config.feeds.dir.display()));
    out
}
