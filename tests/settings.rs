//! `backupbox.toml`: the service and `run` agree, bad settings are refused with their line,
//! `settings` shows where each value comes from, and an empty folder never replaces a good
//! archive.

use crate::common::*;
use std::fs;
use std::time::Duration;

#[test]
fn run_keeps_what_the_settings_file_says_and_the_command_line_wins() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write("backupbox.toml", "keep = 2\n");
    for stamp in ["2026-01-01 03:30", "2026-01-02 03:30"] {
        sb.manager(&["run", "0"]).ok();
        touch(&sb.join("backups/docs.tar"), stamp);
    }
    sb.manager(&["run", "0"]).ok();
    sb.manager(&["backups"])
        .stdout_is("docs.2026-01-02_033000.tar\ndocs.tar\n");
    // --keep 1 on the command line replaces, whatever the file says.
    sb.manager(&["run", "0", "--keep", "1"]).ok();
    sb.manager(&["settings", "docs"]).ok().stdout_is(
        "keep = 2  # file\nkeep_daily = 0  # default\nkeep_weekly = 0  # default\n\
         keep_monthly = 0  # default\nkeep_yearly = 0  # default\n\
         allow_empty = false  # default\nexclude = []  # default\n\
         exclude_caches = false  # default\nexclude_if_present = []  # default\n\
         one_file_system = false  # default\nincremental = false  # default\nfull_every = 7  # default\n\
         days = []  # default\nmonthdays = []  # default\nsplay = 0  # default\n\
         nice = 0  # default\nio_class = \"\"  # default\nio_level = 4  # default\n\
         compress = \"none\"  # default\n\
         level = 0  # default\nthreads = 0  # default\n\
         catch_up = false  # default\nbefore = \"\"  # default\non_success = \"\"  # default\n\
         on_failure = \"\"  # default\nhook_user = \"\"  # default\nhook_timeout = 600  # default\nmetrics = \"\"  # default\n\
         read_threads = 0  # default\nencrypt_to = []  # default\nencrypt_to_file = \"\"  # default\nchecksum = false  # default\noffsite = \"\"  # default\noffsite_prefix = \"\"  # default\noffsite_timeout = 3600  # default\noffsite_bwlimit = \"\"  # default\noffsite_retries = 5  # default\noffsite_prune = true  # default\noffsite_config = \"\"  # default\n",
    );
}

#[test]
fn bad_settings_stop_run_and_start_and_a_running_service_keeps_its_last_good_ones() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write("backupbox.toml", "# settings\nkep = 2\n");
    let bad = "Error: bad settings in backupbox.toml: line 2: kep: unknown key";
    sb.manager(&["run", "0"]).fails(1).stderr_contains(bad);
    assert_eq!(sb.manager_log().last().unwrap(), bad);
    sb.manager(&["start"])
        .fails(1)
        .stderr_contains("bad settings in backupbox.toml");
    assert!(
        sb.service_log().contains(&bad.to_owned()),
        "{}",
        sb.explain()
    );
    assert!(sb.service_pid().is_none(), "{}", sb.explain());

    sb.write("backupbox.toml", "keep = 2\n");
    let service = sb.spawn_service();
    let pid = service.id() as i32;
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid() == Some(pid)),
        "{}",
        sb.explain()
    );
    sb.write("backupbox.toml", "keep = 0\n");
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let kept = "Error: bad settings in backupbox.toml: line 1: keep: expected a whole number from 1 to 100000; the last good settings stay in force";
    assert!(
        wait_until(Duration::from_secs(10), || {
            sb.service_log().contains(&kept.to_owned())
        }),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
}

#[test]
fn an_empty_folder_never_replaces_an_archive_that_holds_entries() {
    let sb = Sandbox::new();
    sb.write("mnt/usb/photo", "precious");
    sb.write("backup_schedules.txt", "mnt/usb;01:00;usb\n");
    sb.manager(&["run", "0"]).ok();
    let good = sb.read("backups/usb.tar");
    // The disk is not mounted tonight: the mount point is empty.
    fs::remove_file(sb.join("mnt/usb/photo")).unwrap();
    let refused = "Error: backup of mnt/usb to backups/usb.tar refused: the folder is empty but the last archive holds 1 entries (not mounted?)";
    sb.manager(&["run", "0", "--keep", "3"])
        .fails(1)
        .stderr_contains(refused);
    assert_eq!(sb.read("backups/usb.tar"), good);
    sb.manager(&["backups"]).stdout_is("usb.tar\n");
    let status = sb.manager(&["status"]);
    assert!(
        stdout(&status).contains("refused: the folder is empty"),
        "{}",
        stdout(&status)
    );
    // Asked for, an empty folder is archived.
    sb.write("backupbox.toml", "[name.usb]\nallow_empty = true\n");
    sb.manager(&["run", "0"]).ok();
    assert_ne!(sb.read("backups/usb.tar"), good);
}

#[test]
#[ignore = "needs root: mounts a tmpfs for one_file_system"]
fn exclude_rules_leave_out_what_gnu_tar_leaves_out() {
    let sb = Sandbox::new();
    sb.write("proj/a.tmp", "x");
    sb.write("proj/keep.txt", "x");
    sb.write("proj/web/node_modules/x", "x");
    sb.write("proj/logs/a.log", "x");
    sb.write("proj/logs/keep.txt", "x");
    sb.write(
        "proj/cache/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n",
    );
    sb.write("proj/cache/big", "x");
    sb.write("proj/fake/CACHEDIR.TAG", "Signature: not the right one\n");
    sb.write("proj/fake/data", "x");
    sb.write("proj/private/.nobackup", "");
    sb.write("proj/private/secret", "x");
    fs::create_dir(sb.join("proj/mnt")).unwrap();
    let _disk = SmallDisk::mount(&sb.join("proj/mnt"), "1m");
    sb.write("proj/mnt/elsewhere", "x");
    sb.write("backup_schedules.txt", "proj;01:00;proj\n");
    sb.write(
        "backupbox.toml",
        "exclude = [\"*.tmp\", \"node_modules\", \"logs/*.log\"]\nexclude_caches = true\n\
         exclude_if_present = [\".nobackup\"]\none_file_system = true\n",
    );
    sb.manager(&["run", "0"]).ok();
    let log = sb.manager_log();
    assert_eq!(
        log[log.len() - 2..],
        [
            "Backup done for proj in backups/proj.tar",
            // a.tmp; node_modules and its file; logs/a.log; cache/big; private/ and its two
            // entries; mnt/elsewhere.
            "Left out 9 entries of proj by exclude rules"
        ]
    );
    let ours = gnu_tar_names(&sb.join("backups/proj.tar"));
    let theirs = tool("tar")
        .args([
            "--exclude=*.tmp",
            "--exclude=node_modules",
            "--exclude=logs/*.log",
            "--exclude-caches",
            "--exclude-tag-all=.nobackup",
            "--one-file-system",
            "-cf",
        ])
        .arg(sb.join("theirs.tar"))
        .arg("proj")
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(
        theirs.status.success() || theirs.status.code() == Some(1),
        "{}",
        stderr(&theirs)
    );
    let mut theirs = gnu_tar_names(&sb.join("theirs.tar"));
    let mut ours_sorted = ours.clone();
    theirs.sort();
    ours_sorted.sort();
    assert_eq!(
        ours_sorted
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>(),
        theirs
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
    );
    assert!(
        ours.contains(&b"proj/mnt/".to_vec()),
        "the mount point is stored, empty"
    );
    assert!(
        ours.contains(&b"proj/cache/CACHEDIR.TAG".to_vec()),
        "{ours:?}"
    );
    assert!(
        ours.contains(&b"proj/fake/data".to_vec()),
        "a wrong signature excludes nothing"
    );
}

#[test]
fn retention_keeps_the_newest_of_each_month_and_year_and_says_why() {
    let sb = Sandbox::new();
    sb.write("n/f", "x");
    sb.write("backup_schedules.txt", "n;01:00;n\n");
    sb.manager(&["run", "0"]).ok();
    let planted = [
        "2025-12-20_000000",
        "2025-12-05_000000",
        "2025-11-30_000000",
        "2025-10-01_000000",
        "2024-06-01_000000",
        "2024-05-01_000000",
    ];
    for stamp in planted {
        let file = sb.join(format!("backups/n.{stamp}.tar"));
        fs::copy(sb.join("backups/n.tar"), &file).unwrap();
        let when = format!("{} {}:{}", &stamp[..10], &stamp[11..13], &stamp[13..15]);
        touch(&file, &when);
    }
    sb.write("backupbox.toml", "keep_monthly = 3\nkeep_yearly = 3\n");
    let plan = sb.manager(&["prune", "--dry-run"]);
    plan.ok();
    let why = "not kept by keep_monthly 3, keep_yearly 3";
    for gone in [
        "2025-12-05_000000",
        "2025-10-01_000000",
        "2024-05-01_000000",
    ] {
        assert!(
            stdout(&plan).contains(&format!("backups/n.{gone}.tar: would be removed: {why}\n")),
            "{}",
            stdout(&plan)
        );
    }
    assert_eq!(stdout(&plan).lines().count(), 3, "{}", stdout(&plan));

    sb.manager(&["run", "0"]).ok();
    let mut left: Vec<String> = stdout(&sb.manager(&["backups"]))
        .lines()
        .map(str::to_owned)
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "n.2024-06-01_000000.tar",
            "n.2025-11-30_000000.tar",
            "n.2025-12-20_000000.tar",
            "n.tar"
        ]
    );
    let log = sb.manager_log();
    for gone in [
        "2025-12-05_000000",
        "2025-10-01_000000",
        "2024-05-01_000000",
    ] {
        assert!(
            log.contains(&format!("Removed backups/n.{gone}.tar: {why}")),
            "{log:?}"
        );
    }
    let long = stdout(&sb.manager(&["backups", "--long"]));
    assert!(
        long.contains("n.2024-06-01_000000.tar  (kept: yearly 2024)"),
        "{long}"
    );
    assert!(
        long.contains("n.2025-12-20_000000.tar  (kept: monthly 2025-12, yearly 2025)"),
        "{long}"
    );
    assert!(long.contains("n.tar  (kept: newest, monthly "), "{long}");

    // Without any retention setting, prune refuses rather than removing every generation.
    fs::remove_file(sb.join("backupbox.toml")).unwrap();
    sb.manager(&["prune"])
        .fails(1)
        .stderr_contains("sets no retention");
    assert_eq!(stdout(&sb.manager(&["backups"])).lines().count(), 4);
}

#[test]
fn contents_lists_the_members_as_gnu_tar_does() {
    let sb = Sandbox::new();
    sb.write("docs/a.txt", "hello");
    sb.write("docs/sub/b.txt", "x".repeat(3000));
    std::os::unix::fs::symlink("a.txt", sb.join("docs/link")).unwrap();
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.manager(&["run", "0"]).ok();
    let archive = sb.join("backups/docs.tar");
    let names: Vec<String> = gnu_tar_names(&archive)
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned() + "\n")
        .collect();
    sb.manager(&["contents", "docs"])
        .ok()
        .stdout_is(&names.concat());
    let listing: Vec<String> = gnu_tar_list(&archive)
        .iter()
        .map(|l| l.clone() + "\n")
        .collect();
    sb.manager(&["contents", "docs", "--long"])
        .ok()
        .stdout_is(&listing.concat());
    assert_eq!(
        sb.manager_log().last().unwrap(),
        "Show contents of backups/docs.tar"
    );
    sb.manager(&["contents", "nope"]).fails(1);
}

#[test]
fn restore_takes_only_the_members_asked_for() {
    let sb = Sandbox::new();
    sb.write("docs/a.txt", "a");
    sb.write("docs/sub/b.txt", "b");
    sb.write("docs/sub/deeper/c.txt", "c");
    sb.write("docs/other/d.txt", "d");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.manager(&["run", "0"]).ok();
    let out = sb.manager(&["restore", "docs", "docs/sub", "docs/a.txt"]);
    out.ok().stdout_is(&format!(
        "backups/docs.tar: 5 members restored in {}\n",
        sb.join("restore/docs").display()
    ));
    let restored = sb.join("restore/docs/docs");
    assert_eq!(fs::read(restored.join("sub/deeper/c.txt")).unwrap(), b"c");
    assert_eq!(fs::read(restored.join("a.txt")).unwrap(), b"a");
    assert!(!restored.join("other").exists(), "only what was asked for");

    // A member the archive lacks: an error naming it, and nothing written.
    let elsewhere = sb.join("elsewhere");
    let out = sb.manager(&[
        "restore".as_ref(),
        "docs".as_ref(),
        "docs/a.txt".as_ref(),
        "docs/missing".as_ref(),
        "--to".as_ref(),
        elsewhere.as_os_str(),
    ]);
    out.fails(1)
        .stderr_contains("failed: docs/missing: not in the archive");
    assert!(!elsewhere.exists(), "{}", sb.explain());
}
