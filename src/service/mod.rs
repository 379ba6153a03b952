//! The backup service: wakes at each minute boundary, reads the plan, and runs the schedules
//! that are due on a bounded pool of worker threads, until SIGTERM or SIGINT.

pub mod control;
pub mod jobs;
pub mod metrics_writer;
pub mod pidfile;
pub mod readiness;

use crate::clock::LocalTime;
use crate::error::{Context, Error, Result};
use crate::job;
use crate::layout::{Layout, PLAN_FILE};
use crate::log::{Log, show_bytes};
use crate::plan::file as plan_file;
use crate::plan::timing::{self as scheduler_rules, Scheduler, Step};
use crate::plan::{self, Schedule};
use crate::service::jobs::{Pool, Start};
use crate::settings::{self, BadSettings, Effective, Settings};
use crate::store::Keep;
use crate::store::catalog::{self, Written};
use crate::sys::atomic_file;
use metrics_writer::MetricsWriter;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pidfile::LockError;
use readiness::Readiness;
use std::collections::HashSet;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};

/// Runs the service in this process until it is told to stop.
pub fn serve(layout: &Layout, mut readiness: Readiness, keep: Option<Keep>) -> Result<()> {
    crate::sys::memory::use_one_arena();
    let Started {
        signal_fd,
        lock,
        log,
        settings,
    } = start_up(layout, &mut readiness)?;
    remove_interrupted_temps(layout, &log);
    let started = LocalTime::now().unix;
    metrics_writer::publish(layout, settings.metrics().as_deref(), started, &log);
    let metrics = std::sync::Arc::new(MetricsWriter::start(layout, &log, started));
    let retrying: Retrying = Arc::new(Mutex::new(HashSet::new()));
    let jobs = {
        let (layout, log, metrics) = (layout.clone(), log.clone(), metrics.clone());
        let retrying = Arc::clone(&retrying);
        Pool::new(MAX_RUNNING_BACKUPS, move |work: Work| {
            // The service's log is the one place its jobs' failures go; the job logs them.
            let settings = match work {
                Work::Backup(schedule, options) => {
                    let _ = job::run(&layout, &schedule, &log, &options);
                    options.settings
                }
                Work::OffsiteRetry(name, written, settings) => {
                    let _ = job::offsite::copy_archive(&layout, &name, written, &settings, &log);
                    locked(&retrying).remove(&(name, written));
                    settings
                }
            };
            if metrics.job_ended(settings.metrics.clone()) {
                crate::sys::memory::give_back_free_memory();
            }
        })
    };
    let mut service = Service {
        layout,
        log,
        scheduler: Scheduler::new(),
        plan: PlanWatch::default(),
        settings: SettingsWatch {
            good: settings,
            reported: None,
            unused_reported: HashSet::new(),
        },
        keep,
        jobs,
        metrics,
        retrying,
    };
    // The first check reads the plan whatever is due (catch-up needs it), and warns of
    // settings tables no plan line uses.
    service.check(LocalTime::now());
    // The first minute's jobs are running before `start` returns, so an immediate `stop`
    // waits for them instead of preventing them.
    readiness.ready();
    loop {
        match wait_for_wake(&signal_fd, &service.log) {
            Wake::Stop => break,
            Wake::Reload => service.reload(),
            Wake::ChildEnded => {
                crate::sys::reaper::reap_orphans();
                continue;
            }
            Wake::Minute => {}
        }
        // After a reload too: a minute boundary may have passed meanwhile.
        service.check(LocalTime::now());
    }
    // `status` tells a stopping service (no new schedules run) from a running one.
    lock.mark_stopping();
    crate::debug_points::pause("service-stopping");
    // Running and queued backups finish: a stop never leaves a half-made archive behind.
    service.jobs.finish();
    service.metrics.finish(layout, &service.log, started);
    lock.release();
    Ok(())
}

/// Why the service loop woke up.
enum Wake {
    /// The next minute began (or the wait failed or was interrupted: check anyway).
    Minute,
    Reload,
    /// SIGCHLD, as PID 1: an orphan may have ended.
    ChildEnded,
    Stop,
}

/// Waits for the next minute boundary or a signal.
fn wait_for_wake(signal_fd: &SignalFd, log: &Log) -> Wake {
    let wait = LocalTime::now().millis_to_next_minute() + 2;
    let mut fds = [PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => Wake::Minute,
        Ok(_) => match signal_fd.read_signal() {
            Ok(Some(info)) if info.ssi_signo == Signal::SIGHUP as u32 => Wake::Reload,
            Ok(Some(info)) if info.ssi_signo == Signal::SIGCHLD as u32 => Wake::ChildEnded,
            Ok(Some(_)) => Wake::Stop,
            _ => Wake::Minute,
        },
        Err(err) => {
            log.write(&format!("Error: can't wait for the next minute ({err})"));
            std::thread::sleep(std::time::Duration::from_secs(1));
            Wake::Minute
        }
    }
}

/// What the service holds once it may run.
struct Started {
    signal_fd: SignalFd,
    lock: pidfile::PidLock,
    log: Log,
    settings: Settings,
}

/// Signals, the PID file, the log and the settings, in that order; any failure is reported
/// on the readiness pipe for `start`.
fn start_up(layout: &Layout, readiness: &mut Readiness) -> Result<Started> {
    // Signals first: once the PID file names this process, a SIGTERM or SIGHUP sent to it is
    // handled, never fatal.
    let signal_fd = match stop_signals() {
        Ok(fd) => fd,
        Err(err) => {
            readiness.failed(&err.reason().unwrap_or_else(|| err.to_string()));
            return Err(err);
        }
    };
    let lock = match pidfile::acquire(layout) {
        Ok(lock) => lock,
        Err(LockError::AlreadyRunning) => {
            readiness.already_running();
            return Err(Error::failed("backup_service already running"));
        }
        Err(LockError::Io(err)) => {
            readiness.failed(&format!(
                "can't lock {}: {err}",
                layout.pid_file().display()
            ));
            return Err(Error::failed("can't start backup_service").because(err));
        }
    };
    let log = Log::new(layout.service_log()).mirrored_to_stderr(stderr_is_watched());
    // Bad settings stop the start: a service must not run with settings nobody wrote.
    let settings = match settings::load(layout) {
        Ok(settings) => settings,
        Err(bad) => {
            log.write(&format!("Error: {bad}"));
            // Released before `start` hears of it, so no PID of a dead service is left.
            lock.release();
            readiness.failed(&bad.to_string());
            return Err(bad.into());
        }
    };
    Ok(Started {
        signal_fd,
        lock,
        log,
        settings,
    })
}

/// SIGTERM, SIGINT and SIGHUP (and SIGCHLD as PID 1) as a descriptor, so that waiting for the next minute and for a
/// stop request is one poll. They are blocked before any worker thread starts, so every thread
/// inherits the mask and none is interrupted.
fn stop_signals() -> Result<SignalFd> {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    if crate::sys::reaper::orphans_come_here() {
        // As PID 1, what a hook leaves running becomes ours when the hook ends; SIGCHLD
        // wakes the loop to reap it when it ends too, so no zombie piles up.
        signals.add(Signal::SIGCHLD);
    }
    signals
        .thread_block()
        .context("can't start backup_service")?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("can't start backup_service")
}

/// Whether stderr leads somewhere (a terminal, journald, `docker logs`), not /dev/null or
/// nowhere: the daemon started by `start` has it on /dev/null and logs to its file only.
fn stderr_is_watched() -> bool {
    use nix::sys::stat::{fstat, stat};
    let Ok(err) = fstat(std::io::stderr()) else {
        return false;
    };
    let null = stat("/dev/null").ok();
    null.is_none_or(|null| (null.st_rdev, null.st_mode) != (err.st_rdev, err.st_mode))
}

/// Backups the service runs at once; more due at the same time wait for a free worker.
const MAX_RUNNING_BACKUPS: usize = 16;

struct Service<'a> {
    layout: &'a Layout,
    log: Log,
    scheduler: Scheduler,
    plan: PlanWatch,
    settings: SettingsWatch,
    /// `--keep` of the command line, which wins over the settings file.
    keep: Option<Keep>,
    jobs: Pool<Work>,
    metrics: std::sync::Arc<MetricsWriter>,
    /// The offsite copies being retried now, by name and stamp: never twice at once.
    retrying: Retrying,
}

type Retrying = Arc<Mutex<HashSet<(Vec<u8>, Written)>>>;

/// What a worker does: a backup, or another try at an offsite copy that failed.
enum Work {
    Backup(Schedule, job::Options),
    OffsiteRetry(Vec<u8>, Written, Effective),
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Service<'_> {
    /// SIGHUP: reads the plan now and says what it found, so a plan edit can be checked at
    /// once instead of at the next due minute.
    fn reload(&mut self) {
        // `systemctl reload` after a change of /etc/localtime or TZ takes effect now.
        crate::sys::time::reread_time_zone();
        self.plan.forget_reported();
        self.settings.reported = None;
        self.settings.unused_reported.clear();
        self.settings.refresh(self.layout, &self.log);
        let schedules = self.plan.read(self.layout, &self.log);
        self.settings.warn_of_unused_tables(&schedules, &self.log);
        self.log
            .write(&format!("Plan reloaded: {} schedules", schedules.len()));
    }

    /// Starts every offsite copy whose retry is due at `now`. The catalog is read only when
    /// the settings ask for offsite copies at all.
    fn retry_offsite(&mut self, now: LocalTime) {
        if !self.settings.good.sets("offsite") {
            return;
        }
        let records = catalog::load(self.layout).unwrap_or_default();
        for (name, written) in job::offsite::due_retries(&records, now.unix) {
            if !locked(&self.retrying).insert((name.clone(), written)) {
                continue;
            }
            let settings = self.settings.good.for_name(&name, self.keep);
            self.metrics.job_submitted();
            if let Err(err) = self
                .jobs
                .submit(Work::OffsiteRetry(name.clone(), written, settings))
            {
                locked(&self.retrying).remove(&(name, written));
                self.log.write(&format!(
                    "Error: an offsite copy waits: can't start a worker ({err})"
                ));
            }
        }
    }

    /// Starts every schedule due at `now`, and the offsite copies due for another try.
    fn check(&mut self, now: LocalTime) {
        self.retry_offsite(now);
        let due = self.scheduler.wake(now.wall_minute());
        match due.step {
            Step::Late(minutes) => self.log.write(&format!(
                "Warning: {minutes} minutes passed since the last check (busy system, suspend or clock change); schedules due meanwhile run now"
            )),
            Step::Back(minutes) => self.log.write(&format!(
                "Warning: clock went back {minutes} minutes; times already run are not run again"
            )),
            Step::Resync(minutes) => self.log.write(&format!(
                "Warning: clock jumped {minutes} minutes; schedules in between are not run"
            )),
            Step::Start | Step::Tick | Step::Same => {}
        }
        let catching_up = scheduler_rules::catches_up(due.step);
        if due.minutes.is_empty() && !catching_up {
            return;
        }
        let schedules = self.plan.read(self.layout, &self.log);
        let walls = due.walls(now.wall_minute());
        let starts_now = |settings: &settings::Settings, schedule: &Schedule| {
            // Only a schedule whose time lies within a splay of now can start: the settings
            // are merged for those alone, not for every line of the plan every minute.
            let near = walls
                .clone()
                .any(|wall| crate::plan::calendar::may_start_at(schedule.minute_of_day, wall));
            near && {
                let when = settings.for_name(&schedule.name, None).when(schedule);
                walls.clone().any(|wall| when.due_at(wall))
            }
        };
        if !catching_up
            && !schedules
                .iter()
                .any(|schedule| starts_now(&self.settings.good, schedule))
        {
            return;
        }
        // A changed settings file applies to the next job, like the plan.
        self.settings.refresh(self.layout, &self.log);
        self.settings.warn_of_unused_tables(&schedules, &self.log);
        let (mut due_now, not_due): (Vec<Schedule>, Vec<Schedule>) = schedules
            .into_iter()
            .partition(|schedule| starts_now(&self.settings.good, schedule));
        if due.step == Step::Start {
            due_now = self.not_started_this_minute(now, due_now);
        }
        if catching_up {
            // A schedule due now is the tick's: catching it up too would run it twice.
            self.catch_up(now, not_due);
        }
        for schedule in due_now {
            self.submit(schedule);
        }
    }

    /// At start-up, the due schedules whose last recorded run did not start in this very
    /// minute: a restart (or a crash loop under `Restart=on-failure`) within a schedule's
    /// minute must not run it again. A run that was interrupted (its process is gone without
    /// an ending) left no archive and runs again. A state file that can't be read runs them all.
    fn not_started_this_minute(&self, now: LocalTime, due: Vec<Schedule>) -> Vec<Schedule> {
        let Ok(outcomes) = crate::store::outcomes::load(self.layout) else {
            return due;
        };
        let started = crate::store::outcomes::by_line(&outcomes);
        let ran = |outcome: &crate::store::outcomes::Outcome| match outcome.ending {
            crate::store::outcomes::Ending::Running(pid) => {
                crate::sys::process::is_backupbox_process(pid)
            }
            _ => true,
        };
        due.into_iter()
            .filter(|schedule| {
                let line = schedule.line();
                let again = started.get(line.as_slice()).is_some_and(|outcome| {
                    outcome.started.wall_minute() == now.wall_minute() && ran(outcome)
                });
                if again {
                    self.log.write(&format!(
                        "Not running {} again: it already started this minute, before the service restarted",
                        show_bytes(&line)
                    ));
                }
                !again
            })
            .collect()
    }

    /// Runs once, now, each of `schedules` with `catch_up` set whose most recent time passed
    /// while the service was down (or the clock jumped over it) and that has not started since.
    fn catch_up(&mut self, now: LocalTime, schedules: Vec<Schedule>) {
        let wanted: Vec<Schedule> = schedules
            .into_iter()
            .filter(|schedule| self.settings.good.for_name(&schedule.name, None).catch_up)
            .collect();
        if wanted.is_empty() {
            return;
        }
        let outcomes = match crate::store::outcomes::load_intact(self.layout) {
            Ok(outcomes) => outcomes,
            Err(err) => {
                self.log.write(&format!(
                    "Warning: can't read the state file; missed schedules are not caught up ({err})"
                ));
                return;
            }
        };
        let last_of = crate::store::outcomes::by_line(&outcomes);
        for schedule in wanted {
            let line = schedule.line();
            let last_started = last_of
                .get(line.as_slice())
                .map(|outcome| outcome.started.wall_minute());
            let when = self
                .settings
                .good
                .for_name(&schedule.name, None)
                .when(&schedule);
            let Some(due) = when.missed(now.wall_minute(), last_started) else {
                continue;
            };
            self.log.write(&format!(
                "Catching up: {} was due at {}",
                show_bytes(&line),
                crate::clock::wall_minute_log_stamp(due)
            ));
            self.submit(schedule);
        }
    }

    /// Hands one schedule to the workers, with the settings in force for it.
    fn submit(&mut self, schedule: Schedule) {
        let settings = self.settings.good.for_name(&schedule.name, self.keep);
        let options = job::Options {
            start_delay_seconds: settings.when(&schedule).shift_seconds,
            settings,
            progress: crate::progress::Mode::Off,
        };
        let what = job::describe(&schedule, options.settings.form());
        self.metrics.job_submitted();
        match self.jobs.submit(Work::Backup(schedule, options)) {
            Ok(Start::Now) => {}
            Ok(Start::Queued) => self.log.write(&format!(
                "Warning: {MAX_RUNNING_BACKUPS} backups already running; {what} waits for one to finish"
            )),
            Err(err) => self.log.write(&format!("Error: {what} waits: can't start a worker ({err})")),
        }
    }
}

/// The last good settings, and the problem with the file as it is now, reported once.
struct SettingsWatch {
    good: Settings,
    reported: Option<BadSettings>,
    /// The warnings about `[name.…]` tables no plan line uses, as last logged.
    unused_reported: HashSet<String>,
}

impl SettingsWatch {
    /// Logs each `[name.…]` table that no schedule uses, once while it stays so.
    fn warn_of_unused_tables(&mut self, schedules: &[Schedule], log: &Log) {
        let warnings = self
            .good
            .unused_tables(schedules.iter().map(|schedule| &*schedule.name));
        for warning in &warnings {
            if !self.unused_reported.contains(warning) {
                log.write(warning);
            }
        }
        self.unused_reported = warnings.into_iter().collect();
    }

    /// Reads the file again: good settings replace the old ones; bad ones are logged once
    /// per distinct problem, and the last good settings stay in force.
    fn refresh(&mut self, layout: &Layout, log: &Log) {
        match settings::load(layout) {
            Ok(settings) => {
                self.good = settings;
                self.reported = None;
            }
            Err(bad) => {
                if self.reported.as_ref() != Some(&bad) {
                    log.write(&format!(
                        "Error: {bad}; the last good settings stay in force"
                    ));
                    self.reported = Some(bad);
                }
            }
        }
    }
}

/// Reads the plan each minute and reports each problem once, not every minute.
#[derive(Default)]
struct PlanWatch {
    unreadable: bool,
    malformed: HashSet<Vec<u8>>,
}

impl PlanWatch {
    /// Reports every current problem again at the next read.
    fn forget_reported(&mut self) {
        *self = PlanWatch::default();
    }

    fn read(&mut self, layout: &Layout, log: &Log) -> Vec<Schedule> {
        let Ok(text) = plan_file::read(layout) else {
            if !self.unreadable {
                log.write(&format!("Error: can't read {PLAN_FILE}"));
                self.unreadable = true;
            }
            return Vec::new();
        };
        self.unreadable = false;
        let mut schedules = Vec::new();
        let mut malformed = HashSet::new();
        for entry in plan::entries(&text) {
            match entry.schedule() {
                Some(schedule) => schedules.push(schedule),
                None => {
                    if !self.malformed.contains(entry.text) {
                        log.write(&format!(
                            "Error: malformed schedule: {}",
                            show_bytes(entry.text)
                        ));
                    }
                    malformed.insert(entry.text.to_vec());
                }
            }
        }
        self.malformed = malformed;
        schedules
    }
}

/// Removes the temporary files whose writer died (kill -9, power loss): unfinished archives
/// in `backups/`, unfinished plan edits next to the plan (or the file it links to), and
/// unfinished status records in `logs/`.
fn remove_interrupted_temps(layout: &Layout, log: &Log) {
    let mut places = vec![
        (layout.backups_dir(), "backups/".to_owned(), "a backup"),
        (layout.base().to_path_buf(), String::new(), "a plan edit"),
        (layout.logs_dir(), "logs/".to_owned(), "a status update"),
    ];
    if let Some(linked) = plan_file::edit_target(layout).parent()
        && linked != layout.base()
    {
        places.push((
            linked.to_path_buf(),
            format!("{}/", linked.display()),
            "a plan edit",
        ));
    }
    for (dir, shown, what) in places {
        let Ok(removed) = atomic_file::remove_stale_temps(&dir) else {
            continue;
        };
        for path in removed {
            let name = path
                .file_name()
                .map(|n| show_bytes(n.as_bytes()))
                .unwrap_or_default();
            log.write(&format!(
                "Warning: removed {shown}{name}, left by {what} that was interrupted"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn log_messages(log: &Log) -> Vec<String> {
        let text = fs::read_to_string(log.path()).unwrap_or_default();
        text.lines().map(|line| line[19..].to_owned()).collect()
    }

    #[test]
    fn each_plan_problem_is_logged_once_while_it_lasts() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        let log = Log::new(layout.service_log());
        let mut watch = PlanWatch::default();

        assert!(watch.read(&layout, &log).is_empty());
        assert!(watch.read(&layout, &log).is_empty());
        assert_eq!(
            log_messages(&log),
            ["Error: can't read backup_schedules.txt"]
        );

        fs::write(layout.plan(), "a;00:00;a\ngarbage\nb;25:00;b\n").unwrap();
        for _ in 0..3 {
            assert_eq!(watch.read(&layout, &log).len(), 1);
        }
        assert_eq!(
            log_messages(&log)[1..],
            [
                "Error: malformed schedule: garbage",
                "Error: malformed schedule: b;25:00;b"
            ]
        );

        // Fixed, then broken again: a new problem, reported again.
        fs::write(layout.plan(), "a;00:00;a\n").unwrap();
        watch.read(&layout, &log);
        fs::write(layout.plan(), "a;00:00;a\ngarbage\n").unwrap();
        watch.read(&layout, &log);
        fs::remove_file(layout.plan()).unwrap();
        watch.read(&layout, &log);
        watch.read(&layout, &log);
        assert_eq!(
            log_messages(&log)[3..],
            [
                "Error: malformed schedule: garbage",
                "Error: can't read backup_schedules.txt"
            ]
        );
    }
}
