//! The library's error type: callers (the CLI, zcprof) branch on bad input versus a
//! failed run, so the kinds are distinct variants. Each message already names its
//! cause, on one line, so the CLI prints it as is (no source chain to append).

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// `zcprof-demo`'s exit status for a mode this kernel cannot run ([`DemoError::Unsupported`]):
/// callers such as zcprof skip the mode and show the one-line reason.
pub const EXIT_UNSUPPORTED: u8 = 4;

#[derive(Debug, Error)]
pub enum DemoError {
    #[error("unknown scenario '{name}' (known: {known})")]
    UnknownScenario { name: String, known: String },
    #[error("scenario '{scenario}' has no mode '{mode}' (modes: {known})")]
    UnknownMode {
        scenario: String,
        mode: String,
        known: String,
    },
    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
    #[error("needs {needed} bytes of free disk in {} but only {available} are free", dir.display())]
    NotEnoughDisk {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("cannot bind a TCP socket to {addr}: {cause}")]
    Bind { addr: String, cause: io::Error },
    #[error("{what}: {cause}")]
    Setup { what: String, cause: io::Error },
    #[error("worker '{role}' failed: {message}")]
    Worker { role: String, message: String },
    /// The kernel lacks what the mode is about (io_uring, an opcode, a flag): not a failed
    /// run, so the CLI exits with its own status (4) and callers skip the mode.
    #[error("{scenario}/{mode} is not supported by this kernel (Linux {release}): {reason}")]
    Unsupported {
        scenario: &'static str,
        mode: String,
        release: String,
        reason: String,
    },
    #[error("{0}")]
    Run(String),
}

impl DemoError {
    /// Wraps an I/O error from setup work (temp files, sockets, fork) with what was
    /// being attempted.
    pub fn setup(what: impl Into<String>, cause: io::Error) -> Self {
        DemoError::Setup {
            what: what.into(),
            cause,
        }
    }

    /// The error for a mode this kernel cannot run, naming the running kernel.
    pub fn unsupported(scenario: &'static str, mode: &str, reason: impl Into<String>) -> Self {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
        DemoError::Unsupported {
            scenario,
            mode: mode.to_owned(),
            release,
            reason: reason.into(),
        }
    }

    /// True when the kernel cannot run the mode at all (exit status 4).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, DemoError::Unsupported { .. })
    }

    /// True for errors caused by the command line rather than by the run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DemoError::UnknownScenario { .. }
                | DemoError::UnknownMode { .. }
                | DemoError::InvalidInput { .. }
                | DemoError::NotEnoughDisk { .. }
        )
    }
}

pub type Result<T, E = DemoError> = std::result::Result<T, E>;
