//! The syscall layer's shared names and table: the syscalls it counts, how each is
//! classified, and the map from x86-64 syscall numbers to our dense indexes (the `slot` of
//! its `STATS` keys).
//!
//! Only x86-64 numbers are listed: other architectures fail to compile here rather than
//! silently counting the wrong syscalls.

#[cfg(not(target_arch = "x86_64"))]
#[cfg(not(target_arch = "bpf"))]
compile_error!("zcprof's syscall table lists x86-64 syscall numbers only");

/// How a syscall moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The bytes crossed the user/kernel boundary by a CPU copy.
    Copy,
    /// The bytes moved between kernel objects without passing through user memory.
    ZeroCopy,
    /// The caller asked the kernel to send straight from its pages (`MSG_ZEROCOPY` on a
    /// send): the kernel may still copy (always on loopback, and whenever the socket lacks
    /// `SO_ZEROCOPY`), which only its completion notifications tell ([`Family::Notice`]).
    ZeroCopyRequested,
    /// Not a call: sends that `MSG_ZEROCOPY` completion notifications reported, as read by
    /// the application with `recvmsg(MSG_ERRQUEUE)` (`calls` = sends, `bytes` = 0).
    Notice,
    /// A call whose result is not a byte count (io_uring's OPENAT, POLL_ADD, …): calls and
    /// errors only.
    Control,
}

/// What a row of [`SYSCALLS`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Row {
    /// Every call of one syscall, as strace names it (its own tracepoint).
    Syscall,
    /// The calls of the syscall `nr` that passed `MSG_ZEROCOPY`, which its own row then
    /// does not count.
    ZeroCopyFlag,
    /// `MSG_ZEROCOPY` notifications read at `recvmsg(MSG_ERRQUEUE)` exits: sends completed
    /// without a copy (`copied` false) or that the kernel copied anyway (`copied` true).
    Notification { copied: bool },
}

/// Which way a copy went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Kernel to user memory (read family).
    KernelToUser,
    /// User memory to kernel (write family).
    UserToKernel,
    /// Kernel object to kernel object (zero-copy family).
    KernelToKernel,
}

/// One counted syscall.
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    /// The name as strace and man pages spell it.
    pub name: &'static str,
    /// The name in the kernel's tracepoints (`syscalls:sys_exit_<event>`).
    pub event: &'static str,
    /// x86-64 syscall number.
    pub nr: u32,
    pub family: Family,
    pub direction: Direction,
    /// The return value counts messages, not bytes: the bytes are the sum of the
    /// `msg_len` fields of the `mmsghdr` vector (recvmmsg/sendmmsg).
    pub counts_messages: bool,
    pub row: Row,
}

impl Syscall {
    /// A syscall of its own (not a sub-row of one): what has a tracepoint and a number.
    pub const fn is_syscall(&self) -> bool {
        matches!(self.row, Row::Syscall)
    }
}

const fn copy(name: &'static str, nr: u32, direction: Direction) -> Syscall {
    Syscall {
        name,
        event: name,
        nr,
        family: Family::Copy,
        direction,
        counts_messages: false,
        row: Row::Syscall,
    }
}

const fn zero_copy(name: &'static str, event: &'static str, nr: u32) -> Syscall {
    Syscall {
        name,
        event,
        nr,
        family: Family::ZeroCopy,
        direction: Direction::KernelToKernel,
        counts_messages: false,
        row: Row::Syscall,
    }
}

const fn mmsg(name: &'static str, nr: u32, direction: Direction) -> Syscall {
    Syscall {
        name,
        event: name,
        nr,
        family: Family::Copy,
        direction,
        counts_messages: true,
        row: Row::Syscall,
    }
}

/// The `MSG_ZEROCOPY` calls of send syscall `event`.
const fn zero_copy_flag(name: &'static str, event: &'static str, nr: u32) -> Syscall {
    Syscall {
        name,
        event,
        nr,
        family: Family::ZeroCopyRequested,
        direction: Direction::UserToKernel,
        counts_messages: false,
        row: Row::ZeroCopyFlag,
    }
}

const fn notification(name: &'static str, copied: bool) -> Syscall {
    Syscall {
        name,
        event: "recvmsg",
        nr: 47,
        family: Family::Notice,
        direction: Direction::KernelToKernel,
        counts_messages: false,
        row: Row::Notification { copied },
    }
}

use Direction::{KernelToUser as K2U, UserToKernel as U2K};

/// Every counted syscall; the `slot` of a `STATS` key is an index into this table.
///
/// vmsplice is in the zero-copy family as the issue defines it: user pages are mapped into
/// the pipe, not copied. (vmsplice *from* a pipe to user memory does copy; the syscall
/// layer cannot tell the two apart, the kernel layer can.)
///
/// After the syscalls come their sub-rows ([`Row`]): sendto and sendmsg with `MSG_ZEROCOPY`
/// (sendmmsg's stay in its copy row: how many of its messages the kernel took is not known
/// per message), and the sends that notifications reported. They are the same syscalls'
/// calls, counted in one row each: no call is in two rows.
pub const SYSCALLS: [Syscall; 25] = [
    copy("read", 0, K2U),
    copy("write", 1, U2K),
    copy("pread64", 17, K2U),
    copy("pwrite64", 18, U2K),
    copy("readv", 19, K2U),
    copy("writev", 20, U2K),
    copy("preadv", 295, K2U),
    copy("pwritev", 296, U2K),
    copy("preadv2", 327, K2U),
    copy("pwritev2", 328, U2K),
    copy("recvfrom", 45, K2U),
    copy("sendto", 44, U2K),
    copy("recvmsg", 47, K2U),
    copy("sendmsg", 46, U2K),
    mmsg("recvmmsg", 299, K2U),
    mmsg("sendmmsg", 307, U2K),
    zero_copy("sendfile", "sendfile64", 40),
    zero_copy("splice", "splice", 275),
    zero_copy("vmsplice", "vmsplice", 278),
    zero_copy("tee", "tee", 276),
    zero_copy("copy_file_range", "copy_file_range", 326),
    zero_copy_flag("sendto_zerocopy", "sendto", 44),
    zero_copy_flag("sendmsg_zerocopy", "sendmsg", 46),
    notification("msg_zerocopy_done", false),
    notification("msg_zerocopy_copied", true),
];

/// Index of sendto with `MSG_ZEROCOPY` in [`SYSCALLS`].
pub const SENDTO_ZEROCOPY: u32 = 21;
/// Index of sendmsg with `MSG_ZEROCOPY` in [`SYSCALLS`].
pub const SENDMSG_ZEROCOPY: u32 = 22;
/// Index of the sends notified as completed without a copy.
pub const ZEROCOPY_DONE: u32 = 23;
/// Index of the sends notified as copied by the kernel.
pub const ZEROCOPY_COPIED: u32 = 24;
/// Indexes of sendto, sendmsg and recvmsg (whose flags the exit programs read).
pub const SENDTO: u32 = 11;
pub const RECVMSG: u32 = 12;
pub const SENDMSG: u32 = 13;

/// `MSG_ZEROCOPY` (include/linux/socket.h).
pub const MSG_ZEROCOPY: u64 = 0x400_0000;
/// `MSG_ERRQUEUE`.
pub const MSG_ERRQUEUE: u64 = 0x2000;
/// `SO_EE_ORIGIN_ZEROCOPY` (include/uapi/linux/errqueue.h).
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel copied the range's data after all.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Number of counted syscalls.
pub const COUNT: usize = SYSCALLS.len();

/// Globals set by user space: byte offsets of kernel struct members from BTF, with which the
/// exit programs tell a process's only thread (whose counts need no atomics); 0 when
/// unknown.
pub mod global {
    /// `task_struct.signal`.
    pub const TASK_SIGNAL: &str = "SYSCALL_TASK_SIGNAL";
    /// `signal_struct.nr_threads`.
    pub const SIGNAL_NR_THREADS: &str = "SYSCALL_SIGNAL_NR_THREADS";
}

/// Name of the syscall layer's `(tgid, syscall) -> Counts` hash map.
pub const STATS_MAP: &str = "STATS";
/// Bound of the `STATS` map: live `(tgid, syscall)` pairs. Entries of exited processes are
/// flushed to user space and deleted by the exit program, so only live processes occupy it.
/// 10,000 live processes with a few counted syscalls each fit (issue 15's scale); the map is
/// preallocated, ~400 B an entry: ~27 MiB of kernel memory. A full map is counted
/// (`stats_map_full`).
pub const STATS_MAX_ENTRIES: u32 = 65_536;
/// Bound of the tracepoint mode's `MMSG_ARGS` stash: threads inside a recvmmsg/sendmmsg at
/// once.
pub const MMSG_ARGS_MAX_ENTRIES: u32 = 4096;
/// Longest recvmmsg/sendmmsg vector the kernel accepts (UIO_MAXIOV); bounds our loop.
pub const MMSG_MAX: u32 = 1024;

/// The syscall layer as a counting layer. `process_exit` flushes it before the `EXIT`
/// record, so it has no exit program of its own.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::SYSCALL,
    map: STATS_MAP,
    slots: COUNT,
    exit_flush: None,
};

/// The syscall layer's program names, as the macros in `zcprof-ebpf/src/syscalls.rs` export
/// them.
pub mod program {
    /// BTF-enabled raw tracepoint (`tp_btf`) on `sys_exit`: one program for every syscall
    /// (preferred when the kernel has BTF).
    pub const SYS_EXIT_BTF: &str = "sys_exit_btf";
    /// Raw tracepoint on `sys_exit`: one program for every syscall.
    pub const SYS_EXIT_RAW: &str = "sys_exit_raw";
    /// Classic tracepoint attached to each `syscalls:sys_exit_*` (fallback mode).
    pub const SYS_EXIT_TP: &str = "sys_exit_tp";
    /// Classic tracepoint on `syscalls:sys_enter_{recvmmsg,sendmmsg}` (fallback mode).
    pub const SYS_ENTER_MMSG_TP: &str = "sys_enter_mmsg_tp";
}

/// Index of recvmmsg in [`SYSCALLS`].
pub const RECVMMSG: u32 = 14;
/// Index of sendmmsg in [`SYSCALLS`].
pub const SENDMMSG: u32 = 15;
/// Indexes of the zero-copy syscalls in [`SYSCALLS`] (the flows layer reads their two
/// descriptors).
pub const SENDFILE: u32 = 16;
pub const SPLICE: u32 = 17;
pub const VMSPLICE: u32 = 18;
pub const TEE: u32 = 19;
pub const COPY_FILE_RANGE: u32 = 20;

/// Our index (into [`SYSCALLS`]) of the syscall strace calls `name`, or `None` when it is
/// not counted.
pub fn index_named(name: &str) -> Option<usize> {
    SYSCALLS.iter().position(|s| s.name == name)
}

/// Our index for x86-64 syscall number `nr`, or `None` when the syscall is not counted.
///
/// A `match` rather than a table lookup: in the eBPF program this compiles to a short
/// compare tree that the verifier accepts without a map, on the path every syscall takes.
#[inline(always)]
pub fn index_of(nr: u64) -> Option<u32> {
    Some(match nr {
        0 => 0,
        1 => 1,
        17 => 2,
        18 => 3,
        19 => 4,
        20 => 5,
        295 => 6,
        296 => 7,
        327 => 8,
        328 => 9,
        45 => 10,
        44 => 11,
        47 => 12,
        46 => 13,
        299 => 14,
        307 => 15,
        40 => 16,
        275 => 17,
        278 => 18,
        276 => 19,
        326 => 20,
        _ => return None,
    })
}

/// The table entry for an index, or `None` when the index is out of range (an event
/// from a newer or corrupt producer).
pub fn get(index: u32) -> Option<&'static Syscall> {
    SYSCALLS.get(index as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_of_agrees_with_the_table() {
        for (i, sc) in SYSCALLS
            .iter()
            .enumerate()
            .filter(|(_, sc)| sc.is_syscall())
        {
            assert_eq!(index_of(sc.nr as u64), Some(i as u32), "{}", sc.name);
        }
        assert_eq!(index_of(2), None, "open is not counted");
        assert_eq!(index_of(u64::MAX), None);
        assert_eq!(SYSCALLS[RECVMMSG as usize].name, "recvmmsg");
        assert_eq!(SYSCALLS[SENDMMSG as usize].name, "sendmmsg");
        for (i, name) in [
            (SENDTO, "sendto"),
            (SENDFILE, "sendfile"),
            (SPLICE, "splice"),
            (VMSPLICE, "vmsplice"),
            (TEE, "tee"),
            (COPY_FILE_RANGE, "copy_file_range"),
            (RECVMSG, "recvmsg"),
            (SENDMSG, "sendmsg"),
            (SENDTO_ZEROCOPY, "sendto_zerocopy"),
            (SENDMSG_ZEROCOPY, "sendmsg_zerocopy"),
            (ZEROCOPY_DONE, "msg_zerocopy_done"),
            (ZEROCOPY_COPIED, "msg_zerocopy_copied"),
        ] {
            assert_eq!(SYSCALLS[i as usize].name, name);
        }
        // Sub-rows follow every syscall, so a syscall's index is the same as before them.
        let first_sub = SYSCALLS
            .iter()
            .position(|s| !s.is_syscall())
            .expect("sub-rows");
        assert!(SYSCALLS[first_sub..].iter().all(|s| !s.is_syscall()));
        for sub in &SYSCALLS[first_sub..] {
            let of = SYSCALLS.iter().find(|s| s.is_syscall() && s.nr == sub.nr);
            assert_eq!(of.map(|s| s.event), Some(sub.event), "{}", sub.name);
        }
    }

    #[test]
    fn numbers_match_libc() {
        let expected = [
            ("read", libc::SYS_read),
            ("write", libc::SYS_write),
            ("pread64", libc::SYS_pread64),
            ("pwrite64", libc::SYS_pwrite64),
            ("readv", libc::SYS_readv),
            ("writev", libc::SYS_writev),
            ("preadv", libc::SYS_preadv),
            ("pwritev", libc::SYS_pwritev),
            ("preadv2", libc::SYS_preadv2),
            ("pwritev2", libc::SYS_pwritev2),
            ("recvfrom", libc::SYS_recvfrom),
            ("sendto", libc::SYS_sendto),
            ("recvmsg", libc::SYS_recvmsg),
            ("sendmsg", libc::SYS_sendmsg),
            ("recvmmsg", libc::SYS_recvmmsg),
            ("sendmmsg", libc::SYS_sendmmsg),
            ("sendfile", libc::SYS_sendfile),
            ("splice", libc::SYS_splice),
            ("vmsplice", libc::SYS_vmsplice),
            ("tee", libc::SYS_tee),
            ("copy_file_range", libc::SYS_copy_file_range),
        ];
        assert_eq!(MSG_ZEROCOPY, libc::MSG_ZEROCOPY as u64);
        assert_eq!(MSG_ERRQUEUE, libc::MSG_ERRQUEUE as u64);
        assert_eq!(
            expected.len(),
            SYSCALLS.iter().filter(|s| s.is_syscall()).count()
        );
        for (name, nr) in expected {
            let sc = SYSCALLS.iter().find(|s| s.name == name).expect(name);
            assert!(sc.is_syscall(), "{name}");
            assert_eq!(sc.nr as i64, nr, "{name}");
        }
    }
}
