//! The last outcome of each schedule, kept in `logs/backup_state.txt` for `status`: one
//! record per plan line, replaced atomically under a lock by every backup that ends.
//!
//! A record is one line of tab-separated fields, the plan line last:
//! `ok|error|running  started  offset  duration_ms  size-or-pid  message  last-success  plan-line`
//! (`last-success`, the start of the last run that succeeded, came later: records without it
//! are still read).
//! A backup records `running` (with its PID) when it starts and its ending when it ends, so a
//! backup killed midway stays visible as one that never ended.

use super::ledger;
use crate::clock::LocalTime;
use crate::layout::Layout;
use std::io;

/// Records kept at most; the oldest go first, so lines long gone from the plan fade out.
const MAX_RECORDS: usize = 10_000;

/// The last backup of a schedule: when it started and how it ended, if it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub started: LocalTime,
    pub duration_ms: u64,
    pub ending: Ending,
    /// How the `on_success` hook failed after a backup that is in place (stored in the
    /// message field of an `ok` record); a failed `on_failure` hook is part of the failure's
    /// message instead.
    pub hook_problem: Option<String>,
    /// When the last run that succeeded started (unix seconds): this one's start if it did,
    /// else carried over from the records before it by [`with_outcome`].
    pub last_success: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The archive is in place; its size in bytes.
    Done(u64),
    /// The message logged after `Error: `.
    Failed(String),
    /// Not ended yet, by the process with this PID (or never, if that process is gone).
    Running(u32),
}

/// The outcomes in a state file's text, by plan line. Lines that do not parse are skipped:
/// a damaged state file costs history, never a crash.
pub fn parse(text: &[u8]) -> Vec<(Vec<u8>, Outcome)> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_record)
        .collect()
}

fn parse_record(record: &[u8]) -> Option<(Vec<u8>, Outcome)> {
    let mut fields = record.splitn(7, |&b| b == b'\t');
    let mut next = || fields.next();
    let (status, started, offset, duration, size, message, rest) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    let number = |field: &[u8]| std::str::from_utf8(field).ok()?.parse::<i64>().ok();
    // A plan line always holds `;`, so digits (or nothing) before a tab are the last-success
    // field; a record written before that field existed has the plan line right here.
    let (last_success, line) = match rest.iter().position(|&b| b == b'\t') {
        Some(tab) if rest[..tab].iter().all(u8::is_ascii_digit) => {
            (number(&rest[..tab]), &rest[tab + 1..])
        }
        _ => (None, rest),
    };
    let hook_problem = (status == b"ok" && !message.is_empty())
        .then(|| String::from_utf8_lossy(message).into_owned());
    let ending = match status {
        b"ok" => Ending::Done(u64::try_from(number(size)?).ok()?),
        b"error" => Ending::Failed(String::from_utf8_lossy(message).into_owned()),
        b"running" => Ending::Running(u32::try_from(number(size)?).ok()?),
        _ => return None,
    };
    let outcome = Outcome {
        started: LocalTime {
            unix: number(started)?,
            nanos: 0,
            offset: i32::try_from(number(offset)?).ok()?,
        },
        duration_ms: u64::try_from(number(duration)?).ok()?,
        ending,
        hook_problem,
        last_success,
    };
    Some((line.to_vec(), outcome))
}

/// The state text with `line`'s outcome replaced by `outcome`, which keeps the time of the
/// last success from the record it replaces when it is not a success itself.
pub fn with_outcome(text: &[u8], line: &[u8], outcome: &Outcome) -> Vec<u8> {
    let (previous, mut records): (Vec<_>, Vec<_>) = parse(text)
        .into_iter()
        .partition(|(other, _)| other == line);
    let mut outcome = outcome.clone();
    outcome.last_success = match outcome.ending {
        Ending::Done(_) => Some(outcome.started.unix),
        _ => previous
            .into_iter()
            .find_map(|(_, previous)| previous.last_success),
    };
    records.push((line.to_vec(), outcome));
    records.sort_by_key(|(_, outcome)| outcome.started.unix);
    let extra = records.len().saturating_sub(MAX_RECORDS);
    let mut out = Vec::new();
    for (line, outcome) in &records[extra..] {
        let (status, size, message) = match &outcome.ending {
            Ending::Done(size) => (
                "ok",
                *size,
                outcome
                    .hook_problem
                    .as_deref()
                    .unwrap_or_default()
                    .replace(['\t', '\n'], " "),
            ),
            // Messages are already one line; tabs would split the record.
            Ending::Failed(message) => ("error", 0, message.replace(['\t', '\n'], " ")),
            Ending::Running(pid) => ("running", u64::from(*pid), String::new()),
        };
        let last_success = outcome
            .last_success
            .map(|unix| unix.to_string())
            .unwrap_or_default();
        out.extend_from_slice(
            format!(
                "{status}\t{}\t{}\t{}\t{size}\t{message}\t{last_success}\t",
                outcome.started.unix, outcome.started.offset, outcome.duration_ms
            )
            .as_bytes(),
        );
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The state file's bytes; empty if it does not exist yet.
fn read_current(layout: &Layout) -> io::Result<Vec<u8>> {
    ledger::read(&layout.state_file())
}

/// `outcomes` by plan line, for looking up many schedules at once; the first record of a line
/// wins, as a search through the list would find it.
pub fn by_line(outcomes: &[(Vec<u8>, Outcome)]) -> std::collections::HashMap<&[u8], &Outcome> {
    let mut map = std::collections::HashMap::with_capacity(outcomes.len());
    for (line, outcome) in outcomes {
        map.entry(line.as_slice()).or_insert(outcome);
    }
    map
}

/// The recorded outcomes; none if the file does not exist yet.
pub fn load(layout: &Layout) -> io::Result<Vec<(Vec<u8>, Outcome)>> {
    Ok(parse(&read_current(layout)?))
}

/// The recorded outcomes when every record in the file reads back; an error when any does
/// not. For decisions that a lost record would turn into a wrong action (catch-up), where
/// [`load`]'s "skip what does not parse" would read garbage as "never ran".
pub fn load_intact(layout: &Layout) -> io::Result<Vec<(Vec<u8>, Outcome)>> {
    let text = read_current(layout)?;
    let records: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|record| !record.is_empty())
        .collect();
    let outcomes: Vec<_> = records
        .iter()
        .filter_map(|record| parse_record(record))
        .collect();
    if outcomes.len() != records.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} of its {} records are damaged",
                records.len() - outcomes.len(),
                records.len()
            ),
        ));
    }
    Ok(outcomes)
}

/// Records `outcome` as the last one of plan line `line`.
pub fn record(layout: &Layout, line: &[u8], outcome: &Outcome) -> io::Result<()> {
    ledger::rewrite(layout, &layout.state_file(), |current| {
        with_outcome(current, line, outcome)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: i64) -> LocalTime {
        LocalTime {
            unix,
            nanos: 0,
            offset: 3600,
        }
    }

    #[test]
    fn outcomes_round_trip_and_replace_by_line() {
        let ok = Outcome {
            started: at(1_000),
            duration_ms: 12,
            ending: Ending::Done(10_240),
            hook_problem: None,
            last_success: None,
        };
        let failed = Outcome {
            started: at(2_000),
            duration_ms: 3,
            ending: Ending::Failed("backup of x to backups/x.tar failed: folder\tnot found".into()),
            hook_problem: None,
            last_success: None,
        };
        let text = with_outcome(b"", b"a;03:30;a", &ok);
        let text = with_outcome(&text, b"x;04:00;x", &failed);
        let later = Outcome {
            started: at(3_000),
            ..ok.clone()
        };
        let text = with_outcome(&text, b"a;03:30;a", &later);
        let records = parse(&text);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].0, b"x;04:00;x");
        assert_eq!(
            records[0].1.ending,
            Ending::Failed("backup of x to backups/x.tar failed: folder not found".into())
        );
        let later = Outcome {
            last_success: Some(3_000),
            ..later
        };
        assert_eq!(records[1], (b"a;03:30;a".to_vec(), later));
    }

    #[test]
    fn a_running_record_keeps_its_pid() {
        let running = Outcome {
            started: at(5_000),
            duration_ms: 0,
            ending: Ending::Running(4242),
            hook_problem: None,
            last_success: None,
        };
        let text = with_outcome(b"", b"a;03:30;a", &running);
        assert_eq!(text, b"running\t5000\t3600\t0\t4242\t\t\ta;03:30;a\n");
        assert_eq!(parse(&text), [(b"a;03:30;a".to_vec(), running)]);
    }

    #[test]
    fn the_last_success_outlives_failures_and_old_records_still_read() {
        let at_ = |unix, ending| Outcome {
            started: at(unix),
            duration_ms: 1,
            ending,
            hook_problem: None,
            last_success: None,
        };
        let text = with_outcome(b"", b"a;03:30;a", &at_(1_000, Ending::Done(10)));
        let text = with_outcome(&text, b"a;03:30;a", &at_(2_000, Ending::Running(7)));
        let text = with_outcome(&text, b"a;03:30;a", &at_(2_000, Ending::Failed("x".into())));
        assert_eq!(parse(&text)[0].1.last_success, Some(1_000));
        let text = with_outcome(&text, b"a;03:30;a", &at_(3_000, Ending::Done(10)));
        assert_eq!(parse(&text)[0].1.last_success, Some(3_000));
        // A record from before the field: the plan line follows the message.
        let old = parse(b"ok\t1\t0\t5\t9\t\ta;03:30;a\n");
        assert_eq!(old[0].0, b"a;03:30;a");
        assert_eq!(old[0].1.last_success, None);
    }

    #[test]
    fn sixteen_writers_at_once_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        std::thread::scope(|scope| {
            for i in 0..16 {
                let layout = &layout;
                scope.spawn(move || {
                    let outcome = Outcome {
                        started: at(i),
                        duration_ms: 1,
                        ending: Ending::Done(10),
                        hook_problem: None,
                        last_success: None,
                    };
                    record(layout, format!("f{i};00:00;n{i}").as_bytes(), &outcome).unwrap();
                });
            }
        });
        assert_eq!(load(&layout).unwrap().len(), 16);
    }

    #[test]
    fn damaged_records_are_skipped() {
        let text = b"ok\t1\t0\t5\t9\t\ta;03:30;a\ngarbage\nok\tx\t0\t5\t9\t\tb;03:30;b\n";
        let records = parse(text);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, b"a;03:30;a");
    }
}
