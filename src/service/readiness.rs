//! The readiness protocol between `start` and the daemon it launches. `start` runs the binary
//! as `backup_service __serve --dir D --keep N --ready-fd FD`, FD being the write end of a
//! pipe; the service writes one line there once it runs (`ready`) and closes it, or writes why
//! it could not start and keeps it open until it exits, so that `start` returns only once the
//! process it launched is gone. Everything both sides must agree on is here.

use crate::sys::io::read_before;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The hidden first argument that makes the service run as `start`'s daemon.
pub const SERVE_ENTRY: &str = "__serve";
/// The argv[0] the daemon runs under, so `ps -ef` shows what it is.
const SERVICE_ARGV0: &str = "backup_service";
const READY_FD_OPTION: &str = "--ready-fd";
const READY: &str = "ready";
const ALREADY_RUNNING: &str = "running";
const ERROR_PREFIX: &str = "error: ";

/// The service's end of the pipe: one report, then it is closed.
pub struct Readiness(Option<OwnedFd>);

impl Readiness {
    /// No pipe: the service was started by hand, systemd or a container.
    pub fn none() -> Readiness {
        Readiness(None)
    }

    /// Takes `--ready-fd N` out of the arguments after `__serve` and adopts that descriptor,
    /// which must be an open pipe above 2.
    pub fn take_from(args: &mut Vec<OsString>) -> io::Result<Readiness> {
        let Some(at) = args.iter().position(|a| a == READY_FD_OPTION) else {
            return Ok(Readiness::none());
        };
        let fd = args
            .get(at + 1)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<i32>().ok())
            .ok_or_else(|| {
                io::Error::other(format!("{READY_FD_OPTION} takes a descriptor number"))
            })?;
        let pipe = crate::sys::process::adopt_inherited_pipe(fd)
            .map_err(|err| io::Error::other(format!("{READY_FD_OPTION} {fd}: {err}")))?;
        args.drain(at..at + 2);
        Ok(Readiness(Some(pipe)))
    }

    pub fn ready(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = File::from(fd).write_all(format!("{READY}\n").as_bytes());
        }
    }

    pub fn already_running(&mut self) {
        self.report_end(ALREADY_RUNNING);
    }

    pub fn failed(&mut self, why: &str) {
        self.report_end(&format!("{ERROR_PREFIX}{why}"));
    }

    /// A report that this process is about to exit. The descriptor is deliberately left open:
    /// the kernel closes it when the process is gone, and that close is what `start` waits
    /// for, so a second `start` never returns while its would-be service still runs.
    fn report_end(&mut self, line: &str) {
        if let Some(fd) = self.0.take() {
            let mut pipe = File::from(fd);
            let _ = pipe.write_all(format!("{line}\n").as_bytes());
            let _ = pipe.into_raw_fd();
        }
    }
}

/// A failure of the forked child before it could exec the service, reported on the pipe.
pub fn child_failed(pipe: &OwnedFd, what: &str) {
    let _ = nix::unistd::write(
        pipe,
        format!("{ERROR_PREFIX}{what}: {}\n", nix::errno::Errno::last()).as_bytes(),
    );
}

/// An argv for execv.
pub type Argv = Vec<CString>;

/// The daemon's argv for base directory `base`, `--keep keep` (when given) and the pipe's
/// write end `fd`.
pub fn serve_argv(base: &Path, keep: Option<u32>, fd: RawFd) -> Result<Argv, std::ffi::NulError> {
    let mut argv = vec![
        CString::new(SERVICE_ARGV0)?,
        CString::new(SERVE_ENTRY)?,
        c"--dir".to_owned(),
        CString::new(base.as_os_str().as_bytes())?,
    ];
    if let Some(keep) = keep {
        argv.extend([c"--keep".to_owned(), CString::new(keep.to_string())?]);
    }
    argv.extend([
        CString::new(READY_FD_OPTION)?,
        CString::new(fd.to_string())?,
    ]);
    Ok(argv)
}

/// What the service reported, as `start` reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Ready,
    AlreadyRunning,
    /// Why it could not start.
    Failed(String),
    /// The pipe closed without a report: the service exited during start-up.
    Silent,
}

/// Reads the service's one-line report, waiting at most `timeout`; `None` if none came. After
/// any report but `ready`, it also waits (within the same `timeout`) for the pipe to close,
/// which happens when the launched process has exited.
pub fn read_report(pipe: OwnedFd, timeout: Duration) -> io::Result<Option<Report>> {
    let deadline = Instant::now() + timeout;
    let mut pipe = File::from(pipe);
    let mut report = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match read_before(&mut pipe, &mut chunk, deadline)? {
            None => return Ok(None),
            Some(0) => break,
            Some(n) => {
                report.extend_from_slice(&chunk[..n]);
                if report.contains(&b'\n') {
                    break;
                }
            }
        }
    }
    let line = report.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let report = match line.as_ref() {
        READY => return Ok(Some(Report::Ready)),
        ALREADY_RUNNING => Report::AlreadyRunning,
        "" => Report::Silent,
        other => Report::Failed(other.strip_prefix(ERROR_PREFIX).unwrap_or(other).to_owned()),
    };
    while let Some(n) = read_before(&mut pipe, &mut chunk, deadline)? {
        if n == 0 {
            break;
        }
    }
    Ok(Some(report))
}
