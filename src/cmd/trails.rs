//! `spoor trails compile | lookup | stats`: build the snapshot and ask it questions.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use spoor_feeds::compile::{CompileReport, CompileSource, compile, sources_from_config};
use spoor_feeds::{TrailHit, TrailStore};

use super::Context;

/// Malformed lines shown per source in the compile summary (all are counted).
const MALFORMED_SHOWN: usize = 10;

#[derive(Debug, Subcommand)]
pub(crate) enum TrailsCommand {
    /// Merge every configured source and downloaded feed into the snapshot file
    Compile {
        /// Write the snapshot here instead of `[trails] snapshot`
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Look indicators up in the snapshot: IPs, CIDRs, IP:port, domains, URLs, paths,
    /// JA4, certificate SHA-1, user agents. Exits 0 if anything matched, 1 if nothing did
    Lookup {
        /// Indicators to look up; `-` reads one per line from standard input
        #[arg(required = true, value_name = "INDICATOR")]
        indicators: Vec<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Read this snapshot instead of `[trails] snapshot`
        #[arg(long, value_name = "PATH")]
        snapshot: Option<PathBuf>,
    },
    /// Counts by kind and by source
    Stats {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        #[arg(long, value_name = "PATH")]
        snapshot: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

pub(crate) fn run(ctx: &Context, command: TrailsCommand) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let snapshot_of =
        |over: Option<PathBuf>| over.unwrap_or_else(|| config.trails.snapshot.clone());
    match command {
        TrailsCommand::Compile { output } => {
            let path = snapshot_of(output);
            let sources = sources_from_config(&config.trails, &config.feeds);
            // Written atomically (temporary file, then rename): a failing required source
            // or a failed write leaves any existing snapshot as it was.
            let report = compile(&sources, &path)?;
            print!("{}", compile_summary(&report, &sources, &path));
            Ok(ExitCode::SUCCESS)
        }
        TrailsCommand::Lookup {
            indicators,
            format,
            snapshot,
        } => {
            let store = open(&snapshot_of(snapshot))?;
            lookup(&store, &indicators, format)
        }
        TrailsCommand::Stats { format, snapshot } => {
            let store = open(&snapshot_of(snapshot))?;
            let out = match format {
                OutputFormat::Json => serde_json::to_string_pretty(store.meta())? + "\n",
                OutputFormat::Text => stats_text(&store),
            };
            std::io::stdout().write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open(path: &std::path::Path) -> anyhow::Result<TrailStore> {
    if !path.exists() {
        anyhow::bail!(
            "no trail snapshot at {}; build it with `spoor trails compile`",
            path.display()
        );
    }
    Ok(TrailStore::open(path)?)
}

fn compile_summary(
    report: &CompileReport,
    sources: &[CompileSource],
    path: &std::path::Path,
) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    // Optional sources are feeds; one with no copy on disk was simply never downloaded,
    // which is normal on a fresh install with many feeds on: one line names them all.
    let never_downloaded = |name: &str| {
        sources
            .iter()
            .find(|src| src.name == name)
            .is_some_and(|src| !src.required && !src.path.exists())
    };
    let mut not_downloaded: Vec<&str> = Vec::new();
    for s in &report.sources {
        match &s.error {
            Some(_) if never_downloaded(&s.name) => not_downloaded.push(&s.name),
            Some(err) if !s.required => line(format!("{}: skipped: {err}", s.name)),
            Some(err) => line(format!("{}: error: {err}", s.name)),
            None => line(format!(
                "{}: {} records, {} malformed",
                s.name, s.records, s.malformed_count
            )),
        }
        for m in s.malformed.iter().take(MALFORMED_SHOWN) {
            line(format!("  {m}"));
        }
        let more = s.malformed_count.saturating_sub(MALFORMED_SHOWN as u64);
        if more > 0 {
            line(format!("  ... and {more} more malformed lines"));
        }
    }
    if !not_downloaded.is_empty() {
        let n = not_downloaded.len();
        let feeds = if n == 1 { "feed" } else { "feeds" };
        line(format!(
            "{n} enabled {feeds} not downloaded yet: {} (run `spoor feeds update`)",
            not_downloaded.join(", ")
        ));
    }
    let meta = &report.meta;
    let total: u64 = meta.counts.values().sum();
    let kinds: Vec<String> = meta
        .counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    line(format!("trails: {total} ({})", kinds.join(", ")));
    let wl: u64 = meta.whitelisted.values().sum();
    if wl > 0 {
        line(format!("whitelisted (removed): {wl}"));
    }
    if meta.below_consensus > 0 {
        line(format!(
            "below consensus (removed): {}",
            meta.below_consensus
        ));
    }
    if total == 0 {
        line("warning: the snapshot is empty: configure [[trails.source]] or run `spoor feeds update` first".into());
    }
    line(format!(
        "wrote {} ({:.1} MiB) in {:.2} s",
        path.display(),
        report.bytes as f64 / (1024.0 * 1024.0),
        report.elapsed.as_secs_f64()
    ));
    out
}

#[derive(Debug, Serialize)]
struct JsonHit<'a> {
    trail: String,
    kind: &'static str,
    info: &'a str,
    reference: &'a str,
    severity: &'static str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<bool>,
}

#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    query: &'a str,
    hits: Vec<JsonHit<'a>>,
}

/// One row per (hit, origin): each source's own info, reference and severity.
fn json_hits<'a>(hits: &[TrailHit<'a>]) -> Vec<JsonHit<'a>> {
    hits.iter()
        .flat_map(|h| {
            let trail = h.trail.to_string();
            let parent = (h.kind == spoor_core::TrailKind::Domain).then_some(h.parent);
            h.origins().map(move |o| JsonHit {
                trail: trail.clone(),
                kind: h.kind.as_str(),
                info: o.info,
                reference: o.reference,
                severity: o.severity.as_str(),
                source: o.source,
                parent,
            })
        })
        .collect()
}

fn lookup(store: &TrailStore, args: &[String], format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut queries: Vec<String> = Vec::new();
    for a in args {
        if a == "-" {
            for l in std::io::stdin().lock().lines() {
                let l = l.context("cannot read indicators from standard input")?;
                let l = l.trim();
                if !l.is_empty() && !l.starts_with('#') {
                    queries.push(l.to_string());
                }
            }
        } else {
            queries.push(a.clone());
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut any = false;
    for q in &queries {
        let hits = store.lookup(q);
        any |= !hits.is_empty();
        match format {
            OutputFormat::Json => {
                let result = JsonResult {
                    query: q,
                    hits: json_hits(&hits),
                };
                serde_json::to_writer(&mut out, &result)?;
                writeln!(out)?;
            }
            OutputFormat::Text => {
                if hits.is_empty() {
                    writeln!(out, "{q}: no match")?;
                }
                for h in json_hits(&hits) {
                    let via = if h.parent == Some(true) {
                        format!(" (parent of {q})")
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "{q}: {} [{}]{via} {} | {} | {} | source {}",
                        h.trail, h.kind, h.info, h.reference, h.severity, h.source
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NOTHING_FOUND)
    })
}

fn stats_text(store: &TrailStore) -> String {
    let meta = store.meta();
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "snapshot: {} ({:.1} MiB, compiled by spoor {} at {})",
        store.path().display(),
        store.image_len() as f64 / (1024.0 * 1024.0),
        meta.spoor_version,
        spoor_feeds::fetch::Timestamp(meta.created)
    ));
    let total: u64 = meta.counts.values().sum();
    line(format!("trails: {total}"));
    for (kind, n) in &meta.counts {
        line(format!("  {kind:<10} {n:>10}"));
    }
    line("by source:".into());
    for s in &meta.sources {
        let kinds: Vec<String> = s.trails.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let what = if s.whitelist {
            format!("whitelist, {} entries", s.records)
        } else if kinds.is_empty() {
            // A feed not downloaded when the snapshot was compiled, or an empty list.
            format!("{} records, no trails", s.records)
        } else {
            format!("{} records → {}", s.records, kinds.join(", "))
        };
        line(format!(
            "  {} ({}, {}): {what}; {} malformed",
            s.name, s.format, s.location, s.malformed
        ));
    }
    let wl: Vec<String> = meta
        .whitelisted
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !wl.is_empty() {
        line(format!("removed by the whitelist: {}", wl.join(", ")));
    }
    if meta.below_consensus > 0 {
        line(format!("removed below consensus: {}", meta.below_consensus));
    }
    out
}
