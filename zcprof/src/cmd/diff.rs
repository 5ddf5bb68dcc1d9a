//! `zcprof diff BEFORE AFTER`: compare two recordings (see `zcprof_recording::diff`) and
//! print the verdict and the figures that changed, as text, Markdown or JSON.
//!
//! Exit status, as diff(1): 0 when no `--fail-if` condition holds, 1 when one does, 2 for
//! trouble (a file missing, unreadable, damaged, of another kind or version), always with
//! one line on stderr. 2 also when a `--fail-if` cannot be judged because the diff is
//! inconclusive (no sound unit of work): the diff is still printed, and stderr says why,
//! so a CI gate never passes (0) or fails (1) on figures that compare nothing. 2 as well
//! when the diff cannot be written to stdout (a closed pipe: 141, quietly). Needs no
//! privileges: it only reads files.
//!
//! Input is bounded: only regular files are read (a link to `/dev/zero` or a FIFO is
//! refused, not read until memory runs out), at most `--max-size` bytes each
//! ([`DEFAULT_MAX_SIZE`] unless raised), and parsed without a second copy in memory
//! (`zcprof_recording::parse`).

use std::{
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    process::ExitCode,
};

use zcprof_recording::{
    Recording,
    diff::{
        self, Unit, render,
        threshold::{Evaluation, Threshold},
    },
    parse,
};

use crate::stdio::{self, say};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub struct DiffOptions {
    pub before: PathBuf,
    pub after: PathBuf,
    /// Normalise per delivered byte (both runs delivered this many), not per second.
    pub per_bytes_delivered: Option<u64>,
    pub fail_if: Vec<Threshold>,
    pub format: Format,
    /// Refuse a recording larger than this many bytes.
    pub max_size: u64,
    /// `--only`: compare only these processes (a cgroup path, a command or a name).
    pub only: Option<String>,
}

/// The largest recording `diff` reads unless `--max-size` says otherwise: 256 MiB (a
/// recording of 10,000 processes is a few MB; 200 MB parses in seconds).
pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;

/// Exit status when the diff itself could not be made.
const TROUBLE: u8 = 2;

pub fn run(opts: DiffOptions) -> ExitCode {
    match compare(&opts) {
        Ok((output, gate)) => {
            if let Err(err) = stdio::print(&output) {
                // An unwritten diff is trouble (2), never a pass or a fail.
                if let stdio::OutputError::Failed { .. } = err {
                    say!("zcprof: {err}");
                }
                return err.exit_code(TROUBLE);
            }
            match gate {
                Gate::Unjudged(why) => {
                    say!("zcprof: cannot judge --fail-if: the diff is inconclusive ({why})");
                    ExitCode::from(TROUBLE)
                }
                Gate::Failed => ExitCode::FAILURE,
                Gate::Passed => ExitCode::SUCCESS,
            }
        }
        Err(line) => {
            say!("zcprof: {line}");
            ExitCode::from(TROUBLE)
        }
    }
}

/// What the `--fail-if` conditions say.
enum Gate {
    Passed,
    Failed,
    /// The diff is inconclusive, for this reason.
    Unjudged(String),
}

/// The rendered diff and the gate, or one line saying why there is no diff.
fn compare(opts: &DiffOptions) -> Result<(String, Gate), String> {
    let before = load(&opts.before, opts.max_size)?;
    let after = load(&opts.after, opts.max_size)?;
    let unit = match opts.per_bytes_delivered {
        Some(n) => Unit::PerBytesDelivered(n),
        None => Unit::FromRecordings,
    };
    let (before, after, restricted) = match &opts.only {
        None => (before, after, None),
        Some(selector) => {
            let (b, a) = (diff::only(&before, selector), diff::only(&after, selector));
            if b.processes.is_empty() && a.processes.is_empty() {
                return Err(format!(
                    "--only {selector} matches no recorded process in either recording (a cgroup path starts with /; a command is as the diff names it, e.g. `nginx > nginx`, or a process name)"
                ));
            }
            let note = format!(
                "restricted to --only {selector}: {} of {} processes before, {} of {} after",
                b.processes.len(),
                before.processes.len(),
                a.processes.len(),
                after.processes.len()
            );
            (b, a, Some((selector.clone(), note)))
        }
    };
    let mut d = diff::diff(&before, &after, unit).map_err(|e| e.to_string())?;
    if let Some((selector, note)) = restricted {
        d.verdict = format!("{} [only {selector}]", d.verdict);
        d.warnings.insert(0, note);
    }
    let evaluations = opts
        .fail_if
        .iter()
        .map(|t| t.evaluate(&d).map_err(|e| format!("--fail-if {e}")))
        .collect::<Result<Vec<Evaluation>, String>>()?;
    let gate = match &d.inconclusive {
        Some(why) if !evaluations.is_empty() => Gate::Unjudged(why.clone()),
        _ if evaluations.iter().any(|e| e.held == Some(true)) => Gate::Failed,
        _ => Gate::Passed,
    };
    let output = match opts.format {
        Format::Text => render::text(&d, &evaluations),
        Format::Markdown => render::markdown(&d, &evaluations),
        Format::Json => {
            let mut s = render::json(&d, &evaluations);
            s.push('\n');
            s
        }
    };
    Ok((output, gate))
}

/// Reads and parses one recording: a regular file of at most `max_size` bytes.
pub(crate) fn load(path: &Path, max_size: u64) -> Result<Recording, String> {
    let cannot = |why: String| format!("cannot read {}: {why}", path.display());
    let io_why = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => err.to_string(),
    };
    let refuse = |meta: &std::fs::Metadata| match not_a_file(meta) {
        Some(what) => Err(cannot(format!(
            "it is {what}, and recordings are read only from regular files"
        ))),
        None => Ok(()),
    };
    // Refused before it is opened: opening a device can act (a watchdog starts counting, a
    // tape rewinds), and zcprof may run as root.
    refuse(&std::fs::metadata(path).map_err(|e| cannot(io_why(e)))?)?;
    // Whatever is there now is checked again on the descriptor; O_NONBLOCK so that a FIFO
    // swapped in meanwhile is refused rather than waited on.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| cannot(io_why(e)))?;
    let meta = file.metadata().map_err(|e| cannot(io_why(e)))?;
    refuse(&meta)?;
    let too_big = |size: u64| {
        cannot(format!(
            "it is {}, more than the {} that diff reads (--max-size raises the limit)",
            crate::units::bytes(size as f64),
            crate::units::bytes(max_size as f64)
        ))
    };
    if meta.len() > max_size {
        return Err(too_big(meta.len()));
    }
    // The file may grow after the check: never read more than the limit allows.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(io_why(e)))?;
    if bytes.len() as u64 > max_size {
        return Err(too_big(bytes.len() as u64));
    }
    parse(&bytes).map_err(|err| format!("{}: {err}", path.display()))
}

/// What `meta` describes when it is not a regular file ("a FIFO"), or `None`.
fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else {
        Some("a socket")
    }
}
