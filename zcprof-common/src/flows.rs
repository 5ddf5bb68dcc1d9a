//! The flows layer's shared names and table: what kind of file descriptor each counted
//! syscall read from or wrote to (a regular file, a TCP socket, a pipe, …), per process,
//! as *flows* ("file → user", "user → tcp", "sendfile file → tcp"), in `FSTATS`.
//!
//! Opt-in (`--flows`): the syscall layer's exit programs, which already know the call and
//! its bytes, look the descriptor up in the task's file table (`task->files->fdt->fd[fd]`,
//! then the file's inode mode, its superblock's magic, and for a socket its family and
//! protocol: offsets from the kernel's BTF, set as globals) and count the call's bytes in
//! the flow's slot. Each lookup is a chain of bounded kernel reads; what it costs per call
//! is in the bench (`zcprof --flows`).
//!
//! # The rule
//! - Only successful calls count (their errors are the syscall layer's), with the same
//!   bytes as the syscall layer's row: a flow's bytes over all flows of a process equal the
//!   syscall layer's bytes of the syscalls the table maps (every one but the `MSG_ZEROCOPY`
//!   notifications, which move nothing).
//! - Read family: `KIND → user` by the kind of the descriptor read; write family:
//!   `user → KIND`; `MSG_ZEROCOPY` sends: their own `user → KIND` rows.
//! - sendfile: `IN → OUT`, where `IN` is `file`, `block` or `other` (any other kind of
//!   input); splice: `pipe → KIND` when its input is a pipe, else `KIND → pipe` (the kernel
//!   requires a pipe on one side). tee (`pipe → pipe`), copy_file_range (`file → file`) and
//!   vmsplice (`user ↔ pipe`) move only between those kinds when they succeed: no lookup.
//! - A descriptor the lookup cannot resolve (closed by another thread before the exit, a
//!   read that failed) is `unknown`, never guessed. memfd and tmpfs files are `file` (they
//!   are regular files); eventfd, timerfd, signalfd, epoll, io_uring and pidfd descriptors
//!   are `anon`; a directory or a symlink descriptor is `unknown`.

/// Descriptor kinds: the value of a `kind` lookup.
pub mod kind {
    pub const UNKNOWN: u32 = 0;
    /// A regular file (memfd and tmpfs files included).
    pub const FILE: u32 = 1;
    pub const BLOCK: u32 = 2;
    /// An AF_INET/AF_INET6 stream socket (TCP and MPTCP).
    pub const TCP: u32 = 3;
    /// An AF_INET/AF_INET6 UDP or UDP-Lite socket.
    pub const UDP: u32 = 4;
    pub const UNIX: u32 = 5;
    /// Any other socket (netlink, packet, raw IP, vsock, …).
    pub const SOCKET: u32 = 6;
    /// A pipe or FIFO.
    pub const PIPE: u32 = 7;
    /// A character device (a tty, /dev/null, /dev/zero, …).
    pub const CHAR: u32 = 8;
    /// An anonymous-inode descriptor (eventfd, timerfd, signalfd, epoll, io_uring, pidfd).
    pub const ANON: u32 = 9;
    pub const COUNT: u32 = 10;
}

/// The kinds' names, indexed by kind.
pub const KIND_NAMES: [&str; kind::COUNT as usize] = [
    "unknown", "file", "block", "tcp", "udp", "unix", "socket", "pipe", "char", "anon",
];

/// Whether a kind is a socket (what "delivered" bytes are sent to).
pub const fn is_socket(kind: u32) -> bool {
    matches!(kind, kind::TCP | kind::UDP | kind::UNIX | kind::SOCKET)
}

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;
/// `ANON_INODE_FS_MAGIC` and `PID_FS_MAGIC` (include/uapi/linux/magic.h): the anonymous
/// inodes (mode 0 before Linux 6.15, a regular file's mode since) and pidfs's.
const ANON_MAGICS: [u64; 2] = [0x0904_1934, 0x5049_4446];
const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
const IPPROTO_UDPLITE: u16 = 136;
const IPPROTO_MPTCP: u16 = 262;

/// Whether an inode of `mode` needs its superblock's magic to be classified (a regular
/// file may be an anonymous inode).
pub const fn needs_magic(mode: u16) -> bool {
    let t = mode as u32 & S_IFMT;
    t == S_IFREG || t == 0
}

/// Whether an inode of `mode` is a socket (classified by [`of_socket`]).
pub const fn is_socket_mode(mode: u16) -> bool {
    mode as u32 & S_IFMT == S_IFSOCK
}

/// The kind of a non-socket inode of `mode` on a filesystem of `magic` (read only when
/// [`needs_magic`]; else any value).
pub const fn of_inode(mode: u16, magic: u64) -> u32 {
    let t = mode as u32 & S_IFMT;
    if (t == S_IFREG || t == 0) && (magic == ANON_MAGICS[0] || magic == ANON_MAGICS[1]) {
        return kind::ANON;
    }
    match t {
        S_IFREG => kind::FILE,
        S_IFBLK => kind::BLOCK,
        S_IFCHR => kind::CHAR,
        S_IFIFO => kind::PIPE,
        S_IFSOCK => kind::SOCKET,
        _ => kind::UNKNOWN,
    }
}

/// The kind of a socket of address `family` and `protocol` (`sk_family`, `sk_protocol`).
pub const fn of_socket(family: u16, protocol: u16) -> u32 {
    match (family, protocol) {
        (AF_UNIX, _) => kind::UNIX,
        (AF_INET | AF_INET6, IPPROTO_TCP | IPPROTO_MPTCP) => kind::TCP,
        (AF_INET | AF_INET6, IPPROTO_UDP | IPPROTO_UDPLITE) => kind::UDP,
        _ => kind::SOCKET,
    }
}

/// First slot of each group of the table (each group has one slot per kind, but
/// sendfile's, which has one per input group and kind, and the last three, one each).
pub const READ_FROM: u32 = 0;
pub const WRITE_TO: u32 = 10;
pub const ZEROCOPY_SEND_TO: u32 = 20;
pub const SENDFILE: u32 = 30;
pub const SPLICE_FROM_PIPE: u32 = 60;
pub const SPLICE_TO_PIPE: u32 = 70;
pub const TEE: u32 = 80;
pub const VMSPLICE: u32 = 81;
pub const COPY_FILE_RANGE: u32 = 82;
/// Slots per process.
pub const COUNT: usize = 83;
/// sendfile's input groups: `file`, `block`, `other`.
pub const SENDFILE_INPUTS: [&str; 3] = ["file", "block", "other"];

/// Which descriptors of a syscall (by its arguments: 0 = `rdi`, 1 = `rsi`, 2 = `rdx`) the
/// flows layer looks up, and where the result goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not a flow (the `MSG_ZEROCOPY` notifications).
    None,
    /// No lookup: the slot is known.
    Fixed(u32),
    /// The descriptor in argument `arg`; the slot is `base + kind`.
    One { arg: u32, base: u32 },
    /// sendfile: output in argument 0, input in argument 1.
    Sendfile,
    /// splice: input in argument 0, output in argument 2.
    Splice,
}

/// What the flows layer does for syscall-layer row `index` ([`crate::syscalls::SYSCALLS`]).
/// A `match` on indexes (a test checks it against the table's families): in the eBPF
/// program it compiles to compares, no table read.
#[inline(always)]
pub const fn lookup(index: u32) -> Lookup {
    match index {
        // read, pread64, readv, preadv, preadv2, recvfrom, recvmsg, recvmmsg
        0 | 2 | 4 | 6 | 8 | 10 | 12 | 14 => Lookup::One {
            arg: 0,
            base: READ_FROM,
        },
        // write, pwrite64, writev, pwritev, pwritev2, sendto, sendmsg, sendmmsg
        1 | 3 | 5 | 7 | 9 | 11 | 13 | 15 => Lookup::One {
            arg: 0,
            base: WRITE_TO,
        },
        crate::syscalls::SENDTO_ZEROCOPY | crate::syscalls::SENDMSG_ZEROCOPY => Lookup::One {
            arg: 0,
            base: ZEROCOPY_SEND_TO,
        },
        crate::syscalls::SENDFILE => Lookup::Sendfile,
        crate::syscalls::SPLICE => Lookup::Splice,
        crate::syscalls::TEE => Lookup::Fixed(TEE),
        crate::syscalls::VMSPLICE => Lookup::Fixed(VMSPLICE),
        crate::syscalls::COPY_FILE_RANGE => Lookup::Fixed(COPY_FILE_RANGE),
        _ => Lookup::None,
    }
}

/// sendfile's slot for input kind `input` and output kind `output`.
pub const fn sendfile(input: u32, output: u32) -> u32 {
    let group = match input {
        kind::FILE => 0,
        kind::BLOCK => 1,
        _ => 2,
    };
    SENDFILE + group * kind::COUNT + output % kind::COUNT
}

/// splice's slot for input kind `input` and output kind `output`.
pub const fn splice(input: u32, output: u32) -> u32 {
    if input == kind::PIPE {
        SPLICE_FROM_PIPE + output % kind::COUNT
    } else {
        SPLICE_TO_PIPE + input % kind::COUNT
    }
}

/// A slot of the table, as people read it: `how` moved bytes `from` → `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// `copy`, `msg_zerocopy`, or the zero-copy syscall's name.
    pub how: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub family: crate::syscalls::Family,
    pub direction: crate::syscalls::Direction,
}

/// Slot `slot` of the table; `None` out of range.
pub fn flow(slot: u32) -> Option<Flow> {
    use crate::syscalls::{Direction::*, Family::*};
    let k = |i: u32| KIND_NAMES[(i % kind::COUNT) as usize];
    let f = |how, from, to, family, direction| {
        Some(Flow {
            how,
            from,
            to,
            family,
            direction,
        })
    };
    match slot {
        s if s < WRITE_TO => f("copy", k(s), "user", Copy, KernelToUser),
        s if s < ZEROCOPY_SEND_TO => f("copy", "user", k(s), Copy, UserToKernel),
        s if s < SENDFILE => f(
            "msg_zerocopy",
            "user",
            k(s),
            ZeroCopyRequested,
            UserToKernel,
        ),
        s if s < SPLICE_FROM_PIPE => {
            let group = (s - SENDFILE) / kind::COUNT;
            f(
                "sendfile",
                SENDFILE_INPUTS[group as usize],
                k(s),
                ZeroCopy,
                KernelToKernel,
            )
        }
        s if s < SPLICE_TO_PIPE => f("splice", "pipe", k(s), ZeroCopy, KernelToKernel),
        s if s < TEE => f("splice", k(s), "pipe", ZeroCopy, KernelToKernel),
        TEE => f("tee", "pipe", "pipe", ZeroCopy, KernelToKernel),
        VMSPLICE => f("vmsplice", "user", "pipe", ZeroCopy, KernelToKernel),
        COPY_FILE_RANGE => f("copy_file_range", "file", "file", ZeroCopy, KernelToKernel),
        _ => None,
    }
}

/// Whether slot `slot` sends to a socket: its bytes were delivered out of the process
/// through a socket (copied or not).
pub const fn delivers(slot: u32) -> bool {
    match slot {
        s if s >= WRITE_TO && s < SENDFILE => is_socket(s % kind::COUNT),
        s if s >= SENDFILE && s < SPLICE_FROM_PIPE => is_socket((s - SENDFILE) % kind::COUNT),
        s if s >= SPLICE_FROM_PIPE && s < SPLICE_TO_PIPE => is_socket(s - SPLICE_FROM_PIPE),
        _ => false,
    }
}

/// Name of the `(tgid, slot) -> Counts` map.
pub const FSTATS_MAP: &str = "FSTATS";
/// Bound of `FSTATS` (live `(tgid, flow)` pairs, flushed at exit).
pub const FSTATS_MAX_ENTRIES: u32 = 16_384;

/// Program names, as the macros in `zcprof-ebpf/src/flows.rs` export them.
pub mod program {
    /// `sched:sched_process_exit`: moves the exiting process's `FSTATS` entries into
    /// `FINAL` records.
    pub const PROCESS_EXIT: &str = "process_exit_flows";
}

/// Globals set by user space: `ON` (1 when `--flows` was given and every offset was
/// found), then byte offsets of kernel struct members from BTF.
pub mod global {
    pub const ON: &str = "FLOWS_ON";
    /// `task_struct.files`.
    pub const TASK_FILES: &str = "FLOWS_TASK_FILES";
    /// `files_struct.fdt`.
    pub const FILES_FDT: &str = "FLOWS_FILES_FDT";
    /// `fdtable.max_fds`.
    pub const FDT_MAX_FDS: &str = "FLOWS_FDT_MAX_FDS";
    /// `fdtable.fd`.
    pub const FDT_FD: &str = "FLOWS_FDT_FD";
    /// `file.f_inode`.
    pub const FILE_INODE: &str = "FLOWS_FILE_INODE";
    /// `file.private_data` (a socket's `struct socket`).
    pub const FILE_PRIVATE: &str = "FLOWS_FILE_PRIVATE";
    /// `inode.i_mode`.
    pub const INODE_MODE: &str = "FLOWS_INODE_MODE";
    /// `inode.i_sb`.
    pub const INODE_SB: &str = "FLOWS_INODE_SB";
    /// `super_block.s_magic`.
    pub const SB_MAGIC: &str = "FLOWS_SB_MAGIC";
    /// `socket.sk`.
    pub const SOCKET_SK: &str = "FLOWS_SOCKET_SK";
    /// `sock.__sk_common.skc_family`.
    pub const SK_FAMILY: &str = "FLOWS_SK_FAMILY";
    /// `sock.sk_protocol`.
    pub const SK_PROTOCOL: &str = "FLOWS_SK_PROTOCOL";
}

/// The flows layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::FLOWS,
    map: FSTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT),
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    use crate::syscalls::{self, Family, SYSCALLS};

    #[test]
    fn every_slot_has_a_flow_and_the_groups_line_up() {
        for slot in 0..COUNT as u32 {
            assert!(flow(slot).is_some(), "{slot}");
        }
        assert_eq!(flow(COUNT as u32), None);
        let name = |s: u32| {
            let f = flow(s).expect("flow");
            (f.how, f.from, f.to)
        };
        assert_eq!(name(READ_FROM + kind::FILE), ("copy", "file", "user"));
        assert_eq!(name(WRITE_TO + kind::TCP), ("copy", "user", "tcp"));
        assert_eq!(
            name(ZEROCOPY_SEND_TO + kind::UDP),
            ("msg_zerocopy", "user", "udp")
        );
        assert_eq!(
            name(sendfile(kind::FILE, kind::TCP)),
            ("sendfile", "file", "tcp")
        );
        assert_eq!(
            name(sendfile(kind::BLOCK, kind::PIPE)),
            ("sendfile", "block", "pipe")
        );
        assert_eq!(
            name(sendfile(kind::UNKNOWN, kind::ANON)),
            ("sendfile", "other", "anon")
        );
        assert_eq!(
            name(splice(kind::TCP, kind::PIPE)),
            ("splice", "tcp", "pipe")
        );
        assert_eq!(
            name(splice(kind::PIPE, kind::UNIX)),
            ("splice", "pipe", "unix")
        );
        assert_eq!(
            name(splice(kind::PIPE, kind::PIPE)),
            ("splice", "pipe", "pipe")
        );
        assert_eq!(name(COPY_FILE_RANGE), ("copy_file_range", "file", "file"));
        assert!(sendfile(kind::ANON, kind::ANON) < SPLICE_FROM_PIPE);
        let mut names: Vec<_> = (0..COUNT as u32).map(name).collect();
        names.sort_unstable();
        names.dedup();
        // `splice pipe -> pipe` is a slot of `pipe -> KIND`; `KIND -> pipe`'s is never used.
        assert_eq!(
            names.len(),
            COUNT - 1,
            "every other slot is a different flow"
        );
    }

    #[test]
    fn every_moving_syscall_maps_to_a_flow_of_its_family() {
        for (i, sc) in SYSCALLS.iter().enumerate() {
            let slots: Vec<u32> = match lookup(i as u32) {
                Lookup::None => {
                    assert_eq!(sc.family, Family::Notice, "{}", sc.name);
                    continue;
                }
                Lookup::Fixed(slot) => vec![slot],
                Lookup::One { base, .. } => (base..base + kind::COUNT).collect(),
                Lookup::Sendfile => (0..kind::COUNT)
                    .flat_map(|a| (0..kind::COUNT).map(move |b| sendfile(a, b)))
                    .collect(),
                Lookup::Splice => (0..kind::COUNT)
                    .flat_map(|a| (0..kind::COUNT).map(move |b| splice(a, b)))
                    .collect(),
            };
            for slot in slots {
                let f = flow(slot).expect("in the table");
                assert_eq!(f.family, sc.family, "{} -> {slot}", sc.name);
                assert_eq!(f.direction, sc.direction, "{} -> {slot}", sc.name);
                if matches!(f.how, "copy" | "msg_zerocopy") {
                    continue;
                }
                assert_eq!(f.how, sc.name, "{slot}");
            }
        }
        assert_eq!(lookup(syscalls::COUNT as u32), Lookup::None);
    }

    #[test]
    fn kinds_from_modes_magics_and_sockets() {
        assert_eq!(of_inode(0o100_644, 0xEF53), kind::FILE, "ext4 file");
        assert_eq!(of_inode(0o100_600, 0x0904_1934), kind::ANON, "anon, 6.15+");
        assert_eq!(of_inode(0o600, 0x0904_1934), kind::ANON, "anon, before");
        assert_eq!(of_inode(0o600, 0x5049_4446), kind::ANON, "pidfd");
        assert_eq!(of_inode(0o060_660, 0), kind::BLOCK);
        assert_eq!(of_inode(0o020_666, 0), kind::CHAR);
        assert_eq!(of_inode(0o010_600, 0), kind::PIPE);
        assert_eq!(of_inode(0o040_755, 0xEF53), kind::UNKNOWN, "a directory");
        assert!(needs_magic(0o100_644) && needs_magic(0o600) && !needs_magic(0o010_600));
        assert!(is_socket_mode(0o140_777) && !is_socket_mode(0o100_644));
        assert_eq!(of_socket(2, 6), kind::TCP);
        assert_eq!(of_socket(10, 262), kind::TCP, "MPTCP");
        assert_eq!(of_socket(10, 17), kind::UDP);
        assert_eq!(of_socket(1, 0), kind::UNIX);
        assert_eq!(of_socket(16, 0), kind::SOCKET, "netlink");
        assert_eq!(of_socket(2, 255), kind::SOCKET, "raw IP");
    }

    #[test]
    fn delivered_means_sent_to_a_socket() {
        assert!(delivers(WRITE_TO + kind::TCP));
        assert!(delivers(ZEROCOPY_SEND_TO + kind::UDP));
        assert!(delivers(sendfile(kind::FILE, kind::UNIX)));
        assert!(delivers(splice(kind::PIPE, kind::TCP)));
        assert!(!delivers(splice(kind::TCP, kind::PIPE)));
        assert!(!delivers(READ_FROM + kind::TCP), "received, not delivered");
        assert!(!delivers(WRITE_TO + kind::PIPE));
        assert!(!delivers(sendfile(kind::FILE, kind::FILE)));
        let delivering = (0..COUNT as u32).filter(|&s| delivers(s)).count();
        assert_eq!(delivering, 4 * 2 + 4 * 3 + 4);
    }
}
