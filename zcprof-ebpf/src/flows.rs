//! The flows layer: the kinds of descriptor each successful counted syscall moved bytes
//! between, per `(tgid, flow)` in `FSTATS` (the table and the rule: `zcprof_common::flows`).
//!
//! Called by the syscall layer's exit programs ([`count`]), which read the descriptors
//! from the task's saved registers their own way. Off unless user space set `FLOWS_ON`
//! (`--flows`, and every offset found in BTF): then one load and a branch per call.

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_probe_read_kernel},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key,
    flows::{self, FSTATS_MAX_ENTRIES, Lookup, kind},
    layer,
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::count as count_in,
    record::at,
};

/// `(tgid, flow) -> totals`, flushed at exit like `STATS`.
#[map]
pub static FSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(FSTATS_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static FLOWS_ON: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_TASK_FILES: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_FILES_FDT: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_FDT_MAX_FDS: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_FDT_FD: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_FILE_INODE: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_FILE_PRIVATE: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_INODE_MODE: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_INODE_SB: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_SB_MAGIC: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_SOCKET_SK: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_SK_FAMILY: u32 = 0;
#[unsafe(no_mangle)]
static FLOWS_SK_PROTOCOL: u32 = 0;

/// x86-64 `struct pt_regs` offsets of the first three syscall arguments.
const ARGS: [usize; 3] = [14 * 8, 13 * 8, 12 * 8];

/// Counts a successful call of syscall-layer row `index` that moved `bytes`, in its flow;
/// `reg` reads a saved register at a `pt_regs` offset.
#[inline(always)]
pub fn count(tgid: u32, index: u32, bytes: u64, reg: &impl Fn(usize) -> Option<u64>) {
    if at(&FLOWS_ON) == 0 {
        return;
    }
    let arg = |n: usize| reg(ARGS[n]).map_or(kind::UNKNOWN, kind_of);
    let slot = match flows::lookup(index) {
        Lookup::None => return,
        Lookup::Fixed(slot) => slot,
        Lookup::One { arg: n, base } => base + arg(n as usize),
        Lookup::Sendfile => flows::sendfile(arg(1), arg(0)),
        Lookup::Splice => flows::splice(arg(0), arg(2)),
    };
    count_in(&FSTATS, Key { tgid, slot }, false, 0, bytes);
}

/// A `T` at kernel address `base + offset`.
#[inline(always)]
fn kernel<T>(base: u64, offset: usize) -> Option<T> {
    // SAFETY: a kernel address; the helper checks the read and fails on a bad one.
    unsafe { bpf_probe_read_kernel((base as usize + offset) as *const T) }.ok()
}

/// The kind of the current task's descriptor `fd` (the register's low 32 bits: an `int`).
#[inline(always)]
fn kind_of(fd: u64) -> u32 {
    lookup_kind(fd as u32).unwrap_or(kind::UNKNOWN)
}

#[inline(always)]
fn lookup_kind(fd: u32) -> Option<u32> {
    // SAFETY: no arguments; returns the current task's address.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = kernel(task, at(&FLOWS_TASK_FILES))?;
    let fdt: u64 = kernel(files, at(&FLOWS_FILES_FDT))?;
    let max: u32 = kernel(fdt, at(&FLOWS_FDT_MAX_FDS))?;
    if fd >= max {
        return None;
    }
    let table: u64 = kernel(fdt, at(&FLOWS_FDT_FD))?;
    let file: u64 = kernel(table, fd as usize * 8)?;
    if file == 0 {
        // Closed meanwhile by another thread.
        return None;
    }
    let inode: u64 = kernel(file, at(&FLOWS_FILE_INODE))?;
    let mode: u16 = kernel(inode, at(&FLOWS_INODE_MODE))?;
    if flows::is_socket_mode(mode) {
        let socket: u64 = kernel(file, at(&FLOWS_FILE_PRIVATE))?;
        let sk: u64 = kernel(socket, at(&FLOWS_SOCKET_SK))?;
        let family: u16 = kernel(sk, at(&FLOWS_SK_FAMILY))?;
        let protocol: u16 = kernel(sk, at(&FLOWS_SK_PROTOCOL))?;
        return Some(flows::of_socket(family, protocol));
    }
    let magic = if flows::needs_magic(mode) {
        let sb: u64 = kernel(inode, at(&FLOWS_INODE_SB))?;
        kernel::<u64>(sb, at(&FLOWS_SB_MAGIC))?
    } else {
        0
    };
    Some(flows::of_inode(mode, magic))
}

exit_flush!(flush_flows, FSTATS, layer::FLOWS);

/// `sched:sched_process_exit` again, for the flows layer (as `process_exit_kernel`); does
/// nothing when the layer is off.
#[tracepoint]
pub fn process_exit_flows(ctx: TracePointContext) -> u32 {
    if at(&FLOWS_ON) != 0 {
        flush_ended(&ctx, flush_flows, flows::COUNT);
    }
    0
}
