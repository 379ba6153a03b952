//! The backup plan: its format and byte-exact edits of its text (pure, here) and the file on
//! disk (`file`).

pub mod calendar;
pub mod file;
pub mod timing;

use std::ops::Range;

/// Longest schedule name whose archive file name (`<name>.tar`) still fits in NAME_MAX.
pub const MAX_NAME_LEN: usize = 255 - ".tar".len();

/// One valid plan line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The folder as written; relative folders are relative to the base directory.
    pub folder: Vec<u8>,
    /// Minutes after local midnight (0..1440).
    pub minute_of_day: u16,
    /// Archive name; the archive is `backups/<name>.tar`.
    pub name: Name,
}

/// A schedule's archive name, checked once: not empty, no `/`, not `.` or `..`, and short
/// enough for `<name>.tar` to fit in NAME_MAX. Only such a name becomes a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(Vec<u8>);

impl Name {
    pub fn new(bytes: &[u8]) -> Option<Name> {
        is_valid_name(bytes).then(|| Name(bytes.to_vec()))
    }
}

impl std::ops::Deref for Name {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// What is wrong with a plan line that [`Schedule::parse`] refuses: which field, and how.
pub fn why_malformed(line: &[u8]) -> Option<String> {
    if Schedule::parse(line).is_some() {
        return None;
    }
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Some("it holds a control character".to_owned());
    }
    let fields: Vec<&[u8]> = line.split(|&b| b == b';').collect();
    let why = match fields.as_slice() {
        [folder, time, name] => {
            if folder.is_empty() {
                "the folder is empty".to_owned()
            } else if parse_hh_mm(time).is_none() {
                format!(
                    "the time {} is not hh:mm from 00:00 to 23:59",
                    crate::log::quoted(&crate::log::show_bytes(time))
                )
            } else {
                format!(
                    "the name {} is empty, \".\" or \"..\", holds '/', or is longer than {MAX_NAME_LEN} bytes",
                    crate::log::quoted(&crate::log::show_bytes(name))
                )
            }
        }
        fields => format!("{} fields where folder;hh:mm;name has 3", fields.len()),
    };
    Some(why)
}

impl Schedule {
    /// Parses and validates one line (without its line ending). `None` if it is malformed.
    pub fn parse(line: &[u8]) -> Option<Schedule> {
        if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return None;
        }
        let mut fields = line.split(|&b| b == b';');
        let (folder, time, name) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || folder.is_empty() {
            return None;
        }
        Some(Schedule {
            folder: folder.to_vec(),
            minute_of_day: parse_hh_mm(time)?,
            name: Name::new(name)?,
        })
    }
}

impl Schedule {
    /// The plan line this schedule was read from (the format is strict, so it is exact).
    pub fn line(&self) -> Vec<u8> {
        let mut line = self.folder.clone();
        line.extend_from_slice(format!(";{};", self.time_text()).as_bytes());
        line.extend_from_slice(&self.name);
        line
    }

    /// `hh:mm`, as written in the plan.
    pub fn time_text(&self) -> String {
        format!(
            "{:02}:{:02}",
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

/// Whether `name` can be a schedule's archive name.
fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.contains(&b'/')
        && name != b"."
        && name != b".."
}

/// `hh:mm` with two digits each, 00:00 to 23:59.
fn parse_hh_mm(time: &[u8]) -> Option<u16> {
    let &[h1, h2, b':', m1, m2] = time else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    let hours = digit(h1)? * 10 + digit(h2)?;
    let minutes = digit(m1)? * 10 + digit(m2)?;
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// Whether `create` may add `line`: a valid schedule that will also be read back as an entry
/// (a folder starting with `#` would turn the line into a comment).
pub fn is_valid_new_line(line: &[u8]) -> bool {
    Schedule::parse(line).is_some() && is_entry(line)
}

/// An entry of the plan: a line that is neither blank nor a `#` comment. Entries are what
/// `list` numbers and `delete` and `run` address, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The line without its line ending (`\n`, and a `\r` before it).
    pub text: &'a [u8],
    /// Byte range of the whole line in the plan, line ending included.
    pub span: Range<usize>,
}

impl Entry<'_> {
    pub fn schedule(&self) -> Option<Schedule> {
        Schedule::parse(self.text)
    }
}

fn is_entry(text: &[u8]) -> bool {
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None => false,
        Some(&first) => first != b'#',
    }
}

/// The entries of a plan, in order; their position in this list is their index.
pub fn entries(plan: &[u8]) -> Vec<Entry<'_>> {
    let mut found = Vec::new();
    let mut start = 0;
    while start < plan.len() {
        let end = plan[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(plan.len(), |i| start + i + 1);
        let mut text = &plan[start..end];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if is_entry(text) {
            found.push(Entry {
                text,
                span: start..end,
            });
        }
        start = end;
    }
    found
}

/// The plan with entry `index` removed and every other byte kept. `None` if there is no such entry.
pub fn without_entry(plan: &[u8], index: usize) -> Option<Vec<u8>> {
    let span = entries(plan).get(index)?.span.clone();
    let mut edited = Vec::with_capacity(plan.len() - span.len());
    edited.extend_from_slice(&plan[..span.start]);
    edited.extend_from_slice(&plan[span.end..]);
    Some(edited)
}

/// The plan with `line` added as its last line, ending a final unterminated line first.
pub fn with_line_appended(plan: &[u8], line: &[u8]) -> Vec<u8> {
    let mut edited = Vec::with_capacity(plan.len() + line.len() + 2);
    edited.extend_from_slice(plan);
    if !edited.is_empty() && !edited.ends_with(b"\n") {
        edited.push(b'\n');
    }
    edited.extend_from_slice(line);
    edited.push(b'\n');
    edited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(line: &str) -> Option<Schedule> {
        Schedule::parse(line.as_bytes())
    }

    #[test]
    fn the_spec_example_parses() {
        let s = sched("test;16:07;backup_test").unwrap();
        assert_eq!(s.folder, b"test");
        assert_eq!(s.minute_of_day, 16 * 60 + 7);
        assert_eq!(&*s.name, b"backup_test");
    }

    #[test]
    fn times_must_be_two_digit_24_hour() {
        assert_eq!(sched("a;00:00;n").unwrap().minute_of_day, 0);
        assert_eq!(sched("a;23:59;n").unwrap().minute_of_day, 1439);
        for bad in [
            "a;24:00;n",
            "a;12:60;n",
            "a;9:05;n",
            "a;09:5;n",
            "a;0905;n",
            "a;+1:05;n",
            "a;09:05 ;n",
            "a;;n",
            "a;١٢:00;n",
        ] {
            assert_eq!(sched(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_are_checked() {
        for bad in [
            "test;",
            "test;16:07",
            "test;16:07;",
            ";16:07;n",
            "a;16:07;n;extra",
            "a;16:07;../../x",
            "a;16:07;sub/name",
            "a;16:07;.",
            "a;16:07;..",
            "a\nb;16:07;n",
            "a;16:07;n\r",
            "a\0;16:07;n",
            "a;16:07;n\x7f",
            "",
        ] {
            assert_eq!(sched(bad), None, "{bad:?}");
        }
        assert!(sched("/abs/with space;01:02;.hidden").is_some());
        assert!(sched("a;01:02;...").is_some());
    }

    #[test]
    fn names_must_fit_a_file_name() {
        let longest = format!("a;01:02;{}", "n".repeat(MAX_NAME_LEN));
        assert!(sched(&longest).is_some());
        let too_long = format!("a;01:02;{}", "n".repeat(MAX_NAME_LEN + 1));
        assert!(sched(&too_long).is_none());
    }

    #[test]
    fn non_utf8_folders_are_kept_byte_exact() {
        let s = Schedule::parse(b"caf\xe9;01:02;n").unwrap();
        assert_eq!(s.folder, b"caf\xe9");
    }

    #[test]
    fn a_folder_starting_with_hash_cannot_be_created() {
        assert!(!is_valid_new_line(b"#data;01:02;n"));
        assert!(!is_valid_new_line(b"  #data;01:02;n"));
        assert!(is_valid_new_line(b"data#;01:02;n"));
    }

    const HAND_EDITED: &[u8] =
        b"# header\r\n\r\ntest;16:07;backup_test\r\n   \n  # indented comment\ngarbage\nlast;00:00;z";

    #[test]
    fn entries_skip_blanks_and_comments_and_strip_cr() {
        let texts: Vec<&[u8]> = entries(HAND_EDITED).iter().map(|e| e.text).collect();
        assert_eq!(
            texts,
            vec![&b"test;16:07;backup_test"[..], b"garbage", b"last;00:00;z"]
        );
    }

    #[test]
    fn delete_removes_exactly_one_line() {
        let edited = without_entry(HAND_EDITED, 1).unwrap();
        assert_eq!(
            edited,
            b"# header\r\n\r\ntest;16:07;backup_test\r\n   \n  # indented comment\nlast;00:00;z"
        );
        let edited = without_entry(HAND_EDITED, 0).unwrap();
        assert_eq!(
            edited,
            b"# header\r\n\r\n   \n  # indented comment\ngarbage\nlast;00:00;z"
        );
        let edited = without_entry(HAND_EDITED, 2).unwrap();
        assert_eq!(
            edited,
            b"# header\r\n\r\ntest;16:07;backup_test\r\n   \n  # indented comment\ngarbage\n"
        );
        assert_eq!(without_entry(HAND_EDITED, 3), None);
        assert_eq!(without_entry(b"", 0), None);
    }

    #[test]
    fn append_terminates_the_last_line_first() {
        assert_eq!(with_line_appended(b"", b"a;00:00;n"), b"a;00:00;n\n");
        assert_eq!(with_line_appended(b"x", b"a;00:00;n"), b"x\na;00:00;n\n");
        assert_eq!(
            with_line_appended(b"x\r\n", b"a;00:00;n"),
            b"x\r\na;00:00;n\n"
        );
    }

    #[test]
    fn a_malformed_line_says_which_field_is_wrong() {
        assert_eq!(why_malformed(b"docs;03:00;docs"), None);
        assert_eq!(
            why_malformed(b"docs;3:00;docs").unwrap(),
            "the time \"3:00\" is not hh:mm from 00:00 to 23:59"
        );
        assert_eq!(
            why_malformed(b"docs;03:00").unwrap(),
            "2 fields where folder;hh:mm;name has 3"
        );
        assert_eq!(
            why_malformed(b"docs;03:00;a;b").unwrap(),
            "4 fields where folder;hh:mm;name has 3"
        );
        assert!(
            why_malformed(b"docs;03:00;a/b")
                .unwrap()
                .starts_with("the name \"a/b\"")
        );
        assert_eq!(why_malformed(b";03:00;d").unwrap(), "the folder is empty");
        assert_eq!(
            why_malformed(b"d\t;03:00;d").unwrap(),
            "it holds a control character"
        );
    }
}
