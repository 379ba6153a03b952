//! Each role's arguments as argh parses them, with values kept byte-exact. `ManagerCommand`
//! is the one table of the manager's commands: dispatch, the list of known words and every
//! help text come from it.

use crate::store::Keep;
use argh::{FromArgValue, FromArgs, SubCommands};
use std::ffi::{OsStr, OsString};
use std::sync::OnceLock;

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
            let _ = crate::stdout::print_line(exit.output.trim_end());
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
    Settings(SettingsArgs),
    Prune(PruneArgs),
    Contents(ContentsArgs),
    Check(CheckArgs),
}

impl ManagerCommand {
    /// Whether `word` names a manager command (`help` included, which argh answers).
    pub fn is_known(word: &OsStr) -> bool {
        word == HELP_WORD
            || Self::COMMANDS
                .iter()
                .any(|command| OsStr::new(command.name) == word)
    }
}

impl FromArgValue for Keep {
    fn from_arg_value(value: &str) -> std::result::Result<Self, String> {
        value
            .parse::<u32>()
            .ok()
            .filter(|count| *count <= Keep::MAX)
            .and_then(Keep::new)
            .ok_or_else(|| {
                format!(
                    "--keep takes a whole number from 1 to {}, not {value:?}",
                    Keep::MAX
                )
            })
    }
}

#[derive(FromArgs)]
/// Show the settings in force (backupbox.toml), for one archive name or the defaults.
#[argh(subcommand, name = "settings")]
pub struct SettingsArgs {
    #[argh(positional)]
    pub name: Option<RawArg>,
}

#[derive(FromArgs)]
/// Remove the generations the retention settings do not keep, for NAME or every name in the plan.
#[argh(subcommand, name = "prune")]
pub struct PruneArgs {
    #[argh(positional)]
    pub name: Option<RawArg>,
    /// only show what would be removed
    #[argh(switch)]
    pub dry_run: bool,
}

#[derive(FromArgs)]
/// List the members of backups/NAME.tar, like tar -tf.
#[argh(subcommand, name = "contents")]
pub struct ContentsArgs {
    #[argh(positional)]
    pub name: Option<RawArg>,
    /// show type, mode, owner, size and time too, like tar -tvf
    #[argh(switch)]
    pub long: bool,
    /// print one JSON object a line, one per member, for machines
    #[argh(switch)]
    pub json: bool,
    /// list the newest state at or before this local time, "dd/mm/yyyy hh:mm" (default: the
    /// newest)
    #[argh(option)]
    pub as_of: Option<String>,
    /// an age identity file, for an encrypted archive; give it more than once for archives
    /// made under older keys (default: $BACKUPBOX_IDENTITY)
    #[argh(option)]
    pub identity: Vec<RawArg>,
}

/// `backup_manager help [COMMAND]`: argh has its own `help` word, which the command line
/// answers before argh runs.
pub const HELP_WORD: &str = "help";

#[derive(FromArgs)]
/// Add a schedule "folder;hh:mm;name" to the plan.
#[argh(subcommand, name = "create")]
pub struct CreateArgs {
    #[argh(positional)]
    pub schedule: Option<RawArg>,
}

#[derive(FromArgs)]
/// Show the schedules with their index.
#[argh(subcommand, name = "list")]
pub struct ListArgs {
    /// print JSON for machines: {"schedules": [...]}
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs)]
/// Delete the schedule at an index.
#[argh(subcommand, name = "delete")]
pub struct DeleteArgs {
    #[argh(positional)]
    pub index: Option<String>,
}

#[derive(FromArgs)]
/// Start the backup service in the background.
#[argh(subcommand, name = "start")]
pub struct StartArgs {
    /// archives to keep per name, the newest included (default: keep in backupbox.toml, else 1: each backup replaces the last)
    #[argh(option)]
    pub keep: Option<Keep>,
}

#[derive(FromArgs)]
/// Stop the backup service, letting running backups finish.
#[argh(subcommand, name = "stop")]
pub struct StopArgs {
    /// seconds to wait for the service to finish its running backups (default 90)
    #[argh(option, default = "90")]
    pub timeout: u64,
}

#[derive(FromArgs)]
/// List the archives in backups/.
#[argh(subcommand, name = "backups")]
pub struct BackupsArgs {
    /// show each archive's size and modification time too
    #[argh(switch)]
    pub long: bool,
    /// print JSON for machines, with all --long shows: {"archives": [...]}
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs)]
/// Back up now, in the foreground: the schedule at an index, every schedule writing an archive name, or --all.
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// the schedule's index, or an archive name: every plan line that writes it (a name that
    /// is a number is taken as an index)
    #[argh(positional)]
    pub index: Option<String>,
    /// run every plan line, in order
    #[argh(switch)]
    pub all: bool,
    /// print one JSON line per job: name, archive, size, seconds, outcome
    #[argh(switch)]
    pub json: bool,
    /// archives to keep per name, the newest included (default: keep in backupbox.toml, else 1: each backup replaces the last)
    #[argh(option)]
    pub keep: Option<Keep>,
    /// show no progress line, even on a terminal
    #[argh(switch)]
    pub quiet: bool,
    /// show the progress line on stderr even when it is not a terminal
    #[argh(switch)]
    pub progress: bool,
}

#[derive(FromArgs)]
/// Check the plan, the settings, every folder and where the backups go, before trusting them: one line per problem, exit 1 if any.
#[argh(subcommand, name = "check")]
pub struct CheckArgs {}

#[derive(FromArgs)]
/// Show each schedule's next run and last outcome, and whether the service runs. Exit 0 when all is well.
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// print JSON for machines
    #[argh(switch)]
    pub json: bool,
    /// print Prometheus metrics, as the service writes to its metrics file (exit 0)
    #[argh(switch)]
    pub prometheus: bool,
}

#[derive(FromArgs)]
/// Check that backups/NAME.tar is a sound archive, read end to end.
#[argh(subcommand, name = "verify")]
pub struct VerifyArgs {
    #[argh(positional)]
    pub name: Option<RawArg>,
    /// also compare the archive with the live folder, like tar --compare
    #[argh(switch)]
    pub against: bool,
    /// print one JSON document for machines: the archives checked and the differences
    #[argh(switch)]
    pub json: bool,
    /// an age identity file, for an encrypted archive; give it more than once for archives
    /// made under older keys (default: $BACKUPBOX_IDENTITY)
    #[argh(option)]
    pub identity: Vec<RawArg>,

    /// show no progress line, even on a terminal
    #[argh(switch)]
    pub quiet: bool,
    /// show the progress line on stderr even when it is not a terminal
    #[argh(switch)]
    pub progress: bool,
}

#[derive(FromArgs)]
/// Extract backups/NAME.tar, or only the MEMBERs given, into restore/NAME/ (or --to DIR).
#[argh(subcommand, name = "restore")]
pub struct RestoreArgs {
    /// the archive name, then the members to restore, each with everything below it
    /// (default: all of them)
    #[argh(positional)]
    pub name_and_members: Vec<RawArg>,
    /// folder to extract into (default: restore/NAME in the base directory)
    #[argh(option)]
    pub to: Option<RawArg>,
    /// overwrite files that already exist
    #[argh(switch)]
    pub force: bool,
    /// then remove what the folder holds that the restored state lacks (never through a
    /// link)
    #[argh(switch)]
    pub delete: bool,
    /// restore the newest state at or before this local time, "dd/mm/yyyy hh:mm" (default:
    /// the newest)
    #[argh(option)]
    pub as_of: Option<String>,
    /// refuse the whole restore if a symlink would point outside the folder (by default
    /// links are restored as stored, as GNU tar does; nothing is ever written through one)
    #[argh(switch)]
    pub refuse_outside_links: bool,
    /// restore symlinks that point outside the folder as they are: the default, kept for
    /// scripts that pass it
    #[argh(switch)]
    pub outside_links: bool,
    /// as root, give files the stored uid and gid (by default the local ids of the stored
    /// user and group names, where they exist here, as GNU tar does)
    #[argh(switch)]
    pub numeric_owner: bool,
    /// an age identity file, for an encrypted archive; give it more than once for archives
    /// made under older keys (default: $BACKUPBOX_IDENTITY)
    #[argh(option)]
    pub identity: Vec<RawArg>,

    /// show no progress line, even on a terminal
    #[argh(switch)]
    pub quiet: bool,
    /// show the progress line on stderr even when it is not a terminal
    #[argh(switch)]
    pub progress: bool,
}

/// The options whose value is the next argument: a `--dir` there is a value, not the option.
const TAKES_A_VALUE: [&str; 6] = [
    "--to",
    "--keep",
    "--identity",
    "--timeout",
    "--as-of",
    "--dir",
];

/// `args` with a `--dir DIR` given after the command word moved in front of it, where argh
/// takes it: `backup_manager status --dir /srv/box` works as `--dir /srv/box status` does.
pub fn dir_first(args: &[OsString]) -> Vec<OsString> {
    let (_, word) = scan_manager_args(args);
    let Some(word_at) = word.and_then(|word| args.iter().position(|arg| std::ptr::eq(arg, word)))
    else {
        return args.to_vec();
    };
    let mut at = word_at + 1;
    while at < args.len() {
        match args[at].to_str() {
            Some("--") => break,
            Some("--dir") if at + 1 < args.len() => {
                let mut moved = args.to_vec();
                let value = moved.remove(at + 1);
                let flag = moved.remove(at);
                moved.insert(word_at, value);
                moved.insert(word_at, flag);
                return moved;
            }
            Some(option) if TAKES_A_VALUE.contains(&option) => at += 2,
            _ => at += 1,
        }
    }
    args.to_vec()
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
    /// archives to keep per name, the newest included (default: keep in backupbox.toml, else 1: each backup replaces the last)
    #[argh(option)]
    pub keep: Option<Keep>,
}
