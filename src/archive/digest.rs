//! SHA-256 of an archive file as it is written, for the store's catalog: a thread reads what
//! the writer has put in the file (from the page cache) right behind it, on a core the writer
//! leaves free, so the hash is ready when the last byte is written instead of costing a
//! second pass over the archive afterwards.

use sha2::Digest;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Bytes hashed per read.
const CHUNK: usize = 256 << 10;

#[derive(Default)]
struct Shared {
    /// Bytes of the file written so far, all of which may be read.
    written: AtomicU64,
    /// The writer has written its last byte.
    done: AtomicBool,
}

/// Reads into `buffer` at `offset` (the descriptor's position is left alone), again when a
/// signal interrupted the read; 0 at the end of the file.
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buffer, offset) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// SHA-256 of a whole file, read from its start.
pub fn sha256_of(file: &File) -> io::Result<[u8; 32]> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let mut offset = 0;
    loop {
        let n = read_at(file, &mut buffer, offset)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
        offset += n as u64;
    }
}

/// The hashing thread behind one writer.
pub struct Follower {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<[u8; 32]>>,
}

impl Follower {
    /// Starts hashing `file` from its first byte, as far as [`Follower::advance`] allows. The
    /// writer never goes back over bytes it wrote.
    pub fn start(file: File) -> io::Result<Follower> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("archive hash".into())
            .spawn(move || follow(&file, &theirs))?;
        Ok(Follower { shared, thread })
    }

    /// The file now holds `written` bytes.
    pub fn advance(&self, written: u64) {
        self.shared.written.store(written, Ordering::Release);
        self.thread.thread().unpark();
    }

    /// The SHA-256 of the file's bytes, once the thread has read them all.
    pub fn finish(self) -> io::Result<[u8; 32]> {
        self.shared.done.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?
    }
}

fn follow(file: &File, shared: &Shared) -> io::Result<[u8; 32]> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let mut hashed = 0;
    loop {
        // `done` before `written`: once the writer is done, its last `written` is seen.
        let done = shared.done.load(Ordering::Acquire);
        let written = shared.written.load(Ordering::Acquire);
        if hashed < written {
            let want = usize::try_from(written - hashed).map_or(CHUNK, |left| left.min(CHUNK));
            let n = read_at(file, &mut buffer[..want], hashed)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive is shorter than what was written to it",
                ));
            }
            hasher.update(&buffer[..n]);
            hashed += n as u64;
        } else if done {
            return Ok(hasher.finalize().into());
        } else {
            // An unpark between the load and here makes this return at once.
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_digest_is_that_of_every_byte_written_in_steps() {
        let mut file = tempfile::tempfile().unwrap();
        let follower = Follower::start(file.try_clone().unwrap()).unwrap();
        let mut written = 0;
        for step in 0..50u8 {
            let bytes = vec![step; 1000 + usize::from(step) * 7919];
            file.write_all(&bytes).unwrap();
            written += bytes.len() as u64;
            follower.advance(written);
        }
        let digest = follower.finish().unwrap();
        let mut whole = sha2::Sha256::new();
        for step in 0..50u8 {
            whole.update(vec![step; 1000 + usize::from(step) * 7919]);
        }
        assert_eq!(digest, <[u8; 32]>::from(whole.finalize()));
        assert_eq!(sha256_of(&file).unwrap(), digest);
        // Nothing written: the digest of no bytes.
        let empty = Follower::start(tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(
            crate::store::catalog::hex(&empty.finish().unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
