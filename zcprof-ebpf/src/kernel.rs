//! The kernel layer: probes on the kernel's copy primitives, in-kernel data paths and the
//! zero-copy internals (the table and what each counter means: `zcprof_common::kernel`).
//!
//! Every probed function has an fentry or fexit program (BTF-typed arguments, cheapest) and a
//! kprobe and/or kretprobe program for kernels where fentry is refused; user space picks one
//! per function at run time and attaches nothing else. Each program only turns its arguments
//! or return value into bytes and calls [`hit`], which aggregates per `(tgid, probe)` in
//! `KSTATS` exactly as the syscall layer does in `STATS`; `process_exit_kernel` flushes an
//! exiting process's entries the way `process_exit` flushes `STATS`.
//!
//! Argument positions follow the kernel prototypes (6.1 and 6.12 agree on all of them); an
//! fexit program finds the return value after the arguments.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    helpers::bpf_get_current_pid_tgid,
    macros::{fentry, fexit, kprobe, kretprobe, map, tracepoint},
    maps::HashMap,
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext, TracePointContext},
};
use zcprof_common::{
    Counts, Key,
    kernel::{self, COPY_ARGS_MAX_ENTRIES, KSTATS_MAX_ENTRIES, id},
    layer,
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::{count_as, stash},
    record, stacks,
};

/// The kernel layer: `(tgid, probe) -> totals` (`zcprof_common::kernel::PROBES`), kept and
/// flushed exactly like `STATS`.
#[map]
pub static KSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(KSTATS_MAX_ENTRIES, 0);

/// `_copy_{to,from}_user`'s size `n`, per thread, from kprobe to kretprobe (kprobe mode only:
/// fexit reads the argument itself).
#[map]
static COPY_ARGS: HashMap<u64, u64> = HashMap::with_max_entries(COPY_ARGS_MAX_ENTRIES, 0);

/// Counts one hit of counter `probe` (index into `kernel::PROBES`) for the current process:
/// `failed` counts an error (and `bytes` still count: a copy that faulted half-way moved half
/// its bytes).
/// With `--kernel-stacks`, a hit that crosses its counter's period is sampled with its
/// kernel stack (`stacks::sample_kernel`); `ctx` is the running program's context.
#[inline(always)]
fn hit(ctx: *mut c_void, probe: u32, failed: bool, bytes: u64) {
    let key = Key {
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        slot: probe,
    };
    // A kernel function's failure has no errno to count it by.
    if let Some(before) = count_as(&KSTATS, key, failed, 0, bytes, false) {
        stacks::sample_kernel(ctx, probe, before, bytes);
    }
}

exit_flush!(flush_kernel, KSTATS, layer::KERNEL);

/// `sched:sched_process_exit` again, for the kernel layer: moves the process's `KSTATS`
/// entries into the ring buffer as `FINAL` records, the way `process_exit` moves `STATS`. A
/// program of its own so that the syscall layer's exit flush does not depend on the kernel
/// layer; user space attaches it after `process_exit`, so its records may follow the `EXIT`
/// record, and the model attributes them to the instance that just ended.
#[tracepoint]
pub fn process_exit_kernel(ctx: TracePointContext) -> u32 {
    flush_ended(&ctx, flush_kernel, kernel::COUNT);
    0
}

/// Offset of `len` in `skb:skb_copy_datagram_iovec` records, set by user space from tracefs.
#[unsafe(no_mangle)]
static SKB_COPY_LEN_OFFSET: u32 = 0;

// ---- __check_object_size(const void *ptr, unsigned long n, bool to_user) -------------------

#[inline(always)]
fn check_object_size(ctx: *mut c_void, n: u64, to_user: u64) {
    // `bool` arguments only define their low byte.
    let probe = if to_user & 0xff != 0 {
        id::CHECK_OBJECT_SIZE_TO_USER
    } else {
        id::CHECK_OBJECT_SIZE_FROM_USER
    };
    hit(ctx, probe, false, n);
}

#[fentry]
pub fn fentry_check_object_size(ctx: FEntryContext) -> i32 {
    check_object_size(ctx.as_ptr(), ctx.arg(1), ctx.arg(2));
    0
}

#[kprobe]
pub fn kprobe_check_object_size(ctx: ProbeContext) -> u32 {
    if let (Some(n), Some(to_user)) = (ctx.arg::<u64>(1), ctx.arg::<u64>(2)) {
        check_object_size(ctx.as_ptr(), n, to_user);
    }
    0
}

// ---- skb_copy_datagram_{iter,from_iter}(skb, int offset, iov_iter *, int len) --------------
// Counted at entry: `len` is what the caller asked to copy; a fault (-EFAULT) is rare and
// ends the syscall with an error the syscall layer shows.

#[inline(always)]
fn len_bytes(len: i32) -> u64 {
    if len < 0 { 0 } else { len as u64 }
}

#[fentry]
pub fn fentry_skb_copy_datagram_iter(ctx: FEntryContext) -> i32 {
    hit(
        ctx.as_ptr(),
        id::SKB_COPY_DATAGRAM_ITER,
        false,
        len_bytes(ctx.arg::<i32>(3)),
    );
    0
}

#[kprobe]
pub fn kprobe_skb_copy_datagram_iter(ctx: ProbeContext) -> u32 {
    if let Some(len) = ctx.arg::<i32>(3) {
        hit(
            ctx.as_ptr(),
            id::SKB_COPY_DATAGRAM_ITER,
            false,
            len_bytes(len),
        );
    }
    0
}

/// `skb:skb_copy_datagram_iovec`, fired at the top of `skb_copy_datagram_iter` with its `len`:
/// the same number where neither fentry nor kprobe is available.
#[tracepoint]
pub fn skb_copy_datagram_iovec_tp(ctx: TracePointContext) -> u32 {
    let at = record::at(&SKB_COPY_LEN_OFFSET);
    // SAFETY: offset from this kernel's tracefs format; the helper checks the read.
    if let Ok(len) = unsafe { ctx.read_at::<i32>(at) } {
        hit(
            ctx.as_ptr(),
            id::SKB_COPY_DATAGRAM_ITER,
            false,
            len_bytes(len),
        );
    }
    0
}

#[fentry]
pub fn fentry_skb_copy_datagram_from_iter(ctx: FEntryContext) -> i32 {
    hit(
        ctx.as_ptr(),
        id::SKB_COPY_DATAGRAM_FROM_ITER,
        false,
        len_bytes(ctx.arg::<i32>(3)),
    );
    0
}

#[kprobe]
pub fn kprobe_skb_copy_datagram_from_iter(ctx: ProbeContext) -> u32 {
    if let Some(len) = ctx.arg::<i32>(3) {
        hit(
            ctx.as_ptr(),
            id::SKB_COPY_DATAGRAM_FROM_ITER,
            false,
            len_bytes(len),
        );
    }
    0
}

// ---- _copy_{to,from}_user(to, from, unsigned long n) -> unsigned long not_copied -----------

#[inline(always)]
fn copied(ctx: *mut c_void, probe: u32, n: u64, not_copied: u64) {
    // A fault leaves `not_copied` bytes uncopied: the call is an error, and what did move
    // before the fault still counts as bytes.
    hit(ctx, probe, not_copied != 0, n.saturating_sub(not_copied));
}

#[fexit]
pub fn fexit_copy_to_user(ctx: FExitContext) -> i32 {
    copied(ctx.as_ptr(), id::COPY_TO_USER, ctx.arg(2), ctx.arg(3));
    0
}

#[fexit]
pub fn fexit_copy_from_user(ctx: FExitContext) -> i32 {
    copied(ctx.as_ptr(), id::COPY_FROM_USER, ctx.arg(2), ctx.arg(3));
    0
}

#[inline(always)]
fn stash_n(ctx: &ProbeContext) {
    if let Some(n) = ctx.arg::<u64>(2) {
        stash(&COPY_ARGS, bpf_get_current_pid_tgid(), n);
    }
}

#[inline(always)]
fn unstash_n(probe: u32, ctx: &RetProbeContext) {
    let thread = bpf_get_current_pid_tgid();
    // SAFETY: a plain u64, copied out before the entry is removed.
    let n = unsafe { COPY_ARGS.get(thread) }.copied();
    let _ = COPY_ARGS.remove(thread);
    if let Some(n) = n {
        copied(ctx.as_ptr(), probe, n, ctx.ret::<u64>());
    }
}

#[kprobe]
pub fn kprobe_copy_to_user(ctx: ProbeContext) -> u32 {
    stash_n(&ctx);
    0
}

#[kretprobe]
pub fn kretprobe_copy_to_user(ctx: RetProbeContext) -> u32 {
    unstash_n(id::COPY_TO_USER, &ctx);
    0
}

#[kprobe]
pub fn kprobe_copy_from_user(ctx: ProbeContext) -> u32 {
    stash_n(&ctx);
    0
}

#[kretprobe]
pub fn kretprobe_copy_from_user(ctx: RetProbeContext) -> u32 {
    unstash_n(id::COPY_FROM_USER, &ctx);
    0
}

// ---- functions whose return value is the byte count --------------------------------------
// size_t for the iov_iter copies (never negative), ssize_t for the rest (negative: an error).

#[inline(always)]
fn returned(ctx: *mut c_void, probe: u32, ret: i64) {
    if ret < 0 {
        hit(ctx, probe, true, 0);
    } else {
        hit(ctx, probe, false, ret as u64);
    }
}

/// fexit and kretprobe programs for a function whose return value is the byte count, at
/// argument position `$ret_at` for fexit.
macro_rules! returns_bytes {
    ($fexit:ident, $kretprobe:ident, $probe:expr, $ret_at:literal) => {
        #[fexit]
        pub fn $fexit(ctx: FExitContext) -> i32 {
            returned(ctx.as_ptr(), $probe, ctx.arg::<i64>($ret_at));
            0
        }

        #[kretprobe]
        pub fn $kretprobe(ctx: RetProbeContext) -> u32 {
            returned(ctx.as_ptr(), $probe, ctx.ret::<i64>());
            0
        }
    };
}

// _copy_to_iter(const void *addr, size_t bytes, struct iov_iter *i)
returns_bytes!(
    fexit_copy_to_iter,
    kretprobe_copy_to_iter,
    id::COPY_TO_ITER,
    3
);
// _copy_from_iter(void *addr, size_t bytes, struct iov_iter *i)
returns_bytes!(
    fexit_copy_from_iter,
    kretprobe_copy_from_iter,
    id::COPY_FROM_ITER,
    3
);
// copy_page_to_iter(struct page *, size_t offset, size_t bytes, struct iov_iter *)
returns_bytes!(
    fexit_copy_page_to_iter,
    kretprobe_copy_page_to_iter,
    id::COPY_PAGE_TO_ITER,
    4
);
// copy_page_from_iter_atomic(struct page *, size_t offset, size_t bytes, struct iov_iter *)
returns_bytes!(
    fexit_copy_page_from_iter_atomic,
    kretprobe_copy_page_from_iter_atomic,
    id::COPY_PAGE_FROM_ITER_ATOMIC,
    4
);
// pipe_read(struct kiocb *, struct iov_iter *)
returns_bytes!(fexit_pipe_read, kretprobe_pipe_read, id::PIPE_READ, 2);
// pipe_write(struct kiocb *, struct iov_iter *)
returns_bytes!(fexit_pipe_write, kretprobe_pipe_write, id::PIPE_WRITE, 2);
// do_splice(in, off_in, out, off_out, size_t len, unsigned int flags)
returns_bytes!(fexit_do_splice, kretprobe_do_splice, id::DO_SPLICE, 6);
// do_sendfile(int out_fd, int in_fd, loff_t *ppos, size_t count, loff_t max)
returns_bytes!(fexit_do_sendfile, kretprobe_do_sendfile, id::DO_SENDFILE, 5);
// splice_direct_to_actor(struct file *in, struct splice_desc *sd, actor)
returns_bytes!(
    fexit_splice_direct_to_actor,
    kretprobe_splice_direct_to_actor,
    id::SPLICE_DIRECT_TO_ACTOR,
    3
);
// splice_to_socket(pipe, struct file *out, loff_t *ppos, size_t len, unsigned int flags)
returns_bytes!(
    fexit_splice_to_socket,
    kretprobe_splice_to_socket,
    id::SPLICE_TO_SOCKET,
    5
);
// iter_file_splice_write(pipe, struct file *out, loff_t *ppos, size_t len, unsigned int flags)
returns_bytes!(
    fexit_iter_file_splice_write,
    kretprobe_iter_file_splice_write,
    id::ITER_FILE_SPLICE_WRITE,
    5
);

// ---- filemap_read(struct kiocb *, struct iov_iter *, ssize_t already_read) -> ssize_t -----
// Returns the total including `already_read` (bytes a direct-I/O attempt moved first); fexit
// subtracts it, kretprobe cannot see it (it is 0 for buffered reads, the common case).

#[inline(always)]
fn filemap(ctx: *mut c_void, ret: i64, already_read: i64) {
    if ret < 0 {
        hit(ctx, id::FILEMAP_READ, true, 0);
    } else {
        let already = if already_read > 0 { already_read } else { 0 };
        let bytes = if ret > already { ret - already } else { 0 };
        hit(ctx, id::FILEMAP_READ, false, bytes as u64);
    }
}

#[fexit]
pub fn fexit_filemap_read(ctx: FExitContext) -> i32 {
    filemap(ctx.as_ptr(), ctx.arg::<i64>(3), ctx.arg::<i64>(2));
    0
}

#[kretprobe]
pub fn kretprobe_filemap_read(ctx: RetProbeContext) -> u32 {
    filemap(ctx.as_ptr(), ctx.ret::<i64>(), 0);
    0
}
