//! The service's metrics file, written once per burst of jobs instead of after each one: a
//! job that ends marks the metrics stale, and a writer thread writes them when no job is
//! pending any more, or once a minute while a long burst lasts. With 50,000 plan lines and
//! 300 jobs due at once, writing after every job re-read the plan and `backups/` 300 times.

use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::log::Log;
use crate::report::{self, ServiceInfo};
use crate::sys::atomic_file::TempFile;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest the file lags behind while jobs keep ending.
const MAX_LAG: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    /// Jobs submitted and not yet ended.
    pending: usize,
    /// Since when the file is stale, and the `metrics` setting to write it to.
    stale: Option<(Instant, Option<String>)>,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The handle the service and its workers share.
pub struct MetricsWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MetricsWriter {
    /// Starts the writer thread; `started` is the service's start time for the file. If the
    /// thread can't start, the metrics are written by [`MetricsWriter::finish`] only, and
    /// the reason is logged.
    pub fn start(layout: &Layout, log: &Log, started: i64) -> MetricsWriter {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let (shared, layout, log) = (Arc::clone(&shared), layout.clone(), log.clone());
            std::thread::Builder::new()
                .name("metrics writer".into())
                .spawn(move || write_when_due(&shared, &layout, &log, started))
        };
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(err) => {
                log.write(&format!(
                    "Warning: can't start the metrics writer ({err}); metrics are written at stop only"
                ));
                None
            }
        };
        MetricsWriter {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// A job was handed to the workers.
    pub fn job_submitted(&self) {
        self.shared.lock().pending += 1;
    }

    /// A job ended: the metrics are stale; `setting` is the `metrics` file it names. True
    /// when it was the last job pending: the burst is over.
    pub fn job_ended(&self, setting: Option<String>) -> bool {
        let mut state = self.shared.lock();
        state.pending = state.pending.saturating_sub(1);
        let since = state
            .stale
            .as_ref()
            .map_or_else(Instant::now, |(since, _)| *since);
        state.stale = Some((since, setting));
        let last = state.pending == 0;
        drop(state);
        self.shared.changed.notify_all();
        last
    }

    /// Writes what is still stale and stops the thread; for when the service stops.
    pub fn finish(&self, layout: &Layout, log: &Log, started: i64) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match thread {
            Some(thread) => {
                let _ = thread.join();
            }
            None => {
                if let Some((_, setting)) = self.shared.lock().stale.take() {
                    publish(layout, setting.as_deref(), started, log);
                }
            }
        }
    }
}

fn write_when_due(shared: &Shared, layout: &Layout, log: &Log, started: i64) {
    let mut state = shared.lock();
    loop {
        let due = state.stale.as_ref().is_some_and(|(since, _)| {
            state.pending == 0 || state.closing || since.elapsed() >= MAX_LAG
        });
        if due {
            let setting = state.stale.take().and_then(|(_, setting)| setting);
            drop(state);
            publish(layout, setting.as_deref(), started, log);
            state = shared.lock();
            continue;
        }
        if state.closing {
            return;
        }
        let wait = state.stale.as_ref().map_or(MAX_LAG, |(since, _)| {
            MAX_LAG.saturating_sub(since.elapsed())
        });
        state = shared
            .changed
            .wait_timeout(state, wait)
            .map_or_else(|poisoned| poisoned.into_inner().0, |(state, _)| state);
    }
}

/// Writes the metrics file that the `metrics` setting names (relative to the base
/// directory), if it names one. A failure is a warning in `log`: metrics never stop a backup.
pub fn publish(layout: &Layout, setting: Option<&str>, service_started: i64, log: &Log) {
    // The service knows it runs: no need to read its own PID file.
    let service = ServiceInfo {
        pid: i32::try_from(std::process::id()).ok(),
        since: Some(LocalTime::at(service_started)),
        stopping: false,
    };
    write_metrics(layout, setting, service, log);
}

/// [`publish`] for `run`, which is not the service: what the PID file says of it goes in.
pub fn publish_after_run(layout: &Layout, setting: Option<&str>, log: &Log) {
    if setting.is_some() {
        write_metrics(layout, setting, report::service_info(layout), log);
    }
}

fn write_metrics(layout: &Layout, setting: Option<&str>, service: ServiceInfo, log: &Log) {
    let Some(setting) = setting else {
        return;
    };
    let path = layout.base().join(setting);
    crate::debug_points::count("metrics-written");
    let text = report::metrics::render(&report::gather(layout, service));
    if let Err(err) = write_file(&path, &text) {
        log.write(&format!(
            "Warning: can't write the metrics file {} ({err})",
            path.display()
        ));
    }
}

/// Writes the metrics to `path` atomically: a temporary file in the same directory (which
/// the textfile collector ignores, as it reads `*.prom` only), then a rename.
fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = TempFile::create_in(dir, 0o644)?;
    // World-readable whatever the umask (the daemon runs under 027): node_exporter reads it
    // as its own user, and a file it can't read is a scrape error, not an alert.
    temp.file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    temp.file().write_all(text.as_bytes())?;
    temp.commit(path)
}
