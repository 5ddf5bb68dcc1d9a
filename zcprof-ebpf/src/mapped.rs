//! The mapped layer: file pages each process mapped in, per `(tgid, slot)` in `MSTATS`
//! (slots `fault` and `map_pages`; the rule and its limits: `zcprof_common::mapped`).
//!
//! Both tracepoints fire in the faulting task, so the current tgid is the process. Each
//! event is a page range of one file; `MAPPED_MARKS` keeps, per `(tgid, dev, ino)`, the
//! first page not yet counted, and only the pages above it count (a bounded LRU map: the
//! oldest file makes room). Field offsets come from tracefs (globals set by user space); an
//! unknown offset (0) makes the programs do nothing, which is what a kernel before 6.12
//! (no such tracepoints: the programs load but never attach) never gets to see anyway.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key, layer,
    mapped::{
        self, FAULT, FileKey, MAP_PAGES, MARKS_MAX_ENTRIES, MSTATS_MAX_ENTRIES, Mark, PAGE_SHIFT,
        above_mark,
    },
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::count,
    record::{at, field},
};

/// `(tgid, slot) -> totals` (bytes = new pages × page size, calls = events), flushed at exit
/// like `STATS`.
#[map]
pub static MSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(MSTATS_MAX_ENTRIES, 0);

/// High-water marks, `(tgid, dev, ino) -> Mark`. Left to the LRU at exit (a map cannot be
/// searched by tgid): user space reads the per-file pages of exited processes from it.
#[map]
static MAPPED_MARKS: LruHashMap<FileKey, Mark> = LruHashMap::with_max_entries(MARKS_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static MAPPED_FAULT_INO: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_FAULT_DEV: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_FAULT_INDEX: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_MAP_INO: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_MAP_DEV: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_MAP_INDEX: u32 = 0;
#[unsafe(no_mangle)]
static MAPPED_MAP_LAST_INDEX: u32 = 0;

#[tracepoint]
pub fn mapped_fault(ctx: TracePointContext) -> u32 {
    match try_fault(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_fault(ctx: &TracePointContext) -> Result<(), ()> {
    let ino: u64 = field(ctx, at(&MAPPED_FAULT_INO))?;
    let dev: u32 = field(ctx, at(&MAPPED_FAULT_DEV))?;
    let index: u64 = field(ctx, at(&MAPPED_FAULT_INDEX))?;
    mapped_in(FAULT, ino, dev, index, index);
    Ok(())
}

#[tracepoint]
pub fn mapped_map_pages(ctx: TracePointContext) -> u32 {
    match try_map_pages(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_map_pages(ctx: &TracePointContext) -> Result<(), ()> {
    let ino: u64 = field(ctx, at(&MAPPED_MAP_INO))?;
    let dev: u32 = field(ctx, at(&MAPPED_MAP_DEV))?;
    let first: u64 = field(ctx, at(&MAPPED_MAP_INDEX))?;
    let last: u64 = field(ctx, at(&MAPPED_MAP_LAST_INDEX))?;
    mapped_in(MAP_PAGES, ino, dev, first, last);
    Ok(())
}

/// Counts one event of `slot` for the current process: the pages of `first..=last` above
/// the file's mark, which then rises.
#[inline(always)]
fn mapped_in(slot: u32, ino: u64, dev: u32, first: u64, last: u64) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let file = FileKey { ino, dev, tgid };
    let pages = match MAPPED_MARKS.get_ptr_mut(file) {
        Some(mark) => {
            // SAFETY: a live map value from a successful lookup; its fields are u64s at
            // 8-byte-aligned offsets. Another thread of the process may update it at the
            // same instant (a page counted twice: a stated limit, not a memory error).
            unsafe {
                let (pages, next) = above_mark((*mark).next, first, last);
                if pages != 0 {
                    (*mark).next = next;
                    (*mark).pages += pages;
                }
                pages
            }
        }
        None => {
            let (pages, next) = above_mark(0, first, last);
            // An LRU insert makes room by evicting; a failure only loses the mark (the
            // pages still count below).
            let _ = MAPPED_MARKS.insert(file, Mark { next, pages }, 0);
            pages
        }
    };
    count(&MSTATS, Key { tgid, slot }, false, 0, pages << PAGE_SHIFT);
}

exit_flush!(flush_mapped, MSTATS, layer::MAPPED);

/// `sched:sched_process_exit` again, for the mapped layer (as `process_exit_kernel`).
#[tracepoint]
pub fn process_exit_mapped(ctx: TracePointContext) -> u32 {
    flush_ended(&ctx, flush_mapped, mapped::COUNT);
    0
}
