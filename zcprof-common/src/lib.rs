//! Types and constants shared by the eBPF programs (`zcprof-ebpf`) and user space (`zcprof`).
//!
//! Everything that crosses the kernel boundary is `#[repr(C)]`, `Copy`, has its padding
//! spelled out as named fields, holds no `bool`/`Option`/enum, and carries a `const` size
//! assertion, so that both sides agree on the layout byte for byte.

#![no_std]

#[cfg(test)]
extern crate std;

pub mod cpu;
pub mod errno;
pub mod files;
pub mod flows;
pub mod hist;
pub mod io_uring;
pub mod kernel;
pub mod mapped;
pub mod stacks;
pub mod syscalls;
pub mod threads;
pub mod user;

/// Name of the ring buffer that carries process lifecycle events and final totals.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU array of health counters (see [`counter`]).
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the hash map of followed processes, `tgid -> parent tgid`: the processes that
/// `record --pid`, `record -- CMD` and `run` follow. User space seeds it with its targets
/// and their descendants at attach; `task_newtask` adds every child a followed process
/// forks; `process_exit` removes the exiting process. Membership is thus decided in the
/// kernel, at fork, and never has to be guessed later from a parent pid that a reaped
/// process no longer has.
pub const FOLLOWED_MAP: &str = "FOLLOWED";
/// Capacity of [`FOLLOWED_MAP`]; a fork that finds it full is counted
/// ([`counter::FOLLOW_FULL`]) and that child is not followed.
pub const FOLLOWED_ENTRIES: u32 = 16_384;

/// Ids of the layers whose counts cross the kernel boundary: the `layer` of their
/// [`event_kind::FINAL`] records. User space maps each to its layer through its table of
/// layers (`zcprof/src/probes.rs`).
pub mod layer {
    /// The syscall layer ([`crate::syscalls::COUNTING`]).
    pub const SYSCALL: u32 = 0;
    /// The kernel layer ([`crate::kernel::COUNTING`]).
    pub const KERNEL: u32 = 1;
    /// The io_uring layer ([`crate::io_uring::COUNTING`]).
    pub const IO_URING: u32 = 2;
    /// The mapped layer ([`crate::mapped::COUNTING`]).
    pub const MAPPED: u32 = 3;
    /// The flows layer ([`crate::flows::COUNTING`]).
    pub const FLOWS: u32 = 4;
    /// The threads layer ([`crate::threads::COUNTING`]).
    pub const THREADS: u32 = 5;
    /// The user layer ([`crate::user::COUNTING`]).
    pub const USER: u32 = 6;
    /// The cpu layer ([`crate::cpu::COUNTING`]).
    pub const CPU: u32 = 7;
}

/// What both sides agree on about a layer that counts per `(process, slot)` in a hash map
/// of [`Counts`]: every counting layer's common module defines one (`syscalls::COUNTING`,
/// `kernel::COUNTING`), and user space reads, forgets and decodes generically from it.
#[derive(Clone, Copy, Debug)]
pub struct Counting {
    /// Its [`layer`] id.
    pub layer: u32,
    /// Name of its `Key -> Counts` hash map.
    pub map: &'static str,
    /// Slots per process: every `Key::slot` is below this (an index into the layer's table).
    pub slots: usize,
    /// Its own `sched:sched_process_exit` program, which moves an exiting process's entries
    /// into [`event_kind::FINAL`] records; `None` when [`program::PROCESS_EXIT`] does it
    /// before the `EXIT` record (the syscall layer). A program of its own runs after
    /// `PROCESS_EXIT`, so its records may follow the process's `EXIT` record.
    pub exit_flush: Option<&'static str>,
}

/// The lifecycle programs' names, as the `#[...]` macros in `zcprof-ebpf` export them (each
/// counting layer names its own programs in its module: `syscalls::program`,
/// `kernel::program`).
pub mod program {
    /// `task:task_newtask`: a new process (threads are filtered out in the kernel).
    pub const TASK_NEWTASK: &str = "task_newtask";
    /// `sched:sched_process_exec`.
    pub const PROCESS_EXEC: &str = "process_exec";
    /// `sched:sched_process_exit`: flushes the process's syscall-layer totals, then reports
    /// the exit.
    pub const PROCESS_EXIT: &str = "process_exit";
}

/// The benchmark's floor (`cargo xtask bench`, condition "empty hook"): programs that do
/// nothing, on the hooks zcprof's default layers run on at every event, loaded by `zcbench
/// empty-hook` only. What zcprof adds beyond them is zcprof's own work.
pub mod floor {
    /// `tp_btf/sys_exit` (the syscall layer's default hook), returning at once.
    pub const EMPTY_SYS_EXIT: &str = "empty_sys_exit";
    /// A tracepoint program returning at once, on the io_uring layer's submit and complete
    /// tracepoints.
    pub const EMPTY_TRACEPOINT: &str = "empty_tracepoint";
}

/// Names of the read-only globals that user space sets before loading (tracepoint field
/// offsets read from tracefs, so the programs do not hard-code one kernel's layout).
pub mod global {
    /// Offset of `pid` in `task:task_newtask`.
    pub const NEWTASK_PID_OFFSET: &str = "NEWTASK_PID_OFFSET";
    /// Offset of `clone_flags` in `task:task_newtask`.
    pub const NEWTASK_FLAGS_OFFSET: &str = "NEWTASK_FLAGS_OFFSET";
    /// Offset of `group_dead` in `sched:sched_process_exit`, or 0 where the kernel has no
    /// such field (before 6.16): the programs then treat the group leader's exit as the end.
    pub const EXIT_GROUP_DEAD_OFFSET: &str = "EXIT_GROUP_DEAD_OFFSET";
}

/// Indexes into the `COUNTERS` per-CPU array: what the kernel side could not do.
pub mod counter {
    /// A ring-buffer record could not be reserved (buffer full): a lost event.
    pub const RINGBUF_FULL: u32 = 0;
    /// A `(tgid, slot)` entry could not be created because its layer's map (`STATS`,
    /// `KSTATS`) was full.
    pub const STATS_FULL: u32 = 1;
    /// recvmmsg/sendmmsg message lengths could not be read from user memory.
    pub const MMSG_UNREADABLE: u32 = 2;
    /// A recvmmsg/sendmmsg exit arrived without its enter (tracepoint mode only).
    pub const MMSG_NO_ENTER: u32 = 3;
    /// A call's arguments could not be kept from entry to exit because the per-thread stash
    /// map was full (`MMSG_ARGS` in tracepoint mode, the kernel layer's `COPY_ARGS`): that
    /// call's bytes are not counted. (A recvmmsg/sendmmsg counted here then also finds no
    /// enter at its exit, counted in [`MMSG_NO_ENTER`].)
    pub const STASH_FULL: u32 = 4;
    /// A followed process forked a child that could not be followed because the
    /// `FOLLOWED` map was full: that child (and what it forks) is left out of `record --pid`
    /// / `-- CMD` and `run`, and `run` does not wait for it.
    pub const FOLLOW_FULL: u32 = 5;
    /// An io_uring completion whose submission the io_uring layer did not see (the request
    /// was in flight when zcprof attached, or its in-flight entry was evicted): its call and
    /// bytes are not counted, not guessed.
    pub const IO_URING_UNMATCHED: u32 = 6;
    /// A stack sample could not be reserved in `STACK_EVENTS` (buffer full): the stacks
    /// layer's estimate misses it; the counts are unaffected.
    pub const STACK_LOST: u32 = 7;
    /// How many counters there are.
    pub const COUNT: u32 = 8;
}

/// Size of the `EVENTS` ring buffer in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;
/// Number of log2 buckets in a size histogram (see [`hist::bucket`]).
pub const HIST_BUCKETS: usize = 32;
// The kernel side masks bucket indexes with `HIST_BUCKETS - 1` to prove them in range.
const _: () = assert!(HIST_BUCKETS.is_power_of_two());
/// Length of a task's `comm`.
pub const COMM_LEN: usize = 16;

/// Key of every counting layer's map: one process and one slot of the layer's table (a
/// syscall for `STATS`, a kernel-layer counter for `KSTATS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    /// Index into the layer's table ([`syscalls::SYSCALLS`], [`kernel::PROBES`]).
    pub slot: u32,
}
const _: () = assert!(core::mem::size_of::<Key>() == 8);

/// What one process did through one counter of a layer (a syscall, a kernel function) since
/// the probes were attached: the value of every counting layer's map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Completed calls (hits), failed ones included.
    pub calls: u64,
    /// Bytes moved: for a syscall the sum of non-negative return values (for
    /// recvmmsg/sendmmsg, of the message lengths); for a kernel probe see its table entry.
    pub bytes: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Successful calls by size, see [`hist::bucket`].
    pub hist: [u64; HIST_BUCKETS],
    /// Failed calls by errno slot ([`errno::NAMES`]), where the layer knows the errno (the
    /// syscall layer; the kernel layer leaves them zero). After `hist` so that the success
    /// path never touches these cache lines.
    pub errno: [u64; errno::SLOTS],
}
const _: () = assert!(core::mem::size_of::<Counts>() == 24 + 8 * HIST_BUCKETS + 8 * errno::SLOTS);

impl Counts {
    pub const ZERO: Counts = Counts {
        calls: 0,
        bytes: 0,
        errors: 0,
        hist: [0; HIST_BUCKETS],
        errno: [0; errno::SLOTS],
    };
}

/// Ring-buffer record kinds (`Event::kind`).
pub mod event_kind {
    /// A new process: `tgid` is the parent, `pid` the child, `comm` the child's (and the
    /// parent's: a child starts with its parent's comm); `parent` is `tgid`, `followed` says
    /// whether the child is followed (its parent was).
    pub const FORK: u32 = 1;
    /// `tgid` executed a new program; `comm` is the new one.
    pub const EXEC: u32 = 2;
    /// Final counts of one slot of an exiting process in one counting layer (`layer`,
    /// `slot`, `counts`). The syscall layer's are sent before that process's `EXIT`; a
    /// layer with an exit program of its own ([`crate::Counting::exit_flush`]) may send
    /// them after it.
    pub const FINAL: u32 = 3;
    /// Process `tgid` ended (its last thread, or its leader on kernels without
    /// `group_dead`); `pid` is the exiting thread, `comm` its name at exit. For a followed
    /// process `followed` is 1 and `parent` the tgid it was followed from (for one seeded by
    /// user space, what user space wrote). Sent after the process's syscall-layer `FINAL`
    /// records and before those of layers with exit programs of their own, which the model
    /// gives to the instance that just ended.
    pub const EXIT: u32 = 4;
}

/// One ring-buffer record. A single fixed layout for every kind keeps decoding trivial;
/// records are rare (process lifecycle), so the unused bytes cost nothing that matters.
///
/// Every lifecycle record (FORK, EXEC, EXIT) carries what attribution needs at that moment
/// (the process, its parent where the kernel side knows it, whether it is followed, and its
/// comm), so a process that exits between two reads of the maps keeps its name and its
/// place in the tree.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// One of [`event_kind`].
    pub kind: u32,
    pub tgid: u32,
    pub pid: u32,
    /// The parent tgid of the process the record is about (FORK: of the child, i.e.
    /// `tgid`; EXEC, EXIT: of `tgid`, from [`FOLLOWED_MAP`]), 0 where unknown (a process
    /// that is not followed).
    pub parent: u32,
    /// 1 when the process the record is about is followed ([`FOLLOWED_MAP`]), else 0.
    pub followed: u32,
    /// FINAL only: the [`layer`] the counts belong to.
    pub layer: u32,
    /// FINAL only: the slot of that layer's table (`Key::slot`).
    pub slot: u32,
    /// Explicit padding, so that `cgroup`, `comm` and `counts` are 8-byte aligned with no
    /// implicit gap.
    pub _pad: u32,
    /// The current task's cgroup v2 id (`bpf_get_current_cgroup_id`: the inode number of its
    /// directory in the cgroup2 filesystem): FORK, the parent's (the child's, unless it was
    /// cloned into another); EXEC and EXIT, the process's.
    pub cgroup: u64,
    pub comm: [u8; COMM_LEN],
    /// FINAL only.
    pub counts: Counts,
}
const _: () = assert!(core::mem::size_of::<Event>() == 56 + core::mem::size_of::<Counts>());

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` integers and arrays with no implicit padding (checked by the
    // size assertions above): every bit pattern is a valid value.
    unsafe impl aya::Pod for super::Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Counts {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::mapped::FileKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::mapped::Mark {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::files::FileBytes {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::cpu::Range {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::cpu::BuildId {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::cpu::FileRanges {}
}
