//! `prune [NAME] [--dry-run]`, and the reasons `backups --long` shows: the retention rules of
//! `backupbox.toml` applied to what is in `backups/` now.

use crate::error::{Error, Outcome, Result};
use crate::job;
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan::file as plan_file;
use crate::plan::{self, Name};
use crate::settings::{self, Settings};
use crate::stdout;
use crate::store::chain::{self, Chains};
use crate::store::retention::Reason;
use crate::store::rotation;
use std::collections::{HashMap, HashSet};

/// The archive names the plan's schedules write, each once.
fn plan_names(layout: &Layout) -> Result<Vec<Name>> {
    let text = plan_file::read(layout)?;
    let mut seen = HashSet::new();
    Ok(plan::entries(&text)
        .iter()
        .filter_map(plan::Entry::schedule)
        .filter(|schedule| seen.insert(schedule.name.to_vec()))
        .map(|schedule| schedule.name)
        .collect())
}

/// What `backups/` holds and the plan protects, read once for every name reviewed.
struct Survey {
    /// The files of `backups/` by the names they may belong to.
    files: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    protected: HashSet<Vec<u8>>,
    records: Vec<crate::store::catalog::Record>,
}

impl Survey {
    /// `names`: the plan's archive names, whose archives no other name's pruning touches.
    fn take(layout: &Layout, names: &[Name]) -> Survey {
        let files = rotation::list(&layout.backups_dir()).unwrap_or_default();
        Survey {
            files: rotation::by_owner(&files)
                .into_iter()
                .map(|(owner, files)| (owner.to_vec(), files))
                .collect(),
            protected: crate::store::rotation::protected_files(names.iter().map(|name| &**name)),
            records: crate::store::catalog::load(layout).unwrap_or_default(),
        }
    }

    /// The fulls and level-1s of `name`, read only when it has level-1s in `backups/`.
    fn chains(&self, layout: &Layout, name: &Name) -> Chains {
        let files = self.files.get(&**name).map_or(&[][..], Vec::as_slice);
        if !files.iter().any(|file| chain::is_level_one(name, file)) {
            return Chains::default();
        }
        Chains::of(
            layout,
            name,
            &self.records,
            &crate::crypt::Identities::default(),
        )
    }

    /// Each archive of `name` with the reasons the settings keep it, newest first.
    fn review(
        &self,
        layout: &Layout,
        settings: &Settings,
        name: &Name,
    ) -> Vec<(Vec<u8>, Vec<Reason>, bool)> {
        let policy = settings.for_name(name, None).policy();
        let currents = rotation::currents(&layout.backups_dir(), name);
        let files = self.files.get(&**name).map_or(&[][..], Vec::as_slice);
        let chains = self.chains(layout, name);
        let orphans = chains.orphan_files();
        rotation::review(name, files, &currents, &policy, &self.protected, &chains)
            .into_iter()
            .map(|(generation, reasons)| {
                let orphan = orphans.contains(generation.file.as_slice());
                (generation.file, reasons, orphan)
            })
            .collect()
    }
}

/// For every archive of the plan's schedules, why it is kept; an empty list means the next
/// prune removes it. Empty when the plan or the settings can't be read.
pub fn reasons(layout: &Layout) -> HashMap<Vec<u8>, Vec<Reason>> {
    let (Ok(names), Ok(settings)) = (plan_names(layout), settings::load(layout)) else {
        return HashMap::new();
    };
    let survey = Survey::take(layout, &names);
    // Only names with a file in backups/ have anything to review.
    names
        .iter()
        .filter(|name| survey.files.contains_key(&***name))
        .flat_map(|name| survey.review(layout, &settings, name))
        .map(|(file, reasons, _)| (file, reasons))
        .collect()
}

/// Carries out `prune`: removes (or with `dry_run` lists) the generations the settings do not
/// keep, for `name` or every name in the plan.
pub fn prune(layout: &Layout, log: &Log, name: Option<Name>, dry_run: bool) -> Result<Outcome> {
    let settings = settings::load(layout)?;
    let names = match name {
        Some(name) => vec![name],
        None => plan_names(layout)?,
    };
    // What is there now, for the dry run: read once for all names.
    let survey = dry_run.then(|| Survey::take(layout, &plan_names(layout).unwrap_or_default()));
    let mut listing = String::new();
    let mut failed = 0;
    for name in &names {
        let effective = settings.for_name(name, None);
        if !effective.sets_retention() {
            return Err(Error::failed(format!(
                "prune: {FILE} sets no retention for {} (keep, keep_daily, ...); nothing removed",
                effective.form().archive_display(name),
                FILE = settings::FILE
            )));
        }
        let policy = effective.policy();
        let going: Vec<(Vec<u8>, String)> = if let Some(survey) = &survey {
            survey
                .review(layout, &settings, name)
                .into_iter()
                .filter(|(_, reasons, _)| reasons.is_empty())
                .map(|(file, _, orphan)| (file, job::why_removed(&policy, orphan)))
                .collect()
        } else {
            let (removed, not_removed) = job::prune(layout, name, &policy, log);
            failed += not_removed;
            let remote_names: Vec<String> = removed
                .iter()
                .map(|(file, _)| String::from_utf8_lossy(file).into_owned())
                .collect();
            job::offsite::prune(layout, &effective, &remote_names, log);
            removed
        };
        let verb = if dry_run {
            "would be removed"
        } else {
            "removed"
        };
        for (file, why) in going {
            listing.push_str(&format!("backups/{}: {verb}: {why}\n", show_bytes(&file)));
        }
    }
    stdout::print(listing.as_bytes())?;
    if dry_run {
        log.write("Show prune plan");
    }
    if failed > 0 {
        return Err(Error::failed(format!(
            "prune: {failed} generations could not be removed (see the warnings before this line)"
        )));
    }
    Ok(Outcome::Done)
}
