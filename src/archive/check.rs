//! Reading a tar stream's structure end to end, as `verify` and `restore` do before trusting
//! it: header checksums, sizes, long-name and pax records, sparse maps, truncation and the
//! end marker. Each defect carries the byte offset where it is.

use super::header::BLOCK;
use super::member::{Member, Sparse};
pub use super::structure::is_record;
use super::structure::{self, BLOCK_BYTES, Following, Record, Walk};
use crate::log::show_name;
use crate::progress::Progress;
use std::fmt;
use std::io::{self, Read};
use tar::Header;

/// Longest `././@LongLink` name or pax record accepted; anything longer is a damaged size
/// field or an attack on the memory of whoever reads the archive next.
const MAX_RECORD: u64 = 1 << 20;

/// What a sound archive holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Soundness {
    pub members: u64,
}

/// The first thing wrong with an archive. `after` is the last member read before it, which
/// tells a person where in the tree the damage lies.
#[derive(Debug)]
pub enum Defect {
    Unreadable(io::Error),
    NoEndMarker {
        offset: u64,
        after: Option<Vec<u8>>,
    },
    IncompleteEndMarker {
        offset: u64,
        after: Option<Vec<u8>>,
    },
    TruncatedHeader {
        offset: u64,
    },
    BadChecksum {
        offset: u64,
        after: Option<Vec<u8>>,
    },
    BadSize {
        offset: u64,
        after: Option<Vec<u8>>,
    },
    ImplausibleRecord {
        offset: u64,
        size: u64,
    },
    TruncatedSparseMap {
        offset: u64,
        name: Vec<u8>,
    },
    TruncatedLongName {
        offset: u64,
        after: Option<Vec<u8>>,
    },
    TruncatedData {
        offset: u64,
        name: Vec<u8>,
        needs: u64,
        got: u64,
    },
    /// A pax sparse map that does not fit its data or size.
    BadSparseMap {
        name: Vec<u8>,
        why: &'static str,
    },
    /// A pax record whose lines are not `LENGTH key=value`.
    BadPaxRecord {
        offset: u64,
    },
    /// Long-name or pax records and then the end: they describe a member that is not there.
    RecordWithoutMember {
        offset: u64,
    },
    /// Two records of one kind before one member: GNU tar keeps the last, the tar crate
    /// refuses, so a reader could see either name.
    RepeatedRecord {
        offset: u64,
        record: Record,
    },
}

/// ` (after member NAME)`, or nothing at the start of the archive.
struct After<'a>(&'a Option<Vec<u8>>);

impl fmt::Display for After<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, " (after member {})", show_name(name)),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::Unreadable(err) => write!(f, "can't read ({err})"),
            Defect::NoEndMarker { offset, after } => write!(
                f,
                "no end-of-archive marker: the archive ends at byte {offset}{}",
                After(after)
            ),
            Defect::IncompleteEndMarker { offset, after } => write!(
                f,
                "incomplete end-of-archive marker at byte {offset}{}",
                After(after)
            ),
            Defect::TruncatedHeader { offset } => {
                write!(f, "truncated inside a header at byte {offset}")
            }
            Defect::BadChecksum { offset, after } => {
                write!(f, "bad header checksum at byte {offset}{}", After(after))
            }
            Defect::BadSize { offset, after } => {
                write!(f, "bad size field at byte {offset}{}", After(after))
            }
            Defect::ImplausibleRecord { offset, size } => write!(
                f,
                "implausible long-name or pax record of {size} bytes at byte {offset}"
            ),
            Defect::TruncatedSparseMap { offset, name } => write!(
                f,
                "truncated in the sparse map of {} at byte {offset}",
                show_name(name)
            ),
            Defect::TruncatedLongName { offset, after } => write!(
                f,
                "truncated in a long-name record at byte {offset}{}",
                After(after)
            ),
            Defect::TruncatedData {
                offset,
                name,
                needs,
                got,
            } => write!(
                f,
                "truncated: member {} needs {needs} bytes of data from byte {offset}, the archive has {got}",
                show_name(name)
            ),
            Defect::BadSparseMap { name, why } => {
                write!(f, "{}: damaged sparse map: {why}", show_name(name))
            }
            Defect::BadPaxRecord { offset } => {
                write!(f, "damaged pax record at byte {offset}")
            }
            Defect::RecordWithoutMember { offset } => write!(
                f,
                "a long-name or pax record at byte {offset} describes a member that is not there"
            ),
            Defect::RepeatedRecord { offset, record } => write!(
                f,
                "a second {} record for one member at byte {offset} (unsupported: GNU tar \
                 would use the last, other readers refuse it)",
                match record {
                    Record::LongName => "long-name",
                    Record::LongLink => "long-link",
                    Record::Pax => "pax",
                }
            ),
        }
    }
}

impl std::error::Error for Defect {}

/// A tar stream being read block by block, with where it is and what it read last.
struct Reader<R> {
    input: R,
    block: [u8; BLOCK],
    offset: u64,
    last_name: Option<Vec<u8>>,
}

/// A tar stream as the check reads it: headers block by block, member data passed over.
pub trait Stream: Read {
    /// Moves `count` bytes on; returns how many the stream had (fewer only at its end).
    fn pass_over(&mut self, count: u64) -> io::Result<u64>;
}

impl Stream for super::tar_reader::TarReader<'_> {
    fn pass_over(&mut self, count: u64) -> io::Result<u64> {
        super::tar_reader::TarReader::pass_over(self, count)
    }
}

/// The tests' archives, held in memory.
#[cfg(test)]
impl Stream for &[u8] {
    fn pass_over(&mut self, count: u64) -> io::Result<u64> {
        let passed = usize::try_from(count).map_or(self.len(), |count| count.min(self.len()));
        *self = &self[passed..];
        Ok(passed as u64)
    }
}

impl<S: Stream + ?Sized> Stream for &mut S {
    fn pass_over(&mut self, count: u64) -> io::Result<u64> {
        (**self).pass_over(count)
    }
}

impl<R: Stream> Reader<R> {
    /// Reads the next block; how many bytes it got (less than a block only at the end).
    fn next_block(&mut self) -> Result<usize, Defect> {
        read_full(&mut self.input, &mut self.block).map_err(Defect::Unreadable)
    }

    /// Reads the extension blocks of an old GNU sparse map until one says it is the last,
    /// checking the whole map.
    fn read_sparse_map(&mut self, name: &[u8], header: &Header, stored: u64) -> Result<(), Defect> {
        let bad = |why| Defect::BadSparseMap {
            name: name.to_vec(),
            why,
        };
        let Some(gnu) = header.as_gnu() else {
            return Err(bad(
                "a GNU sparse member in a header without GNU tar's magic",
            ));
        };
        let mut map = structure::OldSparseMap::new(stored);
        map.add(&gnu.sparse).map_err(bad)?;
        let mut another = gnu.is_extended();
        while another {
            if self.next_block()? != BLOCK {
                return Err(Defect::TruncatedSparseMap {
                    offset: self.offset,
                    name: name.to_vec(),
                });
            }
            self.offset += BLOCK_BYTES;
            map.add(&structure::extension_block(&self.block).sparse)
                .map_err(bad)?;
            another = structure::another_extension_follows(&self.block);
        }
        map.finish(gnu).map_err(bad)
    }

    /// Reads the next header block; false at a sound end marker.
    fn next_header(&mut self) -> Result<bool, Defect> {
        match self.next_block()? {
            0 => {
                return Err(Defect::NoEndMarker {
                    offset: self.offset,
                    after: self.last_name.clone(),
                });
            }
            BLOCK => {}
            _ => {
                return Err(Defect::TruncatedHeader {
                    offset: self.offset,
                });
            }
        }
        if self.block.iter().all(|&b| b == 0) {
            self.end_marker()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Reads a record of `size` bytes (`padded`) whose header was at `offset`: a long name
    /// becomes the next member's, a pax record's size tells the walk.
    fn take_record(
        &mut self,
        record: Record,
        offset: u64,
        size: u64,
        padded: u64,
        pending: &mut Pending,
        walk: &mut Walk,
    ) -> Result<(), Defect> {
        if size > MAX_RECORD {
            return Err(Defect::ImplausibleRecord { offset, size });
        }
        if !pending.first(record, offset) {
            return Err(Defect::RepeatedRecord { offset, record });
        }
        let data = self.read_record(size, padded)?;
        match record {
            Record::LongName => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                pending.long_name = Some(data[..end].to_vec());
            }
            Record::Pax => {
                if tar::PaxExtensions::new(&data).any(|record| record.is_err()) {
                    return Err(Defect::BadPaxRecord { offset });
                }
                walk.pax_record(&data);
                pending.sparse = Member::sparse_in(&data);
            }
            Record::LongLink => {}
        }
        Ok(())
    }

    /// Reads a record's `size` bytes (`padded` with the padding).
    fn read_record(&mut self, size: u64, padded: u64) -> Result<Vec<u8>, Defect> {
        let mut data = Vec::new();
        let got = (&mut self.input)
            .take(padded)
            .read_to_end(&mut data)
            .map_err(Defect::Unreadable)?;
        if (got as u64) < padded {
            return Err(Defect::TruncatedLongName {
                offset: self.offset,
                after: self.last_name.clone(),
            });
        }
        data.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        self.offset += padded;
        Ok(data)
    }

    /// Checks a pax sparse member's map against its `size` bytes of data (the map of a 1.0
    /// member heads its data), as restore does before writing, then passes over the rest.
    fn check_sparse_map(
        &mut self,
        name: &[u8],
        sparse: &Sparse,
        size: u64,
        padded: u64,
    ) -> Result<(), Defect> {
        let mut head = Counted {
            input: (&mut self.input).take(size),
            read: 0,
        };
        if let Err(why) = crate::archive::member::check_sparse(sparse, size, &mut head) {
            return Err(Defect::BadSparseMap {
                name: name.to_vec(),
                why,
            });
        }
        let read = head.read;
        self.offset += read;
        self.skip_data(name, padded - read)
    }

    /// Skips a member's `padded` bytes of data.
    fn skip_data(&mut self, name: &[u8], padded: u64) -> Result<(), Defect> {
        let got = self.input.pass_over(padded).map_err(Defect::Unreadable)?;
        if got < padded {
            return Err(Defect::TruncatedData {
                offset: self.offset,
                name: name.to_vec(),
                needs: padded,
                got,
            });
        }
        self.offset += padded;
        Ok(())
    }

    /// At a zero block: the end marker is sound if a second zero block follows, or nothing
    /// (GNU tar reads "a lone zero block" at the end as the end, with a warning).
    fn end_marker(&mut self) -> Result<(), Defect> {
        let second = self.next_block()?;
        if second == 0 || (second == BLOCK && self.block.iter().all(|&b| b == 0)) {
            return Ok(());
        }
        Err(Defect::IncompleteEndMarker {
            offset: self.offset,
            after: self.last_name.clone(),
        })
    }
}

/// Reads a whole tar stream and returns its first defect; each member read is a step of
/// `progress`.
pub fn check_structure(input: impl Stream, progress: &mut Progress) -> Result<Soundness, Defect> {
    let mut reader = Reader {
        input,
        block: [0; BLOCK],
        offset: 0,
        last_name: None,
    };
    let mut members = 0;
    let mut walk = Walk::default();
    let mut pending = Pending::default();
    loop {
        if !reader.next_header()? {
            return match pending.first_at {
                None => Ok(Soundness { members }),
                Some(offset) => Err(Defect::RecordWithoutMember { offset }),
            };
        }
        let header_offset = reader.offset;
        let defect_here = |reader: &Reader<_>| Defect::BadSize {
            offset: header_offset,
            after: reader.last_name.clone(),
        };
        // As every reader of the stream sees it (TarReader mends the same way).
        if structure::mend(&mut reader.block).is_none() {
            return Err(Defect::BadChecksum {
                offset: header_offset,
                after: reader.last_name,
            });
        }
        let header = Header::from_byte_slice(&reader.block).clone();
        let record = Record::of(&header);
        let following = walk.after(&header).map_err(|_| defect_here(&reader))?;
        let name = match record {
            Some(_) => Vec::new(),
            None => pending
                .long_name
                .take()
                .unwrap_or_else(|| header.path_bytes().into_owned()),
        };
        reader.offset += BLOCK_BYTES;
        let size = match following {
            Following::SparseMap { size } | Following::Data { size, .. }
                if header.entry_type() == tar::EntryType::GNUSparse =>
            {
                reader.read_sparse_map(&name, &header, size)?;
                size
            }
            Following::SparseMap { size } | Following::Data { size, .. } => size,
        };
        let padded = structure::padded(size)
            .filter(|padded| reader.offset.checked_add(*padded).is_some())
            .ok_or_else(|| defect_here(&reader))?;
        if let Some(record) = record {
            reader.take_record(record, header_offset, size, padded, &mut pending, &mut walk)?;
            continue;
        }
        if let Some((sparse, real_name)) = std::mem::take(&mut pending).sparse {
            let name = real_name.as_deref().unwrap_or(&name);
            reader.check_sparse_map(name, &sparse, size, padded)?;
        } else {
            reader.skip_data(&name, padded)?;
        }
        // Global pax headers and the like are entries to the tar crate, not members.
        if !is_record(header.entry_type()) {
            members += 1;
            progress.step(&name, reader.offset);
            reader.last_name = Some(name);
        }
    }
}

/// A reader that counts what was read through it.
struct Counted<R> {
    input: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buffer)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The records read since the last member.
#[derive(Default)]
struct Pending {
    seen: Vec<Record>,
    /// Where the first of them is.
    first_at: Option<u64>,
    long_name: Option<Vec<u8>>,
    /// What the pax record says of the member's sparse layout, and its real name.
    sparse: Option<(Sparse, Option<Vec<u8>>)>,
}

impl Pending {
    /// Notes `record`, whose header is at `offset`; false if one of its kind came already.
    fn first(&mut self, record: Record, offset: u64) -> bool {
        if self.seen.contains(&record) {
            return false;
        }
        self.seen.push(record);
        self.first_at.get_or_insert(offset);
        true
    }
}

/// Fills `buffer` as far as the input goes; returns how many bytes it got.
pub fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
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
    const BLOCK: usize = super::BLOCK;

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
            check_structure(&archive()[..], &mut Progress::none()).unwrap(),
            Soundness { members: 2 }
        );
    }

    #[test]
    fn a_flipped_header_byte_is_a_bad_checksum() {
        let mut bytes = archive();
        bytes[BLOCK * 3 + 10] ^= 0x20;
        let defect = check_structure(&bytes[..], &mut Progress::none()).unwrap_err();
        assert!(
            matches!(&defect, Defect::BadChecksum { offset: 1536, after: Some(name) } if name == b"d/"),
            "{defect:?}"
        );
        assert_eq!(
            defect.to_string(),
            "bad header checksum at byte 1536 (after member d/)"
        );
    }

    #[test]
    fn truncation_is_found_wherever_it_cuts() {
        let bytes = archive();
        let total = bytes.len();
        let long = "x".repeat(150).into_bytes();
        // One zero block and then nothing is the end, as GNU tar reads it ("a lone zero
        // block"); half of the second one is damage.
        assert!(matches!(
            check_structure(&bytes[..total - BLOCK], &mut Progress::none()),
            Ok(Soundness { members: 2 })
        ));
        assert!(matches!(
            check_structure(&bytes[..total - BLOCK / 2], &mut Progress::none()),
            Err(Defect::IncompleteEndMarker { after: Some(name), .. }) if name == long
        ));
        assert!(matches!(
            check_structure(&bytes[..total - 2 * BLOCK], &mut Progress::none()),
            Err(Defect::NoEndMarker { .. })
        ));
        let cut = check_structure(&bytes[..BLOCK * 4 + 100], &mut Progress::none()).unwrap_err();
        assert!(
            matches!(&cut, Defect::TruncatedData { needs: 1024, got: 100, name, .. } if *name == long),
            "{cut:?}"
        );
        assert!(matches!(
            check_structure(&bytes[..BLOCK + 7], &mut Progress::none()),
            Err(Defect::TruncatedHeader { offset: 512 })
        ));
        assert!(matches!(
            check_structure(&[][..], &mut Progress::none()),
            Err(Defect::NoEndMarker {
                offset: 0,
                after: None
            })
        ));
    }

    #[test]
    fn sizes_that_overflow_are_bad_size_fields() {
        let mut bytes = archive();
        bytes[124..136].copy_from_slice(&[0xff; 12]);
        let mut header = Header::from_byte_slice(&bytes[..BLOCK]).clone();
        header.set_cksum();
        bytes[..BLOCK].copy_from_slice(header.as_bytes());
        assert!(matches!(
            check_structure(&bytes[..], &mut Progress::none()),
            Err(Defect::BadSize {
                offset: 0,
                after: None
            })
        ));
    }
}
