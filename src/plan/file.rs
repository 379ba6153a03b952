//! Reading and editing `backup_schedules.txt` on disk: flock-guarded read-modify-write, replaced atomically.

use crate::error::{Error, Result};
use crate::layout::{Layout, PLAN_FILE};
use crate::sys::atomic_file::TempFile;
use crate::sys::flock::{self, Mode};
use crate::sys::open::FileId;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long an edit waits for another editor before giving up instead of hanging.
const LOCK_WAIT: Duration = Duration::from_secs(30);

fn cant_find() -> Error {
    Error::failed(format!("can't find {PLAN_FILE}"))
}

/// Largest plan accepted. A plan is a few lines; anything near this is a mistake or an attack
/// and must not exhaust memory.
const MAX_PLAN_BYTES: u64 = 16 << 20;

/// The plan's bytes. Writers replace the file by rename, so a reader needs no lock.
pub fn read(layout: &Layout) -> Result<Vec<u8>> {
    crate::debug_points::count("plan-read");
    let file = open_nonblocking(OpenOptions::new().read(true), &layout.plan())
        .map_err(|err| cant_find().because(err))?;
    read_checked(&file).map_err(|err| cant_find().because(err))
}

/// Opens without blocking, so a fifo put in the plan's place cannot hang the program.
fn open_nonblocking(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    options.custom_flags(nix::libc::O_NONBLOCK).open(path)
}

/// Reads an opened plan after checking that it is a regular file of sane size.
fn read_checked(file: &File) -> io::Result<Vec<u8>> {
    crate::sys::open::read_capped(file, MAX_PLAN_BYTES)
}

/// Whether a missing plan may be created by this edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Fail,
}

/// Applies `change` to the plan under an exclusive lock and writes the result atomically.
///
/// `change` gets the current bytes and returns the new bytes, or an error that leaves the
/// plan untouched.
pub fn edit<T>(
    layout: &Layout,
    missing: Missing,
    change: impl FnOnce(&[u8]) -> Result<(Vec<u8>, T)>,
) -> Result<T> {
    let target = edit_target(layout);
    let locked = lock_current(&target, missing)?;
    let current = read_checked(&locked).map_err(|err| cant_write().because(err))?;
    let (edited, outcome) = change(&current)?;
    replace(&target, &locked, &edited).map_err(|err| cant_write().because(err))?;
    Ok(outcome)
}

/// The file an edit replaces: the plan, or the file its symlink points to, so that editing
/// a linked plan updates the target and keeps the link.
pub fn edit_target(layout: &Layout) -> PathBuf {
    let plan = layout.plan();
    match fs::symlink_metadata(&plan) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(&plan).unwrap_or(plan),
        _ => plan,
    }
}

fn cant_write() -> Error {
    Error::failed(format!("can't write {PLAN_FILE}"))
}

/// Opens the plan and locks it, making sure the lock is on the file that is in place now:
/// an editor that waited may hold the lock of a file that a rename has already replaced.
fn lock_current(path: &Path, missing: Missing) -> Result<File> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let file = open_nonblocking(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(missing == Missing::Create)
                .mode(0o644),
            path,
        )
        .map_err(|err| {
            if err.kind() == io::ErrorKind::NotFound {
                cant_find()
            } else {
                cant_write()
            }
            .because(err)
        })?;
        match flock::lock_by(&file, Mode::Exclusive, deadline, Duration::from_millis(2)) {
            Ok(true) => {}
            Ok(false) => {
                return Err(cant_write().because(format!(
                    "plan is still locked by another editor after {} s",
                    LOCK_WAIT.as_secs()
                )));
            }
            Err(err) => return Err(cant_write().because(err)),
        }
        let open = FileId::of_file(&file).map_err(|err| cant_write().because(err))?;
        match fs::metadata(path) {
            Ok(now) if FileId::of(&now) == open => return Ok(file),
            Ok(_) => continue,
            Err(err) if err.kind() == io::ErrorKind::NotFound && missing == Missing::Create => {
                continue;
            }
            Err(err) => return Err(cant_find().because(err)),
        }
    }
}

fn replace(target: &Path, old: &File, edited: &[u8]) -> io::Result<()> {
    let old_meta = old.metadata()?;
    let mut temp = TempFile::create_in(target.parent().unwrap_or(Path::new(".")), 0o600)?;
    temp.file().write_all(edited)?;
    // Keep the plan's owner and permissions: root editing a user's plan must not take it over.
    temp.file()
        .set_permissions(fs::Permissions::from_mode(old_meta.mode() & 0o7777))?;
    let _ = std::os::unix::fs::fchown(temp.file(), Some(old_meta.uid()), Some(old_meta.gid()));
    temp.commit(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_keeps_mode_and_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        fs::write(layout.plan(), b"# c\n").unwrap();
        fs::set_permissions(layout.plan(), fs::Permissions::from_mode(0o640)).unwrap();
        edit(&layout, Missing::Fail, |old| {
            Ok((crate::plan::with_line_appended(old, b"a;00:00;n"), ()))
        })
        .unwrap();
        assert_eq!(fs::read(layout.plan()).unwrap(), b"# c\na;00:00;n\n");
        assert_eq!(fs::metadata(layout.plan()).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_failed_change_leaves_the_plan_alone() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        fs::write(layout.plan(), b"keep\n").unwrap();
        let err = edit(&layout, Missing::Fail, |_| -> Result<(Vec<u8>, ())> {
            Err(Error::failed("nope"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "nope");
        assert_eq!(fs::read(layout.plan()).unwrap(), b"keep\n");
        let names: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(names, vec![layout.plan()]);
    }

    #[test]
    fn missing_plan_is_reported_or_created() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        let err = edit(&layout, Missing::Fail, |old| Ok((old.to_vec(), ()))).unwrap_err();
        assert_eq!(err.to_string(), "can't find backup_schedules.txt");
        assert!(read(&layout).is_err());
        edit(&layout, Missing::Create, |old| {
            Ok((crate::plan::with_line_appended(old, b"a;00:00;n"), ()))
        })
        .unwrap();
        assert_eq!(read(&layout).unwrap(), b"a;00:00;n\n");
    }

    #[test]
    fn concurrent_edits_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        std::thread::scope(|scope| {
            for i in 0..16 {
                let layout = &layout;
                scope.spawn(move || {
                    let line = format!("f{i};00:00;n{i}");
                    edit(layout, Missing::Create, |old| {
                        Ok((crate::plan::with_line_appended(old, line.as_bytes()), ()))
                    })
                    .unwrap();
                });
            }
        });
        let plan = read(&layout).unwrap();
        assert_eq!(crate::plan::entries(&plan).len(), 16);
    }
}
