//! `backup_manager contents NAME [--long]`: the members of `backups/NAME.tar`, one a line,
//! like `tar -tf` (with `--long`, like `tar -tvf`). Names are escaped as in every message.

use crate::archive;
use crate::archive::check::is_record;
use crate::clock::LocalTime;
use crate::error::{Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan::Name;
use crate::stdout;
use std::io;
use tar::EntryType;

/// Carries out `contents`.
pub fn contents(layout: &Layout, log: &Log, name: &Name, long: bool) -> Result<Outcome> {
    let stored = archive::open(layout, name)?;
    let display = stored.display();
    let unreadable = |err: io::Error| Error::failed(format!("can't read {display}")).because(err);
    let mut archive = tar::Archive::new(stored.read_from_start().map_err(unreadable)?);
    let mut listing = String::new();
    for entry in archive.entries_with_seek().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let header = entry.header();
        if is_record(header.entry_type()) {
            continue;
        }
        if long {
            listing.push_str(&long_prefix(header));
        }
        listing.push_str(&show_bytes(&entry.path_bytes()));
        if long && let Some(target) = entry.link_name_bytes() {
            let arrow = match header.entry_type() {
                EntryType::Symlink => " -> ",
                _ => " link to ",
            };
            listing.push_str(arrow);
            listing.push_str(&show_bytes(&target));
        }
        listing.push('\n');
        // Large archives print as they go, in pieces, not all at the end.
        if listing.len() > 1 << 16 {
            stdout::print(listing.as_bytes())?;
            listing.clear();
        }
    }
    stdout::print(listing.as_bytes())?;
    // Like `tar -tzf`, the listing ends with an error when the compressed stream's checksum,
    // at its very end, does not match.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(unreadable)?;
    log.write(&format!("Show contents of {display}"));
    Ok(Outcome::Done)
}

/// `-rw-r--r-- user/group       size yyyy-mm-dd hh:mm `, as `tar -tvf` starts a line.
fn long_prefix(header: &tar::Header) -> String {
    let kind = match header.entry_type() {
        EntryType::Directory => 'd',
        EntryType::Symlink => 'l',
        EntryType::Link => 'h',
        EntryType::Fifo => 'p',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        _ => '-',
    };
    let mode = header.mode().unwrap_or(0);
    let mut text = String::with_capacity(64);
    text.push(kind);
    for (shift, letters) in [(6, "rwx"), (3, "rwx"), (0, "rwx")] {
        for (bit, letter) in letters.chars().enumerate() {
            let on = mode >> (shift + 2 - bit) & 1 == 1;
            text.push(if on { letter } else { '-' });
        }
    }
    let owner = |name: Option<&[u8]>, id: Option<u64>| match name.filter(|n| !n.is_empty()) {
        Some(name) => show_bytes(name),
        None => id.map_or_else(|| "?".to_owned(), |id| id.to_string()),
    };
    let user = owner(header.username_bytes(), header.uid().ok());
    let group = owner(header.groupname_bytes(), header.gid().ok());
    // A sparse member lists its real size, as GNU tar shows it, not the data stored.
    let size = match header.as_gnu() {
        Some(gnu) if header.entry_type() == EntryType::GNUSparse => gnu.real_size(),
        _ => header.entry_size(),
    }
    .unwrap_or(0);
    let mtime = header.mtime().map_or(0, |mtime| mtime.cast_signed());
    let when = LocalTime::at(mtime).date_time();
    let when = when.get(..16).unwrap_or(&when);
    text.push_str(&format!(" {user}/{group} {size:>9} {when} "));
    text
}
