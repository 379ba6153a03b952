//! `backup_manager restore NAME [--to DIR] [--force] [--refuse-outside-links]`: extracts
//! `backups/NAME.tar` into `restore/NAME/` (or DIR), all or nothing. The archive's structure
//! and then every member are checked before anything is written; writing works relative to
//! directory descriptors, so nothing outside DIR is touched whatever the archive holds and
//! whatever others do in DIR meanwhile. Modes and mtimes are kept, and owners as root.

mod check;
mod delete;
mod extract;

pub use check::key;

pub use check::Refusal;

use crate::archive::member::{Member, NotAFile};
use crate::archive::{self, check::is_record};
use crate::crypt::Identities;
use crate::error::{Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::Log;
use crate::plan::Name;
use crate::progress::{self, Progress};
use check::{Checker, Selection, Shape, components};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Where and how a restore writes.
#[derive(Debug)]
pub struct Options {
    /// The folder to restore into; `restore/NAME/` in the base directory by default.
    pub to: Option<PathBuf>,
    /// Replace what already exists.
    pub force: bool,
    /// Remove what the folder holds that the restored state lacks.
    pub delete: bool,
    /// Refuse the restore if a symlink leads outside the folder (by default such links are
    /// restored as stored, and counted).
    pub refuse_outside_links: bool,
    /// Give files the stored uid and gid, not the local ids of the stored names.
    pub numeric_owner: bool,
    /// Only these members and what is below them; all when empty.
    pub members: Vec<Vec<u8>>,
    /// Identity files for an encrypted archive.
    pub identity: Vec<PathBuf>,
    /// The newest state at or before this local wall-clock minute; the newest of all when
    /// `None`.
    pub as_of: Option<i64>,
    pub progress: progress::Mode,
}

/// Carries out `restore`.
pub fn restore(layout: &Layout, log: &Log, name: &Name, options: &Options) -> Result<Outcome> {
    let keys = Identities::load(&options.identity)?;
    // One descriptor per archive for every pass: what was checked is what is restored.
    let parts = crate::manager::state::parts(layout, name, options.as_of, &keys)?;
    for part in &parts {
        part.require_key(&keys)?;
    }
    let display = crate::manager::state::display(&parts);
    let target = match &options.to {
        // Like `tar -C`: a relative folder is relative to where the command runs.
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => layout.restore_dir().join(OsStr::from_bytes(name)),
    };
    let shown = target.display().to_string();
    let failed = |detail: &dyn std::fmt::Display| {
        Error::failed(format!("restore of {display} to {shown} failed: {detail}"))
    };
    if let Some(own) = inside_own_folder(layout, &target) {
        return Err(failed(&format_args!(
            "the folder is inside {own}/, which backupbox keeps for itself; choose another with --to"
        )));
    }
    let (checked, only) = check_all(&parts, &keys, &target, options, &failed)?;
    let Checked {
        members: count,
        outside_links,
        redirects,
        tree,
        selection,
    } = checked;
    crate::debug_points::pause("archive-checked");
    fs::create_dir_all(&target)
        .map_err(|err| failed(&format_args!("can't create folder ({err})")))?;
    let mut selection = selection;
    for ((part, only), redirect) in parts.iter().zip(only).zip(&redirects) {
        let input = from_start(part, &keys, &failed)?;
        let mut meter = Progress::new(options.progress, "restore", part.total());
        selection.restrict(only);
        let extracted = extract::extract(
            input,
            &target,
            options.force,
            &selection,
            redirect,
            options.numeric_owner,
            &mut meter,
        );
        meter.finish(extracted.as_ref().ok().and(part.read_in_full()));
        extracted.map_err(|err| failed(&err))?;
    }
    crate::stdout::print_line(&format!("{display}: {count} members restored in {shown}"))?;
    log.write(&format!("Restore done for {display} in {shown}"));
    if options.delete {
        let removed = delete::delete_extra(&target, &|parts| tree.makes(parts))
            .map_err(|err| failed(&format_args!("can't remove what the archive lacks ({err})")))?;
        let note = format!(
            "{display}: removed {removed} entries of {shown} that the archive does not hold"
        );
        crate::stdout::print_line(&note)?;
        log.write(&note);
    }
    if outside_links > 0 {
        // Links are data and were restored as stored; whoever follows them later should know.
        let note = format!(
            "{display}: {outside_links} restored symlinks point outside {shown} (restored as stored; --refuse-outside-links refuses them)"
        );
        crate::stdout::print_line(&note)?;
        log.write(&note);
    }
    Ok(Outcome::Done)
}

/// An archive's tar stream from its start, for one more pass.
fn from_start<'a>(
    part: &'a archive::Stored,
    keys: &Identities,
    failed: &dyn Fn(&dyn std::fmt::Display) -> Error,
) -> Result<archive::tar_reader::TarReader<'a>> {
    part.read_from_start(keys)
        .map_err(|err| failed(&Refusal::Unreadable(err)))
}

/// Members restricted per archive: under a level-1, a full gives only what the level-1
/// lists as unchanged.
type Restrictions = Vec<Option<HashSet<Vec<u8>>>>;

/// Every check before anything is written: the tar structure of every archive, first to
/// last, then every member of the state they make together.
fn check_all(
    parts: &[archive::Stored],
    keys: &Identities,
    target: &Path,
    options: &Options,
    failed: &dyn Fn(&dyn std::fmt::Display) -> Error,
) -> Result<(Checked, Restrictions)> {
    for part in parts {
        let mut meter = Progress::new(options.progress, "check", part.total());
        let checked = part.check(keys, &mut meter);
        meter.finish(checked.as_ref().ok().and(part.read_in_full()));
        checked.map_err(|defect| match parts {
            [_] => failed(&format_args!("the archive is damaged: {defect}")),
            _ => failed(&format_args!("{} is damaged: {defect}", part.display())),
        })?;
    }
    let mut only: Restrictions = vec![None; parts.len()];
    if let [_, level_one] = parts {
        let unchanged = crate::manager::state::unchanged(from_start(level_one, keys, failed)?)
            .map_err(|err| failed(&Refusal::Unreadable(err)))?;
        only[0] = Some(unchanged);
    }
    let mut check = MemberCheck::new(target, options).map_err(|refusal| failed(&refusal))?;
    for (part, only) in parts.iter().zip(&mut only) {
        check.selection.restrict(only.take());
        let checked = check.archive(from_start(part, keys, failed)?, options);
        *only = check.selection.restrict(None);
        checked.map_err(|refusal| failed(&refusal))?;
    }
    let checked = check.finish().map_err(|refusal| failed(&refusal))?;
    Ok((checked, only))
}

/// `backups` or `logs` when `target` is at or below that folder of the base directory: files
/// restored there would be listed as archives or mixed with the logs. Compared as real paths,
/// of the nearest part of `target` that exists.
fn inside_own_folder(layout: &Layout, target: &Path) -> Option<&'static str> {
    let real = target.ancestors().find_map(|existing| {
        let mut real = fs::canonicalize(existing).ok()?;
        // What does not exist yet is made as written, `..` included.
        for part in target.strip_prefix(existing).ok()?.components() {
            match part {
                std::path::Component::ParentDir => {
                    real.pop();
                }
                std::path::Component::Normal(part) => real.push(part),
                _ => {}
            }
        }
        Some(real)
    })?;
    [
        (layout.backups_dir(), "backups"),
        (layout.logs_dir(), "logs"),
    ]
    .into_iter()
    .find(|(dir, _)| fs::canonicalize(dir).is_ok_and(|dir| real.starts_with(dir)))
    .map(|(_, shown)| shown)
}

/// What a member makes, or `None` for a type restore does not make.
fn shape_of(kind: EntryType) -> Option<Shape> {
    match kind {
        EntryType::Directory => Some(Shape::Directory),
        EntryType::Symlink => Some(Shape::Symlink),
        EntryType::Link => Some(Shape::HardLink),
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::GNUSparse
        | EntryType::Fifo
        | EntryType::Char
        | EntryType::Block => Some(Shape::Other),
        _ => None,
    }
}

/// What the check of every member found.
struct Checked {
    /// Members to restore.
    members: u64,
    /// Symlinks among them that lead outside the target.
    outside_links: usize,
    /// One per archive read.
    redirects: Vec<Redirect>,
    /// The tree the restore makes.
    tree: Checker,
    selection: Selection,
}

/// For a partial restore: members not asked for whose data a hard link asked for needs, by
/// their `a/b/c` key, with the name of the first such link, which gets the data.
pub type Redirect = std::collections::HashMap<Vec<u8>, Vec<u8>>;

/// Every member header of every archive restored, read before anything is written; what is
/// already in the target is looked at too, without creating anything.
struct MemberCheck {
    checker: Checker,
    selection: Selection,
    on_disk: Option<extract::Tree>,
    count: u64,
    redirects: Vec<Redirect>,
}

impl MemberCheck {
    fn new(target: &Path, options: &Options) -> std::result::Result<MemberCheck, Refusal> {
        let on_disk = match extract::Tree::open(target) {
            Ok(tree) => Some(tree),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => {
                return Err(Refusal::DiskTrouble(format!(
                    "can't open the folder ({err})"
                )));
            }
        };
        Ok(MemberCheck {
            checker: Checker::new(!options.refuse_outside_links),
            selection: Selection::of(&options.members),
            on_disk,
            count: 0,
            redirects: Vec::new(),
        })
    }

    /// Checks the members of one archive; the first refusal ends the restore.
    fn archive(
        &mut self,
        archive: impl io::Read + io::Seek,
        options: &Options,
    ) -> std::result::Result<(), Refusal> {
        let mut archive = tar::Archive::new(archive);
        let mut redirect = Redirect::new();
        for entry in archive.entries_with_seek().map_err(Refusal::Unreadable)? {
            let mut entry = entry.map_err(Refusal::Unreadable)?;
            if is_record(entry.header().entry_type()) {
                continue;
            }
            let member = Member::read(&mut entry).map_err(Refusal::Unreadable)?;
            match member.not_a_file() {
                Some(NotAFile::SolarisAcl) => {
                    eprintln!(
                        "Warning: {}: a Solaris ACL member, not restored",
                        crate::log::show_name(&member.name)
                    );
                    continue;
                }
                Some(NotAFile::VolumeLabel) => continue,
                None => {}
            }
            if let Some(sparse) = &member.sparse {
                let stored = entry.size();
                crate::archive::member::check_sparse(sparse, stored, &mut entry).map_err(
                    |why| Refusal::BadSparseMap {
                        name: member.name.clone(),
                        why,
                    },
                )?;
            }
            let name = member.name;
            let Some(shape) = shape_of(member.kind) else {
                return Err(Refusal::UnsupportedType {
                    name,
                    kind: member.kind.as_byte(),
                });
            };
            let link = member.link;
            let taken = self.selection.take(&name);
            // The whole archive is checked, whatever part of it is restored; a full's members
            // under a level-1 only as far as they are restored, a link whose data is not
            // restored from it as the file it becomes.
            if !self.selection.restricted() {
                self.checker.member(&name, shape, link.as_deref())?;
            } else if taken {
                match link.as_deref() {
                    Some(target) if shape == Shape::HardLink && !self.selection.covers(target) => {
                        self.checker.member(&name, Shape::Other, None)?;
                    }
                    link => self.checker.member(&name, shape, link)?,
                }
            }
            if !taken {
                continue;
            }
            // A link asked for without the member holding its data: that member's data is
            // restored under the link's name (as borg does; GNU tar fails there), and the other
            // links asked for to the same data link to it.
            if let (Shape::HardLink, Some(target)) = (shape, link.as_deref())
                && !self.selection.covers(target)
            {
                redirect
                    .entry(check::key(target))
                    .or_insert_with(|| name.to_vec());
            }
            if let Some(tree) = self.on_disk.as_mut() {
                let checker = &self.checker;
                let replaced = |parts: &[&[u8]]| checker.has_directory_member(parts);
                extract::conflict(tree, &components(&name), shape, options.force, &replaced)?;
            }
            self.count += 1;
        }
        self.redirects.push(redirect);
        Ok(())
    }

    fn finish(self) -> std::result::Result<Checked, Refusal> {
        let outside_links = self.checker.finish()?;
        if let Some(member) = self.selection.missing() {
            return Err(Refusal::NotInArchive(member.to_vec()));
        }
        Ok(Checked {
            members: self.count,
            outside_links,
            redirects: self.redirects,
            tree: self.checker,
            selection: self.selection,
        })
    }
}
