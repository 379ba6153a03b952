//! Archives encrypted with age: read back by Debian's `age` and GNU tar without backupbox,
//! refused without a key where the contents are needed, verified without one from the
//! catalog, and keys read with care and allowed to change.

use crate::common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A new age identity in `dir/<file>` (mode 0600, as age-keygen makes it) and its recipient.
fn keygen(dir: &Path, file: &str) -> (PathBuf, String) {
    let key = dir.join(file);
    let out = tool("age-keygen").arg("-o").arg(&key).output().unwrap();
    assert!(out.status.success(), "age-keygen: {}", stderr(&out));
    let out = tool("age-keygen").arg("-y").arg(&key).output().unwrap();
    assert!(out.status.success(), "age-keygen -y: {}", stderr(&out));
    (key, stdout(&out).trim().to_owned())
}

/// `age -d -i KEY FILE` into `out`.
fn age_decrypt(key: &Path, file: &Path, out: &Path) -> std::process::Output {
    tool("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg("-o")
        .arg(out)
        .arg(file)
        .output()
        .unwrap()
}

/// A sandbox whose `docs` archives are zstd, encrypted to a new key kept outside it.
fn encrypted_sandbox() -> (Sandbox, tempfile::TempDir, PathBuf, String) {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(keys.path(), "key.txt");
    sb.write("docs/a.txt", "alpha\n");
    sb.write("docs/sub/b.bin", noise(300_000));
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        format!("compress = \"zstd\"\nencrypt_to = [\"{recipient}\"]\n"),
    );
    (sb, keys, key, recipient)
}

/// The value of `key` in the catalog's last record.
fn catalog_field(sb: &Sandbox, key: &str) -> Option<String> {
    let text = String::from_utf8(sb.read("logs/backup_catalog.txt")).unwrap();
    let last = text.lines().last()?.to_owned();
    last.split('\t')
        .find_map(|field| field.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

#[test]
fn an_encrypted_archive_is_what_age_and_gnu_tar_restore_without_backupbox() {
    let (sb, _keys, key, _) = encrypted_sandbox();
    sb.manager(&["run", "0"]).ok();
    let archive = sb.join("backups/docs.tar.zst.age");
    let bytes = fs::read(&archive).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1\n"),
        "not an age file: {:?}",
        &bytes[..bytes.len().min(40)]
    );
    assert!(
        !sb.join("backups/docs.tar.zst").exists(),
        "{}",
        sb.explain()
    );
    assert_eq!(
        sb.manager_log().last().unwrap(),
        "Backup done for docs in backups/docs.tar.zst.age"
    );
    // What the README promises: age -d | tar --zstd -xf - gives the folder back.
    let plain = sb.join("docs.tar.zst");
    let out = age_decrypt(&key, &archive, &plain);
    assert!(out.status.success(), "age -d: {}", stderr(&out));
    assert_gnu_tar_compare_clean(&plain, sb.path());
    let restored = tempfile::tempdir().unwrap();
    let pipeline = std::process::Command::new("sh")
        .arg("-c")
        .arg("age -d -i \"$1\" \"$2\" | tar --zstd -xf - -C \"$3\"")
        .args(["sh", key.to_str().unwrap(), archive.to_str().unwrap()])
        .arg(restored.path())
        .output()
        .unwrap();
    assert!(pipeline.status.success(), "{}", stderr(&pipeline));
    assert_eq!(
        fs::read(restored.path().join("docs/sub/b.bin")).unwrap(),
        noise(300_000)
    );
    // The catalog knows it without the key: hashed always, and to which recipients.
    assert_eq!(catalog_field(&sb, "form").as_deref(), Some("zstd+age"));
    assert_eq!(catalog_field(&sb, "members").as_deref(), Some("4"));
    let digest = tool("sha256sum").arg(&archive).output().unwrap();
    assert_eq!(
        catalog_field(&sb, "sha256").as_deref(),
        stdout(&digest).split_whitespace().next()
    );
    let recipients = catalog_field(&sb, "recipients").expect("a recipients fingerprint");
    assert_eq!(recipients.len(), 16, "{recipients}");
    sb.manager(&["backups", "--long"])
        .ok()
        .stdout_contains(&format!(
            "docs.tar.zst.age  (kept: newest)  (encrypted to recipients {recipients})\n"
        ));
    let status = sb.manager(&["status"]);
    status.stdout_contains(&format!("   encrypted to: recipients {recipients}\n"));
}

#[test]
fn reading_what_an_encrypted_archive_holds_needs_an_identity() {
    let (sb, _keys, key, _) = encrypted_sandbox();
    sb.manager(&["run", "0"]).ok();
    for command in [
        &["contents", "docs"][..],
        &["restore", "docs"],
        &["verify", "docs", "--against"],
    ] {
        sb.manager(command)
            .fails(1)
            .stderr_contains("Error: backups/docs.tar.zst.age is encrypted; give --identity FILE");
    }
    assert!(!sb.join("restore/docs").exists(), "{}", sb.explain());
    let key = key.to_str().unwrap();
    sb.manager(&["contents", "docs", "--identity", key])
        .ok()
        .stdout_is("docs/\ndocs/a.txt\ndocs/sub/\ndocs/sub/b.bin\n");
    sb.manager(&["verify", "docs", "--identity", key])
        .ok()
        .stdout_is("backups/docs.tar.zst.age: sound, 4 members\n");
    sb.manager(&["verify", "docs", "--against", "--identity", key])
        .ok()
        .stdout_is("backups/docs.tar.zst.age: sound, 4 members, same as docs\n");
    // BACKUPBOX_IDENTITY stands for --identity.
    let out = sb
        .command("backup_manager", &["restore", "docs"])
        .env("BACKUPBOX_IDENTITY", key)
        .output()
        .unwrap();
    out.ok();
    assert_eq!(
        fs::read(sb.join("restore/docs/docs/sub/b.bin")).unwrap(),
        noise(300_000)
    );
    assert_eq!(
        fs::read(sb.join("restore/docs/docs/a.txt")).unwrap(),
        b"alpha\n"
    );
}

#[test]
fn verify_without_the_key_catches_a_cut_or_changed_archive() {
    let (sb, _keys, _key, _) = encrypted_sandbox();
    sb.manager(&["run", "0"]).ok();
    let archive = sb.join("backups/docs.tar.zst.age");
    let good = fs::read(&archive).unwrap();
    sb.manager(&["verify", "docs"]).ok().stdout_is(
        "backups/docs.tar.zst.age: sound as written (age header, size and SHA-256; 4 members recorded; give --identity FILE to read them)\n",
    );
    // One bit flipped in the payload: same size, another digest.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    fs::write(&archive, &flipped).unwrap();
    sb.manager(&["verify", "docs"]).fails(1).stderr_contains(
        "Error: backups/docs.tar.zst.age is damaged: its SHA-256 is not the one recorded when it was written",
    );
    // Cut short.
    fs::write(&archive, &good[..good.len() - 100]).unwrap();
    sb.manager(&["verify", "docs"])
        .fails(1)
        .stderr_contains(&format!(
            "Error: backups/docs.tar.zst.age is damaged: {} bytes, but it was written with {}",
            good.len() - 100,
            good.len()
        ));
    // Not age at all, at the recorded size.
    fs::write(&archive, vec![b'x'; good.len()]).unwrap();
    sb.manager(&["verify", "docs"])
        .fails(1)
        .stderr_contains("Error: backups/docs.tar.zst.age is damaged: not a sound age file");
}

#[test]
fn identity_files_are_read_with_care_and_old_keys_stay_readable() {
    let (sb, keys, old_key, _) = encrypted_sandbox();
    sb.write("backupbox.toml", {
        let recipient = fs::read_to_string(&old_key).unwrap();
        let recipient = recipient
            .lines()
            .find_map(|line| line.strip_prefix("# public key: "))
            .unwrap()
            .to_owned();
        format!("keep = 3\ncompress = \"zstd\"\nencrypt_to = [\"{recipient}\"]\n")
    });
    sb.manager(&["run", "0"]).ok();
    // Readable by others: refused, whatever it holds.
    fs::set_permissions(&old_key, fs::Permissions::from_mode(0o640)).unwrap();
    sb.manager(&["contents", "docs", "--identity", old_key.to_str().unwrap()])
        .fails(1)
        .stderr_contains(&format!(
            "Error: can't use identity file {}: its group or others may read it (mode 0640); chmod 600 it",
            old_key.display()
        ));
    fs::set_permissions(&old_key, fs::Permissions::from_mode(0o600)).unwrap();
    // A FIFO in its place is refused at once, never waited on.
    let fifo = keys.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = output_within(
        sb.command(
            "backup_manager",
            &["contents", "docs", "--identity", fifo.to_str().unwrap()],
        ),
        Duration::from_secs(10),
    );
    out.fails(1).stderr_contains("can't use identity file");

    // The key changes: the next archive is for the new key only.
    std::thread::sleep(Duration::from_millis(20));
    let (new_key, new_recipient) = keygen(keys.path(), "new.txt");
    sb.write(
        "backupbox.toml",
        format!("keep = 3\ncompress = \"zstd\"\nencrypt_to = [\"{new_recipient}\"]\n"),
    );
    sb.manager(&["run", "0"]).ok();
    let old = old_key.to_str().unwrap();
    let new = new_key.to_str().unwrap();
    sb.manager(&["contents", "docs", "--identity", old])
        .fails(1)
        .stderr_contains("no identity given matches its recipients");
    sb.manager(&["contents", "docs", "--identity", old, "--identity", new])
        .ok()
        .stdout_contains("docs/sub/b.bin\n");
    // The generation under the old key is intact and still the old key's.
    let generation = fs::read_dir(sb.join("backups"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("docs.2") && name.ends_with(".tar.zst.age")
        })
        .expect("a generation under the old key");
    let out = age_decrypt(&old_key, &generation, &sb.join("old.tar.zst"));
    assert!(out.status.success(), "age -d: {}", stderr(&out));
    assert_gnu_tar_compare_clean(&sb.join("old.tar.zst"), sb.path());

    // Encryption off again: a plain archive replaces the encrypted one, the generations stay.
    std::thread::sleep(Duration::from_millis(20));
    sb.write("backupbox.toml", "keep = 3\ncompress = \"zstd\"\n");
    sb.manager(&["run", "0"]).ok();
    assert!(sb.join("backups/docs.tar.zst").exists(), "{}", sb.explain());
    assert!(
        !sb.join("backups/docs.tar.zst.age").exists(),
        "{}",
        sb.explain()
    );
    assert!(generation.exists(), "{}", sb.explain());
    sb.manager(&["verify", "docs"])
        .ok()
        .stdout_is("backups/docs.tar.zst: sound, 4 members\n");
}

#[test]
fn recipients_that_do_not_parse_are_settings_errors_naming_their_line() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let (first_key, first) = keygen(keys.path(), "first.txt");
    let (second_key, second) = keygen(keys.path(), "second.txt");
    sb.write("docs/a.txt", "alpha\n");
    sb.write("backup_schedules.txt", "docs;03:30;docs\n");
    sb.write(
        "backupbox.toml",
        format!("keep = 2\nencrypt_to = [\"{first}\", \"age1nope\"]\n"),
    );
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 2: encrypt_to: not an age X25519 recipient: \"age1nope\"",
    );
    sb.write(
        "backupbox.toml",
        "[name.docs]\nencrypt_to_file = \"keys.txt\"\n",
    );
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 2: encrypt_to_file: keys.txt: No such file or directory",
    );
    sb.write("keys.txt", format!("# the team\n{first}\nnot-a-key\n"));
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: bad settings in backupbox.toml: line 2: encrypt_to_file: keys.txt: line 3: not an age X25519 recipient: \"not-a-key\"",
    );
    assert!(!sb.join("backups").exists(), "{}", sb.explain());
    // Two recipients, one from each key: either identity opens the archive.
    sb.write("keys.txt", format!("# the team\n{first}\n\n{second}\n"));
    sb.manager(&["run", "0"]).ok();
    let archive = sb.join("backups/docs.tar.age");
    for key in [&first_key, &second_key] {
        let out = age_decrypt(key, &archive, &sb.join("plain.tar"));
        assert!(
            out.status.success(),
            "age -d -i {}: {}",
            key.display(),
            stderr(&out)
        );
        assert_gnu_tar_compare_clean(&sb.join("plain.tar"), sb.path());
    }
    sb.manager(&["settings", "docs"])
        .ok()
        .stdout_contains("encrypt_to_file = \"keys.txt\"  # name table\n");
}

#[test]
fn the_empty_folder_guard_counts_an_encrypted_archive_from_the_catalog() {
    let (sb, _keys, _key, _) = encrypted_sandbox();
    sb.manager(&["run", "0"]).ok();
    let previous = sb.read("backups/docs.tar.zst.age");
    fs::remove_dir_all(sb.join("docs")).unwrap();
    fs::create_dir(sb.join("docs")).unwrap();
    sb.manager(&["run", "0"]).fails(1).stderr_contains(
        "Error: backup of docs to backups/docs.tar.zst.age refused: the folder is empty but the last archive holds 3 entries (not mounted?)",
    );
    assert_eq!(sb.read("backups/docs.tar.zst.age"), previous);
}

#[test]
#[ignore = "needs root: mounts a 1 MiB tmpfs"]
fn kill_9_and_a_full_disk_keep_the_previous_encrypted_archive() {
    assert_root("mounts a tmpfs");
    let (sb, _keys, key, _) = encrypted_sandbox();
    let _disk = SmallDisk::mount(&sb.join("backups"), "1m");
    fs::remove_file(sb.join("docs/sub/b.bin")).unwrap();
    sb.manager(&["run", "0"]).ok();
    let previous = sb.read("backups/docs.tar.zst.age");

    let written = Pause::new(&sb, "archive-written");
    let mut child = Pause::spawn_manager(&sb, &["run", "0"], &[&written]);
    signal(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert_eq!(sb.read("backups/docs.tar.zst.age"), previous);
    for temp in sb.temp_files() {
        fs::remove_file(sb.join("backups").join(temp)).unwrap();
    }

    sb.write("docs/noise", noise(3 << 20));
    sb.manager(&["run", "0"]).fails(1);
    let last = sb.manager_log().last().unwrap().clone();
    assert!(
        last.starts_with(
            "Error: backup of docs to backups/docs.tar.zst.age failed: can't write archive (No space left on device"
        ),
        "{last}"
    );
    assert_eq!(sb.read("backups/docs.tar.zst.age"), previous);
    assert!(sb.temp_files().is_empty(), "{}", sb.explain());
    sb.manager(&["verify", "docs", "--identity", key.to_str().unwrap()])
        .ok()
        .stdout_is("backups/docs.tar.zst.age: sound, 3 members\n");
}
