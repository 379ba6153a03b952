//! The children of a job: the hooks (`before`, `on_success`, `on_failure` in
//! `backupbox.toml`), shell command lines run with `/bin/sh -c` in the base directory with the
//! job's facts in `BACKUPBOX_*` variables, and rclone for the offsite copy. Each runs in a
//! process group of its own, its output logged line by line, with a time limit after which
//! the whole group is stopped.

use crate::log::{Log, show_bytes};
use crate::sys::io::read_before;
use crate::sys::process::RunAs;
use crate::sys::reaper;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Lines of a hook's output logged per run; the rest are counted.
const MAX_LOGGED_LINES: usize = 50;
/// Longest line logged; a longer one is cut into pieces of this size.
const MAX_LINE_BYTES: usize = 4096;
/// Time between SIGTERM and SIGKILL to a hook's process group that ran out of time.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How often a hook that is silent is checked for having exited.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The three moments a hook runs; the number is the hook's place in
/// `settings::Effective::hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Before = 0,
    OnSuccess = 1,
    OnFailure = 2,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Before => "before",
            Hook::OnSuccess => "on_success",
            Hook::OnFailure => "on_failure",
        })
    }
}

/// How a hook failed. `Display` completes `before hook …`.
#[derive(Debug)]
pub enum HookFailure {
    Exited(i32),
    Killed(i32),
    TimedOut(Duration),
    CantRun(io::Error),
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookFailure::Exited(code) => write!(f, "exited with status {code}"),
            HookFailure::Killed(signal) => write!(f, "was killed by signal {signal}"),
            HookFailure::TimedOut(limit) => write!(f, "was killed after {} s", limit.as_secs()),
            HookFailure::CantRun(err) => write!(f, "could not be run ({err})"),
        }
    }
}

/// Runs `command` as `hook`, with `env` added to the environment, in `base`, as `user` when
/// given (`hook_user`); logs its output to `log` and stops it after `limit`.
pub fn run(
    hook: Hook,
    command: &str,
    env: &[(&str, OsString)],
    base: &Path,
    user: Option<&str>,
    limit: Duration,
    log: &Log,
) -> Result<(), HookFailure> {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(command)
        .current_dir(base)
        .envs(env.iter().map(|(key, value)| (key, value)));
    if let Some(name) = user {
        let user = RunAs::lookup(name).ok_or_else(|| {
            HookFailure::CantRun(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such user: {name}"),
            ))
        })?;
        crate::sys::process::run_as(&mut shell, &user);
    }
    run_logged(&hook.to_string(), &mut shell, limit, log)
}

/// Runs `command` with no input, its stdout and stderr logged line by line as
/// `<label>: <line>`, in a process group of its own, which is stopped after `limit`: the way
/// every child of a job runs (hooks, rclone).
pub fn run_logged(
    label: &str,
    command: &mut Command,
    limit: Duration,
    log: &Log,
) -> Result<(), HookFailure> {
    let (output, input) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|err| HookFailure::CantRun(err.into()))?;
    let stderr = input.try_clone().map_err(HookFailure::CantRun)?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(input))
        .stderr(Stdio::from(stderr))
        // Its own group: a timeout stops everything it started, and a Ctrl-C or a SIGTERM
        // meant for the service does not reach it.
        .process_group(0);
    let child = reaper::spawn(command).map_err(HookFailure::CantRun);
    // The Command holds the write ends until they are replaced: end of file must come when
    // the child and everything it started have closed their output, not never.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut awaited = child?;
    let child = awaited.child();
    let mut lines = Lines::new(label, log);
    let deadline = Instant::now() + limit;
    let ended = watch(child, output, &mut lines, deadline);
    lines.finish();
    match ended {
        Some(status) => match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(HookFailure::Exited(code)),
            (None, Some(signal)) => Err(HookFailure::Killed(signal)),
            (None, None) => Err(HookFailure::Killed(0)),
        },
        None => {
            stop_group(child);
            Err(HookFailure::TimedOut(limit))
        }
    }
}

/// Reads the hook's output until it ends and the hook has exited; `None` if `deadline` came
/// first.
fn watch(
    child: &mut Child,
    output: OwnedFd,
    lines: &mut Lines,
    deadline: Instant,
) -> Option<std::process::ExitStatus> {
    let mut output = File::from(output);
    let mut chunk = [0u8; 8192];
    loop {
        match read_before(&mut output, &mut chunk, deadline) {
            Ok(None) => return None,
            Ok(Some(n)) if n > 0 => lines.push(&chunk[..n]),
            // End of the output, or a pipe that can no longer be read: the same for us.
            Ok(Some(_)) | Err(_) => break,
        }
    }
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(left.min(CHECK_EVERY));
    }
}

/// SIGTERM to the hook's whole process group, SIGKILL to what is left after the grace time;
/// then the hook is reaped. Nothing it started survives.
fn stop_group(child: &mut Child) {
    let Ok(raw) = i32::try_from(child.id()) else {
        return;
    };
    let group = Pid::from_raw(raw);
    let _ = killpg(group, Signal::SIGTERM);
    let grace_ends = Instant::now() + KILL_GRACE;
    while Instant::now() < grace_ends {
        let _ = child.try_wait();
        // ESRCH: no process is left in the group (the reaped leader no longer counts).
        if killpg(group, None) == Err(Errno::ESRCH) {
            break;
        }
        std::thread::sleep(CHECK_EVERY);
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// A child's output cut into log lines: `<label>: <line>`, escaped, at most
/// [`MAX_LOGGED_LINES`], then a count of the rest.
struct Lines<'a> {
    label: &'a str,
    log: &'a Log,
    partial: Vec<u8>,
    logged: usize,
    left_out: usize,
}

impl<'a> Lines<'a> {
    fn new(label: &'a str, log: &'a Log) -> Lines<'a> {
        Lines {
            label,
            log,
            partial: Vec::new(),
            logged: 0,
            left_out: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.line();
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE_BYTES {
            let rest = self.partial.split_off(MAX_LINE_BYTES);
            self.line();
            self.partial = rest;
        }
    }

    fn line(&mut self) {
        let line = std::mem::take(&mut self.partial);
        if self.logged < MAX_LOGGED_LINES {
            self.log
                .write(&format!("{}: {}", self.label, show_bytes(&line)));
            self.logged += 1;
        } else {
            self.left_out += 1;
        }
    }

    /// Logs a last line without a newline, and the count of lines left out.
    fn finish(mut self) {
        if !self.partial.is_empty() {
            self.line();
        }
        if self.left_out > 0 {
            self.log
                .write(&format!("{}: … {} more lines", self.label, self.left_out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(log_dir: &tempfile::TempDir) -> Vec<String> {
        std::fs::read_to_string(log_dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                line.split_once("] ")
                    .map_or(line, |(_, rest)| rest)
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn output_is_logged_line_by_line_escaped_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path().join("log"));
        let result = run(
            Hook::OnSuccess,
            "printf 'one\\n\\033[31mred\\n'; echo two >&2; seq 1 100; printf tail",
            &[],
            dir.path(),
            None,
            Duration::from_secs(10),
            &log,
        );
        assert!(result.is_ok());
        let lines = logged(&dir);
        assert_eq!(
            lines[..3],
            [
                "on_success: one",
                "on_success: \\x1b[31mred",
                "on_success: two"
            ]
        );
        assert_eq!(lines.len(), MAX_LOGGED_LINES + 1);
        assert_eq!(lines[MAX_LOGGED_LINES], "on_success: … 54 more lines");
    }

    #[test]
    fn the_exit_status_and_the_environment_reach_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path().join("log"));
        let failure = run(
            Hook::Before,
            "echo \"$BACKUPBOX_NAME in $PWD\"; exit 3",
            &[("BACKUPBOX_NAME", OsString::from("docs"))],
            dir.path(),
            None,
            Duration::from_secs(10),
            &log,
        )
        .unwrap_err();
        assert_eq!(failure.to_string(), "exited with status 3");
        assert_eq!(
            logged(&dir),
            [format!("before: docs in {}", dir.path().display())]
        );
    }
}
