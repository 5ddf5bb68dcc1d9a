//! The zcprof recording format and what is computed from recordings, with no I/O and no
//! kernel types, so that it is unit-tested and fuzzed on its own:
//! - [`format`]: the `zcprof.recording/v1` document (also the per-process figure objects of
//!   `zcprof run --json`), described by `schema/recording.v1.json`;
//! - [`parse`]: a strict parser that says in one line what is wrong with a file;
//! - [`diff`]: before → after comparison, verdict, regressions and `--fail-if` thresholds.
//!
//! Invariant: everything a v1 reader needs is in the v1 fields; a newer zcprof may add
//! fields (e.g. the `kernel` layer under `layers`) and readers keep them without failing.

pub mod diff;
#[cfg(test)]
mod fixture;
pub mod format;
pub mod parse;

pub use format::{
    Bucket, CallSite, Direction, Entry, Family, FrameRecord, Layer, LayerTotals, Layers, Lost,
    MsgZerocopy, ProbeLayer, ProcessRecord, Recording, SortedMap, StackLayer, StackRecord, Stacks,
    Target, ThreadRecord, Total, WOULD_BLOCK, Workload, WorkloadKind, command_line, errno_summary,
    sampling_error, would_block,
};
pub use parse::{ParseError, parse};
