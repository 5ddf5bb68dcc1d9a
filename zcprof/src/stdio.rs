//! zcprof's own stdout and stderr, written without ever panicking (`println!` and
//! `eprintln!` panic on any write error: a full disk behind `> file`, `/dev/full`, a closed
//! pipe when SIGPIPE is ignored). The crate denies `clippy::print_stdout`/`print_stderr`, so
//! every print goes through here.
//!
//! - Output a command exists to produce (frames, reports, the catalogue, `run`'s summary on
//!   stderr) returns an [`OutputError`]; `main` turns it into one line on stderr and exit
//!   status 1 (`diff`: 2, its status for trouble).
//! - A reader that went away (`zcprof top --json | head -1`) normally ends zcprof by SIGPIPE
//!   (main restores its default: status 141 in the shell, no message); if SIGPIPE is
//!   ignored or blocked, the write fails with EPIPE instead and zcprof exits 141 quietly
//!   all the same ([`OutputError::Closed`]).
//! - Messages and warnings ([`say!`]) are best effort: when stderr itself cannot be
//!   written there is nowhere left to say so, and the exit status still tells.
//! - Details only `--verbose` asks for are said through [`verbose`], set once by the
//!   command line.

use std::{
    fmt,
    io::{self, Write as _},
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
};

/// `--verbose`: set once by the command line before any command runs.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns on the messages only `--verbose` prints.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Whether `--verbose` was given.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Exit status after a closed pipe, as a shell reports death by SIGPIPE (128 + 13).
pub const CLOSED_PIPE: u8 = 128 + libc::SIGPIPE as u8;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader of stdout or stderr went away.
    #[error("the reader of {0} went away")]
    Closed(&'static str),
    #[error("cannot write to {stream}: {error}")]
    Failed {
        stream: &'static str,
        error: io::Error,
    },
}

impl OutputError {
    fn of(stream: &'static str, error: io::Error) -> OutputError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            OutputError::Closed(stream)
        } else {
            OutputError::Failed { stream, error }
        }
    }

    /// The exit status for this error when a command would otherwise use `trouble`:
    /// quiet 141 for a closed pipe.
    pub fn exit_code(&self, trouble: u8) -> ExitCode {
        match self {
            OutputError::Closed(_) => ExitCode::from(CLOSED_PIPE),
            OutputError::Failed { .. } => ExitCode::from(trouble),
        }
    }
}

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), OutputError> {
    write(&mut io::stdout().lock(), "stdout", &[text.as_bytes()])
}

/// Writes `text` and a newline to stdout and flushes it.
pub fn println(text: &str) -> Result<(), OutputError> {
    write(
        &mut io::stdout().lock(),
        "stdout",
        &[text.as_bytes(), b"\n"],
    )
}

/// Writes `text` and a newline to stderr: for output a command exists to produce there
/// (`run`'s summary), whose loss must show in the exit status.
pub fn eprintln(text: &str) -> Result<(), OutputError> {
    write(
        &mut io::stderr().lock(),
        "stderr",
        &[text.as_bytes(), b"\n"],
    )
}

fn write(
    out: &mut impl io::Write,
    stream: &'static str,
    parts: &[&[u8]],
) -> Result<(), OutputError> {
    parts
        .iter()
        .try_for_each(|part| out.write_all(part))
        .and_then(|()| out.flush())
        .map_err(|e| OutputError::of(stream, e))
}

/// One message line on stderr, best effort (what [`say!`] calls).
pub fn say_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics: a message or warning line on stderr, dropped when stderr
/// cannot be written.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdio::say_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// How `main` ends on an error: one line on stderr (unless stdout's reader went away) and
/// the status for it.
pub fn exit_on_error(err: &anyhow::Error) -> ExitCode {
    if let Some(closed @ OutputError::Closed(_)) = err.downcast_ref::<OutputError>() {
        return closed.exit_code(1);
    }
    say_line(format_args!("zcprof: {err:#}"));
    ExitCode::FAILURE
}
