//! backupbox: a whole backup system for minimal Linux hosts in one multi-call binary.
//!
//! Linked as `backup_manager` it edits the plan and starts and stops the service; linked as
//! `backup_service` it is the service. `main` is the only place that exits.

mod archive;
mod cli;
mod clock;
mod crypt;
mod debug_points;
mod error;
mod host;
mod job;
mod layout;
mod log;
mod manager;
mod plan;
mod progress;
mod report;
mod service;
mod settings;
mod stdout;
mod store;
#[allow(unsafe_code)]
mod sys;

fn main() {
    sys::nss::files_only_when_static();
    let status = cli::run(std::env::args_os().collect());
    std::process::exit(status);
}
