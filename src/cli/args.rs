//! Each role's arguments as argh parses them, with values kept byte-exact.

use crate::manager::Command;
use argh::{FromArgValue, FromArgs};
use std::ffi::{OsStr, OsString};
use std::sync::OnceLock;
use std::time::Duration;

/// The manager's command words, known before argh runs so an unknown one can be logged.
const MANAGER_COMMANDS: [&str; 10] = [
    "create", "list", "delete", "start", "stop", "backups", "run", "status", "verify", "restore",
];

/// A command-line value kept byte-exact. argh parses UTF-8 only, so arguments that are not
/// UTF-8 travel through it as placeholders and are swapped back here.
#[derive(Debug)]
pub struct RawArg(pub OsString);

static ORIGINAL_ARGS: OnceLock<Vec<OsString>> = OnceLock::new();
const PLACEHOLDER: &str = "\u{1}backupbox-arg-";

impl FromArgValue for RawArg {
    fn from_arg_value(value: &str) -> std::result::Result<Self, String> {
        let original = value
            .strip_prefix(PLACEHOLDER)
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|index| ORIGINAL_ARGS.get()?.get(index).cloned());
        Ok(RawArg(original.unwrap_or_else(|| value.into())))
    }
}

/// The arguments as strings for argh, with placeholders for those that are not UTF-8 (or
/// that look like a placeholder themselves).
fn argh_strings(args: &[OsString]) -> Vec<String> {
    let _ = ORIGINAL_ARGS.set(args.to_vec());
    args.iter()
        .enumerate()
        .map(|(index, arg)| match arg.to_str() {
            Some(text) if !text.starts_with(PLACEHOLDER) => text.to_owned(),
            _ => format!("{PLACEHOLDER}{index}"),
        })
        .collect()
}

/// Why parsing ended without arguments to act on.
#[derive(Debug)]
pub enum ParseExit {
    /// `--help` was asked for and printed (exit 0).
    Help,
    /// The arguments were wrong; argh's explanation was printed on stderr. Holds its first line.
    Usage(String),
}

/// Parses with argh; help goes to stdout, mistakes to stderr.
pub fn parse<T: FromArgs>(
    command_name: &str,
    args: &[OsString],
) -> std::result::Result<T, ParseExit> {
    let strings = argh_strings(args);
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    T::from_args(&[command_name], &refs).map_err(|exit| match exit.status {
        Ok(()) => {
            let _ = crate::stdout::print(exit.output.as_bytes());
            ParseExit::Help
        }
        Err(()) => {
            eprint!("{}", exit.output);
            ParseExit::Usage(
                exit.output
                    .lines()
                    .next()
                    .unwrap_or("bad arguments")
                    .to_owned(),
            )
        }
    })
}

#[derive(FromArgs)]
/// Edit the backup plan, start and stop the backup service, and list the backups.
pub struct ManagerArgs {
    /// base directory holding backup_schedules.txt, backups/ and logs/ (default: current directory)
    #[argh(option)]
    pub dir: Option<RawArg>,
    #[argh(subcommand)]
    pub command: ManagerCommand,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ManagerCommand {
    Create(CreateArgs),
    List(ListArgs),
    Delete(DeleteArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Backups(BackupsArgs),
    Run(RunArgs),
    Status(StatusArgs),
    Verify(VerifyArgs),
    Restore(RestoreArgs),
}

/// `--keep N`: archives kept per name, `<name>.tar` included.
#[derive(Debug, Clone, Copy)]
pub struct Keep(pub u32);

impl FromArgValue for Keep {
    fn from_arg_value(value: &str) -> std::result::Result<Self, String> {
        match value.parse::<u32>() {
            Ok(keep) if keep >= 1 => Ok(Keep(keep)),
            _ => Err(format!(
                "--keep takes a whole number from 1 up, not {value:?}"
            )),
        }
    }
}

fn default_keep() -> Keep {
    Keep(1)
}

#[derive(FromArgs)]
/// Add a schedule "folder;hh:mm;name" to the plan.
#[argh(subcommand, name = "create")]
pub struct CreateArgs {
    #[argh(positional)]
    schedule: Option<RawArg>,
}

#[derive(FromArgs)]
/// Show the schedules with their index.
#[argh(subcommand, name = "list")]
pub struct ListArgs {}

#[derive(FromArgs)]
/// Delete the schedule at an index.
#[argh(subcommand, name = "delete")]
pub struct DeleteArgs {
    #[argh(positional)]
    index: Option<String>,
}

#[derive(FromArgs)]
/// Start the backup service in the background.
#[argh(subcommand, name = "start")]
pub struct StartArgs {
    /// archives to keep per name, the newest included (default 1: each backup replaces the last)
    #[argh(option, default = "default_keep()")]
    keep: Keep,
}

#[derive(FromArgs)]
/// Stop the backup service, letting running backups finish.
#[argh(subcommand, name = "stop")]
pub struct StopArgs {
    /// seconds to wait for the service to finish its running backups (default 90)
    #[argh(option, default = "90")]
    timeout: u64,
}

#[derive(FromArgs)]
/// List the archives in backups/.
#[argh(subcommand, name = "backups")]
pub struct BackupsArgs {
    /// show each archive's size and modification time too
    #[argh(switch)]
    long: bool,
}

#[derive(FromArgs)]
/// Back up the schedule at an index now, in the foreground.
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    #[argh(positional)]
    index: Option<String>,
    /// archives to keep per name, the newest included (default 1: each backup replaces the last)
    #[argh(option, default = "default_keep()")]
    keep: Keep,
}

#[derive(FromArgs)]
/// Show each schedule's next run and last outcome, and whether the service runs. Exit 0 when all is well.
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// print JSON for machines
    #[argh(switch)]
    json: bool,
}

#[derive(FromArgs)]
/// Check that backups/NAME.tar is a sound archive, read end to end.
#[argh(subcommand, name = "verify")]
pub struct VerifyArgs {
    #[argh(positional)]
    name: Option<RawArg>,
    /// also compare the archive with the live folder, like tar --compare
    #[argh(switch)]
    against: bool,
}

#[derive(FromArgs)]
/// Extract backups/NAME.tar into restore/NAME/ (or --to DIR).
#[argh(subcommand, name = "restore")]
pub struct RestoreArgs {
    #[argh(positional)]
    name: Option<RawArg>,
    /// folder to extract into (default: restore/NAME in the base directory)
    #[argh(option)]
    to: Option<RawArg>,
    /// overwrite files that already exist
    #[argh(switch)]
    force: bool,
    /// also restore symlinks that point outside the folder (absolute ones, as in /etc)
    #[argh(switch)]
    outside_links: bool,
}

impl ManagerCommand {
    /// The command with its arguments in the manager's terms.
    pub fn into_command(self) -> Command {
        match self {
            ManagerCommand::Create(CreateArgs { schedule }) => Command::Create {
                schedule: schedule.map(|RawArg(s)| s),
            },
            ManagerCommand::List(_) => Command::List,
            ManagerCommand::Delete(DeleteArgs { index }) => Command::Delete { index },
            ManagerCommand::Start(StartArgs { keep: Keep(keep) }) => Command::Start { keep },
            ManagerCommand::Stop(StopArgs { timeout }) => Command::Stop {
                // Capped at a day so that no value can overflow a deadline.
                timeout: Duration::from_secs(timeout.min(24 * 60 * 60)),
            },
            ManagerCommand::Backups(BackupsArgs { long }) => Command::Backups { long },
            ManagerCommand::Run(RunArgs {
                index,
                keep: Keep(keep),
            }) => Command::Run { index, keep },
            ManagerCommand::Status(StatusArgs { json }) => Command::Status { json },
            ManagerCommand::Verify(VerifyArgs { name, against }) => Command::Verify {
                name: name.map(|RawArg(n)| n),
                against,
            },
            ManagerCommand::Restore(RestoreArgs {
                name,
                to,
                force,
                outside_links,
            }) => Command::Restore {
                name: name.map(|RawArg(n)| n),
                to: to.map(|RawArg(t)| t),
                force,
                outside_links,
            },
        }
    }

    pub fn is_known(word: &OsStr) -> bool {
        MANAGER_COMMANDS
            .iter()
            .any(|known| OsStr::new(known) == word)
    }
}

/// The `--dir` value and the command word (the first argument that is not an option or an
/// option's value), found before argh runs so an unknown word can be logged in the right place.
pub fn scan_manager_args(args: &[OsString]) -> (Option<RawArg>, Option<&OsString>) {
    let mut dir = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--dir") => dir = args.next().map(|d| RawArg(d.clone())),
            Some(option) if option.starts_with('-') => {}
            _ => return (dir, Some(arg)),
        }
    }
    (dir, None)
}

#[derive(FromArgs)]
/// Run the backup service in the foreground: back up each folder of backup_schedules.txt at its time.
pub struct ServiceArgs {
    /// base directory holding backup_schedules.txt, backups/ and logs/ (default: current directory)
    #[argh(option)]
    pub dir: Option<RawArg>,
    /// archives to keep per name, the newest included (default 1: each backup replaces the last)
    #[argh(option, default = "default_keep()")]
    pub keep: Keep,
}
