//! Orphans: as PID 1 (a container's main process) the service inherits every process a hook
//! left behind, and must reap them when they end, without taking the exit status of a child
//! that a job is still waiting for.

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{self, Read};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The children that a job spawned and waits for itself; the sweep leaves them alone.
static AWAITED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// `/proc/self/task/<tid>/children` holds one number per child; more than this many bytes
/// would be over 100,000 children.
const MAX_CHILDREN_TEXT: u64 = 1 << 20;

fn awaited() -> MutexGuard<'static, Vec<u32>> {
    AWAITED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether orphaned processes are reparented to this one: only PID 1 of its namespace, as
/// backupbox never makes itself a subreaper.
pub fn orphans_come_here() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// A child that its spawner waits for itself; [`reap_orphans`] does not touch it while this
/// lives.
pub struct Awaited {
    child: Child,
}

impl Awaited {
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        let pid = self.child.id();
        awaited().retain(|&awaited| awaited != pid);
    }
}

/// Spawns `command` as a child that the caller waits for. The list is held across the spawn,
/// so a sweep can never see the child before it is listed.
pub fn spawn(command: &mut Command) -> io::Result<Awaited> {
    let mut awaited = awaited();
    let child = command.spawn()?;
    awaited.push(child.id());
    Ok(Awaited { child })
}

/// Reaps every child of this process that has ended and that no job waits for; returns how
/// many it reaped.
pub fn reap_orphans() -> usize {
    reap_ended(children_of_this_process())
}

/// Reaps those of `children` that have ended and that no job waits for.
fn reap_ended(children: Vec<u32>) -> usize {
    let awaited = awaited();
    let mut reaped = 0;
    for pid in children {
        if awaited.contains(&pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => {}
            Ok(_) => reaped += 1,
        }
    }
    reaped
}

/// The children of every thread of this process (a child belongs to the thread that forked
/// it; orphans go to the first thread alive).
fn children_of_this_process() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let mut text = String::new();
        let read = File::open(task.path().join("children"))
            .and_then(|file| file.take(MAX_CHILDREN_TEXT).read_to_string(&mut text));
        if read.is_ok() {
            children.extend(
                text.split_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_reaps_an_ended_child_but_not_one_that_is_awaited() {
        let mut awaited = spawn(Command::new("true").arg("awaited")).expect("spawn true");
        let mut orphan = Command::new("true").spawn().expect("spawn true");
        let orphan_pid = orphan.id();
        // Both have ended once /proc shows them as zombies.
        let zombie = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|s| s.starts_with(" Z")))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(zombie(orphan_pid) && zombie(awaited.child().id())) {
            assert!(
                std::time::Instant::now() < deadline,
                "the two `true` children never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let children = children_of_this_process();
        assert!(
            children.contains(&orphan_pid) && children.contains(&awaited.child().id()),
            "/proc/self/task/*/children lacks the two children: {children:?}"
        );
        // Only these two: other tests of this binary wait for children of their own.
        assert_eq!(reap_ended(vec![orphan_pid, awaited.child().id()]), 1);
        assert!(
            !std::path::Path::new(&format!("/proc/{orphan_pid}")).exists(),
            "the child nobody waits for was not reaped"
        );
        let status = awaited.child().try_wait();
        assert!(
            matches!(status, Ok(Some(status)) if status.success()),
            "the awaited child's exit status was taken by the sweep: {status:?}"
        );
        // The orphan's status is gone: std sees no such child.
        assert!(orphan.try_wait().is_err(), "the orphan was not reaped");
    }
}
