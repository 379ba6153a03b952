//! backupbox: a whole backup system for minimal Linux hosts in one multi-call binary.
//!
//! Linked as `backup_manager` it edits the plan and starts and stops the service; linked as
//! `backup_service` it is the service. `main` is the only place that exits.

mod archive;
mod args;
mod atomic_file;
mod backup;
mod cli;
mod clock;
mod daemon;
mod error;
mod flock;
mod jobs;
mod layout;
mod log;
mod manager;
mod name_lock;
mod pidfile;
mod plan;
mod plan_file;
mod restore;
mod rotation;
mod scheduler;
mod service;
mod state;
mod status;
mod test_hooks;
mod untrusted;
mod verify;

fn main() {
    let status = cli::run(std::env::args_os().collect());
    std::process::exit(status);
}
