//! The cpu layer's shared names and rules (opt-in, `--cpu`): where each process's CPU time
//! goes, sampled. A `perf_event` program on the software `cpu-clock` event (one per online
//! CPU, frequency sampling) counts, per process, the samples that landed in kernel copy
//! routines, elsewhere in the kernel, in user-space copy routines, elsewhere in user space,
//! and in user code it could not place (no file with a GNU build ID behind the address).
//!
//! # What is counted (the exact rule)
//! One sample of the current process (tgid 0, the idle task, is not counted) goes to
//! exactly one slot, so the slots add up to the process's samples:
//! - a kernel address (the sign bit of the sampled instruction pointer is set) inside one
//!   of the sorted ranges of [`KCOPY_RANGES_MAP`] (kernel copy routines, from
//!   /proc/kallsyms at start: symbol start to the next symbol's start) → [`KERNEL_COPY`],
//!   any other kernel address → [`KERNEL`];
//! - a user address whose file the kernel can name by its GNU build ID
//!   (`bpf_get_stack(BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)`, first frame = the sampled
//!   instruction) and whose file offset falls in one of that file's copy-routine ranges in
//!   [`UCOPY_FILES_MAP`] → [`USER_COPY`]; a named file, outside them → [`USER`];
//! - a user address the kernel cannot name (anonymous or JIT code, a file without a build
//!   ID, or the address space's lock was busy at the sample) → [`USER_UNRESOLVED`].
//!
//! `calls` = samples; `bytes` = the samples' periods in nanoseconds of cpu-clock (the
//! CPU time the samples stand for, an estimate). A share is a ratio of sample counts, with
//! a binomial standard error of `sqrt(p (1 - p) / n)`.

/// Slot of samples in a kernel copy routine.
pub const KERNEL_COPY: u32 = 0;
/// Slot of the other kernel-mode samples.
pub const KERNEL: u32 = 1;
/// Slot of samples in a user-space copy routine (glibc's memcpy/memmove/mempcpy as this
/// machine's IFUNCs resolve them, Go's `runtime.memmove`).
pub const USER_COPY: u32 = 2;
/// Slot of the other user-mode samples in a file the kernel named.
pub const USER: u32 = 3;
/// Slot of user-mode samples the kernel could not place in a file.
pub const USER_UNRESOLVED: u32 = 4;
/// Slots per process.
pub const COUNT: usize = 5;
/// The slots' names, indexed by `Key::slot`.
pub const NAMES: [&str; COUNT] = [
    "kernel_copy",
    "kernel",
    "user_copy",
    "user",
    "user_unresolved",
];

/// The default sampling frequency, per CPU (not a round number, so that sampling does not
/// beat with timers of 100 or 1000 Hz).
pub const DEFAULT_FREQUENCY: u64 = 999;

/// Program names.
pub mod program {
    /// The `perf_event` program on cpu-clock.
    pub const SAMPLE: &str = "cpu_sample";
    /// `sched:sched_process_exit`: moves the exiting process's `CSTATS` entries into
    /// `FINAL` records.
    pub const PROCESS_EXIT: &str = "process_exit_cpu";
}

/// Name of the `(tgid, slot) -> Counts` map.
pub const CSTATS_MAP: &str = "CSTATS";
/// Bound of `CSTATS` (live `(tgid, slot)` pairs, flushed at exit).
pub const CSTATS_MAX_ENTRIES: u32 = 16_384;

/// Name of the array of kernel copy-routine ranges, sorted by start, disjoint; the first
/// [`global::KCOPY_COUNT`] entries are used.
pub const KCOPY_RANGES_MAP: &str = "CPU_KCOPY_RANGES";
/// Bound of [`KCOPY_RANGES_MAP`]; the kernel's binary search takes `KCOPY_STEPS` steps.
pub const KCOPY_MAX: u32 = 64;
/// `log2(KCOPY_MAX)`: steps of the binary search over the ranges.
pub const KCOPY_STEPS: u32 = 6;
const _: () = assert!(1 << KCOPY_STEPS == KCOPY_MAX);

/// Name of the hash map of user-space files with copy routines, `BuildId -> FileRanges`.
pub const UCOPY_FILES_MAP: &str = "CPU_UCOPY_FILES";
/// Bound of [`UCOPY_FILES_MAP`]: distinct files (libcs, Go binaries).
pub const UCOPY_FILES_MAX: u32 = 256;
/// Copy-routine ranges kept per file.
pub const FILE_RANGES: usize = 8;

/// Globals set before load.
pub mod global {
    /// Kernel copy ranges used in `CPU_KCOPY_RANGES` (0: no kernel classification).
    pub const KCOPY_COUNT: &str = "CPU_KCOPY_COUNT";
}

/// The cpu layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::CPU,
    map: CSTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT),
};

/// One address range, `start..end` (end exclusive).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}
const _: () = assert!(core::mem::size_of::<Range>() == 16);

/// Length of a GNU build ID as the kernel reports it (`BPF_BUILD_ID_SIZE`; the frames of
/// `crate::stacks::Frame`).
pub const BUILD_ID_LEN: usize = 20;

/// Key of [`UCOPY_FILES_MAP`]: a file's GNU build ID, zero-padded to 20 bytes as the
/// kernel reports it, and 4 bytes of padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BuildId {
    pub id: [u8; BUILD_ID_LEN],
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<BuildId>() == 24);

/// Value of [`UCOPY_FILES_MAP`]: up to [`FILE_RANGES`] copy-routine ranges of one file, as
/// file offsets (what the kernel reports with a build ID).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileRanges {
    /// Ranges used.
    pub count: u32,
    pub _pad: u32,
    pub ranges: [Range; FILE_RANGES],
}
const _: () = assert!(core::mem::size_of::<FileRanges>() == 8 + 16 * FILE_RANGES);

/// Whether `ip` is in one of the first `count` sorted, disjoint ranges that `get` returns
/// by index: a binary search of [`KCOPY_STEPS`] steps (bounded for the verifier).
#[inline(always)]
pub fn in_sorted(count: u32, ip: u64, get: impl Fn(u32) -> Option<Range>) -> bool {
    // The first range whose end is above `ip`: `lo` after the search.
    let (mut lo, mut hi) = (0u32, if count > KCOPY_MAX { KCOPY_MAX } else { count });
    let mut step = 0;
    while step < KCOPY_STEPS + 1 {
        if lo >= hi {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        match get(mid) {
            Some(r) if r.end <= ip => lo = mid + 1,
            Some(_) => hi = mid,
            None => return false,
        }
        step += 1;
    }
    lo < count && matches!(get(lo), Some(r) if r.start <= ip && ip < r.end)
}

/// Whether the file offset `offset` is in one of `file`'s ranges.
#[inline(always)]
pub fn in_file(file: &FileRanges, offset: u64) -> bool {
    let mut i = 0;
    while i < FILE_RANGES {
        if (i as u32) < file.count {
            let r = file.ranges[i];
            if r.start <= offset && offset < r.end {
                return true;
            }
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> [Range; 3] {
        [
            Range { start: 10, end: 20 },
            Range { start: 30, end: 31 },
            Range { start: 40, end: 60 },
        ]
    }

    fn search(count: u32, ip: u64) -> bool {
        let r = ranges();
        in_sorted(count, ip, |i| r.get(i as usize).copied())
    }

    #[test]
    fn binary_search_finds_exactly_the_ranges() {
        for ip in 0..70 {
            let expected = ranges().iter().any(|r| r.start <= ip && ip < r.end);
            assert_eq!(search(3, ip), expected, "ip {ip}");
        }
        assert!(!search(0, 15), "no ranges: nothing is a copy");
        assert!(!search(1, 45), "only the first range is used");
    }

    #[test]
    fn binary_search_of_a_full_table() {
        let table: std::vec::Vec<Range> = (0..u64::from(KCOPY_MAX))
            .map(|i| Range {
                start: i * 10,
                end: i * 10 + 5,
            })
            .collect();
        for ip in 0..u64::from(KCOPY_MAX) * 10 + 10 {
            let got = in_sorted(KCOPY_MAX, ip, |i| table.get(i as usize).copied());
            assert_eq!(
                got,
                ip % 10 < 5 && ip < u64::from(KCOPY_MAX) * 10,
                "ip {ip}"
            );
        }
    }

    #[test]
    fn file_ranges_and_errors() {
        let mut f = FileRanges::default();
        f.ranges[0] = Range { start: 5, end: 9 };
        f.ranges[1] = Range { start: 1, end: 2 };
        f.count = 1;
        assert!(in_file(&f, 5) && in_file(&f, 8));
        assert!(
            !in_file(&f, 9) && !in_file(&f, 1),
            "unused ranges do not count"
        );
        assert_eq!(NAMES[USER_COPY as usize], "user_copy");
    }
}
