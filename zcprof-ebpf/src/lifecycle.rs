//! Process lifecycle: fork, exec and exit, sent once each through the `EVENTS` ring buffer.
//!
//! At exit the process's `STATS` and `KSTATS` entries are moved into the ring buffer as `FINAL_STATS`
//! records and deleted, before the `EXIT` record. User space therefore sees every byte of
//! a process even if it exits between two reads of the map, and a later process that gets
//! the same PID starts from zero instead of inheriting the old totals.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_loop},
    macros::tracepoint,
    maps::{HashMap, ring_buf::RingBufEntry},
    programs::TracePointContext,
};
use zcprof_common::{
    COMM_LEN, Event, StatsKey, SyscallStats, counter, event_kind,
    kernel::{self, KernelKey},
    syscalls,
};

use crate::maps::{EVENTS, KSTATS, STATS, bump};

/// Tracepoint field offsets, set by user space from tracefs before loading (see
/// `zcprof_common::global`). Read with `read_volatile` so the compiler does not fold the
/// zero initialisers into the code.
#[unsafe(no_mangle)]
static NEWTASK_PID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static NEWTASK_FLAGS_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static EXIT_GROUP_DEAD_OFFSET: u32 = 0;

const CLONE_THREAD: u64 = 0x0001_0000;

#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    match try_task_newtask(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_task_newtask(ctx: &TracePointContext) -> Result<(), ()> {
    // SAFETY: a plain read of a global that user space set before loading.
    let flags_at = unsafe { core::ptr::read_volatile(&NEWTASK_FLAGS_OFFSET) } as usize;
    // SAFETY: as above.
    let pid_at = unsafe { core::ptr::read_volatile(&NEWTASK_PID_OFFSET) } as usize;
    // SAFETY: offsets come from this kernel's tracefs format; the helper checks the read.
    let flags: u64 = unsafe { ctx.read_at(flags_at) }.map_err(|_| ())?;
    if flags & CLONE_THREAD != 0 {
        // A thread: its syscalls are counted under its process's tgid already.
        return Ok(());
    }
    // SAFETY: as above.
    let child: i32 = unsafe { ctx.read_at(pid_at) }.map_err(|_| ())?;
    // The current task is the parent; the child starts with the parent's comm.
    submit(record(event_kind::FORK, child as u32, 0, None));
    Ok(())
}

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    // After exec the current task is the process's leader with the new comm.
    submit(record(event_kind::EXEC, 0, 0, None));
    0
}

#[tracepoint]
pub fn process_exit(ctx: TracePointContext) -> u32 {
    match try_process_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

/// `(tgid, pid)` when this exit ends the whole process, `None` for a thread's exit.
#[inline(always)]
fn process_ended(ctx: &TracePointContext) -> Result<Option<(u32, u32)>, ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, pid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    // SAFETY: a plain read of a global that user space set before loading.
    let group_dead_at = unsafe { core::ptr::read_volatile(&EXIT_GROUP_DEAD_OFFSET) } as usize;
    let ended = if group_dead_at != 0 {
        // SAFETY: offset from this kernel's tracefs format; the helper checks the read.
        let group_dead: u8 = unsafe { ctx.read_at(group_dead_at) }.map_err(|_| ())?;
        group_dead != 0
    } else {
        // Older kernels: the leader's exit stands for the process's end.
        pid == tgid
    };
    Ok(ended.then_some((tgid, pid)))
}

fn try_process_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let Some((tgid, pid)) = process_ended(ctx)? else {
        return Ok(());
    };
    flush(flush_syscall, syscalls::COUNT, tgid, pid);
    submit(record(event_kind::EXIT, pid, 0, None));
    Ok(())
}

/// `sched:sched_process_exit` again, for the kernel layer: moves the process's `KSTATS`
/// entries into the ring buffer as `FINAL_KERNEL_STATS` records, the way `process_exit` moves
/// `STATS`. A program of its own so that the syscall layer's exit flush does not depend on
/// the kernel layer; user space attaches it after `process_exit`, so its records may follow
/// the `EXIT` record, and the model attributes them to the instance that just ended.
#[tracepoint]
pub fn process_exit_kernel(ctx: TracePointContext) -> u32 {
    match try_process_exit_kernel(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_process_exit_kernel(ctx: &TracePointContext) -> Result<(), ()> {
    let Some((tgid, pid)) = process_ended(ctx)? else {
        return Ok(());
    };
    flush(flush_kernel, kernel::COUNT, tgid, pid);
    Ok(())
}

/// What a flush callback needs to know about the exiting process.
#[repr(C)]
struct Exiting {
    tgid: u32,
    pid: u32,
}

/// A `bpf_loop` callback: `(index, context) -> 0 to go on, 1 to stop`.
type FlushOne = extern "C" fn(u64, *mut c_void) -> i64;

/// Calls `one` for every index below `count` through `bpf_loop` (Linux 5.17+), so the
/// verifier checks the per-entry body once instead of once per iteration: an unrolled or
/// bounded loop over all entries, each with its own reserve/submit branches, is more than
/// the Linux 6.1 verifier accepts (E2BIG), while 6.12 prunes it.
#[inline(always)]
fn flush(one: FlushOne, count: usize, tgid: u32, pid: u32) {
    let mut exiting = Exiting { tgid, pid };
    // SAFETY: `one` is a static BPF function with the callback signature `bpf_loop` expects,
    // and `exiting` lives on this stack frame for the whole call.
    unsafe {
        bpf_loop(
            count as u32,
            one as *mut c_void,
            (&raw mut exiting).cast(),
            0,
        )
    };
}

/// Moves `STATS[(tgid, index)]` into a `FINAL_STATS` record.
extern "C" fn flush_syscall(index: u64, exiting: *mut c_void) -> i64 {
    // SAFETY: `flush` passes a pointer to an initialised `Exiting` on its stack.
    let Exiting { tgid, pid } = unsafe { core::ptr::read(exiting.cast::<Exiting>()) };
    let syscall = index as u32;
    move_out(
        &STATS,
        StatsKey { tgid, syscall },
        event_kind::FINAL_STATS,
        pid,
        syscall,
    );
    0
}

/// Moves `KSTATS[(tgid, index)]` into a `FINAL_KERNEL_STATS` record.
extern "C" fn flush_kernel(index: u64, exiting: *mut c_void) -> i64 {
    // SAFETY: as in `flush_syscall`.
    let Exiting { tgid, pid } = unsafe { core::ptr::read(exiting.cast::<Exiting>()) };
    let probe = index as u32;
    move_out(
        &KSTATS,
        KernelKey { tgid, probe },
        event_kind::FINAL_KERNEL_STATS,
        pid,
        probe,
    );
    0
}

/// Copies the entry at `key`, if any, into a `kind` record and deletes it.
#[inline(always)]
fn move_out<K>(map: &HashMap<K, SyscallStats>, key: K, kind: u32, pid: u32, index: u32) {
    // SAFETY: the value is copied into the record before the entry is removed; every
    // thread of the process is gone, so nothing updates it concurrently.
    let Some(stats) = (unsafe { map.get(&key) }) else {
        return;
    };
    // Delete the entry before the record that carries its totals becomes visible: user
    // space reads the ring buffer, then the map, and must find each count in exactly one.
    // If no record can be reserved the entry stays, and user space still counts it from
    // the map.
    if let Some(entry) = record(kind, pid, index, Some(stats)) {
        let _ = map.remove(&key);
        entry.submit(0);
    }
}

#[inline(always)]
fn submit(entry: Option<RingBufEntry<Event>>) {
    if let Some(entry) = entry {
        entry.submit(0);
    }
}

/// Reserves and fills one record for the current task, for the caller to submit; `None`
/// (and a lost-event count) if the ring buffer is full.
#[inline(always)]
fn record(
    kind: u32,
    pid: u32,
    syscall: u32,
    stats: Option<&SyscallStats>,
) -> Option<RingBufEntry<Event>> {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        bump(counter::RINGBUF_FULL);
        return None;
    };
    let event = entry.as_mut_ptr();
    let comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    // SAFETY: `event` points to a reserved, writable record of `size_of::<Event>()` bytes;
    // every field is written before submit.
    unsafe {
        (*event).kind = kind;
        (*event).tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        (*event).pid = pid;
        (*event).syscall = syscall;
        (*event).ts_ns = bpf_ktime_get_ns();
        (*event).comm = comm;
        (*event).stats = match stats {
            Some(stats) => *stats,
            None => SyscallStats::ZERO,
        };
    }
    Some(entry)
}
