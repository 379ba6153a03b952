//! Lowers argh's command structs into the manager's own commands ([`manager::Command`]),
//! checking what argh cannot (archive names, contradicting switches), so the commands never
//! see the command line's types.

use super::args::{
    BackupsArgs, ContentsArgs, CreateArgs, DeleteArgs, ListArgs, ManagerCommand, PruneArgs, RawArg,
    RestoreArgs, RunArgs, SettingsArgs, StartArgs, StatusArgs, StopArgs, VerifyArgs,
};
use crate::error::{Error, Result};
use crate::log::show_bytes;
use crate::manager::{Command, StatusFormat, restore};
use crate::plan::Name;
use crate::progress;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

/// Longest `stop --timeout`: a day, so that no value can overflow a deadline.
const MAX_STOP_TIMEOUT: u64 = 24 * 60 * 60;

/// The manager command the parsed command line asks for, or a usage error.
pub fn manager_command(command: ManagerCommand) -> Result<Command> {
    Ok(match command {
        ManagerCommand::Create(CreateArgs { schedule }) => Command::Create {
            schedule: schedule.map(|RawArg(schedule)| schedule),
        },
        ManagerCommand::List(ListArgs { json }) => Command::List { json },
        ManagerCommand::Check(_) => Command::Check,
        ManagerCommand::Delete(DeleteArgs { index }) => Command::Delete { index },
        ManagerCommand::Start(StartArgs { keep }) => Command::Start { keep },
        ManagerCommand::Stop(StopArgs { timeout }) => Command::Stop {
            timeout: Duration::from_secs(timeout.min(MAX_STOP_TIMEOUT)),
        },
        ManagerCommand::Backups(BackupsArgs { long, json }) => Command::Backups { long, json },
        ManagerCommand::Run(args) => run_command(args)?,
        ManagerCommand::Prune(PruneArgs { name, dry_run }) => Command::Prune {
            name: name
                .map(|name| archive_name(Some(name), "prune"))
                .transpose()?,
            dry_run,
        },
        ManagerCommand::Settings(SettingsArgs { name }) => Command::Settings {
            name: name
                .map(|name| archive_name(Some(name), "settings"))
                .transpose()?,
        },
        ManagerCommand::Contents(ContentsArgs {
            name,
            long,
            json,
            as_of,
            identity,
        }) => Command::Contents {
            name: archive_name(name, "contents")?,
            long,
            json,
            as_of: as_of.as_deref().map(as_of_minute).transpose()?,
            identity: identity_files(identity),
        },
        ManagerCommand::Status(StatusArgs { json, prometheus }) => Command::Status {
            format: match (json, prometheus) {
                (true, true) => {
                    return Err(Error::usage(
                        "status takes --json or --prometheus, not both",
                    ));
                }
                (false, true) => StatusFormat::Prometheus,
                (true, false) => StatusFormat::Json,
                (false, false) => StatusFormat::Text,
            },
        },
        ManagerCommand::Verify(VerifyArgs {
            name,
            against,
            json,
            identity,
            quiet,
            progress,
        }) => Command::Verify {
            name: archive_name(name, "verify")?,
            against,
            json,
            identity: identity_files(identity),
            progress: progress::Mode::from_switches(quiet, progress),
        },
        ManagerCommand::Restore(args) => restore_command(args)?,
    })
}

fn run_command(args: RunArgs) -> Result<Command> {
    let RunArgs {
        index,
        all,
        json,
        keep,
        quiet,
        progress,
    } = args;
    let which = match (index, all) {
        (Some(_), true) => {
            return Err(Error::usage(
                "run takes an index, a name or --all, not both",
            ));
        }
        (None, true) => crate::manager::RunWhich::All,
        (Some(word), false) => crate::manager::RunWhich::Word(word),
        (None, false) => return Err(Error::usage("run needs a schedule index")),
    };
    Ok(Command::Run {
        which,
        keep,
        json,
        progress: progress::Mode::from_switches(quiet, progress),
    })
}

/// The wall-clock minute of an `--as-of` value.
fn as_of_minute(text: &str) -> Result<i64> {
    crate::clock::wall_minute_of_stamp(text).ok_or_else(|| {
        Error::usage(format!(
            "--as-of takes a local time as \"dd/mm/yyyy hh:mm\", not {}",
            crate::log::quoted(text)
        ))
    })
}

fn restore_command(args: RestoreArgs) -> Result<Command> {
    let RestoreArgs {
        name_and_members,
        to,
        force,
        delete,
        as_of,
        refuse_outside_links,
        outside_links,
        numeric_owner,
        identity,
        quiet,
        progress,
    } = args;
    if refuse_outside_links && outside_links {
        return Err(Error::usage(
            "--refuse-outside-links and --outside-links contradict each other",
        ));
    }
    let mut words = name_and_members.into_iter();
    let name = archive_name(words.next(), "restore")?;
    let members: Vec<Vec<u8>> = words.map(|RawArg(member)| member.into_vec()).collect();
    if delete && !members.is_empty() {
        return Err(Error::usage(
            "--delete restores the whole state; it takes no member names",
        ));
    }
    let options = restore::Options {
        to: to.map(|RawArg(to)| PathBuf::from(to)),
        force,
        delete,
        as_of: as_of.as_deref().map(as_of_minute).transpose()?,
        refuse_outside_links,
        numeric_owner,
        members,
        identity: identity_files(identity),
        progress: progress::Mode::from_switches(quiet, progress),
    };
    Ok(Command::Restore { name, options })
}

/// The identity files given with `--identity`, or else the one `BACKUPBOX_IDENTITY` names.
fn identity_files(given: Vec<RawArg>) -> Vec<PathBuf> {
    if given.is_empty() {
        return std::env::var_os("BACKUPBOX_IDENTITY")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
    }
    given
        .into_iter()
        .map(|RawArg(path)| PathBuf::from(path))
        .collect()
}

/// The archive name a command works on: a schedule name, so no `/`, `.` or `..`.
fn archive_name(name: Option<RawArg>, command: &str) -> Result<Name> {
    let RawArg(name) =
        name.ok_or_else(|| Error::usage(format!("{command} needs an archive name")))?;
    let name = name.into_vec();
    Name::new(&name)
        .ok_or_else(|| Error::usage(format!("not an archive name: {}", show_bytes(&name))))
}
