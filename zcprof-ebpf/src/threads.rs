//! The threads layer (`zcprof_common::threads`, opt-in): the syscall layer's counts again,
//! per `(tgid, syscall | tid)` in `TSTATS`, updated from the syscall layer's exit programs
//! ([`count`], [`count_many`]). Off unless user space set `THREADS_ON` (`--threads`): then
//! one load and a branch per counted call. Each thread's entries are moved out at that
//! thread's exit by [`thread_exit_threads`].

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_loop},
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray},
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key, counter, layer, syscalls,
    threads::{self, TSTATS_MAX_ENTRIES},
};

use crate::{
    lifecycle::{Exiting, move_out},
    maps::{bump, count_as, count_many as count_many_in},
    record::at,
};

/// `(tgid, syscall | tid) -> totals`, for live threads.
#[map]
pub static TSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(TSTATS_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static THREADS_ON: u32 = 0;

/// The key of syscall-layer row `index` for the current thread (`pid_tgid` as the helper
/// returns it).
#[inline(always)]
fn key(pid_tgid: u64, index: u32) -> Key {
    Key {
        tgid: (pid_tgid >> 32) as u32,
        slot: threads::slot(index, pid_tgid as u32),
    }
}

/// Counts one call of syscall-layer row `index` for the current thread, as `maps::count`.
///
/// In a one-iteration `bpf_loop`, whose arguments go through a per-CPU map rather than the
/// stack: the verifier reads a map value as unknown, so that it checks the callback once
/// instead of once per path of the exit program that reaches it (inline, or with the
/// arguments on the stack, `--threads --flows` took it past its limit of a million
/// instructions in every probe mode on Linux 6.18). A task preempted between the write and
/// the callback can find another task's call there: `pid_tgid` tells, and such a call is
/// counted as lost (`stash_full`), never given to the wrong thread.
#[inline(always)]
pub fn count(pid_tgid: u64, index: u32, failed: bool, errno: u64, bytes: u64) {
    if at(&THREADS_ON) == 0 {
        return;
    }
    let Some(call) = THREAD_CALL.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a live per-CPU map value.
    unsafe {
        *call = Call {
            pid_tgid,
            index: index as u64,
            failed: failed as u64,
            errno,
            bytes,
        };
    }
    // SAFETY: `count_call` has the callback signature `bpf_loop` expects; it takes no
    // context.
    unsafe { bpf_loop(1, count_call as *mut c_void, core::ptr::null_mut(), 0) };
}

/// What [`count_call`] counts.
#[repr(C)]
#[derive(Clone, Copy)]
struct Call {
    pid_tgid: u64,
    index: u64,
    failed: u64,
    errno: u64,
    bytes: u64,
}

/// The call [`count`] hands to [`count_call`].
#[map]
static THREAD_CALL: PerCpuArray<Call> = PerCpuArray::with_max_entries(1, 0);

/// The `bpf_loop` callback of [`count`].
extern "C" fn count_call(_: u64, _: *mut c_void) -> i64 {
    let Some(call) = THREAD_CALL.get_ptr(0) else {
        return 1;
    };
    // SAFETY: a live per-CPU map value.
    let Call {
        pid_tgid,
        index,
        failed,
        errno,
        bytes,
    } = unsafe { *call };
    if pid_tgid != bpf_get_current_pid_tgid() {
        bump(counter::STASH_FULL);
        return 1;
    }
    // The entry is the current thread's own: nothing else updates it, no atomics.
    let _ = count_as(
        &TSTATS,
        key(pid_tgid, index as u32),
        failed != 0,
        errno,
        bytes,
        true,
    );
    1
}

/// Counts `n` byte-less successes of row `index` for the current thread, as
/// `maps::count_many`.
#[inline(always)]
pub fn count_many(pid_tgid: u64, index: u32, n: u64) {
    if at(&THREADS_ON) != 0 {
        count_many_in(&TSTATS, key(pid_tgid, index), n);
    }
}

/// A `bpf_loop` callback: moves the exiting thread's entry of syscall row `index`.
extern "C" fn flush_thread(index: u64, exiting: *mut c_void) -> i64 {
    // SAFETY: `thread_exit_threads` passes a pointer to an initialised `Exiting`.
    let Exiting { tgid, pid } = unsafe { core::ptr::read(exiting.cast::<Exiting>()) };
    let key = Key {
        tgid,
        slot: threads::slot(index as u32, pid),
    };
    move_out(&TSTATS, key, layer::THREADS, pid);
    0
}

/// `sched:sched_process_exit`, which runs for every exiting thread (the process's end is
/// its last thread's exit): moves that thread's entries into `FINAL` records, whose `pid`
/// and `comm` are the thread's. Does nothing when the layer is off.
#[tracepoint]
pub fn thread_exit_threads(_ctx: TracePointContext) -> u32 {
    if at(&THREADS_ON) == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut exiting = Exiting {
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
    };
    // SAFETY: `flush_thread` has the callback signature `bpf_loop` expects, and `exiting`
    // lives on this stack frame for the whole call.
    unsafe {
        bpf_loop(
            syscalls::COUNT as u32,
            flush_thread as *mut c_void,
            (&raw mut exiting).cast(),
            0,
        )
    };
    0
}
