//! One backup job, the same for the service and for `run`: take the name, write the archive,
//! keep older generations if asked, log its progress and record its outcome for `status`.
//! A failure is logged here too, once, before the `on_failure` hook runs.

pub mod hooks;
mod level;
pub mod name_lock;
pub mod offsite;

use crate::archive::form::Form;
use crate::archive::{self, WriteError};
use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan::file as plan_file;
use crate::plan::{self, Name, Schedule};
use crate::progress::{self, Progress, Total};
use crate::settings::Effective;
use crate::store::catalog;
use crate::store::chain;
use crate::store::outcomes::{self, Ending, Outcome};
use crate::store::retention::Policy;
use crate::store::rotation;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// What a job runs with: the schedule's settings, and whether it shows progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub settings: Effective,
    pub progress: progress::Mode,
    /// Seconds to wait before starting: the rest of a `splay` offset within its minute.
    pub start_delay_seconds: u8,
}

/// Why a backup did not put its archive in place. `Display` gives the text logged after
/// `Error: `, which names the job.
#[derive(Debug)]
pub struct Failure {
    what: String,
    cause: Cause,
}

#[derive(Debug)]
pub enum Cause {
    /// Another job holds the archive name: not an error of this job's own.
    Skipped,
    BackupsDir(io::Error),
    NameLock(io::Error),
    Archive(WriteError),
    KeepPrevious(io::Error),
    /// The folder is empty while the archive it would replace holds this many entries: a
    /// disk that is not mounted, most likely.
    EmptyFolder(u64),
    /// The exclude rules left nothing of the folder (they left out this many entries) while
    /// the archive it would replace holds the second number of entries.
    AllExcluded(u64, u64),
    /// A bug: the job panicked with this message.
    Internal(String),
    /// The `before` hook failed; nothing was written.
    BeforeHook(hooks::HookFailure),
    /// The snapshot of an incremental full could not be started.
    Snapshot(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = &self.what;
        match &self.cause {
            Cause::Skipped => write!(f, "{what} skipped: another backup is still writing it"),
            Cause::BackupsDir(err) => {
                write!(f, "{what} failed: can't create backups directory ({err})")
            }
            Cause::NameLock(err) => write!(f, "{what} failed: can't lock archive name ({err})"),
            Cause::Archive(err) => write!(f, "{what} failed: {err}"),
            Cause::KeepPrevious(err) => {
                write!(f, "{what} failed: can't keep the previous archive ({err})")
            }
            Cause::EmptyFolder(entries) => write!(
                f,
                "{what} refused: the folder is empty but the last archive holds {entries} entries (not mounted?)"
            ),
            Cause::AllExcluded(left_out, entries) => write!(
                f,
                "{what} refused: the exclude rules left out all {left_out} entries of the folder but the last archive holds {entries} entries (set allow_empty to accept)"
            ),
            Cause::Internal(message) => write!(f, "{what} failed: internal error: {message}"),
            Cause::BeforeHook(failure) => write!(f, "{what} failed: before hook {failure}"),
            Cause::Snapshot(err) => write!(f, "{what} failed: can't write its snapshot ({err})"),
        }
    }
}

impl std::error::Error for Failure {}

/// A failed backup ends `run` with its own line, which the job has logged already (before
/// its `on_failure` hook ran).
impl From<Failure> for crate::error::Error {
    fn from(failure: Failure) -> crate::error::Error {
        crate::error::Error::already_logged(failure.to_string())
    }
}

impl From<WriteError> for Cause {
    fn from(err: WriteError) -> Cause {
        Cause::Archive(err)
    }
}

/// `backup of <folder> to backups/<name>.tar`, as the log lines name a job that writes its
/// archive in `form`.
pub fn describe(schedule: &Schedule, form: Form) -> String {
    format!(
        "backup of {} to {}",
        show_bytes(&schedule.folder),
        form.archive_display(&schedule.name)
    )
}

/// The facts a job's hooks get, and the settings that name them.
struct JobHooks<'a> {
    settings: &'a Effective,
    base: std::path::PathBuf,
    /// `backups/`, absolute.
    backups: std::path::PathBuf,
    archive: String,
    env: Vec<(&'static str, OsString)>,
}

impl<'a> JobHooks<'a> {
    fn new(
        layout: &Layout,
        schedule: &Schedule,
        settings: &'a Effective,
        started: LocalTime,
    ) -> JobHooks<'a> {
        let base =
            std::path::absolute(layout.base()).unwrap_or_else(|_| layout.base().to_path_buf());
        let absolute =
            |path: std::path::PathBuf| std::path::absolute(&path).unwrap_or(path).into_os_string();
        let folder = absolute(layout.resolve_folder(&schedule.folder));
        let archive = absolute(layout.archive_path(&schedule.name, settings.form().suffix()));
        JobHooks {
            settings,
            backups: absolute(layout.backups_dir()).into(),
            archive: settings.form().archive_display(&schedule.name),
            env: vec![
                ("BACKUPBOX_NAME", OsString::from_vec(schedule.name.to_vec())),
                ("BACKUPBOX_FOLDER", folder),
                ("BACKUPBOX_ARCHIVE", archive),
                ("BACKUPBOX_BASE", base.clone().into_os_string()),
                (
                    "BACKUPBOX_STARTED",
                    OsString::from(started.unix.to_string()),
                ),
            ],
            base,
        }
    }

    /// Runs `hook` if it is set, with `extra` added to the environment.
    fn run(
        &self,
        hook: hooks::Hook,
        extra: &[(&'static str, OsString)],
        log: &Log,
    ) -> Result<(), hooks::HookFailure> {
        let Some(command) = &self.settings.hooks[hook as usize] else {
            return Ok(());
        };
        // Later entries win: `extra` may say more precisely what an earlier one says.
        let mut env = self.env.clone();
        env.extend(extra.iter().cloned());
        hooks::run(
            hook,
            command,
            &env,
            &self.base,
            self.settings.hook_user.as_deref(),
            std::time::Duration::from_secs(u64::from(self.settings.hook_timeout_seconds)),
            log,
        )
    }

    /// `on_success` or `on_failure` after the job: how it failed, if it did, for the record
    /// and the log; it changes nothing on disk.
    fn after(&self, result: &Result<Done, Failure>, log: &Log) -> Option<String> {
        let (hook, extra) = match result {
            Ok(Done { size, file, .. }) => {
                let mut extra = vec![("BACKUPBOX_SIZE", OsString::from(size.to_string()))];
                // A level-1 has a name of its own.
                if let Some(file) = file {
                    let path = self.backups.join(std::ffi::OsStr::from_bytes(file));
                    extra.push(("BACKUPBOX_ARCHIVE", path.into_os_string()));
                }
                (hooks::Hook::OnSuccess, extra)
            }
            Err(failure) => (
                hooks::Hook::OnFailure,
                vec![("BACKUPBOX_ERROR", OsString::from(failure.to_string()))],
            ),
        };
        let failure = self.run(hook, &extra, log).err()?;
        Some(format!("{hook} hook for {} {failure}", self.archive))
    }
}

/// Runs one backup with its hooks and its offsite copy, writes its progress to `log`, logs a
/// failure, and records its outcome. With `nice` or `io_class` set it runs on a thread of
/// its own at that priority, which every thread and hook it starts inherits; the caller's
/// thread (a worker that runs other jobs next) keeps its own.
pub fn run(
    layout: &Layout,
    schedule: &Schedule,
    log: &Log,
    options: &Options,
) -> Result<Ran, Failure> {
    let settings = &options.settings;
    let io_class = match settings.io_class.as_deref() {
        Some("idle") => Some(crate::sys::priority::IoClass::Idle),
        Some(_) => Some(crate::sys::priority::IoClass::BestEffort(
            u8::try_from(settings.io_level).unwrap_or(7),
        )),
        None => None,
    };
    if settings.nice == 0 && io_class.is_none() {
        return run_here(layout, schedule, log, options);
    }
    let nice = i32::try_from(settings.nice).unwrap_or(19);
    std::thread::scope(|scope| {
        let lowered = scope.spawn(|| {
            if let Err(err) = crate::sys::priority::lower_this_thread(nice, io_class) {
                log.write(&format!(
                    "Warning: can't lower the priority of {} ({err}); it runs as it is",
                    describe(schedule, settings.form())
                ));
            }
            run_here(layout, schedule, log, options)
        });
        lowered
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// [`run`] on the calling thread.
fn run_here(
    layout: &Layout,
    schedule: &Schedule,
    log: &Log,
    options: &Options,
) -> Result<Ran, Failure> {
    if options.start_delay_seconds > 0 {
        std::thread::sleep(std::time::Duration::from_secs(u64::from(
            options.start_delay_seconds,
        )));
    }
    let started = LocalTime::now();
    let clock = Instant::now();
    let hooks = JobHooks::new(layout, schedule, &options.settings, started);
    let note = |duration_ms, ending, hook_problem| {
        let outcome = Outcome {
            started,
            duration_ms,
            ending,
            hook_problem,
            last_success: None,
        };
        record(layout, schedule, log, &outcome);
    };
    let attempt = || {
        attempt(layout, schedule, log, options, &hooks, &|ms, ending| {
            note(ms, ending, None)
        })
    };
    // A bug must end as a failure that is logged and recorded, never as a backup that
    // `status` shows running forever.
    let result = catch_unwind(AssertUnwindSafe(attempt))
        .unwrap_or_else(|panic| Err(Cause::Internal(panic_message(&*panic).to_owned())))
        .map_err(|cause| Failure {
            what: describe(schedule, options.settings.form()),
            cause,
        });
    // Recorded before the line that announces it, so whoever reads that line finds `status`
    // agreeing.
    let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ending = match &result {
        Ok(done) => Ending::Done(done.size),
        Err(failure) => Ending::Failed(failure.to_string()),
    };
    note(duration_ms, ending.clone(), None);
    let mut offsite_failure = None;
    let mut archive = String::new();
    if let Ok(Done {
        left_out,
        written,
        file,
        ..
    }) = &result
    {
        let left_out = *left_out;
        let folder = show_bytes(&schedule.folder);
        archive = match file {
            Some(file) => format!("backups/{}", show_bytes(file)),
            None => options.settings.form().archive_display(&schedule.name),
        };
        log.write(&format!("Backup done for {folder} in {archive}"));
        if left_out > 0 {
            log.write(&format!(
                "Left out {left_out} entries of {folder} by exclude rules"
            ));
        }
        // After the backup and its prune, before on_success: the hook may rely on the copy.
        offsite_failure =
            offsite::copy_archive(layout, &schedule.name, *written, &options.settings, log).err();
    }
    if let Err(failure) = &result {
        log.write(&format!("Error: {failure}"));
    }
    if let Some(problem) = hooks.after(&result, log) {
        let ending = match ending {
            // A failed on_failure hook rides along in the failure's record.
            Ending::Failed(failure) => Ending::Failed(format!("{failure}; {problem}")),
            done => done,
        };
        note(duration_ms, ending, Some(problem.clone()));
        log.write(&format!("Error: {problem}"));
    }
    result.map(|done| Ran {
        offsite_failure,
        archive,
        size: done.size,
    })
}

/// A backup whose archive is in place.
#[derive(Debug)]
pub struct Ran {
    /// How the offsite copy failed (logged already), if the settings ask for one and it did.
    pub offsite_failure: Option<String>,
    /// `backups/<file>` of the archive put in place.
    pub archive: String,
    pub size: u64,
}

/// What [`attempt`] hands back.
struct Done {
    size: u64,
    left_out: u64,
    /// The stamp of the archive put in place.
    written: catalog::Written,
    /// A level-1's file name in `backups/`; a full's is `<name>.tar`.
    file: Option<Vec<u8>>,
}

/// The job itself: name lock, the empty-folder guard, the archive, the previous generation,
/// the rename, pruning. Returns the archive's size and the entries left out.
fn attempt(
    layout: &Layout,
    schedule: &Schedule,
    log: &Log,
    options: &Options,
    hooks: &JobHooks,
    note: &dyn Fn(u64, Ending),
) -> Result<Done, Cause> {
    archive::ensure_backups_dir(layout).map_err(Cause::BackupsDir)?;
    let Some(_guard) = name_lock::try_lock(layout, &schedule.name).map_err(Cause::NameLock)? else {
        return Err(Cause::Skipped);
    };
    note(0, Ending::Running(std::process::id()));
    crate::debug_points::fault("job");
    // Before the empty-folder guard: a `before` hook may be what fills the folder (a dump).
    hooks
        .run(hooks::Hook::Before, &[], log)
        .map_err(Cause::BeforeHook)?;
    if !options.settings.allow_empty {
        refuse_an_empty_folder(layout, schedule)?;
    }
    let archive_options = options.settings.archive_options();
    let in_place = catalog::in_place(layout, &schedule.name);
    let (snapshot, walk_level, level_one_of) = if options.settings.incremental {
        choose_level(layout, schedule, &options.settings, log)?
    } else {
        (None, None, None)
    };
    let expected = if level_one_of.is_some() {
        // A level-1 is no size like its full's.
        Total::Unknown
    } else {
        previous_size(layout, schedule, in_place.as_ref())
    };
    let mut meter = Progress::new(options.progress, "run", expected);
    let written = archive::write(
        layout,
        &schedule.name,
        &schedule.folder,
        archive_options,
        walk_level,
        archive::Watch {
            warn: &mut |warning| log.write(&format!("Warning: {warning}")),
            progress: &mut meter,
        },
    );
    meter.finish(written.as_ref().ok().map(archive::Written::stream_size));
    let mut written = written?;
    if !options.settings.allow_empty
        && written.members() <= 1
        && written.left_out() > 0
        && let Some(entries) = entries_in_place(layout, schedule, in_place.as_ref())
    {
        return Err(Cause::AllExcluded(written.left_out(), entries));
    }
    let left_out = written.left_out();
    let fingerprint = written.fingerprint();
    let (seconds, nanos) = fingerprint.written;
    if let Some(full) = level_one_of {
        let (size, file) =
            put_level_one_in_place(layout, schedule, written, full, &options.settings, log)?;
        return Ok(Done {
            size,
            left_out,
            written: catalog::Written { seconds, nanos },
            file: Some(file),
        });
    }
    if let Some(snapshot) = snapshot
        && let Err(err) =
            snapshot.commit(layout, schedule, written.take_level(), fingerprint.written)
    {
        log.write(&format!(
            "Warning: can't write the snapshot of {} ({err}); the next backup is a full",
            show_bytes(&schedule.name)
        ));
    }
    let size = put_in_place(layout, schedule, written, &options.settings, log)?;
    Ok(Done {
        size,
        left_out,
        written: catalog::Written { seconds, nanos },
        file: None,
    })
}

/// The previous tar stream's size: the best guess of a full's.
fn previous_size(
    layout: &Layout,
    schedule: &Schedule,
    in_place: Option<&catalog::Record>,
) -> Total {
    in_place
        .map(|record| record.stream)
        .or_else(|| {
            archive::open(layout, &schedule.name)
                .ok()
                .and_then(|stored| stored.read_in_full())
        })
        .map_or(Total::Unknown, Total::About)
}

/// Puts a level-1 in place under a name of its own, replacing nothing: the full it needs and
/// every other archive stay as they are. Returns its size and file name.
fn put_level_one_in_place(
    layout: &Layout,
    schedule: &Schedule,
    written: archive::Written,
    full: catalog::Written,
    settings: &Effective,
    log: &Log,
) -> Result<(u64, Vec<u8>), Cause> {
    catalog_record(layout, &schedule.name, &written, Some(full), log);
    let stamp = rotation::stamp(&LocalTime::at(written.fingerprint().written.0));
    let form = written.form();
    let committed = written.commit_new(&layout.backups_dir(), |serial| {
        chain::level_one_name(&schedule.name, &stamp, serial, form)
    })?;
    // Each level-1 is a day of its own: the oldest may now be one day too many.
    let removed: Vec<String> = prune(layout, &schedule.name, &settings.policy(), log)
        .0
        .iter()
        .map(|(file, _)| String::from_utf8_lossy(file).into_owned())
        .collect();
    offsite::prune(layout, settings, &removed, log);
    Ok(committed)
}

/// What an incremental job writes: for a full, its snapshot on the way; the level for the
/// walk; for a level-1, the stamp of the full it is made against.
type Chosen = (
    Option<level::NewSnapshot>,
    Option<archive::walk::Level>,
    Option<catalog::Written>,
);

fn choose_level(
    layout: &Layout,
    schedule: &Schedule,
    settings: &Effective,
    log: &Log,
) -> Result<Chosen, Cause> {
    let now = LocalTime::now();
    let mut today = now;
    today.unix += crate::debug_points::days_later() * 86_400;
    match level::choose(layout, schedule, settings, &today) {
        level::Plan::Full { warning } => {
            if let Some(warning) = warning {
                log.write(&format!("Warning: {warning}"));
            }
            let (snapshot, walk) = level::NewSnapshot::start(layout, schedule, settings, &now)
                .map_err(Cause::Snapshot)?;
            Ok((Some(snapshot), Some(walk), None))
        }
        level::Plan::One { against, full } => {
            let label = crate::archive::incremental::label((full.seconds, full.nanos));
            Ok((
                None,
                Some(archive::walk::Level::One { against, label }),
                Some(full),
            ))
        }
    }
}

/// Puts a written archive in place of the previous one: its generation kept (or its offsite
/// copy dropped with it), the catalog record, the rename, the other forms retired, the
/// generations pruned here and on the remote. Returns the archive's size.
fn put_in_place(
    layout: &Layout,
    schedule: &Schedule,
    written: archive::Written,
    settings: &Effective,
    log: &Log,
) -> Result<u64, Cause> {
    let form = written.form();
    let policy = settings.policy();
    // Without generations the archives in place go with the rename: their offsite copies go
    // too, as retention's removals do. Looked at only when there are copies to remove.
    let replaced: Vec<String> = if policy.keeps_generations() || !offsite::prunes_remote(settings) {
        Vec::new()
    } else {
        rotation::in_place(&layout.backups_dir(), &schedule.name)
            .into_iter()
            .map(|(_, form, meta)| {
                offsite::remote_name(&schedule.name, form, catalog::Written::of(&meta))
            })
            .collect()
    };
    if policy.keeps_generations() {
        let kept = rotation::keep_previous(layout, &schedule.name).map_err(Cause::KeepPrevious)?;
        for (current, generation) in kept {
            log.write(&format!(
                "Kept previous backups/{} as backups/{}",
                show_bytes(&current),
                show_bytes(&generation)
            ));
        }
    }
    // Recorded before the rename: an archive in place always has its record, unless writing
    // the catalog failed.
    catalog_record(layout, &schedule.name, &written, None, log);
    let size = written.commit()?;
    let backups = layout.backups_dir();
    let replacement = form.archive_display(&schedule.name);
    for (file, removed) in rotation::retire_other_forms(&backups, &schedule.name, form) {
        let shown = show_bytes(&file);
        match removed {
            Ok(()) => log.write(&format!(
                "Removed backups/{shown}: replaced by {replacement}"
            )),
            Err(err) => log.write(&format!("Warning: can't remove backups/{shown} ({err})")),
        }
    }
    // With level-1s there is always something to prune: those of the full just replaced.
    let removed = if policy.keeps_generations() || settings.incremental {
        prune(layout, &schedule.name, &policy, log).0
    } else {
        Vec::new()
    };
    let mut gone = replaced;
    gone.extend(
        removed
            .iter()
            .map(|(file, _)| String::from_utf8_lossy(file).into_owned()),
    );
    offsite::prune(layout, settings, &gone, log);
    Ok(size)
}

/// Adds the archive about to be put in place to the store's catalog. Without its record the
/// archive is just as good: what would read the record reads the archive instead.
/// A level-1's record carries the stamp of the full it needs.
fn catalog_record(
    layout: &Layout,
    name: &Name,
    written: &archive::Written,
    full: Option<catalog::Written>,
    log: &Log,
) {
    let fingerprint = written.fingerprint();
    let record = catalog::Record {
        name: name.to_vec(),
        written: catalog::Written {
            seconds: fingerprint.written.0,
            nanos: fingerprint.written.1,
        },
        form: written.form(),
        size: fingerprint.size,
        stream: written.stream_size(),
        members: written.members(),
        sha256: fingerprint.sha256,
        recipients: written.recipients().map(str::to_owned),
        offsite: None,
        full,
        other: Vec::new(),
    };
    if let Err(err) = catalog::add(layout, &record) {
        log.write(&format!(
            "Warning: can't record the archive in the catalog ({err})"
        ));
    }
}

/// The classic loss: an unmounted disk leaves an empty mount point, whose backup would replace
/// the last good archive. Refused when the folder has no entries at all and the archive in
/// place holds some (beyond the folder's own entry).
fn refuse_an_empty_folder(layout: &Layout, schedule: &Schedule) -> Result<(), Cause> {
    let folder = layout.resolve_folder(&schedule.folder);
    let empty = std::fs::read_dir(&folder).is_ok_and(|mut entries| entries.next().is_none());
    if !empty {
        return Ok(());
    }
    let in_place = catalog::in_place(layout, &schedule.name);
    entries_in_place(layout, schedule, in_place.as_ref())
        .map_or(Ok(()), |entries| Err(Cause::EmptyFolder(entries)))
}

/// The entries the archive in place holds beyond the folder's own, if it holds any: as its
/// catalog record says, or else as reading it finds.
fn entries_in_place(
    layout: &Layout,
    schedule: &Schedule,
    record: Option<&catalog::Record>,
) -> Option<u64> {
    let members = match record {
        Some(record) => record.members,
        None => {
            let stored = archive::open(layout, &schedule.name).ok()?;
            // Without its record, an encrypted archive can't be counted here: no key.
            let no_key = crate::crypt::Identities::default();
            stored.check(&no_key, &mut Progress::none()).ok()?.members
        }
    };
    (members > 1).then(|| members - 1)
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Records the schedule's outcome for `status`; a failure to do so never fails the backup.
fn record(layout: &Layout, schedule: &Schedule, log: &Log, outcome: &Outcome) {
    if let Err(err) = outcomes::record(layout, &schedule.line(), outcome) {
        log.write(&format!(
            "Warning: can't record the outcome for status ({err})"
        ));
    }
}

/// Removes the generations of `name` that `policy` does not keep, never the archive of
/// another schedule in the plan, and logs each removal with its reason; returns the files
/// removed and how many could not be.
pub fn prune(
    layout: &Layout,
    name: &Name,
    policy: &Policy,
    log: &Log,
) -> (Vec<(Vec<u8>, String)>, usize) {
    let Some(protected) = protected_names(layout) else {
        log.write("Warning: can't read the plan; older generations are not pruned this time");
        return (Vec::new(), 0);
    };
    let records = catalog::load(layout).unwrap_or_default();
    let chains = chain::Chains::of(layout, name, &records, &crate::crypt::Identities::default());
    let orphans = chains.orphan_files();
    let removals = match rotation::prune(&layout.backups_dir(), name, policy, &protected, &chains) {
        Ok(removals) => removals,
        Err(err) => {
            log.write(&format!(
                "Warning: can't list backups/ to prune older generations ({err})"
            ));
            return (Vec::new(), 1);
        }
    };
    let (mut removed, mut failed) = (Vec::new(), 0);
    for (file, outcome) in removals {
        let shown = show_bytes(&file);
        match outcome {
            Ok(()) => {
                let why = why_removed(policy, orphans.contains(file.as_slice()));
                log.write(&format!("Removed backups/{shown}: {why}"));
                removed.push((file, why));
            }
            Err(err) => {
                log.write(&format!("Warning: can't remove backups/{shown} ({err})"));
                failed += 1;
            }
        }
    }
    if !removed.is_empty()
        && let Err(err) = catalog::forget_gone(layout, name)
    {
        log.write(&format!(
            "Warning: can't remove pruned archives from the catalog ({err})"
        ));
    }
    (removed, failed)
}

/// Why a generation goes: a level-1 whose full is gone (an `orphan`) for that; `more than 3
/// kept` for plain `keep`; else the rules none of which keeps it.
pub fn why_removed(policy: &Policy, orphan: bool) -> String {
    if orphan {
        "its full is gone".to_owned()
    } else if policy.has_periods() {
        format!("not kept by {}", policy.describe())
    } else {
        format!("more than {} kept", policy.last)
    }
}

/// The archive files (`<name>.tar`) of the plan's schedules, which pruning never touches
/// whatever they look like; `None` if the plan can't be read.
pub fn protected_names(layout: &Layout) -> Option<HashSet<Vec<u8>>> {
    let text = plan_file::read(layout).ok()?;
    let entries = plan::entries(&text);
    let schedules: Vec<Schedule> = entries.iter().filter_map(plan::Entry::schedule).collect();
    Some(rotation::protected_files(
        schedules.iter().map(|schedule| &*schedule.name),
    ))
}
