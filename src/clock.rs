//! Local wall-clock time: the one place that asks the C library for the zone offset (TZ honoured).
//!
//! Everything else works on [`LocalTime`] values, so the scheduling core and the log format
//! can be tested with any instant and any offset.

use std::time::{SystemTime, UNIX_EPOCH};
use time::{OffsetDateTime, UtcOffset};

/// An instant together with the local zone offset in force at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// Nanoseconds within that second.
    pub nanos: u32,
    /// Offset of local time from UTC, in seconds (east positive).
    pub offset: i32,
}

impl LocalTime {
    /// Reads the system clock and the local zone offset for that instant.
    pub fn now() -> LocalTime {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let unix = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
        LocalTime {
            unix,
            nanos: since_epoch.subsec_nanos(),
            offset: crate::sys::time::local_offset_at(unix),
        }
    }

    /// The instant `unix` (whole seconds) with the local offset in force then.
    pub fn at(unix: i64) -> LocalTime {
        LocalTime {
            unix,
            nanos: 0,
            offset: crate::sys::time::local_offset_at(unix),
        }
    }

    /// `yyyy-mm-dd hh:mm:ss` in local time, for status screens; `@<seconds>` for an instant
    /// no calendar date can show (a crafted mtime in year 9999 seen from UTC+9).
    pub fn date_time(&self) -> String {
        let Some(t) = self.to_datetime() else {
            return self.raw_seconds();
        };
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `@<seconds since the epoch>`, as `date -d @N` takes it.
    fn raw_seconds(&self) -> String {
        format!("@{}", self.unix)
    }

    /// Local wall-clock seconds since the epoch: what a clock on the wall would show, as a number.
    pub fn wall_seconds(&self) -> i64 {
        self.unix.saturating_add(i64::from(self.offset))
    }

    /// The local wall-clock minute, counted from the epoch. Consecutive minutes differ by one;
    /// a DST change or a clock step shows up as a jump.
    pub fn wall_minute(&self) -> i64 {
        self.wall_seconds().div_euclid(60)
    }

    /// Milliseconds from this instant until the next local minute boundary (1..=60_000).
    pub fn millis_to_next_minute(&self) -> u64 {
        let into_minute =
            self.wall_seconds().rem_euclid(60) as u64 * 1000 + u64::from(self.nanos) / 1_000_000;
        60_000 - into_minute.min(59_999)
    }

    /// The local date and time as a calendar value, if it lies within the years 0 to 9999.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        let offset = UtcOffset::from_whole_seconds(self.offset).unwrap_or(UtcOffset::UTC);
        OffsetDateTime::from_unix_timestamp(self.unix)
            .ok()?
            .checked_to_offset(offset)
    }

    /// `dd/mm/yyyy hh:mm`, the stamp the spec's log lines carry.
    pub fn log_stamp(&self) -> String {
        let Some(t) = self.to_datetime() else {
            return self.raw_seconds();
        };
        format!(
            "{:02}/{:02}/{:04} {:02}:{:02}",
            t.day(),
            u8::from(t.month()),
            t.year(),
            t.hour(),
            t.minute()
        )
    }
}

/// `yyyy-mm-dd hh:mm` of a wall-clock minute number.
pub fn wall_minute_text(wall_minute: i64) -> String {
    let wall = LocalTime {
        unix: wall_minute.saturating_mul(60),
        nanos: 0,
        offset: 0,
    };
    let mut text = wall.date_time();
    if !text.starts_with('@') {
        text.truncate(text.len() - 3);
    }
    text
}

/// `dd/mm/yyyy hh:mm`, the log lines' stamp, of a wall-clock minute number.
pub fn wall_minute_log_stamp(wall_minute: i64) -> String {
    LocalTime {
        unix: wall_minute.saturating_mul(60),
        nanos: 0,
        offset: 0,
    }
    .log_stamp()
}

/// The proleptic Gregorian `(year, month, day)` of day `days` since 1970-01-01, for any
/// day whose year fits an `i32` (Howard Hinnant's `civil_from_days`); `None` beyond.
pub fn civil_date(days: i64) -> Option<(i64, u32, u32)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).ok()?;
    let month = u32::try_from(if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    })
    .ok()?;
    let year = year_of_era.checked_add(era.checked_mul(400)?)? + i64::from(month <= 2);
    i32::try_from(year).ok()?;
    Some((year, month, day))
}

/// The wall-clock minute number of `dd/mm/yyyy hh:mm` (the log lines' stamp, as `--as-of`
/// takes it), if it is one.
pub fn wall_minute_of_stamp(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once(' ')?;
    let mut parts = date.split('/');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let (hour, minute) = clock.split_once(':')?;
    let shaped = [(day, 2), (month, 2), (year, 4), (hour, 2), (minute, 2)]
        .iter()
        .all(|(part, len)| part.len() == *len && part.bytes().all(|b| b.is_ascii_digit()));
    if !shaped || parts.next().is_some() {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let (hour, minute): (i64, i64) = (hour.parse().ok()?, minute.parse().ok()?);
    if hour > 23 || minute > 59 {
        return None;
    }
    // Julian day 2440588 is 1970-01-01.
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    Some(days * 1440 + hour * 60 + minute)
}

/// Local calendar days from `earlier` to `later`: 1 from any time of one day to any time of
/// the next.
pub fn days_between(earlier: &LocalTime, later: &LocalTime) -> i64 {
    later.wall_seconds().div_euclid(86_400) - earlier.wall_seconds().div_euclid(86_400)
}

/// Minute of the day (0..1440) of a wall-clock minute number.
pub fn minute_of_day(wall_minute: i64) -> u16 {
    u16::try_from(wall_minute.rem_euclid(24 * 60)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_stamps_read_as_wall_minutes() {
        let minute = wall_minute_of_stamp("01/12/2026 03:05").unwrap();
        assert_eq!(wall_minute_log_stamp(minute), "01/12/2026 03:05");
        for bad in [
            "1/12/2026 03:05",
            "31/02/2026 03:05",
            "01/12/2026 24:00",
            "01/12/2026",
            "01/12/2026 03:05 x",
        ] {
            assert_eq!(wall_minute_of_stamp(bad), None, "{bad}");
        }
        let at = |unix| LocalTime {
            unix,
            nanos: 0,
            offset: 3600,
        };
        assert_eq!(days_between(&at(82_799), &at(82_800)), 1, "midnight local");
        assert_eq!(days_between(&at(0), &at(82_799)), 0);
    }

    #[test]
    fn civil_dates_reach_any_year_gnu_tar_shows() {
        assert_eq!(civil_date(0), Some((1970, 1, 1)));
        assert_eq!(civil_date(-1), Some((1969, 12, 31)));
        assert_eq!(civil_date(11_016), Some((2000, 2, 29)));
        // As `TZ=UTC tar -tvf` shows mtimes -100000000000 and 1000000000000.
        assert_eq!(
            civil_date((-100_000_000_000i64).div_euclid(86_400)),
            Some((-1199, 2, 15))
        );
        assert_eq!(civil_date(1_000_000_000_000 / 86_400), Some((33658, 9, 27)));
        assert_eq!(civil_date(i64::MAX / 86_400), None);
        for days in (-800_000..800_000).step_by(997) {
            let date = time::Date::from_julian_day(2_440_588 + days).unwrap();
            assert_eq!(
                civil_date(i64::from(days)),
                Some((
                    i64::from(date.year()),
                    u32::from(u8::from(date.month())),
                    u32::from(date.day())
                ))
            );
        }
    }

    #[test]
    fn log_stamp_uses_the_offset() {
        // 2026-01-29 15:07:30 UTC, seen from UTC+1 (Paris winter) and UTC+5:30 (India).
        let paris = LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        };
        assert_eq!(paris.log_stamp(), "29/01/2026 16:07");
        let india = LocalTime {
            offset: 5 * 3600 + 1800,
            ..paris
        };
        assert_eq!(india.log_stamp(), "29/01/2026 20:37");
    }

    #[test]
    fn date_time_and_wall_minute_text_are_local() {
        let paris = LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        };
        assert_eq!(paris.date_time(), "2026-01-29 16:07:30");
        assert_eq!(wall_minute_text(paris.wall_minute()), "2026-01-29 16:07");
    }

    #[test]
    fn times_beyond_the_calendar_are_shown_as_raw_seconds() {
        // 9999-12-31 23:00 UTC is in year 10000 in Tokyo.
        let tokyo = LocalTime {
            unix: 253_402_297_200,
            nanos: 0,
            offset: 9 * 3600,
        };
        assert_eq!(tokyo.date_time(), "@253402297200");
        assert_eq!(tokyo.log_stamp(), "@253402297200");
        let far = LocalTime {
            unix: i64::MAX,
            nanos: 0,
            offset: 0,
        };
        assert_eq!(far.date_time(), format!("@{}", i64::MAX));
        assert_eq!(
            wall_minute_text(i64::MAX / 60),
            format!("@{}", i64::MAX / 60 * 60)
        );
    }

    #[test]
    fn wall_minute_and_minute_of_day() {
        let t = LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        };
        assert_eq!(minute_of_day(t.wall_minute()), 16 * 60 + 7);
        let before_epoch = LocalTime {
            unix: -30,
            nanos: 0,
            offset: 0,
        };
        assert_eq!(before_epoch.wall_minute(), -1);
        assert_eq!(minute_of_day(before_epoch.wall_minute()), 23 * 60 + 59);
    }

    #[test]
    fn millis_to_next_minute_counts_from_the_local_boundary() {
        let t = LocalTime {
            unix: 1_769_699_250,
            nanos: 250_000_000,
            offset: 1800,
        };
        assert_eq!(t.millis_to_next_minute(), 29_750);
        let on_boundary = LocalTime {
            unix: 1_769_699_220,
            nanos: 0,
            offset: 0,
        };
        assert_eq!(on_boundary.millis_to_next_minute(), 60_000);
    }
}
