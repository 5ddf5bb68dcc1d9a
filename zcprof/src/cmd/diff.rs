//! `zcprof diff BEFORE AFTER`: compare two recordings (see `zcprof_recording::diff`) and
//! print the verdict and the figures that changed, as text, Markdown or JSON.
//!
//! Exit status, as diff(1): 0 when no `--fail-if` condition holds, 1 when one does, 2 for
//! trouble (a file missing, unreadable, damaged, of another kind or version), always with
//! one line on stderr. 2 also when a `--fail-if` cannot be judged because the diff is
//! inconclusive (no sound unit of work): the diff is still printed, and stderr says why,
//! so a CI gate never passes (0) or fails (1) on figures that compare nothing. Needs no
//! privileges: it only reads files.

use std::{path::PathBuf, process::ExitCode};

use zcprof_recording::{
    Recording,
    diff::{
        self, Unit, render,
        threshold::{Evaluation, Threshold},
    },
    parse,
};

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
}

/// Exit status when the diff itself could not be made.
const TROUBLE: u8 = 2;

pub fn run(opts: DiffOptions) -> ExitCode {
    match compare(&opts) {
        Ok((output, Gate::Unjudged(why))) => {
            print!("{output}");
            eprintln!("zcprof: cannot judge --fail-if: the diff is inconclusive ({why})");
            ExitCode::from(TROUBLE)
        }
        Ok((output, Gate::Failed)) => {
            print!("{output}");
            ExitCode::FAILURE
        }
        Ok((output, Gate::Passed)) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(line) => {
            eprintln!("zcprof: {line}");
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
    let before = load(&opts.before)?;
    let after = load(&opts.after)?;
    let unit = match opts.per_bytes_delivered {
        Some(n) => Unit::PerBytesDelivered(n),
        None => Unit::FromRecordings,
    };
    let d = diff::diff(&before, &after, unit).map_err(|e| e.to_string())?;
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

fn load(path: &PathBuf) -> Result<Recording, String> {
    let bytes = std::fs::read(path).map_err(|err| {
        let why = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
            _ => err.to_string(),
        };
        format!("cannot read {}: {why}", path.display())
    })?;
    parse(&bytes).map_err(|err| format!("{}: {err}", path.display()))
}
