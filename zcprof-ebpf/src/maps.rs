//! The maps every layer shares (the ring buffer and the health counters), and the helpers
//! each counting layer uses to update its own `Key -> Counts` map and its stash maps.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use zcprof_common::{Counts, EVENTS_BYTES, Key, counter, errno, hist};

/// Process lifecycle records and final totals, see `zcprof_common::Event`.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Health counters (`zcprof_common::counter`): what the kernel side could not record.
/// Per-CPU so that counting a failure never contends.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Adds one to health counter `index`.
#[inline(always)]
pub fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful lookup in a per-CPU array, so it is
        // valid, aligned and only this CPU touches it while this program runs.
        unsafe { *slot += 1 };
    }
}

/// Atomically adds `value` to the counter at `ptr`.
///
/// # Safety
/// `ptr` must point into a live map value (8-byte aligned, as map values are).
#[inline(always)]
pub unsafe fn add(ptr: *mut u64, value: u64) {
    // SAFETY: guaranteed by the caller. Atomic because threads of one process on other
    // CPUs update the same entry; the result is unused, so this is a single BPF XADD.
    // (`AtomicU64::fetch_add` is not offered on the BPF target, which has no CAS loop.)
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(ptr, value) };
}

/// Adds `value` to the counter at `ptr`, atomically when `ATOMIC`.
///
/// # Safety
/// As [`add`]; without `ATOMIC`, no other CPU may update the counter meanwhile.
#[inline(always)]
unsafe fn add_as<const ATOMIC: bool>(ptr: *mut u64, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        if ATOMIC {
            add(ptr, value)
        } else {
            // A plain add: `lock xadd` is a full barrier, ~5 ns per counter on the syscall
            // path (bench/README.md).
            *ptr += value
        }
    }
}

/// As [`add_as`], returning the counter's value before the add.
///
/// With `ATOMIC`, the value is read before the atomic add rather than returned by it: a
/// fetch-add needs BPF v3's atomics (the object is built for the generic CPU, which every
/// supported kernel verifies the same). Two threads adding at once then both read the same
/// value; a stacks-layer period crossing in the first `min(a, b)` bytes after it is
/// counted by both and one in the last `min(a, b)` bytes by neither, so the sample count
/// stays unbiased (only which of the two stacks gets a crossing may shift).
///
/// # Safety
/// As [`add_as`].
#[inline(always)]
unsafe fn fetch_add_as<const ATOMIC: bool>(ptr: *mut u64, value: u64) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let before = core::ptr::read_volatile(ptr);
        if ATOMIC {
            add(ptr, value)
        } else {
            *ptr = before + value;
        }
        before
    }
}

/// Counts one call at `key` of a counting layer's `map`: `failed` counts an error (and
/// `bytes` still count: a copy that faulted half-way moved half its bytes; a failed syscall
/// passes 0), by `errno` when it is known (non-zero; a constant 0 compiles the errno count
/// away).
#[inline(always)]
pub fn count(map: &HashMap<Key, Counts>, key: Key, failed: bool, errno: u64, bytes: u64) {
    let _ = count_as(map, key, failed, errno, bytes, false);
}

/// As [`count`]; `only_writer` says that no other task can update `key` meanwhile (the
/// entry is the current thread's own, or its process's while the process has no other
/// thread), so the counters are added without atomics. Returns the entry's byte counter
/// as it was before this call's bytes (`None`: the map was full), which the stacks layer
/// samples by.
#[inline(always)]
pub fn count_as(
    map: &HashMap<Key, Counts>,
    key: Key,
    failed: bool,
    errno: u64,
    bytes: u64,
    only_writer: bool,
) -> Option<u64> {
    let counts = entry(map, key)?;
    // SAFETY: a live map value, from a successful lookup; `only_writer` as documented.
    unsafe {
        Some(if only_writer {
            update::<false>(counts, failed, errno, bytes)
        } else {
            update::<true>(counts, failed, errno, bytes)
        })
    }
}

/// Counts `n` successful calls that moved nothing at `key` (notifications that cover `n`
/// sends at once), in the histogram's 0-byte bucket so that the histogram still adds up to
/// the calls.
#[inline(always)]
pub fn count_many(map: &HashMap<Key, Counts>, key: Key, n: u64) {
    if let Some(counts) = entry(map, key) {
        let bucket = hist::bucket(0) & (zcprof_common::HIST_BUCKETS - 1);
        // SAFETY: a live map value, from a successful lookup; u64 fields, 8-byte aligned.
        unsafe {
            add(&raw mut (*counts).calls, n);
            add((&raw mut (*counts).hist).cast::<u64>().add(bucket), n);
        }
    }
}

/// Keeps `value` for the current thread from a call's entry to its exit in `map`; a full
/// map is a counted loss (the exit then finds nothing and cannot count the call's bytes).
#[inline(always)]
pub fn stash(map: &HashMap<u64, u64>, thread: u64, value: u64) {
    if map.insert(thread, value, 0).is_err() {
        bump(counter::STASH_FULL);
    }
}

/// The value at `key`, created zeroed if missing; `None` (and a count) if the map is full.
#[inline(always)]
fn entry(map: &HashMap<Key, Counts>, key: Key) -> Option<*mut Counts> {
    if let Some(counts) = map.get_ptr_mut(key) {
        return Some(counts);
    }
    // BPF_NOEXIST: if another thread created the entry meanwhile, keep its counts.
    // By reference on purpose: `&ZERO` points into .rodata, while a by-value argument is
    // built on the stack with a byte-wise memset loop that the verifier unrolls past its
    // instruction limit.
    #[expect(clippy::needless_borrows_for_generic_args, reason = "see above")]
    let _ = map.insert(&key, &Counts::ZERO, BPF_NOEXIST as u64);
    let counts = map.get_ptr_mut(key);
    if counts.is_none() {
        bump(counter::STATS_FULL);
    }
    counts
}

/// Adds one call to `counts`: `bytes`, and an error (by `errno`, when non-zero) or a
/// histogram count; returns the byte counter before the add. The errno table is only
/// touched on failure: the success path costs what it cost before the table existed.
///
/// # Safety
/// `counts` must point to a live map value; without `ATOMIC`, one no other task updates
/// meanwhile.
#[inline(always)]
unsafe fn update<const ATOMIC: bool>(
    counts: *mut Counts,
    failed: bool,
    errno: u64,
    bytes: u64,
) -> u64 {
    // SAFETY: guaranteed by the caller; every field is a u64 at an 8-byte-aligned offset of
    // a `#[repr(C)]` struct.
    unsafe {
        add_as::<ATOMIC>(&raw mut (*counts).calls, 1);
        let before = if bytes != 0 {
            fetch_add_as::<ATOMIC>(&raw mut (*counts).bytes, bytes)
        } else {
            0
        };
        if failed {
            add_as::<ATOMIC>(&raw mut (*counts).errors, 1);
            if errno != 0 {
                let slot = errno::slot(errno);
                // Always true; the check proves the index in range to the verifier.
                if slot < errno::SLOTS {
                    add_as::<ATOMIC>((&raw mut (*counts).errno).cast::<u64>().add(slot), 1);
                }
            }
        } else {
            // The mask is a no-op for the verifier's benefit: it proves the index in range.
            let bucket = hist::bucket(bytes) & (zcprof_common::HIST_BUCKETS - 1);
            add_as::<ATOMIC>((&raw mut (*counts).hist).cast::<u64>().add(bucket), 1);
        }
        before
    }
}
