//! One backup job, the same for the service and for `run`: take the name, write the archive,
//! keep older generations if asked, log the outcome and record it for `status`.

pub mod name_lock;
pub mod outcomes;
pub mod rotation;

use crate::archive;
use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan::file as plan_file;
use crate::plan::{self, Schedule};
use outcomes::{Ending, Outcome};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// How a job treats the archives it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Archives kept per name, `<name>.tar` included; 1 replaces it, as the spec does.
    pub keep: u32,
}

/// `backup of <folder> to backups/<name>.tar`, as the log lines name a job.
pub fn describe(schedule: &Schedule) -> String {
    format!(
        "backup of {} to {}",
        show_bytes(&schedule.folder),
        Layout::archive_display(&schedule.name)
    )
}

/// Runs one backup, writes its log lines to `log` and records its outcome. The error is the
/// message logged after `Error: `.
pub fn run(
    layout: &Layout,
    schedule: &Schedule,
    log: &Log,
    options: Options,
) -> Result<(), String> {
    let what = describe(schedule);
    let started = LocalTime::now();
    let clock = Instant::now();
    let note = |duration_ms, ending| {
        let outcome = Outcome {
            started,
            duration_ms,
            ending,
        };
        record(layout, schedule, log, &outcome);
    };
    let attempt = || -> Result<Option<u64>, String> {
        archive::ensure_backups_dir(layout)
            .map_err(|err| format!("can't create backups directory ({err})"))?;
        let Some(_guard) = name_lock::try_lock(layout, &schedule.name)
            .map_err(|err| format!("can't lock archive name ({err})"))?
        else {
            return Ok(None);
        };
        note(0, Ending::Running(std::process::id()));
        crate::test_hooks::fault("job");
        let written = archive::write(layout, schedule, &mut |warning| {
            log.write(&format!("Warning: {warning}"))
        })?;
        if options.keep > 1 {
            let kept = rotation::keep_previous(layout, &schedule.name)
                .map_err(|err| format!("can't keep the previous archive ({err})"))?;
            if let Some(generation) = kept {
                log.write(&format!(
                    "Kept previous {} as backups/{}",
                    Layout::archive_display(&schedule.name),
                    show_bytes(&generation)
                ));
            }
        }
        let size = written.commit()?;
        if options.keep > 1 {
            prune(layout, schedule, options.keep, log);
        }
        Ok(Some(size))
    };
    // A bug must end as a failure that is logged and recorded, never as a backup that
    // `status` shows running forever.
    let outcome = catch_unwind(AssertUnwindSafe(attempt))
        .unwrap_or_else(|panic| Err(format!("internal error: {}", panic_message(&*panic))));
    let result = match outcome {
        Ok(Some(size)) => {
            let folder = show_bytes(&schedule.folder);
            log.write(&format!(
                "Backup done for {folder} in {}",
                Layout::archive_display(&schedule.name)
            ));
            Ok(size)
        }
        Ok(None) => Err(format!(
            "{what} skipped: another backup is still writing it"
        )),
        Err(reason) => Err(format!("{what} failed: {reason}")),
    };
    if let Err(message) = &result {
        log.write(&format!("Error: {message}"));
    }
    let ending = match &result {
        Ok(size) => Ending::Done(*size),
        Err(message) => Ending::Failed(message.clone()),
    };
    note(
        u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        ending,
    );
    result.map(|_| ())
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Records the schedule's outcome for `status`; a failure to do so never fails the backup.
fn record(layout: &Layout, schedule: &Schedule, log: &Log, outcome: &Outcome) {
    if let Err(err) = outcomes::record(layout, &schedule.line(), outcome) {
        log.write(&format!(
            "Warning: can't record the outcome for status ({err})"
        ));
    }
}

/// Removes the generations of the schedule's name beyond `keep`, never the archive of
/// another schedule in the plan.
fn prune(layout: &Layout, schedule: &Schedule, keep: u32, log: &Log) {
    let Ok(text) = plan_file::read(layout) else {
        log.write("Warning: can't read the plan; older generations are not pruned this time");
        return;
    };
    let protected: Vec<Vec<u8>> = plan::entries(&text)
        .iter()
        .filter_map(|entry| entry.schedule())
        .map(|other| other.name)
        .filter(|other| *other != schedule.name)
        .collect();
    match rotation::prune(&layout.backups_dir(), &schedule.name, keep, &protected) {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(file) => log.write(&format!(
                        "Removed backups/{}: more than {keep} kept",
                        show_bytes(&file)
                    )),
                    Err(message) => log.write(&format!("Warning: {message}")),
                }
            }
        }
        Err(err) => log.write(&format!(
            "Warning: can't list backups/ to prune older generations ({err})"
        )),
    }
}
