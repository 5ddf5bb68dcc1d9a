//! `zcprof flame RECORDING -o copies.svg`: a flame graph of the bytes a recording's stacks
//! copied (`record --stacks`), or with `--zero-copy` of the bytes they moved without a
//! copy; `--folded` writes the folded-stack text other tools read instead; `--diff BEFORE
//! AFTER` a differential flame graph (what grew red, what shrank blue).
//!
//! Each stack's root is its process's name (so that two recordings' stacks line up
//! whatever their pids), its leaf the syscall (`read()`), and its weight its estimated
//! bytes. Exit status 0, or 2 with one line on stderr (a recording missing, damaged, or
//! made without `--stacks`; the output not writable). Needs no privileges.

use std::{path::PathBuf, process::ExitCode};

use zcprof_recording::{Family, Recording, StackRecord, Stacks};

use crate::{atomic, cmd::diff, stacks::flame, stdio::say};

pub struct FlameOptions {
    /// One recording, or two with `diff` (before, after).
    pub recordings: Vec<PathBuf>,
    pub diff: bool,
    /// Zero-copy bytes instead of copied ones.
    pub zero_copy: bool,
    /// Folded text instead of an SVG.
    pub folded: bool,
    pub output: PathBuf,
    pub max_size: u64,
}

/// Exit status when the graph could not be made.
const TROUBLE: u8 = 2;

pub fn run(opts: FlameOptions) -> ExitCode {
    match make(&opts)
        .and_then(|bytes| atomic::write(&opts.output, &bytes).map_err(|err| format!("{err:#}")))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            say!("zcprof: {line}");
            ExitCode::from(TROUBLE)
        }
    }
}

fn make(opts: &FlameOptions) -> Result<Vec<u8>, String> {
    let stacks = opts
        .recordings
        .iter()
        .map(|path| {
            let recording = diff::load(path, opts.max_size)?;
            let folded = folded(&recording, opts.zero_copy).ok_or_else(|| {
                format!(
                    "{} has no stacks: record it with `zcprof record --stacks`",
                    path.display()
                )
            })?;
            Ok(folded)
        })
        .collect::<Result<Vec<String>, String>>()?;
    let what = if opts.zero_copy {
        "zero-copy bytes"
    } else {
        "copied bytes"
    };
    match (opts.diff, stacks.as_slice()) {
        (false, [one]) if opts.folded => Ok(one.clone().into_bytes()),
        (false, [one]) => flame::svg(one, &format!("zcprof: {what} by call stack"), "bytes")
            .map_err(|err| format!("cannot draw the flame graph: {err:#}")),
        (true, [before, after]) if opts.folded => {
            Ok(flame::diff_folded(before, after).into_bytes())
        }
        (true, [before, after]) => flame::diff_svg(
            before,
            after,
            &format!("zcprof: {what} by call stack, before → after (red: more, blue: fewer)"),
        )
        .map_err(|err| format!("cannot draw the differential flame graph: {err:#}")),
        _ => Err("give one recording, or two (before, after) with --diff".into()),
    }
}

/// The folded stacks of `recording`'s copied bytes (zero-copy ones with `zero_copy`);
/// `None` when it was made without `--stacks`.
pub fn folded(recording: &Recording, zero_copy: bool) -> Option<String> {
    let stacks: &Stacks = recording.stacks.as_ref()?;
    Some(flame::folded(
        stacks
            .stacks
            .iter()
            .filter(|s| is_zero_copy(s) == zero_copy)
            .map(|s| (root_first(s), s.bytes)),
    ))
}

fn is_zero_copy(s: &StackRecord) -> bool {
    matches!(s.family, Family::ZeroCopy | Family::ZeroCopyRequested)
}

/// `comm;main;…;copy_file;read()`: the process, its frames outermost first, the syscall.
fn root_first(s: &StackRecord) -> Vec<String> {
    std::iter::once(s.comm.clone())
        .chain(s.frames.iter().rev().map(|f| f.name()))
        .chain(std::iter::once(format!("{}()", s.syscall)))
        .collect()
}
