//! Process lifecycle: fork, exec and exit, sent once each through the `EVENTS` ring buffer.
//!
//! At exit a process's entries in every counting layer's map are moved into the ring buffer
//! as `FINAL` records and deleted: the syscall layer's (`STATS`) by `process_exit` before the
//! `EXIT` record, every other layer's by an exit program of its own in its module, made with
//! [`exit_flush!`] and [`flush_ended`] (the kernel layer's `process_exit_kernel`). User space
//! therefore sees every byte of a process even if it exits between two reads of the maps,
//! and a later process that gets the same PID starts from zero instead of inheriting the
//! old totals.
//!
//! Which processes are followed (`record --pid`, `record -- CMD`, `run`) is decided here
//! too, in `FOLLOWED`: `task_newtask` adds the child of a followed process at fork, and
//! the lifecycle records say whether their process is followed. `process_exit` removes the
//! exiting process's entry when it sends its `EXIT` record, which carries the flag: the
//! kernel layer's exit program runs after it on the same tracepoint hit and its `FINAL`
//! records go to the instance that `EXIT` ended (user space keeps membership per instance),
//! so nothing of the process is lost to the removal, and the pid cannot be reused before
//! every exit program of this hit has run (the task is not yet released).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_loop,
    },
    macros::{map, tracepoint},
    maps::{HashMap, ring_buf::RingBufEntry},
    programs::TracePointContext,
};
use zcprof_common::{
    COMM_LEN, Counts, Event, FOLLOWED_ENTRIES, Key, counter, event_kind, layer, syscalls,
};

use crate::{
    maps::{EVENTS, bump},
    record,
    syscalls::STATS,
};

/// Tracepoint field offsets, set by user space from tracefs before loading (see
/// `zcprof_common::global`). Read with `read_volatile` so the compiler does not fold the
/// zero initialisers into the code.
#[unsafe(no_mangle)]
static NEWTASK_PID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static NEWTASK_FLAGS_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static EXIT_GROUP_DEAD_OFFSET: u32 = 0;

const CLONE_THREAD: u64 = 0x0001_0000;

/// Followed processes, `tgid -> parent tgid` (see `zcprof_common::FOLLOWED_MAP`).
#[map]
pub static FOLLOWED: HashMap<u32, u32> = HashMap::with_max_entries(FOLLOWED_ENTRIES, 0);

/// Who a lifecycle record is about, beyond the current task: `(parent, followed)`.
#[derive(Clone, Copy)]
struct Membership {
    parent: u32,
    followed: u32,
}

const NOT_FOLLOWED: Membership = Membership {
    parent: 0,
    followed: 0,
};

/// `tgid`'s entry in `FOLLOWED`, if it is followed.
#[inline(always)]
fn membership(tgid: u32) -> Membership {
    // SAFETY: the value is copied out at once.
    match unsafe { FOLLOWED.get(tgid) } {
        Some(parent) => Membership {
            parent: *parent,
            followed: 1,
        },
        None => NOT_FOLLOWED,
    }
}

#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    match try_task_newtask(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

fn try_task_newtask(ctx: &TracePointContext) -> Result<(), ()> {
    let flags_at = record::at(&NEWTASK_FLAGS_OFFSET);
    let pid_at = record::at(&NEWTASK_PID_OFFSET);
    // SAFETY: offsets come from this kernel's tracefs format; the helper checks the read.
    let flags: u64 = unsafe { ctx.read_at(flags_at) }.map_err(|_| ())?;
    if flags & CLONE_THREAD != 0 {
        // A thread: its syscalls are counted under its process's tgid already.
        return Ok(());
    }
    // SAFETY: as above.
    let child: i32 = unsafe { ctx.read_at(pid_at) }.map_err(|_| ())?;
    // The current task is the parent; the child starts with the parent's comm.
    let parent = (bpf_get_current_pid_tgid() >> 32) as u32;
    let mut who = NOT_FOLLOWED;
    // SAFETY: only whether an entry exists is used.
    if unsafe { FOLLOWED.get(parent) }.is_some() {
        // The child is a descendant either way (the record says so); if the map is full it
        // is not followed further, which is a counted loss.
        who = Membership {
            parent,
            followed: 1,
        };
        if FOLLOWED.insert(child as u32, parent, 0).is_err() {
            bump(counter::FOLLOW_FULL);
        }
    }
    emit(event_kind::FORK, child as u32, who);
    Ok(())
}

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    // After exec the current task is the process's leader with the new comm.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    emit(event_kind::EXEC, 0, membership(tgid));
    0
}

#[tracepoint]
pub fn process_exit(ctx: TracePointContext) -> u32 {
    match try_process_exit(&ctx) {
        Ok(()) | Err(()) => 0,
    }
}

/// `(tgid, pid)` when this exit ends the whole process, `None` for a thread's exit.
#[inline(always)]
fn process_ended(ctx: &TracePointContext) -> Result<Option<(u32, u32)>, ()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, pid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let group_dead_at = record::at(&EXIT_GROUP_DEAD_OFFSET);
    let ended = if group_dead_at != 0 {
        // SAFETY: offset from this kernel's tracefs format; the helper checks the read.
        let group_dead: u8 = unsafe { ctx.read_at(group_dead_at) }.map_err(|_| ())?;
        group_dead != 0
    } else {
        // Older kernels: the leader's exit stands for the process's end.
        pid == tgid
    };
    Ok(ended.then_some((tgid, pid)))
}

fn try_process_exit(ctx: &TracePointContext) -> Result<(), ()> {
    let Some((tgid, pid)) = process_ended(ctx)? else {
        return Ok(());
    };
    flush(flush_syscall, syscalls::COUNT, tgid, pid);
    let who = membership(tgid);
    if who.followed != 0 {
        let _ = FOLLOWED.remove(tgid);
    }
    emit(event_kind::EXIT, pid, who);
    Ok(())
}

/// The body of a counting layer's own exit program: when `ctx` ends a whole process, calls
/// `one` (made by [`exit_flush!`]) for each of the layer's `slots`.
#[inline(always)]
pub fn flush_ended(ctx: &TracePointContext, one: FlushOne, slots: usize) {
    if let Ok(Some((tgid, pid))) = process_ended(ctx) {
        flush(one, slots, tgid, pid);
    }
}

/// What a flush callback needs to know about the exiting process.
#[repr(C)]
pub struct Exiting {
    pub tgid: u32,
    pub pid: u32,
}

/// A `bpf_loop` callback: `(index, context) -> 0 to go on, 1 to stop`.
pub type FlushOne = extern "C" fn(u64, *mut c_void) -> i64;

/// Calls `one` for every index below `count` through `bpf_loop` (Linux 5.17+), so the
/// verifier checks the per-entry body once instead of once per iteration: an unrolled or
/// bounded loop over all entries, each with its own reserve/submit branches, is more than
/// the Linux 6.1 verifier accepts (E2BIG), while 6.12 prunes it.
#[inline(always)]
fn flush(one: FlushOne, count: usize, tgid: u32, pid: u32) {
    let mut exiting = Exiting { tgid, pid };
    // SAFETY: `one` is a static BPF function with the callback signature `bpf_loop` expects,
    // and `exiting` lives on this stack frame for the whole call.
    unsafe {
        bpf_loop(
            count as u32,
            one as *mut c_void,
            (&raw mut exiting).cast(),
            0,
        )
    };
}

/// Defines `$name`, a [`FlushOne`] callback that moves `$map[(tgid, index)]` of the exiting
/// process into a `FINAL` record of layer `$layer` (a `zcprof_common::layer` id).
macro_rules! exit_flush {
    ($name:ident, $map:expr, $layer:expr) => {
        extern "C" fn $name(index: u64, exiting: *mut core::ffi::c_void) -> i64 {
            let exiting = exiting.cast::<$crate::lifecycle::Exiting>();
            // SAFETY: `flush` passes a pointer to an initialised `Exiting` on its stack.
            let $crate::lifecycle::Exiting { tgid, pid } = unsafe { core::ptr::read(exiting) };
            let key = zcprof_common::Key {
                tgid,
                slot: index as u32,
            };
            $crate::lifecycle::move_out(&$map, key, $layer, pid);
            0
        }
    };
}
pub(crate) use exit_flush;

exit_flush!(flush_syscall, STATS, layer::SYSCALL);

/// Copies the entry at `key`, if any, into a `FINAL` record of `layer` and deletes it.
#[inline(always)]
pub fn move_out(map: &HashMap<Key, Counts>, key: Key, layer: u32, pid: u32) {
    // SAFETY: the value is copied into the record before the entry is removed; every
    // thread of the process is gone, so nothing updates it concurrently.
    let Some(counts) = (unsafe { map.get(key) }) else {
        return;
    };
    // Delete the entry before the record that carries its totals becomes visible: user
    // space reads the ring buffer, then the map, and must find each count in exactly one.
    // If no record can be reserved the entry stays, and user space still counts it from
    // the map.
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        bump(counter::RINGBUF_FULL);
        return;
    };
    fill(
        &mut entry,
        event_kind::FINAL,
        pid,
        NOT_FOLLOWED,
        layer,
        key.slot,
        Some(counts),
    );
    let _ = map.remove(key);
    entry.submit(0);
}

/// Sends one lifecycle record (FORK, EXEC, EXIT) for the current task, or counts a lost
/// event if the ring buffer is full. Reserved, filled and submitted in one branch: Linux
/// 6.1's verifier cannot tell that a reserved record checked once is still non-null when
/// checked again after the fill (whose zeroing of `counts` is a call of its own), and
/// rejects the program for a reference it thinks may leak.
#[inline(always)]
fn emit(kind: u32, pid: u32, who: Membership) {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        bump(counter::RINGBUF_FULL);
        return;
    };
    fill(&mut entry, kind, pid, who, 0, 0, None);
    entry.submit(0);
}

/// Fills a reserved record for the current task; every field is written.
#[inline(always)]
fn fill(
    entry: &mut RingBufEntry<Event>,
    kind: u32,
    pid: u32,
    who: Membership,
    layer: u32,
    slot: u32,
    counts: Option<&Counts>,
) {
    let event = entry.as_mut_ptr();
    let comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    // SAFETY: `event` points to a reserved, writable record of `size_of::<Event>()` bytes;
    // every field is written before submit.
    unsafe {
        (*event).kind = kind;
        (*event).tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        (*event).pid = pid;
        (*event).parent = who.parent;
        (*event).followed = who.followed;
        (*event).layer = layer;
        (*event).slot = slot;
        (*event)._pad = 0;
        (*event).cgroup = bpf_get_current_cgroup_id();
        (*event).comm = comm;
        (*event).counts = match counts {
            Some(counts) => *counts,
            None => Counts::ZERO,
        };
    }
}
