//! The stacks layer (`zcprof_common::stacks`, opt-in): the calling thread's user stack,
//! sampled from the syscall layer's exit programs each time a `(process, syscall)` byte
//! counter crosses a multiple of the period. Off unless user space set `STACKS_PERIOD`
//! (`--stacks`): then one load and a branch per counted call.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_F_USER_BUILD_ID, BPF_F_USER_STACK, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_get_stack,
        bpf_probe_read_kernel, bpf_probe_read_user, bpf_task_pt_regs,
    },
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use zcprof_common::{
    COMM_LEN, counter,
    stacks::{
        Frame, Header, KERNEL_BIT, KernelSample, MAX_FRAMES, MAX_KERNEL_FRAMES, STACK_EVENTS_BYTES,
        Sample, periods, phase,
    },
};

use crate::{lifecycle::FOLLOWED, maps::bump, record::at};

/// Stack samples, see `zcprof_common::stacks::Sample`.
#[map]
static STACK_EVENTS: RingBuf = RingBuf::with_byte_size(STACK_EVENTS_BYTES, 0);

#[unsafe(no_mangle)]
static STACKS_PERIOD: u32 = 0;
#[unsafe(no_mangle)]
static STACKS_FOLLOWED_ONLY: u32 = 0;
#[unsafe(no_mangle)]
static STACKS_KERNEL: u32 = 0;

/// x86-64 `struct pt_regs` offsets of the user stack and frame pointers.
const PT_REGS_SP: usize = 19 * 8;
const PT_REGS_BP: usize = 4 * 8;

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
    let Some((crossed, first)) = due(pid_tgid, slot, before, bytes) else {
        return;
    };
    // Built in a per-CPU scratch record and sent with only the frames the walk found: a
    // full-depth reservation (4 KiB) for every sample filled the ring buffer ~20 times
    // faster than the few frames most stacks have, and a 10 GiB/s copy lost samples.
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let sample = scratch.cast::<Sample>();
    let (sp, bp) = (reg(PT_REGS_SP), reg(PT_REGS_BP));
    // SAFETY: a live per-CPU map value, only this CPU's program uses it while it runs;
    // the header is written here, the frames by the helper.
    unsafe {
        let written = user_stack(ctx, (&raw mut (*sample).frames).cast());
        header(
            &mut (*sample).header,
            pid_tgid,
            slot,
            crossed,
            (sp, bp),
            written,
        );
        send(sample.cast(), HEADER_BYTES + written, first);
    }
}

/// As [`sample`], at a kernel-layer probe (`--kernel-stacks`): `probe`'s counter of the
/// current process stood at `before` and the copy moved `bytes`. The record is a
/// [`KernelSample`], with the kernel stack at the copy before the user stack.
#[inline(always)]
pub fn sample_kernel(ctx: *mut c_void, probe: u32, before: u64, bytes: u64) {
    if at(&STACKS_KERNEL) == 0 {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let slot = KERNEL_BIT | probe;
    let Some((crossed, first)) = due(pid_tgid, slot, before, bytes) else {
        return;
    };
    let Some(scratch) = KERNEL_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let sample = scratch.cast::<KernelSample>();
    // SAFETY: as in `sample`. The user registers are those the task saved when it entered
    // the kernel (`bpf_task_pt_regs`), which a kernel thread has none of: its stack-top
    // read fails and stays 0.
    unsafe {
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as usize;
        let sp = bpf_probe_read_kernel((regs + PT_REGS_SP) as *const u64).ok();
        let bp = bpf_probe_read_kernel((regs + PT_REGS_BP) as *const u64).ok();
        let kernel = bpf_get_stack(
            ctx,
            (&raw mut (*sample).kernel).cast(),
            KERNEL_FRAMES_BYTES as u32,
            0,
        );
        (*sample).kernel_len = if kernel > 0 {
            (kernel as u64 / 8) as u32
        } else {
            0
        };
        let written = user_stack(ctx, (&raw mut (*sample).frames).cast());
        header(
            &mut (*sample).header,
            pid_tgid,
            slot,
            crossed,
            (sp, bp),
            written,
        );
        send(sample.cast(), KERNEL_HEADER_BYTES + written, first);
    }
}

/// Fills a sample's header; `regs` are the user stack and frame pointers the task saved,
/// `written` the bytes of user frames.
#[inline(always)]
fn header(
    h: &mut Header,
    pid_tgid: u64,
    slot: u32,
    crossed: u64,
    regs: (Option<u64>, Option<u64>),
    written: u64,
) {
    let (sp, bp) = regs;
    h.tgid = (pid_tgid >> 32) as u32;
    h.pid = pid_tgid as u32;
    h.slot = slot;
    h.frames_len = (written / FRAME_BYTES) as u32;
    h.periods = crossed;
    let word = |at: Option<u64>| {
        // SAFETY: the helper checks the read of user memory.
        at.and_then(|at| unsafe { bpf_probe_read_user(at as *const u64) }.ok())
            .unwrap_or(0)
    };
    h.leaf_return = word(sp);
    h.chain_return = word(bp.map(|bp| bp.wrapping_add(8)));
    h.comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
}

/// Whether a call crossed a period: the periods it crossed, and whether this is its
/// entry's first sample (its process is new to the reader, which reads its mappings at
/// once: it may be about to exit). `None` when nothing is to be sampled.
#[inline(always)]
fn due(pid_tgid: u64, slot: u32, before: u64, bytes: u64) -> Option<(u64, bool)> {
    let period = at(&STACKS_PERIOD) as u64;
    if period == 0 || bytes == 0 {
        return None;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let phase = phase(tgid, slot, period);
    let crossed = periods(before, bytes, phase, period);
    if crossed == 0 {
        return None;
    }
    // SAFETY: only whether the entry exists is used.
    if at(&STACKS_FOLLOWED_ONLY) != 0 && unsafe { FOLLOWED.get(tgid) }.is_none() {
        return None;
    }
    Some((crossed, before.wrapping_add(phase) < period))
}

/// Writes the current thread's user stack at `frames` (room for [`MAX_FRAMES`]); returns
/// the bytes written, masked for the verifier of every kernel (6.1's lost a range check
/// that LLVM had rewritten to `written - 1 < 4064`): at most 4,095, within the scratch
/// records' slack. The helper never writes more than 4,064.
///
/// # Safety
/// `frames` must point at a `[Frame; MAX_FRAMES]` followed by the slack.
#[inline(always)]
unsafe fn user_stack(ctx: *mut c_void, frames: *mut c_void) -> u64 {
    // SAFETY: as documented.
    let written = unsafe {
        bpf_get_stack(
            ctx,
            frames,
            FRAMES_BYTES as u32,
            (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) as u64,
        )
    };
    (if written > 0 { written as u64 } else { 0 }) & 0xfff
}

/// Sends the first `size` bytes of the scratch record at `record`.
#[inline(always)]
fn send(record: *const u8, size: u64, first: bool) {
    // SAFETY: `size` is at most the scratch record's size (header + 0xfff), see
    // `user_stack`.
    let record = unsafe { core::slice::from_raw_parts(record, size as usize) };
    // Only an entry's first sample wakes the reader; the rest wait for its next drain. A
    // wakeup per sample (irq_work, in the sampled syscall) cost the storm +43 ns per
    // syscall on average.
    let flags = if first { 0 } else { BPF_RB_NO_WAKEUP as u64 };
    if STACK_EVENTS.output::<[u8]>(record, flags).is_err() {
        bump(counter::STACK_LOST);
    }
}

/// The frames' bytes at full depth, and the headers before them.
const FRAME_BYTES: u64 = core::mem::size_of::<Frame>() as u64;
const FRAMES_BYTES: u64 = core::mem::size_of::<[Frame; MAX_FRAMES]>() as u64;
const HEADER_BYTES: u64 = core::mem::size_of::<Sample>() as u64 - FRAMES_BYTES;
const KERNEL_HEADER_BYTES: u64 = core::mem::size_of::<KernelSample>() as u64 - FRAMES_BYTES;
const KERNEL_FRAMES_BYTES: u64 = 8 * MAX_KERNEL_FRAMES as u64;

/// A record [`sample`] or [`sample_kernel`] builds before sending its used part, with slack
/// past its end so that the masked size is within the map value whatever the mask lets
/// through.
#[repr(C)]
struct Scratch<T> {
    sample: T,
    _slack: [u8; 64],
}
const _: () = assert!(HEADER_BYTES + 0xfff <= core::mem::size_of::<Scratch<Sample>>() as u64);
const _: () =
    assert!(KERNEL_HEADER_BYTES + 0xfff <= core::mem::size_of::<Scratch<KernelSample>>() as u64);

#[map]
static STACK_SCRATCH: PerCpuArray<Scratch<Sample>> = PerCpuArray::with_max_entries(1, 0);

#[map]
static KERNEL_SCRATCH: PerCpuArray<Scratch<KernelSample>> = PerCpuArray::with_max_entries(1, 0);
