//! What the terminal on stderr is, if there is one.

use std::os::fd::AsRawFd;

/// Whether stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stderr()).unwrap_or(false)
}

/// The width of the terminal on stderr in columns, if it says.
pub fn stderr_width() -> Option<usize> {
    // SAFETY: `winsize` is plain C data of integers, for which all-zero is a valid value.
    let mut size: nix::libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which is valid for the
    // call; on a descriptor that is not a terminal it fails and writes nothing.
    let status = unsafe {
        nix::libc::ioctl(
            std::io::stderr().as_raw_fd(),
            nix::libc::TIOCGWINSZ,
            &raw mut size,
        )
    };
    (status == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}
