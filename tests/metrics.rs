//! Prometheus metrics: `status --prometheus` and the service's metrics file, checked by
//! Prometheus's own `promtool check metrics` (parser and linter) and read back sample by
//! sample.

use crate::common::*;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// `promtool check metrics` on `text`: it must parse and lint without a word.
fn assert_promtool_accepts(text: &str) {
    let child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        stdout(&out),
        stderr(&out)
    );
}

/// `family{labels}` → value, for every sample line.
fn samples(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

const DOCS: &str = "{name=\"docs\",folder=\"docs\",time=\"03:30\"}";

#[test]
fn status_prometheus_lints_clean_and_tracks_successes_and_failures() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write(
        "backup_schedules.txt",
        "docs;03:30;docs\nnot a schedule\nwe\"ird\\;04:00;odd\n",
    );
    sb.write("backupbox.toml", "keep = 3\n");
    // Before any run: the families are there, with what is known.
    let before = stdout(&sb.manager(&["status", "--prometheus"]));
    assert_promtool_accepts(&before);
    let metrics = samples(&before);
    assert_eq!(metrics["backupbox_plan_malformed_lines"], "1");
    assert_eq!(metrics[&format!("backupbox_archives{DOCS}")], "0");
    assert!(
        !metrics.contains_key(&format!("backupbox_last_run_success{DOCS}")),
        "{}",
        sb.explain()
    );
    assert!(
        metrics.contains_key(
            "backupbox_archives{name=\"odd\",folder=\"we\\\"ird\\\\\\\\\",time=\"04:00\"}"
        ),
        "{}",
        sb.explain()
    );
    assert!(
        metrics
            .keys()
            .any(|key| key.starts_with("backupbox_build_info{version=\"0.1.0\",commit=\"")),
        "{metrics:?}"
    );

    sb.manager(&["run", "0"]).ok();
    sb.manager(&["run", "0"]).ok();
    let after = stdout(&sb.manager(&["status", "--prometheus"]));
    assert_promtool_accepts(&after);
    let metrics = samples(&after);
    let size = fs::metadata(sb.join("backups/docs.tar")).unwrap().len();
    assert_eq!(metrics[&format!("backupbox_last_run_success{DOCS}")], "1");
    assert_eq!(
        metrics[&format!("backupbox_last_archive_size_bytes{DOCS}")],
        size.to_string()
    );
    assert_eq!(metrics[&format!("backupbox_archives{DOCS}")], "2");
    let succeeded = metrics[&format!("backupbox_last_success_timestamp_seconds{DOCS}")].clone();
    assert_eq!(
        succeeded,
        metrics[&format!("backupbox_last_run_start_timestamp_seconds{DOCS}")]
    );

    // A failure: success 0, and the last success is still the one before.
    fs::rename(sb.join("docs"), sb.join("docs.away")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    sb.manager(&["run", "0"]).fails(1);
    let failed = stdout(&sb.manager(&["status", "--prometheus"]));
    assert_promtool_accepts(&failed);
    let metrics = samples(&failed);
    assert_eq!(metrics[&format!("backupbox_last_run_success{DOCS}")], "0");
    assert_eq!(
        metrics[&format!("backupbox_last_success_timestamp_seconds{DOCS}")],
        succeeded
    );
    assert_ne!(
        metrics[&format!("backupbox_last_run_start_timestamp_seconds{DOCS}")],
        succeeded
    );
    assert!(
        !metrics.contains_key("backupbox_service_start_time_seconds"),
        "{}",
        sb.explain()
    );
}

#[test]
fn the_service_writes_its_metrics_file_at_start_and_after_each_job() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    fs::create_dir(sb.join("textfile")).unwrap();
    sb.write("backupbox.toml", "metrics = \"textfile/backupbox.prom\"\n");
    sb.plan_now("docs", "docs");
    let service = sb.spawn_service();
    let prom = sb.join("textfile/backupbox.prom");
    let success = |text: &str| {
        text.lines().any(|line| {
            line.starts_with("backupbox_last_run_success{name=\"docs\"") && line.ends_with(" 1")
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            fs::read_to_string(&prom).is_ok_and(|text| success(&text))
        }),
        "{}",
        sb.explain()
    );
    stop_foreground(service);
    let text = fs::read_to_string(&prom).unwrap();
    assert_promtool_accepts(&text);
    let started: i64 = samples(&text)["backupbox_service_start_time_seconds"]
        .parse()
        .unwrap();
    assert_within_the_last_minute(started);
    // Only the file: its temporary files were renamed over it.
    let names: Vec<_> = fs::read_dir(sb.join("textfile"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["backupbox.prom"]);
    assert!(
        sb.service_log()
            .iter()
            .all(|line| !line.starts_with("Warning")),
        "{}",
        sb.explain()
    );
}
