//! Where every file of a backup system lives, relative to its base directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const PLAN_FILE: &str = "backup_schedules.txt";
/// The optional settings file, in the base directory.
pub const SETTINGS_FILE: &str = "backupbox.toml";
/// The endings of an archive's file name, one per form: plain, gzip, zstd, and each of them
/// encrypted with age.
pub const ARCHIVE_SUFFIXES: [&str; 6] = [
    ".tar",
    ".tar.gz",
    ".tar.zst",
    ".tar.age",
    ".tar.gz.age",
    ".tar.zst.age",
];
pub const LOGS_DIR: &str = "logs";
pub const BACKUPS_DIR: &str = "backups";
pub const MANAGER_LOG: &str = "backup_manager.log";
pub const SERVICE_LOG: &str = "backup_service.log";
pub const PID_FILE: &str = "backup_service.pid";
/// Last outcome of each schedule, for `status`; in `logs/`.
pub const STATE_FILE: &str = "backup_state.txt";
/// What the store knows of each archive written, by its stamp; in `logs/`.
pub const CATALOG_FILE: &str = "backup_catalog.txt";
/// Serializes writers of the state file and the catalog; in `logs/`.
pub const STATE_LOCK_FILE: &str = "backup_state.lock";
/// The ending of an incremental full's snapshot, `backups/<name>.snapshot`.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Default parent of `restore`'s target folders.
pub const RESTORE_DIR: &str = "restore";
/// Lock file in `backups/` that keeps two jobs from writing the same archive at once.
pub const NAME_LOCK_FILE: &str = ".backupbox.lock";

/// Whether an entry of `backups/` is backupbox's own working file rather than an archive:
/// never listed by `backups`, never put into an archive.
pub fn is_internal_backups_entry(name: &[u8]) -> bool {
    crate::sys::atomic_file::is_temp_name(name)
        || name == NAME_LOCK_FILE.as_bytes()
        || name.ends_with(SNAPSHOT_SUFFIX.as_bytes())
}

/// The files of one backup system, all below one base directory.
#[derive(Debug, Clone)]
pub struct Layout {
    base: PathBuf,
}

impl Layout {
    /// `base` should be absolute for a daemon, which must not depend on its working directory.
    pub fn new(base: PathBuf) -> Layout {
        Layout { base }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn plan(&self) -> PathBuf {
        self.base.join(PLAN_FILE)
    }

    /// `backupbox.toml`, the optional settings file.
    pub fn settings_file(&self) -> PathBuf {
        self.base.join(SETTINGS_FILE)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.base.join(LOGS_DIR)
    }

    pub fn manager_log(&self) -> PathBuf {
        self.logs_dir().join(MANAGER_LOG)
    }

    pub fn service_log(&self) -> PathBuf {
        self.logs_dir().join(SERVICE_LOG)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.logs_dir().join(PID_FILE)
    }

    pub fn state_file(&self) -> PathBuf {
        self.logs_dir().join(STATE_FILE)
    }

    pub fn catalog_file(&self) -> PathBuf {
        self.logs_dir().join(CATALOG_FILE)
    }

    pub fn state_lock(&self) -> PathBuf {
        self.logs_dir().join(STATE_LOCK_FILE)
    }

    pub fn restore_dir(&self) -> PathBuf {
        self.base.join(RESTORE_DIR)
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.base.join(BACKUPS_DIR)
    }

    pub fn name_lock(&self) -> PathBuf {
        self.backups_dir().join(NAME_LOCK_FILE)
    }

    /// The file name of a schedule name's archive with ending `suffix` (one of
    /// [`ARCHIVE_SUFFIXES`]).
    pub fn archive_file_name(name: &[u8], suffix: &str) -> Vec<u8> {
        let mut file = name.to_vec();
        file.extend_from_slice(suffix.as_bytes());
        file
    }

    /// The file names the archive of `name` may have, one per form.
    pub fn archive_file_names(name: &[u8]) -> [Vec<u8>; 6] {
        ARCHIVE_SUFFIXES.map(|suffix| Layout::archive_file_name(name, suffix))
    }

    /// `backups/<name>.tar` (`.tar.gz`, `.tar.zst`) on disk.
    pub fn archive_path(&self, name: &[u8], suffix: &str) -> PathBuf {
        self.backups_dir()
            .join(OsStr::from_bytes(&Layout::archive_file_name(name, suffix)))
    }

    /// `backups/<name>.snapshot`: what the newest incremental full of `name` holds.
    pub fn snapshot_path(&self, name: &[u8]) -> PathBuf {
        let mut file = name.to_vec();
        file.extend_from_slice(SNAPSHOT_SUFFIX.as_bytes());
        self.backups_dir().join(OsStr::from_bytes(&file))
    }

    /// A plan folder as a path on disk: relative folders resolve against the base directory.
    pub fn resolve_folder(&self, folder: &[u8]) -> PathBuf {
        // join() keeps an absolute folder as it is.
        self.base.join(OsStr::from_bytes(folder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_folders_resolve_against_the_base() {
        let layout = Layout::new(PathBuf::from("/srv/box"));
        assert_eq!(
            layout.resolve_folder(b"test"),
            PathBuf::from("/srv/box/test")
        );
        assert_eq!(layout.resolve_folder(b"/etc"), PathBuf::from("/etc"));
        assert_eq!(
            layout.pid_file(),
            PathBuf::from("/srv/box/logs/backup_service.pid")
        );
        assert_eq!(
            layout.archive_path(b"docs", ARCHIVE_SUFFIXES[2]),
            PathBuf::from("/srv/box/backups/docs.tar.zst")
        );
    }
}
