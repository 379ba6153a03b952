//! `backup_manager backups [--long] [--json]`: the archives in `backups/`, with (`--long`,
//! and always in JSON) each one's size, time, why retention keeps it, which full a level-1
//! needs and whom it is encrypted to.

use super::prune;
use crate::clock::LocalTime;
use crate::error::{Error, Outcome, Result};
use crate::layout::{self, Layout};
use crate::log::{Log, for_terminal, quoted, show_bytes};
use crate::stdout;
use crate::store::catalog::{self, Index};
use crate::store::chain::{self, Chains, Level};
use crate::store::retention::Reason;
use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;

/// What `--long` and `--json` say of one file of `backups/`.
struct Listed {
    file: Vec<u8>,
    meta: Option<fs::Metadata>,
    /// The reasons retention keeps it (empty: the next prune removes it); `None` for a file
    /// of no name in the plan.
    kept: Option<Vec<Reason>>,
    /// For a level-1: the file of the full it needs, or `Err` with why none is there.
    needs: Option<std::result::Result<Vec<u8>, String>>,
    recipients: Option<String>,
}

/// Carries out `backups`.
pub fn backups(layout: &Layout, log: &Log, long: bool, json: bool) -> Result<Outcome> {
    let entries = fs::read_dir(layout.backups_dir())
        .map_err(|err| Error::failed("can't find backups directory").because(err))?;
    let mut files: Vec<(Vec<u8>, fs::DirEntry)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| (entry.file_name().into_vec(), entry))
        .filter(|(name, _)| !layout::is_internal_backups_entry(name))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let listed: Vec<Listed> = if long || json {
        let kept = prune::reasons(layout);
        let loaded = catalog::load(layout).unwrap_or_default();
        let records = Index::of(&loaded);
        // Each name's chains, read once for all its level-1s.
        let mut chains: HashMap<Vec<u8>, Chains> = HashMap::new();
        files
            .into_iter()
            .map(|(file, entry)| {
                let meta = entry.metadata().ok();
                Listed {
                    kept: kept.get(&file).cloned(),
                    needs: needs(layout, &loaded, &mut chains, &file),
                    recipients: meta
                        .as_ref()
                        .and_then(|meta| encrypted_to(&records, &file, meta)),
                    meta,
                    file,
                }
            })
            .collect()
    } else {
        files
            .into_iter()
            .map(|(file, _)| Listed {
                file,
                meta: None,
                kept: None,
                needs: None,
                recipients: None,
            })
            .collect()
    };
    if json {
        stdout::print_line(&as_json(&listed))?;
    } else {
        stdout::print(&as_text(&listed, long))?;
    }
    log.write("Show backups list");
    Ok(Outcome::Done)
}

/// The lines of `backups` (`--long`: like `ls -l`, then the notes in parentheses).
fn as_text(listed: &[Listed], long: bool) -> Vec<u8> {
    let mut text = Vec::new();
    for item in listed {
        if long {
            let (size, modified) =
                item.meta
                    .as_ref()
                    .map_or(("?".to_owned(), "?".to_owned()), |meta| {
                        (
                            meta.len().to_string(),
                            LocalTime::at(meta.mtime()).date_time(),
                        )
                    });
            text.extend_from_slice(format!("{size:>14}  {modified:<19}  ").as_bytes());
        }
        text.extend_from_slice(&for_terminal(&item.file));
        if long {
            if let Some(reasons) = &item.kept {
                let why = if reasons.is_empty() {
                    "goes at the next prune".to_owned()
                } else {
                    let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                    format!("kept: {}", reasons.join(", "))
                };
                text.extend_from_slice(format!("  ({why})").as_bytes());
            }
            match &item.needs {
                Some(Ok(full)) => text
                    .extend_from_slice(format!("  (level 1 on {})", show_bytes(full)).as_bytes()),
                Some(Err(why)) => text.extend_from_slice(format!("  (level 1; {why})").as_bytes()),
                None => {}
            }
            if let Some(recipients) = &item.recipients {
                text.extend_from_slice(
                    format!("  (encrypted to recipients {recipients})").as_bytes(),
                );
            }
        }
        text.push(b'\n');
    }
    text
}

/// `{"archives": [...]}`: each file with its size, mtime, and what `--long` notes of it.
fn as_json(listed: &[Listed]) -> String {
    let text_or_null =
        |text: Option<String>| text.map_or_else(|| "null".to_owned(), |t| quoted(&t));
    let items: Vec<String> = listed
        .iter()
        .map(|item| {
            let kept = item.kept.as_ref().map_or_else(
                || "null".to_owned(),
                |reasons| {
                    let reasons: Vec<String> = reasons.iter().map(|r| quoted(&r.to_string())).collect();
                    format!("[{}]", reasons.join(", "))
                },
            );
            let (level, needs) = match &item.needs {
                Some(Ok(full)) => ("1", Some(show_bytes(full))),
                Some(Err(_)) => ("1", None),
                None => ("0", None),
            };
            format!(
                "{{\"file\": {}, \"size\": {}, \"mtime\": {}, \"modified\": {}, \"level\": {level}, \"needs\": {}, \"kept\": {kept}, \"encrypted_to\": {}}}",
                quoted(&show_bytes(&item.file)),
                item.meta.as_ref().map_or_else(|| "null".to_owned(), |meta| meta.len().to_string()),
                item.meta.as_ref().map_or_else(|| "null".to_owned(), |meta| meta.mtime().to_string()),
                text_or_null(item.meta.as_ref().map(|meta| LocalTime::at(meta.mtime()).date_time())),
                text_or_null(needs),
                text_or_null(item.recipients.clone()),
            )
        })
        .collect();
    format!("{{\"archives\": [{}]}}", items.join(", "))
}

/// For a level-1, which full it needs: that full's file, or why there is none. `chains`
/// keeps each name's, read the first time one of its level-1s is met.
fn needs(
    layout: &Layout,
    records: &[catalog::Record],
    chains: &mut HashMap<Vec<u8>, Chains>,
    file: &[u8],
) -> Option<std::result::Result<Vec<u8>, String>> {
    let owner = *crate::store::rotation::possible_owners(file).first()?;
    if !chain::is_level_one(owner, file) {
        return None;
    }
    let chains = chains.entry(owner.to_vec()).or_insert_with(|| {
        Chains::of(layout, owner, records, &crate::crypt::Identities::default())
    });
    let archive = chains
        .archives
        .iter()
        .find(|archive| archive.file == file)?;
    Some(match (archive.level, chains.full_of(archive)) {
        (_, Some(full)) => Ok(full.file.clone()),
        (Level::One(Some(full)), None) => Err(format!(
            "its full of {} is gone",
            LocalTime::at(full.seconds).date_time()
        )),
        _ => Err("its full is not recorded".to_owned()),
    })
}

/// The recipients' fingerprint the catalog recorded for archive file `file`, if it is
/// encrypted.
fn encrypted_to(records: &Index, file: &[u8], meta: &fs::Metadata) -> Option<String> {
    crate::store::rotation::possible_owners(file)
        .into_iter()
        .find_map(|owner| records.find(owner, meta))?
        .recipients
        .clone()
}
