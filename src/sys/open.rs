//! Opening files that someone else could replace: never through a symlink, never blocking on
//! a FIFO put in their place, checked to be regular files, and read with a size cap.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading with `O_NOFOLLOW|O_NONBLOCK` and checks that it is a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
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
    let mut bytes = Vec::with_capacity(size.min(cap) as usize);
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
    }
}
