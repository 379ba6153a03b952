//! Incremental backups: level-1 archives against the newest full, read back by GNU tar itself
//! (`tar -x -g /dev/null`, full then level-1) and by `restore`, compared with a copy of the
//! live tree taken at backup time; the levels chosen, the snapshot, and the guarantees.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a tree is, path by path: type, mode, mtime and contents (or link target).
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {:o} {}", meta.mode() & 0o7777, meta.mtime())
            } else if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else {
                format!(
                    "file {:o} {} {:?}",
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    String::from_utf8_lossy(&fs::read(&path).unwrap())
                )
            };
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            found.insert(relative, what);
        }
    }
    found
}

/// `cp -a`: the live tree as it was when the backup ran.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp -a: {}", stderr(&out));
}

/// GNU tar restores a chain on its own: each archive with `-x -g /dev/null`, full first.
fn gnu_restore(archives: &[PathBuf], into: &Path) {
    fs::create_dir_all(into).unwrap();
    for archive in archives {
        let out = tool("tar")
            .args(["-x", "-g", "/dev/null", "-f"])
            .arg(archive)
            .current_dir(into)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar -x -g /dev/null -f {}: {}",
            archive.display(),
            stderr(&out)
        );
    }
}

/// The level-1 files in `backups/`, oldest first (by mtime: several may share a second).
fn level_ones(sb: &Sandbox) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, String)> = fs::read_dir(sb.join("backups"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (entry.metadata().unwrap().modified().unwrap(), name)
        })
        .filter(|(_, name)| name.contains(".inc.tar"))
        .collect();
    files.sort();
    files.into_iter().map(|(_, name)| name).collect()
}

/// A full, then a level-1 holding a new file, `docs/new.txt`; the level-1's file name.
fn full_and_level_one(sb: &Sandbox) -> String {
    sb.manager(&["run", "0"]).ok();
    sb.write("docs/new.txt", "new\n");
    sb.manager(&["run", "0"]).ok();
    let [level_one] = level_ones(sb).try_into().expect("one level-1");
    level_one
}

/// A sandbox whose plan backs up `docs` as `docs`, incrementally, with `settings` besides.
fn incremental_sandbox(settings: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", format!("incremental = true\n{settings}"));
    sb.write("docs/keep.txt", "kept\n");
    sb.write("docs/change.txt", "before\n");
    sb.write("docs/gone.txt", "gone\n");
    sb.write("docs/rename-me.txt", "renamed\n");
    sb.write("docs/dir-a/x", "x\n");
    sb.write("docs/dir-a/sub/y", "y\n");
    sb.write("docs/dir-gone/z", "z\n");
    sb.write("docs/mode.txt", "mode\n");
    symlink("keep.txt", sb.join("docs/link")).unwrap();
    fs::hard_link(sb.join("docs/keep.txt"), sb.join("docs/hard")).unwrap();
    sb
}

/// What happens to the tree between the full and the level-1: every kind of change.
fn change_everything(sb: &Sandbox) {
    let docs = sb.join("docs");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(docs.join("change.txt"))
        .unwrap();
    std::io::Write::write_all(&mut file, b"after\n").unwrap();
    fs::remove_file(docs.join("gone.txt")).unwrap();
    fs::rename(docs.join("rename-me.txt"), docs.join("renamed.txt")).unwrap();
    fs::rename(docs.join("dir-a"), docs.join("dir-b")).unwrap();
    fs::remove_dir_all(docs.join("dir-gone")).unwrap();
    sb.write("docs/new.txt", "new\n");
    sb.write("docs/new-dir/f", "f\n");
    fs::set_permissions(docs.join("mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    sb.write("docs/old-times.txt", "restored with old times\n");
    touch(&docs.join("old-times.txt"), "2001-02-03 04:05:06");
}

#[test]
fn i1_a_level_1_holds_what_changed_and_gnu_tar_and_restore_rebuild_that_day_exactly() {
    let sb = incremental_sandbox("");
    sb.manager(&["run", "0"]).ok();
    assert!(sb.join("backups/docs.tar").exists(), "{}", sb.explain());
    assert!(
        sb.join("backups/docs.snapshot").exists(),
        "{}",
        sb.explain()
    );
    assert_eq!(level_ones(&sb), Vec::<String>::new());
    change_everything(&sb);
    sb.manager(&["run", "0"]).ok();
    let day = sb.join("copy");
    copy_tree(&sb.join("docs"), &day);
    let [level_one] = level_ones(&sb).try_into().expect("one level-1");
    assert!(
        sb.manager_log()
            .contains(&format!("Backup done for docs in backups/{level_one}")),
        "{}",
        sb.explain()
    );

    // Only what changed, and every directory (with its dumpdir).
    let mut stored: Vec<String> = gnu_tar_names(&sb.join("backups").join(&level_one))
        .into_iter()
        .map(|name| String::from_utf8(name).unwrap())
        .filter(|name| !name.ends_with('/'))
        .collect();
    stored.sort();
    let (label, changed) = stored.split_first().unwrap();
    assert!(
        label.starts_with("backupbox level 1 of the full written at "),
        "{label}"
    );
    assert_eq!(
        changed,
        [
            "docs/change.txt",
            "docs/dir-b/sub/y",
            "docs/dir-b/x",
            "docs/mode.txt",
            "docs/new-dir/f",
            "docs/new.txt",
            "docs/old-times.txt",
            "docs/renamed.txt",
        ],
        "what changed, and nothing else"
    );

    // GNU tar alone: full, then the level-1.
    let gnu = sb.join("gnu");
    gnu_restore(
        &[
            sb.join("backups/docs.tar"),
            sb.join("backups").join(&level_one),
        ],
        &gnu,
    );
    assert_eq!(tree(&gnu.join("docs")), tree(&day.join("docs")));
    // And GNU tar's own compare of the level-1, dumpdirs against the directories included.
    assert_gnu_tar_compare_clean(&sb.join("backups").join(&level_one), &gnu);

    // restore: the same tree, the hard link kept.
    sb.manager(&["restore", "docs", "--to", "ours"])
        .ok()
        .stdout_contains(&format!("backups/{level_one} (on backups/docs.tar): "));
    let ours = sb.join("ours/docs");
    assert_eq!(tree(&ours), tree(&day.join("docs")));
    let inode = |path: &str| fs::metadata(ours.join(path)).unwrap().ino();
    assert_eq!(inode("keep.txt"), inode("hard"));

    sb.manager(&["verify", "docs", "--against"])
        .ok()
        .stdout_contains(&format!("backups/{level_one}: sound, "))
        .stdout_contains("same as docs");
    assert_contents_is(&sb, &day.join("docs"));
}

/// `contents docs` lists the members of `day`, the tree of that day.
fn assert_contents_is(sb: &Sandbox, day: &Path) {
    let listed = sb.manager(&["contents", "docs"]).ok().stdout_text();
    let mut listed: Vec<&str> = listed
        .lines()
        .map(|line| line.trim_end_matches('/'))
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<String> = std::iter::once("docs".to_owned())
        .chain(tree(day).into_keys().map(|path| format!("docs/{path}")))
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "contents lists the day's tree");
}

#[test]
fn i1b_a_file_the_fulls_snapshot_does_not_hold_is_stored_whatever_its_times() {
    let sb = incremental_sandbox("");
    sb.manager(&["run", "0"]).ok();
    // As if the full could not read keep.txt: its snapshot does not hold it.
    let snapshot = sb.read("backups/docs.snapshot");
    let inode = fs::metadata(sb.join("docs/keep.txt")).unwrap().ino();
    let entry = format!("{inode}/keep.txt\0");
    let at = snapshot
        .windows(entry.len())
        .position(|window| window == entry.as_bytes())
        .expect("the snapshot holds keep.txt");
    let edited = [&snapshot[..at], &snapshot[at + entry.len()..]].concat();
    fs::write(sb.join("backups/docs.snapshot"), edited).unwrap();
    sb.manager(&["run", "0"]).ok();
    let [level_one] = level_ones(&sb).try_into().expect("one level-1");
    let names = gnu_tar_names(&sb.join("backups").join(level_one));
    assert!(
        names.contains(&b"docs/keep.txt".to_vec()),
        "{:?}",
        names
            .iter()
            .map(|n| String::from_utf8_lossy(n))
            .collect::<Vec<_>>()
    );
    assert!(!names.contains(&b"docs/change.txt".to_vec()), "unchanged");
}

#[test]
fn i2_a_full_comes_every_full_every_days_or_whenever_a_level_1_could_be_wrong() {
    let sb = incremental_sandbox("full_every = 7\n");
    let first = full_and_level_one(&sb);
    sb.manager(&["backups", "--long"])
        .ok()
        .stdout_contains(&format!("{first}  (kept: newest)  (level 1 on docs.tar)"))
        .stdout_contains("docs.tar  (kept: needed by ");

    // Six days on, still a level-1; seven days on, a full, and the level-1s of the full it
    // replaced go with it.
    let run_later = |days: &str| {
        let out = sb
            .command("backup_manager", &["run", "0"])
            .env("BACKUPBOX_TEST_DAYS_LATER", days)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stderr(&out), sb.explain());
    };
    // keep = 1 keeps one day: a new level-1 replaces the one before, as a full would.
    run_later("6");
    assert_eq!(level_ones(&sb).len(), 1, "{}", sb.explain());
    assert!(
        sb.manager_log()
            .contains(&format!("Removed backups/{first}: more than 1 kept")),
        "{}",
        sb.explain()
    );
    let [first] = level_ones(&sb).try_into().expect("one level-1");
    run_later("7");
    assert_eq!(level_ones(&sb), Vec::<String>::new(), "{}", sb.explain());
    let log = sb.manager_log();
    assert!(
        log.contains(&format!("Removed backups/{first}: its full is gone")),
        "{log:?}"
    );

    // A damaged snapshot, changed exclude settings: a full, with a warning that says why.
    sb.manager(&["run", "0"]).ok();
    assert_eq!(level_ones(&sb).len(), 1);
    let mut snapshot = sb.read("backups/docs.snapshot");
    snapshot.extend_from_slice(b"junk");
    fs::write(sb.join("backups/docs.snapshot"), snapshot).unwrap();
    sb.manager(&["run", "0"]).ok();
    assert_eq!(level_ones(&sb), Vec::<String>::new(), "{}", sb.explain());
    assert!(sb.manager_log().contains(
        &"Warning: can't use backups/docs.snapshot (damaged snapshot: bytes after its end); writing a full".to_owned()
    ), "{}", sb.explain());
    sb.write(
        "backupbox.toml",
        "incremental = true\nexclude = [\"*.tmp\"]\n",
    );
    sb.manager(&["run", "0"]).ok();
    assert_eq!(level_ones(&sb), Vec::<String>::new(), "{}", sb.explain());
    assert!(sb.manager_log().contains(
        &"Warning: docs: the settings that decide what is archived changed since the last full; writing a full".to_owned()
    ), "{}", sb.explain());
    sb.manager(&["run", "0"]).ok();
    assert_eq!(level_ones(&sb).len(), 1, "same settings: a level-1 again");
}

#[test]
fn i2b_with_generations_an_older_full_keeps_its_level_1s_restorable() {
    let sb = incremental_sandbox("keep = 2\n");
    sb.manager(&["run", "0"]).ok();
    sb.write("docs/first-week.txt", "1\n");
    sb.manager(&["run", "0"]).ok();
    let [first] = level_ones(&sb).try_into().expect("one level-1");
    let week_one = sb.join("week-one");
    copy_tree(&sb.join("docs"), &week_one);
    let out = sb
        .command("backup_manager", &["run", "0"])
        .env("BACKUPBOX_TEST_DAYS_LATER", "7")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        level_ones(&sb),
        std::slice::from_ref(&first),
        "its full is a generation now"
    );
    let listing = sb.manager(&["backups", "--long"]).ok().stdout_text();
    let line = listing.lines().find(|line| line.contains(&first)).unwrap();
    assert!(
        line.contains("(level 1 on docs.") && !line.contains("on docs.tar)"),
        "{listing}"
    );
    // The generation and its level-1 still make that day, for GNU tar as for restore.
    let generation = fs::read_dir(sb.join("backups"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("docs.2") && !name.contains(".inc."))
        .expect("a generation");
    let gnu = sb.join("gnu");
    gnu_restore(
        &[
            sb.join("backups").join(&generation),
            sb.join("backups").join(&first),
        ],
        &gnu,
    );
    assert_eq!(tree(&gnu.join("docs")), tree(&week_one.join("docs")));
    sb.manager(&["verify", "docs"]).ok();
}

#[test]
fn i3_a_base_without_incremental_writes_no_snapshot_and_no_dumpdirs() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("docs/a", "a\n");
    sb.write("docs/sub/b", "b\n");
    sb.manager(&["run", "0"]).ok();
    sb.write("docs/c", "c\n");
    sb.manager(&["run", "0"]).ok();
    let files: Vec<String> = fs::read_dir(sb.join("backups"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(files, ["docs.tar"]);
    let mut archive = tar::Archive::new(fs::File::open(sb.join("backups/docs.tar")).unwrap());
    let kinds: Vec<u8> = archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().header().entry_type().as_byte())
        .collect();
    assert_eq!(kinds, b"50050", "plain directories and files, as before");
}

#[test]
fn i4_an_empty_folder_never_becomes_a_level_1() {
    let sb = incremental_sandbox("");
    sb.manager(&["run", "0"]).ok();
    for entry in fs::read_dir(sb.join("docs")).unwrap().flatten() {
        let path = entry.path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }
    sb.manager(&["run", "0"])
        .fails(1)
        .stderr_contains("refused: the folder is empty but the last archive holds");
    assert_eq!(level_ones(&sb), Vec::<String>::new(), "{}", sb.explain());
}

#[test]
fn i5_restore_writes_only_the_days_tree_and_delete_removes_only_what_it_lacks() {
    let sb = incremental_sandbox("");
    sb.manager(&["run", "0"]).ok();
    change_everything(&sb);
    sb.manager(&["run", "0"]).ok();
    let day = tree(&sb.join("docs"));

    // An existing folder with files no archive held, and a link to files outside.
    let target = sb.join("target");
    sb.write("target/docs/stray.txt", "mine\n");
    sb.write("target/mine/keep-me", "mine\n");
    sb.write("outside/precious", "do not touch\n");
    symlink(sb.join("outside"), target.join("docs/escape")).unwrap();
    sb.manager(&["restore", "docs", "--to", "target", "--force"])
        .ok();
    assert!(
        target.join("docs/stray.txt").exists(),
        "kept without --delete"
    );
    assert!(
        !target.join("docs/gone.txt").exists(),
        "never written, never deleted"
    );
    sb.manager(&["restore", "docs", "--to", "target", "--force", "--delete"])
        .ok()
        .stdout_contains("removed 4 entries of");
    assert_eq!(tree(&target.join("docs")), day);
    assert!(!target.join("mine").exists());
    assert_eq!(
        sb.read("outside/precious"),
        b"do not touch\n",
        "not through the link"
    );
    sb.manager(&["restore", "docs", "--delete", "docs/new.txt"])
        .fails(2)
        .stderr_contains("--delete restores the whole state");
}

#[test]
fn i6_kill_9_while_a_level_1_is_written_leaves_the_chain_as_it_was() {
    let sb = incremental_sandbox("");
    sb.manager(&["run", "0"]).ok();
    sb.write("docs/first.txt", "first\n");
    sb.manager(&["run", "0"]).ok();
    let before = level_ones(&sb);
    let day = sb.join("day");
    copy_tree(&sb.join("docs"), &day);
    sb.write("docs/second.txt", "second\n");
    let pause = Pause::new(&sb, "archive-written");
    let mut child = Pause::spawn_manager(&sb, &["run", "0"], &[&pause]);
    child.kill().unwrap();
    child.wait().unwrap();
    pause.release();
    assert_eq!(level_ones(&sb), before, "no half level-1");
    sb.manager(&["restore", "docs", "--to", "after-kill"]).ok();
    assert_eq!(tree(&sb.join("after-kill/docs")), tree(&day.join("docs")));
    sb.manager(&["run", "0"]).ok();
    // keep = 1: the new day replaces the one before.
    assert_eq!(level_ones(&sb).len(), 1);
    assert_ne!(level_ones(&sb), before);
}

#[test]
fn i7_a_level_1_whose_full_is_gone_fails_verify_naming_both() {
    let sb = incremental_sandbox("");
    let level_one = full_and_level_one(&sb);
    sb.manager(&["verify", "docs"])
        .ok()
        .stdout_contains(&format!("backups/{level_one}: sound, "))
        .stdout_contains(", level 1 on backups/docs.tar\n");
    fs::remove_file(sb.join("backups/docs.tar")).unwrap();
    sb.manager(&["verify", "docs"])
        .fails(1)
        .stderr_contains(&format!(
            "backups/{level_one} needs the full of docs written at "
        ))
        .stderr_contains("which is no longer in backups/");
    sb.manager(&["restore", "docs"])
        .fails(1)
        .stderr_contains("no archive of docs can be restored");
}

#[test]
fn i8_compressed_and_encrypted_chains_restore_and_verify_without_the_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let out = tool("age-keygen").arg("-o").arg(&key).output().unwrap();
    assert!(out.status.success(), "age-keygen: {}", stderr(&out));
    let out = tool("age-keygen").arg("-y").arg(&key).output().unwrap();
    let recipient = stdout(&out).trim().to_owned();
    let sb = incremental_sandbox(&format!(
        "compress = \"zstd\"\nencrypt_to = [\"{recipient}\"]\n"
    ));
    sb.manager(&["run", "0"]).ok();
    change_everything(&sb);
    sb.manager(&["run", "0"]).ok();
    let [level_one] = level_ones(&sb).try_into().expect("one level-1");
    assert!(level_one.ends_with(".inc.tar.zst.age"), "{level_one}");
    sb.manager(&["verify", "docs"])
        .ok()
        .stdout_contains(&format!("backups/{level_one}: sound as written"));
    let key = key.to_str().unwrap();
    sb.manager(&["restore", "docs", "--identity", key, "--to", "ours"])
        .ok();
    assert_eq!(tree(&sb.join("ours/docs")), tree(&sb.join("docs")));
    sb.manager(&["contents", "docs", "--identity", key])
        .ok()
        .stdout_contains("docs/keep.txt\n");
}

#[test]
fn i9_as_of_picks_the_newest_state_at_or_before_a_time() {
    let sb = incremental_sandbox("");
    full_and_level_one(&sb);
    let now = sb
        .manager(&["contents", "docs", "--as-of", &log_minute(0)])
        .ok()
        .stdout_text();
    assert!(now.contains("docs/new.txt\n"), "{now}");
    sb.manager(&["restore", "docs", "--as-of", "01/01/2001 00:00"])
        .fails(1)
        .stderr_contains("no archive of docs from 01/01/2001 00:00 or before");
    sb.manager(&["restore", "docs", "--as-of", "2001-01-01"])
        .fails(2)
        .stderr_contains("--as-of takes a local time as \"dd/mm/yyyy hh:mm\"");
}

/// `dd/mm/yyyy hh:mm` of the local minute `minutes` from now.
fn log_minute(minutes: i64) -> String {
    let out = Command::new("date")
        .arg("-d")
        .arg(format!("{minutes} minutes"))
        .arg("+%d/%m/%Y %H:%M")
        .output()
        .unwrap();
    stdout(&out).trim().to_owned()
}

#[test]
#[ignore = "needs root: mounts two tmpfs in turn at the folder"]
fn i10_a_folder_on_another_device_than_at_the_full_gets_a_full_and_a_warning() {
    assert_root("mounts tmpfs");
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "disk;03:30;disk\n");
    sb.write("backupbox.toml", "incremental = true\n");
    let disk = sb.join("disk");
    let first = SmallDisk::mount(&disk, "8m");
    sb.write("disk/a", "a\n");
    sb.manager(&["run", "0"]).ok();
    copy_tree(&disk, &sb.join("copy"));
    // Mounted over the first, which stays: a freed device number could be given again.
    let second = SmallDisk::mount(&disk, "8m");
    let out = Command::new("cp")
        .arg("-a")
        .arg(sb.join("copy/disk/a"))
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success());
    sb.manager(&["run", "0"]).ok();
    assert!(
        sb.manager_log().contains(
            &"Warning: disk is on another device than at the last full; writing a full".to_owned()
        ),
        "{}",
        sb.explain()
    );
    assert_eq!(level_ones(&sb), Vec::<String>::new());
    drop(second);
    drop(first);
}

#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs"]
fn i11_a_full_disk_fails_a_level_1_and_keeps_the_chain_as_it_was() {
    assert_root("mounts tmpfs");
    let sb = incremental_sandbox("");
    let _disk = SmallDisk::mount(&sb.join("backups"), "1m");
    sb.manager(&["run", "0"]).ok();
    sb.write("docs/small.txt", "fits\n");
    sb.manager(&["run", "0"]).ok();
    let before = level_ones(&sb);
    let day = sb.join("day");
    copy_tree(&sb.join("docs"), &day);
    let snapshot = sb.read("backups/docs.snapshot");
    sb.write("docs/large", noise(3 << 20));
    sb.manager(&["run", "0"])
        .fails(1)
        .stderr_contains("failed: can't write archive (No space left on device");
    assert_eq!(level_ones(&sb), before, "no level-1 of the failed run");
    assert_eq!(sb.temp_files(), Vec::<String>::new());
    assert_eq!(sb.read("backups/docs.snapshot"), snapshot);
    fs::remove_file(sb.join("docs/large")).unwrap();
    sb.manager(&["restore", "docs", "--to", "after"]).ok();
    assert_eq!(tree(&sb.join("after/docs")), tree(&day.join("docs")));
}

#[test]
fn i12_hooks_name_the_level_1_they_follow() {
    let sb = incremental_sandbox(
        "on_success = \"echo \\\"$BACKUPBOX_ARCHIVE $BACKUPBOX_SIZE\\\" >> hook.txt\"\n",
    );
    let level_one = full_and_level_one(&sb);
    let lines = String::from_utf8(sb.read("hook.txt")).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    let size = |file: &str| fs::metadata(sb.join("backups").join(file)).unwrap().len();
    let backups = fs::canonicalize(sb.join("backups")).unwrap();
    assert_eq!(
        lines,
        [
            format!("{}/docs.tar {}", backups.display(), size("docs.tar")),
            format!("{}/{level_one} {}", backups.display(), size(&level_one)),
        ],
        "{}",
        sb.explain()
    );
}

#[test]
fn i13_keep_counts_restorable_days_and_a_full_stays_while_a_kept_level_1_needs_it() {
    let sb = incremental_sandbox("keep = 3\n");
    let run = |days: &str, change: &str| {
        sb.write(&format!("docs/{change}"), change);
        let out = sb
            .command("backup_manager", &["run", "0"])
            .env("BACKUPBOX_TEST_DAYS_LATER", days)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stderr(&out), sb.explain());
    };
    run("0", "full");
    for change in ["a", "b", "c"] {
        run("0", change);
    }
    let days = level_ones(&sb);
    assert_eq!(days.len(), 3, "three days and their full: {}", sb.explain());
    run("0", "d");
    assert!(
        sb.manager_log()
            .contains(&format!("Removed backups/{}: more than 3 kept", days[0])),
        "{}",
        sb.explain()
    );
    // A new full: the old one becomes a generation and stays, for the level-1s still kept.
    run("7", "week-two");
    let kept = level_ones(&sb);
    assert_eq!(kept.len(), 2, "{}", sb.explain());
    let listing = sb.manager(&["backups", "--long"]).ok().stdout_text();
    let generation_line = listing
        .lines()
        .find(|line| line.contains("docs.2") && line.contains(".tar  ") && !line.contains(".inc."))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(generation_line.contains("(kept: needed by "), "{listing}");
    sb.manager(&["verify", "docs"]).ok();

    // Its full gone, a level-1 is the first to go, and says why.
    let generation = generation_line
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    fs::remove_file(sb.join("backups").join(&generation)).unwrap();
    sb.manager(&["prune", "--dry-run"])
        .ok()
        .stdout_contains(&format!(
            "backups/{}: would be removed: its full is gone",
            kept[0]
        ));
    sb.manager(&["prune"]).ok();
    assert_eq!(level_ones(&sb), Vec::<String>::new(), "{}", sb.explain());
    sb.manager(&["verify", "docs"]).ok();
}
