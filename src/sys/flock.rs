//! File locks: bounded waits for flock locks (try without blocking until a deadline, so that a
//! lock held by a stuck or hostile process can delay backupbox but never hang it), and
//! one-byte open-file-description locks.

use fs2::FileExt;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

/// Takes a write lock on the byte at `offset` of `file` without waiting: `Ok(false)` if
/// another holder has it. Open-file-description locks conflict between threads as well as
/// processes and vanish with the holder's descriptor, even on kill -9.
#[expect(
    clippy::cast_possible_truncation,
    reason = "F_WRLCK and SEEK_SET are small constants that C declares as int but stores as short"
)]
pub fn try_lock_byte(file: &File, offset: i64) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct of integers, for which all-zero is a valid value.
    let mut region: libc::flock = unsafe { std::mem::zeroed() };
    region.l_type = libc::F_WRLCK as libc::c_short;
    region.l_whence = libc::SEEK_SET as libc::c_short;
    region.l_start = offset;
    region.l_len = 1;
    match fcntl(file, FcntlArg::F_OFD_SETLK(&region)) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exclusive,
    Shared,
}

/// Takes the lock on `file`, retrying every `pause` until `deadline`. `Ok(false)` if another
/// holder still has it then; any error other than "would block" is returned at once.
pub fn lock_by(file: &File, mode: Mode, deadline: Instant, pause: Duration) -> io::Result<bool> {
    loop {
        let attempt = match mode {
            Mode::Exclusive => FileExt::try_lock_exclusive(file),
            Mode::Shared => FileExt::try_lock_shared(file),
        };
        match attempt {
            Ok(()) => return Ok(true),
            Err(err) if err.kind() != io::ErrorKind::WouldBlock => return Err(err),
            Err(_) if Instant::now() >= deadline => return Ok(false),
            Err(_) => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_up_to_the_deadline_then_reports_the_holder() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let holder = File::open(file.path()).unwrap();
        assert!(lock_by(&holder, Mode::Exclusive, Instant::now(), Duration::ZERO).unwrap());
        let other = File::open(file.path()).unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        assert!(!lock_by(&other, Mode::Shared, deadline, Duration::from_millis(5)).unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "it waited for the deadline"
        );
        drop(holder);
        assert!(lock_by(&other, Mode::Shared, Instant::now(), Duration::ZERO).unwrap());
    }
}
