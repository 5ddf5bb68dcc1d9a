//! The user layer's views (`--user-copies`): copies inside a process's own memory through
//! its copy routines, by routine, as the run summary, its JSON and recordings show them, and
//! the processes whose routines could not be found, with the reason. Its own figure: no
//! total adds it to the syscall layer's copies.

use serde::Serialize;
use zcprof_recording::{self as rec, Entry, LayerTotals, SortedMap};

use super::figures;
use crate::{
    model::{Totals, UserSlots},
    probes::user::{COST, Coverage},
    units,
};

/// A recording's layer object for the user layer: one entry per routine that counted
/// (family `user_copy`, direction `u2u`), totals with its calls and no copied or zero-copy
/// bytes.
pub fn layer(t: &Totals<UserSlots>) -> rec::Layer {
    rec::Layer {
        copy_source: None,
        totals: LayerTotals {
            calls: t.calls(),
            ..LayerTotals::default()
        },
        syscalls: Default::default(),
        probes: t
            .fired()
            .map(|(name, s)| {
                (
                    name.to_string(),
                    Entry {
                        family: rec::Family::UserCopy,
                        direction: rec::Direction::U2u,
                        calls: s.calls,
                        bytes: s.bytes,
                        errors: 0,
                        errno: Default::default(),
                        hist: figures::buckets(s),
                    },
                )
            })
            .collect(),
    }
}

/// The user layer in the run summary's JSON figures (`--user-copies` only).
#[derive(Serialize)]
pub struct JsonUser {
    /// Bytes the copy routines were asked to copy.
    bytes: u64,
    calls: u64,
    totals: LayerTotals,
    /// Per routine (`memcpy/memmove`, `mempcpy`, `runtime.memmove`, …).
    probes: SortedMap<Entry>,
}

impl JsonUser {
    pub fn of(t: &Totals<UserSlots>) -> JsonUser {
        let layer = layer(t);
        JsonUser {
            bytes: t.bytes(),
            calls: t.calls(),
            totals: layer.totals,
            probes: layer.probes,
        }
    }
}

/// What the user layer saw of one process: the routines it counts, or why none.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProcessCoverage {
    pub pid: u32,
    pub comm: String,
    /// The routines counted (empty when none).
    pub counted: Vec<&'static str>,
    /// Why its copies are not counted; absent when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<String>,
    /// Why it could not be checked (it exited first); absent when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
}

impl ProcessCoverage {
    pub fn of(pid: u32, comm: String, coverage: &Coverage) -> Self {
        let mut c = ProcessCoverage {
            pid,
            comm,
            counted: Vec::new(),
            not_counted: None,
            unchecked: None,
        };
        match coverage {
            Coverage::Counted(names) => c.counted = names.clone(),
            Coverage::NotCounted(why) => c.not_counted = Some(why.clone()),
            Coverage::Unchecked(why) => c.unchecked = Some(why.clone()),
        }
        c
    }
}

/// The run summary's `user_copies` object.
#[derive(Serialize)]
pub struct JsonCoverage<'a> {
    /// What the layer costs (`uprobes, ~1 µs per copy`).
    cost: &'static str,
    processes: &'a [ProcessCoverage],
}

impl<'a> JsonCoverage<'a> {
    pub fn of(processes: &'a [ProcessCoverage]) -> Self {
        JsonCoverage {
            cost: COST,
            processes,
        }
    }
}

/// `  user layer: 4,194,304 B in 1,024 calls (memcpy/memmove 4,194,304 B in 1,024 calls)`,
/// nothing when it counted nothing.
pub fn line(out: &mut String, t: &Totals<UserSlots>) {
    if t.is_zero() {
        return;
    }
    let routines: Vec<String> = t
        .fired()
        .map(|(name, s)| {
            format!(
                "{name} {} B in {} calls",
                units::count(s.bytes),
                units::count(s.calls)
            )
        })
        .collect();
    out.push_str(&format!(
        "  user layer: {} B copied inside the process in {} calls: {} (user-space copies, not syscall copies)\n",
        units::count(t.bytes()),
        units::count(t.calls()),
        routines.join(", "),
    ));
}

/// The processes whose copies the layer does not count, one line each.
pub fn not_counted_lines(out: &mut String, coverage: &[ProcessCoverage]) {
    for c in coverage {
        if let Some(why) = &c.not_counted {
            out.push_str(&format!(
                "user-space copies of process {} {} are not counted: {why}\n",
                c.pid, c.comm
            ));
        }
    }
}
