//! Hooks (`before`, `on_success`, `on_failure`): their environment, how their exit status
//! counts, their output in the log, timeouts that stop the whole process group, and a
//! service that lets a running hook finish on SIGTERM.

use crate::common::*;
use std::fs;
use std::time::Duration;

/// Settings with `lines` in them, and a plan of one schedule `docs` at 01:00.
fn with_settings(lines: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write("backupbox.toml", lines);
    sb
}

/// The variables a hook may be given.
const HOOK_VARIABLES: [&str; 7] = [
    "BACKUPBOX_ARCHIVE=",
    "BACKUPBOX_BASE=",
    "BACKUPBOX_ERROR=",
    "BACKUPBOX_FOLDER=",
    "BACKUPBOX_NAME=",
    "BACKUPBOX_SIZE=",
    "BACKUPBOX_STARTED=",
];

/// `KEY=value` lines a hook wrote with `env > FILE`, for the hook variables.
fn hook_env(sb: &Sandbox, file: &str) -> Vec<String> {
    let text = String::from_utf8(sb.read(file)).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| HOOK_VARIABLES.iter().any(|key| line.starts_with(key)))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn hooks_get_the_job_in_their_environment_and_before_may_fill_the_folder() {
    let sb = with_settings(concat!(
        "before = \"echo dumped > \\\"$BACKUPBOX_FOLDER/dump.sql\\\"; echo dumping\"\n",
        "on_success = \"env > success.env; readlink /proc/self/fd/0 > stdin.txt; ",
        "ps -o pgid= -p $$ | tr -d ' ' > pgid.txt; echo $$ > pid.txt\"\n",
    ));
    sb.manager(&["run", "0"]).ok();
    // The dump the before hook wrote is in the archive.
    let names = gnu_tar_names(&sb.join("backups/docs.tar"));
    assert!(names.contains(&b"docs/dump.sql".to_vec()), "{names:?}");
    let size = fs::metadata(sb.join("backups/docs.tar")).unwrap().len();
    let env = hook_env(&sb, "success.env");
    let base = sb.path().display();
    assert_eq!(
        env.iter()
            .filter(|line| !line.starts_with("BACKUPBOX_STARTED="))
            .cloned()
            .collect::<Vec<_>>(),
        [
            format!("BACKUPBOX_ARCHIVE={base}/backups/docs.tar"),
            format!("BACKUPBOX_BASE={base}"),
            format!("BACKUPBOX_FOLDER={base}/docs"),
            "BACKUPBOX_NAME=docs".to_owned(),
            format!("BACKUPBOX_SIZE={size}"),
        ]
    );
    let started: i64 = env
        .iter()
        .find_map(|line| line.strip_prefix("BACKUPBOX_STARTED="))
        .unwrap()
        .parse()
        .unwrap();
    assert_within_the_last_minute(started);
    assert_eq!(
        String::from_utf8(sb.read("stdin.txt")).unwrap(),
        "/dev/null\n"
    );
    assert_eq!(
        sb.read("pgid.txt"),
        sb.read("pid.txt"),
        "its own process group"
    );
    assert_eq!(
        sb.manager_log(),
        [
            "before: dumping",
            "Backup done for docs in backups/docs.tar"
        ]
    );
}

#[test]
fn a_failing_before_hook_fails_the_backup_writes_nothing_and_runs_on_failure() {
    let sb = with_settings(concat!(
        "keep = 2\n",
        "before = \"echo no database >&2; exit 3\"\n",
        "on_failure = \"env > failure.env; exit 1\"\n",
    ));
    let out = sb.manager(&["run", "0"]);
    let error =
        "Error: backup of docs to backups/docs.tar failed: before hook exited with status 3";
    out.fails(1).stderr_contains(error);
    assert!(!sb.join("backups/docs.tar").exists(), "{}", sb.explain());
    assert_eq!(
        sb.manager_log(),
        [
            "before: no database",
            error,
            "Error: on_failure hook for backups/docs.tar exited with status 1",
        ]
    );
    assert!(
        hook_env(&sb, "failure.env").contains(&format!(
            "BACKUPBOX_ERROR={}",
            error.strip_prefix("Error: ").unwrap()
        )),
        "{}",
        sb.explain()
    );
    let status = sb.manager(&["status"]);
    status.fails(1).stdout_contains(
        "before hook exited with status 3; on_failure hook for backups/docs.tar exited with status 1",
    );
}

#[test]
fn a_failing_on_success_hook_changes_nothing_on_disk_but_status_reports_it() {
    let sb = with_settings("on_success = \"seq 1 10000; exit 1\"\n");
    // The backup itself worked: run exits 0, the archive is in place.
    sb.manager(&["run", "0"]).ok();
    assert_gnu_tar_compare_clean(&sb.join("backups/docs.tar"), sb.path());
    let log = sb.manager_log();
    assert_eq!(log[0], "Backup done for docs in backups/docs.tar");
    assert_eq!(log[1], "on_success: 1");
    assert_eq!(log[50], "on_success: 50");
    assert_eq!(log[51], "on_success: … 9950 more lines");
    assert_eq!(
        log[52],
        "Error: on_success hook for backups/docs.tar exited with status 1"
    );
    assert_eq!(log.len(), 53);
    sb.manager(&["status"])
        .fails(1)
        .stdout_contains("; schedule 0: on_success hook for backups/docs.tar exited with status 1");
}

#[test]
fn a_hook_that_hangs_is_killed_with_everything_it_started() {
    // The shell ignores SIGTERM, so the group needs the SIGKILL 10 s later.
    let sb = with_settings(concat!(
        "hook_timeout = 1\n",
        "before = \"trap '' TERM; sleep 300 & echo $! > bg.pid; sleep 300\"\n",
    ));
    let started = std::time::Instant::now();
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: backup of docs to backups/docs.tar failed: before hook was killed after 1 s",
    );
    assert!(
        started.elapsed() >= Duration::from_secs(11),
        "TERM, then KILL after 10 s"
    );
    let background: i32 = String::from_utf8(sb.read("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(background)),
        "no orphan survives"
    );
    assert!(!sb.join("backups/docs.tar").exists(), "{}", sb.explain());
}

#[test]
fn a_hanging_hook_never_holds_up_other_schedules() {
    let sb = Sandbox::new();
    sb.write("slow/f", "x");
    sb.write("quick/f", "x");
    let now = current_minute();
    sb.write(
        "backup_schedules.txt",
        format!("slow;{now};slow\nquick;{now};quick\n"),
    );
    sb.write(
        "backupbox.toml",
        "[name.slow]\nhook_timeout = 4\nbefore = \"sleep 300\"\n",
    );
    let service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(20), || { sb.service_log().len() == 2 }),
        "{}",
        sb.explain()
    );
    assert_eq!(
        sb.service_log(),
        [
            "Backup done for quick in backups/quick.tar",
            "Error: backup of slow to backups/slow.tar failed: before hook was killed after 4 s",
        ]
    );
    stop_foreground(service);
}

#[test]
fn stopping_the_service_lets_a_running_hook_finish() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.plan_now("docs", "docs");
    sb.write(
        "backupbox.toml",
        "on_success = \"touch started; while [ ! -e go ]; do sleep 0.05; done; echo finished\"\n",
    );
    let stopping = Pause::new(&sb, "service-stopping");
    let (key, value) = Pause::env(&[&stopping]);
    sb.command("backup_manager", &["start"])
        .env(key, value)
        .output()
        .unwrap()
        .ok();
    assert!(
        wait_until(Duration::from_secs(20), || sb.join("started").exists()),
        "{}",
        sb.explain()
    );
    let mut stop = sb.command("backup_manager", &["stop"]).spawn().unwrap();
    stopping.reached();
    stopping.release();
    assert!(
        stop.try_wait().unwrap().is_none(),
        "stop waits for the hook"
    );
    sb.write("go", "");
    assert!(stop.wait().unwrap().success(), "{}", sb.explain());
    assert_eq!(
        sb.service_log(),
        [
            "Backup done for docs in backups/docs.tar",
            "on_success: finished"
        ]
    );
}

#[test]
fn hook_settings_are_checked_like_every_other() {
    let sb = with_settings("before = \"\"\n");
    sb.manager(&["run", "0"])
        .fails(1)
        .stderr_contains("line 1: before: expected a non-empty string");
    sb.write("backupbox.toml", "hook_timeout = 0\n");
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "line 1: hook_timeout: expected a whole number of seconds from 1 to 86400",
    );
    sb.write("backupbox.toml", "[name.docs]\nmetrics = \"m.prom\"\n");
    sb.manager(&["run", "0"])
        .fails(1)
        .stderr_contains("line 2: metrics: only at the top of the file, not in a [name.…] table");
}

#[test]
fn an_unknown_hook_user_is_a_settings_error() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "[name.docs]\nbefore = \"true\"\nhook_user = \"no-such-user-here\"\n",
    );
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 3: hook_user: no such user: \"no-such-user-here\"",
    );
    assert!(!sb.join("backups/docs.tar").exists(), "{}", sb.explain());
}

#[test]
#[ignore = "needs root: runs a hook as another user"]
fn hooks_run_as_hook_user_with_its_groups_and_home() {
    assert_root("switches to nobody");
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    // nobody may write the dump into the folder, and reach it.
    fs::set_permissions(sb.join("docs"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "before = 'printf \"%s %s %s\" \"$(id -u)\" \"$(id -g)\" \"$HOME\" > docs/who'\nhook_user = \"nobody\"\n",
    );
    sb.manager(&["run", "0"]).ok();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert_eq!(
        String::from_utf8(sb.read("docs/who")).unwrap(),
        format!("{} {} {}", nobody.uid, nobody.gid, nobody.dir.display())
    );
    // The dump is in the archive, and the archive is root's as always.
    let names = gnu_tar_names(&sb.join("backups/docs.tar"));
    assert!(names.contains(&b"docs/who".to_vec()), "{names:?}");
}

#[test]
fn the_sqlite_recipe_backs_up_a_database_that_is_being_written() {
    let sb = Sandbox::new();
    let db = sb.join("app.db");
    let sqlite = |sql: &str| {
        let out = tool("sqlite3").arg(&db).arg(sql).output().unwrap();
        assert!(out.status.success(), "sqlite3 {sql}: {}", stderr(&out));
        stdout(&out)
    };
    sqlite("PRAGMA journal_mode=WAL; CREATE TABLE t(n INTEGER, pad TEXT);");
    fs::create_dir_all(sb.join("dump")).unwrap();
    sb.write("backup_schedules.txt", "dump;03:30;db\n");
    // The README's recipe.
    sb.write(
        "backupbox.toml",
        "[name.db]\nbefore = 'sqlite3 -cmd \".timeout 10000\" app.db \".backup dump/app.db\"'\n",
    );
    // A writer keeps inserting while the backup runs.
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg("i=0; while [ $i -lt 400 ]; do sqlite3 -cmd '.timeout 10000' \"$1\" \"INSERT INTO t VALUES ($i, printf('%.500c', 'x'));\" || exit 1; i=$((i+1)); done")
        .args(["sh", db.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sb.manager(&["run", "0"]).ok();
    let wrote = writer.wait().unwrap();
    assert!(
        wrote.success(),
        "the writer failed ({wrote}): {}",
        sb.explain()
    );
    sb.manager(&["restore", "db", "--to", "back"]).ok();
    let restored = sb.join("back/dump/app.db");
    let check = tool("sqlite3")
        .arg(&restored)
        .arg("PRAGMA integrity_check; SELECT count(*) = max(n) + 1 FROM t;")
        .output()
        .unwrap();
    assert_eq!(stdout(&check), "ok\n1\n", "{}", stderr(&check));
}
