//! Prometheus metrics of the backup system, in the text exposition format node_exporter's
//! textfile collector reads, rendered from the report's [`Facts`]; pure.

use super::{EntryFacts, Facts};
use crate::log::show_bytes;
use crate::store::catalog::OffsiteState;
use crate::store::outcomes::{Ending, Outcome};
use std::fmt::Write;

/// What one schedule contributes.
struct ScheduleFacts<'a> {
    name: String,
    folder: String,
    time: String,
    last: Option<&'a Outcome>,
    /// The size of the archive in place, if there is one.
    archive_size: Option<u64>,
    /// Archives of the name on disk, the one in place included.
    archives: usize,
    /// Unix time of the next run.
    next_run: i64,
    /// The offsite copy of the archive in place, when one is recorded.
    offsite: Option<&'a crate::store::catalog::Offsite>,
}

/// A family's name, help text and the value of each schedule (none: no sample).
type PerSchedule = (
    &'static str,
    &'static str,
    fn(&ScheduleFacts) -> Option<String>,
);

const PER_SCHEDULE: [PerSchedule; 9] = [
    (
        "backupbox_last_run_start_timestamp_seconds",
        "When the schedule's last backup started, in seconds since the epoch.",
        |facts| Some(facts.last.as_ref()?.started.unix.to_string()),
    ),
    (
        "backupbox_last_run_duration_seconds",
        "How long the schedule's last finished backup took, its before hook included.",
        |facts| {
            let last = facts.last.as_ref().filter(|last| !running(last))?;
            Some(format!(
                "{}.{:03}",
                last.duration_ms / 1000,
                last.duration_ms % 1000
            ))
        },
    ),
    (
        "backupbox_last_run_success",
        "1 if the schedule's last finished backup put its archive in place and its hooks succeeded, else 0.",
        |facts| {
            let last = facts.last.as_ref().filter(|last| !running(last))?;
            let ok = matches!(last.ending, Ending::Done(_)) && last.hook_problem.is_none();
            Some(u8::from(ok).to_string())
        },
    ),
    (
        "backupbox_last_success_timestamp_seconds",
        "When the schedule's last successful backup started, in seconds since the epoch.",
        |facts| Some(facts.last.as_ref()?.last_success?.to_string()),
    ),
    (
        "backupbox_last_archive_size_bytes",
        "Size of the schedule's archive in place.",
        |facts| Some(facts.archive_size?.to_string()),
    ),
    (
        "backupbox_archives",
        "Archives of the schedule's name on disk, older generations included.",
        |facts| Some(facts.archives.to_string()),
    ),
    (
        "backupbox_last_offsite_success_timestamp_seconds",
        "When the offsite copy of the schedule's archive in place landed, in seconds since the epoch.",
        |facts| match facts.offsite?.state {
            OffsiteState::Copied(at) => Some(at.to_string()),
            _ => None,
        },
    ),
    (
        "backupbox_offsite_pending",
        "1 while the archive in place has no offsite copy yet (retries left or not), else 0.",
        |facts| {
            let copied = matches!(facts.offsite?.state, OffsiteState::Copied(_));
            Some(u8::from(!copied).to_string())
        },
    ),
    (
        "backupbox_next_run_timestamp_seconds",
        "When the schedule runs next, in seconds since the epoch.",
        |facts| Some(facts.next_run.to_string()),
    ),
];

fn running(outcome: &Outcome) -> bool {
    matches!(outcome.ending, Ending::Running(_))
}

/// A label value as the exposition format wants it: backslash, double quote and newline
/// escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
}

/// The schedules the metrics show: a plan line given twice is one schedule to a collector
/// (the same labels twice would be a scrape error), so each distinct line counts once.
fn schedules<'a>(facts: &'a Facts, entries: Vec<EntryFacts<'a>>) -> Vec<ScheduleFacts<'a>> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|entry| seen.insert(entry.entry.text))
        .filter_map(|entry| {
            let schedule = entry.schedule?;
            Some(ScheduleFacts {
                // As in every message: lossless, so names that differ only in bytes that are
                // not UTF-8 never make the same series.
                name: show_bytes(&schedule.name),
                folder: show_bytes(&schedule.folder),
                time: schedule.time_text(),
                last: entry.last,
                archive_size: entry.archives.in_place_size,
                archives: entry.archives.count,
                next_run: entry.next_due? * 60 - i64::from(facts.now.offset),
                offsite: facts
                    .archives
                    .get(&*schedule.name)
                    .and_then(|archives| archives.offsite.as_ref()),
            })
        })
        .collect()
}

/// The exposition text of `facts`.
pub fn render(facts: &Facts) -> String {
    let entries = facts.entries();
    let malformed_lines = entries
        .iter()
        .filter(|entry| entry.schedule.is_none())
        .count();
    let schedules = schedules(facts, entries);
    let mut text = String::new();
    for (name, help, value) in PER_SCHEDULE {
        family(&mut text, name, help);
        for facts in &schedules {
            if let Some(value) = value(facts) {
                let _ = writeln!(
                    text,
                    "{name}{{name=\"{}\",folder=\"{}\",time=\"{}\"}} {value}",
                    label(&facts.name),
                    label(&facts.folder),
                    label(&facts.time)
                );
            }
        }
    }
    family(
        &mut text,
        "backupbox_service_start_time_seconds",
        "When the backup service started, in seconds since the epoch.",
    );
    if let Some(started) = facts.service.started() {
        let _ = writeln!(text, "backupbox_service_start_time_seconds {started}");
    }
    family(
        &mut text,
        "backupbox_plan_malformed_lines",
        "Lines of the plan that are not valid schedules and never run.",
    );
    let _ = writeln!(text, "backupbox_plan_malformed_lines {malformed_lines}");
    family(
        &mut text,
        "backupbox_build_info",
        "The backupbox version and commit, as labels.",
    );
    let _ = writeln!(
        text,
        "backupbox_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        label(env!("BACKUPBOX_COMMIT"))
    );
    text
}
