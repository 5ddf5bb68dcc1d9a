//! The flows layer: the kinds of descriptor each successful counted syscall moved bytes
//! between, per `(tgid, flow)` in `FSTATS` (the table and the rule: `zcprof_common::flows`).
//!
//! Called by the syscall layer's exit programs ([`count`]), which read the descriptors
//! from the task's saved registers their own way. Off unless user space set `FLOWS_ON`
//! (`--flows`, and every offset found in BTF): then one load and a branch per call. With
//! `run --files` (`FILES_ON`) it also counts per `(process, file)` in `FILES`.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_loop, bpf_probe_read_kernel_str_bytes,
        generated,
    },
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray},
    programs::TracePointContext,
};
use zcprof_common::{
    Counts, Key, counter,
    files::{self, FILES_MAX_ENTRIES, FileBytes},
    flows::{self, FSTATS_MAX_ENTRIES, Lookup, kind},
    layer,
    mapped::FileKey,
};

use crate::{
    lifecycle::{exit_flush, flush_ended},
    maps::{add, bump, count as count_in},
    record::at,
};

/// `(tgid, flow) -> totals`, flushed at exit like `STATS`.
#[map]
pub static FSTATS: HashMap<Key, Counts> = HashMap::with_max_entries(FSTATS_MAX_ENTRIES, 0);

/// `(process, file) -> bytes`, with `run --files` (`zcprof_common::files`): user space
/// reads it and deletes the entries of exited processes.
#[map]
pub static FILES: HashMap<FileKey, FileBytes> = HashMap::with_max_entries(FILES_MAX_ENTRIES, 0);

#[unsafe(no_mangle)]
static FLOWS_ON: u32 = 0;
#[unsafe(no_mangle)]
static FILES_ON: u32 = 0;
#[unsafe(no_mangle)]
static FILES_FILE_DENTRY: u32 = 0;
#[unsafe(no_mangle)]
static FILES_DENTRY_NAME: u32 = 0;
#[unsafe(no_mangle)]
static FILES_INODE_INO: u32 = 0;
#[unsafe(no_mangle)]
static FILES_SB_DEV: u32 = 0;
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

/// Counts a successful call of syscall-layer row `index` that moved `bytes`, in its flow
/// (and, with `run --files`, per file); `reg` reads a saved register at a `pt_regs` offset.
///
/// The lookups run in a one-iteration `bpf_loop`, whose callback the verifier checks once,
/// apart from the caller's paths: inline, their branches multiplied with the syscall and
/// threads layers' own until the verifier's limit of a million instructions (`--threads`
/// with `--files`).
#[inline(always)]
pub fn count(tgid: u32, index: u32, bytes: u64, reg: &impl Fn(usize) -> Option<u64>) {
    if at(&FLOWS_ON) == 0 || matches!(flows::lookup(index), Lookup::None) {
        return;
    }
    // An unreadable register reads as an impossible descriptor: `unknown`.
    let arg = |n: usize| reg(ARGS[n]).unwrap_or(u64::MAX);
    let Some(call) = FLOW_CALL.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a live per-CPU map value.
    unsafe {
        *call = Call {
            pid_tgid: bpf_get_current_pid_tgid(),
            tgid,
            index,
            bytes,
            args: [arg(0), arg(1), arg(2)],
        };
    }
    // SAFETY: `count_call` has the callback signature `bpf_loop` expects; it takes no
    // context.
    unsafe { bpf_loop(1, count_call as *mut c_void, core::ptr::null_mut(), 0) };
}

/// What [`count_call`] needs to know about the call.
#[repr(C)]
#[derive(Clone, Copy)]
struct Call {
    /// Whose call it is (see [`count`]).
    pid_tgid: u64,
    tgid: u32,
    index: u32,
    bytes: u64,
    /// The first three syscall arguments.
    args: [u64; 3],
}

/// The call [`count`] hands to [`count_call`]: through a map, not the stack, because the
/// verifier reads a map value as unknown and so checks the callback once rather than once
/// per path of the exit program that reaches it (with the call on the stack, the lookups
/// were checked again for every syscall the exit program tells apart).
#[map]
static FLOW_CALL: PerCpuArray<Call> = PerCpuArray::with_max_entries(1, 0);

/// The `bpf_loop` callback of [`count`].
extern "C" fn count_call(_: u64, _: *mut c_void) -> i64 {
    let Some(call) = FLOW_CALL.get_ptr(0) else {
        return 1;
    };
    // SAFETY: a live per-CPU map value.
    let Call {
        pid_tgid,
        tgid,
        index,
        bytes,
        args,
    } = unsafe { *call };
    // A task preempted between the write and this callback may find another task's call
    // here: counted as lost, never given to the wrong process.
    if pid_tgid != bpf_get_current_pid_tgid() {
        bump(counter::STASH_FULL);
        return 1;
    }
    let arg = |n: usize| describe(args[n]);
    let slot = match flows::lookup(index) {
        Lookup::None => return 1,
        Lookup::Fixed(slot) => slot,
        Lookup::One { arg: n, base } => {
            let d = arg(n as usize);
            per_file(tgid, &d, base == flows::READ_FROM, bytes);
            base + d.kind
        }
        Lookup::Sendfile => {
            let (input, output) = (arg(1), arg(0));
            per_file(tgid, &input, true, bytes);
            per_file(tgid, &output, false, bytes);
            flows::sendfile(input.kind, output.kind)
        }
        Lookup::Splice => {
            let (input, output) = (arg(0), arg(2));
            per_file(tgid, &input, true, bytes);
            per_file(tgid, &output, false, bytes);
            flows::splice(input.kind, output.kind)
        }
    };
    count_in(&FSTATS, Key { tgid, slot }, false, 0, bytes);
    1
}

/// What one of the call's descriptors is: its kind, and its `struct file` and inode
/// (0 when unknown), which per-file attribution needs.
struct Desc {
    kind: u32,
    file: u64,
    inode: u64,
}

const UNKNOWN: Desc = Desc {
    kind: kind::UNKNOWN,
    file: 0,
    inode: 0,
};

/// With `run --files`: counts the call for `d`'s file, its bytes read from it (`read`) or
/// written to it.
#[inline(always)]
fn per_file(tgid: u32, d: &Desc, read: bool, bytes: u64) {
    if d.inode != 0 && at(&FILES_ON) != 0 {
        file_bytes(tgid, d, read, bytes);
    }
}

/// Out of line: a BPF subprogram, so that the call sites (up to two per syscall) do not
/// each carry a copy of the map update and the name read through the verifier.
#[inline(never)]
fn file_bytes(tgid: u32, d: &Desc, read: bool, bytes: u64) {
    let sb: u64 = kernel(d.inode, at(&FLOWS_INODE_SB));
    let key = FileKey {
        ino: kernel(d.inode, at(&FILES_INODE_INO)),
        dev: kernel(sb, at(&FILES_SB_DEV)),
        tgid,
    };
    let entry = match FILES.get_ptr_mut(key) {
        Some(entry) => entry,
        None => {
            // By reference: a by-value zero is built on the stack byte by byte (see
            // `maps::entry`).
            #[expect(clippy::needless_borrows_for_generic_args, reason = "see above")]
            let made = FILES
                .insert(&key, &FileBytes::ZERO, BPF_NOEXIST as u64)
                .is_ok();
            let Some(entry) = FILES.get_ptr_mut(key) else {
                bump(counter::STATS_FULL);
                return;
            };
            if made {
                name_into(entry, d);
            }
            entry
        }
    };
    // SAFETY: a live map value from a successful lookup; u64 fields, 8-byte aligned.
    unsafe {
        add(&raw mut (*entry).calls, 1);
        if read {
            add(&raw mut (*entry).read_bytes, bytes);
        } else {
            add(&raw mut (*entry).written_bytes, bytes);
        }
    }
}

/// Writes `d`'s kind and its dentry's name into a new entry (once per `(process, file)`).
#[inline(always)]
fn name_into(entry: *mut FileBytes, d: &Desc) {
    // SAFETY: a live map value, just made by this call.
    unsafe { (*entry).kind = d.kind };
    let dentry: u64 = kernel(d.file, at(&FILES_FILE_DENTRY));
    let name: u64 = kernel(dentry, at(&FILES_DENTRY_NAME));
    if name == 0 {
        return;
    }
    // SAFETY: `entry` is a live map value, only this call writes its name; the helper
    // checks the kernel read and bounds it by the destination.
    let _ = unsafe {
        let dest: &mut [u8; files::NAME_LEN] = &mut (*entry).name;
        bpf_probe_read_kernel_str_bytes(name as *const u8, dest)
    };
}

/// The `T` at kernel address `base + offset`, zero when it cannot be read (the helper
/// zeroes its destination on failure). No branch on the helper's result: the lookups are
/// chains of these reads on every counted call, and a branch per read multiplied the paths
/// the verifier walks past its limit once the threads and per-file counts joined them.
#[inline(always)]
fn kernel<T: Copy>(base: u64, offset: usize) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper checks the kernel read and, on failure, zeroes the destination, so
    // `v` is initialised either way (`T` is a plain integer here: zero is a valid value).
    unsafe {
        generated::bpf_probe_read_kernel(
            v.as_mut_ptr().cast(),
            core::mem::size_of::<T>() as u32,
            (base as usize + offset) as *const core::ffi::c_void,
        );
        v.assume_init()
    }
}

/// The current task's descriptor `fd` (the register's low 32 bits: an `int`).
#[inline(always)]
fn describe(fd: u64) -> Desc {
    lookup(fd as u32).unwrap_or(UNKNOWN)
}

#[inline(always)]
fn lookup(fd: u32) -> Option<Desc> {
    // SAFETY: no arguments; returns the current task's address.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = kernel(task, at(&FLOWS_TASK_FILES));
    let fdt: u64 = kernel(files, at(&FLOWS_FILES_FDT));
    // 0 when any read before failed.
    let max: u32 = kernel(fdt, at(&FLOWS_FDT_MAX_FDS));
    if fd >= max {
        return None;
    }
    let table: u64 = kernel(fdt, at(&FLOWS_FDT_FD));
    let file: u64 = kernel(table, fd as usize * 8);
    let inode: u64 = kernel(file, at(&FLOWS_FILE_INODE));
    if inode == 0 {
        // Closed meanwhile by another thread (or unreadable).
        return None;
    }
    let mode: u16 = kernel(inode, at(&FLOWS_INODE_MODE));
    let kind = if flows::is_socket_mode(mode) {
        let socket: u64 = kernel(file, at(&FLOWS_FILE_PRIVATE));
        let sk: u64 = kernel(socket, at(&FLOWS_SOCKET_SK));
        if sk == 0 {
            return None;
        }
        let family: u16 = kernel(sk, at(&FLOWS_SK_FAMILY));
        let protocol: u16 = kernel(sk, at(&FLOWS_SK_PROTOCOL));
        flows::of_socket(family, protocol)
    } else {
        let magic = if flows::needs_magic(mode) {
            let sb: u64 = kernel(inode, at(&FLOWS_INODE_SB));
            kernel::<u64>(sb, at(&FLOWS_SB_MAGIC))
        } else {
            0
        };
        flows::of_inode(mode, magic)
    };
    Some(Desc { kind, file, inode })
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
