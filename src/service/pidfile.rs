//! `logs/backup_service.pid`: the service holds an exclusive flock on it for its whole life,
//! and that lock, not the PID written in it, is what says the service runs.

use crate::layout::Layout;
use crate::sys::flock::{self, Mode};
use crate::sys::open::{FileId, open_nofollow};
use fs2::FileExt;
use nix::unistd::Pid;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// How long a lock must stay held before it counts as held: managers probe the lock for a few
/// microseconds, and a starting service must not mistake a probe for a running service.
const PROBE_GRACE: Duration = Duration::from_millis(500);

/// The service's hold on the PID file. Dropping it ends the hold.
#[derive(Debug)]
pub struct PidLock {
    file: File,
}

/// Why the PID file could not be taken.
#[derive(Debug)]
pub enum LockError {
    AlreadyRunning,
    Io(io::Error),
}

/// Takes the PID file for this process and writes its PID in it.
pub fn acquire(layout: &Layout) -> Result<PidLock, LockError> {
    fs::create_dir_all(layout.logs_dir()).map_err(LockError::Io)?;
    let mut file = open(
        layout,
        OpenOptions::new().write(true).create(true).truncate(false),
    )
    .map_err(LockError::Io)?;
    let deadline = Instant::now() + PROBE_GRACE;
    if !flock::lock_by(&file, Mode::Exclusive, deadline, Duration::from_millis(5))
        .map_err(LockError::Io)?
    {
        return Err(LockError::AlreadyRunning);
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(LockError::Io)?;
    Ok(PidLock { file })
}

/// The PID file's second line while the service finishes its backups after a stop request.
const STOPPING: &str = "stopping";

impl PidLock {
    /// Says in the PID file that the service has been told to stop and runs no new schedule,
    /// for `status`; the file keeps its modification time, which is when the service started.
    pub fn mark_stopping(&self) {
        let mut file = &self.file;
        let started = file.metadata().and_then(|meta| meta.modified());
        let text = format!("{}\n{STOPPING}\n", std::process::id());
        let _ = file.rewind().and_then(|()| file.write_all(text.as_bytes()));
        if let Ok(started) = started {
            let _ = self.file.set_modified(started);
        }
    }

    /// Empties the PID file before letting go, so no stale PID is left behind after a clean stop.
    pub fn release(self) {
        let _ = self.file.set_len(0);
    }
}

/// What the manager finds when it looks for the service.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody holds the lock: not running, whatever PID the file names.
    None,
    /// The service with this PID holds the lock.
    Service(Pid),
    /// The lock is held, but the holder could not be identified (another user's process, or
    /// a service that has not written its PID yet). It must not be signalled.
    Unknown,
}

/// Finds the process that holds the PID file's lock, without ever trusting the PID alone.
pub fn holder(layout: &Layout) -> io::Result<Holder> {
    let mut file = match open(layout, &mut OpenOptions::new()) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Holder::None),
        Err(err) => return Err(err),
    };
    let id = FileId::of_file(&file)?;
    let deadline = Instant::now() + PROBE_GRACE;
    loop {
        match FileExt::try_lock_shared(&file) {
            Ok(()) => {
                let _ = FileExt::unlock(&file);
                return Ok(Holder::None);
            }
            Err(err) if err.kind() != io::ErrorKind::WouldBlock => return Err(err),
            Err(_) => {}
        }
        if let Some(pid) = read_pid(&mut file).filter(|&pid| has_open(pid, id)) {
            return Ok(Holder::Service(pid));
        }
        if Instant::now() > deadline {
            return Ok(Holder::Unknown);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until nobody holds the PID file's lock, up to `timeout`. True if it was released.
pub fn wait_released(layout: &Layout, timeout: Duration) -> io::Result<bool> {
    let file = open(layout, &mut OpenOptions::new())?;
    let deadline = Instant::now() + timeout;
    let released = flock::lock_by(&file, Mode::Shared, deadline, Duration::from_millis(20))?;
    if released {
        let _ = FileExt::unlock(&file);
    }
    Ok(released)
}

/// Opens the PID file for reading (and what `options` add) without blocking and without
/// following a symlink: a fifo in its place cannot hang anything, and a planted link cannot
/// make the service truncate another file.
fn open(layout: &Layout, options: &mut OpenOptions) -> io::Result<File> {
    open_nofollow(options.read(true).mode(0o644), &layout.pid_file())
}

fn read_pid(file: &mut File) -> Option<Pid> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 0).then(|| Pid::from_raw(pid))
}

/// Whether the service holding the PID file has been told to stop (see
/// [`PidLock::mark_stopping`]).
pub fn is_stopping(layout: &Layout) -> bool {
    let mut text = String::new();
    open(layout, &mut OpenOptions::new())
        .and_then(|file| file.take(32).read_to_string(&mut text))
        .is_ok_and(|_| text.lines().nth(1) == Some(STOPPING))
}

/// Whether process `pid` has the file `id` open: proof that it is the lock holder and not an
/// unrelated process that inherited a stale PID.
fn has_open(pid: Pid, id: FileId) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::metadata(fd.path()).is_ok_and(|meta| FileId::of(&meta) == id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_is_this_process_while_locked_and_none_after() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        assert_eq!(holder(&layout).unwrap(), Holder::None);
        let lock = acquire(&layout).unwrap();
        assert_eq!(holder(&layout).unwrap(), Holder::Service(Pid::this()));
        assert!(matches!(acquire(&layout), Err(LockError::AlreadyRunning)));
        lock.release();
        assert_eq!(holder(&layout).unwrap(), Holder::None);
        assert_eq!(fs::read(layout.pid_file()).unwrap(), b"");
    }

    #[test]
    fn a_stopping_service_is_still_the_holder_and_keeps_its_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        let lock = acquire(&layout).unwrap();
        let started = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        lock.file.set_modified(started).unwrap();
        assert!(!is_stopping(&layout));
        lock.mark_stopping();
        assert!(is_stopping(&layout));
        assert_eq!(holder(&layout).unwrap(), Holder::Service(Pid::this()));
        let modified = fs::metadata(layout.pid_file()).unwrap().modified().unwrap();
        assert_eq!(modified, started);
        lock.release();
        assert!(!is_stopping(&layout));
    }

    #[test]
    fn a_stale_pid_is_not_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        fs::create_dir_all(layout.logs_dir()).unwrap();
        // PID 1 exists, but holds no lock on this file.
        fs::write(layout.pid_file(), b"1\n").unwrap();
        assert_eq!(holder(&layout).unwrap(), Holder::None);
    }
}
