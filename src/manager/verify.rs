//! `backup_manager verify NAME [--against]`: reads `backups/NAME.tar` end to end and reports
//! the first structural defect (header checksum, size, truncation, end marker), and with
//! `--against` every way the live folder differs from the archive, like `tar --compare`.

use crate::archive::form::Form;
use crate::archive::header::device_number;
use crate::archive::member::{Expanded, Member};
use crate::archive::{self, check::read_full, member_name::root_member};
use crate::clock::LocalTime;
use crate::crypt::Identities;
use crate::error::{Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes, show_name};
use crate::plan::file as plan_file;
use crate::plan::{self, Name};
use crate::progress::{self, Progress};
use crate::stdout;
use crate::store::catalog::{self, Written};
use crate::store::chain::{Chains, Level};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// What every archive of one `verify` is checked with.
struct Verifying<'a> {
    log: &'a Log,
    name: &'a Name,
    records: &'a [catalog::Record],
    keys: &'a Identities,
    /// With `--against`, the key is needed even for an encrypted archive.
    against: bool,
    progress: progress::Mode,
    /// With `--json`, the summaries and differences, printed as one document at the end.
    json: Option<&'a std::cell::RefCell<(Vec<String>, Vec<String>)>>,
}

/// What `verify` is asked.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// Compare with the live folder too.
    pub against: bool,
    /// One JSON document on stdout.
    pub json: bool,
    pub progress: progress::Mode,
}

/// Carries out `verify`. With `--json` the outcome is one document on stdout, a failure
/// included: `{"name", "ok", "error", "verified": [summaries], "differences": [lines]}`.
pub fn verify(
    layout: &Layout,
    log: &Log,
    name: &Name,
    asked: Asked,
    keys: &Identities,
) -> Result<Outcome> {
    let collected = asked
        .json
        .then(|| std::cell::RefCell::new((Vec::new(), Vec::new())));
    let result = verify_collecting(layout, log, name, asked, keys, collected.as_ref());
    if let Some(collected) = collected {
        use crate::log::quoted;
        let (verified, differences) = collected.into_inner();
        let list = |items: &[String]| {
            items
                .iter()
                .map(|item| quoted(item))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let error = match &result {
            Ok(_) => "null".to_owned(),
            Err(err) => quoted(&err.to_string()),
        };
        stdout::print_line(&format!(
            "{{\"name\": {}, \"ok\": {}, \"error\": {error}, \"verified\": [{}], \"differences\": [{}]}}",
            quoted(&show_bytes(name)),
            result.is_ok(),
            list(&verified),
            list(&differences)
        ))?;
    }
    result
}

fn verify_collecting(
    layout: &Layout,
    log: &Log,
    name: &Name,
    asked: Asked,
    keys: &Identities,
    collected: Option<&std::cell::RefCell<(Vec<String>, Vec<String>)>>,
) -> Result<Outcome> {
    let Asked {
        against, progress, ..
    } = asked;
    let records = catalog::load(layout).unwrap_or_default();
    let chains = Chains::of(layout, name, &records, keys);
    refuse_orphans(name, &chains)?;
    let verifying = Verifying {
        log,
        name,
        records: &records,
        keys,
        against,
        progress,
        json: collected,
    };
    // The newest state, one descriptor per archive for both passes: what was checked is
    // what is compared.
    let parts = crate::manager::state::parts_of(layout, name, &chains, None)?;
    let mut summary = verifying.archive(&parts[0])?;
    if chains.has_level_ones() {
        verifying.print(&summary)?;
        summary = verifying.level_ones(layout, &chains, &parts)?;
    }
    if against {
        let folder = schedule_folder(layout, name)?;
        crate::debug_points::pause("archive-checked");
        let display = crate::manager::state::display(&parts);
        let shown = show_bytes(&folder);
        let differences = compare_state(&parts, keys, &folder, layout, progress)
            .map_err(|err| Error::failed(format!("can't compare {display}")).because(err))?;
        verifying.differences(&differences)?;
        match differences.len() {
            0 => {}
            1 => {
                return Err(Error::failed(format!(
                    "{display} differs from {shown} in 1 place"
                )));
            }
            n => {
                return Err(Error::failed(format!(
                    "{display} differs from {shown} in {n} places"
                )));
            }
        }
        if parts.len() > 1 {
            verifying.print(&summary)?;
            summary = format!("{display}: same as {shown}");
        } else {
            summary.push_str(&format!(", same as {shown}"));
        }
    }
    verifying.print(&summary)?;
    Ok(Outcome::Done)
}

/// A level-1 whose full is gone makes the chain unsound: nothing restores it.
fn refuse_orphans(name: &Name, chains: &Chains) -> Result<()> {
    let Some(orphan) = chains.orphans().into_iter().next() else {
        return Ok(());
    };
    let needs = match orphan.level {
        Level::One(Some(full)) => LocalTime::at(full.seconds).date_time(),
        _ => String::new(),
    };
    Err(Error::failed(format!(
        "{} needs the full of {} written at {needs}, which is no longer in backups/",
        orphan.display(),
        show_bytes(name)
    )))
}

impl Verifying<'_> {
    /// Prints (or, for `--json`, keeps) and logs one summary line.
    fn print(&self, summary: &str) -> Result<()> {
        match self.json {
            Some(collected) => collected.borrow_mut().0.push(summary.to_owned()),
            None => stdout::print_line(summary)?,
        }
        self.log.write(&format!("Verified {summary}"));
        Ok(())
    }

    /// Prints (or keeps) the differences `--against` found, one a line.
    fn differences(&self, differences: &[Difference]) -> Result<()> {
        let lines = differences.iter().map(ToString::to_string);
        match self.json {
            Some(collected) => collected.borrow_mut().1.extend(lines),
            None => {
                let mut listing = String::new();
                for line in lines {
                    listing.push_str(&line);
                    listing.push('\n');
                }
                stdout::print(listing.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Checks one archive end to end (without a key, an encrypted one as far as it can be);
    /// returns its summary line.
    fn archive(&self, stored: &archive::Stored) -> Result<String> {
        if stored.form().encrypted && self.keys.is_empty() && !self.against {
            return verify_without_key(self.name, stored, self.records);
        }
        stored.require_key(self.keys)?;
        let display = stored.display();
        let mut meter = Progress::new(self.progress, "verify", stored.total());
        let sound = stored.check(self.keys, &mut meter);
        meter.finish(sound.as_ref().ok().and(stored.read_in_full()));
        let sound =
            sound.map_err(|defect| Error::failed(format!("{display} is damaged: {defect}")))?;
        Ok(format!("{display}: sound, {} members", sound.members))
    }

    /// Checks every level-1 made against the full of `state` (the archive in place), its
    /// dumpdirs included, oldest first, the state's own level-1 through its descriptor;
    /// returns the last summary.
    fn level_ones(
        &self,
        layout: &Layout,
        chains: &Chains,
        state: &[archive::Stored],
    ) -> Result<String> {
        let full = &state[0];
        let full_written =
            Written::of(&full.file().metadata().map_err(|err| {
                Error::failed(format!("can't read {}", full.display())).because(err)
            })?);
        let mut summary = None;
        for level_one in chains.archives.iter().rev() {
            if level_one.level != Level::One(Some(full_written)) {
                continue;
            }
            let opened;
            let stored = match state.get(1) {
                Some(newest) if newest.display() == level_one.display() => newest,
                _ => {
                    opened = archive::open_file(layout, &level_one.file)?;
                    &opened
                }
            };
            let mut line = self.archive(stored)?;
            if !(stored.form().encrypted && self.keys.is_empty()) {
                let input = stored.read_from_start(self.keys).map_err(|err| {
                    Error::failed(format!("can't read {}", stored.display())).because(err)
                })?;
                crate::manager::state::unchanged(input).map_err(|err| {
                    Error::failed(format!("{} is damaged: {err}", stored.display()))
                })?;
            }
            line.push_str(&format!(", level 1 on {}", full.display()));
            if let Some(previous) = summary.replace(line) {
                self.print(&previous)?;
            }
        }
        Ok(summary.unwrap_or_else(|| format!("{}: no level-1 on it", full.display())))
    }
}

/// Compares the state that `parts` make with the live folder: under a level-1, the full's
/// members only as far as the level-1 lists them unchanged.
fn compare_state(
    parts: &[archive::Stored],
    keys: &Identities,
    folder: &[u8],
    layout: &Layout,
    progress: progress::Mode,
) -> io::Result<Vec<Difference>> {
    let unchanged = match parts {
        [_, level_one] => Some(crate::manager::state::unchanged(
            level_one.read_from_start(keys)?,
        )?),
        _ => None,
    };
    let mut differences = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let only = if index == 0 { unchanged.as_ref() } else { None };
        let mut meter = Progress::new(progress, "compare", part.total());
        let found = compare(
            part.read_from_start(keys)?,
            folder,
            &layout.resolve_folder(folder),
            only,
            &mut meter,
        );
        meter.finish(found.as_ref().ok().and(part.read_in_full()));
        differences.extend(found?);
    }
    Ok(differences)
}

/// What can be checked of an encrypted archive without its key: an age header that parses,
/// and the size and SHA-256 the catalog recorded when it was written, so a cut or changed
/// file is caught on a host that holds only the recipients.
fn verify_without_key(
    name: &Name,
    stored: &archive::Stored,
    records: &[catalog::Record],
) -> Result<String> {
    let display = stored.display();
    let damaged =
        |why: &dyn std::fmt::Display| Error::failed(format!("{display} is damaged: {why}"));
    // Its record by its stamp; the archive in place's by its form, should its mtime be changed.
    let written = stored.file().metadata().map(|meta| Written::of(&meta)).ok();
    let by_stamp = records
        .iter()
        .rev()
        .find(|record| record.name == **name && Some(record.written) == written);
    let Some(record) = by_stamp.or_else(|| catalog::last_full(records, name, stored.form())) else {
        return Err(Error::failed(format!(
            "{display} is encrypted and the catalog has no record of it to check it against; give --identity FILE"
        )));
    };
    let size = stored.size();
    if size != record.size {
        return Err(damaged(&format_args!(
            "{size} bytes, but it was written with {}",
            record.size
        )));
    }
    crate::crypt::check_header(stored.file()).map_err(|err| damaged(&err))?;
    let digest = archive::digest::sha256_of(stored.file())
        .map_err(|err| Error::failed(format!("can't read {display}")).because(err))?;
    if record.sha256 != Some(digest) {
        return Err(damaged(
            &"its SHA-256 is not the one recorded when it was written",
        ));
    }
    let summary = format!(
        "{display}: sound as written (age header, size and SHA-256; {} members recorded; give --identity FILE to read them)",
        record.members
    );
    Ok(summary)
}

/// The folder of the first schedule that writes archive `name`.
fn schedule_folder(layout: &Layout, name: &Name) -> Result<Vec<u8>> {
    let text = plan_file::read(layout)?;
    plan::entries(&text)
        .iter()
        .filter_map(|entry| entry.schedule())
        .find(|schedule| schedule.name == *name)
        .map(|schedule| schedule.folder)
        .ok_or_else(|| {
            Error::failed(format!(
                "no schedule in the plan writes {}",
                Form::default().archive_display(name)
            ))
        })
}

/// One way the live folder differs from the archive: a line of `verify --against`.
pub struct Difference(String);

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compares each member with the file it was made from; returns every difference.
pub fn compare(
    archive: impl Read + Seek,
    folder: &[u8],
    live_root: &Path,
    only: Option<&HashSet<Vec<u8>>>,
    progress: &mut Progress,
) -> io::Result<Vec<Difference>> {
    let root = root_member(folder);
    let mut differences = Vec::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        if crate::archive::check::is_record(entry.header().entry_type()) {
            continue;
        }
        let facts = Member::read(&mut entry)?;
        if facts.not_a_file().is_some() {
            continue;
        }
        let member = facts.name.clone();
        if only.is_some_and(|only| !only.contains(&crate::manager::restore::key(&member))) {
            continue;
        }
        progress.step(&member, entry.raw_header_position() + entry.size());
        let shown = show_name(member.strip_suffix(b"/").unwrap_or(&member));
        // Like restore, never look outside the folder: a crafted `..` name would make
        // verify an oracle for the contents of any file.
        if let Some(refusal) = crate::archive::member_name::unsafe_name(&member) {
            differences.push(Difference(format!("{refusal}; not compared")));
            continue;
        }
        let Some(live) = live_path(&root, &member, live_root) else {
            differences.push(Difference(format!("{shown}: not inside the folder")));
            continue;
        };
        let meta = match fs::symlink_metadata(&live) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                differences.push(Difference(format!("{shown}: missing on disk")));
                continue;
            }
            Err(err) => {
                differences.push(Difference(format!("{shown}: can't read ({err})")));
                continue;
            }
        };
        // A hard link is compared by what it links to: the same file on disk.
        let linked = match (facts.kind, &facts.link) {
            (EntryType::Link, Some(target)) => live_path(&root, target, live_root)
                .and_then(|path| fs::symlink_metadata(path).ok())
                .map(|first| (first.dev(), first.ino())),
            _ => None,
        };
        if facts.kind == EntryType::Link && linked != Some((meta.dev(), meta.ino())) {
            let target = facts.link.as_deref().unwrap_or_default();
            differences.push(Difference(format!(
                "{shown}: not linked to {}",
                show_name(target)
            )));
            continue;
        }
        for what in differences_of(&facts, &mut entry, &meta, &live)? {
            differences.push(Difference(format!("{shown}: {what}")));
        }
    }
    Ok(differences)
}

/// The live path of `member`, if it lies under the archive's root member.
fn live_path(root: &[u8], member: &[u8], live_root: &Path) -> Option<PathBuf> {
    let trimmed_root = root.strip_suffix(b"/").unwrap_or(root);
    let trimmed = member.strip_suffix(b"/").unwrap_or(member);
    if trimmed == trimmed_root {
        return Some(live_root.to_path_buf());
    }
    let rest = member.strip_prefix(root)?;
    Some(live_root.join(OsStr::from_bytes(rest)))
}

fn differences_of(
    member: &Member,
    entry: &mut tar::Entry<impl Read>,
    meta: &fs::Metadata,
    live: &Path,
) -> io::Result<Vec<&'static str>> {
    let kind = member.kind;
    let file_type = meta.file_type();
    let same_type = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => file_type.is_file(),
        EntryType::Directory => file_type.is_dir(),
        EntryType::Symlink => file_type.is_symlink(),
        EntryType::Fifo => file_type.is_fifo(),
        EntryType::Char => file_type.is_char_device(),
        EntryType::Block => file_type.is_block_device(),
        _ => true,
    };
    if !same_type {
        return Ok(vec!["file type differs"]);
    }
    let mut found = Vec::new();
    if kind == EntryType::Symlink {
        let target = fs::read_link(live)?;
        if member.link.as_deref() != Some(target.as_os_str().as_bytes()) {
            found.push("symlink target differs");
        }
        return Ok(found);
    }
    if member.mode & 0o7777 != meta.mode() & 0o7777 {
        found.push("mode differs");
    }
    if member.uid != u64::from(meta.uid()) {
        found.push("uid differs");
    }
    if member.gid != u64::from(meta.gid()) {
        found.push("gid differs");
    }
    // Whole seconds, as `tar --compare` compares them (a pax time may carry nanoseconds).
    if member.mtime.seconds != meta.mtime() {
        found.push("mod time differs");
    }
    if matches!(kind, EntryType::Char | EntryType::Block) {
        let live_numbers = (
            device_number(nix::sys::stat::major(meta.rdev())),
            device_number(nix::sys::stat::minor(meta.rdev())),
        );
        if member.device != live_numbers {
            found.push("device numbers differ");
        }
    }
    if file_type.is_file() && kind != EntryType::Link {
        if member.size != meta.len() {
            found.push("size differs");
        } else {
            let same = match &member.sparse {
                // Its data is its regions packed together: compared as the whole file.
                Some(sparse) => same_contents(&mut Expanded::new(sparse, entry)?, live)?,
                None => same_contents(entry, live)?,
            };
            if !same {
                found.push("contents differ");
            }
        }
    }
    Ok(found)
}

fn same_contents(entry: &mut impl Read, live: &Path) -> io::Result<bool> {
    let mut file = crate::sys::open::open_regular(live)?;
    let (mut stored, mut current) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(entry, &mut stored)?;
        let m = read_full(&mut file, &mut current[..n.max(1)])?;
        if n != m || stored[..n] != current[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}
