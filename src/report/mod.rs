//! The one report of a backup system: the facts that `status`, `status --json`,
//! `status --prometheus` and the service's metrics file all show, gathered once (PID file,
//! plan, state file, `backups/`) and worked out once per plan entry (next run, last outcome,
//! archives on disk). [`status`] and [`metrics`] only render them, and are pure.

pub mod metrics;
pub mod status;

use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::plan::file as plan_file;
use crate::plan::{self, Entry};
use crate::service::pidfile::{self, Holder};
use crate::store::catalog;
use crate::store::outcomes::{self, Outcome};
use crate::store::retention::Policy;
use crate::store::rotation;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// The service as its PID file shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub pid: Option<i32>,
    /// When the service took its PID file.
    pub since: Option<LocalTime>,
    /// Told to stop: it finishes its backups and runs no new schedule.
    pub stopping: bool,
}

impl ServiceInfo {
    /// When the running service started (unix seconds), if one runs.
    pub fn started(&self) -> Option<i64> {
        self.pid.and(self.since).map(|since| since.unix)
    }
}

/// The archives of one name on disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archives {
    /// The archive in place and its older generations.
    pub count: usize,
    /// The size of the archive in place, if there is one.
    pub in_place_size: Option<u64>,
    /// The fingerprint of the recipients the archive in place is encrypted to, as the catalog
    /// recorded it.
    pub encrypted_to: Option<String>,
    /// How the offsite copy of the archive in place stands, as the catalog recorded it.
    pub offsite: Option<catalog::Offsite>,
}

/// Everything any report shows, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub base: String,
    pub now: LocalTime,
    pub service: ServiceInfo,
    /// The plan's text, or the line that says why it could not be read.
    pub plan: Result<Vec<u8>, String>,
    /// The plan's last modification: a line may be newer than its own time today.
    pub plan_changed: Option<LocalTime>,
    /// The state file's records; a damaged or unreadable one only costs the history shown.
    pub outcomes: Vec<(Vec<u8>, Outcome)>,
    /// The archives of each name the plan has.
    pub archives: HashMap<Vec<u8>, Archives>,
    /// The days and splay the settings give each name the plan has (every day, no splay,
    /// when the settings can't be read).
    pub timings: HashMap<Vec<u8>, crate::plan::calendar::Timing>,
}

impl Facts {
    /// When `schedule` starts, as the service would start it.
    pub fn when(&self, schedule: &plan::Schedule) -> crate::plan::calendar::When {
        self.timings
            .get(&*schedule.name)
            .copied()
            .unwrap_or_default()
            .when(schedule, crate::host::identity())
    }
}

/// One plan entry with what the facts say of it.
pub struct EntryFacts<'a> {
    /// Its place in the plan, from 0, as `list` and `delete` number it.
    pub index: usize,
    pub entry: Entry<'a>,
    /// The valid schedule it is, if it is one; a malformed line never runs.
    pub schedule: Option<plan::Schedule>,
    /// The last recorded outcome of its line.
    pub last: Option<&'a Outcome>,
    /// The wall minute (minutes since the epoch, local) of its next run.
    pub next_due: Option<i64>,
    pub archives: Archives,
}

impl Facts {
    /// The plan's entries with their facts, in plan order; none if the plan can't be read.
    pub fn entries(&self) -> Vec<EntryFacts<'_>> {
        let Ok(text) = &self.plan else {
            return Vec::new();
        };
        // By plan line, once: a lookup per schedule in the list was quadratic.
        let last_of = outcomes::by_line(&self.outcomes);
        let wall = self.now.wall_minute();
        plan::entries(text)
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let schedule = entry.schedule();
                let next_due = schedule
                    .as_ref()
                    .and_then(|schedule| self.when(schedule).next_after(wall));
                let archives = schedule
                    .as_ref()
                    .and_then(|schedule| self.archives.get(&*schedule.name).cloned())
                    .unwrap_or_default();
                EntryFacts {
                    index,
                    last: last_of.get(entry.text).copied(),
                    entry,
                    schedule,
                    next_due,
                    archives,
                }
            })
            .collect()
    }
}

/// The service as the PID file shows it: its PID and since when it holds the file.
pub fn service_info(layout: &Layout) -> ServiceInfo {
    match pidfile::holder(layout) {
        Ok(Holder::Service(pid)) => ServiceInfo {
            pid: Some(pid.as_raw()),
            since: std::fs::metadata(layout.pid_file())
                .ok()
                .map(|meta| LocalTime::at(meta.mtime())),
            stopping: pidfile::is_stopping(layout),
        },
        _ => ServiceInfo {
            pid: None,
            since: None,
            stopping: false,
        },
    }
}

/// Reads everything the reports show, once; `service` as the caller knows it (the service
/// itself knows it runs without reading its own PID file).
pub fn gather(layout: &Layout, service: ServiceInfo) -> Facts {
    let plan = plan_file::read(layout).map_err(|err| err.stderr_line());
    let plan_changed = std::fs::metadata(layout.plan())
        .ok()
        .map(|meta| LocalTime::at(meta.mtime()));
    let archives = match &plan {
        Ok(text) => archives_of(layout, text),
        Err(_) => HashMap::new(),
    };
    let timings = match (&plan, crate::settings::load(layout)) {
        (Ok(text), Ok(settings)) => plan::entries(text)
            .iter()
            .filter_map(plan::Entry::schedule)
            .map(|schedule| {
                let timing = settings.for_name(&schedule.name, None).timing();
                (schedule.name.to_vec(), timing)
            })
            .collect(),
        _ => HashMap::new(),
    };
    Facts {
        base: layout.base().to_string_lossy().into_owned(),
        now: LocalTime::now(),
        service,
        plan,
        plan_changed,
        outcomes: outcomes::load(layout).unwrap_or_default(),
        archives,
        timings,
    }
}

/// The archives on disk of each name in the plan `text`, from one listing of `backups/`.
fn archives_of(layout: &Layout, text: &[u8]) -> HashMap<Vec<u8>, Archives> {
    let backups = layout.backups_dir();
    let files = rotation::list(&backups).unwrap_or_default();
    let files_of = rotation::by_owner(&files);
    let schedules: Vec<plan::Schedule> = plan::entries(text)
        .iter()
        .filter_map(Entry::schedule)
        .collect();
    let protected = rotation::protected_files(schedules.iter().map(|schedule| &*schedule.name));
    let records = catalog::load(layout).unwrap_or_default();
    let records = catalog::Index::of(&records);
    let mut archives = HashMap::new();
    for schedule in &schedules {
        if archives.contains_key(&*schedule.name) {
            continue;
        }
        // One look at the archives in place serves both the count and the size.
        let found = rotation::in_place(&backups, &schedule.name);
        let files = files_of.get(&*schedule.name).map_or(&[][..], Vec::as_slice);
        let count = rotation::review(
            &schedule.name,
            files,
            &rotation::stamped(&found),
            &Policy::default(),
            &protected,
            &crate::store::chain::Chains::default(),
        )
        .len();
        // The newest, the one `archive::open` reads (the last of equal mtimes, as there).
        let newest = found.iter().max_by_key(|(_, _, meta)| meta.mtime());
        let record = newest.and_then(|(_, _, meta)| records.find(&schedule.name, meta));
        archives.insert(
            schedule.name.to_vec(),
            Archives {
                count,
                in_place_size: newest.map(|(_, _, meta)| meta.len()),
                encrypted_to: record.and_then(|record| record.recipients.clone()),
                offsite: record.and_then(|record| record.offsite.clone()),
            },
        );
    }
    archives
}
