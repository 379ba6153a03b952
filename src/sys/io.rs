//! Hints to the kernel about how a file is written, and reading a pipe with a deadline.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

/// Asks the kernel to start writing `length` bytes of `file` from `from` to disk, without
/// waiting. Only a hint: a failure changes nothing, the fsync before a rename is what makes
/// a file durable.
pub fn start_writeback(file: &File, from: i64, length: i64) {
    // SAFETY: a plain system call on a descriptor the caller keeps open for the call.
    unsafe {
        nix::libc::sync_file_range(
            file.as_raw_fd(),
            from,
            length,
            nix::libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// One read from `pipe` that waits no later than `deadline`: `None` if the time ran out,
/// `Some(0)` at end of file.
pub fn read_before(
    pipe: &mut File,
    chunk: &mut [u8],
    deadline: Instant,
) -> io::Result<Option<usize>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(err) => return Err(err.into()),
        }
        match pipe.read(chunk) {
            Ok(n) => return Ok(Some(n)),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
