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
        }
    }

    pub fn decoded(decoder: Decoder<'a>) -> TarReader<'a> {
        TarReader {
            source: Source::Decoded(Box::new(BufReader::with_capacity(READ_BUFFER, decoder))),
            position: 0,
        }
    }

    /// Moves `count` bytes on; returns how many the stream had (fewer only at its end).
    pub fn pass_over(&mut self, count: u64) -> io::Result<u64> {
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
        Ok(passed)
    }
}

impl Read for TarReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.source {
            Source::Plain { file, .. } => file.read(buffer)?,
            Source::Decoded(decoded) => decoded.read(buffer)?,
        };
        self.position += n as u64;
        Ok(n)
    }
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
        let mut readers = [
            TarReader::plain(&plain, bytes.len() as u64),
            TarReader::decoded(Decoder::new(BufReader::new(&packed), Compression::Zstd).unwrap()),
        ];
        for reader in &mut readers {
            (&plain).rewind().unwrap();
            (&packed).rewind().unwrap();
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
}
