//! The incremental chains of one name in `backups/`: its fulls (the archive in place and its
//! generations) and its level-1s, `<name>.<yyyy-mm-dd_hhmmss>[-n].inc.tar…`, each with the
//! stamp of the full it needs; and the states a restore can reach: a full alone, or a full
//! and one level-1 made against it.

use super::catalog::{self, Record, Written};
use super::rotation::{self, generation_key};
use crate::archive::form::Form;
use crate::clock::LocalTime;
use crate::layout::Layout;
use std::path::Path;

/// What marks a level-1's file name, before its form's ending.
pub const LEVEL_ONE_MARK: &str = ".inc";

/// `<name>.<stamp>.inc.tar`, or `<name>.<stamp>-<serial>.inc.tar` for the serial-th of that
/// second; the form's ending as for any archive.
pub fn level_one_name(name: &[u8], stamp: &str, serial: u32, form: Form) -> Vec<u8> {
    let mut file = rotation::generation_name(name, stamp, serial, form);
    file.truncate(file.len() - form.suffix().len());
    file.extend_from_slice(LEVEL_ONE_MARK.as_bytes());
    file.extend_from_slice(form.suffix().as_bytes());
    file
}

/// The age key (stamp, serial) of `file` if it is a level-1 of `name`.
pub fn level_one_key(name: &[u8], file: &[u8]) -> Option<(Vec<u8>, u32)> {
    let (form, stem) = Form::of_file(file)?;
    let generation = stem.strip_suffix(LEVEL_ONE_MARK.as_bytes())?;
    generation_key(name, &[generation, form.suffix().as_bytes()].concat())
}

/// Whether `file` is a level-1 of `name`.
pub fn is_level_one(name: &[u8], file: &[u8]) -> bool {
    level_one_key(name, file).is_some()
}

/// What an archive of the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Full,
    /// A level-1, with the stamp of the full it needs when that is known: from the catalog,
    /// else from its label (which an encrypted one hides without the key).
    One(Option<Written>),
}

/// One archive of a name in `backups/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub file: Vec<u8>,
    pub form: Form,
    /// Its mtime: its stamp for life.
    pub written: Written,
    pub size: u64,
    pub level: Level,
}

impl Archive {
    /// `backups/<file>`, as messages name it.
    pub fn display(&self) -> String {
        format!("backups/{}", crate::log::show_bytes(&self.file))
    }

    /// Its local wall-clock minute, for `--as-of`.
    pub fn wall_minute(&self) -> i64 {
        LocalTime::at(self.written.seconds).wall_minute()
    }
}

/// A state a restore can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State<'a> {
    pub full: &'a Archive,
    pub level_one: Option<&'a Archive>,
}

impl State<'_> {
    /// The archive that makes the state what it is: the level-1, or the full alone.
    pub fn newest(&self) -> &Archive {
        self.level_one.unwrap_or(self.full)
    }
}

/// Every full and level-1 of a name, newest first.
#[derive(Debug, Clone, Default)]
pub struct Chains {
    pub archives: Vec<Archive>,
}

impl Chains {
    /// The archives of `name` in `backups`, with what `records` (the catalog) says of each;
    /// `label` reads a level-1's label when its record lacks the full's stamp.
    pub fn read(
        backups: &Path,
        name: &[u8],
        records: &[Record],
        label: &dyn Fn(&[u8]) -> Option<Written>,
    ) -> Chains {
        let index = catalog::Index::of(records);
        let in_place = Layout::archive_file_names(name);
        let mut archives: Vec<Archive> = rotation::files_of(backups, name)
            .into_iter()
            .filter_map(|(file, meta)| {
                let level = if in_place.contains(&file) || generation_key(name, &file).is_some() {
                    Level::Full
                } else if is_level_one(name, &file) {
                    let recorded = index.find(name, &meta).and_then(|record| record.full);
                    Level::One(recorded.or_else(|| label(&file)))
                } else {
                    return None;
                };
                let (form, _) = Form::of_file(&file)?;
                Some(Archive {
                    form,
                    written: Written::of(&meta),
                    size: meta.len(),
                    file,
                    level,
                })
            })
            .collect();
        archives.sort_by(|a, b| b.written.cmp(&a.written).then_with(|| a.file.cmp(&b.file)));
        Chains { archives }
    }

    /// [`Chains::read`] of `backups/` in `layout`, each level-1 without a record read for its
    /// label (with `keys`, for an encrypted one).
    pub fn of(
        layout: &Layout,
        name: &[u8],
        records: &[Record],
        keys: &crate::crypt::Identities,
    ) -> Chains {
        Chains::read(&layout.backups_dir(), name, records, &|file| {
            crate::archive::level_one_label(layout, file, keys)
        })
    }

    /// The files of [`Chains::orphans`].
    pub fn orphan_files(&self) -> std::collections::HashSet<&[u8]> {
        self.orphans()
            .into_iter()
            .map(|archive| archive.file.as_slice())
            .collect()
    }

    /// Whether any level-1 is there: without one, every command works as before incrementals.
    pub fn has_level_ones(&self) -> bool {
        self.archives
            .iter()
            .any(|archive| archive.level != Level::Full)
    }

    /// The full a level-1 needs, if it is there.
    pub fn full_of(&self, level_one: &Archive) -> Option<&Archive> {
        let Level::One(Some(full)) = level_one.level else {
            return None;
        };
        self.archives
            .iter()
            .find(|archive| archive.level == Level::Full && archive.written == full)
    }

    /// Every state a restore can reach, newest first.
    pub fn states(&self) -> Vec<State<'_>> {
        self.archives
            .iter()
            .filter_map(|archive| match archive.level {
                Level::Full => Some(State {
                    full: archive,
                    level_one: None,
                }),
                Level::One(_) => Some(State {
                    full: self.full_of(archive)?,
                    level_one: Some(archive),
                }),
            })
            .collect()
    }

    /// The newest state at or before the local wall-clock minute `as_of` (any, without).
    pub fn newest_state(&self, as_of: Option<i64>) -> Option<State<'_>> {
        self.states()
            .into_iter()
            .find(|state| as_of.is_none_or(|minute| state.newest().wall_minute() <= minute))
    }

    /// The level-1s whose full is known and gone: nothing can restore them.
    pub fn orphans(&self) -> Vec<&Archive> {
        self.archives
            .iter()
            .filter(|archive| {
                matches!(archive.level, Level::One(Some(_))) && self.full_of(archive).is_none()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::compression::Compression;

    #[test]
    fn level_one_names_parse_back_and_never_pass_for_generations() {
        let form = Form::clear(Compression::Zstd);
        let file = level_one_name(b"docs", "2026-12-01_030000", 1, form);
        assert_eq!(file, b"docs.2026-12-01_030000.inc.tar.zst");
        assert!(is_level_one(b"docs", &file));
        assert!(is_level_one(
            b"docs",
            &level_one_name(b"docs", "2026-12-01_030000", 2, form)
        ));
        assert!(!is_level_one(b"doc", &file));
        assert!(generation_key(b"docs", &file).is_none());
        assert_eq!(rotation::possible_owners(&file), [&b"docs"[..]]);
        assert_eq!(
            rotation::possible_owners(b"x.inc.tar"),
            [&b"x.inc"[..]],
            "a name ending in .inc is a name"
        );
    }

    fn archive(file: &str, seconds: i64, level: Level) -> Archive {
        Archive {
            file: file.as_bytes().to_vec(),
            form: Form::default(),
            written: Written { seconds, nanos: 0 },
            size: 1,
            level,
        }
    }

    #[test]
    fn states_pair_each_level_one_with_its_full_and_as_of_picks_the_newest_before() {
        let stamp = |seconds| Some(Written { seconds, nanos: 0 });
        let chains = Chains {
            archives: vec![
                archive("d.3.inc.tar", 4 * 86_400, Level::One(stamp(3 * 86_400))),
                archive("d.tar", 3 * 86_400, Level::Full),
                archive("d.2.inc.tar", 2 * 86_400, Level::One(stamp(0))),
                archive("d.1.inc.tar", 86_400, Level::One(stamp(-5))),
                archive("d.0.tar", 0, Level::Full),
            ],
        };
        let states = chains.states();
        assert_eq!(states.len(), 4, "the orphan is no state");
        assert_eq!(states[0].full.file, b"d.tar");
        assert_eq!(states[2].full.file, b"d.0.tar");
        assert_eq!(chains.orphans()[0].file, b"d.1.inc.tar");
        let minute = |seconds: i64| LocalTime::at(seconds).wall_minute();
        let at = |seconds| chains.newest_state(Some(minute(seconds))).unwrap();
        assert_eq!(at(2 * 86_400 + 59).newest().file, b"d.2.inc.tar");
        assert_eq!(at(3 * 86_400 - 1).newest().file, b"d.2.inc.tar");
        assert_eq!(
            chains.newest_state(None).unwrap().newest().file,
            b"d.3.inc.tar"
        );
        assert!(chains.newest_state(Some(minute(-60))).is_none());
    }
}
