//! The tar stream of an archive in place, read from its first byte. Passing over member data
//! (`Seek` forward, [`TarReader::pass_over`]) seeks in a plain archive, as `tar -tf` does, and
//! decodes through it in a compressed one, whose checksum needs every byte anyway.

use super::compression::Decoder;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Read-ahead of the archive file and of the tar stream decoded from it.
pub const READ_BUFFER: usize = 1 << 20;

pub struct TarReader<'a> {
    source: Source<'a>,
    /// Bytes of the tar stream behind us.
    position: u64,
    /// The first block (or less, in a shorter stream), read ahead and mended where GNU tar
    /// reads what the tar crate would not (see [`mend_first_header`]); and how much of it was
    /// handed out.
    first: Vec<u8>,
    first_handed: usize,
    /// What the read-ahead of the first block ran into, for the first read to report.
    first_error: Option<io::Error>,
}

enum Source<'a> {
    /// A plain archive and its length when opened: what lies past it is missing.
    Plain {
        file: BufReader<&'a File>,
        size: u64,
    },
    Decoded(Box<BufReader<Decoder<'a>>>),
}

impl<'a> TarReader<'a> {
    pub fn plain(file: &'a File, size: u64) -> TarReader<'a> {
        TarReader {
            source: Source::Plain {
                file: BufReader::with_capacity(READ_BUFFER, file),
                size,
            },
            position: 0,
            first: Vec::new(),
            first_handed: 0,
            first_error: None,
        }
        .with_first_block()
    }

    pub fn decoded(decoder: Decoder<'a>) -> TarReader<'a> {
        TarReader {
            source: Source::Decoded(Box::new(BufReader::with_capacity(READ_BUFFER, decoder))),
            position: 0,
            first: Vec::new(),
            first_handed: 0,
            first_error: None,
        }
        .with_first_block()
    }

    /// Reads the first block ahead and mends it; a stream shorter than a block is left as it
    /// is, for the checks to report.
    fn with_first_block(mut self) -> TarReader<'a> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        while filled < 512 {
            match self.read_source(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.first_error = Some(err);
                    break;
                }
            }
        }
        if filled == 512 {
            mend_first_header(&mut block);
        }
        self.first = block[..filled].to_vec();
        self
    }

    fn read_source(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Source::Plain { file, .. } => file.read(buffer),
            Source::Decoded(decoded) => decoded.read(buffer),
        }
    }

    /// Moves `count` bytes on; returns how many the stream had (fewer only at its end).
    pub fn pass_over(&mut self, mut count: u64) -> io::Result<u64> {
        let left_in_first = (self.first.len() - self.first_handed) as u64;
        if left_in_first == 0
            && let Some(err) = self.first_error.take()
        {
            return Err(err);
        }
        let from_first = count.min(left_in_first);
        self.first_handed += usize::try_from(from_first).unwrap_or(0);
        count -= from_first;
        self.position += from_first;
        let passed = match &mut self.source {
            Source::Plain { file, size } => {
                let passed = count.min(size.saturating_sub(self.position));
                let mut left = passed;
                while left > 0 {
                    let step = left.min(i64::MAX as u64);
                    file.seek_relative(i64::try_from(step).unwrap_or(i64::MAX))?;
                    left -= step;
                }
                passed
            }
            Source::Decoded(decoded) => io::copy(&mut decoded.take(count), &mut io::sink())?,
        };
        self.position += passed;
        Ok(from_first + passed)
    }
}

impl Read for TarReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let left_in_first = &self.first[self.first_handed..];
        if left_in_first.is_empty()
            && let Some(err) = self.first_error.take()
        {
            return Err(err);
        }
        if !left_in_first.is_empty() {
            let n = buffer.len().min(left_in_first.len());
            buffer[..n].copy_from_slice(&left_in_first[..n]);
            self.first_handed += n;
            self.position += n as u64;
            return Ok(n);
        }
        let n = self.read_source(buffer)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// GNU tar writes a volume label (`tar -V LABEL`, type `V`, always the first header) with a
/// size field of NULs, which it reads as 0 and the tar crate refuses: the field becomes an
/// octal 0 and the checksum is made again, so every reader agrees with GNU tar.
fn mend_first_header(block: &mut [u8; 512]) {
    const TYPE: usize = 156;
    const SIZE: std::ops::Range<usize> = 124..136;
    const CHECKSUM: std::ops::Range<usize> = 148..156;
    if block[TYPE] != b'V' || block[SIZE].iter().any(|&b| b != 0) {
        return;
    }
    block[SIZE].copy_from_slice(b"00000000000\0");
    block[CHECKSUM].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[CHECKSUM].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Forward only: what the tar crate's `entries_with_seek` asks to pass over member data.
impl Seek for TarReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Current(step) if step >= 0 => {
                self.pass_over(step.unsigned_abs())?;
                Ok(self.position)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an archive is read from start to end",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::compression::{Compression, Encoder, Encoding};
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn passing_over_stops_at_the_end_in_both_forms() {
        let bytes: Vec<u8> = (0..10_000u32).map(|n| (n % 251) as u8).collect();
        let plain = file_with(&bytes);
        let mut encoder = Encoder::new(
            Vec::new(),
            &Encoding {
                compression: Compression::Zstd,
                level: 3,
                threads: 1,
            },
        )
        .unwrap();
        encoder.write_all(&bytes).unwrap();
        let packed = file_with(&encoder.finish().unwrap());
        (&plain).rewind().unwrap();
        (&packed).rewind().unwrap();
        // Each reader reads its first block ahead when made.
        let mut readers = [
            TarReader::plain(&plain, bytes.len() as u64),
            TarReader::decoded(Decoder::new(BufReader::new(&packed), Compression::Zstd).unwrap()),
        ];
        for reader in &mut readers {
            let mut four = [0; 4];
            reader.read_exact(&mut four).unwrap();
            assert_eq!(reader.pass_over(5_000).unwrap(), 5_000);
            reader.read_exact(&mut four).unwrap();
            assert_eq!(four, bytes[5_004..5_008]);
            assert_eq!(reader.seek(SeekFrom::Current(10)).unwrap(), 5_018);
            assert_eq!(reader.pass_over(1 << 20).unwrap(), 10_000 - 5_018);
            assert_eq!(reader.read(&mut four).unwrap(), 0);
            assert!(reader.seek(SeekFrom::Start(0)).is_err());
        }
    }

    #[test]
    fn a_gnu_volume_label_reads_with_a_size_of_zero() {
        let mut label = [0u8; 1024 + 1024];
        label[..7].copy_from_slice(b"MYLABEL");
        label[156] = b'V';
        label[148..156].fill(b' ');
        let sum: u32 = label[..512].iter().map(|&b| u32::from(b)).sum();
        label[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let file = file_with(&label);
        (&file).rewind().unwrap();
        let reader = TarReader::plain(&file, label.len() as u64);
        let mut archive = tar::Archive::new(reader);
        let entries: Vec<_> = archive
            .entries_with_seek()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (entry.path_bytes().into_owned(), entry.size())
            })
            .collect();
        assert_eq!(entries, [(b"MYLABEL".to_vec(), 0)]);
    }

    #[test]
    fn an_error_while_reading_ahead_is_the_first_read_s_error() {
        let garbage = file_with(b"\x1f\x8b\x08\x00 not a gzip stream");
        (&garbage).rewind().unwrap();
        let decoder = Decoder::new(BufReader::new(&garbage), Compression::Gzip).unwrap();
        let mut reader = TarReader::decoded(decoder);
        let mut block = [0u8; 512];
        let err = reader.read(&mut block).unwrap_err();
        assert!(err.to_string().contains("gzip stream damaged"), "{err}");
    }
}
