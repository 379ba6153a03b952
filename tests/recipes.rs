//! The README's offsite and dead-man's-switch recipes, run as written: rclone to a local
//! remote, rsync to a directory, and curl pings to a small HTTP server on 127.0.0.1 that
//! records the requests it gets.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[test]
fn on_success_copies_the_archive_offsite_with_rclone_and_rsync() {
    assert_installed("rclone");
    assert_installed("rsync");
    let sb = Sandbox::new();
    sb.write("docs/f", "x".repeat(5000));
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    // The README's recipes; the rclone remote `offsite` is a local one here (a real one
    // would be S3, SFTP, …, set up with `rclone config`).
    sb.write(
        "backupbox.toml",
        concat!(
            "compress = \"zstd\"\n",
            "on_success = 'rclone copyto \"$BACKUPBOX_ARCHIVE\" ",
            "\"offsite:$BACKUPBOX_BASE/offsite/$(hostname)/$BACKUPBOX_NAME/$(date +%F)-$(basename \"$BACKUPBOX_ARCHIVE\")\" ",
            "&& rsync -a \"$BACKUPBOX_ARCHIVE\" mirror/'\n",
        ),
    );
    std::fs::create_dir(sb.join("mirror")).unwrap();
    let out = sb
        .command("backup_manager", &["run", "0"])
        .env("RCLONE_CONFIG_OFFSITE_TYPE", "local")
        .env("RCLONE_CONFIG", "/dev/null")
        .output()
        .unwrap();
    out.ok();
    let archive = sb.read("backups/docs.tar.zst");
    assert_eq!(sb.read("mirror/docs.tar.zst"), archive, "rsync's copy");
    let host = String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let date = String::from_utf8(
        std::process::Command::new("date")
            .arg("+%F")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let copy = format!("offsite/{}/docs/{}-docs.tar.zst", host.trim(), date.trim());
    assert_eq!(sb.read(&copy), archive, "rclone's copy");
    assert_eq!(
        sb.manager_log(),
        ["Backup done for docs in backups/docs.tar.zst"]
    );
}

/// An HTTP server on 127.0.0.1 that answers 200 to everything and records
/// `METHOD PATH BODY` of each request.
fn ping_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut words = request.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            record.lock().unwrap().push(
                format!("{method} {path} {}", String::from_utf8_lossy(&body))
                    .trim_end()
                    .to_owned(),
            );
            let _ = reader
                .into_inner()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (url, seen)
}

#[test]
fn the_dead_mans_switch_recipe_pings_start_success_and_failure_in_order() {
    assert_installed("curl");
    let (url, seen) = ping_server();
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write(
        "backupbox.toml",
        format!(
            concat!(
                "before = 'curl -fsS -m 10 --retry 3 -o /dev/null {url}/check-uuid/start'\n",
                "on_success = 'curl -fsS -m 10 --retry 3 -o /dev/null {url}/check-uuid'\n",
                "on_failure = 'curl -fsS -m 10 --retry 3 -o /dev/null --data-raw \"$BACKUPBOX_ERROR\" {url}/check-uuid/fail'\n",
            ),
            url = url
        ),
    );
    sb.manager(&["run", "0"]).ok();
    std::fs::remove_dir_all(sb.join("docs")).unwrap();
    sb.manager(&["run", "0"]).fails(1);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /check-uuid/start",
            "GET /check-uuid",
            "GET /check-uuid/start",
            "POST /check-uuid/fail backup of docs to backups/docs.tar failed: folder not found",
        ]
    );
}
