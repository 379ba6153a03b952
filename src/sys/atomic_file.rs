//! Replace-by-rename: a hidden, locked temporary file that becomes the target whole or not at all.
//!
//! Both the plan and the archives are written this way, so a crash, a full disk or a kill -9
//! leaves the previous file byte-identical.

use super::open::FileId;
use fs2::FileExt;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const TEMP_PREFIX: &[u8] = b".backupbox-";
const TEMP_SUFFIX: &[u8] = b".tmp";

/// Whether a directory entry is one of our temporary files (never listed, never archived).
pub fn is_temp_name(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// A temporary file in the target's directory, removed on drop unless committed.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates a new, exclusively locked temporary file in `dir` with permission bits `mode`.
    ///
    /// The lock tells [`remove_stale_temps`] that the file is still being written.
    pub fn create_in(dir: &Path, mode: u32) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let serial = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut name = TEMP_PREFIX.to_vec();
            name.extend_from_slice(format!("{}-{serial}", std::process::id()).as_bytes());
            name.extend_from_slice(TEMP_SUFFIX);
            let path = dir.join(OsStr::from_bytes(&name));
            let file = match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
            {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            };
            FileExt::lock_exclusive(&file)?;
            // A clean-up running between our create and our lock may have removed the name.
            let still_ours = FileId::at(&path)
                .is_ok_and(|on_disk| FileId::of_file(&file).is_ok_and(|open| open == on_disk));
            if still_ours {
                return Ok(TempFile {
                    file,
                    path,
                    dir: dir.to_path_buf(),
                    committed: false,
                });
            }
        }
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the written data durable and puts it in place of `target` in one step.
    pub fn commit(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, target)?;
        self.committed = true;
        self.sync_dir()
    }

    /// Makes the written data durable and gives it the name `target` if nothing has that
    /// name yet: `Ok(false)`, and the file stays temporary, if something has.
    pub fn commit_new(&mut self, target: &Path) -> io::Result<bool> {
        self.file.sync_all()?;
        match fs::hard_link(&self.path, target) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(err) => return Err(err),
        }
        self.committed = true;
        fs::remove_file(&self.path)?;
        self.sync_dir().map(|()| true)
    }

    /// The rename itself is durable only once the directory is synced. O_DIRECTORY: a FIFO
    /// swapped in for the directory must not hang the commit.
    fn sync_dir(&self) -> io::Result<()> {
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NONBLOCK)
            .open(&self.dir)?
            .sync_all()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes temporary files left in `dir` by a writer that died (kill -9, power loss).
/// Files still locked by a live writer are left alone. Returns the names removed.
///
/// Anything named like a temp file that is not a regular file (a FIFO, a link, a device put
/// there by someone) is unlinked without being opened, so it can never hang the clean-up.
pub fn remove_stale_temps(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !is_temp_name(entry.file_name().as_bytes()) {
            continue;
        }
        let path = entry.path();
        let Ok(seen) = fs::symlink_metadata(&path) else {
            continue;
        };
        let stale = if seen.is_file() {
            crate::sys::open::open_regular(&path).is_ok_and(|file| {
                let same = FileId::of_file(&file).is_ok_and(|open| open == FileId::of(&seen));
                same && FileExt::try_lock_exclusive(&file).is_ok()
            })
        } else {
            !seen.is_dir()
        };
        if stale && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"old").unwrap();

        let mut temp = TempFile::create_in(dir.path(), 0o600).unwrap();
        temp.file().write_all(b"abandoned").unwrap();
        let abandoned = temp.path().to_path_buf();
        drop(temp);
        assert!(!abandoned.exists());
        assert_eq!(fs::read(&target).unwrap(), b"old");

        let mut temp = TempFile::create_in(dir.path(), 0o600).unwrap();
        temp.file().write_all(b"new").unwrap();
        temp.commit(&target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_removed_but_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = TempFile::create_in(dir.path(), 0o600).unwrap();
        let stale = dir.path().join(".backupbox-999999-0.tmp");
        fs::write(&stale, b"left by a crash").unwrap();
        let fifo = dir.path().join(".backupbox-1-1.tmp");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let unrelated = dir.path().join(".backupbox-notes");
        fs::write(&unrelated, b"user file").unwrap();

        let mut removed = remove_stale_temps(dir.path()).unwrap();
        removed.sort();
        assert_eq!(removed, vec![fifo.clone(), stale.clone()]);
        assert!(!fifo.exists());
        assert!(!stale.exists());
        assert!(live.path().exists());
        assert!(unrelated.exists());
    }
}
