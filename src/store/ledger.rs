//! The store's small text files in `logs/` (the state file of outcomes, the catalog of
//! archives): read with a size cap, never through a link or from a FIFO, and rewritten whole
//! under one lock shared by every process of a base directory.

use crate::layout::Layout;
use crate::sys::atomic_file::TempFile;
use crate::sys::flock::{self, Mode};
use crate::sys::open::open_lock_file;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most a ledger file may hold: 10,000 outcomes of long plan lines, or 100,000 catalog
/// records. Anything larger, or anything that is not a regular file (a FIFO, a link to
/// /dev/zero), is damage, not history.
pub const MAX_BYTES: u64 = 32 << 20;

/// The file's bytes; none if it does not exist yet.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match crate::sys::open::read_regular(path, MAX_BYTES) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// Replaces the file at `path` (in `logs/`) with what `change` makes of its current bytes,
/// holding the store's lock meanwhile, so no two writers lose each other's records.
///
/// Whatever is in the file's place and can't be read as one (a FIFO, a link, a huge file) is
/// replaced by the rename, losing history but never hanging.
pub fn rewrite(
    layout: &Layout,
    path: &Path,
    change: impl FnOnce(&[u8]) -> Vec<u8>,
) -> io::Result<()> {
    fs::create_dir_all(layout.logs_dir())?;
    // Workers of one service wait their turn here without polling; the file lock below only
    // waits for another process (a `run` next to the service).
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _turn = IN_PROCESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lock = open_lock_file(&layout.state_lock(), 0o644)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    if !flock::lock_by(&lock, Mode::Exclusive, deadline, Duration::from_millis(2))? {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "state file still locked after 10 s",
        ));
    }
    let current = match read(path) {
        Err(err) if err.kind() == io::ErrorKind::InvalidData => Vec::new(),
        other => other?,
    };
    let mut temp = TempFile::create_in(&layout.logs_dir(), 0o644)?;
    temp.file().write_all(&change(&current))?;
    temp.commit(path)
}
