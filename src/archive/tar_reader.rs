//! The tar stream of an archive in place, read from its first byte, with each header mended
//! as it passes where GNU tar reads it otherwise than the tar crate would
//! ([`structure::mend`]). Passing over member data (`Seek` forward, [`TarReader::pass_over`])
//! seeks in a plain archive, as `tar -tf` does, and decodes through it in a compressed one,
//! whose checksum needs every byte anyway.

use super::compression::Decoder;
use super::header::BLOCK;
use super::structure::{self, BLOCK_BYTES, Following, Walk};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Read-ahead of the archive file and of the tar stream decoded from it.
pub const READ_BUFFER: usize = 1 << 20;

/// A pax record longer than this is not collected for its size: the structure check refuses
/// it before anything trusts the stream.
const MAX_PAX_RECORD: u64 = 1 << 20;

pub struct TarReader<'a> {
    source: Source<'a>,
    /// Bytes of the tar stream behind us.
    position: u64,
    /// The header block being handed out, mended, and how much of it was.
    header: [u8; BLOCK],
    header_len: usize,
    header_handed: usize,
    walk: Walk,
    /// Where the next header block starts; `None` once the walk has stopped (the end marker,
    /// a damaged header, the end of the stream): from there the bytes pass as they are.
    next_header: Option<u64>,
    /// Inside a GNU sparse map: the data that follows its last extension block.
    sparse_map_then: Option<u64>,
    /// A pax record being collected, and how many of its bytes are still to come.
    pax: Option<(Vec<u8>, u64)>,
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
        TarReader::over(Source::Plain {
            file: BufReader::with_capacity(READ_BUFFER, file),
            size,
        })
    }

    pub fn decoded(decoder: Decoder<'a>) -> TarReader<'a> {
        TarReader::over(Source::Decoded(Box::new(BufReader::with_capacity(
            READ_BUFFER,
            decoder,
        ))))
    }

    fn over(source: Source<'a>) -> TarReader<'a> {
        TarReader {
            source,
            position: 0,
            header: [0; BLOCK],
            header_len: 0,
            header_handed: 0,
            walk: Walk::default(),
            next_header: Some(0),
            sparse_map_then: None,
            pax: None,
        }
    }

    fn read_source(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Source::Plain { file, .. } => file.read(buffer),
            Source::Decoded(decoded) => decoded.read(buffer),
        }
    }

    /// Reads the header block at the current position, mends it and works out where the next
    /// one starts. A short block ends the walk, for the checks to report.
    fn take_header(&mut self) -> io::Result<()> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.read_source(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.next_header = if filled == BLOCK {
            self.next_after(&mut block)
        } else {
            None
        };
        self.header = block;
        self.header_len = filled;
        self.header_handed = 0;
        Ok(())
    }

    /// Where the header after `block` starts, mending `block` on the way.
    fn next_after(&mut self, block: &mut [u8; BLOCK]) -> Option<u64> {
        let after_block = self.position.checked_add(BLOCK_BYTES)?;
        if let Some(size) = self.sparse_map_then {
            if structure::another_extension_follows(block) {
                return Some(after_block);
            }
            self.sparse_map_then = None;
            return after_block.checked_add(structure::padded(size)?);
        }
        if block.iter().all(|&b| b == 0) {
            return None;
        }
        structure::mend(block)?;
        match self.walk.after(tar::Header::from_byte_slice(block)).ok()? {
            Following::SparseMap { size } => {
                self.sparse_map_then = Some(size);
                Some(after_block)
            }
            Following::Data { size, pax } => {
                if pax && size == 0 {
                    self.walk.pax_record(&[]);
                } else if pax && size <= MAX_PAX_RECORD {
                    self.pax = Some((Vec::new(), size));
                }
                after_block.checked_add(structure::padded(size)?)
            }
        }
    }

    /// Hands out what is left of the current header block, if anything.
    fn hand_header(&mut self, buffer: &mut [u8]) -> usize {
        let left = &self.header[self.header_handed..self.header_len];
        let n = buffer.len().min(left.len());
        buffer[..n].copy_from_slice(&left[..n]);
        self.header_handed += n;
        self.position += n as u64;
        n
    }

    /// How far the bytes from here go before the next header.
    fn until_header(&self) -> u64 {
        self.next_header
            .map_or(u64::MAX, |next| next.saturating_sub(self.position))
    }

    /// Moves `count` bytes on; returns how many the stream had (fewer only at its end).
    pub fn pass_over(&mut self, count: u64) -> io::Result<u64> {
        let mut passed = 0;
        let mut scratch = [0u8; 8192];
        while passed < count {
            let left = count - passed;
            let step = if self.header_handed < self.header_len
                || self.next_header == Some(self.position)
                || self.pax.is_some()
            {
                // Headers and pax records are read, never passed over unseen.
                let want = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(scratch.len());
                self.read(&mut scratch[..want])? as u64
            } else {
                self.skip_source(left.min(self.until_header()))?
            };
            if step == 0 {
                break;
            }
            passed += step;
        }
        Ok(passed)
    }

    /// Passes over `count` bytes of member data in the source.
    fn skip_source(&mut self, count: u64) -> io::Result<u64> {
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

    /// Keeps the bytes of a pax record as they pass; a whole one tells the walk its size.
    fn collect_pax(&mut self, bytes: &[u8]) {
        let Some((record, left)) = &mut self.pax else {
            return;
        };
        let n = bytes
            .len()
            .min(usize::try_from(*left).unwrap_or(usize::MAX));
        record.extend_from_slice(&bytes[..n]);
        *left -= n as u64;
        if *left == 0 {
            let record = std::mem::take(record);
            self.walk.pax_record(&record);
            self.pax = None;
        }
    }
}

impl Read for TarReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.header_handed == self.header_len && self.next_header == Some(self.position) {
            self.take_header()?;
        }
        if self.header_handed < self.header_len {
            return Ok(self.hand_header(buffer));
        }
        let want = usize::try_from(self.until_header())
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let n = self.read_source(&mut buffer[..want])?;
        self.collect_pax(&buffer[..n]);
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
