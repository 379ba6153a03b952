//! Reading ahead of the archive writer: a few threads open the files the walk stores next, in
//! the directory it is in, and ask the kernel to read them (`posix_fadvise(WILLNEED)`), so a
//! cold disk serves several requests at once while the writer keeps archive order. They only
//! warm the page cache: what is stored is still read by the writer, with every live-file
//! check. At most [`BUDGET`] bytes and [`MAX_FILES_AHEAD`] files are asked for ahead of it.

use nix::fcntl::{OFlag, PosixFadviseAdvice, openat, posix_fadvise};
use nix::sys::stat::{Mode, SFlag, fstat};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes asked for ahead of the writer, at most.
const BUDGET: u64 = 16 << 20;
/// Bytes asked for per file: the writer's own reads and the kernel's readahead do the rest
/// of a large file.
const PER_FILE: u64 = 1 << 20;
/// Files opened ahead of the writer, at most.
const MAX_FILES_AHEAD: usize = 256;
/// Entries of a directory handed over at once; more follow as the writer gets to them.
pub const BATCH: usize = 1024;

#[derive(Default)]
struct State {
    /// The directory the writer is in, and its files still to come (index in the sorted
    /// listing, name).
    dir: Option<Arc<OwnedFd>>,
    queue: VecDeque<(usize, Vec<u8>)>,
    /// Files taken by a reader and not yet passed by the writer, with the bytes asked for.
    taken: VecDeque<(usize, u64)>,
    ahead: u64,
    /// Changes with every new directory, so late answers about the old one are dropped.
    generation: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A reader that panicked left nothing half-done worth refusing to go on for.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A file stored in less than this on average came from the page cache.
const SLOW_FILE: Duration = Duration::from_micros(25);

/// A moving average of the time the writer takes per file (the last 16 or so weigh most).
/// It starts slow, so a cold walk gets readers from its first file.
pub struct Pace {
    average_nanos: u64,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            average_nanos: 4 * nanos(SLOW_FILE),
        }
    }
}

impl Pace {
    pub fn add(&mut self, took: Duration) {
        self.average_nanos = self.average_nanos - self.average_nanos / 16 + nanos(took) / 16;
    }

    /// Whether files come from the disk lately.
    pub fn is_slow(&self) -> bool {
        self.average_nanos >= nanos(SLOW_FILE)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Readers ahead when `read_threads` is 0 and the folder is not on a spinning disk.
const AUTO_READERS: u32 = 4;

/// How many readers a backup of `folder` uses: `setting`, or for 0 what [`auto_readers`] says
/// of the folder's disk.
pub fn readers_for(folder: &std::path::Path, setting: u32) -> u32 {
    if setting > 0 {
        return setting;
    }
    let Ok(meta) = std::fs::metadata(folder) else {
        return AUTO_READERS;
    };
    use std::os::unix::fs::MetadataExt;
    let (major, minor) = (
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
    );
    // A partition has no queue or driver of its own: its disk's are one level up.
    let device = format!("/sys/dev/block/{major}:{minor}");
    let disk_file = |file: &str| [format!("{device}/{file}"), format!("{device}/../{file}")];
    let rotational = disk_file("queue/rotational")
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .is_some_and(|text| text.trim() == "1");
    let driver = disk_file("device/driver")
        .iter()
        .find_map(|path| std::fs::read_link(path).ok())
        .and_then(|link| Some(link.file_name()?.to_string_lossy().into_owned()));
    auto_readers(rotational, driver.as_deref())
}

/// Readers for a disk that says whether it is `rotational`, with its kernel `driver`: 4 on an
/// SSD, NVMe, network or memory file system, and 1 (the writer alone) on a spinning disk, where
/// reading several files at once makes the head seek between them. virtio-blk disks say
/// "rotational" whatever backs them (the kernel's default: the host does not tell), and on the
/// cloud and VM disks they nearly always are, four readers took a cold backup of 20,000 files
/// from 1.95 s to 0.69 s; there the flag is not believed.
pub fn auto_readers(rotational: bool, driver: Option<&str>) -> u32 {
    match (rotational, driver) {
        (true, Some("virtio_blk")) => AUTO_READERS,
        (true, _) => 1,
        (false, _) => AUTO_READERS,
    }
}

/// The reader threads of one backup; they end when it is dropped.
pub struct ReadAhead {
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
}

impl ReadAhead {
    /// `readers` threads, or `None` for one reader: the writer alone.
    pub fn start(readers: u32) -> Option<ReadAhead> {
        if readers <= 1 {
            return None;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let readers = (0..readers)
            .filter_map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("read-ahead".to_owned())
                    .stack_size(64 << 10)
                    .spawn(move || read(&shared))
                    .ok()
            })
            .collect();
        Some(ReadAhead { shared, readers })
    }

    /// The writer is in `dir` now; `upcoming` are its next files, in the order it stores them.
    pub fn follow(&self, dir: Arc<OwnedFd>, upcoming: impl Iterator<Item = (usize, Vec<u8>)>) {
        let mut state = self.shared.lock();
        state.generation += 1;
        state.dir = Some(dir);
        state.queue = upcoming.collect();
        state.taken.clear();
        state.ahead = 0;
        drop(state);
        self.shared.wake.notify_all();
    }

    /// The writer got to entry `index` of its directory: nothing up to it is read ahead any
    /// more. Returns how many queued files are left after it.
    pub fn passed(&self, index: usize) -> usize {
        let mut state = self.shared.lock();
        while state.queue.front().is_some_and(|(at, _)| *at <= index) {
            state.queue.pop_front();
        }
        let mut freed = 0;
        while let Some(&(at, bytes)) = state.taken.front() {
            if at > index {
                break;
            }
            state.ahead -= bytes;
            state.taken.pop_front();
            freed += 1;
        }
        let left = state.queue.len();
        drop(state);
        // Waking every reader for every file costs more than the reading saves on a warm
        // cache: one reader per freed place.
        for _ in 0..freed.min(MAX_FILES_AHEAD) {
            self.shared.wake.notify_one();
        }
        left
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// One reader: takes the next file while the writer is not too far behind, and asks for it.
fn read(shared: &Shared) {
    loop {
        let (dir, index, name, generation) = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                let room = state.ahead < BUDGET && state.taken.len() < MAX_FILES_AHEAD;
                if room && let Some((index, name)) = state.queue.pop_front() {
                    state.taken.push_back((index, 0));
                    let dir = state.dir.clone();
                    break (dir, index, name, state.generation);
                }
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let Some(dir) = dir else { continue };
        let asked = ask_for(&dir, &name);
        let mut state = shared.lock();
        if state.generation == generation
            && let Some(taken) = state.taken.iter_mut().find(|(at, _)| *at == index)
        {
            taken.1 = asked;
            state.ahead += asked;
        }
    }
}

/// Opens `name` in `dir` as the writer will (never through a link, never waiting on a FIFO)
/// and, if it is a regular file, asks the kernel to read its start. Returns the bytes asked.
fn ask_for(dir: &OwnedFd, name: &[u8]) -> u64 {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let Ok(fd) = openat(dir, name, flags, Mode::empty()) else {
        return 0;
    };
    let Ok(stat) = fstat(&fd) else { return 0 };
    if stat.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return 0;
    }
    let bytes = u64::try_from(stat.st_size).unwrap_or(0).min(PER_FILE);
    if bytes == 0 {
        return 0;
    }
    let Ok(length) = i64::try_from(bytes) else {
        return 0;
    };
    match posix_fadvise(&fd, 0, length, PosixFadviseAdvice::POSIX_FADV_WILLNEED) {
        Ok(()) => bytes,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_disk_gets_the_writer_alone_unless_virtio_says_so() {
        assert_eq!(auto_readers(false, Some("nvme")), AUTO_READERS);
        assert_eq!(auto_readers(false, None), AUTO_READERS);
        assert_eq!(auto_readers(true, Some("sd")), 1);
        assert_eq!(auto_readers(true, None), 1);
        assert_eq!(auto_readers(true, Some("virtio_blk")), AUTO_READERS);
        // A setting wins over any disk.
        assert_eq!(readers_for(std::path::Path::new("/"), 3), 3);
    }
}
