//! The clock: not before this program's file (a lower bound for the true time).

use super::*;

/// When this program's file was last written: the clock cannot be earlier than that.
pub(super) fn current_exe_time() -> Option<SystemTime> {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
}

pub(super) fn clock_fix() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "set the clock (`ntpdate -b pool.ntp.org` or `service ntpd onestart`) and keep it set: `sysrc ntpd_enable=YES ntpd_sync_on_start=YES`"
    } else {
        "set the clock and keep it set: `timedatectl set-ntp true` (or `chronyc makestep` with chrony)"
    }
}

pub(super) fn check_clock(now: SystemTime, built: Option<SystemTime>, out: &mut Vec<Finding>) {
    let f = Finding::new(
        Level::Ok,
        "clock",
        "system time",
        "not before this program's file",
    );
    match built {
        Some(b) if now < b => out.push(
            f.detail(format!(
                "the clock says {} but the spoor binary was written at {}: the clock is behind (TLS certificates, trail ages and event times will be wrong)",
                secs_text(now),
                secs_text(b)
            ))
            .fix(clock_fix())
            .with_level(Level::Fail),
        ),
        Some(_) => out.push(f.detail(secs_text(now))),
        None => out.push(
            f.detail("cannot read the spoor binary's modification time; not compared")
                .with_level(Level::Warn)
                .fix("run the installed binary (its file time is the lower bound for the clock)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_the_binary_fails() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut f = Vec::new();
        check_clock(t, Some(t + Duration::from_secs(1)), &mut f);
        check_clock(t, Some(t), &mut f);
        assert_eq!(f[0].level, Level::Fail);
        assert_eq!(f[1].level, Level::Ok);
    }
}
