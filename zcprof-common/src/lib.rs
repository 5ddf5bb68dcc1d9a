//! Types and constants shared by the eBPF programs (`zcprof-ebpf`) and user space (`zcprof`).
//!
//! Everything that crosses the kernel boundary is `#[repr(C)]`, `Copy`, has its padding
//! spelled out as named fields, holds no `bool`/`Option`/enum, and carries a `const` size
//! assertion, so that both sides agree on the layout byte for byte.

#![no_std]

pub mod hist;
pub mod kernel;
pub mod syscalls;

/// Name of the hash map `(tgid, syscall) -> SyscallStats` that the syscall layer fills.
pub const STATS_MAP: &str = "STATS";
/// Name of the ring buffer that carries process lifecycle events and final totals.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU array of health counters (see [`counter`]).
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the hash map that carries recvmmsg/sendmmsg arguments from enter to exit
/// (tracepoint mode only).
pub const MMSG_ARGS_MAP: &str = "MMSG_ARGS";

/// Program names, as the `#[...]` macros in `zcprof-ebpf` export them.
pub mod program {
    /// BTF-enabled raw tracepoint (`tp_btf`) on `sys_exit`: the syscall layer, one program
    /// for every syscall (preferred when the kernel has BTF).
    pub const SYS_EXIT_BTF: &str = "sys_exit_btf";
    /// Raw tracepoint on `sys_exit`: the syscall layer, one program for every syscall.
    pub const SYS_EXIT_RAW: &str = "sys_exit_raw";
    /// Classic tracepoint attached to each `syscalls:sys_exit_*` (fallback mode).
    pub const SYS_EXIT_TP: &str = "sys_exit_tp";
    /// Classic tracepoint on `syscalls:sys_enter_{recvmmsg,sendmmsg}` (fallback mode).
    pub const SYS_ENTER_MMSG_TP: &str = "sys_enter_mmsg_tp";
    /// `task:task_newtask`: a new process (threads are filtered out in the kernel).
    pub const TASK_NEWTASK: &str = "task_newtask";
    /// `sched:sched_process_exec`.
    pub const PROCESS_EXEC: &str = "process_exec";
    /// `sched:sched_process_exit`: flushes the process's totals, then reports the exit.
    pub const PROCESS_EXIT: &str = "process_exit";
    /// `sched:sched_process_exit` too: flushes the process's kernel-layer totals.
    pub const PROCESS_EXIT_KERNEL: &str = "process_exit_kernel";
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
    /// A `(tgid, syscall)` entry could not be created because `STATS` was full, or a
    /// `(tgid, probe)` entry because `KSTATS` was full.
    pub const STATS_FULL: u32 = 1;
    /// recvmmsg/sendmmsg message lengths could not be read from user memory.
    pub const MMSG_UNREADABLE: u32 = 2;
    /// A recvmmsg/sendmmsg exit arrived without its enter (tracepoint mode only).
    pub const MMSG_NO_ENTER: u32 = 3;
    /// How many counters there are.
    pub const COUNT: u32 = 4;
}

/// Bound of the `STATS` map: live `(tgid, syscall)` pairs. Entries of exited processes are
/// flushed to user space and deleted by the exit program, so only live processes occupy it.
pub const STATS_MAX_ENTRIES: u32 = 16_384;
/// Bound of the `KSTATS` map (kernel layer): live `(tgid, probe)` pairs, flushed at exit like
/// `STATS`.
pub const KSTATS_MAX_ENTRIES: u32 = 16_384;
/// Bound of the map that carries `_copy_{to,from}_user`'s size from kprobe to kretprobe
/// (threads inside one of those calls at once).
pub const COPY_ARGS_MAX_ENTRIES: u32 = 4096;
/// Size of the `EVENTS` ring buffer in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;
/// Longest recvmmsg/sendmmsg vector the kernel accepts (UIO_MAXIOV); bounds our loop.
pub const MMSG_MAX: u32 = 1024;
/// Number of log2 buckets in a size histogram (see [`hist::bucket`]).
pub const HIST_BUCKETS: usize = 32;
// The kernel side masks bucket indexes with `HIST_BUCKETS - 1` to prove them in range.
const _: () = assert!(HIST_BUCKETS.is_power_of_two());
/// Length of a task's `comm`.
pub const COMM_LEN: usize = 16;

/// Key of the `STATS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatsKey {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    /// Index into [`syscalls::SYSCALLS`].
    pub syscall: u32,
}
const _: () = assert!(core::mem::size_of::<StatsKey>() == 8);

/// What one process did with one syscall since the probes were attached.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallStats {
    /// Completed calls, failed ones included.
    pub calls: u64,
    /// Bytes moved: the sum of non-negative return values (for recvmmsg/sendmmsg, of the
    /// message lengths).
    pub bytes: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Successful calls by size, see [`hist::bucket`].
    pub hist: [u64; HIST_BUCKETS],
}
const _: () = assert!(core::mem::size_of::<SyscallStats>() == 24 + 8 * HIST_BUCKETS);

impl SyscallStats {
    pub const ZERO: SyscallStats = SyscallStats {
        calls: 0,
        bytes: 0,
        errors: 0,
        hist: [0; HIST_BUCKETS],
    };
}

/// Ring-buffer record kinds (`Event::kind`).
pub mod event_kind {
    /// A new process: `tgid` is the parent, `pid` the child, `comm` the child's.
    pub const FORK: u32 = 1;
    /// `tgid` executed a new program; `comm` is the new one.
    pub const EXEC: u32 = 2;
    /// Final totals of one syscall of an exiting process (`syscall`, `stats`); always sent
    /// before that process's `EXIT`.
    pub const FINAL_STATS: u32 = 3;
    /// Process `tgid` ended (its last thread, or its leader on kernels without
    /// `group_dead`); `pid` is the exiting thread.
    pub const EXIT: u32 = 4;
    /// Final totals of one kernel-layer probe of an exiting process (`syscall` holds the
    /// index into `kernel::PROBES`, `stats` the totals). Made by a second exit program, so
    /// it may come after that process's `EXIT`.
    pub const FINAL_KERNEL_STATS: u32 = 5;
}

/// One ring-buffer record. A single fixed layout for every kind keeps decoding trivial;
/// records are rare (process lifecycle), so the unused bytes cost nothing that matters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// One of [`event_kind`].
    pub kind: u32,
    pub tgid: u32,
    pub pid: u32,
    /// Index into [`syscalls::SYSCALLS`] (FINAL_STATS only).
    pub syscall: u32,
    /// `bpf_ktime_get_ns()` when the record was made (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
    /// FINAL_STATS only.
    pub stats: SyscallStats,
}
const _: () = assert!(core::mem::size_of::<Event>() == 40 + core::mem::size_of::<SyscallStats>());

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` integers and arrays with no implicit padding (checked by the
    // size assertions above): every bit pattern is a valid value.
    unsafe impl aya::Pod for super::StatsKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SyscallStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::kernel::KernelKey {}
}
