//! Which archives make the state of a name that `restore`, `verify` and `contents` read: the
//! archive in place, as before incrementals; or, once level-1s are there (or `--as-of`
//! asks), the newest state at or before the time asked: a full, and the level-1 made
//! against it if the state is a level-1's. Under a level-1, a full gives only the members the
//! level-1's dumpdirs list as unchanged (`N`).

use crate::archive::incremental::{UNCHANGED, parse_dumpdir};
use crate::archive::member::Member;
use crate::archive::{self, Stored, check::is_record};
use crate::clock::wall_minute_log_stamp;
use crate::crypt::Identities;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::log::show_bytes;
use crate::plan::Name;
use crate::store::catalog;
use crate::store::chain::Chains;
use std::collections::HashSet;
use std::io::{self, Read};

/// A dumpdir longer than this is refused: one of ten million entries is longer still.
const MAX_DUMPDIR: u64 = 256 << 20;

/// The archives of the state of `name` asked for, the full first, each opened once.
pub fn parts(
    layout: &Layout,
    name: &Name,
    as_of: Option<i64>,
    keys: &Identities,
) -> Result<Vec<Stored>> {
    let records = catalog::load(layout).unwrap_or_default();
    parts_of(
        layout,
        name,
        &Chains::of(layout, name, &records, keys),
        as_of,
    )
}

/// [`parts`] of chains already read.
pub fn parts_of(
    layout: &Layout,
    name: &Name,
    chains: &Chains,
    as_of: Option<i64>,
) -> Result<Vec<Stored>> {
    if as_of.is_none() && !chains.has_level_ones() {
        return Ok(vec![archive::open(layout, name)?]);
    }
    let Some(state) = chains.newest_state(as_of) else {
        let shown = show_bytes(name);
        return Err(Error::failed(match as_of {
            Some(minute) => format!(
                "no archive of {shown} from {} or before",
                wall_minute_log_stamp(minute)
            ),
            None => format!("no archive of {shown} can be restored"),
        }));
    };
    let mut parts = vec![archive::open_file(layout, &state.full.file)?];
    if let Some(level_one) = state.level_one {
        parts.push(archive::open_file(layout, &level_one.file)?);
    }
    Ok(parts)
}

/// How messages name the state: its archive, or a level-1 with the full it needs.
pub fn display(parts: &[Stored]) -> String {
    match parts {
        [full, level_one] => format!("{} (on {})", level_one.display(), full.display()),
        parts => parts
            .iter()
            .map(Stored::display)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The member keys (`a/b/c`) that a level-1's dumpdirs list as unchanged: what its full
/// gives the state. A dumpdir backupbox would not write is damage.
pub fn unchanged(level_one: impl Read + io::Seek) -> io::Result<HashSet<Vec<u8>>> {
    let mut unchanged = HashSet::new();
    let mut archive = tar::Archive::new(level_one);
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        if is_record(entry.header().entry_type()) || entry.header().entry_type().as_byte() != b'D' {
            continue;
        }
        let member = Member::read(&mut entry)?;
        for (flag, key) in dumpdir_of(&member, &mut entry)? {
            if flag == UNCHANGED {
                unchanged.insert(key);
            }
        }
    }
    Ok(unchanged)
}

/// The entries of the dumpdir member `member` (whose data `entry` is about to read): each
/// flag with the entry's member key (`a/b/c`). One longer than [`MAX_DUMPDIR`], or one
/// backupbox would not write, is damage.
pub fn dumpdir_of(member: &Member, entry: &mut impl Read) -> io::Result<Vec<(u8, Vec<u8>)>> {
    let damaged = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: a dumpdir backupbox does not write",
                crate::log::show_name(&member.name)
            ),
        )
    };
    let mut listing = Vec::new();
    entry.take(MAX_DUMPDIR + 1).read_to_end(&mut listing)?;
    if listing.len() as u64 > MAX_DUMPDIR {
        return Err(damaged());
    }
    let directory = crate::manager::restore::key(&member.name);
    Ok(parse_dumpdir(&listing)
        .ok_or_else(damaged)?
        .into_iter()
        .map(|(flag, child)| {
            let mut key = directory.clone();
            if !key.is_empty() {
                key.push(b'/');
            }
            key.extend_from_slice(child);
            (flag, key)
        })
        .collect())
}
