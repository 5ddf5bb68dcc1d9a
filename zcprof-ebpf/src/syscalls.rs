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
//!
//! `MSG_ZEROCOPY`: the flags of sendto (`r10`), sendmsg and recvmsg (`dx`) are still in
//! the task's saved registers at exit. A send that passed `MSG_ZEROCOPY` is counted in its
//! syscall's zero-copy-requested row; a successful `recvmsg(MSG_ERRQUEUE)` that returned a
//! zero-copy notification (`sock_extended_err` with `SO_EE_ORIGIN_ZEROCOPY`, for the sends
//! `ee_info..=ee_data`) adds those sends to the "done" or, with
//! `SO_EE_CODE_ZEROCOPY_COPIED`, the "copied" row. The tracepoint mode finds the registers
//! with `bpf_task_pt_regs`, and only on those three syscalls' exits.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_loop, bpf_probe_read_kernel,
        bpf_probe_read_user, bpf_task_pt_regs,
    },
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::HashMap,
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use zcprof_common::{
    Counts, Key, counter,
    syscalls::{self, MMSG_ARGS_MAX_ENTRIES, MMSG_MAX, STATS_MAX_ENTRIES},
};

use crate::{
    flows,
    maps::{bump, count_as, count_many, stash},
    record::at,
    stacks, threads,
};

/// `(tgid, syscall) -> totals`, for live processes. Preallocated (the default), so updates
/// never allocate in the syscall path.
#[map]
pub static STATS: HashMap<Key, Counts> = HashMap::with_max_entries(STATS_MAX_ENTRIES, 0);

/// Tracepoint mode only: the `mmsghdr` vector of an in-flight recvmmsg/sendmmsg, by thread,
/// from enter to exit. Bounded by the number of threads in such a call at once.
#[map]
static MMSG_ARGS: HashMap<u64, u64> = HashMap::with_max_entries(MMSG_ARGS_MAX_ENTRIES, 0);

/// `task_struct.signal` and `signal_struct.nr_threads`, from BTF (0: unknown, then every
/// update is atomic).
#[unsafe(no_mangle)]
static SYSCALL_TASK_SIGNAL: u32 = 0;
#[unsafe(no_mangle)]
static SYSCALL_SIGNAL_NR_THREADS: u32 = 0;

/// Whether the current task is its process's only thread, so that no other task can update
/// the process's `STATS` entries while this program runs: only a thread of the process can
/// add one (by `clone`, which it is not in), and a thread that left has made its last update
/// before `nr_threads` dropped (`exit_notify`, after every syscall exit). `false` when the
/// offsets are unknown. Two loads through BTF pointers; it saves the atomics, which cost
/// more (bench/README.md).
#[inline(always)]
fn alone() -> bool {
    let (signal, nr_threads) = (at(&SYSCALL_TASK_SIGNAL), at(&SYSCALL_SIGNAL_NR_THREADS));
    if signal == 0 {
        return false;
    }
    // SAFETY: the current task, a trusted BTF pointer; `signal` is its `signal` member's
    // offset, `nr_threads` the `int` member's of `signal_struct` (this kernel's BTF). Loads
    // through BTF pointers are checked by the verifier and fault-safe.
    unsafe {
        let task = bpf_get_current_task_btf() as *const u8;
        let signal = core::ptr::read_volatile(task.add(signal).cast::<*const u8>());
        core::ptr::read_volatile(signal.add(nr_threads).cast::<i32>()) == 1
    }
}

/// x86-64 `struct pt_regs` offsets (arch/x86/include/asm/ptrace.h): the syscall number is
/// kept in `orig_ax`, and the arguments (`di`, `si`, `dx`, `r10`, …) are still there at exit.
const PT_REGS_R10: usize = 7 * 8;
const PT_REGS_DX: usize = 12 * 8;
const PT_REGS_SI: usize = 13 * 8;
const PT_REGS_ORIG_AX: usize = 15 * 8;

/// `struct msghdr` offsets of `msg_control` and `msg_controllen` (which recvmsg rewrites to
/// the length it filled).
const MSGHDR_CONTROL: u64 = 32;
const MSGHDR_CONTROLLEN: u64 = 40;
/// `struct cmsghdr` is `{ size_t len; int level; int type; }`, its data at 16; the
/// notification is a 16-byte `struct sock_extended_err` (include/uapi/linux/errqueue.h).
const CMSG_HDR: u64 = 16;
const EXTENDED_ERR: u64 = 16;
/// `SOL_IP`/`IP_RECVERR` and `SOL_IPV6`/`IPV6_RECVERR`: the error-queue control messages.
const RECVERR: [(i32, i32); 2] = [(0, 11), (41, 25)];

/// `struct mmsghdr` is a 56-byte `struct msghdr` followed by `unsigned int msg_len`.
const MMSGHDR_SIZE: u64 = 64;
const MMSGHDR_MSG_LEN: u64 = 56;

/// Offset of the `mmsg` pointer in `syscalls:sys_enter_{recv,send}mmsg` records
/// (after the 8-byte common header, `__syscall_nr` padded to 8, and `fd`).
const ENTER_MMSG_ARG: usize = 24;
/// Offsets of `__syscall_nr` and `ret` in `syscalls:sys_exit_*` records.
const EXIT_NR: usize = 8;
const EXIT_RET: usize = 16;

/// The one body of every syscall-exit program (whose context is `ctx`): syscall `nr`
/// returned `ret`; `mmsg_vec`
/// finds the `mmsghdr` vector of a recvmmsg/sendmmsg (called for those two only; `None`:
/// unknown, already counted as a loss by the caller); `reg` reads a saved register at a
/// `pt_regs` offset (called for sendto, sendmsg and recvmsg only).
#[inline(always)]
fn on_sys_exit(
    ctx: *mut c_void,
    nr: u64,
    ret: i64,
    mmsg_vec: impl FnOnce() -> Option<u64>,
    reg: impl Fn(usize) -> Option<u64>,
) {
    let Some(mut index) = syscalls::index_of(nr) else {
        return;
    };
    let bytes = if index == syscalls::RECVMMSG || index == syscalls::SENDMMSG {
        mmsg_vec().map_or(0, |vec| mmsg_bytes(vec, ret))
    } else {
        ret.max(0) as u64
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if index == syscalls::SENDTO || index == syscalls::SENDMSG {
        let at = if index == syscalls::SENDTO {
            PT_REGS_R10
        } else {
            PT_REGS_DX
        };
        if reg(at).is_some_and(|flags| flags & syscalls::MSG_ZEROCOPY != 0) {
            index = if index == syscalls::SENDTO {
                syscalls::SENDTO_ZEROCOPY
            } else {
                syscalls::SENDMSG_ZEROCOPY
            };
        }
    } else if index == syscalls::RECVMSG
        && ret >= 0
        && reg(PT_REGS_DX).is_some_and(|flags| flags & syscalls::MSG_ERRQUEUE != 0)
        && let Some(msg) = reg(PT_REGS_SI)
    {
        notification(pid_tgid, msg);
    }
    let key = Key { tgid, slot: index };
    // A failed syscall moved nothing (`bytes` is 0 then) and returned `-errno`.
    if let Some(before) = count_as(&STATS, key, ret < 0, ret.unsigned_abs(), bytes, alone()) {
        stacks::sample(ctx, pid_tgid, index, before, bytes, &reg);
    }
    threads::count(pid_tgid, index, ret < 0, ret.unsigned_abs(), bytes);
    if ret >= 0 {
        flows::count(tgid, index, bytes, &reg);
    }
}

/// A `T` read from user address `at`, `None` when unreadable (the application read garbage
/// too, or unmapped its buffer meanwhile: the notification is then not counted).
#[inline(always)]
fn user<T>(at: u64) -> Option<T> {
    // SAFETY: a user pointer; the helper checks the read and fails on a bad address.
    unsafe { bpf_probe_read_user(at as *const T) }.ok()
}

/// Counts the zero-copy notification that a successful `recvmsg(MSG_ERRQUEUE)` returned in
/// the user's `struct msghdr` at `msg`, if it is one: the first control message, when it is
/// an IP/IPv6 `RECVERR` whose error has origin `SO_EE_ORIGIN_ZEROCOPY` and no errno.
#[inline(always)]
fn notification(pid_tgid: u64, msg: u64) {
    let (Some(control), Some(len)) = (
        user::<u64>(msg + MSGHDR_CONTROL),
        user::<u64>(msg + MSGHDR_CONTROLLEN),
    ) else {
        return;
    };
    if control == 0 || len < CMSG_HDR + EXTENDED_ERR {
        return;
    }
    let Some(head) = user::<[i32; 2]>(control + 8) else {
        return;
    };
    if !RECVERR.contains(&(head[0], head[1])) {
        return;
    }
    // sock_extended_err: ee_errno u32, ee_origin u8, ee_type u8, ee_code u8, ee_pad u8,
    // ee_info u32, ee_data u32.
    let Some(err) = user::<[u32; 4]>(control + CMSG_HDR) else {
        return;
    };
    let [errno, origin_type_code, info, data] = err;
    let origin = origin_type_code as u8;
    let code = (origin_type_code >> 16) as u8;
    if errno != 0 || origin != syscalls::SO_EE_ORIGIN_ZEROCOPY {
        return;
    }
    let sends = data.wrapping_sub(info) as u64 + 1;
    let slot = if code & syscalls::SO_EE_CODE_ZEROCOPY_COPIED != 0 {
        syscalls::ZEROCOPY_COPIED
    } else {
        syscalls::ZEROCOPY_DONE
    };
    let tgid = (pid_tgid >> 32) as u32;
    count_many(&STATS, Key { tgid, slot }, sends);
    threads::count_many(pid_tgid, slot, sends);
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
    // SAFETY: as above.
    let reg = |at: usize| unsafe { bpf_probe_read_kernel::<u64>(regs.add(at).cast()) }.ok();
    on_sys_exit(
        ctx.as_ptr(),
        nr,
        ret,
        || {
            let vec = reg(PT_REGS_SI);
            if vec.is_none() {
                bump(counter::MMSG_UNREADABLE);
            }
            vec
        },
        reg,
    );
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
    // SAFETY: a register of the same `struct pt_regs`.
    let reg = |at: usize| Some(unsafe { core::ptr::read_volatile(regs.add(at).cast::<u64>()) });
    on_sys_exit(ctx.as_ptr(), nr, ret, || reg(PT_REGS_SI), reg);
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
    let reg = |at: usize| {
        // SAFETY: the helpers return the current task and its saved user registers (a
        // kernel address the read checks).
        let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u8;
        // SAFETY: a kernel address; the helper checks the read.
        unsafe { bpf_probe_read_kernel::<u64>(regs.wrapping_add(at).cast()) }.ok()
    };
    on_sys_exit(
        ctx.as_ptr(),
        nr as u64,
        ret,
        || {
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
        },
        reg,
    );
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
///
/// Summed in a `bpf_loop`, whose callback the verifier checks once: unrolled, the loop over
/// up to 1,024 messages, each with its way out, made up nearly all of the exit program's
/// verified instructions (485,000 by default, 800,000 once the counts had a single-thread
/// path: 4 s of load time); 4,300 without it.
#[inline(always)]
fn mmsg_bytes(vec: u64, ret: i64) -> u64 {
    let count = if ret < 0 {
        0
    } else {
        (ret as u64).min(MMSG_MAX as u64)
    };
    let mut sum = MmsgSum {
        vec,
        total: 0,
        unreadable: 0,
    };
    // SAFETY: `mmsg_len` has the callback signature `bpf_loop` expects, and `sum` lives on
    // this stack frame for the whole call.
    unsafe {
        bpf_loop(
            count as u32,
            mmsg_len as *mut c_void,
            (&raw mut sum).cast(),
            0,
        )
    };
    if sum.unreadable != 0 {
        bump(counter::MMSG_UNREADABLE);
    }
    sum.total
}

/// What [`mmsg_len`] adds up.
#[repr(C)]
struct MmsgSum {
    vec: u64,
    total: u64,
    /// 1 when a `msg_len` could not be read (the sum then stops there).
    unreadable: u64,
}

/// The `bpf_loop` callback of [`mmsg_bytes`]: adds message `i`'s length.
extern "C" fn mmsg_len(i: u64, sum: *mut c_void) -> i64 {
    // SAFETY: `mmsg_bytes` passes a pointer to its `MmsgSum`.
    let sum = unsafe { &mut *sum.cast::<MmsgSum>() };
    let len = (sum.vec + i * MMSGHDR_SIZE + MMSGHDR_MSG_LEN) as *const u32;
    // SAFETY: a user pointer; the helper checks the read and fails on a bad address.
    match unsafe { bpf_probe_read_user(len) } {
        Ok(len) => {
            sum.total += len as u64;
            0
        }
        Err(_) => {
            sum.unreadable = 1;
            1
        }
    }
}
