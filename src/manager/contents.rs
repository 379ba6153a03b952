//! `backup_manager contents NAME [--long] [--as-of TIME]`: the members of `backups/NAME.tar`,
//! one a line, like `tar -tf` (with `--long`, like `tar -tvf`); once there are level-1s, of
//! the newest state (a level-1's members with the unchanged ones of its full). Names are
//! escaped as in every message.

use crate::archive::Stored;
use crate::archive::check::is_record;
use crate::archive::incremental::UNCHANGED;
use crate::archive::member::{Member, NotAFile};
use crate::clock::LocalTime;
use crate::crypt::Identities;
use crate::error::{Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan::Name;
use crate::stdout;
use std::collections::HashMap;
use std::io;
use tar::EntryType;

/// What `contents` lists, and how.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    /// Like `tar -tvf`, not `tar -tf`.
    pub long: bool,
    /// A JSON object a line, one per member.
    pub json: bool,
    /// The newest state at or before this local wall-clock minute.
    pub as_of: Option<i64>,
}

/// Carries out `contents`.
pub fn contents(
    layout: &Layout,
    log: &Log,
    name: &Name,
    how: Listing,
    keys: &Identities,
) -> Result<Outcome> {
    let parts = crate::manager::state::parts(layout, name, how.as_of, keys)?;
    for part in &parts {
        part.require_key(keys)?;
    }
    let display = crate::manager::state::display(&parts);
    let mut lines = Lines {
        long: how.long,
        json: how.json,
        columns: Columns::default(),
        text: String::new(),
    };
    match parts.as_slice() {
        [full, level_one] => list_state(full, level_one, keys, &mut lines)?,
        parts => {
            for part in parts {
                list_archive(part, keys, &mut lines)?;
            }
        }
    }
    lines.flush()?;
    log.write(&format!("Show contents of {display}"));
    Ok(Outcome::Done)
}

/// The listing as it is made: printed in pieces, not all at the end.
struct Lines {
    long: bool,
    json: bool,
    columns: Columns,
    text: String,
}

/// A member as one JSON object: `{"name", "type", "mode", "size", "mtime", "uid", "gid",
/// "user", "group", "link"}`.
fn json_line(member: &Member) -> String {
    use crate::log::quoted;
    let kind = match mode_string(member.kind, &member.name, member.mode)
        .chars()
        .next()
    {
        Some('d') => "directory",
        Some('-') => "file",
        Some('l') => "symlink",
        Some('h') => "hardlink",
        Some('p') => "fifo",
        Some('c') => "char",
        Some('b') => "block",
        Some('V') => "label",
        _ => "other",
    };
    let link = member
        .link
        .as_ref()
        .map_or_else(|| "null".to_owned(), |link| quoted(&show_bytes(link)));
    format!(
        "{{\"name\": {}, \"type\": \"{kind}\", \"mode\": \"{:04o}\", \"size\": {}, \"mtime\": {}, \"uid\": {}, \"gid\": {}, \"user\": {}, \"group\": {}, \"link\": {link}}}",
        quoted(&show_bytes(&member.name)),
        member.mode & 0o7777,
        member.size,
        member.mtime.seconds,
        member.uid,
        member.gid,
        quoted(&show_bytes(&member.uname)),
        quoted(&show_bytes(&member.gname)),
    )
}

impl Lines {
    /// One member's line, `tar -tf`'s or `tar -tvf`'s, or its JSON.
    fn add(&mut self, member: &Member) -> Result<()> {
        if self.json {
            self.text.push_str(&json_line(member));
            self.text.push('\n');
            return self.flush_if_full();
        }
        if self.long {
            self.text.push_str(&self.columns.prefix(member));
        }
        self.text.push_str(&show_bytes(&member.name));
        if self.long && member.not_a_file() == Some(NotAFile::VolumeLabel) {
            self.text.push_str("--Volume Header--");
        }
        let arrow = match member.kind {
            EntryType::Symlink => Some(" -> "),
            EntryType::Link => Some(" link to "),
            _ => None,
        };
        if self.long
            && let (Some(arrow), Some(target)) = (arrow, &member.link)
        {
            self.text.push_str(arrow);
            self.text.push_str(&show_bytes(target));
        }
        self.text.push('\n');
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.text.len() > 1 << 16 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        stdout::print(self.text.as_bytes())?;
        self.text.clear();
        Ok(())
    }
}

fn unreadable(stored: &Stored) -> impl Fn(io::Error) -> Error + '_ {
    move |err| Error::failed(format!("can't read {}", stored.display())).because(err)
}

/// Calls `each` with every member of `stored` (its records passed over), then reads the
/// stream to its end: like `tar -tzf`, a listing ends with an error when a compressed
/// stream's checksum, at its very end, does not match.
fn for_each_member(
    stored: &Stored,
    keys: &Identities,
    each: &mut dyn FnMut(
        Member,
        &mut tar::Entry<crate::archive::tar_reader::TarReader<'_>>,
    ) -> Result<()>,
) -> Result<()> {
    let unreadable = unreadable(stored);
    let mut archive = tar::Archive::new(stored.read_from_start(keys).map_err(&unreadable)?);
    for entry in archive.entries_with_seek().map_err(&unreadable)? {
        let mut entry = entry.map_err(&unreadable)?;
        if is_record(entry.header().entry_type()) {
            continue;
        }
        let member = Member::read(&mut entry).map_err(&unreadable)?;
        each(member, &mut entry)?;
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(&unreadable)?;
    Ok(())
}

/// Every member of one archive, as `tar -tf` lists them.
fn list_archive(stored: &Stored, keys: &Identities, lines: &mut Lines) -> Result<()> {
    for_each_member(stored, keys, &mut |member, _| lines.add(&member))
}

/// The state a level-1 makes on its full: the level-1's members in its order (its label
/// left out), each directory followed by the files its dumpdir lists as unchanged, from
/// the full.
fn list_state(
    full: &Stored,
    level_one: &Stored,
    keys: &Identities,
    lines: &mut Lines,
) -> Result<()> {
    let unchanged = crate::manager::state::unchanged(
        level_one
            .read_from_start(keys)
            .map_err(unreadable(level_one))?,
    )
    .map_err(unreadable(level_one))?;
    let mut from_full = HashMap::new();
    for_each_member(full, keys, &mut |member, _| {
        let key = crate::manager::restore::key(&member.name);
        if unchanged.contains(&key) {
            from_full.insert(key, member);
        }
        Ok(())
    })?;
    let unreadable = unreadable(level_one);
    for_each_member(level_one, keys, &mut |member, entry| {
        if member.not_a_file() == Some(NotAFile::VolumeLabel) {
            return Ok(());
        }
        lines.add(&member)?;
        if entry.header().entry_type().as_byte() != b'D' {
            return Ok(());
        }
        let children = crate::manager::state::dumpdir_of(&member, entry).map_err(&unreadable)?;
        for (flag, key) in children {
            if let Some(kept) = from_full.remove(&key).filter(|_| flag == UNCHANGED) {
                lines.add(&kept)?;
            }
        }
        Ok(())
    })
}

/// The columns of `tar -tvf`, which widen as GNU tar's do: the owner-and-size column and the
/// date column only grow, to the widest seen so far, so every line matches GNU tar 1.34's.
struct Columns {
    owner_and_size: usize,
    date: usize,
}

impl Default for Columns {
    fn default() -> Columns {
        // GNU tar's starting widths: 19, and "yyyy-mm-dd hh:mm".
        Columns {
            owner_and_size: 19,
            date: 16,
        }
    }
}

impl Columns {
    /// `-rw-r--r-- user/group       size yyyy-mm-dd hh:mm `, as `tar -tvf` starts a line.
    fn prefix(&mut self, member: &Member) -> String {
        let owner = |name: &[u8], id: u64| {
            if name.is_empty() {
                id.to_string()
            } else {
                show_bytes(name)
            }
        };
        let user = owner(&member.uname, member.uid);
        let group = owner(&member.gname, member.gid);
        let size = match member.kind {
            EntryType::Char | EntryType::Block => {
                format!("{},{}", member.device.0, member.device.1)
            }
            _ => member.size.to_string(),
        };
        // GNU tar's count: user, slash, group, the space, the size.
        let used = user.len() + 1 + group.len() + 1 + size.len();
        self.owner_and_size = self.owner_and_size.max(used);
        let when = tar_time(member.listed_seconds);
        self.date = self.date.max(when.len());
        format!(
            "{} {user}/{group} {size:>width$} {when:<date$} ",
            mode_string(member.kind, &member.name, member.mode),
            width = self.owner_and_size - used + size.len(),
            date = self.date
        )
    }
}

/// The ten-character mode of `tar -tvf`: the type, then `rwx` with set-id and sticky bits
/// as `s`/`S` and `t`/`T`.
fn mode_string(kind: EntryType, name: &[u8], mode: u32) -> String {
    let kind = match kind {
        // `D`: a GNU incremental dumpdir, a directory with its listing.
        EntryType::Directory => 'd',
        other if other.as_byte() == b'D' => 'd',
        // An old-style directory: a regular member whose name ends in `/`.
        EntryType::Regular if name.ends_with(b"/") => 'd',
        EntryType::Regular | EntryType::GNUSparse => '-',
        EntryType::Symlink => 'l',
        EntryType::Link => 'h',
        EntryType::Fifo => 'p',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::Continuous => 'C',
        other => match other.as_byte() {
            b'V' => 'V',
            b'M' => 'M',
            _ => '?',
        },
    };
    let bit = |shift: u32| mode >> shift & 1 == 1;
    let special = |special: bool, execute: bool, on: char| match (special, execute) {
        (true, true) => on,
        (true, false) => on.to_ascii_uppercase(),
        (false, true) => 'x',
        (false, false) => '-',
    };
    let flag = |on: bool, letter: char| if on { letter } else { '-' };
    [
        kind,
        flag(bit(8), 'r'),
        flag(bit(7), 'w'),
        special(bit(11), bit(6), 's'),
        flag(bit(5), 'r'),
        flag(bit(4), 'w'),
        special(bit(10), bit(3), 's'),
        flag(bit(2), 'r'),
        flag(bit(1), 'w'),
        special(bit(9), bit(0), 't'),
    ]
    .iter()
    .collect()
}

/// `yyyy-mm-dd hh:mm` in local time for any mtime, as GNU tar prints it: years before 1000 with
/// leading zeros, negative and five-digit years as they are; the number of seconds where no
/// calendar year fits.
fn tar_time(mtime: i64) -> String {
    let wall = mtime.saturating_add(i64::from(LocalTime::at(mtime).offset));
    let (days, seconds) = (wall.div_euclid(86_400), wall.rem_euclid(86_400));
    match crate::clock::civil_date(days) {
        Some((year, month, day)) => format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}",
            seconds / 3600,
            seconds % 3600 / 60
        ),
        None => mtime.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_show_set_id_and_sticky_bits_as_gnu_tar_does() {
        let mode = |kind, mode| mode_string(kind, b"x", mode);
        assert_eq!(mode(EntryType::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode(EntryType::Regular, 0o4644), "-rwSr--r--");
        assert_eq!(mode(EntryType::Regular, 0o2640), "-rw-r-S---");
        assert_eq!(mode(EntryType::Regular, 0o2750), "-rwxr-s---");
        assert_eq!(mode(EntryType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode(EntryType::Regular, 0o1644), "-rw-r--r-T");
        assert_eq!(mode(EntryType::Char, 0o600), "crw-------");
        assert_eq!(mode(EntryType::new(b'D'), 0o755), "drwxr-xr-x");
        assert_eq!(
            mode_string(EntryType::Regular, b"old/", 0o755),
            "drwxr-xr-x"
        );
    }
}
