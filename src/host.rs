//! The host's stable identity, which spreads the starts of a fleet (`splay`):
//! `/etc/machine-id`, else the host name (a pod gets a new name, a machine keeps its id).

use std::io::Read;
use std::sync::OnceLock;

/// The identity, read once.
pub fn identity() -> &'static [u8] {
    static IDENTITY: OnceLock<Vec<u8>> = OnceLock::new();
    IDENTITY.get_or_init(|| machine_id().unwrap_or_else(host_name))
}

/// `/etc/machine-id`, a regular file read without following a link, at most 64 bytes.
fn machine_id() -> Option<Vec<u8>> {
    let file = crate::sys::open::open_regular(std::path::Path::new("/etc/machine-id")).ok()?;
    let mut id = Vec::new();
    file.take(64).read_to_end(&mut id).ok()?;
    let id = id.trim_ascii().to_vec();
    (!id.is_empty()).then_some(id)
}

/// The kernel's host name, as `uname -n` prints it.
fn host_name() -> Vec<u8> {
    let name = std::fs::read("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim_ascii().to_vec()
}
