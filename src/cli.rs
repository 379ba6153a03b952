//! The command line: which role argv[0] (or the first argument) selects, and each role's
//! arguments, parsed with argh. Returns an exit status; only `main` exits.

use crate::daemon::{READY_FD_OPTION, SERVE_ENTRY};
use crate::error::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Error, Result};
use crate::layout::Layout;
use crate::log::Log;
use crate::manager::{self, Command};
use crate::service::{self, Readiness};
use argh::{FromArgValue, FromArgs};
use std::ffi::{OsStr, OsString};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub const MANAGER: &str = "backup_manager";
pub const SERVICE: &str = "backup_service";
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BACKUPBOX_COMMIT"),
    ")"
);

const MANAGER_COMMANDS: [&str; 7] = [
    "create", "list", "delete", "start", "stop", "backups", "run",
];

const HELP: &str = "\
backupbox: a whole backup system in one binary.

Usage:
  backup_manager [--dir DIR] <command> [argument]   edit the plan, start/stop the service
  backup_service [--dir DIR]                        run the service in the foreground
  backupbox manager ...                             same as backup_manager
  backupbox service ...                             same as backup_service
  backupbox --install DIR                           create the two role links in DIR
  backupbox --version | --help

Manager commands:
  create \"folder;hh:mm;name\"   add a schedule
  list                         show the schedules with their index
  delete INDEX                 delete a schedule
  start                        start the service in the background
  stop [--timeout SECONDS]     stop the service (waits for running backups, 90 s by default)
  backups                      list the archives in backups/
  run INDEX                    back up one schedule now, in the foreground
";

/// Runs the program for `args` (argv[0] included) and returns the exit status.
pub fn run(args: Vec<OsString>) -> i32 {
    let mut args = args.into_iter();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<OsString> = args.collect();
    match Path::new(&argv0).file_name().and_then(OsStr::to_str) {
        Some(MANAGER) => manager_role(MANAGER, &rest),
        Some(SERVICE) => service_role(SERVICE, &rest),
        _ => multicall(&rest),
    }
}

/// `backupbox ...`: the role comes from the first argument.
fn multicall(args: &[OsString]) -> i32 {
    let first = args.first().and_then(|a| a.to_str()).unwrap_or("");
    match first {
        "manager" => manager_role("backupbox manager", &args[1..]),
        "service" => service_role("backupbox service", &args[1..]),
        "--install" => match args.get(1) {
            Some(dir) if args.len() == 2 => report(install(Path::new(dir))),
            _ => usage_error("--install takes one directory"),
        },
        "--version" | "-V" => {
            println!("backupbox {VERSION}");
            EXIT_OK
        }
        "--help" | "-h" | "help" => {
            print!("{HELP}");
            EXIT_OK
        }
        "" => usage_error("no role given"),
        other => usage_error(&format!("unknown role: {other}")),
    }
}

fn usage_error(message: &str) -> i32 {
    eprintln!("backupbox: {message}\n\n{HELP}");
    EXIT_USAGE
}

/// Prints an error that has no log to go to.
fn report(result: Result<()>) -> i32 {
    match result {
        Ok(()) => EXIT_OK,
        Err(err) => {
            eprintln!("{}", err.stderr_line());
            err.exit_code()
        }
    }
}

/// A command-line value kept byte-exact. argh parses UTF-8 only, so arguments that are not
/// UTF-8 travel through it as placeholders and are swapped back here.
#[derive(Debug)]
struct RawArg(OsString);

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

/// Parses with argh; help goes to stdout (exit 0), mistakes to stderr (exit 2).
fn parse<T: FromArgs>(command_name: &str, args: &[OsString]) -> std::result::Result<T, i32> {
    let strings = argh_strings(args);
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    T::from_args(&[command_name], &refs).map_err(|exit| match exit.status {
        Ok(()) => {
            print!("{}", exit.output);
            EXIT_OK
        }
        Err(()) => {
            eprint!("{}", exit.output);
            EXIT_USAGE
        }
    })
}

/// The base directory: `--dir` or the current directory, made absolute so a daemon never
/// depends on its working directory.
fn base_dir(dir: Option<RawArg>) -> Result<Layout> {
    let dir = dir.map_or_else(|| PathBuf::from("."), |RawArg(dir)| PathBuf::from(dir));
    let absolute = std::path::absolute(&dir)
        .map_err(|err| Error::usage("can't resolve base directory").because(err))?;
    if !absolute.is_dir() {
        return Err(Error::usage(format!(
            "base directory not found: {}",
            absolute.display()
        )));
    }
    Ok(Layout::new(absolute))
}

#[derive(FromArgs)]
/// Edit the backup plan, start and stop the backup service, and list the backups.
struct ManagerArgs {
    /// base directory holding backup_schedules.txt, backups/ and logs/ (default: current directory)
    #[argh(option)]
    dir: Option<RawArg>,
    #[argh(subcommand)]
    command: ManagerCommand,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum ManagerCommand {
    Create(CreateArgs),
    List(ListArgs),
    Delete(DeleteArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Backups(BackupsArgs),
    Run(RunArgs),
}

#[derive(FromArgs)]
/// Add a schedule "folder;hh:mm;name" to the plan.
#[argh(subcommand, name = "create")]
struct CreateArgs {
    #[argh(positional)]
    schedule: Option<RawArg>,
}

#[derive(FromArgs)]
/// Show the schedules with their index.
#[argh(subcommand, name = "list")]
struct ListArgs {}

#[derive(FromArgs)]
/// Delete the schedule at an index.
#[argh(subcommand, name = "delete")]
struct DeleteArgs {
    #[argh(positional)]
    index: Option<String>,
}

#[derive(FromArgs)]
/// Start the backup service in the background.
#[argh(subcommand, name = "start")]
struct StartArgs {}

#[derive(FromArgs)]
/// Stop the backup service, letting running backups finish.
#[argh(subcommand, name = "stop")]
struct StopArgs {
    /// seconds to wait for the service to finish its running backups (default 90)
    #[argh(option, default = "90")]
    timeout: u64,
}

#[derive(FromArgs)]
/// List the archives in backups/.
#[argh(subcommand, name = "backups")]
struct BackupsArgs {}

#[derive(FromArgs)]
/// Back up the schedule at an index now, in the foreground.
#[argh(subcommand, name = "run")]
struct RunArgs {
    #[argh(positional)]
    index: Option<String>,
}

/// The `--dir` value and the command word (the first argument that is not an option or an
/// option's value), found before argh runs so an unknown word can be logged in the right place.
fn scan_manager_args(args: &[OsString]) -> (Option<RawArg>, Option<&OsString>) {
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

fn manager_role(name: &str, args: &[OsString]) -> i32 {
    if args.len() == 1 && (args[0] == "--version" || args[0] == "-V") {
        println!("backupbox {VERSION}");
        return EXIT_OK;
    }
    let (dir, word) = scan_manager_args(args);
    let is_known = |word: &OsString| {
        MANAGER_COMMANDS
            .iter()
            .any(|known| OsStr::new(known) == word.as_os_str())
    };
    if let Some(word) = word.filter(|word| !is_known(word)) {
        // The spec's "unknown instruction": logged like any other error, usage on stderr.
        let err = Error::usage(format!(
            "unknown instruction: {}",
            crate::log::show_bytes(word.as_bytes())
        ));
        eprintln!("{}\n\n{HELP}", err.stderr_line());
        return match base_dir(dir) {
            Ok(layout) => finish_manager(&Log::new(layout.manager_log()), Err(err)),
            Err(_) => err.exit_code(),
        };
    }
    let ManagerArgs { dir, command } = match parse::<ManagerArgs>(name, args) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let layout = match base_dir(dir) {
        Ok(layout) => layout,
        Err(err) => return report(Err(err)),
    };
    let command = match command {
        ManagerCommand::Create(CreateArgs { schedule }) => Command::Create {
            schedule: schedule.map(|RawArg(s)| s),
        },
        ManagerCommand::List(_) => Command::List,
        ManagerCommand::Delete(DeleteArgs { index }) => Command::Delete { index },
        ManagerCommand::Start(_) => Command::Start,
        ManagerCommand::Stop(StopArgs { timeout }) => Command::Stop {
            // Capped at a day so that no value can overflow a deadline.
            timeout: Duration::from_secs(timeout.min(24 * 60 * 60)),
        },
        ManagerCommand::Backups(_) => Command::Backups,
        ManagerCommand::Run(RunArgs { index }) => Command::Run { index },
    };
    let log = Log::new(layout.manager_log());
    let result = std::env::current_exe()
        .map_err(|err| Error::failed("can't find own executable").because(err))
        .and_then(|exe| manager::execute(&layout, &log, &exe, command));
    if let Err(err) = &result {
        eprintln!("{}", err.stderr_line());
    }
    finish_manager(&log, result)
}

/// Logs a manager error once (unless it was logged where it happened) and gives the exit status.
fn finish_manager(log: &Log, result: Result<()>) -> i32 {
    match result {
        Ok(()) => EXIT_OK,
        Err(err) => {
            if !err.logged {
                log.write(&format!("Error: {}", err.message));
            }
            err.exit_code()
        }
    }
}

#[derive(FromArgs)]
/// Run the backup service in the foreground: back up each folder of backup_schedules.txt at its time.
struct ServiceArgs {
    /// base directory holding backup_schedules.txt, backups/ and logs/ (default: current directory)
    #[argh(option)]
    dir: Option<RawArg>,
}

fn service_role(name: &str, args: &[OsString]) -> i32 {
    if args.len() == 1 && (args[0] == "--version" || args[0] == "-V") {
        println!("backupbox {VERSION}");
        return EXIT_OK;
    }
    // `__serve` is `start`'s private entry; argh cannot hide a subcommand, so it is taken here.
    let (readiness, args) = match args.first().and_then(|a| a.to_str()) {
        Some(SERVE_ENTRY) => match take_ready_fd(&args[1..]) {
            Ok(split) => split,
            Err(status) => return status,
        },
        _ => (Readiness::none(), args.to_vec()),
    };
    let ServiceArgs { dir } = match parse::<ServiceArgs>(name, &args) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let layout = match base_dir(dir) {
        Ok(layout) => layout,
        Err(err) => return report(Err(err)),
    };
    match service::serve(&layout, readiness) {
        Ok(()) => EXIT_OK,
        Err(err) => {
            eprintln!("{}", err.stderr_line());
            EXIT_FAILED
        }
    }
}

/// Removes `--ready-fd N` from the daemon's arguments and adopts that descriptor.
fn take_ready_fd(args: &[OsString]) -> std::result::Result<(Readiness, Vec<OsString>), i32> {
    let Some(at) = args.iter().position(|a| a == READY_FD_OPTION) else {
        return Ok((Readiness::none(), args.to_vec()));
    };
    let fd: i32 = match args
        .get(at + 1)
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
    {
        Some(fd) if fd > 2 => fd,
        _ => return Err(usage_error("--ready-fd takes a descriptor number above 2")),
    };
    let mut rest = args.to_vec();
    rest.drain(at..at + 2);
    // SAFETY: `start` passed this descriptor, open and owned by nobody else, across exec.
    Ok((Readiness::pipe(unsafe { OwnedFd::from_raw_fd(fd) }), rest))
}

/// Creates `backup_manager` and `backup_service` links to this executable in `dir`,
/// replacing older links but never a regular file.
fn install(dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|err| Error::failed("can't find own executable").because(err))?;
    for role in [MANAGER, SERVICE] {
        let link = dir.join(role);
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if !meta.file_type().is_symlink() => {
                return Err(Error::failed(format!(
                    "{} exists and is not a link; not replaced",
                    link.display()
                )));
            }
            _ => {}
        }
        let staging = dir.join(format!(".{role}.backupbox-new"));
        let _ = std::fs::remove_file(&staging);
        std::os::unix::fs::symlink(&exe, &staging)
            .and_then(|()| std::fs::rename(&staging, &link))
            .map_err(|err| {
                Error::failed(format!("can't create {}", link.display())).because(err)
            })?;
        println!("{} -> {}", link.display(), exe.display());
    }
    Ok(())
}
