//! The io_uring layer's shared names and table: what each opcode's completions mean, and the
//! slots of its `URSTATS` map (one per opcode below [`OPCODES`], one for any larger opcode,
//! and two for zero-copy send notifications).
//!
//! # What is counted
//! One call per completion (CQE) of a request whose submission was seen, per process and
//! opcode: `res >= 0` is bytes for the data opcodes ([`Op::moves_bytes`]; for every other
//! opcode `res` is a descriptor, a mask or a count and only the call is counted), `res < 0`
//! an error by errno. A multishot request (RECV, RECVMSG, READ_MULTISHOT) counts one call
//! per CQE. The request's process is the one that submitted it: submission runs in the
//! submitting task, or in its SQPOLL thread, which belongs to the same thread group;
//! completions run in any context (interrupts, io-wq workers, another task's task work), so
//! the completion program never looks at the current task. Where the kernel's BTF gives the
//! request's layout ([`global::REQ_FIELDS`]), it reads the opcode and the submitting task
//! from the request itself (`io_kiocb.opcode`; `io_kiocb.task`, or `io_kiocb.tctx->task`
//! from 6.13; `task_struct.tgid`): no per-request state at all. Otherwise a completion is
//! joined to its submission by the request's address. Either way the CQEs a multishot
//! request posts without a request are joined by `(ring, user_data)`. A completion that
//! cannot be placed (zcprof attached while it was in flight and no layout, or its entry
//! was evicted) is the loss [`crate::counter::IO_URING_UNMATCHED`], never guessed.
//!
//! A zero-copy send (SEND_ZC, SENDMSG_ZC) posts a second CQE, its notification
//! (`IORING_CQE_F_NOTIF`), when the kernel has released the pages: counted in [`NOTIF`].
//! When the application asked for usage reports (`IORING_SEND_ZC_REPORT_USAGE`) it also
//! says whether the kernel copied the data anyway: [`NOTIF_COPIED`] when its `res` has
//! `IORING_NOTIF_USAGE_ZC_COPIED`. A `res` of 0 means "sent from the pages" only if reports
//! were asked for, which the CQE does not say: the program reads the notification
//! request's `io_notif_data.zc_report` (offset from the kernel's BTF,
//! [`global::NOTIF_ZC_REPORT`]) and counts the notifications that report usage in
//! [`NOTIF_REPORTED`]; the sends done without a copy are those reported and not copied.
//! Without the offset none counts as done.
//!
//! Registered ("fixed") buffers save the page pinning, not the copy: READ_FIXED and
//! WRITE_FIXED still copy between the page cache or socket and the buffer.

use crate::syscalls::{Direction, Family};

/// Opcodes with a slot of their own: `0..OPCODES` (the kernel had 63 in 6.18).
pub const OPCODES: usize = 64;
/// Slot of completions whose opcode is `OPCODES` or more (a newer kernel's).
pub const OTHER_OPCODE: u32 = OPCODES as u32;
/// Slot of zero-copy send notifications (`calls` = notifications, no bytes).
pub const NOTIF: u32 = OPCODES as u32 + 1;
/// Slot of the notifications that said the kernel copied the data anyway.
pub const NOTIF_COPIED: u32 = OPCODES as u32 + 2;
/// Slot of the detector, attached only when the layer itself could not attach: calls of
/// `io_uring_setup`/`io_uring_enter`, so that a process using io_uring gets a caveat
/// instead of silence. Never an opcode, never bytes.
pub const ENTER_SEEN: u32 = OPCODES as u32 + 3;
/// Slot of the notifications that report usage (copied or not).
pub const NOTIF_REPORTED: u32 = OPCODES as u32 + 4;
/// Slots per process.
pub const COUNT: usize = OPCODES + 5;

/// `IORING_CQE_F_MORE`: the request will post more CQEs.
pub const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification.
pub const CQE_F_NOTIF: u32 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`, in a notification's `res`.
pub const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// Opcode numbers the layer treats specially (include/uapi/linux/io_uring.h).
pub mod opcode {
    pub const READV: u8 = 1;
    pub const WRITEV: u8 = 2;
    pub const READ_FIXED: u8 = 4;
    pub const WRITE_FIXED: u8 = 5;
    pub const SENDMSG: u8 = 9;
    pub const RECVMSG: u8 = 10;
    pub const READ: u8 = 22;
    pub const WRITE: u8 = 23;
    pub const SEND: u8 = 26;
    pub const RECV: u8 = 27;
    pub const SPLICE: u8 = 30;
    pub const TEE: u8 = 33;
    pub const SEND_ZC: u8 = 47;
    pub const SENDMSG_ZC: u8 = 48;
    pub const READ_MULTISHOT: u8 = 49;
}

/// Opcodes whose `res` is a byte count, as a bit mask (bit n = opcode n): the eBPF side
/// counts `res` as bytes only for these.
pub const BYTES_MASK: u64 = {
    let mut mask = 0u64;
    let mut i = 0;
    while i < OPCODES {
        if OPS[i].moves_bytes() {
            mask |= 1 << i;
        }
        i += 1;
    }
    mask
};

/// Opcodes that may post CQEs without a request (multishot receives and reads): their
/// submission is also kept by `(ring, user_data)`.
pub const MULTISHOT_MASK: u64 =
    1 << opcode::RECV | 1 << opcode::RECVMSG | 1 << opcode::READ_MULTISHOT;

/// Zero-copy sends: their first CQE's `IORING_CQE_F_MORE` announces the notification (which
/// comes with a request of its own), not more completions of this request.
pub const SEND_ZC_MASK: u64 = 1 << opcode::SEND_ZC | 1 << opcode::SENDMSG_ZC;

/// One slot of the table.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// The kernel's name without `IORING_OP_` (`READ`, `SEND_ZC`), as in `io_uring:*`
    /// tracepoints and the demos' report.
    pub name: &'static str,
    pub family: Family,
    pub direction: Direction,
}

impl Op {
    /// `res >= 0` is bytes.
    pub const fn moves_bytes(&self) -> bool {
        !matches!(self.family, Family::Control | Family::Notice)
    }
}

const fn op(name: &'static str, family: Family, direction: Direction) -> Op {
    Op {
        name,
        family,
        direction,
    }
}

const fn read(name: &'static str) -> Op {
    op(name, Family::Copy, Direction::KernelToUser)
}

const fn write(name: &'static str) -> Op {
    op(name, Family::Copy, Direction::UserToKernel)
}

const fn ctl(name: &'static str) -> Op {
    op(name, Family::Control, Direction::KernelToKernel)
}

/// Every slot, indexed by `Key::slot`.
pub const OPS: [Op; COUNT] = [
    ctl("NOP"),
    read("READV"),
    write("WRITEV"),
    ctl("FSYNC"),
    read("READ_FIXED"),
    write("WRITE_FIXED"),
    ctl("POLL_ADD"),
    ctl("POLL_REMOVE"),
    ctl("SYNC_FILE_RANGE"),
    write("SENDMSG"),
    read("RECVMSG"),
    ctl("TIMEOUT"),
    ctl("TIMEOUT_REMOVE"),
    ctl("ACCEPT"),
    ctl("ASYNC_CANCEL"),
    ctl("LINK_TIMEOUT"),
    ctl("CONNECT"),
    ctl("FALLOCATE"),
    ctl("OPENAT"),
    ctl("CLOSE"),
    ctl("FILES_UPDATE"),
    ctl("STATX"),
    read("READ"),
    write("WRITE"),
    ctl("FADVISE"),
    ctl("MADVISE"),
    write("SEND"),
    read("RECV"),
    ctl("OPENAT2"),
    ctl("EPOLL_CTL"),
    op("SPLICE", Family::ZeroCopy, Direction::KernelToKernel),
    ctl("PROVIDE_BUFFERS"),
    ctl("REMOVE_BUFFERS"),
    op("TEE", Family::ZeroCopy, Direction::KernelToKernel),
    ctl("SHUTDOWN"),
    ctl("RENAMEAT"),
    ctl("UNLINKAT"),
    ctl("MKDIRAT"),
    ctl("SYMLINKAT"),
    ctl("LINKAT"),
    ctl("MSG_RING"),
    ctl("FSETXATTR"),
    ctl("SETXATTR"),
    ctl("FGETXATTR"),
    ctl("GETXATTR"),
    ctl("SOCKET"),
    ctl("URING_CMD"),
    op(
        "SEND_ZC",
        Family::ZeroCopyRequested,
        Direction::UserToKernel,
    ),
    op(
        "SENDMSG_ZC",
        Family::ZeroCopyRequested,
        Direction::UserToKernel,
    ),
    read("READ_MULTISHOT"),
    ctl("WAITID"),
    ctl("FUTEX_WAIT"),
    ctl("FUTEX_WAKE"),
    ctl("FUTEX_WAITV"),
    ctl("FIXED_FD_INSTALL"),
    ctl("FTRUNCATE"),
    ctl("BIND"),
    ctl("LISTEN"),
    // Zero-copy receive into a registered area: its CQEs carry no byte count of a copy.
    ctl("RECV_ZC"),
    ctl("EPOLL_WAIT"),
    read("READV_FIXED"),
    write("WRITEV_FIXED"),
    ctl("PIPE"),
    ctl("OP_63"),
    ctl("OP_64_OR_MORE"),
    op(
        "SEND_ZC_NOTIFICATION",
        Family::Notice,
        Direction::KernelToKernel,
    ),
    op(
        "SEND_ZC_NOTIFICATION_COPIED",
        Family::Notice,
        Direction::KernelToKernel,
    ),
    // Not a request: the detector's count of io_uring_setup/io_uring_enter calls.
    op(
        "io_uring_enter (layer unavailable)",
        Family::Notice,
        Direction::KernelToKernel,
    ),
    op(
        "SEND_ZC_NOTIFICATION_REPORTED",
        Family::Notice,
        Direction::KernelToKernel,
    ),
];

/// The slot at `index`, if any.
pub fn get(index: u32) -> Option<&'static Op> {
    OPS.get(index as usize)
}

/// Program names, as the macros in `zcprof-ebpf/src/io_uring.rs` export them.
pub mod program {
    /// `io_uring:io_uring_submit_req` (6.3+) or `io_uring:io_uring_submit_sqe` (before):
    /// one program, the fields it reads have the same names in both.
    pub const SUBMIT: &str = "io_uring_submit";
    /// `io_uring:io_uring_complete`.
    pub const COMPLETE: &str = "io_uring_complete";
    /// `sched:sched_process_exit`: moves the exiting process's `URSTATS` entries into
    /// `FINAL` records.
    pub const PROCESS_EXIT: &str = "process_exit_io_uring";
    /// `syscalls:sys_enter_io_uring_enter` / `_setup`, attached only when the layer could
    /// not attach: counts calls in the [`super::ENTER_SEEN`] slot so that the process gets a caveat.
    pub const ENTER_SEEN: &str = "io_uring_enter_seen";
}

/// Name of the `(tgid, slot) -> Counts` map.
pub const URSTATS_MAP: &str = "URSTATS";
/// Bound of `URSTATS` (live `(tgid, slot)` pairs, flushed at exit).
pub const URSTATS_MAX_ENTRIES: u32 = 16_384;
/// Bound of the in-flight request maps (LRU: the oldest entry makes room, and its
/// completion is then counted as unmatched).
pub const INFLIGHT_MAX_ENTRIES: u32 = 16_384;
/// Bound of the ring-to-process map (for notifications).
pub const RINGS_MAX_ENTRIES: u32 = 4096;

/// Globals: field offsets from tracefs (`0` = not found; the programs then do nothing).
pub mod global {
    pub const SUBMIT_CTX: &str = "URING_SUBMIT_CTX";
    pub const SUBMIT_REQ: &str = "URING_SUBMIT_REQ";
    pub const SUBMIT_USER_DATA: &str = "URING_SUBMIT_USER_DATA";
    pub const SUBMIT_OPCODE: &str = "URING_SUBMIT_OPCODE";
    pub const COMPLETE_CTX: &str = "URING_COMPLETE_CTX";
    pub const COMPLETE_REQ: &str = "URING_COMPLETE_REQ";
    pub const COMPLETE_USER_DATA: &str = "URING_COMPLETE_USER_DATA";
    pub const COMPLETE_RES: &str = "URING_COMPLETE_RES";
    pub const COMPLETE_CFLAGS: &str = "URING_COMPLETE_CFLAGS";
    /// Byte offset of `io_notif_data.zc_report` from a notification's `struct io_kiocb`
    /// (its `cmd` area), from BTF; 0 when unknown (before 6.2 there is no such field).
    pub const NOTIF_ZC_REPORT: &str = "URING_NOTIF_ZC_REPORT";
    /// How a completion finds its request's process and opcode: [`super::JOIN_MAPS`]
    /// (the submission's map entry), [`super::JOIN_TASK`] (`req->task`) or
    /// [`super::JOIN_TCTX`] (`req->tctx->task`), with the offsets below (from BTF).
    pub const REQ_FIELDS: &str = "URING_REQ_FIELDS";
    /// `io_kiocb.opcode`.
    pub const REQ_OPCODE: &str = "URING_REQ_OPCODE";
    /// `io_kiocb.task`, or `io_kiocb.tctx`.
    pub const REQ_TASK: &str = "URING_REQ_TASK";
    /// `io_uring_task.task` (with [`super::JOIN_TCTX`]).
    pub const TCTX_TASK: &str = "URING_TCTX_TASK";
    /// `task_struct.tgid`.
    pub const TASK_TGID: &str = "URING_TASK_TGID";
}

/// [`global::REQ_FIELDS`]: no layout known, completions join their submissions' entries.
pub const JOIN_MAPS: u32 = 0;
/// [`global::REQ_FIELDS`]: the request points at its task (Linux < 6.13).
pub const JOIN_TASK: u32 = 1;
/// [`global::REQ_FIELDS`]: the request points at its task's io_uring context (6.13+).
pub const JOIN_TCTX: u32 = 2;

/// The io_uring layer as a counting layer: its own exit program flushes it.
pub const COUNTING: crate::Counting = crate::Counting {
    layer: crate::layer::IO_URING,
    map: URSTATS_MAP,
    slots: COUNT,
    exit_flush: Some(program::PROCESS_EXIT),
};

/// Key of the multishot map: one request of one ring, by the application's tag.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingTag {
    pub ctx: u64,
    pub user_data: u64,
}
const _: () = assert!(core::mem::size_of::<RingTag>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_opcodes_sit_at_their_numbers() {
        for (code, name) in [
            (opcode::READV, "READV"),
            (opcode::WRITEV, "WRITEV"),
            (opcode::READ_FIXED, "READ_FIXED"),
            (opcode::WRITE_FIXED, "WRITE_FIXED"),
            (opcode::SENDMSG, "SENDMSG"),
            (opcode::RECVMSG, "RECVMSG"),
            (opcode::READ, "READ"),
            (opcode::WRITE, "WRITE"),
            (opcode::SEND, "SEND"),
            (opcode::RECV, "RECV"),
            (opcode::SPLICE, "SPLICE"),
            (opcode::TEE, "TEE"),
            (opcode::SEND_ZC, "SEND_ZC"),
            (opcode::SENDMSG_ZC, "SENDMSG_ZC"),
            (opcode::READ_MULTISHOT, "READ_MULTISHOT"),
        ] {
            assert_eq!(OPS[code as usize].name, name);
        }
        assert_eq!(OPS[62].name, "PIPE");
        assert_eq!(OPS[OTHER_OPCODE as usize].name, "OP_64_OR_MORE");
        assert_eq!(OPS[NOTIF as usize].family, Family::Notice);
        assert_eq!(OPS[NOTIF_COPIED as usize].family, Family::Notice);
        assert_eq!(OPS[NOTIF_REPORTED as usize].family, Family::Notice);
    }

    #[test]
    fn only_data_opcodes_count_bytes() {
        assert_eq!(BYTES_MASK.count_ones(), 17);
        assert_ne!(BYTES_MASK & (1 << opcode::SPLICE), 0);
        assert_ne!(BYTES_MASK & (1 << opcode::SEND_ZC), 0);
        assert_eq!(BYTES_MASK & (1 << 18), 0, "OPENAT returns a descriptor");
    }
}
