//! `restore --delete`: removes what the restore folder holds that the restored state lacks,
//! relative to directory descriptors. Directories are opened with `O_NOFOLLOW`, so nothing is
//! ever removed through a link, and a link itself is removed as a name, never followed.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Deepest directory this looks into; a folder deeper than that is left as it is below.
const MAX_DEPTH: usize = 256;

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// What the restored state has at a path below the folder: `Some(true)` a directory,
/// `Some(false)` anything else, `None` nothing.
pub type Makes<'a> = &'a dyn Fn(&[&[u8]]) -> Option<bool>;

/// The names in directory `dir`.
fn names(dir: BorrowedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut stream = Dir::from_fd(dir.try_clone_to_owned()?)?;
    Ok(stream
        .iter()
        .filter_map(std::result::Result::ok)
        .map(|entry| entry.file_name().to_bytes().to_vec())
        .filter(|name| name != b"." && name != b"..")
        .collect())
}

/// Removes what `target` holds that `makes` lacks; returns how many entries went.
pub fn delete_extra(target: &Path, makes: Makes) -> io::Result<u64> {
    let root: OwnedFd = nix::fcntl::open(
        target,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut removed = 0;
    keep_only(root.as_fd(), &mut Vec::new(), makes, &mut removed)?;
    Ok(removed)
}

/// In directory `dir` (at `path`), removes each entry the state lacks and looks into those it
/// has as directories.
fn keep_only(
    dir: BorrowedFd,
    path: &mut Vec<Vec<u8>>,
    makes: Makes,
    removed: &mut u64,
) -> io::Result<()> {
    for name in names(dir)? {
        path.push(name);
        let parts: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
        let name = parts[parts.len() - 1];
        match makes(&parts) {
            Some(true) if path.len() < MAX_DEPTH => {
                match openat(dir, name, dir_flags(), Mode::empty()) {
                    Ok(child) => keep_only(child.as_fd(), path, makes, removed)?,
                    // Not a directory on disk after all (the restore would have failed on it).
                    Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => {}
                    Err(errno) => return Err(errno.into()),
                }
            }
            Some(_) => {}
            None => remove_all(dir, name, 0, removed)?,
        }
        path.pop();
    }
    Ok(())
}

/// Removes entry `name` of `dir`, and all it holds if it is a directory.
fn remove_all(dir: BorrowedFd, name: &[u8], depth: usize, removed: &mut u64) -> io::Result<()> {
    let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(errno.into()),
    };
    let is_dir = stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
    if is_dir {
        if depth >= MAX_DEPTH {
            return Err(io::Error::other("a directory to remove is too deep"));
        }
        let child = openat(dir, name, dir_flags(), Mode::empty())?;
        for inner in names(child.as_fd())? {
            remove_all(child.as_fd(), &inner, depth + 1, removed)?;
        }
    }
    let flag = if is_dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    match unlinkat(dir, name, flag) {
        Ok(()) => *removed += 1,
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno.into()),
    }
    Ok(())
}
