//! Process control: fork, immediate exit and adopting the descriptor a parent passed across
//! exec, for `start`'s daemon; and dropping to another user in a hook's child.

use nix::sys::stat::{SFlag, fstat};
use nix::unistd::ForkResult;
use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

/// Forks this process. Only for the manager, which is single-threaded: the child may then do
/// anything the parent could.
pub fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: callers are single-threaded (the manager process), so no lock or allocator
    // state of another thread can be left half-taken in the child.
    unsafe { nix::unistd::fork() }
}

/// Ends a forked child at once, without running exit handlers or flushing buffers that
/// belong to the parent.
pub fn exit_at_once(status: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { nix::libc::_exit(status) }
}

/// Closes every descriptor from 3 up except `keep`, as start-stop-daemon and systemd do for
/// a daemon: a lock or pipe the caller of `start` had open (`flock w.lock backup_manager
/// start`) must not stay held by the service and every hook it runs. Plain system calls only,
/// for a forked child.
pub fn close_inherited_except(keep: i32) {
    let close_range = |first: i32, last: i32| {
        // SAFETY: close_range only closes descriptors; the caller owns every one of them in
        // this freshly forked child and uses none of those in the range afterwards.
        unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first, last, 0) }
    };
    let ranges = [(3, keep - 1), (keep + 1, i32::MAX)];
    for (first, last) in ranges.into_iter().filter(|(first, last)| first <= last) {
        if close_range(first, last) != 0 {
            // Kernels before 5.9: close one by one, up to the descriptor limit.
            // SAFETY: sysconf only reads a limit.
            let limit = unsafe { nix::libc::sysconf(nix::libc::_SC_OPEN_MAX) };
            let limit = if limit > 0 { limit.min(1 << 20) } else { 1024 };
            let last = i64::from(last).min(limit);
            for fd in i64::from(first)..=last {
                // SAFETY: as above; closing a descriptor that is not open fails with EBADF.
                unsafe { nix::libc::close(i32::try_from(fd).unwrap_or(-1)) };
            }
        }
    }
}

/// Takes ownership of descriptor `fd`, inherited across exec, after checking that it is open
/// and a pipe (what `start` passes). Standard input, output and error are never taken.
pub fn adopt_inherited_pipe(fd: i32) -> io::Result<OwnedFd> {
    if fd <= 2 {
        return Err(io::Error::other("not a descriptor above 2"));
    }
    // SAFETY: the borrow lasts only for this fstat; a closed `fd` makes fstat fail with EBADF
    // rather than touch anything.
    let stat = fstat(unsafe { BorrowedFd::borrow_raw(fd) })?;
    if stat.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFIFO.bits() {
        return Err(io::Error::other("not a pipe"));
    }
    // SAFETY: the descriptor is open (fstat succeeded) and nothing in this freshly executed
    // process has taken it: it was inherited for exactly this.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `pid` is a live process of this same program: not gone, not a zombie waiting to be
/// reaped, and (where its executable can be read) not another program that got the PID again.
pub fn is_backupbox_process(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X')) {
        return false;
    }
    match (
        std::fs::read_link(format!("/proc/{pid}/exe")),
        std::env::current_exe(),
    ) {
        // A binary replaced by an upgrade since that process started reads "<path> (deleted)".
        (Ok(theirs), Ok(ours)) => {
            let theirs = std::os::unix::ffi::OsStrExt::as_bytes(theirs.as_os_str());
            theirs.strip_suffix(b" (deleted)").unwrap_or(theirs)
                == std::os::unix::ffi::OsStrExt::as_bytes(ours.as_os_str())
        }
        _ => true,
    }
}

/// The user a child runs as: looked up in the parent, groups included, so that the child,
/// forked from a process with other threads, only makes system calls before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: nix::unistd::Uid,
    pub gid: nix::unistd::Gid,
    /// Its supplementary groups, from the group database (what initgroups would set).
    pub groups: Vec<nix::unistd::Gid>,
    pub home: std::path::PathBuf,
}

impl RunAs {
    /// `name` from the user and group databases; `None` if there is no such user.
    pub fn lookup(name: &str) -> Option<RunAs> {
        let user = nix::unistd::User::from_name(name).ok()??;
        let c_name = std::ffi::CString::new(name).ok()?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid).ok()?;
        Some(RunAs {
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        })
    }
}

/// Makes `command` drop to `user` in the child, before exec: its supplementary groups, then
/// its group, then the user, so nothing of root's stays.
pub fn run_as(command: &mut std::process::Command, user: &RunAs) {
    use std::os::unix::process::CommandExt;
    let user = user.clone();
    command.env("HOME", &user.home);
    // SAFETY: the closure runs in the forked child before exec and makes only the setgroups,
    // setgid and setuid system calls on values computed in the parent: no allocation, no
    // lock, nothing another thread of the parent could have held at the fork.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setgroups(&user.groups)?;
            nix::unistd::setgid(user.gid)?;
            nix::unistd::setuid(user.uid)?;
            Ok(())
        });
    }
}
