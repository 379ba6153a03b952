//! The checks every member passes before a restore writes anything. Pure: member names,
//! kinds and link targets in, a refusal naming the member out.
//!
//! The archive is judged as the tree it would make: nothing may be written under a symlink or
//! a non-directory it makes, no path may be made twice, a hard link must name a member made
//! before it, and a symlink must resolve inside the restore folder when followed through the
//! links the archive itself makes, chains included.

use crate::log::show_name;
use std::collections::{HashMap, HashSet, VecDeque};

/// What a member makes on disk, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Directory,
    Symlink,
    HardLink,
    /// A regular file, FIFO or device.
    Other,
}

/// The non-empty, non-`.` components of a member path (`..` kept, for the checks to see).
pub fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect()
}

/// Why a member name may not be used at all: empty, absolute, or climbing out with `..`.
pub fn name_refusal(name: &[u8]) -> Option<String> {
    if name.is_empty() {
        return Some("a member has an empty name".to_owned());
    }
    let shown = show_name(name);
    if name.starts_with(b"/") {
        return Some(format!("{shown}: absolute member name"));
    }
    if components(name).contains(&&b".."[..]) {
        return Some(format!("{shown}: member name contains '..'"));
    }
    None
}

/// Hops through symlinks one resolution may take. Far beyond the kernel's 40, so a chain
/// we give up on (and refuse) is one nobody could follow anyway.
const MAX_HOPS: usize = 256;

/// The tree an archive would make, built member by member.
pub struct Checker {
    /// Every path the archive makes, directories it implies included, by `a/b/c` key.
    placed: HashMap<Vec<u8>, Shape>,
    /// The archive's symlinks in archive order: name, key and target.
    symlinks: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Directories the archive has members for, not only implies.
    directory_members: HashSet<Vec<u8>>,
    outside_links: bool,
}

impl Checker {
    /// Symlinks leading out of the restore folder are refused unless `outside_links` allows
    /// them (a backup of /etc has many); nothing is ever written through one either way.
    pub fn new(outside_links: bool) -> Checker {
        Checker {
            placed: HashMap::new(),
            symlinks: Vec::new(),
            directory_members: HashSet::new(),
            outside_links,
        }
    }

    /// Takes the next member, or says why it may not be restored.
    pub fn member(&mut self, name: &[u8], shape: Shape, link: Option<&[u8]>) -> Result<(), String> {
        if let Some(refusal) = name_refusal(name) {
            return Err(refusal);
        }
        let shown = show_name(name);
        let parts = components(name);
        if parts.is_empty() {
            return match shape {
                Shape::Directory => Ok(()),
                _ => Err(format!("{shown}: names the restore folder itself")),
            };
        }
        self.place_parents(&parts, &shown)?;
        let key = parts.join(&b'/');
        match (self.placed.get(&key), shape) {
            (None, _) | (Some(Shape::Directory), Shape::Directory) => {}
            (Some(Shape::Directory), _) => {
                return Err(format!(
                    "{shown}: would replace a directory the archive makes"
                ));
            }
            (Some(_), _) => return Err(format!("{shown}: appears twice in the archive")),
        }
        match shape {
            Shape::HardLink => self.check_hard_link(&shown, link.unwrap_or_default())?,
            Shape::Symlink => self.symlinks.push((
                name.to_vec(),
                key.clone(),
                link.unwrap_or_default().to_vec(),
            )),
            Shape::Directory => {
                self.directory_members.insert(key.clone());
            }
            Shape::Other => {}
        }
        self.placed.insert(key, shape);
        Ok(())
    }

    /// Records the directories above a member, refusing a path that goes through a symlink
    /// or a non-directory of the archive. Climbs only until it meets a directory already
    /// placed, whose own parents were checked then, so deep trees cost linear time.
    fn place_parents(&mut self, parts: &[&[u8]], shown: &str) -> Result<(), String> {
        for depth in (1..parts.len()).rev() {
            let key = parts[..depth].join(&b'/');
            match self.placed.get(&key) {
                Some(Shape::Directory) => break,
                Some(Shape::Symlink) => {
                    return Err(format!("{shown}: would be written through a symlink"));
                }
                Some(Shape::HardLink | Shape::Other) => {
                    return Err(format!(
                        "{shown}: would be written under {}, which is not a directory",
                        show_name(&key)
                    ));
                }
                None => {
                    self.placed.insert(key, Shape::Directory);
                }
            }
        }
        Ok(())
    }

    /// A hard link must name a file, FIFO, device or symlink that the archive made before it:
    /// never a directory, never something already on disk, never a path through a symlink.
    fn check_hard_link(&self, shown: &str, target: &[u8]) -> Result<(), String> {
        let parts = components(target);
        if target.starts_with(b"/") || parts.contains(&&b".."[..]) {
            return Err(format!(
                "{shown}: hard link points outside the restore folder"
            ));
        }
        match self.placed.get(&parts.join(&b'/')) {
            Some(Shape::Other | Shape::Symlink | Shape::HardLink) => Ok(()),
            Some(Shape::Directory) => Err(format!("{shown}: hard link to a directory")),
            None => Err(format!(
                "{shown}: hard link to {}, which the archive does not make before it",
                show_name(target)
            )),
        }
    }

    /// Whether a directory member for `parts` came before: restore makes that directory
    /// itself, replacing what is on disk there when forced.
    pub fn has_directory_member(&self, parts: &[&[u8]]) -> bool {
        self.directory_members.contains(&parts.join(&b'/'))
    }

    /// Judges every symlink against all the others, once the whole archive is known: a link
    /// that stays inside on its own may lead out through one that comes later.
    pub fn finish(self) -> Result<(), String> {
        if self.outside_links {
            return Ok(());
        }
        let targets: HashMap<&[u8], &[u8]> = self
            .symlinks
            .iter()
            .map(|(_, key, target)| (key.as_slice(), target.as_slice()))
            .collect();
        for (name, key, target) in &self.symlinks {
            let parts = components(key);
            let parent = &parts[..parts.len() - 1];
            if escapes(&targets, parent, target) {
                return Err(format!(
                    "{}: symlink points outside the restore folder ({}); add --outside-links to restore such links as they are",
                    show_name(name),
                    show_name(target)
                ));
            }
        }
        Ok(())
    }
}

/// Whether `target`, a symlink's text in directory `parent`, leads outside the restore
/// folder when followed as the kernel would, through the archive's own `links` (by key).
/// A loop leads nowhere, so it does not escape.
fn escapes(links: &HashMap<&[u8], &[u8]>, parent: &[&[u8]], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut dir: Vec<Vec<u8>> = parent.iter().map(|part| part.to_vec()).collect();
    let mut pending: VecDeque<Vec<u8>> =
        components(target).into_iter().map(<[u8]>::to_vec).collect();
    let mut seen = HashSet::new();
    while let Some(part) = pending.pop_front() {
        if part == b".." {
            if dir.pop().is_none() {
                return true;
            }
            continue;
        }
        dir.push(part);
        let Some(next) = links.get(dir.join(&b'/').as_slice()) else {
            continue;
        };
        dir.pop();
        if next.starts_with(b"/") {
            return true;
        }
        // The same place with the same path still to go: this goes round for ever.
        if !seen.insert((dir.clone(), pending.clone())) {
            return false;
        }
        if seen.len() > MAX_HOPS {
            return true;
        }
        for part in components(next).into_iter().rev() {
            pending.push_front(part.to_vec());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(members: &[(&str, Shape, &str)], outside_links: bool) -> Result<(), String> {
        let mut checker = Checker::new(outside_links);
        for (name, shape, link) in members {
            checker.member(name.as_bytes(), *shape, Some(link.as_bytes()))?;
        }
        checker.finish()
    }

    fn refused(members: &[(&str, Shape, &str)]) -> String {
        check(members, false).unwrap_err()
    }

    use Shape::{Directory as D, HardLink as H, Other as F, Symlink as L};

    #[test]
    fn names_must_stay_inside() {
        assert_eq!(check(&[("d/f", F, ""), ("./e//f", F, "")], false), Ok(()));
        assert_eq!(
            refused(&[("/etc/passwd", F, "")]),
            "/etc/passwd: absolute member name"
        );
        assert_eq!(
            refused(&[("d/../../x", F, "")]),
            "d/../../x: member name contains '..'"
        );
        assert_eq!(refused(&[("", F, "")]), "a member has an empty name");
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
    fn a_path_is_made_once() {
        assert_eq!(
            check(&[("d/", D, ""), ("d", D, ""), ("d/f", F, "")], false),
            Ok(())
        );
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
        assert_eq!(check(&[("d/f", F, ""), ("d/h", H, "d/f")], false), Ok(()));
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
        assert_eq!(
            check(&[("d/s", L, "../x"), ("d/t", L, "e/../f")], false),
            Ok(())
        );
        assert!(refused(&[("d/s", L, "../../x")]).starts_with("d/s: symlink points outside"));
        assert!(refused(&[("d/s", L, "/etc")]).contains("(/etc); add --outside-links"));
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
        assert_eq!(
            check(
                &[
                    ("loop", L, "loop"),
                    ("self", L, "."),
                    ("a", L, "b"),
                    ("b", L, "a")
                ],
                false
            ),
            Ok(())
        );
        assert_eq!(check(&[("d/s", L, "/etc"), ("u", L, "../x")], true), Ok(()));
    }
}
