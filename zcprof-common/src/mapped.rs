//! The mapped layer's shared names and rule: file pages a process mapped in through mmap,
//! per process, from `filemap:mm_filemap_fault` and `filemap:mm_filemap_map_pages` (Linux
//! 6.12 and later; older kernels have neither, and the layer is then unavailable).
//!
//! # What is counted (the exact rule)
//! Mapped pages = the union of the page indices `mm_filemap_fault` reports (one page each)
//! and the windows `mm_filemap_map_pages` reports (fault-around, `index..=last_index`, both
//! inclusive), per `(process, device, inode)`. The kernel keeps one high-water page per
//! `(tgid, s_dev, i_ino)` in a bounded LRU map ([`Mark`]) and counts only the pages of an
//! event above it ([`above_mark`]), then raises it. `bytes` = pages × [`PAGE_SIZE`];
//! `calls` = events. A program that touches every page of a file front to back through a
//! fresh mapping therefore counts exactly `ceil(size / 4096)` pages, whether the file was in
//! the page cache or not (summing the raw windows would not: they overlap by a page when
//! hot and by up to half a window when cold, where pages still being read are skipped and
//! fault again).
//!
//! Limits, all of them stated in the README: fault-around maps neighbours the program never
//! touched (touching page 0 of a hot file shows up to 16 pages: "pages the kernel mapped for
//! it", not "pages read"); going backwards in a file, or mapping it again after munmap, is
//! not counted again (the mark only rises); an evicted mark, or two threads of one process
//! faulting the same file at the same instant, can count a page twice; a PMD (huge page)
//! mapping and MAP_POPULATE / MADV_POPULATE may map pages without either event.
//!
//! It is its own figure: pages mapped are neither copied nor zero-copy bytes of the syscall
//! layer, and no total adds them to those.

/// Slot of pages first seen through `filemap_fault` (a fault that fault-around did not
/// serve: minor or major).
pub const FAULT: u32 = 0;
/// Slot of pages first seen through a `filemap_map_pages` window (fault-around).
pub const MAP_PAGES: u32 = 1;
/// Slots per process.
pub const COUNT: usize = 2;
/// The slots' names, indexed by `Key::slot` (the names of the run report and of the
/// recordings' `layers.mapped.probes`).
pub const NAMES: [&str; COUNT] = ["fault", "map_pages"];

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// The page size the kernel side converts pages to bytes with; user space leaves the layer
/// unavailable on a machine with another page size.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// Program names, as the macros in `zcprof-ebpf/src/mapped.rs` export them.
pub mod program {
    /// `filemap:mm_filemap_fault`.
    pub const FAULT: &str = "mapped_fault";
    /// `filemap:mm_filemap_map_pages`.
    pub const MAP_PAGES: &str = "mapped_map_pages";
    /// `sched:sched_process_exit`: moves the exiting process's `MSTATS` entries into
    /// `FINAL` records.
    pub const PROCESS_EXIT: &str = "process_exit_mapped";
}

/// Name of the `(tgid, slot) -> Counts` map.
pub const MSTATS_MAP: &str = "MSTATS";
/// Bound of `MSTATS` (live `(tgid, slot)` pairs, flushed at exit).
pub const MSTATS_MAX_ENTRIES: u32 = 16_384;
/// Name of the LRU map of high-water marks, `FileKey -> Mark`.
pub const MARKS_MAP: &str = "MAPPED_MARKS";
/// Bound of [`MARKS_MAP`]: `(process, file)` pairs (LRU: the oldest makes room).
pub const MARKS_MAX_ENTRIES: u32 = 16_384;

/// Globals: field offsets from tracefs (`0` = not found; the programs then do nothing).
pub mod global {
    pub const FAULT_INO: &str = "MAPPED_FAULT_INO";
    pub const FAULT_DEV: &str = "MAPPED_FAULT_DEV";
    pub const FAULT_INDEX: &str = "MAPPED_FAULT_INDEX";
    pub const MAP_INO: &str = "MAPPED_MAP_INO";
    pub const MAP_DEV: &str = "MAPPED_MAP_DEV";
    pub const MAP_INDEX: &str = "MAPPED_MAP_INDEX";
    pub const MAP_LAST_INDEX: &str = "MAPPED_MAP_LAST_INDEX";
}

/// The mapped layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::MAPPED,
    map: MSTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT),
};

/// Key of [`MARKS_MAP`]: one file in one process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// `i_ino` of the file.
    pub ino: u64,
    /// `s_dev` of its filesystem, in the kernel's encoding (major << 20 | minor).
    pub dev: u32,
    pub tgid: u32,
}
const _: () = assert!(core::mem::size_of::<FileKey>() == 16);

/// Value of [`MARKS_MAP`]: how far into the file the process's mapped pages were counted.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The first page index not yet counted (the high-water page + 1).
    pub next: u64,
    /// Pages counted for this file (the process's per-file share of its mapped pages).
    pub pages: u64,
}
const _: () = assert!(core::mem::size_of::<Mark>() == 16);

/// The pages of the event `first..=last` above the mark `next`, and the new mark: the rule
/// of the module docs, shared by the eBPF programs and the tests.
#[inline(always)]
pub const fn above_mark(next: u64, first: u64, last: u64) -> (u64, u64) {
    // `last == u64::MAX` cannot be a page index (`last + 1` would overflow): ignored.
    if last < first || last == u64::MAX || last < next {
        return (0, next);
    }
    let from = if first > next { first } else { next };
    (last + 1 - from, last + 1)
}

/// The kernel's `s_dev` (`MKDEV`: major << 20 | minor) as `(major, minor)`.
pub const fn dev_parts(dev: u32) -> (u32, u32) {
    (dev >> 20, dev & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies events (`(first, last)`) from a fresh mark; returns the pages counted.
    fn union(events: impl Iterator<Item = (u64, u64)>) -> u64 {
        let (mut next, mut pages) = (0, 0);
        for (first, last) in events {
            let (added, mark) = above_mark(next, first, last);
            pages += added;
            next = mark;
        }
        pages
    }

    /// 1,053,576 B = 258 pages, hot, as traced on 6.18: 0-15, 15-30, then 16-aligned
    /// windows up to 239-254, and 255-257.
    fn hot() -> impl Iterator<Item = (u64, u64)> + Clone {
        [(0, 15), (15, 30)]
            .into_iter()
            .chain((31..=239).step_by(16).map(|s| (s, s + 15)))
            .chain([(255, 257)])
    }

    #[test]
    fn measured_hot_windows_give_the_files_pages() {
        assert_eq!(union(hot()), 258);
        let summed: u64 = hot().map(|(a, b)| b - a + 1).sum();
        assert_eq!(summed, 259, "raw windows overlap by a page");
    }

    #[test]
    fn measured_cold_windows_and_refaults_give_the_files_pages() {
        // Cold: a fault at 0, window 0-15 (8..15 not yet uptodate), a fault again at 8,
        // then 8-23, 24-39, …, 248-257.
        let events = [(0, 0), (0, 15), (8, 8), (8, 23)]
            .into_iter()
            .chain((24..=232).step_by(16).map(|s| (s, s + 15)))
            .chain([(248, 257)]);
        assert_eq!(union(events), 258);
    }

    #[test]
    fn the_mark_only_rises() {
        assert_eq!(
            above_mark(10, 0, 5),
            (0, 10),
            "backwards: not counted again"
        );
        assert_eq!(above_mark(10, 5, 12), (3, 13));
        assert_eq!(
            above_mark(0, 20, 20),
            (1, 21),
            "a jump forward counts the page"
        );
        assert_eq!(above_mark(0, 5, 4), (0, 0), "an empty window");
        assert_eq!(above_mark(0, 0, u64::MAX), (0, 0));
    }

    #[test]
    fn names_and_devices() {
        assert_eq!(NAMES[FAULT as usize], "fault");
        assert_eq!(NAMES[MAP_PAGES as usize], "map_pages");
        assert_eq!(PAGE_SIZE, 4096);
        assert_eq!(dev_parts(8 << 20 | 1), (8, 1));
    }
}
