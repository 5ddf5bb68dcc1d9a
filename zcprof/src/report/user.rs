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

#[cfg(test)]
mod tests {
    use zcprof_common::{hist, user};

    use super::*;

    fn totals() -> Totals<UserSlots> {
        let mut t = Totals::zero();
        let c = &mut t[user::MEMCPY_MEMMOVE as usize];
        c.calls = 3;
        c.bytes = 3 * 4096;
        c.hist[hist::bucket(4096)] = 3;
        t[user::GO_MEMMOVE as usize].calls = 1;
        t[user::GO_MEMMOVE as usize].bytes = 24;
        t[user::GO_MEMMOVE as usize].hist[hist::bucket(24)] = 1;
        t
    }

    #[test]
    fn the_layer_is_its_own_figure_by_routine() {
        let l = layer(&totals());
        assert_eq!(l.totals.calls, 4);
        assert_eq!(
            l.totals.copied_bytes(),
            0,
            "never the syscall layer's copies"
        );
        let e = &l.probes["memcpy/memmove"];
        assert_eq!((e.calls, e.bytes), (3, 12_288));
        assert_eq!(e.family, rec::Family::UserCopy);
        assert_eq!(e.direction, rec::Direction::U2u);
        assert_eq!(l.probes["runtime.memmove"].bytes, 24);
        assert!(
            !l.probes.contains_key("mempcpy"),
            "only routines that counted"
        );
    }

    #[test]
    fn lines_say_bytes_by_routine_and_why_not() {
        let mut out = String::new();
        line(&mut out, &Totals::zero());
        assert!(out.is_empty());
        line(&mut out, &totals());
        assert!(
            out.contains("12,312 B copied inside the process in 4 calls"),
            "{out}"
        );
        assert!(out.contains("memcpy/memmove 12,288 B in 3 calls"), "{out}");
        let mut out = String::new();
        let coverage = [
            ProcessCoverage::of(7, "a".into(), &Coverage::Counted(vec!["mempcpy"])),
            ProcessCoverage::of(
                8,
                "b".into(),
                &Coverage::NotCounted("a static binary".into()),
            ),
        ];
        not_counted_lines(&mut out, &coverage);
        assert_eq!(
            out,
            "user-space copies of process 8 b are not counted: a static binary\n"
        );
    }
}
