//! What a hostile local user feeds backupbox to make it use memory or time out of all
//! proportion: deep member names, patterns that backtrack, deep TOML, huge plans, bursts.
//! Each test names the point of the trust issue (input) it covers.

use crate::common::*;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// `./backup_manager ARGS` under a virtual-memory cap of `mib` MiB and a time limit: a
/// quadratic pass fails the cap (the 500,000-level name aborted at 8 GB).
fn manager_capped(sb: &Sandbox, args: &str, mib: u64, limit: Duration) -> std::process::Output {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!("ulimit -v {} && exec ./backup_manager {args}", mib * 1024),
        ])
        .current_dir(sb.path());
    output_within(command, limit)
}

/// A folder on tmpfs for restores that make hundreds of thousands of directories: /dev/shm,
/// where the machine has one, so the test does not write gigabytes of directory blocks.
fn scratch(sb: &Sandbox) -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("backupbox-deep-")
            .tempdir_in(shm)
            .unwrap()
            .keep()
    } else {
        sb.join("scratch")
    }
}

/// `rm -rf`, which walks trees deeper than any recursion would.
fn remove_tree(path: &std::path::Path) {
    let _ = Command::new("rm").arg("-rf").arg(path).status();
}

// 1. Resource exhaustion by input.

#[test]
fn i1a_a_500000_level_member_name_restores_in_linear_time_and_memory() {
    let sb = Sandbox::new();
    let name = [b"docs/".to_vec(), b"a/".repeat(500_000), b"f".to_vec()].concat();
    let archive = RawArchive::new()
        .member(&name, tar::EntryType::Regular, b"", b"end")
        .finish();
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(sb.join("backups/deep.tar"), archive).unwrap();
    let to = scratch(&sb);
    let started = Instant::now();
    let out = manager_capped(
        &sb,
        &format!("restore deep --to {}", to.display()),
        1024,
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    out.ok();
    assert!(
        stdout(&out).contains("1 members restored"),
        "{}",
        out.explain()
    );
    let mut deepest = to.join("docs");
    for _ in 0..3 {
        deepest.push("a");
    }
    assert!(deepest.is_dir(), "the tree was made");
    eprintln!("500,000 levels restored in {took:?} under a 1 GiB address-space cap");
    remove_tree(&to);
}

#[test]
fn i1a_10000_members_at_depth_2000_and_a_huge_symlink_target_stay_linear() {
    let sb = Sandbox::new();
    let prefix = [b"docs/".to_vec(), b"d/".repeat(2000)].concat();
    let mut archive = RawArchive::new();
    for i in 0..10_000 {
        let name = [prefix.clone(), format!("f{i}").into_bytes()].concat();
        archive = archive.member(&name, tar::EntryType::Regular, b"", b"");
    }
    fs::create_dir_all(sb.join("backups")).unwrap();
    fs::write(sb.join("backups/wide.tar"), archive.finish()).unwrap();
    let to = scratch(&sb);
    let out = manager_capped(
        &sb,
        &format!("restore wide --to {}", to.display()),
        512,
        Duration::from_secs(120),
    );
    out.ok();
    assert!(
        stdout(&out).contains("10000 members restored"),
        "{}",
        out.explain()
    );
    remove_tree(&to);

    // A symlink whose target is 64,000 levels deep: refused before anything is written, at
    // once (the check used to spend 9.9 s of CPU on it).
    let target = [b"a/".repeat(64_000), b"f".to_vec()].concat();
    let archive = RawArchive::new()
        .member(b"docs/", tar::EntryType::Directory, b"", b"")
        .member(b"docs/l", tar::EntryType::Symlink, &target, b"")
        .finish();
    fs::write(sb.join("backups/link.tar"), archive).unwrap();
    let out = manager_capped(&sb, "restore link", 256, Duration::from_secs(30));
    out.fails(1);
    assert!(
        stderr(&out)
            .contains("docs/l: symlink target of 128001 bytes; Linux makes none longer than 4095"),
        "{}",
        out.explain()
    );
    assert!(!sb.join("restore/link").exists(), "nothing written");
}

/// The members GNU tar 1.34 leaves out of `tree` with `--exclude=PATTERN`, and ours.
fn members_with(sb: &Sandbox, pattern: &str) -> (Vec<String>, Vec<String>) {
    sb.write(
        "backupbox.toml",
        format!("exclude = [{pattern:?}]\nallow_empty = true\n"),
    );
    sb.manager(&["run", "0"]).ok();
    let theirs = tool("tar")
        .arg(format!("--exclude={pattern}"))
        .args(["-cf", "theirs.tar", "tree"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    theirs.ok();
    let names = |archive: &str| {
        let mut names: Vec<String> = gnu_tar_names(&sb.join(archive))
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        names.sort();
        names
    };
    (names("backups/tree.tar"), names("theirs.tar"))
}

#[test]
fn i1b_exclude_patterns_leave_out_exactly_what_gnu_tar_leaves_out() {
    let sb = Sandbox::new();
    for file in [
        "tree/logs/a.log",
        "tree/logs/keep.txt",
        "tree/data/sub/logs/b.log",
        "tree/docs/a/b/c.log",
        "tree/docs/top.log",
        "tree/catalogs/x.log",
        "tree/x-y-z.tmp",
        "tree/[odd]",
        "tree/odd",
        "tree/a?b",
        "tree/cache/CACHEDIR.TAG",
        "tree/node_modules/m/index.js",
    ] {
        sb.write(file, "x");
    }
    sb.write("backup_schedules.txt", "tree;03:30;tree\n");
    for pattern in [
        "logs/*.log",
        "docs/*.log",
        "*.log",
        "tree/docs",
        "sub",
        "*-*",
        "[[]odd]",
        "[!a-m]dd",
        "a\\?b",
        "*/m/*",
        "node_modules",
        "ree/logs",
        "/cache/",
        "cache/",
        "cache",
        "?ata",
    ] {
        let (ours, theirs) = members_with(&sb, pattern);
        assert_eq!(ours, theirs, "exclude = {pattern:?}");
    }
    // Where backupbox parts from GNU tar on purpose: the plan's folder itself is never
    // matched (a pattern naming it would leave out the whole backup); what is below is.
    let (everything, _) = members_with(&sb, "no such name");
    let (ours, theirs) = members_with(&sb, "tree");
    assert_eq!((ours, theirs.len()), (everything, 0));
}

#[test]
fn i1b_a_backtracking_pattern_never_stalls_a_backup() {
    let sb = Sandbox::new();
    sb.write(&format!("docs/{}x", "-".repeat(200)), "x");
    sb.write("docs/keep", "x");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write("backupbox.toml", "exclude = [\"*-*-*-*-*-*.log\"]\n");
    // 6 min 10 s with the backtracking matcher; a hang detector, not a speed target.
    let out = output_within(
        sb.command("backup_manager", &["run", "0"]),
        Duration::from_secs(60),
    );
    out.ok();
    assert_eq!(gnu_tar_names(&sb.join("backups/docs.tar")).len(), 3);
}

#[test]
fn i1c_deeply_nested_toml_is_refused_with_its_line_at_start_and_by_a_running_service() {
    let sb = Sandbox::new();
    sb.write("backup_schedules.txt", "");
    let deep = format!("keep = 2\nexclude = {}\n", "[".repeat(50_000));
    sb.write("backupbox.toml", &deep);
    let out = sb.manager(&["start"]);
    out.fails(1)
        .stderr_contains("bad settings in backupbox.toml: line 2: ");
    let log = sb.manager_log();
    assert!(
        log[log.len() - 1].starts_with("Error: bad settings in backupbox.toml: line 2: "),
        "{log:?}"
    );
    // A running service given the same file on SIGHUP logs it and keeps going.
    sb.write("backupbox.toml", "keep = 2\n");
    let service = sb.spawn_service();
    assert!(
        wait_until(Duration::from_secs(10), || sb.service_pid().is_some()),
        "service log: {:?}",
        sb.service_log()
    );
    sb.write("backupbox.toml", &deep);
    signal(service.id() as i32, nix::sys::signal::Signal::SIGHUP);
    sb.await_service_log(10, |log| {
        log.iter().any(|line| {
            line.starts_with("Error: bad settings in backupbox.toml: line 2: ")
                && line.ends_with("; the last good settings stay in force")
        })
    });
    assert!(alive(service.id() as i32), "the service survived");
    stop_foreground(service);
}

/// How long `./backup_manager start` takes to report ready, a due job to finish and `stop`
/// to return, with a plan of `lines` lines (one of them due now) and metrics on; and how
/// often the service wrote the metrics and read the plan meanwhile.
fn a_day_with(lines: usize) -> ([Duration; 3], usize, usize) {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    let now = current_minute();
    let mut plan = format!("docs;{now};docs\n");
    let later = minute_from_now(30);
    for i in 1..lines {
        plan.push_str(&format!("idle{i};{later};idle{i}\n"));
    }
    sb.write("backup_schedules.txt", plan);
    sb.write("backupbox.toml", "metrics = \"metrics.prom\"\n");
    let counts = sb.join("counts");
    let timed = |args: &[&str]| {
        let started = Instant::now();
        sb.command("backup_manager", args)
            .env("BACKUPBOX_TEST_COUNT", &counts)
            .output()
            .unwrap()
            .ok();
        started.elapsed()
    };
    let started = Instant::now();
    let ready = timed(&["start"]);
    sb.await_service_log(60, |log| {
        log.iter()
            .any(|line| line.starts_with("Backup done for docs"))
    });
    let done = started.elapsed();
    assert!(
        wait_until(Duration::from_secs(60), || fs::read_to_string(&counts)
            .unwrap_or_default()
            .lines()
            .filter(|line| *line == "metrics-written")
            .count()
            >= 2),
        "the metrics were written after the job"
    );
    let stopped = timed(&["stop"]);
    let events = fs::read_to_string(&counts).unwrap();
    let count = |event: &str| events.lines().filter(|line| *line == event).count();
    (
        [ready, done, stopped],
        count("metrics-written"),
        count("plan-read"),
    )
}

#[test]
fn i1d_a_50000_line_plan_with_metrics_costs_linear_work() {
    let (small, small_writes, small_reads) = a_day_with(10);
    let (large, writes, reads) = a_day_with(50_000);
    // Writes: once at start, once after the job; and at stop only if something was left
    // stale. Plan reads: the start-up, the check, and one per metrics write.
    assert_eq!(
        small_writes, writes,
        "metrics writes do not grow with the plan"
    );
    assert!(writes <= 3, "{writes} metrics writes for one job");
    assert_eq!(small_reads, reads, "plan reads do not grow with the plan");
    for (what, (small, large)) in ["start", "a due job", "stop"]
        .iter()
        .zip(small.iter().zip(&large))
    {
        // Ten times the 10-line figure, with a floor of 3 s for a debug build's noise: the
        // quadratic version took minutes here.
        let limit = (*small * 10).max(Duration::from_secs(3));
        assert!(
            large <= &limit,
            "{what}: {large:?} with 50,000 lines, {small:?} with 10"
        );
    }
}

#[test]
fn i1e_a_burst_of_300_jobs_gives_its_memory_back() {
    let sb = Sandbox::new();
    let now = current_minute();
    let mut plan = String::new();
    for i in 0..300 {
        sb.write(&format!("data/d{i}/f"), format!("{i}").repeat(50_000));
        plan.push_str(&format!("data/d{i};{now};n{i}\n"));
    }
    sb.write("backup_schedules.txt", plan);
    sb.write("backupbox.toml", "compress = \"zstd\"\n");
    sb.manager(&["start"]).ok();
    let pid = sb.service_pid().expect("a PID");
    let done = || {
        sb.service_log()
            .iter()
            .filter(|line| line.starts_with("Backup done for data/d"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(120), || done() == 300),
        "{} of 300 done; service log tail: {:?}",
        done(),
        sb.service_log().iter().rev().take(5).collect::<Vec<_>>()
    );
    let status = || fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status()
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(u64::MAX)
    };
    // The workers end once the queue is empty; the heap is trimmed when the last job ends.
    assert!(
        wait_until(Duration::from_secs(10), || field("Threads:") <= 2),
        "{}",
        status()
    );
    let anon = field("RssAnon:");
    assert!(
        anon < 4096,
        "idle service after the burst: RssAnon {anon} KiB\n{}",
        status()
    );
}
