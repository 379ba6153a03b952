//! The log files: `[dd/mm/yyyy hh:mm] message` lines, one write(2) each, escaped to one line.

use crate::clock::LocalTime;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Appends timestamped lines to one log file, creating its folder on demand.
#[derive(Debug, Clone)]
pub struct Log {
    path: PathBuf,
    /// Each line also goes to stderr, for a supervisor (journald, `docker logs`).
    to_stderr: bool,
}

impl Log {
    pub fn new(path: PathBuf) -> Log {
        Log {
            path,
            to_stderr: false,
        }
    }

    pub fn mirrored_to_stderr(self, to_stderr: bool) -> Log {
        Log { to_stderr, ..self }
    }

    #[cfg(test)]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes `message` as one line stamped with the current local time.
    ///
    /// A log that cannot be written must not stop a backup, so failures are reported on
    /// stderr only (where a daemon's stderr is /dev/null, nothing else could be done anyway).
    pub fn write(&self, message: &str) {
        let line = format_line(&LocalTime::now(), message.as_bytes());
        if self.to_stderr {
            let _ = std::io::stderr().write_all(&line);
        }
        if let Err(err) = self.append(&line) {
            eprintln!("backupbox: can't write {}: {err}", self.path.display());
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        // O_APPEND plus a single write keeps lines from concurrent writers whole.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            // A fifo in the log's place must not hang the program, and a symlink planted in
            // its place must not make it append to some other file.
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(&self.path)?;
        file.write_all(line)
    }
}

/// `[stamp] message\n`, with control characters in `message` escaped so one event is one line.
pub fn format_line(now: &LocalTime, message: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(message.len() + 20);
    line.push(b'[');
    line.extend_from_slice(now.log_stamp().as_bytes());
    line.extend_from_slice(b"] ");
    escape_controls_into(&mut line, message);
    line.push(b'\n');
    line
}

/// Copies `text` into `out`, writing control bytes as `\n`, `\r`, `\t` or `\xNN`.
pub fn escape_controls_into(out: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
            _ => out.push(byte),
        }
    }
}

/// Text for a byte string in a log message: lossless for UTF-8, `\xNN` for other bytes.
pub fn show_bytes(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_stamped_and_ends_in_one_newline() {
        let now = LocalTime {
            unix: 1_769_699_250,
            nanos: 0,
            offset: 3600,
        };
        let line = format_line(&now, b"New schedule added: test;16:07;backup_test");
        assert_eq!(
            line,
            b"[29/01/2026 16:07] New schedule added: test;16:07;backup_test\n"
        );
    }

    #[test]
    fn control_characters_cannot_start_a_new_line() {
        let now = LocalTime {
            unix: 0,
            nanos: 0,
            offset: 0,
        };
        let line = format_line(&now, b"Error: malformed schedule: a\nb;\r\x1b[31m");
        assert_eq!(
            line,
            b"[01/01/1970 00:00] Error: malformed schedule: a\\nb;\\r\\x1b[31m\n"
        );
    }

    #[test]
    fn non_utf8_bytes_are_shown_as_escapes() {
        assert_eq!(show_bytes(b"caf\xe9/\xc3\xa9"), "caf\\xe9/\u{e9}");
    }
}
