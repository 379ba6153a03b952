//! The command line: which role argv[0] (or the first argument) selects, and each role's
//! arguments, parsed with argh. Returns an exit status; only `main` exits.

pub mod args;
mod complete;
mod help;
mod lower;

use crate::cli::args::{
    HELP_WORD, ManagerArgs, ManagerCommand, ParseExit, RawArg, ServiceArgs, parse,
    scan_manager_args,
};
use crate::error::{EXIT_OK, EXIT_USAGE, Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::Log;
use crate::manager;
use crate::service;
use crate::service::readiness::{Readiness, SERVE_ENTRY};
use crate::stdout;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub const MANAGER: &str = "backup_manager";
pub const SERVICE: &str = "backup_service";
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BACKUPBOX_COMMIT"),
    ")"
);
/// What a usage error points to, rather than the whole help.
const SEE_HELP: &str = "Run 'backup_manager help' for the commands and their options.";

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
        "completions" => match args.get(1).and_then(|shell| shell.to_str()) {
            Some(shell @ ("bash" | "zsh" | "fish")) if args.len() == 2 => {
                let script = match shell {
                    "bash" => complete::bash(),
                    "zsh" => complete::zsh(),
                    _ => complete::fish(),
                };
                report(stdout::print(script.as_bytes()))
            }
            _ => usage_error("completions takes one shell: bash, zsh or fish"),
        },
        "man" if args.len() == 1 => report(stdout::print(complete::man_page().as_bytes())),
        "--version" | "-V" => print_version(),
        "--help" | "-h" | "help" => print_help(),
        "" => usage_error("no role given"),
        other => usage_error(&format!("unknown role: {other}")),
    }
}

fn is_version_request(args: &[OsString]) -> bool {
    args.len() == 1 && (args[0] == "--version" || args[0] == "-V")
}

fn print_version() -> i32 {
    let _ = crate::stdout::print_line(&format!("backupbox {VERSION}"));
    EXIT_OK
}

fn usage_error(message: &str) -> i32 {
    eprintln!("backupbox: {message}\n{SEE_HELP}");
    EXIT_USAGE
}

fn print_help() -> i32 {
    let _ = stdout::print(help::full().as_bytes());
    EXIT_OK
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

/// Where the base directory comes from when `--dir` is not given.
const DIR_VARIABLE: &str = "BACKUPBOX_DIR";

/// The base directory: `--dir`, else `$BACKUPBOX_DIR` (when set and not empty), else the
/// current directory; made absolute so a daemon never depends on its working directory.
fn base_dir(dir: Option<RawArg>) -> Result<Layout> {
    let from_environment = || {
        std::env::var_os(DIR_VARIABLE)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
    };
    let dir = dir.map_or_else(
        || from_environment().unwrap_or_else(|| PathBuf::from(".")),
        |RawArg(dir)| PathBuf::from(dir),
    );
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

fn manager_role(name: &str, args: &[OsString]) -> i32 {
    if is_version_request(args) {
        return print_version();
    }
    let args = &crate::cli::args::dir_first(args);
    let (dir, word) = scan_manager_args(args);
    match word {
        None if args.iter().any(|arg| arg == "--help" || arg == "-h") => return print_help(),
        Some(word) if word == HELP_WORD => return command_help(args, word),
        Some(word) if !ManagerCommand::is_known(word) => {
            // The spec's "unknown instruction": logged like any other error, usage on stderr.
            let message = format!(
                "unknown instruction: {}",
                crate::log::show_bytes(word.as_bytes())
            );
            eprintln!(
                "Error: {message}\n\nUsage: {name} [--dir DIR] <command> [arguments]\n{SEE_HELP}"
            );
            return log_usage_error(dir, message);
        }
        _ => {}
    }
    let ManagerArgs { dir, command } = match parse::<ManagerArgs>(name, args) {
        Ok(parsed) => parsed,
        Err(ParseExit::Help) => return EXIT_OK,
        Err(ParseExit::Usage(message)) => return log_usage_error(dir, message),
    };
    let layout = match base_dir(dir) {
        Ok(layout) => layout,
        Err(err) => return report(Err(err)),
    };
    let log = Log::new(layout.manager_log());
    let result = std::env::current_exe()
        .map_err(|err| Error::failed("can't find own executable").because(err))
        .and_then(|exe| {
            let command = lower::manager_command(command)?;
            manager::execute(&layout, &log, &exe, command)
        });
    finish_manager(&log, result)
}

/// `help [COMMAND]`: the whole help, or one command's.
fn command_help(args: &[OsString], help_word: &OsString) -> i32 {
    let after = args
        .iter()
        .skip_while(|arg| *arg != help_word)
        .nth(1)
        .map(|arg| arg.to_string_lossy().into_owned());
    match after.as_deref().map(help::command) {
        None => print_help(),
        Some(Some(text)) => {
            let _ = stdout::print_line(text.trim_end());
            EXIT_OK
        }
        Some(None) => usage_error("help: no such command"),
    }
}

/// Logs a command-line mistake, already explained on stderr, in the manager log of the base
/// directory it names, if any.
fn log_usage_error(dir: Option<RawArg>, message: String) -> i32 {
    let err = Error::usage(message);
    if let Ok(layout) = base_dir(dir) {
        log_error(&Log::new(layout.manager_log()), &err);
    }
    err.exit_code()
}

/// Where every manager outcome becomes an exit status; an error is shown on stderr with its
/// reason, and logged.
fn finish_manager(log: &Log, result: Result<Outcome>) -> i32 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprintln!("{}", err.stderr_line());
            if !err.is_logged() {
                log_error(log, &err);
            }
            err.exit_code()
        }
    }
}

/// The one place a manager error becomes a log line.
fn log_error(log: &Log, err: &Error) {
    for line in err.log_lines() {
        log.write(&line);
    }
}

fn service_role(name: &str, args: &[OsString]) -> i32 {
    if is_version_request(args) {
        return print_version();
    }
    // `__serve` is `start`'s private entry; argh cannot hide a subcommand, so it is taken here.
    let mut args = args.to_vec();
    let readiness = if args.first().is_some_and(|a| a == SERVE_ENTRY) {
        args.remove(0);
        match Readiness::take_from(&mut args) {
            Ok(readiness) => readiness,
            Err(err) => return usage_error(&err.to_string()),
        }
    } else {
        Readiness::none()
    };
    let ServiceArgs { dir, keep } = match parse::<ServiceArgs>(name, &args) {
        Ok(parsed) => parsed,
        Err(ParseExit::Help) => return EXIT_OK,
        Err(ParseExit::Usage(_)) => return EXIT_USAGE,
    };
    let layout = match base_dir(dir) {
        Ok(layout) => layout,
        Err(err) => return report(Err(err)),
    };
    report(service::serve(&layout, readiness, keep))
}

/// Creates `backup_manager` and `backup_service` links to this executable in `dir`,
/// replacing older links but never a regular file.
fn install(dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|err| Error::failed("can't find own executable").because(err))?;
    // Like `install -d`: the missing folders are made 0755 whatever the umask, readable by
    // all as a bin folder is; folders that exist keep their mode.
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|part| !part.as_os_str().is_empty())
        .take_while(|part| !part.exists())
        .collect();
    let cant_create =
        |err: std::io::Error| Error::failed(format!("can't create {}", dir.display())).because(err);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(cant_create)?;
    for made in missing {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(made, std::fs::Permissions::from_mode(0o755))
            .map_err(cant_create)?;
    }
    let target = link_target(&exe, dir);
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
        std::os::unix::fs::symlink(&target, &staging)
            .and_then(|()| std::fs::rename(&staging, &link))
            .map_err(|err| {
                Error::failed(format!("can't create {}", link.display())).because(err)
            })?;
        crate::stdout::print_line(&format!("{} -> {}", link.display(), target.display()))?;
    }
    Ok(())
}

/// What the role links point to: the binary's own name when it sits in `dir` (the links keep
/// working when the folder is moved, copied into an image or mounted elsewhere), else its
/// full path.
fn link_target(exe: &Path, dir: &Path) -> std::path::PathBuf {
    let same_folder = exe
        .parent()
        .and_then(|parent| parent.canonicalize().ok())
        .is_some_and(|parent| dir.canonicalize().is_ok_and(|dir| dir == parent));
    match exe.file_name() {
        Some(name) if same_folder => name.into(),
        _ => exe.to_path_buf(),
    }
}
