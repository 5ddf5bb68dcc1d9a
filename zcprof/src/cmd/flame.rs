//! `zcprof flame RECORDING -o copies.svg`: a flame graph of the bytes a recording's stacks
//! copied (`record --stacks`), or with `--zero-copy` of the bytes they moved without a
//! copy; `--folded` writes the folded-stack text other tools read instead; `--diff BEFORE
//! AFTER` a differential flame graph (what grew red, what shrank blue); `--kernel` draws the
//! kernel layer's stacks (`--kernel-stacks`: each user stack continued by the kernel stack
//! at the copy) instead of the syscall layer's. The two are never drawn together: they
//! apportion the same bytes twice.
//!
//! Each stack's root is its process's name (so that two recordings' stacks line up
//! whatever their pids), its leaf the syscall (`read()`), and its weight its estimated
//! bytes. Exit status 0, or 2 with one line on stderr (a recording missing, damaged, or
//! made without `--stacks`; the output not writable). Needs no privileges.

use std::{path::PathBuf, process::ExitCode};

use zcprof_recording::{Family, Recording, StackLayer, StackRecord, Stacks};

use crate::{atomic, cmd::diff, stacks::flame, stdio::say};

pub struct FlameOptions {
    /// One recording, or two with `diff` (before, after).
    pub recordings: Vec<PathBuf>,
    pub diff: bool,
    /// Zero-copy bytes instead of copied ones.
    pub zero_copy: bool,
    /// The kernel layer's stacks instead of the syscall layer's.
    pub kernel: bool,
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
            let layer = if opts.kernel {
                StackLayer::Kernel
            } else {
                StackLayer::Syscall
            };
            let folded = folded(&recording, opts.zero_copy, layer).ok_or_else(|| {
                if opts.kernel {
                    format!(
                        "{} has no kernel stacks: record it with `zcprof record --stacks --kernel-stacks` on a kernel where the kernel layer attaches",
                        path.display()
                    )
                } else {
                    format!(
                        "{} has no stacks: record it with `zcprof record --stacks`",
                        path.display()
                    )
                }
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

/// The folded stacks of `recording`'s copied bytes (zero-copy ones with `zero_copy`) at
/// `layer`; `None` when it was made without `--stacks` (for the kernel layer: when it has
/// no kernel stack at all).
pub fn folded(recording: &Recording, zero_copy: bool, layer: StackLayer) -> Option<String> {
    folded_stacks(recording.stacks.as_ref()?, zero_copy, layer)
}

fn folded_stacks(stacks: &Stacks, zero_copy: bool, layer: StackLayer) -> Option<String> {
    let mut of_layer = stacks.stacks.iter().filter(|s| s.layer == layer).peekable();
    if layer == StackLayer::Kernel && of_layer.peek().is_none() {
        return None;
    }
    Some(flame::folded(
        of_layer
            .filter(|s| is_zero_copy(s) == zero_copy)
            .map(|s| (root_first(s), s.bytes)),
    ))
}

fn is_zero_copy(s: &StackRecord) -> bool {
    matches!(s.family, Family::ZeroCopy | Family::ZeroCopyRequested)
}

/// `comm;main;…;copy_file;read()`: the process, its frames outermost first, the syscall.
/// A kernel-layer stack ends in its kernel frames instead, marked `_[k]` as perf's and
/// FlameGraph's kernel frames are (inferno colours them apart): `…;read;vfs_read_[k];…`.
fn root_first(s: &StackRecord) -> Vec<String> {
    let user = std::iter::once(s.comm.clone()).chain(s.frames.iter().rev().map(|f| f.name()));
    match s.layer {
        StackLayer::Syscall => user
            .chain(std::iter::once(format!("{}()", s.syscall)))
            .collect(),
        StackLayer::Kernel => user
            .chain(
                s.kernel_frames
                    .iter()
                    .rev()
                    .map(|f| format!("{}_[k]", f.name())),
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use zcprof_recording::{Direction, FrameRecord};

    use super::*;

    fn frame(function: &str, module: &str) -> FrameRecord {
        FrameRecord {
            function: Some(function.into()),
            file: None,
            line: None,
            module: module.into(),
            offset: 0x10,
        }
    }

    fn stack(layer: StackLayer, syscall: &str, kernel: &[&str], bytes: u64) -> StackRecord {
        StackRecord {
            pid: 7,
            comm: "demo".into(),
            thread: "demo".into(),
            layer,
            syscall: syscall.into(),
            family: Family::Copy,
            direction: Direction::K2u,
            samples: bytes >> 20,
            bytes,
            truncated: false,
            call_site: String::new(),
            frames: vec![frame("read", "/libc.so.6"), frame("main", "/demo")],
            kernel_frames: kernel.iter().map(|f| frame(f, "[kernel]")).collect(),
        }
    }

    #[test]
    fn each_layer_draws_only_its_own_stacks_and_kernel_frames_are_marked() {
        let mut stacks = Stacks {
            period_bytes: 1 << 20,
            stacks: vec![
                stack(StackLayer::Syscall, "read", &[], 3 << 20),
                stack(
                    StackLayer::Kernel,
                    "_copy_to_user",
                    &["_copy_to_user", "filemap_read", "vfs_read"],
                    2 << 20,
                ),
            ],
            ..Stacks::default()
        };
        assert_eq!(
            folded_stacks(&stacks, false, StackLayer::Syscall).as_deref(),
            Some("demo;main;read;read() 3145728\n")
        );
        assert_eq!(
            folded_stacks(&stacks, false, StackLayer::Kernel).as_deref(),
            Some("demo;main;read;vfs_read_[k];filemap_read_[k];_copy_to_user_[k] 2097152\n")
        );
        // No kernel stacks at all: the kernel graph cannot be drawn (one line, exit 2).
        stacks.stacks.pop();
        assert_eq!(folded_stacks(&stacks, false, StackLayer::Kernel), None);
    }
}
