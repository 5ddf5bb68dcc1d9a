//! The library's error type: callers (the CLI, zcprof) branch on bad input versus a
//! failed run, so the kinds are distinct variants. Each message already names its
//! cause, on one line, so the CLI prints it as is (no source chain to append).

use std::io;
use std::path::PathBuf;

use thiserror::Error;

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
