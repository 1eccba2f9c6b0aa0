//! Counters for Prometheus (`GET /metrics`), one field per thing worth counting.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub ingest_batches: AtomicU64,
    pub ingest_accepted: AtomicU64,
    pub ingest_duplicates: AtomicU64,
    pub ingest_rejected_bad_request: AtomicU64,
    pub ingest_rejected_unauthorized: AtomicU64,
    pub ingest_rejected_forbidden: AtomicU64,
    pub ingest_rejected_too_large: AtomicU64,
    pub ingest_failed: AtomicU64,
    pub logins: AtomicU64,
    pub logins_failed: AtomicU64,
    pub logins_throttled: AtomicU64,
    pub exports: AtomicU64,
    pub live_subscribers: AtomicU64,
    pub live_lagged: AtomicU64,
    pub webhook_delivered: AtomicU64,
    pub webhook_retries: AtomicU64,
    pub webhook_given_up: AtomicU64,
    pub webhook_dropped: AtomicU64,
    pub retention_deleted: AtomicU64,
    pub respond_events: AtomicU64,
    pub respond_decisions: AtomicU64,
    pub respond_refused: AtomicU64,
    pub respond_policy_failed: AtomicU64,
    pub respond_tracking_full: AtomicU64,
    pub respond_expired: AtomicU64,
    pub respond_reconcile_failed: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Prometheus text exposition format.
    pub fn render(&self, db_bytes: Option<u64>) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, labels: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name}{labels} {}", v.load(Ordering::Relaxed));
        };
        counter(
            "spoor_ingest_batches_total",
            "Event batches stored.",
            "",
            &self.ingest_batches,
        );
        counter(
            "spoor_ingest_events_total",
            "Events stored.",
            "",
            &self.ingest_accepted,
        );
        counter(
            "spoor_ingest_duplicates_total",
            "Events received again and not stored twice.",
            "",
            &self.ingest_duplicates,
        );
        for (reason, v) in [
            ("bad_request", &self.ingest_rejected_bad_request),
            ("unauthorized", &self.ingest_rejected_unauthorized),
            ("forbidden", &self.ingest_rejected_forbidden),
            ("too_large", &self.ingest_rejected_too_large),
            ("store_failed", &self.ingest_failed),
        ] {
            let _ = writeln!(
                out,
                "spoor_ingest_rejected_total{{reason=\"{reason}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        counter(
            "spoor_logins_total",
            "Successful dashboard logins.",
            &self.logins,
        );
        counter(
            "spoor_logins_failed_total",
            "Failed dashboard logins.",
            &self.logins_failed,
        );
        counter(
            "spoor_logins_throttled_total",
            "Logins refused by throttling.",
            &self.logins_throttled,
        );
        counter("spoor_exports_total", "Event exports.", &self.exports);
        counter(
            "spoor_live_lagged_total",
            "Live events a slow subscriber missed.",
            &self.live_lagged,
        );
        counter(
            "spoor_webhook_delivered_total",
            "Webhook deliveries that succeeded.",
            &self.webhook_delivered,
        );
        counter(
            "spoor_webhook_retries_total",
            "Webhook attempts that failed and were retried.",
            &self.webhook_retries,
        );
        counter(
            "spoor_webhook_given_up_total",
            "Webhook deliveries abandoned after max_attempts.",
            &self.webhook_given_up,
        );
        counter(
            "spoor_webhook_dropped_total",
            "Events not queued for a webhook because its queue was full.",
            &self.webhook_dropped,
        );
        counter(
            "spoor_retention_deleted_total",
            "Events deleted by retention.",
            &self.retention_deleted,
        );
        counter(
            "spoor_respond_events_total",
            "New events the responders' policy evaluated.",
            &self.respond_events,
        );
        counter(
            "spoor_respond_decisions_total",
            "Decisions the policy made.",
            &self.respond_decisions,
        );
        counter(
            "spoor_respond_refused_total",
            "Targets the policy refused (allowlist, prefix).",
            &self.respond_refused,
        );
        counter(
            "spoor_respond_policy_failed_total",
            "Events whose decision could not be recorded (ledger errors).",
            &self.respond_policy_failed,
        );
        counter(
            "spoor_respond_tracking_full_total",
            "Occurrences not counted because the policy's counting table was full.",
            &self.respond_tracking_full,
        );
        counter(
            "spoor_respond_expired_total",
            "Decisions expired by the server's timer.",
            &self.respond_expired,
        );
        counter(
            "spoor_respond_reconcile_failed_total",
            "Failed passes of the server's in-process backend.",
            &self.respond_reconcile_failed,
        );
        let _ = writeln!(
            out,
            "# HELP spoor_live_subscribers Open live streams.\n# TYPE spoor_live_subscribers gauge\nspoor_live_subscribers {}",
            self.live_subscribers.load(Ordering::Relaxed)
        );
        if let Some(b) = db_bytes {
            let _ = writeln!(
                out,
                "# HELP spoor_db_used_bytes Bytes in used database pages.\n# TYPE spoor_db_used_bytes gauge\nspoor_db_used_bytes {b}"
            );
        }
        out
    }
}
