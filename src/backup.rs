//! One backup job, the same for the service and for `run`: take the name, write the archive,
//! log the outcome.

use crate::archive;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::name_lock;
use crate::plan::Schedule;

/// `backup of <folder> to backups/<name>.tar`, as the log lines name a job.
pub fn describe(schedule: &Schedule) -> String {
    format!(
        "backup of {} to {}",
        show_bytes(&schedule.folder),
        Layout::archive_display(&schedule.name)
    )
}

/// Runs one backup and writes its log lines to `log`. The error is the message logged
/// after `Error: `.
pub fn run(layout: &Layout, schedule: &Schedule, log: &Log) -> Result<(), String> {
    let what = describe(schedule);
    let attempt = || -> Result<Option<u64>, String> {
        archive::ensure_backups_dir(layout)
            .map_err(|err| format!("can't create backups directory ({err})"))?;
        let Some(_guard) = name_lock::try_lock(layout, &schedule.name)
            .map_err(|err| format!("can't lock archive name ({err})"))?
        else {
            return Ok(None);
        };
        archive::create(layout, schedule, &mut |warning| {
            log.write(&format!("Warning: {warning}"))
        })
        .map(Some)
    };
    let message = match attempt() {
        Ok(Some(_)) => {
            let folder = show_bytes(&schedule.folder);
            log.write(&format!(
                "Backup done for {folder} in {}",
                Layout::archive_display(&schedule.name)
            ));
            return Ok(());
        }
        Ok(None) => format!("{what} skipped: another backup is still writing it"),
        Err(reason) => format!("{what} failed: {reason}"),
    };
    log.write(&format!("Error: {message}"));
    Err(message)
}
