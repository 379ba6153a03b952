//! The blocks that describe one member in GNU tar format: long-name records, the header itself
//! and sparse-map extension blocks. Pure: metadata in, bytes out.

use tar::{EntryType, GnuExtSparseHeader, Header};

pub const BLOCK: usize = 512;
/// Where a header keeps its checksum.
pub const CHECKSUM_FIELD: std::ops::Range<usize> = 148..156;
/// The byte of a GNU sparse header that says extension blocks of the map follow.
pub const GNU_IS_EXTENDED: usize = 482;
/// The byte of a sparse-map extension block that says another one follows.
pub const EXTENSION_IS_EXTENDED: usize = 504;
/// Sparse map entries that fit in the main header and in each extension block.
const SPARSE_IN_HEADER: usize = 4;
const SPARSE_IN_EXTENSION: usize = 21;

/// A run of data in a sparse file: `(offset, length)`.
pub type Extent = (u64, u64);

/// What a member is, with what each kind needs beyond the common metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file whose data (this many bytes) follows the header.
    File {
        size: u64,
    },
    /// A file stored as its data extents; `real_size` includes the holes.
    Sparse {
        real_size: u64,
        extents: Vec<Extent>,
    },
    Directory,
    Symlink {
        target: Vec<u8>,
    },
    /// A second or later name of a file already in the archive, as the member name it has
    /// there: GNU tar's hard-link member, with no data of its own.
    HardLink {
        target: Vec<u8>,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    /// A directory of a GNU incremental archive (`D`), with its dumpdir as data: one
    /// `Y`/`N`/`D` flag and NUL-terminated name per entry, and a closing NUL.
    DumpDir {
        listing: Vec<u8>,
    },
    /// A GNU volume label (`V`): names the archive, makes no file.
    VolumeLabel,
}

impl Kind {
    /// Bytes of data that follow the header (before padding to a block).
    pub fn data_size(&self) -> u64 {
        match self {
            Kind::File { size } => *size,
            Kind::Sparse { extents, .. } => extents.iter().map(|(_, len)| len).sum(),
            Kind::DumpDir { listing } => listing.len() as u64,
            _ => 0,
        }
    }
}

/// Ownership, permissions and time of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta<'a> {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch; negative before 1970.
    pub mtime: i64,
    pub uname: &'a [u8],
    pub gname: &'a [u8],
}

/// A device's major or minor number as tar stores it; Linux's fit in 32 bits.
pub fn device_number(number: u64) -> u32 {
    u32::try_from(number).unwrap_or(u32::MAX)
}

/// Appends the header blocks of member `name` to `out` (and a dumpdir's listing, which is
/// all the data it has). Names and link targets of any length and any bytes are kept
/// exactly, through GNU `././@LongLink` records as GNU tar does.
pub fn encode(name: &[u8], kind: &Kind, meta: &Meta, out: &mut Vec<u8>) {
    let mut header = Header::new_gnu();
    if name.len() > 100 {
        encode_long_record(EntryType::GNULongName, name, out);
    }
    let old = header.as_old_mut();
    copy_truncated(&mut old.name, name);
    octal_into(&mut old.mode, u64::from(meta.mode & 0o7777));
    number_into(&mut old.uid, meta.uid);
    number_into(&mut old.gid, meta.gid);
    time_into(&mut old.mtime, meta.mtime);
    number_into(&mut old.size, kind.data_size());
    if let Some(gnu) = header.as_gnu_mut() {
        copy_truncated(&mut gnu.uname, meta.uname);
        copy_truncated(&mut gnu.gname, meta.gname);
    }
    let mut extension_extents: &[Extent] = &[];
    match kind {
        Kind::File { .. } => header.set_entry_type(EntryType::Regular),
        Kind::Directory => header.set_entry_type(EntryType::Directory),
        Kind::DumpDir { .. } => header.set_entry_type(EntryType::new(b'D')),
        Kind::VolumeLabel => header.set_entry_type(EntryType::new(b'V')),
        Kind::Fifo => header.set_entry_type(EntryType::Fifo),
        Kind::Symlink { target } | Kind::HardLink { target } => {
            if target.len() > 100 {
                encode_long_record(EntryType::GNULongLink, target, out);
            }
            header.set_entry_type(match kind {
                Kind::Symlink { .. } => EntryType::Symlink,
                _ => EntryType::Link,
            });
            copy_truncated(&mut header.as_old_mut().linkname, target);
        }
        Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
            let is_char = matches!(kind, Kind::CharDevice { .. });
            header.set_entry_type(if is_char {
                EntryType::Char
            } else {
                EntryType::Block
            });
            if let Some(gnu) = header.as_gnu_mut() {
                octal_into(&mut gnu.dev_major, u64::from(*major));
                octal_into(&mut gnu.dev_minor, u64::from(*minor));
            }
        }
        Kind::Sparse { real_size, extents } => {
            header.set_entry_type(EntryType::GNUSparse);
            let gnu = header.as_gnu_mut().expect("a GNU header");
            number_into(&mut gnu.realsize, *real_size);
            let (in_header, rest) = extents.split_at(extents.len().min(SPARSE_IN_HEADER));
            for (slot, &(offset, length)) in gnu.sparse.iter_mut().zip(in_header) {
                number_into(&mut slot.offset, offset);
                number_into(&mut slot.numbytes, length);
            }
            gnu.set_is_extended(!rest.is_empty());
            extension_extents = rest;
        }
    }
    set_checksum(&mut header);
    out.extend_from_slice(header.as_bytes());
    let mut chunks = extension_extents.chunks(SPARSE_IN_EXTENSION).peekable();
    while let Some(chunk) = chunks.next() {
        let mut extension = GnuExtSparseHeader::new();
        for (slot, &(offset, length)) in extension.sparse.iter_mut().zip(chunk) {
            number_into(&mut slot.offset, offset);
            number_into(&mut slot.numbytes, length);
        }
        extension.isextended[0] = u8::from(chunks.peek().is_some());
        out.extend_from_slice(extension.as_bytes());
    }
    if let Kind::DumpDir { listing } = kind {
        out.extend_from_slice(listing);
        out.resize(out.len() + padding(listing.len() as u64), 0);
    }
}

/// A `././@LongLink` record carrying a long name or link target (NUL-terminated, padded).
fn encode_long_record(kind: EntryType, text: &[u8], out: &mut Vec<u8>) {
    let mut header = Header::new_gnu();
    let old = header.as_old_mut();
    copy_truncated(&mut old.name, b"././@LongLink");
    octal_into(&mut old.mode, 0o644);
    octal_into(&mut old.uid, 0);
    octal_into(&mut old.gid, 0);
    octal_into(&mut old.mtime, 0);
    number_into(&mut old.size, text.len() as u64 + 1);
    header.set_entry_type(kind);
    set_checksum(&mut header);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(text);
    out.push(0);
    out.resize(out.len() + padding(text.len() as u64 + 1), 0);
}

/// Zero bytes needed after `len` bytes of data to reach a block boundary.
pub fn padding(len: u64) -> usize {
    let into_block = usize::try_from(len % BLOCK as u64).unwrap_or(0);
    (BLOCK - into_block) % BLOCK
}

/// `value` in octal, right-aligned with leading zeros and a closing NUL, written in place:
/// the layout of the tar crate and GNU tar, without a string allocation per field.
fn octal_into(field: &mut [u8], mut value: u64) {
    let Some((last, digits)) = field.split_last_mut() else {
        return;
    };
    *last = 0;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (value & 7) as u8;
        value >>= 3;
    }
}

/// A numeric field: octal while it fits (8 GiB in a 12-byte field, 2 M in an 8-byte one), else
/// GNU base-256, big-endian with the top bit set.
fn number_into(field: &mut [u8], value: u64) {
    let digits = field.len().saturating_sub(1).min(21);
    let octal_limit = 1u64 << (3 * digits);
    if value < octal_limit {
        octal_into(field, value);
    } else {
        let len = field.len();
        field.fill(0);
        field[len - 8..].copy_from_slice(&value.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// A time field: as [`number_into`] from 1970 on; before, GNU tar's base-256 two's
/// complement, which starts with 0xff.
fn time_into(field: &mut [u8], value: i64) {
    match u64::try_from(value) {
        Ok(value) => number_into(field, value),
        Err(_) => {
            field.fill(0xff);
            let len = field.len();
            field[len - 8..].copy_from_slice(&value.to_be_bytes());
        }
    }
}

/// The sums of a header block with its checksum field counted as spaces: over the bytes
/// read unsigned (what POSIX and GNU tar write) and signed (what some old tars wrote).
pub fn checksum_of(block: &[u8; BLOCK]) -> (i64, i64) {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if CHECKSUM_FIELD.contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b.cast_signed());
    }
    (unsigned, signed)
}

/// The header checksum: the byte sum with the checksum field counted as spaces.
fn set_checksum(header: &mut Header) {
    let (sum, _) = checksum_of(header.as_bytes());
    octal_into(&mut header.as_old_mut().cksum, sum.unsigned_abs());
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_are_byte_identical_to_the_tar_crate() {
        for value in [
            0,
            1,
            0o644,
            2_097_151,
            2_097_152,
            8_589_934_591,
            8_589_934_592,
            u64::MAX,
        ] {
            let mut reference = Header::new_gnu();
            reference.set_uid(value);
            reference.set_size(value);
            let mut ours = Header::new_gnu();
            number_into(&mut ours.as_old_mut().uid, value);
            number_into(&mut ours.as_old_mut().size, value);
            assert_eq!(ours.as_old().uid, reference.as_old().uid, "uid {value}");
            assert_eq!(ours.as_old().size, reference.as_old().size, "size {value}");
            reference.set_cksum();
            set_checksum(&mut ours);
            assert_eq!(
                ours.as_old().cksum,
                reference.as_old().cksum,
                "cksum {value}"
            );
        }
    }

    fn meta() -> Meta<'static> {
        Meta {
            mode: 0o100644,
            uid: 1000,
            gid: 1000,
            mtime: 1_769_699_250,
            uname: b"u",
            gname: b"g",
        }
    }

    fn headers(bytes: &[u8]) -> Vec<Header> {
        bytes
            .chunks(BLOCK)
            .map(|b| Header::from_byte_slice(b).clone())
            .collect()
    }

    #[test]
    fn a_short_file_is_one_block() {
        let mut out = Vec::new();
        encode(b"test/a", &Kind::File { size: 3 }, &meta(), &mut out);
        assert_eq!(out.len(), BLOCK);
        let h = &headers(&out)[0];
        assert_eq!(&*h.path_bytes(), b"test/a");
        assert_eq!(h.size().unwrap(), 3);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.mtime().unwrap(), 1_769_699_250);
        assert_eq!(h.username_bytes(), Some(&b"u"[..]));
        assert_eq!(h.cksum().unwrap(), {
            let mut copy = h.clone();
            copy.set_cksum();
            copy.cksum().unwrap()
        });
    }

    #[test]
    fn long_and_non_utf8_names_go_through_long_link_records() {
        let name: Vec<u8> = [&b"d/"[..], &[b'x'; 150], b"\xff\xfe"].concat();
        let target = vec![b'y'; 300];
        let mut out = Vec::new();
        encode(
            &name,
            &Kind::Symlink {
                target: target.clone(),
            },
            &meta(),
            &mut out,
        );
        // L record + 1 data block, K record + 1 data block, then the header.
        assert_eq!(out.len(), 5 * BLOCK);
        let blocks = headers(&out);
        assert_eq!(blocks[0].entry_type(), EntryType::GNULongName);
        assert_eq!(blocks[0].size().unwrap(), name.len() as u64 + 1);
        assert_eq!(&out[BLOCK..BLOCK + name.len()], &name[..]);
        assert_eq!(out[BLOCK + name.len()], 0);
        assert_eq!(blocks[2].entry_type(), EntryType::GNULongLink);
        assert_eq!(&out[3 * BLOCK..3 * BLOCK + 300], &target[..]);
        assert_eq!(blocks[4].entry_type(), EntryType::Symlink);
    }

    #[test]
    fn sizes_of_8_gib_and_more_use_base_256() {
        let mut out = Vec::new();
        let size = 9 << 30;
        encode(b"big", &Kind::File { size }, &meta(), &mut out);
        let h = &headers(&out)[0];
        assert_eq!(h.as_old().size[0] & 0x80, 0x80);
        assert_eq!(h.size().unwrap(), size);
    }

    #[test]
    fn times_before_1970_are_base_256_twos_complement() {
        let mut out = Vec::new();
        let before = Meta {
            mtime: -315_619_200,
            ..meta()
        };
        encode(b"old", &Kind::File { size: 0 }, &before, &mut out);
        let h = &headers(&out)[0];
        assert_eq!(h.as_old().mtime[..4], [0xff; 4]);
        assert_eq!(h.mtime().unwrap() as i64, -315_619_200);
    }

    #[test]
    fn sparse_maps_spill_into_extension_blocks() {
        let extents: Vec<Extent> = (0..30).map(|i| (i * 8192, 512)).collect();
        let kind = Kind::Sparse {
            real_size: 1 << 40,
            extents,
        };
        let mut out = Vec::new();
        encode(b"s", &kind, &meta(), &mut out);
        // 4 in the header, 21 in the first extension, 5 in the second.
        assert_eq!(out.len(), 3 * BLOCK);
        let h = &headers(&out)[0];
        assert_eq!(h.entry_type(), EntryType::GNUSparse);
        assert_eq!(
            h.entry_size().unwrap(),
            30 * 512,
            "stored bytes, not the real size"
        );
        let gnu = h.as_gnu().unwrap();
        assert_eq!(gnu.real_size().unwrap(), 1 << 40);
        assert!(gnu.is_extended());
        assert_eq!(gnu.sparse[3].offset().unwrap(), 3 * 8192);
        assert_eq!(
            out[2 * BLOCK - 512 + 504],
            1,
            "first extension says another follows"
        );
        assert_eq!(out[3 * BLOCK - 512 + 504], 0, "last extension ends the map");
    }

    #[test]
    fn padding_reaches_the_next_block() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
