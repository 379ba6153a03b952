//! Hints to the kernel about how files are written, writing a filesystem back while a restore
//! runs, and reading a pipe with a deadline.

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

/// Writes back the filesystem of a folder over and over while many files are made in it, so the
/// disk works during the restore rather than after it; [`Writeback::finish`] then waits until
/// everything made is on disk. Without it, `restore && sync` wrote 200,000 small files first
/// and waited for the disk second.
pub struct Writeback {
    /// Hung up by `finish` (or a drop) to stop the thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    folder: std::os::fd::OwnedFd,
}

impl Writeback {
    /// Starts writing back the filesystem holding `folder` every `every`.
    pub fn start(
        folder: std::os::fd::BorrowedFd,
        every: std::time::Duration,
    ) -> io::Result<Writeback> {
        let folder = folder.try_clone_to_owned()?;
        let for_thread = folder.try_clone()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("writeback".to_owned())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    // Only a head start: the final syncfs in `finish` reports errors.
                    let _ = nix::unistd::syncfs(&for_thread);
                }
            })?;
        Ok(Writeback {
            stop: Some(stop),
            thread: Some(thread),
            folder,
        })
    }

    /// Stops the background writeback and waits until the filesystem is on disk.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop_thread();
        nix::unistd::syncfs(&self.folder).map_err(io::Error::from)
    }

    fn stop_thread(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.stop_thread();
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
