//! `backup_manager restore NAME [--to DIR] [--force]`: extracts `backups/NAME.tar` into
//! `restore/NAME/` (or DIR) after checking every member first: no absolute names, no `..`,
//! no link leading out of DIR, nothing written through a link, no existing file overwritten
//! unless forced. Modes and mtimes are kept, and owners when run as root.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::verify::open_archive;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Why a member may not be extracted, if it may not. `links` holds the symlink members seen
/// so far: nothing may be extracted through one of them. Symlinks leading out of the restore
/// folder are refused unless `outside_links` allows them (a backup of /etc has many).
pub fn refusal(
    name: &[u8],
    kind: EntryType,
    link: Option<&[u8]>,
    links: &HashSet<Vec<u8>>,
    outside_links: bool,
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
            (!outside_links && !stays_inside(base, target)).then(|| {
                format!(
                    "{shown}: symlink points outside the restore folder ({}); add --outside-links to restore such links as they are",
                    show_bytes(target)
                )
            })
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
    let count = check_members(open_archive(layout, name)?, &target, force, outside_links)
        .map_err(failed)?;
    fs::create_dir_all(&target).map_err(|err| failed(format!("can't create folder ({err})")))?;
    let root = target
        .canonicalize()
        .map_err(|err| failed(format!("can't resolve folder ({err})")))?;
    extract(open_archive(layout, name)?, &root, force).map_err(|err| failed(err.to_string()))?;
    println!("{display}: {count} members restored in {shown}");
    log.write(&format!("Restore done for {display} in {shown}"));
    Ok(())
}

/// Metadata to put on a directory once everything inside it is written.
struct DirectoryMeta {
    path: PathBuf,
    mode: u32,
    mtime: i64,
    owner: Option<(u32, u32)>,
}

/// Extracts every member under `root`. Files and links go through the tar crate, which
/// also refuses to write through symlinks on disk; directories, fifos and devices are made
/// here, because the crate skips directory mtimes and turns fifos into plain files.
fn extract(archive: fs::File, root: &Path, force: bool) -> io::Result<()> {
    let as_root = nix::unistd::geteuid().is_root();
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, archive));
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(as_root);
    archive.set_overwrite(force);
    archive.set_unpack_xattrs(false);
    let mut directories = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let header = entry.header();
        let kind = header.entry_type();
        if !matches!(
            kind,
            EntryType::Directory | EntryType::Fifo | EntryType::Char | EntryType::Block
        ) {
            entry.unpack_in(root)?;
            continue;
        }
        let mode = header.mode()? & 0o7777;
        let mtime = i64::try_from(header.mtime()?).unwrap_or(0);
        let owner = if as_root {
            Some((
                u32::try_from(header.uid()?).unwrap_or(0),
                u32::try_from(header.gid()?).unwrap_or(0),
            ))
        } else {
            None
        };
        let path = place(root, &entry.path_bytes())?;
        if path == root && kind != EntryType::Directory {
            continue;
        }
        if kind == EntryType::Directory {
            if fs::symlink_metadata(&path).is_err() {
                fs::create_dir(&path)?;
            }
            directories.push(DirectoryMeta {
                path,
                mode,
                mtime,
                owner,
            });
            continue;
        }
        if force && fs::symlink_metadata(&path).is_ok() {
            fs::remove_file(&path)?;
        }
        let permissions = Mode::from_bits_truncate(mode);
        match kind {
            EntryType::Fifo => nix::unistd::mkfifo(&path, permissions)?,
            _ => {
                let format = if kind == EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let major = header.device_major()?.unwrap_or(0);
                let minor = header.device_minor()?.unwrap_or(0);
                let device = nix::sys::stat::makedev(major.into(), minor.into());
                nix::sys::stat::mknod(&path, format, permissions, device)?;
            }
        }
        finish(&path, mode, mtime, owner)?;
    }
    // Deepest first, so a read-only directory is closed only after all it holds is written.
    directories.sort_by(|a, b| b.path.cmp(&a.path));
    for directory in directories {
        finish(
            &directory.path,
            directory.mode,
            directory.mtime,
            directory.owner,
        )?;
    }
    Ok(())
}

/// The path of member `name` under `root`, with its missing parents created. A parent that
/// is a symlink or not a directory on disk stops the restore: nothing is written through it.
fn place(root: &Path, name: &[u8]) -> io::Result<PathBuf> {
    let parts = components(name);
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(OsStr::from_bytes(part));
        if i + 1 == parts.len() {
            break;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory on disk; nothing is written through it",
                    path.display()
                )));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => fs::create_dir(&path)?,
            Err(err) => return Err(err),
        }
    }
    Ok(path)
}

/// Sets the mode, owner and mtime of a file this restore made.
fn finish(path: &Path, mode: u32, mtime: i64, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )?;
    }
    // After chown, which clears set-id bits.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Reads every member header before anything is written; returns the member count or the
/// first refusal.
fn check_members(
    archive: fs::File,
    target: &Path,
    force: bool,
    outside_links: bool,
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
        if let Some(reason) = refusal(&name, kind, link.as_deref(), &links, outside_links) {
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
        refusal(
            name.as_bytes(),
            kind,
            link.map(str::as_bytes),
            &links,
            false,
        )
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
        let links = HashSet::new();
        let allowed =
            |target: &[u8]| refusal(b"d/s", EntryType::Symlink, Some(target), &links, true);
        assert_eq!(allowed(b"/etc"), None);
        assert_eq!(allowed(b"../../x"), None);
        assert_eq!(refused("d/h", EntryType::Link, Some("d/f")), None);
        assert!(refused("d/h", EntryType::Link, Some("../f")).is_some());
        assert!(refused("d/h", EntryType::Link, Some("/etc/shadow")).is_some());
    }
}
