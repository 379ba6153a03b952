//! The manager's commands: each does its work and logs its success line; errors go back to
//! the caller, which logs them once.

use crate::backup;
use crate::daemon;
use crate::error::{Error, Result};
use crate::layout::{self, Layout};
use crate::log::{Log, show_bytes};
use crate::plan;
use crate::plan_file::{self, Missing};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Duration;

/// A manager command with its arguments, as understood from the command line.
#[derive(Debug)]
pub enum Command {
    Create { schedule: Option<OsString> },
    List,
    Delete { index: Option<String> },
    Start,
    Stop { timeout: Duration },
    Backups,
    Run { index: Option<String> },
}

/// Carries out `command`, logging its success line to `log`.
pub fn execute(layout: &Layout, log: &Log, exe: &Path, command: Command) -> Result<()> {
    match command {
        Command::Create { schedule } => create(layout, log, schedule),
        Command::List => list(layout, log),
        Command::Delete { index } => delete(layout, log, index),
        Command::Start => {
            daemon::start(layout, exe)?;
            log.write("backup_service started");
            Ok(())
        }
        Command::Stop { timeout } => {
            daemon::stop(layout, timeout)?;
            log.write("backup_service stopped");
            Ok(())
        }
        Command::Backups => backups(layout, log),
        Command::Run { index } => run(layout, log, index),
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
        listing.extend_from_slice(entry.text);
        listing.push(b'\n');
    }
    print(&listing)?;
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

fn backups(layout: &Layout, log: &Log) -> Result<()> {
    let entries = fs::read_dir(layout.backups_dir())
        .map_err(|err| Error::failed("can't find backups directory").because(err))?;
    let mut names: Vec<Vec<u8>> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().into_vec())
        .filter(|name| !layout::is_internal_backups_entry(name))
        .collect();
    names.sort();
    let mut listing = Vec::new();
    for name in names {
        listing.extend_from_slice(&name);
        listing.push(b'\n');
    }
    print(&listing)?;
    log.write("Show backups list");
    Ok(())
}

fn run(layout: &Layout, log: &Log, index: Option<String>) -> Result<()> {
    let index = parse_index(index, "run")?;
    let text = plan_file::read(layout)?;
    let entries = plan::entries(&text);
    let entry = entries
        .get(index)
        .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
    let schedule = entry
        .schedule()
        .ok_or_else(|| Error::failed(format!("malformed schedule: {}", show_bytes(entry.text))))?;
    backup::run(layout, &schedule, log).map_err(Error::logged)
}

/// Writes command output to stdout; a closed pipe (`| head`) is not an error worth a log line.
fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::failed("can't write to stdout").because(err))
        }
        _ => Ok(()),
    }
}
