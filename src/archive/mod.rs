//! Makes `backups/<name>.tar` (or `.tar.gz`, `.tar.zst`, each maybe with `.age`) of a plan
//! folder: a GNU tar archive of the live tree, written to a temporary file and put in place
//! only when complete and on disk; and opens the archive in place for reading, whatever its
//! form.

pub mod check;
pub mod compression;
pub mod digest;
pub mod exclude;
pub mod form;
pub mod header;
pub mod incremental;
pub mod member;
pub mod member_name;
mod parallel_gzip;
mod read_ahead;
mod stream;
pub mod structure;
pub mod tar_reader;
pub mod walk;

use crate::crypt::{Identities, Recipients};
use crate::layout::{self, Layout};
use crate::plan::Name;
use crate::progress::{Progress, Total};
use crate::sys::atomic_file::TempFile;
use crate::sys::open::FileId;
use compression::{Compression, Decoder, Encoding};
use exclude::Rules;
use form::Form;
use std::fs::{self, DirBuilder, File};
use std::io::{self, BufReader, Seek};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use tar_reader::{READ_BUFFER, TarReader};
use walk::{Exclusions, Walker};

/// The archive in place for a name, opened for reading: one descriptor, which every pass
/// reads from the start, so what was checked is what is used.
pub struct Stored {
    file: File,
    form: Form,
    display: String,
}

impl Stored {
    /// `backups/<file>` as messages name it.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The size of the archive file.
    pub fn size(&self) -> u64 {
        self.file.metadata().map_or(0, |meta| meta.len())
    }

    pub fn form(&self) -> Form {
        self.form
    }

    /// Refuses an encrypted archive when no identity is given, before anything reads it.
    pub fn require_key(&self, keys: &Identities) -> crate::error::Result<()> {
        if self.form.encrypted && keys.is_empty() {
            return Err(crate::error::Error::failed(format!(
                "{} is encrypted; give --identity FILE",
                self.display
            )));
        }
        Ok(())
    }

    /// The archive file, for what reads it as it is (a verify without the key).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// How much tar stream a pass over it reads: known only when it is stored as it is.
    pub fn total(&self) -> Total {
        if self.form == Form::clear(Compression::None) {
            Total::Exact(self.size())
        } else {
            Total::Unknown
        }
    }

    /// The tar stream's length once a pass read all of it, as far as known before: for
    /// progress lines.
    pub fn read_in_full(&self) -> Option<u64> {
        match self.total() {
            Total::Exact(size) => Some(size),
            _ => None,
        }
    }

    /// Checks the tar structure from the start; a compressed or encrypted stream is then read
    /// to its end, so the checksum there (gzip's CRC, zstd's xxhash, age's tags) is checked
    /// too.
    pub fn check(
        &self,
        keys: &Identities,
        progress: &mut Progress,
    ) -> Result<check::Soundness, check::Defect> {
        let mut input = self
            .read_from_start(keys)
            .map_err(check::Defect::Unreadable)?;
        let sound = check::check_structure(&mut input, progress)?;
        io::copy(&mut input, &mut io::sink()).map_err(check::Defect::Unreadable)?;
        Ok(sound)
    }

    /// The stamp of the full named by the label a level-1 starts with, if this is one.
    pub fn label(&self, keys: &Identities) -> Option<incremental::Instant> {
        if self.form.encrypted && keys.is_empty() {
            return None;
        }
        let mut archive = tar::Archive::new(self.read_from_start(keys).ok()?);
        let first = archive.entries().ok()?.next()?.ok()?;
        if first.header().entry_type().as_byte() != b'V' {
            return None;
        }
        incremental::parse_label(&first.path_bytes())
    }

    /// The tar stream, from its first byte, decrypted with `keys` and decoded.
    pub fn read_from_start(&self, keys: &Identities) -> io::Result<TarReader<'_>> {
        (&self.file).rewind()?;
        let file = BufReader::with_capacity(READ_BUFFER, &self.file);
        Ok(match self.form {
            Form {
                compression: Compression::None,
                encrypted: false,
            } => TarReader::plain(&self.file, self.size()),
            Form {
                compression,
                encrypted: false,
            } => TarReader::decoded(Decoder::new(file, compression)?),
            Form {
                compression,
                encrypted: true,
            } => TarReader::decoded(Decoder::new(
                BufReader::with_capacity(READ_BUFFER, keys.decrypt(file)?),
                compression,
            )?),
        })
    }
}

/// Opens the archive of `name` in `backups/` for reading: `<name>.tar`, `.tar.gz`,
/// `.tar.zst` or one of them with `.age`, the newest if more than one is there (a backup that switched forms was cut off
/// before it removed the old one). Each is a regular file, never reached through a symlink.
pub fn open(layout: &Layout, name: &Name) -> crate::error::Result<Stored> {
    let mut newest: Option<(i64, Stored)> = None;
    for form in Form::ALL {
        let display = form.archive_display(name);
        let file = match crate::sys::open::open_regular(&layout.archive_path(name, form.suffix())) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(
                    crate::error::Error::failed(format!("can't read {display}")).because(err)
                );
            }
        };
        let mtime = file.metadata().map_or(i64::MIN, |meta| meta.mtime());
        if newest.as_ref().is_none_or(|(newest, _)| mtime >= *newest) {
            newest = Some((
                mtime,
                Stored {
                    file,
                    form,
                    display,
                },
            ));
        }
    }
    newest.map(|(_, stored)| stored).ok_or_else(|| {
        crate::error::Error::failed(format!(
            "can't read {}",
            Form::default().archive_display(name)
        ))
        .because(io::Error::from(io::ErrorKind::NotFound))
    })
}

/// Opens `backups/<file>`, an archive of any form (a generation, a level-1), for reading; a
/// regular file, never reached through a symlink.
pub fn open_file(layout: &Layout, file: &[u8]) -> crate::error::Result<Stored> {
    use std::os::unix::ffi::OsStrExt;
    let display = format!("backups/{}", crate::log::show_bytes(file));
    let form = Form::of_file(file)
        .map(|(form, _)| form)
        .ok_or_else(|| crate::error::Error::failed(format!("{display} is not an archive")))?;
    let path = layout.backups_dir().join(std::ffi::OsStr::from_bytes(file));
    let file = crate::sys::open::open_regular(&path)
        .map_err(|err| crate::error::Error::failed(format!("can't read {display}")).because(err))?;
    Ok(Stored {
        file,
        form,
        display,
    })
}

/// The stamp of the full that the level-1 `backups/<file>` names in its label, if it can be
/// read (with `keys`, for an encrypted one).
pub fn level_one_label(
    layout: &Layout,
    file: &[u8],
    keys: &Identities,
) -> Option<crate::store::catalog::Written> {
    let stored = open_file(layout, file).ok()?;
    let (seconds, nanos) = stored.label(keys)?;
    Some(crate::store::catalog::Written { seconds, nanos })
}

/// Creates `backups/` (mode 0700, private like the archives) if it is missing.
pub fn ensure_backups_dir(layout: &Layout) -> io::Result<PathBuf> {
    let dir = layout.backups_dir();
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Why an archive could not be made. `Display` gives the reason as the log line ends.
#[derive(Debug)]
pub enum WriteError {
    FolderNotFound,
    NotADirectory,
    FolderUnreadable(io::Error),
    /// Writing the archive failed (a full disk, an I/O error).
    Write(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::FolderNotFound => f.write_str("folder not found"),
            WriteError::NotADirectory => f.write_str("not a directory"),
            WriteError::FolderUnreadable(err) => write!(f, "can't read folder ({err})"),
            WriteError::Write(err) => write!(f, "can't write archive ({err})"),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<io::Error> for WriteError {
    fn from(err: io::Error) -> WriteError {
        WriteError::Write(err)
    }
}

/// How an archive is made: what the settings decide, finished before the archiver starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub encoding: Encoding,
    /// What the settings leave out.
    pub rules: Rules,
    /// Threads that read files ahead of the walk; 0 lets the disk decide.
    pub read_threads: u32,
    /// Hash the archive as it is written, for its [`Fingerprint`].
    pub checksum: bool,
    /// Encrypt the compressed stream to these recipients.
    pub encryption: Option<Recipients>,
}

/// What the archiver tells its caller as it goes.
pub struct Watch<'a> {
    /// Each file skipped or changed while it was read, as the log line ends.
    pub warn: &'a mut dyn FnMut(String),
    pub progress: &'a mut Progress,
}

/// What an archive is, as it was on disk when it was written: for the store's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// The archive file's mtime.
    pub written: (i64, u32),
    pub size: u64,
    /// When [`Options::checksum`] asked for it.
    pub sha256: Option<[u8; 32]>,
}

/// An archive written to a temporary file and on its way to `backups/<name>.tar`.
pub struct Written {
    temp: TempFile,
    target: PathBuf,
    form: Form,
    /// The fingerprint of the recipients it is encrypted to.
    recipients: Option<String>,
    fingerprint: Fingerprint,
    stream_size: u64,
    members: u64,
    left_out: u64,
    level: Option<walk::Level>,
}

impl Written {
    /// The incremental level the walk wrote, given back to the caller: a full's snapshot
    /// writer, to finish with the full's stamp.
    pub fn take_level(&mut self) -> Option<walk::Level> {
        self.level.take()
    }

    /// The size of the tar stream, before compression.
    pub fn stream_size(&self) -> u64 {
        self.stream_size
    }

    /// Members written, the folder's own entry included.
    pub fn members(&self) -> u64 {
        self.members
    }

    /// How many entries the exclude rules left out.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    pub fn form(&self) -> Form {
        self.form
    }

    /// The fingerprint of the recipients it is encrypted to, if it is.
    pub fn recipients(&self) -> Option<&str> {
        self.recipients.as_deref()
    }

    /// What the archive is, for the store's catalog.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Makes the archive durable and puts it in place of the previous one in one step.
    pub fn commit(self) -> Result<u64, WriteError> {
        self.temp.commit(&self.target)?;
        Ok(self.fingerprint.size)
    }

    /// Makes the archive durable under the first of `names` (tried with serial 1, 2, …) that
    /// no file has yet, replacing nothing. Returns its size and file name.
    pub fn commit_new(
        mut self,
        backups: &std::path::Path,
        names: impl Fn(u32) -> Vec<u8>,
    ) -> Result<(u64, Vec<u8>), WriteError> {
        use std::os::unix::ffi::OsStrExt;
        for serial in 1..=1000 {
            let file = names(serial);
            if self
                .temp
                .commit_new(&backups.join(std::ffi::OsStr::from_bytes(&file)))?
            {
                return Ok((self.fingerprint.size, file));
            }
        }
        Err(WriteError::Write(io::Error::from(
            io::ErrorKind::AlreadyExists,
        )))
    }
}

/// Archives `folder` (a plan folder) into a temporary file in `backups/` on its way to the
/// archive of `name`; the caller has made `backups/` with [`ensure_backups_dir`], since the
/// name lock lives there too. Nothing is replaced until [`Written::commit`].
pub fn write(
    layout: &Layout,
    name: &Name,
    folder: &[u8],
    options: Options,
    level: Option<walk::Level>,
    watch: Watch,
) -> Result<Written, WriteError> {
    let Watch { warn, progress } = watch;
    let backups = layout.backups_dir();
    let form = Form {
        compression: options.encoding.compression,
        encrypted: options.encryption.is_some(),
    };
    let target = layout.archive_path(name, form.suffix());
    let mut temp = TempFile::create_in(&backups, 0o600)?;
    let exclude = Exclusions {
        output: FileId::of_file(temp.file())?,
        backups_dir: fs::metadata(&backups).ok().map(|meta| FileId::of(&meta)),
        is_internal_name: layout::is_internal_backups_entry,
        own_folders: [
            (backups.clone(), "backupbox's archive folder"),
            (layout.restore_dir(), "backupbox's restore folder"),
        ]
        .into_iter()
        .filter_map(|(dir, what)| Some((FileId::of(&fs::metadata(dir).ok()?), what)))
        .collect(),
        rules: options.rules,
    };
    let output = temp.file().try_clone()?;
    let stream = stream::TarStream::new(
        &output,
        &options.encoding,
        options.encryption.as_ref(),
        options.checksum,
    )?;
    let root = layout.resolve_folder(folder);
    let readers =
        read_ahead::ReadAhead::start(read_ahead::readers_for(&root, options.read_threads));
    let mut walker = Walker::new(stream, exclude, warn, progress, readers);
    if let Some(level) = level {
        walker = walker.incremental(level);
    }
    walker.archive(&root, folder)?;
    let (stream, left_out, level) = walker.finish();
    let sizes = stream.finish()?;
    let meta = temp.file().metadata()?;
    let fingerprint = Fingerprint {
        written: (meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0)),
        size: sizes.file,
        sha256: sizes.sha256,
    };
    // Written in full, not yet in place: where tests stop a backup "still writing".
    crate::debug_points::pause("archive-written");
    Ok(Written {
        temp,
        target,
        form,
        recipients: options
            .encryption
            .as_ref()
            .map(|recipients| recipients.fingerprint().to_owned()),
        fingerprint,
        stream_size: sizes.stream,
        members: sizes.members,
        left_out,
        level,
    })
}
