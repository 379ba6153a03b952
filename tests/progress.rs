//! The progress line: drawn on a terminal's stderr (a pseudo-terminal made by `script`),
//! never into a pipe unless asked, and never in the log or on stdout.

use crate::common::*;

/// Runs `backup_manager ARGS` in the sandbox under a pseudo-terminal; returns what the
/// terminal showed (stdout and stderr together, as a terminal shows them).
fn on_a_terminal(sb: &Sandbox, args: &str) -> Vec<u8> {
    let out = tool("script")
        .args(["-qec", &format!("./backup_manager {args}"), "/dev/null"])
        .current_dir(sb.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("script (util-linux) is needed: {err}"));
    out.ok();
    out.stdout
}

/// The lines drawn with `\r`, as text.
fn drawn(screen: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(screen)
        .split('\r')
        .filter(|part| part.ends_with("\x1b[K") && part.len() > 3)
        .map(|part| part.trim_end_matches("\x1b[K").to_owned())
        .collect()
}

#[test]
fn run_restore_and_verify_draw_a_line_on_a_terminal_only() {
    let sb = Sandbox::new();
    for i in 0..50 {
        sb.write(&format!("docs/file-{i}"), "x".repeat(1000));
    }
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.manager(&["run", "0"]).ok();
    let log_before = sb.read("logs/backup_manager.log");

    let screen = on_a_terminal(&sb, "run 0");
    let lines = drawn(&screen);
    let last = lines.last().expect("a progress line");
    assert!(last.starts_with("run: 51 files, "), "{lines:?}");
    assert!(
        last.contains("about 100%"),
        "the previous archive gave the total: {last}"
    );
    assert!(screen.ends_with(b"\r\x1b[K"), "erased when done");
    // The log got the same line as a run without a terminal, and nothing of the progress.
    let log = sb.read("logs/backup_manager.log");
    let added = String::from_utf8_lossy(&log[log_before.len()..]).into_owned();
    assert!(
        added.ends_with("] Backup done for docs in backups/docs.tar\n"),
        "{added}"
    );
    assert!(
        !added.contains('\r') && !added.contains("files,"),
        "{added:?}"
    );

    let screen = on_a_terminal(&sb, "restore docs");
    let lines = drawn(&screen);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("restore: 51 files, ") && l.contains("100%")),
        "{lines:?}"
    );
    assert!(
        String::from_utf8_lossy(&screen).contains("backups/docs.tar: 51 members restored"),
        "{}",
        sb.explain()
    );
    let lines = drawn(&on_a_terminal(&sb, "verify docs --against"));
    assert!(
        lines.iter().any(|l| l.starts_with("verify: 51 files")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("compare: 51 files")),
        "{lines:?}"
    );

    // --quiet on a terminal, and a pipe without --progress: no line at all.
    assert!(
        drawn(&on_a_terminal(&sb, "run 0 --quiet")).is_empty(),
        "{}",
        sb.explain()
    );
    let piped = sb.manager(&["run", "0"]);
    piped.ok();
    assert!(piped.stderr.is_empty(), "{}", stderr(&piped));
    let forced = sb.manager(&["verify", "docs", "--progress"]);
    forced.ok();
    assert!(
        stderr(&forced).starts_with("\rverify: "),
        "{}",
        stderr(&forced)
    );
    assert_eq!(stdout(&forced), "backups/docs.tar: sound, 51 members\n");
}
