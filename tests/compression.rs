//! Compressed archives: `compress = "gzip" | "zstd"` writes `.tar.gz` / `.tar.zst` that GNU
//! tar and bsdtar read back; generations span a change of form; verify, contents and restore
//! read every form and name where a damaged stream stops; kill -9 and a full disk keep the
//! previous archive.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The forms under test: the `compress` value, the suffix, GNU tar's flag for it.
const FORMS: [(&str, &str, &str); 2] = [("gzip", "tar.gz", "-z"), ("zstd", "tar.zst", "--zstd")];

/// GNU tar with a compression flag, run in `cwd`; its output, which must be a success.
fn gnu_tar(flag: &str, args: &[&str], archive: &Path, cwd: &Path) -> String {
    let out = tool("tar")
        .arg(flag)
        .args(args)
        .arg(archive)
        .current_dir(cwd)
        .output()
        .expect("GNU tar");
    assert!(
        out.status.success(),
        "tar {flag} {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A folder of text, an incompressible file, a sparse file and a link.
fn varied_folder(sb: &Sandbox) {
    sb.write("docs/notes.txt", "the same line again\n".repeat(5000));
    sb.write("docs/sub/noise.bin", noise(300_000));
    let sparse = fs::File::create(sb.join("docs/sparse.img")).unwrap();
    sparse.set_len(256 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"middle", 100 << 20).unwrap();
    std::os::unix::fs::symlink("notes.txt", sb.join("docs/link")).unwrap();
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
}

#[test]
fn compressed_archives_read_back_with_gnu_tar_and_bsdtar() {
    for (compress, suffix, flag) in FORMS {
        let sb = Sandbox::new();
        varied_folder(&sb);
        sb.write("backupbox.toml", format!("compress = \"{compress}\"\n"));
        sb.manager(&["run", "0"]).ok();
        let file = format!("docs.{suffix}");
        let archive = sb.join(format!("backups/{file}"));
        assert_eq!(
            sb.manager_log().last().unwrap(),
            &format!("Backup done for docs in backups/{file}")
        );
        sb.manager(&["backups"])
            .ok()
            .stdout_is(&format!("{file}\n"));

        // GNU tar finds every member equal to the live tree, sparse file included.
        gnu_tar(flag, &["--compare", "-f"], &archive, sb.path());
        let listing = gnu_tar(flag, &["-tvf"], &archive, sb.path());
        assert_eq!(listing.lines().count(), 6, "{listing}");
        assert!(listing.contains("docs/link -> notes.txt"), "{listing}");
        let bsdtar = tool("bsdtar").arg("-tf").arg(&archive).output().unwrap();
        assert!(bsdtar.status.success(), "{}", stderr(&bsdtar));
        assert_eq!(stdout(&bsdtar).lines().count(), 6);
        // Stored sparse, as GNU tar stores it: the tar stream is far smaller than 256 MiB.
        let stream = Command::new(if compress == "gzip" { "gzip" } else { "zstd" })
            .args(["-dc"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(stream.status.success(), "{}", stream.explain());
        assert!(stream.stdout.len() < 2 << 20, "{}", stream.stdout.len());
        assert!(
            fs::metadata(&archive).unwrap().len() < stream.stdout.len() as u64,
            "{}",
            sb.explain()
        );

        // backupbox reads its own archive in each way.
        sb.manager(&["verify", "docs"])
            .ok()
            .stdout_is(&format!("backups/{file}: sound, 6 members\n"));
        sb.manager(&["verify", "docs", "--against"])
            .ok()
            .stdout_is(&format!("backups/{file}: sound, 6 members, same as docs\n"));
        let contents = sb.manager(&["contents", "docs", "--long"]);
        contents.ok().stdout_is(&(listing.clone()));
        sb.manager(&["restore", "docs", "docs/sub/noise.bin"])
            .ok()
            .stdout_is(&format!(
                "backups/{file}: 1 members restored in {}\n",
                sb.join("restore/docs").display()
            ));
        assert_eq!(
            sb.read("restore/docs/docs/sub/noise.bin"),
            sb.read("docs/sub/noise.bin")
        );
        assert!(
            !sb.join("restore/docs/docs/notes.txt").exists(),
            "{}",
            sb.explain()
        );
    }
}

#[test]
fn switching_compression_keeps_the_old_generations() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x".repeat(10_000));
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write("backupbox.toml", "keep = 3\n");
    sb.manager(&["run", "0"]).ok();
    touch(&sb.join("backups/docs.tar"), "2026-11-01 03:30");

    sb.write("backupbox.toml", "keep = 3\ncompress = \"zstd\"\n");
    sb.manager(&["run", "0"]).ok();
    let log = sb.manager_log();
    sb.manager(&["backups"])
        .ok()
        .stdout_is("docs.2026-11-01_033000.tar\ndocs.tar.zst\n");
    assert_eq!(
        log[log.len() - 3..],
        [
            "Kept previous backups/docs.tar as backups/docs.2026-11-01_033000.tar",
            "Removed backups/docs.tar: replaced by backups/docs.tar.zst",
            "Backup done for docs in backups/docs.tar.zst",
        ]
    );
    touch(&sb.join("backups/docs.tar.zst"), "2026-11-02 03:30");

    // Both forms count as generations of one name: keep 3 keeps these two and the new one,
    // and the next run prunes the oldest across forms.
    sb.write("backupbox.toml", "keep = 2\ncompress = \"gzip\"\n");
    sb.manager(&["run", "0"]).ok();
    sb.manager(&["backups", "--long"]).ok();
    sb.manager(&["backups"])
        .ok()
        .stdout_is("docs.2026-11-02_033000.tar.zst\ndocs.tar.gz\n");
    assert!(
        sb.manager_log()
            .contains(&"Removed backups/docs.2026-11-01_033000.tar: more than 2 kept".to_owned()),
        "{}",
        sb.explain()
    );
    // The old generation is still a zstd archive that GNU tar reads.
    let old = sb.join("backups/docs.2026-11-02_033000.tar.zst");
    gnu_tar("--zstd", &["--compare", "-f"], &old, sb.path());

    // With one archive kept, a change of form replaces it, as a plain run replaces docs.tar.
    sb.write("backupbox.toml", "");
    sb.manager(&["run", "0"]).ok();
    sb.manager(&["backups"])
        .ok()
        .stdout_is("docs.2026-11-02_033000.tar.zst\ndocs.tar\n");
    assert_gnu_tar_compare_clean(&sb.join("backups/docs.tar"), sb.path());
}

#[test]
fn a_damaged_compressed_archive_is_reported_where_decoding_stopped() {
    for (compress, suffix, _) in FORMS {
        let sb = Sandbox::new();
        varied_folder(&sb);
        sb.write("backupbox.toml", format!("compress = \"{compress}\"\n"));
        sb.manager(&["run", "0"]).ok();
        let name = format!("backups/docs.{suffix}");
        let whole = sb.read(&name);

        // Cut in half: the stream ends early.
        let half = whole.len() / 2;
        sb.write(&name, &whole[..half]);
        let out = sb.manager(&["verify", "docs"]);
        out.fails(1).stderr_contains(&format!(
            "Error: {name} is damaged: can't read ({compress} stream damaged at byte"
        ));
        out.stderr_contains("the file ends inside the stream");
        let offset: usize = stderr(&out)
            .split("at byte ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("an offset");
        assert!(offset <= half, "{offset} > {half}");

        // Bytes flipped in the middle: the checksum or the decoder catches it.
        let mut flipped = whole.clone();
        for byte in &mut flipped[half..half + 64] {
            *byte ^= 0xa5;
        }
        sb.write(&name, &flipped);
        sb.manager(&["verify", "docs"])
            .fails(1)
            .stderr_contains(&format!("{compress} stream damaged at byte"));
        let out = sb.manager(&["restore", "docs"]);
        out.fails(1).stderr_contains("the archive is damaged");
        assert!(!sb.join("restore/docs").exists(), "nothing written");
        sb.manager(&["contents", "docs"])
            .fails(1)
            .stderr_contains(&format!("can't read {name}"));
    }
}

#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs"]
fn kill_9_before_the_rename_and_a_full_disk_keep_the_previous_zstd_archive() {
    let sb = Sandbox::new();
    let _disk = SmallDisk::mount(&sb.join("backups"), "1m");
    sb.write("data/small", "fits");
    sb.write("backup_schedules.txt", "data;00:00;data\n");
    sb.write("backupbox.toml", "compress = \"zstd\"\n");
    sb.manager(&["run", "0"]).ok();
    let previous = sb.read("backups/data.tar.zst");

    // Killed with the new archive complete but not yet in place.
    sb.write("data/more", "x".repeat(50_000));
    let written = Pause::new(&sb, "archive-written");
    let mut child = Pause::spawn_manager(&sb, &["run", "0"], &[&written]);
    signal(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert_eq!(sb.read("backups/data.tar.zst"), previous);
    assert_eq!(
        sb.temp_files().len(),
        1,
        "kill -9 leaves the temporary file"
    );
    for temp in sb.temp_files() {
        fs::remove_file(sb.join("backups").join(temp)).unwrap();
    }

    // Incompressible data larger than the disk: the encoder's write fails.
    sb.write("data/noise", noise(3 << 20));
    sb.manager(&["run", "0"]).fails(1);
    let last = sb.manager_log().last().unwrap().clone();
    assert!(
        last.starts_with(
            "Error: backup of data to backups/data.tar.zst failed: can't write archive (No space left on device"
        ),
        "{last}"
    );
    assert_eq!(sb.read("backups/data.tar.zst"), previous);
    assert!(sb.temp_files().is_empty(), "the temporary file goes away");
    sb.manager(&["verify", "data"])
        .ok()
        .stdout_is("backups/data.tar.zst: sound, 2 members\n");
}

#[test]
fn bad_compression_settings_are_refused_with_their_line() {
    let sb = Sandbox::new();
    sb.write("docs/f", "x");
    sb.write("backup_schedules.txt", "docs;01:00;docs\n");
    sb.write(
        "backupbox.toml",
        "compress = \"zstd\"\n[name.docs]\ncompress = \"gzip\"\nlevel = 15\n",
    );
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 4: level: expected 1 to 9 for gzip",
    );
    assert!(!sb.join("backups/docs.tar.gz").exists(), "{}", sb.explain());
    sb.write(
        "backupbox.toml",
        "compress = \"zstd\"\nthreads = 2\n[name.docs]\nlevel = 15\n",
    );
    sb.manager(&["settings", "docs"]).ok();
    let shown = stdout(&sb.manager(&["settings", "docs"]));
    assert!(
        shown.contains(
            "compress = \"zstd\"  # file\nlevel = 15  # name table\nthreads = 2  # file\n"
        ),
        "{shown}"
    );
    sb.manager(&["run", "0"]).ok();
    gnu_tar(
        "--zstd",
        &["--compare", "-f"],
        &sb.join("backups/docs.tar.zst"),
        sb.path(),
    );
}
