//! Opening files that someone else could replace: never through a symlink, never blocking on
//! a FIFO put in their place, checked to be regular files, and read with a size cap. And the
//! one way backupbox tells whether two opens reached the same file.

use nix::sys::stat::FileStat;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A file's identity on disk: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    pub fn of_stat(stat: &FileStat) -> FileId {
        FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        }
    }

    /// The identity of what `path` names now, without following a final symlink.
    pub fn at(path: &Path) -> io::Result<FileId> {
        Ok(FileId::of(&std::fs::symlink_metadata(path)?))
    }

    /// The identity of an open file.
    pub fn of_file(file: &File) -> io::Result<FileId> {
        Ok(FileId::of(&file.metadata()?))
    }
}

/// Opens `path` with `options` plus `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY`: a symlink planted in its
/// place is not followed, and a FIFO there cannot block.
pub fn open_nofollow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    options
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
}

/// Opens (creating, with permission bits `mode`) a lock file: read-write, never truncated,
/// never through a symlink, and checked to be a regular file.
pub fn open_lock_file(path: &Path, mode: u32) -> io::Result<File> {
    let file = open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode),
        path,
    )?;
    ensure_regular(&file)?;
    Ok(file)
}

/// Opens `path` for reading with [`open_nofollow`] and checks that it is a regular file. A
/// symlink in its place is refused with that said, not the kernel's "Too many levels of
/// symbolic links".
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = open_nofollow(OpenOptions::new().read(true), path).map_err(|err| {
        if err.raw_os_error() == Some(nix::libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a symbolic link, not a regular file (backupbox does not follow links here)",
            )
        } else {
            err
        }
    })?;
    ensure_regular(&file)?;
    Ok(file)
}

/// An error unless `file` is a regular file.
pub fn ensure_regular(file: &File) -> io::Result<()> {
    if file.metadata()?.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ))
    }
}

/// Reads all of an opened regular file, refusing one larger than `cap` bytes.
pub fn read_capped(file: &File, cap: u64) -> io::Result<Vec<u8>> {
    ensure_regular(file)?;
    let size = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", cap >> 20),
        ));
    }
    Ok(bytes)
}

/// [`open_regular`] and [`read_capped`] in one.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    read_capped(&open_regular(path)?, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_links_and_big_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read_regular(&fifo, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read_regular(&link, 10).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, [7u8; 11]).unwrap();
        assert!(read_regular(&big, 10).is_err());
        assert_eq!(read_regular(&big, 11).unwrap(), [7u8; 11]);
        assert_eq!(
            FileId::at(&big).unwrap(),
            FileId::of_file(&File::open(&big).unwrap()).unwrap()
        );
        assert_ne!(FileId::at(&big).unwrap(), FileId::at(&fifo).unwrap());
    }
}
