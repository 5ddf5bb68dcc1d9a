//! The io_uring layer: every completed io_uring request per `(tgid, opcode)` in `URSTATS`
//! (what a completion counts, and why submissions decide the process:
//! `zcprof_common::io_uring`).
//!
//! `io_uring_complete` runs wherever the kernel posts the CQE, so it never looks at the
//! current task. Where user space found the request's layout in BTF (`URING_REQ_FIELDS`),
//! it reads the opcode and the submitting task's thread group from the request (three or
//! four bounded kernel reads), and submissions keep nothing but what the CQEs without a
//! request need. Otherwise `io_uring_submit`, which runs where a request is submitted (the
//! submitting task or its SQPOLL thread, same thread group), keeps `req -> (tgid, opcode)`
//! in an LRU map that the completion looks up and forgets when the request posts no more
//! CQEs. Either way it keeps `(ring, user_data)` for multishot receives and `ring -> tgid`
//! for zero-copy sends. A completion placed by none of them is counted as
//! `IO_URING_UNMATCHED`. Record offsets come from tracefs (globals set by user space).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key, counter,
    io_uring::{
        self, BYTES_MASK, CQE_F_MORE, CQE_F_NOTIF, ENTER_SEEN, INFLIGHT_MAX_ENTRIES, JOIN_MAPS,
        JOIN_TCTX, MULTISHOT_MASK, NOTIF, NOTIF_COPIED, NOTIF_REPORTED, NOTIF_USAGE_ZC_COPIED,
        OPCODES, OTHER_OPCODE, RINGS_MAX_ENTRIES, RingTag, SEND_ZC_MASK, URSTATS_MAX_ENTRIES,
    },
    layer,
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::{bump, count},
    record::{at, field},
};

/// `(tgid, slot) -> totals` (slots: `zcprof_common::io_uring::OPS`), flushed at exit like
/// `STATS`.
#[map]
pub static URSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(URSTATS_MAX_ENTRIES, 0);

/// In-flight requests: `req -> tgid << 32 | opcode`. LRU: a request that never posts a CQE
/// (IOSQE_CQE_SKIP_SUCCESS, a cancelled ring) must not fill the map for good.
#[map]
static INFLIGHT: LruHashMap<u64, u64> = LruHashMap::with_max_entries(INFLIGHT_MAX_ENTRIES, 0);

/// Multishot requests by `(ring, user_data)`, for the CQEs the kernel posts without a
/// request; same value as `INFLIGHT`.
#[map]
static MULTISHOT: LruHashMap<RingTag, u64> = LruHashMap::with_max_entries(INFLIGHT_MAX_ENTRIES, 0);

/// Rings that submitted a zero-copy send: `ring -> tgid`, for their notifications (which
/// come with a request of their own that was never submitted).
#[map]
static RINGS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(RINGS_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static URING_SUBMIT_CTX: u32 = 0;
#[unsafe(no_mangle)]
static URING_SUBMIT_REQ: u32 = 0;
#[unsafe(no_mangle)]
static URING_SUBMIT_USER_DATA: u32 = 0;
#[unsafe(no_mangle)]
static URING_SUBMIT_OPCODE: u32 = 0;
#[unsafe(no_mangle)]
static URING_COMPLETE_CTX: u32 = 0;
#[unsafe(no_mangle)]
static URING_COMPLETE_REQ: u32 = 0;
#[unsafe(no_mangle)]
static URING_COMPLETE_USER_DATA: u32 = 0;
#[unsafe(no_mangle)]
static URING_COMPLETE_RES: u32 = 0;
#[unsafe(no_mangle)]
static URING_COMPLETE_CFLAGS: u32 = 0;
#[unsafe(no_mangle)]
static URING_NOTIF_ZC_REPORT: u32 = 0;
#[unsafe(no_mangle)]
static URING_REQ_FIELDS: u32 = JOIN_MAPS;
#[unsafe(no_mangle)]
static URING_REQ_OPCODE: u32 = 0;
#[unsafe(no_mangle)]
static URING_REQ_TASK: u32 = 0;
#[unsafe(no_mangle)]
static URING_TCTX_TASK: u32 = 0;
#[unsafe(no_mangle)]
static URING_TASK_TGID: u32 = 0;

/// Whether completions read their process from the request (no per-request map entry).
#[inline(always)]
fn from_request() -> bool {
    at(&URING_REQ_FIELDS) as u32 != JOIN_MAPS
}

/// A kernel value at `base + offset`.
#[inline(always)]
fn kernel<T>(base: u64, offset: usize) -> Option<T> {
    // SAFETY: a checked read of kernel memory; a bad address only fails the helper.
    unsafe { bpf_probe_read_kernel((base as usize + offset) as *const T) }.ok()
}

/// `tgid << 32 | opcode` of the live request `req`, read from it (offsets from BTF).
#[inline(always)]
fn owner(req: u64) -> Option<u64> {
    let opcode: u8 = kernel(req, at(&URING_REQ_OPCODE))?;
    let mut task: u64 = kernel(req, at(&URING_REQ_TASK))?;
    if at(&URING_REQ_FIELDS) as u32 == JOIN_TCTX {
        task = kernel(task, at(&URING_TCTX_TASK))?;
    }
    let tgid: u32 = kernel(task, at(&URING_TASK_TGID))?;
    if tgid == 0 {
        return None;
    }
    Some(u64::from(tgid) << 32 | u64::from(opcode))
}

#[inline(always)]
fn has(mask: u64, opcode: u64) -> bool {
    opcode < OPCODES as u64 && (mask >> opcode) & 1 != 0
}

#[tracepoint]
pub fn io_uring_submit(ctx: TracePointContext) -> u32 {
    match try_submit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_submit(ctx: &TracePointContext) -> Result<(), ()> {
    let req: u64 = field(ctx, at(&URING_SUBMIT_REQ))?;
    let opcode = u64::from(field::<u8>(ctx, at(&URING_SUBMIT_OPCODE))?);
    let keep = has(MULTISHOT_MASK, opcode) || has(SEND_ZC_MASK, opcode);
    if !keep && from_request() {
        // The completion reads everything from the request: the common case costs this.
        return Ok(());
    }
    let tgid = bpf_get_current_pid_tgid() >> 32;
    let value = tgid << 32 | opcode;
    // An LRU insert makes room by evicting; it fails only without memory.
    if !from_request() && INFLIGHT.insert(req, value, 0).is_err() {
        bump(counter::STASH_FULL);
    }
    if keep {
        let ring: u64 = field(ctx, at(&URING_SUBMIT_CTX))?;
        if has(SEND_ZC_MASK, opcode) {
            let _ = RINGS.insert(ring, tgid as u32, 0);
        } else {
            let user_data: u64 = field(ctx, at(&URING_SUBMIT_USER_DATA))?;
            let tag = RingTag {
                ctx: ring,
                user_data,
            };
            if MULTISHOT.insert(tag, value, 0).is_err() {
                bump(counter::STASH_FULL);
            }
        }
    }
    Ok(())
}

/// Whether the notification request `req` reports usage (`io_notif_data.zc_report`, at an
/// offset from BTF); `false` when the offset is unknown or the byte unreadable.
#[inline(always)]
fn reports_usage(req: u64) -> bool {
    let offset = at(&URING_NOTIF_ZC_REPORT);
    if offset == 0 || req == 0 {
        return false;
    }
    // SAFETY: a checked kernel read of one byte inside the live request.
    unsafe { bpf_probe_read_kernel((req as usize + offset) as *const u8) }.is_ok_and(|b| b != 0)
}

#[tracepoint]
pub fn io_uring_complete(ctx: TracePointContext) -> u32 {
    match try_complete(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_complete(ctx: &TracePointContext) -> Result<(), ()> {
    let req: u64 = field(ctx, at(&URING_COMPLETE_REQ))?;
    let res: i32 = field(ctx, at(&URING_COMPLETE_RES))?;
    let cflags: u32 = field(ctx, at(&URING_COMPLETE_CFLAGS))?;
    let ring: u64 = field(ctx, at(&URING_COMPLETE_CTX))?;
    if cflags & CQE_F_NOTIF != 0 {
        // SAFETY: the value is copied out at once.
        let Some(tgid) = (unsafe { RINGS.get(ring) }).copied() else {
            bump(counter::IO_URING_UNMATCHED);
            return Ok(());
        };
        count(&URSTATS, Key { tgid, slot: NOTIF }, false, 0, 0);
        if reports_usage(req) {
            let slot = NOTIF_REPORTED;
            count(&URSTATS, Key { tgid, slot }, false, 0, 0);
        }
        if res as u32 & NOTIF_USAGE_ZC_COPIED != 0 {
            let slot = NOTIF_COPIED;
            count(&URSTATS, Key { tgid, slot }, false, 0, 0);
        }
        return Ok(());
    }
    let by_req = match (req, from_request()) {
        (0, _) => None,
        (_, true) => owner(req),
        // SAFETY: the value is copied out at once.
        (_, false) => unsafe { INFLIGHT.get(req) }.copied(),
    };
    let more = cflags & CQE_F_MORE != 0;
    let value = match by_req {
        Some(value) => value,
        None => {
            let user_data: u64 = field(ctx, at(&URING_COMPLETE_USER_DATA))?;
            let tag = RingTag {
                ctx: ring,
                user_data,
            };
            // SAFETY: the value is copied out at once.
            let Some(value) = (unsafe { MULTISHOT.get(tag) }).copied() else {
                bump(counter::IO_URING_UNMATCHED);
                return Ok(());
            };
            if !more {
                let _ = MULTISHOT.remove(tag);
            }
            value
        }
    };
    let tgid = (value >> 32) as u32;
    let opcode = value & 0xff;
    let slot = if opcode < OPCODES as u64 {
        opcode as u32
    } else {
        OTHER_OPCODE
    };
    let key = Key { tgid, slot };
    if res < 0 {
        count(&URSTATS, key, true, u64::from(res.unsigned_abs()), 0);
    } else {
        let bytes = if has(BYTES_MASK, opcode) {
            res as u64
        } else {
            0
        };
        count(&URSTATS, key, false, 0, bytes);
    }
    // A zero-copy send's F_MORE announces its notification, not another CQE of this request.
    if by_req.is_some() && (!more || has(SEND_ZC_MASK, opcode)) {
        if !from_request() {
            let _ = INFLIGHT.remove(req);
        }
        if has(MULTISHOT_MASK, opcode)
            && let Ok(user_data) = field::<u64>(ctx, at(&URING_COMPLETE_USER_DATA))
        {
            let _ = MULTISHOT.remove(RingTag {
                ctx: ring,
                user_data,
            });
        }
    }
    Ok(())
}

/// `syscalls:sys_enter_io_uring_setup` / `sys_enter_io_uring_enter`, attached only when the
/// layer could not attach: marks the process as an io_uring user (calls only).
#[tracepoint]
pub fn io_uring_enter_seen(_ctx: TracePointContext) -> u32 {
    let key = Key {
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        slot: ENTER_SEEN,
    };
    count(&URSTATS, key, false, 0, 0);
    0
}

exit_flush!(flush_io_uring, URSTATS, layer::IO_URING);

/// `sched:sched_process_exit` again, for the io_uring layer (as `process_exit_kernel`).
#[tracepoint]
pub fn process_exit_io_uring(ctx: TracePointContext) -> u32 {
    flush_ended(&ctx, flush_io_uring, io_uring::COUNT);
    0
}
