//! Which level an incremental job writes, and the snapshot a full leaves for the level-1s
//! after it. A level-1 is made against the full in place only when its snapshot is sound and
//! describes that very full, the full is younger than `full_every` days, the settings that
//! decide what an archive holds are the same, and the folder is on the same device; anything
//! else means a full, never a wrong level-1.

use crate::archive::incremental::{Baseline, Instant, SnapshotReader, SnapshotWriter};
use crate::archive::walk::Level;
use crate::clock::{self, LocalTime};
use crate::layout::Layout;
use crate::log::show_bytes;
use crate::plan::Schedule;
use crate::settings::Effective;
use crate::store::catalog::Written;
use crate::store::rotation;
use crate::sys::atomic_file::TempFile;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek};
use std::os::unix::fs::MetadataExt;

/// What an incremental job writes.
pub enum Plan {
    /// A full; `warning` says why when it comes before its time.
    Full { warning: Option<String> },
    /// A level-1 against the full in place, stamped `full`.
    One {
        against: SnapshotReader<BufReader<File>>,
        full: Written,
    },
}

/// Chooses the level of today's archive of `schedule`.
pub fn choose(layout: &Layout, schedule: &Schedule, settings: &Effective, now: &LocalTime) -> Plan {
    let full = |warning: Option<String>| Plan::Full { warning };
    let backups = layout.backups_dir();
    let Some((_, _, in_place)) = rotation::in_place(&backups, &schedule.name)
        .into_iter()
        .next()
    else {
        return full(None);
    };
    let snapshot_path = layout.snapshot_path(&schedule.name);
    let shown = format!(
        "backups/{}",
        show_bytes(
            snapshot_path
                .file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default()
        )
    );
    let (reader, described) = match open_snapshot(&snapshot_path) {
        Ok(Some(opened)) => opened,
        // Never written (incremental was just turned on): a full, as usual.
        Ok(None) => return full(None),
        Err(err) => {
            return full(Some(format!("can't use {shown} ({err}); writing a full")));
        }
    };
    let folder = show_bytes(&schedule.folder);
    // A full written since without `incremental` (or by hand) has no snapshot of its own.
    if described != Written::of(&in_place) {
        return full(None);
    }
    let baseline = &reader.baseline;
    if baseline.shape != settings.shape() {
        return full(Some(format!(
            "{folder}: the settings that decide what is archived changed since the last full; writing a full"
        )));
    }
    if let Ok(device) = folder_device(layout, schedule)
        && device != baseline.device
    {
        return full(Some(format!(
            "{folder} is on another device than at the last full; writing a full"
        )));
    }
    let full_started = LocalTime::at(baseline.started.0);
    if clock::days_between(&full_started, now) >= i64::from(settings.full_every_days) {
        return full(None);
    }
    Plan::One {
        against: reader,
        full: described,
    }
}

/// The snapshot, read whole and found sound, then opened again at its first record, with
/// the stamp of the full it describes; `None` if there is none.
fn open_snapshot(
    path: &std::path::Path,
) -> io::Result<Option<(SnapshotReader<BufReader<File>>, Written)>> {
    let file = match crate::sys::open::open_regular(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let (seconds, nanos) = SnapshotReader::open(BufReader::new(&file))?.check_to_end()?;
    let mut again = file;
    again.rewind()?;
    let reader = SnapshotReader::open(BufReader::new(again))?;
    Ok(Some((reader, Written { seconds, nanos })))
}

/// The device the plan folder is on (its symlink followed, as the walk follows it).
fn folder_device(layout: &Layout, schedule: &Schedule) -> io::Result<u64> {
    Ok(std::fs::metadata(layout.resolve_folder(&schedule.folder))?.dev())
}

/// A full's snapshot on its way to `backups/<name>.snapshot`.
pub struct NewSnapshot {
    temp: TempFile,
}

impl NewSnapshot {
    /// Starts the snapshot of a full whose walk starts now, and the level the walk writes it
    /// through.
    pub fn start(
        layout: &Layout,
        schedule: &Schedule,
        settings: &Effective,
        started: &LocalTime,
    ) -> io::Result<(NewSnapshot, Level)> {
        let mut temp = TempFile::create_in(&layout.backups_dir(), 0o600)?;
        let baseline = Baseline {
            started: (started.unix, started.nanos),
            // An unreadable folder fails the walk itself, with its own message.
            device: folder_device(layout, schedule).unwrap_or(0),
            shape: settings.shape(),
        };
        let out = BufWriter::with_capacity(1 << 16, temp.file().try_clone()?);
        let writer = SnapshotWriter::start(out, &baseline)?;
        Ok((NewSnapshot { temp }, Level::Full(writer)))
    }

    /// Ends the snapshot with the stamp of the full it describes and puts it in place.
    pub fn commit(
        self,
        layout: &Layout,
        schedule: &Schedule,
        level: Option<Level>,
        full: Instant,
    ) -> io::Result<()> {
        let Some(Level::Full(writer)) = level else {
            return Err(io::Error::other("the walk gave back no snapshot"));
        };
        writer
            .finish(full)?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        self.temp.commit(&layout.snapshot_path(&schedule.name))
    }
}
