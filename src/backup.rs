//! One backup job, the same for the service and for `run`: take the name, write the archive,
//! log the outcome.

use crate::archive;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::name_lock;
use crate::plan::Schedule;

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    /// Another job was writing the same archive name; this one did nothing.
    Skipped,
}

/// Runs one backup and writes its log lines to `log`.
pub fn run(layout: &Layout, schedule: &Schedule, log: &Log) -> Outcome {
    let folder = show_bytes(&schedule.folder);
    let archive = Layout::archive_display(&schedule.name);
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
    match attempt() {
        Ok(Some(_)) => {
            log.write(&format!("Backup done for {folder} in {archive}"));
            Outcome::Done
        }
        Ok(None) => {
            log.write(&format!(
                "Error: backup of {folder} to {archive} skipped: another backup is still writing it"
            ));
            Outcome::Skipped
        }
        Err(reason) => {
            log.write(&format!(
                "Error: backup of {folder} to {archive} failed: {reason}"
            ));
            Outcome::Failed
        }
    }
}
