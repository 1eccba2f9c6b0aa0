//! `spoor config check`, `spoor config sample` and `spoor config import-maltrail`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::{Context, EXIT_BAD_CONFIG};
use crate::config::{Config, LoadError, Origin, SAMPLE, maltrail};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the config file: print a summary and exit 0, or print every problem
    /// (FILE:LINE: key: message) and exit 2
    Check,
    /// Print a fully commented default config (every key with its default)
    Sample,
    /// Convert a Maltrail maltrail.conf: keys with an equivalent become Spoor settings,
    /// the others are listed with the reason (on stderr and at the end of the file)
    ImportMaltrail {
        /// The maltrail.conf to read (its folder is Maltrail's, for relative paths)
        file: PathBuf,
        /// Write the Spoor config here instead of standard output
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace the output file if it exists
        #[arg(long)]
        force: bool,
    },
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
        ConfigCommand::ImportMaltrail {
            file,
            output,
            force,
        } => import_maltrail(&file, output.as_deref(), force),
    }
}

fn import_maltrail(file: &Path, output: Option<&Path>, force: bool) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let absolute =
        std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let base = absolute.parent().unwrap_or(Path::new("/"));
    let import = maltrail::convert(&text, base);
    // Check the result with the loader `spoor config check` uses, as if already written.
    let target = match output {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        None => base.join("spoor.toml"),
    };
    if let Err(LoadError::Invalid { problems, .. }) = crate::config::parse(&import.toml, &target) {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "spoor: the converted config does not validate; fix these values in {} and run again",
            file.display()
        );
        return Ok(ExitCode::from(EXIT_BAD_CONFIG));
    }
    match output {
        Some(path) => {
            if path.exists() && !force {
                anyhow::bail!(
                    "{} exists; choose another -o or add --force to replace it",
                    path.display()
                );
            }
            std::fs::write(path, &import.toml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout()
            .write_all(import.toml.as_bytes())
            .context("cannot write to stdout")?,
    }
    eprintln!(
        "converted {} keys; {} not converted:",
        import.converted.len(),
        import.skipped.len()
    );
    for s in &import.skipped {
        eprintln!("  {}:{}: {}: {}", file.display(), s.line, s.key, s.reason);
    }
    Ok(ExitCode::SUCCESS)
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
