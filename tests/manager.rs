//! The manager's commands through `backup_manager`: stdout bytes, log lines, exit codes, and
//! what the plan file holds afterwards.

use crate::common::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

#[test]
fn create_list_delete_follow_the_spec() {
    let sb = Sandbox::new();
    let out = sb.manager(&["create", "test;16:07;backup_test"]);
    assert_eq!(
        (code(&out), stdout(&out), stderr(&out)),
        (0, String::new(), String::new())
    );
    assert_eq!(
        code(&sb.manager(&["create", "test1;16:07;personal_data"])),
        0
    );
    assert_eq!(
        sb.read("backup_schedules.txt"),
        b"test;16:07;backup_test\ntest1;16:07;personal_data\n"
    );

    let out = sb.manager(&["list"]);
    out.ok();
    out.stdout_is("0: test;16:07;backup_test\n1: test1;16:07;personal_data\n");

    let out = sb.manager(&["delete", "1"]);
    assert_eq!((code(&out), stdout(&out)), (0, String::new()));
    assert_eq!(
        stdout(&sb.manager(&["list"])),
        "0: test;16:07;backup_test\n"
    );

    assert_eq!(
        sb.manager_log(),
        [
            "New schedule added: test;16:07;backup_test",
            "New schedule added: test1;16:07;personal_data",
            "Show schedules list",
            "Schedule at index 1 deleted",
            "Show schedules list",
        ]
    );
}

#[test]
fn malformed_schedules_are_refused_and_the_plan_untouched() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "# mine\n");
    let hostile = [
        "test;",
        "test;16:07",
        "test;25:00;x",
        "test;16:7;x",
        "test;16:07;../../x",
        "test;16:07;a/b",
        "test;16:07;..",
        ";16:07;x",
        "a;16:07;x;y",
        "a\nb;16:07;x",
        "a;16:07;x\n",
        "#a;16:07;x",
    ];
    for line in hostile {
        let out = sb.manager(&["create", line]);
        out.fails(1);
        assert!(
            stderr(&out).starts_with("Error: malformed schedule: "),
            "{line:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(sb.read("backup_schedules.txt"), b"# mine\n");
    let log = sb.manager_log();
    assert_eq!(
        log.len(),
        hostile.len(),
        "one line per event, even with a newline inside: {log:?}"
    );
    assert_eq!(log[0], "Error: malformed schedule: test;");
    assert_eq!(log[9], "Error: malformed schedule: a\\nb;16:07;x");
}

#[test]
fn create_without_argument_is_a_usage_error() {
    let sb = Sandbox::new();
    let out = sb.manager(&["create"]);
    out.fails(2);
    assert_eq!(sb.manager_log(), ["Error: malformed schedule: "]);
    assert!(
        !sb.join("backup_schedules.txt").exists(),
        "{}",
        sb.explain()
    );
}

#[test]
fn non_utf8_folders_are_kept_byte_exact() {
    let sb = Sandbox::new();
    let line = OsStr::from_bytes(b"caf\xe9;01:02;n");
    let out = sb
        .command("backup_manager", &[OsStr::new("create"), line])
        .output()
        .unwrap();
    out.ok();
    assert_eq!(sb.read("backup_schedules.txt"), b"caf\xe9;01:02;n\n");
    assert_eq!(sb.manager(&["list"]).stdout, b"0: caf\xe9;01:02;n\n");
    assert_eq!(sb.manager_log()[0], "New schedule added: caf\\xe9;01:02;n");
}

#[test]
fn hand_edited_plans_are_listed_and_edited_byte_exactly() {
    let sb = Sandbox::new();
    let plan =
        b"# backups\r\n\r\ntest;16:07;backup_test\r\n   \ngarbage line\n  # note\nlast;00:00;z";
    sb.write("backup_schedules.txt", plan);
    assert_eq!(
        stdout(&sb.manager(&["list"])),
        "0: test;16:07;backup_test\n1: garbage line\n2: last;00:00;z\n"
    );

    sb.manager(&["delete", "1"]).ok();
    assert_eq!(
        sb.read("backup_schedules.txt"),
        b"# backups\r\n\r\ntest;16:07;backup_test\r\n   \n  # note\nlast;00:00;z"
    );

    assert_eq!(code(&sb.manager(&["create", "new;01:00;n"])), 0);
    assert_eq!(
        sb.read("backup_schedules.txt"),
        b"# backups\r\n\r\ntest;16:07;backup_test\r\n   \n  # note\nlast;00:00;z\nnew;01:00;n\n"
    );
}

#[test]
fn delete_errors() {
    let sb = Sandbox::new();
    let out = sb.manager(&["delete", "0"]);
    assert_eq!(
        (code(&out), stderr(&out).lines().next().unwrap()),
        (
            1,
            "Error: can't find backup_schedules.txt: No such file or directory (os error 2)"
        )
    );
    sb.write("backup_schedules.txt", "a;00:00;n\n");
    let out = sb.manager(&["delete", "1"]);
    out.fails(1);
    let out = sb.manager(&["delete", "abc"]);
    out.fails(2);
    let out = sb.manager(&["delete"]);
    out.fails(2);
    assert_eq!(
        sb.manager_log(),
        [
            "Error: can't find backup_schedules.txt",
            "Error: can't find schedule at index 1",
            "Error: can't find schedule at index abc",
            "Error: delete needs a schedule index",
        ]
    );
    assert_eq!(sb.read("backup_schedules.txt"), b"a;00:00;n\n");
}

#[test]
fn list_without_plan_is_an_error() {
    let sb = Sandbox::new();
    let out = sb.manager(&["list"]);
    assert_eq!((code(&out), stdout(&out)), (1, String::new()));
    assert_eq!(sb.manager_log(), ["Error: can't find backup_schedules.txt"]);
}

#[test]
fn backups_lists_archives_sorted_and_hides_working_files() {
    let sb = Sandbox::new();
    let out = sb.manager(&["backups"]);
    out.fails(1);
    assert_eq!(sb.manager_log(), ["Error: can't find backups directory"]);

    sb.write("backups/b.tar", "");
    sb.write("backups/a.tar", "");
    sb.write("backups/.backupbox-123-0.tmp", "");
    sb.write("backups/.backupbox.lock", "");
    let out = sb.manager(&["backups"]);
    assert_eq!((code(&out), stdout(&out)), (0, "a.tar\nb.tar\n".to_owned()));
    assert_eq!(sb.manager_log().last().unwrap(), "Show backups list");
}

#[test]
fn unknown_instruction_is_logged_with_usage_on_stderr() {
    let sb = Sandbox::new();
    let out = sb.manager(&["frobnicate", "x"]);
    assert_eq!((code(&out), stdout(&out)), (2, String::new()));
    assert!(
        stderr(&out).starts_with("Error: unknown instruction: frobnicate\n"),
        "{}",
        out.explain()
    );
    out.stderr_contains("Usage:");
    assert_eq!(sb.manager_log(), ["Error: unknown instruction: frobnicate"]);
}

#[test]
fn dir_option_selects_the_base_directory() {
    let sb = Sandbox::new();
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().to_str().unwrap();
    assert_eq!(code(&sb.manager(&["--dir", dir, "create", "a;00:00;n"])), 0);
    assert_eq!(
        std::fs::read(other.path().join("backup_schedules.txt")).unwrap(),
        b"a;00:00;n\n"
    );
    assert!(
        other.path().join("logs/backup_manager.log").exists(),
        "{}",
        sb.explain()
    );
    assert!(
        !sb.join("backup_schedules.txt").exists(),
        "{}",
        sb.explain()
    );

    let out = sb.manager(&["--dir", "/nonexistent/box", "list"]);
    out.fails(2);
    out.stderr_contains("base directory not found");
}

#[test]
fn concurrent_creates_all_land() {
    let sb = Sandbox::new();
    let children: Vec<_> = (0..40)
        .map(|i| {
            sb.command(
                "backup_manager",
                &["create", &format!("folder{i};10:{:02};name{i}", i % 60)],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "{}", sb.explain());
    }
    let plan = String::from_utf8(sb.read("backup_schedules.txt")).unwrap();
    let mut lines: Vec<&str> = plan.lines().collect();
    lines.sort();
    let mut expected: Vec<String> = (0..40)
        .map(|i| format!("folder{i};10:{:02};name{i}", i % 60))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert_eq!(
        sb.manager_log()
            .iter()
            .filter(|m| m.starts_with("New schedule added: "))
            .count(),
        40
    );
    let leftovers: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".backupbox-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary plan files left: {leftovers:?}"
    );
}

#[test]
fn multicall_entry_points() {
    let sb = Sandbox::new();
    let out = std::process::Command::new(BIN)
        .args(["manager", "create", "a;00:00;n"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    out.ok();
    assert_eq!(sb.read("backup_schedules.txt"), b"a;00:00;n\n");

    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    out.ok();
    let help = stdout(&out);
    assert!(
        help.contains("backup_manager") && help.contains("backup_service"),
        "{help:?}"
    );
    assert!(!help.contains("__serve"), "the daemon entry stays hidden");

    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("backupbox {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );

    let out = std::process::Command::new(BIN)
        .arg("nonsense")
        .output()
        .unwrap();
    out.fails(2);

    let bin_dir = tempfile::tempdir().unwrap();
    let out = install_with(BIN, bin_dir.path());
    out.ok();
    for role in ["backup_manager", "backup_service"] {
        let target = std::fs::read_link(bin_dir.path().join(role)).unwrap();
        assert_eq!(
            target.canonicalize().unwrap(),
            std::path::Path::new(BIN).canonicalize().unwrap()
        );
    }
    // Installing again replaces the links; it never replaces a regular file.
    assert_eq!(code(&install_with(BIN, bin_dir.path())), 0);
    std::fs::remove_file(bin_dir.path().join("backup_service")).unwrap();
    std::fs::write(bin_dir.path().join("backup_service"), "mine").unwrap();
    let out = install_with(BIN, bin_dir.path());
    out.fails(1);
    assert_eq!(
        std::fs::read(bin_dir.path().join("backup_service")).unwrap(),
        b"mine"
    );
}

/// `BINARY --install DIR`.
fn install_with(
    binary: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(binary)
        .arg("--install")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn install_links_a_binary_beside_the_links_by_name() {
    // So the folder can move: an image's /usr/local/bin is built from a copy.
    let bin_dir = tempfile::tempdir().unwrap();
    let copied = bin_dir.path().join("backupbox");
    std::fs::copy(BIN, &copied).unwrap();
    let out = install_with(&copied, bin_dir.path());
    out.ok();
    for role in ["backup_manager", "backup_service"] {
        let target = std::fs::read_link(bin_dir.path().join(role)).unwrap();
        assert_eq!(
            target,
            std::path::Path::new("backupbox"),
            "{role} should link to the binary beside it by name"
        );
        let out = std::process::Command::new(bin_dir.path().join(role))
            .arg("--help")
            .output()
            .unwrap();
        out.ok();
    }
}

#[test]
fn run_errors_are_logged() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "missing;00:00;m\nbad line\n");
    let out = sb.manager(&["run", "0"]);
    out.fails(1);
    let out = sb.manager(&["run", "1"]);
    // The log line is the spec's; stderr says what is wrong in the line too.
    out.fails(1)
        .stderr_contains("malformed schedule: bad line")
        .stderr_contains("1 fields where folder;hh:mm;name has 3");
    let out = sb.manager(&["run", "2"]);
    out.fails(1);
    // A word that is not a number is an archive name: none is "x".
    sb.manager(&["run", "x"]).fails(1);
    assert_eq!(
        sb.manager_log(),
        [
            "Error: backup of missing to backups/m.tar failed: folder not found",
            "Error: malformed schedule: bad line",
            "Error: can't find schedule at index 2",
            "Error: can't find schedule at index or with archive name x",
        ]
    );
}

#[test]
fn timestamps_honour_tz_including_half_hour_zones() {
    let sb = Sandbox::new();
    // POSIX TZ strings need no zone database: UTC+5:30 and UTC-9:30.
    for (tz, date_tz) in [("IST-5:30", "IST-5:30"), ("MART+9:30", "MART+9:30")] {
        let before = std::process::Command::new("date")
            .env("TZ", date_tz)
            .arg("+%d/%m/%Y %H:%M")
            .output()
            .unwrap();
        let out = sb
            .command("backup_manager", &["backups"])
            .env("TZ", tz)
            .output()
            .unwrap();
        let after = std::process::Command::new("date")
            .env("TZ", date_tz)
            .arg("+%d/%m/%Y %H:%M")
            .output()
            .unwrap();
        out.fails(1);
        let log = String::from_utf8(sb.read("logs/backup_manager.log")).unwrap();
        let stamp = &log.lines().last().unwrap()[1..17];
        let expected = [stdout(&before), stdout(&after)];
        assert!(
            expected.iter().any(|e| e.trim() == stamp),
            "{tz}: {stamp} not in {expected:?}"
        );
    }
}

#[test]
fn a_fifo_or_device_in_place_of_the_plan_or_log_never_hangs() {
    let sb = Sandbox::new();
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
    nix::unistd::mkfifo(&sb.join("backup_schedules.txt"), mode).unwrap();
    let out = sb.manager(&["list"]);
    out.fails(1);
    assert!(
        stderr(&out).starts_with("Error: can't find backup_schedules.txt: not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = sb.manager(&["create", "a;00:00;n"]);
    out.fails(1);
    assert!(
        stderr(&out).starts_with("Error: can't write backup_schedules.txt: not a regular file"),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(sb.join("backup_schedules.txt")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", sb.join("backup_schedules.txt")).unwrap();
    sb.manager(&["list"]).fails(1);

    std::fs::remove_file(sb.join("logs/backup_manager.log")).unwrap();
    nix::unistd::mkfifo(&sb.join("logs/backup_manager.log"), mode).unwrap();
    let out = sb.manager(&["backups"]);
    out.fails(1);
    assert!(
        stderr(&out).contains("can't write"),
        "the log problem is reported: {}",
        stderr(&out)
    );
}

#[test]
fn a_linked_plan_is_edited_through_its_link() {
    let sb = Sandbox::new();
    sb.write("shared/plan.txt", "a;00:00;a\n");
    std::os::unix::fs::symlink("shared/plan.txt", sb.join("backup_schedules.txt")).unwrap();
    assert_eq!(code(&sb.manager(&["create", "b;00:00;b"])), 0);
    sb.manager(&["delete", "0"]).ok();
    assert!(
        std::fs::symlink_metadata(sb.join("backup_schedules.txt"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "{}",
        sb.explain()
    );
    assert_eq!(sb.read("shared/plan.txt"), b"b;00:00;b\n");
}

#[test]
fn planted_links_in_place_of_the_log_or_pid_file_are_not_followed() {
    let sb = Sandbox::new();
    let victim = sb.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::create_dir(sb.join("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, sb.join("logs/backup_manager.log")).unwrap();
    std::os::unix::fs::symlink(&victim, sb.join("logs/backup_service.pid")).unwrap();
    let out = sb.manager(&["start"]);
    out.fails(1);
    assert!(
        stderr(&out).starts_with("Error: can't start backup_service"),
        "{}",
        stderr(&out)
    );
    let out = sb
        .command("backup_service", &[] as &[&str])
        .output()
        .unwrap();
    out.fails(1);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious\n",
        "neither truncated nor appended to"
    );
}

#[test]
fn argument_mistakes_are_logged_usage_errors() {
    let sb = Sandbox::new();
    for args in [
        &["delete", "-1"][..],
        &["list", "--bogus"],
        &["create", "a;00:00;n", "extra"],
    ] {
        let out = sb.manager(args);
        assert_eq!((code(&out), stdout(&out)), (2, String::new()), "{args:?}");
    }
    assert_eq!(
        sb.manager_log(),
        [
            "Error: Unrecognized argument: -1",
            "Error: Unrecognized argument: --bogus",
            "Error: Unrecognized argument: extra",
        ]
    );
    assert!(
        !sb.join("backup_schedules.txt").exists(),
        "{}",
        sb.explain()
    );
    // A schedule that starts with '-' goes after `--`.
    assert_eq!(code(&sb.manager(&["create", "--", "-x;00:00;n"])), 0);
    assert_eq!(stdout(&sb.manager(&["list"])), "0: -x;00:00;n\n");
    let help = sb.manager(&["--help"]);
    help.ok();
    assert!(stdout(&help).contains("create"), "{}", help.explain());
}

/// Spawns `backup_manager ARGS`, reads one line of its stdout and closes the pipe, as
/// `| head -1` does; returns how it ended.
fn first_line_then_close(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    use std::io::BufRead;
    let mut child = sb
        .command("backup_manager", args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty(), "{first:?}");
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_long_outputs_quietly() {
    let sb = Sandbox::new();
    let plan: String = (0..10_000).map(|i| format!("f{i};01:00;n{i}\n")).collect();
    sb.write("backup_schedules.txt", plan);
    std::fs::create_dir(sb.join("backups")).unwrap();
    for i in 0..5_000 {
        std::fs::write(sb.join(format!("backups/archive-number-{i}.tar")), "").unwrap();
    }
    for args in [&["list"][..], &["backups"], &["backups", "--long"]] {
        let out = first_line_then_close(&sb, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }

    // verify --against lists one line per difference: 5,000 of them here.
    let files: String = (0..5_000)
        .map(|i| format!("d/file-with-a-long-name-{i}\n"))
        .collect();
    for name in files.lines() {
        sb.write(name, "x");
    }
    sb.write("backup_schedules.txt", "d;01:00;d\n");
    sb.manager(&["run", "0"]).ok();
    for name in files.lines() {
        sb.write(name, "y");
    }
    let out = first_line_then_close(&sb, &["verify", "d", "--against"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "differences, not a crash: {}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn help_lists_every_command_and_option() {
    let sb = Sandbox::new();
    for args in [&["help"][..], &["--help"]] {
        let out = sb.manager(args);
        out.ok();
        for word in [
            "create",
            "list",
            "delete",
            "start",
            "stop",
            "backups",
            "run",
            "status",
            "verify",
            "restore",
            "settings",
            "prune",
            "contents",
            "--dry-run",
            "--quiet",
            "--progress",
            "--keep",
            "--timeout",
            "--long",
            "--json",
            "--against",
            "--to",
            "--force",
            "--outside-links",
            "--dir",
        ] {
            assert!(stdout(&out).contains(word), "{args:?} lacks {word}");
        }
    }
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    out.ok();
    assert!(
        stdout(&out).contains("--outside-links"),
        "{}",
        out.explain()
    );
    let out = sb.manager(&["help", "restore"]);
    out.ok();
    assert!(
        stdout(&out).starts_with("Usage: backup_manager restore"),
        "{}",
        out.explain()
    );
    assert!(
        stdout(&out).contains("--outside-links"),
        "{}",
        out.explain()
    );
    sb.manager(&["help", "frobnicate"]).fails(2);
    let out = sb.manager(&["status", "--help"]);
    out.ok();
    assert!(out.stdout.ends_with(b"\n"), "{:?}", stdout(&out));
    assert!(
        !sb.manager_log()
            .iter()
            .any(|line| line.contains("unknown instruction")),
        "{}",
        sb.explain()
    );
}
