//! `backup_manager verify NAME [--against]`: reads `backups/NAME.tar` end to end and reports
//! the first structural defect (header checksum, size, truncation, end marker), and with
//! `--against` every way the live folder differs from the archive, like `tar --compare`.

use crate::archive::member_name::root_member;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes, show_name};
use crate::plan;
use crate::plan::file as plan_file;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

const BLOCK: usize = 512;
/// Longest `././@LongLink` name or pax record accepted; anything longer is a damaged size
/// field or an attack on the memory of whoever reads the archive next.
const MAX_LONG_NAME: u64 = 1 << 20;

/// What a sound archive holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Soundness {
    pub members: u64,
}

/// Reads a whole tar stream and returns its first defect, with the byte offset where it is.
pub fn check_structure(mut input: impl Read) -> std::result::Result<Soundness, String> {
    let mut block = [0u8; BLOCK];
    let mut offset: u64 = 0;
    let mut members = 0;
    let mut last_name: Option<Vec<u8>> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let unreadable = |err: io::Error| format!("can't read ({err})");
    let after = |name: &Option<Vec<u8>>| match name {
        Some(name) => format!(" (after member {})", show_name(name)),
        None => String::new(),
    };
    loop {
        match read_full(&mut input, &mut block).map_err(unreadable)? {
            0 => {
                return Err(format!(
                    "no end-of-archive marker: the archive ends at byte {offset}{}",
                    after(&last_name)
                ));
            }
            BLOCK => {}
            _ => return Err(format!("truncated inside a header at byte {offset}")),
        }
        if block.iter().all(|&b| b == 0) {
            let second = read_full(&mut input, &mut block).map_err(unreadable)?;
            if second == BLOCK && block.iter().all(|&b| b == 0) {
                return Ok(Soundness { members });
            }
            return Err(format!(
                "incomplete end-of-archive marker at byte {offset}{}",
                after(&last_name)
            ));
        }
        if !checksum_matches(&block) {
            return Err(format!(
                "bad header checksum at byte {offset}{}",
                after(&last_name)
            ));
        }
        let header = Header::from_byte_slice(&block);
        let size = header
            .entry_size()
            .map_err(|_| format!("bad size field at byte {offset}{}", after(&last_name)))?;
        let kind = header.entry_type();
        let name = long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let header_offset = offset;
        offset += BLOCK as u64;
        if kind == EntryType::GNUSparse && block[482] == 1 {
            // Extension blocks of the sparse map follow until one says it is the last.
            loop {
                if read_full(&mut input, &mut block).map_err(unreadable)? != BLOCK {
                    return Err(format!(
                        "truncated in the sparse map of {} at byte {offset}",
                        show_name(&name)
                    ));
                }
                offset += BLOCK as u64;
                if block[504] == 0 {
                    break;
                }
            }
        }
        let Some(padded) = size
            .checked_next_multiple_of(BLOCK as u64)
            .filter(|padded| offset.checked_add(*padded).is_some())
        else {
            return Err(format!(
                "bad size field at byte {header_offset}{}",
                after(&last_name)
            ));
        };
        let is_record = matches!(
            kind,
            EntryType::GNULongName
                | EntryType::GNULongLink
                | EntryType::XHeader
                | EntryType::XGlobalHeader
        );
        if is_record && size > MAX_LONG_NAME {
            return Err(format!(
                "implausible long-name or pax record of {size} bytes at byte {header_offset}"
            ));
        }
        if kind == EntryType::GNULongName {
            let mut data = Vec::new();
            let got = (&mut input)
                .take(padded)
                .read_to_end(&mut data)
                .map_err(unreadable)? as u64;
            if got < padded {
                return Err(format!(
                    "truncated in a long-name record at byte {offset}{}",
                    after(&last_name)
                ));
            }
            data.truncate(size as usize);
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            data.truncate(end);
            long_name = Some(data);
            offset += padded;
            continue;
        }
        let got = io::copy(&mut (&mut input).take(padded), &mut io::sink()).map_err(unreadable)?;
        if got < padded {
            return Err(format!(
                "truncated: member {} needs {padded} bytes of data from byte {offset}, the archive has {got}",
                show_name(&name)
            ));
        }
        offset += padded;
        // Long-link and pax records describe the next member; they are not members.
        if !matches!(
            kind,
            EntryType::GNULongLink | EntryType::XHeader | EntryType::XGlobalHeader
        ) {
            members += 1;
            last_name = Some(name);
        }
    }
}

/// The stored checksum equals the sum of the header bytes with the checksum field as spaces,
/// summed unsigned or (as old tars did) signed.
fn checksum_matches(block: &[u8; BLOCK]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let Some(stored) = std::str::from_utf8(&digits)
        .ok()
        .filter(|d| !d.is_empty())
        .and_then(|d| i64::from_str_radix(d, 8).ok())
    else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// Opens `backups/NAME.tar` for reading: a regular file, never through a symlink.
pub fn open_archive(layout: &Layout, name: &[u8]) -> Result<File> {
    crate::sys::open::open_regular(&layout.archive_path(name)).map_err(|err| {
        Error::failed(format!("can't read {}", Layout::archive_display(name))).because(err)
    })
}

/// Carries out `verify`.
pub fn verify(layout: &Layout, log: &Log, name: &[u8], against: bool) -> Result<()> {
    let display = Layout::archive_display(name);
    let file = open_archive(layout, name)?;
    let sound = check_structure(io::BufReader::with_capacity(1 << 20, &file))
        .map_err(|defect| Error::failed(format!("{display} is damaged: {defect}")))?;
    let mut summary = format!("{display}: sound, {} members", sound.members);
    if against {
        let folder = schedule_folder(layout, name)?;
        let file = open_archive(layout, name)?;
        let differences = compare(file, &folder, &layout.resolve_folder(&folder))
            .map_err(|err| Error::failed(format!("can't compare {display}")).because(err))?;
        let shown = show_bytes(&folder);
        let mut listing = String::new();
        for difference in &differences {
            listing.push_str(difference);
            listing.push('\n');
        }
        print!("{listing}");
        match differences.len() {
            0 => {}
            1 => {
                return Err(Error::failed(format!(
                    "{display} differs from {shown} in 1 place"
                )));
            }
            n => {
                return Err(Error::failed(format!(
                    "{display} differs from {shown} in {n} places"
                )));
            }
        }
        summary.push_str(&format!(", same as {shown}"));
    }
    println!("{summary}");
    log.write(&format!("Verified {summary}"));
    Ok(())
}

/// The folder of the first schedule that writes archive `name`.
fn schedule_folder(layout: &Layout, name: &[u8]) -> Result<Vec<u8>> {
    let text = plan_file::read(layout)?;
    plan::entries(&text)
        .iter()
        .filter_map(|entry| entry.schedule())
        .find(|schedule| schedule.name == name)
        .map(|schedule| schedule.folder)
        .ok_or_else(|| {
            Error::failed(format!(
                "no schedule in the plan writes {}",
                Layout::archive_display(name)
            ))
        })
}

/// Compares each member with the file it was made from; returns one line per difference.
pub fn compare(archive: File, folder: &[u8], live_root: &Path) -> io::Result<Vec<String>> {
    let root = root_member(folder);
    let mut differences = Vec::new();
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, archive));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let member = entry.path_bytes().into_owned();
        let shown = show_name(member.strip_suffix(b"/").unwrap_or(&member));
        // Like restore, never look outside the folder: a crafted `..` name would make
        // verify an oracle for the contents of any file.
        if let Some(refusal) = crate::manager::restore::name_refusal(&member) {
            differences.push(format!("{refusal}; not compared"));
            continue;
        }
        let Some(live) = live_path(&root, &member, live_root) else {
            differences.push(format!("{shown}: not inside the folder"));
            continue;
        };
        let meta = match fs::symlink_metadata(&live) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                differences.push(format!("{shown}: missing on disk"));
                continue;
            }
            Err(err) => {
                differences.push(format!("{shown}: can't read ({err})"));
                continue;
            }
        };
        for what in differences_of(&mut entry, &meta, &live)? {
            differences.push(format!("{shown}: {what}"));
        }
    }
    Ok(differences)
}

/// The live path of `member`, if it lies under the archive's root member.
fn live_path(root: &[u8], member: &[u8], live_root: &Path) -> Option<PathBuf> {
    let trimmed_root = root.strip_suffix(b"/").unwrap_or(root);
    let trimmed = member.strip_suffix(b"/").unwrap_or(member);
    if trimmed == trimmed_root {
        return Some(live_root.to_path_buf());
    }
    let rest = member.strip_prefix(root)?;
    Some(live_root.join(OsStr::from_bytes(rest)))
}

fn differences_of(
    entry: &mut tar::Entry<impl Read>,
    meta: &fs::Metadata,
    live: &Path,
) -> io::Result<Vec<&'static str>> {
    let header = entry.header();
    let kind = header.entry_type();
    let file_type = meta.file_type();
    let same_type = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => file_type.is_file(),
        EntryType::Directory => file_type.is_dir(),
        EntryType::Symlink => file_type.is_symlink(),
        EntryType::Fifo => file_type.is_fifo(),
        EntryType::Char => file_type.is_char_device(),
        EntryType::Block => file_type.is_block_device(),
        _ => true,
    };
    if !same_type {
        return Ok(vec!["file type differs"]);
    }
    let mut found = Vec::new();
    if kind == EntryType::Symlink {
        let target = fs::read_link(live)?;
        if entry.link_name_bytes().as_deref() != Some(target.as_os_str().as_bytes()) {
            found.push("symlink target differs");
        }
        return Ok(found);
    }
    if header.mode().ok() != Some(meta.mode() & 0o7777) {
        found.push("mode differs");
    }
    if header.uid().ok() != Some(u64::from(meta.uid())) {
        found.push("uid differs");
    }
    if header.gid().ok() != Some(u64::from(meta.gid())) {
        found.push("gid differs");
    }
    // Times before 1970 are stored in base-256 two's complement, as GNU tar stores them.
    if header.mtime().ok().map(|mtime| mtime as i64) != Some(meta.mtime()) {
        found.push("mod time differs");
    }
    if matches!(kind, EntryType::Char | EntryType::Block) {
        let numbers = (
            header.device_major().ok().flatten(),
            header.device_minor().ok().flatten(),
        );
        let live_numbers = (
            Some(nix::sys::stat::major(meta.rdev()) as u32),
            Some(nix::sys::stat::minor(meta.rdev()) as u32),
        );
        if numbers != live_numbers {
            found.push("device numbers differ");
        }
    }
    if file_type.is_file() {
        if entry.size() != meta.len() {
            found.push("size differs");
        } else if !same_contents(entry, live)? {
            found.push("contents differ");
        }
    }
    Ok(found)
}

fn same_contents(entry: &mut impl Read, live: &Path) -> io::Result<bool> {
    let mut file = crate::sys::open::open_regular(live)?;
    let (mut stored, mut current) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(entry, &mut stored)?;
        let m = read_full(&mut file, &mut current[..n.max(1)])?;
        if n != m || stored[..n] != current[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buffer` as far as the input goes; returns how many bytes it got.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-member archive as GNU tar lays it out, made by the archiver's own encoder.
    fn archive() -> Vec<u8> {
        use crate::archive::header::{Kind, Meta, encode};
        let meta = Meta {
            mode: 0o100644,
            uid: 0,
            gid: 0,
            mtime: 1_769_699_250,
            uname: b"root",
            gname: b"root",
        };
        let mut out = Vec::new();
        encode(b"d/", &Kind::Directory, &meta, &mut out);
        let long = "x".repeat(150);
        encode(long.as_bytes(), &Kind::File { size: 600 }, &meta, &mut out);
        out.extend_from_slice(&[7u8; 600]);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    #[test]
    fn a_sound_archive_counts_its_members() {
        assert_eq!(
            check_structure(&archive()[..]),
            Ok(Soundness { members: 2 })
        );
    }

    #[test]
    fn a_flipped_header_byte_is_a_bad_checksum() {
        let mut bytes = archive();
        bytes[BLOCK * 3 + 10] ^= 0x20;
        let defect = check_structure(&bytes[..]).unwrap_err();
        assert_eq!(defect, "bad header checksum at byte 1536 (after member d/)");
    }

    #[test]
    fn truncation_is_found_wherever_it_cuts() {
        let bytes = archive();
        let total = bytes.len();
        assert!(
            check_structure(&bytes[..total - BLOCK])
                .unwrap_err()
                .starts_with("incomplete end-of-archive marker")
        );
        assert!(
            check_structure(&bytes[..total - 2 * BLOCK])
                .unwrap_err()
                .starts_with("no end-of-archive marker")
        );
        let cut = check_structure(&bytes[..BLOCK * 4 + 100]).unwrap_err();
        assert!(
            cut.starts_with(&format!(
                "truncated: member {} needs 1024 bytes",
                "x".repeat(150)
            )),
            "{cut}"
        );
        assert_eq!(
            check_structure(&bytes[..BLOCK + 7]).unwrap_err(),
            "truncated inside a header at byte 512"
        );
    }
}
