//! The stacks layer (`zcprof_common::stacks`, opt-in): the calling thread's user stack,
//! sampled from the syscall layer's exit programs each time a `(process, syscall)` byte
//! counter crosses a multiple of the period. Off unless user space set `STACKS_PERIOD`
//! (`--stacks`): then one load and a branch per counted call.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_F_USER_BUILD_ID, BPF_F_USER_STACK},
    helpers::{bpf_get_current_comm, bpf_get_stack, bpf_probe_read_user},
    macros::map,
    maps::RingBuf,
};
use zcprof_common::{
    COMM_LEN, counter,
    stacks::{Frame, STACK_EVENTS_BYTES, Sample, periods, phase},
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
    let crossed = periods(before, bytes, phase(tgid, slot, period), period);
    if crossed == 0 {
        return;
    }
    // SAFETY: only whether the entry exists is used.
    if at(&STACKS_FOLLOWED_ONLY) != 0 && unsafe { FOLLOWED.get(tgid) }.is_none() {
        return;
    }
    let Some(mut entry) = STACK_EVENTS.reserve::<Sample>(0) else {
        bump(counter::STACK_LOST);
        return;
    };
    let sample = entry.as_mut_ptr();
    // SAFETY: `sample` points to a reserved, writable record of `size_of::<Sample>()`
    // bytes; the header is written here, the frames by the helper (only `frames_len` of
    // them are read).
    unsafe {
        (*sample).tgid = tgid;
        (*sample).pid = pid_tgid as u32;
        (*sample).slot = slot;
        (*sample).periods = crossed;
        (*sample).leaf_return = reg(PT_REGS_SP)
            .and_then(|sp| bpf_probe_read_user(sp as *const u64).ok())
            .unwrap_or(0);
        (*sample).comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
        let written = bpf_get_stack(
            ctx,
            (&raw mut (*sample).frames).cast(),
            core::mem::size_of::<[Frame; zcprof_common::stacks::MAX_FRAMES]>() as u32,
            (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) as u64,
        );
        (*sample).frames_len = if written > 0 {
            (written as u64 / core::mem::size_of::<Frame>() as u64) as u32
        } else {
            0
        };
    }
    entry.submit(0);
}
