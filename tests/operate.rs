//! Operating a backup system: `status` and its exit codes, `--keep` generations (with a
//! crash in the middle), `verify`, `restore`, and the foreground service's stderr and SIGHUP.

use crate::common::*;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn status(sb: &Sandbox) -> (i32, String) {
    let out = sb.manager(&["status"]);
    (code(&out), stdout(&out))
}

fn archive_size(sb: &Sandbox, file: &str) -> u64 {
    fs::metadata(sb.join("backups").join(file)).unwrap().len()
}

/// The bytes of `member` in `archive`, as GNU tar extracts them.
fn member_bytes(archive: &Path, member: &str) -> String {
    let out = tool("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -xOf: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn status_shows_next_and_last_runs_and_its_exit_code_says_whether_all_is_well() {
    let sb = Sandbox::new();
    sb.write("docs/a", "alpha");
    let (docs_at, missing_at) = (minute_from_now(120), minute_from_now(180));
    sb.write(
        "backup_schedules.txt",
        format!("docs;{docs_at};docs\nmissing;{missing_at};missing\n"),
    );

    let (exit, text) = status(&sb);
    assert_eq!(exit, 1, "no service: not well\n{text}");
    assert!(text.starts_with(&format!(
        "backup_service: not running\nbase directory: {}\n0: docs;{docs_at};docs\n   next run: ",
        sb.path().canonicalize().unwrap().display()
    )), "{text:?}");
    assert_eq!(text.matches("   last run: none yet\n").count(), 2, "{text}");
    assert!(
        text.ends_with("status: needs attention: the service is not running\n"),
        "{text:?}"
    );

    sb.manager(&["start"]).ok();
    let pid = sb.service_pid().unwrap();
    let (exit, text) = status(&sb);
    assert_eq!(exit, 0, "service up, nothing due yet: well\n{text}");
    assert!(
        text.starts_with(&format!("backup_service: running, PID {pid}, since ")),
        "{text:?}"
    );
    assert!(text.ends_with("status: ok\n"), "{text:?}");

    sb.manager(&["run", "0"]).ok();
    let size = archive_size(&sb, "docs.tar");
    let (exit, text) = status(&sb);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains(&format!(", ok, {size} bytes in ")), "{text}");

    sb.manager(&["run", "1"]).fails(1);
    let (exit, text) = status(&sb);
    assert_eq!(exit, 1, "a failed schedule: not well\n{text}");
    assert!(
        text.contains(", error after 0.0")
            && text
                .contains("s: backup of missing to backups/missing.tar failed: folder not found\n"),
        "{text}"
    );
    assert!(
        text.ends_with("status: needs attention: schedule 1 failed last time\n"),
        "{text:?}"
    );

    let out = sb.manager(&["status", "--json"]);
    out.fails(1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["healthy"], false);
    assert_eq!(json["service"]["pid"], pid);
    assert_eq!(json["schedules"][0]["name"], "docs");
    assert_eq!(json["schedules"][0]["last"]["ok"], true);
    assert_eq!(json["schedules"][0]["last"]["size"], size);
    assert_eq!(json["schedules"][1]["last"]["ok"], false);
    assert_eq!(
        json["schedules"][1]["last"]["error"],
        "backup of missing to backups/missing.tar failed: folder not found"
    );

    // Fixed and run again: well again. Then the service stops: not well.
    sb.write("missing/m", "now here");
    sb.manager(&["run", "1"]).ok();
    assert_eq!(status(&sb).0, 0);
    sb.manager(&["stop"]).ok();
    assert_eq!(status(&sb).0, 1);
    // The spec's log lines are untouched; status adds its own.
    assert!(
        sb.manager_log().contains(&"Show status".to_owned()),
        "{}",
        sb.explain()
    );
}

#[test]
fn keep_3_across_five_runs_keeps_the_newest_three() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "docs;00:00;docs\n");
    for run in 1..=5 {
        sb.write("docs/version", format!("version {run}"));
        let out = sb.manager(&["run", "0", "--keep", "3"]);
        out.ok();
        // Each archive gets its own day, so the generation names are known in advance.
        touch(
            &sb.join("backups/docs.tar"),
            &format!("2026-01-0{run} 03:30:00"),
        );
    }
    let out = sb.manager(&["backups"]);
    out.stdout_is("docs.2026-01-03_033000.tar\ndocs.2026-01-04_033000.tar\ndocs.tar\n");
    let backups = sb.join("backups");
    for (file, version) in [
        ("docs.tar", 5),
        ("docs.2026-01-04_033000.tar", 4),
        ("docs.2026-01-03_033000.tar", 3),
    ] {
        assert_eq!(
            member_bytes(&backups.join(file), "docs/version"),
            format!("version {version}")
        );
    }
    let done = "Backup done for docs in backups/docs.tar";
    let kept = |day: u32| {
        format!("Kept previous backups/docs.tar as backups/docs.2026-01-0{day}_033000.tar")
    };
    let removed =
        |day: u32| format!("Removed backups/docs.2026-01-0{day}_033000.tar: more than 3 kept");
    assert_eq!(
        sb.manager_log(),
        [
            done.to_owned(),
            kept(1),
            done.to_owned(),
            kept(2),
            done.to_owned(),
            kept(3),
            removed(1),
            done.to_owned(),
            kept(4),
            removed(2),
            done.to_owned(),
            "Show backups list".to_owned(),
        ]
    );

    let long = stdout(&sb.manager(&["backups", "--long"]));
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 3);
    let size = archive_size(&sb, "docs.2026-01-03_033000.tar");
    assert!(
        lines[0].trim_start().starts_with(&format!(
            "{size}  2026-01-03 03:30:00  docs.2026-01-03_033000.tar"
        )),
        "{long}"
    );

    // Without --keep, the spec's behaviour: one archive replaced, generations left alone.
    sb.manager(&["run", "0"]).ok();
    assert_eq!(stdout(&sb.manager(&["backups"])).lines().count(), 3);
}

#[test]
fn a_crash_during_rotation_loses_nothing() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "big;00:00;big\n");
    sb.write_large("big/data", 4);
    sb.manager(&["run", "0", "--keep", "3"]).ok();
    touch(&sb.join("backups/big.tar"), "2026-01-01 03:30:00");
    sb.manager(&["run", "0", "--keep", "3"]).ok();
    let before: Vec<(String, Vec<u8>)> = ["big.tar", "big.2026-01-01_033000.tar"]
        .iter()
        .map(|f| (f.to_string(), fs::read(sb.join("backups").join(f)).unwrap()))
        .collect();

    // kill -9 while the next archive is being written.
    sb.write_large("big/more", 4);
    let written = Pause::new(&sb, "archive-written");
    let mut run = Pause::spawn_manager(&sb, &["run", "0", "--keep", "3"], &[&written]);
    run.kill().unwrap();
    // SIGKILL is delivered asynchronously: wait until the process is a zombie.
    let pid = run.id() as i32;
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "{}",
        sb.explain()
    );
    // Not reaped yet: a zombie still has /proc/PID, and must not count as running.
    let (exit, text) = status(&sb);
    run.wait().unwrap();
    assert_eq!(exit, 1);
    assert!(
        text.contains(", interrupted: its process ended before the backup did\n")
            && text.contains("schedule 0 was interrupted"),
        "{text}"
    );
    for (file, bytes) in &before {
        assert!(
            fs::read(sb.join("backups").join(file)).unwrap() == *bytes,
            "{file} changed"
        );
    }

    // A crash after the previous archive got its generation name, before the new one took
    // its place: the link is there, the rename is not. The next run must not keep it twice.
    let stamp_of_current = {
        let mtime = fs::metadata(sb.join("backups/big.tar")).unwrap().mtime();
        let out = Command::new("date")
            .arg("-d")
            .arg(format!("@{mtime}"))
            .arg("+%Y-%m-%d_%H%M%S")
            .output()
            .unwrap();
        stdout(&out).trim().to_owned()
    };
    let generation = format!("big.{stamp_of_current}.tar");
    fs::hard_link(
        sb.join("backups/big.tar"),
        sb.join("backups").join(&generation),
    )
    .unwrap();
    sb.manager(&["run", "0", "--keep", "3"]).ok();
    let listing = stdout(&sb.manager(&["backups"]));
    assert_eq!(
        listing,
        format!("big.2026-01-01_033000.tar\n{generation}\nbig.tar\n"),
        "no generation twice, none lost"
    );
    assert_eq!(
        fs::read(sb.join("backups").join(&generation)).unwrap(),
        before[0].1,
        "the linked generation is the archive that was replaced"
    );
    assert_gnu_tar_compare_clean(&sb.join("backups/big.tar"), sb.path());
}

#[test]
fn verify_passes_a_sound_archive_and_names_the_first_defect_of_a_damaged_one() {
    let sb = Sandbox::new();
    sb.write("docs/a", "alpha");
    sb.write("docs/sub/b", "beta");
    sb.write("backup_schedules.txt", "docs;00:00;docs\n");
    sb.manager(&["run", "0"]).ok();

    let out = sb.manager(&["verify", "docs"]);
    out.ok();
    out.stdout_is("backups/docs.tar: sound, 4 members\n");
    let out = sb.manager(&["verify", "docs", "--against"]);
    out.ok();
    out.stdout_is("backups/docs.tar: sound, 4 members, same as docs\n");

    // The live folder moves on: --against lists what differs.
    sb.write("docs/a", "ALPHA");
    fs::remove_file(sb.join("docs/sub/b")).unwrap();
    let out = sb.manager(&["verify", "docs", "--against"]);
    out.fails(1);
    let listing = stdout(&out);
    assert!(listing.contains("docs/a: contents differ\n"), "{listing}");
    assert!(
        listing.contains("docs/sub/b: missing on disk\n"),
        "{listing}"
    );
    out.stderr_contains("Error: backups/docs.tar differs from docs in ");

    // A flipped byte in the second header (docs/a).
    let archive = sb.join("backups/docs.tar");
    let sound = fs::read(&archive).unwrap();
    let mut damaged = sound.clone();
    damaged[512 + 3] ^= 0x01;
    fs::write(&archive, &damaged).unwrap();
    let out = sb.manager(&["verify", "docs"]);
    out.fails(1);
    out.stdout_is("");
    let expected =
        "Error: backups/docs.tar is damaged: bad header checksum at byte 512 (after member docs/)";
    assert_eq!(stderr(&out).trim_end(), expected);

    // Truncated in the middle of a member's data, and before the end marker.
    let mut file = OpenOptions::new().write(true).open(&archive).unwrap();
    file.write_all(&sound).unwrap();
    file.set_len(512 + 512 + 100).unwrap();
    let out = sb.manager(&["verify", "docs"]);
    out.fails(1);
    out.stderr_contains("is damaged: truncated: member docs/a needs 512 bytes of data from byte 1024, the archive has 100");
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&sound).unwrap();
    // Six blocks of members, then the end marker was cut off.
    file.set_len(6 * 512).unwrap();
    let out = sb.manager(&["verify", "docs"]);
    out.fails(1);
    out.stderr_contains("no end-of-archive marker");

    // Archives GNU tar wrote, in its own formats, count the same members it lists.
    for format in ["gnu", "posix", "oldgnu"] {
        let archive = sb.join(format!("backups/gnu_{format}.tar"));
        let out = tool("tar")
            .arg(format!("--format={format}"))
            .arg("-cf")
            .arg(&archive)
            .arg("docs")
            .current_dir(sb.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let members = gnu_tar_names(&archive).len();
        let out = sb.manager(&["verify", &format!("gnu_{format}")]);
        assert_eq!(
            stdout(&out),
            format!("backups/gnu_{format}.tar: sound, {members} members\n")
        );
    }

    let log = sb.manager_log();
    assert_eq!(log[1], "Verified backups/docs.tar: sound, 4 members");
    assert_eq!(
        log[2],
        "Verified backups/docs.tar: sound, 4 members, same as docs"
    );
    assert!(
        log[4].starts_with("Error: backups/docs.tar is damaged: bad header checksum"),
        "{}",
        sb.explain()
    );
}

/// A crafted member: name, type and link target, byte-exact.
type RawMember = (&'static [u8], tar::EntryType, &'static [u8]);

/// One raw tar header (GNU format) with a name and link target exactly as given.
fn raw_member(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_mtime(1_769_699_250);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn restore_refuses_a_crafted_archive_before_writing_anything() {
    let sb = Sandbox::new();
    fs::create_dir(sb.join("backups")).unwrap();
    let cases: [(&str, Vec<RawMember>, &str); 4] = [
        (
            "dotdot",
            vec![
                (b"ok/fine", tar::EntryType::Regular, b""),
                (b"ok/../../escaped", tar::EntryType::Regular, b""),
            ],
            "ok/../../escaped: member name contains '..'",
        ),
        (
            "absolute",
            vec![(
                b"/tmp/backupbox-absolute-escape",
                tar::EntryType::Regular,
                b"",
            )],
            "/tmp/backupbox-absolute-escape: absolute member name",
        ),
        (
            "through_link",
            vec![
                (b"ok/link", tar::EntryType::Symlink, b"."),
                (b"ok/link/file", tar::EntryType::Regular, b""),
            ],
            "ok/link/file: would be written through a symlink",
        ),
        (
            "outside_link",
            vec![(b"ok/up", tar::EntryType::Symlink, b"../../..")],
            "ok/up: symlink points outside the restore folder (../../..)",
        ),
    ];
    for (name, members, refusal) in cases {
        let mut bytes = Vec::new();
        for (member, kind, link) in members {
            raw_member(&mut bytes, member, kind, link, b"payload");
        }
        bytes.extend_from_slice(&[0u8; 1024]);
        fs::write(sb.join(format!("backups/{name}.tar")), &bytes).unwrap();
        // Links leading out are restored as stored by default; the strict mode refuses them.
        let out = sb.manager(&["restore", name, "--refuse-outside-links"]);
        out.fails(1);
        assert!(
            stderr(&out).contains(&format!(
                "Error: restore of backups/{name}.tar to {} failed: {refusal}",
                sb.join("restore").join(name).display()
            )),
            "{name}: {}",
            stderr(&out)
        );
        assert!(
            !sb.join("restore").join(name).exists(),
            "{name}: nothing written"
        );
    }
    assert!(
        !sb.path().parent().unwrap().join("escaped").exists(),
        "{}",
        sb.explain()
    );
    assert!(
        !Path::new("/tmp/backupbox-absolute-escape").exists(),
        "{}",
        sb.explain()
    );
}

/// Every entry below `root` with its mode and mtime (symlinks by their own metadata).
fn modes_and_mtimes(root: &Path) -> Vec<(String, u32, i64)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_dir() {
                stack.push(path.clone());
            }
            if meta.file_type().is_symlink() {
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            found.push((relative, meta.mode(), meta.mtime()));
        }
    }
    found.sort();
    found
}

#[test]
fn restore_round_trips_the_odd_tree_with_modes_and_mtimes() {
    let sb = Sandbox::new();
    let socket = make_odd_tree(&sb.join("odd"));
    fs::set_permissions(sb.join("odd/zero"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::set_permissions(sb.join("odd/empty"), fs::Permissions::from_mode(0o700)).unwrap();
    touch(&sb.join("odd/empty"), "2001-02-03 04:05:06");
    sb.write("backup_schedules.txt", "odd;00:00;odd\n");
    sb.manager(&["run", "0"]).ok();
    drop(socket);
    fs::remove_file(sb.join("odd/socket")).unwrap();

    // odd/outside points at /etc/passwd: restored as stored by default, and counted;
    // refused in the strict mode.
    let out = sb.manager(&["restore", "odd", "--refuse-outside-links"]);
    out.fails(1);
    assert!(stderr(&out).contains(
        "odd/outside: symlink points outside the restore folder (/etc/passwd); without --refuse-outside-links such links are restored as they are"
    ), "{}", out.explain());
    assert!(!sb.join("restore/odd").exists(), "nothing written");
    let out = sb.manager(&["restore", "odd"]);
    out.ok();
    let restored = sb.join("restore/odd/odd");
    out.stdout_contains(&format!(
        "backups/odd.tar: 1 restored symlinks point outside {} (restored as stored; --refuse-outside-links refuses them)",
        sb.join("restore/odd").display()
    ));

    let diff = Command::new("diff")
        .args(["-r", "--no-dereference", "-x", "fifo"])
        .arg(sb.join("odd"))
        .arg(&restored)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "diff -r: {}{}",
        stdout(&diff),
        stderr(&diff)
    );
    assert_eq!(
        modes_and_mtimes(&sb.join("odd")),
        modes_and_mtimes(&restored)
    );
    assert!(
        fs::symlink_metadata(restored.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo(),
        "{}",
        sb.explain()
    );
    assert_eq!(
        fs::read_link(restored.join("long_link")).unwrap(),
        Path::new(&"t".repeat(300))
    );

    // Again: nothing is overwritten without --force; with it, all is.
    let out = sb.manager(&["restore", "odd", "--outside-links"]);
    out.fails(1);
    out.stderr_contains("already exists; add --force to overwrite");
    fs::write(restored.join("zero"), "changed").unwrap();
    let out = sb.manager(&["restore", "odd", "--outside-links", "--force"]);
    out.ok();
    assert_eq!(fs::read(restored.join("zero")).unwrap(), b"");

    // --to puts it elsewhere; the log names each restore.
    let elsewhere = sb.join("elsewhere");
    let out = sb.manager(&[
        "restore".as_ref(),
        "odd".as_ref(),
        "--outside-links".as_ref(),
        "--to".as_ref(),
        elsewhere.as_os_str(),
    ]);
    out.ok();
    assert!(elsewhere.join("odd/zero").exists(), "{}", sb.explain());
    let log = sb.manager_log();
    assert!(
        log.contains(&format!(
            "Restore done for backups/odd.tar in {}",
            elsewhere.display()
        )),
        "{log:?}"
    );
}

#[test]
fn the_foreground_service_logs_to_stderr_too_and_sighup_rereads_the_plan() {
    let sb = Sandbox::new();
    // Away from a minute boundary: a tick between the plan edit and the SIGHUP would report
    // the malformed line once more (once per problem, and again after each reload).
    current_minute();
    sb.write(
        "backup_schedules.txt",
        format!("docs;{};docs\n", minute_from_now(120)),
    );
    let mut service = sb
        .command("backup_service", &[] as &[&str])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = service.id() as i32;
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid() == Some(pid)),
        "{}",
        sb.explain()
    );

    sb.write(
        "backup_schedules.txt",
        format!("docs;{};docs\nnot a schedule\n", minute_from_now(120)),
    );
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let reloaded = || {
        sb.service_log()
            .contains(&"Plan reloaded: 1 schedules".to_owned())
    };
    assert!(
        wait_until(Duration::from_secs(10), reloaded),
        "SIGHUP was not acted on at once"
    );
    stop_foreground_keeping(&mut service);
    let mut mirrored = String::new();
    std::io::Read::read_to_string(service.stderr.as_mut().unwrap(), &mut mirrored).unwrap();
    assert_eq!(
        sb.service_log(),
        [
            "Error: malformed schedule: not a schedule",
            "Plan reloaded: 1 schedules"
        ]
    );
    let log_file = String::from_utf8(sb.read("logs/backup_service.log")).unwrap();
    assert_eq!(
        mirrored, log_file,
        "stderr carries the same lines as the log"
    );
}

/// SIGTERM to a foreground service whose pipes the test still reads.
fn stop_foreground_keeping(service: &mut std::process::Child) {
    signal(service.id() as i32, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(service.wait().unwrap().code(), Some(0));
}

#[test]
fn the_service_run_by_start_keeps_generations_when_asked() {
    let sb = Sandbox::new();
    sb.write("docs/a", "alpha");
    // An old archive to rotate: any complete file under the name counts.
    sb.write("backups/docs.tar", "");
    touch(&sb.join("backups/docs.tar"), "2026-01-01 03:30:00");
    sb.plan_now("docs", "docs");
    sb.manager(&["start", "--keep", "2"]).ok();
    let done = || {
        sb.service_log()
            .contains(&"Backup done for docs in backups/docs.tar".to_owned())
    };
    assert!(
        wait_until(Duration::from_secs(20), done),
        "{}",
        sb.explain()
    );
    sb.manager(&["stop"]).ok();
    assert_eq!(
        sb.service_log(),
        [
            "Kept previous backups/docs.tar as backups/docs.2026-01-01_033000.tar",
            "Backup done for docs in backups/docs.tar"
        ]
    );
    assert_gnu_tar_compare_clean(&sb.join("backups/docs.tar"), sb.path());
}

#[test]
fn restore_and_verify_read_the_archive_they_checked() {
    let sb = Sandbox::new();
    sb.write("data/f", "good");
    sb.write("backup_schedules.txt", "data;00:00;data\n");
    sb.manager(&["run", "0"]).ok();
    // What someone puts in the archive's place after the check must not be what is used.
    let evil = crate::common::RawArchive::new()
        .member(b"data/f", tar::EntryType::Regular, b"", b"evil")
        .finish();
    fs::write(sb.join("evil.tar"), &evil).unwrap();
    let checked = Pause::new(&sb, "archive-checked");
    for args in [&["restore", "data"][..], &["verify", "data", "--against"]] {
        let child = Pause::spawn_manager(&sb, args, &[&checked]);
        fs::copy(sb.join("backups/data.tar"), sb.join("good.tar")).unwrap();
        fs::rename(sb.join("evil.tar"), sb.join("backups/data.tar")).unwrap();
        checked.release();
        child.wait_with_output().unwrap().ok();
        fs::rename(sb.join("backups/data.tar"), sb.join("evil.tar")).unwrap();
        fs::rename(sb.join("good.tar"), sb.join("backups/data.tar")).unwrap();
    }
    assert_eq!(fs::read(sb.join("restore/data/data/f")).unwrap(), b"good");
}
