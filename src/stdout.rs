//! Everything printed on stdout goes through here. A closed pipe (`| head -1`) ends the
//! output quietly, as it ends GNU tools, instead of panicking or failing the command.

use crate::error::{Error, Result};
use std::io::Write;

/// Writes `bytes` to stdout and flushes them.
pub fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::failed("can't write to stdout").because(err))
        }
        _ => Ok(()),
    }
}

/// [`print`] of one line.
pub fn print_line(line: &str) -> Result<()> {
    print(format!("{line}\n").as_bytes())
}
