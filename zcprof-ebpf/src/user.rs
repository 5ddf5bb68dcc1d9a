//! The user layer (`zcprof_common::user`, opt-in with `--user-copies`): uprobes on the
//! entries of user-space copy routines, counting per `(tgid, routine)` in `USTATS`. The
//! routine's slot is the probe's attach cookie (user space attaches one program to every
//! routine of its calling convention); the size is the routine's length argument.
//!
//! The uprobes fire in every process mapping a probed file: with `USER_FOLLOWED_ONLY` the
//! programs count only the processes the lifecycle layer follows (one hash lookup first).

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_attach_cookie, bpf_get_current_pid_tgid},
    macros::{map, tracepoint, uprobe},
    maps::HashMap,
    programs::{ProbeContext, TracePointContext},
};
use zcprof_common::{
    Counts, Key, layer,
    user::{self, USTATS_MAX_ENTRIES},
};

use crate::{
    lifecycle::{FOLLOWED, exit_flush, flush_ended},
    maps::count,
    record::at,
};

/// `(tgid, routine) -> totals` (bytes = the size arguments), flushed at exit like `STATS`.
#[map]
pub static USTATS: HashMap<Key, Counts> = HashMap::with_max_entries(USTATS_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static USER_FOLLOWED_ONLY: u32 = 0;

/// `memcpy`/`memmove`/`mempcpy(dst, src, n)`: `n` is the third C argument.
#[uprobe]
pub fn user_c_copy(ctx: ProbeContext) -> u32 {
    if let Some(n) = ctx.arg::<u64>(2) {
        copied(&ctx, n);
    }
    0
}

/// `runtime.memmove(to, from, n)` in Go's register ABI: `n` in `rcx`.
#[uprobe]
pub fn user_go_memmove(ctx: ProbeContext) -> u32 {
    // SAFETY: a uprobe's context is the task's saved user registers, readable directly.
    let n = unsafe { (*ctx.regs).rcx };
    copied(&ctx, n);
    0
}

/// Counts one copy of `n` bytes for the current process in the slot the probe was
/// attached with.
#[inline(always)]
fn copied(ctx: &ProbeContext, n: u64) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only whether the entry exists is used.
    if at(&USER_FOLLOWED_ONLY) != 0 && unsafe { FOLLOWED.get(tgid) }.is_none() {
        return;
    }
    // SAFETY: the helper reads the attach cookie of the running program's link.
    let slot = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    if slot as usize >= user::COUNT {
        return;
    }
    count(&USTATS, Key { tgid, slot }, false, 0, n);
}

exit_flush!(flush_user, USTATS, layer::USER);

/// `sched:sched_process_exit` again, for the user layer (as `process_exit_kernel`).
#[tracepoint]
pub fn process_exit_user(ctx: TracePointContext) -> u32 {
    flush_ended(&ctx, flush_user, user::COUNT);
    0
}
