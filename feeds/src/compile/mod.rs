//! Compile: every source → one snapshot file.
//!
//! Sources are read one after another (a source that cannot be read is reported and the
//! rest still compile, unless it is required), merged and deduplicated with provenance, the
//! whitelist and consensus rules applied, and the snapshot written atomically.

pub(crate) mod builder;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{FeedSpec, FeedsConfig, OriginDefaults, SourceSpec, TrailsConfig};
use crate::format::{FormatSpec, Malformed, ParseReport, Sink};
use crate::snapshot::writer::{SnapshotMeta, encode_with_meta, write_atomic};
use builder::TrailSetBuilder;

pub use builder::SourceSummary;

/// One input of a compile.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileSource {
    pub name: String,
    pub path: PathBuf,
    pub format: FormatSpec,
    pub defaults: OriginDefaults,
    /// A required source that cannot be read fails the compile; an optional one (a feed
    /// not downloaded yet) is reported and skipped.
    pub required: bool,
}

impl CompileSource {
    pub fn local(spec: &SourceSpec) -> Self {
        CompileSource {
            name: spec.name.clone(),
            path: spec.path.clone(),
            format: spec.format.clone(),
            defaults: spec.defaults.clone(),
            required: true,
        }
    }

    /// A catalog or custom feed, read from its last good download in `dir`.
    pub fn feed(spec: &FeedSpec, dir: &Path) -> Self {
        CompileSource {
            name: spec.name.clone(),
            path: crate::fetch::copy_path(dir, &spec.name),
            format: spec.format.clone(),
            defaults: spec.defaults.clone(),
            required: false,
        }
    }
}

/// Every source a config asks for: local sources first, then enabled feeds.
pub fn sources_from_config(trails: &TrailsConfig, feeds: &FeedsConfig) -> Vec<CompileSource> {
    trails
        .sources
        .iter()
        .map(CompileSource::local)
        .chain(
            feeds
                .feeds
                .iter()
                .filter(|f| f.enabled)
                .map(|f| CompileSource::feed(f, &feeds.dir)),
        )
        .collect()
}

/// What happened to one source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub name: String,
    pub records: u64,
    pub malformed_count: u64,
    /// The first malformed lines, with file:line.
    pub malformed: Vec<Malformed>,
    /// Why the source could not be read at all.
    pub error: Option<String>,
    pub required: bool,
}

/// The outcome of a compile.
#[derive(Debug, Clone)]
pub struct CompileReport {
    pub sources: Vec<SourceReport>,
    pub meta: SnapshotMeta,
    pub bytes: usize,
    pub elapsed: Duration,
}

impl CompileReport {
    /// A required source failed: the snapshot was not written.
    pub fn failed_required(&self) -> Vec<&SourceReport> {
        self.sources
            .iter()
            .filter(|s| s.required && s.error.is_some())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("required trail source {name} cannot be read: {reason}")]
    SourceUnreadable {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("too many trail sources (at most {max})")]
    TooManySources { max: usize },
    #[error("cannot write trail snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read every source and build the snapshot image in memory.
pub fn build_image(sources: &[CompileSource]) -> Result<(Vec<u8>, CompileReport), CompileError> {
    let started = Instant::now();
    let mut builder = TrailSetBuilder::default();
    let mut reports = Vec::with_capacity(sources.len());
    for src in sources {
        let id = builder
            .add_source(
                &src.name,
                src.format.name(),
                &src.path.display().to_string(),
                &src.defaults,
                src.format.is_whitelist(),
            )
            .ok_or(CompileError::TooManySources {
                max: builder::MAX_SOURCES,
            })?;
        let mut report = ParseReport::default();
        let mut records = Vec::new();
        let result = {
            let mut out = |r| records.push(r);
            let mut sink = Sink::new(&mut report, &mut out);
            crate::source::load_source(&src.path, &src.format, &mut sink)
        };
        let error = match result {
            Ok(_) => None,
            Err(e) if src.required => {
                return Err(CompileError::SourceUnreadable {
                    name: src.name.clone(),
                    path: src.path.clone(),
                    reason: e.to_string(),
                });
            }
            Err(e) => Some(e.to_string()),
        };
        for r in records {
            builder.add(id, r);
        }
        builder.note_malformed(id, report.malformed_count);
        reports.push(SourceReport {
            name: src.name.clone(),
            records: report.accepted,
            malformed_count: report.malformed_count,
            malformed: report.malformed,
            error,
            required: src.required,
        });
    }
    let set = builder.finish();
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (image, meta) = encode_with_meta(&set, created);
    let report = CompileReport {
        sources: reports,
        meta,
        bytes: image.len(),
        elapsed: started.elapsed(),
    };
    Ok((image, report))
}

/// Compile `sources` and write the snapshot to `path` atomically.
pub fn compile(sources: &[CompileSource], path: &Path) -> Result<CompileReport, CompileError> {
    let (image, report) = build_image(sources)?;
    write_atomic(path, &image).map_err(|source| CompileError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(report)
}
