//! The trail snapshot: present, loadable, not empty, not stale, not from the future.

use spoor_feeds::store::TrailStore;

use super::*;

pub(super) fn check_trails(
    config: &Config,
    cfg_arg: &str,
    now: SystemTime,
    out: &mut Vec<Finding>,
) {
    let path = &config.trails.snapshot;
    let subject = path.display().to_string();
    let rebuild = format!("spoor {cfg_arg}feeds update && spoor {cfg_arg}trails compile");
    if !path.exists() {
        out.push(
            Finding::new(Level::Fail, "trails", subject, "snapshot present")
                .detail("no trail snapshot: the sensor matches no trails (heuristics only)")
                .fix(rebuild),
        );
        return;
    }
    let store = match TrailStore::open(path) {
        Ok(s) => s,
        Err(e) => {
            out.push(
                Finding::new(Level::Fail, "trails", subject, "snapshot loads")
                    .detail(e.to_string())
                    .fix(rebuild),
            );
            return;
        }
    };
    let meta = store.meta();
    let total: u64 = meta.counts.values().sum();
    out.extend(trail_findings(
        &subject,
        total,
        meta.created,
        unix_secs(now),
        config.feeds.interval.as_std(),
        &rebuild,
    ));
}

/// Count and age of a loaded snapshot.
pub(crate) fn trail_findings(
    subject: &str,
    trails: u64,
    created: u64,
    now: u64,
    interval: Duration,
    rebuild: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let loaded = Finding::new(Level::Ok, "trails", subject, "snapshot loads");
    if trails == 0 {
        out.push(
            loaded
                .with_level(Level::Fail)
                .detail("loads, but holds no trails")
                .fix(format!(
                    "enable feeds ([feeds] enable) or add [[trails.source]], then `{rebuild}`"
                )),
        );
    } else {
        out.push(loaded.detail(format!("{trails} trails")));
    }
    let age = Finding::new(Level::Ok, "trails", subject, "snapshot age");
    let made = spoor_feeds::fetch::Timestamp(created);
    if created > now + MAX_SNAPSHOT_AHEAD.as_secs() {
        out.push(
            age.with_level(Level::Fail)
                .detail(format!(
                    "compiled at {made}, {} in the future of this host's clock: this clock or the compiling host's is wrong",
                    age_text(Duration::from_secs(created - now))
                ))
                .fix(clock_fix()),
        );
        return out;
    }
    let old = Duration::from_secs(now.saturating_sub(created));
    let limit = interval.saturating_mul(STALE_INTERVALS);
    if old > limit {
        out.push(
            age.with_level(Level::Warn)
                .detail(format!(
                    "compiled {} ago ({made}); [feeds] interval is {}: the refresh has missed its runs",
                    age_text(old),
                    age_text(interval)
                ))
                .fix(format!(
                    "`{rebuild}`, then check the job that runs them every [feeds] interval (cron, or the feeds service) and its log"
                )),
        );
    } else {
        out.push(age.detail(format!(
            "compiled {} ago ({made}); refreshed every {}",
            age_text(old),
            age_text(interval)
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn trail_age_is_judged_against_the_update_interval() {
        let now = 1_800_000_000;
        let interval = Duration::from_secs(6 * HOUR);
        let fresh = trail_findings("s", 10, now - HOUR, now, interval, "rebuild");
        assert!(fresh.iter().all(|f| f.level == Level::Ok), "{fresh:?}");
        // Exactly at the limit is still fine; past it is stale.
        let edge = trail_findings("s", 10, now - 12 * HOUR, now, interval, "rebuild");
        assert!(edge.iter().all(|f| f.level == Level::Ok), "{edge:?}");
        let stale = trail_findings("s", 10, now - 12 * HOUR - 1, now, interval, "rebuild");
        assert_eq!(stale[1].level, Level::Warn);
        assert!(stale[1].fix.as_deref().unwrap().contains("rebuild"));
        let empty = trail_findings("s", 0, now, now, interval, "rebuild");
        assert_eq!(empty[0].level, Level::Fail);
        let future = trail_findings("s", 10, now + 301, now, interval, "rebuild");
        assert_eq!(future[1].level, Level::Fail);
        assert!(future[1].detail.contains("future"));
        let near = trail_findings("s", 10, now + 300, now, interval, "rebuild");
        assert_eq!(near[1].level, Level::Ok);
    }
}
