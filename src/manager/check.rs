//! `backup_manager check`, like `nginx -t`: everything the service will need, looked at before
//! it is trusted: the plan (each malformed line with what is wrong in it), the settings, each
//! folder, `backups/` and `logs/`, the metrics file's folder and the offsite remotes. One line
//! per problem; `check: ok` when there is none.

use crate::error::{Error, Outcome, Result};
use crate::layout::Layout;
use crate::log::{Log, show_bytes};
use crate::plan;
use crate::plan::file as plan_file;
use crate::settings;
use crate::stdout;
use nix::unistd::{AccessFlags, access};
use std::fs;
use std::path::Path;

/// Carries out `check`.
pub fn check(layout: &Layout, log: &Log) -> Result<Outcome> {
    let mut problems = Vec::new();
    let text = match plan_file::read(layout) {
        Ok(text) => text,
        Err(err) => {
            problems.push(format!("plan: {err}"));
            Vec::new()
        }
    };
    let entries = plan::entries(&text);
    let mut schedules = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match plan::why_malformed(entry.text) {
            Some(why) => problems.push(format!(
                "plan line {index}: malformed schedule: {}: {why}",
                show_bytes(entry.text)
            )),
            None => schedules.extend(entry.schedule().map(|schedule| (index, schedule))),
        }
    }
    for (index, schedule) in &schedules {
        if let Err(why) = readable_folder(&layout.resolve_folder(&schedule.folder)) {
            problems.push(format!(
                "plan line {index}: folder {} {why}",
                show_bytes(&schedule.folder)
            ));
        }
    }
    for (dir, shown) in [
        (layout.backups_dir(), "backups/"),
        (layout.logs_dir(), "logs/"),
    ] {
        if let Err(why) = writable_or_creatable(&dir) {
            problems.push(format!("{shown} {why}"));
        }
    }
    match settings::load(layout) {
        Err(err) => problems.push(format!("settings: {err}")),
        Ok(settings) => check_settings(layout, &settings, &schedules, &mut problems),
    }
    for problem in &problems {
        stdout::print_line(problem)?;
    }
    match problems.len() {
        0 => {
            stdout::print_line("check: ok")?;
            log.write("Check: ok");
            Ok(Outcome::Done)
        }
        count => {
            let summary = format!(
                "check: {count} problem{}",
                if count == 1 { "" } else { "s" }
            );
            log.write(&format!("Check: {count} problems"));
            Err(Error::already_logged(summary))
        }
    }
}

/// The metrics file's folder, and each schedule's offsite remote.
fn check_settings(
    layout: &Layout,
    settings: &settings::Settings,
    schedules: &[(usize, plan::Schedule)],
    problems: &mut Vec<String>,
) {
    if let Some(metrics) = settings.for_name(b"", None).metrics {
        let path = layout.base().join(&metrics);
        let dir = path.parent().unwrap_or(layout.base());
        if let Err(why) = writable_or_creatable(dir) {
            problems.push(format!("metrics: the folder of {metrics} {why}"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (index, schedule) in schedules {
        let effective = settings.for_name(&schedule.name, None);
        let Some(offsite) = crate::job::offsite::Offsite::of(&effective, layout.base()) else {
            continue;
        };
        if !seen.insert(offsite.folder().to_owned()) {
            continue;
        }
        if let Err(why) = offsite.check_remote() {
            problems.push(format!(
                "plan line {index}: offsite {}: {why}",
                offsite.folder()
            ));
        }
    }
}

/// Whether a plan folder can be archived: a directory whose entries can be read.
fn readable_folder(folder: &Path) -> std::result::Result<(), String> {
    let meta = fs::metadata(folder).map_err(|err| format!("can't be read ({err})"))?;
    if !meta.is_dir() {
        return Err("is not a directory".to_owned());
    }
    fs::read_dir(folder)
        .map(|_| ())
        .map_err(|err| format!("can't be read ({err})"))
}

/// Whether files can be made in `dir`, or `dir` in its parent when it does not exist yet.
fn writable_or_creatable(dir: &Path) -> std::result::Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
            .map_err(|errno| format!("is not writable ({})", std::io::Error::from(errno))),
        Ok(_) => Err("is not a directory".to_owned()),
        Err(_) => {
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|errno| {
                format!(
                    "does not exist and can't be made ({})",
                    std::io::Error::from(errno)
                )
            })
        }
    }
}
