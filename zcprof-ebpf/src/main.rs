//! zcprof's eBPF programs. One object, loaded by user space, which decides at run time which
//! programs to attach (see `zcprof/src/probes.rs`).
//!
//! One module per layer (what a layer provides: `zcprof/src/probes.rs`):
//! - `syscalls`: the syscall layer — counts calls, bytes, errors and sizes per
//!   `(tgid, syscall)` in the `STATS` hash map, in the kernel, with atomic adds.
//! - `kernel`: the kernel layer — copy primitives, in-kernel data paths and zero-copy
//!   internals, per `(tgid, probe)` in `KSTATS`, attached by fentry/fexit, kprobe/kretprobe
//!   or a tracepoint, whichever this kernel allows; its own exit program flushes `KSTATS`.
//! - `io_uring`: the io_uring layer — every completed io_uring request per `(tgid, opcode)`
//!   in `URSTATS`, joined to its submission (the only place its process is known) through
//!   bounded LRU maps; its own exit program flushes `URSTATS`.
//! - `mapped`: the mapped layer — file pages each process mapped in through mmap, per
//!   `(tgid, slot)` in `MSTATS`, counted above a high-water page per file in a bounded LRU
//!   map; its own exit program flushes `MSTATS`.
//! - `flows`: the flows layer (opt-in) — per `(tgid, flow)` in `FSTATS`, the kinds of
//!   descriptor (file, TCP, pipe, …) each successful syscall of the syscall layer moved
//!   bytes between, looked up from the syscall layer's exit programs; its own exit program
//!   flushes `FSTATS`.
//! - `threads`: the threads layer (opt-in) — the syscall layer's counts again per
//!   `(tgid, syscall | tid)` in `TSTATS`, from the syscall layer's exit programs; its own
//!   exit program flushes each thread's entries at that thread's exit.
//! - `stacks`: the stacks layer (opt-in) — the calling thread's user stack, sampled from
//!   the syscall layer's exit programs each time a `(tgid, syscall)` byte counter crosses
//!   a multiple of the period, sent through its own ring buffer `STACK_EVENTS`.
//! - `user`: the user layer (opt-in) — uprobes on user-space copy routines (glibc's
//!   resolved `memcpy`/`memmove`/`mempcpy`, Go's `runtime.memmove`), per `(tgid, routine)`
//!   in `USTATS`; its own exit program flushes `USTATS`.
//! - `lifecycle`: process fork/exec/exit — the only things that go through the ring buffer,
//!   plus the final totals of each exiting process (so PID reuse cannot merge two
//!   processes), and the flush helpers every counting layer's exit program uses.
//! - `maps`: the ring buffer, the health counters, and the counting helpers.
//! - `floor`: the benchmark's empty program (what the hook alone costs).

#![no_std]
#![no_main]
// For `atomic_xadd`: see `maps::add`.
#![feature(core_intrinsics)]
#![allow(internal_features, reason = "core_intrinsics is an internal feature")]

mod cpu;
mod floor;
mod flows;
mod io_uring;
mod kernel;
mod lifecycle;
mod mapped;
mod maps;
mod record;
mod stacks;
mod syscalls;
mod threads;
mod user;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here, so it is never executed.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
