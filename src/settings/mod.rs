//! `backupbox.toml`, the optional settings file in the base directory: defaults for every
//! schedule at the top, `[name.<archive name>]` tables for the schedules that write that
//! archive. Absent, everything behaves as the spec says. Checked whole when read: an unknown
//! key or a bad value is an error naming the file, the line and the key.

mod parse;

use crate::archive::compression::{Compression, Encoding};
use crate::job::Keep;
use crate::layout::Layout;
use parse::{Entry, Value};
use std::fmt;
use std::io;
use std::os::unix::fs::OpenOptionsExt;

/// The settings file's name, in the base directory.
pub const FILE: &str = "backupbox.toml";
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

/// One key's value, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    Keep(Keep),
    AllowEmpty(bool),
    Exclude(Vec<String>),
    ExcludeCaches(bool),
    ExcludeIfPresent(Vec<String>),
    OneFileSystem(bool),
    /// keep_daily, keep_weekly, keep_monthly, keep_yearly: index 0 to 3.
    Period(usize, u32),
    Compress(Compression),
    /// The level, and the line it is set on: whether it fits the form is known only once the
    /// top and the name table are merged.
    Level(u32, usize),
    Threads(u32),
    CatchUp(bool),
    /// A hook's command line: 0 before, 1 on_success, 2 on_failure.
    Hook(usize, String),
    HookTimeout(u32),
    Metrics(String),
    ReadThreads(u32),
}

/// The keys, in the order `settings` shows them.
const KEYS: [&str; 20] = [
    "keep",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "allow_empty",
    "exclude",
    "exclude_caches",
    "exclude_if_present",
    "one_file_system",
    "compress",
    "level",
    "threads",
    "catch_up",
    "before",
    "on_success",
    "on_failure",
    "hook_timeout",
    "metrics",
    "read_threads",
];

/// Index in [`KEYS`] of the first hook key.
const FIRST_HOOK: usize = 14;

/// Most periods each `keep_*` rule counts, a century of each, and the unit's name.
const PERIOD_LIMITS: [(u32, &str); 4] = [
    (36_525, "days"),
    (5_218, "weeks"),
    (1_200, "months"),
    (100, "years"),
];

/// Most zstd worker threads: beyond this the memory, not the cores, is the limit.
const MAX_THREADS: u32 = 64;

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
    pub compression: Compression,
    /// `None`: the form's default level.
    level: Option<u32>,
    pub threads: u32,
    /// Run a schedule missed during downtime once, at start-up.
    pub catch_up: bool,
    /// Shell command lines of the `before`, `on_success` and `on_failure` hooks.
    pub hooks: [Option<String>; 3],
    pub hook_timeout_seconds: u32,
    /// Where the service writes its metrics file (top level only).
    pub metrics: Option<String>,
    /// Threads reading ahead of the archive writer; 0 picks by the folder's disk.
    pub read_threads: u32,
    sources: [Source; KEYS.len()],
}

impl Default for Effective {
    fn default() -> Effective {
        Effective {
            keep: Keep::ONE,
            periods: [0; 4],
            allow_empty: false,
            exclude: Vec::new(),
            exclude_caches: false,
            exclude_if_present: Vec::new(),
            one_file_system: false,
            compression: Compression::None,
            level: None,
            threads: 0,
            catch_up: false,
            hooks: [None, None, None],
            hook_timeout_seconds: 600,
            metrics: None,
            read_threads: 0,
            sources: [Source::Default; KEYS.len()],
        }
    }
}

impl Effective {
    /// Whether `keep` or a `keep_*` rule was set anywhere (file, table or command line).
    pub fn sets_retention(&self) -> bool {
        self.sources[..5]
            .iter()
            .any(|source| *source != Source::Default)
    }

    /// How the archive is compressed.
    pub fn encoding(&self) -> Encoding {
        Encoding {
            compression: self.compression,
            level: self
                .level
                .unwrap_or_else(|| self.compression.default_level()),
            threads: self.threads,
        }
    }

    /// The retention rules these settings make.
    pub fn policy(&self) -> crate::job::retention::Policy {
        let [daily, weekly, monthly, yearly] = self.periods;
        crate::job::retention::Policy {
            last: self.keep.count(),
            daily,
            weekly,
            monthly,
            yearly,
        }
    }

    fn apply(&mut self, setting: &Setting, source: Source) {
        let index = match setting {
            Setting::Keep(keep) => {
                self.keep = *keep;
                0
            }
            Setting::Period(period, count) => {
                self.periods[*period] = *count;
                1 + period
            }
            Setting::AllowEmpty(allow) => {
                self.allow_empty = *allow;
                5
            }
            Setting::Exclude(patterns) => {
                self.exclude.clone_from(patterns);
                6
            }
            Setting::ExcludeCaches(on) => {
                self.exclude_caches = *on;
                7
            }
            Setting::ExcludeIfPresent(names) => {
                self.exclude_if_present.clone_from(names);
                8
            }
            Setting::OneFileSystem(on) => {
                self.one_file_system = *on;
                9
            }
            Setting::Compress(compression) => {
                self.compression = *compression;
                10
            }
            Setting::Level(level, _) => {
                self.level = Some(*level);
                11
            }
            Setting::Threads(threads) => {
                self.threads = *threads;
                12
            }
            Setting::CatchUp(on) => {
                self.catch_up = *on;
                13
            }
            Setting::Hook(hook, command) => {
                self.hooks[*hook] = Some(command.clone());
                FIRST_HOOK + hook
            }
            Setting::HookTimeout(seconds) => {
                self.hook_timeout_seconds = *seconds;
                17
            }
            Setting::Metrics(path) => {
                self.metrics = Some(path.clone());
                18
            }
            Setting::ReadThreads(readers) => {
                self.read_threads = *readers;
                19
            }
        };
        self.sources[index] = source;
    }

    /// `key = value  # source` lines, every key, as `backup_manager settings` prints them.
    pub fn describe(&self) -> String {
        let text = |value: Option<&str>| crate::log::quoted(value.unwrap_or_default());
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|item| crate::log::quoted(item)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let values = [
            self.keep.to_string(),
            self.periods[0].to_string(),
            self.periods[1].to_string(),
            self.periods[2].to_string(),
            self.periods[3].to_string(),
            self.allow_empty.to_string(),
            list(&self.exclude),
            self.exclude_caches.to_string(),
            list(&self.exclude_if_present),
            self.one_file_system.to_string(),
            crate::log::quoted(self.compression.setting()),
            self.encoding().level.to_string(),
            self.threads.to_string(),
            self.catch_up.to_string(),
            text(self.hooks[0].as_deref()),
            text(self.hooks[1].as_deref()),
            text(self.hooks[2].as_deref()),
            self.hook_timeout_seconds.to_string(),
            text(self.metrics.as_deref()),
            self.read_threads.to_string(),
        ];
        KEYS.iter()
            .zip(values)
            .zip(self.sources)
            .map(|((key, value), source)| format!("{key} = {value}  # {source}\n"))
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
        let check = |entries: &[Entry]| entries.iter().map(setting).collect::<Result<Vec<_>, _>>();
        let top = check(&document.top)?;
        // One metrics file serves the whole service: a name table cannot move it.
        let only_at_the_top = |entry: &Entry| match entry.key.as_str() {
            "metrics" => Err(BadSettings(format!(
                "line {}: metrics: only at the top of the file, not in a [name.…] table",
                entry.line
            ))),
            _ => Ok(()),
        };
        let tables = document
            .tables
            .iter()
            .map(|table| {
                table.entries.iter().try_for_each(only_at_the_top)?;
                Ok((table.name.clone(), check(&table.entries)?))
            })
            .collect::<Result<_, BadSettings>>()?;
        let settings = Settings { top, tables };
        settings.check_levels()?;
        Ok(settings)
    }

    /// Each `level` against the form it applies to, at the top and in every name table.
    fn check_levels(&self) -> Result<(), BadSettings> {
        let scopes = std::iter::once(&[][..])
            .chain(self.tables.iter().map(|(_, settings)| settings.as_slice()));
        for scope in scopes {
            let mut compression = Compression::None;
            let mut level = None;
            for setting in self.top.iter().chain(scope) {
                match setting {
                    Setting::Compress(form) => compression = *form,
                    Setting::Level(value, line) => level = Some((*value, *line)),
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
            effective.apply(&Setting::Keep(keep), Source::CommandLine);
        }
        effective
    }
}

/// One entry checked: a known key with a value of its kind.
/// An entry's value read as the kind its key takes, or the error that names the line, the key
/// and what was expected.
struct Checked<'a>(&'a Entry);

impl Checked<'_> {
    fn wrong(&self, expected: &str) -> BadSettings {
        BadSettings(format!(
            "line {}: {}: expected {expected}",
            self.0.line, self.0.key
        ))
    }

    fn boolean(&self) -> Result<bool, BadSettings> {
        match self.0.value {
            Value::Boolean(value) => Ok(value),
            _ => Err(self.wrong("true or false")),
        }
    }

    fn text(&self) -> Result<String, BadSettings> {
        match &self.0.value {
            Value::Text(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err(self.wrong("a non-empty string")),
        }
    }

    fn texts(&self) -> Result<Vec<String>, BadSettings> {
        let expected = "a list of non-empty strings";
        match &self.0.value {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Text(text) if !text.is_empty() => Ok(text.clone()),
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
            Value::Integer(n) => u32::try_from(n)
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| self.wrong(expected)),
            _ => Err(self.wrong(expected)),
        }
    }
}

fn setting(entry: &Entry) -> Result<Setting, BadSettings> {
    let key = entry.key.as_str();
    let value = Checked(entry);
    Ok(match key {
        "keep" => Setting::Keep(
            Keep::new(value.number(
                1..=Keep::MAX,
                &format!("a whole number from 1 to {}", Keep::MAX),
            )?)
            .unwrap_or(Keep::ONE),
        ),
        "keep_daily" | "keep_weekly" | "keep_monthly" | "keep_yearly" => {
            let period = KEYS[1..5].iter().position(|k| *k == key).unwrap_or(0);
            let (most, unit) = PERIOD_LIMITS[period];
            Setting::Period(
                period,
                value.number(
                    0..=most,
                    &format!("a whole number from 0 to {most} (a century of {unit})"),
                )?,
            )
        }
        "allow_empty" => Setting::AllowEmpty(value.boolean()?),
        "exclude" => Setting::Exclude(value.texts()?),
        "exclude_caches" => Setting::ExcludeCaches(value.boolean()?),
        "exclude_if_present" => {
            let names = value.texts()?;
            if names.iter().any(|name| name.contains('/')) {
                return Err(value.wrong("names without '/'"));
            }
            Setting::ExcludeIfPresent(names)
        }
        "one_file_system" => Setting::OneFileSystem(value.boolean()?),
        "catch_up" => Setting::CatchUp(value.boolean()?),
        "before" | "on_success" | "on_failure" => {
            let hook = KEYS[FIRST_HOOK..]
                .iter()
                .position(|k| *k == key)
                .unwrap_or(0);
            Setting::Hook(hook, value.text()?)
        }
        "hook_timeout" => Setting::HookTimeout(
            value.number(1..=86_400, "a whole number of seconds from 1 to 86400")?,
        ),
        "metrics" => Setting::Metrics(value.text()?),
        "read_threads" => {
            Setting::ReadThreads(value.number(0..=16, "a whole number from 0 (by the disk) to 16")?)
        }
        "compress" => {
            let expected = "\"none\", \"gzip\" or \"zstd\"";
            match &entry.value {
                Value::Text(text) => Setting::Compress(
                    Compression::from_setting(text).ok_or_else(|| value.wrong(expected))?,
                ),
                _ => return Err(value.wrong(expected)),
            }
        }
        "level" => Setting::Level(
            value.number(1..=19, "a whole number from 1 to 19")?,
            entry.line,
        ),
        "threads" => Setting::Threads(value.number(
            0..=MAX_THREADS,
            &format!("a whole number from 0 (one per core) to {MAX_THREADS}"),
        )?),
        _ => {
            return Err(BadSettings(format!(
                "line {}: {key}: unknown key",
                entry.line
            )));
        }
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
    Settings::parse(&text)
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
             compress = \"none\"  # default\nlevel = 0  # default\nthreads = 0  # default\n\
             catch_up = false  # default\nbefore = \"\"  # default\non_success = \"\"  # default\n\
             on_failure = \"\"  # default\nhook_timeout = 600  # default\nmetrics = \"\"  # default\n\
             read_threads = 0  # default\n"
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
            top: vec![Setting::Hook(0, hook.to_owned())],
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
