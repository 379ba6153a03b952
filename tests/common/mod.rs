//! Test harness: a backup system in a temporary directory, driven through the real binary
//! by its two role links, as a user would.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_backupbox");

/// A base directory with `backup_manager` and `backup_service` links to the binary under test.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("backupbox-test-")
            .tempdir()
            .expect("temp dir");
        for role in ["backup_manager", "backup_service"] {
            symlink(BIN, dir.path().join(role)).expect("role link");
        }
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What a person needs when an assertion about the sandbox fails: where it is, what files
    /// it holds, and the end of both logs.
    pub fn explain(&self) -> String {
        let mut files = Vec::new();
        let mut pending = vec![self.path().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path);
                if meta.as_ref().is_ok_and(|meta| meta.is_dir()) {
                    pending.push(path.clone());
                }
                let size = meta.map_or(0, |meta| meta.len());
                files.push(format!(
                    "{} ({size} bytes)",
                    path.strip_prefix(self.path()).unwrap_or(&path).display()
                ));
            }
        }
        files.sort();
        files.truncate(200);
        format!(
            "--- sandbox {} ---\n{}\n{}",
            self.path().display(),
            files.join("\n"),
            log_tails(&self.join("logs"))
        )
    }

    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `./backup_manager ARGS...` run in the base directory.
    pub fn manager<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let output = self
            .command("backup_manager", args)
            .output()
            .expect("run backup_manager");
        Run {
            output,
            args: args
                .iter()
                .map(|arg| arg.as_ref().to_string_lossy().into_owned())
                .collect(),
            log: self.join("logs/backup_manager.log"),
        }
    }

    pub fn command<S: AsRef<OsStr>>(&self, role: &str, args: &[S]) -> Command {
        let mut command = Command::new(self.join(role));
        command
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null());
        command
    }

    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, bytes).unwrap();
    }

    pub fn read(&self, relative: &str) -> Vec<u8> {
        fs::read(self.join(relative)).unwrap_or_default()
    }

    /// The messages of a log, without their `[dd/mm/yyyy hh:mm] ` stamps.
    pub fn log_messages(&self, log: &str) -> Vec<String> {
        let text = String::from_utf8(self.read(&format!("logs/{log}"))).expect("logs are UTF-8");
        text.lines()
            .map(|line| {
                let (stamp, message) = line.split_at(19);
                assert_stamp(stamp);
                message.to_owned()
            })
            .collect()
    }

    pub fn manager_log(&self) -> Vec<String> {
        self.log_messages("backup_manager.log")
    }

    pub fn service_log(&self) -> Vec<String> {
        self.log_messages("backup_service.log")
    }

    /// Writes a file of `mib` MiB in 1 MiB chunks of varying bytes, without holding it in memory.
    pub fn write_large(&self, relative: &str, mib: u32) {
        use std::io::Write;
        let path = self.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = fs::File::create(path).unwrap();
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mib {
            chunk.fill((i % 251) as u8);
            file.write_all(&chunk).unwrap();
        }
    }

    /// A plan of one schedule due in the current minute, so a starting service runs it at once.
    pub fn plan_now(&self, folder: &str, name: &str) {
        self.write(
            "backup_schedules.txt",
            format!("{folder};{};{name}\n", current_minute()),
        );
    }

    /// `./backup_service` in the foreground, as systemd or a container would run it, with
    /// stderr on /dev/null (the tests read its log file; stderr has a test of its own).
    pub fn spawn_service(&self) -> std::process::Child {
        self.command("backup_service", &[] as &[&str])
            .stderr(Stdio::null())
            .spawn()
            .expect("run backup_service")
    }

    /// Temporary archive files in `backups/`.
    pub fn temp_files(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.join("backups")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".backupbox-") && n.ends_with(".tmp"))
            .collect()
    }

    /// Waits up to `seconds` until `condition` holds of the service log's messages; fails
    /// the test with the log as it then is, so a timeout says what the service did.
    #[track_caller]
    pub fn await_service_log(&self, seconds: u64, condition: impl Fn(&[String]) -> bool) {
        let reached = wait_until(Duration::from_secs(seconds), || {
            condition(&self.service_log())
        });
        assert!(
            reached,
            "not seen in the service log within {seconds} s; it reads:\n{}",
            self.service_log().join("\n")
        );
    }

    /// The PID written in the PID file, if any.
    pub fn service_pid(&self) -> Option<i32> {
        String::from_utf8(self.read("logs/backup_service.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never leave a daemon behind, whatever the test did.
        if self.join("logs/backup_service.pid").exists() {
            let _ = self.manager(&["stop", "--timeout", "20"]);
        }
    }
}

/// A finished `backup_manager` run with what it was asked, for assertions that explain
/// themselves (uutils' `CmdResult`): on failure they print the arguments, the exit status,
/// stdout, stderr and the end of the manager log.
pub struct Run {
    pub output: Output,
    args: Vec<String>,
    log: PathBuf,
}

impl std::ops::Deref for Run {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.output
    }
}

/// The last lines of the manager's and the service's log in `logs`.
fn log_tails(logs: &Path) -> String {
    let tail = |name: &str| {
        let log = fs::read_to_string(logs.join(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    };
    format!(
        "--- end of the manager log ---\n{}\n--- end of the service log ---\n{}",
        tail("backup_manager.log"),
        tail("backup_service.log")
    )
}

/// Assertions on how a command ended, for a `backup_manager` [`Run`] and a plain `Output`.
pub trait Finished {
    fn output(&self) -> &Output;

    /// Its stdout, as text.
    fn stdout_text(&self) -> String {
        stdout(self.output())
    }

    /// Everything a person needs to see when an assertion fails.
    fn explain(&self) -> String {
        let output = self.output();
        format!(
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        self.fails(0)
    }

    /// Exits with `code` (0 included).
    #[track_caller]
    fn fails(&self, code: i32) -> &Self {
        assert_eq!(
            self.output().status.code(),
            Some(code),
            "unexpected exit\n{}",
            self.explain()
        );
        self
    }

    #[track_caller]
    fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(
            String::from_utf8_lossy(&self.output().stdout),
            expected,
            "\n{}",
            self.explain()
        );
        self
    }

    #[track_caller]
    fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            String::from_utf8_lossy(&self.output().stdout).contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.explain()
        );
        self
    }

    #[track_caller]
    fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            String::from_utf8_lossy(&self.output().stderr).contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.explain()
        );
        self
    }
}

impl Finished for Output {
    fn output(&self) -> &Output {
        self
    }
}

impl Finished for Run {
    fn output(&self) -> &Output {
        &self.output
    }

    /// The command, how it ended, and the end of both logs: the manager's, and the service's
    /// (a command that talks to the service fails for reasons only its log says).
    fn explain(&self) -> String {
        format!(
            "backup_manager {}\n{}\n{}",
            self.args.join(" "),
            self.output.explain(),
            log_tails(self.log.parent().unwrap_or(Path::new(".")))
        )
    }
}

/// A pause point of a debug build (`BACKUPBOX_TEST_PAUSE`): the binary stops there until the
/// test releases it, so "while it is still writing" is a state, not a race with the disk.
pub struct Pause {
    point: &'static str,
    file: PathBuf,
}

impl Pause {
    pub fn new(sb: &Sandbox, point: &'static str) -> Pause {
        Pause {
            point,
            file: sb.join(format!(".pause-{point}")),
        }
    }

    /// The environment variable that arms `pauses`.
    pub fn env(pauses: &[&Pause]) -> (&'static str, String) {
        let pairs: Vec<String> = pauses
            .iter()
            .map(|pause| format!("{}:{}", pause.point, pause.file.display()))
            .collect();
        ("BACKUPBOX_TEST_PAUSE", pairs.join(","))
    }

    /// Waits until the binary has reached the point.
    #[track_caller]
    pub fn reached(&self) {
        assert!(
            wait_until(Duration::from_secs(30), || self.file.exists()),
            "never reached {}",
            self.point
        );
    }

    /// Spawns `backup_manager ARGS` with `pauses` armed (stdout and stderr piped) and waits
    /// until it reaches the first of them.
    pub fn spawn_manager(sb: &Sandbox, args: &[&str], pauses: &[&Pause]) -> std::process::Child {
        let (key, value) = Pause::env(pauses);
        let child = sb
            .command("backup_manager", args)
            .env(key, value)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run backup_manager");
        pauses[0].reached();
        child
    }

    /// Lets the binary go on.
    pub fn release(&self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// Sets a file's mtime to `when` (as `touch -d` reads it: local time unless it says a zone).
pub fn touch(path: &Path, when: &str) {
    let out = Command::new("touch")
        .arg("-d")
        .arg(when)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "touch -d {when}: {}", stderr(&out));
}

/// `[dd/mm/yyyy hh:mm] `
pub fn assert_stamp(stamp: &str) {
    let b = stamp.as_bytes();
    let digits = [1, 2, 4, 5, 7, 8, 9, 10, 12, 13, 15, 16];
    assert!(
        b.len() == 19
            && b[0] == b'['
            && b[3] == b'/'
            && b[6] == b'/'
            && b[11] == b' '
            && b[14] == b':'
            && &b[17..] == b"] "
            && digits.iter().all(|&i| b[i].is_ascii_digit()),
        "bad stamp {stamp:?}"
    );
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not signalled")
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// Asserts that the unix time `stamp` (a start time the binary reported) lies within the
/// last minute.
#[track_caller]
pub fn assert_within_the_last_minute(stamp: i64) {
    let now = unix_now();
    assert!(
        (now - 60..=now).contains(&stamp),
        "{stamp} is not within a minute of {now}"
    );
}

/// Polls `condition` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The local `hh:mm` now, with at least ten seconds left in the minute, so that a service
/// started right after sees the same minute. Waits for the next minute when too close.
pub fn current_minute() -> String {
    loop {
        let out = Command::new("date")
            .arg("+%H:%M %S")
            .output()
            .expect("date");
        let text = String::from_utf8(out.stdout).unwrap();
        let (hh_mm, seconds) = text.trim().split_once(' ').unwrap();
        let seconds: u64 = seconds.parse().unwrap();
        if seconds < 50 {
            return hh_mm.to_owned();
        }
        std::thread::sleep(Duration::from_secs(61 - seconds));
    }
}

/// `backup_manager contents NAME --long` and `tar -tvf` of the archive, both in UTC.
pub fn long_listings(sb: &Sandbox, name: &str, archive: &Path) -> (String, String) {
    let ours = sb
        .command("backup_manager", &["contents", name, "--long"])
        .env("TZ", "UTC")
        .output()
        .expect("run backup_manager contents");
    assert!(
        ours.status.success(),
        "contents {name} --long: {}",
        stderr(&ours)
    );
    let theirs = tool("tar")
        .arg("-tvf")
        .arg(archive)
        .env("TZ", "UTC")
        .output()
        .expect("run tar -tvf");
    assert!(theirs.status.success(), "tar -tvf: {}", stderr(&theirs));
    (stdout(&ours), stdout(&theirs))
}

/// GNU tar's own verdict: `tar --compare` run in `cwd` against `archive`.
pub fn gnu_tar_compare(archive: &Path, cwd: &Path) -> Output {
    tool("tar")
        .arg("--compare")
        .arg("-f")
        .arg(archive)
        .current_dir(cwd)
        .output()
        .expect("GNU tar")
}

pub fn assert_gnu_tar_compare_clean(archive: &Path, cwd: &Path) {
    let out = gnu_tar_compare(archive, cwd);
    assert!(
        out.status.success(),
        "tar --compare: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "tar --compare lists differences");
}

/// `tar -tvf` lines.
pub fn gnu_tar_list(archive: &Path) -> Vec<String> {
    let out = tool("tar")
        .arg("-tvf")
        .arg(archive)
        .output()
        .expect("GNU tar");
    assert!(out.status.success(), "tar -tvf: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// `tar -tf` member names, as bytes.
pub fn gnu_tar_names(archive: &Path) -> Vec<Vec<u8>> {
    let out = tool("tar")
        .arg("--quoting-style=literal")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("GNU tar");
    assert!(out.status.success(), "tar -tf: {}", stderr(&out));
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

/// Sends SIGTERM to a foreground service and checks that it exits 0.
pub fn stop_foreground(mut service: std::process::Child) {
    signal(service.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let status = service.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a stopped service exits 0");
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The odd tree of the archive tests: names over 100 and 255 bytes, long link targets, names
/// that are not UTF-8 or hold a newline, symlink loops, an absolute link, a fifo, a socket,
/// an empty folder and an empty file. Returns the socket's listener, which keeps it alive.
pub fn make_odd_tree(root: &Path) -> std::os::unix::net::UnixListener {
    use std::os::unix::ffi::OsStrExt;
    fs::create_dir(root).unwrap();
    let long_dir = root.join("d".repeat(120)).join("e".repeat(120));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(200)), "deep").unwrap();
    symlink("t".repeat(300), root.join("long_link")).unwrap();
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9")), "latin-1").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"new\nline")), "nl").unwrap();
    // Symlinks are stored, never followed: loops are harmless.
    symlink("loop", root.join("loop")).unwrap();
    symlink(".", root.join("self")).unwrap();
    symlink("/etc/passwd", root.join("outside")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::File::create(root.join("zero")).unwrap();
    socket
}

/// `hh:mm` local, `minutes` from now: a schedule time that will not come up during a test.
pub fn minute_from_now(minutes: i64) -> String {
    let now = current_minute();
    let (h, m) = now.split_once(':').unwrap();
    let total =
        (h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap() + minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", total / 60, total % 60)
}

/// A tar archive built member by member with exactly the bytes given: crafted archives for
/// the refusal tests. Names and link targets over 100 bytes go through GNU long-name and
/// long-link records.
#[derive(Default)]
pub struct RawArchive {
    pub bytes: Vec<u8>,
}

impl RawArchive {
    pub fn new() -> RawArchive {
        RawArchive::default()
    }

    /// Appends a member with mode 0644 and uid/gid 0.
    pub fn member(self, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Self {
        self.member_as(name, kind, link, data, 0o644, 0)
    }

    /// Appends a member with the given mode and owner (uid = gid).
    pub fn member_as(
        mut self,
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
        uid: u64,
    ) -> Self {
        for (long, kind) in [
            (name, tar::EntryType::GNULongName),
            (link, tar::EntryType::GNULongLink),
        ] {
            if long.len() > 100 {
                let mut record = long.to_vec();
                record.push(0);
                self = self.member(b"././@LongLink", kind, b"", &record);
            }
        }
        let mut header = tar::Header::new_gnu();
        let short = &name[..name.len().min(100)];
        header.as_old_mut().name[..short.len()].copy_from_slice(short);
        let short = &link[..link.len().min(100)];
        header.as_old_mut().linkname[..short.len()].copy_from_slice(short);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_size(data.len() as u64);
        header.set_mtime(1_769_699_250);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    /// The archive with its end-of-archive marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}

/// Runs `command` to its end, or kills it after `limit` and fails the test: a hang is a bug.
pub fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// Everything about a file that a restore must never change: bytes, type and mode, owner,
/// times, and ctime, which any chmod, chown or utime moves even when it sets equal values.
pub fn fingerprint(path: &Path) -> (Vec<u8>, u32, u32, u32, i64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).expect("victim exists");
    (
        fs::read(path).unwrap_or_default(),
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.mtime(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

/// A small tmpfs, unmounted when dropped. Only root may mount: the tests that use it are
/// `#[ignore = "needs root: …"]`, and a refused mount fails them.
pub struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    pub fn mount(path: &Path, size: &str) -> SmallDisk {
        fs::create_dir_all(path).unwrap();
        let out = tool("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs {} refused (this test needs root): {}",
            path.display(),
            stderr(&out).trim()
        );
        SmallDisk {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The tools the tests run besides cargo, with the Debian package of each: the list
/// scripts/test.sh installs from.
const TOOLS: &str = include_str!("../../scripts/test-tools.txt");

/// A command for `name`, one of scripts/test-tools.txt; see `assert_installed`.
pub fn tool(name: &str) -> Command {
    assert_installed(name);
    Command::new(name)
}

/// Fails the test unless `name` (one of scripts/test-tools.txt) is on PATH, naming the package
/// to install: a test that could not run never passes.
pub fn assert_installed(name: &str) {
    let package = TOOLS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(name)).then(|| fields.next().unwrap_or("?"))
        })
        .unwrap_or_else(|| panic!("{name} is not in scripts/test-tools.txt: add it there"));
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(dir.join(name))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    });
    let install = match package.strip_prefix("pip:") {
        Some(pip) => format!("pip install '{pip}'"),
        None => format!("apt-get install {package}"),
    };
    assert!(
        found,
        "{name} is not installed: {install} (scripts/test.sh installs every tool the tests need)"
    );
}

/// Fails unless the test runs as root: the tests that call it are `#[ignore = "needs root…"]`.
pub fn assert_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root ({why}); scripts/test.sh runs it only as root"
    );
}

/// `length` bytes no compressor can shrink (xorshift64).
pub fn noise(length: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
