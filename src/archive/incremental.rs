//! GNU incremental archives (`tar --listed-incremental`): which entries a level-1 stores,
//! the dumpdir each directory member carries, and the snapshot of a full (what it held, per
//! directory) that later level-1s are made against. Pure: facts and bytes in, decisions
//! and bytes out.
//!
//! A snapshot is written while the full's walk goes, one record per directory in walk
//! order (depth first, names in byte order, a directory's files before its
//! subdirectories), so a level-1's walk reads it alongside, one record at a time:
//!
//! ```text
//! backupbox snapshot 1\n
//! started <seconds>.<nanoseconds>\n     when the full's walk started
//! device <st_dev of the folder>\n
//! shape <hex of the settings that decide what is held>\n
//! \n
//! R<path below the folder>\0<inode>/<name>\0 … \0     one per directory: the files held
//! E<seconds>.<nanoseconds>\n                          the full's own stamp (its mtime)
//! ```

use std::cmp::Ordering;
use std::io::{self, BufRead, Write};

/// An instant to the nanosecond: `(seconds, nanoseconds)` since the epoch.
pub type Instant = (i64, u32);

const MAGIC: &[u8] = b"backupbox snapshot 1\n";
/// Longest path or entry a snapshot record may hold: beyond any real tree's.
const MAX_FIELD: usize = 1 << 20;

/// What a level-1 is made against: the facts of the full its snapshot describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// When the full's walk started: what changed at or after it is stored again.
    pub started: Instant,
    /// The folder's device at the full.
    pub device: u64,
    /// [`crate::settings::Effective::shape`] at the full.
    pub shape: String,
}

/// The flag of an entry in a dumpdir.
pub const STORED: u8 = b'Y';
pub const UNCHANGED: u8 = b'N';
pub const DIRECTORY: u8 = b'D';

/// Whether a level-1 stores a non-directory entry: GNU tar's rule (its data or inode changed
/// at or after the full started), and what GNU tar misses: an entry the full did not hold
/// (new, or unreadable or vanished then) or that is another inode now (replaced with old
/// times, as `mv` or a restore with kept times make it).
pub fn stores(held_inode: Option<u64>, inode: u64, changed: [Instant; 2], since: Instant) -> bool {
    held_inode != Some(inode) || changed.iter().any(|&time| time >= since)
}

/// A dumpdir: each entry's flag and name, NUL-terminated, and a closing NUL.
pub fn dumpdir<'a>(entries: impl Iterator<Item = (u8, &'a [u8])>) -> Vec<u8> {
    let mut listing = Vec::new();
    for (flag, name) in entries {
        listing.push(flag);
        listing.extend_from_slice(name);
        listing.push(0);
    }
    listing.push(0);
    listing
}

/// The entries of a dumpdir as backupbox writes them (flags `Y`, `N`, `D`; names without
/// `/`, unique, in byte order), or `None` for anything else: GNU's rename flags included,
/// which only GNU tar's own level-1s carry.
pub fn parse_dumpdir(listing: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let body = listing.strip_suffix(b"\0")?;
    let mut entries: Vec<(u8, &[u8])> = Vec::new();
    if body.is_empty() {
        return Some(entries);
    }
    for entry in body.strip_suffix(b"\0")?.split(|&b| b == 0) {
        let (&flag, name) = entry.split_first()?;
        let sound_name = !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/');
        if ![STORED, UNCHANGED, DIRECTORY].contains(&flag) || !sound_name {
            return None;
        }
        if entries.last().is_some_and(|(_, last)| *last >= name) {
            return None;
        }
        entries.push((flag, name));
    }
    Some(entries)
}

const LABEL_PREFIX: &str = "backupbox level 1 of the full written at ";

/// The volume label a level-1 starts with: the stamp of the full it needs, since rotation
/// renames fulls.
pub fn label(full: Instant) -> Vec<u8> {
    format!("{LABEL_PREFIX}{}.{:09}", full.0, full.1).into_bytes()
}

/// The full's stamp that a level-1's label names.
pub fn parse_label(text: &[u8]) -> Option<Instant> {
    parse_instant(text.strip_prefix(LABEL_PREFIX.as_bytes())?)
}

/// Orders paths below the folder as the walk meets directories: by components, each
/// compared as bytes (so `a/b` comes before `a.b`, unlike a plain byte comparison).
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    let parts = |path: &'_ [u8]| {
        path.split(|&b| b == b'/')
            .filter(|part| !part.is_empty())
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    };
    parts(a).cmp(&parts(b))
}

/// The files a full held in one directory: `(name, inode)` in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub path: Vec<u8>,
    pub files: Vec<(Vec<u8>, u64)>,
}

impl Held {
    /// The inode the full held under `name`, if it held a file by that name.
    pub fn inode(&self, name: &[u8]) -> Option<u64> {
        self.files
            .binary_search_by(|(held, _)| held.as_slice().cmp(name))
            .ok()
            .map(|at| self.files[at].1)
    }
}

/// Writes a full's snapshot as its walk goes.
pub struct SnapshotWriter<W: Write> {
    out: W,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn start(mut out: W, baseline: &Baseline) -> io::Result<SnapshotWriter<W>> {
        out.write_all(MAGIC)?;
        let (seconds, nanos) = baseline.started;
        let shape: String = baseline.shape.bytes().map(|b| format!("{b:02x}")).collect();
        write!(
            out,
            "started {seconds}.{nanos:09}\ndevice {}\nshape {shape}\n\n",
            baseline.device
        )?;
        Ok(SnapshotWriter { out })
    }

    /// The files held in the directory at `path` below the folder (empty for the folder).
    pub fn record(&mut self, held: &Held) -> io::Result<()> {
        self.out.write_all(b"R")?;
        self.out.write_all(&held.path)?;
        self.out.write_all(b"\0")?;
        for (name, inode) in &held.files {
            write!(self.out, "{inode}/")?;
            self.out.write_all(name)?;
            self.out.write_all(b"\0")?;
        }
        self.out.write_all(b"\0")
    }

    /// Ends the snapshot with the stamp of the full it describes.
    pub fn finish(mut self, full: Instant) -> io::Result<W> {
        writeln!(self.out, "E{}.{:09}", full.0, full.1)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a snapshot, one directory record at a time.
pub struct SnapshotReader<R: BufRead> {
    input: R,
    pub baseline: Baseline,
    /// The record read ahead of the walk, not yet asked for.
    ahead: Option<Held>,
    /// The full's stamp, once the end is reached.
    full: Option<Instant>,
    last_path: Option<Vec<u8>>,
}

/// At most `most` bytes of `input`, without giving it up.
fn capped<R: BufRead>(input: &mut R, most: usize) -> io::Take<&mut R> {
    <&mut R as io::Read>::take(input, most as u64)
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("damaged snapshot: {what}"),
    )
}

fn parse_instant(text: &[u8]) -> Option<Instant> {
    let text = std::str::from_utf8(text).ok()?;
    let (seconds, nanos) = text.split_once('.')?;
    let nanos: u32 = nanos.parse().ok().filter(|&n| n < 1_000_000_000)?;
    Some((seconds.parse().ok()?, nanos))
}

impl<R: BufRead> SnapshotReader<R> {
    pub fn open(mut input: R) -> io::Result<SnapshotReader<R>> {
        let line = |input: &mut R, key: &str| -> io::Result<Vec<u8>> {
            let mut text = Vec::new();
            capped(input, MAX_FIELD).read_until(b'\n', &mut text)?;
            let value = text
                .strip_suffix(b"\n")
                .and_then(|text| text.strip_prefix(key.as_bytes()))
                .and_then(|text| text.strip_prefix(b" "))
                .ok_or_else(|| damaged(key))?;
            Ok(value.to_vec())
        };
        let mut magic = vec![0; MAGIC.len()];
        input.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(damaged("not a backupbox snapshot"));
        }
        let started =
            parse_instant(&line(&mut input, "started")?).ok_or_else(|| damaged("started"))?;
        let device = std::str::from_utf8(&line(&mut input, "device")?)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| damaged("device"))?;
        let hex = line(&mut input, "shape")?;
        let shape = hex
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| damaged("shape"))?;
        let mut blank = [0u8];
        input.read_exact(&mut blank)?;
        if blank != *b"\n" {
            return Err(damaged("header"));
        }
        Ok(SnapshotReader {
            input,
            baseline: Baseline {
                started,
                device,
                shape,
            },
            ahead: None,
            full: None,
            last_path: None,
        })
    }

    /// One NUL-terminated field, at most [`MAX_FIELD`] bytes.
    fn field(&mut self) -> io::Result<Vec<u8>> {
        let mut field = Vec::new();
        capped(&mut self.input, MAX_FIELD + 1).read_until(0, &mut field)?;
        field
            .pop()
            .filter(|&last| last == 0)
            .ok_or_else(|| damaged("a record is cut off"))?;
        Ok(field)
    }

    /// The next record, checked to come after the one before; `None` at the end.
    fn next_record(&mut self) -> io::Result<Option<Held>> {
        if self.full.is_some() {
            return Ok(None);
        }
        let mut kind = [0u8];
        self.input.read_exact(&mut kind)?;
        if kind == *b"E" {
            let mut rest = Vec::new();
            capped(&mut self.input, 64).read_until(b'\n', &mut rest)?;
            let full = rest
                .strip_suffix(b"\n")
                .and_then(parse_instant)
                .ok_or_else(|| damaged("its end"))?;
            self.full = Some(full);
            return Ok(None);
        }
        if kind != *b"R" {
            return Err(damaged("an unknown record"));
        }
        let path = self.field()?;
        if let Some(last) = &self.last_path
            && walk_order(last, &path) != Ordering::Less
        {
            return Err(damaged("records out of order"));
        }
        let mut files: Vec<(Vec<u8>, u64)> = Vec::new();
        loop {
            let entry = self.field()?;
            if entry.is_empty() {
                break;
            }
            let slash = entry
                .iter()
                .position(|&b| b == b'/')
                .ok_or_else(|| damaged("an entry"))?;
            let inode = std::str::from_utf8(&entry[..slash])
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| damaged("an inode"))?;
            let name = entry[slash + 1..].to_vec();
            if files.last().is_some_and(|(last, _)| *last >= name) {
                return Err(damaged("entries out of order"));
            }
            files.push((name, inode));
        }
        self.last_path = Some(path.clone());
        Ok(Some(Held { path, files }))
    }

    /// What the full held in the directory at `path`; paths must be asked for in
    /// [`walk_order`], as the walk meets them.
    pub fn find(&mut self, path: &[u8]) -> io::Result<Option<Held>> {
        loop {
            let record = match self.ahead.take() {
                Some(record) => record,
                None => match self.next_record()? {
                    Some(record) => record,
                    None => return Ok(None),
                },
            };
            match walk_order(&record.path, path) {
                Ordering::Less => {}
                Ordering::Equal => return Ok(Some(record)),
                Ordering::Greater => {
                    self.ahead = Some(record);
                    return Ok(None);
                }
            }
        }
    }

    /// Reads every record to the end and returns the stamp of the full the snapshot
    /// describes: a snapshot is trusted only once it was read whole and found sound.
    pub fn check_to_end(mut self) -> io::Result<Instant> {
        while self.next_record()?.is_some() {}
        let full = self.full.ok_or_else(|| damaged("no end"))?;
        let mut rest = [0u8];
        if self.input.read(&mut rest)? != 0 {
            return Err(damaged("bytes after its end"));
        }
        Ok(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Baseline {
        Baseline {
            started: (1_764_558_000, 5),
            device: 2049,
            shape: "exclude=[\"*.tmp\"] one_file_system=false".to_owned(),
        }
    }

    fn held(path: &str, files: &[(&str, u64)]) -> Held {
        Held {
            path: path.as_bytes().to_vec(),
            files: files
                .iter()
                .map(|(name, inode)| (name.as_bytes().to_vec(), *inode))
                .collect(),
        }
    }

    fn snapshot(records: &[Held]) -> Vec<u8> {
        let mut writer = SnapshotWriter::start(Vec::new(), &baseline()).unwrap();
        for record in records {
            writer.record(record).unwrap();
        }
        writer.finish((1_764_558_009, 123)).unwrap()
    }

    #[test]
    fn a_snapshot_reads_back_in_walk_order_and_skips_what_the_walk_no_longer_has() {
        let records = [
            held("", &[("a", 1), ("b\nc", 2)]),
            held("a", &[]),
            held("a/b", &[("f", 3)]),
            held("a.b", &[("g", 4)]),
            held("z", &[("h", 5)]),
        ];
        let bytes = snapshot(&records);
        let mut reader = SnapshotReader::open(&bytes[..]).unwrap();
        assert_eq!(reader.baseline, baseline());
        assert_eq!(reader.find(b"").unwrap(), Some(records[0].clone()));
        assert_eq!(reader.find(b"a/b").unwrap(), Some(records[2].clone()));
        assert_eq!(
            reader.find(b"a/c").unwrap(),
            None,
            "not held: a later one waits"
        );
        assert_eq!(reader.find(b"z").unwrap(), Some(records[4].clone()));
        assert_eq!(records[0].inode(b"b\nc"), Some(2));
        assert_eq!(records[0].inode(b"b"), None);
        let reader = SnapshotReader::open(&bytes[..]).unwrap();
        assert_eq!(reader.check_to_end().unwrap(), (1_764_558_009, 123));
    }

    #[test]
    fn a_damaged_or_cut_snapshot_is_never_trusted() {
        let bytes = snapshot(&[held("", &[("a", 1)]), held("b", &[("c", 2)])]);
        for cut in [0, 10, MAGIC.len() + 5, bytes.len() - 1, bytes.len() - 12] {
            let trusted =
                SnapshotReader::open(&bytes[..cut]).and_then(SnapshotReader::check_to_end);
            assert!(trusted.is_err(), "cut at {cut}");
        }
        let disordered = snapshot(&[held("b", &[]), held("a", &[])]);
        assert!(
            SnapshotReader::open(&disordered[..])
                .and_then(SnapshotReader::check_to_end)
                .is_err()
        );
        let mut trailing = bytes.clone();
        trailing.push(b'x');
        assert!(
            SnapshotReader::open(&trailing[..])
                .and_then(SnapshotReader::check_to_end)
                .is_err()
        );
    }

    #[test]
    fn a_label_names_the_full_and_fits_a_header() {
        let text = label((1_764_558_000, 123_456_789));
        assert!(text.len() < 100, "{}", text.len());
        assert_eq!(parse_label(&text), Some((1_764_558_000, 123_456_789)));
        assert_eq!(parse_label(b"MYLABEL"), None);
    }

    #[test]
    fn paths_order_by_components() {
        assert_eq!(walk_order(b"a/b", b"a.b"), Ordering::Less);
        assert_eq!(walk_order(b"", b"a"), Ordering::Less);
        assert_eq!(walk_order(b"a", b"a/b"), Ordering::Less);
        assert_eq!(walk_order(b"b", b"a/z"), Ordering::Greater);
    }

    #[test]
    fn a_level_1_stores_what_changed_what_is_new_and_what_is_another_inode() {
        let since = (100, 0);
        let old = [(50, 0), (60, 0)];
        assert!(!stores(Some(7), 7, old, since));
        assert!(stores(None, 7, old, since), "not held by the full");
        assert!(stores(Some(8), 7, old, since), "another inode");
        assert!(
            stores(Some(7), 7, [(100, 0), (60, 0)], since),
            "mtime at the start"
        );
        assert!(
            stores(Some(7), 7, [(50, 0), (100, 1)], since),
            "ctime after"
        );
    }

    #[test]
    fn dumpdirs_round_trip_and_anything_else_is_refused() {
        let listing =
            dumpdir([(DIRECTORY, &b"d"[..]), (STORED, b"f"), (UNCHANGED, b"g")].into_iter());
        assert_eq!(listing, b"Dd\0Yf\0Ng\0\0");
        assert_eq!(
            parse_dumpdir(&listing),
            Some(vec![
                (DIRECTORY, &b"d"[..]),
                (STORED, b"f"),
                (UNCHANGED, b"g")
            ])
        );
        assert_eq!(parse_dumpdir(b"\0"), Some(Vec::new()));
        for bad in [
            &b""[..],
            b"Ra\0\0",
            b"Ya/b\0\0",
            b"Y..\0\0",
            b"Yb\0Ya\0\0",
            b"Ya\0Ya\0\0",
            b"Ya\0",
        ] {
            assert_eq!(parse_dumpdir(bad), None, "{bad:?}");
        }
    }
}
