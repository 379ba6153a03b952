//! The operating system underneath: locks, files others could replace, replace-by-rename.
//! Every `unsafe` block and raw libc call of backupbox lives here, behind safe functions.

pub mod atomic_file;
pub mod flock;
pub mod io;
pub mod memory;
pub mod nss;
pub mod open;
pub mod priority;
pub mod process;
pub mod reaper;
pub mod terminal;
pub mod time;
