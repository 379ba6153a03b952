//! Prometheus metrics of the backup system, in the text exposition format node_exporter's
//! textfile collector reads: [`render`] is pure; [`gather`] reads the plan, the state file and
//! `backups/`; [`write_file`] puts the text in place atomically for the service.

use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan;
use crate::plan::file as plan_file;
use crate::plan::timing as scheduler;
use crate::store::outcomes::{self, Ending, Outcome};
use crate::store::rotation;
use crate::sys::atomic_file::TempFile;
use std::fmt::Write;
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What one schedule contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFacts {
    pub name: String,
    pub folder: String,
    pub time: String,
    pub last: Option<Outcome>,
    /// The size of the archive in place, if there is one.
    pub archive_size: Option<u64>,
    /// Archives of the name on disk, the one in place included.
    pub archives: usize,
    /// Unix time of the next run.
    pub next_run: i64,
}

/// Everything the metrics show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub schedules: Vec<ScheduleFacts>,
    /// Unix time the service started, when it runs.
    pub service_started: Option<i64>,
    pub malformed_lines: usize,
}

/// A family's name, help text and the value of each schedule (none: no sample).
type PerSchedule = (
    &'static str,
    &'static str,
    fn(&ScheduleFacts) -> Option<String>,
);

const PER_SCHEDULE: [PerSchedule; 7] = [
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

/// The exposition text of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut text = String::new();
    for (name, help, value) in PER_SCHEDULE {
        family(&mut text, name, help);
        for facts in &snapshot.schedules {
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
    if let Some(started) = snapshot.service_started {
        let _ = writeln!(text, "backupbox_service_start_time_seconds {started}");
    }
    family(
        &mut text,
        "backupbox_plan_malformed_lines",
        "Lines of the plan that are not valid schedules and never run.",
    );
    let _ = writeln!(
        text,
        "backupbox_plan_malformed_lines {}",
        snapshot.malformed_lines
    );
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

/// The metrics of the backup system in `layout` now; `service_started` when the service runs.
pub fn gather(layout: &Layout, service_started: Option<i64>) -> Snapshot {
    let now = LocalTime::now();
    let text = plan_file::read(layout).unwrap_or_default();
    let entries = plan::entries(&text);
    // A damaged or unreadable state file only costs the history shown.
    let outcomes = outcomes::load(layout).unwrap_or_default();
    let backups = layout.backups_dir();
    let files = rotation::list(&backups).unwrap_or_default();
    let files_of = rotation::by_owner(&files);
    let last_of = outcomes::by_line(&outcomes);
    let plan_schedules: Vec<plan::Schedule> =
        entries.iter().filter_map(plan::Entry::schedule).collect();
    let protected =
        crate::job::protected_files(plan_schedules.iter().map(|schedule| &*schedule.name));
    // A plan line given twice is one schedule to a collector: the same labels twice would be
    // a scrape error, so each distinct line contributes once.
    let mut seen = std::collections::HashSet::new();
    let schedules = plan_schedules
        .iter()
        .filter(|schedule| seen.insert(schedule.line()))
        .map(|schedule| {
            let line = schedule.line();
            // One look at the archives in place serves both the count and the size.
            let found = rotation::in_place(&backups, &schedule.name);
            let archives = rotation::review(
                &schedule.name,
                files_of.get(&*schedule.name).map_or(&[][..], Vec::as_slice),
                &rotation::stamped(&found),
                &crate::store::retention::Policy::default(),
                &protected,
            )
            .len();
            // The newest, the one `archive::open` reads (the last of equal mtimes, as there).
            let archive_size = found
                .iter()
                .max_by_key(|(_, _, meta)| meta.mtime())
                .map(|(_, _, meta)| meta.len());
            let next = scheduler::next_due(now.wall_minute(), schedule.minute_of_day);
            ScheduleFacts {
                // As in every message: lossless, so names that differ only in bytes that are
                // not UTF-8 never make the same series.
                name: show_bytes(&schedule.name),
                folder: show_bytes(&schedule.folder),
                time: schedule.time_text(),
                last: last_of
                    .get(line.as_slice())
                    .map(|outcome| (*outcome).clone()),
                archive_size,
                archives,
                next_run: next * 60 - i64::from(now.offset),
            }
        })
        .collect();
    Snapshot {
        schedules,
        service_started,
        malformed_lines: entries.iter().filter(|e| e.schedule().is_none()).count(),
    }
}

/// Writes the metrics file that the `metrics` setting names (relative to the base
/// directory), if it names one. A failure is a warning in `log`: metrics never stop a backup.
pub fn publish(layout: &Layout, setting: Option<&str>, service_started: i64, log: &Log) {
    let Some(setting) = setting else {
        return;
    };
    let path = layout.base().join(setting);
    crate::debug_points::count("metrics-written");
    let text = render(&gather(layout, Some(service_started)));
    if let Err(err) = write_file(&path, &text) {
        log.write(&format!(
            "Warning: can't write the metrics file {} ({err})",
            path.display()
        ));
    }
}

/// Writes the metrics to `path` atomically: a temporary file in the same directory (which
/// the textfile collector ignores, as it reads `*.prom` only), then a rename.
pub fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = TempFile::create_in(dir, 0o644)?;
    // World-readable whatever the umask (the daemon runs under 027): node_exporter reads it
    // as its own user, and a file it can't read is a scrape error, not an alert.
    temp.file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    temp.file().write_all(text.as_bytes())?;
    temp.commit(path)
}
