//! What a hostile user tries: restore as root into a folder they can write, crafted archives,
//! FIFOs and links where files are expected, times out of range, and a job that panics.
//! Each test names the point of the trust issue it covers.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};
use tar::EntryType;

/// A file outside every restore target, owned by root with mode 0600.
fn victim(sb: &Sandbox) -> std::path::PathBuf {
    let path = sb.join("victim");
    fs::write(&path, "precious").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn restore_to(sb: &Sandbox, name: &str, to: &Path, flags: &[&str]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "restore".as_ref(),
        name.as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    sb.manager(&args)
}

fn put_archive(sb: &Sandbox, name: &str, bytes: &[u8]) {
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(sb.join(format!("backups/{name}.tar")), bytes).unwrap();
}

// 1. restore never changes anything outside its target.

#[test]
#[ignore = "needs root: restores as root into a folder another user owns"]
fn trust_1a_a_planted_symlink_at_a_directory_member_is_refused_or_replaced() {
    assert_root("chown");
    let sb = Sandbox::new();
    sb.write("home/alice/d/notes", "mine");
    nix::unistd::chown(
        &sb.join("home/alice/d"),
        Some(nix::unistd::Uid::from_raw(4242)),
        Some(nix::unistd::Gid::from_raw(4242)),
    )
    .unwrap();
    sb.write("backup_schedules.txt", "home/alice;00:00;alice\n");
    sb.manager(&["run", "0"]).ok();
    let victim = victim(&sb);
    let before = fingerprint(&victim);
    let target = sb.join("R");
    fs::create_dir_all(target.join("home/alice")).unwrap();
    symlink(&victim, target.join("home/alice/d")).unwrap();

    let out = restore_to(&sb, "alice", &target, &[]);
    out.fails(1);
    out.stderr_contains("home/alice/d exists and is not a directory; add --force");
    assert_eq!(fingerprint(&victim), before);

    let out = restore_to(&sb, "alice", &target, &["--force"]);
    out.ok();
    let restored = fs::symlink_metadata(target.join("home/alice/d")).unwrap();
    assert!(
        restored.is_dir(),
        "the planted link is replaced by the directory"
    );
    assert_eq!(restored.uid(), 4242);
    assert_eq!(
        fs::read(target.join("home/alice/d/notes")).unwrap(),
        b"mine"
    );
    assert_eq!(fingerprint(&victim), before);
}

#[test]
fn trust_1b_a_crafted_symlink_chain_never_reaches_the_victim() {
    let sb = Sandbox::new();
    let victim = victim(&sb);
    let before = fingerprint(&victim);
    let relative_victim = victim.to_str().unwrap().trim_start_matches('/').to_owned();
    // Each link alone stays inside; together they climb to / and on to the victim.
    let mut chain = RawArchive::new()
        .member(b"a/", EntryType::Directory, b"", b"")
        .member(b"a/b", EntryType::Symlink, b"..", b"")
        .member(b"p1", EntryType::Symlink, b"a/b/..", b"");
    for n in 2..=15 {
        let link = format!("p{}/..", n - 1);
        chain = chain.member(
            format!("p{n}").as_bytes(),
            EntryType::Symlink,
            link.as_bytes(),
            b"",
        );
    }
    let x = format!("p15/{relative_victim}");
    let chain = chain
        .member(b"x", EntryType::Symlink, x.as_bytes(), b"")
        .member_as(b"x/", EntryType::Directory, b"", b"", 0o4777, 0)
        .finish();
    put_archive(&sb, "chain", &chain);
    let target = sb.join("R");
    let out = restore_to(&sb, "chain", &target, &[]);
    out.fails(1);
    assert!(
        stderr(&out).contains("appears twice in the archive")
            || stderr(&out).contains("symlink points outside"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists(), "nothing written");
    assert_eq!(fingerprint(&victim), before);

    // Without the directory member, the chain itself is judged by where it leads.
    let links_only: Vec<u8> = {
        let end = chain.len() - 1024 - 512;
        let mut bytes = chain[..end].to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        bytes
    };
    put_archive(&sb, "links", &links_only);
    let out = restore_to(&sb, "links", &target, &["--refuse-outside-links"]);
    out.fails(1);
    out.stderr_contains("p1: symlink points outside the restore folder (a/b/..)");
    assert!(!target.exists(), "{}", sb.explain());
    // By default the same links are restored as they are: data, never written through.
    let out = restore_to(&sb, "links", &sb.join("R2"), &[]);
    out.ok();
    out.stdout_contains("restored symlinks point outside");
    assert_eq!(fingerprint(&victim), before);

    // With --outside-links a link may point anywhere, but nothing goes through it.
    let plain = RawArchive::new()
        .member(
            b"x",
            EntryType::Symlink,
            victim.to_str().unwrap().as_bytes(),
            b"",
        )
        .member_as(b"x/", EntryType::Directory, b"", b"", 0o4777, 0)
        .finish();
    put_archive(&sb, "plain", &plain);
    let out = restore_to(&sb, "plain", &target, &["--outside-links"]);
    out.fails(1);
    out.stderr_contains("x/: appears twice in the archive");
    assert_eq!(fingerprint(&victim), before);
}

#[test]
fn trust_1c_a_directory_swapped_for_a_link_before_the_metadata_pass_is_not_followed() {
    let sb = Sandbox::new();
    sb.write("tree/d/f", "data");
    fs::set_permissions(sb.join("tree/d"), fs::Permissions::from_mode(0o777)).unwrap();
    sb.write("backup_schedules.txt", "tree;00:00;tree\n");
    sb.manager(&["run", "0"]).ok();
    let victim = victim(&sb);
    let before = fingerprint(&victim);
    let target = sb.join("R");
    let pause = sb.join("paused");
    let child = sb
        .command(
            "backup_manager",
            &[
                "restore".as_ref(),
                "tree".as_ref(),
                "--to".as_ref(),
                target.as_os_str(),
            ],
        )
        .env(
            "BACKUPBOX_TEST_PAUSE",
            format!("restore-metadata:{}", pause.display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || pause.exists()),
        "{}",
        sb.explain()
    );
    // The owner of the target swaps a restored directory for a link to the victim.
    fs::rename(target.join("tree/d"), target.join("moved")).unwrap();
    symlink(&victim, target.join("tree/d")).unwrap();
    fs::remove_file(&pause).unwrap();
    let out = child.wait_with_output().unwrap();
    out.fails(1);
    out.stderr_contains("tree/d was replaced during the restore");
    assert_eq!(fingerprint(&victim), before);
    assert_ne!(
        fs::metadata(target.join("moved")).unwrap().mode() & 0o7777,
        0o777,
        "the moved directory is not given the member's mode either"
    );
}

// 2. FIFOs and links where files are expected never hang anything.

#[test]
fn trust_2a_a_fifo_or_a_link_to_dev_zero_as_the_state_file_hangs_nothing() {
    let sb = Sandbox::new();
    sb.write("data/f", "x");
    sb.write("backup_schedules.txt", "data;00:00;data\n");
    fs::create_dir_all(sb.join("logs")).unwrap();
    let state = sb.join("logs/backup_state.txt");
    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let limit = Duration::from_secs(15);
    let out = output_within(sb.command("backup_manager", &["status"]), limit);
    out.fails(1);
    let out = output_within(sb.command("backup_manager", &["run", "0"]), limit);
    out.ok();
    assert!(sb.join("backups/data.tar").exists(), "{}", sb.explain());
    assert!(
        fs::symlink_metadata(&state).unwrap().is_file(),
        "replaced by a real state file"
    );

    fs::remove_file(&state).unwrap();
    symlink("/dev/zero", &state).unwrap();
    let out = output_within(sb.command("backup_manager", &["status"]), limit);
    assert!(
        stdout(&out).contains("last run: none yet"),
        "{}",
        stdout(&out)
    );
    fs::remove_file(&state).unwrap();
    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();

    // The service's worker records through the same path; stop must still work.
    sb.plan_now("data", "data");
    let out = output_within(sb.command("backup_manager", &["start"]), limit);
    out.ok();
    assert!(
        wait_until(Duration::from_secs(20), || {
            sb.service_log()
                .contains(&"Backup done for data in backups/data.tar".to_owned())
        }),
        "{}",
        sb.explain()
    );
    let out = output_within(
        sb.command("backup_manager", &["stop"]),
        Duration::from_secs(30),
    );
    out.ok();
}

#[test]
fn trust_2b_fifos_named_like_temp_files_never_block_the_start_up_clean_up() {
    let sb = Sandbox::new();
    let elsewhere = sb.join("plans");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(
        elsewhere.join("plan.txt"),
        format!("x;{};x\n", minute_from_now(90)),
    )
    .unwrap();
    symlink(elsewhere.join("plan.txt"), sb.join("backup_schedules.txt")).unwrap();
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::create_dir_all(sb.join("logs")).unwrap();
    let fifos = [
        sb.join(".backupbox-1-1.tmp"),
        sb.join("backups/.backupbox-1-1.tmp"),
        sb.join("logs/.backupbox-1-1.tmp"),
        elsewhere.join(".backupbox-1-1.tmp"),
    ];
    for fifo in &fifos {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    }
    let started = Instant::now();
    let out = output_within(
        sb.command("backup_manager", &["start"]),
        Duration::from_secs(20),
    );
    out.ok();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start did not wait on a FIFO"
    );
    for fifo in &fifos {
        assert!(
            fs::symlink_metadata(fifo).is_err(),
            "{} removed",
            fifo.display()
        );
    }
    let log = sb.service_log();
    assert!(
        log.contains(
            &"Warning: removed backups/.backupbox-1-1.tmp, left by a backup that was interrupted"
                .to_owned()
        ),
        "{log:?}"
    );
    sb.manager(&["stop"]).ok();
}

// 3. Out-of-range times and panics.

#[test]
#[ignore = "needs root: mounts a tmpfs, which keeps year-9999 times"]
fn trust_3a_a_year_9999_mtime_or_record_never_panics() {
    let sb = Sandbox::new();
    // ext4 clamps times to 2446; tmpfs keeps year 9999.
    let _disk = SmallDisk::mount(&sb.join("backups"), "4m");
    sb.write("n/f", "x");
    sb.write("backup_schedules.txt", "n;00:00;n\n");
    sb.manager(&["run", "0"]).ok();
    touch(&sb.join("backups/n.tar"), "9999-12-31 23:00 UTC");
    let out = sb
        .command("backup_manager", &["backups", "--long"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    out.ok();
    assert!(stdout(&out).contains("@253402297200"), "{}", stdout(&out));
    let out = sb
        .command("backup_manager", &["run", "0", "--keep", "2"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    out.ok();
    assert!(
        sb.join("backups/n.@253402297200.tar").exists(),
        "{}",
        sb.explain()
    );

    sb.write(
        "logs/backup_state.txt",
        "ok\t253402297200\t32400\t5\t10240\t\tn;00:00;n\n",
    );
    let out = sb
        .command("backup_manager", &["status"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    out.fails(1);
    assert!(
        stdout(&out).contains("last run: @253402297200, ok, 10240 bytes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn trust_3b_a_job_that_panics_is_logged_and_reported_as_failed() {
    let sb = Sandbox::new();
    sb.write("p/f", "x");
    sb.write("backup_schedules.txt", "p;00:00;p\n");
    let out = sb
        .command("backup_manager", &["run", "0"])
        .env("BACKUPBOX_TEST_PANIC", "job")
        .output()
        .unwrap();
    out.fails(1);
    let failure = "Error: backup of p to backups/p.tar failed: internal error: test hook job";
    assert!(
        sb.manager_log().contains(&failure.to_owned()),
        "{}",
        sb.explain()
    );

    sb.plan_now("p", "p");
    let mut service = sb.command("backup_service", &[] as &[&str]);
    let service = service
        .env("BACKUPBOX_TEST_PANIC", "job")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            sb.service_log().contains(&failure.to_owned())
        }),
        "{}",
        sb.explain()
    );
    let (status, text) = {
        let out = sb.manager(&["status"]);
        (code(&out), stdout(&out))
    };
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("error after"), "{text}");
    assert!(text.contains("internal error: test hook job"), "{text}");
    assert!(
        text.contains("status: needs attention: schedule 0 failed last time"),
        "{text}"
    );
    stop_foreground(service);
}

// 4. An archive of a folder that holds the base directory stays flat.

#[test]
fn trust_4_a_folder_holding_the_base_directory_does_not_grow_with_keep_3() {
    let sb = Sandbox::new();
    sb.write_large("data/big", 1);
    sb.write("backup_schedules.txt", ".;00:00;all\n");
    let mut sizes = Vec::new();
    for _ in 0..5 {
        let out = sb.manager(&["run", "0", "--keep", "3"]);
        out.ok();
        sizes.push(fs::metadata(sb.join("backups/all.tar")).unwrap().len());
        // Generations get distinct names only a second apart.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let (first, last) = (sizes[0], sizes[4]);
    assert!(last < first + 64 * 1024, "archive grew: {sizes:?}");
    let warning = "Warning: ./backups: backupbox's archive folder; its contents are not archived";
    let warnings = sb.manager_log().iter().filter(|l| *l == warning).count();
    assert_eq!(warnings, 5, "once per backup");
}

// 5. Wrong answers from verify and restore.

fn with_size_field(field: [u8; 12]) -> Vec<u8> {
    let mut bytes = RawArchive::new()
        .member(b"f", EntryType::Regular, b"", b"")
        .finish();
    bytes[124..136].copy_from_slice(&field);
    let header = tar::Header::from_byte_slice(&bytes[..512]);
    let mut header = header.clone();
    header.set_cksum();
    bytes[..512].copy_from_slice(header.as_bytes());
    bytes
}

#[test]
fn trust_5a_a_huge_base_256_size_is_damage_not_a_sound_archive() {
    let sb = Sandbox::new();
    let mut all_ff = [0xffu8; 12];
    let mut max = [0u8; 12];
    max[0] = 0x80;
    max[4..].copy_from_slice(&u64::MAX.to_be_bytes());
    let mut near = max;
    near[4..].copy_from_slice(&(u64::MAX - 510).to_be_bytes());
    all_ff[0] = 0xff;
    for (name, field) in [("max", max), ("near", near), ("ff", all_ff)] {
        put_archive(&sb, name, &with_size_field(field));
        let out = sb.manager(&["verify", name]);
        out.fails(1);
        assert!(
            stderr(&out).contains(&format!(
                "backups/{name}.tar is damaged: bad size field at byte 0"
            )),
            "{name}: {}",
            stderr(&out)
        );
        let out = restore_to(&sb, name, &sb.join("R"), &[]);
        out.fails(1);
        out.stderr_contains("the archive is damaged");
    }
}

#[test]
fn trust_5b_giant_name_records_are_refused_and_names_are_logged_cut() {
    let sb = Sandbox::new();
    // A GNU long-name record and a pax header that claim 1 GiB (the file is sparse).
    for (name, kind) in [
        ("long", EntryType::GNULongName),
        ("pax", EntryType::XHeader),
    ] {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(kind);
        header.set_size(1 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        put_archive(&sb, name, header.as_bytes());
        let file = fs::OpenOptions::new()
            .write(true)
            .open(sb.join(format!("backups/{name}.tar")))
            .unwrap();
        file.set_len((1 << 30) + 512 + 1024).unwrap();
        let out = output_within(
            sb.command("backup_manager", &["restore", name]),
            Duration::from_secs(20),
        );
        out.fails(1);
        assert!(
            stderr(&out)
                .contains("implausible long-name or pax record of 1073741824 bytes at byte 0"),
            "{}",
            stderr(&out)
        );
    }
    // A 100 KiB absolute name: refused, and logged cut to 1 KiB.
    let mut long = b"/".to_vec();
    long.extend(std::iter::repeat_n(b'n', 100 << 10));
    put_archive(
        &sb,
        "named",
        &RawArchive::new()
            .member(&long, EntryType::Regular, b"", b"")
            .finish(),
    );
    let out = sb.manager(&["restore", "named"]);
    out.fails(1);
    let log = fs::read(sb.join("logs/backup_manager.log")).unwrap();
    assert!(log.len() < 8 << 10, "log holds {} bytes", log.len());
    let line = sb.manager_log().pop().unwrap();
    assert!(line.contains("n…: absolute member name"), "{line}");
}

#[test]
fn trust_5c_restore_refuses_before_writing_and_names_the_member() {
    let sb = Sandbox::new();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dup",
            RawArchive::new()
                .member(b"d/f", EntryType::Regular, b"", b"one")
                .member(b"d/f", EntryType::Regular, b"", b"two")
                .finish(),
            "d/f: appears twice in the archive",
        ),
        (
            "linkfifo",
            RawArchive::new()
                .member(b"d/s", EntryType::Symlink, b"x", b"")
                .member(b"d/s", EntryType::Fifo, b"", b"")
                .finish(),
            "d/s: appears twice in the archive",
        ),
        (
            "hardchain",
            RawArchive::new()
                .member(b"a/b", EntryType::Symlink, b"..", b"")
                .member(b"p", EntryType::Symlink, b"a/b", b"")
                .member(b"h", EntryType::Link, b"p/victim", b"")
                .finish(),
            "h: hard link to p/victim, which the archive does not make before it",
        ),
        (
            "empty",
            RawArchive::new()
                .member(b"ok", EntryType::Regular, b"", b"")
                .member(b"", EntryType::Regular, b"", b"")
                .finish(),
            "a member has an empty name",
        ),
        (
            "zero",
            Vec::new(),
            "the archive is damaged: no end-of-archive marker",
        ),
        (
            "cut",
            RawArchive::new()
                .member(b"f", EntryType::Regular, b"", b"data")
                .bytes,
            "the archive is damaged: no end-of-archive marker: the archive ends at byte 1024 (after member f)",
        ),
    ];
    for (name, bytes, refusal) in cases {
        put_archive(&sb, name, &bytes);
        let target = sb.join(format!("R-{name}"));
        let out = restore_to(&sb, name, &target, &[]);
        out.fails(1);
        assert!(
            stderr(&out).contains(&format!(
                "Error: restore of backups/{name}.tar to {} failed: {refusal}",
                target.display()
            )),
            "{name}: {}",
            stderr(&out)
        );
        assert!(!target.exists(), "{name}: nothing written");
    }
}

#[test]
fn trust_5d_verify_against_refuses_dotdot_members() {
    let sb = Sandbox::new();
    sb.write("secret", "guess me");
    sb.write("data/f", "x");
    sb.write("backup_schedules.txt", "data;00:00;data\n");
    put_archive(
        &sb,
        "data",
        &RawArchive::new()
            .member(b"data/", EntryType::Directory, b"", b"")
            .member(b"data/../secret", EntryType::Regular, b"", b"guess me")
            .finish(),
    );
    let out = sb.manager(&["verify", "data", "--against"]);
    out.fails(1);
    assert!(
        stdout(&out).contains("data/../secret: member name contains '..'; not compared"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn trust_5e_restore_of_2000_nested_directories_is_linear() {
    let sb = Sandbox::new();
    sb.write(&format!("deep/{}leaf", "d/".repeat(2000)), "x");
    sb.write("backup_schedules.txt", "deep;00:00;deep\n");
    sb.manager(&["run", "0"]).ok();
    let started = Instant::now();
    let out = sb.manager(&["restore", "deep"]);
    let took = started.elapsed();
    out.ok();
    assert!(
        stdout(&out).contains("2002 members restored"),
        "{}",
        stdout(&out)
    );
    // 138 s before the fd-relative restore, about 0.1 s now. The bound only guards against
    // going back to quadratic, with room for a loaded CI machine (a 5 s bound failed once
    // with the suite running next to two busy cores).
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

// 6. Exactness of what is stored and shown.

#[test]
fn trust_6a_times_before_1970_and_at_0_round_trip() {
    let sb = Sandbox::new();
    sb.write("t/old", "1960");
    sb.write("t/epoch", "0");
    let set = |file: &str, when: &str| touch(&sb.join(file), when);
    set("t/old", "1960-01-01 00:00 UTC");
    set("t/epoch", "1970-01-01 00:00 UTC");
    sb.write("backup_schedules.txt", "t;00:00;t\n");
    sb.manager(&["run", "0"]).ok();
    assert_gnu_tar_compare_clean(&sb.join("backups/t.tar"), sb.path());
    let out = sb.manager(&["verify", "t", "--against"]);
    out.ok();
    assert!(stdout(&out).contains("same as t"), "{}", out.explain());
    set("t/old", "1961-01-01 00:00 UTC");
    let out = sb.manager(&["verify", "t", "--against"]);
    assert!(
        stdout(&out).contains("t/old: mod time differs"),
        "{}",
        stdout(&out)
    );
    let out = sb.manager(&["restore", "t"]);
    out.ok();
    assert_eq!(
        fs::metadata(sb.join("restore/t/t/old")).unwrap().mtime(),
        -315_619_200
    );
    assert_eq!(
        fs::metadata(sb.join("restore/t/t/epoch")).unwrap().mtime(),
        0
    );
}

#[test]
fn trust_6b_control_characters_never_reach_the_terminal_raw() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "e\x1b[2J;00:00;e\n");
    sb.write("e\x1b[2J/f", "x");
    for args in [&["list"][..], &["status"], &["run", "0"], &["backups"]] {
        let out = sb.manager(args);
        assert!(
            !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
            "{args:?}: {:?}",
            stdout(&out)
        );
    }
    assert_eq!(sb.manager(&["list"]).stdout, b"0: e\\x1b[2J;00:00;e\n");
    put_archive(
        &sb,
        "esc",
        &RawArchive::new()
            .member(b"/\x1b[2J\x00x", EntryType::Regular, b"", b"")
            .finish(),
    );
    let out = sb.manager(&["restore", "esc"]);
    out.fails(1);
    assert!(!out.stderr.contains(&0x1b), "{}", stderr(&out));
    // A written backslash-n and a real newline never log the same.
    assert_eq!(code(&sb.manager(&["create", "g\\nliteral;01:00;g"])), 0);
    assert!(
        sb.manager_log()
            .contains(&"New schedule added: g\\\\nliteral;01:00;g".to_owned()),
        "{}",
        sb.explain()
    );
}

#[test]
fn trust_6c_install_makes_a_missing_folder() {
    let sb = Sandbox::new();
    let dir = sb.join("new/bin");
    let out = std::process::Command::new(BIN)
        .arg("--install")
        .arg(&dir)
        .output()
        .unwrap();
    out.ok();
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o755);
    assert!(
        fs::symlink_metadata(dir.join("backup_manager"))
            .unwrap()
            .is_symlink(),
        "{}",
        sb.explain()
    );
}
