//! The service: started by `backup_manager start` or run in the foreground, its first-minute
//! backups, its stop, its PID file, and the races between managers.

use crate::common::*;
use nix::sys::signal::Signal;
use std::fs;
use std::time::Duration;

#[test]
fn the_spec_example_start_then_stop_still_backs_up() {
    let sb = Sandbox::new();
    sb.write("test/file", "one");
    sb.write("test1/file", "two");
    sb.write_large("test2/big", 64);
    let now = current_minute();
    for line in [
        format!("test;{now};backup_test"),
        format!("test1;{now};personal_data"),
        format!("test2;{now};big"),
    ] {
        sb.manager(&["create", &line]).ok();
    }
    let out = sb.manager(&["start"]);
    assert_eq!(
        (code(&out), stdout(&out), stderr(&out)),
        (0, String::new(), String::new())
    );
    let pid = sb
        .service_pid()
        .expect("the PID is written before start returns");
    assert!(alive(pid), "{}", sb.explain());
    let out = sb.manager(&["stop"]);
    out.ok();
    assert!(!alive(pid), "stop returns once the service is gone");

    let mut done = sb.service_log();
    done.sort();
    assert_eq!(
        done,
        [
            "Backup done for test in backups/backup_test.tar",
            "Backup done for test1 in backups/personal_data.tar",
            "Backup done for test2 in backups/big.tar",
        ]
    );
    let manager = sb.manager_log();
    assert_eq!(
        &manager[3..],
        ["backup_service started", "backup_service stopped"]
    );
    for archive in ["backup_test", "personal_data", "big"] {
        assert_gnu_tar_compare_clean(&sb.join(format!("backups/{archive}.tar")), sb.path());
    }
    assert_eq!(
        stdout(&sb.manager(&["backups"])),
        "backup_test.tar\nbig.tar\npersonal_data.tar\n"
    );
    assert_eq!(
        sb.read("logs/backup_service.pid"),
        b"",
        "a clean stop leaves no stale PID"
    );
}

#[test]
fn the_daemon_is_detached_and_named_backup_service() {
    let sb = Sandbox::new();
    sb.manager(&["start"]).ok();
    let pid = sb.service_pid().unwrap();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"backup_service\0__serve\0"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let ps = tool("ps")
        .args(["-o", "args=", "-p", &pid.to_string()])
        .output()
        .expect("run ps");
    assert!(
        ps.status.success() && stdout(&ps).starts_with("backup_service "),
        "ps -o args= -p {pid}: {}{}",
        stdout(&ps),
        stderr(&ps)
    );
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let (ppid, session, tty) = (fields[1], fields[3], fields[4]);
    assert_eq!(tty, "0", "no controlling terminal");
    assert_ne!(
        session,
        pid.to_string(),
        "not a session leader, so it can never regain a terminal"
    );
    assert_ne!(ppid, std::process::id().to_string());
    for fd in 0..3 {
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            std::path::Path::new("/dev/null")
        );
    }
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Umask:\t0027"), "{status}");
    sb.manager(&["stop"]).ok();
}

#[test]
fn start_and_stop_errors() {
    let sb = Sandbox::new();
    let out = sb.manager(&["stop"]);
    assert_eq!(
        (code(&out), stderr(&out)),
        (1, "Error: backup_service not running\n".to_owned())
    );
    sb.manager(&["start"]).ok();
    let out = sb.manager(&["start"]);
    assert_eq!(
        (code(&out), stderr(&out)),
        (1, "Error: backup_service already running\n".to_owned())
    );
    sb.manager(&["stop"]).ok();
    assert_eq!(
        sb.manager_log(),
        [
            "Error: backup_service not running",
            "backup_service started",
            "Error: backup_service already running",
            "backup_service stopped",
        ]
    );
}

#[test]
fn eight_concurrent_starts_leave_exactly_one_service() {
    let sb = Sandbox::new();
    let starts: Vec<_> = (0..8)
        .map(|_| {
            sb.command("backup_manager", &["start"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = starts
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    let log = sb.manager_log();
    assert_eq!(
        log.iter()
            .filter(|l| *l == "backup_service started")
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| *l == "Error: backup_service already running")
            .count(),
        7,
        "{log:?}"
    );
    let services = services_serving(sb.path());
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(Some(services[0]), sb.service_pid());
    sb.manager(&["stop"]).ok();
    assert!(services_serving(sb.path()).is_empty(), "{}", sb.explain());
}

/// PIDs of daemons serving `base`, from their command lines.
fn services_serving(base: &std::path::Path) -> Vec<i32> {
    let wanted = format!("backup_service\0__serve\0--dir\0{}\0", base.display());
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            alive(*pid)
                && fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(wanted.as_bytes()))
        })
        .collect()
}

#[test]
fn a_stale_pid_file_never_blocks_start_and_its_pid_is_never_signalled() {
    let sb = Sandbox::new();
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let bystander_pid = bystander.id() as i32;
    sb.write("logs/backup_service.pid", format!("{bystander_pid}\n"));

    let out = sb.manager(&["stop"]);
    assert_eq!(
        (code(&out), stderr(&out)),
        (1, "Error: backup_service not running\n".to_owned())
    );
    sb.manager(&["start"]).ok();
    assert_ne!(sb.service_pid(), Some(bystander_pid));
    sb.manager(&["stop"]).ok();
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the unrelated process was not signalled"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn after_kill_9_the_service_starts_again() {
    let sb = Sandbox::new();
    sb.manager(&["start"]).ok();
    let pid = sb.service_pid().unwrap();
    signal(pid, Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "{}",
        sb.explain()
    );
    assert_eq!(
        sb.service_pid(),
        Some(pid),
        "kill -9 leaves the stale PID behind"
    );
    assert_eq!(
        stderr(&sb.manager(&["stop"])),
        "Error: backup_service not running\n"
    );
    sb.manager(&["start"]).ok();
    assert_ne!(sb.service_pid(), Some(pid));
    sb.manager(&["stop"]).ok();
}

#[test]
fn the_foreground_service_stops_cleanly_on_sigterm_and_sigint() {
    for stop_signal in [Signal::SIGTERM, Signal::SIGINT] {
        let sb = Sandbox::new();
        let mut service = sb.spawn_service();
        let pid = service.id() as i32;
        assert!(
            wait_until(Duration::from_secs(10), || sb.service_pid() == Some(pid)),
            "{}",
            sb.explain()
        );
        // A running service blocks both `start` and a second foreground service.
        assert_eq!(
            stderr(&sb.manager(&["start"])),
            "Error: backup_service already running\n"
        );
        let second = sb
            .command("backup_service", &[] as &[&str])
            .output()
            .unwrap();
        second.fails(1);
        signal(pid, stop_signal);
        let status = service.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{stop_signal:?}");
        assert_eq!(sb.read("logs/backup_service.pid"), b"");
    }
}

#[test]
fn stop_waits_for_a_running_backup() {
    let sb = Sandbox::new();
    sb.write_large("big/data", 4);
    sb.plan_now("big", "big");
    let written = Pause::new(&sb, "archive-written");
    let stopping = Pause::new(&sb, "service-stopping");
    let (key, value) = Pause::env(&[&written, &stopping]);
    sb.command("backup_manager", &["start"])
        .env(key, value)
        .output()
        .unwrap()
        .ok();
    written.reached();
    let mut stop = sb.command("backup_manager", &["stop"]).spawn().unwrap();
    // The service got the SIGTERM while its backup is still writing.
    stopping.reached();
    stopping.release();
    assert!(
        stop.try_wait().unwrap().is_none(),
        "stop waits for the backup"
    );
    assert!(!sb.join("backups/big.tar").exists(), "{}", sb.explain());
    written.release();
    assert!(stop.wait().unwrap().success(), "{}", sb.explain());
    assert_eq!(sb.service_log(), ["Backup done for big in backups/big.tar"]);
    assert_gnu_tar_compare_clean(&sb.join("backups/big.tar"), sb.path());
}

#[test]
fn hostile_plan_lines_do_not_stop_the_good_ones() {
    let sb = Sandbox::new();
    sb.write("good/f", "ok");
    let now = current_minute();
    let plan = format!(
        "# comment\r\n\r\ngood;{now};good\r\n../../etc;{now};../../x\ngarbage\n{now};good;swapped\nmissing;{now};missing\n\x1b[31m;{now};esc\n"
    );
    sb.write("backup_schedules.txt", plan);
    let service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let log = sb.service_log();
            log.iter().any(|l| l.starts_with("Backup done"))
                && log
                    .iter()
                    .any(|l| l.starts_with("Error: backup of missing"))
        }),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
    let mut log = sb.service_log();
    log.sort();
    let mut expected = [
        "Backup done for good in backups/good.tar".to_owned(),
        "Error: backup of missing to backups/missing.tar failed: folder not found".to_owned(),
        format!("Error: malformed schedule: ../../etc;{now};../../x"),
        format!("Error: malformed schedule: \\x1b[31m;{now};esc"),
        format!("Error: malformed schedule: {now};good;swapped"),
        "Error: malformed schedule: garbage".to_owned(),
    ];
    expected.sort();
    assert_eq!(
        log, expected,
        "each problem once, every good line backed up"
    );
    assert!(
        !sb.join("x.tar").exists() && !sb.join("../x.tar").exists(),
        "{}",
        sb.explain()
    );
    assert_eq!(stdout(&sb.manager(&["backups"])), "good.tar\n");
}

#[test]
fn a_missing_plan_is_reported_and_the_service_keeps_running() {
    let sb = Sandbox::new();
    let mut service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_log()
            == ["Error: can't read backup_schedules.txt"]),
        "{}",
        sb.explain()
    );
    assert!(service.try_wait().unwrap().is_none(), "{}", sb.explain());
    stop_foreground(service);
}

#[test]
fn the_service_resolves_relative_folders_against_its_base_directory() {
    let sb = Sandbox::new();
    sb.write("data/f", "x");
    sb.plan_now("data", "data");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(sb.join("backup_manager"))
        .args(["--dir", sb.path().to_str().unwrap(), "start"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    out.ok();
    sb.manager(&["stop"]).ok();
    assert_eq!(
        sb.service_log(),
        ["Backup done for data in backups/data.tar"]
    );
    assert!(
        fs::read_dir(elsewhere.path()).unwrap().next().is_none(),
        "nothing written in the caller's directory"
    );
}

#[test]
fn stop_gives_up_after_its_timeout_and_the_service_still_finishes() {
    let sb = Sandbox::new();
    sb.write_large("data/large", 4);
    sb.plan_now("data", "data");
    let written = Pause::new(&sb, "archive-written");
    let (key, value) = Pause::env(&[&written]);
    sb.command("backup_manager", &["start"])
        .env(key, value)
        .output()
        .unwrap()
        .ok();
    let pid = sb.service_pid().unwrap();
    written.reached();
    let out = sb.manager(&["stop", "--timeout", "0"]);
    out.fails(1);
    written.release();
    assert!(
        stderr(&out).starts_with("Error: can't stop backup_service: "),
        "{}",
        stderr(&out)
    );
    assert!(
        wait_until(Duration::from_secs(60), || !alive(pid)),
        "the SIGTERM still stops it after the backup"
    );
    assert_eq!(
        sb.service_log(),
        ["Backup done for data in backups/data.tar"]
    );
    assert_eq!(sb.manager_log()[1], "Error: can't stop backup_service");
}

#[test]
fn many_backups_due_at_once_all_run_sixteen_at_a_time() {
    let sb = Sandbox::new();
    sb.write_large("data/large", 16);
    let now = current_minute();
    let plan: String = (0..20)
        .map(|i| format!("data;{now};copy{i:02}\n"))
        .collect();
    sb.write("backup_schedules.txt", plan);
    sb.manager(&["start"]).ok();
    sb.manager(&["stop"]).ok();
    let log = sb.service_log();
    let waits: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("Warning: 16 backups already running; "))
        .collect();
    assert_eq!(waits.len(), 4, "{log:?}");
    assert_eq!(
        waits[0],
        "Warning: 16 backups already running; backup of data to backups/copy16.tar waits for one to finish"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("Backup done for data in backups/copy"))
            .count(),
        20
    );
    assert_eq!(stdout(&sb.manager(&["backups"])).lines().count(), 20);
}

#[test]
fn start_up_removes_what_interrupted_writers_left_and_nothing_else() {
    let sb = Sandbox::new();
    // The plan is a link into another folder: an interrupted edit leaves its temp there.
    let elsewhere = sb.join("etc");
    fs::create_dir(&elsewhere).unwrap();
    sb.write(
        "etc/plan.txt",
        format!("docs;{};docs\n", minute_from_now(120)),
    );
    std::os::unix::fs::symlink(elsewhere.join("plan.txt"), sb.join("backup_schedules.txt"))
        .unwrap();
    let stale = ".backupbox-1-0.tmp";
    for dir in ["", "logs/", "backups/", "etc/"] {
        sb.write(&format!("{dir}{stale}"), "half written");
    }
    sb.write("keep.tmp", "not ours");
    let service = sb.spawn_service();
    let pid = service.id() as i32;
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid() == Some(pid)),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
    let mut log = sb.service_log();
    log.sort();
    let mut expected = vec![
        format!("Warning: removed {stale}, left by a plan edit that was interrupted"),
        format!("Warning: removed backups/{stale}, left by a backup that was interrupted"),
        format!("Warning: removed logs/{stale}, left by a status update that was interrupted"),
        format!(
            "Warning: removed {}/{stale}, left by a plan edit that was interrupted",
            elsewhere.canonicalize().unwrap().display()
        ),
    ];
    expected.sort();
    assert_eq!(log, expected);
    for dir in ["", "logs/", "backups/", "etc/"] {
        assert!(
            !sb.join(format!("{dir}{stale}")).exists(),
            "{dir}{stale} left"
        );
    }
    assert_eq!(sb.read("keep.tmp"), b"not ours");
}

#[test]
#[ignore = "needs root: a private mount namespace"]
fn sighup_picks_up_a_new_time_zone() {
    // glibc re-reads /etc/localtime on tzset when TZ is unset. The service gets a private
    // /etc/localtime (a bind mount in its own mount namespace) that the test then changes.
    let sb = Sandbox::new();
    let zone = sb.join("zone");
    fs::copy("/usr/share/zoneinfo/UTC", &zone).unwrap();
    sb.write("backup_schedules.txt", "");
    let script = format!(
        "mount --bind {} /etc/localtime && exec ./backup_service",
        zone.display()
    );
    assert_root("a private mount namespace");
    let service = tool("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(sb.path())
        .env_remove("TZ")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run unshare");
    let pid = service.id() as i32;
    // Once its PID is in the PID file, the service handles SIGHUP.
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid() == Some(pid)),
        "the service in a private mount namespace never wrote its PID file; service log: {:?}",
        sb.service_log()
    );
    let reloads = || {
        sb.service_log()
            .iter()
            .filter(|line| line.starts_with("Plan reloaded"))
            .count()
    };
    signal(pid, Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || reloads() == 1),
        "{}",
        sb.explain()
    );
    // Asia/Kolkata is UTC+5:30: the minutes of the stamp move by 330.
    fs::copy("/usr/share/zoneinfo/Asia/Kolkata", &zone).unwrap();
    // The C library tells a changed zone file by its mtime in whole seconds.
    touch(&zone, "2001-02-03 04:05:06");
    signal(pid, Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || reloads() == 2),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
    let text = String::from_utf8(sb.read("logs/backup_service.log")).unwrap();
    let minutes: Vec<i64> = text
        .lines()
        .map(|line| {
            let (h, m) = (&line[12..14], &line[15..17]);
            h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap()
        })
        .collect();
    let shift = (minutes[1] - minutes[0]).rem_euclid(24 * 60);
    assert!(
        (330..=331).contains(&shift),
        "the second stamp is in UTC+5:30: {text}"
    );
}

#[test]
fn the_serve_entry_adopts_only_an_open_pipe() {
    let sb = Sandbox::new();
    let base = sb.path().display().to_string();
    for (setup, fd, why) in [
        ("", "1", "not a descriptor above 2"),
        ("", "9", "Bad file descriptor"),
        ("exec 3</etc/hostname;", "3", "not a pipe"),
    ] {
        let script = format!("{setup} exec \"$0\" service __serve --ready-fd {fd} --dir {base}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .output()
            .unwrap();
        out.fails(2);
        assert!(stderr(&out).contains(why), "{fd}: {}", stderr(&out));
        assert!(sb.service_pid().is_none(), "no service started");
    }
}

/// The current wall-clock minute in UTC, counted from the epoch, at least 10 s before the
/// next one, so a test's plan times stay where it put them.
fn utc_minute_now() -> i64 {
    loop {
        let unix = unix_now();
        if unix % 60 < 50 {
            return unix / 60;
        }
        std::thread::sleep(Duration::from_secs(11));
    }
}

fn hh_mm(wall_minute: i64) -> String {
    let minute = wall_minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[test]
fn a_schedule_missed_while_the_service_was_down_runs_once_at_start() {
    let sb = Sandbox::new();
    for folder in ["docs", "late", "later"] {
        sb.write(&format!("{folder}/f"), "x");
    }
    let now = utc_minute_now();
    let (hour_ago, hour_ahead) = (now - 60, now + 60);
    let docs = format!("docs;{};docs", hh_mm(hour_ago));
    let late = format!("late;{};late", hh_mm(hour_ago));
    let later = format!("later;{};later", hh_mm(hour_ahead));
    sb.write("backup_schedules.txt", format!("{docs}\n{late}\n{later}\n"));
    sb.write(
        "backupbox.toml",
        "catch_up = true\n[name.late]\ncatch_up = false\n",
    );
    // Yesterday's runs of docs and later, as the state file records them.
    sb.write(
        "logs/backup_state.txt",
        format!(
            "ok\t{}\t0\t5\t10240\t\t{docs}\nok\t{}\t0\t5\t10240\t\t{later}\n",
            (hour_ago - 1440) * 60,
            (hour_ahead - 1440) * 60
        ),
    );
    let spawn = || {
        sb.command("backup_service", &[] as &[&str])
            .env("TZ", "UTC0")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let due_stamp = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", hour_ago * 60),
            "+%d/%m/%Y %H:%M",
        ])
        .output()
        .unwrap();
    let caught_up = [
        format!(
            "Catching up: {docs} was due at {}",
            stdout(&due_stamp).trim()
        ),
        "Backup done for docs in backups/docs.tar".to_owned(),
    ];
    let service = spawn();
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_log() == caught_up),
        "{:?}",
        sb.service_log()
    );
    stop_foreground(service);
    assert!(!sb.join("backups/late.tar").exists(), "catch_up = false");
    assert!(!sb.join("backups/later.tar").exists(), "not due yet");

    // Started again: the catch-up run is recorded, so nothing runs twice. The reload's line
    // comes after the start-up check, so once it is there the check is over.
    let service = spawn();
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid()
            == Some(service.id() as i32)),
        "{}",
        sb.explain()
    );
    signal(service.id() as i32, Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || {
            sb.service_log().last().map(String::as_str) == Some("Plan reloaded: 3 schedules")
        }),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
    assert_eq!(sb.service_log()[..2], caught_up);
    assert_eq!(sb.service_log().len(), 3, "{:?}", sb.service_log());
}
