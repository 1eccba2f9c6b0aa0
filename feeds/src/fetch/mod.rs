//! Downloading feeds: the [`Updater`].
//!
//! For each enabled feed of a [`FeedsConfig`], at most `parallel` at once: a conditional GET
//! (`If-None-Match` / `If-Modified-Since` from the last good copy), the body streamed under a
//! size cap and one deadline, then validated (not an HTML page, not empty, parses to trails,
//! not a collapse against the last good copy) before it atomically replaces
//! `<dir>/<name>.list`. Whatever goes wrong, the last good copy stays, so compile always has
//! something to read; the error says what happened and what was kept.
//!
//! Each feed yields a [`FeedOutcome`]; a run yields an [`UpdateSummary`]. Per-feed status
//! (last update, trails, last error) is kept in `<dir>/feeds-state.json` and listed by
//! [`feed_statuses`].

mod download;
mod error;
mod redact;
mod state;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use spoor_core::ByteSize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{FeedSpec, FeedsConfig};

pub use error::FetchError;
pub use redact::{redact_url, redact_urls};
pub use state::{COPY_EXTENSION, FeedState, STATE_FILE, StateError, Timestamp, copy_path};

use download::{Conditional, Fetched};
use state::{StateFile, write_atomic};
use validate::{Baseline, count_trails, decode};

/// Sent with every request: some providers refuse anonymous clients, and a provider seeing
/// trouble should be able to tell who is calling.
pub const USER_AGENT: &str = concat!(
    "spoor/",
    env!("CARGO_PKG_VERSION"),
    " (threat feed updater)"
);

/// Told about a run as it goes (a CLI draws a progress bar with it).
pub trait Progress: Send + Sync {
    /// A run starts with `total` feeds.
    fn started(&self, total: usize);
    /// One feed is done (in completion order, not config order).
    fn finished(&self, outcome: &FeedOutcome);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn started(&self, _total: usize) {}
    fn finished(&self, _outcome: &FeedOutcome) {}
}

/// The last good copy that stayed in place when a download failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastGood {
    pub path: PathBuf,
    /// When it was written; `None` if unknown (state file lost).
    pub updated: Option<Timestamp>,
    pub trails: Option<u64>,
}

/// How one feed's update went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateStatus {
    /// A new copy was validated and written.
    Updated { trails: u64, bytes: u64 },
    /// The server said 304: the last good copy is current.
    NotModified { trails: u64 },
    /// Nothing new was accepted. `kept_last_good` is the copy compile keeps using, if any.
    Failed {
        error: FetchError,
        kept_last_good: Option<LastGood>,
    },
}

/// One feed's result in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOutcome {
    pub name: String,
    pub url: String,
    pub status: UpdateStatus,
    pub duration: std::time::Duration,
}

impl FeedOutcome {
    /// True if the feed's copy changed (compile should run).
    pub fn changed(&self) -> bool {
        matches!(self.status, UpdateStatus::Updated { .. })
    }

    pub fn is_failure(&self) -> bool {
        matches!(self.status, UpdateStatus::Failed { .. })
    }

    /// Trails compile will read for this feed after the run (0 if there is no copy).
    pub fn trails(&self) -> u64 {
        match &self.status {
            UpdateStatus::Updated { trails, .. } | UpdateStatus::NotModified { trails } => *trails,
            UpdateStatus::Failed { kept_last_good, .. } => {
                kept_last_good.as_ref().and_then(|k| k.trails).unwrap_or(0)
            }
        }
    }

    pub fn error(&self) -> Option<&FetchError> {
        match &self.status {
            UpdateStatus::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// `feodotracker: updated, 235 trails (4KiB)` or
/// `feodotracker: HTTP 500 Internal Server Error from https://...; kept last good copy from
/// 2026-11-25 10:00 UTC (235 trails)`. Credentials in the URL or the error are redacted.
impl fmt::Display for FeedOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.status {
            UpdateStatus::Updated { trails, bytes } => {
                write!(f, "{name}: updated, {trails} trails ({})", ByteSize(*bytes))
            }
            UpdateStatus::NotModified { trails } => {
                write!(f, "{name}: not modified, {trails} trails")
            }
            UpdateStatus::Failed {
                error,
                kept_last_good,
            } => {
                write!(
                    f,
                    "{name}: {} from {}; ",
                    redact_urls(&error.to_string()),
                    redact_url(&self.url)
                )?;
                match kept_last_good {
                    Some(k) => {
                        f.write_str("kept last good copy")?;
                        if let Some(t) = k.updated {
                            write!(f, " from {t}")?;
                        }
                        if let Some(n) = k.trails {
                            write!(f, " ({n} trails)")?;
                        }
                        Ok(())
                    }
                    None => f.write_str("no earlier copy, so this feed adds no trails yet"),
                }
            }
        }
    }
}

/// The result of one run over the feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSummary {
    pub started: Timestamp,
    pub duration: std::time::Duration,
    /// In config order.
    pub outcomes: Vec<FeedOutcome>,
    /// The state file could not be read or written (downloads still happened; the next run
    /// may re-download unconditionally).
    pub state_error: Option<String>,
}

impl UpdateSummary {
    pub fn updated(&self) -> usize {
        self.outcomes.iter().filter(|o| o.changed()).count()
    }
    pub fn not_modified(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, UpdateStatus::NotModified { .. }))
            .count()
    }
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_failure()).count()
    }
    /// True if any copy changed: the trail store should be recompiled.
    pub fn changed(&self) -> bool {
        self.outcomes.iter().any(FeedOutcome::changed)
    }
    /// True if every feed is current (updated or not modified).
    pub fn all_ok(&self) -> bool {
        self.failed() == 0 && self.state_error.is_none()
    }
    /// Trails available to compile across all feeds after this run.
    pub fn trails(&self) -> u64 {
        self.outcomes.iter().map(FeedOutcome::trails).sum()
    }
}

/// `42 feeds in 12.3s: 30 updated, 10 not modified, 2 failed`
impl fmt::Display for UpdateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} feeds in {:.1}s: {} updated, {} not modified, {} failed",
            self.outcomes.len(),
            self.duration.as_secs_f64(),
            self.updated(),
            self.not_modified(),
            self.failed()
        )?;
        if let Some(e) = &self.state_error {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

/// Downloads the feeds of one [`FeedsConfig`]. Cheap to clone; clones share the client.
#[derive(Debug, Clone)]
pub struct Updater {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: FeedsConfig,
    client: reqwest::Client,
}

impl Updater {
    /// An updater with Spoor's HTTP client: rustls, the config's timeout, the system proxy
    /// settings (`HTTPS_PROXY`...), redirects followed.
    pub fn new(config: FeedsConfig) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout.as_std())
            .connect_timeout(config.timeout.as_std())
            .build()
            .map_err(|e| FetchError::Client {
                detail: error::error_chain(&e),
            })?;
        Ok(Self::with_client(config, client))
    }

    /// An updater with a client built by the caller (custom proxy, roots, user agent). The
    /// config's timeout is still applied to each request.
    pub fn with_client(config: FeedsConfig, client: reqwest::Client) -> Self {
        Updater {
            inner: Arc::new(Inner { config, client }),
        }
    }

    pub fn config(&self) -> &FeedsConfig {
        &self.inner.config
    }

    /// Update every enabled feed.
    pub async fn update(&self, progress: &dyn Progress) -> UpdateSummary {
        self.update_matching(|_| true, progress).await
    }

    /// Update the enabled feeds for which `select` is true (e.g. the names given on the
    /// command line).
    pub async fn update_matching(
        &self,
        select: impl Fn(&FeedSpec) -> bool,
        progress: &dyn Progress,
    ) -> UpdateSummary {
        let started = Timestamp::now();
        let clock = Instant::now();
        let config = &self.inner.config;
        let feeds: Vec<&FeedSpec> = config
            .feeds
            .iter()
            .filter(|f| f.enabled && select(f))
            .collect();
        progress.started(feeds.len());

        let mut state_error = None;
        if let Err(e) = std::fs::create_dir_all(&config.dir) {
            state_error = Some(format!(
                "cannot create feeds dir {}: {e}",
                config.dir.display()
            ));
        }
        let mut state = match StateFile::load(&config.dir) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "starting with empty feed state");
                state_error.get_or_insert(e.to_string());
                StateFile::default()
            }
        };

        let limit = Arc::new(Semaphore::new(config.parallel.max(1)));
        let mut tasks = JoinSet::new();
        let mut names = HashMap::new();
        for feed in &feeds {
            let job = Job {
                client: self.inner.client.clone(),
                feed: (*feed).clone(),
                dir: config.dir.clone(),
                max_size: config.max_size,
                timeout: config.timeout,
                previous: state.feeds.get(&feed.name).cloned().unwrap_or_default(),
            };
            let limit = Arc::clone(&limit);
            let handle = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                job.run().await
            });
            names.insert(handle.id(), (feed.name.clone(), feed.url.clone()));
        }

        let mut outcomes = Vec::with_capacity(feeds.len());
        while let Some(joined) = tasks.join_next_with_id().await {
            let (outcome, feed_state) = match joined {
                Ok((_, done)) => done,
                Err(e) => {
                    let (name, url) = names.get(&e.id()).cloned().unwrap_or_default();
                    let previous = state.feeds.get(&name).cloned().unwrap_or_default();
                    let outcome = FeedOutcome {
                        name,
                        url,
                        status: UpdateStatus::Failed {
                            error: FetchError::Internal {
                                detail: e.to_string(),
                            },
                            kept_last_good: None,
                        },
                        duration: clock.elapsed(),
                    };
                    (outcome, previous)
                }
            };
            log_outcome(&outcome);
            progress.finished(&outcome);
            state.feeds.insert(outcome.name.clone(), feed_state);
            // Saved after each feed so an interrupted run keeps what it learnt.
            if let Err(e) = state.save(&config.dir) {
                state_error.get_or_insert(e.to_string());
            }
            outcomes.push(outcome);
        }

        let order: HashMap<&str, usize> = feeds
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        outcomes.sort_by_key(|o| order.get(o.name.as_str()).copied().unwrap_or(usize::MAX));
        UpdateSummary {
            started,
            duration: clock.elapsed(),
            outcomes,
            state_error,
        }
    }

    /// Update now, then every `[feeds] interval`, until `shutdown` completes; `on_update`
    /// sees each run's summary (e.g. to recompile and reload the trail store when
    /// [`UpdateSummary::changed`]). A run in progress is finished before returning.
    pub async fn run_every_interval(
        &self,
        shutdown: impl Future<Output = ()>,
        progress: &dyn Progress,
        mut on_update: impl FnMut(&UpdateSummary),
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let summary = self.update(progress).await;
            on_update(&summary);
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.inner.config.interval.as_std()) => {}
            }
        }
    }
}

fn log_outcome(outcome: &FeedOutcome) {
    match &outcome.status {
        UpdateStatus::Failed { .. } => tracing::warn!(feed = %outcome.name, "{outcome}"),
        _ => tracing::info!(feed = %outcome.name, "{outcome}"),
    }
}

/// Everything one feed's download needs, owned so it can run on its own task.
#[derive(Debug)]
struct Job {
    client: reqwest::Client,
    feed: FeedSpec,
    dir: PathBuf,
    max_size: ByteSize,
    timeout: spoor_core::Duration,
    previous: FeedState,
}

/// A successful attempt.
#[derive(Debug)]
enum Accepted {
    NotModified {
        trails: u64,
    },
    Written {
        trails: u64,
        bytes: u64,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

impl Job {
    async fn run(self) -> (FeedOutcome, FeedState) {
        let clock = Instant::now();
        let copy = copy_path(&self.dir, &self.feed.name);
        let copy_meta = tokio::fs::metadata(&copy).await.ok();
        let previous_trails = match (&copy_meta, self.previous.trails) {
            (None, _) => None,
            (Some(_), Some(n)) => Some(n),
            // A copy without state (state file lost): count it once.
            (Some(_), None) => Some(self.count_copy(&copy).await),
        };
        let result = self
            .attempt(&copy, copy_meta.is_some(), previous_trails)
            .await;

        let now = Timestamp::now();
        let mut state = self.previous.clone();
        state.checked = Some(now);
        let status = match result {
            Ok(accepted) => {
                state.last_error = None;
                state.failures = 0;
                state.shrink_rejections = 0;
                state.updated = Some(now);
                match accepted {
                    Accepted::NotModified { trails } => {
                        state.trails = Some(trails);
                        UpdateStatus::NotModified { trails }
                    }
                    Accepted::Written {
                        trails,
                        bytes,
                        etag,
                        last_modified,
                    } => {
                        state.url = self.feed.url.clone();
                        state.etag = etag;
                        state.last_modified = last_modified;
                        state.trails = Some(trails);
                        state.bytes = Some(bytes);
                        UpdateStatus::Updated { trails, bytes }
                    }
                }
            }
            Err(error) => {
                state.last_error = Some(error.to_string());
                state.failures = state.failures.saturating_add(1);
                if matches!(error, FetchError::Shrunk { .. }) {
                    state.shrink_rejections += 1;
                } else {
                    state.shrink_rejections = 0;
                }
                let kept_last_good = copy_meta.map(|meta| LastGood {
                    path: copy.clone(),
                    updated: state
                        .updated
                        .or_else(|| meta.modified().ok().map(Timestamp::from_system)),
                    trails: previous_trails,
                });
                UpdateStatus::Failed {
                    error,
                    kept_last_good,
                }
            }
        };
        let outcome = FeedOutcome {
            name: self.feed.name.clone(),
            url: self.feed.url.clone(),
            status,
            duration: clock.elapsed(),
        };
        (outcome, state)
    }

    async fn attempt(
        &self,
        copy: &Path,
        have_copy: bool,
        previous_trails: Option<u64>,
    ) -> Result<Accepted, FetchError> {
        // Validators belong to the copy and the URL it came from.
        let conditional = if have_copy && self.previous.url == self.feed.url {
            Conditional {
                etag: self.previous.etag.as_deref(),
                last_modified: self.previous.last_modified.as_deref(),
            }
        } else {
            Conditional::default()
        };
        let fetched = download::get(
            &self.client,
            &self.feed.url,
            conditional,
            self.max_size,
            self.timeout,
        )
        .await?;
        let (body, content_type, etag, last_modified) = match fetched {
            Fetched::NotModified if have_copy => {
                return Ok(Accepted::NotModified {
                    trails: previous_trails.unwrap_or(0),
                });
            }
            Fetched::NotModified => return Err(FetchError::UnexpectedNotModified),
            Fetched::Body {
                bytes,
                content_type,
                etag,
                last_modified,
            } => (bytes, content_type, etag, last_modified),
        };

        // Parsing a large feed is CPU work: keep it off the async workers.
        let format = self.feed.format.clone();
        let copy = copy.to_path_buf();
        let baseline = Baseline {
            previous_trails,
            shrink_rejections: self.previous.shrink_rejections,
        };
        let (trails, bytes) = tokio::task::spawn_blocking(move || {
            let trails =
                validate::validate(&format, &body, content_type.as_deref(), &copy, baseline)?;
            write_atomic(&copy, &body).map_err(|e| FetchError::Write {
                path: copy.clone(),
                detail: e.to_string(),
            })?;
            Ok::<_, FetchError>((trails, body.len() as u64))
        })
        .await
        .map_err(|e| FetchError::Internal {
            detail: e.to_string(),
        })??;
        Ok(Accepted::Written {
            trails,
            bytes,
            etag,
            last_modified,
        })
    }

    async fn count_copy(&self, copy: &Path) -> u64 {
        let format = self.feed.format.clone();
        let copy = copy.to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::fs::read(&copy)
                .map(|bytes| count_trails(&format, &decode(&bytes), &copy).accepted)
                .unwrap_or(0)
        })
        .await
        .unwrap_or(0)
    }
}

/// One feed as `spoor feeds list` shows it: what the config says and what is on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedStatus {
    pub name: String,
    pub url: String,
    /// Format name as written in the config.
    pub format: &'static str,
    pub enabled: bool,
    pub description: String,
    /// The last good copy, if one exists.
    pub copy: Option<PathBuf>,
    /// Last update, trails, last error... (default if the feed was never fetched).
    pub state: FeedState,
}

impl FeedStatus {
    /// True if the last attempt failed.
    pub fn failing(&self) -> bool {
        self.state.last_error.is_some()
    }
}

/// Every feed of the config (enabled or not, in config order) with its local status.
/// Reads only the feeds dir; never touches the network.
pub fn feed_statuses(config: &FeedsConfig) -> Result<Vec<FeedStatus>, StateError> {
    let mut state = StateFile::load(&config.dir)?;
    Ok(config
        .feeds
        .iter()
        .map(|feed| {
            let copy = copy_path(&config.dir, &feed.name);
            FeedStatus {
                name: feed.name.clone(),
                url: feed.url.clone(),
                format: feed.format.name(),
                enabled: feed.enabled,
                description: feed.description.clone(),
                copy: copy.is_file().then_some(copy),
                state: state.feeds.remove(&feed.name).unwrap_or_default(),
            }
        })
        .collect())
}
