//! The CPU and I/O priority of the calling thread: on Linux both `nice` and the I/O
//! scheduling class belong to a thread, not the process, and threads and children started
//! from it inherit them.

use std::io;

/// `IOPRIO_WHO_PROCESS` with id 0: the calling thread.
const IOPRIO_WHO_PROCESS: nix::libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// An I/O scheduling class, as `ionice -c` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoClass {
    /// Served only when the disk has nothing else to do (class 3).
    Idle,
    /// The normal class (2), at a level from 0 (highest) to 7.
    BestEffort(u8),
}

/// Lowers the calling thread's CPU priority to `nice` (0 to 19) and sets its I/O class.
pub fn lower_this_thread(nice: i32, io_class: Option<IoClass>) -> io::Result<()> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { nix::libc::syscall(nix::libc::SYS_gettid) };
    let tid = nix::libc::id_t::try_from(tid).map_err(|_| io::Error::other("no thread id"))?;
    if nice != 0 {
        // SAFETY: setpriority takes plain integers; PRIO_PROCESS with a thread id sets that
        // thread's nice value on Linux.
        if unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, nice) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(class) = io_class {
        let value = match class {
            IoClass::Idle => 3 << IOPRIO_CLASS_SHIFT,
            IoClass::BestEffort(level) => (2 << IOPRIO_CLASS_SHIFT) | u32::from(level.min(7)),
        };
        // SAFETY: ioprio_set takes three integers; who 0 is the calling thread.
        let done =
            unsafe { nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
