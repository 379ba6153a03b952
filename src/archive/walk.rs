//! Walks a live folder depth-first in name order and streams each entry into the archive,
//! skipping (with a warning) what vanishes, cannot be read or cannot be stored.

use super::header::{Extent, Kind, Meta};
use super::member_name::{
    as_directory, child_path, root_member, safer_name, trim_trailing_slashes,
};
use super::stream::TarStream;
use crate::log::show_bytes;
use nix::unistd::{Gid, Group, Uid, User, Whence, lseek};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A file's identity on disk.
pub type FileId = (u64, u64);

pub fn file_id(meta: &Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// Files the walk must leave out: the archive being written, and backupbox's own working
/// files in the backups folder.
pub struct Exclusions {
    pub output: FileId,
    pub backups_dir: Option<FileId>,
    pub is_internal_name: fn(&[u8]) -> bool,
}

/// Why an archive could not be made.
#[derive(Debug)]
pub enum Failure {
    /// The folder itself is unusable; the text says why.
    Folder(String),
    /// Writing the archive failed.
    Write(io::Error),
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Write(err)
    }
}

/// A directory being walked: its path on disk, its member path, and the children still to visit.
struct Frame {
    path: PathBuf,
    member_path: Vec<u8>,
    id: FileId,
    children: std::vec::IntoIter<OsString>,
}

pub struct Walker<'a> {
    stream: TarStream<'a>,
    exclude: Exclusions,
    warn: &'a mut dyn FnMut(String),
    owners: Owners,
}

impl<'a> Walker<'a> {
    pub fn new(
        stream: TarStream<'a>,
        exclude: Exclusions,
        warn: &'a mut dyn FnMut(String),
    ) -> Self {
        Walker {
            stream,
            exclude,
            warn,
            owners: Owners::default(),
        }
    }

    /// The stream, to finish the archive after the walk.
    pub fn into_stream(self) -> TarStream<'a> {
        self.stream
    }

    /// Archives `root` (the plan folder resolved on disk) under the member names GNU tar
    /// would give `folder`. The root itself is followed if it is a symlink; nothing else is.
    pub fn archive(&mut self, root: &Path, folder: &[u8]) -> Result<(), Failure> {
        let meta = fs::metadata(root).map_err(|err| {
            Failure::Folder(match err.kind() {
                io::ErrorKind::NotFound => "folder not found".to_owned(),
                _ => format!("can't read folder ({err})"),
            })
        })?;
        if !meta.is_dir() {
            return Err(Failure::Folder("not a directory".to_owned()));
        }
        let children = sorted_children(root)
            .map_err(|err| Failure::Folder(format!("can't read folder ({err})")))?;
        self.stream.header(
            &root_member(folder),
            &Kind::Directory,
            &self.owners.meta(&meta),
        )?;
        let mut stack = vec![Frame {
            path: root.to_path_buf(),
            member_path: trim_trailing_slashes(folder),
            id: file_id(&meta),
            children: children.into_iter(),
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(name) = frame.children.next() else {
                stack.pop();
                continue;
            };
            let name = name.as_bytes();
            if Some(frame.id) == self.exclude.backups_dir && (self.exclude.is_internal_name)(name) {
                continue;
            }
            let path = frame.path.join(std::ffi::OsStr::from_bytes(name));
            let member_path = child_path(&frame.member_path, name);
            let Some(child) = self.entry(path, member_path)? else {
                continue;
            };
            // A bind mount can put a directory inside itself; descending would never end.
            if stack.iter().any(|ancestor| ancestor.id == child.id) {
                let member = safer_name(&child.member_path).to_vec();
                self.warning(
                    &member,
                    "directory loop (a bind mount?); its contents are not archived again",
                );
            } else {
                stack.push(child);
            }
        }
        Ok(())
    }

    /// Stores one entry; returns the frame to descend into when it is a readable directory.
    fn entry(&mut self, path: PathBuf, member_path: Vec<u8>) -> Result<Option<Frame>, Failure> {
        let member = safer_name(&member_path).to_vec();
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) => {
                self.skip_unreadable(&member, &err);
                return Ok(None);
            }
        };
        if file_id(&meta) == self.exclude.output {
            return Ok(None);
        }
        let kind = meta.file_type();
        if kind.is_dir() {
            self.stream.header(
                &as_directory(&member),
                &Kind::Directory,
                &self.owners.meta(&meta),
            )?;
            return match sorted_children(&path) {
                Ok(children) => Ok(Some(Frame {
                    path,
                    member_path,
                    id: file_id(&meta),
                    children: children.into_iter(),
                })),
                Err(err) => {
                    self.warning(
                        &member,
                        &format!("can't read directory ({err}); its contents are not archived"),
                    );
                    Ok(None)
                }
            };
        }
        if kind.is_file() {
            self.file(&path, &member)?;
            return Ok(None);
        }
        let special = if kind.is_symlink() {
            match fs::read_link(&path) {
                Ok(target) => Kind::Symlink {
                    target: target.into_os_string().into_encoded_bytes(),
                },
                Err(err) => {
                    self.skip_unreadable(&member, &err);
                    return Ok(None);
                }
            }
        } else if kind.is_fifo() {
            Kind::Fifo
        } else if kind.is_char_device() || kind.is_block_device() {
            let (major, minor) = (
                nix::sys::stat::major(meta.rdev()) as u32,
                nix::sys::stat::minor(meta.rdev()) as u32,
            );
            if kind.is_char_device() {
                Kind::CharDevice { major, minor }
            } else {
                Kind::BlockDevice { major, minor }
            }
        } else {
            self.warning(&member, "socket ignored");
            return Ok(None);
        };
        self.stream
            .header(&member, &special, &self.owners.meta(&meta))?;
        Ok(None)
    }

    /// Stores a regular file, read through one open descriptor so that its header and its
    /// data describe the same file even if the name is replaced meanwhile.
    fn file(&mut self, path: &Path, member: &[u8]) -> Result<(), Failure> {
        let opened = OpenOptions::new()
            .read(true)
            // Never follow a symlink swapped in, never block on a fifo swapped in.
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
            .and_then(|file| file.metadata().map(|meta| (file, meta)));
        let (file, before) = match opened {
            Ok((file, meta)) if meta.is_file() => (file, meta),
            Ok(_) => {
                self.warning(
                    member,
                    "replaced by something that is not a file while being archived; not archived",
                );
                return Ok(());
            }
            Err(err) => {
                self.skip_unreadable(member, &err);
                return Ok(());
            }
        };
        let size = before.len();
        let kind = match sparse_extents(&file, &before) {
            Some(extents) => Kind::Sparse {
                real_size: size,
                extents,
            },
            None => Kind::File { size },
        };
        self.stream
            .header(member, &kind, &self.owners.meta(&before))?;
        let extents = match &kind {
            Kind::Sparse { extents, .. } => extents.clone(),
            _ => vec![(0, size)],
        };
        let outcome = self.stream.file_data(&file, &extents)?;
        let after = file.metadata().ok();
        if let Some(err) = outcome.read_error {
            self.warning(
                member,
                &format!(
                    "read error ({err}); {} bytes stored as zeros",
                    outcome.zeros_padded
                ),
            );
        } else if outcome.zeros_padded > 0 {
            self.warning(
                member,
                &format!(
                    "file shrank while being archived; {} bytes stored as zeros",
                    outcome.zeros_padded
                ),
            );
        } else if let Some(after) = after {
            if after.len() > size {
                self.warning(
                    member,
                    &format!("file grew while being archived; its first {size} bytes stored"),
                );
            } else if (
                after.mtime(),
                after.mtime_nsec(),
                after.ctime(),
                after.ctime_nsec(),
            ) != (
                before.mtime(),
                before.mtime_nsec(),
                before.ctime(),
                before.ctime_nsec(),
            ) {
                self.warning(member, "file changed while being archived");
            }
        }
        Ok(())
    }

    fn skip_unreadable(&mut self, member: &[u8], err: &io::Error) {
        let text = match err.kind() {
            io::ErrorKind::NotFound => "file removed before it was read; not archived".to_owned(),
            _ => format!("can't read ({err}); not archived"),
        };
        self.warning(member, &text);
    }

    fn warning(&mut self, member: &[u8], text: &str) {
        let member = member.strip_suffix(b"/").unwrap_or(member);
        (self.warn)(format!("{}: {text}", show_bytes(member)));
    }
}

/// The entries of a directory sorted by name bytes, so archives are reproducible.
fn sorted_children(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// The data extents of a file with holes, or `None` for a file to store whole.
///
/// Only files that occupy fewer blocks than their size can have holes, so the others skip
/// the lseek calls.
fn sparse_extents(file: &File, meta: &Metadata) -> Option<Vec<Extent>> {
    let size = meta.len();
    if size == 0 || meta.blocks().saturating_mul(512) >= size {
        return None;
    }
    let mut extents = Vec::new();
    let mut position: u64 = 0;
    while position < size {
        let data = match lseek(file, position as i64, Whence::SeekData) {
            Ok(offset) => offset as u64,
            Err(nix::errno::Errno::ENXIO) => break,
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
    fn meta(&mut self, meta: &Metadata) -> Meta {
        let uname = cached_name(&mut self.users, meta.uid(), |id| {
            User::from_uid(Uid::from_raw(id))
                .ok()
                .flatten()
                .map(|user| user.name)
        });
        let gname = cached_name(&mut self.groups, meta.gid(), |id| {
            Group::from_gid(Gid::from_raw(id))
                .ok()
                .flatten()
                .map(|group| group.name)
        });
        Meta {
            mode: meta.mode(),
            uid: meta.uid().into(),
            gid: meta.gid().into(),
            mtime: meta.mtime(),
            uname,
            gname,
        }
    }
}

/// The name for `id`, looked up once: the user and group databases may be slow (NSS, LDAP).
/// An id without a name gets an empty one, and tar readers then show the number.
fn cached_name(
    cache: &mut HashMap<u32, Vec<u8>>,
    id: u32,
    lookup: impl FnOnce(u32) -> Option<String>,
) -> Vec<u8> {
    cache
        .entry(id)
        .or_insert_with(|| lookup(id).map(String::into_bytes).unwrap_or_default())
        .clone()
}
