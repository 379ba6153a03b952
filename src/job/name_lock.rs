//! Keeps two jobs, in one process or several, from writing the same archive name at once.
//!
//! Each name owns one byte of `backups/.backupbox.lock`, locked with an open-file-description
//! lock: such locks conflict between threads as well as processes, vanish with the holder
//! (even on kill -9), and need one file for all names instead of one file per name.

use crate::layout::Layout;
use crate::sys::flock::try_lock_byte;
use crate::sys::open::open_lock_file;
use std::fs::File;
use std::io;

/// Held while an archive name is being written; dropping it releases the name.
#[derive(Debug)]
pub struct NameGuard {
    _file: File,
}

/// Takes the lock for `name`, or `Ok(None)` if another job holds it now.
pub fn try_lock(layout: &Layout, name: &[u8]) -> io::Result<Option<NameGuard>> {
    let file = open_lock_file(&layout.name_lock(), 0o600)?;
    Ok(try_lock_byte(&file, name_slot(name))?.then_some(NameGuard { _file: file }))
}

/// The byte that stands for `name`: an FNV-1a hash, so names of any length map to one offset.
fn name_slot(name: &[u8]) -> i64 {
    let hash = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    // Two bits off: the offset stays a positive i64.
    i64::try_from(hash >> 2).unwrap_or(0)
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
