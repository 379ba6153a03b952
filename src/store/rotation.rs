//! Older generations of an archive: `backups/<name>.<yyyy-mm-dd_hhmmss>.tar` (or `.tar.gz`,
//! `.tar.zst`, the form of the archive it was), stamped with the replaced archive's own mtime,
//! those the retention rules do not keep removed.
//!
//! The previous archive is hard-linked to its generation name before the new one is renamed
//! over `<name>.tar`, so at every instant both complete archives are on disk under some name.
//! When the form changes, the archive in the old form is removed only once the new one is in
//! place.

use super::catalog::Written;
use super::chain::Chains;
use super::retention::{self, Generation, Policy, Reason};
use crate::archive::form::Form;
use crate::clock::LocalTime;
use crate::layout::Layout;
use crate::plan::Name;
use crate::sys::open::FileId;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `yyyy-mm-dd_hhmmss` of a local time.
pub fn stamp(time: &LocalTime) -> String {
    time.date_time().replace(' ', "_").replace(':', "")
}

/// `<name>.<stamp>.tar`, or `<name>.<stamp>-<serial>.tar` for the serial-th file of that
/// second; `.tar.gz` or `.tar.zst` for a compressed one.
pub fn generation_name(name: &[u8], stamp: &str, serial: u32, form: Form) -> Vec<u8> {
    let mut file = name.to_vec();
    file.push(b'.');
    file.extend_from_slice(stamp.as_bytes());
    if serial > 1 {
        file.extend_from_slice(format!("-{serial}").as_bytes());
    }
    file.extend_from_slice(form.suffix().as_bytes());
    file
}

/// The age key (stamp, serial) of `file` if it is a generation of `name`.
pub(super) fn generation_key(name: &[u8], file: &[u8]) -> Option<(Vec<u8>, u32)> {
    let (_, stem) = Form::of_file(file)?;
    let middle = stem.strip_prefix(name)?.strip_prefix(b".")?;
    let (stamp, serial) = match middle.get(17..) {
        Some([]) => (middle, 1),
        Some([b'-', digits @ ..]) if !digits.is_empty() && digits[0] != b'0' => (
            &middle[..17],
            std::str::from_utf8(digits).ok()?.parse().ok()?,
        ),
        _ => return None,
    };
    let shape = b"dddd-dd-dd_dddddd";
    let fits = stamp.iter().zip(shape).all(|(&b, &s)| {
        if s == b'd' {
            b.is_ascii_digit()
        } else {
            b == s
        }
    });
    fits.then(|| (stamp.to_vec(), serial))
}

/// The archives of `name` among `files`, newest first, each with the reasons `policy` keeps
/// it (none: it goes). The archives in place (`<name>.tar` or another form, with their stamps,
/// newest first: [`currents`]) are never removed; files named in `protected` (the archives
/// of the plan's schedules, `<other>.tar`) are never counted, whatever they look like.
///
/// With incremental backups each level-1 counts as a day of its own, a full stays while a
/// kept level-1 needs it, and a level-1 whose full is gone goes first: `chains` says which is
/// which, and orders them all by when they were written.
pub fn review(
    name: &[u8],
    files: &[Vec<u8>],
    currents: &[(Vec<u8>, String)],
    policy: &Policy,
    protected: &HashSet<Vec<u8>>,
    chains: &Chains,
) -> Vec<(Generation, Vec<Reason>)> {
    let written = |file: &[u8]| {
        chains
            .archives
            .iter()
            .find(|archive| archive.file == file)
            .map(|archive| archive.written)
    };
    let mut dated: Vec<Dated> = files
        .iter()
        .filter(|file| !protected.contains(*file))
        .filter_map(|file| {
            let key =
                generation_key(name, file).or_else(|| super::chain::level_one_key(name, file))?;
            Some(Dated {
                written: written(file),
                in_place: false,
                key,
                file,
            })
        })
        .collect();
    dated.extend(currents.iter().filter_map(|(current, stamp)| {
        let file = files.iter().find(|file| *file == current)?;
        Some(Dated {
            written: written(file),
            in_place: true,
            key: (stamp.as_bytes().to_vec(), 0),
            file,
        })
    }));
    // Newest first, the archive in place before its own generation of the same instant.
    dated.sort_by(|a, b| b.order().cmp(&a.order()));
    let all: Vec<Generation> = dated
        .iter()
        .map(|dated| Generation {
            file: dated.file.clone(),
            stamp: String::from_utf8_lossy(&dated.key.0).into_owned(),
        })
        .collect();
    let mut reasons = retention::choose(&all, policy);
    let orphans = chains.orphan_files();
    for (generation, kept) in all.iter().zip(reasons.iter_mut()) {
        if orphans.contains(generation.file.as_slice()) {
            kept.clear();
        }
    }
    mark_needed(&all, &mut reasons, chains);
    for (dated, kept) in dated.iter().zip(reasons.iter_mut()) {
        if dated.in_place && kept.is_empty() {
            kept.push(Reason::InPlace);
        }
    }
    all.into_iter().zip(reasons).collect()
}

/// An archive that retention reviews, with what orders it.
struct Dated<'a> {
    /// When it was written, if `chains` knows.
    written: Option<Written>,
    in_place: bool,
    /// Its age key: stamp and serial.
    key: (Vec<u8>, u32),
    file: &'a Vec<u8>,
}

impl Dated<'_> {
    fn order(&self) -> (bool, Option<Written>, bool, &(Vec<u8>, u32)) {
        (
            self.written.is_some(),
            self.written,
            self.in_place,
            &self.key,
        )
    }
}

/// Gives each full that a kept level-1 needs the reason, from the newest such level-1.
fn mark_needed(all: &[Generation], reasons: &mut [Vec<Reason>], chains: &Chains) {
    let mut needed = vec![false; all.len()];
    for (index, generation) in all.iter().enumerate() {
        if reasons[index].is_empty() {
            continue;
        }
        let full = chains
            .archives
            .iter()
            .find(|archive| archive.file == generation.file)
            .and_then(|archive| chains.full_of(archive));
        if let Some(at) = full.and_then(|full| all.iter().position(|g| g.file == full.file))
            && !needed[at]
        {
            needed[at] = true;
            reasons[at].push(Reason::Needed(generation.stamp.clone()));
        }
    }
}

/// The generations of `name` to delete, oldest last: those no rule of `policy` keeps.
pub fn to_prune(
    name: &[u8],
    files: &[Vec<u8>],
    currents: &[(Vec<u8>, String)],
    policy: &Policy,
    protected: &HashSet<Vec<u8>>,
    chains: &Chains,
) -> Vec<Vec<u8>> {
    review(name, files, currents, policy, protected, chains)
        .into_iter()
        .filter(|(_, reasons)| reasons.is_empty())
        .map(|(generation, _)| generation.file)
        .collect()
}

/// The archive files of `names` in every form: what pruning another name never touches.
pub fn protected_files<'a>(names: impl Iterator<Item = &'a [u8]>) -> HashSet<Vec<u8>> {
    names.flat_map(Layout::archive_file_names).collect()
}

/// The names of the regular files in `backups/`: only those can be archives or generations.
/// A symlink, FIFO or directory named like a generation is never counted, kept or removed.
pub fn list(backups: &Path) -> io::Result<Vec<Vec<u8>>> {
    Ok(fs::read_dir(backups)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.file_name().as_bytes().to_vec())
        .collect())
}

/// Every archive of `name` in `backups/`, in place or a generation, with its metadata: what
/// the catalog keeps records of. Empty if `backups/` can't be read.
pub fn files_of(backups: &Path, name: &[u8]) -> Vec<(Vec<u8>, fs::Metadata)> {
    list(backups)
        .unwrap_or_default()
        .into_iter()
        .filter(|file| possible_owners(file).contains(&name))
        .filter_map(|file| {
            let meta = fs::symlink_metadata(backups.join(OsStr::from_bytes(&file))).ok()?;
            Some((file, meta))
        })
        .collect()
}

/// An archive in place: its file name, form and metadata.
pub type InPlace = (Vec<u8>, Form, fs::Metadata);

/// The archives of `name` in place, in any form, each with its metadata; newest first.
pub fn in_place(backups: &Path, name: &[u8]) -> Vec<InPlace> {
    let mut found: Vec<_> = Form::ALL
        .into_iter()
        .filter_map(|form| {
            let file = Layout::archive_file_name(name, form.suffix());
            let meta = fs::symlink_metadata(backups.join(OsStr::from_bytes(&file))).ok()?;
            meta.is_file().then_some((file, form, meta))
        })
        .collect();
    found.sort_by_key(|(_, _, meta)| std::cmp::Reverse(meta.mtime()));
    found
}

/// The archives of `name` in place (`<name>.tar`, or another form), each with its stamp (its
/// mtime), newest first, for [`review`].
pub fn currents(backups: &Path, name: &[u8]) -> Vec<(Vec<u8>, String)> {
    stamped(&in_place(backups, name))
}

/// Each archive of [`in_place`] with its stamp, for [`review`].
pub fn stamped(found: &[InPlace]) -> Vec<(Vec<u8>, String)> {
    found
        .iter()
        .map(|(file, _, meta)| (file.clone(), stamp(&LocalTime::at(meta.mtime()))))
        .collect()
}

/// `files` grouped by the names whose archive or generation each may be (see
/// [`possible_owners`]): reviewing every name of a large plan then reads only its own files,
/// not all of `backups/` once per name.
pub fn by_owner(files: &[Vec<u8>]) -> std::collections::HashMap<&[u8], Vec<Vec<u8>>> {
    let mut owned: std::collections::HashMap<&[u8], Vec<Vec<u8>>> =
        std::collections::HashMap::new();
    for file in files {
        for owner in possible_owners(file) {
            owned.entry(owner).or_default().push(file.clone());
        }
    }
    owned
}

/// The names whose archive or generation `file` may be: `x` for `x.tar`, and `x` for
/// `x.<stamp>[-n].tar` too (or `.tar.gz`, `.tar.zst`).
pub fn possible_owners(file: &[u8]) -> Vec<&[u8]> {
    let Some((_, base)) = Form::of_file(file) else {
        return Vec::new();
    };
    // A level-1, `x.<stamp>[-n].inc.tar`, belongs to `x` alone.
    if let Some(generation) = base.strip_suffix(super::chain::LEVEL_ONE_MARK.as_bytes())
        && let Some(owner) = stamped_owner(generation)
    {
        return vec![owner];
    }
    let mut owners = vec![base];
    owners.extend(stamped_owner(base));
    owners
}

/// `x` of `x.<yyyy-mm-dd_hhmmss>[-n]`, going by the shape's length and dot only.
fn stamped_owner(base: &[u8]) -> Option<&[u8]> {
    let without_serial = match base.iter().rposition(|&b| b == b'-') {
        Some(dash)
            if base.len() - dash <= 11 && base[dash + 1..].iter().all(u8::is_ascii_digit) =>
        {
            &base[..dash]
        }
        _ => base,
    };
    let cut = without_serial.len().checked_sub(18)?;
    (without_serial[cut] == b'.').then(|| &without_serial[..cut])
}

/// Gives each archive of `name` in place its generation name too (a hard link), before it is
/// replaced. Returns each archive linked with its new name; one that already has one (a crash
/// after the link, before the rename) is left out.
pub fn keep_previous(layout: &Layout, name: &Name) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let backups = layout.backups_dir();
    let mut kept = Vec::new();
    for (file, form, meta) in in_place(&backups, name) {
        let current = backups.join(OsStr::from_bytes(&file));
        let stamp = stamp(&LocalTime::at(meta.mtime()));
        for serial in 1.. {
            let generation = generation_name(name, &stamp, serial, form);
            let path = backups.join(OsStr::from_bytes(&generation));
            match fs::hard_link(&current, &path) {
                Ok(()) => {
                    kept.push((file, generation));
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    let same = fs::symlink_metadata(&path)
                        .is_ok_and(|other| FileId::of(&other) == FileId::of(&meta));
                    if same {
                        break;
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }
    Ok(kept)
}

/// Removes the archives of `name` in a form other than `kept`, once the one in `kept` form is
/// in place: the archive in the old form was replaced. Returns each file chosen with how its
/// removal went.
pub fn retire_other_forms(
    backups: &Path,
    name: &[u8],
    kept: Form,
) -> Vec<(Vec<u8>, io::Result<()>)> {
    in_place(backups, name)
        .into_iter()
        .filter(|(_, form, _)| *form != kept)
        .map(|(file, _, _)| {
            let removed = fs::remove_file(backups.join(OsStr::from_bytes(&file)));
            (file, removed)
        })
        .collect()
}

/// Deletes the generations of `name` that `policy` does not keep; returns each file chosen
/// with how its removal went.
pub fn prune(
    backups: &Path,
    name: &[u8],
    policy: &Policy,
    protected: &HashSet<Vec<u8>>,
    chains: &Chains,
) -> io::Result<Vec<(Vec<u8>, io::Result<()>)>> {
    let files = list(backups)?;
    let currents = currents(backups, name);
    Ok(to_prune(name, &files, &currents, policy, protected, chains)
        .into_iter()
        .map(|file| {
            let removed = fs::remove_file(backups.join(OsStr::from_bytes(&file)));
            (file, removed)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Vec<(Vec<u8>, String)> {
        vec![(b"db.tar".to_vec(), "2026-01-04_030000".to_owned())]
    }

    fn keep(last: u32) -> Policy {
        Policy {
            last,
            ..Policy::default()
        }
    }

    fn names(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn generation_names_carry_the_stamp_and_a_serial_after_the_first() {
        let time = LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        };
        assert_eq!(stamp(&time), "2026-01-29_160730");
        assert_eq!(
            generation_name(b"db", "2026-01-29_160730", 1, Form::default()),
            b"db.2026-01-29_160730.tar"
        );
        assert_eq!(
            generation_name(
                b"db",
                "2026-01-29_160730",
                3,
                Form::clear(crate::archive::compression::Compression::Zstd)
            ),
            b"db.2026-01-29_160730-3.tar.zst"
        );
    }

    #[test]
    fn a_file_names_the_archive_it_may_belong_to() {
        assert_eq!(possible_owners(b"db.tar"), [&b"db"[..]]);
        assert_eq!(
            possible_owners(b"db.2026-01-02_030000.tar"),
            [&b"db.2026-01-02_030000"[..], b"db"]
        );
        assert_eq!(
            possible_owners(b"db.2026-01-02_030000-12.tar"),
            [&b"db.2026-01-02_030000-12"[..], b"db"]
        );
        assert!(possible_owners(b"notes.txt").is_empty());
    }

    #[test]
    fn the_oldest_generations_beyond_keep_are_pruned() {
        let files = names(&[
            "db.tar",
            "db.2026-01-03_030000.tar",
            "db.2026-01-01_030000.tar",
            "db.2026-01-02_030000.tar",
            "db.2026-01-02_030000-2.tar",
            "db.2026-01-02_030000-10.tar",
            "db2.2026-01-01_030000.tar",
            "db.notes.tar",
            "db.2026-01-01_03000.tar",
            "db.2026-01-01_030000-02.tar",
        ]);
        assert_eq!(
            to_prune(
                b"db",
                &files,
                &now(),
                &keep(3),
                &HashSet::new(),
                &Chains::default()
            ),
            names(&[
                "db.2026-01-02_030000-2.tar",
                "db.2026-01-02_030000.tar",
                "db.2026-01-01_030000.tar",
            ])
        );
        assert_eq!(
            to_prune(
                b"db",
                &files,
                &now(),
                &keep(1),
                &HashSet::new(),
                &Chains::default()
            )
            .len(),
            5
        );
        assert_eq!(
            to_prune(
                b"db",
                &files,
                &now(),
                &keep(6),
                &HashSet::new(),
                &Chains::default()
            ),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn another_schedules_archive_is_never_pruned_even_if_it_looks_like_a_generation() {
        let files = names(&[
            "db.tar",
            "db.2026-01-01_030000.tar",
            "db.2026-01-02_030000.tar",
        ]);
        let protected: HashSet<Vec<u8>> =
            names(&["db.2026-01-01_030000.tar"]).into_iter().collect();
        assert_eq!(
            to_prune(
                b"db",
                &files,
                &now(),
                &keep(1),
                &protected,
                &Chains::default()
            ),
            names(&["db.2026-01-02_030000.tar"])
        );
    }

    #[test]
    fn level_ones_count_as_days_keep_the_full_they_need_and_orphans_go_first() {
        use crate::store::chain::{Archive, Level};
        let written = |seconds| Written { seconds, nanos: 0 };
        let archive = |file: &str, seconds, level| Archive {
            file: file.as_bytes().to_vec(),
            form: Form::default(),
            written: written(seconds),
            size: 1,
            level,
        };
        // Newest first: this week's full and two level-1s, last week's full (a generation)
        // and its two level-1s, and a level-1 whose full is gone.
        let chains = Chains {
            archives: vec![
                archive(
                    "db.2026-01-10_030000.inc.tar",
                    10,
                    Level::One(Some(written(8))),
                ),
                archive(
                    "db.2026-01-09_030000.inc.tar",
                    9,
                    Level::One(Some(written(8))),
                ),
                archive("db.tar", 8, Level::Full),
                archive(
                    "db.2026-01-07_030000.inc.tar",
                    7,
                    Level::One(Some(written(5))),
                ),
                archive(
                    "db.2026-01-06_030000.inc.tar",
                    6,
                    Level::One(Some(written(5))),
                ),
                archive("db.2026-01-05_030000.tar", 5, Level::Full),
                archive(
                    "db.2026-01-04_030000.inc.tar",
                    4,
                    Level::One(Some(written(1))),
                ),
            ],
        };
        let files: Vec<Vec<u8>> = chains.archives.iter().map(|a| a.file.clone()).collect();
        let currents = vec![(b"db.tar".to_vec(), "2026-01-08_030000".to_owned())];
        let review = |count| {
            review(
                b"db",
                &files,
                &currents,
                &keep(count),
                &HashSet::new(),
                &chains,
            )
            .into_iter()
            .map(|(generation, reasons)| {
                let shown: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                format!(
                    "{} {}",
                    String::from_utf8_lossy(&generation.file),
                    shown.join(", ")
                )
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(
            review(4),
            [
                "db.2026-01-10_030000.inc.tar newest",
                "db.2026-01-09_030000.inc.tar last",
                "db.tar last, needed by 2026-01-10_030000",
                "db.2026-01-07_030000.inc.tar last",
                "db.2026-01-06_030000.inc.tar ",
                "db.2026-01-05_030000.tar needed by 2026-01-07_030000",
                "db.2026-01-04_030000.inc.tar ",
            ]
        );
        // keep = 1: the newest day alone, with its full; the archive in place is never pruned.
        assert_eq!(
            to_prune(b"db", &files, &currents, &keep(1), &HashSet::new(), &chains).len(),
            5
        );
    }
}
