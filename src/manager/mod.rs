//! The manager's commands: each does its work and logs its success line, and returns how it
//! ended; errors go back to the command line, which logs them once.

pub mod contents;
pub mod prune;
pub mod restore;
pub mod state;
pub mod verify;

use crate::clock::LocalTime;
use crate::crypt::Identities;
use crate::error::{Error, Outcome, Result};
use crate::job;
use crate::layout::{self, Layout};
use crate::log::{Log, for_terminal, show_bytes};
use crate::plan::file::{self as plan_file, Missing};
use crate::plan::{self, Name};
use crate::progress;
use crate::report;
use crate::service::control;
use crate::settings;
use crate::stdout;
use crate::store::Keep;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A manager command, as the command line asked for it (lowered from the parser's structs by
/// `cli`, so no command here sees them).
pub enum Command {
    Create {
        schedule: Option<OsString>,
    },
    List,
    Delete {
        index: Option<String>,
    },
    Start {
        keep: Option<Keep>,
    },
    Stop {
        timeout: Duration,
    },
    Backups {
        long: bool,
    },
    Run {
        index: Option<String>,
        keep: Option<Keep>,
        progress: progress::Mode,
    },
    Prune {
        name: Option<Name>,
        dry_run: bool,
    },
    Settings {
        name: Option<Name>,
    },
    Contents {
        name: Name,
        long: bool,
        /// The newest state at or before this local wall-clock minute.
        as_of: Option<i64>,
        /// Identity files for an encrypted archive.
        identity: Vec<PathBuf>,
    },
    Status {
        format: StatusFormat,
    },
    Verify {
        name: Name,
        against: bool,
        identity: Vec<PathBuf>,
        progress: progress::Mode,
    },
    Restore {
        name: Name,
        options: restore::Options,
    },
}

/// What `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Prometheus,
}

/// Carries out `command`, logging its success line to `log`.
pub fn execute(layout: &Layout, log: &Log, exe: &Path, command: Command) -> Result<Outcome> {
    match command {
        Command::Create { schedule } => create(layout, log, schedule),
        Command::List => list(layout, log),
        Command::Delete { index } => delete(layout, log, index),
        Command::Start { keep } => {
            // The spec's line, then why on a line of its own: the log is where an admin
            // looks, and "can't start" alone says nothing.
            control::start(layout, exe, keep).map_err(Error::with_reason_logged)?;
            log.write("backup_service started");
            Ok(Outcome::Done)
        }
        Command::Stop { timeout } => {
            control::stop(layout, timeout)?;
            log.write("backup_service stopped");
            Ok(Outcome::Done)
        }
        Command::Backups { long } => backups(layout, log, long),
        Command::Run {
            index,
            keep,
            progress,
        } => run(layout, log, index, keep, progress),
        Command::Prune { name, dry_run } => prune::prune(layout, log, name, dry_run),
        Command::Settings { name } => show_settings(layout, log, name.as_ref()),
        Command::Contents {
            name,
            long,
            as_of,
            identity,
        } => contents::contents(
            layout,
            log,
            &name,
            contents::Listing { long, as_of },
            &Identities::load(&identity)?,
        ),
        Command::Status { format } => show_status(layout, log, format),
        Command::Verify {
            name,
            against,
            identity,
            progress,
        } => verify::verify(
            layout,
            log,
            &name,
            against,
            &Identities::load(&identity)?,
            progress,
        ),
        Command::Restore { name, options } => restore::restore(layout, log, &name, &options),
    }
}

fn create(layout: &Layout, log: &Log, schedule: Option<OsString>) -> Result<Outcome> {
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
    Ok(Outcome::Done)
}

fn list(layout: &Layout, log: &Log) -> Result<Outcome> {
    let text = plan_file::read(layout)?;
    let mut listing = Vec::new();
    for (index, entry) in plan::entries(&text).iter().enumerate() {
        listing.extend_from_slice(format!("{index}: ").as_bytes());
        listing.extend_from_slice(&for_terminal(entry.text));
        listing.push(b'\n');
    }
    stdout::print(&listing)?;
    log.write("Show schedules list");
    Ok(Outcome::Done)
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

fn delete(layout: &Layout, log: &Log, index: Option<String>) -> Result<Outcome> {
    let index = parse_index(index, "delete")?;
    plan_file::edit(layout, Missing::Fail, |current| {
        let edited = plan::without_entry(current, index)
            .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
        Ok((edited, ()))
    })?;
    log.write(&format!("Schedule at index {index} deleted"));
    Ok(Outcome::Done)
}

/// `status [--json | --prometheus]`.
fn show_status(layout: &Layout, log: &Log, format: StatusFormat) -> Result<Outcome> {
    let facts = report::gather(layout, report::service_info(layout));
    let (text, outcome) = if format == StatusFormat::Prometheus {
        // Metrics carry their verdict in the text: a scrape wants exit 0.
        (report::metrics::render(&facts), Outcome::Done)
    } else {
        let report = report::status::build(&facts, &crate::sys::process::is_backupbox_process);
        let text = if format == StatusFormat::Json {
            report.json()
        } else {
            report.text()
        };
        let outcome = if report.healthy() {
            Outcome::Done
        } else {
            Outcome::NeedsAttention
        };
        (text, outcome)
    };
    stdout::print(text.as_bytes())?;
    log.write("Show status");
    Ok(outcome)
}

fn backups(layout: &Layout, log: &Log, long: bool) -> Result<Outcome> {
    let entries = fs::read_dir(layout.backups_dir())
        .map_err(|err| Error::failed("can't find backups directory").because(err))?;
    let mut archives: Vec<(Vec<u8>, fs::DirEntry)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| (entry.file_name().into_vec(), entry))
        .filter(|(name, _)| !layout::is_internal_backups_entry(name))
        .collect();
    archives.sort_by(|a, b| a.0.cmp(&b.0));
    let (kept, loaded) = if long {
        (
            prune::reasons(layout),
            crate::store::catalog::load(layout).unwrap_or_default(),
        )
    } else {
        (std::collections::HashMap::new(), Vec::new())
    };
    let records = crate::store::catalog::Index::of(&loaded);
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
        if long && let Some(reasons) = kept.get(&name) {
            let why = if reasons.is_empty() {
                "goes at the next prune".to_owned()
            } else {
                let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                format!("kept: {}", reasons.join(", "))
            };
            listing.extend_from_slice(format!("  ({why})").as_bytes());
        }
        if long && let Some(note) = level_one_note(layout, &records, &name, &entry) {
            listing.extend_from_slice(format!("  ({note})").as_bytes());
        }
        if long && let Some(recipients) = encrypted_to(&records, &name, &entry) {
            listing
                .extend_from_slice(format!("  (encrypted to recipients {recipients})").as_bytes());
        }
        listing.push(b'\n');
    }
    stdout::print(&listing)?;
    log.write("Show backups list");
    Ok(Outcome::Done)
}

/// For a level-1, which full it needs: `level 1 on docs.tar`, or that the full is gone.
fn level_one_note(
    layout: &Layout,
    records: &crate::store::catalog::Index,
    file: &[u8],
    entry: &fs::DirEntry,
) -> Option<String> {
    let owner = *crate::store::rotation::possible_owners(file).first()?;
    if !crate::store::chain::is_level_one(owner, file) {
        return None;
    }
    let meta = entry.metadata().ok()?;
    let full = records
        .find(owner, &meta)
        .and_then(|record| record.full)
        .or_else(|| crate::archive::level_one_label(layout, file));
    let Some(full) = full else {
        return Some("level 1; its full is not recorded".to_owned());
    };
    let chains = crate::store::chain::Chains::read(&layout.backups_dir(), owner, &[], &|_| None);
    let found = chains.archives.iter().find(|archive| {
        archive.level == crate::store::chain::Level::Full && archive.written == full
    });
    Some(match found {
        Some(archive) => format!("level 1 on {}", crate::log::show_bytes(&archive.file)),
        None => format!(
            "level 1; its full of {} is gone",
            LocalTime::at(full.seconds).date_time()
        ),
    })
}

/// The recipients' fingerprint the catalog recorded for archive file `file`, if it is
/// encrypted.
fn encrypted_to<'a>(
    records: &crate::store::catalog::Index<'a>,
    file: &[u8],
    entry: &fs::DirEntry,
) -> Option<&'a str> {
    let meta = entry.metadata().ok()?;
    crate::store::rotation::possible_owners(file)
        .into_iter()
        .find_map(|owner| records.find(owner, &meta))?
        .recipients
        .as_deref()
}

/// `settings [NAME]`: every key in force for NAME (or the defaults) and where it came from.
fn show_settings(layout: &Layout, log: &Log, name: Option<&Name>) -> Result<Outcome> {
    let settings = settings::load(layout)?;
    if let Ok(text) = plan_file::read(layout) {
        warn_of_unused_tables(log, &settings, &text);
    }
    let effective = settings.for_name(name.map_or(&[][..], |name| &**name), None);
    stdout::print(effective.describe().as_bytes())?;
    log.write("Show settings");
    Ok(Outcome::Done)
}

/// Logs, and says on stderr, which `[name.…]` tables of the settings no line of `plan` uses.
fn warn_of_unused_tables(log: &Log, settings: &settings::Settings, plan: &[u8]) {
    let schedules: Vec<plan::Schedule> = plan::entries(plan)
        .iter()
        .filter_map(plan::Entry::schedule)
        .collect();
    for warning in settings.unused_tables(schedules.iter().map(|schedule| &*schedule.name)) {
        eprintln!("{warning}");
        log.write(&warning);
    }
}

fn run(
    layout: &Layout,
    log: &Log,
    index: Option<String>,
    keep: Option<Keep>,
    progress: progress::Mode,
) -> Result<Outcome> {
    let index = parse_index(index, "run")?;
    let text = plan_file::read(layout)?;
    let entries = plan::entries(&text);
    let entry = entries
        .get(index)
        .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
    let schedule = entry
        .schedule()
        .ok_or_else(|| Error::failed(format!("malformed schedule: {}", show_bytes(entry.text))))?;
    // The same settings as the service's, so a manual run keeps what the service keeps.
    let settings = settings::load(layout)?;
    warn_of_unused_tables(log, &settings, &text);
    let options = job::Options {
        settings: settings.for_name(&schedule.name, keep),
        progress,
    };
    let ran = job::run(layout, &schedule, log, &options)?;
    // `run` copies offsite in the foreground: a copy that failed fails the command.
    match ran.offsite_failure {
        Some(line) => Err(Error::already_logged(line)),
        None => Ok(Outcome::Done),
    }
}
