//! Makes `backups/<name>.tar` of a plan folder: a GNU tar archive of the live tree, written to
//! a temporary file and put in place only when complete and on disk.

pub mod header;
pub mod member_name;
mod stream;
mod walk;

use crate::atomic_file::TempFile;
use crate::layout::{self, Layout};
use crate::plan::Schedule;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use walk::{Exclusions, Failure, Walker, file_id};

/// Creates `backups/` (mode 0700, private like the archives) if it is missing.
pub fn ensure_backups_dir(layout: &Layout) -> io::Result<PathBuf> {
    let dir = layout.backups_dir();
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Archives the schedule's folder into `backups/<name>.tar`, replacing the previous archive
/// only on success. Each file skipped or changed is passed to `warn`. The error is the reason
/// the archive could not be made; the previous archive is then untouched. Returns the
/// archive's size in bytes.
pub fn create(
    layout: &Layout,
    schedule: &Schedule,
    warn: &mut dyn FnMut(String),
) -> Result<u64, String> {
    let write_failed = |err: io::Error| format!("can't write archive ({err})");
    let backups = ensure_backups_dir(layout)
        .map_err(|err| format!("can't create backups directory ({err})"))?;
    let target = backups.join(OsStr::from_bytes(&layout::Layout::archive_file_name(
        &schedule.name,
    )));
    let mut temp = TempFile::create_in(&backups, 0o600).map_err(write_failed)?;
    let exclude = Exclusions {
        output: file_id(&temp.file().metadata().map_err(write_failed)?),
        backups_dir: fs::metadata(&backups).ok().map(|meta| file_id(&meta)),
        is_internal_name: layout::is_internal_backups_entry,
    };
    let output = temp.file().try_clone().map_err(write_failed)?;
    let mut walker = Walker::new(stream::TarStream::new(&output), exclude, warn);
    walker
        .archive(&layout.resolve_folder(&schedule.folder), &schedule.folder)
        .map_err(|failure| match failure {
            Failure::Folder(reason) => reason,
            Failure::Write(err) => write_failed(err),
        })?;
    let size = walker.into_stream().finish().map_err(write_failed)?;
    temp.commit(&target).map_err(write_failed)?;
    Ok(size)
}
