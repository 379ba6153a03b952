//! `backup_manager status`: each schedule's next run and last outcome, and whether the service
//! runs, as text for people and JSON for machines; built from the report's [`Facts`], pure.

use super::{EntryFacts, Facts, ServiceInfo};
use crate::clock::{LocalTime, wall_minute_text};
use crate::layout::PLAN_FILE;
use crate::log::show_bytes;
use crate::store::catalog::{self, OffsiteState};
use crate::store::outcomes::{Ending, Outcome};
use std::fmt::Write;

/// Everything `status` reports, before it is rendered as text or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    service: ServiceInfo,
    base: String,
    schedules: Schedules,
    problems: Vec<String>,
}

/// The plan's entries, or why the plan could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Schedules {
    Unreadable(String),
    Listed(Vec<ScheduleStatus>),
}

/// One plan entry as `status` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScheduleStatus {
    index: usize,
    line: String,
    /// `None` for a malformed line, which never runs.
    valid: Option<ValidSchedule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ValidSchedule {
    folder: String,
    time: String,
    name: String,
    next_run: String,
    missed: Option<String>,
    last: Option<LastRun>,
    /// The recipients' fingerprint of the archive in place, when it is encrypted.
    encrypted_to: Option<String>,
    /// Its offsite copy, when the catalog has one recorded.
    offsite: Option<catalog::Offsite>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LastRun {
    started: LocalTime,
    duration_ms: u64,
    state: LastState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LastState {
    /// In place; `hook_problem` tells how its `on_success` hook failed, if it did.
    Ok {
        size: u64,
        hook_problem: Option<String>,
    },
    Error(String),
    Running(u32),
    Interrupted,
}

const INTERRUPTED: &str = "interrupted: its process ended before the backup did";

/// Minutes after its time before a schedule with no run recorded counts as missed: time for
/// a late check or a queue of busy workers to start it.
const MISSED_AFTER_MINUTES: i64 = 5;

/// The status the facts make; `alive` tells whether a process still exists.
pub fn build(facts: &Facts, alive: &dyn Fn(u32) -> bool) -> Status {
    let service = &facts.service;
    let mut problems = Vec::new();
    if service.pid.is_none() {
        problems.push("the service is not running".to_owned());
    } else if service.stopping {
        problems.push("the service is stopping and runs no new schedule".to_owned());
    }
    let context = Context { facts, alive };
    let schedules = match &facts.plan {
        Err(reason) => {
            problems.push(format!("{PLAN_FILE} can't be read"));
            Schedules::Unreadable(reason.clone())
        }
        Ok(_) => Schedules::Listed(
            facts
                .entries()
                .iter()
                .map(|entry| {
                    let (shown, problem) = context.schedule(entry);
                    problems.extend(problem);
                    shown
                })
                .collect(),
        ),
    };
    Status {
        service: service.clone(),
        base: facts.base.clone(),
        schedules,
        problems,
    }
}

struct Context<'a> {
    facts: &'a Facts,
    alive: &'a dyn Fn(u32) -> bool,
}

impl Context<'_> {
    /// One entry's status, and the problem it adds, if any.
    fn schedule(&self, facts: &EntryFacts) -> (ScheduleStatus, Option<String>) {
        let index = facts.index;
        let line = show_bytes(facts.entry.text);
        let (Some(schedule), Some(next_due)) = (&facts.schedule, facts.next_due) else {
            let problem = format!("schedule {index} is malformed");
            let shown = ScheduleStatus {
                index,
                line,
                valid: None,
            };
            return (shown, Some(problem));
        };
        let missed = self.missed_run(&self.facts.when(schedule), facts.last);
        let last = facts.last.map(|outcome| LastRun {
            started: outcome.started,
            duration_ms: outcome.duration_ms,
            state: match &outcome.ending {
                Ending::Done(size) => LastState::Ok {
                    size: *size,
                    hook_problem: outcome.hook_problem.clone(),
                },
                Ending::Failed(message) => LastState::Error(message.clone()),
                Ending::Running(pid) if (self.alive)(*pid) => LastState::Running(*pid),
                Ending::Running(_) => LastState::Interrupted,
            },
        });
        let offsite_missing = matches!(
            facts.archives.offsite,
            Some(catalog::Offsite {
                state: OffsiteState::Failed { .. } | OffsiteState::Lost,
                ..
            })
        );
        let problem = match (&missed, last.as_ref().map(|last| &last.state)) {
            (Some(due), _) => Some(format!("schedule {index} missed its run of {due}")),
            (None, Some(LastState::Error(_))) => Some(format!("schedule {index} failed last time")),
            (None, Some(LastState::Interrupted)) => {
                Some(format!("schedule {index} was interrupted"))
            }
            (
                None,
                Some(LastState::Ok {
                    hook_problem: Some(problem),
                    ..
                }),
            ) => Some(format!("schedule {index}: {problem}")),
            _ if offsite_missing => Some(format!(
                "schedule {index} has no offsite copy of its newest archive"
            )),
            _ => None,
        };
        let valid = ValidSchedule {
            folder: show_bytes(&schedule.folder),
            time: schedule.time_text(),
            name: show_bytes(&schedule.name),
            next_run: wall_minute_text(next_due),
            missed,
            last,
            encrypted_to: facts.archives.encrypted_to.clone(),
            offsite: facts.archives.offsite.clone(),
        };
        let shown = ScheduleStatus {
            index,
            line,
            valid: Some(valid),
        };
        (shown, problem)
    }

    /// The due time (`yyyy-mm-dd hh:mm`) of a run that should have started and did not: the
    /// service was up at the schedule's most recent time, which is some minutes past, the
    /// plan has not changed since (the line may be new), and no run has started since.
    fn missed_run(
        &self,
        when: &crate::plan::calendar::When,
        last: Option<&Outcome>,
    ) -> Option<String> {
        let since = self.facts.service.since?;
        let wall = self.facts.now.wall_minute();
        let due = when.most_recent(wall)?;
        let plan_unchanged = self
            .facts
            .plan_changed
            .is_some_and(|t| t.wall_minute() < due);
        let started_since_due = last.is_some_and(|o| o.started.wall_minute() >= due);
        (since.wall_minute() <= due
            && plan_unchanged
            && wall >= due + MISSED_AFTER_MINUTES
            && !started_since_due)
            .then(|| wall_minute_text(due))
    }
}

impl Status {
    /// The service runs and nothing failed, was interrupted, was missed or is malformed.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut text = match self.service.pid {
            Some(pid) => format!(
                "backup_service: {}, PID {pid}, since {}\n",
                if self.service.stopping {
                    "stopping (finishing its backups; no new schedule runs)"
                } else {
                    "running"
                },
                self.since()
            ),
            None => "backup_service: not running\n".to_owned(),
        };
        let _ = writeln!(text, "base directory: {}", self.base);
        match &self.schedules {
            Schedules::Unreadable(reason) => {
                let _ = writeln!(text, "{reason}");
            }
            Schedules::Listed(schedules) => {
                for schedule in schedules {
                    schedule.write_text(&mut text);
                }
            }
        }
        if self.healthy() {
            text.push_str("status: ok\n");
        } else {
            let _ = writeln!(
                text,
                "status: needs attention: {}",
                self.problems.join("; ")
            );
        }
        text
    }

    /// The report for machines: one JSON object.
    pub fn json(&self) -> String {
        let mut json = String::from("{");
        match self.service.pid {
            Some(pid) => {
                let _ = write!(
                    json,
                    "\"service\":{{\"running\":true,\"stopping\":{},\"pid\":{pid},\"since\":{}}}",
                    self.service.stopping,
                    crate::log::quoted(&self.since())
                );
            }
            None => json.push_str(
                "\"service\":{\"running\":false,\"stopping\":false,\"pid\":null,\"since\":null}",
            ),
        }
        let _ = write!(
            json,
            ",\"base_dir\":{},\"schedules\":[",
            crate::log::quoted(&self.base)
        );
        if let Schedules::Listed(schedules) = &self.schedules {
            let rendered: Vec<String> = schedules.iter().map(ScheduleStatus::json).collect();
            json.push_str(&rendered.join(","));
        }
        let problems: Vec<String> = self
            .problems
            .iter()
            .map(|p| crate::log::quoted(p))
            .collect();
        let _ = writeln!(
            json,
            "],\"healthy\":{},\"problems\":[{}]}}",
            self.healthy(),
            problems.join(",")
        );
        json
    }

    fn since(&self) -> String {
        self.service
            .since
            .map_or_else(|| "?".to_owned(), |t| t.date_time())
    }
}

impl ScheduleStatus {
    fn write_text(&self, text: &mut String) {
        let _ = writeln!(text, "{}: {}", self.index, self.line);
        let Some(valid) = &self.valid else {
            text.push_str("   malformed schedule: never runs\n");
            return;
        };
        let _ = writeln!(text, "   next run: {}", valid.next_run);
        if let Some(due) = &valid.missed {
            let _ = writeln!(text, "   missed: due {due}, no run started since");
        }
        let Some(last) = &valid.last else {
            text.push_str("   last run: none yet\n");
            return;
        };
        let seconds = format_seconds(last.duration_ms);
        let summary = match &last.state {
            LastState::Ok { size, hook_problem } => match hook_problem {
                Some(problem) => format!("ok, {size} bytes in {seconds} s; {problem}"),
                None => format!("ok, {size} bytes in {seconds} s"),
            },
            LastState::Error(message) => format!("error after {seconds} s: {message}"),
            LastState::Running(pid) => format!("running (PID {pid})"),
            LastState::Interrupted => INTERRUPTED.to_owned(),
        };
        let _ = writeln!(text, "   last run: {}, {summary}", last.started.date_time());
        if let Some(recipients) = &valid.encrypted_to {
            let _ = writeln!(text, "   encrypted to: recipients {recipients}");
        }
        if let Some(offsite) = &valid.offsite {
            let _ = writeln!(text, "   offsite: {}", offsite_text(offsite));
        }
    }

    fn json(&self) -> String {
        let mut json = format!(
            "{{\"index\":{},\"line\":{}",
            self.index,
            crate::log::quoted(&self.line)
        );
        let Some(valid) = &self.valid else {
            json.push_str(",\"valid\":false,\"next_run\":null,\"missed\":null,\"last\":null}");
            return json;
        };
        let _ = write!(
            json,
            ",\"valid\":true,\"folder\":{},\"time\":{},\"name\":{},\"next_run\":{},\"missed\":{}",
            crate::log::quoted(&valid.folder),
            crate::log::quoted(&valid.time),
            crate::log::quoted(&valid.name),
            crate::log::quoted(&valid.next_run),
            valid
                .missed
                .as_deref()
                .map_or_else(|| "null".to_owned(), crate::log::quoted),
        );
        // Only for an encrypted archive, or one copied offsite: without them the JSON stays as
        // it was.
        if let Some(recipients) = &valid.encrypted_to {
            let _ = write!(json, ",\"encrypted_to\":{}", crate::log::quoted(recipients));
        }
        if let Some(offsite) = &valid.offsite {
            let _ = write!(
                json,
                ",\"offsite\":{{\"to\":{},\"state\":{}}}",
                crate::log::quoted(&offsite.to),
                crate::log::quoted(&offsite_text(offsite))
            );
        }
        let Some(last) = &valid.last else {
            json.push_str(",\"last\":null}");
            return json;
        };
        let (state, size, error) = match &last.state {
            LastState::Ok { size, hook_problem } => ("ok", Some(*size), hook_problem.as_deref()),
            LastState::Error(message) => ("error", None, Some(message.as_str())),
            LastState::Running(_) => ("running", None, None),
            LastState::Interrupted => ("interrupted", None, Some(INTERRUPTED)),
        };
        let _ = write!(
            json,
            ",\"last\":{{\"started\":{},\"unix\":{},\"state\":\"{state}\",\"ok\":{},\"size\":{},\"duration_ms\":{},\"error\":{}}}}}",
            crate::log::quoted(&last.started.date_time()),
            last.started.unix,
            state == "ok",
            size.map_or_else(|| "null".to_owned(), |size| size.to_string()),
            last.duration_ms,
            error.map_or_else(|| "null".to_owned(), crate::log::quoted),
        );
        json
    }
}

/// How an offsite copy stands, for people: `copied 2026-12-01 03:31:02 to r:p/host`.
fn offsite_text(offsite: &catalog::Offsite) -> String {
    let to = &offsite.to;
    match &offsite.state {
        OffsiteState::Copied(at) => format!("copied {} to {to}", LocalTime::at(*at).date_time()),
        OffsiteState::Pending {
            attempts,
            next,
            error,
        } => format!(
            "not yet copied to {to}: failed {attempts} times, last: {error}; retry at {}",
            LocalTime::at(*next).date_time()
        ),
        OffsiteState::Failed { attempts, error } => {
            format!("not copied to {to}: failed {attempts} times, no retries left; last: {error}")
        }
        OffsiteState::Lost => {
            format!("not copied to {to}: the archive was gone from backups/ first")
        }
    }
}

fn format_seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-29 16:07:30 in UTC+1.
    fn now() -> LocalTime {
        LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        }
    }

    fn at(unix: i64) -> LocalTime {
        LocalTime { unix, ..now() }
    }

    /// Up since 13:33:20 local.
    fn running() -> ServiceInfo {
        ServiceInfo {
            pid: Some(4242),
            since: Some(at(1_769_690_000)),
            stopping: false,
        }
    }

    /// The facts of a plan last edited two days ago.
    fn facts(service: &ServiceInfo, text: &[u8], outcomes: &[(&[u8], Outcome)]) -> Facts {
        Facts {
            base: "/srv/box".to_owned(),
            now: now(),
            service: service.clone(),
            plan: Ok(text.to_vec()),
            plan_changed: Some(at(1_769_526_000)),
            outcomes: outcomes
                .iter()
                .map(|(line, outcome)| (line.to_vec(), outcome.clone()))
                .collect(),
            archives: std::collections::HashMap::new(),
            timings: std::collections::HashMap::new(),
        }
    }

    fn status_of(service: &ServiceInfo, text: &[u8], outcomes: &[(&[u8], Outcome)]) -> Status {
        build(&facts(service, text, outcomes), &|pid| pid == 77)
    }

    #[test]
    fn next_runs_are_later_today_or_tomorrow() {
        let facts = facts(&running(), b"a;16:08;a\nb;16:07;b\nc;03:30;c\n", &[]);
        let next: Vec<String> = facts
            .entries()
            .iter()
            .map(|entry| wall_minute_text(entry.next_due.unwrap()))
            .collect();
        assert_eq!(
            next,
            ["2026-01-29 16:08", "2026-01-30 16:07", "2026-01-30 03:30"]
        );
    }

    #[test]
    fn a_running_service_with_good_or_pending_schedules_is_healthy() {
        let ok = Outcome {
            started: at(1_769_661_000),
            duration_ms: 1_250,
            ending: Ending::Done(10_240),
            hook_problem: None,
            last_success: None,
        };
        let report = status_of(
            &running(),
            b"logs;03:30;logs\ndocs;17:00;docs\n",
            &[(b"logs;03:30;logs", ok)],
        );
        assert_eq!(
            report.text(),
            "backup_service: running, PID 4242, since 2026-01-29 13:33:20\n\
             base directory: /srv/box\n\
             0: logs;03:30;logs\n   next run: 2026-01-30 03:30\n\
             \x20  last run: 2026-01-29 05:30:00, ok, 10240 bytes in 1.250 s\n\
             1: docs;17:00;docs\n   next run: 2026-01-29 17:00\n   last run: none yet\n\
             status: ok\n"
        );
        assert!(report.healthy());
        assert!(report.json().contains("\"healthy\":true"));
    }

    #[test]
    fn a_failure_a_malformed_line_or_a_stopped_service_needs_attention() {
        let failed = Outcome {
            started: now(),
            duration_ms: 3,
            ending: Ending::Failed(
                "backup of \"x\" to backups/x.tar failed: folder not found".into(),
            ),
            hook_problem: None,
            last_success: None,
        };
        let stopped = ServiceInfo {
            pid: None,
            since: None,
            stopping: false,
        };
        let report = status_of(&stopped, b"x;03:30;x\ngarbage\n", &[(b"x;03:30;x", failed)]);
        assert!(!report.healthy());
        assert!(report.text().ends_with(
            "status: needs attention: the service is not running; schedule 0 failed last time; schedule 1 is malformed\n"
        ));
        assert!(report.text().contains(
            "   last run: 2026-01-29 16:07:30, error after 0.003 s: backup of \"x\" to backups/x.tar failed: folder not found\n"
        ));
        assert!(report.json().contains(
            "\"error\":\"backup of \\\"x\\\" to backups/x.tar failed: folder not found\""
        ));
    }

    #[test]
    fn a_run_that_never_started_while_the_service_was_up_is_missed() {
        // Due at 16:00, service up since 13:33, nothing since: missed (it is 16:07).
        let report = status_of(&running(), b"a;16:00;a\n", &[]);
        assert!(
            report
                .text()
                .contains("   missed: due 2026-01-29 16:00, no run started since\n")
        );
        assert!(!report.healthy());
        // Due at 16:05: only two minutes ago, it may still start.
        assert!(status_of(&running(), b"a;16:05;a\n", &[]).healthy());
        // Due at 10:00, before the service started: not its fault.
        assert!(status_of(&running(), b"a;10:00;a\n", &[]).healthy());
        // Started at 16:00: not missed.
        let started = Outcome {
            started: at(1_769_698_800),
            duration_ms: 0,
            ending: Ending::Running(77),
            hook_problem: None,
            last_success: None,
        };
        let report = status_of(&running(), b"a;16:00;a\n", &[(b"a;16:00;a", started)]);
        assert!(report.healthy(), "{}", report.text());
        assert!(
            report
                .text()
                .contains("   last run: 2026-01-29 16:00:00, running (PID 77)\n")
        );
        // A plan edited after the due time: the line may be new, so nothing is claimed.
        let edited = Facts {
            plan_changed: Some(at(1_769_699_000)),
            ..facts(&running(), b"a;16:00;a\n", &[])
        };
        assert!(build(&edited, &|_| false).healthy());
    }

    #[test]
    fn a_run_whose_process_is_gone_was_interrupted() {
        let killed = Outcome {
            started: at(1_769_698_800),
            duration_ms: 0,
            ending: Ending::Running(78),
            hook_problem: None,
            last_success: None,
        };
        let report = status_of(&running(), b"a;16:00;a\n", &[(b"a;16:00;a", killed)]);
        assert!(!report.healthy());
        assert!(report.text().contains(
            "   last run: 2026-01-29 16:00:00, interrupted: its process ended before the backup did\n"
        ));
        assert!(report.json().contains("\"state\":\"interrupted\""));
    }
}
