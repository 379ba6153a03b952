//! The container image: built from the shipped Containerfile by scripts/container.sh with
//! podman, then run as a user would run it: a `run` of a mounted folder, the service as PID 1
//! reaping what a hook left behind, and `podman stop`.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A zone whose offset (+05:45) no host default or UTC slip can match by chance.
const IMAGE_TZ: &str = "Asia/Kathmandu";

#[test]
#[ignore = "needs root, podman and runc"]
fn the_image_backs_up_a_mounted_folder_reaps_orphans_and_stops_on_podman_stop() {
    assert_root("podman as root stores images in /var/lib/containers");
    let image = Image::build();
    let sb = Sandbox::new();
    let source = tempfile::tempdir().unwrap();
    let folder = source.path().join("src");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "kept in the image's archive\n").unwrap();
    std::fs::create_dir(folder.join("sub")).unwrap();
    std::fs::write(folder.join("sub/data.bin"), noise(100_000)).unwrap();
    // Twelve hours away: the service started below never runs it on its own.
    let hour: u32 = stamp_in(IMAGE_TZ)[12..14].parse().unwrap();
    sb.write(
        "backup_schedules.txt",
        format!("/src;{:02}:00;docs\n", (hour + 12) % 24),
    );
    let mounts = [
        format!("{}:/src:ro", folder.display()),
        format!("{}:/data", sb.path().display()),
    ];

    a_run_writes_the_archive_stamped_in_the_image_tz(&image, &sb, &mounts, source.path());
    the_service_reaps_orphans_and_stops_on_podman_stop(&image, &sb, &mounts);
}

fn a_run_writes_the_archive_stamped_in_the_image_tz(
    image: &Image,
    sb: &Sandbox,
    mounts: &[String],
    source_parent: &Path,
) {
    let before = stamp_in(IMAGE_TZ);
    let out = image.podman(
        &["run", "--rm"],
        mounts,
        &["manager", "--dir", "/data", "run", "0"],
    );
    let after = stamp_in(IMAGE_TZ);
    assert!(
        out.status.success(),
        "backupbox manager run in the image failed: {}{}\n{}",
        stdout(&out),
        stderr(&out),
        sb.explain()
    );
    let log = String::from_utf8_lossy(&sb.read("logs/backup_manager.log")).into_owned();
    let line = log
        .lines()
        .find(|line| line.ends_with("Backup done for /src in backups/docs.tar"))
        .unwrap_or_else(|| panic!("no 'Backup done' line in the manager log:\n{log}"));
    assert!(
        line.starts_with(&before) || line.starts_with(&after),
        "the log line {line:?} is not stamped in the image's TZ ({IMAGE_TZ}: {before} or {after})"
    );
    assert_gnu_tar_compare_clean(&sb.join("backups/docs.tar"), source_parent);
}

fn the_service_reaps_orphans_and_stops_on_podman_stop(
    image: &Image,
    sb: &Sandbox,
    mounts: &[String],
) {
    // The hook leaves a process behind and exits; that process becomes PID 1's child.
    sb.write(
        "backupbox.toml",
        "[name.docs]\nbefore = \"sleep 2 </dev/null >/dev/null 2>&1 & echo $! > /data/orphan.pid\"\n",
    );
    let container = Container::start(image, mounts);
    let pid_one = wait_until(Duration::from_secs(60), || sb.service_pid() == Some(1));
    assert!(
        pid_one,
        "the service never wrote PID 1 into its PID file\n{}",
        sb.explain()
    );
    let out = container.exec(&["backupbox", "manager", "--dir", "/data", "run", "0"]);
    assert!(
        out.status.success(),
        "run inside the service's container failed: {}{}\n{}",
        stdout(&out),
        stderr(&out),
        sb.explain()
    );
    let orphan = String::from_utf8(sb.read("orphan.pid")).unwrap();
    let orphan = orphan.trim();
    assert!(
        !orphan.is_empty(),
        "the hook wrote no PID\n{}",
        sb.explain()
    );
    // Alive, then a zombie once the sleep ends, until PID 1 reaps it: gone is the only pass.
    let status = format!("/proc/{orphan}/status");
    let gone = wait_until(Duration::from_secs(30), || {
        !container.exec(&["test", "-e", &status]).status.success()
    });
    let state = container.exec(&["cat", &status]);
    assert!(
        gone,
        "the hook's orphan (PID {orphan}) was never reaped by the service:\n{}",
        stdout(&state)
    );

    let stopped = container.stop();
    assert_eq!(
        stopped.trim(),
        "0",
        "the service should exit 0 on podman stop's SIGTERM, not be killed (137)\n{}",
        sb.explain()
    );
}

/// `[dd/mm/yyyy hh:mm]` now in `zone`, as the log stamps it.
fn stamp_in(zone: &str) -> String {
    let out = tool("date")
        .env("TZ", zone)
        .arg("+[%d/%m/%Y %H:%M]")
        .output()
        .unwrap();
    stdout(&out).trim().to_owned()
}

/// The image built once for the test, with a podman configuration of its own; removed at
/// the end.
struct Image {
    tag: String,
    config: tempfile::TempDir,
}

impl Image {
    fn build() -> Image {
        for name in ["podman", "runc", "busybox"] {
            assert_installed(name);
        }
        let config = tempfile::tempdir().unwrap();
        // runc: crun is not what works on this kind of machine; no default ulimits: the
        // sandbox refuses to raise them.
        std::fs::write(
            config.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        let image = Image {
            tag: format!("localhost/backupbox-test-{}", std::process::id()),
            config,
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/container.sh");
        let mut build = Command::new(script);
        build.args(["--tag", &image.tag, "--tz", IMAGE_TZ]);
        // scripts/test.sh builds the static binary before the tests; alone, the script does.
        if let Some(binary) = std::env::var_os("BACKUPBOX_STATIC_BIN") {
            build.arg("--bin").arg(binary);
        }
        let out = build
            .env("CONTAINERS_CONF", image.conf())
            .output()
            .expect("scripts/container.sh");
        assert!(
            out.status.success(),
            "scripts/container.sh failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let size = image.podman(&["image", "inspect", "--format", "{{.Size}}"], &[], &[]);
        let size: u64 = stdout(&size).trim().parse().unwrap_or(u64::MAX);
        assert!(
            size < 10_000_000,
            "the FROM scratch image should stay small; it is {size} bytes"
        );
        image
    }

    fn conf(&self) -> PathBuf {
        self.config.path().join("containers.conf")
    }

    /// `podman ARGS [-v MOUNT]... TAG COMMAND...`
    fn podman(&self, args: &[&str], mounts: &[String], command: &[&str]) -> std::process::Output {
        let mut podman = tool("podman");
        podman.env("CONTAINERS_CONF", self.conf()).args(args);
        for mount in mounts {
            podman.arg("-v").arg(mount);
        }
        podman.arg(&self.tag).args(command);
        podman.output().expect("podman")
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .env("CONTAINERS_CONF", self.conf())
            .args(["rmi", "--force", &self.tag])
            .output();
    }
}

/// A detached container running the image's default command, the foreground service.
struct Container<'a> {
    image: &'a Image,
    name: String,
}

impl<'a> Container<'a> {
    fn start(image: &'a Image, mounts: &[String]) -> Container<'a> {
        let name = format!("backupbox-test-{}", std::process::id());
        let out = image.podman(&["run", "--detach", "--name", &name], mounts, &[]);
        assert!(
            out.status.success(),
            "podman run --detach: {}",
            stderr(&out)
        );
        Container { image, name }
    }

    fn podman(&self, args: &[&str]) -> std::process::Output {
        tool("podman")
            .env("CONTAINERS_CONF", self.image.conf())
            .args(args)
            .output()
            .expect("podman")
    }

    fn exec(&self, command: &[&str]) -> std::process::Output {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(command);
        self.podman(&args)
    }

    /// `podman stop` with 20 s before SIGKILL; the container's exit code.
    fn stop(&self) -> String {
        let out = self.podman(&["stop", "--time", "20", &self.name]);
        assert!(out.status.success(), "podman stop: {}", stderr(&out));
        stdout(&self.podman(&["inspect", "--format", "{{.State.ExitCode}}", &self.name]))
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--force", &self.name]);
    }
}
