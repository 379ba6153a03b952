//! The one error type of backupbox, and the exit status of every way a command ends.

use std::error::Error as StdError;
use std::fmt;

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status for a command that failed, or found something that needs attention.
pub const EXIT_FAILED: i32 = 1;
/// Exit status for a command line that could not be understood.
pub const EXIT_USAGE: i32 = 2;

/// How a command that did its work ended. An unhealthy `status` is not an error: the command
/// worked, and its answer is "needs attention".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NeedsAttention,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Done => EXIT_OK,
            Outcome::NeedsAttention => EXIT_FAILED,
        }
    }
}

/// How a failure is classified for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The command line was wrong (exit 2).
    Usage,
    /// The command was understood but could not be carried out (exit 1).
    Failed,
}

type Source = Box<dyn StdError + Send + Sync>;

/// A failure that ends a command.
///
/// Its `Display` is the text that follows `Error: ` in the log, exactly as the spec words
/// it. The source is the underlying reason; it goes to stderr and never changes the log line.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<Source>,
    /// Written to the log where it happened (a backup job logs its own failure before its
    /// `on_failure` hook runs); the command only reports it on stderr.
    logged: bool,
    /// The reason gets a log line of its own after the message, where the message is fixed
    /// by the spec and says nothing by itself (`can't start backup_service`).
    reason_logged: bool,
}

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Failed,
            message: message.into(),
            source: None,
            logged: false,
            reason_logged: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Usage,
            message: message.into(),
            source: None,
            logged: false,
            reason_logged: false,
        }
    }

    /// A failure that is already in the log.
    pub fn already_logged(message: impl Into<String>) -> Self {
        Error {
            logged: true,
            ..Error::failed(message)
        }
    }

    /// The same error, whose reason is logged as a line of its own after it.
    pub fn with_reason_logged(self) -> Self {
        Error {
            reason_logged: true,
            ..self
        }
    }

    /// The log lines of this error: `Error: <message>`, and `Error: <reason>` where the reason
    /// is logged too.
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("Error: {}", self.message)];
        if let (true, Some(reason)) = (self.reason_logged, self.reason()) {
            lines.push(format!("Error: {reason}"));
        }
        lines
    }

    /// Whether the log has it already.
    pub fn is_logged(&self) -> bool {
        self.logged
    }

    /// Attaches the underlying reason (an error, or a sentence), shown on stderr.
    pub fn because(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => EXIT_USAGE,
            Kind::Failed => EXIT_FAILED,
        }
    }

    /// The underlying reason, if there is one.
    pub fn reason(&self) -> Option<String> {
        self.source.as_ref().map(ToString::to_string)
    }

    /// The line written to stderr: the log message plus the reason when there is one.
    pub fn stderr_line(&self) -> String {
        match &self.source {
            Some(source) => format!("Error: {}: {source}", self.message),
            None => format!("Error: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Shorthand used where a system failure becomes an error with a fixed message.
pub trait Context<T> {
    fn context(self, message: impl Into<String>) -> Result<T, Error>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|err| Error::failed(message).because(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_text_stays_apart_from_its_reason() {
        let err = Error::failed("can't find backup_schedules.txt")
            .because(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(err.to_string(), "can't find backup_schedules.txt");
        assert_eq!(
            err.stderr_line(),
            "Error: can't find backup_schedules.txt: entity not found"
        );
        assert!(err.source().is_some());
        assert_eq!(err.exit_code(), EXIT_FAILED);
        assert_eq!(Error::usage("x").exit_code(), EXIT_USAGE);
        assert_eq!(Outcome::NeedsAttention.exit_code(), EXIT_FAILED);
    }
}
