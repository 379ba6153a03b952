//! Writing members under the restore folder relative to directory descriptors: every
//! directory is opened with `O_DIRECTORY|O_NOFOLLOW` from its parent's descriptor, every file
//! is created with `O_EXCL|O_NOFOLLOW`, and owner, mode and time are set through descriptors
//! this restore opened itself. No path is resolved twice and no link is ever followed, so
//! nothing outside the folder is touched, whatever others do inside it meanwhile.

use super::check::{Refusal, Selection, components};
use crate::archive::member::{self, Member, Sparse};
use crate::log::show_name;
use crate::progress::Progress;
use crate::sys::open::FileId;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, futimens, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, unlinkat};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Directories kept open at most; shallower ones are closed and reopened through `..`
/// (checked by identity) when the restore climbs back, so no depth exhausts descriptors.
const MAX_OPEN_DIRS: usize = 128;

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn is_kind(stat: &FileStat, kind: SFlag) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// Whether a walk may make the directories it does not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Create,
    Look,
}

struct Level {
    name: Vec<u8>,
    fd: Option<OwnedFd>,
    id: FileId,
}

/// The restore folder and the chain of open directories below it that the last member
/// needed; the next member reuses the part of the chain it shares.
pub struct Tree {
    root: OwnedFd,
    root_id: FileId,
    levels: Vec<Level>,
    shown_root: PathBuf,
    /// How many parts deep the last failed descent found a non-directory on disk.
    blocked_at: Option<usize>,
}

impl Tree {
    /// Opens the restore folder itself (a link there is the user's choice, as with `tar -C`).
    pub fn open(target: &Path) -> io::Result<Tree> {
        let root = nix::fcntl::open(
            target,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let root_id = FileId::of_stat(&fstat(&root)?);
        Ok(Tree {
            root,
            root_id,
            levels: Vec::new(),
            shown_root: target.to_path_buf(),
            blocked_at: None,
        })
    }

    /// `target/a/b` for messages.
    pub fn shown(&self, parts: &[&[u8]]) -> String {
        let mut path = self.shown_root.clone();
        for part in parts {
            path.push(std::ffi::OsStr::from_bytes(part));
        }
        show_name(path.as_os_str().as_bytes())
    }

    /// The directory the chain ends in.
    pub fn top(&self) -> BorrowedFd<'_> {
        match self.levels.last() {
            Some(level) => level.fd.as_ref().map_or(self.root.as_fd(), AsFd::as_fd),
            None => self.root.as_fd(),
        }
    }

    /// Makes the chain end in directory `dirs`, opening (and with [`Walk::Create`], making)
    /// what is missing. `Ok(false)` when looking and some part does not exist. A part that
    /// is a symlink or not a directory on disk is an error: nothing is written through it.
    pub fn descend(&mut self, dirs: &[&[u8]], walk: Walk) -> io::Result<bool> {
        let common = self
            .levels
            .iter()
            .zip(dirs)
            .take_while(|(level, part)| level.name == **part)
            .count();
        if common < self.levels.len() {
            if common > 0 {
                self.reopen(common - 1)?;
            }
            self.levels.truncate(common);
        }
        for (depth, part) in dirs.iter().enumerate().skip(common) {
            let opened = match openat(self.top(), *part, dir_flags(), Mode::empty()) {
                Err(Errno::ENOENT) if walk == Walk::Create => {
                    match mkdirat(self.top(), *part, Mode::from_bits_truncate(0o700)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => return Err(self.failure(&dirs[..=depth], errno)),
                    }
                    openat(self.top(), *part, dir_flags(), Mode::empty())
                }
                other => other,
            };
            let fd = match opened {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if walk == Walk::Look => return Ok(false),
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    self.blocked_at = Some(depth + 1);
                    return Err(io::Error::other(format!(
                        "{} is not a directory on disk; nothing is written through it",
                        self.shown(&dirs[..=depth])
                    )));
                }
                Err(errno) => return Err(self.failure(&dirs[..=depth], errno)),
            };
            let id = FileId::of_stat(&fstat(&fd)?);
            self.levels.push(Level {
                name: part.to_vec(),
                fd: Some(fd),
                id,
            });
            if let Some(far) = self.levels.len().checked_sub(MAX_OPEN_DIRS + 1) {
                self.levels[far].fd = None;
            }
        }
        Ok(true)
    }

    /// Reopens level `index` if it was closed for depth, climbing `..` from the first open
    /// level below it; each directory met must be the one that was there before.
    fn reopen(&mut self, index: usize) -> io::Result<()> {
        let Some(open) = (index..self.levels.len()).find(|&i| self.levels[i].fd.is_some()) else {
            return Ok(());
        };
        for i in (index..open).rev() {
            let below = self.levels[i + 1].fd.as_ref().map(AsFd::as_fd);
            let fd = below
                .ok_or_else(|| io::Error::other("directory chain broken"))
                .and_then(|below| Ok(openat(below, "..", dir_flags(), Mode::empty())?))?;
            if FileId::of_stat(&fstat(&fd)?) != self.levels[i].id {
                let parts: Vec<&[u8]> = self.levels[..=i].iter().map(|l| &l.name[..]).collect();
                return Err(io::Error::other(format!(
                    "{} was moved during the restore",
                    self.shown(&parts)
                )));
            }
            self.levels[i].fd = Some(fd);
        }
        Ok(())
    }

    fn failure(&self, parts: &[&[u8]], errno: Errno) -> io::Error {
        io::Error::other(format!("{}: {}", self.shown(parts), io::Error::from(errno)))
    }
}

/// The local owners of stored user and group names, looked up once each: GNU tar, run as
/// root, gives a restored file the local uid of its stored user name when that name exists
/// here, and the stored id otherwise (`--numeric-owner`: always the stored ids).
struct Owners {
    numeric: bool,
    users: HashMap<Vec<u8>, Option<Uid>>,
    groups: HashMap<Vec<u8>, Option<Gid>>,
}

impl Owners {
    fn new(numeric: bool) -> Owners {
        Owners {
            numeric,
            users: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    fn of(&mut self, member: &Member) -> io::Result<(Uid, Gid)> {
        let uid = Uid::from_raw(u32::try_from(member.uid).map_err(io::Error::other)?);
        let gid = Gid::from_raw(u32::try_from(member.gid).map_err(io::Error::other)?);
        if self.numeric {
            return Ok((uid, gid));
        }
        let user = local_id(&mut self.users, &member.uname, |name| {
            nix::unistd::User::from_name(name)
                .ok()?
                .map(|user| user.uid)
        });
        let group = local_id(&mut self.groups, &member.gname, |name| {
            nix::unistd::Group::from_name(name)
                .ok()?
                .map(|group| group.gid)
        });
        Ok((user.unwrap_or(uid), group.unwrap_or(gid)))
    }
}

/// The local id of a stored user or group `name`, looked up once and kept in `cache`; `None`
/// for an empty or non-UTF-8 name, or one this host does not know.
fn local_id<T: Copy>(
    cache: &mut HashMap<Vec<u8>, Option<T>>,
    name: &[u8],
    look_up: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    if let Some(id) = cache.get(name) {
        return *id;
    }
    let text = std::str::from_utf8(name)
        .ok()
        .filter(|name| !name.is_empty())?;
    *cache.entry(name.to_vec()).or_insert_with(|| look_up(text))
}

/// Owner, mode and time a member gets once written.
#[derive(Debug, Clone, Copy)]
struct Attributes {
    mode: u32,
    mtime: crate::archive::member::Time,
    /// Only when restoring as root.
    owner: Option<(Uid, Gid)>,
}

impl Attributes {
    fn of(member: &Member, owners: Option<&mut Owners>) -> io::Result<Attributes> {
        Ok(Attributes {
            mode: member.mode & 0o7777,
            mtime: member.mtime,
            owner: owners.map(|owners| owners.of(member)).transpose()?,
        })
    }

    fn times(&self) -> [TimeSpec; 2] {
        let nanos = i64::from(self.mtime.nanos);
        let time = TimeSpec::new(self.mtime.seconds, nanos);
        [time, time]
    }

    /// Sets all three on a file or directory through a descriptor this restore opened.
    fn apply_to(&self, fd: BorrowedFd) -> io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            fchown(fd, Some(uid), Some(gid))?;
        }
        // After chown, which clears set-id bits.
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(self.mode))?;
        let [atime, mtime] = self.times();
        futimens(fd, &atime, &mtime)?;
        Ok(())
    }

    /// Sets owner and time on the entry `name` of `dir`, a symlink, FIFO or device of
    /// `format` this restore just made (its mode was given when it was made). The entry is
    /// pinned first with an `O_PATH|O_NOFOLLOW` descriptor and checked to still be of that
    /// type: someone who swapped it for a hard link to another file meanwhile gets an error,
    /// not that file's owner changed.
    fn apply_at(&self, dir: BorrowedFd, name: &[u8], format: SFlag) -> io::Result<()> {
        let fd = openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        if !is_kind(&fstat(&fd)?, format) {
            return Err(io::Error::other("replaced while being restored"));
        }
        if let Some((uid, gid)) = self.owner {
            fchownat(&fd, "", Some(uid), Some(gid), AtFlags::AT_EMPTY_PATH)?;
        }
        // An O_PATH descriptor takes no futimens; its /proc link names this very inode.
        // Without /proc the time is left as it is rather than set by name.
        let [atime, mtime] = self.times();
        let pinned = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            pinned.as_str(),
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        ) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(errno.into()),
        }
    }
}

/// A directory's attributes, set once everything inside it is written.
struct Deferred {
    parts: Vec<Vec<u8>>,
    id: FileId,
    attributes: Attributes,
}

/// Puts the process umask aside while the restore runs, so FIFOs and devices get the
/// archive's mode when they are made; restored on drop.
struct UmaskCleared(Mode);

impl UmaskCleared {
    fn new() -> UmaskCleared {
        UmaskCleared(nix::sys::stat::umask(Mode::empty()))
    }
}

impl Drop for UmaskCleared {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// How often the filesystem is written back while a restore makes files: often enough that
/// the disk never idles, seldom enough that each round has work to batch.
const WRITEBACK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes every member of the (already checked) archive under `target`, which exists, and
/// returns once they are on disk.
pub fn extract(
    archive: impl Read + Seek,
    target: &Path,
    force: bool,
    selection: &Selection,
    redirect: &super::Redirect,
    numeric_owner: bool,
    progress: &mut Progress,
) -> io::Result<()> {
    let _umask = UmaskCleared::new();
    // Owners are set only as root: by the stored names where they exist here, as GNU tar does.
    let mut owners = nix::unistd::geteuid()
        .is_root()
        .then(|| Owners::new(numeric_owner));
    let mut tree = Tree::open(target)?;
    let writeback = crate::sys::io::Writeback::start(tree.top(), WRITEBACK_EVERY)?;
    let mut archive = tar::Archive::new(archive);
    let mut deferred = Vec::new();
    let mut buffer = vec![0u8; 256 << 10];
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        if crate::archive::check::is_record(entry.header().entry_type()) {
            continue;
        }
        let member = Member::read(&mut entry)?;
        if member.not_a_file().is_some() {
            continue;
        }
        let kind = member.kind;
        let mut name = member.name.clone();
        if !selection.covers(&name) {
            // Restored anyway when a link asked for needs its data: under the link's name.
            match redirect.get(&super::check::key(&name)) {
                Some(link) => name.clone_from(link),
                None => continue,
            }
        }
        progress.step(&name, entry.raw_header_position() + entry.size());
        let attributes = Attributes::of(&member, owners.as_mut())?;
        let parts = components(&name);
        let Some((last, dirs)) = parts.split_last() else {
            if kind == EntryType::Directory {
                deferred.push(Deferred {
                    parts: Vec::new(),
                    id: tree.root_id,
                    attributes,
                });
            }
            continue;
        };
        tree.descend(dirs, Walk::Create)?;
        let shown = || tree.shown(&parts);
        let wrap = |err: io::Error| io::Error::other(format!("{}: {err}", shown()));
        match kind {
            EntryType::Directory => {
                let id = make_directory(&tree, last, force).map_err(wrap)?;
                deferred.push(Deferred {
                    parts: parts.iter().map(|part| part.to_vec()).collect(),
                    id,
                    attributes,
                });
            }
            EntryType::Link => {
                let stored = member.link.as_deref().unwrap_or_default();
                if let Some(source) = link_source(redirect, stored, &parts) {
                    hard_link(&mut tree, &parts, &source, force)?;
                }
            }
            _ => {
                clear_place(&tree, last, force).map_err(wrap)?;
                write_member(&tree, last, &member, &mut entry, attributes, &mut buffer)
                    .map_err(|err| io::Error::other(format!("{}: {err}", tree.shown(&parts))))?;
            }
        }
    }
    crate::debug_points::pause("restore-metadata");
    finish_directories(&mut tree, deferred)?;
    writeback.finish().map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("can't get the restored files onto the disk ({err})"),
        )
    })
}

/// Makes directory `name` in the chain's last directory, or takes the one there; a
/// non-directory there is replaced only with `force`. Returns the directory's identity.
fn make_directory(tree: &Tree, name: &[u8], force: bool) -> io::Result<FileId> {
    match fstatat(tree.top(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is_kind(&stat, SFlag::S_IFDIR) => return Ok(FileId::of_stat(&stat)),
        Ok(_) if force => unlinkat(tree.top(), name, UnlinkatFlags::NoRemoveDir)?,
        Ok(_) => {
            return Err(io::Error::other(
                "exists and is not a directory; add --force to replace it",
            ));
        }
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno.into()),
    }
    mkdirat(tree.top(), name, Mode::from_bits_truncate(0o700))?;
    let stat = fstatat(tree.top(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if !is_kind(&stat, SFlag::S_IFDIR) {
        return Err(io::Error::other("replaced while being restored"));
    }
    Ok(FileId::of_stat(&stat))
}

/// Removes what stands at `name` before a non-directory member is made there, with `force`;
/// without it, whatever is there makes the creation below fail.
fn clear_place(tree: &Tree, name: &[u8], force: bool) -> io::Result<()> {
    if !force {
        return Ok(());
    }
    match fstatat(tree.top(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is_kind(&stat, SFlag::S_IFDIR) => Err(io::Error::other(
            "is a directory on disk; not replaced by a file",
        )),
        Ok(_) => Ok(unlinkat(tree.top(), name, UnlinkatFlags::NoRemoveDir)?),
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Makes a file, symlink, FIFO or device member in the chain's last directory.
fn write_member(
    tree: &Tree,
    name: &[u8],
    member: &Member,
    entry: &mut tar::Entry<impl Read>,
    attributes: Attributes,
    buffer: &mut [u8],
) -> io::Result<()> {
    let kind = member.kind;
    let dir = tree.top();
    let node = |format: SFlag, device| {
        mknodat(
            dir,
            name,
            format,
            Mode::from_bits_truncate(attributes.mode),
            device,
        )
    };
    match kind {
        EntryType::Symlink => {
            let target = entry.link_name_bytes().unwrap_or_default();
            nix::unistd::symlinkat(&*target, dir, name)?;
            attributes.apply_at(dir, name, SFlag::S_IFLNK)
        }
        EntryType::Fifo => {
            node(SFlag::S_IFIFO, 0)?;
            attributes.apply_at(dir, name, SFlag::S_IFIFO)
        }
        EntryType::Char | EntryType::Block => {
            let header = entry.header();
            let major = header.device_major()?.unwrap_or(0);
            let minor = header.device_minor()?.unwrap_or(0);
            let format = if kind == EntryType::Char {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            node(format, nix::sys::stat::makedev(major.into(), minor.into()))?;
            attributes.apply_at(dir, name, format)
        }
        _ => {
            let fd = openat(
                dir,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let mut file = File::from(fd);
            match &member.sparse {
                Some(sparse) => copy_pax_sparse(entry, &mut file, sparse)?,
                None => copy_data(entry, &mut file, kind == EntryType::GNUSparse, buffer)?,
            }
            attributes.apply_to(file.as_fd())
        }
    }
}

/// Writes a GNU pax sparse member's data regions where its map puts them, leaving the rest
/// a hole, and gives the file its real size, as GNU tar does for formats 0.0, 0.1 and 1.0.
fn copy_pax_sparse(entry: &mut impl Read, file: &mut File, sparse: &Sparse) -> io::Result<()> {
    let extents = member::sparse_extents(sparse, entry)?;
    for (offset, length) in extents {
        file.seek(SeekFrom::Start(offset))?;
        let copied = io::copy(&mut entry.by_ref().take(length), file)?;
        if copied != length {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the sparse map names more data than the member holds",
            ));
        }
    }
    file.set_len(sparse.real_size)
}

/// Copies a member's data into `file`; for a sparse member, runs of zeros become holes again.
fn copy_data(
    entry: &mut impl Read,
    file: &mut File,
    sparse: bool,
    buffer: &mut [u8],
) -> io::Result<()> {
    let mut length = 0u64;
    loop {
        let n = match entry.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if sparse && buffer[..n].iter().all(|&b| b == 0) {
            file.seek(SeekFrom::Current(n as i64))?;
        } else {
            file.write_all(&buffer[..n])?;
        }
        length += n as u64;
    }
    if sparse {
        file.set_len(length)?;
    }
    Ok(())
}

/// What hard link `parts` to `stored` links to in this restore: `stored`, or the link that
/// got its data in a partial restore; `None` when `parts` is that link itself.
fn link_source(redirect: &super::Redirect, stored: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
    match redirect.get(&super::check::key(stored)) {
        Some(substitute) if components(substitute) == parts => None,
        Some(substitute) => Some(substitute.clone()),
        None => Some(stored.to_vec()),
    }
}

/// Links member `parts` to `source`, a member this restore made before (the check pass saw
/// to that); the link itself is never followed.
fn hard_link(tree: &mut Tree, parts: &[&[u8]], source: &[u8], force: bool) -> io::Result<()> {
    let source_parts = components(source);
    let Some((source_name, source_dirs)) = source_parts.split_last() else {
        return Err(io::Error::other(format!(
            "{}: hard link without a target",
            tree.shown(parts)
        )));
    };
    if !tree.descend(source_dirs, Walk::Look)? {
        return Err(io::Error::other(format!(
            "{}: its target is gone",
            tree.shown(parts)
        )));
    }
    let source_dir = tree.top().try_clone_to_owned()?;
    let (name, dirs) = parts.split_last().expect("a member below the folder");
    tree.descend(dirs, Walk::Create)?;
    let wrap = |err: io::Error| io::Error::other(format!("{}: {err}", tree.shown(parts)));
    clear_place(tree, name, force).map_err(wrap)?;
    nix::unistd::linkat(
        &source_dir,
        *source_name,
        tree.top(),
        *name,
        AtFlags::empty(),
    )
    .map_err(|errno| wrap(errno.into()))
}

/// Sets each directory's owner, mode and time, deepest first (so a read-only directory is
/// closed only after all it holds is written), through a descriptor opened without
/// following links and checked to be the directory this restore made or took.
fn finish_directories(tree: &mut Tree, mut deferred: Vec<Deferred>) -> io::Result<()> {
    deferred.sort_by(|a, b| b.parts.cmp(&a.parts));
    for directory in deferred {
        let parts: Vec<&[u8]> = directory.parts.iter().map(Vec::as_slice).collect();
        let shown = tree.shown(&parts);
        let fd = match parts.split_last() {
            None => tree.root.try_clone()?,
            Some((name, dirs)) => {
                if !tree.descend(dirs, Walk::Look)? {
                    return Err(io::Error::other(format!(
                        "{shown} was removed during the restore"
                    )));
                }
                openat(tree.top(), *name, dir_flags(), Mode::empty()).map_err(|errno| {
                    io::Error::other(format!(
                        "{shown} was replaced during the restore ({})",
                        io::Error::from(errno)
                    ))
                })?
            }
        };
        if FileId::of_stat(&fstat(&fd)?) != directory.id {
            return Err(io::Error::other(format!(
                "{shown} was replaced during the restore; its owner and mode are not set"
            )));
        }
        directory
            .attributes
            .apply_to(fd.as_fd())
            .map_err(|err| io::Error::other(format!("{shown}: {err}")))?;
    }
    Ok(())
}

/// Whether anything already on disk stands in the way of member `parts` of shape `shape`:
/// the check pass's look at the restore folder, through the same chain, creating nothing.
/// `replaced` tells which paths an earlier directory member replaces when forced.
pub fn conflict(
    tree: &mut Tree,
    parts: &[&[u8]],
    shape: super::check::Shape,
    force: bool,
    replaced: &dyn Fn(&[&[u8]]) -> bool,
) -> Result<(), Refusal> {
    use super::check::Shape;
    let Some((name, dirs)) = parts.split_last() else {
        return Ok(());
    };
    tree.blocked_at = None;
    match tree.descend(dirs, Walk::Look) {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        // A link or file where a directory member of the archive goes: with --force that
        // member replaced it, and nothing below it exists yet.
        Err(_)
            if force
                && tree
                    .blocked_at
                    .is_some_and(|depth| replaced(&dirs[..depth])) =>
        {
            return Ok(());
        }
        Err(err) => return Err(Refusal::DiskTrouble(err.to_string())),
    }
    let shown = || tree.shown(parts);
    match fstatat(tree.top(), *name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(Refusal::DiskTrouble(format!(
            "{}: can't check ({})",
            shown(),
            io::Error::from(errno)
        ))),
        Ok(stat) if is_kind(&stat, SFlag::S_IFDIR) => match shape {
            Shape::Directory => Ok(()),
            _ => Err(Refusal::DirectoryOnDisk(shown())),
        },
        Ok(_) if force => Ok(()),
        Ok(_) if shape == Shape::Directory => Err(Refusal::NotADirectoryOnDisk(shown())),
        Ok(_) => Err(Refusal::Exists(shown())),
    }
}
