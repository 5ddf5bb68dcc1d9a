//! The stacks layer (`zcprof_common::stacks`, opt-in): the calling thread's user stack,
//! sampled from the syscall layer's exit programs each time a `(process, syscall)` byte
//! counter crosses a multiple of the period. Off unless user space set `STACKS_PERIOD`
//! (`--stacks`): then one load and a branch per counted call.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_F_USER_BUILD_ID, BPF_F_USER_STACK, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_comm, bpf_get_stack, bpf_probe_read_user},
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use zcprof_common::{
    COMM_LEN, counter,
    stacks::{Frame, MAX_FRAMES, STACK_EVENTS_BYTES, Sample, periods, phase},
};

use crate::{lifecycle::FOLLOWED, maps::bump, record::at};

/// Stack samples, see `zcprof_common::stacks::Sample`.
#[map]
static STACK_EVENTS: RingBuf = RingBuf::with_byte_size(STACK_EVENTS_BYTES, 0);

#[unsafe(no_mangle)]
static STACKS_PERIOD: u32 = 0;
#[unsafe(no_mangle)]
static STACKS_FOLLOWED_ONLY: u32 = 0;

/// x86-64 `struct pt_regs` offset of the user stack pointer.
const PT_REGS_SP: usize = 19 * 8;

/// Samples the current thread's user stack if the call that moved `bytes` of syscall row
/// `slot`, whose process's counter stood at `before`, crossed a period. `ctx` is the
/// running program's context (which `bpf_get_stack` requires; for a user stack it reads
/// the task's saved user registers, not the context's); `reg` reads a saved user register.
#[inline(always)]
pub fn sample(
    ctx: *mut c_void,
    pid_tgid: u64,
    slot: u32,
    before: u64,
    bytes: u64,
    reg: &impl Fn(usize) -> Option<u64>,
) {
    let period = at(&STACKS_PERIOD) as u64;
    if period == 0 || bytes == 0 {
        return;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let phase = phase(tgid, slot, period);
    let crossed = periods(before, bytes, phase, period);
    // The entry's first sample: its process is new to the reader, which reads its
    // mappings at once (it may be about to exit).
    let first = before.wrapping_add(phase) < period;
    if crossed == 0 {
        return;
    }
    // SAFETY: only whether the entry exists is used.
    if at(&STACKS_FOLLOWED_ONLY) != 0 && unsafe { FOLLOWED.get(tgid) }.is_none() {
        return;
    }
    // Built in a per-CPU scratch record and sent with only the frames the walk found: a
    // full-depth reservation (4 KiB) for every sample filled the ring buffer ~20 times
    // faster than the few frames most stacks have, and a 10 GiB/s copy lost samples.
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let sample = scratch.cast::<Sample>();
    // SAFETY: a live per-CPU map value, only this CPU's program uses it while it runs;
    // the header is written here, the frames by the helper.
    let written = unsafe {
        (*sample).tgid = tgid;
        (*sample).pid = pid_tgid as u32;
        (*sample).slot = slot;
        (*sample).periods = crossed;
        (*sample).leaf_return = reg(PT_REGS_SP)
            .and_then(|sp| bpf_probe_read_user(sp as *const u64).ok())
            .unwrap_or(0);
        (*sample).comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
        bpf_get_stack(
            ctx,
            (&raw mut (*sample).frames).cast(),
            FRAMES_BYTES as u32,
            (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) as u64,
        )
    };
    // The mask bounds the size for the verifier of every kernel (6.1's lost a range check
    // that LLVM had rewritten to `written - 1 < 4064`): at most 4,095 bytes after the
    // header, within the scratch record's slack. The helper never writes more than 4,064.
    let frames = (if written > 0 { written as u64 } else { 0 }) & 0xfff;
    // SAFETY: as above.
    unsafe { (*sample).frames_len = (frames / core::mem::size_of::<Frame>() as u64) as u32 };
    let size = HEADER_BYTES + frames;
    // SAFETY: `size` is at most the scratch record's size (header + 0xfff).
    let record = unsafe { core::slice::from_raw_parts(sample.cast::<u8>(), size as usize) };
    // Only an entry's first sample wakes the reader; the rest wait for its next drain. A
    // wakeup per sample (irq_work, in the sampled syscall) cost the storm +43 ns per
    // syscall on average.
    let flags = if first { 0 } else { BPF_RB_NO_WAKEUP as u64 };
    if STACK_EVENTS.output::<[u8]>(record, flags).is_err() {
        bump(counter::STACK_LOST);
    }
}

/// The frames' bytes at full depth, and the header before them.
const FRAMES_BYTES: u64 = core::mem::size_of::<[Frame; MAX_FRAMES]>() as u64;
const HEADER_BYTES: u64 = core::mem::size_of::<Sample>() as u64 - FRAMES_BYTES;

/// The record [`sample`] builds before sending its used part, with slack past its end so
/// that the masked size is within the map value whatever the mask lets through.
#[repr(C)]
struct Scratch {
    sample: Sample,
    _slack: [u8; 64],
}
const _: () = assert!(HEADER_BYTES + 0xfff <= core::mem::size_of::<Scratch>() as u64);

#[map]
static STACK_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);
