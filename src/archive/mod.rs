//! Makes `backups/<name>.tar` of a plan folder: a GNU tar archive of the live tree, written to
//! a temporary file and put in place only when complete and on disk.

pub mod check;
pub mod exclude;
pub mod header;
pub mod member_name;
mod stream;
pub mod walk;

use crate::layout::{self, Layout};
use crate::plan::{Name, Schedule};
use crate::progress::Progress;
use crate::sys::atomic_file::TempFile;
use crate::sys::open::FileId;
use exclude::Rules;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
pub use walk::WriteError;
use walk::{Exclusions, Walker};

/// Opens `backups/NAME.tar` for reading: a regular file, never through a symlink.
pub fn open(layout: &Layout, name: &Name) -> crate::error::Result<File> {
    crate::sys::open::open_regular(&layout.archive_path(name)).map_err(|err| {
        crate::error::Error::failed(format!("can't read {}", Layout::archive_display(name)))
            .because(err)
    })
}

/// Creates `backups/` (mode 0700, private like the archives) if it is missing.
pub fn ensure_backups_dir(layout: &Layout) -> io::Result<PathBuf> {
    let dir = layout.backups_dir();
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// An archive written to a temporary file and on its way to `backups/<name>.tar`.
pub struct Written {
    temp: TempFile,
    target: PathBuf,
    size: u64,
    left_out: u64,
}

impl Written {
    /// The archive's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many entries the exclude rules left out.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    /// Makes the archive durable and puts it in place of the previous one in one step.
    pub fn commit(self) -> Result<u64, WriteError> {
        self.temp.commit(&self.target)?;
        Ok(self.size)
    }
}

/// Archives the schedule's folder into a temporary file in `backups/` (which the caller has
/// made with [`ensure_backups_dir`], since the name lock lives there too); nothing is replaced
/// until [`Written::commit`]. Each file skipped or changed is passed to `warn`.
pub fn write(
    layout: &Layout,
    schedule: &Schedule,
    rules: Rules,
    warn: &mut dyn FnMut(String),
    progress: &mut Progress,
) -> Result<Written, WriteError> {
    let backups = layout.backups_dir();
    let target = layout.archive_path(&schedule.name);
    let mut temp = TempFile::create_in(&backups, 0o600)?;
    let exclude = Exclusions {
        output: FileId::of_file(temp.file())?,
        backups_dir: fs::metadata(&backups).ok().map(|meta| FileId::of(&meta)),
        is_internal_name: layout::is_internal_backups_entry,
        own_folders: [
            (backups.clone(), "backupbox's archive folder"),
            (layout.restore_dir(), "backupbox's restore folder"),
        ]
        .into_iter()
        .filter_map(|(dir, what)| Some((FileId::of(&fs::metadata(dir).ok()?), what)))
        .collect(),
        rules,
    };
    let output = temp.file().try_clone()?;
    let mut walker = Walker::new(stream::TarStream::new(&output), exclude, warn, progress);
    walker.archive(&layout.resolve_folder(&schedule.folder), &schedule.folder)?;
    let (stream, left_out) = walker.finish();
    let size = stream.finish()?;
    // Written in full, not yet in place: where tests stop a backup "still writing".
    crate::test_hooks::pause("archive-written");
    Ok(Written {
        temp,
        target,
        size,
        left_out,
    })
}
