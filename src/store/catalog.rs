//! The catalog of archives, `logs/backup_catalog.txt`: one record per archive written, keyed
//! by the archive's own stamp (its name and the mtime it was written with, to the
//! nanosecond), so it follows the archive through rotation, when `<name>.tar` becomes
//! `<name>.<stamp>.tar` by a hard link, and outlives edits of the plan line.
//!
//! A record is one line: the name, then tab-separated `key=value` fields, e.g.
//! `docs  written=1764559800.123456789  form=zstd  size=4096  stream=10240  members=12
//! sha256=…` (the digest only with `checksum` on, or for an encrypted archive). Keys this version does not know are kept as they are, so a later one's fields
//! (recipients, remote copies, incremental levels) survive a rewrite by an older binary.
//! What the catalog says is checked against the file it names before it is used: a file
//! whose mtime or size differ from its record has none.

use super::ledger;
use crate::archive::form::Form;
use crate::layout::Layout;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

/// Records kept at most: as many as generations may be kept, for a handful of names.
const MAX_RECORDS: usize = 100_000;

/// When an archive was written: its mtime, to the nanosecond. Together with its name, the
/// archive's stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Written {
    pub seconds: i64,
    pub nanos: u32,
}

impl Written {
    /// The mtime of a file on disk.
    pub fn of(meta: &fs::Metadata) -> Written {
        Written {
            seconds: meta.mtime(),
            nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }
}

/// What the catalog knows of one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Vec<u8>,
    pub written: Written,
    pub form: Form,
    /// The archive file's size in bytes.
    pub size: u64,
    /// The tar stream's size, before compression.
    pub stream: u64,
    /// Members, the folder's own entry included.
    pub members: u64,
    /// SHA-256 of the archive file's bytes as they were written, when `checksum` asked for it
    /// (always, for an encrypted archive).
    pub sha256: Option<[u8; 32]>,
    /// The fingerprint of the age recipients it is encrypted to.
    pub recipients: Option<String>,
    /// Its offsite copy, when the settings ask for one.
    pub offsite: Option<Offsite>,
    /// For a level-1 archive: the stamp of the full it needs.
    pub full: Option<Written>,
    /// Fields of a later version, `key=value`, kept in order.
    pub other: Vec<Vec<u8>>,
}

/// Where an archive's offsite copy goes, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offsite {
    /// The remote folder: `REMOTE:PATH/<prefix>`.
    pub to: String,
    pub state: OffsiteState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsiteState {
    /// In place on the remote since this unix time.
    Copied(i64),
    /// Failed `attempts` times so far; the next try is due at this unix time.
    Pending {
        attempts: u32,
        next: i64,
        error: String,
    },
    /// Failed as many times as `offsite_retries` allows; no more tries.
    Failed { attempts: u32, error: String },
    /// The archive was gone from `backups/` before it could be copied.
    Lost,
}

impl Offsite {
    /// The catalog's fields of it.
    fn render(&self) -> String {
        let (state, error) = match &self.state {
            OffsiteState::Copied(at) => (format!("copied:{at}"), None),
            OffsiteState::Pending {
                attempts,
                next,
                error,
            } => (format!("pending:{attempts}:{next}"), Some(error)),
            OffsiteState::Failed { attempts, error } => (format!("failed:{attempts}"), Some(error)),
            OffsiteState::Lost => ("lost".to_owned(), None),
        };
        let mut fields = format!("\toffsite_to={}\toffsite={state}", one_field(&self.to));
        if let Some(error) = error {
            fields.push_str(&format!("\toffsite_error={}", one_field(error)));
        }
        fields
    }

    fn parse(to: String, state: &str, error: Option<String>) -> Option<Offsite> {
        let error = error.unwrap_or_default();
        let mut parts = state.split(':');
        let state = match (parts.next()?, parts.next(), parts.next()) {
            ("copied", Some(at), None) => OffsiteState::Copied(at.parse().ok()?),
            ("pending", Some(attempts), Some(next)) => OffsiteState::Pending {
                attempts: attempts.parse().ok()?,
                next: next.parse().ok()?,
                error,
            },
            ("failed", Some(attempts), None) => OffsiteState::Failed {
                attempts: attempts.parse().ok()?,
                error,
            },
            ("lost", None, None) => OffsiteState::Lost,
            _ => return None,
        };
        Some(Offsite { to, state })
    }
}

/// Text made fit for one field: no tabs or line ends, at most 1,000 bytes.
fn one_field(text: &str) -> String {
    let mut field: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if field.len() > 1000 {
        let mut cut = 1000;
        while !field.is_char_boundary(cut) {
            cut -= 1;
        }
        field.truncate(cut);
    }
    field
}

impl Record {
    /// Whether this is the record of the archive of `name` whose metadata is `meta`.
    pub fn describes(&self, name: &[u8], meta: &fs::Metadata) -> bool {
        self.name == name && self.written == Written::of(meta) && self.size == meta.len()
    }

    /// The record as one line, without its newline.
    fn render(&self) -> Vec<u8> {
        let mut line = self.name.clone();
        let Written { seconds, nanos } = self.written;
        line.extend_from_slice(
            format!(
                "\twritten={seconds}.{nanos:09}\tform={}\tsize={}\tstream={}\tmembers={}",
                self.form.name(),
                self.size,
                self.stream,
                self.members,
            )
            .as_bytes(),
        );
        if let Some(digest) = &self.sha256 {
            line.extend_from_slice(format!("\tsha256={}", hex(digest)).as_bytes());
        }
        if let Some(recipients) = &self.recipients {
            line.extend_from_slice(format!("\trecipients={recipients}").as_bytes());
        }
        if let Some(offsite) = &self.offsite {
            line.extend_from_slice(offsite.render().as_bytes());
        }
        if let Some(Written { seconds, nanos }) = self.full {
            line.extend_from_slice(format!("\tfull={seconds}.{nanos:09}").as_bytes());
        }
        for field in &self.other {
            line.push(b'\t');
            line.extend_from_slice(field);
        }
        line
    }

    /// One line of the catalog; `None` if it is damaged or lacks a field this version needs.
    fn parse(line: &[u8]) -> Option<Record> {
        let mut fields = line.split(|&b| b == b'\t');
        let name = fields.next().filter(|name| !name.is_empty())?.to_vec();
        let (mut written, mut form, mut size, mut stream, mut members, mut sha256) =
            (None, None, None, None, None, None);
        let (mut recipients, mut full) = (None, None);
        let (mut offsite_to, mut offsite_state, mut offsite_error) = (None, None, None);
        let mut other = Vec::new();
        for field in fields {
            let at = field.iter().position(|&b| b == b'=')?;
            let (key, value) = (&field[..at], &field[at + 1..]);
            let number = || std::str::from_utf8(value).ok()?.parse::<u64>().ok();
            match key {
                b"written" => written = parse_written(value),
                b"full" => full = Some(parse_written(value)?),
                b"form" => form = Form::from_name(std::str::from_utf8(value).ok()?),
                b"recipients" => recipients = Some(String::from_utf8(value.to_vec()).ok()?),
                b"offsite_to" => offsite_to = Some(String::from_utf8(value.to_vec()).ok()?),
                b"offsite" => offsite_state = Some(String::from_utf8(value.to_vec()).ok()?),
                b"offsite_error" => {
                    offsite_error = Some(String::from_utf8_lossy(value).into_owned());
                }
                b"size" => size = number(),
                b"stream" => stream = number(),
                b"members" => members = number(),
                b"sha256" => sha256 = Some(parse_hex(value)?),
                _ => other.push(field.to_vec()),
            }
        }
        Some(Record {
            name,
            written: written?,
            form: form?,
            size: size?,
            stream: stream?,
            members: members?,
            sha256,
            recipients,
            offsite: match (offsite_to, offsite_state) {
                (Some(to), Some(state)) => Offsite::parse(to, &state, offsite_error),
                _ => None,
            },
            full,
            other,
        })
    }
}

fn parse_written(value: &[u8]) -> Option<Written> {
    let text = std::str::from_utf8(value).ok()?;
    let (seconds, nanos) = text.split_once('.')?;
    if nanos.len() != 9 {
        return None;
    }
    Some(Written {
        seconds: seconds.parse().ok()?,
        nanos: nanos.parse().ok().filter(|&nanos| nanos < 1_000_000_000)?,
    })
}

/// Lower-case hexadecimal, as `sha256sum` prints it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn parse_hex(value: &[u8]) -> Option<[u8; 32]> {
    if value.len() != 64 {
        return None;
    }
    let mut digest = [0; 32];
    for (byte, pair) in digest.iter_mut().zip(value.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// The records in a catalog's text. Lines that do not parse are skipped: a damaged catalog
/// costs what it knew, never a crash, and every use of a record falls back to reading the
/// archive.
pub fn parse(text: &[u8]) -> Vec<Record> {
    text.split(|&b| b == b'\n')
        .filter_map(Record::parse)
        .collect()
}

/// The catalog's text with `record` added, replacing a record with the same stamp, and
/// without the records of the same name that describe none of `present` (the archives of that
/// name on disk, with their metadata): those archives are gone.
pub fn with_record(text: &[u8], record: &Record, present: &[fs::Metadata]) -> Vec<u8> {
    let mut records: Vec<Record> = parse(text)
        .into_iter()
        .filter(|old| {
            old.name != record.name
                || (old.written != record.written
                    && present.iter().any(|meta| old.describes(&record.name, meta)))
        })
        .collect();
    records.push(record.clone());
    let excess = records.len().saturating_sub(MAX_RECORDS);
    render(records.into_iter().skip(excess))
}

/// Every record the catalog holds; none if it does not exist yet.
pub fn load(layout: &Layout) -> io::Result<Vec<Record>> {
    Ok(parse(&ledger::read(&layout.catalog_file())?))
}

/// The record of the archive of `name` whose metadata is `meta`, if the catalog has one.
pub fn find<'a>(records: &'a [Record], name: &[u8], meta: &fs::Metadata) -> Option<&'a Record> {
    records
        .iter()
        .rev()
        .find(|record| record.describes(name, meta))
}

/// The records by name, for many look-ups at once (`status` of a large plan, `backups
/// --long`): each then reads only the records of its own name.
pub struct Index<'a>(std::collections::HashMap<&'a [u8], Vec<&'a Record>>);

impl<'a> Index<'a> {
    pub fn of(records: &'a [Record]) -> Index<'a> {
        let mut by_name: std::collections::HashMap<&[u8], Vec<&Record>> =
            std::collections::HashMap::new();
        for record in records {
            by_name.entry(&record.name).or_default().push(record);
        }
        Index(by_name)
    }

    /// As [`find`], among the records of `name` only.
    pub fn find(&self, name: &[u8], meta: &fs::Metadata) -> Option<&'a Record> {
        self.0
            .get(name)?
            .iter()
            .rev()
            .find(|record| record.describes(name, meta))
            .copied()
    }
}

/// The record the archive of `name` in `form` was written with, for checking the file in place
/// against it: the newest full of that name and form, since the archive in place is the newest
/// written (generations are older). Unlike [`find`] this does not ask the file to agree: a
/// file that was cut or changed has another size or mtime, and that is what is checked.
pub fn last_full<'a>(records: &'a [Record], name: &[u8], form: Form) -> Option<&'a Record> {
    records
        .iter()
        .filter(|record| record.name == name && record.form == form && record.full.is_none())
        .max_by_key(|record| record.written)
}

/// The record of the archive of `name` in place (the newest, if several forms are), if the
/// catalog has one that still describes it.
pub fn in_place(layout: &Layout, name: &[u8]) -> Option<Record> {
    let (_, _, meta) = super::rotation::in_place(&layout.backups_dir(), name)
        .into_iter()
        .next()?;
    let records = load(layout).ok()?;
    find(&records, name, &meta).cloned()
}

/// Adds `record` of the archive about to be put in place (once the archive in place has its
/// generation name, if it keeps one) and forgets the archives of its name that will no longer
/// be in `backups/`: those gone already and, for a full, those in place, which it replaces (a
/// level-1 replaces nothing).
pub fn add(layout: &Layout, record: &Record) -> io::Result<()> {
    // A full replaces the archive in place; a level-1 replaces nothing.
    let replaced = if record.full.is_some() {
        Vec::new()
    } else {
        Layout::archive_file_names(&record.name).to_vec()
    };
    let staying: Vec<fs::Metadata> = super::rotation::files_of(&layout.backups_dir(), &record.name)
        .into_iter()
        .filter(|(file, _)| !replaced.contains(file))
        .map(|(_, meta)| meta)
        .collect();
    ledger::rewrite(layout, &layout.catalog_file(), |current| {
        with_record(current, record, &staying)
    })
}

/// Changes the record of the archive of `name` written at `written`, if the catalog has one;
/// returns whether it had.
pub fn update(
    layout: &Layout,
    name: &[u8],
    written: Written,
    change: impl FnOnce(&mut Record),
) -> io::Result<bool> {
    let mut found = false;
    ledger::rewrite(layout, &layout.catalog_file(), |current| {
        let mut records = parse(current);
        if let Some(record) = records
            .iter_mut()
            .rev()
            .find(|record| record.name == name && record.written == written)
        {
            change(record);
            found = true;
        }
        render(records.into_iter())
    })?;
    Ok(found)
}

/// Forgets the archives of `name` no longer in `backups/` (after a prune removed some).
pub fn forget_gone(layout: &Layout, name: &[u8]) -> io::Result<()> {
    let present: Vec<fs::Metadata> = super::rotation::files_of(&layout.backups_dir(), name)
        .into_iter()
        .map(|(_, meta)| meta)
        .collect();
    let keeps = |record: &Record| {
        record.name != name || present.iter().any(|meta| record.describes(name, meta))
    };
    if load(layout)?.iter().all(keeps) {
        return Ok(());
    }
    ledger::rewrite(layout, &layout.catalog_file(), |current| {
        render(parse(current).into_iter().filter(keeps))
    })
}

/// The catalog's text of `records`.
fn render(records: impl Iterator<Item = Record>) -> Vec<u8> {
    let mut text = Vec::new();
    for record in records {
        text.extend_from_slice(&record.render());
        text.push(b'\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, seconds: i64) -> Record {
        Record {
            name: name.as_bytes().to_vec(),
            written: Written { seconds, nanos: 5 },
            form: Form::clear(crate::archive::compression::Compression::Zstd),
            size: 4096,
            stream: 10240,
            members: 12,
            sha256: Some([0xab; 32]),
            recipients: None,
            offsite: None,
            full: None,
            other: Vec::new(),
        }
    }

    #[test]
    fn records_read_back_with_the_fields_of_later_versions() {
        let mut later = record("docs", 1_764_559_800);
        later.recipients = Some("0123456789abcdef".to_owned());
        later.offsite = Some(Offsite {
            to: "s3:bucket/web1".to_owned(),
            state: OffsiteState::Pending {
                attempts: 2,
                next: 1_764_560_000,
                error: "rclone exited\twith status 1\nline two".to_owned(),
            },
        });
        later.other = vec![b"remote=s3:bucket".to_vec()];
        let text = with_record(b"", &later, &[]);
        assert_eq!(
            String::from_utf8_lossy(&text),
            format!(
                "docs\twritten=1764559800.000000005\tform=zstd\tsize=4096\tstream=10240\tmembers=12\tsha256={}\trecipients=0123456789abcdef\toffsite_to=s3:bucket/web1\toffsite=pending:2:1764560000\toffsite_error=rclone exited with status 1 line two\tremote=s3:bucket\n",
                "ab".repeat(32)
            )
        );
        let mut read_back = later.clone();
        if let Some(Offsite {
            state: OffsiteState::Pending { error, .. },
            ..
        }) = &mut read_back.offsite
        {
            *error = "rclone exited with status 1 line two".to_owned();
        }
        assert_eq!(parse(&text), vec![read_back]);
    }

    #[test]
    fn damaged_lines_are_skipped_and_gone_archives_forgotten() {
        let text = with_record(b"", &record("docs", 100), &[]);
        let mut damaged = b"garbage\nmail\twritten=1.5\n\xff\n".to_vec();
        damaged.extend_from_slice(&text);
        assert_eq!(parse(&damaged), vec![record("docs", 100)]);
        // Nothing of `docs` is on disk any more: its old record goes, `mail`'s stays.
        let mail = with_record(&damaged, &record("mail", 7), &[]);
        let both = with_record(&mail, &record("docs", 200), &[]);
        assert_eq!(parse(&both), vec![record("mail", 7), record("docs", 200)]);
    }

    #[test]
    fn a_record_is_found_only_for_the_file_it_describes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.tar.zst");
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let mut mine = record("docs", 0);
        mine.written = Written::of(&meta);
        let records = vec![record("docs", 1), mine.clone()];
        assert_eq!(find(&records, b"docs", &meta), Some(&mine));
        assert_eq!(find(&records, b"mail", &meta), None);
        let index = Index::of(&records);
        assert_eq!(index.find(b"docs", &meta), Some(&mine));
        assert_eq!(index.find(b"mail", &meta), None);
        std::fs::write(&path, [0u8; 100]).unwrap();
        let changed = std::fs::metadata(&path).unwrap();
        assert_eq!(find(&records, b"docs", &changed), None);
    }
}
