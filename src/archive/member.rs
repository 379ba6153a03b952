//! One archive member as GNU tar reads it: the header, with what a pax extended header says
//! over it (times with nanoseconds, owners, GNU's pax sparse records and the real name they
//! hide), and the old conventions (a regular member whose name ends in `/` is a directory, a
//! GNU dumpdir is a directory). `contents`, `restore` and `verify` read members through this,
//! so they agree with each other and with GNU tar. Pure but for reading the entry's headers.

use std::io::{self, Read};
use tar::EntryType;

/// An instant with nanoseconds; `seconds` is negative before 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    pub seconds: i64,
    pub nanos: u32,
}

/// How a GNU pax sparse member lays out its data (formats 0.0, 0.1 and 1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SparseMap {
    /// The data regions, `(offset, length)`, given in the pax header (0.0, 0.1).
    Extents(Vec<(u64, u64)>),
    /// The map heads the member's data, as decimal lines padded to a block (1.0).
    InData,
    /// A map whose last region has no length (an odd count of numbers).
    Unpaired,
}

/// A GNU pax sparse member: its real size and map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sparse {
    pub real_size: u64,
    pub map: SparseMap,
}

/// What a member is, all conventions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: Vec<u8>,
    /// The type it makes: `Directory` for an old-style or dumpdir directory too.
    pub kind: EntryType,
    pub link: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub mtime: Time,
    /// The whole seconds `tar -tvf` lists for `mtime`: GNU tar 1.34 lists a negative pax time
    /// with a fraction by its integer part as written (`-302443199.876543211` as
    /// -302443199), though it restores the time exactly.
    pub listed_seconds: i64,
    pub atime: Option<Time>,
    /// The size a listing shows: the real size of a sparse member.
    pub size: u64,
    /// A device's major and minor numbers.
    pub device: (u32, u32),
    pub sparse: Option<Sparse>,
}

/// What a member is that restore passes over, as GNU tar does: a volume label (`V`, which
/// names the archive, not a file) and a Solaris ACL member (`A`, which GNU tar skips with a
/// warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAFile {
    VolumeLabel,
    SolarisAcl,
}

impl Member {
    /// Whether restore passes this member over, and why.
    pub fn not_a_file(&self) -> Option<NotAFile> {
        match self.kind.as_byte() {
            b'V' => Some(NotAFile::VolumeLabel),
            b'A' => Some(NotAFile::SolarisAcl),
            _ => None,
        }
    }

    /// The sparse layout that a member's pax `records` give it, if any: what the structure
    /// check needs to check the map before anything trusts it.
    /// With it, the member's real name (`GNU.sparse.name`), if the records give one.
    pub fn sparse_in(records: &[u8]) -> Option<(Sparse, Option<Vec<u8>>)> {
        let mut pax = Pax::default();
        for extension in tar::PaxExtensions::new(records).flatten() {
            pax.take(extension.key_bytes(), extension.value_bytes());
        }
        Some((pax.sparse()?, pax.sparse_name))
    }

    /// Reads `entry`'s headers (not its data).
    pub fn read<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Member> {
        let mut pax = Pax::default();
        if let Some(extensions) = entry.pax_extensions()? {
            for extension in extensions {
                let extension = extension?;
                pax.take(extension.key_bytes(), extension.value_bytes());
            }
        }
        let header = entry.header();
        let stored_kind = header.entry_type();
        let mut name = entry.path_bytes().into_owned();
        if let Some(real) = pax.sparse_name.take() {
            name = real;
        }
        let kind = match stored_kind {
            EntryType::Regular | EntryType::Continuous if name.ends_with(b"/") => {
                EntryType::Directory
            }
            other if other.as_byte() == b'D' => EntryType::Directory,
            other => other,
        };
        let sparse = pax.sparse();
        // The data stored, as the tar crate reads it: a pax `size` overrides the header's.
        let stored_size = entry.size();
        let size = match (&sparse, stored_kind) {
            (Some(sparse), _) => sparse.real_size,
            (None, EntryType::GNUSparse) => header
                .as_gnu()
                .and_then(|gnu| gnu.real_size().ok())
                .unwrap_or(stored_size),
            _ => stored_size,
        };
        let mtime = pax.mtime.unwrap_or_else(|| Time {
            seconds: header_time(&header.as_old().mtime),
            nanos: 0,
        });
        let listed_seconds = match (mtime, pax.mtime_written_whole) {
            (Time { nanos, .. }, Some(whole)) if nanos > 0 => whole,
            (time, _) => time.seconds,
        };
        Ok(Member {
            link: entry.link_name_bytes().map(std::borrow::Cow::into_owned),
            mode: header.mode().unwrap_or(0),
            uid: pax.uid.unwrap_or_else(|| header.uid().unwrap_or(0)),
            gid: pax.gid.unwrap_or_else(|| header.gid().unwrap_or(0)),
            uname: pax
                .uname
                .unwrap_or_else(|| header.username_bytes().unwrap_or_default().to_vec()),
            gname: pax
                .gname
                .unwrap_or_else(|| header.groupname_bytes().unwrap_or_default().to_vec()),
            mtime,
            listed_seconds,
            atime: pax.atime,
            size,
            device: (
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            ),
            sparse,
            name,
            kind,
        })
    }
}

/// A numeric header time: octal, or GNU base-256 over all 12 bytes (two's complement, so
/// before 1970 too), as GNU tar's `from_header` reads it.
fn header_time(field: &[u8; 12]) -> i64 {
    if field[0] & 0x80 == 0 {
        let digits: Vec<u8> = field
            .iter()
            .copied()
            .skip_while(|b| *b == b' ')
            .take_while(u8::is_ascii_digit)
            .collect();
        let text = std::str::from_utf8(&digits).unwrap_or("0");
        return i64::from_str_radix(text, 8).unwrap_or(0);
    }
    let bytes = &field[..];
    let negative = bytes[0] & 0x40 != 0;
    // The first byte carries the flag bit; the sign bit is its next one.
    let mut value: i64 = if negative { -1 } else { 0 };
    value = (value << 6) | i64::from(bytes[0] & 0x3f);
    for &byte in &bytes[1..] {
        value = value.wrapping_shl(8) | i64::from(byte);
    }
    value
}

/// What a pax extended header says, as far as members go.
#[derive(Default)]
struct Pax {
    mtime: Option<Time>,
    /// The integer part of the pax `mtime` as written, sign included.
    mtime_written_whole: Option<i64>,
    atime: Option<Time>,
    uid: Option<u64>,
    gid: Option<u64>,
    uname: Option<Vec<u8>>,
    gname: Option<Vec<u8>>,
    sparse_name: Option<Vec<u8>>,
    sparse_size: Option<u64>,
    sparse_major: Option<u64>,
    sparse_map: Option<Vec<u64>>,
    /// 0.0's offset and numbytes records, in order.
    sparse_pairs: Vec<u64>,
}

impl Pax {
    fn take(&mut self, key: &[u8], value: &[u8]) {
        let number = || std::str::from_utf8(value).ok()?.trim().parse::<u64>().ok();
        match key {
            b"mtime" => {
                self.mtime = parse_time(value);
                self.mtime_written_whole = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.trim().split('.').next()?.parse().ok());
            }
            b"atime" => self.atime = parse_time(value),
            b"uid" => self.uid = number(),
            b"gid" => self.gid = number(),
            b"uname" => self.uname = Some(value.to_vec()),
            b"gname" => self.gname = Some(value.to_vec()),
            b"GNU.sparse.name" => self.sparse_name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => self.sparse_size = number(),
            b"GNU.sparse.major" => self.sparse_major = number(),
            b"GNU.sparse.map" => {
                self.sparse_map = std::str::from_utf8(value)
                    .ok()
                    .and_then(|map| map.split(',').map(|n| n.trim().parse().ok()).collect());
            }
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                if let Some(n) = number() {
                    self.sparse_pairs.push(n);
                }
            }
            _ => {}
        }
    }

    fn sparse(&self) -> Option<Sparse> {
        let real_size = self.sparse_size?;
        let map = if self.sparse_major == Some(1) {
            SparseMap::InData
        } else {
            let numbers = self.sparse_map.as_ref().unwrap_or(&self.sparse_pairs);
            if numbers.len() % 2 == 1 {
                return Some(Sparse {
                    real_size,
                    map: SparseMap::Unpaired,
                });
            }
            SparseMap::Extents(numbers.chunks_exact(2).map(|p| (p[0], p[1])).collect())
        };
        Some(Sparse { real_size, map })
    }
}

/// A pax time: decimal seconds, maybe negative, maybe with a fraction (`-302443199.876543211`
/// is 1960-06-01 12:00:00.123456789).
pub fn parse_time(value: &[u8]) -> Option<Time> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut nanos: u32 = 0;
    for (place, digit) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - u32::try_from(place).ok()?);
    }
    Some(match (negative, nanos) {
        (false, _) => Time {
            seconds: whole,
            nanos,
        },
        (true, 0) => Time {
            seconds: -whole,
            nanos: 0,
        },
        (true, _) => Time {
            seconds: -whole - 1,
            nanos: 1_000_000_000 - nanos,
        },
    })
}

/// Checks a pax sparse member's regions against what it stores (`stored`, the bytes of data
/// that follow its header) and its real size, so that a restore refuses a damaged map before
/// it writes anything rather than halfway. Reads a 1.0 map from `data`.
pub fn check_sparse(
    sparse: &Sparse,
    stored: u64,
    data: &mut impl Read,
) -> Result<(), &'static str> {
    let (extents, map_bytes) = match &sparse.map {
        SparseMap::Extents(extents) => (extents.clone(), 0),
        SparseMap::InData => read_data_map(data).map_err(|_| "its map is not readable")?,
        SparseMap::Unpaired => return Err("its last region has no length"),
    };
    let mut total = map_bytes;
    for (offset, length) in extents {
        let end = offset
            .checked_add(length)
            .ok_or("a region ends past any size")?;
        if end > sparse.real_size {
            return Err("a region ends past the file's size");
        }
        total = total
            .checked_add(length)
            .ok_or("its regions hold more than any size")?;
    }
    if total > stored {
        return Err("its regions hold more data than the member stores");
    }
    if i64::try_from(sparse.real_size).is_err() {
        return Err("a size no file can have");
    }
    Ok(())
}

/// The data regions of a sparse member, `(offset, length)`: from its pax header, or read off
/// the head of `data` (1.0), which then stands at the first region's bytes.
pub fn sparse_extents(sparse: &Sparse, data: &mut impl Read) -> io::Result<Vec<(u64, u64)>> {
    match &sparse.map {
        SparseMap::Extents(extents) => Ok(extents.clone()),
        SparseMap::InData => Ok(read_data_map(data)?.0),
        // The check pass refuses it before anything reads the data.
        SparseMap::Unpaired => Err(damaged("a sparse map with a region without a length")),
    }
}

/// A sparse member's file as it is whole: its regions where the map puts them and zeros in
/// between, up to the real size, read out of the packed data.
pub struct Expanded<R> {
    data: R,
    extents: std::vec::IntoIter<(u64, u64)>,
    /// The region being read: where it starts and ends in the file.
    region: Option<(u64, u64)>,
    position: u64,
    real_size: u64,
}

impl<R: Read> Expanded<R> {
    pub fn new(sparse: &Sparse, mut data: R) -> io::Result<Expanded<R>> {
        let extents = sparse_extents(sparse, &mut data)?;
        let mut expanded = Expanded {
            data,
            extents: extents.into_iter(),
            region: None,
            position: 0,
            real_size: sparse.real_size,
        };
        expanded.next_region()?;
        Ok(expanded)
    }

    fn next_region(&mut self) -> io::Result<()> {
        self.region = match self.extents.next() {
            Some((offset, length)) => {
                let end = offset
                    .checked_add(length)
                    .filter(|&end| offset >= self.position && end <= self.real_size)
                    .ok_or_else(|| damaged("a sparse map whose regions overlap or overrun"))?;
                Some((offset, end))
            }
            None => None,
        };
        Ok(())
    }
}

impl<R: Read> Read for Expanded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let limit = |to: u64, position: u64| {
                usize::try_from(to - position).map_or(buffer.len(), |n| n.min(buffer.len()))
            };
            match self.region {
                Some((start, end)) if self.position >= start => {
                    if self.position == end {
                        self.next_region()?;
                        continue;
                    }
                    let want = limit(end, self.position);
                    let n = self.data.read(&mut buffer[..want])?;
                    if n == 0 {
                        return Err(damaged(
                            "the sparse map names more data than the member holds",
                        ));
                    }
                    self.position += n as u64;
                    return Ok(n);
                }
                // A hole, up to the next region or the end of the file.
                next => {
                    let to = next.map_or(self.real_size, |(start, _)| start);
                    let n = limit(to, self.position);
                    buffer[..n].fill(0);
                    self.position += n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// Reads the in-data map of a 1.0 sparse member from its data: the extents, and how many bytes
/// of data the map took (to the end of its last block).
pub fn read_data_map(data: &mut impl Read) -> io::Result<(Vec<(u64, u64)>, u64)> {
    let mut used = 0u64;
    let mut line = Vec::new();
    let mut number = || -> io::Result<u64> {
        line.clear();
        let mut byte = [0u8; 1];
        loop {
            data.read_exact(&mut byte)?;
            used += 1;
            match byte[0] {
                b'\n' => break,
                digit @ b'0'..=b'9' if line.len() < 20 => line.push(digit),
                _ => return Err(damaged("a sparse map that is not decimal numbers")),
            }
        }
        std::str::from_utf8(&line)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| damaged("an empty number in a sparse map"))
    };
    let count = number()?;
    let mut extents = Vec::new();
    for _ in 0..count {
        let offset = number()?;
        let length = number()?;
        extents.push((offset, length));
    }
    let padding = (512 - used % 512) % 512;
    io::copy(&mut data.take(padding), &mut io::sink())?;
    Ok((extents, used + padding))
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_nanoseconds_before_and_after_1970() {
        let time = |text: &str| parse_time(text.as_bytes()).unwrap();
        assert_eq!(
            time("-302443199.876543211"),
            Time {
                seconds: -302_443_200,
                nanos: 123_456_789
            }
        );
        assert_eq!(
            time("10413792000.5"),
            Time {
                seconds: 10_413_792_000,
                nanos: 500_000_000
            }
        );
        assert_eq!(time("-60").seconds, -60);
        assert_eq!(time("7").nanos, 0);
        assert!(parse_time(b"x").is_none());
        assert!(parse_time(b"1.x").is_none());
    }

    #[test]
    fn base_256_times_read_as_gnu_tar_reads_them() {
        // All 12 bytes, two's complement: -302443200 (1960-06-01 12:00 UTC), and -256, whose
        // last byte is 0: every byte is a digit.
        for seconds in [-302_443_200i32, -256, -1] {
            let mut field = [0xffu8; 12];
            field[8..].copy_from_slice(&seconds.to_be_bytes());
            assert_eq!(header_time(&field), i64::from(seconds));
        }
        let mut positive = [0u8; 12];
        positive[0] = 0x80;
        positive[4..].copy_from_slice(&10_413_792_000u64.to_be_bytes());
        assert_eq!(header_time(&positive), 10_413_792_000);
        assert_eq!(header_time(b"15303516554\0"), 0o15303516554);
        assert_eq!(header_time(b"   1234567 \0"), 0o1234567);
    }

    #[test]
    fn sparse_maps_that_do_not_fit_their_data_or_size_are_refused() {
        let extents = |regions: &[(u64, u64)], real_size| Sparse {
            real_size,
            map: SparseMap::Extents(regions.to_vec()),
        };
        let check = |sparse: &Sparse, stored| check_sparse(sparse, stored, &mut &b""[..]);
        assert_eq!(check(&extents(&[(0, 3), (100, 2)], 102), 5), Ok(()));
        assert!(check(&extents(&[(0, 3)], 2), 3).is_err(), "past the size");
        assert!(
            check(&extents(&[(0, 3), (10, 3)], 20), 5).is_err(),
            "more than stored"
        );
        assert!(
            check(&extents(&[(u64::MAX, 2)], u64::MAX), 2).is_err(),
            "overflow"
        );
        let unpaired = Sparse {
            real_size: 1,
            map: SparseMap::Unpaired,
        };
        assert!(check(&unpaired, 0).is_err());
    }

    #[test]
    fn a_1_0_data_map_is_read_to_the_end_of_its_block() {
        let mut data = b"2\n0\n5\n1048576\n3\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"helloEND");
        let mut reader = &data[..];
        let (extents, used) = read_data_map(&mut reader).unwrap();
        assert_eq!(extents, [(0, 5), (1_048_576, 3)]);
        assert_eq!(used, 512);
        assert_eq!(reader, b"helloEND");
    }
}
