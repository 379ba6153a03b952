//! The offsite copy of each new archive, through rclone: into `REMOTE:PATH/<prefix>/` under
//! its generation name, which never changes once written
//! (`docs.2026-12-01_033000.tar.zst.age`), so nothing on the remote is ever overwritten;
//! complete or not at all; recorded in the catalog; retried with backoff by the service; and
//! deleted with the local generation when retention removes it. rclone runs as a child of its
//! own, never through a shell, its output logged like a hook's.

use super::hooks::{self, HookFailure};
use crate::archive::form::Form;
use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::settings::{Effective, OffsiteSettings};
use crate::store::catalog::{self, OffsiteState, Written};
use crate::store::rotation;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where a temporary upload lies on a remote that can move files, before it is moved into
/// place; a killed copy's leftovers are removed by name before the next one.
const PARTIAL_PREFIX: &str = ".backupbox-partial-";
/// The first retry comes this long after a failure; each later one waits twice as long.
const FIRST_RETRY_SECONDS: i64 = 60;

/// The offsite copies of one schedule, as its settings say.
pub struct Offsite<'a> {
    settings: &'a OffsiteSettings,
    /// `REMOTE:PATH/<prefix>`.
    folder: String,
    config: Option<PathBuf>,
}

impl<'a> Offsite<'a> {
    /// The offsite copies `settings` ask for, if they ask for any; relative paths are
    /// relative to `base`.
    pub fn of(settings: &'a Effective, base: &Path) -> Option<Offsite<'a>> {
        let offsite = &settings.offsite;
        let remote = offsite.remote.as_deref()?;
        let prefix = offsite.prefix.clone().unwrap_or_else(host_name);
        let folder = if remote.ends_with(':') || remote.ends_with('/') {
            format!("{remote}{prefix}")
        } else {
            format!("{remote}/{prefix}")
        };
        Some(Offsite {
            settings: offsite,
            folder,
            config: offsite.config.as_ref().map(|config| base.join(config)),
        })
    }

    /// `REMOTE:PATH/<prefix>`, as the log lines name it.
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// `rclone` with the settings' config and bandwidth, flags joined to their values so that
    /// no value is ever read as another flag.
    fn rclone(&self) -> Result<Command, String> {
        let mut command = Command::new("rclone");
        if let Some(config) = &self.config {
            check_private(config)?;
            let mut flag = b"--config=".to_vec();
            flag.extend_from_slice(config.as_os_str().as_bytes());
            command.arg(OsStr::from_bytes(&flag));
        }
        if let Some(limit) = &self.settings.bwlimit {
            command.arg(format!("--bwlimit={limit}"));
        }
        command.args(["--retries=1", "--low-level-retries=3"]);
        Ok(command)
    }

    /// Runs one rclone command (its arguments after `--`), logged as `rclone: …`; `gone`
    /// says whether rclone's "not found" (exit 3 or 4) means done.
    fn run(
        &self,
        operation: &str,
        flags: &[&str],
        paths: &[&OsStr],
        gone: bool,
        log: &Log,
    ) -> Result<(), String> {
        let mut command = self.rclone()?;
        command.arg(operation).args(flags).arg("--").args(paths);
        let limit = Duration::from_secs(u64::from(self.settings.timeout_seconds));
        match hooks::run_logged("rclone", &mut command, limit, log) {
            Ok(()) => Ok(()),
            Err(HookFailure::Exited(3 | 4)) if gone => Ok(()),
            Err(HookFailure::CantRun(err)) => Err(format!("can't run rclone ({err})")),
            Err(other) => Err(format!("rclone {operation} {other}")),
        }
    }

    /// Whether the remote moves files in place (local, SFTP, WebDAV): then an upload goes to a
    /// temporary name first. Object stores (S3, B2, GCS, Azure) can't, and don't need to: one
    /// upload is atomic there, and a move would be a copy and a delete that write-only
    /// credentials forbid. When rclone can't tell, the remote is taken for an object store.
    fn moves_in_place(&self) -> bool {
        let Ok(mut command) = self.rclone() else {
            return false;
        };
        let remote = self.folder.split(':').next().unwrap_or_default();
        command
            .args([
                "--contimeout=10s",
                "--timeout=30s",
                "backend",
                "features",
                "--",
            ])
            .arg(format!("{remote}:"));
        command.output().is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|line| line.trim() == "\"Move\": true,")
        })
    }

    /// Whether rclone knows the remote the copies go to (from its config file or the
    /// `RCLONE_CONFIG_*` environment), for `check`; a `:backend:` string needs no config.
    pub fn check_remote(&self) -> Result<(), String> {
        let remote = self.folder.split(':').next().unwrap_or_default();
        if remote.is_empty() || !self.folder.contains(':') {
            return Ok(());
        }
        let mut command = self.rclone()?;
        let out = command
            .arg("listremotes")
            .output()
            .map_err(|err| format!("can't run rclone ({err})"))?;
        let listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.trim() == format!("{remote}:"));
        if listed {
            Ok(())
        } else {
            Err(format!(
                "rclone has no remote {remote}: (rclone listremotes; the config file, or RCLONE_CONFIG_{}_TYPE)",
                remote.to_uppercase()
            ))
        }
    }

    /// Copies `local` to `<folder>/<remote_name>`, complete or not at all.
    pub fn copy(&self, local: &Path, remote_name: &str, log: &Log) -> Result<(), String> {
        let target = format!("{}/{remote_name}", self.folder);
        if !self.moves_in_place() {
            return self.run(
                "copyto",
                &["--immutable"],
                &[local.as_os_str(), OsStr::new(&target)],
                false,
                log,
            );
        }
        // What a killed copy left under a temporary name goes first. Not logged, and no
        // failure of the copy's: on the first copy the folder does not exist, which rclone
        // calls an error.
        if let Ok(mut command) = self.rclone() {
            let _ = command
                .args([
                    "--contimeout=10s",
                    "--timeout=60s",
                    "delete",
                    "--max-depth=1",
                ])
                .arg(format!("--include={PARTIAL_PREFIX}*"))
                .arg("--")
                .arg(&self.folder)
                .output();
        }
        let partial = format!("{}/{PARTIAL_PREFIX}{remote_name}", self.folder);
        self.run(
            "copyto",
            &[],
            &[local.as_os_str(), OsStr::new(&partial)],
            false,
            log,
        )?;
        self.run(
            "moveto",
            &["--immutable"],
            &[OsStr::new(&partial), OsStr::new(&target)],
            false,
            log,
        )
    }

    /// Deletes `<folder>/<remote_name>`, the copy of an archive retention removed; one that
    /// is not there (never copied) is no failure.
    pub fn delete(&self, remote_name: &str, log: &Log) -> Result<(), String> {
        let target = format!("{}/{remote_name}", self.folder);
        self.run("deletefile", &[], &[OsStr::new(&target)], true, log)
    }
}

/// The host's name, for the remote folder when `offsite_prefix` is not set.
fn host_name() -> String {
    // The kernel's host name, as `uname -n` prints it.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    let name: String = name
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        "localhost".to_owned()
    } else {
        name
    }
}

/// Refuses an rclone config that its group or others may read: it holds credentials.
fn check_private(config: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(config)
        .map_err(|err| format!("can't read offsite_config {} ({err})", config.display()))?;
    match crate::crypt::shared_with_others(&meta) {
        Some(mode) => Err(format!(
            "offsite_config {} may be read by its group or others {mode}",
            config.display()
        )),
        None => Ok(()),
    }
}

/// The name an archive has on the remote: its generation's name, from the mtime it was
/// written with.
pub fn remote_name(name: &[u8], form: Form, written: Written) -> String {
    let stamp = rotation::stamp(&LocalTime::at(written.seconds));
    String::from_utf8_lossy(&rotation::generation_name(name, &stamp, 1, form)).into_owned()
}

/// The archive of `name` written at `written`, wherever rotation has put it, and the name
/// its copy has on the remote: a full's generation name, a level-1's own (it keeps it for
/// life, there as here).
fn local_and_remote(
    backups: &Path,
    name: &[u8],
    written: Written,
    record: Option<&catalog::Record>,
    form: Form,
) -> (Option<Vec<u8>>, String) {
    let local = rotation::files_of(backups, name)
        .into_iter()
        .find(|(_, meta)| {
            Written::of(meta) == written && record.is_none_or(|record| record.size == meta.len())
        })
        .map(|(file, _)| file);
    let remote = match &local {
        Some(file) if crate::store::chain::is_level_one(name, file) => {
            String::from_utf8_lossy(file).into_owned()
        }
        _ => remote_name(name, form, written),
    };
    (local, remote)
}

/// Copies the archive of `name` written at `written` offsite, wherever rotation has put it
/// meanwhile, and records and logs how it went. `Err` holds the line logged after `Error: `.
pub fn copy_archive(
    layout: &Layout,
    name: &[u8],
    written: Written,
    settings: &Effective,
    log: &Log,
) -> Result<(), String> {
    let Some(offsite) = Offsite::of(settings, layout.base()) else {
        return Ok(());
    };
    let backups = layout.backups_dir();
    let records = catalog::load(layout).unwrap_or_default();
    let record = records
        .iter()
        .rev()
        .find(|record| record.name == name && record.written == written);
    let form = record.map_or_else(|| settings.form(), |record| record.form);
    let (local, remote) = local_and_remote(&backups, name, written, record, form);
    let shown = |file: &[u8]| format!("backups/{}", show_bytes(file));
    let Some(file) = local else {
        let line = format!(
            "offsite copy of backups/{remote} to {} failed: the archive is no longer in backups/",
            offsite.folder()
        );
        set_state(layout, name, written, &offsite, OffsiteState::Lost, log);
        return Err(line);
    };
    let attempts = match record.and_then(|record| record.offsite.as_ref()) {
        Some(catalog::Offsite {
            state: OffsiteState::Pending { attempts, .. },
            ..
        }) => *attempts,
        _ => 0,
    };
    match offsite.copy(&backups.join(OsStr::from_bytes(&file)), &remote, log) {
        Ok(()) => {
            let now = LocalTime::now().unix;
            set_state(
                layout,
                name,
                written,
                &offsite,
                OffsiteState::Copied(now),
                log,
            );
            log.write(&format!(
                "Offsite copy of {} to {}: done",
                shown(&file),
                offsite.folder()
            ));
            Ok(())
        }
        Err(why) => {
            let attempts = attempts + 1;
            let (state, then) = if attempts > settings.offsite.retries {
                let state = OffsiteState::Failed {
                    attempts,
                    error: why.clone(),
                };
                (state, "no retries left".to_owned())
            } else {
                let wait = FIRST_RETRY_SECONDS << (attempts - 1).min(20);
                let next = LocalTime::now().unix + wait;
                let state = OffsiteState::Pending {
                    attempts,
                    next,
                    error: why.clone(),
                };
                let at = LocalTime::at(next).date_time();
                (state, format!("retry at {}", &at[11..16]))
            };
            set_state(layout, name, written, &offsite, state, log);
            let line = format!(
                "offsite copy of {} to {} failed: {why}; {then}",
                shown(&file),
                offsite.folder()
            );
            log.write(&format!("Error: {line}"));
            Err(line)
        }
    }
}

/// Records how the copy of one archive stands; a catalog that can't be written costs the
/// record (and so the retry), which is logged.
fn set_state(
    layout: &Layout,
    name: &[u8],
    written: Written,
    offsite: &Offsite,
    state: OffsiteState,
    log: &Log,
) {
    let to = offsite.folder().to_owned();
    let recorded = catalog::update(layout, name, written, |record| {
        record.offsite = Some(catalog::Offsite { to, state });
    });
    if let Err(err) = recorded {
        log.write(&format!(
            "Warning: can't record the offsite copy in the catalog ({err})"
        ));
    }
}

/// The copies due for another try at `now`: `(name, written)` of each pending record.
pub fn due_retries(records: &[catalog::Record], now: i64) -> Vec<(Vec<u8>, Written)> {
    records
        .iter()
        .filter(|record| {
            matches!(
                record.offsite,
                Some(catalog::Offsite {
                    state: OffsiteState::Pending { next, .. },
                    ..
                }) if next <= now
            )
        })
        .map(|record| (record.name.clone(), record.written))
        .collect()
}

/// Whether the settings copy offsite and delete there what retention removes here.
pub fn prunes_remote(settings: &Effective) -> bool {
    settings.offsite.remote.is_some() && settings.offsite.prune
}

/// Deletes on the remote the copies of the archives retention removed (by their remote
/// names), when the settings prune the remote too; each failure is a warning (the copy
/// stays, the local removal stands).
pub fn prune(layout: &Layout, settings: &Effective, removed: &[String], log: &Log) {
    if !prunes_remote(settings) {
        return;
    }
    let Some(offsite) = Offsite::of(settings, layout.base()) else {
        return;
    };
    for remote in removed {
        match offsite.delete(remote, log) {
            Ok(()) => log.write(&format!(
                "Removed offsite copy {}/{remote}: its generation was removed",
                offsite.folder()
            )),
            Err(why) => log.write(&format!(
                "Warning: can't remove offsite copy {}/{remote} ({why})",
                offsite.folder()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_due_only_when_their_time_has_come() {
        let record = |name: &str, state: Option<OffsiteState>| catalog::Record {
            name: name.as_bytes().to_vec(),
            written: Written {
                seconds: 100,
                nanos: 0,
            },
            form: Form::default(),
            size: 10240,
            stream: 10240,
            members: 2,
            sha256: None,
            recipients: None,
            offsite: state.map(|state| catalog::Offsite {
                to: "r:p/h".to_owned(),
                state,
            }),
            full: None,
            other: Vec::new(),
        };
        let pending = |next| OffsiteState::Pending {
            attempts: 1,
            next,
            error: String::new(),
        };
        let records = [
            record("early", Some(pending(500))),
            record("due", Some(pending(300))),
            record("done", Some(OffsiteState::Copied(50))),
            record("none", None),
        ];
        let due: Vec<Vec<u8>> = due_retries(&records, 400)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(due, [b"due".to_vec()]);
    }
}
