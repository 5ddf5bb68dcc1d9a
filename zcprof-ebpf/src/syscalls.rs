//! The syscall layer: what each completed read/write-family and zero-copy syscall moved,
//! per `(tgid, syscall)` in the `STATS` hash map.
//!
//! Three ways to see syscall exits, chosen by user space at run time:
//! - `sys_exit_btf`, a BTF-enabled raw tracepoint (`tp_btf`) on `sys_exit`: one program
//!   runs for every syscall and filters by number, reading the number straight from the
//!   BTF-typed `pt_regs` (no helper call). Cheapest per hit; needs the kernel's BTF.
//! - `sys_exit_raw`, the same on a plain raw tracepoint, reading `pt_regs` through
//!   `bpf_probe_read_kernel`. Needs no BTF and no tracefs.
//! - `sys_exit_tp`, a classic tracepoint attached to each `syscalls:sys_exit_<name>`:
//!   runs only for counted syscalls, and a missing one is visible by name. Used when raw
//!   tracepoints are unavailable, or on request.
//!
//! Each only reads the syscall number, the return value and (for recvmmsg/sendmmsg) where
//! the message vector is, its own way; the one body [`on_sys_exit`] does the rest, so the
//! three give identical numbers.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel, bpf_probe_read_user},
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::HashMap,
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use zcprof_common::{
    Counts, Key, counter,
    syscalls::{self, MMSG_ARGS_MAX_ENTRIES, MMSG_MAX, STATS_MAX_ENTRIES},
};

use crate::maps::{bump, count, stash};

/// `(tgid, syscall) -> totals`, for live processes. Preallocated (the default), so updates
/// never allocate in the syscall path.
#[map]
pub static STATS: HashMap<Key, Counts> = HashMap::with_max_entries(STATS_MAX_ENTRIES, 0);

/// Tracepoint mode only: the `mmsghdr` vector of an in-flight recvmmsg/sendmmsg, by thread,
/// from enter to exit. Bounded by the number of threads in such a call at once.
#[map]
static MMSG_ARGS: HashMap<u64, u64> = HashMap::with_max_entries(MMSG_ARGS_MAX_ENTRIES, 0);

/// x86-64 `struct pt_regs` offsets (arch/x86/include/asm/ptrace.h): the syscall number is
/// kept in `orig_ax`, and the second argument in `si` is still there at exit.
const PT_REGS_SI: usize = 13 * 8;
const PT_REGS_ORIG_AX: usize = 15 * 8;

/// `struct mmsghdr` is a 56-byte `struct msghdr` followed by `unsigned int msg_len`.
const MMSGHDR_SIZE: u64 = 64;
const MMSGHDR_MSG_LEN: u64 = 56;

/// Offset of the `mmsg` pointer in `syscalls:sys_enter_{recv,send}mmsg` records
/// (after the 8-byte common header, `__syscall_nr` padded to 8, and `fd`).
const ENTER_MMSG_ARG: usize = 24;
/// Offsets of `__syscall_nr` and `ret` in `syscalls:sys_exit_*` records.
const EXIT_NR: usize = 8;
const EXIT_RET: usize = 16;

/// The one body of every syscall-exit program: syscall `nr` returned `ret`; `mmsg_vec`
/// finds the `mmsghdr` vector of a recvmmsg/sendmmsg (called for those two only; `None`:
/// unknown, already counted as a loss by the caller).
#[inline(always)]
fn on_sys_exit(nr: u64, ret: i64, mmsg_vec: impl FnOnce() -> Option<u64>) {
    let Some(index) = syscalls::index_of(nr) else {
        return;
    };
    let bytes = if index == syscalls::RECVMMSG || index == syscalls::SENDMMSG {
        mmsg_vec().map_or(0, |vec| mmsg_bytes(vec, ret))
    } else {
        ret.max(0) as u64
    };
    let key = Key {
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        slot: index,
    };
    // A failed syscall moved nothing (`bytes` is 0 then) and returned `-errno`.
    count(&STATS, key, ret < 0, ret.unsigned_abs(), bytes);
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_raw(ctx: RawTracePointContext) -> i32 {
    // TP_PROTO(struct pt_regs *regs, long ret)
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // SAFETY: `regs` is the kernel's pt_regs of the current task; the helper checks the read.
    let Ok(nr) = (unsafe { bpf_probe_read_kernel::<u64>(regs.add(PT_REGS_ORIG_AX).cast()) }) else {
        return 0;
    };
    on_sys_exit(nr, ret, || {
        // SAFETY: as above.
        match unsafe { bpf_probe_read_kernel::<u64>(regs.add(PT_REGS_SI).cast()) } {
            Ok(vec) => Some(vec),
            Err(_) => {
                bump(counter::MMSG_UNREADABLE);
                None
            }
        }
    });
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_btf(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(struct pt_regs *regs, long ret); `regs` is typed by BTF, so the verifier
    // lets us load its fields directly (as fault-safe loads): no helper call per syscall.
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // SAFETY: `orig_ax` of the BTF-typed `struct pt_regs` of the current task.
    let nr = unsafe { core::ptr::read_volatile(regs.add(PT_REGS_ORIG_AX).cast::<u64>()) };
    on_sys_exit(nr, ret, || {
        // SAFETY: `si` of the same `struct pt_regs`.
        Some(unsafe { core::ptr::read_volatile(regs.add(PT_REGS_SI).cast::<u64>()) })
    });
    0
}

#[tracepoint]
pub fn sys_exit_tp(ctx: TracePointContext) -> u32 {
    // SAFETY: fixed offsets of every syscalls:sys_exit_* record; user space checks them
    // against tracefs before attaching.
    let read = unsafe { (ctx.read_at::<i32>(EXIT_NR), ctx.read_at::<i64>(EXIT_RET)) };
    let (Ok(nr), Ok(ret)) = read else {
        return 0;
    };
    on_sys_exit(nr as u64, ret, || {
        let thread = bpf_get_current_pid_tgid();
        // SAFETY: plain u64 value; copied out before the entry is removed.
        let vec = unsafe { MMSG_ARGS.get(thread) }.copied();
        let _ = MMSG_ARGS.remove(thread);
        if vec.is_none() {
            // Attached after the call began (or its enter found the stash full): the bytes
            // of this one call are unknown.
            bump(counter::MMSG_NO_ENTER);
        }
        vec
    });
    0
}

#[tracepoint]
pub fn sys_enter_mmsg_tp(ctx: TracePointContext) -> u32 {
    // SAFETY: fixed offset of `mmsg` in sys_enter_{recv,send}mmsg, checked by user space.
    if let Ok(vec) = unsafe { ctx.read_at::<u64>(ENTER_MMSG_ARG) } {
        stash(&MMSG_ARGS, bpf_get_current_pid_tgid(), vec);
    }
    0
}

/// Bytes moved by a recvmmsg/sendmmsg that returned `ret` messages: the kernel has written
/// each message's length into `msg_len` of the user's `mmsghdr` vector at `vec`.
#[inline(always)]
fn mmsg_bytes(vec: u64, ret: i64) -> u64 {
    let count = if ret < 0 { 0 } else { ret as u64 };
    let mut total = 0u64;
    for i in 0..MMSG_MAX as u64 {
        if i >= count {
            break;
        }
        let len = (vec + i * MMSGHDR_SIZE + MMSGHDR_MSG_LEN) as *const u32;
        // SAFETY: a user pointer; the helper checks the read and fails on a bad address.
        match unsafe { bpf_probe_read_user(len) } {
            Ok(len) => total += len as u64,
            Err(_) => {
                bump(counter::MMSG_UNREADABLE);
                break;
            }
        }
    }
    total
}
