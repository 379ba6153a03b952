//! The one error type of backupbox and the exit code each kind of failure maps to.

use std::fmt;
use std::io;

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status for an error that was logged.
pub const EXIT_FAILED: i32 = 1;
/// Exit status for a command line that could not be understood.
pub const EXIT_USAGE: i32 = 2;

/// How a failure is classified for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command line was wrong (exit 2).
    Usage,
    /// The command was understood but could not be carried out (exit 1).
    Failed,
}

/// A failure that ends a command.
///
/// `message` is the text that follows `Error: ` in the log, exactly as the spec words it.
/// `detail` is the underlying reason; it goes to stderr (and never changes the spec's log line).
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub detail: Option<String>,
    /// The failure was already written to the log where it happened; only stderr still needs it.
    pub logged: bool,
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Failed,
            message: message.into(),
            detail: None,
            logged: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Usage,
            message: message.into(),
            detail: None,
            logged: false,
        }
    }

    /// A failure whose log lines were written where it happened.
    pub fn logged(message: impl Into<String>) -> Self {
        Error {
            logged: true,
            ..Error::failed(message)
        }
    }

    /// Attaches the underlying reason, shown on stderr.
    pub fn because(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => EXIT_USAGE,
            Kind::Failed => EXIT_FAILED,
        }
    }

    /// The line written to stderr: the log message plus the reason when there is one.
    pub fn stderr_line(&self) -> String {
        match &self.detail {
            Some(detail) => format!("Error: {}: {}", self.message, detail),
            None => format!("Error: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stderr_line())
    }
}

/// Shorthand used where an I/O failure becomes a logged error with a fixed message.
pub trait Context<T> {
    fn context(self, message: impl Into<String>) -> Result<T, Error>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|err| Error::failed(message).because(err))
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|err| Error::failed(message).because(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
