//! `backup_manager status`: each schedule's next run and last outcome, and whether the service
//! runs, as text for people and JSON for machines. [`build`] is pure; [`report`] gathers its
//! inputs from the plan, the state file and the PID file.

use crate::clock::{LocalTime, minute_of_day, wall_minute_text};
use crate::error::Result;
use crate::layout::{Layout, PLAN_FILE};
use crate::log::show_bytes;
use crate::pidfile::{self, Holder};
use crate::plan;
use crate::plan_file;
use crate::state::{self, Outcome};
use std::fmt::Write;
use std::os::unix::fs::MetadataExt;

/// The service as `status` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub pid: Option<i32>,
    /// When the service took its PID file.
    pub since: Option<LocalTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub text: String,
    pub json: String,
    /// The service runs and no schedule failed last time or is malformed.
    pub healthy: bool,
}

/// Gathers the service, the plan and the recorded outcomes, and builds the report.
pub fn report(layout: &Layout) -> Result<Report> {
    let service = match pidfile::holder(layout) {
        Ok(Holder::Service(pid)) => ServiceInfo {
            pid: Some(pid.as_raw()),
            since: std::fs::metadata(layout.pid_file())
                .ok()
                .map(|meta| LocalTime::at(meta.mtime())),
        },
        _ => ServiceInfo {
            pid: None,
            since: None,
        },
    };
    let plan = plan_file::read(layout).map_err(|err| err.stderr_line());
    // A damaged or unreadable state file only costs the history shown.
    let outcomes = state::load(layout).unwrap_or_default();
    Ok(build(
        &layout.base().to_string_lossy(),
        &service,
        plan.as_deref().map_err(String::as_str),
        &outcomes,
        &LocalTime::now(),
    ))
}

/// The report for these inputs; `plan` is the plan's text or why it could not be read.
pub fn build(
    base: &str,
    service: &ServiceInfo,
    plan: std::result::Result<&[u8], &str>,
    outcomes: &[(Vec<u8>, Outcome)],
    now: &LocalTime,
) -> Report {
    let mut text = String::new();
    let mut json = String::from("{");
    let mut problems = Vec::new();
    match (service.pid, &service.since) {
        (Some(pid), since) => {
            let since = since.map(|t| t.date_time()).unwrap_or_else(|| "?".into());
            let _ = writeln!(text, "backup_service: running, PID {pid}, since {since}");
            let _ = write!(
                json,
                "\"service\":{{\"running\":true,\"pid\":{pid},\"since\":{}}}",
                quote(&since)
            );
        }
        (None, _) => {
            text.push_str("backup_service: not running\n");
            json.push_str("\"service\":{\"running\":false,\"pid\":null,\"since\":null}");
            problems.push("the service is not running".to_owned());
        }
    }
    let _ = writeln!(text, "base directory: {base}");
    let _ = write!(json, ",\"base_dir\":{},\"schedules\":[", quote(base));
    match plan {
        Err(reason) => {
            let _ = writeln!(text, "{reason}");
            problems.push(format!("{PLAN_FILE} can't be read"));
        }
        Ok(plan) => {
            for (index, entry) in plan::entries(plan).iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                let line = show_bytes(entry.text);
                let _ = writeln!(text, "{index}: {line}");
                let _ = write!(json, "{{\"index\":{index},\"line\":{}", quote(&line));
                let Some(schedule) = entry.schedule() else {
                    text.push_str("   malformed schedule: never runs\n");
                    json.push_str(",\"valid\":false,\"next_run\":null,\"last\":null}");
                    problems.push(format!("schedule {index} is malformed"));
                    continue;
                };
                let next = next_run(now, schedule.minute_of_day);
                let _ = writeln!(text, "   next run: {next}");
                let _ = write!(
                    json,
                    ",\"valid\":true,\"folder\":{},\"time\":{},\"name\":{},\"next_run\":{}",
                    quote(&show_bytes(&schedule.folder)),
                    quote(&schedule.time_text()),
                    quote(&show_bytes(&schedule.name)),
                    quote(&next)
                );
                let last = outcomes
                    .iter()
                    .find(|(recorded, _)| *recorded == entry.text)
                    .map(|(_, outcome)| outcome);
                match last {
                    None => {
                        text.push_str("   last run: none yet\n");
                        json.push_str(",\"last\":null}");
                    }
                    Some(outcome) => {
                        let started = outcome.started.date_time();
                        let seconds = format_seconds(outcome.duration_ms);
                        let (summary, size, error) = match &outcome.result {
                            Ok(size) => (format!("ok, {size} bytes in {seconds} s"), *size, None),
                            Err(message) => {
                                problems.push(format!("schedule {index} failed last time"));
                                (
                                    format!("error after {seconds} s: {message}"),
                                    0,
                                    Some(message),
                                )
                            }
                        };
                        let _ = writeln!(text, "   last run: {started}, {summary}");
                        let _ = write!(
                            json,
                            ",\"last\":{{\"started\":{},\"unix\":{},\"ok\":{},\"size\":{},\"duration_ms\":{},\"error\":{}}}}}",
                            quote(&started),
                            outcome.started.unix,
                            error.is_none(),
                            if error.is_none() {
                                size.to_string()
                            } else {
                                "null".into()
                            },
                            outcome.duration_ms,
                            error.map_or_else(|| "null".to_owned(), |message| quote(message)),
                        );
                    }
                }
            }
        }
    }
    let healthy = problems.is_empty();
    if healthy {
        text.push_str("status: ok\n");
    } else {
        let _ = writeln!(text, "status: needs attention: {}", problems.join("; "));
    }
    let _ = writeln!(
        json,
        "],\"healthy\":{healthy},\"problems\":[{}]}}",
        problems
            .iter()
            .map(|p| quote(p))
            .collect::<Vec<_>>()
            .join(",")
    );
    Report {
        text,
        json,
        healthy,
    }
}

/// The next local date and time at `minute` of the day, strictly after the current minute
/// (the current minute's run has already started).
fn next_run(now: &LocalTime, minute: u16) -> String {
    let wall = now.wall_minute();
    let today = wall - i64::from(minute_of_day(wall));
    let mut next = today + i64::from(minute);
    if next <= wall {
        next += 24 * 60;
    }
    wall_minute_text(next)
}

fn format_seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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

    fn running() -> ServiceInfo {
        ServiceInfo {
            pid: Some(4242),
            since: Some(LocalTime {
                unix: 1_769_690_000,
                ..now()
            }),
        }
    }

    #[test]
    fn next_runs_are_later_today_or_tomorrow() {
        assert_eq!(next_run(&now(), 16 * 60 + 8), "2026-01-29 16:08");
        assert_eq!(next_run(&now(), 16 * 60 + 7), "2026-01-30 16:07");
        assert_eq!(next_run(&now(), 3 * 60 + 30), "2026-01-30 03:30");
    }

    #[test]
    fn a_running_service_with_good_or_pending_schedules_is_healthy() {
        let ok = Outcome {
            started: LocalTime {
                unix: 1_769_661_000,
                ..now()
            },
            duration_ms: 1_250,
            result: Ok(10_240),
        };
        let report = build(
            "/srv/box",
            &running(),
            Ok(b"logs;03:30;logs\ndocs;17:00;docs\n"),
            &[(b"logs;03:30;logs".to_vec(), ok)],
            &now(),
        );
        assert_eq!(
            report.text,
            "backup_service: running, PID 4242, since 2026-01-29 13:33:20\n\
             base directory: /srv/box\n\
             0: logs;03:30;logs\n   next run: 2026-01-30 03:30\n\
             \x20  last run: 2026-01-29 05:30:00, ok, 10240 bytes in 1.250 s\n\
             1: docs;17:00;docs\n   next run: 2026-01-29 17:00\n   last run: none yet\n\
             status: ok\n"
        );
        assert!(report.healthy);
        assert!(report.json.contains("\"healthy\":true"));
    }

    #[test]
    fn a_failure_a_malformed_line_or_a_stopped_service_needs_attention() {
        let failed = Outcome {
            started: now(),
            duration_ms: 3,
            result: Err("backup of \"x\" to backups/x.tar failed: folder not found".into()),
        };
        let stopped = ServiceInfo {
            pid: None,
            since: None,
        };
        let report = build(
            "/srv/box",
            &stopped,
            Ok(b"x;03:30;x\ngarbage\n"),
            &[(b"x;03:30;x".to_vec(), failed)],
            &now(),
        );
        assert!(!report.healthy);
        assert!(report.text.ends_with(
            "status: needs attention: the service is not running; schedule 0 failed last time; schedule 1 is malformed\n"
        ));
        assert!(report.text.contains(
            "   last run: 2026-01-29 16:07:30, error after 0.003 s: backup of \"x\" to backups/x.tar failed: folder not found\n"
        ));
        assert!(report.json.contains(
            "\"error\":\"backup of \\\"x\\\" to backups/x.tar failed: folder not found\""
        ));
    }
}
