//! The offsite copy through rclone, against remotes the test starts: a local folder remote for
//! the fast cases, and `rclone serve webdav` on 127.0.0.1, stopped mid-copy and started again.
//! Remotes are set through `RCLONE_CONFIG_*` variables, as a container would set them.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// The environment that defines remote `off` (a local folder) and `wd` (WebDAV at `port`),
/// with an empty config file of the sandbox's.
fn remotes(sb: &Sandbox, port: u16) -> Vec<(String, String)> {
    let config = sb.join("rclone.conf");
    if !config.exists() {
        fs::write(&config, "").unwrap();
    }
    [
        ("RCLONE_CONFIG", config.to_str().unwrap().to_owned()),
        ("RCLONE_CONFIG_OFF_TYPE", "local".to_owned()),
        ("RCLONE_CONFIG_WD_TYPE", "webdav".to_owned()),
        ("RCLONE_CONFIG_WD_URL", format!("http://127.0.0.1:{port}")),
        ("RCLONE_CONFIG_WD_VENDOR", "other".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// `backup_manager ARGS` with the remotes defined.
/// rclone's S3 backend fails to start when `AWS_CA_BUNDLE` is set to a file it can't use as
/// its transport's (some CI images set it), so it is left out.
fn manager(sb: &Sandbox, env: &[(String, String)], args: &[&str]) -> Output {
    assert_installed("rclone");
    sb.command("backup_manager", args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap()
}

/// The files of `dir` by name, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The service in the foreground, with the remotes defined and every pending retry due.
fn start_with_retries_due(sb: &Sandbox, env: &[(String, String)]) -> Child {
    make_retries_due(sb);
    sb.command("backup_service", &[] as &[&str])
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sets every pending offsite retry in the catalog due now, as if its time had come.
fn make_retries_due(sb: &Sandbox) {
    let text = String::from_utf8(sb.read("logs/backup_catalog.txt")).unwrap();
    let due: Vec<String> = text
        .lines()
        .map(|line| {
            line.split('\t')
                .map(|field| match field.strip_prefix("offsite=pending:") {
                    Some(rest) => {
                        let attempts = rest.split(':').next().unwrap();
                        format!("offsite=pending:{attempts}:0")
                    }
                    None => field.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    sb.write("logs/backup_catalog.txt", due.join("\n") + "\n");
}

/// A sandbox whose plan backs up `docs` (one small file) with `settings` in backupbox.toml, and
/// the environment of the remotes (WebDAV at `port`).
fn docs_sandbox(settings: &str, port: u16) -> (Sandbox, Vec<(String, String)>) {
    let sb = Sandbox::new();
    let env = remotes(&sb, port);
    sb.write("docs/a.txt", "alpha\n");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", settings);
    (sb, env)
}

/// A second later (a new stamp), with a changed file: another backup to copy.
fn change_and_run_again(sb: &Sandbox, env: &[(String, String)]) {
    std::thread::sleep(Duration::from_millis(1100));
    sb.write(
        "docs/a.txt",
        format!("{:?}\n", std::time::SystemTime::now()),
    );
    manager(sb, env, &["run", "0"]).ok();
}

/// `status` and the metrics say the archive in place was copied to `folder`.
fn assert_recorded_as_copied(sb: &Sandbox, env: &[(String, String)], folder: &str) {
    let status = manager(sb, env, &["status"]);
    status.stdout_contains(&format!(" to {folder}\n"));
    status.stdout_contains("   offsite: copied ");
    let metrics = stdout(&manager(sb, env, &["status", "--prometheus"]));
    assert!(
        metrics
            .contains("backupbox_offsite_pending{name=\"docs\",folder=\"docs\",time=\"03:30\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("backupbox_last_offsite_success_timestamp_seconds{name=\"docs\""),
        "{metrics}"
    );
}

#[test]
fn each_new_archive_is_copied_under_its_stamp_and_pruned_with_its_generation() {
    let sb = Sandbox::new();
    let remote = tempfile::tempdir().unwrap();
    let env = remotes(&sb, 0);
    sb.write("docs/a.txt", "alpha\n");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    let target = remote.path().join("web1");
    sb.write(
        "backupbox.toml",
        format!(
            "keep = 2\noffsite = \"off:{}\"\noffsite_prefix = \"web1\"\n",
            remote.path().display()
        ),
    );
    // What a killed copy left under a temporary name goes before the next copy.
    fs::create_dir_all(&target).unwrap();
    fs::write(
        target.join(".backupbox-partial-docs.2020-01-01_000000.tar"),
        "cut",
    )
    .unwrap();
    let out = manager(&sb, &env, &["run", "0"]);
    out.ok();
    let copies = names_in(&target);
    assert_eq!(copies.len(), 1, "{copies:?}\n{}", sb.explain());
    let first = copies[0].clone();
    assert!(
        first.starts_with("docs.2") && first.ends_with(".tar"),
        "{first}"
    );
    assert_eq!(
        fs::read(target.join(&first)).unwrap(),
        sb.read("backups/docs.tar")
    );
    let folder = format!("off:{}/web1", remote.path().display());
    let log = sb.manager_log();
    assert!(
        log.contains(&format!(
            "Offsite copy of backups/docs.tar to {folder}: done"
        )),
        "{log:?}"
    );
    assert_recorded_as_copied(&sb, &env, &folder);

    // Two more backups: keep = 2 removes the first generation here, and its copy there.
    change_and_run_again(&sb, &env);
    change_and_run_again(&sb, &env);
    let copies = names_in(&target);
    assert_eq!(copies.len(), 2, "{copies:?}\n{}", sb.explain());
    assert!(!copies.contains(&first), "{copies:?}");
    let log = sb.manager_log();
    assert!(
        log.contains(&format!(
            "Removed offsite copy {folder}/{first}: its generation was removed"
        )),
        "{log:?}"
    );
    // Every copy is byte for byte an archive kept here, under the same name.
    let mut local: Vec<Vec<u8>> = names_in(&sb.join("backups"))
        .iter()
        .filter(|name| name.starts_with("docs."))
        .map(|name| sb.read(&format!("backups/{name}")))
        .collect();
    local.sort();
    let mut remote_bytes: Vec<Vec<u8>> = copies
        .iter()
        .map(|name| fs::read(target.join(name)).unwrap())
        .collect();
    remote_bytes.sort();
    assert_eq!(local, remote_bytes);
}

#[test]
fn a_level_1_is_copied_under_its_own_name_and_its_copy_goes_with_its_full() {
    let remote = tempfile::tempdir().unwrap();
    let (sb, env) = docs_sandbox(
        &format!(
            "incremental = true\noffsite = \"off:{}\"\noffsite_prefix = \"web1\"\n",
            remote.path().display()
        ),
        0,
    );
    let target = remote.path().join("web1");
    manager(&sb, &env, &["run", "0"]).ok();
    change_and_run_again(&sb, &env);
    let local: Vec<String> = names_in(&sb.join("backups"))
        .into_iter()
        .filter(|name| name.contains(".inc.tar"))
        .collect();
    let [level_one] = local.try_into().expect("one level-1");
    let copies = names_in(&target);
    assert_eq!(copies.len(), 2, "{copies:?}\n{}", sb.explain());
    assert!(copies.contains(&level_one), "{copies:?}");
    assert_eq!(
        fs::read(target.join(&level_one)).unwrap(),
        sb.read(&format!("backups/{level_one}"))
    );
    // A week on, a full replaces the full, and the level-1 goes with it, here and there.
    let out = sb
        .command("backup_manager", &["run", "0"])
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env_remove("AWS_CA_BUNDLE")
        .env("BACKUPBOX_TEST_DAYS_LATER", "7")
        .output()
        .unwrap();
    out.ok();
    let copies = names_in(&target);
    assert_eq!(copies.len(), 1, "{copies:?}\n{}", sb.explain());
    assert!(!copies.contains(&level_one), "{copies:?}");
}

#[test]
fn with_offsite_prune_off_the_remote_keeps_what_retention_removes_here() {
    let remote = tempfile::tempdir().unwrap();
    let (sb, env) = docs_sandbox(
        &format!(
            "offsite = \"off:{}\"\noffsite_prefix = \"web1\"\noffsite_prune = false\n",
            remote.path().display()
        ),
        0,
    );
    manager(&sb, &env, &["run", "0"]).ok();
    change_and_run_again(&sb, &env);
    change_and_run_again(&sb, &env);
    // keep = 1 here, three copies there.
    sb.manager(&["backups"]).ok().stdout_is("docs.tar\n");
    assert_eq!(
        names_in(&remote.path().join("web1")).len(),
        3,
        "{}",
        sb.explain()
    );
}

#[test]
fn a_failed_copy_fails_run_is_retried_by_the_service_and_never_redoes_the_backup() {
    let remote = tempfile::tempdir().unwrap();
    let (sb, env) = docs_sandbox(
        "offsite = \"nosuch:bucket\"\noffsite_prefix = \"web1\"\noffsite_retries = 2\n",
        0,
    );
    let out = manager(&sb, &env, &["run", "0"]);
    out.fails(1).stderr_contains(
        "Error: offsite copy of backups/docs.tar to nosuch:bucket/web1 failed: rclone copyto exited with status 1; retry at ",
    );
    // The backup itself stands.
    let log = sb.manager_log();
    assert!(
        log.contains(&"Backup done for docs in backups/docs.tar".to_owned()),
        "{log:?}"
    );
    let archive = sb.read("backups/docs.tar");
    let status = manager(&sb, &env, &["status"]);
    status.stdout_contains("   offsite: not yet copied to nosuch:bucket/web1: failed 1 times, last: rclone copyto exited with status 1; retry at ");

    // The remote is mended; the service, started after the retry time, copies the same
    // archive without making another.
    sb.write(
        "backupbox.toml",
        format!(
            "offsite = \"off:{}\"\noffsite_prefix = \"web1\"\noffsite_retries = 2\n",
            remote.path().display()
        ),
    );
    let service = start_with_retries_due(&sb, &env);
    let folder = format!("off:{}/web1", remote.path().display());
    sb.await_service_log(30, |log| {
        log.iter()
            .any(|line| line == &format!("Offsite copy of backups/docs.tar to {folder}: done"))
    });
    stop_foreground(service);
    let copies = names_in(&remote.path().join("web1"));
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        fs::read(remote.path().join("web1").join(&copies[0])).unwrap(),
        archive
    );
    assert_eq!(
        sb.read("backups/docs.tar"),
        archive,
        "the backup was not redone"
    );
    assert!(
        !sb.service_log()
            .iter()
            .any(|line| line.starts_with("Backup done")),
        "{:?}",
        sb.service_log()
    );
}

#[test]
fn retries_run_out_and_status_says_the_newest_archive_has_no_offsite_copy() {
    let (sb, env) = docs_sandbox(
        "offsite = \"nosuch:bucket\"\noffsite_prefix = \"web1\"\noffsite_retries = 0\n",
        0,
    );
    manager(&sb, &env, &["run", "0"]).fails(1).stderr_contains(
        "Error: offsite copy of backups/docs.tar to nosuch:bucket/web1 failed: rclone copyto exited with status 1; no retries left",
    );
    let status = manager(&sb, &env, &["status"]);
    status.fails(1);
    status.stdout_contains("schedule 0 has no offsite copy of its newest archive");
    let metrics = stdout(&manager(&sb, &env, &["status", "--prometheus"]));
    assert!(
        metrics
            .contains("backupbox_offsite_pending{name=\"docs\",folder=\"docs\",time=\"03:30\"} 1"),
        "{metrics}"
    );
}

#[test]
fn hostile_offsite_settings_are_refused_and_the_config_must_be_private() {
    let (sb, env) = docs_sandbox("offsite = \"--config=/etc/shadow\"\n", 0);
    manager(&sb, &env, &["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 1: offsite: expected an rclone remote and path, REMOTE:PATH",
    );
    sb.write(
        "backupbox.toml",
        "offsite = \"off:/tmp\"\noffsite_prefix = \"../up\"\n",
    );
    manager(&sb, &env, &["run", "0"]).fails(1).stderr_contains(
        "line 2: offsite_prefix: expected a relative folder name without empty, . or .. parts",
    );
    let remote = tempfile::tempdir().unwrap();
    sb.write("rclone-offsite.conf", "[x]\ntype = local\n");
    fs::set_permissions(
        sb.join("rclone-offsite.conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    sb.write(
        "backupbox.toml",
        format!(
            "offsite = \"x:{}\"\noffsite_prefix = \"h\"\noffsite_config = \"rclone-offsite.conf\"\n",
            remote.path().display()
        ),
    );
    manager(&sb, &env, &["run", "0"]).fails(1).stderr_contains(&format!(
        "failed: offsite_config {} may be read by its group or others (mode 0644); chmod 600 it",
        sb.join("rclone-offsite.conf").display()
    ));
    fs::set_permissions(
        sb.join("rclone-offsite.conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    manager(&sb, &env, &["run", "0"]).ok();
    assert_eq!(
        names_in(&remote.path().join("h")).len(),
        1,
        "{}",
        sb.explain()
    );
}

/// Starts the server `command` and waits until `port` of 127.0.0.1 answers.
fn serve(mut command: std::process::Command, port: u16) -> Child {
    let server = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "{command:?} did not listen on {port}");
    server
}

/// `rclone serve webdav` of `dir` on `port` of 127.0.0.1.
fn serve_webdav(dir: &Path, port: u16) -> Child {
    let mut command = tool("rclone");
    command
        .args(["serve", "webdav", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(dir);
    serve(command, port)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_webdav_server_stopped_mid_copy_leaves_nothing_under_the_final_name_and_the_retry_lands() {
    let sb = Sandbox::new();
    let served = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = remotes(&sb, port);
    sb.write("docs/noise", noise(24 << 20));
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "offsite = \"wd:\"\noffsite_prefix = \"web1\"\noffsite_bwlimit = \"4M\"\n",
    );
    let mut server = serve_webdav(served.path(), port);
    let mut run: Child = sb
        .command("backup_manager", &["run", "0"])
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stopped while the upload is under way: some bytes have reached the server.
    let folder: PathBuf = served.path().join("web1");
    let uploading = wait_until(Duration::from_secs(30), || {
        sb.manager_log()
            .iter()
            .any(|line| line.starts_with("Backup done"))
            && fs::read_dir(&folder).is_ok_and(|mut entries| entries.next().is_some())
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(uploading, "{}", sb.explain());
    let ended = run.wait().unwrap();
    assert_eq!(ended.code(), Some(1), "{}", sb.explain());
    let finals: Vec<String> = names_in(&folder)
        .into_iter()
        .filter(|name| !name.starts_with(".backupbox-partial-"))
        .collect();
    assert!(
        finals.is_empty(),
        "a partial file under its final name: {finals:?}"
    );
    let log = sb.manager_log();
    assert!(
        log.iter().any(|line| line.starts_with(
            "Error: offsite copy of backups/docs.tar to wd:web1 failed: rclone copyto "
        ) && line.contains("; retry at ")),
        "{log:?}"
    );

    // The server is back; the retry uploads the same archive, complete, and nothing partial
    // is left.
    let server = serve_webdav(served.path(), port);
    sb.write(
        "backupbox.toml",
        "offsite = \"wd:\"\noffsite_prefix = \"web1\"\n",
    );
    let service = start_with_retries_due(&sb, &env);
    sb.await_service_log(60, |log| {
        log.iter()
            .any(|line| line == "Offsite copy of backups/docs.tar to wd:web1: done")
    });
    stop_foreground(service);
    let mut server = server;
    server.kill().unwrap();
    server.wait().unwrap();
    let copies = names_in(&folder);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(!copies[0].starts_with(".backupbox-partial-"), "{copies:?}");
    assert_eq!(
        fs::read(folder.join(&copies[0])).unwrap(),
        sb.read("backups/docs.tar")
    );
}

/// moto's S3 server on `port` of 127.0.0.1.
fn serve_s3(port: u16) -> Child {
    let mut command = tool("moto_server");
    command
        .args(["-H", "127.0.0.1", "-p"])
        .arg(port.to_string());
    serve(command, port)
}

/// `rclone ARGS` against remote `s3m` (moto at `port`); its stdout.
fn rclone_s3(sb: &Sandbox, port: u16, args: &[&str]) -> String {
    let out = tool("rclone")
        .envs(s3_remote(sb, port))
        .env_remove("AWS_CA_BUNDLE")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "rclone {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Remote `s3m`: the S3 API at `port`, as the rclone S3 remote with `provider = Other`.
fn s3_remote(sb: &Sandbox, port: u16) -> Vec<(String, String)> {
    let mut env = remotes(sb, 0);
    for (key, value) in [
        ("TYPE", "s3".to_owned()),
        ("PROVIDER", "Other".to_owned()),
        ("ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("ACCESS_KEY_ID", "backupbox".to_owned()),
        ("SECRET_ACCESS_KEY", "backupbox".to_owned()),
        ("REGION", "us-east-1".to_owned()),
    ] {
        env.push((format!("RCLONE_CONFIG_S3M_{key}"), value));
    }
    env
}

#[test]
fn copies_to_an_s3_bucket_are_uploaded_once_under_their_final_name_and_pruned() {
    let sb = Sandbox::new();
    let port = free_port();
    let mut server = serve_s3(port);
    rclone_s3(&sb, port, &["mkdir", "s3m:backups"]);
    let env = s3_remote(&sb, port);
    sb.write("docs/a.txt", "alpha\n");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        "keep = 2\ncompress = \"zstd\"\noffsite = \"s3m:backups\"\noffsite_prefix = \"web1\"\n",
    );
    manager(&sb, &env, &["run", "0"]).ok();
    let listed = rclone_s3(&sb, port, &["lsf", "s3m:backups/web1"]);
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names.len(), 1, "{listed}");
    assert!(
        names[0].starts_with("docs.2") && names[0].ends_with(".tar.zst"),
        "{listed}"
    );
    let copy = tool("rclone")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env_remove("AWS_CA_BUNDLE")
        .args(["cat", &format!("s3m:backups/web1/{}", names[0])])
        .output()
        .unwrap();
    assert_eq!(copy.stdout, sb.read("backups/docs.tar.zst"));
    // An object store has no move: nothing ever lay under a temporary name there.
    assert!(
        !sb.manager_log()
            .iter()
            .any(|line| line.contains(".backupbox-partial-")),
        "{:?}",
        sb.manager_log()
    );
    change_and_run_again(&sb, &env);
    change_and_run_again(&sb, &env);
    let listed = rclone_s3(&sb, port, &["lsf", "s3m:backups/web1"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(!listed.contains(names[0]), "{listed}");
    server.kill().unwrap();
    server.wait().unwrap();
}
