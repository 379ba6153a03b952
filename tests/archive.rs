//! Archives made by `backup_manager run`, read back by GNU tar and bsdtar, on odd trees, live
//! files, a full disk and a kill -9.

use crate::common::*;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn run_ok(sb: &Sandbox, index: &str) {
    let out = sb.manager(&["run", index]);
    out.ok();
}

fn member_names(archive: &Path) -> Vec<String> {
    gnu_tar_names(archive)
        .into_iter()
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .collect()
}

#[test]
fn a_plain_tree_matches_gnu_tar_names_and_contents() {
    let sb = Sandbox::new();
    sb.write("test/b.txt", "bee");
    sb.write("test/a/z.txt", "zed");
    sb.write("test/a/y.txt", "why");
    fs::create_dir_all(sb.join("test/empty")).unwrap();
    fs::set_permissions(sb.join("test/b.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    sb.write("backup_schedules.txt", "test;16:07;backup_test\n");
    run_ok(&sb, "0");
    assert_eq!(
        sb.manager_log(),
        ["Backup done for test in backups/backup_test.tar"]
    );

    let archive = sb.join("backups/backup_test.tar");
    assert_eq!(
        member_names(&archive),
        [
            "test/",
            "test/a/",
            "test/a/y.txt",
            "test/a/z.txt",
            "test/b.txt",
            "test/empty/"
        ]
    );
    assert_gnu_tar_compare_clean(&archive, sb.path());
    let listing = gnu_tar_list(&archive);
    assert!(
        listing[4].starts_with("-rw-r----- "),
        "mode kept: {}",
        listing[4]
    );

    // Private by default: the archive 0600, the backups folder 0700.
    assert_eq!(fs::metadata(&archive).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(sb.join("backups")).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn folder_names_are_stored_as_gnu_tar_stores_them() {
    let sb = Sandbox::new();
    sb.write("data/f", "x");
    let abs = sb.join("data");
    sb.write(
        "backup_schedules.txt",
        format!(
            "data/;00:00;slash\n./data;00:00;dot\n{};00:00;abs\nsub/../data;00:00;up\n",
            abs.display()
        ),
    );
    fs::create_dir(sb.join("sub")).unwrap();
    for (index, name) in ["slash", "dot", "abs", "up"].iter().enumerate() {
        run_ok(&sb, &index.to_string());
        let ours = member_names(&sb.join(format!("backups/{name}.tar")));
        let folder = ["data/", "./data", abs.to_str().unwrap(), "sub/../data"][index];
        let gnu_archive = sb.join(format!("gnu-{name}.tar"));
        let gnu = tool("tar")
            .arg("-cf")
            .arg(&gnu_archive)
            .arg(folder)
            .current_dir(sb.path())
            .output()
            .unwrap();
        assert!(gnu.status.success(), "{}", stderr(&gnu));
        let gnu_names = member_names(&gnu_archive);
        assert_eq!(ours, gnu_names, "folder {folder}");
    }
}

#[test]
fn odd_trees_round_trip_through_gnu_tar_and_bsdtar() {
    let sb = Sandbox::new();
    let _socket = make_odd_tree(&sb.join("odd"));
    sb.write("backup_schedules.txt", "odd;00:00;odd\n");
    run_ok(&sb, "0");

    assert_eq!(
        sb.manager_log(),
        [
            "Warning: odd/socket: socket ignored",
            "Backup done for odd in backups/odd.tar"
        ]
    );
    let archive = sb.join("backups/odd.tar");
    assert_gnu_tar_compare_clean(&archive, sb.path());
    let listing = gnu_tar_list(&archive);
    let names: Vec<&str> = listing
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(
        names.contains(&"odd/caf\\351"),
        "kept byte-exact: {names:?}"
    );
    assert!(names.contains(&"odd/new\\nline"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("socket")), "{names:?}");
    assert!(
        listing.iter().any(|l| l.starts_with("lrwxrwxrwx")
            && l.ends_with(&format!("odd/long_link -> {}", "t".repeat(300)))),
        "{listing:?}"
    );
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("prw-r--r--") && l.ends_with("odd/fifo")),
        "{listing:?}"
    );

    let out = tool("bsdtar")
        .arg("-tvf")
        .arg(&archive)
        .output()
        .expect("run bsdtar");
    assert!(out.status.success(), "bsdtar: {}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().count(),
        names.len(),
        "bsdtar sees every member: {}",
        stdout(&out)
    );
}

#[test]
fn a_9_gib_sparse_file_is_stored_sparse() {
    let sb = Sandbox::new();
    fs::create_dir(sb.join("sparse")).unwrap();
    let file = File::create(sb.join("sparse/disk.img")).unwrap();
    file.set_len(9 << 30).unwrap();
    use std::os::unix::fs::FileExt;
    file.write_all_at(b"in the middle", 5_000_000_000).unwrap();
    file.write_all_at(b"at the end", (9 << 30) - 10).unwrap();
    sb.write("backup_schedules.txt", "sparse;00:00;sparse\n");
    run_ok(&sb, "0");

    let archive = sb.join("backups/sparse.tar");
    assert!(
        fs::metadata(&archive).unwrap().len() < 1 << 20,
        "holes are not stored"
    );
    let listing = gnu_tar_list(&archive);
    assert!(
        listing
            .iter()
            .any(|l| l.contains(" 9663676416 ") && l.ends_with("sparse/disk.img")),
        "{listing:?}"
    );
    assert_gnu_tar_compare_clean(&archive, sb.path());
}

#[test]
fn a_folder_of_dot_never_contains_its_own_archive() {
    let sb = Sandbox::new();
    sb.write("file", "x");
    sb.write("backup_schedules.txt", ".;00:00;everything\n");
    run_ok(&sb, "0");
    run_ok(&sb, "0");
    let names = member_names(&sb.join("backups/everything.tar"));
    assert!(names.contains(&"./file".to_owned()), "{names:?}");
    assert!(names.contains(&"./backups/".to_owned()), "{names:?}");
    // Not even the finished archive of the first run: archives never hold earlier archives.
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("./backups/") || n == "./backups/"),
        "backups/ is stored empty: {names:?}"
    );
    let warning = "Warning: ./backups: backupbox's archive folder; its contents are not archived";
    let log = sb.manager_log();
    assert_eq!(
        log.iter().filter(|line| *line == warning).count(),
        2,
        "{log:?}"
    );
}

#[test]
fn a_linked_folder_is_followed_but_links_inside_are_not() {
    let sb = Sandbox::new();
    sb.write("real/inner/file", "data");
    symlink("real", sb.join("alias")).unwrap();
    symlink("inner", sb.join("real/inner_link")).unwrap();
    sb.write("backup_schedules.txt", "alias;00:00;alias\n");
    run_ok(&sb, "0");
    let listing = gnu_tar_list(&sb.join("backups/alias.tar"));
    assert!(
        listing[0].starts_with('d') && listing[0].ends_with("alias/"),
        "{listing:?}"
    );
    assert!(
        listing.iter().any(|l| l.ends_with("alias/inner/file")),
        "{listing:?}"
    );
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with('l') && l.ends_with("alias/inner_link -> inner")),
        "{listing:?}"
    );
}

#[test]
fn a_failed_backup_leaves_the_previous_archive_untouched() {
    let sb = Sandbox::new();
    sb.write("data/f", "version 1");
    sb.write("backup_schedules.txt", "data;00:00;keep\n");
    run_ok(&sb, "0");
    let before = sb.read("backups/keep.tar");
    fs::rename(sb.join("data"), sb.join("moved")).unwrap();
    let out = sb.manager(&["run", "0"]);
    out.fails(1);
    assert_eq!(
        sb.manager_log().last().unwrap(),
        "Error: backup of data to backups/keep.tar failed: folder not found"
    );
    assert_eq!(sb.read("backups/keep.tar"), before);

    sb.write("data", "a file, not a folder");
    sb.manager(&["run", "0"]).fails(1);
    assert_eq!(
        sb.manager_log().last().unwrap(),
        "Error: backup of data to backups/keep.tar failed: not a directory"
    );
    assert_eq!(sb.read("backups/keep.tar"), before);
    assert_eq!(stdout(&sb.manager(&["backups"])), "keep.tar\n");
}

#[test]
fn a_file_growing_during_the_backup_is_cut_at_its_header_size() {
    let sb = Sandbox::new();
    fs::create_dir(sb.join("live")).unwrap();
    let path = sb.join("live/growing.log");
    fs::write(&path, vec![b'a'; 64 << 20]).unwrap();
    sb.write("backup_schedules.txt", "live;00:00;live\n");

    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                file.write_all(&[b'b'; 64 << 10]).unwrap();
            }
        });
        // The file is growing the whole time the backup reads it.
        assert!(
            wait_until(Duration::from_secs(5), || fs::metadata(&path)
                .unwrap()
                .len()
                > 64 << 20),
            "{}",
            sb.explain()
        );
        let out = sb.manager(&["run", "0"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        out
    });
    out.ok();
    let log = sb.manager_log();
    let warning = log.iter().find(|l| {
        l.starts_with("Warning: live/growing.log: file grew while being archived; its first ")
    });
    let stored: u64 = warning
        .expect("a growth warning")
        .split_whitespace()
        .rev()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        log.last().unwrap(),
        "Backup done for live in backups/live.tar"
    );

    let archive = sb.join("backups/live.tar");
    let listing = gnu_tar_list(&archive);
    assert!(
        listing
            .iter()
            .any(|l| l.contains(&format!(" {stored} ")) && l.ends_with("live/growing.log")),
        "{listing:?}"
    );
    let member = tool("tar")
        .args(["-xOf"])
        .arg(&archive)
        .arg("live/growing.log")
        .output()
        .unwrap();
    assert!(member.status.success(), "{}", member.explain());
    assert_eq!(member.stdout.len() as u64, stored);
    assert_eq!(
        &member.stdout[..],
        &fs::read(&path).unwrap()[..usize::try_from(stored).unwrap()],
        "the stored bytes are the file's first bytes"
    );
}

#[test]
fn kill_9_mid_backup_keeps_the_previous_archive_and_the_next_service_start_cleans_up() {
    let sb = Sandbox::new();
    sb.write("big/small", "small");
    sb.write("backup_schedules.txt", "big;00:00;big\n");
    run_ok(&sb, "0");
    let previous = sb.read("backups/big.tar");

    sb.write_large("big/large", 4);
    let written = Pause::new(&sb, "archive-written");
    let mut child = Pause::spawn_manager(&sb, &["run", "0"], &[&written]);
    signal(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();

    assert_eq!(
        sb.read("backups/big.tar"),
        previous,
        "the previous archive is byte-identical"
    );
    let leftover = sb
        .temp_files()
        .pop()
        .expect("kill -9 leaves the temporary file");
    assert_eq!(
        stdout(&sb.manager(&["backups"])),
        "big.tar\n",
        "backups never lists it"
    );

    // The next service start removes it.
    let service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(10), || sb.temp_files().is_empty()),
        "left in place by the service"
    );
    stop_foreground(service);
    let log = sb.service_log();
    assert_eq!(
        log,
        [format!(
            "Warning: removed backups/{}, left by a backup that was interrupted",
            leftover
        )]
    );
}

#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs"]
fn a_full_disk_fails_the_backup_and_keeps_the_previous_archive() {
    let sb = Sandbox::new();
    let _disk = SmallDisk::mount(&sb.join("backups"), "1m");
    sb.write("data/small", "fits");
    sb.write("backup_schedules.txt", "data;00:00;data\n");
    run_ok(&sb, "0");
    let previous = sb.read("backups/data.tar");
    assert!(!previous.is_empty(), "{previous:?}");

    sb.write("data/large", vec![7u8; 3 << 20]);
    let out = sb.manager(&["run", "0"]);
    out.fails(1);
    let last = sb.manager_log().last().unwrap().clone();
    assert!(
        last.starts_with("Error: backup of data to backups/data.tar failed: can't write archive (No space left on device"),
        "{last}"
    );
    assert_eq!(
        sb.read("backups/data.tar"),
        previous,
        "the previous archive is byte-identical"
    );
    let names: Vec<_> = fs::read_dir(sb.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "the temporary file goes away at once: {names:?}"
    );
    assert_eq!(
        gnu_tar_list(&sb.join("backups/data.tar")).len(),
        2,
        "still a readable archive of data/ and data/small"
    );
}

#[test]
fn two_jobs_never_write_the_same_archive_at_once() {
    let sb = Sandbox::new();
    sb.write_large("data/large", 4);
    sb.write("other/f", "x");
    sb.write(
        "backup_schedules.txt",
        "data;00:00;shared\nother;00:00;shared\n",
    );
    let written = Pause::new(&sb, "archive-written");
    let mut first = Pause::spawn_manager(&sb, &["run", "0"], &[&written]);
    let second = sb.manager(&["run", "1"]);
    second.fails(1);
    second.stderr_contains("skipped");
    written.release();
    assert!(first.wait().unwrap().success(), "{}", sb.explain());
    assert_eq!(
        sb.manager_log(),
        [
            "Error: backup of other to backups/shared.tar skipped: another backup is still writing it",
            "Backup done for data in backups/shared.tar",
        ]
    );
    assert_gnu_tar_compare_clean(&sb.join("backups/shared.tar"), sb.path());
}

#[test]
#[ignore = "needs root: makes a bind mount"]
fn a_bind_mount_loop_is_archived_once() {
    let sb = Sandbox::new();
    sb.write("tree/file", "x");
    fs::create_dir(sb.join("tree/again")).unwrap();
    let bind = tool("mount")
        .arg("--bind")
        .arg(sb.join("tree"))
        .arg(sb.join("tree/again"))
        .output();
    let bind = bind.expect("run mount");
    assert!(
        bind.status.success(),
        "bind mount refused (this test needs root): {}",
        stderr(&bind).trim()
    );
    sb.write("backup_schedules.txt", "tree;00:00;tree\n");
    let out = sb.manager(&["run", "0"]);
    let _ = Command::new("umount")
        .arg("-l")
        .arg(sb.join("tree/again"))
        .status();
    out.ok();
    assert_eq!(
        sb.manager_log(),
        [
            "Warning: tree/again: directory loop (a bind mount?); its contents are not archived again",
            "Backup done for tree in backups/tree.tar"
        ]
    );
    assert_eq!(
        member_names(&sb.join("backups/tree.tar")),
        ["tree/", "tree/again/", "tree/file"]
    );
}

#[test]
fn files_removed_mid_walk_are_skipped_with_a_warning() {
    let sb = Sandbox::new();
    // `a_big` sorts first: the walk lists the folder, then spends a while copying it.
    sb.write_large("live/a_big", 256);
    for i in 0..5 {
        sb.write(&format!("live/f{i}"), "soon gone");
    }
    sb.write("backup_schedules.txt", "live;00:00;live\n");
    let mut run = sb.command("backup_manager", &["run", "0"]).spawn().unwrap();
    // Past the first megabyte of output, the folder has been listed and a_big is being copied.
    let copying = || {
        let temp = sb.temp_files().pop();
        temp.is_some_and(|t| {
            fs::metadata(sb.join("backups").join(t)).is_ok_and(|m| m.len() > 1 << 20)
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), copying),
        "never saw the copy under way"
    );
    for i in 0..5 {
        fs::remove_file(sb.join(format!("live/f{i}"))).unwrap();
    }
    assert!(
        run.try_wait().unwrap().is_none(),
        "the walk must still be copying for this test to mean anything"
    );
    assert!(run.wait().unwrap().success(), "{}", sb.explain());
    let log = sb.manager_log();
    let expected: Vec<String> = (0..5)
        .map(|i| format!("Warning: live/f{i}: file removed before it was read; not archived"))
        .chain(["Backup done for live in backups/live.tar".to_owned()])
        .collect();
    assert_eq!(log, expected);
    assert_eq!(
        member_names(&sb.join("backups/live.tar")),
        ["live/", "live/a_big"]
    );
}

#[test]
fn a_tree_deeper_than_path_max_is_archived_whole() {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let sb = Sandbox::new();
    sb.write("deep/start", "");
    // 300 levels of 20-byte names: 6,300-byte paths, past PATH_MAX and past the number of
    // directories the walk keeps open. Each level also has a file that sorts after the next
    // level, so the walk must come back up to every directory to finish it.
    let level = "d".repeat(20);
    let mut dir = File::open(sb.join("deep")).unwrap();
    let mut expected = vec!["deep/".to_owned()];
    let mut path = "deep".to_owned();
    for _ in 0..300 {
        let mut z = File::from(
            openat(
                &dir,
                "z",
                OFlag::O_CREAT | OFlag::O_WRONLY,
                Mode::from_bits_truncate(0o644),
            )
            .unwrap(),
        );
        z.write_all(path.as_bytes()).unwrap();
        mkdirat(&dir, level.as_str(), Mode::from_bits_truncate(0o755)).unwrap();
        dir = File::from(openat(&dir, level.as_str(), OFlag::O_RDONLY, Mode::empty()).unwrap());
        path = format!("{path}/{level}");
        expected.push(format!("{path}/"));
    }
    // Expected order: each directory, then (after all it contains) the z beside it.
    let mut zs: Vec<String> = expected[..300].iter().map(|d| format!("{d}z")).collect();
    zs.reverse();
    expected.extend(zs);
    expected.insert(expected.len() - 1, "deep/start".to_owned());
    sb.write("backup_schedules.txt", "deep;00:00;deep\n");
    run_ok(&sb, "0");

    let archive = sb.join("backups/deep.tar");
    let names = member_names(&archive);
    let first_difference = names.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(
        (names.len(), first_difference),
        (expected.len(), None),
        "member lists differ"
    );
    let deepest_z = &expected[301];
    let out = tool("tar")
        .args(["-xOf", archive.to_str().unwrap(), deepest_z])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        deepest_z.strip_suffix("/z").unwrap()
    );
    assert_eq!(
        sb.manager_log(),
        ["Backup done for deep in backups/deep.tar"]
    );
}

#[test]
fn readers_ahead_change_nothing_in_the_archive() {
    let sb = Sandbox::new();
    for dir in 0..4 {
        for file in 0..150 {
            sb.write(
                &format!("tree/d{dir}/sub/f{file}"),
                format!("{dir}-{file}-").repeat(file % 40 + 1),
            );
            sb.write(&format!("tree/d{dir}/g{file}"), format!("{file}"));
        }
    }
    sb.write("backup_schedules.txt", "tree;00:00;tree\n");
    let mut archives = Vec::new();
    for readers in [1, 8] {
        sb.write("backupbox.toml", format!("read_threads = {readers}\n"));
        run_ok(&sb, "0");
        assert_gnu_tar_compare_clean(&sb.join("backups/tree.tar"), sb.path());
        archives.push(sb.read("backups/tree.tar"));
    }
    assert_eq!(
        gnu_tar_list(&sb.join("backups/tree.tar")).len(),
        1 + 4 * 2 + 4 * 300
    );
    assert!(
        archives[0] == archives[1],
        "the same bytes with 1 and 8 readers"
    );
}
