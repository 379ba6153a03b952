//! When a schedule starts: its time of day, the days it runs on (`days`, `monthdays`, as cron
//! reads them) and its per-host offset (`splay`). Pure: wall-clock minutes in, decisions out.

use crate::clock::{civil_date, minute_of_day};

const MINUTES_PER_DAY: i64 = 24 * 60;
/// Longest `splay`, in seconds: an hour, so a start never moves to another day's rules.
pub const MAX_SPLAY_SECONDS: u32 = 3600;
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The days a schedule runs on: weekdays (bit 0 Monday … bit 6 Sunday) and days of the month
/// (bit d for day d); none of either means every day. With both, a day that matches either
/// runs, as in cron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Days {
    pub weekdays: u8,
    pub monthdays: u32,
}

/// Days in `month` of `year` (proleptic Gregorian).
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Days {
    /// Whether it runs on the local date of wall-clock minute `wall`. A day of the month that
    /// a month lacks (31 in April) means its last day, and `[30, 31]` runs once there.
    pub fn runs_on(&self, wall: i64) -> bool {
        if self.weekdays == 0 && self.monthdays == 0 {
            return true;
        }
        let day_number = wall.div_euclid(MINUTES_PER_DAY);
        // 1970-01-01 was a Thursday: weekday 3 counting from Monday.
        let weekday = (day_number + 3).rem_euclid(7);
        let on_weekday = self.weekdays & (1 << weekday) != 0;
        let on_monthday = civil_date(day_number).is_some_and(|(year, month, day)| {
            let last = days_in_month(year, month);
            self.monthdays & (1 << day) != 0 || (day == last && self.monthdays >> (last + 1) != 0)
        });
        match (self.weekdays != 0, self.monthdays != 0) {
            (true, true) => on_weekday || on_monthday,
            (true, false) => on_weekday,
            _ => on_monthday,
        }
    }

    /// `"mon-fri"`, `"mon,thu"`, `"sat-sun"`, or the names of an array joined by commas.
    pub fn parse_weekdays(text: &str) -> Result<u8, String> {
        let index = |name: &str| {
            WEEKDAYS
                .iter()
                .position(|day| day.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| format!("{} is not a weekday (mon … sun)", name.trim()))
        };
        let mut bits = 0u8;
        for part in text.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (index(from)?, index(to)?);
                    // A range may wrap: fri-mon is fri, sat, sun, mon.
                    let mut day = from;
                    loop {
                        bits |= 1 << day;
                        if day == to {
                            break;
                        }
                        day = (day + 1) % 7;
                    }
                }
                None => bits |= 1 << index(part)?,
            }
        }
        Ok(bits)
    }

    /// Days of the month, each 1 to 31.
    pub fn monthdays_of(days: &[i64]) -> Result<u32, String> {
        days.iter()
            .try_fold(0u32, |bits, &day| match u32::try_from(day) {
                Ok(day @ 1..=31) => Ok(bits | 1 << day),
                _ => Err(format!("{day} is not a day of the month (1 to 31)")),
            })
    }

    /// The weekdays for messages: `mon,thu`.
    pub fn weekday_names(bits: u8) -> String {
        WEEKDAYS
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, day)| *day)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Whether a plan line at `minute_of_day` can start in wall minute `wall`, whatever its days
/// and splay: its time lies at most a splay (under an hour) before `wall`.
pub fn may_start_at(plan_minute: u16, wall: i64) -> bool {
    let late =
        (i64::from(minute_of_day(wall)) - i64::from(plan_minute)).rem_euclid(MINUTES_PER_DAY);
    late < i64::from(MAX_SPLAY_SECONDS / 60)
}

/// When one plan line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    /// The plan line's time.
    pub minute_of_day: u16,
    pub days: Days,
    /// The host's offset from that time: whole minutes, then seconds to wait in that minute.
    pub shift_minutes: u16,
    pub shift_seconds: u8,
}

impl When {
    /// Every day at `minute_of_day`, no offset: the spec's schedule.
    pub fn every_day(minute_of_day: u16) -> When {
        When {
            minute_of_day,
            days: Days::default(),
            shift_minutes: 0,
            shift_seconds: 0,
        }
    }

    /// With the offset of `offset_seconds` (below [`MAX_SPLAY_SECONDS`]).
    pub fn shifted(self, offset_seconds: u32) -> When {
        let seconds = offset_seconds.min(MAX_SPLAY_SECONDS - 1);
        When {
            shift_minutes: u16::try_from(seconds / 60).unwrap_or(0),
            shift_seconds: u8::try_from(seconds % 60).unwrap_or(0),
            ..self
        }
    }

    /// The minute of the day it starts in, the offset added.
    fn start_minute(&self) -> u16 {
        u16::try_from(
            (i64::from(self.minute_of_day) + i64::from(self.shift_minutes))
                .rem_euclid(MINUTES_PER_DAY),
        )
        .unwrap_or(0)
    }

    /// Whether it starts in wall-clock minute `wall`: its minute, on a day it runs (the
    /// day the plan time fell on, before the offset).
    pub fn due_at(&self, wall: i64) -> bool {
        minute_of_day(wall) == self.start_minute()
            && self.days.runs_on(wall - i64::from(self.shift_minutes))
    }

    /// The first wall minute after `now` in which it starts; `None` if no day in the next
    /// 400 matches (which no valid setting makes).
    pub fn next_after(&self, now: i64) -> Option<i64> {
        let first = super::timing::next_due(now, self.start_minute());
        (0..400)
            .map(|days| first + days * MINUTES_PER_DAY)
            .find(|&wall| self.due_at(wall))
    }

    /// The most recent wall minute at or before `now` in which it started or would have.
    pub fn most_recent(&self, now: i64) -> Option<i64> {
        let first = super::timing::most_recent_due(now, self.start_minute());
        (0..400)
            .map(|days| first - days * MINUTES_PER_DAY)
            .find(|&wall| self.due_at(wall))
    }

    /// Catch-up after downtime: the start it missed, if it should run once now. That is its
    /// most recent start, when it lies before the current minute (one due now is the normal
    /// tick's) and after its last recorded run, or when none is recorded: only within the
    /// schedule's own period, however long the service was down.
    pub fn missed(&self, now: i64, last_started: Option<i64>) -> Option<i64> {
        let due = self.most_recent(now)?;
        (due < now && last_started.is_none_or(|started| started < due)).then_some(due)
    }
}

/// What the settings say of a schedule's starts: its days and the `splay` it is spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    pub days: Days,
    pub splay_seconds: u32,
}

impl Timing {
    /// When `schedule` starts on the host `host` (see [`crate::host::identity`]).
    pub fn when(&self, schedule: &super::Schedule, host: &[u8]) -> When {
        let when = When {
            days: self.days,
            ..When::every_day(schedule.minute_of_day)
        };
        when.shifted(splay_offset(host, &schedule.name, self.splay_seconds))
    }
}

/// A host's offset for one archive name in `[0, splay)` seconds, from a stable identity of
/// the host (`/etc/machine-id`, else its name: pods get new names) and the name, so hosts
/// with one plan spread their starts and each keeps its own time, run after run.
pub fn splay_offset(host: &[u8], name: &[u8], splay_seconds: u32) -> u32 {
    if splay_seconds == 0 {
        return 0;
    }
    // FNV-1a, 64 bits: stable across versions and machines, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in host.iter().chain(b"\0").chain(name) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(splay_seconds.min(MAX_SPLAY_SECONDS))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::wall_minute_of_stamp;

    fn at(stamp: &str) -> i64 {
        wall_minute_of_stamp(stamp).unwrap()
    }

    /// The minutes `when` starts in, as a fresh scheduler woken at each of `clock` runs it.
    fn starts(when: &When, clock: &[i64]) -> Vec<i64> {
        let mut scheduler = crate::plan::timing::Scheduler::new();
        clock
            .iter()
            .flat_map(|&now| {
                let due = scheduler.wake(now);
                due.walls(now)
                    .filter(|&wall| when.due_at(wall))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn weekdays(text: &str) -> Days {
        Days {
            weekdays: Days::parse_weekdays(text).unwrap(),
            monthdays: 0,
        }
    }

    #[test]
    fn weekday_ranges_lists_and_wrapping_ranges_parse() {
        assert_eq!(Days::parse_weekdays("mon-fri").unwrap(), 0b001_1111);
        assert_eq!(Days::parse_weekdays("mon,thu").unwrap(), 0b000_1001);
        assert_eq!(Days::parse_weekdays("fri-mon").unwrap(), 0b111_0001);
        assert_eq!(Days::weekday_names(0b000_1001), "mon,thu");
        assert!(Days::parse_weekdays("funday").is_err());
        assert!(Days::monthdays_of(&[0]).is_err() && Days::monthdays_of(&[32]).is_err());
    }

    #[test]
    fn a_week_of_mon_and_thu_runs_twice_and_next_runs_skip_to_them() {
        // Tuesday 1 December 2026.
        let when = When {
            days: weekdays("mon,thu"),
            ..When::every_day(3 * 60)
        };
        let week: Vec<bool> = (0..7)
            .map(|day| when.due_at(at("01/12/2026 03:00") + day * MINUTES_PER_DAY))
            .collect();
        assert_eq!(week, [false, false, true, false, false, false, true]);
        assert_eq!(
            when.next_after(at("01/12/2026 03:00")),
            Some(at("03/12/2026 03:00"))
        );
        assert_eq!(
            when.next_after(at("03/12/2026 03:00")),
            Some(at("07/12/2026 03:00"))
        );
        assert_eq!(
            when.most_recent(at("02/12/2026 12:00")),
            Some(at("30/11/2026 03:00"))
        );
    }

    #[test]
    fn month_ends_run_once_on_the_last_day_and_either_rule_runs_a_day() {
        let ends = When {
            days: Days {
                weekdays: 0,
                monthdays: Days::monthdays_of(&[30, 31]).unwrap(),
            },
            ..When::every_day(0)
        };
        let february: Vec<i64> = (0..29)
            .map(|day| at("01/02/2027 00:00") + day * MINUTES_PER_DAY)
            .filter(|&wall| ends.due_at(wall))
            .collect();
        assert_eq!(february, [at("28/02/2027 00:00")], "once, on the 28th");
        assert!(
            ends.due_at(at("29/02/2028 00:00")),
            "a leap year's last day"
        );
        assert!(!ends.due_at(at("28/02/2028 00:00")));
        assert!(ends.due_at(at("30/04/2027 00:00")));
        assert!(ends.due_at(at("30/05/2027 00:00")) && ends.due_at(at("31/05/2027 00:00")));
        let either = When {
            days: Days {
                weekdays: Days::parse_weekdays("sun").unwrap(),
                monthdays: Days::monthdays_of(&[1]).unwrap(),
            },
            ..When::every_day(0)
        };
        assert!(either.due_at(at("01/12/2026 00:00")), "the 1st, a Tuesday");
        assert!(either.due_at(at("06/12/2026 00:00")), "a Sunday");
        assert!(!either.due_at(at("02/12/2026 00:00")));
    }

    #[test]
    fn an_offset_moves_the_start_and_keeps_the_days_of_the_plan_time() {
        // 23:50 on Mondays, 15 minutes late: due at 00:05 on Tuesdays.
        let when = When {
            days: weekdays("mon"),
            ..When::every_day(23 * 60 + 50)
        }
        .shifted(15 * 60 + 7);
        assert_eq!((when.shift_minutes, when.shift_seconds), (15, 7));
        assert!(
            when.due_at(at("01/12/2026 00:05")),
            "Monday 30 November's run"
        );
        assert!(!when.due_at(at("30/11/2026 23:50")));
        assert_eq!(
            when.next_after(at("01/12/2026 00:05")),
            Some(at("08/12/2026 00:05"))
        );
        // Catch-up within its own period only: a week down still makes one run.
        assert_eq!(
            when.missed(at("05/12/2026 12:00"), Some(at("24/11/2026 00:05"))),
            Some(at("01/12/2026 00:05"))
        );
        assert_eq!(
            when.missed(at("05/12/2026 12:00"), Some(at("01/12/2026 00:05"))),
            None
        );
    }

    #[test]
    fn a_start_is_never_outside_the_hour_may_start_at_allows() {
        for shift in [0, 59, 60 * 30 + 1, MAX_SPLAY_SECONDS - 1] {
            let when = When::every_day(23 * 60 + 45).shifted(shift);
            for wall in at("01/12/2026 00:00")..at("03/12/2026 00:00") {
                if when.due_at(wall) {
                    assert!(may_start_at(23 * 60 + 45, wall), "{shift} s at {wall}");
                }
            }
        }
        assert!(!may_start_at(3 * 60, at("01/12/2026 04:00")));
        assert!(may_start_at(3 * 60, at("01/12/2026 03:59")));
    }

    #[test]
    fn splay_offsets_are_stable_spread_and_below_the_splay() {
        let offsets: Vec<u32> = (0..500)
            .map(|host| splay_offset(format!("host-{host}").as_bytes(), b"docs", 600))
            .collect();
        assert!(offsets.iter().all(|&offset| offset < 600));
        assert_eq!(splay_offset(b"host-1", b"docs", 600), offsets[1], "stable");
        let distinct: std::collections::HashSet<u32> = offsets.iter().map(|o| o / 60).collect();
        assert_eq!(
            distinct.len(),
            10,
            "every minute of the ten gets some hosts"
        );
        let busiest = (0..10)
            .map(|minute| offsets.iter().filter(|&&o| o / 60 == minute).count())
            .max()
            .unwrap();
        assert!(
            busiest < 80,
            "no minute gets more than 16 % of 500 hosts: {busiest}"
        );
        assert_eq!(splay_offset(b"h", b"docs", 0), 0);
    }

    #[test]
    fn dst_days_run_a_sunday_schedule_once_in_the_skipped_and_the_repeated_hour() {
        let when = When {
            days: weekdays("sun"),
            ..When::every_day(2 * 60 + 30)
        };
        // Spring forward (Europe, 29 March 2026): the clock shows 01:59, then 03:00.
        let spring = [
            at("29/03/2026 01:58"),
            at("29/03/2026 01:59"),
            at("29/03/2026 03:00"),
        ];
        assert_eq!(
            starts(&when, &spring),
            [at("29/03/2026 02:30")],
            "once, late"
        );
        // Fall back (25 October 2026): 02:00 to 02:59 twice; the second pass runs nothing.
        let hour: Vec<i64> = (at("25/10/2026 02:00")..=at("25/10/2026 02:59")).collect();
        let twice: Vec<i64> = hour.iter().chain(hour.iter()).copied().collect();
        assert_eq!(starts(&when, &twice), [at("25/10/2026 02:30")], "once");
        // And not on the Saturday before either.
        assert!(!when.due_at(at("24/10/2026 02:30")));
    }

    #[test]
    fn with_an_offset_a_day_of_minutes_and_a_restart_in_its_minute_start_it_exactly_once() {
        let when = When::every_day(23 * 60 + 30).shifted(45 * 60 + 10);
        let day: Vec<i64> = (at("01/12/2026 12:00")..at("02/12/2026 12:00")).collect();
        assert_eq!(
            starts(&when, &day),
            [at("02/12/2026 00:15")],
            "23:30 plus 45 min 10 s"
        );
        // A missed start is caught up once, by its shifted time, and not after it ran.
        assert_eq!(
            when.missed(at("02/12/2026 06:00"), None),
            Some(at("02/12/2026 00:15"))
        );
        assert_eq!(
            when.missed(at("02/12/2026 06:00"), Some(at("02/12/2026 00:15"))),
            None
        );
        assert_eq!(
            when.missed(at("02/12/2026 00:15"), None),
            None,
            "due now: the tick's"
        );
    }
}
