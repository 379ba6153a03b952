//! Hints to the kernel about how a file is written.

use std::fs::File;
use std::os::fd::AsRawFd;

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
