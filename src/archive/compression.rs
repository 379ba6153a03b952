//! The three compressions of an archive's tar stream (none, gzip, zstd): their levels, and the
//! encoder and decoder of each. A decoder that fails says where in the
//! compressed file it stopped.

use super::parallel_gzip::{ParallelGzip, deflate_level};
use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};
use std::ops::RangeInclusive;
use std::rc::Rc;

/// How an archive's tar stream is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Every form, the one the spec knows first.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The value of `compress` in `backupbox.toml`.
    pub fn setting(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn from_setting(value: &str) -> Option<Compression> {
        Compression::ALL
            .into_iter()
            .find(|form| form.setting() == value)
    }

    /// The level used when `level` is not set: what `gzip` and `zstd` use by default.
    pub fn default_level(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 6,
            Compression::Zstd => 3,
        }
    }

    /// The levels this form takes. zstd's 20 to 22 are left out: they need hundreds of MiB.
    pub fn levels(self) -> RangeInclusive<u32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=19,
        }
    }
}

/// How a backup compresses what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Encoding {
    pub compression: Compression,
    pub level: u32,
    /// zstd worker threads; 0 means one per core.
    pub threads: u32,
}

/// The writer of one form in front of `W`; `Plain` passes the bytes through.
pub enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    ParallelGzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(output: W, encoding: &Encoding) -> io::Result<Encoder<W>> {
        Ok(match encoding.compression {
            Compression::None => Encoder::Plain(output),
            Compression::Gzip => match workers(encoding.threads) {
                0 => Encoder::Gzip(flate2::write::GzEncoder::new(
                    output,
                    deflate_level(encoding.level),
                )),
                workers => {
                    Encoder::ParallelGzip(ParallelGzip::new(output, encoding.level, workers)?)
                }
            },
            Compression::Zstd => {
                let level = i32::try_from(encoding.level).unwrap_or(3);
                let mut encoder = zstd::stream::write::Encoder::new(output, level)?;
                // Like the zstd command: a checksum, so damage is found when reading.
                encoder.include_checksum(true)?;
                let workers = workers(encoding.threads);
                if workers > 0 {
                    encoder.multithread(workers)?;
                    encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_BYTES))?;
                    encoder.set_parameter(zstd::zstd_safe::CParameter::OverlapSizeLog(
                        ZSTD_OVERLAP_LOG,
                    ))?;
                }
                Encoder::Zstd(encoder)
            }
        })
    }

    /// Writes the end of the compressed stream and returns the writer behind it.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(output) => Ok(output),
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::ParallelGzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(output) => output.write(bytes),
            Encoder::Gzip(encoder) => encoder.write(bytes),
            Encoder::ParallelGzip(encoder) => encoder.write(bytes),
            Encoder::Zstd(encoder) => encoder.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(output) => output.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::ParallelGzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// Input bytes per zstd job. zstd's default at level 3 is 8 MiB, and every worker holds a
/// job's input and output: 2 workers peaked at 110 MiB RSS. At 1 MiB, 2 workers take 19 MiB
/// and 4 take 23 MiB, for archives about 1 % larger (measured; see the README).
const ZSTD_JOB_BYTES: u32 = 1 << 20;
/// How much of the data before a job each job reads as its dictionary: 5 is 1/16 of the window
/// (128 KiB at level 3). zstd's default, 1/8 of the window, suits its 8 MiB jobs; with 1 MiB
/// jobs it hashed a quarter of the input twice: the benchmark's 1 GiB mixed file took 3.40 s
/// instead of 3.00 s at 4 (1/32). Less than 1/16 costs header-heavy streams: 200,000 tiny
/// files made 4,681,057 bytes at 4, 4,533,276 at 5, 4,318,718 at the default (`tar -I 'zstd
/// -3 -T0'`: 4,519,945); at 5 the mixed file took 2.47-2.74 s against 2.62-2.97 s at 4.
const ZSTD_OVERLAP_LOG: u32 = 5;
/// Most compression workers `threads = 0` starts: each adds 2 to 4 MiB, and past 4 the peak
/// RSS of a backup would pass 32 MiB on a many-core host. More can still be asked for by number.
const AUTO_WORKERS_MAX: u32 = 4;

/// Compression workers for `threads` (0: one per core, at most [`AUTO_WORKERS_MAX`]), never
/// more than the cores: a worker beyond them adds no speed, only its memory, which at zstd
/// level 19 is about 85 MiB (measured: 100 MiB of random data, threads = 64 on 2 cores, went
/// from 2.0 GB peak RSS to 178 MB, that of 2 threads). A single thread compresses in the caller: one
/// worker thread would only add a hand-over.
fn workers(threads: u32) -> u32 {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let threads = match threads {
        0 => cores.min(AUTO_WORKERS_MAX),
        n => n.min(cores),
    };
    if threads <= 1 { 0 } else { threads }
}

/// Counts the bytes a decoder takes from the compressed file, so a failure can say where.
struct Counted<R> {
    input: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buffer)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.input.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.input.consume(amount);
        self.consumed.set(self.consumed.get() + amount as u64);
    }
}

/// The tar stream inside a compressed file. Read errors carry the offset in the compressed
/// file where decoding stopped.
pub struct Decoder<'a> {
    inner: Box<dyn Read + 'a>,
    consumed: Rc<Cell<u64>>,
    compression: Compression,
}

impl<'a> Decoder<'a> {
    /// The tar stream of `input`, which holds the `compression` form. [`Compression::None`]
    /// passes the bytes through.
    pub fn new(input: impl BufRead + 'a, compression: Compression) -> io::Result<Decoder<'a>> {
        let consumed = Rc::new(Cell::new(0));
        let counted = Counted {
            input,
            consumed: Rc::clone(&consumed),
        };
        let inner: Box<dyn Read + 'a> = match compression {
            Compression::None => Box::new(counted),
            Compression::Gzip => Box::new(GzipMembers {
                current: Some(flate2::bufread::GzDecoder::new(counted)),
            }),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(counted)?),
        };
        Ok(Decoder {
            inner,
            consumed,
            compression,
        })
    }
}

/// The gzip members of a stream one after the other, as `gzip -d` reads them; zeros after the
/// last member (a tape's or a device's block padding) end the stream, as gzip and GNU tar
/// accept them, where anything else after them is damage.
struct GzipMembers<R: BufRead> {
    current: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buffer)?;
            if n > 0 || buffer.is_empty() {
                return Ok(n);
            }
            // The member ended: another one follows, or zero padding, or nothing.
            let Some(decoder) = self.current.take() else {
                return Ok(0);
            };
            let mut input = decoder.into_inner();
            match input.fill_buf()?.first() {
                None => return Ok(0),
                Some(0) => loop {
                    let rest = input.fill_buf()?;
                    if rest.is_empty() {
                        return Ok(0);
                    }
                    if rest.iter().any(|&b| b != 0) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bytes that are not zeros after the zero padding",
                        ));
                    }
                    let length = rest.len();
                    input.consume(length);
                },
                Some(_) => self.current = Some(flate2::bufread::GzDecoder::new(input)),
            }
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buffer) {
            Err(err)
                if self.compression != Compression::None
                    && err.kind() != io::ErrorKind::Interrupted =>
            {
                let why = match err.kind() {
                    io::ErrorKind::UnexpectedEof => "the file ends inside the stream".to_owned(),
                    _ => err.to_string(),
                };
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} stream damaged at byte {} of the file: {why}",
                        self.compression.setting(),
                        self.consumed.get()
                    ),
                ))
            }
            result => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(encoding: &Encoding, bytes: &[u8]) -> Vec<u8> {
        let mut encoder = Encoder::new(Vec::new(), encoding).unwrap();
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn decode(compression: Compression, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decoder::new(bytes, compression)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn settings_name_the_compression() {
        assert_eq!(Compression::from_setting("zstd"), Some(Compression::Zstd));
        assert_eq!(Compression::from_setting("xz"), None);
    }

    #[test]
    fn both_forms_round_trip_and_threads_do_not_change_the_bytes_read_back() {
        for (compression, threads) in [
            (Compression::Gzip, 1),
            (Compression::Gzip, 2),
            (Compression::Zstd, 1),
            (Compression::Zstd, 2),
        ] {
            let encoding = Encoding {
                compression,
                level: compression.default_level(),
                threads,
            };
            let packed = encode(&encoding, &sample());
            assert!(packed.len() < sample().len() / 2);
            assert_eq!(decode(compression, &packed).unwrap(), sample());
        }
    }

    #[test]
    fn gzip_level_6_finds_the_repeats_gzip_finds() {
        // Like the benchmark's small files: pieces of one 8 KiB pool of random letters.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let pool: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect();
        let input: Vec<u8> = (0..2000usize)
            .flat_map(|i| {
                let size = 64 + (i * 7919) % 4033;
                let offset = (i * 104_729) % (pool.len() - size);
                pool[offset..offset + size].to_vec()
            })
            .collect();
        let size_at = |level| {
            let encoding = Encoding {
                compression: Compression::Gzip,
                level,
                threads: 1,
            };
            encode(&encoding, &input).len()
        };
        let (six, nine) = (size_at(6), size_at(9));
        assert!(
            six * 100 <= nine * 105,
            "level 6: {six} bytes, level 9: {nine}"
        );
    }

    #[test]
    fn a_cut_or_damaged_stream_is_an_error_that_says_where() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let encoding = Encoding {
                compression,
                level: compression.default_level(),
                threads: 1,
            };
            let packed = encode(&encoding, &sample());
            let cut = decode(compression, &packed[..packed.len() / 2])
                .unwrap_err()
                .to_string();
            assert!(cut.contains("stream damaged at byte"), "{cut}");
            assert!(cut.contains("the file ends inside the stream"), "{cut}");
            let mut damaged = packed.clone();
            let middle = damaged.len() / 2;
            damaged[middle] ^= 0xff;
            damaged[middle + 1] ^= 0x55;
            let err = decode(compression, &damaged).unwrap_err().to_string();
            let offset: u64 = err
                .split("at byte ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(offset <= packed.len() as u64, "{err}");
        }
    }
}
