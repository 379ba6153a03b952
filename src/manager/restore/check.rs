//! The checks every member passes before a restore writes anything. Pure: member names,
//! kinds and link targets in, a refusal naming the member out.
//!
//! The archive is judged as the tree it would make: nothing may be written under a symlink or
//! a non-directory it makes, no path may be made twice, a hard link must name a member made
//! before it, and a symlink must resolve inside the restore folder when followed through the
//! links the archive itself makes, chains included.

pub use crate::archive::member_name::components;
use crate::archive::member_name::{UnsafeName, unsafe_name};
use crate::log::show_name;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;

/// Why a restore is refused before anything is written. `Display` names the member (or the
/// path on disk) and the reason, as the log line ends.
#[derive(Debug)]
pub enum Refusal {
    UnsafeName(UnsafeName),
    NamesTheFolder(Vec<u8>),
    ThroughSymlink(Vec<u8>),
    UnderNonDirectory {
        name: Vec<u8>,
        parent: Vec<u8>,
    },
    ReplacesDirectory(Vec<u8>),
    Duplicate(Vec<u8>),
    HardLinkOutside(Vec<u8>),
    HardLinkToDirectory(Vec<u8>),
    HardLinkToMissing {
        name: Vec<u8>,
        target: Vec<u8>,
    },
    SymlinkOutside {
        name: Vec<u8>,
        target: Vec<u8>,
    },
    /// A symlink whose target is longer than any the kernel makes (PATH_MAX less its NUL).
    SymlinkTooLong {
        name: Vec<u8>,
        bytes: usize,
    },
    UnsupportedType {
        name: Vec<u8>,
        kind: u8,
    },
    /// A GNU pax sparse member whose map does not fit its data or its size.
    BadSparseMap {
        name: Vec<u8>,
        why: &'static str,
    },
    /// Paths on disk are shown as they are found, already escaped.
    /// A member asked for by name that the archive does not have.
    NotInArchive(Vec<u8>),
    Exists(String),
    NotADirectoryOnDisk(String),
    DirectoryOnDisk(String),
    DiskTrouble(String),
    Unreadable(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |name: &[u8]| show_name(name);
        match self {
            Refusal::UnsafeName(why) => why.fmt(f),
            Refusal::NamesTheFolder(name) => {
                write!(f, "{}: names the restore folder itself", n(name))
            }
            Refusal::ThroughSymlink(name) => {
                write!(f, "{}: would be written through a symlink", n(name))
            }
            Refusal::UnderNonDirectory { name, parent } => write!(
                f,
                "{}: would be written under {}, which is not a directory",
                n(name),
                n(parent)
            ),
            Refusal::ReplacesDirectory(name) => {
                write!(
                    f,
                    "{}: would replace a directory the archive makes",
                    n(name)
                )
            }
            Refusal::Duplicate(name) => write!(f, "{}: appears twice in the archive", n(name)),
            Refusal::HardLinkOutside(name) => {
                write!(
                    f,
                    "{}: hard link points outside the restore folder",
                    n(name)
                )
            }
            Refusal::HardLinkToDirectory(name) => {
                write!(f, "{}: hard link to a directory", n(name))
            }
            Refusal::HardLinkToMissing { name, target } => write!(
                f,
                "{}: hard link to {}, which the archive does not make before it",
                n(name),
                n(target)
            ),
            Refusal::SymlinkOutside { name, target } => write!(
                f,
                "{}: symlink points outside the restore folder ({}); without --refuse-outside-links such links are restored as they are",
                n(name),
                n(target)
            ),
            Refusal::SymlinkTooLong { name, bytes } => write!(
                f,
                "{}: symlink target of {bytes} bytes; Linux makes none longer than {MAX_LINK_TARGET}",
                n(name)
            ),
            Refusal::UnsupportedType { name, kind } => write!(
                f,
                "{}: unsupported member type '{}'",
                n(name),
                crate::log::show_bytes(&[*kind])
            ),
            Refusal::BadSparseMap { name, why } => {
                write!(f, "{}: damaged sparse map: {why}", n(name))
            }
            Refusal::NotInArchive(name) => write!(f, "{}: not in the archive", n(name)),
            Refusal::Exists(path) => write!(f, "{path} already exists; add --force to overwrite"),
            Refusal::NotADirectoryOnDisk(path) => write!(
                f,
                "{path} exists and is not a directory; add --force to replace it"
            ),
            Refusal::DirectoryOnDisk(path) => {
                write!(f, "{path} is a directory on disk; not replaced")
            }
            Refusal::DiskTrouble(text) => f.write_str(text),
            Refusal::Unreadable(err) => write!(f, "can't read the archive ({err})"),
        }
    }
}

impl std::error::Error for Refusal {}

/// What a member makes on disk, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Directory,
    Symlink,
    HardLink,
    /// A regular file, FIFO or device.
    Other,
}

/// The members a restore was asked for: all, or the given paths and everything below them.
#[derive(Debug, Default)]
pub struct Selection {
    /// Each path as given, its components, and whether the archive had it.
    wanted: Vec<(Vec<u8>, Vec<Vec<u8>>, bool)>,
    /// Only members with these [`key`]s, besides: a full's unchanged files under a level-1.
    only: Option<HashSet<Vec<u8>>>,
}

/// A member's path as one key, `a/b/c`, however its name was written (`./a//b/c/`).
pub fn key(name: &[u8]) -> Vec<u8> {
    components(name).join(&b'/')
}

impl Selection {
    /// `members` empty means the whole archive.
    pub fn of(members: &[Vec<u8>]) -> Selection {
        let wanted = members
            .iter()
            .map(|member| {
                let parts = components(member).into_iter().map(<[u8]>::to_vec).collect();
                (member.clone(), parts, false)
            })
            .collect();
        Selection { wanted, only: None }
    }

    /// Restricts the selection to members with the [`key`]s in `only` (none: lifts it);
    /// returns the restriction it had.
    pub fn restrict(&mut self, only: Option<HashSet<Vec<u8>>>) -> Option<HashSet<Vec<u8>>> {
        std::mem::replace(&mut self.only, only)
    }

    /// Whether only some keys are allowed.
    pub fn restricted(&self) -> bool {
        self.only.is_some()
    }

    fn allows(&self, name: &[u8]) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.contains(&key(name)))
    }

    /// Whether member `name` is restored: the whole archive, or at or below a path asked for.
    pub fn covers(&self, name: &[u8]) -> bool {
        if !self.allows(name) {
            return false;
        }
        let parts = components(name);
        self.wanted.is_empty()
            || self
                .wanted
                .iter()
                .any(|(_, wanted, _)| at_or_below(&parts, wanted))
    }

    /// [`Selection::covers`], noting which paths asked for the archive has.
    pub fn take(&mut self, name: &[u8]) -> bool {
        if !self.allows(name) {
            return false;
        }
        if self.wanted.is_empty() {
            return true;
        }
        let parts = components(name);
        let mut taken = false;
        for (_, wanted, found) in &mut self.wanted {
            if at_or_below(&parts, wanted) {
                *found = true;
                taken = true;
            }
        }
        taken
    }

    /// The first path asked for that the archive did not have.
    pub fn missing(&self) -> Option<&[u8]> {
        self.wanted
            .iter()
            .find(|(_, _, found)| !found)
            .map(|(member, _, _)| member.as_slice())
    }
}

/// Whether the path `parts` is `wanted` or lies below it. A path asked for that has no
/// component (`.`, `/`) names no member, as with GNU tar ("Not found in archive"), rather
/// than every member.
fn at_or_below(parts: &[&[u8]], wanted: &[Vec<u8>]) -> bool {
    !wanted.is_empty()
        && parts.len() >= wanted.len()
        && parts.iter().zip(wanted).all(|(a, b)| *a == b.as_slice())
}

/// Hops through symlinks one resolution may take. Far beyond the kernel's 40, so a chain
/// we give up on (and refuse) is one nobody could follow anyway.
const MAX_HOPS: usize = 256;

/// One path the archive makes, or implies as a parent.
struct Node {
    parent: u32,
    shape: Shape,
    /// The archive has a member for this directory, not only implies it.
    directory_member: bool,
    /// A symlink's target.
    target: Option<Box<[u8]>>,
}

/// The longest symlink target `symlinkat` takes: PATH_MAX less its NUL.
const MAX_LINK_TARGET: usize = 4095;

/// The index of the restore folder itself among the nodes.
const ROOT: u32 = 0;

/// The tree an archive would make, built member by member. Each path is kept once, as its
/// parent's index and its last component, so memory and time stay linear in the archive's
/// bytes however deep its names go (every prefix as a key grew with the square of the depth).
pub struct Checker {
    nodes: Vec<Node>,
    children: HashMap<(u32, Box<[u8]>), u32>,
    /// The archive's symlinks in archive order: member name and node.
    symlinks: Vec<(Vec<u8>, u32)>,
    outside_links: bool,
}

impl Checker {
    /// Symlinks leading out of the restore folder are restored as stored when `outside_links`
    /// allows them (the default: a backup of /etc has many), and refused otherwise; nothing is
    /// ever written through one either way.
    pub fn new(outside_links: bool) -> Checker {
        Checker {
            nodes: vec![Node {
                parent: ROOT,
                shape: Shape::Directory,
                directory_member: true,
                target: None,
            }],
            children: HashMap::new(),
            symlinks: Vec::new(),
            outside_links,
        }
    }

    fn child(&self, parent: u32, name: &[u8]) -> Option<u32> {
        self.children.get(&(parent, Box::from(name))).copied()
    }

    fn add(&mut self, parent: u32, name: &[u8], shape: Shape) -> u32 {
        let id = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(Node {
            parent,
            shape,
            directory_member: false,
            target: None,
        });
        self.children.insert((parent, Box::from(name)), id);
        id
    }

    /// The node at `parts`, if the archive makes that path.
    fn find(&self, parts: &[&[u8]]) -> Option<u32> {
        parts
            .iter()
            .try_fold(ROOT, |node, part| self.child(node, part))
    }

    /// Takes the next member, or says why it may not be restored.
    pub fn member(
        &mut self,
        name: &[u8],
        shape: Shape,
        link: Option<&[u8]>,
    ) -> Result<(), Refusal> {
        if let Some(why) = unsafe_name(name) {
            return Err(Refusal::UnsafeName(why));
        }
        let parts = components(name);
        let Some((last, parents)) = parts.split_last() else {
            return match shape {
                Shape::Directory => Ok(()),
                _ => Err(Refusal::NamesTheFolder(name.to_vec())),
            };
        };
        let parent = self.place_parents(parents, name)?;
        let existing = self.child(parent, last);
        match (existing.map(|node| self.nodes[node as usize].shape), shape) {
            (None, _) | (Some(Shape::Directory), Shape::Directory) => {}
            (Some(Shape::Directory), _) => return Err(Refusal::ReplacesDirectory(name.to_vec())),
            (Some(_), _) => return Err(Refusal::Duplicate(name.to_vec())),
        }
        if shape == Shape::HardLink {
            self.check_hard_link(name, link.unwrap_or_default())?;
        }
        let target = link.unwrap_or_default();
        if shape == Shape::Symlink && target.len() > MAX_LINK_TARGET {
            // Refused here, before anything is written, not by the kernel halfway through.
            return Err(Refusal::SymlinkTooLong {
                name: name.to_vec(),
                bytes: target.len(),
            });
        }
        let node = existing.unwrap_or_else(|| self.add(parent, last, shape));
        match shape {
            Shape::Symlink => {
                self.nodes[node as usize].target = Some(Box::from(link.unwrap_or_default()));
                self.symlinks.push((name.to_vec(), node));
            }
            Shape::Directory => self.nodes[node as usize].directory_member = true,
            Shape::HardLink | Shape::Other => {}
        }
        Ok(())
    }

    /// Walks (and makes) the directories above a member, refusing a path that goes through a
    /// symlink or a non-directory of the archive; returns the member's parent.
    fn place_parents(&mut self, parents: &[&[u8]], name: &[u8]) -> Result<u32, Refusal> {
        let mut node = ROOT;
        for (depth, part) in parents.iter().enumerate() {
            node = match self.child(node, part) {
                Some(child) => match self.nodes[child as usize].shape {
                    Shape::Directory => child,
                    Shape::Symlink => return Err(Refusal::ThroughSymlink(name.to_vec())),
                    Shape::HardLink | Shape::Other => {
                        return Err(Refusal::UnderNonDirectory {
                            name: name.to_vec(),
                            parent: parents[..=depth].join(&b'/'),
                        });
                    }
                },
                None => self.add(node, part, Shape::Directory),
            };
        }
        Ok(node)
    }

    /// A hard link must name a file, FIFO, device or symlink that the archive made before it:
    /// never a directory, never something already on disk, never a path through a symlink.
    fn check_hard_link(&self, name: &[u8], target: &[u8]) -> Result<(), Refusal> {
        let parts = components(target);
        if target.starts_with(b"/") || parts.contains(&&b".."[..]) {
            return Err(Refusal::HardLinkOutside(name.to_vec()));
        }
        match self
            .find(&parts)
            .map(|node| self.nodes[node as usize].shape)
        {
            Some(Shape::Other | Shape::Symlink | Shape::HardLink) => Ok(()),
            Some(Shape::Directory) => Err(Refusal::HardLinkToDirectory(name.to_vec())),
            None => Err(Refusal::HardLinkToMissing {
                name: name.to_vec(),
                target: target.to_vec(),
            }),
        }
    }

    /// Whether the archive makes the path `parts` (or implies it as a parent), and whether
    /// as a directory: what `--delete` keeps.
    pub fn makes(&self, parts: &[&[u8]]) -> Option<bool> {
        self.find(parts)
            .map(|node| self.nodes[node as usize].shape == Shape::Directory)
    }

    /// Whether a directory member for `parts` came before: restore makes that directory
    /// itself, replacing what is on disk there when forced.
    pub fn has_directory_member(&self, parts: &[&[u8]]) -> bool {
        self.find(parts)
            .is_some_and(|node| self.nodes[node as usize].directory_member)
    }

    /// Judges every symlink against all the others, once the whole archive is known: a link
    /// that stays inside on its own may lead out through one that comes later. Returns how
    /// many lead outside (allowed), or refuses the first that does (not allowed).
    pub fn finish(&self) -> Result<usize, Refusal> {
        let mut outside = 0;
        for (name, node) in &self.symlinks {
            let link = &self.nodes[*node as usize];
            let target = link.target.as_deref().unwrap_or_default();
            if self.escapes(link.parent, target) {
                if !self.outside_links {
                    return Err(Refusal::SymlinkOutside {
                        name: name.clone(),
                        target: target.to_vec(),
                    });
                }
                outside += 1;
            }
        }
        Ok(outside)
    }

    /// Whether `target`, a symlink's text in directory node `parent`, leads outside the
    /// restore folder when followed as the kernel would, through the archive's own links.
    /// A loop leads nowhere, so it does not escape. Where the path leaves the tree the
    /// archive makes, only the depth below the last node it made is kept: `..` can still
    /// climb back, and no link of the archive lies there.
    fn escapes(&self, parent: u32, target: &[u8]) -> bool {
        if target.starts_with(b"/") {
            return true;
        }
        // Where the walk is: a node, and how many components below it (outside the tree).
        let (mut node, mut below) = (parent, 0usize);
        let mut pending: VecDeque<&[u8]> = components(target).into();
        let mut seen = HashSet::new();
        while let Some(part) = pending.pop_front() {
            if part == b".." {
                if below > 0 {
                    below -= 1;
                } else if node == ROOT {
                    return true;
                } else {
                    node = self.nodes[node as usize].parent;
                }
                continue;
            }
            let child = (below == 0).then(|| self.child(node, part)).flatten();
            let Some(child) = child else {
                below += 1;
                continue;
            };
            let Some(next) = self.nodes[child as usize].target.as_deref() else {
                node = child;
                continue;
            };
            if next.starts_with(b"/") {
                return true;
            }
            // The same link from the same place with the same path still to go: this goes
            // round for ever.
            if !seen.insert((child, pending.clone())) {
                return false;
            }
            if seen.len() > MAX_HOPS {
                return true;
            }
            for part in components(next).into_iter().rev() {
                pending.push_front(part);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(members: &[(&str, Shape, &str)], outside_links: bool) -> Result<usize, Refusal> {
        let mut checker = Checker::new(outside_links);
        for (name, shape, link) in members {
            checker.member(name.as_bytes(), *shape, Some(link.as_bytes()))?;
        }
        checker.finish()
    }

    fn refused(members: &[(&str, Shape, &str)]) -> String {
        check(members, false).unwrap_err().to_string()
    }

    use Shape::{Directory as D, HardLink as H, Other as F, Symlink as L};

    #[test]
    fn names_must_stay_inside() {
        assert!(check(&[("d/f", F, ""), ("./e//f", F, "")], false).is_ok());
        assert_eq!(
            refused(&[("/etc/passwd", F, "")]),
            "/etc/passwd: absolute member name"
        );
        assert_eq!(
            refused(&[("d/../../x", F, "")]),
            "d/../../x: member name contains '..'"
        );
        assert!(matches!(
            check(&[("", F, "")], false),
            Err(Refusal::UnsafeName(UnsafeName::Empty))
        ));
        assert_eq!(
            refused(&[(".", F, "")]),
            ".: names the restore folder itself"
        );
        assert_eq!(
            refused(&[("d/link", L, "."), ("d/link/f", F, "")]),
            "d/link/f: would be written through a symlink"
        );
        assert_eq!(
            refused(&[("d/f", F, ""), ("d/f/g", F, "")]),
            "d/f/g: would be written under d/f, which is not a directory"
        );
    }

    #[test]
    fn a_selection_covers_its_paths_and_what_is_below_them() {
        let mut selection = Selection::of(&[b"docs/sub".to_vec(), b"./notes".to_vec()]);
        assert!(selection.take(b"docs/sub/"));
        assert!(selection.take(b"docs/sub/a"));
        assert!(!selection.take(b"docs/subway"));
        assert!(!selection.take(b"docs/"));
        assert_eq!(selection.missing(), Some(&b"./notes"[..]));
        assert!(selection.take(b"notes"));
        assert_eq!(selection.missing(), None);
        assert!(Selection::of(&[]).covers(b"anything"));
    }

    #[test]
    fn a_path_is_made_once() {
        assert!(check(&[("d/", D, ""), ("d", D, ""), ("d/f", F, "")], false).is_ok());
        assert!(matches!(
            check(&[("d/s", L, "x"), ("d/s", F, "")], false),
            Err(Refusal::Duplicate(name)) if name == b"d/s"
        ));
        assert_eq!(
            refused(&[("d/s", L, "x"), ("d/s", F, "")]),
            "d/s: appears twice in the archive"
        );
        assert_eq!(
            refused(&[("d/f", F, ""), ("d", F, "")]),
            "d: would replace a directory the archive makes"
        );
    }

    #[test]
    fn hard_links_name_an_earlier_member_inside() {
        assert!(check(&[("d/f", F, ""), ("d/h", H, "d/f")], false).is_ok());
        assert_eq!(
            refused(&[("d/h", H, "d/f")]),
            "d/h: hard link to d/f, which the archive does not make before it"
        );
        assert_eq!(
            refused(&[("d/h", H, "../f")]),
            "d/h: hard link points outside the restore folder"
        );
        assert_eq!(
            refused(&[("d/h", H, "/etc/shadow")]),
            "d/h: hard link points outside the restore folder"
        );
        assert_eq!(
            refused(&[("d/l", L, "/etc"), ("d/h", H, "d/l/shadow")]),
            "d/h: hard link to d/l/shadow, which the archive does not make before it"
        );
        assert_eq!(
            refused(&[("d/", D, ""), ("h", H, "d")]),
            "h: hard link to a directory"
        );
    }

    #[test]
    fn symlinks_are_judged_through_the_archives_own_links() {
        assert!(check(&[("d/s", L, "../x"), ("d/t", L, "e/../f")], false).is_ok());
        assert!(refused(&[("d/s", L, "../../x")]).starts_with("d/s: symlink points outside"));
        assert!(refused(&[("d/s", L, "/etc")]).contains("(/etc); without --refuse-outside-links"));
        assert_eq!(
            check(
                &[("d/s", L, "/etc"), ("d/t", L, "x"), ("d/u", L, "../..")],
                true
            )
            .unwrap(),
            2,
            "allowed, and counted"
        );
        // Each link alone stays inside; the chain climbs out.
        let mut chain = vec![
            ("a/b".to_owned(), L, "..".to_owned()),
            ("p1".to_owned(), L, "a/b/..".to_owned()),
        ];
        for n in 2..=15 {
            chain.push((format!("p{n}"), L, format!("p{}/..", n - 1)));
        }
        chain.push(("x".to_owned(), L, "p15/etc/shadow".to_owned()));
        let members: Vec<(&str, Shape, &str)> = chain
            .iter()
            .map(|(n, s, t)| (n.as_str(), *s, t.as_str()))
            .collect();
        assert!(refused(&members).starts_with("p1: symlink points outside"));
        // The same chain with the links in reverse order is caught too.
        let reversed: Vec<_> = members.iter().rev().copied().collect();
        assert!(check(&reversed, false).is_err());
        // Loops and links to the folder itself lead nowhere outside.
        assert!(
            check(
                &[
                    ("loop", L, "loop"),
                    ("self", L, "."),
                    ("a", L, "b"),
                    ("b", L, "a")
                ],
                false
            )
            .is_ok()
        );
        assert!(check(&[("d/s", L, "/etc"), ("u", L, "../x")], true).is_ok());
    }
}
