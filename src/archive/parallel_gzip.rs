//! gzip on several threads, as pigz writes it: the stream is cut into chunks that worker
//! threads deflate apart, each primed with the 32 KiB before it, and the pieces are joined in
//! order into one ordinary gzip member that gzip, GNU tar and bsdtar read like any other.

use flate2::{Compress, Crc, FlushCompress, Status};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// zlib-rs's level for gzip level `level`. zlib-rs numbers its levels like zlib-ng, whose 1
/// and 3 to 6 run other matchers than gzip's: on the benchmark's 20,000 small files its level
/// 6 made an archive 1.9 times the size of `gzip -6`'s. gzip's levels 1 to 3 use the greedy
/// matcher (zlib-rs level 2) and 4 to 9 the lazy one (zlib-rs 7 to 9), so those are used: level
/// 6 then lands within 2 % of `gzip -6` in size, at twice its speed on two threads.
pub fn deflate_level(level: u32) -> flate2::Compression {
    flate2::Compression::new(match level {
        1..=3 => 2,
        4..=7 => 7,
        level => level,
    })
}

/// Input bytes per chunk. Each chunk ends on a byte boundary (a sync flush, 5 bytes) and
/// starts with the previous chunk's last 32 KiB as its dictionary, so the archive is within
/// a few bytes per MiB of what one thread writes.
const CHUNK: usize = 1 << 20;
/// deflate's window: what a chunk may refer back to.
const WINDOW: usize = 32 << 10;
/// Chunks handed out per worker before the writer waits: keeps the workers busy while the
/// memory stays at about 2 x 2 MiB per worker.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// One chunk to deflate.
struct Job {
    sequence: u64,
    dictionary: Vec<u8>,
    input: Vec<u8>,
    last: bool,
}

/// A deflated chunk, with the CRC-32 of its input.
struct Piece {
    sequence: u64,
    output: io::Result<Vec<u8>>,
    crc: Crc,
}

/// A gzip writer whose compression runs on `workers` threads.
pub struct ParallelGzip<W: Write> {
    output: W,
    input: Vec<u8>,
    /// The last [`WINDOW`] bytes of the chunk handed out before `input`.
    dictionary: Vec<u8>,
    workers: Workers,
    pieces: Receiver<Piece>,
    /// Pieces that came back before an earlier one.
    waiting: BTreeMap<u64, Piece>,
    next_sequence: u64,
    next_to_write: u64,
    max_in_flight: usize,
    crc: Crc,
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header and starts the workers.
    pub fn new(mut output: W, level: u32, workers: u32) -> io::Result<ParallelGzip<W>> {
        output.write_all(&gzip_header(level))?;
        let (jobs, job_queue) = mpsc::channel::<Job>();
        let (piece_sender, pieces) = mpsc::channel();
        let job_queue = Arc::new(Mutex::new(job_queue));
        let level = deflate_level(level);
        // A thread that cannot be started fails the backup; no panic.
        let threads = (0..workers.max(1))
            .map(|_| {
                let queue = Arc::clone(&job_queue);
                let sender = piece_sender.clone();
                std::thread::Builder::new()
                    .name("gzip".to_owned())
                    .spawn(move || deflate_jobs(&queue, &sender, level))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let max_in_flight = threads.len() * IN_FLIGHT_PER_WORKER;
        Ok(ParallelGzip {
            output,
            input: Vec::with_capacity(CHUNK),
            dictionary: Vec::new(),
            workers: Workers {
                jobs: Some(jobs),
                threads,
            },
            pieces,
            waiting: BTreeMap::new(),
            next_sequence: 0,
            next_to_write: 0,
            max_in_flight,
            crc: Crc::new(),
        })
    }

    /// Hands the buffered input to the workers, then writes what has come back in order,
    /// waiting while too many chunks are out.
    fn send_chunk(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.input, Vec::with_capacity(CHUNK));
        let mut dictionary = input[input.len().saturating_sub(WINDOW)..].to_vec();
        std::mem::swap(&mut dictionary, &mut self.dictionary);
        let job = Job {
            sequence: self.next_sequence,
            dictionary,
            input,
            last,
        };
        self.next_sequence += 1;
        let sent = (self.workers.jobs.as_ref()).is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(workers_gone());
        }
        let in_flight = if last { 0 } else { self.max_in_flight };
        while self.next_sequence - self.next_to_write > in_flight as u64 {
            self.write_next_piece()?;
        }
        Ok(())
    }

    /// Waits for the next piece in order and writes it.
    fn write_next_piece(&mut self) -> io::Result<()> {
        let piece = loop {
            if let Some(piece) = self.waiting.remove(&self.next_to_write) {
                break piece;
            }
            let piece = self.pieces.recv().map_err(|_| workers_gone())?;
            self.waiting.insert(piece.sequence, piece);
        };
        self.output.write_all(&piece.output?)?;
        self.crc.combine(&piece.crc);
        self.next_to_write += 1;
        Ok(())
    }

    /// Deflates the rest, writes the gzip trailer and returns the writer behind it.
    pub fn finish(mut self) -> io::Result<W> {
        self.send_chunk(true)?;
        let mut trailer = [0; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.output.write_all(&trailer)?;
        Ok(self.output)
    }
}

/// The worker threads, stopped and joined when dropped: on `finish` and on any error.
struct Workers {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Hanging up the queue ends each worker's loop.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(CHUNK - self.input.len());
        self.input.extend_from_slice(&bytes[..n]);
        if self.input.len() == CHUNK {
            self.send_chunk(false)?;
        }
        Ok(n)
    }

    /// Nothing to do: a gzip stream can only be cut at chunk ends, and the archive is synced
    /// as a whole after `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn workers_gone() -> io::Error {
    io::Error::other("a gzip worker thread stopped")
}

/// The 10-byte gzip header gzip(1) writes for a pipe: no name, no time, Unix.
fn gzip_header(level: u32) -> [u8; 10] {
    let extra_flags = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 3]
}

/// A worker: takes jobs until the writer hangs up.
fn deflate_jobs(queue: &Mutex<Receiver<Job>>, pieces: &Sender<Piece>, level: flate2::Compression) {
    let mut deflate = Compress::new(level, false);
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut crc = Crc::new();
        crc.update(&job.input);
        deflate.reset();
        // A panic becomes this chunk's error: the writer waits for every chunk in order and
        // would otherwise wait for this one forever.
        let output =
            std::panic::catch_unwind(AssertUnwindSafe(|| deflate_chunk(&mut deflate, &job)))
                .unwrap_or_else(|_| Err(io::Error::other("a gzip worker thread panicked")));
        let piece = Piece {
            sequence: job.sequence,
            output,
            crc,
        };
        if pieces.send(piece).is_err() {
            return;
        }
    }
}

/// Deflates one chunk as a run of raw deflate blocks ending on a byte boundary, or with the
/// final block for the last chunk.
fn deflate_chunk(deflate: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    let compress_error = |err: flate2::CompressError| io::Error::other(err.to_string());
    if !job.dictionary.is_empty() {
        deflate
            .set_dictionary(&job.dictionary)
            .map_err(compress_error)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut output = Vec::with_capacity(job.input.len() + job.input.len() / 16 + 64);
    let mut consumed = 0;
    loop {
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(&job.input[consumed..], &mut output, flush)
            .map_err(compress_error)?;
        consumed += usize::try_from(deflate.total_in() - before).unwrap_or(0);
        let done = match status {
            Status::StreamEnd => true,
            // Room left over after a call means the flush is complete.
            Status::Ok | Status::BufError => {
                consumed == job.input.len() && output.len() < output.capacity()
            }
        };
        if done {
            return Ok(output);
        }
        output.reserve(64 << 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // Not the multi-member decoder: the pieces must form one member.
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn text(len: usize) -> Vec<u8> {
        let words = ["backup ", "archive ", "tar ", "gzip ", "restore ", "zstd\n"];
        (0..)
            .map(|i: usize| words[(i * 7 + i / 3) % words.len()])
            .flat_map(str::bytes)
            .take(len)
            .collect()
    }

    fn compress(input: &[u8], workers: u32, write_size: usize) -> Vec<u8> {
        let mut gzip = ParallelGzip::new(Vec::new(), 6, workers).unwrap();
        for piece in input.chunks(write_size.max(1)) {
            gzip.write_all(piece).unwrap();
        }
        gzip.finish().unwrap()
    }

    #[test]
    fn any_input_reads_back_as_one_gzip_member() {
        for (len, workers, write_size) in [
            (0, 2, 1),
            (1, 2, 1),
            (CHUNK, 2, 4096),
            (CHUNK + 1, 3, CHUNK),
            (5 * CHUNK + 12_345, 4, 100_000),
        ] {
            let input = text(len);
            let packed = compress(&input, workers, write_size);
            assert_eq!(gunzip(&packed), input, "{len} bytes, {workers} workers");
        }
    }

    #[test]
    fn the_archive_is_as_small_as_one_thread_makes_it() {
        let input = text(6 * CHUNK);
        let parallel = compress(&input, 4, 65_536).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), super::deflate_level(6));
        serial.write_all(&input).unwrap();
        let serial = serial.finish().unwrap().len();
        assert!(
            parallel <= serial + serial / 100 + 64,
            "{parallel} > {serial}"
        );
    }

    /// Takes `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if bytes.len() > self.room {
                return Err(io::Error::other("No space left on device"));
            }
            self.room -= bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_fails_is_an_error_and_the_workers_stop() {
        assert!(ParallelGzip::new(Full { room: 5 }, 6, 2).is_err());
        let mut gzip = ParallelGzip::new(Full { room: 100_000 }, 6, 2).unwrap();
        // Bytes that do not compress, so the 100,000 bytes of room run out.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let input: Vec<u8> = (0..8 * CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let err = gzip.write_all(&input).unwrap_err();
        assert_eq!(err.to_string(), "No space left on device");
        // Dropping joins the workers; a hang here fails the test run.
        drop(gzip);
    }
}
