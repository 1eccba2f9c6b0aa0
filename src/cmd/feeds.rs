//! `spoor feeds update` and `spoor feeds list`.
//!
//! `update` downloads the enabled feeds into `[feeds] dir` (see `spoor_feeds::fetch`) and
//! prints one row per feed; `list` shows the catalog and custom feeds with what is on disk
//! and never touches the network. URLs and error texts are redacted before printing, since
//! a feed URL may carry an API key.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use spoor_feeds::fetch::{
    FeedOutcome, FeedStatus, Progress, UpdateStatus, UpdateSummary, Updater, feed_statuses,
    redact_url, redact_urls,
};

use super::{Context, EXIT_BAD_CONFIG, EXIT_RUNTIME};
use crate::logging;

/// Worker threads for the updater: downloads are I/O bound and parsing runs on tokio's
/// blocking pool, so two workers keep `parallel` downloads moving.
const UPDATE_WORKER_THREADS: usize = 2;

/// Description width in `feeds list` when the terminal width is unknown.
const DEFAULT_DESCRIPTION_WIDTH: usize = 60;

/// Narrowest description column worth showing on a small terminal.
const MIN_DESCRIPTION_WIDTH: usize = 20;

/// Longest error text in the `feeds update` table; the full text is in the log.
const MAX_ERROR_WIDTH: usize = 160;

#[derive(Debug, Subcommand)]
pub(crate) enum FeedsCommand {
    /// Download the enabled feeds now; print one row per feed. Exit 0 if every feed is
    /// current, 3 if any failed (the last good copies are kept)
    Update {
        /// Update only these feeds (enabled feeds, by name)
        #[arg(long, value_name = "NAME", num_args = 1..)]
        only: Vec<String>,
    },
    /// List the catalog and custom feeds with their local status (no network)
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

/// `feeds list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    /// Aligned columns for people
    Table,
    /// One JSON object per feed and line
    Json,
}

pub(crate) fn run(ctx: &Context, command: FeedsCommand) -> anyhow::Result<ExitCode> {
    match command {
        FeedsCommand::Update { only } => update(ctx, &only),
        FeedsCommand::List { format } => list(ctx, format),
    }
}

// ---------------------------------------------------------------------------------------
// feeds update

fn update(ctx: &Context, only: &[String]) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let feeds = &config.feeds.feeds;
    let enabled: Vec<&str> = feeds
        .iter()
        .filter(|f| f.enabled)
        .map(|f| f.name.as_str())
        .collect();
    for name in only {
        if enabled.contains(&name.as_str()) {
            continue;
        }
        if feeds.iter().any(|f| &f.name == name) {
            eprintln!(
                "spoor: feed `{name}` is disabled; switch it on with [feeds] enable \
                 (or `enabled = true` in its [[feeds.custom]])"
            );
        } else {
            eprintln!(
                "spoor: unknown feed `{name}` (enabled feeds: {})",
                enabled.join(", ")
            );
        }
        return Ok(ExitCode::from(EXIT_BAD_CONFIG));
    }
    if enabled.is_empty() {
        println!("no feeds are enabled: see [feeds] enable and [[feeds.custom]]");
        return Ok(ExitCode::SUCCESS);
    }

    let updater = Updater::new(config.feeds.clone()).context("cannot start the feed updater")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(UPDATE_WORKER_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = UpdateProgress::new(std::io::stderr().is_terminal());
    let summary = runtime.block_on(
        updater.update_matching(|f| only.is_empty() || only.contains(&f.name), &progress),
    );
    progress.done();

    print!("{}", summary_table(&summary));
    if let Some(e) = &summary.state_error {
        eprintln!("spoor: {}", redact_urls(e));
    }
    if summary.changed() {
        println!("run `spoor trails compile` to build the snapshot");
    }
    Ok(if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RUNTIME)
    })
}

/// A bar on a terminal; otherwise the updater's own log lines (one per feed) suffice.
#[derive(Debug)]
struct UpdateProgress {
    bar: Option<ProgressBar>,
}

impl UpdateProgress {
    fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} feeds {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            logging::show_progress_bar(&bar);
            bar
        });
        UpdateProgress { bar }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            logging::hide_progress_bar();
        }
    }
}

impl Progress for UpdateProgress {
    fn started(&self, total: usize) {
        match &self.bar {
            Some(bar) => bar.set_length(total as u64),
            None => tracing::info!("updating {total} feed(s)"),
        }
    }

    fn finished(&self, outcome: &FeedOutcome) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(outcome.name.clone());
        }
    }
}

/// The per-feed table and the total line.
fn summary_table(summary: &UpdateSummary) -> String {
    let rows: Vec<[String; 5]> = summary
        .outcomes
        .iter()
        .map(|o| {
            let status = match o.status {
                UpdateStatus::Updated { .. } => "updated",
                UpdateStatus::NotModified { .. } => "unchanged",
                _ => "failed",
            };
            let error = o.error().map_or_else(String::new, |e| {
                let kept = match &o.status {
                    UpdateStatus::Failed {
                        kept_last_good: Some(_),
                        ..
                    } => " (kept last good copy)",
                    _ => "",
                };
                truncate(
                    &format!("{}{kept}", redact_urls(&e.to_string())),
                    MAX_ERROR_WIDTH,
                )
            });
            [
                o.name.clone(),
                status.to_string(),
                o.trails().to_string(),
                if o.changed() { "yes" } else { "no" }.to_string(),
                error,
            ]
        })
        .collect();
    let mut out = table(&["FEED", "STATUS", "TRAILS", "CHANGED", "ERROR"], &rows);
    out.push_str(&format!(
        "total: {} feeds, {} updated, {} unchanged, {} failed, {} trails in {:.1}s\n",
        summary.outcomes.len(),
        summary.updated(),
        summary.not_modified(),
        summary.failed(),
        summary.trails(),
        summary.duration.as_secs_f64()
    ));
    out
}

// ---------------------------------------------------------------------------------------
// feeds list

fn list(ctx: &Context, format: ListFormat) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let statuses = feed_statuses(&config.feeds)?;
    match format {
        ListFormat::Json => {
            let mut out = String::new();
            for status in &statuses {
                let line = serde_json::to_string(&FeedView::from(status))
                    .context("cannot serialize a feed")?;
                out.push_str(&line);
                out.push('\n');
            }
            print!("{out}");
        }
        ListFormat::Table => print!("{}", list_table(&statuses, terminal_width())),
    }
    Ok(ExitCode::SUCCESS)
}

/// One feed in `feeds list --format json`.
#[derive(Debug, Serialize)]
struct FeedView<'a> {
    name: &'a str,
    enabled: bool,
    format: &'static str,
    /// Redacted: user info and query string replaced by `***`.
    url: String,
    description: &'a str,
    /// Unix seconds of the last good copy (written or confirmed by a 304).
    updated: Option<u64>,
    /// Unix seconds of the last attempt, whatever its result.
    checked: Option<u64>,
    /// Trails in the last good copy.
    trails: Option<u64>,
    bytes: Option<u64>,
    /// A last good copy is on disk.
    has_copy: bool,
    last_error: Option<String>,
    /// Failed attempts since the last success.
    failures: u32,
}

impl<'a> From<&'a FeedStatus> for FeedView<'a> {
    fn from(s: &'a FeedStatus) -> Self {
        FeedView {
            name: &s.name,
            enabled: s.enabled,
            format: s.format,
            url: redact_url(&s.url),
            description: &s.description,
            updated: s.state.updated.map(|t| t.0),
            checked: s.state.checked.map(|t| t.0),
            trails: s.state.trails,
            bytes: s.state.bytes,
            has_copy: s.copy.is_some(),
            last_error: s.state.last_error.as_deref().map(redact_urls),
            failures: s.state.failures,
        }
    }
}

/// The table; a failing feed gets its last error on an indented line below its row.
/// The description fills the rest of a `line_width` line, or takes
/// [`DEFAULT_DESCRIPTION_WIDTH`] characters when the width is unknown.
fn list_table(statuses: &[FeedStatus], line_width: Option<usize>) -> String {
    let headers = ["NAME", "ON", "FORMAT", "UPDATED", "TRAILS", "DESCRIPTION"];
    let rows: Vec<[String; 6]> = statuses
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                if s.enabled { "on" } else { "off" }.to_string(),
                s.format.to_string(),
                s.state
                    .updated
                    .map_or_else(|| "never".to_string(), |t| t.to_string()),
                s.state
                    .trails
                    .map_or_else(|| "-".to_string(), |n| n.to_string()),
                String::new(),
            ]
        })
        .collect();
    // Fit the description into what the other columns leave of the line.
    let used: usize = (0..5)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([headers[c].len()])
                .max()
                .unwrap_or(0)
                + 2
        })
        .sum();
    let width = line_width.map_or(DEFAULT_DESCRIPTION_WIDTH, |w| {
        w.saturating_sub(used).max(MIN_DESCRIPTION_WIDTH)
    });
    let rows: Vec<[String; 6]> = rows
        .into_iter()
        .zip(statuses)
        .map(|(mut row, s)| {
            row[5] = truncate(&s.description, width);
            row
        })
        .collect();
    let table = table(&headers, &rows);
    let mut lines = table.lines();
    let mut out = String::new();
    if let Some(header) = lines.next() {
        out.push_str(header);
        out.push('\n');
    }
    for (line, s) in lines.zip(statuses) {
        out.push_str(line);
        out.push('\n');
        if let Some(e) = &s.state.last_error {
            out.push_str(&format!("    last error: {}\n", redact_urls(e)));
        }
    }
    out
}

/// The terminal's width when stdout is one and the shell exports `COLUMNS`.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
}

// ---------------------------------------------------------------------------------------
// Text helpers

/// Left-aligned columns separated by two blanks; the last column is not padded.
fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `text` cut to `max` characters, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_text_truncates() {
        let rows = [
            ["a".to_string(), "long cell".to_string(), "x".to_string()],
            ["bbb".to_string(), "c".to_string(), String::new()],
        ];
        assert_eq!(
            table(&["N", "S", "E"], &rows),
            "N    S          E\na    long cell  x\nbbb  c\n"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
