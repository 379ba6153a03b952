//! Process control for `start`'s daemon: fork, immediate exit, and adopting the descriptor a
//! parent passed across exec.

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
