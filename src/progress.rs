//! One status line on stderr while `run`, `restore` or `verify` works, for a person at a
//! terminal: files and bytes done, rate, elapsed time, the share done and time left when the
//! total is known, and the member being worked on. Redrawn at most ten times a second and
//! erased when done; nothing at all when stderr is not a terminal (a pipe, a file, cron,
//! systemd, `start`'s daemon) or with `--quiet`. Logs and stdout never see it.

use crate::log::for_terminal;
use std::io::Write;
use std::time::{Duration, Instant};

/// Whether to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// When stderr is a terminal.
    Auto,
    /// Never (`--quiet`, the service).
    Off,
    /// Always (`--progress`), even into a pipe.
    On,
}

impl Mode {
    /// The mode the `--quiet` and `--progress` switches ask for (`--quiet` wins).
    pub fn from_switches(quiet: bool, progress: bool) -> Mode {
        match (quiet, progress) {
            (true, _) => Mode::Off,
            (false, true) => Mode::On,
            (false, false) => Mode::Auto,
        }
    }
}

/// How many bytes the work will take, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    Unknown,
    /// Known: the size of the archive being read.
    Exact(u64),
    /// Guessed: the size of the previous archive of that name.
    About(u64),
}

const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// The status line, or nothing when it is not drawn.
pub struct Progress(Option<Meter>);

struct Meter {
    verb: &'static str,
    total: Total,
    started: Instant,
    last_drawn: Option<Instant>,
    files: u64,
    bytes: u64,
    member: Vec<u8>,
    width: usize,
}

impl Progress {
    /// A line that says `verb` (`run`, `restore`, `verify`), drawn as `mode` says.
    pub fn new(mode: Mode, verb: &'static str, total: Total) -> Progress {
        let draw = match mode {
            Mode::Off => false,
            Mode::On => true,
            Mode::Auto => crate::sys::terminal::stderr_is_terminal(),
        };
        Progress(draw.then(|| Meter {
            verb,
            total,
            started: Instant::now(),
            last_drawn: None,
            files: 0,
            bytes: 0,
            member: Vec::new(),
            width: crate::sys::terminal::stderr_width().unwrap_or(80),
        }))
    }

    /// No line: for work nobody watches.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// One more member done; `bytes` is how far the work has got in all.
    pub fn step(&mut self, member: &[u8], bytes: u64) {
        let Some(meter) = self.0.as_mut() else {
            return;
        };
        meter.files += 1;
        meter.bytes = bytes;
        let now = Instant::now();
        if meter
            .last_drawn
            .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        meter.member.clear();
        meter.member.extend_from_slice(member);
        meter.last_drawn = Some(now);
        meter.draw(now);
    }

    /// Draws the final totals once (`bytes` in all, when the work ended well), then erases
    /// the line.
    pub fn finish(self, bytes: Option<u64>) {
        if let Some(mut meter) = self.0 {
            meter.member.clear();
            meter.bytes = bytes.unwrap_or(meter.bytes);
            meter.draw(Instant::now());
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

impl Meter {
    fn draw(&self, now: Instant) {
        let line = status_line(
            self.verb,
            self.files,
            self.bytes,
            now.duration_since(self.started),
            self.total,
            &self.member,
        );
        let line = cut_to_width(&line, self.width.saturating_sub(1));
        let mut out = Vec::with_capacity(line.len() + 8);
        out.push(b'\r');
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\x1b[K");
        let _ = std::io::stderr().write_all(&out);
    }
}

/// The text of the line. Pure, so its format is tested without a terminal.
pub fn status_line(
    verb: &str,
    files: u64,
    bytes: u64,
    elapsed: Duration,
    total: Total,
    member: &[u8],
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    };
    let mut line = format!(
        "{verb}: {files} files, {}, {}/s, {}",
        human_bytes(bytes as f64),
        human_bytes(rate),
        clock(elapsed.as_secs())
    );
    let (total_bytes, about) = match total {
        Total::Unknown => (0, ""),
        Total::Exact(total) => (total, ""),
        Total::About(total) => (total, "about "),
    };
    if total_bytes > 0 {
        let done = (bytes as f64 / total_bytes as f64).min(1.0);
        line.push_str(&format!(", {about}{:.0}%", done * 100.0));
        if rate > 0.0 && bytes < total_bytes {
            let left = (total_bytes - bytes) as f64 / rate;
            let left = Duration::try_from_secs_f64(left).map_or(0, |left| left.as_secs());
            line.push_str(&format!(", {about}{} left", clock(left)));
        }
    }
    if !member.is_empty() {
        line.push_str("  ");
        line.push_str(&String::from_utf8_lossy(&for_terminal(member)));
    }
    line
}

/// `mm:ss`, or `h:mm:ss` from an hour on.
fn clock(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`.
fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The line cut to `width` characters, so it never wraps (a wrapped line cannot be redrawn).
fn cut_to_width(line: &str, width: usize) -> &str {
    match line.char_indices().nth(width) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_is_done_and_what_is_left() {
        let line = status_line(
            "run",
            1234,
            50 << 20,
            Duration::from_secs(10),
            Total::About(100 << 20),
            b"docs/a\x1bb",
        );
        assert_eq!(
            line,
            "run: 1234 files, 50.0 MiB, 5.0 MiB/s, 00:10, about 50%, about 00:10 left  docs/a\\x1bb"
        );
        let exact = status_line("restore", 3, 512, Duration::ZERO, Total::Exact(512), b"");
        assert_eq!(exact, "restore: 3 files, 512 B, 0 B/s, 00:00, 100%");
        let unknown = status_line("run", 1, 10, Duration::from_secs(3700), Total::Unknown, b"");
        assert_eq!(unknown, "run: 1 files, 10 B, 0 B/s, 1:01:40");
    }

    #[test]
    fn lines_are_cut_to_the_terminal() {
        assert_eq!(cut_to_width("abcdef", 4), "abcd");
        assert_eq!(cut_to_width("ab", 4), "ab");
        assert_eq!(cut_to_width("ééé", 2), "éé");
    }
}
