//! `backupbox.toml`, the optional settings file in the base directory: defaults for every
//! schedule at the top, `[name.<archive name>]` tables for the schedules that write that
//! archive. Absent, everything behaves as the spec says. Checked whole when read: an unknown
//! key or a bad value is an error naming the file, the line and the key.

mod parse;

use crate::archive::compression::{Compression, Encoding};
use crate::archive::form::Form;
use crate::layout::Layout;
use crate::plan::calendar::{Days, MAX_SPLAY_SECONDS};
use crate::store::Keep;
use parse::Entry;
use std::fmt;
use std::io;
use std::os::unix::fs::OpenOptionsExt;

/// The settings file's name, in the base directory.
pub use crate::layout::SETTINGS_FILE as FILE;
/// Largest settings file read: a few lines, or a mistake.
const MAX_BYTES: u64 = 1 << 20;

/// Where a setting in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    NameTable,
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "file",
            Source::NameTable => "name table",
            Source::CommandLine => "command line",
        })
    }
}

/// A key's value, read and checked against the key's type and range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Keep(Keep),
    Count(u32),
    Switch(bool),
    Texts(Vec<String>),
    Text(String),
    /// No value: the key is off (a hook, the metrics file) or takes its form's default (level).
    Unset,
    Form(Compression),
    /// A level, and the line it is set on: whether it fits the form is known only once the top
    /// and the name table are merged.
    Level(u32, usize),
    /// `days`: weekdays, bit 0 Monday.
    Weekdays(u8),
    /// `monthdays`: bit d for day d.
    Monthdays(u32),
    /// `encrypt_to_file`: the file, the line it is set on, and the recipients it holds once
    /// [`load`] has read it.
    RecipientsFile {
        path: String,
        line: usize,
        recipients: Vec<String>,
    },
}

/// One key of `backupbox.toml`: everything about it, in one place. A new setting is one entry
/// in [`KEYS`] (and its field in [`Effective`], which its use reads).
struct Key {
    name: &'static str,
    /// What it does, as the key's row of docs/settings.md says it (a test keeps the two in
    /// step).
    #[cfg_attr(not(test), expect(dead_code))]
    doc: &'static str,
    /// Only at the top of the file, not in a `[name.…]` table.
    top_only: bool,
    /// A retention rule: with none set anywhere, `prune` refuses to remove anything.
    retention: bool,
    default: Value,
    /// Reads the value of an entry, or says what the key expects.
    read: fn(&Reading) -> Result<Value, BadSettings>,
    /// Puts a value read (or the default) in force.
    apply: fn(&mut Effective, &Value),
    /// The value in force, as TOML, for `settings`.
    show: fn(&Effective) -> String,
}

/// Most periods each `keep_*` rule counts, a century of each, and the unit's name.
const PERIOD_LIMITS: [(u32, &str); 4] = [
    (36_525, "days"),
    (5_218, "weeks"),
    (1_200, "months"),
    (100, "years"),
];

/// Most zstd worker threads: beyond this the memory, not the cores, is the limit.
const MAX_THREADS: u32 = 64;

/// A period rule's count, `keep_daily` to `keep_yearly` (`period` 0 to 3).
fn period(reading: &Reading, period: usize) -> Result<Value, BadSettings> {
    let (most, unit) = PERIOD_LIMITS[period];
    reading
        .number(
            0..=most,
            &format!("a whole number from 0 to {most} (a century of {unit})"),
        )
        .map(Value::Count)
}

fn switch(reading: &Reading) -> Result<Value, BadSettings> {
    reading.boolean().map(Value::Switch)
}

fn hook(reading: &Reading) -> Result<Value, BadSettings> {
    reading.text().map(Value::Text)
}

/// The value of a `Count` key, a `Switch` key, and so on, for `apply`: [`Key::read`] made it.
fn count(value: &Value) -> u32 {
    match value {
        Value::Count(count) => *count,
        _ => 0,
    }
}

fn on(value: &Value) -> bool {
    matches!(value, Value::Switch(true))
}

fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::Texts(texts) => texts.clone(),
        _ => Vec::new(),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(text) => Some(text.clone()),
        _ => None,
    }
}

fn show_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| crate::log::quoted(item)).collect();
    format!("[{}]", quoted.join(", "))
}

fn show_text(value: Option<&str>) -> String {
    crate::log::quoted(value.unwrap_or_default())
}

/// How many keys there are.
const KEY_COUNT: usize = 39;

/// Every key, in the order `settings` shows them.
static KEYS: [Key; KEY_COUNT] = [
    Key {
        name: "keep",
        doc: "archives kept per name",
        top_only: false,
        retention: true,
        default: Value::Keep(Keep::ONE),
        read: |reading| {
            let count = reading.number(
                1..=Keep::MAX,
                &format!("a whole number from 1 to {}", Keep::MAX),
            )?;
            Ok(Value::Keep(Keep::new(count).unwrap_or(Keep::ONE)))
        },
        apply: |effective, value| {
            if let Value::Keep(keep) = value {
                effective.keep = *keep;
            }
        },
        show: |effective| effective.keep.to_string(),
    },
    Key {
        name: "keep_daily",
        doc: "the newest archive of each of the last D days",
        top_only: false,
        retention: true,
        default: Value::Count(0),
        read: |reading| period(reading, 0),
        apply: |effective, value| effective.periods[0] = count(value),
        show: |effective| effective.periods[0].to_string(),
    },
    Key {
        name: "keep_weekly",
        doc: "W ISO weeks",
        top_only: false,
        retention: true,
        default: Value::Count(0),
        read: |reading| period(reading, 1),
        apply: |effective, value| effective.periods[1] = count(value),
        show: |effective| effective.periods[1].to_string(),
    },
    Key {
        name: "keep_monthly",
        doc: "M months",
        top_only: false,
        retention: true,
        default: Value::Count(0),
        read: |reading| period(reading, 2),
        apply: |effective, value| effective.periods[2] = count(value),
        show: |effective| effective.periods[2].to_string(),
    },
    Key {
        name: "keep_yearly",
        doc: "Y years",
        top_only: false,
        retention: true,
        default: Value::Count(0),
        read: |reading| period(reading, 3),
        apply: |effective, value| effective.periods[3] = count(value),
        show: |effective| effective.periods[3].to_string(),
    },
    Key {
        name: "allow_empty",
        doc: "let an empty folder replace an archive that holds entries",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.allow_empty = on(value),
        show: |effective| effective.allow_empty.to_string(),
    },
    Key {
        name: "exclude",
        doc: "GNU tar 1.34 `--exclude` patterns",
        top_only: false,
        retention: false,
        default: Value::Texts(Vec::new()),
        read: |reading| reading.texts().map(Value::Texts),
        apply: |effective, value| effective.exclude = texts(value),
        show: |effective| show_list(&effective.exclude),
    },
    Key {
        name: "exclude_caches",
        doc: "a directory holding a `CACHEDIR.TAG`",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.exclude_caches = on(value),
        show: |effective| effective.exclude_caches.to_string(),
    },
    Key {
        name: "exclude_if_present",
        doc: "a directory holding one of these names is left out entirely",
        top_only: false,
        retention: false,
        default: Value::Texts(Vec::new()),
        read: |reading| {
            let names = reading.texts()?;
            if names.iter().any(|name| name.contains('/')) {
                return Err(reading.wrong("names without '/'"));
            }
            Ok(Value::Texts(names))
        },
        apply: |effective, value| effective.exclude_if_present = texts(value),
        show: |effective| show_list(&effective.exclude_if_present),
    },
    Key {
        name: "one_file_system",
        doc: "directories on another device than the folder are stored empty",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.one_file_system = on(value),
        show: |effective| effective.one_file_system.to_string(),
    },
    Key {
        name: "incremental",
        doc: "level-1 archives of what changed since the last full (GNU `--listed-incremental`)",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.incremental = on(value),
        show: |effective| effective.incremental.to_string(),
    },
    Key {
        name: "full_every",
        doc: "days from one full archive to the next, with `incremental`",
        top_only: false,
        retention: false,
        default: Value::Count(7),
        read: |reading| {
            reading
                .number(1..=366, "a whole number of days from 1 to 366")
                .map(Value::Count)
        },
        apply: |effective, value| effective.full_every_days = count(value),
        show: |effective| effective.full_every_days.to_string(),
    },
    Key {
        name: "days",
        doc: "weekdays the schedules run on",
        top_only: false,
        retention: false,
        default: Value::Weekdays(0),
        read: |reading| {
            let spec = match &reading.0.value {
                parse::Value::Text(text) => text.clone(),
                parse::Value::Array(_) => reading.texts()?.join(","),
                _ => return Err(reading.wrong("weekday names: \"mon-fri\" or [\"mon\", \"thu\"]")),
            };
            Days::parse_weekdays(&spec)
                .map(Value::Weekdays)
                .map_err(|why| reading.problem(&why))
        },
        apply: |effective, value| {
            if let Value::Weekdays(bits) = value {
                effective.days.weekdays = *bits;
            }
        },
        show: |effective| {
            let names = Days::weekday_names(effective.days.weekdays);
            let quoted: Vec<String> = names
                .split(',')
                .filter(|name| !name.is_empty())
                .map(crate::log::quoted)
                .collect();
            format!("[{}]", quoted.join(", "))
        },
    },
    Key {
        name: "monthdays",
        doc: "days of the month the schedules run on",
        top_only: false,
        retention: false,
        default: Value::Monthdays(0),
        read: |reading| {
            let expected = "a list of days of the month, 1 to 31";
            let parse::Value::Array(items) = &reading.0.value else {
                return Err(reading.wrong(expected));
            };
            let days: Vec<i64> = items
                .iter()
                .map(|item| match item {
                    parse::Value::Integer(day) => Ok(*day),
                    _ => Err(reading.wrong(expected)),
                })
                .collect::<Result<_, _>>()?;
            Days::monthdays_of(&days)
                .map(Value::Monthdays)
                .map_err(|why| reading.problem(&why))
        },
        apply: |effective, value| {
            if let Value::Monthdays(bits) = value {
                effective.days.monthdays = *bits;
            }
        },
        show: |effective| {
            let days: Vec<String> = (1..=31)
                .filter(|day| effective.days.monthdays & (1 << day) != 0)
                .map(|day: u32| day.to_string())
                .collect();
            format!("[{}]", days.join(", "))
        },
    },
    Key {
        name: "splay",
        doc: "seconds of a per-host offset added to each start",
        top_only: false,
        retention: false,
        default: Value::Count(0),
        read: |reading| {
            reading
                .number(
                    0..=MAX_SPLAY_SECONDS,
                    &format!("a whole number of seconds from 0 to {MAX_SPLAY_SECONDS}"),
                )
                .map(Value::Count)
        },
        apply: |effective, value| effective.splay_seconds = count(value),
        show: |effective| effective.splay_seconds.to_string(),
    },
    Key {
        name: "nice",
        doc: "the CPU priority of the jobs and their hooks",
        top_only: false,
        retention: false,
        default: Value::Count(0),
        read: |reading| {
            reading
                .number(0..=19, "a whole number from 0 (as now) to 19 (the lowest)")
                .map(Value::Count)
        },
        apply: |effective, value| effective.nice = count(value),
        show: |effective| effective.nice.to_string(),
    },
    Key {
        name: "io_class",
        doc: "the I/O scheduling class of the jobs and their hooks",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| match reading.text()?.as_str() {
            class @ ("idle" | "best-effort") => Ok(Value::Text(class.to_owned())),
            _ => Err(reading.wrong("\"idle\" or \"best-effort\"")),
        },
        apply: |effective, value| effective.io_class = text(value),
        show: |effective| show_text(effective.io_class.as_deref()),
    },
    Key {
        name: "io_level",
        doc: "the level within `io_class = \"best-effort\"`",
        top_only: false,
        retention: false,
        default: Value::Count(4),
        read: |reading| {
            reading
                .number(
                    0..=7,
                    "a whole number from 0 (the highest) to 7 (the lowest)",
                )
                .map(Value::Count)
        },
        apply: |effective, value| effective.io_level = count(value),
        show: |effective| effective.io_level.to_string(),
    },
    Key {
        name: "compress",
        doc: "`\"none\"`, `\"gzip\"` or `\"zstd\"`",
        top_only: false,
        retention: false,
        default: Value::Form(Compression::None),
        read: |reading| {
            let expected = "\"none\", \"gzip\" or \"zstd\"";
            match &reading.0.value {
                parse::Value::Text(text) => Compression::from_setting(text)
                    .map(Value::Form)
                    .ok_or_else(|| reading.wrong(expected)),
                _ => Err(reading.wrong(expected)),
            }
        },
        apply: |effective, value| {
            if let Value::Form(form) = value {
                effective.compression = *form;
            }
        },
        show: |effective| crate::log::quoted(effective.compression.setting()),
    },
    Key {
        name: "level",
        doc: "1 to 9 for gzip, 1 to 19 for zstd",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| {
            let level = reading.number(1..=19, "a whole number from 1 to 19")?;
            Ok(Value::Level(level, reading.0.line))
        },
        apply: |effective, value| {
            effective.level = match value {
                Value::Level(level, _) => Some(*level),
                _ => None,
            }
        },
        show: |effective| effective.encoding().level.to_string(),
    },
    Key {
        name: "threads",
        doc: "compression worker threads",
        top_only: false,
        retention: false,
        default: Value::Count(0),
        read: |reading| {
            reading
                .number(
                    0..=MAX_THREADS,
                    &format!("a whole number from 0 (one per core) to {MAX_THREADS}"),
                )
                .map(Value::Count)
        },
        apply: |effective, value| effective.threads = count(value),
        show: |effective| effective.threads.to_string(),
    },
    Key {
        name: "catch_up",
        doc: "run a schedule missed while the service was down once, at start",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.catch_up = on(value),
        show: |effective| effective.catch_up.to_string(),
    },
    Key {
        name: "before",
        doc: "hooks: shell command lines around each backup",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: hook,
        apply: |effective, value| effective.hooks[0] = text(value),
        show: |effective| show_text(effective.hooks[0].as_deref()),
    },
    Key {
        name: "on_success",
        doc: "hooks: shell command lines around each backup",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: hook,
        apply: |effective, value| effective.hooks[1] = text(value),
        show: |effective| show_text(effective.hooks[1].as_deref()),
    },
    Key {
        name: "on_failure",
        doc: "hooks: shell command lines around each backup",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: hook,
        apply: |effective, value| effective.hooks[2] = text(value),
        show: |effective| show_text(effective.hooks[2].as_deref()),
    },
    Key {
        name: "hook_user",
        doc: "the user the hooks run as (uid, gid, groups and `HOME`)",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| {
            let user = reading.text()?;
            if crate::sys::process::RunAs::lookup(&user).is_none() {
                return Err(
                    reading.problem(&format!("no such user: {}", crate::log::quoted(&user)))
                );
            }
            Ok(Value::Text(user))
        },
        apply: |effective, value| effective.hook_user = text(value),
        show: |effective| show_text(effective.hook_user.as_deref()),
    },
    Key {
        name: "hook_timeout",
        doc: "seconds a hook may run before its process group is stopped",
        top_only: false,
        retention: false,
        default: Value::Count(600),
        read: |reading| {
            reading
                .number(1..=86_400, "a whole number of seconds from 1 to 86400")
                .map(Value::Count)
        },
        apply: |effective, value| effective.hook_timeout_seconds = count(value),
        show: |effective| effective.hook_timeout_seconds.to_string(),
    },
    Key {
        name: "metrics",
        doc: "the file the service keeps Prometheus metrics in",
        top_only: true,
        retention: false,
        default: Value::Unset,
        read: |reading| reading.text().map(Value::Text),
        apply: |effective, value| effective.metrics = text(value),
        show: |effective| show_text(effective.metrics.as_deref()),
    },
    Key {
        name: "read_threads",
        doc: "threads reading ahead of the archive writer",
        top_only: false,
        retention: false,
        default: Value::Count(0),
        read: |reading| {
            reading
                .number(0..=16, "a whole number from 0 (by the disk) to 16")
                .map(Value::Count)
        },
        apply: |effective, value| effective.read_threads = count(value),
        show: |effective| effective.read_threads.to_string(),
    },
    Key {
        name: "encrypt_to",
        doc: "age X25519 recipients (`age1…`) the archives are encrypted to",
        top_only: false,
        retention: false,
        default: Value::Texts(Vec::new()),
        read: |reading| {
            let recipients = reading.texts()?;
            match recipients
                .iter()
                .find(|text| !crate::crypt::is_recipient(text))
            {
                Some(bad) => Err(reading.problem(&format!(
                    "not an age X25519 recipient: {}",
                    crate::log::quoted(bad)
                ))),
                None => Ok(Value::Texts(recipients)),
            }
        },
        apply: |effective, value| effective.encrypt_to = texts(value),
        show: |effective| show_list(&effective.encrypt_to),
    },
    Key {
        name: "encrypt_to_file",
        doc: "a file of age recipients, one a line, as `age -R` reads it",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| {
            Ok(Value::RecipientsFile {
                path: reading.text()?,
                line: reading.0.line,
                recipients: Vec::new(),
            })
        },
        apply: |effective, value| {
            effective.encrypt_to_file = match value {
                Value::RecipientsFile {
                    path, recipients, ..
                } => Some((path.clone(), recipients.clone())),
                _ => None,
            }
        },
        show: |effective| {
            show_text(
                effective
                    .encrypt_to_file
                    .as_ref()
                    .map(|(path, _)| path.as_str()),
            )
        },
    },
    Key {
        name: "checksum",
        doc: "record each archive's SHA-256 in the catalog as it is written",
        top_only: false,
        retention: false,
        default: Value::Switch(false),
        read: switch,
        apply: |effective, value| effective.checksum = on(value),
        show: |effective| effective.checksum.to_string(),
    },
    Key {
        name: "offsite",
        doc: "`REMOTE:PATH`: where rclone copies each new archive",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| {
            let remote = reading.text()?;
            if remote.starts_with('-') || !remote.contains(':') {
                return Err(reading.wrong("an rclone remote and path, REMOTE:PATH"));
            }
            Ok(Value::Text(remote))
        },
        apply: |effective, value| effective.offsite.remote = text(value),
        show: |effective| show_text(effective.offsite.remote.as_deref()),
    },
    Key {
        name: "offsite_prefix",
        doc: "the folder under `PATH` for this host's copies",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| {
            let prefix = reading.text()?;
            let parts: Vec<&str> = prefix.split('/').collect();
            if prefix.starts_with(['/', '-'])
                || parts
                    .iter()
                    .any(|part| part.is_empty() || *part == "." || *part == "..")
            {
                return Err(reading.wrong("a relative folder name without empty, . or .. parts"));
            }
            Ok(Value::Text(prefix))
        },
        apply: |effective, value| effective.offsite.prefix = text(value),
        show: |effective| show_text(effective.offsite.prefix.as_deref()),
    },
    Key {
        name: "offsite_timeout",
        doc: "seconds one rclone run may take before it is stopped",
        top_only: false,
        retention: false,
        default: Value::Count(3600),
        read: |reading| {
            reading
                .number(1..=604_800, "a whole number of seconds from 1 to 604800")
                .map(Value::Count)
        },
        apply: |effective, value| effective.offsite.timeout_seconds = count(value),
        show: |effective| effective.offsite.timeout_seconds.to_string(),
    },
    Key {
        name: "offsite_bwlimit",
        doc: "rclone's `--bwlimit` for the copies",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| reading.text().map(Value::Text),
        apply: |effective, value| effective.offsite.bwlimit = text(value),
        show: |effective| show_text(effective.offsite.bwlimit.as_deref()),
    },
    Key {
        name: "offsite_retries",
        doc: "copies retried after a failure, from 1 minute later, doubling",
        top_only: false,
        retention: false,
        default: Value::Count(5),
        read: |reading| {
            reading
                .number(0..=20, "a whole number from 0 to 20")
                .map(Value::Count)
        },
        apply: |effective, value| effective.offsite.retries = count(value),
        show: |effective| effective.offsite.retries.to_string(),
    },
    Key {
        name: "offsite_prune",
        doc: "delete the remote copy of each generation retention removes",
        top_only: false,
        retention: false,
        default: Value::Switch(true),
        read: switch,
        apply: |effective, value| effective.offsite.prune = on(value),
        show: |effective| effective.offsite.prune.to_string(),
    },
    Key {
        name: "offsite_config",
        doc: "the rclone config file to use (`--config`)",
        top_only: false,
        retention: false,
        default: Value::Unset,
        read: |reading| reading.text().map(Value::Text),
        apply: |effective, value| effective.offsite.config = text(value),
        show: |effective| show_text(effective.offsite.config.as_deref()),
    },
];

/// The place of key `name` in [`KEYS`].
fn key_index(name: &str) -> Option<usize> {
    KEYS.iter().position(|key| key.name == name)
}

/// One entry of the file, checked: the key (its place in [`KEYS`]) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    key: usize,
    value: Value,
}

/// The settings one schedule runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub keep: Keep,
    /// keep_daily, keep_weekly, keep_monthly, keep_yearly.
    pub periods: [u32; 4],
    /// Let an empty folder replace an archive that holds members.
    pub allow_empty: bool,
    pub exclude: Vec<String>,
    pub exclude_caches: bool,
    pub exclude_if_present: Vec<String>,
    pub one_file_system: bool,
    /// Level-1 archives against the newest full, a full every `full_every_days`.
    pub incremental: bool,
    pub full_every_days: u32,
    /// The days the schedules run on.
    pub days: Days,
    pub splay_seconds: u32,
    /// Priorities of the jobs: CPU (`nice`), and I/O (`idle`, `best-effort` with a level).
    pub nice: u32,
    pub io_class: Option<String>,
    pub io_level: u32,
    pub compression: Compression,
    /// Hash each archive as it is written, for the catalog.
    pub checksum: bool,
    pub encrypt_to: Vec<String>,
    /// Where and how each new archive is copied offsite.
    pub offsite: OffsiteSettings,
    /// The recipients file, and the recipients [`load`] read from it.
    pub encrypt_to_file: Option<(String, Vec<String>)>,
    /// `None`: the form's default level.
    level: Option<u32>,
    pub threads: u32,
    /// Run a schedule missed during downtime once, at start-up.
    pub catch_up: bool,
    /// Shell command lines of the `before`, `on_success` and `on_failure` hooks.
    pub hooks: [Option<String>; 3],
    pub hook_timeout_seconds: u32,
    /// The user the hooks run as; the service's own when unset.
    pub hook_user: Option<String>,
    /// Where the service writes its metrics file (top level only).
    pub metrics: Option<String>,
    /// Threads reading ahead of the archive writer; 0 picks by the folder's disk.
    pub read_threads: u32,
    /// Where each key's value came from, by its place in [`KEYS`].
    sources: [Source; KEY_COUNT],
}

impl Default for Effective {
    /// Every key at its default, from [`KEYS`].
    fn default() -> Effective {
        let mut effective = Effective {
            keep: Keep::ONE,
            periods: [0; 4],
            allow_empty: false,
            exclude: Vec::new(),
            exclude_caches: false,
            exclude_if_present: Vec::new(),
            one_file_system: false,
            incremental: false,
            full_every_days: 7,
            days: Days::default(),
            splay_seconds: 0,
            nice: 0,
            io_class: None,
            io_level: 4,
            compression: Compression::None,
            checksum: false,
            encrypt_to: Vec::new(),
            offsite: OffsiteSettings::default(),
            encrypt_to_file: None,
            level: None,
            threads: 0,
            catch_up: false,
            hooks: [None, None, None],
            hook_timeout_seconds: 0,
            hook_user: None,
            metrics: None,
            read_threads: 0,
            sources: [Source::Default; KEY_COUNT],
        };
        for key in &KEYS {
            (key.apply)(&mut effective, &key.default);
        }
        effective
    }
}

impl Effective {
    /// Whether `keep` or a `keep_*` rule was set anywhere (file, table or command line).
    pub fn sets_retention(&self) -> bool {
        KEYS.iter()
            .zip(self.sources)
            .any(|(key, source)| key.retention && source != Source::Default)
    }

    /// How the archiver makes the archive: its form, what is left out, how files are read.
    pub fn archive_options(&self) -> crate::archive::Options {
        let bytes = |items: &[String]| items.iter().map(|item| item.as_bytes().to_vec()).collect();
        crate::archive::Options {
            encoding: self.encoding(),
            rules: crate::archive::exclude::Rules {
                patterns: self
                    .exclude
                    .iter()
                    .map(|pattern| crate::archive::exclude::Exclude::new(pattern.as_bytes()))
                    .collect(),
                caches: self.exclude_caches,
                if_present: bytes(&self.exclude_if_present),
                one_file_system: self.one_file_system,
            },
            read_threads: self.read_threads,
            // An encrypted archive is always hashed: a verify without the key needs it.
            checksum: self.checksum || self.form().encrypted,
            encryption: crate::crypt::Recipients::of(&self.recipients()),
        }
    }

    /// When `schedule` starts under these settings: its days, and this host's offset.
    pub fn when(&self, schedule: &crate::plan::Schedule) -> crate::plan::calendar::When {
        self.timing().when(schedule, crate::host::identity())
    }

    /// The days and splay of the starts.
    pub fn timing(&self) -> crate::plan::calendar::Timing {
        crate::plan::calendar::Timing {
            days: self.days,
            splay_seconds: self.splay_seconds,
        }
    }

    /// The settings that decide which entries of the folder an archive holds, as one text:
    /// a level-1 made against a full written under others would hold the wrong files.
    pub fn shape(&self) -> String {
        const SHAPING: [&str; 4] = [
            "exclude",
            "exclude_caches",
            "exclude_if_present",
            "one_file_system",
        ];
        KEYS.iter()
            .filter(|key| SHAPING.contains(&key.name))
            .map(|key| format!("{}={}", key.name, (key.show)(self)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every recipient the archives are encrypted to: `encrypt_to` and the file's.
    pub fn recipients(&self) -> Vec<String> {
        let from_file = self.encrypt_to_file.iter().flat_map(|(_, keys)| keys);
        self.encrypt_to.iter().chain(from_file).cloned().collect()
    }

    /// The form the archive is written in.
    pub fn form(&self) -> Form {
        Form {
            compression: self.compression,
            encrypted: !self.encrypt_to.is_empty() || self.encrypt_to_file.is_some(),
        }
    }

    /// How the archive is compressed.
    fn encoding(&self) -> Encoding {
        Encoding {
            compression: self.compression,
            level: self
                .level
                .unwrap_or_else(|| self.compression.default_level()),
            threads: self.threads,
        }
    }

    /// The retention rules these settings make.
    pub fn policy(&self) -> crate::store::retention::Policy {
        let [daily, weekly, monthly, yearly] = self.periods;
        crate::store::retention::Policy {
            last: self.keep.count(),
            daily,
            weekly,
            monthly,
            yearly,
        }
    }

    fn apply(&mut self, setting: &Setting, source: Source) {
        (KEYS[setting.key].apply)(self, &setting.value);
        self.sources[setting.key] = source;
    }

    /// `key = value  # source` lines, every key, as `backup_manager settings` prints them.
    pub fn describe(&self) -> String {
        KEYS.iter()
            .zip(self.sources)
            .map(|(key, source)| format!("{} = {}  # {source}\n", key.name, (key.show)(self)))
            .collect()
    }
}

/// The string a TOML basic-string literal `literal` holds, for tests elsewhere in the crate.
#[cfg(test)]
pub fn parse_value_for_tests(literal: &str) -> String {
    match parse::parse(&format!("before = {literal}\n")).map(|document| document.top) {
        Ok(top) => match &top[0].value {
            parse::Value::Text(text) => text.clone(),
            other => panic!("{other:?}"),
        },
        Err(err) => panic!("{err}"),
    }
}

/// The `offsite_*` keys in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsiteSettings {
    /// `REMOTE:PATH`; no offsite copy when unset.
    pub remote: Option<String>,
    pub prefix: Option<String>,
    pub timeout_seconds: u32,
    pub bwlimit: Option<String>,
    pub retries: u32,
    pub prune: bool,
    pub config: Option<String>,
}

/// A settings file that could not be used. `Display` is the log text after `Error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSettings(String);

impl fmt::Display for BadSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A key or value quoted from the file may hold control characters; none reach a
        // terminal raw.
        let mut shown = Vec::new();
        crate::log::escape_controls_into(&mut shown, self.0.as_bytes());
        write!(
            f,
            "bad settings in {FILE}: {}",
            String::from_utf8_lossy(&shown)
        )
    }
}

impl std::error::Error for BadSettings {}

/// A command refused for bad settings fails with the settings' own log line.
impl From<BadSettings> for crate::error::Error {
    fn from(bad: BadSettings) -> crate::error::Error {
        crate::error::Error::failed(bad.to_string())
    }
}

/// A checked settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    top: Vec<Setting>,
    tables: Vec<(String, Vec<Setting>)>,
}

impl Settings {
    /// Checks the whole text: every key known, every value of its kind.
    pub fn parse(text: &str) -> Result<Settings, BadSettings> {
        let document = parse::parse(text).map_err(|err| BadSettings(err.to_string()))?;
        let check = |entries: &[Entry], in_table: bool| {
            entries
                .iter()
                .map(|entry| setting(entry, in_table))
                .collect::<Result<Vec<_>, _>>()
        };
        let top = check(&document.top, false)?;
        let tables = document
            .tables
            .iter()
            .map(|table| Ok((table.name.clone(), check(&table.entries, true)?)))
            .collect::<Result<_, BadSettings>>()?;
        let settings = Settings { top, tables };
        settings.check_levels()?;
        Ok(settings)
    }

    /// Reads each `encrypt_to_file` (relative to the base directory): one that can't be read,
    /// holds no recipient, or has a line that is not one is an error naming both lines.
    fn read_recipient_files(&mut self, layout: &Layout) -> Result<(), BadSettings> {
        let all = self.top.iter_mut().chain(
            self.tables
                .iter_mut()
                .flat_map(|(_, settings)| settings.iter_mut()),
        );
        for setting in all {
            if let Value::RecipientsFile {
                path,
                line,
                recipients,
            } = &mut setting.value
            {
                let problem = |why: String| {
                    BadSettings(format!(
                        "line {line}: encrypt_to_file: {}: {why}",
                        crate::log::show_bytes(path.as_bytes())
                    ))
                };
                let text = crate::crypt::read_key_file(&layout.base().join(&*path), false)
                    .map_err(|err| problem(err.to_string()))?;
                *recipients = crate::crypt::recipients_in(&text).map_err(problem)?;
            }
        }
        Ok(())
    }

    /// Each `level` against the form it applies to, at the top and in every name table.
    fn check_levels(&self) -> Result<(), BadSettings> {
        let scopes = std::iter::once(&[][..])
            .chain(self.tables.iter().map(|(_, settings)| settings.as_slice()));
        for scope in scopes {
            let mut compression = Compression::None;
            let mut level = None;
            for setting in self.top.iter().chain(scope) {
                match setting.value {
                    Value::Form(form) => compression = form,
                    Value::Level(value, line) => level = Some((value, line)),
                    _ => {}
                }
            }
            if let Some((level, line)) = level
                && compression != Compression::None
                && !compression.levels().contains(&level)
            {
                let levels = compression.levels();
                return Err(BadSettings(format!(
                    "line {line}: level: expected {} to {} for {}",
                    levels.start(),
                    levels.end(),
                    compression.setting()
                )));
            }
        }
        Ok(())
    }

    /// A warning for each `[name.…]` table that no name in `names` (the plan's archive names)
    /// matches: a typo in a table name would otherwise leave its settings silently unused.
    pub fn unused_tables<'a>(&self, names: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
        let names: std::collections::HashSet<&[u8]> = names.into_iter().collect();
        self.tables
            .iter()
            .filter(|(table, _)| !names.contains(table.as_bytes()))
            .map(|(table, _)| {
                let table = crate::log::show_bytes(table.as_bytes());
                format!(
                    "Warning: {FILE} has a [name.{table}] table, but no plan line writes archive {table}; its settings apply to nothing"
                )
            })
            .collect()
    }

    /// Whether `key` is set anywhere in the file, at the top or in a name table.
    pub fn sets(&self, key: &str) -> bool {
        let Some(index) = key_index(key) else {
            return false;
        };
        self.top
            .iter()
            .chain(self.tables.iter().flat_map(|(_, settings)| settings))
            .any(|setting| setting.key == index)
    }

    /// The `metrics` file of the top level, if set.
    pub fn metrics(&self) -> Option<String> {
        self.for_name(b"", None).metrics
    }

    /// What the schedules writing archive `name` run with; `keep` from the command line,
    /// when given, wins over the file.
    pub fn for_name(&self, name: &[u8], keep: Option<Keep>) -> Effective {
        let mut effective = Effective::default();
        for setting in &self.top {
            effective.apply(setting, Source::File);
        }
        let table = self
            .tables
            .iter()
            .find(|(table, _)| table.as_bytes() == name);
        for setting in table
            .map(|(_, settings)| settings.as_slice())
            .unwrap_or_default()
        {
            effective.apply(setting, Source::NameTable);
        }
        if let Some(keep) = keep {
            let key = key_index("keep").unwrap_or(0);
            let value = Value::Keep(keep);
            effective.apply(&Setting { key, value }, Source::CommandLine);
        }
        effective
    }
}

/// An entry's value read as the kind its key takes, or the error that names the line, the key
/// and what was expected.
struct Reading<'a>(&'a Entry);

impl Reading<'_> {
    fn wrong(&self, expected: &str) -> BadSettings {
        BadSettings(format!(
            "line {}: {}: expected {expected}",
            self.0.line, self.0.key
        ))
    }

    /// The error that names the line and the key, and says what is wrong.
    fn problem(&self, problem: &str) -> BadSettings {
        BadSettings(format!("line {}: {}: {problem}", self.0.line, self.0.key))
    }

    fn boolean(&self) -> Result<bool, BadSettings> {
        match self.0.value {
            parse::Value::Boolean(value) => Ok(value),
            _ => Err(self.wrong("true or false")),
        }
    }

    fn text(&self) -> Result<String, BadSettings> {
        match &self.0.value {
            parse::Value::Text(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err(self.wrong("a non-empty string")),
        }
    }

    fn texts(&self) -> Result<Vec<String>, BadSettings> {
        let expected = "a list of non-empty strings";
        match &self.0.value {
            parse::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    parse::Value::Text(text) if !text.is_empty() => Ok(text.clone()),
                    _ => Err(self.wrong(expected)),
                })
                .collect(),
            _ => Err(self.wrong(expected)),
        }
    }

    /// A whole number within `range`.
    fn number(
        &self,
        range: std::ops::RangeInclusive<u32>,
        expected: &str,
    ) -> Result<u32, BadSettings> {
        match self.0.value {
            parse::Value::Integer(n) => u32::try_from(n)
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| self.wrong(expected)),
            _ => Err(self.wrong(expected)),
        }
    }
}

/// One entry checked against its key in [`KEYS`]; `in_table` for a `[name.…]` table's.
fn setting(entry: &Entry, in_table: bool) -> Result<Setting, BadSettings> {
    let Some(index) = key_index(&entry.key) else {
        return Err(BadSettings(format!(
            "line {}: {}: unknown key",
            entry.line, entry.key
        )));
    };
    let key = &KEYS[index];
    if in_table && key.top_only {
        return Err(BadSettings(format!(
            "line {}: {}: only at the top of the file, not in a [name.…] table",
            entry.line, key.name
        )));
    }
    Ok(Setting {
        key: index,
        value: (key.read)(&Reading(entry))?,
    })
}

/// Reads `backupbox.toml` of the base directory; no file means no settings. Like the plan,
/// it may be a symlink to the real file; a FIFO or device in its place is refused, never
/// waited on, and a symlink whose target is gone is an error, not "no settings": a moved
/// file must not silently drop retention, compression and hooks.
pub fn load(layout: &Layout) -> Result<Settings, BadSettings> {
    let path = layout.settings_file();
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .and_then(|file| crate::sys::open::read_capped(&file, MAX_BYTES));
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return match std::fs::read_link(&path) {
                Ok(target) => Err(BadSettings(format!(
                    "can't read it (a symlink to {}, which does not exist)",
                    crate::log::show_bytes(std::os::unix::ffi::OsStrExt::as_bytes(
                        target.as_os_str()
                    ))
                ))),
                Err(_) => Ok(Settings::default()),
            };
        }
        Err(err) => return Err(BadSettings(format!("can't read it ({err})"))),
    };
    let text = String::from_utf8(bytes).map_err(|_| BadSettings("not UTF-8".to_owned()))?;
    let mut settings = Settings::parse(&text)?;
    settings.read_recipient_files(layout)?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tables_override_the_top_and_the_command_line_overrides_both() {
        let settings = Settings::parse(
            "keep = 3\nexclude = [\"*.tmp\"]\n[name.docs]\nkeep = 7\nallow_empty = true\n",
        )
        .unwrap();
        let docs = settings.for_name(b"docs", None);
        assert_eq!(docs.keep, Keep::new(7).unwrap());
        assert!(docs.allow_empty);
        assert_eq!(docs.exclude, ["*.tmp"]);
        let other = settings.for_name(b"other", None);
        assert_eq!(other.keep, Keep::new(3).unwrap());
        assert!(!other.allow_empty);
        let forced = settings.for_name(b"docs", Keep::new(2));
        assert_eq!(forced.keep, Keep::new(2).unwrap());
        assert_eq!(
            forced.describe(),
            "keep = 2  # command line\nkeep_daily = 0  # default\nkeep_weekly = 0  # default\n\
             keep_monthly = 0  # default\nkeep_yearly = 0  # default\nallow_empty = true  # name table\n\
             exclude = [\"*.tmp\"]  # file\nexclude_caches = false  # default\n\
             exclude_if_present = []  # default\none_file_system = false  # default\n\
             incremental = false  # default\nfull_every = 7  # default\n\
             days = []  # default\nmonthdays = []  # default\nsplay = 0  # default\n\
             nice = 0  # default\nio_class = \"\"  # default\nio_level = 4  # default\n\
             compress = \"none\"  # default\nlevel = 0  # default\nthreads = 0  # default\n\
             catch_up = false  # default\nbefore = \"\"  # default\non_success = \"\"  # default\n\
             on_failure = \"\"  # default\nhook_user = \"\"  # default\nhook_timeout = 600  # default\nmetrics = \"\"  # default\n\
             read_threads = 0  # default\nencrypt_to = []  # default\nencrypt_to_file = \"\"  # default\nchecksum = false  # default\noffsite = \"\"  # default\noffsite_prefix = \"\"  # default\noffsite_timeout = 3600  # default\noffsite_bwlimit = \"\"  # default\noffsite_retries = 5  # default\noffsite_prune = true  # default\noffsite_config = \"\"  # default\n"
        );
        assert_eq!(
            Settings::default().for_name(b"x", None),
            Effective::default()
        );
    }

    #[test]
    fn settings_prints_values_that_read_back_as_the_same_toml() {
        let hook = "printf 'a\\tb\u{8}\u{1b}[2J\u{7f}\\\"' \u{e9}";
        let settings = Settings {
            top: vec![Setting {
                key: key_index("before").unwrap(),
                value: Value::Text(hook.to_owned()),
            }],
            tables: Vec::new(),
        };
        let shown = settings.for_name(b"x", None).describe();
        let line = shown
            .lines()
            .find(|line| line.starts_with("before = "))
            .unwrap();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let toml = line.split("  # ").next().unwrap();
        let read = parse::parse(toml).unwrap();
        assert_eq!(read.top[0].value, parse::Value::Text(hook.to_owned()));
    }

    #[test]
    fn every_key_has_its_row_in_the_settings_reference() {
        let reference = include_str!("../../docs/settings.md");
        for key in &KEYS {
            let row = reference
                .lines()
                .find(|line| {
                    line.starts_with("| ")
                        && line
                            .split('|')
                            .nth(1)
                            .is_some_and(|names| names.contains(&format!("`{}`", key.name)))
                })
                .unwrap_or_else(|| panic!("{}: no row in docs/settings.md", key.name));
            assert!(row.contains(key.doc), "{}: {row}", key.name);
            // The default column says what `settings` shows for the default: the same text,
            // "none" for an empty string, or (level) the form's own default.
            let documented = row
                .split('|')
                .nth(2)
                .unwrap_or_default()
                .trim()
                .replace('`', "");
            let shown = (key.show)(&Effective::default());
            let agrees = documented == shown
                || (shown == "\"\"" && documented == "none")
                || (key.name == "level" && documented == "6 for gzip, 3 for zstd");
            assert!(
                agrees,
                "{}: documented {documented:?}, shown {shown:?}",
                key.name
            );
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let example = Settings::parse(include_str!("../../backupbox.toml.example")).unwrap();
        assert!(example.for_name(b"docs", None).allow_empty);
        assert_eq!(
            example.for_name(b"docs", None).encoding(),
            Encoding {
                compression: Compression::Gzip,
                level: 3,
                threads: 0
            }
        );
        assert_eq!(example.for_name(b"other", None).policy().monthly, 12);
    }

    #[test]
    fn bad_keys_and_values_name_the_line_and_the_key() {
        let error = |text: &str| Settings::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("\n\n\nkeep = 0\n"),
            "bad settings in backupbox.toml: line 4: keep: expected a whole number from 1 to 100000"
        );
        assert_eq!(
            error("kep = 2\n"),
            "bad settings in backupbox.toml: line 1: kep: unknown key"
        );
        assert_eq!(
            error("[name.a]\nexclude = \"*.tmp\"\n"),
            "bad settings in backupbox.toml: line 2: exclude: expected a list of non-empty strings"
        );
        assert_eq!(
            error("keep_daily = -1\n"),
            "bad settings in backupbox.toml: line 1: keep_daily: expected a whole number from 0 to 36525 (a century of days)"
        );
        assert_eq!(
            error("compress = \"xz\"\n"),
            "bad settings in backupbox.toml: line 1: compress: expected \"none\", \"gzip\" or \"zstd\""
        );
        assert_eq!(
            error("level = 12\n[name.a]\ncompress = \"gzip\"\n"),
            "bad settings in backupbox.toml: line 1: level: expected 1 to 9 for gzip"
        );
        assert_eq!(
            error("read_threads = 17\n"),
            "bad settings in backupbox.toml: line 1: read_threads: expected a whole number from 0 (by the disk) to 16"
        );
        assert_eq!(
            error("threads = 65\n"),
            "bad settings in backupbox.toml: line 1: threads: expected a whole number from 0 (one per core) to 64"
        );
        assert_eq!(
            error("allow_empty = 1\n"),
            "bad settings in backupbox.toml: line 1: allow_empty: expected true or false"
        );
    }
}
