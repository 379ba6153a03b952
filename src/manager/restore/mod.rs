//! `backup_manager restore NAME [--to DIR] [--force] [--outside-links]`: extracts
//! `backups/NAME.tar` into `restore/NAME/` (or DIR), all or nothing. The archive's structure
//! and then every member are checked before anything is written; writing works relative to
//! directory descriptors, so nothing outside DIR is touched whatever the archive holds and
//! whatever others do in DIR meanwhile. Modes and mtimes are kept, and owners as root.

mod check;
mod extract;

pub use check::name_refusal;

use crate::archive::{self, check::check_structure};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::log::Log;
use check::{Checker, Shape, components};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Seek};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Carries out `restore`.
pub fn restore(
    layout: &Layout,
    log: &Log,
    name: &[u8],
    to: Option<PathBuf>,
    force: bool,
    outside_links: bool,
) -> Result<()> {
    let display = Layout::archive_display(name);
    let target = match to {
        // Like `tar -C`: a relative folder is relative to where the command runs.
        Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
        None => layout.restore_dir().join(OsStr::from_bytes(name)),
    };
    let shown = target.display().to_string();
    let failed =
        |detail: String| Error::failed(format!("restore of {display} to {shown} failed: {detail}"));
    // One descriptor for every pass: what was checked is what is restored.
    let mut archive = archive::open(layout, name)?;
    check_structure(io::BufReader::with_capacity(1 << 20, &archive))
        .map_err(|defect| failed(format!("the archive is damaged: {defect}")))?;
    let rewind = |archive: &mut File| {
        archive
            .rewind()
            .map_err(|err| failed(format!("can't read the archive ({err})")))
    };
    rewind(&mut archive)?;
    let count = check_members(&archive, &target, force, outside_links).map_err(failed)?;
    rewind(&mut archive)?;
    fs::create_dir_all(&target).map_err(|err| failed(format!("can't create folder ({err})")))?;
    extract::extract(&archive, &target, force).map_err(|err| failed(err.to_string()))?;
    crate::stdout::print_line(&format!("{display}: {count} members restored in {shown}"))?;
    log.write(&format!("Restore done for {display} in {shown}"));
    Ok(())
}

/// Records that describe the next member rather than being members.
fn is_record(kind: EntryType) -> bool {
    matches!(
        kind,
        EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    )
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

/// Reads every member header before anything is written; returns the member count or the
/// first refusal. What is already in the target is looked at too, without creating anything.
fn check_members(
    archive: &File,
    target: &Path,
    force: bool,
    outside_links: bool,
) -> std::result::Result<u64, String> {
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, archive));
    let mut checker = Checker::new(outside_links);
    let mut on_disk = match extract::Tree::open(target) {
        Ok(tree) => Some(tree),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(format!("can't open the folder ({err})")),
    };
    let mut count = 0;
    let unreadable = |err: io::Error| format!("can't read the archive ({err})");
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let kind = entry.header().entry_type();
        if is_record(kind) {
            continue;
        }
        let name = entry.path_bytes();
        let Some(shape) = shape_of(kind) else {
            return Err(format!(
                "{}: unsupported member type '{}'",
                crate::log::show_name(&name),
                crate::log::show_bytes(&[kind.as_byte()])
            ));
        };
        let link = entry.link_name_bytes();
        checker.member(&name, shape, link.as_deref())?;
        if let Some(tree) = on_disk.as_mut() {
            let replaced = |parts: &[&[u8]]| checker.has_directory_member(parts);
            extract::conflict(tree, &components(&name), shape, force, &replaced)?;
        }
        count += 1;
    }
    checker.finish()?;
    Ok(count)
}
