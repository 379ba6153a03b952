//! Where the blocks of a tar stream lie, header by header, as the tar crate reads them; and
//! the mends that make a header read the way GNU tar reads it. Pure: the one walk that the
//! structure check and the archive reader share, so the two can never see different members.

use super::header::{BLOCK, CHECKSUM_FIELD, EXTENSION_IS_EXTENDED, GNU_IS_EXTENDED, checksum_of};
use tar::{EntryType, Header};

pub const BLOCK_BYTES: u64 = BLOCK as u64;
const SIZE_FIELD: std::ops::Range<usize> = 124..136;
const TYPE_FLAG: usize = 156;

/// What follows a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Following {
    /// Extension blocks of a GNU sparse map, until one says it is the last; then `size`
    /// bytes of data, padded to a block.
    SparseMap { size: u64 },
    /// `size` bytes of data, padded to a block; `pax` when they are a pax record, whose
    /// `size` applies to the next member.
    Data { size: u64, pax: bool },
}

/// A header that names no size: its size field is not a number.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSize;

/// The record kinds that describe the next member rather than being one, as the tar crate
/// recognises them: by type, in a header with the ustar or GNU magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    LongName,
    LongLink,
    Pax,
}

impl Record {
    pub fn of(header: &Header) -> Option<Record> {
        if header.as_gnu().is_none() && header.as_ustar().is_none() {
            return None;
        }
        match header.entry_type() {
            EntryType::GNULongName => Some(Record::LongName),
            EntryType::GNULongLink => Some(Record::LongLink),
            EntryType::XHeader => Some(Record::Pax),
            _ => None,
        }
    }
}

/// The walk's memory between headers: the `size` of the last pax record, for the member it
/// describes.
#[derive(Debug, Default)]
pub struct Walk {
    pax_size: Option<u64>,
}

impl Walk {
    /// What follows `header` (checksum checked, mended).
    pub fn after(&mut self, header: &Header) -> Result<Following, BadSize> {
        let kind = header.entry_type();
        let mut size = header.entry_size().map_err(|_| BadSize)?;
        // A pax size overrides the header's, except for the records in between; whatever
        // the tar crate hands out as an entry uses up the record.
        if !is_record(kind) {
            if let Some(pax) = self.pax_size.take() {
                size = pax;
            }
        } else if Record::of(header).is_none() {
            self.pax_size = None;
        }
        if kind == EntryType::GNUSparse && header.as_bytes()[GNU_IS_EXTENDED] == 1 {
            return Ok(Following::SparseMap { size });
        }
        Ok(Following::Data {
            size,
            pax: Record::of(header) == Some(Record::Pax),
        })
    }

    /// A pax record was read whole: its `size`, if any, is the next member's.
    pub fn pax_record(&mut self, records: &[u8]) {
        self.pax_size = pax_size(records);
    }
}

/// An old GNU sparse member's map (`S`: four regions in the header, 21 in each extension
/// block), checked region by region as the tar crate checks it when it reads the member.
pub struct OldSparseMap {
    /// The data the member stores, the end of the last region, and what is left of the data.
    stored: u64,
    end: u64,
    left: u64,
}

impl OldSparseMap {
    pub fn new(stored: u64) -> OldSparseMap {
        OldSparseMap {
            stored,
            end: 0,
            left: stored,
        }
    }

    /// Takes the regions of one block of the map.
    pub fn add(&mut self, regions: &[tar::GnuSparseHeader]) -> Result<(), &'static str> {
        for region in regions.iter().filter(|region| !region.is_empty()) {
            let offset = region
                .offset()
                .map_err(|_| "a region offset that is not a number")?;
            let length = region
                .length()
                .map_err(|_| "a region length that is not a number")?;
            if length != 0 && !(self.stored - self.left).is_multiple_of(BLOCK_BYTES) {
                return Err("a region not aligned to a block of the archive");
            }
            if offset < self.end {
                return Err("regions out of order or overlapping");
            }
            self.end = offset
                .checked_add(length)
                .ok_or("a region ends past any size")?;
            self.left = self
                .left
                .checked_sub(length)
                .ok_or("its regions hold more data than the member stores")?;
        }
        Ok(())
    }

    /// Checks the whole map against the header's real size.
    pub fn finish(&self, header: &tar::GnuHeader) -> Result<(), &'static str> {
        let real_size = header
            .real_size()
            .map_err(|_| "a real size that is not a number")?;
        if self.end != real_size {
            return Err("its regions end elsewhere than its real size");
        }
        if self.left > 0 {
            return Err("its regions hold less data than the member stores");
        }
        Ok(())
    }
}

/// A sparse-map extension block, as the tar crate types it.
pub fn extension_block(block: &[u8; BLOCK]) -> tar::GnuExtSparseHeader {
    let mut extension = tar::GnuExtSparseHeader::new();
    extension.as_mut_bytes().copy_from_slice(block);
    extension
}

/// Whether a sparse-map extension block says another one follows.
pub fn another_extension_follows(block: &[u8; BLOCK]) -> bool {
    block[EXTENSION_IS_EXTENDED] != 0
}

/// `size` rounded up to whole blocks; `None` if that overflows.
pub fn padded(size: u64) -> Option<u64> {
    size.checked_next_multiple_of(BLOCK_BYTES)
}

/// The records that describe the next member rather than being one, by type: the types the
/// tar crate never applies a pax size to.
pub fn is_record(kind: EntryType) -> bool {
    matches!(
        kind,
        EntryType::GNULongName
            | EntryType::GNULongLink
            | EntryType::XHeader
            | EntryType::XGlobalHeader
    )
}

/// The first `size` record of a pax extended header, as the tar crate reads it.
fn pax_size(records: &[u8]) -> Option<u64> {
    for record in tar::PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key() == Ok("size") {
            return record.value().ok()?.parse().ok();
        }
    }
    None
}

/// Whether the stored checksum is the sum of the header bytes with the checksum field as
/// spaces, summed unsigned or (as old tars did) signed.
fn checksum_matches(block: &[u8; BLOCK]) -> Option<Sum> {
    let digits: Vec<u8> = block[CHECKSUM_FIELD]
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let stored = std::str::from_utf8(&digits)
        .ok()
        .filter(|d| !d.is_empty())
        .and_then(|d| i64::from_str_radix(d, 8).ok())?;
    let (unsigned, signed) = checksum_of(block);
    if stored == unsigned {
        Some(Sum::Unsigned)
    } else if stored == signed {
        Some(Sum::Signed)
    } else {
        None
    }
}

/// How a good checksum was summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sum {
    Unsigned,
    Signed,
}

/// Checks a header's checksum and rewrites a sound header where GNU tar reads it otherwise
/// than the tar crate would: `None` if the checksum does not match (the header is left as it
/// is, for the check to report), else whether it changed. The fields keep their meaning for
/// every reader:
/// - a size field that starts with a NUL is 0 (GNU tar; a volume label's is all NULs);
/// - a hard link has no data whatever its size field says (GNU tar ignores it, and some
///   writers put the target's size there);
/// - a checksum summed over signed bytes (old tars), or followed by bytes other than a NUL
///   or spaces, is written again, unsigned.
pub fn mend(block: &mut [u8; BLOCK]) -> Option<bool> {
    let sum = checksum_matches(block)?;
    let size_is_zero = |block: &[u8; BLOCK]| {
        block[SIZE_FIELD]
            .iter()
            .all(|&b| matches!(b, b'0' | b' ' | 0))
    };
    // The tar crate reads the field up to a NUL, trimmed of spaces, as octal digits only.
    let tar_crate_reads_checksum = {
        let field = &block[CHECKSUM_FIELD];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        let digits = field[..end].trim_ascii();
        !digits.is_empty() && digits.iter().all(|b| (b'0'..=b'7').contains(b))
    };
    let mut changed = sum == Sum::Signed || !tar_crate_reads_checksum;
    let nul_size = block[SIZE_FIELD.start] == 0;
    let link_with_size = block[TYPE_FLAG] == b'1' && !size_is_zero(block);
    if nul_size || link_with_size {
        block[SIZE_FIELD].copy_from_slice(b"00000000000\0");
        changed = true;
    }
    if changed {
        let (unsigned, _) = checksum_of(block);
        block[CHECKSUM_FIELD].copy_from_slice(format!("{unsigned:06o}\0 ").as_bytes());
    }
    Some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], kind: u8, size: &[u8; 12]) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(b"0000644\0");
        block[SIZE_FIELD].copy_from_slice(size);
        block[TYPE_FLAG] = kind;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        let (sum, _) = checksum_of(&block);
        block[CHECKSUM_FIELD].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    }

    fn size_of(block: &[u8; BLOCK]) -> u64 {
        Header::from_byte_slice(block).entry_size().unwrap()
    }

    #[test]
    fn a_hard_link_with_a_size_gets_none_and_a_good_checksum() {
        let mut link = header(b"l", b'1', b"00000000501\0");
        assert_eq!(mend(&mut link), Some(true));
        assert_eq!(size_of(&link), 0);
        assert_eq!(checksum_matches(&link), Some(Sum::Unsigned));
        let mut file = header(b"f", b'0', b"00000000501\0");
        assert_eq!(mend(&mut file), Some(false), "a file's size is its own");
    }

    #[test]
    fn a_size_field_that_starts_with_nul_is_zero() {
        let mut odd = header(b"tmp/f.txt", b'0', b"\0\0\0\0\0\0\0\x30016\0");
        assert!(Header::from_byte_slice(&odd).entry_size().is_err());
        assert_eq!(mend(&mut odd), Some(true));
        assert_eq!(size_of(&odd), 0);
        let mut label = header(b"LABEL", b'V', &[0; 12]);
        assert_eq!(mend(&mut label), Some(true));
        assert_eq!(size_of(&label), 0);
    }

    #[test]
    fn a_checksum_followed_by_junk_is_written_again() {
        let mut block = header(b"f", b'0', b"00000000004\0");
        // The field is counted as spaces in the sum, so the digits still match.
        block[154] = 0xff;
        assert_eq!(checksum_matches(&block), Some(Sum::Unsigned));
        assert!(Header::from_byte_slice(&block).cksum().is_err());
        assert_eq!(mend(&mut block), Some(true));
        assert_eq!(
            Header::from_byte_slice(&block).cksum().ok(),
            Some(u32::try_from(checksum_of(&block).0).unwrap())
        );
    }

    #[test]
    fn a_damaged_header_is_left_for_the_check_to_report() {
        let mut link = header(b"l", b'1', b"00000000501\0");
        link[0] ^= 1;
        let before = link;
        assert_eq!(mend(&mut link), None);
        assert_eq!(link, before);
    }

    #[test]
    fn a_pax_size_is_the_next_member_s_not_a_record_s() {
        let mut walk = Walk::default();
        walk.pax_record(b"20 size=00000004612\n");
        let long_name = header(b"././@LongLink", b'L', b"00000000010\0");
        assert_eq!(
            walk.after(Header::from_byte_slice(&long_name)),
            Ok(Following::Data {
                size: 8,
                pax: false
            })
        );
        let member = header(b"a", b'0', b"00000000004\0");
        assert_eq!(
            walk.after(Header::from_byte_slice(&member)),
            Ok(Following::Data {
                size: 4612,
                pax: false
            })
        );
        assert_eq!(
            walk.after(Header::from_byte_slice(&member)),
            Ok(Following::Data {
                size: 4,
                pax: false
            }),
            "a pax size describes one member only"
        );
    }
}
