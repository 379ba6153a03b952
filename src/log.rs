//! The log files: `[dd/mm/yyyy hh:mm] message` lines, one write(2) each, escaped to one line.

use crate::clock::LocalTime;
use crate::sys::open::open_nofollow;
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
        // A fifo in the log's place must not hang the program, and a symlink planted in its
        // place must not make it append to some other file.
        let mut file = open_nofollow(
            OpenOptions::new().create(true).append(true).mode(0o644),
            &self.path,
        )?;
        file.write_all(line)
    }
}

/// `[stamp] message\n`, with line-breaking and terminal-control characters in `message`
/// escaped so one event is one line. Byte strings reach a message through [`show_bytes`],
/// which has already escaped them; this is the safety net for everything else.
pub fn format_line(now: &LocalTime, message: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(message.len() + 20);
    line.push(b'[');
    line.extend_from_slice(now.log_stamp().as_bytes());
    line.extend_from_slice(b"] ");
    escape_controls_into(&mut line, message);
    line.push(b'\n');
    line
}

/// Writes control character `c` escaped: `\n`, `\r`, `\t` or `\xNN` for C0 and DEL,
/// `\u{NNNN}` for C1 controls and the Unicode line and paragraph separators. False for any
/// other character, which the caller writes as it is.
fn push_escaped_char(out: &mut Vec<u8>, c: char) -> bool {
    match c {
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\0'..='\x1f' | '\x7f' => out.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes()),
        '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' => {
            out.extend_from_slice(format!("\\u{{{:04x}}}", c as u32).as_bytes());
        }
        _ => return false,
    }
    true
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut utf8 = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
}

/// Copies the UTF-8 `text` into `out` with control characters (and, if `backslash`, the
/// backslash) escaped. Runs of plain ASCII, nearly all of any name, are copied whole: `list`
/// of a 10,000-line plan spent most of its time pushing one character at a time.
fn push_valid(out: &mut Vec<u8>, text: &str, backslash: bool) {
    let mut plain_from = 0;
    for (at, c) in text.char_indices() {
        if c.is_ascii() && !c.is_ascii_control() && (c != '\\' || !backslash) {
            continue;
        }
        out.extend_from_slice(&text.as_bytes()[plain_from..at]);
        plain_from = at + c.len_utf8();
        if c == '\\' {
            out.extend_from_slice(b"\\\\");
        } else if !push_escaped_char(out, c) {
            push_char(out, c);
        }
    }
    out.extend_from_slice(&text.as_bytes()[plain_from..]);
}

/// Copies `text` into `out` with control characters escaped (see [`push_escaped_char`]).
/// Bytes that are not UTF-8 are copied as they are, except those that an 8-bit terminal
/// reads as C1 controls (0x80 to 0x9f), which become `\xNN`.
pub fn escape_controls_into(out: &mut Vec<u8>, text: &[u8]) {
    for chunk in text.utf8_chunks() {
        push_valid(out, chunk.valid(), false);
        for &byte in chunk.invalid() {
            if (0x80..=0x9f).contains(&byte) {
                out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
            } else {
                out.push(byte);
            }
        }
    }
}

/// A byte string as it goes to a terminal: control characters escaped, every other byte as
/// it is (so non-UTF-8 names stay byte-exact for scripts).
pub fn for_terminal(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    escape_controls_into(&mut out, text);
    out
}

/// Text for a byte string in a message (log, stderr, status): lossless and unambiguous.
/// UTF-8 is kept, other bytes become `\xNN`, control characters are escaped, and a backslash
/// is doubled, so a name holding a real newline and one holding `\n` never read the same.
pub fn show_bytes(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        push_valid(&mut out, chunk.valid(), true);
        for byte in chunk.invalid() {
            out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
        }
    }
    // Only ASCII escapes and whole characters of valid chunks were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// `text` as a double-quoted string literal that is valid JSON and valid TOML alike (for
/// `status --json` and `settings`): quotes and backslashes escaped, `\b \t \n \f \r`, and
/// every other control character, DEL included, as `\uXXXX`.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Longest part of an archive member name put in a message: a crafted archive can carry a
/// name of a megabyte, and a log is read by people.
const SHOWN_NAME_MAX: usize = 1024;

/// [`show_bytes`] of an archive member name, cut to at most 1 KiB with `…`.
pub fn show_name(name: &[u8]) -> String {
    let shown = show_bytes(name);
    if shown.len() <= SHOWN_NAME_MAX {
        return shown;
    }
    let mut cut = SHOWN_NAME_MAX;
    while !shown.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &shown[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_reads_back_the_same_as_toml() {
        let text = "a\"b\\c\u{8}\t\n\u{c}\r\u{1b}[2J\u{7f}\u{85} caf\u{e9} \u{1F600}";
        let literal = quoted(text);
        assert!(!literal.chars().any(char::is_control), "{literal:?}");
        let toml = crate::settings::parse_value_for_tests(&literal);
        assert_eq!(toml, text);
    }

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

    #[test]
    fn a_real_newline_and_a_written_one_never_show_the_same() {
        assert_eq!(show_bytes(b"g\nliteral"), "g\\nliteral");
        assert_eq!(show_bytes(b"g\\nliteral"), "g\\\\nliteral");
        assert_eq!(
            show_bytes("a\u{85}b\u{2028}c\x1b".as_bytes()),
            "a\\u{0085}b\\u{2028}c\\x1b"
        );
    }

    #[test]
    fn terminal_output_escapes_controls_and_keeps_other_bytes() {
        assert_eq!(
            for_terminal(b"caf\xe9\x1b[2J\x9b\\"),
            b"caf\xe9\\x1b[2J\\x9b\\"
        );
        assert_eq!(for_terminal("\u{9b}x".as_bytes()), b"\\u{009b}x");
    }

    #[test]
    fn long_names_are_cut_to_one_kib() {
        let shown = show_name(&[b'n'; 5000]);
        assert_eq!(shown.len(), 1024 + "…".len());
        assert!(shown.ends_with('…'));
        assert_eq!(show_name(b"short"), "short");
    }
}
