//! The store: what backupbox keeps in `backups/` and the outcomes it records, for every
//! command and the service alike. The forms and generations of each name and their rotation
//! (`rotation`), which generations retention keeps (`retention`, pure), and the state file of
//! each schedule's last outcome (`outcomes`). It imports nothing of the job, the service or
//! the manager.

pub mod catalog;
pub mod chain;
mod ledger;
pub mod outcomes;
pub mod retention;
pub mod rotation;

use std::fmt;
use std::num::NonZeroU32;

/// Archives kept per name, `<name>.tar` included: at least one. One replaces it, as the
/// spec does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Keep(NonZeroU32);

impl Keep {
    pub const ONE: Keep = Keep(NonZeroU32::MIN);
    /// Most generations kept: beyond this a prune lists more files than any folder holds
    /// usefully.
    pub const MAX: u32 = 100_000;

    pub fn new(count: u32) -> Option<Keep> {
        NonZeroU32::new(count).map(Keep)
    }

    pub fn count(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
