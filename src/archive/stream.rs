//! Buffered output of a tar archive: large writes, and file data copied so that exactly the
//! size promised in the header is written, whatever the file does meanwhile. The bytes go to
//! the archive file as they are, or through a compressing encoder.

use super::compression::{Encoder, Encoding};
use super::digest::Follower;
use super::header::{self, BLOCK, Extent, Kind, Meta};
use crate::crypt::Recipients;
use nix::errno::Errno;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// Size of the output buffer: big writes, flat memory.
const BUFFER: usize = 1 << 20;
/// Extents at least this long are copied by the kernel (copy_file_range), not through the
/// buffer; below it, gathering many small files into one write is cheaper.
const DIRECT_COPY_MIN: u64 = 256 << 10;
/// Bytes asked of one copy_file_range call.
const DIRECT_COPY_CHUNK: usize = 8 << 20;
/// Writeback of the archive is started each time this much more is written, so the disk works
/// while the walk goes on and the fsync before the rename only waits for the tail.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// GNU tar pads the archive to a multiple of its default record size.
const RECORD: u64 = 20 * BLOCK as u64;

/// The smaller of a byte count and the room for it.
fn at_most(count: u64, room: usize) -> usize {
    usize::try_from(count).map_or(room, |count| count.min(room))
}

/// What happened while reading a file's data.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Zero bytes written in place of data the file no longer had (it shrank, or reading failed).
    pub zeros_padded: u64,
    /// The read error that stopped the copy, if any.
    pub read_error: Option<io::Error>,
}

/// How far a kernel-side copy got.
enum Direct {
    Copied(u64),
    /// The file ended after this many bytes.
    EndOfFile(u64),
}

/// The archive file being written, with the kernel asked to write it back as it grows, and
/// hashed right behind the writer.
struct Output<'a> {
    file: &'a File,
    /// Bytes in the file so far.
    written: u64,
    /// Where the file's bytes not yet sent to writeback start.
    writeback_from: u64,
    hash: Option<Follower>,
}

impl Output<'_> {
    /// The file grew by `n` bytes.
    fn grew(&mut self, n: usize) {
        self.written += n as u64;
        if let Some(hash) = &self.hash {
            hash.advance(self.written);
        }
        self.start_writeback();
    }

    /// Asks the kernel to start writing what is written so far, without waiting for it.
    fn start_writeback(&mut self) {
        let pending = self.written - self.writeback_from;
        if pending < WRITEBACK_EVERY {
            return;
        }
        let (Ok(from), Ok(length)) = (i64::try_from(self.writeback_from), i64::try_from(pending))
        else {
            return;
        };
        crate::sys::io::start_writeback(self.file, from, length);
        self.writeback_from = self.written;
    }
}

impl Write for Output<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.file.write(bytes)?;
        self.grew(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The archive file, or the age writer in front of it.
enum Sink<'a> {
    Clear(Output<'a>),
    Sealed(Box<age::stream::StreamWriter<Output<'a>>>),
}

impl Write for Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Clear(output) => output.write(bytes),
            Sink::Sealed(writer) => writer.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Clear(output) => output.flush(),
            Sink::Sealed(writer) => writer.flush(),
        }
    }
}

impl<'a> Sink<'a> {
    /// Ends the age stream (its last chunk and tag), if there is one.
    fn finish(self) -> io::Result<Output<'a>> {
        match self {
            Sink::Clear(output) => Ok(output),
            Sink::Sealed(writer) => writer.finish(),
        }
    }
}

/// The sizes of a finished archive.
pub struct Sizes {
    /// The tar stream.
    pub stream: u64,
    /// The file: the stream as compressed.
    pub file: u64,
    /// Members written (the folder's own entry included).
    pub members: u64,
    /// SHA-256 of the file's bytes, if asked for.
    pub sha256: Option<[u8; 32]>,
}

/// Writes archive bytes to a file through one reused buffer.
pub struct TarStream<'a> {
    sink: Encoder<Sink<'a>>,
    buffer: Box<[u8]>,
    filled: usize,
    /// Bytes of the tar stream handed to the sink.
    flushed: u64,
    scratch: Vec<u8>,
    members: u64,
    /// Cleared once the kernel refuses copy_file_range between these files; never set when
    /// the stream is compressed.
    direct_copy: bool,
}

impl<'a> TarStream<'a> {
    /// A stream into `out`, compressed as `encoding` says, then encrypted to `recipients` if
    /// given, and hashed as it is written if `checksum`.
    pub fn new(
        out: &'a File,
        encoding: &Encoding,
        recipients: Option<&Recipients>,
        checksum: bool,
    ) -> io::Result<TarStream<'a>> {
        let output = Output {
            file: out,
            written: 0,
            writeback_from: 0,
            hash: if checksum {
                Some(Follower::start(out.try_clone()?)?)
            } else {
                None
            },
        };
        let sink = match recipients {
            Some(recipients) => Sink::Sealed(Box::new(recipients.encrypt(output)?)),
            None => Sink::Clear(output),
        };
        let sink = Encoder::new(sink, encoding)?;
        Ok(TarStream {
            direct_copy: matches!(sink, Encoder::Plain(Sink::Clear(_))),
            sink,
            buffer: vec![0; BUFFER].into_boxed_slice(),
            filled: 0,
            flushed: 0,
            scratch: Vec::new(),
            members: 0,
        })
    }

    /// Members written so far.
    pub fn members(&self) -> u64 {
        self.members
    }

    /// Bytes of the tar stream written so far, buffered ones included.
    pub fn position(&self) -> u64 {
        self.flushed + self.filled as u64
    }

    /// Appends the header blocks of one member.
    pub fn header(&mut self, name: &[u8], kind: &Kind, meta: &Meta) -> io::Result<()> {
        let mut blocks = std::mem::take(&mut self.scratch);
        blocks.clear();
        header::encode(name, kind, meta, &mut blocks);
        let result = self.push(&blocks);
        self.scratch = blocks;
        self.members += 1;
        result
    }

    fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.filled == self.buffer.len() {
                self.flush()?;
            }
            let n = bytes.len().min(self.buffer.len() - self.filled);
            self.buffer[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn zeros(&mut self, mut count: u64) -> io::Result<()> {
        while count > 0 {
            if self.filled == self.buffer.len() {
                self.flush()?;
            }
            let n = at_most(count, self.buffer.len() - self.filled);
            self.buffer[self.filled..self.filled + n].fill(0);
            self.filled += n;
            count -= n as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.write_all(&self.buffer[..self.filled])?;
        self.flushed += self.filled as u64;
        self.filled = 0;
        Ok(())
    }

    /// Copies the `extents` of `src` and pads to a block. Exactly the sum of the extent lengths
    /// is written: data the file no longer has becomes zeros, data it gained is left out.
    /// Only a failure to write the archive is an `Err`; trouble reading `src` is reported in
    /// the outcome.
    pub fn file_data(&mut self, src: &File, extents: &[Extent]) -> io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        let total: u64 = extents.iter().map(|(_, len)| len).sum();
        let mut copied = 0;
        'extents: for &(offset, length) in extents {
            let mut done = 0;
            if length >= DIRECT_COPY_MIN && self.direct_copy {
                match self.copy_direct(src, offset, length)? {
                    Direct::Copied(n) => {
                        done = n;
                        copied += n;
                    }
                    Direct::EndOfFile(n) => {
                        copied += n;
                        break 'extents;
                    }
                }
            }
            while done < length {
                if self.filled == self.buffer.len() {
                    self.flush()?;
                }
                let want = at_most(length - done, self.buffer.len() - self.filled);
                match src.read_at(
                    &mut self.buffer[self.filled..self.filled + want],
                    offset + done,
                ) {
                    Ok(0) => break 'extents,
                    Ok(n) => {
                        self.filled += n;
                        done += n as u64;
                        copied += n as u64;
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        outcome.read_error = Some(err);
                        break 'extents;
                    }
                }
            }
        }
        outcome.zeros_padded = total - copied;
        self.zeros(outcome.zeros_padded)?;
        self.zeros(header::padding(total) as u64)?;
        Ok(outcome)
    }

    /// Copies up to `length` bytes at `offset` of `src` to the archive inside the kernel.
    /// Stops early, leaving the rest to the buffered copy, on any error: that path then tells
    /// a read error (reported) from a write error (fatal).
    fn copy_direct(&mut self, src: &File, offset: u64, length: u64) -> io::Result<Direct> {
        self.flush()?;
        let Encoder::Plain(Sink::Clear(output)) = &mut self.sink else {
            return Ok(Direct::Copied(0));
        };
        let mut done = 0;
        while done < length {
            let Ok(mut position) = i64::try_from(offset + done) else {
                break;
            };
            let want = at_most(length - done, DIRECT_COPY_CHUNK);
            match nix::fcntl::copy_file_range(src, Some(&mut position), output.file, None, want) {
                Ok(0) => {
                    self.flushed += done;
                    return Ok(Direct::EndOfFile(done));
                }
                Ok(n) => {
                    done += n as u64;
                    output.grew(n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                    self.direct_copy = false;
                    break;
                }
                Err(_) => break,
            }
        }
        self.flushed += done;
        Ok(Direct::Copied(done))
    }

    /// Writes the end-of-archive marker and record padding, flushes, and ends the compressed
    /// stream.
    pub fn finish(mut self) -> io::Result<Sizes> {
        self.zeros(2 * BLOCK as u64)?;
        self.zeros((RECORD - self.position() % RECORD) % RECORD)?;
        self.flush()?;
        let output = self.sink.finish()?.finish()?;
        Ok(Sizes {
            stream: self.flushed,
            members: self.members,
            file: output.written,
            sha256: output.hash.map(Follower::finish).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn stream_file_data(src: &File, extents: &[Extent]) -> (Vec<u8>, ReadOutcome) {
        let out = tempfile::tempfile().unwrap();
        let mut stream = TarStream::new(&out, &Encoding::default(), None, true).unwrap();
        let outcome = stream.file_data(src, extents).unwrap();
        stream.flush().unwrap();
        let mut bytes = Vec::new();
        (&out).rewind().unwrap();
        (&out).read_to_end(&mut bytes).unwrap();
        (bytes, outcome)
    }

    #[test]
    fn a_file_shorter_than_promised_is_padded_with_zeros() {
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(b"abc").unwrap();
        let (bytes, outcome) = stream_file_data(&src, &[(0, 10)]);
        assert_eq!(outcome.zeros_padded, 7);
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(&bytes[..10], b"abc\0\0\0\0\0\0\0");
    }

    #[test]
    fn a_file_longer_than_promised_is_cut() {
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(&[7u8; 3 * BUFFER]).unwrap();
        let (bytes, outcome) = stream_file_data(&src, &[(0, 2 * BUFFER as u64 + 1)]);
        assert_eq!(outcome.zeros_padded, 0);
        assert_eq!(bytes.len(), 2 * BUFFER + BLOCK);
        assert!(bytes[..2 * BUFFER + 1].iter().all(|&b| b == 7));
        assert!(bytes[2 * BUFFER + 1..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_long_file_shorter_than_promised_is_padded_with_zeros_by_the_kernel_copy_too() {
        let mut src = tempfile::tempfile().unwrap();
        let present = at_most(DIRECT_COPY_MIN, usize::MAX) + 3;
        src.write_all(&vec![9u8; present]).unwrap();
        let promised = 2 * DIRECT_COPY_MIN;
        let (bytes, outcome) = stream_file_data(&src, &[(0, promised)]);
        assert_eq!(outcome.zeros_padded, promised - present as u64);
        assert_eq!(bytes.len() as u64, promised);
        assert!(bytes[..present].iter().all(|&b| b == 9));
        assert!(bytes[present..].iter().all(|&b| b == 0));
    }

    #[test]
    fn extents_are_read_from_their_offsets() {
        let mut src = tempfile::tempfile().unwrap();
        src.write_all(b"0123456789").unwrap();
        let (bytes, _) = stream_file_data(&src, &[(2, 3), (8, 2)]);
        assert_eq!(&bytes[..5], b"23489");
    }

    #[test]
    fn finish_pads_to_a_record() {
        let out = tempfile::tempfile().unwrap();
        let mut stream = TarStream::new(&out, &Encoding::default(), None, true).unwrap();
        stream
            .header(b"x", &Kind::Directory, &Meta::default())
            .unwrap();
        assert_eq!(stream.finish().unwrap().file, RECORD);
        assert_eq!(out.metadata().unwrap().len(), RECORD);
    }
}
