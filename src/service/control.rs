//! `start` and `stop`: launching the service as a daemon (fork, setsid, fork, exec) with a
//! readiness pipe, and stopping it through the PID file's lock holder.

use crate::error::{Context, Error, Result};
use crate::layout::Layout;
use crate::service::pidfile::{self, Holder};
use crate::service::{ALREADY_RUNNING, READY};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{
    ForkResult, chdir, dup2_stderr, dup2_stdin, dup2_stdout, execv, fork, pipe2, setsid,
};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The argv[0] the daemon runs under, so `ps -ef` shows what it is.
pub const SERVICE_ARGV0: &str = "backup_service";
/// The hidden first argument that makes the service run as `start`'s daemon.
pub const SERVE_ENTRY: &str = "__serve";
/// The option that passes the readiness pipe's descriptor number to the daemon.
pub const READY_FD_OPTION: &str = "--ready-fd";

/// How long `start` waits for the daemon to report.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn cant_start() -> Error {
    Error::failed("can't start backup_service")
}

/// Starts the service as a daemon and returns once it holds the PID file lock.
pub fn start(layout: &Layout, exe: &Path, keep: u32) -> Result<()> {
    if let Holder::Service(_) = pidfile::holder(layout).context("can't start backup_service")? {
        return Err(Error::failed("backup_service already running"));
    }
    // Everything the child needs is prepared before fork: after it, only plain system calls.
    let path = CString::new(exe.as_os_str().as_bytes()).map_err(|err| cant_start().because(err))?;
    let base = CString::new(layout.base().as_os_str().as_bytes())
        .map_err(|err| cant_start().because(err))?;
    let (ready_read, ready_write) =
        pipe2(OFlag::O_CLOEXEC).context("can't start backup_service")?;
    let ready_fd = CString::new(ready_write.as_raw_fd().to_string()).expect("digits have no NUL");
    let argv = [
        CString::new(SERVICE_ARGV0).expect("no NUL"),
        CString::new(SERVE_ENTRY).expect("no NUL"),
        CString::new("--dir").expect("no NUL"),
        base,
        CString::new("--keep").expect("no NUL"),
        CString::new(keep.to_string()).expect("digits have no NUL"),
        CString::new(READY_FD_OPTION).expect("no NUL"),
        ready_fd,
    ];
    let dev_null = CString::new("/dev/null").expect("no NUL");

    // SAFETY: the manager is single-threaded, so the child may do anything the parent could.
    match unsafe { fork() }.context("can't start backup_service")? {
        ForkResult::Child => {
            drop(ready_read);
            become_daemon(&path, &argv, &dev_null, ready_write)
        }
        ForkResult::Parent { child } => {
            drop(ready_write);
            // The intermediate child exits at once; reap it so it leaves no zombie.
            let _ = waitpid(child, None);
            match read_report(ready_read)?.as_str() {
                READY => Ok(()),
                ALREADY_RUNNING => Err(Error::failed("backup_service already running")),
                "" => Err(cant_start()
                    .because("the service exited during start-up (see logs/backup_service.log)")),
                report => {
                    Err(cant_start().because(report.strip_prefix("error: ").unwrap_or(report)))
                }
            }
        }
    }
}

/// The daemon half of `start`, in the order of the `daemonize` crate: new session, second
/// fork so the daemon can never regain a terminal, umask, working directory, stdio, exec.
/// Never returns: each process here ends in exec or `_exit`.
fn become_daemon(path: &CString, argv: &[CString], dev_null: &CString, ready: OwnedFd) -> ! {
    let fail = |ready: &OwnedFd, what: &str| -> ! {
        let _ = nix::unistd::write(
            ready,
            format!("error: {what}: {}\n", nix::errno::Errno::last()).as_bytes(),
        );
        // SAFETY: _exit ends a forked child without running the parent's exit handlers twice.
        unsafe { libc::_exit(127) }
    };
    if setsid().is_err() {
        fail(&ready, "setsid failed");
    }
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Child) => {}
        Err(_) => fail(&ready, "fork failed"),
    }
    umask(Mode::from_bits_truncate(0o027));
    if chdir("/").is_err() {
        fail(&ready, "chdir / failed");
    }
    let null = match open(dev_null.as_c_str(), OFlag::O_RDWR, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => fail(&ready, "can't open /dev/null"),
    };
    if dup2_stdin(&null).is_err() || dup2_stdout(&null).is_err() || dup2_stderr(&null).is_err() {
        fail(&ready, "can't redirect stdio");
    }
    drop(null);
    // The readiness pipe is the one descriptor the service must inherit.
    if fcntl(ready.as_fd(), FcntlArg::F_SETFD(FdFlag::empty())).is_err() {
        fail(&ready, "can't pass the readiness pipe");
    }
    let _ = execv(path, argv);
    fail(&ready, "can't run the service binary")
}

/// Reads the daemon's one-line start-up report; empty if it closed the pipe without one.
fn read_report(pipe: OwnedFd) -> Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut file = File::from(pipe);
    let mut report = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(cant_start().because("the service did not report ready within 30 s"));
        }
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(err) => return Err(cant_start().because(err)),
        }
        let mut chunk = [0u8; 512];
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                report.extend_from_slice(&chunk[..n]);
                if report.contains(&b'\n') {
                    break;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(cant_start().because(err)),
        }
    }
    let line = report.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).into_owned())
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
