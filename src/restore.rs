//! `backup_manager restore NAME [--to DIR] [--force]`: extracts `backups/NAME.tar` into
//! `restore/NAME/` (or DIR) after checking every member first: no absolute names, no `..`,
//! no link leading out of DIR, nothing written through a link, no existing file overwritten
//! unless forced. Modes and mtimes are kept, and owners when run as root.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::verify::open_archive;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Why a member may not be extracted, if it may not. `links` holds the symlink members seen
/// so far: nothing may be extracted through one of them.
pub fn refusal(
    name: &[u8],
    kind: EntryType,
    link: Option<&[u8]>,
    links: &HashSet<Vec<u8>>,
) -> Option<String> {
    let shown = show_bytes(name);
    if name.starts_with(b"/") {
        return Some(format!("{shown}: absolute member name"));
    }
    let parts = components(name);
    if parts.contains(&&b".."[..]) {
        return Some(format!("{shown}: member name contains '..'"));
    }
    for depth in 1..parts.len() {
        if links.contains(&parts[..depth].join(&b'/')) {
            return Some(format!("{shown}: would be written through a symlink"));
        }
    }
    match (kind, link) {
        (EntryType::Symlink, Some(target)) => {
            let base = &parts[..parts.len().saturating_sub(1)];
            (!stays_inside(base, target))
                .then(|| format!("{shown}: symlink points outside the restore folder"))
        }
        (EntryType::Link, Some(target)) => {
            let target_parts = components(target);
            (target.starts_with(b"/") || target_parts.contains(&&b".."[..]))
                .then(|| format!("{shown}: hard link points outside the restore folder"))
        }
        _ => None,
    }
}

/// The non-empty, non-`.` components of a member path.
fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect()
}

/// Whether a relative symlink `target` in directory `base` (components below the restore
/// folder) resolves inside the restore folder, judging by its text.
fn stays_inside(base: &[&[u8]], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return false;
    }
    let mut depth = base.len();
    for part in components(target) {
        if part == b".." {
            let Some(up) = depth.checked_sub(1) else {
                return false;
            };
            depth = up;
        } else {
            depth += 1;
        }
    }
    true
}

/// Carries out `restore`.
pub fn restore(
    layout: &Layout,
    log: &Log,
    name: &[u8],
    to: Option<PathBuf>,
    force: bool,
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
    let count = check_members(open_archive(layout, name)?, &target, force).map_err(failed)?;
    fs::create_dir_all(&target).map_err(|err| failed(format!("can't create folder ({err})")))?;
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(
        1 << 20,
        open_archive(layout, name)?,
    ));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    archive.set_overwrite(force);
    archive.set_unpack_xattrs(false);
    archive
        .unpack(&target)
        .map_err(|err| failed(err.to_string()))?;
    println!("{display}: {count} members restored in {shown}");
    log.write(&format!("Restore done for {display} in {shown}"));
    Ok(())
}

/// Reads every member header before anything is written; returns the member count or the
/// first refusal.
fn check_members(
    archive: fs::File,
    target: &Path,
    force: bool,
) -> std::result::Result<u64, String> {
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, archive));
    let mut links = HashSet::new();
    let mut count = 0;
    let unreadable = |err: io::Error| format!("can't read the archive ({err})");
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        if let Some(reason) = refusal(&name, kind, link.as_deref(), &links) {
            return Err(reason);
        }
        if kind == EntryType::Symlink {
            links.insert(components(&name).join(&b'/'));
        }
        if !force && kind != EntryType::Directory {
            let path = target.join(OsStr::from_bytes(&name));
            if fs::symlink_metadata(&path).is_ok() {
                return Err(format!(
                    "{} already exists; add --force to overwrite",
                    path.display()
                ));
            }
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, kind: EntryType, link: Option<&str>) -> Option<String> {
        let links: HashSet<Vec<u8>> = [b"d/link".to_vec()].into();
        refusal(name.as_bytes(), kind, link.map(str::as_bytes), &links)
    }

    #[test]
    fn names_must_stay_inside() {
        assert_eq!(refused("d/f", EntryType::Regular, None), None);
        assert_eq!(refused("./d//f", EntryType::Regular, None), None);
        assert_eq!(
            refused("/etc/passwd", EntryType::Regular, None).unwrap(),
            "/etc/passwd: absolute member name"
        );
        assert_eq!(
            refused("d/../../x", EntryType::Regular, None).unwrap(),
            "d/../../x: member name contains '..'"
        );
        assert_eq!(
            refused("d/link/f", EntryType::Regular, None).unwrap(),
            "d/link/f: would be written through a symlink"
        );
    }

    #[test]
    fn links_must_point_inside() {
        assert_eq!(refused("d/s", EntryType::Symlink, Some("../x")), None);
        assert_eq!(refused("d/s", EntryType::Symlink, Some("e/../f")), None);
        assert!(refused("d/s", EntryType::Symlink, Some("../../x")).is_some());
        assert!(refused("d/s", EntryType::Symlink, Some("/etc")).is_some());
        assert_eq!(refused("d/h", EntryType::Link, Some("d/f")), None);
        assert!(refused("d/h", EntryType::Link, Some("../f")).is_some());
        assert!(refused("d/h", EntryType::Link, Some("/etc/shadow")).is_some());
    }
}
