//! The cpu layer (opt-in, `--cpu`): a `perf_event` program on the software cpu-clock
//! event, attached once per online CPU, that counts each sample of the current process in
//! one slot of `CSTATS` (where it landed: a kernel or user copy routine, elsewhere in the
//! kernel or user space; the rule: `zcprof_common::cpu`).
//!
//! Kernel addresses are searched in a small sorted array of copy-routine ranges that user
//! space filled from /proc/kallsyms; user addresses are named by the kernel as (build ID,
//! file offset) with `bpf_get_stack(BPF_F_USER_BUILD_ID)` on the first frame only (the
//! sampled instruction), and looked up in a hash map of files with copy routines. Nothing
//! goes through a ring buffer: a short-lived process is counted as well as a long one, and
//! its counts leave through `FINAL` records at its exit.

use aya_ebpf::{
    bindings::{BPF_F_USER_BUILD_ID, BPF_F_USER_STACK},
    helpers::{bpf_get_current_pid_tgid, bpf_get_stack},
    macros::{map, perf_event, tracepoint},
    maps::{Array, HashMap},
    programs::{PerfEventContext, TracePointContext},
};
use zcprof_common::{
    Counts, Key,
    cpu::{
        self, BuildId, CSTATS_MAX_ENTRIES, FileRanges, KCOPY_MAX, KERNEL, KERNEL_COPY, Range,
        UCOPY_FILES_MAX, USER, USER_COPY, USER_UNRESOLVED, in_file, in_sorted,
    },
    layer,
    stacks::{Frame, status},
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::count,
    record::at,
};

/// `(tgid, slot) -> totals` (calls = samples, bytes = their periods in ns), flushed at exit.
#[map]
pub static CSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(CSTATS_MAX_ENTRIES, 0);

/// Kernel copy-routine ranges, sorted and disjoint; the first `CPU_KCOPY_COUNT` are used.
#[map]
static CPU_KCOPY_RANGES: Array<Range> = Array::with_max_entries(KCOPY_MAX, 0);

/// Files with user-space copy routines, by build ID: their ranges as file offsets.
#[map]
static CPU_UCOPY_FILES: HashMap<BuildId, FileRanges> =
    HashMap::with_max_entries(UCOPY_FILES_MAX, 0);

#[unsafe(no_mangle)]
static CPU_KCOPY_COUNT: u32 = 0;

#[perf_event]
pub fn cpu_sample(ctx: PerfEventContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == 0 {
        // The idle task: no process's CPU.
        return 0;
    }
    // SAFETY: the context of a perf_event program is a `bpf_perf_event_data`, readable.
    let (ip, period) = unsafe { ((*ctx.ctx).regs.rip, (*ctx.ctx).sample_period) };
    let slot = if ip >> 63 != 0 {
        let count = at(&CPU_KCOPY_COUNT) as u32;
        if in_sorted(count, ip, |i| CPU_KCOPY_RANGES.get(i).copied()) {
            KERNEL_COPY
        } else {
            KERNEL
        }
    } else {
        user_slot(&ctx)
    };
    count(&CSTATS, Key { tgid, slot }, false, 0, period);
    0
}

/// Where a user-mode sample landed: the sampled instruction as (build ID, file offset).
#[inline(always)]
fn user_slot(ctx: &PerfEventContext) -> u32 {
    let mut frame = Frame {
        status: 0,
        build_id: [0; 20],
        offset: 0,
    };
    // SAFETY: the helper writes at most the given size into `frame`, a stack value of
    // that size; `ctx` is the running program's context.
    let written = unsafe {
        bpf_get_stack(
            ctx.ctx.cast(),
            (&raw mut frame).cast(),
            core::mem::size_of::<Frame>() as u32,
            (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) as u64,
        )
    };
    if written <= 0 || frame.status != status::VALID {
        return USER_UNRESOLVED;
    }
    let key = BuildId {
        id: frame.build_id,
        _pad: 0,
    };
    // SAFETY: a read-only lookup; user space writes the map only before attaching and
    // when it learns a new file (a whole value at once).
    match unsafe { CPU_UCOPY_FILES.get(key) } {
        Some(file) if in_file(file, frame.offset) => USER_COPY,
        _ => USER,
    }
}

exit_flush!(flush_cpu, CSTATS, layer::CPU);

/// `sched:sched_process_exit` again, for the cpu layer (as `process_exit_kernel`).
#[tracepoint]
pub fn process_exit_cpu(ctx: TracePointContext) -> u32 {
    flush_ended(&ctx, flush_cpu, cpu::COUNT);
    0
}
