//! Where every file of a backup system lives, relative to its base directory.

use crate::archive::compression::Compression;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const PLAN_FILE: &str = "backup_schedules.txt";
pub const LOGS_DIR: &str = "logs";
pub const BACKUPS_DIR: &str = "backups";
pub const MANAGER_LOG: &str = "backup_manager.log";
pub const SERVICE_LOG: &str = "backup_service.log";
pub const PID_FILE: &str = "backup_service.pid";
/// Last outcome of each schedule, for `status`; in `logs/`.
pub const STATE_FILE: &str = "backup_state.txt";
/// Serializes writers of the state file; in `logs/`.
pub const STATE_LOCK_FILE: &str = "backup_state.lock";
/// Default parent of `restore`'s target folders.
pub const RESTORE_DIR: &str = "restore";
/// Lock file in `backups/` that keeps two jobs from writing the same archive at once.
pub const NAME_LOCK_FILE: &str = ".backupbox.lock";

/// Whether an entry of `backups/` is backupbox's own working file rather than an archive:
/// never listed by `backups`, never put into an archive.
pub fn is_internal_backups_entry(name: &[u8]) -> bool {
    crate::sys::atomic_file::is_temp_name(name) || name == NAME_LOCK_FILE.as_bytes()
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
        self.base.join(crate::settings::FILE)
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

    /// `backups/<name>.tar` (`.tar.gz`, `.tar.zst`) as the log lines spell it.
    pub fn archive_display(name: &[u8], compression: Compression) -> String {
        format!(
            "{BACKUPS_DIR}/{}{}",
            crate::log::show_bytes(name),
            compression.suffix()
        )
    }

    /// The file name of a schedule name's archive in one form.
    pub fn archive_file_name(name: &[u8], compression: Compression) -> Vec<u8> {
        let mut file = name.to_vec();
        file.extend_from_slice(compression.suffix().as_bytes());
        file
    }

    /// The file names the archive of `name` may have, one per form.
    pub fn archive_file_names(name: &[u8]) -> [Vec<u8>; 3] {
        Compression::ALL.map(|compression| Layout::archive_file_name(name, compression))
    }

    /// `backups/<name>.tar` (`.tar.gz`, `.tar.zst`) on disk.
    pub fn archive_path(&self, name: &[u8], compression: Compression) -> PathBuf {
        self.backups_dir()
            .join(OsStr::from_bytes(&Layout::archive_file_name(
                name,
                compression,
            )))
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
            Layout::archive_display(b"backup_test", Compression::None),
            "backups/backup_test.tar"
        );
        assert_eq!(
            Layout::archive_display(b"docs", Compression::Zstd),
            "backups/docs.tar.zst"
        );
    }
}
