//! `start` and `stop`: launching the service as a daemon (fork, setsid, fork, exec) with a
//! readiness pipe, and stopping it through the PID file's lock holder.

use super::readiness::{self, Report};
use crate::error::{Context, Error, Result};
use crate::layout::Layout;
use crate::service::pidfile::{self, Holder};
use crate::store::Keep;
use crate::sys::process::{exit_at_once, fork_single_threaded};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, chdir, dup2_stderr, dup2_stdin, dup2_stdout, execv, pipe2, setsid};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// How long `start` waits for the daemon to report.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn cant_start() -> Error {
    Error::failed("can't start backup_service")
}

/// Starts the service as a daemon and returns once it holds the PID file lock.
pub fn start(layout: &Layout, exe: &Path, keep: Option<Keep>) -> Result<()> {
    if let Holder::Service(_) = pidfile::holder(layout).context("can't start backup_service")? {
        return Err(Error::failed("backup_service already running"));
    }
    // Everything the child needs is prepared before fork: after it, only plain system calls.
    let path = CString::new(exe.as_os_str().as_bytes()).map_err(|err| cant_start().because(err))?;
    let (ready_read, ready_write) =
        pipe2(OFlag::O_CLOEXEC).context("can't start backup_service")?;
    let argv = readiness::serve_argv(
        layout.base(),
        keep.map(Keep::count),
        ready_write.as_raw_fd(),
    )
    .map_err(|err| cant_start().because(err))?;

    match fork_single_threaded().context("can't start backup_service")? {
        ForkResult::Child => {
            drop(ready_read);
            become_daemon(&path, &argv, &ready_write)
        }
        ForkResult::Parent { child } => {
            drop(ready_write);
            // The intermediate child exits at once; reap it so it leaves no zombie.
            let _ = waitpid(child, None);
            match readiness::read_report(ready_read, START_TIMEOUT)
                .map_err(|err| cant_start().because(err))?
            {
                Some(Report::Ready) => Ok(()),
                Some(Report::AlreadyRunning) => {
                    Err(Error::failed("backup_service already running"))
                }
                Some(Report::Silent) => Err(cant_start()
                    .because("the service exited during start-up (see logs/backup_service.log)")),
                Some(Report::Failed(why)) => Err(cant_start().because(why)),
                None => Err(cant_start().because("the service did not report ready within 30 s")),
            }
        }
    }
}

/// The daemon half of `start`, in the order of the `daemonize` crate: new session, second
/// fork so the daemon can never regain a terminal, umask, working directory, stdio, exec.
/// Never returns: each process here ends in exec or `_exit`.
fn become_daemon(path: &CStr, argv: &[CString], ready: &OwnedFd) -> ! {
    let fail = |ready: &OwnedFd, what: &str| -> ! {
        readiness::child_failed(ready, what);
        exit_at_once(127)
    };
    if setsid().is_err() {
        fail(ready, "setsid failed");
    }
    match fork_single_threaded() {
        Ok(ForkResult::Parent { .. }) => exit_at_once(0),
        Ok(ForkResult::Child) => {}
        Err(_) => fail(ready, "fork failed"),
    }
    umask(Mode::from_bits_truncate(0o027));
    if chdir("/").is_err() {
        fail(ready, "chdir / failed");
    }
    let null = match open(c"/dev/null", OFlag::O_RDWR, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => fail(ready, "can't open /dev/null"),
    };
    if dup2_stdin(&null).is_err() || dup2_stdout(&null).is_err() || dup2_stderr(&null).is_err() {
        fail(ready, "can't redirect stdio");
    }
    drop(null);
    crate::sys::process::close_inherited_except(ready.as_raw_fd());
    // The readiness pipe is the one descriptor the service must inherit.
    if fcntl(ready.as_fd(), FcntlArg::F_SETFD(FdFlag::empty())).is_err() {
        fail(ready, "can't pass the readiness pipe");
    }
    let _ = execv(path, argv);
    fail(ready, "can't run the service binary")
}

/// Stops the service that holds the PID file lock, waiting up to `timeout` for it to finish
/// its running backups and let go of the lock.
pub fn stop(layout: &Layout, timeout: Duration) -> Result<()> {
    let cant_stop = || Error::failed("can't stop backup_service");
    let pid = match pidfile::holder(layout).map_err(|err| cant_stop().because(err))? {
        Holder::None => return Err(Error::failed("backup_service not running")),
        Holder::Unknown => {
            return Err(cant_stop()
                .because("the PID file is locked by a process that could not be identified"));
        }
        Holder::Service(pid) => pid,
    };
    kill(pid, Signal::SIGTERM)
        .map_err(|err| cant_stop().because(format!("can't signal PID {pid}: {err}")))?;
    match pidfile::wait_released(layout, timeout) {
        Ok(true) => Ok(()),
        Ok(false) => Err(cant_stop().because(format!(
            "PID {pid} still running after {} s (finishing backups?); try again or raise --timeout",
            timeout.as_secs()
        ))),
        Err(err) => Err(cant_stop().because(err)),
    }
}
