//! The threads layer (`zcprof_common::threads`, opt-in): the syscall layer's counts again,
//! per `(tgid, syscall | tid)` in `TSTATS`, updated from the syscall layer's exit programs
//! ([`count`], [`count_many`]). Off unless user space set `THREADS_ON` (`--threads`): then
//! one load and a branch per counted call. Each thread's entries are moved out at that
//! thread's exit by [`thread_exit_threads`].

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_loop},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key, layer, syscalls,
    threads::{self, TSTATS_MAX_ENTRIES},
};

use crate::{
    lifecycle::{Exiting, move_out},
    maps::{count as count_in, count_many as count_many_in},
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

/// Counts one call of syscall-layer row `index` for the current thread, as `maps::count`
/// without the errno: a thread's errors are counted, their errnos only per process. The
/// errno table's branches, a second time in the same program, took the Linux 6.1
/// verifier past its limit of a million instructions in the `tp_btf` program.
#[inline(always)]
pub fn count(pid_tgid: u64, index: u32, failed: bool, bytes: u64) {
    if at(&THREADS_ON) != 0 {
        count_in(&TSTATS, key(pid_tgid, index), failed, 0, bytes);
    }
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
