//! The store's catalog of archives (`logs/backup_catalog.txt`): what it records of each
//! archive, checked against the files themselves and GNU tar's reading of them.

use crate::common::*;
use std::fs;
use std::process::Command;

/// The catalog's records as (name, fields by key).
fn catalog(sb: &Sandbox) -> Vec<(String, std::collections::HashMap<String, String>)> {
    let text = String::from_utf8(sb.read("logs/backup_catalog.txt")).unwrap();
    text.lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap().to_owned();
            let fields = fields
                .map(|field| {
                    let (key, value) = field.split_once('=').unwrap();
                    (key.to_owned(), value.to_owned())
                })
                .collect();
            (name, fields)
        })
        .collect()
}

/// `sha256sum FILE`'s digest.
fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum: {}", stderr(&out));
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn the_catalog_records_each_archive_and_follows_it_through_rotation() {
    let sb = Sandbox::new();
    sb.write("docs/a", "one");
    sb.write("docs/sub/b", "two");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "keep = 2\ncompress = \"zstd\"\nchecksum = true\n",
    );
    sb.manager(&["run", "0"]).ok();
    let archive = sb.join("backups/docs.tar.zst");
    let records = catalog(&sb);
    assert_eq!(records.len(), 1, "{records:?}");
    let (name, first) = &records[0];
    assert_eq!(name, "docs");
    assert_eq!(first["form"], "zstd");
    assert_eq!(
        first["size"],
        fs::metadata(&archive).unwrap().len().to_string()
    );
    assert_eq!(first["sha256"], sha256sum(&archive));
    // docs/, docs/a, docs/sub/, docs/sub/b: what GNU tar lists.
    assert_eq!(first["members"], gnu_tar_names(&archive).len().to_string());
    assert_eq!(first["members"], "4");
    let first_digest = first["sha256"].clone();

    // The first archive becomes a generation; its record stays and still matches it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    sb.write("docs/c", "three");
    sb.manager(&["run", "0"]).ok();
    let generation = fs::read_dir(sb.join("backups"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("docs.2") && name.ends_with(".tar.zst")
        })
        .expect("a generation of docs");
    assert_eq!(sha256sum(&generation), first_digest);
    let records = catalog(&sb);
    let digests: Vec<&str> = records.iter().map(|(_, f)| f["sha256"].as_str()).collect();
    assert_eq!(digests, [first_digest.as_str(), &sha256sum(&archive)]);
    assert_eq!(records[1].1["members"], "5");

    // keep = 2: the third run prunes the first archive, and its record goes with it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    sb.manager(&["run", "0"]).ok();
    assert!(!generation.exists(), "{} not pruned", generation.display());
    let records = catalog(&sb);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|(_, f)| f["sha256"] != first_digest),
        "{records:?}"
    );
}

#[test]
fn a_damaged_or_hostile_catalog_costs_its_records_never_the_backup() {
    let sb = Sandbox::new();
    sb.write("docs/a", "one");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", "checksum = true\n");
    fs::create_dir_all(sb.join("logs")).unwrap();
    // A FIFO in its place must not hang the job; it is replaced by a real catalog.
    nix::unistd::mkfifo(
        &sb.join("logs/backup_catalog.txt"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let out = output_within(
        sb.command("backup_manager", &["run", "0"]),
        std::time::Duration::from_secs(20),
    );
    assert!(out.status.success(), "run: {}", stderr(&out));
    assert_eq!(catalog(&sb).len(), 1);
    // Garbage lines are dropped at the next write; the job goes on.
    let mut text = b"\xff\xfe garbage\ndocs\twritten=x\n".to_vec();
    text.extend(sb.read("logs/backup_catalog.txt"));
    sb.write("logs/backup_catalog.txt", text);
    sb.manager(&["run", "0"]).ok();
    let records = catalog(&sb);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].1["sha256"],
        sha256sum(&sb.join("backups/docs.tar"))
    );
}

#[test]
fn without_checksum_the_catalog_has_no_digest_but_all_the_rest() {
    let sb = Sandbox::new();
    sb.write("docs/a", "one");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.manager(&["run", "0"]).ok();
    let records = catalog(&sb);
    assert_eq!(records.len(), 1, "{records:?}");
    let fields = &records[0].1;
    assert!(!fields.contains_key("sha256"), "{fields:?}");
    assert_eq!(fields["form"], "none");
    assert_eq!(fields["members"], "2");
    let archive = sb.join("backups/docs.tar");
    assert_eq!(
        fields["size"],
        fs::metadata(&archive).unwrap().len().to_string()
    );
    assert_eq!(fields["stream"], fields["size"]);
}
