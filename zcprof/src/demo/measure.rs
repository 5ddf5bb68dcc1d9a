//! What the profiler attributed to each worker process of one demo run.
//!
//! The demo process forks one worker per role and prints their pids. A pid alone is not
//! an identity (pids are reused), so a worker is looked up only among the instances
//! descended from the demo process that zcprof itself spawned: the fork tree is what
//! makes the match exact even while other demos or other programs run.
//!
//! The layers are carried side by side: the figures of the syscall and io_uring layers
//! (summed, as `run` and `diff` sum them: they never see the same byte, and the demo's
//! ground truth checks both), the io_uring layer's per-opcode totals, and the kernel
//! layer's per-probe totals (which only the profiler sees, and which mean something only
//! with the session's copy role).

use std::collections::BTreeMap;

use zcprof_common::syscalls::{self, Family, Row};
use zcprof_demos::{Counter, Report};

use crate::model::{Counters, Figures, IoUringOps, KernelProbes, Model, ProcId, Totals};
use crate::report::run::MappedFile;

/// One demo run: the demo's own report and what zcprof saw of each of its workers.
#[derive(Clone, Debug)]
pub struct Measured {
    pub report: Report,
    /// In the report's role order.
    pub workers: Vec<WorkerMeasure>,
}

/// One worker (role) of a run, as the profiler saw it.
#[derive(Clone, Debug)]
pub struct WorkerMeasure {
    pub role: String,
    pub pid: u32,
    /// `None` when no instance with this pid descends from the demo process.
    pub seen: Option<Seen>,
}

/// What the profiler counted for one process instance, per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// Its fork was seen (so everything it did was counted).
    pub forked: bool,
    /// Its exit was seen (so its counts are final).
    pub exited: bool,
    /// Non-zero counters only, keyed by the name strace prints (as the demo keys them).
    pub syscalls: BTreeMap<String, Counter>,
    /// The syscall and io_uring layers' figures, summed.
    pub figures: Figures,
    /// Calls of the copy family (read/write/send/recv …, and io_uring's READ/WRITE/…
    /// completions), failed ones included.
    pub copy_calls: u64,
    /// The io_uring layer's counters, per opcode (compared with the demo's ring tally).
    pub io_uring: Totals<IoUringOps>,
    /// The kernel layer's counters, per probe. Kept whole rather than reduced to a copy
    /// figure here: which probes make that figure depends on what attached in the session
    /// (see `probes::copy_source`), which the comparison knows.
    pub kernel: Totals<KernelProbes>,
    /// The mapped layer's pages per file of this process (`None`: the layer did not attach,
    /// so there is nothing to compare the demo's mapped-page tally with).
    pub mapped_files: Option<Vec<MappedFile>>,
}

impl Seen {
    /// The figures of a process's totals in each layer.
    pub fn of(totals: &Counters, forked: bool, exited: bool) -> Seen {
        let mut map = BTreeMap::new();
        let mut copy_calls = 0;
        for (sc, s) in syscalls::SYSCALLS.iter().zip(totals.syscall.slots().iter()) {
            let c = Counter {
                calls: s.calls,
                bytes: s.bytes,
                errors: s.errors,
            };
            if c.is_zero() {
                continue;
            }
            if sc.family == Family::Copy {
                copy_calls += c.calls;
            }
            // The demo tallies each syscall as strace names it: a send's MSG_ZEROCOPY row is
            // that syscall's call too; notifications are not calls (they are compared with
            // the demo's zero-copy tally through `figures.msg_zerocopy`).
            let name = match sc.row {
                Row::Syscall => sc.name,
                Row::ZeroCopyFlag => syscalls::SYSCALLS
                    .iter()
                    .find(|of| of.is_syscall() && of.nr == sc.nr)
                    .map_or(sc.name, |of| of.name),
                Row::Notification { .. } => continue,
            };
            map.entry(name.to_string())
                .or_insert_with(Counter::default)
                .add(&c);
        }
        copy_calls += totals
            .io_uring
            .requests()
            .filter(|(op, _)| op.family == Family::Copy)
            .map(|(_, s)| s.calls)
            .sum::<u64>();
        let mut figures = totals.syscall.figures();
        figures.add(&totals.io_uring.figures());
        Seen {
            forked,
            exited,
            syscalls: map,
            figures,
            copy_calls,
            io_uring: totals.io_uring.clone(),
            kernel: totals.kernel.clone(),
            mapped_files: None,
        }
    }
}

/// Looks up every worker of `report` in the fork tree under `demo` (the demo process's
/// instance; `None` when its fork was not seen, which leaves every worker unseen), with the
/// mapped layer's files (`None` when the layer did not attach).
pub fn measure(
    model: &Model,
    demo: Option<ProcId>,
    report: Report,
    mapped: Option<&[MappedFile]>,
) -> Measured {
    let tree: Vec<ProcId> = demo.map(|root| model.tree(root)).unwrap_or_default();
    let workers = report
        .roles
        .iter()
        .map(|role| {
            let pid = u32::try_from(role.pid).unwrap_or(0);
            // Latest instance first: the tree is in creation order.
            let seen = tree
                .iter()
                .rev()
                .filter(|id| Some(**id) != demo)
                .filter_map(|id| model.process(*id))
                .find(|p| p.tgid == pid)
                .map(|p| Seen {
                    mapped_files: mapped
                        .map(|files| files.iter().filter(|f| f.tgid == pid).cloned().collect()),
                    ..Seen::of(
                        &p.totals,
                        p.origin == crate::model::Origin::Forked,
                        p.exited,
                    )
                });
            WorkerMeasure {
                role: role.role.clone(),
                pid,
                seen,
            }
        })
        .collect();
    Measured { report, workers }
}

#[cfg(test)]
mod tests {
    use zcprof_common::kernel;

    use super::*;

    fn index(name: &str) -> usize {
        syscalls::index_named(name).expect("counted syscall")
    }

    #[test]
    fn seen_keeps_non_zero_counters_by_strace_name() {
        let mut c = Counters::zero();
        let t = &mut c.syscall;
        t[index("read")].calls = 3;
        t[index("read")].bytes = 100;
        t[index("write")].calls = 1;
        t[index("write")].errors = 1;
        t[index("sendfile")].calls = 2;
        t[index("sendfile")].bytes = 50;
        let k = &mut c.kernel;
        k[kernel::id::CHECK_OBJECT_SIZE_TO_USER as usize].calls = 3;
        k[kernel::id::CHECK_OBJECT_SIZE_TO_USER as usize].bytes = 100;
        let s = Seen::of(&c, true, true);
        assert_eq!(
            s.syscalls.keys().collect::<Vec<_>>(),
            ["read", "sendfile", "write"]
        );
        assert_eq!(
            s.syscalls["write"],
            Counter {
                calls: 1,
                bytes: 0,
                errors: 1
            }
        );
        assert_eq!(s.copy_calls, 4);
        assert_eq!(s.figures.copy_k2u_bytes, 100);
        assert_eq!(s.figures.zero_copy_bytes, 50);
        // The kernel layer rides along untouched, not folded into the syscall figures.
        assert_eq!(s.kernel, c.kernel);
    }
}
