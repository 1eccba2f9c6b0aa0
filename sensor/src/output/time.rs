//! Calendar fields from Unix time, in UTC, for the renderers.
//!
//! The standard library has no calendar, and a whole date crate is not needed to print a
//! date: [`civil_from_days`] is the well-known days-to-civil conversion on the proleptic
//! Gregorian calendar, exact for every `i64` second a packet can carry.

use spoor_core::Micros;

const SECS_PER_DAY: i64 = 86_400;

/// A UTC instant split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

impl UtcTime {
    pub fn from_micros(t: Micros) -> UtcTime {
        let secs = t.secs();
        let days = secs.div_euclid(SECS_PER_DAY);
        let in_day = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            micros: t.subsec_micros(),
        }
    }

    /// `2023-11-14`
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `2023-11-14 22:13:20.123456` (Maltrail's event time).
    pub fn maltrail(&self) -> String {
        format!(
            "{} {:02}:{:02}:{:02}.{:06}",
            self.date(),
            self.hour,
            self.minute,
            self.second,
            self.micros
        )
    }

    /// `2023-11-14T22:13:20.123456+0000` (Suricata EVE's timestamp).
    pub fn eve(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}.{:06}+0000",
            self.date(),
            self.hour,
            self.minute,
            self.second,
            self.micros
        )
    }

    /// `2023-11-14T22:13:20.123456Z` (RFC 5424 / RFC 3339).
    pub fn rfc3339(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}.{:06}Z",
            self.date(),
            self.hour,
            self.minute,
            self.second,
            self.micros
        )
    }

    /// `Nov 14 22:13:20`, `Nov  4 ...` (RFC 3164: no year, day padded with a space).
    pub fn bsd_syslog(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[(self.month - 1) as usize],
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        let t = UtcTime::from_micros(Micros::from_secs_micros(1_700_000_000, 123_456));
        assert_eq!(t.maltrail(), "2023-11-14 22:13:20.123456");
        assert_eq!(t.eve(), "2023-11-14T22:13:20.123456+0000");
        assert_eq!(t.bsd_syslog(), "Nov 14 22:13:20");
        let before_epoch = UtcTime::from_micros(Micros(-1));
        assert_eq!(before_epoch.maltrail(), "1969-12-31 23:59:59.999999");
        let early = UtcTime::from_micros(Micros::from_secs_micros(1_699_056_000, 0));
        assert_eq!(early.bsd_syslog(), "Nov  4 00:00:00");
    }

    #[test]
    fn every_day_round_trips_through_a_naive_calendar() {
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..200_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
