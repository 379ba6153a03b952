//! Which plan times are due at each wake-up: exactly once per minute, catching up on skipped
//! minutes and never repeating one when the clock goes back. Pure: time comes in as an argument.
//!
//! The rules follow cronie's: time is counted in local wall-clock minutes, so a DST change
//! looks like a clock step. Forward steps of up to three hours (spring forward, a suspend, a
//! long stall) run the skipped minutes once, late; backward steps of up to three hours (fall
//! back) run nothing until the clock passes the last minute already run; anything larger is
//! a deliberate clock change and resynchronises without catching up.

/// Largest clock step, in minutes, that is caught up (forward) or waited out (backward).
pub const MAX_STEP_MINUTES: i64 = 3 * 60;

/// The most recent wall-clock minute at or before `now` whose time of day is `minute`.
pub fn most_recent_due(now: i64, minute: u16) -> i64 {
    now - (i64::from(crate::clock::minute_of_day(now)) - i64::from(minute)).rem_euclid(24 * 60)
}

/// The first wall-clock minute after `now` whose time of day is `minute`.
pub fn next_due(now: i64, minute: u16) -> i64 {
    most_recent_due(now, minute) + 24 * 60
}

/// Whether a wake-up is one after which missed schedules are caught up: the service's start,
/// and a clock step forward too large to run the minutes in between.
pub fn catches_up(step: Step) -> bool {
    match step {
        Step::Start => true,
        Step::Resync(minutes) => minutes > 0,
        _ => false,
    }
}

/// What a wake-up found, beyond the normal one-minute tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The first check after start-up: only the current minute is due.
    Start,
    /// One minute after the last check, the normal case.
    Tick,
    /// No time passed since the last check (an early or repeated wake-up).
    Same,
    /// The clock moved forward by this many minutes; all of them are due now.
    Late(i64),
    /// The clock moved back by this many minutes; nothing is due until it catches up.
    Back(i64),
    /// The clock jumped by more than [`MAX_STEP_MINUTES`] (signed); only the current minute is due.
    Resync(i64),
}

/// The outcome of one wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Minutes of the day (0..1440) whose schedules run now, oldest first, each at most once.
    pub minutes: Vec<u16>,
    pub step: Step,
}

impl Due {
    /// The wall-clock minutes due, for the `now` the scheduler woke at: they end there, one
    /// after the other.
    pub fn walls(&self, now: i64) -> std::ops::RangeInclusive<i64> {
        let count = i64::try_from(self.minutes.len()).unwrap_or(0);
        (now - count + 1)..=now
    }
}

/// Remembers the last wall-clock minute whose schedules were run.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    last_run: Option<i64>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// The minutes due at wall-clock minute `now` (see [`crate::clock::LocalTime::wall_minute`]).
    pub fn wake(&mut self, now: i64) -> Due {
        let Some(last) = self.last_run else {
            self.last_run = Some(now);
            return Due {
                minutes: vec![crate::clock::minute_of_day(now)],
                step: Step::Start,
            };
        };
        let elapsed = now - last;
        let step = match elapsed {
            0 => Step::Same,
            1 => Step::Tick,
            2..=MAX_STEP_MINUTES => Step::Late(elapsed),
            _ if (-MAX_STEP_MINUTES..0).contains(&elapsed) => Step::Back(-elapsed),
            _ => Step::Resync(elapsed),
        };
        let first_due = match step {
            Step::Same | Step::Back(_) => {
                return Due {
                    minutes: Vec::new(),
                    step,
                };
            }
            Step::Resync(_) => now,
            _ => last + 1,
        };
        self.last_run = Some(now);
        Due {
            minutes: (first_due..=now).map(crate::clock::minute_of_day).collect(),
            step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::LocalTime;

    /// Catch-up of a schedule that runs every day, through [`crate::plan::calendar::When`].
    fn missed_due(now: i64, minute: u16, last_started: Option<i64>) -> Option<i64> {
        crate::plan::calendar::When::every_day(minute).missed(now, last_started)
    }

    fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    /// Wall minute of a day-relative time, on an arbitrary day.
    fn at(h: i64, m: i64) -> i64 {
        20_000 * 1440 + h * 60 + m
    }

    #[test]
    fn catch_up_runs_a_missed_schedule_once_and_never_one_due_now() {
        let due_0330 = hm(3, 30);
        // Powered off over 03:30, booted at 04:30; the last run started yesterday at 03:30.
        let yesterday = at(3, 30) - 1440;
        assert_eq!(
            missed_due(at(4, 30), due_0330, Some(yesterday)),
            Some(at(3, 30))
        );
        // No run recorded at all: it runs too.
        assert_eq!(missed_due(at(4, 30), due_0330, None), Some(at(3, 30)));
        // Off for three days: the most recent due time only, once.
        assert_eq!(
            missed_due(at(4, 30), due_0330, Some(yesterday - 2 * 1440)),
            Some(at(3, 30))
        );
        // Due later today: yesterday's run covered yesterday's time; nothing to catch up.
        assert_eq!(missed_due(at(2, 0), due_0330, Some(yesterday)), None);
        // Started a second time after the catch-up run began: not again.
        assert_eq!(missed_due(at(4, 31), due_0330, Some(at(4, 30))), None);
        // Due this very minute: the tick runs it; catch-up would make it twice.
        assert_eq!(missed_due(at(3, 30), due_0330, Some(yesterday)), None);
        // Just after midnight, a 23:59 schedule that did not run yesterday.
        assert_eq!(
            missed_due(at(0, 5), hm(23, 59), Some(at(23, 59) - 2 * 1440)),
            Some(at(23, 59) - 1440)
        );
    }

    #[test]
    fn catch_up_follows_a_start_and_a_large_forward_jump_only() {
        let mut s = Scheduler::new();
        assert!(catches_up(s.wake(at(10, 0)).step));
        assert!(!catches_up(s.wake(at(10, 1)).step));
        assert!(
            !catches_up(s.wake(at(12, 0)).step),
            "late by 2 h: run in the tick"
        );
        // A jump of 5 hours forward: catch-up on.
        let jump = s.wake(at(17, 0));
        assert_eq!(jump.step, Step::Resync(300));
        assert!(catches_up(jump.step));
        assert!(!catches_up(s.wake(at(11, 0)).step), "a jump back never");
    }

    #[test]
    fn start_up_runs_the_current_minute_only() {
        let mut s = Scheduler::new();
        assert_eq!(
            s.wake(at(16, 7)),
            Due {
                minutes: vec![hm(16, 7)],
                step: Step::Start
            }
        );
    }

    #[test]
    fn each_minute_runs_exactly_once() {
        let mut s = Scheduler::new();
        s.wake(at(16, 7));
        assert_eq!(
            s.wake(at(16, 7)),
            Due {
                minutes: vec![],
                step: Step::Same
            }
        );
        assert_eq!(
            s.wake(at(16, 8)),
            Due {
                minutes: vec![hm(16, 8)],
                step: Step::Tick
            }
        );
        assert_eq!(s.wake(at(16, 8)).minutes, vec![]);
        assert_eq!(s.wake(at(16, 9)).minutes, vec![hm(16, 9)]);
    }

    #[test]
    fn skipped_minutes_run_once_late() {
        let mut s = Scheduler::new();
        s.wake(at(23, 58));
        let due = s.wake(at(0, 2) + 1440);
        assert_eq!(due.step, Step::Late(4));
        assert_eq!(due.minutes, vec![hm(23, 59), hm(0, 0), hm(0, 1), hm(0, 2)]);
        assert_eq!(s.wake(at(0, 2) + 1440).minutes, vec![]);
    }

    #[test]
    fn a_three_hour_step_is_caught_up_and_a_longer_one_resyncs() {
        let mut s = Scheduler::new();
        s.wake(at(10, 0));
        let due = s.wake(at(13, 0));
        assert_eq!(due.step, Step::Late(180));
        assert_eq!(due.minutes.len(), 180);
        assert_eq!(due.minutes.first(), Some(&hm(10, 1)));

        let due = s.wake(at(13, 0) + 181);
        assert_eq!(
            due,
            Due {
                minutes: vec![hm(16, 1)],
                step: Step::Resync(181)
            }
        );
        let due = s.wake(at(9, 0));
        assert_eq!(due.step, Step::Resync(-421));
        assert_eq!(due.minutes, vec![hm(9, 0)]);
        assert_eq!(s.wake(at(9, 1)).minutes, vec![hm(9, 1)]);
    }

    #[test]
    fn a_clock_set_back_never_repeats_a_minute() {
        let mut s = Scheduler::new();
        s.wake(at(12, 0));
        s.wake(at(12, 1));
        assert_eq!(
            s.wake(at(11, 30)),
            Due {
                minutes: vec![],
                step: Step::Back(31)
            }
        );
        for minute in 31..60 {
            assert_eq!(s.wake(at(11, minute)).minutes, vec![], "11:{minute}");
        }
        assert_eq!(s.wake(at(12, 0)).minutes, vec![]);
        assert_eq!(s.wake(at(12, 1)).minutes, vec![]);
        assert_eq!(s.wake(at(12, 2)).minutes, vec![hm(12, 2)]);
    }

    /// Europe/Paris, 29 March 2026: at 01:00 UTC local time goes from 01:59 CET to 03:00 CEST.
    #[test]
    fn dst_spring_forward_runs_the_missing_hour_once_at_three() {
        const CHANGE: i64 = 1_774_746_000; // 2026-03-29 01:00:00 UTC
        let before = LocalTime {
            unix: CHANGE - 60,
            nanos: 0,
            offset: 3600,
        };
        let after = LocalTime {
            unix: CHANGE,
            nanos: 0,
            offset: 7200,
        };
        assert_eq!(before.log_stamp(), "29/03/2026 01:59");
        assert_eq!(after.log_stamp(), "29/03/2026 03:00");

        let mut s = Scheduler::new();
        s.wake(before.wall_minute());
        let due = s.wake(after.wall_minute());
        assert_eq!(due.step, Step::Late(61));
        assert!(
            due.minutes.contains(&hm(2, 30)),
            "02:30 does not exist that night; it runs at 03:00"
        );
        assert_eq!(due.minutes.first(), Some(&hm(2, 0)));
        assert_eq!(due.minutes.last(), Some(&hm(3, 0)));
        assert_eq!(due.minutes.len(), 61);
        let next = LocalTime {
            unix: CHANGE + 60,
            nanos: 0,
            offset: 7200,
        };
        assert_eq!(s.wake(next.wall_minute()).minutes, vec![hm(3, 1)]);
    }

    /// Europe/Paris, 25 October 2026: at 01:00 UTC local time goes from 02:59 CEST back to 02:00 CET.
    #[test]
    fn dst_fall_back_runs_the_repeated_hour_once() {
        const CHANGE: i64 = 1_792_890_000; // 2026-10-25 01:00:00 UTC
        let mut s = Scheduler::new();
        let mut runs_of_0230 = 0;
        // From 01:58 CEST through both 02:xx hours to 03:05 CET, one wake-up a real minute.
        for minute in -62..126 {
            let unix = CHANGE + minute * 60;
            let offset = if unix < CHANGE { 7200 } else { 3600 };
            let now = LocalTime {
                unix,
                nanos: 0,
                offset,
            };
            let due = s.wake(now.wall_minute());
            runs_of_0230 += due.minutes.iter().filter(|&&m| m == hm(2, 30)).count();
            if unix == CHANGE {
                assert_eq!(now.log_stamp(), "25/10/2026 02:00");
                assert_eq!(due.step, Step::Back(59));
            }
            if unix == CHANGE + 65 * 60 {
                assert_eq!(now.log_stamp(), "25/10/2026 03:05");
                assert_eq!(due.minutes, vec![hm(3, 5)]);
            }
        }
        assert_eq!(runs_of_0230, 1);
    }
}
