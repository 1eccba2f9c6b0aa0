//! Webhooks: every new event matching a webhook's severity and kind filters is POSTed to
//! it as JSON (the stored event, so pseudonymised when that is on).
//!
//! Ingest never waits for a webhook: a dispatcher task takes committed events from the
//! store's broadcast and puts them on each webhook's bounded queue ([`QUEUE`]; a full
//! queue drops the event and counts it). One delivery task per webhook sends in order and
//! retries a failed POST (error or non-2xx answer) with exponential backoff, from
//! `backoff` doubling up to [`MAX_BACKOFF`], at most `max_attempts` times.

use std::sync::Arc;
use std::time::Duration;

use spoor_core::Event;
use tokio::sync::{broadcast, mpsc};

use crate::config::Webhook;
use crate::metrics::{Metrics, inc};
use crate::store::Store;

/// Events waiting per webhook at most.
pub const QUEUE: usize = 10_000;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Webhook {
    pub fn wants(&self, e: &Event) -> bool {
        e.severity >= self.min_severity && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
    }
}

/// Start the dispatcher and one delivery task per webhook (nothing when there are none).
pub fn start(store: &Store, hooks: &[Webhook], metrics: Arc<Metrics>) {
    if hooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks disabled: cannot make an HTTP client: {e}");
            return;
        }
    };
    let mut queues = Vec::new();
    for hook in hooks {
        let (tx, rx) = mpsc::channel::<Arc<Event>>(QUEUE);
        queues.push((hook.clone(), tx));
        tokio::spawn(deliver(
            client.clone(),
            hook.clone(),
            rx,
            Arc::clone(&metrics),
        ));
    }
    let mut events = store.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    for (hook, tx) in &queues {
                        if hook.wants(&e) && tx.try_send(Arc::clone(&e)).is_err() {
                            inc(&metrics.webhook_dropped);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("webhooks missed {n} events (dispatcher too slow)");
                    crate::metrics::add(&metrics.webhook_dropped, n);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

async fn deliver(
    client: reqwest::Client,
    hook: Webhook,
    mut rx: mpsc::Receiver<Arc<Event>>,
    metrics: Arc<Metrics>,
) {
    while let Some(e) = rx.recv().await {
        let body = match serde_json::to_vec(&*e) {
            Ok(b) => b,
            Err(_) => continue,
        };
        let mut delay = hook.backoff;
        for attempt in 1..=hook.max_attempts {
            let result = client
                .post(&hook.url)
                .timeout(hook.timeout)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let why = match result {
                Ok(r) if r.status().is_success() => {
                    inc(&metrics.webhook_delivered);
                    break;
                }
                Ok(r) => format!("answered {}", r.status()),
                Err(err) => err.to_string(),
            };
            if attempt == hook.max_attempts {
                inc(&metrics.webhook_given_up);
                tracing::warn!(url = %hook.url, event = %e.id, "webhook gave up after {attempt} attempts: {why}");
                break;
            }
            inc(&metrics.webhook_retries);
            tracing::debug!(url = %hook.url, attempt, "webhook failed ({why}); retrying in {delay:?}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}
