//! Walks a live folder depth-first in name order and streams each entry into the archive,
//! skipping (with a warning) what vanishes, cannot be read or cannot be stored.
//!
//! Every lookup is relative to an open directory (openat, fstatat), so a path is never
//! resolved twice and trees deeper than PATH_MAX are archived whole.

use super::WriteError;
use super::exclude::{CACHE_TAG, CACHE_TAG_SIGNATURE, Rules};
use super::header::device_number;
use super::header::{Extent, Kind, Meta};
use super::incremental::{self, Held, SnapshotReader, SnapshotWriter};
use super::member_name::{
    as_directory, push_child, root_member, safer_name, trim_trailing_slashes,
};
use super::read_ahead::{self, ReadAhead};
use super::stream::TarStream;
use crate::log::show_bytes;
use crate::progress::Progress;
use crate::sys::open::FileId;
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{Gid, Group, Uid, User, Whence, lseek};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Directories kept open at most. Deeper ones are closed and reopened through `..` on the
/// way back up, so no tree can exhaust the file descriptor limit.
const MAX_OPEN_DIRS: usize = 128;

/// Files the walk must leave out: the archive being written, backupbox's own working
/// files in the backups folder, and the contents of backupbox's own folders.
pub struct Exclusions {
    pub output: FileId,
    pub backups_dir: Option<FileId>,
    pub is_internal_name: fn(&[u8]) -> bool,
    /// Folders stored as empty directories, with what they are: a plan folder that holds the
    /// base directory must not put every earlier archive (or restore) into each new archive.
    pub own_folders: Vec<(FileId, &'static str)>,
    /// What the settings leave out.
    pub rules: Rules,
}

/// The entries of one directory, sorted by name bytes so archives are reproducible, with
/// all names in one buffer rather than one allocation each.
#[derive(Default)]
struct Children {
    names: Vec<u8>,
    entries: Vec<Child>,
    next: usize,
}

struct Child {
    start: usize,
    end: usize,
    /// The directory entry says regular file, so the file can be opened without a stat first.
    likely_file: bool,
    /// In an incremental archive, its dumpdir flag (`Y`, `N`, `D`), or 0 for an entry the
    /// dumpdir leaves out; always 0 otherwise.
    flag: u8,
    inode: u64,
}

impl Children {
    fn read(dir: &OwnedFd) -> io::Result<Children> {
        let mut children = Children::default();
        let mut stream = Dir::from_fd(dir.try_clone()?)?;
        for entry in stream.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let start = children.names.len();
            children.names.extend_from_slice(name);
            children.entries.push(Child {
                start,
                end: children.names.len(),
                likely_file: entry.file_type() == Some(Type::File),
                flag: 0,
                inode: 0,
            });
        }
        let names = &children.names;
        children
            .entries
            .sort_unstable_by(|a, b| names[a.start..a.end].cmp(&names[b.start..b.end]));
        Ok(children)
    }

    /// The dumpdir flag of the entry [`Children::next`] gives next.
    fn peek_flag(&self) -> Option<u8> {
        self.entries.get(self.next).map(|child| child.flag)
    }

    fn next(&mut self) -> Option<(&[u8], &Child)> {
        let child = self.entries.get(self.next)?;
        self.next += 1;
        Some((&self.names[child.start..child.end], child))
    }

    fn skip_rest(&mut self) {
        self.next = self.entries.len();
    }

    fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.entries
            .iter()
            .map(|child| &self.names[child.start..child.end])
    }

    /// The entries that look like files from index `from` on, at most [`read_ahead::BATCH`]
    /// looked at, with their indexes; and the index to go on from.
    fn files_from(&self, from: usize) -> (Vec<(usize, Vec<u8>)>, usize) {
        let end = self.entries.len().min(from + read_ahead::BATCH);
        let files = (from..end)
            .filter(|&index| self.entries[index].likely_file)
            .map(|index| {
                let child = &self.entries[index];
                (index, self.names[child.start..child.end].to_vec())
            })
            .collect();
        (files, end)
    }

    /// Keeps only the entry called `name`; returns how many were dropped.
    fn keep_only(&mut self, name: &[u8]) -> u64 {
        let before = self.entries.len();
        let names = &self.names;
        self.entries
            .retain(|child| &names[child.start..child.end] == name);
        (before - self.entries.len()) as u64
    }
}

/// A directory being walked.
struct Frame {
    /// Closed while the walk is more than [`MAX_OPEN_DIRS`] deeper.
    dir: Option<OwnedFd>,
    id: FileId,
    /// Length of this directory's path in [`Walker::member_path`].
    member_len: usize,
    children: Children,
    /// At an incremental full: the files it holds, written to the snapshot once they are
    /// all stored (before the first subdirectory, since files come first).
    held: Option<Held>,
    /// Entries before this index have been handed to the readers ahead.
    read_ahead_from: usize,
}

pub struct Walker<'a> {
    stream: TarStream<'a>,
    exclude: Exclusions,
    warn: &'a mut dyn FnMut(String),
    progress: &'a mut Progress,
    /// Entries left out by the exclude rules.
    left_out: u64,
    /// The folder's device, for `one_file_system`, and its path's length in `member_path`.
    root_dev: u64,
    root_len: usize,
    owners: Owners,
    /// Path of the entry being stored, before GNU's stripping; one buffer for the whole walk.
    member_path: Vec<u8>,
    /// The member name each file with several links was first stored under.
    first_names: std::collections::HashMap<FileId, Vec<u8>>,
    /// Threads that warm the files the walk stores next; none with one reader.
    read_ahead: Option<ReadAhead>,
    /// How long storing a file takes lately: the readers are only given work when files come
    /// from the disk, not from the page cache, where they would only add system calls.
    file_time: read_ahead::Pace,
    /// Set when the archive is a GNU incremental one.
    level: Option<Level>,
}

/// What kind of GNU incremental archive the walk writes.
pub enum Level {
    /// A level 0: everything, and the snapshot of what it holds.
    Full(SnapshotWriter<std::io::BufWriter<File>>),
    /// A level 1: what changed since the full that the snapshot describes, headed by a
    /// volume label naming that full.
    One {
        against: SnapshotReader<std::io::BufReader<File>>,
        label: Vec<u8>,
    },
}

impl<'a> Walker<'a> {
    pub fn new(
        stream: TarStream<'a>,
        exclude: Exclusions,
        warn: &'a mut dyn FnMut(String),
        progress: &'a mut Progress,
        read_ahead: Option<ReadAhead>,
    ) -> Self {
        Walker {
            stream,
            exclude,
            warn,
            progress,
            left_out: 0,
            root_dev: 0,
            root_len: 0,
            owners: Owners::default(),
            member_path: Vec::new(),
            first_names: std::collections::HashMap::new(),
            read_ahead,
            file_time: read_ahead::Pace::default(),
            level: None,
        }
    }

    /// Makes the archive a GNU incremental one.
    pub fn incremental(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// Hands the readers the next files of `frame`, the directory the walk is in now.
    fn read_ahead_in(&self, frame: &mut Frame) {
        let (Some(readers), Some(dir)) = (&self.read_ahead, &frame.dir) else {
            return;
        };
        if !self.file_time.is_slow() {
            return;
        }
        let Ok(dir) = dir.try_clone() else {
            return;
        };
        let from = frame.read_ahead_from.max(frame.children.next);
        let (files, next) = frame.children.files_from(from);
        frame.read_ahead_from = next;
        readers.follow(std::sync::Arc::new(dir), files.into_iter());
    }

    /// The walk got to entry `index` of `frame`; more of its files go to the readers when
    /// those handed over are used up.
    fn read_ahead_passed(&self, frame: &mut Frame, index: usize) {
        let Some(readers) = &self.read_ahead else {
            return;
        };
        if readers.passed(index) == 0 && frame.read_ahead_from < frame.children.entries.len() {
            self.read_ahead_in(frame);
        }
    }

    /// The stream, to finish the archive after the walk, the count of entries left out, and
    /// the level it wrote.
    pub fn finish(self) -> (TarStream<'a>, u64, Option<Level>) {
        (self.stream, self.left_out, self.level)
    }

    /// The path of the entry in `member_path` below the folder: a snapshot's key.
    fn below_folder(&self) -> Vec<u8> {
        let below = self.member_path.get(self.root_len..).unwrap_or_default();
        below.strip_prefix(b"/").unwrap_or(below).to_vec()
    }

    /// Gives each entry of the directory `dir` (whose path is in `member_path`) its dumpdir
    /// flag, puts the files ahead of the subdirectories, and returns the dumpdir.
    fn plan_children(&mut self, dir: BorrowedFd, children: &mut Children) -> Vec<u8> {
        let path = self.below_folder();
        let (held, since) = match &mut self.level {
            Some(Level::One { against, .. }) => {
                // Read trouble here means the rest is stored whole: more, never less.
                let held = against.find(&path).ok().flatten();
                (held, against.baseline.started)
            }
            _ => (None, (i64::MIN, 0)),
        };
        let full = matches!(self.level, Some(Level::Full(_)));
        let dir_len = self.member_path.len();
        let in_backups = self.exclude.backups_dir.is_some()
            && fstat(dir).ok().map(|stat| FileId::of_stat(&stat)) == self.exclude.backups_dir;
        for index in 0..children.entries.len() {
            let child = &children.entries[index];
            let name = children.names[child.start..child.end].to_vec();
            self.member_path.truncate(dir_len);
            push_child(&mut self.member_path, &name);
            if (in_backups && (self.exclude.is_internal_name)(&name)) || self.excluded_by_pattern()
            {
                continue;
            }
            let Ok(stat) = fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let (flag, likely_file) = if is_kind(&stat, SFlag::S_IFDIR) {
                (incremental::DIRECTORY, false)
            } else if is_kind(&stat, SFlag::S_IFSOCK) {
                (0, false)
            } else {
                let changed = [
                    (
                        stat.st_mtime,
                        u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
                    ),
                    (
                        stat.st_ctime,
                        u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
                    ),
                ];
                let held = held.as_ref().and_then(|held| held.inode(&name));
                let stored = full || incremental::stores(held, stat.st_ino, changed, since);
                let flag = if stored {
                    incremental::STORED
                } else {
                    incremental::UNCHANGED
                };
                (flag, stored && is_kind(&stat, SFlag::S_IFREG))
            };
            let child = &mut children.entries[index];
            (child.flag, child.likely_file, child.inode) = (flag, likely_file, stat.st_ino);
        }
        self.member_path.truncate(dir_len);
        let names = &children.names;
        let listing = incremental::dumpdir(
            children
                .entries
                .iter()
                .filter(|child| child.flag != 0)
                .map(|child| (child.flag, &names[child.start..child.end])),
        );
        children
            .entries
            .sort_by_key(|child| child.flag == incremental::DIRECTORY);
        listing
    }

    /// The member a directory is stored as: with its dumpdir in an incremental archive
    /// (`children` are those it stores, `None` when its contents are not archived).
    fn directory_kind(&mut self, contents: Option<(BorrowedFd, &mut Children)>) -> Kind {
        match (&self.level, contents) {
            (None, _) => Kind::Directory,
            (Some(_), Some((dir, children))) => Kind::DumpDir {
                listing: self.plan_children(dir, children),
            },
            (Some(_), None) => Kind::DumpDir { listing: vec![0] },
        }
    }

    /// The snapshot record of a directory of an incremental full, once its files are stored.
    fn write_held(&mut self, frame: &mut Frame) -> Result<(), WriteError> {
        if let (Some(held), Some(Level::Full(snapshot))) = (frame.held.take(), &mut self.level) {
            snapshot.record(&held)?;
        }
        Ok(())
    }

    /// A frame's snapshot record to fill, at an incremental full.
    fn new_held(&self) -> Option<Held> {
        matches!(self.level, Some(Level::Full(_))).then(|| Held {
            path: self.below_folder(),
            files: Vec::new(),
        })
    }

    /// Whether an `exclude` pattern leaves out the entry `name` whose path is in `member_path`.
    /// Whether the entry whose path is in `member_path` is left out by a pattern, tried
    /// against its member name as stored.
    fn excluded_by_pattern(&self) -> bool {
        if self.exclude.rules.patterns.is_empty() {
            return false;
        }
        let member = safer_name(&self.member_path);
        self.exclude
            .rules
            .excludes(member.strip_suffix(b"/").unwrap_or(member))
    }

    /// Opens the folder and stores its own member (after a level-1's label): the walk's
    /// first frame.
    fn root(&mut self, root: &Path, folder: &[u8]) -> Result<Frame, WriteError> {
        let opened = nix::fcntl::open(root, dir_flags() - OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(|errno| match errno {
                Errno::ENOENT => WriteError::FolderNotFound,
                Errno::ENOTDIR => WriteError::NotADirectory,
                _ => WriteError::FolderUnreadable(errno.into()),
            })?;
        let (dir, stat, mut children) = fstat(&opened)
            .map_err(io::Error::from)
            .and_then(|stat| Ok((stat, Children::read(&opened)?)))
            .map(|(stat, children)| (opened, stat, children))
            .map_err(WriteError::FolderUnreadable)?;
        self.member_path = trim_trailing_slashes(folder);
        self.root_dev = stat.st_dev;
        self.root_len = self.member_path.len();
        if let Some(Level::One { label, .. }) = &self.level {
            let label = label.clone();
            // Dated when it was made, as GNU tar dates its labels.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(0));
            let meta = Meta {
                mtime: now,
                ..Meta::default()
            };
            self.stream.header(&label, &Kind::VolumeLabel, &meta)?;
        }
        let kind = self.directory_kind(Some((dir.as_fd(), &mut children)));
        self.stream
            .header(&root_member(folder), &kind, &self.owners.meta(&stat))?;
        self.progress
            .step(&self.member_path, self.stream.position());
        Ok(Frame {
            dir: Some(dir),
            id: FileId::of_stat(&stat),
            member_len: self.member_path.len(),
            children,
            read_ahead_from: 0,
            held: self.new_held(),
        })
    }

    /// Archives `root` (the plan folder resolved on disk) under the member names GNU tar
    /// would give `folder`. The root itself is followed if it is a symlink; nothing else is.
    pub fn archive(&mut self, root: &Path, folder: &[u8]) -> Result<(), WriteError> {
        let mut stack = vec![self.root(root, folder)?];
        self.read_ahead_in(&mut stack[0]);
        while let Some(frame) = stack.last_mut() {
            let index = frame.children.next;
            if index < frame.children.entries.len() {
                self.read_ahead_passed(frame, index);
            }
            // At an incremental full a directory's files are all stored before its first
            // subdirectory: its snapshot record is complete.
            if frame.children.peek_flag() == Some(incremental::DIRECTORY) {
                self.write_held(frame)?;
            }
            let Some((name, child)) = frame.children.next() else {
                let mut done = stack.pop();
                if let Some(done) = done.as_mut() {
                    self.write_held(done)?;
                }
                if let (Some(parent), Some(done)) = (stack.last_mut(), done) {
                    self.reopen(parent, &done);
                    parent.read_ahead_from = 0;
                    self.read_ahead_in(parent);
                }
                continue;
            };
            let (likely_file, flag, inode) = (child.likely_file, child.flag, child.inode);
            if flag == incremental::UNCHANGED {
                continue;
            }
            // Only a directory whose reopening failed is closed here, and its rest is skipped.
            let Some(dir) = frame.dir.as_ref() else {
                continue;
            };
            if Some(frame.id) == self.exclude.backups_dir && (self.exclude.is_internal_name)(name) {
                continue;
            }
            self.member_path.truncate(frame.member_len);
            push_child(&mut self.member_path, name);
            if self.excluded_by_pattern() {
                self.left_out += entries_at(dir.as_fd(), name);
                continue;
            }
            // Timed only for the readers ahead: without them nobody asks.
            let started = self.read_ahead.as_ref().map(|_| std::time::Instant::now());
            let members = self.stream.members();
            let child = self.entry(dir.as_fd(), name, likely_file)?;
            if let Some(started) = started.filter(|_| likely_file) {
                self.file_time.add(started.elapsed());
            }
            if let Some(held) = frame.held.as_mut()
                && flag == incremental::STORED
                && self.stream.members() > members
            {
                held.files.push((name.to_vec(), inode));
            }
            self.progress
                .step(&self.member_path, self.stream.position());
            let Some(child) = child else {
                continue;
            };
            // A bind mount can put a directory inside itself; descending would never end.
            if stack.iter().any(|ancestor| ancestor.id == child.id) {
                self.warning("directory loop (a bind mount?); its contents are not archived again");
                continue;
            }
            stack.push(child);
            if let Some(far) = stack.len().checked_sub(MAX_OPEN_DIRS + 1) {
                stack[far].dir = None;
            }
            if let Some(entered) = stack.last_mut() {
                self.read_ahead_in(entered);
            }
        }
        Ok(())
    }

    /// Reopens `parent` after `done`, its child, is finished, if it was closed for depth.
    /// A parent that is no longer where it was keeps what was stored and skips the rest.
    fn reopen(&mut self, parent: &mut Frame, done: &Frame) {
        if parent.dir.is_some() {
            return;
        }
        let reopened = done
            .dir
            .as_ref()
            .and_then(|child| openat(child, "..", dir_flags(), Mode::empty()).ok())
            .filter(|dir| fstat(dir).is_ok_and(|stat| FileId::of_stat(&stat) == parent.id));
        if reopened.is_none() {
            self.member_path.truncate(parent.member_len);
            self.warning("moved while being archived; the rest of its contents is not archived");
            parent.children.skip_rest();
        }
        parent.dir = reopened;
    }

    /// Stores the entry `name` of `parent` (its path is in `member_path`); returns the frame
    /// to descend into when it is a readable directory.
    fn entry(
        &mut self,
        parent: BorrowedFd,
        name: &[u8],
        likely_file: bool,
    ) -> Result<Option<Frame>, WriteError> {
        if likely_file {
            // The common case: one open and one fstat, no lookup by name before.
            match openat(parent, name, file_flags(), Mode::empty()) {
                Ok(fd) => match fstat(&fd) {
                    Ok(stat) if is_kind(&stat, SFlag::S_IFREG) => {
                        self.file(&File::from(fd), &stat)?;
                        return Ok(None);
                    }
                    // Replaced since the directory was read: look again below.
                    _ => {}
                },
                Err(Errno::ELOOP | Errno::ENXIO | Errno::ENOTDIR) => {}
                Err(errno) => {
                    self.skip_unreadable(errno);
                    return Ok(None);
                }
            }
        }
        let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(errno) => {
                self.skip_unreadable(errno);
                return Ok(None);
            }
        };
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let special = match format {
            SFlag::S_IFDIR => return self.directory(parent, name, &stat),
            SFlag::S_IFREG => {
                self.file_seen_by_stat(parent, name)?;
                return Ok(None);
            }
            SFlag::S_IFLNK => match readlinkat(parent, name) {
                Ok(target) => Kind::Symlink {
                    target: target.into_encoded_bytes(),
                },
                Err(errno) => {
                    self.skip_unreadable(errno);
                    return Ok(None);
                }
            },
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let (major, minor) = (
                    device_number(nix::sys::stat::major(stat.st_rdev)),
                    device_number(nix::sys::stat::minor(stat.st_rdev)),
                );
                if format == SFlag::S_IFCHR {
                    Kind::CharDevice { major, minor }
                } else {
                    Kind::BlockDevice { major, minor }
                }
            }
            _ => {
                self.warning("socket ignored");
                return Ok(None);
            }
        };
        let member = safer_name(&self.member_path);
        self.stream
            .header(member, &special, &self.owners.meta(&stat))?;
        Ok(None)
    }

    /// Stores directory `name` of `parent`; returns the frame to descend into when it is a
    /// readable directory that is not one of backupbox's own folders.
    fn directory(
        &mut self,
        parent: BorrowedFd,
        name: &[u8],
        stat: &FileStat,
    ) -> Result<Option<Frame>, WriteError> {
        let opened = openat(parent, name, dir_flags(), Mode::empty())
            .map_err(io::Error::from)
            .and_then(|dir| Ok((Children::read(&dir)?, dir)));
        let rules = &self.exclude.rules;
        if let Ok((children, _)) = &opened
            && !rules.if_present.is_empty()
            && children.names().any(|child| rules.is_tag(child))
        {
            self.left_out += entries_at(parent, name);
            return Ok(None);
        }
        let id = FileId::of_stat(stat);
        let own = self
            .exclude
            .own_folders
            .iter()
            .find(|(own, _)| *own == id)
            .map(|&(_, what)| what);
        let other_device = self.exclude.rules.one_file_system && stat.st_dev != self.root_dev;
        let mut contents = match opened {
            Ok(opened) if own.is_none() && !other_device => Ok(Some(opened)),
            Ok((_, dir)) => {
                if own.is_none() {
                    // The mount point is stored, empty; what it holds is left out.
                    self.left_out += entries_below(dir.as_fd(), b".");
                }
                Ok(None)
            }
            Err(err) => Err(err),
        };
        if let Ok(Some((children, dir))) = &mut contents
            && self.exclude.rules.caches
            && holds_cache_tag(dir)
        {
            self.left_out += entries_below(dir.as_fd(), b".").saturating_sub(1);
            children.keep_only(CACHE_TAG);
        }
        let kind = match &mut contents {
            Ok(Some((children, dir))) => self.directory_kind(Some((dir.as_fd(), children))),
            _ => self.directory_kind(None),
        };
        let member = as_directory(safer_name(&self.member_path));
        self.stream
            .header(&member, &kind, &self.owners.meta(stat))?;
        if let Some(what) = own {
            self.warning(&format!("{what}; its contents are not archived"));
            return Ok(None);
        }
        match contents {
            Ok(Some((children, dir))) => Ok(Some(Frame {
                dir: Some(dir),
                id,
                member_len: self.member_path.len(),
                children,
                read_ahead_from: 0,
                held: self.new_held(),
            })),
            Ok(None) => Ok(None),
            Err(err) => {
                self.warning(&format!(
                    "can't read directory ({err}); its contents are not archived"
                ));
                Ok(None)
            }
        }
    }

    /// Stores regular file `name` of `parent`, which a stat by name found: it is opened
    /// without following and checked again, since it may have been replaced meanwhile.
    fn file_seen_by_stat(&mut self, parent: BorrowedFd, name: &[u8]) -> Result<(), WriteError> {
        match openat(parent, name, file_flags(), Mode::empty())
            .and_then(|fd| fstat(&fd).map(|stat| (fd, stat)))
        {
            Ok((fd, stat)) if is_kind(&stat, SFlag::S_IFREG) => {
                self.file(&File::from(fd), &stat)?
            }
            Ok(_) | Err(Errno::ELOOP | Errno::ENXIO) => self.warning(
                "replaced by something that is not a file while being archived; not archived",
            ),
            Err(errno) => self.skip_unreadable(errno),
        }
        Ok(())
    }

    /// Stores a regular file, read through one open descriptor so that its header and its
    /// data describe the same file even if the name is replaced meanwhile.
    fn file(&mut self, file: &File, before: &FileStat) -> Result<(), WriteError> {
        if FileId::of_stat(before) == self.exclude.output {
            return Ok(());
        }
        // A file with several names is stored once; its later names become hard-link
        // members naming the first, as GNU tar does (a folder of 100 links to a 20 MB file
        // made a 2 GB archive).
        let inode = (before.st_nlink > 1).then(|| FileId::of_stat(before));
        if let Some(first) = inode.and_then(|inode| self.first_names.get(&inode)) {
            let kind = Kind::HardLink {
                target: first.clone(),
            };
            let member = safer_name(&self.member_path);
            self.stream
                .header(member, &kind, &self.owners.meta(before))?;
            return Ok(());
        }
        if let Some(inode) = inode {
            self.first_names
                .insert(inode, safer_name(&self.member_path).to_vec());
        }
        let size = before.st_size as u64;
        let kind = match sparse_extents(file, before) {
            Some(extents) => Kind::Sparse {
                real_size: size,
                extents,
            },
            None => Kind::File { size },
        };
        let member = safer_name(&self.member_path);
        self.stream
            .header(member, &kind, &self.owners.meta(before))?;
        let whole = [(0, size)];
        let extents = match &kind {
            Kind::Sparse { extents, .. } => extents.as_slice(),
            _ => &whole,
        };
        let outcome = self.stream.file_data(file, extents)?;
        let after = fstat(file).ok();
        if let Some(err) = outcome.read_error {
            self.warning(&format!(
                "read error ({err}); {} bytes stored as zeros",
                outcome.zeros_padded
            ));
        } else if outcome.zeros_padded > 0 {
            self.warning(&format!(
                "file shrank while being archived; {} bytes stored as zeros",
                outcome.zeros_padded
            ));
        } else if let Some(after) = after {
            if after.st_size as u64 > size {
                self.warning(&format!(
                    "file grew while being archived; its first {size} bytes stored"
                ));
            } else if change_stamp(&after) != change_stamp(before) {
                self.warning("file changed while being archived");
            }
        }
        Ok(())
    }

    fn skip_unreadable(&mut self, errno: Errno) {
        match errno {
            Errno::ENOENT => self.warning("file removed before it was read; not archived"),
            _ => self.warning(&format!(
                "can't read ({}); not archived",
                io::Error::from(errno)
            )),
        }
    }

    /// Warns about the entry whose path is in `member_path`.
    fn warning(&mut self, text: &str) {
        let member = safer_name(&self.member_path);
        let member = member.strip_suffix(b"/").unwrap_or(member);
        (self.warn)(format!("{}: {text}", show_bytes(member)));
    }
}

/// How many entries leaving out `name` of `parent` leaves out: 1, plus all a directory holds.
fn entries_at(parent: BorrowedFd, name: &[u8]) -> u64 {
    1 + entries_below(parent, name)
}

/// Deepest directory level [`entries_below`] opens; below it a directory counts as one entry.
const MAX_COUNT_DEPTH: usize = 64;

/// Every entry below directory `name` of `parent` (none if it is not one), at any depth, read
/// from the directory entries alone (no file is opened, no link followed), so that "Left out
/// N entries" counts what a left-out folder held.
fn entries_below(parent: BorrowedFd, name: &[u8]) -> u64 {
    /// A directory's entry count, and the names of those that may be directories.
    fn read(dir: BorrowedFd, name: &[u8]) -> Option<(OwnedFd, u64, Vec<Vec<u8>>)> {
        let fd = openat(dir, name, dir_flags(), Mode::empty()).ok()?;
        let mut stream = Dir::from_fd(fd.try_clone().ok()?).ok()?;
        let (mut count, mut dirs) = (0, Vec::new());
        for entry in stream.iter().map_while(std::result::Result::ok) {
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            count += 1;
            if matches!(entry.file_type(), Some(Type::Directory) | None) {
                dirs.push(name.to_vec());
            }
        }
        Some((fd, count, dirs))
    }
    let Some((fd, mut count, dirs)) = read(parent, name) else {
        return 0;
    };
    let mut stack = vec![(fd, dirs)];
    loop {
        let depth = stack.len();
        let Some((fd, dirs)) = stack.last_mut() else {
            break;
        };
        let Some(name) = dirs.pop() else {
            stack.pop();
            continue;
        };
        if depth < MAX_COUNT_DEPTH
            && let Some((child, below, child_dirs)) = read(fd.as_fd(), &name)
        {
            count += below;
            stack.push((child, child_dirs));
        }
    }
    count
}

/// Whether `dir` holds a `CACHEDIR.TAG` that starts with the standard signature; a tag with
/// another signature excludes nothing, as with `tar --exclude-caches`.
fn holds_cache_tag(dir: &OwnedFd) -> bool {
    let Ok(fd) = openat(dir, CACHE_TAG, file_flags(), Mode::empty()) else {
        return false;
    };
    let mut start = [0u8; CACHE_TAG_SIGNATURE.len()];
    File::from(fd).read_exact(&mut start).is_ok() && start == CACHE_TAG_SIGNATURE
}

/// Directories are opened without following a symlink swapped in for them.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Never follow a symlink swapped in, never block on a fifo swapped in.
fn file_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

fn is_kind(stat: &FileStat, kind: SFlag) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// What changes when a file's contents or metadata change.
fn change_stamp(stat: &FileStat) -> [i64; 4] {
    [
        stat.st_mtime,
        stat.st_mtime_nsec,
        stat.st_ctime,
        stat.st_ctime_nsec,
    ]
}

/// The data extents of a file with holes, or `None` for a file to store whole.
///
/// Only files that occupy fewer blocks than their size can have holes, so the others skip
/// the lseek calls.
fn sparse_extents(file: &File, stat: &FileStat) -> Option<Vec<Extent>> {
    let size = stat.st_size as u64;
    if size == 0 || (stat.st_blocks as u64).saturating_mul(512) >= size {
        return None;
    }
    let mut extents = Vec::new();
    let mut position: u64 = 0;
    while position < size {
        let data = match lseek(file, position as i64, Whence::SeekData) {
            Ok(offset) => offset as u64,
            Err(Errno::ENXIO) => break,
            Err(_) => return None,
        };
        if data >= size {
            break;
        }
        let hole = lseek(file, data as i64, Whence::SeekHole).ok()? as u64;
        let end = hole.min(size);
        extents.push((data, end - data));
        position = end;
    }
    if extents == [(0, size)] {
        return None;
    }
    // GNU tar ends the map with an empty extent at the end when the file ends in a hole.
    if extents
        .last()
        .is_none_or(|&(offset, length)| offset + length < size)
    {
        extents.push((size, 0));
    }
    Some(extents)
}

/// User and group names by id, looked up once each.
#[derive(Default)]
struct Owners {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl Owners {
    fn meta(&mut self, stat: &FileStat) -> Meta<'_> {
        let (uid, gid) = (stat.st_uid, stat.st_gid);
        cached_name(&mut self.users, uid, |id| {
            User::from_uid(Uid::from_raw(id))
                .ok()
                .flatten()
                .map(|user| user.name)
        });
        cached_name(&mut self.groups, gid, |id| {
            Group::from_gid(Gid::from_raw(id))
                .ok()
                .flatten()
                .map(|group| group.name)
        });
        Meta {
            mode: stat.st_mode,
            uid: uid.into(),
            gid: gid.into(),
            mtime: stat.st_mtime,
            uname: &self.users[&uid],
            gname: &self.groups[&gid],
        }
    }
}

/// Looks up the name for `id` once: the user and group databases may be slow (NSS, LDAP).
/// An id without a name gets an empty one, and tar readers then show the number.
fn cached_name(
    cache: &mut HashMap<u32, Vec<u8>>,
    id: u32,
    lookup: impl FnOnce(u32) -> Option<String>,
) {
    cache
        .entry(id)
        .or_insert_with(|| lookup(id).map(String::into_bytes).unwrap_or_default());
}
