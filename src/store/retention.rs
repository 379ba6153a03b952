//! Which generations of an archive to keep, with restic's `forget` rules: the last N, and the
//! newest of each of the last D days, W ISO weeks, M months and Y years that have one; the
//! newest archive always; an archive kept by any rule stays. Pure: stamps in, reasons out.

use std::fmt;

/// How many of each kind to keep; 0 turns a rule off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Policy {
    /// Whether any rule beyond `keep` is on.
    pub fn has_periods(&self) -> bool {
        // Not a sum: four large counts would wrap to 0 and keep nothing.
        [self.daily, self.weekly, self.monthly, self.yearly]
            .iter()
            .any(|count| *count > 0)
    }

    /// Whether older generations are kept at all.
    pub fn keeps_generations(&self) -> bool {
        self.last > 1 || self.has_periods()
    }

    /// `keep 3, keep_daily 7`: the rules that are on, for log lines (`keep 1`, the newest
    /// alone, goes without saying).
    pub fn describe(&self) -> String {
        let rules = [
            ("keep", if self.last > 1 { self.last } else { 0 }),
            ("keep_daily", self.daily),
            ("keep_weekly", self.weekly),
            ("keep_monthly", self.monthly),
            ("keep_yearly", self.yearly),
        ];
        let on: Vec<String> = rules
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(rule, count)| format!("{rule} {count}"))
            .collect();
        on.join(", ")
    }
}

/// Why a generation is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Newest,
    Last,
    Daily(String),
    Weekly(String),
    Monthly(String),
    Yearly(String),
    /// A full that a kept level-1 (of this stamp) needs.
    Needed(String),
    /// The archive in place, which only the next backup replaces.
    InPlace,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Newest => f.write_str("newest"),
            Reason::Last => f.write_str("last"),
            Reason::Daily(day) => write!(f, "daily {day}"),
            Reason::Weekly(week) => write!(f, "weekly {week}"),
            Reason::Monthly(month) => write!(f, "monthly {month}"),
            Reason::Yearly(year) => write!(f, "yearly {year}"),
            Reason::Needed(stamp) => write!(f, "needed by {stamp}"),
            Reason::InPlace => f.write_str("in place"),
        }
    }
}

/// A generation: its file and its local `yyyy-mm-dd_hhmmss` stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub file: Vec<u8>,
    pub stamp: String,
}

/// The ISO week `yyyy-Www` of a `yyyy-mm-dd…` stamp.
fn iso_week(stamp: &str) -> Option<String> {
    let year: i32 = stamp.get(..4)?.parse().ok()?;
    let month: u8 = stamp.get(5..7)?.parse().ok()?;
    let day: u8 = stamp.get(8..10)?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let (iso_year, week, _) = date.to_iso_week_date();
    Some(format!("{iso_year}-W{week:02}"))
}

/// A period rule: how many to keep, the period of a stamp, and the reason it gives.
type Period = (u32, fn(&str) -> Option<String>, fn(String) -> Reason);

/// For each of `generations` (newest first), the reasons it is kept; none means it goes.
pub fn choose(generations: &[Generation], policy: &Policy) -> Vec<Vec<Reason>> {
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); generations.len()];
    if let Some(first) = reasons.first_mut() {
        first.push(Reason::Newest);
    }
    let last = usize::try_from(policy.last).unwrap_or(usize::MAX);
    for kept in reasons.iter_mut().take(last).skip(1) {
        kept.push(Reason::Last);
    }
    let periods: [Period; 4] = [
        (
            policy.daily,
            |s| s.get(..10).map(str::to_owned),
            Reason::Daily,
        ),
        (policy.weekly, iso_week, Reason::Weekly),
        (
            policy.monthly,
            |s| s.get(..7).map(str::to_owned),
            Reason::Monthly,
        ),
        (
            policy.yearly,
            |s| s.get(..4).map(str::to_owned),
            Reason::Yearly,
        ),
    ];
    for (count, period_of, reason) in periods {
        let mut seen: Option<String> = None;
        let mut left = count;
        for (generation, kept) in generations.iter().zip(reasons.iter_mut()) {
            if left == 0 {
                break;
            }
            let Some(period) = period_of(&generation.stamp) else {
                continue;
            };
            if seen.as_ref() != Some(&period) {
                kept.push(reason(period.clone()));
                seen = Some(period);
                left -= 1;
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generations(stamps: &[&str]) -> Vec<Generation> {
        stamps
            .iter()
            .map(|stamp| Generation {
                file: format!("d.{stamp}.tar").into_bytes(),
                stamp: (*stamp).to_owned(),
            })
            .collect()
    }

    fn kept(stamps: &[&str], policy: Policy) -> Vec<String> {
        let generations = generations(stamps);
        choose(&generations, &policy)
            .iter()
            .map(|reasons| {
                reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect()
    }

    #[test]
    fn counts_that_would_wrap_when_added_still_turn_the_rules_on() {
        let policy = Policy {
            daily: u32::MAX,
            weekly: 1,
            ..Policy::default()
        };
        assert!(policy.has_periods());
        assert!(policy.keeps_generations());
    }

    #[test]
    fn daily_keeps_the_newest_of_each_of_the_last_days_that_have_one() {
        let stamps = [
            "2026-11-29_033000",
            "2026-11-28_153000",
            "2026-11-28_033000",
            "2026-11-26_033000",
            "2026-11-25_033000",
        ];
        let policy = Policy {
            daily: 3,
            ..Policy::default()
        };
        assert_eq!(
            kept(&stamps, policy),
            [
                "newest, daily 2026-11-29",
                "daily 2026-11-28",
                "",
                "daily 2026-11-26",
                ""
            ]
        );
    }

    #[test]
    fn rules_combine_as_a_union_and_the_newest_always_stays() {
        let stamps = [
            "2026-11-29_033000",
            "2026-11-22_033000",
            "2026-10-31_033000",
            "2026-08-15_033000",
            "2025-12-31_033000",
        ];
        let policy = Policy {
            last: 2,
            weekly: 2,
            monthly: 3,
            yearly: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&stamps, policy),
            [
                "newest, weekly 2026-W48, monthly 2026-11, yearly 2026",
                "last, weekly 2026-W47",
                "monthly 2026-10",
                "monthly 2026-08",
                "yearly 2025"
            ]
        );
        assert_eq!(kept(&stamps, Policy::default())[0], "newest");
        assert_eq!(kept(&stamps, Policy::default())[1], "");
    }

    #[test]
    fn iso_weeks_cross_years_and_reach_53() {
        assert_eq!(iso_week("2026-12-31_000000").unwrap(), "2026-W53");
        assert_eq!(iso_week("2027-01-01_000000").unwrap(), "2026-W53");
        assert_eq!(iso_week("2027-01-04_000000").unwrap(), "2027-W01");
        assert_eq!(iso_week("2025-12-29_000000").unwrap(), "2026-W01");
        // Both ends of a DST change are the same local day.
        let stamps = [
            "2026-03-29_033000",
            "2026-03-29_013000",
            "2026-03-28_033000",
        ];
        let policy = Policy {
            daily: 2,
            ..Policy::default()
        };
        assert_eq!(
            kept(&stamps, policy),
            ["newest, daily 2026-03-29", "", "daily 2026-03-28"]
        );
    }

    #[test]
    fn rules_in_force_are_named() {
        let policy = Policy {
            last: 3,
            daily: 7,
            weekly: 4,
            ..Policy::default()
        };
        assert_eq!(policy.describe(), "keep 3, keep_daily 7, keep_weekly 4");
        assert!(policy.keeps_generations());
        assert!(
            !Policy {
                last: 1,
                ..Policy::default()
            }
            .keeps_generations()
        );
    }
}
