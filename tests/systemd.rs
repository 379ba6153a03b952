//! The systemd unit and `install.sh --systemd` under a real systemd: this machine's own tree
//! booted by `systemd-nspawn --volatile=yes` (a throw-away root, `/usr` read-only), with
//! systemd as PID 1 inside. One boot serves every check; the machine is powered off at the end.
//! It needs root and a tree that systemd-nspawn can boot, so it is `#[ignore]`d unless
//! scripts/test.sh has checked both (and always under CI); a machine that does not boot fails it.

use crate::common::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BASE: &str = "/var/lib/backupbox";
const BIN: &str = "/opt/bb/bin";

/// A booted container and the host PID of the systemd inside it.
struct Machine {
    nspawn: Child,
    systemd: i32,
}

impl Machine {
    /// Boots the host's tree with the checkout at /src and the binary under test at
    /// /under-test, both read-only.
    fn boot(name: &str) -> Machine {
        let checkout = env!("CARGO_MANIFEST_DIR");
        let binary_dir = Path::new(crate::common::BIN).parent().unwrap();
        let nspawn = tool("systemd-nspawn")
            .args([
                "-D",
                "/",
                "--volatile=yes",
                "--register=no",
                "--keep-unit",
                "-M",
                name,
            ])
            .arg(format!("--bind-ro={checkout}:/src"))
            .arg(format!("--bind-ro={}:/under-test", binary_dir.display()))
            .args(["-b", "systemd.firstboot=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run systemd-nspawn");
        let nspawn_pid = nspawn.id();
        let mut machine = Machine { nspawn, systemd: 0 };
        let inner = || systemd_below(nspawn_pid);
        if !wait_until(Duration::from_secs(30), || inner().is_some()) {
            machine.kill();
            panic!("systemd-nspawn started no systemd within 30 s");
        }
        machine.systemd = inner().unwrap();
        let booted = wait_until(Duration::from_secs(60), || {
            let state = machine.sh("systemctl is-system-running");
            matches!(stdout(&state).trim(), "running" | "degraded")
        });
        if !booted {
            let state = machine.sh("systemctl is-system-running; systemctl --failed --no-pager");
            machine.kill();
            panic!(
                "the container did not finish booting within 60 s: {}",
                stdout(&state)
            );
        }
        machine
    }

    /// Ends the machine for sure: killing the PID 1 of its namespace kills everything in it.
    fn kill(&mut self) {
        if self.systemd > 0 {
            signal(self.systemd, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }

    /// Runs a shell script inside the machine.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.systemd.to_string(), "-a", "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Runs a script that must succeed; returns its stdout.
    #[track_caller]
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(out.status.success(), "{script}\n{}", out.explain());
        stdout(&out)
    }

    /// Waits until `script` prints `expected` (trimmed).
    #[track_caller]
    fn wait_for(&self, script: &str, expected: &str) {
        let mut last = String::new();
        let reached = wait_until(Duration::from_secs(60), || {
            last = stdout(&self.sh(script)).trim().to_owned();
            last == expected
        });
        assert!(reached, "{script}: still {last:?}, not {expected:?}");
    }

    fn service_log(&self) -> String {
        self.ok(&format!("cat {BASE}/logs/backup_service.log"))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.systemd > 0 {
            let _ = self.sh("systemctl poweroff");
        }
        let powered_off = wait_until(Duration::from_secs(30), || {
            self.nspawn.try_wait().ok().flatten().is_some()
        });
        if !powered_off {
            self.kill();
        }
    }
}

/// The host PID of the systemd that nspawn `pid` started (nspawn forks a helper first).
fn systemd_below(pid: u32) -> Option<i32> {
    let mut level = vec![i32::try_from(pid).ok()?];
    for _ in 0..3 {
        let mut next = Vec::new();
        for parent in level {
            let children =
                std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                    .unwrap_or_default();
            next.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
        if let Some(&found) = next.iter().find(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm"))
                .is_ok_and(|comm| comm.trim() == "systemd")
        }) {
            return Some(found);
        }
        level = next;
    }
    None
}

#[test]
#[ignore = "needs root and a bootable systemd-nspawn"]
fn the_unit_and_install_script_work_under_a_real_systemd() {
    let name = format!("backupbox-test-{}", std::process::id());
    let machine = Machine::boot(&name);
    install_and_back_up_at_start(&machine);
    reload_and_hardening(&machine);
    stop_waits_for_a_running_backup(&machine);
    kill_9_then_start_recovers(&machine);
}

/// A plan due now, written before the unit starts, is archived at once; the journal carries
/// the same lines as the log; the unit's main PID is the PID file's lock holder.
fn install_and_back_up_at_start(machine: &Machine) {
    let now = current_minute();
    machine.ok(&format!(
        "mkdir -p {BASE}/data /home/alice/docs && echo data > {BASE}/data/f \
         && echo notes > /home/alice/docs/notes \
         && printf 'data;{now};data\\n/home/alice/docs;{now};home\\n' > {BASE}/backup_schedules.txt"
    ));
    machine.ok(
        "/src/scripts/install.sh --bin /under-test/backupbox --prefix /opt/bb --systemd --keep 3",
    );
    assert_eq!(machine.ok("systemctl is-active backupbox").trim(), "active");
    let main_pid = machine.ok("systemctl show -p MainPID --value backupbox");
    // Type=simple is active once forked; the lock is taken a moment later.
    machine.wait_for(
        &format!("cat {BASE}/logs/backup_service.pid"),
        main_pid.trim(),
    );
    let status = machine.sh(&format!("{BIN}/backup_manager --dir {BASE} status --json"));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["service"]["pid"].to_string(), main_pid.trim());

    let done = "Backup done for /home/alice/docs in backups/home.tar";
    machine.wait_for(
        &format!("grep -c 'Backup done' {BASE}/logs/backup_service.log"),
        "2",
    );
    let log = machine.service_log();
    assert!(
        log.contains("] Backup done for data in backups/data.tar\n"),
        "{log}"
    );
    assert!(
        log.contains(done),
        "ProtectHome=read-only still lets /home be read: {log}"
    );
    let journal = machine.ok("journalctl -u backupbox -o cat --no-pager");
    for line in log.lines() {
        assert!(
            journal.lines().any(|j| j == line),
            "{line:?} not in the journal:\n{journal}"
        );
    }
    machine.ok(&format!(
        "tar -tf {BASE}/backups/home.tar | grep -qx home/alice/docs/notes"
    ));
    let out = machine.sh(&format!("{BIN}/backup_manager --dir {BASE} start"));
    out.fails(1);
    out.stderr_contains("Error: backup_service already running");
}

/// `systemctl reload` is a SIGHUP; ProtectSystem=strict keeps a unit out of /etc.
fn reload_and_hardening(machine: &Machine) {
    machine.ok("systemctl reload backupbox");
    machine.wait_for(
        &format!("grep -c 'Plan reloaded: 2 schedules' {BASE}/logs/backup_service.log"),
        "1",
    );
    let journal = machine.ok("journalctl -u backupbox -o cat --no-pager");
    assert!(
        journal.contains("] Plan reloaded: 2 schedules"),
        "{journal}"
    );

    // The same unit pointed at /etc, with ReadWritePaths still naming the real base.
    machine.ok(
        "mkdir -p /etc/backupbox-probe && echo 'x;00:00;x' > /etc/backupbox-probe/backup_schedules.txt \
         && sed 's|--dir /var/lib/backupbox|--dir /etc/backupbox-probe|; s|^Restart=.*|Restart=no|' \
            /etc/systemd/system/backupbox.service > /etc/systemd/system/backupbox-probe.service \
         && systemctl daemon-reload && systemctl start backupbox-probe || true",
    );
    machine.wait_for("systemctl is-active backupbox-probe", "failed");
    let journal = machine.ok("journalctl -u backupbox-probe -o cat --no-pager");
    assert!(
        journal.contains("Error: can't start backup_service: Read-only file system"),
        "{journal}"
    );
    assert_eq!(
        machine.ok("ls -A /etc/backupbox-probe").trim(),
        "backup_schedules.txt"
    );
}

/// Arms the debug build's pause point in the unit, and restarts it with a plan due now. The
/// state file goes first: a restart within the minute a line already started in does not run
/// it again (exactly once per minute), and these steps may share a minute.
fn restart_paused_in_a_backup(machine: &Machine) {
    machine.ok(&format!(
        "mkdir -p /etc/systemd/system/backupbox.service.d && printf '[Service]\\nEnvironment=BACKUPBOX_TEST_PAUSE=archive-written:{BASE}/.paused\\n' \
            > /etc/systemd/system/backupbox.service.d/pause.conf \
         && head -c 8M /dev/urandom > {BASE}/data/big \
         && printf 'data;%s;data\\n' $(date +%H:%M) > {BASE}/backup_schedules.txt \
         && rm -f {BASE}/logs/backup_state.txt \
         && systemctl daemon-reload && systemctl restart backupbox"
    ));
    machine.wait_for(&format!("test -e {BASE}/.paused && echo paused"), "paused");
}

/// `systemctl stop` during a backup waits for it and ends cleanly.
fn stop_waits_for_a_running_backup(machine: &Machine) {
    let _ = current_minute();
    restart_paused_in_a_backup(machine);
    let before = machine.ok(&format!(
        "grep -c 'Backup done for data' {BASE}/logs/backup_service.log"
    ));
    machine.ok("systemctl stop --no-block backupbox");
    machine.wait_for(
        "systemctl show -p ActiveState --value backupbox",
        "deactivating",
    );
    machine.ok(&format!("rm {BASE}/.paused"));
    machine.wait_for(
        "systemctl show -p ActiveState --value backupbox",
        "inactive",
    );
    assert_eq!(
        machine
            .ok("systemctl show -p Result --value backupbox")
            .trim(),
        "success"
    );
    let after = machine.ok(&format!(
        "grep -c 'Backup done for data' {BASE}/logs/backup_service.log"
    ));
    assert_eq!(
        after.trim().parse::<u32>().unwrap(),
        before.trim().parse::<u32>().unwrap() + 1,
        "the backup finished before the service stopped"
    );
    machine.ok(&format!(
        "tar -tf {BASE}/backups/data.tar | grep -qx data/big"
    ));
}

/// kill -9 mid-backup: Restart=on-failure takes over, and the next start removes the temp
/// file with its warning.
fn kill_9_then_start_recovers(machine: &Machine) {
    let _ = current_minute();
    restart_paused_in_a_backup(machine);
    // The temporary file of the backup about to be killed.
    let left = machine.ok(&format!("ls -A {BASE}/backups | grep '\\.tmp$'"));
    let left = left.trim().to_owned();
    assert!(!left.is_empty(), "no temporary file while paused");
    // The next process must not pause again.
    machine.ok("rm /etc/systemd/system/backupbox.service.d/pause.conf && systemctl daemon-reload");
    machine.ok("systemctl kill -s KILL backupbox");
    machine.wait_for(
        "systemctl show -p SubState --value backupbox",
        "auto-restart",
    );
    machine.ok(&format!(
        "rm -f {BASE}/.paused && systemctl start backupbox"
    ));
    assert_eq!(machine.ok("systemctl is-active backupbox").trim(), "active");
    machine.wait_for(
        &format!("grep -c 'left by a backup that was interrupted' {BASE}/logs/backup_service.log"),
        "1",
    );
    let journal = machine.ok("journalctl -u backupbox -o cat --no-pager");
    assert!(
        journal.contains("left by a backup that was interrupted"),
        "{journal}"
    );
    // Gone: the interrupted run is run again at start, and its own temporary file, which may
    // exist while it writes, has another name.
    machine.ok(&format!("test ! -e {BASE}/backups/{left}"));
}
