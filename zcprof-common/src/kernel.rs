//! The kernel layer's probe table: which kernel functions zcprof probes, what the bytes each
//! one counts mean, and which figure they feed — so that a byte two probes see on one path
//! (e.g. `__check_object_size` and `_copy_to_user` for the same copy) is never added twice.
//!
//! Two tables:
//! - [`PROBES`]: the *counters*, one per (function, direction). A `KSTATS` key's slot indexes it,
//!   and user space shows one row per counter. `__check_object_size` has two (to and from user).
//! - [`FUNCTIONS`]: what is *attached*, one row per kernel function, with the eBPF program to
//!   use in each attach mode (fentry/fexit, kprobe/kretprobe, tracepoint).
//!
//! # Which number each probe feeds
//! - [`Role::Primitive`]: the copy primitives (`_copy_to_user`, `_copy_from_user`,
//!   `_copy_to_iter`, `_copy_from_iter`). They do not call each other, so their sum is the
//!   *kernel copy* figure, per direction.
//! - [`Role::CrossCheck`]: `__check_object_size` (hardened usercopy) is called by the inline
//!   wrappers `copy_{to,from}_user` and `copy_{to,from}_iter` right before the primitive, so it
//!   sees the same bytes. It is the kernel copy figure only where no primitive attached (Debian
//!   builds the primitives notrace); otherwise it is shown beside it as a cross-check. It misses
//!   copies whose size is a compile-time constant (the wrappers skip the check for those, e.g.
//!   most `getsockopt`/`ioctl` integers) and primitives called directly (`copy_page_to_iter`
//!   calls `_copy_to_iter` without the wrapper, so page-cache and pipe reads are not checked).
//! - [`Role::Breakdown`]: where copies happen (socket receive/send, page cache, pipes, pages).
//!   Each is a subset of the primitives' bytes; shown per probe, never added to a total.
//! - [`Role::ZeroCopy`]: splice/sendfile internals: bytes moved between kernel objects. They
//!   nest (`do_sendfile` ⊃ `splice_direct_to_actor` ⊃ `splice_to_socket`), so each is shown on
//!   its own and none is summed; `iter_file_splice_write` is the one that copies in the kernel
//!   (pipe pages into a file's page cache), labelled as such.

use crate::syscalls::Direction;

/// How a counter's bytes relate to the other counters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Primitive,
    CrossCheck,
    Breakdown,
    ZeroCopy,
}

impl Role {
    /// What the role's copy figure leaves out, for every place that prints the figure:
    /// `(short, long)`, e.g. for a column header and for a footnote. `None`: nothing known.
    pub const fn blind_spot(self) -> Option<(&'static str, &'static str)> {
        match self {
            // Hardened usercopy checks only copy_to_user/copy_from_user of non-constant size
            // and the checked iov_iter wrappers; copy_page_to_iter (page-cache reads, pipe
            // reads and writes) calls the unchecked _copy_to_iter. Measured in the lab: a
            // pipe relay of 1 MiB shows 0 B here.
            Role::CrossCheck => Some((
                "lower bound",
                "a lower bound: __check_object_size does not see page-cache or pipe copies (copy_page_to_iter) nor constant-size copies; the breakdown probes filemap_read, pipe_read and pipe_write show those paths",
            )),
            Role::Primitive | Role::Breakdown | Role::ZeroCopy => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Role::Primitive => "primitive",
            Role::CrossCheck => "cross_check",
            Role::Breakdown => "breakdown",
            Role::ZeroCopy => "zero_copy_internal",
        }
    }
}

/// One counter of the kernel layer.
#[derive(Clone, Copy, Debug)]
pub struct KernelProbe {
    /// Shown to users and used as the JSON key, e.g. `__check_object_size:to_user`.
    pub name: &'static str,
    /// The kernel function probed.
    pub function: &'static str,
    pub direction: Direction,
    pub role: Role,
    /// What a byte of this counter is.
    pub bytes: &'static str,
}

/// Indexes into [`PROBES`] (the `slot` of a `KSTATS` key).
pub mod id {
    pub const COPY_TO_USER: u32 = 0;
    pub const COPY_FROM_USER: u32 = 1;
    pub const COPY_TO_ITER: u32 = 2;
    pub const COPY_FROM_ITER: u32 = 3;
    pub const COPY_PAGE_TO_ITER: u32 = 4;
    pub const COPY_PAGE_FROM_ITER_ATOMIC: u32 = 5;
    pub const CHECK_OBJECT_SIZE_TO_USER: u32 = 6;
    pub const CHECK_OBJECT_SIZE_FROM_USER: u32 = 7;
    pub const SKB_COPY_DATAGRAM_ITER: u32 = 8;
    pub const SKB_COPY_DATAGRAM_FROM_ITER: u32 = 9;
    pub const FILEMAP_READ: u32 = 10;
    pub const PIPE_READ: u32 = 11;
    pub const PIPE_WRITE: u32 = 12;
    pub const DO_SPLICE: u32 = 13;
    pub const DO_SENDFILE: u32 = 14;
    pub const SPLICE_DIRECT_TO_ACTOR: u32 = 15;
    pub const SPLICE_TO_SOCKET: u32 = 16;
    pub const ITER_FILE_SPLICE_WRITE: u32 = 17;
}

/// Number of counters.
pub const COUNT: usize = 18;

use Direction::{KernelToKernel as K2K, KernelToUser as K2U, UserToKernel as U2K};

const fn p(
    name: &'static str,
    function: &'static str,
    direction: Direction,
    role: Role,
    bytes: &'static str,
) -> KernelProbe {
    KernelProbe {
        name,
        function,
        direction,
        role,
        bytes,
    }
}

/// The counters, indexed by [`id`].
pub const PROBES: [KernelProbe; COUNT] = [
    p(
        "_copy_to_user",
        "_copy_to_user",
        K2U,
        Role::Primitive,
        "copy_to_user: n minus the uncopied bytes it returned",
    ),
    p(
        "_copy_from_user",
        "_copy_from_user",
        U2K,
        Role::Primitive,
        "copy_from_user: n minus the uncopied bytes it returned",
    ),
    p(
        "_copy_to_iter",
        "_copy_to_iter",
        K2U,
        Role::Primitive,
        "bytes copied from a kernel buffer into an iov_iter (user, or kernel-backed)",
    ),
    p(
        "_copy_from_iter",
        "_copy_from_iter",
        U2K,
        Role::Primitive,
        "bytes copied from an iov_iter into a kernel buffer",
    ),
    p(
        "copy_page_to_iter",
        "copy_page_to_iter",
        K2U,
        Role::Breakdown,
        "bytes copied from a page (page cache, pipe) into an iov_iter; part of _copy_to_iter",
    ),
    p(
        "copy_page_from_iter_atomic",
        "copy_page_from_iter_atomic",
        U2K,
        Role::Breakdown,
        "bytes copied from an iov_iter into a page-cache page (buffered write)",
    ),
    p(
        "__check_object_size:to_user",
        "__check_object_size",
        K2U,
        Role::CrossCheck,
        "size passed to the hardened-usercopy check of copy_to_user/copy_to_iter (non-constant sizes only)",
    ),
    p(
        "__check_object_size:from_user",
        "__check_object_size",
        U2K,
        Role::CrossCheck,
        "size passed to the hardened-usercopy check of copy_from_user/copy_from_iter (non-constant sizes only)",
    ),
    p(
        "skb_copy_datagram_iter",
        "skb_copy_datagram_iter",
        K2U,
        Role::Breakdown,
        "socket receive: bytes copied from socket buffers into the reader's iovecs",
    ),
    p(
        "skb_copy_datagram_from_iter",
        "skb_copy_datagram_from_iter",
        U2K,
        Role::Breakdown,
        "socket send (datagram, unix, tun): bytes copied from the sender's iovecs into socket buffers",
    ),
    p(
        "filemap_read",
        "filemap_read",
        K2U,
        Role::Breakdown,
        "page-cache read: bytes filemap_read returned (minus what the caller had already read)",
    ),
    p(
        "pipe_read",
        "pipe_read",
        K2U,
        Role::Breakdown,
        "bytes read from a pipe",
    ),
    p(
        "pipe_write",
        "pipe_write",
        U2K,
        Role::Breakdown,
        "bytes written into a pipe",
    ),
    p(
        "do_splice",
        "do_splice",
        K2K,
        Role::ZeroCopy,
        "bytes splice(2) moved between a pipe and a file or socket",
    ),
    p(
        "do_sendfile",
        "do_sendfile",
        K2K,
        Role::ZeroCopy,
        "bytes sendfile(2) moved",
    ),
    p(
        "splice_direct_to_actor",
        "splice_direct_to_actor",
        K2K,
        Role::ZeroCopy,
        "bytes moved file-to-file or file-to-socket through the task's internal pipe (sendfile, copy_file_range)",
    ),
    p(
        "splice_to_socket",
        "splice_to_socket",
        K2K,
        Role::ZeroCopy,
        "bytes of pipe pages handed to a socket by reference (6.5+)",
    ),
    p(
        "iter_file_splice_write",
        "iter_file_splice_write",
        K2K,
        Role::ZeroCopy,
        "in-kernel copy: pipe pages written into a file through a bvec iterator",
    ),
];

/// How an attached program turns a hit into bytes (documentation for user space; the eBPF
/// programs implement it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One program at entry reading a size argument.
    Entry,
    /// One program at exit reading the return value (and, for fexit, arguments).
    Exit,
}

/// A tracepoint that stands in for a function probe where no function probe attaches.
#[derive(Clone, Copy, Debug)]
pub struct Tracepoint {
    pub category: &'static str,
    pub event: &'static str,
    pub program: &'static str,
}

/// One probed kernel function and its programs.
#[derive(Clone, Copy, Debug)]
pub struct KernelFunction {
    pub function: &'static str,
    /// fentry or fexit program (loaded against this function's BTF id).
    pub fentry: &'static str,
    pub fentry_mode: Mode,
    /// kprobe and/or kretprobe programs. Both for `_copy_{to,from}_user`: the kprobe stashes
    /// the size per thread and the kretprobe subtracts the uncopied count it returns.
    pub kprobe: Option<&'static str>,
    pub kretprobe: Option<&'static str>,
    pub tracepoint: Option<Tracepoint>,
}

/// Program names, as the macros in `zcprof-ebpf/src/kernel.rs` export them (the function
/// probes' are in [`FUNCTIONS`]).
pub mod program {
    pub const SKB_COPY_DATAGRAM_IOVEC_TP: &str = "skb_copy_datagram_iovec_tp";
    /// `sched:sched_process_exit`: moves the exiting process's `KSTATS` entries into
    /// `FINAL` records (after `process_exit`, which flushes the syscall layer).
    pub const PROCESS_EXIT_KERNEL: &str = "process_exit_kernel";
}

/// Name of the kernel layer's `(tgid, probe) -> Counts` map.
pub const KSTATS_MAP: &str = "KSTATS";
/// Bound of the `KSTATS` map: live `(tgid, probe)` pairs, flushed at exit like `STATS`.
pub const KSTATS_MAX_ENTRIES: u32 = 16_384;
/// Bound of the map that carries `_copy_{to,from}_user`'s size from kprobe to kretprobe
/// (threads inside one of those calls at once).
pub const COPY_ARGS_MAX_ENTRIES: u32 = 4096;

/// The kernel layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::KERNEL,
    map: KSTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT_KERNEL),
};
/// Global: offset of `len` in `skb:skb_copy_datagram_iovec` records (from tracefs).
pub const SKB_COPY_LEN_OFFSET: &str = "SKB_COPY_LEN_OFFSET";

const fn f(
    function: &'static str,
    fentry: &'static str,
    fentry_mode: Mode,
    kprobe: Option<&'static str>,
    kretprobe: Option<&'static str>,
) -> KernelFunction {
    KernelFunction {
        function,
        fentry,
        fentry_mode,
        kprobe,
        kretprobe,
        tracepoint: None,
    }
}

/// Every probed function, in the order they are tried (cheapest and most useful first).
pub const FUNCTIONS: [KernelFunction; 17] = [
    f(
        "__check_object_size",
        "fentry_check_object_size",
        Mode::Entry,
        Some("kprobe_check_object_size"),
        None,
    ),
    KernelFunction {
        tracepoint: Some(Tracepoint {
            category: "skb",
            event: "skb_copy_datagram_iovec",
            program: program::SKB_COPY_DATAGRAM_IOVEC_TP,
        }),
        ..f(
            "skb_copy_datagram_iter",
            "fentry_skb_copy_datagram_iter",
            Mode::Entry,
            Some("kprobe_skb_copy_datagram_iter"),
            None,
        )
    },
    f(
        "_copy_to_user",
        "fexit_copy_to_user",
        Mode::Exit,
        Some("kprobe_copy_to_user"),
        Some("kretprobe_copy_to_user"),
    ),
    f(
        "_copy_from_user",
        "fexit_copy_from_user",
        Mode::Exit,
        Some("kprobe_copy_from_user"),
        Some("kretprobe_copy_from_user"),
    ),
    f(
        "_copy_to_iter",
        "fexit_copy_to_iter",
        Mode::Exit,
        None,
        Some("kretprobe_copy_to_iter"),
    ),
    f(
        "_copy_from_iter",
        "fexit_copy_from_iter",
        Mode::Exit,
        None,
        Some("kretprobe_copy_from_iter"),
    ),
    f(
        "copy_page_to_iter",
        "fexit_copy_page_to_iter",
        Mode::Exit,
        None,
        Some("kretprobe_copy_page_to_iter"),
    ),
    f(
        "copy_page_from_iter_atomic",
        "fexit_copy_page_from_iter_atomic",
        Mode::Exit,
        None,
        Some("kretprobe_copy_page_from_iter_atomic"),
    ),
    f(
        "skb_copy_datagram_from_iter",
        "fentry_skb_copy_datagram_from_iter",
        Mode::Entry,
        Some("kprobe_skb_copy_datagram_from_iter"),
        None,
    ),
    f(
        "filemap_read",
        "fexit_filemap_read",
        Mode::Exit,
        None,
        Some("kretprobe_filemap_read"),
    ),
    f(
        "pipe_read",
        "fexit_pipe_read",
        Mode::Exit,
        None,
        Some("kretprobe_pipe_read"),
    ),
    f(
        "pipe_write",
        "fexit_pipe_write",
        Mode::Exit,
        None,
        Some("kretprobe_pipe_write"),
    ),
    f(
        "do_splice",
        "fexit_do_splice",
        Mode::Exit,
        None,
        Some("kretprobe_do_splice"),
    ),
    f(
        "do_sendfile",
        "fexit_do_sendfile",
        Mode::Exit,
        None,
        Some("kretprobe_do_sendfile"),
    ),
    f(
        "splice_direct_to_actor",
        "fexit_splice_direct_to_actor",
        Mode::Exit,
        None,
        Some("kretprobe_splice_direct_to_actor"),
    ),
    f(
        "iter_file_splice_write",
        "fexit_iter_file_splice_write",
        Mode::Exit,
        None,
        Some("kretprobe_iter_file_splice_write"),
    ),
    // 6.5 and later only.
    f(
        "splice_to_socket",
        "fexit_splice_to_socket",
        Mode::Exit,
        None,
        Some("kretprobe_splice_to_socket"),
    ),
];

/// The counters a function feeds.
pub fn probes_of(function: &str) -> impl Iterator<Item = (u32, &'static KernelProbe)> {
    PROBES
        .iter()
        .enumerate()
        .filter(move |(_, p)| p.function == function)
        .map(|(i, p)| (i as u32, p))
}

/// The counter at `index`, if any.
pub fn get(index: u32) -> Option<&'static KernelProbe> {
    PROBES.get(index as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_table() {
        let names = [
            (id::COPY_TO_USER, "_copy_to_user"),
            (id::COPY_FROM_USER, "_copy_from_user"),
            (id::COPY_TO_ITER, "_copy_to_iter"),
            (id::COPY_FROM_ITER, "_copy_from_iter"),
            (id::COPY_PAGE_TO_ITER, "copy_page_to_iter"),
            (id::COPY_PAGE_FROM_ITER_ATOMIC, "copy_page_from_iter_atomic"),
            (id::CHECK_OBJECT_SIZE_TO_USER, "__check_object_size:to_user"),
            (
                id::CHECK_OBJECT_SIZE_FROM_USER,
                "__check_object_size:from_user",
            ),
            (id::SKB_COPY_DATAGRAM_ITER, "skb_copy_datagram_iter"),
            (
                id::SKB_COPY_DATAGRAM_FROM_ITER,
                "skb_copy_datagram_from_iter",
            ),
            (id::FILEMAP_READ, "filemap_read"),
            (id::PIPE_READ, "pipe_read"),
            (id::PIPE_WRITE, "pipe_write"),
            (id::DO_SPLICE, "do_splice"),
            (id::DO_SENDFILE, "do_sendfile"),
            (id::SPLICE_DIRECT_TO_ACTOR, "splice_direct_to_actor"),
            (id::SPLICE_TO_SOCKET, "splice_to_socket"),
            (id::ITER_FILE_SPLICE_WRITE, "iter_file_splice_write"),
        ];
        assert_eq!(names.len(), COUNT);
        for (i, name) in names {
            assert_eq!(PROBES[i as usize].name, name);
        }
    }

    #[test]
    fn every_counter_has_a_function_and_every_function_a_counter() {
        let all = || FUNCTIONS.iter();
        for p in &PROBES {
            assert!(
                all().any(|f| f.function == p.function),
                "{} is not attached",
                p.name
            );
        }
        for f in all() {
            assert!(probes_of(f.function).next().is_some(), "{}", f.function);
            // A kretprobe alone must be able to compute the bytes from the return value,
            // or it needs its kprobe partner.
            if f.kprobe.is_none() {
                assert_eq!(f.fentry_mode, Mode::Exit, "{}", f.function);
            }
        }
        let exactly_two = probes_of("__check_object_size").count();
        assert_eq!(exactly_two, 2);
    }
}
