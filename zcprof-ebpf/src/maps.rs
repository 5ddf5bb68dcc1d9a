//! The maps shared by every program, and the small helpers that update them.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
};
use zcprof_common::{
    EVENTS_BYTES, KSTATS_MAX_ENTRIES, STATS_MAX_ENTRIES, StatsKey, SyscallStats, counter, hist,
    kernel::KernelKey,
};

/// `(tgid, syscall) -> totals`, for live processes. Preallocated (the default), so updates
/// never allocate in the syscall path.
#[map]
pub static STATS: HashMap<StatsKey, SyscallStats> = HashMap::with_max_entries(STATS_MAX_ENTRIES, 0);

/// The kernel layer: `(tgid, probe) -> totals` (`zcprof_common::kernel::PROBES`), kept and
/// flushed exactly like `STATS`.
#[map]
pub static KSTATS: HashMap<KernelKey, SyscallStats> =
    HashMap::with_max_entries(KSTATS_MAX_ENTRIES, 0);

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
/// `ptr` must point into a live `STATS` value (8-byte aligned, as map values are).
#[inline(always)]
unsafe fn add(ptr: *mut u64, value: u64) {
    // SAFETY: guaranteed by the caller. Atomic because threads of one process on other
    // CPUs update the same entry; the result is unused, so this is a single BPF XADD.
    // (`AtomicU64::fetch_add` is not offered on the BPF target, which has no CAS loop.)
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(ptr, value) };
}

/// Records one completed syscall of process `tgid`: `index` into the syscall table, the
/// raw return value `ret` (negative: an error) and the `bytes` it moved.
#[inline(always)]
pub fn record(tgid: u32, index: u32, ret: i64, bytes: u64) {
    let key = StatsKey {
        tgid,
        syscall: index,
    };
    if let Some(stats) = entry(&STATS, key) {
        // A failed syscall moved nothing (`bytes` is 0 then).
        // SAFETY: a live map value, from a successful lookup.
        unsafe { update(stats, ret < 0, bytes) };
    }
}

/// Records one hit of kernel-layer probe `probe` (index into `kernel::PROBES`) for the
/// current process: `failed` counts an error (and `bytes` still count: a copy that faulted
/// half-way moved half its bytes).
#[inline(always)]
pub fn record_kernel(probe: u32, failed: bool, bytes: u64) {
    let key = KernelKey {
        tgid: (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32,
        probe,
    };
    if let Some(stats) = entry(&KSTATS, key) {
        // SAFETY: a live map value, from a successful lookup.
        unsafe { update(stats, failed, bytes) };
    }
}

/// The value at `key`, created zeroed if missing; `None` (and a count) if the map is full.
#[inline(always)]
fn entry<K>(map: &HashMap<K, SyscallStats>, key: K) -> Option<*mut SyscallStats> {
    if let Some(stats) = map.get_ptr_mut(&key) {
        return Some(stats);
    }
    // BPF_NOEXIST: if another thread created the entry meanwhile, keep its counts.
    // By reference on purpose: `&ZERO` points into .rodata, while a by-value argument is
    // built on the stack with a byte-wise memset loop that the verifier unrolls past its
    // instruction limit.
    #[expect(clippy::needless_borrows_for_generic_args, reason = "see above")]
    let _ = map.insert(&key, &SyscallStats::ZERO, BPF_NOEXIST as u64);
    let stats = map.get_ptr_mut(&key);
    if stats.is_none() {
        bump(counter::STATS_FULL);
    }
    stats
}

/// Adds one call to `stats`: `bytes`, and an error or a histogram count.
///
/// # Safety
/// `stats` must point to a live map value.
#[inline(always)]
unsafe fn update(stats: *mut SyscallStats, failed: bool, bytes: u64) {
    // SAFETY: guaranteed by the caller; every field is a u64 at an 8-byte-aligned offset of
    // a `#[repr(C)]` struct.
    unsafe {
        add(&raw mut (*stats).calls, 1);
        if bytes != 0 {
            add(&raw mut (*stats).bytes, bytes);
        }
        if failed {
            add(&raw mut (*stats).errors, 1);
        } else {
            // The mask is a no-op for the verifier's benefit: it proves the index in range.
            let bucket = hist::bucket(bytes) & (zcprof_common::HIST_BUCKETS - 1);
            add((&raw mut (*stats).hist).cast::<u64>().add(bucket), 1);
        }
    }
}
