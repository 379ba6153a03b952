//! The manager's commands: each does its work and logs its success line, and returns how it
//! ended; errors go back to the command line, which logs them once.

mod backups;
pub mod check;
pub mod contents;
pub mod prune;
pub mod restore;
pub mod state;
pub mod verify;

use crate::crypt::Identities;
use crate::error::{Error, Outcome, Result};
use crate::job;
use crate::layout::Layout;
use crate::log::{Log, for_terminal, show_bytes};
use crate::plan::file::{self as plan_file, Missing};
use crate::plan::{self, Name};
use crate::progress;
use crate::report;
use crate::service::control;
use crate::settings;
use crate::stdout;
use crate::store::Keep;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A manager command, as the command line asked for it (lowered from the parser's structs by
/// `cli`, so no command here sees them).
pub enum Command {
    Create {
        schedule: Option<OsString>,
    },
    List {
        /// One JSON document on stdout.
        json: bool,
    },
    Delete {
        index: Option<String>,
    },
    Start {
        keep: Option<Keep>,
    },
    Stop {
        timeout: Duration,
    },
    Backups {
        long: bool,
        /// One JSON document on stdout, with what `--long` shows.
        json: bool,
    },
    Run {
        which: RunWhich,
        keep: Option<Keep>,
        /// One JSON line per job on stdout.
        json: bool,
        progress: progress::Mode,
    },
    Prune {
        name: Option<Name>,
        dry_run: bool,
    },
    Settings {
        name: Option<Name>,
    },
    Contents {
        name: Name,
        long: bool,
        json: bool,
        /// The newest state at or before this local wall-clock minute.
        as_of: Option<i64>,
        /// Identity files for an encrypted archive.
        identity: Vec<PathBuf>,
    },
    Status {
        format: StatusFormat,
    },
    /// Everything the service will need, looked at.
    Check,
    Verify {
        name: Name,
        against: bool,
        json: bool,
        identity: Vec<PathBuf>,
        progress: progress::Mode,
    },
    Restore {
        name: Name,
        options: restore::Options,
    },
}

/// What `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Prometheus,
}

/// Carries out `command`, logging its success line to `log`.
pub fn execute(layout: &Layout, log: &Log, exe: &Path, command: Command) -> Result<Outcome> {
    match command {
        Command::Create { schedule } => create(layout, log, schedule),
        Command::List { json } => list(layout, log, json),
        Command::Delete { index } => delete(layout, log, index),
        Command::Start { keep } => {
            // The spec's line, then why on a line of its own: the log is where an admin
            // looks, and "can't start" alone says nothing.
            control::start(layout, exe, keep).map_err(Error::with_reason_logged)?;
            log.write("backup_service started");
            Ok(Outcome::Done)
        }
        Command::Stop { timeout } => {
            control::stop(layout, timeout)?;
            log.write("backup_service stopped");
            Ok(Outcome::Done)
        }
        Command::Backups { long, json } => backups::backups(layout, log, long, json),
        Command::Run {
            which,
            keep,
            json,
            progress,
        } => run(layout, log, &which, keep, json, progress),
        Command::Prune { name, dry_run } => prune::prune(layout, log, name, dry_run),
        Command::Settings { name } => show_settings(layout, log, name.as_ref()),
        Command::Contents {
            name,
            long,
            json,
            as_of,
            identity,
        } => contents::contents(
            layout,
            log,
            &name,
            contents::Listing { long, json, as_of },
            &Identities::load(&identity)?,
        ),
        Command::Status { format } => show_status(layout, log, format),
        Command::Check => check::check(layout, log),
        Command::Verify {
            name,
            against,
            json,
            identity,
            progress,
        } => verify::verify(
            layout,
            log,
            &name,
            verify::Asked {
                against,
                json,
                progress,
            },
            &Identities::load(&identity)?,
        ),
        Command::Restore { name, options } => restore::restore(layout, log, &name, &options),
    }
}

fn create(layout: &Layout, log: &Log, schedule: Option<OsString>) -> Result<Outcome> {
    let schedule = schedule
        .ok_or_else(|| {
            Error::usage("malformed schedule: ")
                .because("create needs a schedule: folder;hh:mm;name")
        })?
        .into_vec();
    let shown = show_bytes(&schedule);
    if !plan::is_valid_new_line(&schedule) {
        return Err(Error::failed(format!("malformed schedule: {shown}"))
            .because("expected folder;hh:mm;name with a 24-hour time and a name without '/'"));
    }
    plan_file::edit(layout, Missing::Create, |current| {
        Ok((plan::with_line_appended(current, &schedule), ()))
    })?;
    log.write(&format!("New schedule added: {shown}"));
    Ok(Outcome::Done)
}

fn list(layout: &Layout, log: &Log, json: bool) -> Result<Outcome> {
    let text = plan_file::read(layout)?;
    if json {
        stdout::print_line(&list_json(&text))?;
        log.write("Show schedules list");
        return Ok(Outcome::Done);
    }
    let mut listing = Vec::new();
    for (index, entry) in plan::entries(&text).iter().enumerate() {
        listing.extend_from_slice(format!("{index}: ").as_bytes());
        listing.extend_from_slice(&for_terminal(entry.text));
        listing.push(b'\n');
    }
    stdout::print(&listing)?;
    log.write("Show schedules list");
    Ok(Outcome::Done)
}

/// A schedule index from the command line; anything but a whole number is a usage error.
/// `list --json`: `{"schedules": [...]}`, each entry with its index and line, and its
/// fields or what is wrong with it.
fn list_json(text: &[u8]) -> String {
    use crate::log::quoted;
    let entries: Vec<String> = plan::entries(text)
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let line = quoted(&show_bytes(entry.text));
            match entry.schedule() {
                Some(schedule) => format!(
                    "{{\"index\": {index}, \"line\": {line}, \"folder\": {}, \"time\": {}, \"name\": {}}}",
                    quoted(&show_bytes(&schedule.folder)),
                    quoted(&schedule.time_text()),
                    quoted(&show_bytes(&schedule.name))
                ),
                None => format!(
                    "{{\"index\": {index}, \"line\": {line}, \"malformed\": {}}}",
                    quoted(&plan::why_malformed(entry.text).unwrap_or_default())
                ),
            }
        })
        .collect();
    format!("{{\"schedules\": [{}]}}", entries.join(", "))
}

fn parse_index(index: Option<String>, command: &str) -> Result<usize> {
    let index = index.ok_or_else(|| Error::usage(format!("{command} needs a schedule index")))?;
    index.parse().map_err(|_| {
        Error::usage(format!(
            "can't find schedule at index {}",
            show_bytes(index.as_bytes())
        ))
    })
}

fn delete(layout: &Layout, log: &Log, index: Option<String>) -> Result<Outcome> {
    let index = parse_index(index, "delete")?;
    plan_file::edit(layout, Missing::Fail, |current| {
        let edited = plan::without_entry(current, index)
            .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
        Ok((edited, ()))
    })?;
    log.write(&format!("Schedule at index {index} deleted"));
    Ok(Outcome::Done)
}

/// `status [--json | --prometheus]`.
fn show_status(layout: &Layout, log: &Log, format: StatusFormat) -> Result<Outcome> {
    let facts = report::gather(layout, report::service_info(layout));
    let (text, outcome) = if format == StatusFormat::Prometheus {
        // Metrics carry their verdict in the text: a scrape wants exit 0.
        (report::metrics::render(&facts), Outcome::Done)
    } else {
        let report = report::status::build(&facts, &crate::sys::process::is_backupbox_process);
        let text = if format == StatusFormat::Json {
            report.json()
        } else {
            report.text()
        };
        let outcome = if report.healthy() {
            Outcome::Done
        } else {
            Outcome::NeedsAttention
        };
        (text, outcome)
    };
    stdout::print(text.as_bytes())?;
    log.write("Show status");
    Ok(outcome)
}

/// `settings [NAME]`: every key in force for NAME (or the defaults) and where it came from.
fn show_settings(layout: &Layout, log: &Log, name: Option<&Name>) -> Result<Outcome> {
    let settings = settings::load(layout)?;
    if let Ok(text) = plan_file::read(layout) {
        warn_of_unused_tables(log, &settings, &text);
    }
    let effective = settings.for_name(name.map_or(&[][..], |name| &**name), None);
    stdout::print(effective.describe().as_bytes())?;
    log.write("Show settings");
    Ok(Outcome::Done)
}

/// Logs, and says on stderr, which `[name.…]` tables of the settings no line of `plan` uses.
fn warn_of_unused_tables(log: &Log, settings: &settings::Settings, plan: &[u8]) {
    let schedules: Vec<plan::Schedule> = plan::entries(plan)
        .iter()
        .filter_map(plan::Entry::schedule)
        .collect();
    for warning in settings.unused_tables(schedules.iter().map(|schedule| &*schedule.name)) {
        eprintln!("{warning}");
        log.write(&warning);
    }
}

/// Which plan lines `run` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunWhich {
    /// An index, or else an archive name: every line that writes it.
    Word(String),
    /// Every line, in order.
    All,
}

/// The plan lines `which` names, by index; a malformed one is kept, to fail in its turn.
fn chosen_lines<'a>(
    entries: &'a [plan::Entry<'a>],
    which: &RunWhich,
) -> Result<Vec<(usize, &'a plan::Entry<'a>)>> {
    let word = match which {
        RunWhich::All => return Ok(entries.iter().enumerate().collect()),
        RunWhich::Word(word) => word,
    };
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        let index: usize = word
            .parse()
            .map_err(|_| Error::failed(format!("can't find schedule at index {word}")))?;
        let entry = entries
            .get(index)
            .ok_or_else(|| Error::failed(format!("can't find schedule at index {index}")))?;
        return Ok(vec![(index, entry)]);
    }
    let chosen: Vec<_> = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| {
            entry
                .schedule()
                .is_some_and(|schedule| *schedule.name == *word.as_bytes())
        })
        .collect();
    if chosen.is_empty() {
        return Err(Error::failed(format!(
            "can't find schedule at index or with archive name {}",
            show_bytes(word.as_bytes())
        )));
    }
    Ok(chosen)
}

fn run(
    layout: &Layout,
    log: &Log,
    which: &RunWhich,
    keep: Option<Keep>,
    json: bool,
    progress: progress::Mode,
) -> Result<Outcome> {
    let text = plan_file::read(layout)?;
    let entries = plan::entries(&text);
    let chosen = chosen_lines(&entries, which)?;
    // The same settings as the service's, so a manual run keeps what the service keeps.
    let settings = settings::load(layout)?;
    warn_of_unused_tables(log, &settings, &text);
    let mut failures = Vec::new();
    for (_, entry) in &chosen {
        let started = std::time::Instant::now();
        let result = run_line(layout, log, entry, &settings, keep, progress);
        if json {
            stdout::print_line(&run_summary(entry, &result, started.elapsed()))?;
        }
        if let Err(err) = result {
            failures.push(err);
        }
    }
    // As the service does after its jobs, so a host driven by cron or a CronJob has metrics.
    let metrics = settings.for_name(b"", None).metrics;
    crate::service::metrics_writer::publish_after_run(layout, metrics.as_deref(), log);
    match (chosen.len(), failures.pop()) {
        (_, None) => Ok(Outcome::Done),
        (1, Some(failure)) => Err(failure),
        (count, Some(_)) => Err(Error::already_logged(format!(
            "{} of {count} backups failed",
            failures.len() + 1
        ))),
    }
}

/// Runs one plan line as the service would; `Ok` holds the archive and its size.
fn run_line(
    layout: &Layout,
    log: &Log,
    entry: &plan::Entry,
    settings: &settings::Settings,
    keep: Option<Keep>,
    progress: progress::Mode,
) -> Result<(String, u64)> {
    // The log line is the spec's; stderr says which field is wrong too.
    let schedule = entry.schedule().ok_or_else(|| {
        let error = Error::failed(format!("malformed schedule: {}", show_bytes(entry.text)));
        match plan::why_malformed(entry.text) {
            Some(why) => error.because(why),
            None => error,
        }
    })?;
    let options = job::Options {
        settings: settings.for_name(&schedule.name, keep),
        progress,
        start_delay_seconds: 0,
    };
    let ran = job::run(layout, &schedule, log, &options)?;
    // `run` copies offsite in the foreground: a copy that failed fails the command.
    match ran.offsite_failure {
        Some(line) => Err(Error::already_logged(line)),
        None => Ok((ran.archive, ran.size)),
    }
}

/// `run --json`'s line for one job.
fn run_summary(
    entry: &plan::Entry,
    result: &Result<(String, u64)>,
    took: std::time::Duration,
) -> String {
    use crate::log::quoted as json_string;
    let name = entry
        .schedule()
        .map_or_else(String::new, |schedule| show_bytes(&schedule.name));
    let (archive, size, outcome) = match result {
        Ok((archive, size)) => (json_string(archive), size.to_string(), "\"ok\"".to_owned()),
        Err(err) => (
            "null".to_owned(),
            "null".to_owned(),
            format!("\"failed\", \"error\": {}", json_string(&err.to_string())),
        ),
    };
    format!(
        "{{\"name\": {}, \"line\": {}, \"archive\": {archive}, \"size\": {size}, \"seconds\": {}.{:03}, \"outcome\": {outcome}}}",
        json_string(&name),
        json_string(&show_bytes(entry.text)),
        took.as_secs(),
        took.subsec_millis()
    )
}
