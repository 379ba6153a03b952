//! Keeps two jobs, in one process or several, from writing the same archive name at once.
//!
//! Each name owns one byte of `backups/.backupbox.lock`, locked with an open-file-description
//! lock: such locks conflict between threads as well as processes, vanish with the holder
//! (even on kill -9), and need one file for all names instead of one file per name.

use crate::layout::Layout;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

/// Held while an archive name is being written; dropping it releases the name.
#[derive(Debug)]
pub struct NameGuard {
    _file: File,
}

/// Takes the lock for `name`, or `Ok(None)` if another job holds it now.
pub fn try_lock(layout: &Layout, name: &[u8]) -> io::Result<Option<NameGuard>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(layout.name_lock())?;
    crate::sys::open::ensure_regular(&file)?;
    // SAFETY: flock is plain data; all-zero is a valid starting value.
    let mut region: libc::flock = unsafe { std::mem::zeroed() };
    region.l_type = libc::F_WRLCK as libc::c_short;
    region.l_whence = libc::SEEK_SET as libc::c_short;
    region.l_start = name_slot(name);
    region.l_len = 1;
    match fcntl(&file, FcntlArg::F_OFD_SETLK(&region)) {
        Ok(_) => Ok(Some(NameGuard { _file: file })),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The byte that stands for `name`: an FNV-1a hash, so names of any length map to one offset.
fn name_slot(name: &[u8]) -> libc::off_t {
    let hash = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    (hash >> 2) as libc::off_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_name_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        std::fs::create_dir(layout.backups_dir()).unwrap();
        let first = try_lock(&layout, b"daily").unwrap().expect("free at first");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                assert!(
                    try_lock(&layout, b"daily").unwrap().is_none(),
                    "held by the other thread"
                );
                assert!(
                    try_lock(&layout, b"weekly").unwrap().is_some(),
                    "other names are free"
                );
            });
        });
        drop(first);
        assert!(
            try_lock(&layout, b"daily").unwrap().is_some(),
            "released on drop"
        );
    }
}
