//! `spoor generate`: a deterministic benchmark capture.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use spoor_sensor::generator::{GeneratorConfig, ListedIndicators, write_capture};

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Where to write the pcap file
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Packets to write
    #[arg(long, default_value_t = 2_000_000)]
    packets: u64,
    /// Seed: the same seed writes the same bytes
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Take listed indicators from this Maltrail trail folder
    #[arg(long, value_name = "DIR")]
    listed_from: Option<PathBuf>,
    /// Indicators sampled per kind from --listed-from
    #[arg(long, default_value_t = 1000)]
    listed_per_kind: usize,
    /// Share of conversations that carry a listed indicator (0..1)
    #[arg(long, default_value_t = 0.01)]
    listed_share: f64,
}

pub(crate) fn run(_ctx: &Context, args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let mut config = GeneratorConfig::new(args.seed, args.packets);
    config.listed_share = args.listed_share;
    if let Some(dir) = &args.listed_from {
        let listed = ListedIndicators::sample_trail_folder(dir, args.listed_per_kind, args.seed)
            .with_context(|| format!("cannot read trails from {}", dir.display()))?;
        config = config.with_listed(listed);
    }
    let summary = write_capture(&args.output, &config)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}
