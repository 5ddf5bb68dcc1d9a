//! What the collector hands the model: owned, decoded values with no aya types in them.

use std::time::Instant;

use serde::Serialize;
use zcprof_common::{Counts, Key};

use crate::probes::Layer;

/// A process lifecycle record from the kernel (see `zcprof_common::event_kind`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// `parent` created process `child` (threads are not reported); `followed` when the
    /// kernel follows the child (its parent was followed: `zcprof_common::FOLLOWED_MAP`).
    Fork {
        parent: u32,
        child: u32,
        comm: String,
        followed: bool,
        /// The parent's cgroup v2 id, which the child starts in (0: unknown).
        cgroup: u64,
    },
    /// `tgid` executed a program now called `comm`; `followed` is `Some(parent)` when the
    /// kernel follows it.
    Exec {
        tgid: u32,
        comm: String,
        followed: Option<u32>,
        /// Its cgroup v2 id at the exec (0: unknown).
        cgroup: u64,
    },
    /// The final counts of one slot of a counting layer (an index into its table) of
    /// exiting process `tgid`.
    Final {
        tgid: u32,
        layer: Layer,
        slot: u32,
        counts: Box<Counts>,
        /// The exiting task's name (for the threads layer, the thread's).
        comm: String,
    },
    /// Process `tgid` ended, named `comm` at its exit; `followed` is `Some(parent)` when the
    /// kernel followed it (the parent it was followed from).
    Exit {
        tgid: u32,
        comm: String,
        followed: Option<u32>,
        /// Its cgroup v2 id at the exit (0: unknown).
        cgroup: u64,
    },
}

/// What the kernel side could not record, cumulative since the object was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelCounters {
    /// Ring-buffer records dropped because the buffer was full.
    pub ringbuf_full: u64,
    /// Calls not counted because a layer's per-process map was full.
    pub stats_map_full: u64,
    /// recvmmsg/sendmmsg calls whose message lengths could not be read.
    pub mmsg_unreadable: u64,
    /// recvmmsg/sendmmsg exits seen without their enter (tracepoint mode).
    pub mmsg_no_enter: u64,
    /// Calls whose arguments could not be kept from entry to exit (a per-thread stash map
    /// was full), so their bytes are not counted; also calls whose flow or thread split was
    /// lost in the hand-off to its callback (the task was preempted in between).
    pub stash_full: u64,
    /// Children of followed processes that could not be followed (the followed-process map
    /// was full): left out of `record --pid`/`-- CMD` and `run`.
    pub follow_full: u64,
    /// io_uring completions whose submission was not seen: not counted.
    pub io_uring_unmatched: u64,
    /// Stack samples the kernel could not send (`--stacks`; its ring buffer was full). Not
    /// in [`KernelCounters::lost`]: no count is missing, only part of the stacks layer's
    /// estimate, which reports it itself.
    #[serde(skip)]
    pub stack_lost: u64,
}

impl KernelCounters {
    /// Events lost in total: the number users must see.
    pub fn lost(&self) -> u64 {
        self.ringbuf_full
            + self.stats_map_full
            + self.mmsg_unreadable
            + self.mmsg_no_enter
            + self.stash_full
            + self.follow_full
            + self.io_uring_unmatched
    }
}

/// One collection round.
#[derive(Clone, Debug)]
pub struct Batch {
    /// When the maps were read.
    pub at: Instant,
    /// Lifecycle records in the order the kernel wrote them.
    pub events: Vec<ProcEvent>,
    /// Every counting layer's map (`STATS`, `KSTATS`, …): cumulative totals of live
    /// processes.
    pub counts: Vec<(Layer, Key, Counts)>,
    pub counters: KernelCounters,
    /// Ring-buffer records that could not be decoded (cumulative).
    pub malformed: u64,
    /// Made on request (`Control::Flush`) rather than by the timer.
    pub flushed: bool,
    /// zcprof's programs' run time and runs (cumulative), when BPF statistics are on.
    pub probe_runs: Option<crate::probe_stats::Counters>,
}

#[cfg(test)]
impl Batch {
    /// A round at `at` that read nothing, for tests to fill in what they need.
    pub fn empty(at: Instant) -> Batch {
        Batch {
            at,
            events: Vec::new(),
            counts: Vec::new(),
            counters: KernelCounters::default(),
            malformed: 0,
            flushed: false,
            probe_runs: None,
        }
    }
}
