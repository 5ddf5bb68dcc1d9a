//! The threads layer (opt-in, `--threads`): the syscall layer's counts split by thread, per
//! `(tgid, syscall, tid)` in `TSTATS`.
//!
//! It is a counting layer like the others, so that the generic machinery (map reads,
//! leftovers of vanished processes, `FINAL` records) works unchanged, with one difference:
//! its slot is not a dense index but packs the syscall (the syscall layer's table index)
//! and the thread id ([`slot`], [`split`]). A thread id is below `PID_MAX_LIMIT` (2^22 on
//! 64-bit kernels, `include/linux/threads.h`), so both fit in the `u32`, and the key stays
//! the 8-byte [`crate::Key`] whose `tgid` is the process: user space never has to find a
//! thread's process. Each thread's entries are flushed at that thread's exit (not the
//! process's), so an exited thread's name and totals survive it and its entries do not
//! outlive it.

use crate::syscalls;

/// Name of the `(tgid, syscall | tid) -> Counts` hash map.
pub const TSTATS_MAP: &str = "TSTATS";
/// Bound of `TSTATS`: live `(thread, syscall)` pairs, its own so that a thread storm fills
/// it (a counted loss, `counter::STATS_FULL`) without starving the per-process counts.
pub const TSTATS_MAX_ENTRIES: u32 = 16_384;

/// Bits of a slot that hold the thread id: `PID_MAX_LIMIT` is `4 * 1024 * 1024`.
pub const TID_BITS: u32 = 22;
const TID_MASK: u32 = (1 << TID_BITS) - 1;

/// The slot of syscall-layer row `index` for thread `tid`.
#[inline(always)]
pub const fn slot(index: u32, tid: u32) -> u32 {
    (index << TID_BITS) | (tid & TID_MASK)
}

/// `(syscall-layer row, tid)` of a slot.
#[inline(always)]
pub const fn split(slot: u32) -> (u32, u32) {
    (slot >> TID_BITS, slot & TID_MASK)
}

// Every syscall row fits above the thread id.
const _: () = assert!((syscalls::COUNT as u64) << TID_BITS <= u32::MAX as u64);

/// The program names.
pub mod program {
    /// `sched:sched_process_exit`, for every exiting thread: moves that thread's entries
    /// into `FINAL` records.
    pub const THREAD_EXIT: &str = "thread_exit_threads";
}

/// The read-only global user space sets before loading.
pub mod global {
    /// 1 with `--threads`: the syscall layer's exit programs count per thread too.
    pub const ON: &str = "THREADS_ON";
}

/// The threads layer as a counting layer: every valid slot is below this bound (its row
/// below the syscall layer's count); its own exit program flushes it, per thread.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::THREADS,
    map: TSTATS_MAP,
    slots: syscalls::COUNT << TID_BITS,
    exit_flush: Some(program::THREAD_EXIT),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_every_row_and_the_largest_tid() {
        let max_tid = (1 << TID_BITS) - 1;
        for index in 0..syscalls::COUNT as u32 {
            for tid in [1, 4242, max_tid] {
                let s = slot(index, tid);
                assert_eq!(split(s), (index, tid));
                assert!((s as usize) < COUNTING.slots);
            }
        }
        assert!(slot(syscalls::COUNT as u32, 1) as usize >= COUNTING.slots);
    }
}
