//! The user layer's shared names (opt-in, `--user-copies`): copies a process makes inside
//! its own memory through a copy routine, per `(tgid, routine)` in `USTATS`, counted by
//! uprobes on the routines' entries (glibc's IFUNC-selected `memcpy`/`memmove`/`mempcpy`,
//! Go's `runtime.memmove`).
//!
//! # What is counted
//! `calls` = entries into the routine, `bytes` = the size argument of each (what the caller
//! asked to copy), `hist` = log2 sizes ([`crate::hist::bucket`]). One uprobe program per
//! calling convention ([`program`]); the slot comes from the probe's attach cookie, which
//! user space sets to the routine's slot when it attaches.
//!
//! glibc's `memcpy` and `memmove` resolve to one implementation on x86-64 (memcpy's IFUNC
//! picks a `__memmove_*` variant), so one probe counts both: its slot is [`MEMCPY_MEMMOVE`],
//! named for both, never split by a guess. `mempcpy` enters its variant at its own address
//! and jumps past memmove's entry, so it is counted once, in its own slot.
//!
//! It is its own figure: bytes copied inside a process are neither the syscall layer's
//! copies (between user space and the kernel) nor zero-copy bytes, and no total adds them.

/// `memcpy` and `memmove` where they resolve to the same address (one probe).
pub const MEMCPY_MEMMOVE: u32 = 0;
/// `memcpy` where it resolves to an address of its own.
pub const MEMCPY: u32 = 1;
/// `memmove` where it resolves to an address of its own.
pub const MEMMOVE: u32 = 2;
/// glibc's `mempcpy`.
pub const MEMPCPY: u32 = 3;
/// Go's `runtime.memmove` (what `copy()` and slice growth call).
pub const GO_MEMMOVE: u32 = 4;
/// Slots per process.
pub const COUNT: usize = 5;
/// The slots' names, indexed by `Key::slot` (the run report's and the recordings'
/// `layers.user.probes`).
pub const NAMES: [&str; COUNT] = [
    "memcpy/memmove",
    "memcpy",
    "memmove",
    "mempcpy",
    "runtime.memmove",
];

/// Program names, as `zcprof-ebpf/src/user.rs` exports them.
pub mod program {
    /// A C-ABI routine `(dst, src, n)`: the size is the third argument (`rdx`).
    pub const C_COPY: &str = "user_c_copy";
    /// Go's `runtime.memmove(to, from, n)` in the register ABI (ABIInternal, Go 1.17+ on
    /// amd64): `to` in `rax`, `from` in `rbx`, `n` in `rcx`.
    pub const GO_MEMMOVE: &str = "user_go_memmove";
    /// `sched:sched_process_exit`: moves the exiting process's `USTATS` entries into
    /// `FINAL` records.
    pub const PROCESS_EXIT: &str = "process_exit_user";
}

/// Name of the `(tgid, slot) -> Counts` map.
pub const USTATS_MAP: &str = "USTATS";
/// Bound of `USTATS`: live `(process, routine)` pairs, flushed at exit.
pub const USTATS_MAX_ENTRIES: u32 = 16_384;

/// The read-only globals user space sets before loading.
pub mod global {
    /// 1: count only the processes in `FOLLOWED_MAP` (`run`, `record -- CMD`, `record
    /// --pid`); the uprobes fire in every process that maps the probed file, and a process
    /// nobody reports should not fill the map.
    pub const FOLLOWED_ONLY: &str = "USER_FOLLOWED_ONLY";
}

/// The user layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::USER,
    map: USTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_slots() {
        assert_eq!(NAMES[MEMCPY_MEMMOVE as usize], "memcpy/memmove");
        assert_eq!(NAMES[MEMPCPY as usize], "mempcpy");
        assert_eq!(NAMES[GO_MEMMOVE as usize], "runtime.memmove");
        assert_eq!(GO_MEMMOVE as usize, COUNT - 1);
    }
}
