//! The integration suite: the real binary driven through its role links, as a user would,
//! in one test binary with a module per area (ripgrep's layout).

mod archive;
mod behaviour;
mod common;
mod compression;
mod container;
mod encryption;
mod fleet;
mod formats;
mod hooks;
mod incremental;
mod links;
mod manager;
mod metrics;
mod offsite;
mod operate;
mod progress;
mod recipes;
mod service;
mod settings;
mod store;
mod systemd;
mod trust;
mod trust_input;
