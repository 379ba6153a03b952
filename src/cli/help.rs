//! Help texts, generated from the command table in `args` (argh's own help of each command),
//! so that no list of commands or options can drift from what the parser takes.

use super::args::{ManagerArgs, ManagerCommand, ServiceArgs};
use argh::{FromArgs, SubCommands};

const ROLES: &str = "\
backupbox: a whole backup system in one binary.

Usage:
  backup_manager [--dir DIR] <command> [arguments]   edit the plan, start/stop the service
  backup_service [--dir DIR] [--keep N]              run the service in the foreground
  backupbox manager ...                              same as backup_manager
  backupbox service ...                              same as backup_service
  backupbox --install DIR                            create the two role links in DIR
  backupbox completions bash|zsh|fish                print a shell completion script
  backupbox man                                      print the man page (roff)
  backupbox --version | --help
";

/// argh's help for `args` given to a parser of `T` named `name`.
pub(super) fn argh_help<T: FromArgs>(name: &str, args: &[&str]) -> Option<String> {
    match T::from_args(&[name], args) {
        Err(exit) if exit.status.is_ok() => Some(exit.output),
        _ => None,
    }
}

/// The usage line (without `Usage: <program> `) and the option lines of an argh help text,
/// `--help` itself left out.
fn usage_and_options(help: &str, program: &str) -> (String, Vec<String>) {
    let mut lines = help.lines();
    let usage = lines
        .next()
        .and_then(|line| line.strip_prefix("Usage: "))
        .map(|line| line.strip_prefix(program).unwrap_or(line).trim().to_owned())
        .unwrap_or_default();
    let options = lines
        .skip_while(|line| *line != "Options:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| !line.trim_start().starts_with("--help"))
        .map(|line| format!("    {line}"))
        .collect();
    (usage, options)
}

/// The whole help: roles, then every manager command with its arguments and options, then
/// the options of the two roles.
pub fn full() -> String {
    let mut text = String::from(ROLES);
    text.push_str("\nManager commands:\n");
    for command in ManagerCommand::COMMANDS {
        let help = argh_help::<ManagerArgs>("backup_manager", &[command.name, "--help"])
            .unwrap_or_default();
        let (usage, options) = usage_and_options(&help, "backup_manager");
        text.push_str(&format!("  {usage}\n      {}\n", command.description));
        for option in options {
            text.push_str(&format!("  {option}\n"));
        }
    }
    for (role, help) in [
        (
            "backup_manager",
            argh_help::<ManagerArgs>("backup_manager", &["--help"]),
        ),
        (
            "backup_service",
            argh_help::<ServiceArgs>("backup_service", &["--help"]),
        ),
    ] {
        let (_, options) = usage_and_options(&help.unwrap_or_default(), role);
        text.push_str(&format!("\nOptions of {role}:\n"));
        for option in options {
            text.push_str(&format!("{option}\n"));
        }
    }
    text
}

/// argh's help for one manager command, or `None` if there is no such command.
pub fn command(name: &str) -> Option<String> {
    if !ManagerCommand::COMMANDS
        .iter()
        .any(|command| command.name == name)
    {
        return None;
    }
    argh_help::<ManagerArgs>("backup_manager", &[name, "--help"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_help_names_every_command_and_option() {
        let text = full();
        for word in [
            "create",
            "list",
            "delete",
            "start",
            "stop",
            "backups",
            "run",
            "status",
            "verify",
            "restore",
            "help",
            "--keep",
            "--timeout",
            "--long",
            "--json",
            "--against",
            "--to",
            "--force",
            "--outside-links",
            "--dir",
        ] {
            assert!(text.contains(word), "{word} missing from:\n{text}");
        }
        assert!(!text.contains("display usage information"));
        assert!(command("status").unwrap().contains("--json"));
        assert_eq!(command("nope"), None);
    }
}
