//! What a careless admin runs into: settings that move or carry typos, restarts within a due
//! minute, a stop that gives up, metrics a collector reads as another user, and small holes
//! in prune and restore. Each test names the point of the trust issue (behaviour) it covers.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::Duration;

/// The lines of the service log that say a backup of `folder` was done.
fn backups_done(sb: &Sandbox, folder: &str) -> usize {
    let done = format!("Backup done for {folder} in ");
    sb.service_log()
        .iter()
        .filter(|line| line.starts_with(&done))
        .count()
}

// 1. Settings that change silently.

#[test]
fn b1a_a_settings_symlink_whose_target_is_gone_is_an_error_not_no_settings() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("conf/backupbox.toml", "keep = 7\ncompress = \"zstd\"\n");
    symlink(sb.join("conf/backupbox.toml"), sb.join("backupbox.toml")).unwrap();
    sb.manager(&["run", "0"]).ok();
    let service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid().is_some()),
        "the service never wrote its PID file; service log: {:?}",
        sb.service_log()
    );
    fs::remove_file(sb.join("conf/backupbox.toml")).unwrap();

    let refusal = format!(
        "bad settings in backupbox.toml: can't read it (a symlink to {}, which does not exist)",
        sb.join("conf/backupbox.toml").display()
    );
    sb.manager(&["run", "0"])
        .fails(1)
        .stderr_contains(&format!("Error: {refusal}"));
    sb.manager(&["settings"]).fails(1).stderr_contains(&refusal);
    assert!(
        sb.join("backups/docs.tar.zst").exists() && !sb.join("backups/docs.tar").exists(),
        "the zstd archive stays; no plain one replaced it"
    );
    // A running service keeps its last good settings, and says why.
    signal(service.id() as i32, nix::sys::signal::Signal::SIGHUP);
    let kept = format!("Error: {refusal}; the last good settings stay in force");
    sb.await_service_log(10, |log| log.contains(&kept));
    stop_foreground(service);
}

#[test]
fn b1b_retention_counts_have_ranges_that_mean_something() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "keep_daily = 4294967295\nkeep_weekly = 1\n",
    );
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 1: keep_daily: expected a whole number from 0 to 36525 (a century of days)",
    );
    assert!(!sb.join("backups/docs.tar").exists(), "{}", sb.explain());
    // At the top of every range, nothing wraps: the generations are kept.
    sb.write(
        "backupbox.toml",
        "keep = 100000\nkeep_daily = 36525\nkeep_weekly = 5218\nkeep_monthly = 1200\nkeep_yearly = 100\n",
    );
    for _ in 0..3 {
        sb.manager(&["run", "0"]).ok();
    }
    let archives = fs::read_dir(sb.join("backups"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("docs."))
        .count();
    assert_eq!(archives, 3, "every generation kept");
    sb.manager(&["run", "0", "--keep", "100001"])
        .fails(2)
        .stderr_contains("--keep takes a whole number from 1 to 100000");
}

#[test]
fn b1c_a_table_for_a_name_no_plan_line_writes_is_warned_about() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", "[name.dcos]\nkeep = 7\n");
    let warning = "Warning: backupbox.toml has a [name.dcos] table, but no plan line writes archive dcos; its settings apply to nothing";
    sb.manager(&["settings", "docs"])
        .ok()
        .stderr_contains(warning);
    sb.manager(&["run", "0"]).ok().stderr_contains(warning);
    assert_eq!(
        sb.manager_log()
            .iter()
            .filter(|line| *line == warning)
            .count(),
        2,
        "{:?}",
        sb.manager_log()
    );
    let service = sb.spawn_service();
    sb.await_service_log(10, |log| log.iter().any(|line| line == warning));
    stop_foreground(service);
    // Fixed, the warning is gone.
    sb.write("backupbox.toml", "[name.docs]\nkeep = 7\n");
    let out = sb.manager(&["settings", "docs"]);
    out.ok();
    assert!(!stderr(&out).contains("Warning"), "{}", out.explain());
}

#[test]
fn b1d_exclude_rules_that_leave_nothing_never_replace_a_full_archive() {
    let sb = Sandbox::new();
    for file in ["docs/a", "docs/sub/b", "docs/sub/c"] {
        sb.write(file, "x");
    }
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.manager(&["run", "0"]).ok();
    let before = sb.read("backups/docs.tar");
    sb.write("backupbox.toml", "exclude = [\"*\"]\n");
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: backup of docs to backups/docs.tar refused: the exclude rules left out all 4 entries of the folder but the last archive holds 4 entries (set allow_empty to accept)",
    );
    assert_eq!(
        sb.read("backups/docs.tar"),
        before,
        "the full archive stays"
    );
    assert_gnu_tar_compare_clean(&sb.join("backups/docs.tar"), sb.path());
    assert!(sb.temp_files().is_empty(), "{:?}", sb.temp_files());
    // Asked for, it is done, and the count is every entry left out, at any depth.
    sb.write("backupbox.toml", "exclude = [\"*\"]\nallow_empty = true\n");
    sb.manager(&["run", "0"]).ok();
    let log = sb.manager_log();
    assert_eq!(
        log[log.len() - 2..],
        [
            "Backup done for docs in backups/docs.tar",
            "Left out 4 entries of docs by exclude rules"
        ]
    );
    assert_eq!(
        gnu_tar_names(&sb.join("backups/docs.tar")),
        [b"docs/".to_vec()]
    );
}

// 2. Runs that happen twice, or never.

#[test]
fn b2a_restarts_within_the_due_minute_run_a_schedule_once() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backupbox.toml", "keep = 5\n");
    sb.plan_now("docs", "docs");
    let line = fs::read_to_string(sb.join("backup_schedules.txt")).unwrap();
    for round in 0..3 {
        sb.manager(&["start"]).ok();
        assert!(
            wait_until(Duration::from_secs(10), || backups_done(&sb, "docs") == 1),
            "round {round}; service log: {:?}",
            sb.service_log()
        );
        sb.manager(&["stop"]).ok();
    }
    let again = format!(
        "Not running {} again: it already started this minute, before the service restarted",
        line.trim()
    );
    let log = sb.service_log();
    assert_eq!(backups_done(&sb, "docs"), 1, "{log:?}");
    assert_eq!(
        log.iter().filter(|message| **message == again).count(),
        2,
        "{log:?}"
    );
    let generations = fs::read_dir(sb.join("backups"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("docs.") && name != "docs.tar")
        .count();
    assert_eq!(generations, 0, "no generation pushed out an older one");
}

#[test]
fn b2b_a_damaged_state_file_means_no_catch_up_and_says_so() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    let line = format!("docs;{};docs", minute_from_now(-30));
    sb.write("backup_schedules.txt", format!("{line}\n"));
    sb.write("backupbox.toml", "catch_up = true\n");
    sb.write("logs/backup_state.txt", "\u{1}garbage\tnot a record\n");
    let service = sb.spawn_service();
    let warning = "Warning: can't read the state file; missed schedules are not caught up (1 of its 1 records are damaged)";
    sb.await_service_log(10, |log| log.iter().any(|message| message == warning));
    stop_foreground(service);
    assert!(!sb.join("backups/docs.tar").exists(), "nothing caught up");
    assert!(
        !sb.service_log()
            .iter()
            .any(|message| message.starts_with("Catching up")),
        "{:?}",
        sb.service_log()
    );
    // A missing state file is a first start: no run recorded, so it is caught up.
    fs::remove_file(sb.join("logs/backup_state.txt")).unwrap();
    let service = sb.spawn_service();
    sb.await_service_log(10, |_| backups_done(&sb, "docs") == 1);
    stop_foreground(service);
}

#[test]
fn b2c_status_says_stopping_while_a_stop_that_gave_up_still_waits() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backupbox.toml", "before = \"sleep 4\"\n");
    sb.plan_now("docs", "docs");
    sb.manager(&["start"]).ok();
    let pid = sb.service_pid().expect("a PID");
    sb.manager(&["stop", "--timeout", "1"])
        .fails(1)
        .stderr_contains("still running after 1 s");
    let status = sb.manager(&["status"]);
    status.fails(1).stdout_contains(&format!(
        "backup_service: stopping (finishing its backups; no new schedule runs), PID {pid}, since "
    ));
    status.stdout_contains(
        "status: needs attention: the service is stopping and runs no new schedule",
    );
    let json = stdout(&sb.manager(&["status", "--json"]));
    assert!(
        json.contains(&format!("\"running\":true,\"stopping\":true,\"pid\":{pid}")),
        "{json}"
    );
    assert!(
        wait_until(Duration::from_secs(20), || !alive(pid)),
        "the service ends once its backup is done"
    );
    assert_eq!(backups_done(&sb, "docs"), 1, "{:?}", sb.service_log());
    sb.manager(&["status"])
        .stdout_contains("backup_service: not running");
}

#[test]
fn b2d_the_daemon_keeps_no_descriptor_its_starter_had_open() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "");
    // `flock w.lock backup_manager start`: the lock must be free once start returns.
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "exec 7>w.lock && flock 7 && exec 8<backup_schedules.txt && exec ./backup_manager start",
        ])
        .current_dir(sb.path())
        .output()
        .unwrap();
    out.ok();
    let pid = sb.service_pid().expect("a PID");
    let free = tool("flock")
        .args(["-n", "w.lock", "true"])
        .current_dir(sb.path())
        .status()
        .unwrap();
    assert!(free.success(), "the daemon still holds the starter's lock");
    let open: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .map(|target| target.display().to_string())
        .collect();
    assert!(
        !open
            .iter()
            .any(|target| target.ends_with("w.lock") || target.ends_with("backup_schedules.txt")),
        "{open:?}"
    );
}

// 3. Metrics a collector can read.

#[test]
#[ignore = "needs root: reads the metrics file as nobody"]
fn b3a_the_metrics_file_is_world_readable_whatever_the_daemons_umask() {
    assert_root("setpriv to nobody");
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", "metrics = \"metrics/backupbox.prom\"\n");
    fs::create_dir(sb.join("metrics")).unwrap();
    fs::set_permissions(sb.join("metrics"), fs::Permissions::from_mode(0o755)).unwrap();
    sb.manager(&["start"]).ok();
    let path = sb.join("metrics/backupbox.prom");
    assert!(
        wait_until(Duration::from_secs(10), || path.exists()),
        "service log: {:?}",
        sb.service_log()
    );
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
    let read = tool("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&path)
        .output()
        .unwrap();
    read.ok();
    assert!(
        stdout(&read).contains("backupbox_next_run_timestamp_seconds{name=\"docs\""),
        "{}",
        read.explain()
    );
}

#[test]
fn b3b_every_series_is_unique_with_duplicate_lines_and_non_utf8_names() {
    let sb = Sandbox::new();
    let mut plan = b"docs;03:30;docs\ndocs;03:30;docs\n".to_vec();
    for byte in [0xe9u8, 0xe8] {
        plan.extend_from_slice(b"d;04:00;caf");
        plan.push(byte);
        plan.push(b'\n');
    }
    // A UTF-8 name spelled like the escape of another stays apart from it.
    plan.extend_from_slice(b"d;04:00;caf\\xe9\n");
    fs::write(sb.join("backup_schedules.txt"), &plan).unwrap();
    sb.manager(&["list"]).ok();
    let text = stdout(&sb.manager(&["status", "--prometheus"]));
    let samples: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(key, _)| key))
        .collect();
    let unique: std::collections::HashSet<&&str> = samples.iter().collect();
    assert_eq!(unique.len(), samples.len(), "{text}");
    for name in ["docs", "caf\\\\xe9", "caf\\\\xe8", "caf\\\\\\\\xe9"] {
        assert!(
            text.contains(&format!(
                "backupbox_next_run_timestamp_seconds{{name=\"{name}\""
            )),
            "{name}: {text}"
        );
    }
}

// 4. Small holes.

#[test]
fn b4a_prune_touches_only_regular_files_named_like_generations() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", "keep = 2\n");
    let victim = sb.join("victim");
    fs::write(&victim, "precious").unwrap();
    fs::create_dir(sb.join("backups")).unwrap();
    symlink(&victim, sb.join("backups/docs.2020-01-01_000000.tar")).unwrap();
    nix::unistd::mkfifo(
        &sb.join("backups/docs.2020-01-02_000000.tar"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fs::create_dir(sb.join("backups/docs.2020-01-03_000000.tar")).unwrap();
    for _ in 0..3 {
        sb.manager(&["run", "0"]).ok();
    }
    sb.manager(&["prune", "--dry-run"]).ok().stdout_is("");
    sb.manager(&["prune"]).ok();
    for planted in ["01", "02", "03"] {
        let path = sb.join(format!("backups/docs.2020-01-{planted}_000000.tar"));
        assert!(
            fs::symlink_metadata(&path).is_ok(),
            "{} removed",
            path.display()
        );
    }
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let out = sb.manager(&["backups"]);
    out.ok();
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|line| line.starts_with("docs.") && !line.starts_with("docs.2020-01-0"))
            .count(),
        2,
        "keep = 2: the archive in place and one generation\n{}",
        out.explain()
    );
}

#[test]
fn b4b_restore_of_dot_or_slash_names_nothing_and_own_folders_are_refused() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.manager(&["run", "0"]).ok();
    for member in [".", "/"] {
        sb.manager(&["restore", "docs", member])
            .fails(1)
            .stderr_contains(&format!("{member}: not in the archive"));
    }
    assert!(!sb.join("restore").exists(), "nothing restored");
    for to in ["backups", "backups/sub", "logs", "restore/../backups"] {
        sb.manager(&[
            "restore",
            "docs",
            "--to",
            &sb.join(to).display().to_string(),
        ])
        .fails(1)
        .stderr_contains("which backupbox keeps for itself; choose another with --to");
    }
    let out = sb.manager(&["backups"]);
    out.ok().stdout_is("docs.tar\n");
}

#[test]
fn b4c_a_symlinked_archive_is_refused_saying_it_is_a_link() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.manager(&["run", "0"]).ok();
    fs::rename(sb.join("backups/docs.tar"), sb.join("elsewhere.tar")).unwrap();
    symlink(sb.join("elsewhere.tar"), sb.join("backups/docs.tar")).unwrap();
    sb.manager(&["verify", "docs"]).fails(1).stderr_contains(
        "Error: can't read backups/docs.tar: a symbolic link, not a regular file (backupbox does not follow links here)",
    );
}

#[test]
fn b4d_a_refused_start_logs_why_and_install_makes_0755_folders() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "");
    sb.write("backupbox.toml", "\nbogus_key = 1\n");
    sb.manager(&["start"]).fails(1);
    let log = sb.manager_log();
    assert_eq!(
        log[log.len() - 2..],
        [
            "Error: can't start backup_service",
            "Error: bad settings in backupbox.toml: line 2: bogus_key: unknown key"
        ]
    );
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("umask 077 && exec {BIN} --install bin/deeper"),
        ])
        .current_dir(sb.path())
        .output()
        .unwrap();
    out.ok();
    for dir in ["bin", "bin/deeper"] {
        let mode = fs::metadata(sb.join(dir)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{dir}: {mode:o}");
    }
}
