//! The manager's commands: each does its work and logs its success line; errors go back to
//! the caller, which logs them once.

pub mod restore;
pub mod status;
pub mod verify;

use crate::clock::LocalTime;
use crate::error::{Error, Result};
use crate::job;
use crate::layout::{self, Layout};
use crate::log::{Log, for_terminal, show_bytes};
use crate::plan;
use crate::plan::file::{self as plan_file, Missing};
use crate::service::control;
use crate::stdout;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A manager command with its arguments, as understood from the command line.
#[derive(Debug)]
pub enum Command {
    Create {
        schedule: Option<OsString>,
    },
    List,
    Delete {
        index: Option<String>,
    },
    Start {
        keep: u32,
    },
    Stop {
        timeout: Duration,
    },
    Backups {
        long: bool,
    },
    Run {
        index: Option<String>,
        keep: u32,
    },
    Status {
        json: bool,
    },
    Verify {
        name: Option<OsString>,
        against: bool,
    },
    Restore {
        name: Option<OsString>,
        to: Option<OsString>,
        force: bool,
        outside_links: bool,
    },
}

/// Carries out `command`, logging its success line to `log`.
pub fn execute(layout: &Layout, log: &Log, exe: &Path, command: Command) -> Result<()> {
    match command {
        Command::Create { schedule } => create(layout, log, schedule),
        Command::List => list(layout, log),
        Command::Delete { index } => delete(layout, log, index),
        Command::Start { keep } => {
            control::start(layout, exe, keep)?;
            log.write("backup_service started");
            Ok(())
        }
        Command::Stop { timeout } => {
            control::stop(layout, timeout)?;
            log.write("backup_service stopped");
            Ok(())
        }
        Command::Backups { long } => backups(layout, log, long),
        Command::Run { index, keep } => run(layout, log, index, keep),
        Command::Status { json } => {
            let report = status::report(layout)?;
            stdout::print(if json { &report.json } else { &report.text }.as_bytes())?;
            log.write("Show status");
            if report.healthy {
                Ok(())
            } else {
                Err(Error::logged(
                    "status: some schedules or the service need attention",
                ))
            }
        }
        Command::Verify { name, against } => {
            let name = archive_name(name, "verify")?;
            verify::verify(layout, log, &name, against)
        }
        Command::Restore {
            name,
            to,
            force,
            outside_links,
        } => {
            let name = archive_name(name, "restore")?;
            restore::restore(
                layout,
                log,
                &name,
                to.map(PathBuf::from),
                force,
                outside_links,
            )
        }
    }
}

fn create(layout: &Layout, log: &Log, schedule: Option<OsString>) -> Result<()> {
    let schedule = schedule
        .ok_or_else(|| {
            Error::usage("malformed schedule: ")
                .because("create needs a schedule: folder;hh:mm;name")
        })?
        .into_vec();
    let shown = show_bytes(&schedule);
    if !plan::is_valid_new_line(&schedule) {
        return Err(Error::failed(format!("malformed schedule: {shown}"))
            .because("expected folder;hh:mm;name with a 24-hour time and a name without '/'"));
    }
    plan_file::edit(layout, Missing::Create, |current| {
        Ok((plan::with_line_appended(current, &schedule), ()))
    })?;
    log.write(&format!("New schedule added: {shown}"));
    Ok(())
}

fn list(layout: &Layout, log: &Log) -> Result<()> {
    let text = plan_file::read(layout)?;
    let mut listing = Vec::new();
    for (index, entry) in plan::entries(&text).iter().enumerate() {
        listing.extend_from_slice(format!("{index}: ").as_bytes());
        listing.extend_from_slice(&for_terminal(entry.text));
        listing.push(b'\n');
    }
    stdout::print(&listing)?;
    log.write("Show schedules list");
    Ok(())
}

/// A schedule index from the command line; anything but a whole number is a usage error.
fn parse_index(index: Option<String>, command: &str) -> Result<usize> {
    let index = index.ok_or_else(|| Error::usage(format!("{command} needs a schedule index")))?;
    index.parse().map_err(|_| {
        Error::usage(format!(
            "can't find schedule at index {}",
            show_bytes(index.as_bytes())
        ))
    })
}

fn delete(layout: &Layout, log: &Log, index: Option<String>) -> Result<()> {
    let index = parse_index(index, "delete")?;
    plan_file::edit(layout, Missing::Fail, |current| {
        let edited = plan::without_entry(current, index)
            .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
        Ok((edited, ()))
    })?;
    log.write(&format!("Schedule at index {index} deleted"));
    Ok(())
}

fn backups(layout: &Layout, log: &Log, long: bool) -> Result<()> {
    let entries = fs::read_dir(layout.backups_dir())
        .map_err(|err| Error::failed("can't find backups directory").because(err))?;
    let mut archives: Vec<(Vec<u8>, fs::DirEntry)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| (entry.file_name().into_vec(), entry))
        .filter(|(name, _)| !layout::is_internal_backups_entry(name))
        .collect();
    archives.sort_by(|a, b| a.0.cmp(&b.0));
    let mut listing = Vec::new();
    for (name, entry) in archives {
        if long {
            // Like `ls -l`: size right-aligned, then local modification time, then the name.
            let meta = entry.metadata().ok();
            let (size, modified) = meta.map_or((String::from("?"), String::from("?")), |meta| {
                (
                    meta.len().to_string(),
                    LocalTime::at(meta.mtime()).date_time(),
                )
            });
            listing.extend_from_slice(format!("{size:>14}  {modified:<19}  ").as_bytes());
        }
        listing.extend_from_slice(&for_terminal(&name));
        listing.push(b'\n');
    }
    stdout::print(&listing)?;
    log.write("Show backups list");
    Ok(())
}

/// The archive name a command works on: a schedule name, so no `/`, `.` or `..`.
fn archive_name(name: Option<OsString>, command: &str) -> Result<Vec<u8>> {
    let name = name
        .ok_or_else(|| Error::usage(format!("{command} needs an archive name")))?
        .into_vec();
    if !plan::is_valid_name(&name) {
        return Err(Error::usage(format!(
            "not an archive name: {}",
            show_bytes(&name)
        )));
    }
    Ok(name)
}

fn run(layout: &Layout, log: &Log, index: Option<String>, keep: u32) -> Result<()> {
    let index = parse_index(index, "run")?;
    let text = plan_file::read(layout)?;
    let entries = plan::entries(&text);
    let entry = entries
        .get(index)
        .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
    let schedule = entry
        .schedule()
        .ok_or_else(|| Error::failed(format!("malformed schedule: {}", show_bytes(entry.text))))?;
    job::run(layout, &schedule, log, job::Options { keep }).map_err(Error::logged)
}
