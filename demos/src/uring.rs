//! The io_uring half of the tallying layer: a ring whose `io_uring_setup` and every
//! `io_uring_enter` are tallied like syscalls, and whose every completion is tallied per
//! opcode, so an io_uring worker's ground truth is as exact as a read/write worker's.
//!
//! The rule, per opcode (the one the syscall layer uses for return values, applied to CQEs):
//! each completion that is not a notification adds 1 to `calls`, its `res` to `bytes` when
//! `res >= 0` and 1 to `errors` when `res < 0` (a multishot request adds one call per CQE).
//! A zero-copy send's notification CQE (`IORING_CQE_F_NOTIF`) is not a completion of a
//! request and its `res` is a usage report, not a byte count: it adds 1 to `notifications`
//! only (what it reported is tallied by `zerocopy`). `submitted` counts the SQEs queued.
//!
//! Completions are read from the ring's shared memory, so reaping makes no syscall; the
//! only syscalls are `io_uring_setup` (once, in `Ring::new`) and `io_uring_enter` (once
//! per `Ring::submit_and_wait`, which never retries on its own). The `io-uring` crate's
//! `submit_and_wait` makes exactly one `io_uring_enter` on a ring without SQPOLL; the
//! strace test checks it, call for call and SQE for SQE.

use std::collections::BTreeMap;
use std::io;

use io_uring::{IoUring, cqueue, opcode, squeue};
use serde::{Deserialize, Serialize};

use crate::io::{Io, SysError};

/// Opcodes are one byte in the SQE: one counter slot for each.
const OPCODES: usize = 256;

/// `IORING_SEND_ZC_REPORT_USAGE` (include/uapi/linux/io_uring.h; mainline 6.2, backported
/// to 6.1 stable, e.g. Debian's 6.1.0-57): ask the
/// notification to say whether the kernel copied the data anyway.
pub const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: set in a notification's `res` when the data was copied.
pub const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// Calls and errors of `io_uring_setup` (its return value is a descriptor, not bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupCounter {
    pub calls: u64,
    pub errors: u64,
}

/// Calls of `io_uring_enter`, the SQEs they consumed (the sum of its return values
/// `>= 0`) and the calls that failed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterCounter {
    pub calls: u64,
    pub submitted: u64,
    pub errors: u64,
}

/// One opcode's requests and completions (rule in the module header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounter {
    pub submitted: u64,
    pub calls: u64,
    pub bytes: u64,
    pub errors: u64,
    pub notifications: u64,
}

impl OpCounter {
    const ZERO: OpCounter = OpCounter {
        submitted: 0,
        calls: 0,
        bytes: 0,
        errors: 0,
        notifications: 0,
    };

    fn is_zero(&self) -> bool {
        *self == OpCounter::ZERO
    }
}

/// One worker's io_uring tally; plain data, it lives in the worker's shared page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringTally {
    pub setup: SetupCounter,
    pub enter: EnterCounter,
    ops: [OpCounter; OPCODES],
}

impl Default for UringTally {
    fn default() -> Self {
        UringTally {
            setup: SetupCounter::default(),
            enter: EnterCounter::default(),
            ops: [OpCounter::ZERO; OPCODES],
        }
    }
}

impl UringTally {
    pub fn op(&self, opcode: u8) -> OpCounter {
        self.ops[usize::from(opcode)]
    }

    /// Records one `io_uring_enter` that returned `ret` (SQEs consumed, or `-errno`).
    pub fn record_enter(&mut self, ret: i64) {
        self.enter.calls += 1;
        match u64::try_from(ret) {
            Ok(n) => self.enter.submitted += n,
            Err(_) => self.enter.errors += 1,
        }
    }

    /// Records one CQE of a request with `opcode`.
    pub fn record_cqe(&mut self, opcode: u8, res: i32, flags: u32) {
        let op = &mut self.ops[usize::from(opcode)];
        if cqueue::notif(flags) {
            op.notifications += 1;
            return;
        }
        op.calls += 1;
        match u64::try_from(res) {
            Ok(n) => op.bytes += n,
            Err(_) => op.errors += 1,
        }
    }

    /// The JSON section, or `None` when the worker never set up a ring.
    pub fn report(&self) -> Option<IoUringReport> {
        if self.setup.calls == 0 {
            return None;
        }
        let ops = (0..=u8::MAX)
            .filter(|&code| !self.op(code).is_zero())
            .map(|code| {
                let c = self.op(code);
                let report = OpReport {
                    opcode: code,
                    submitted: c.submitted,
                    calls: c.calls,
                    bytes: c.bytes,
                    errors: c.errors,
                    notifications: c.notifications,
                };
                (op_name(code), report)
            })
            .collect();
        Some(IoUringReport {
            setup: self.setup,
            enter: self.enter,
            ops,
        })
    }
}

/// The `io_uring` section of a role in the JSON report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoUringReport {
    pub setup: SetupCounter,
    pub enter: EnterCounter,
    /// Keyed by the kernel's opcode name without `IORING_OP_` (`READ`, `SEND_ZC`).
    pub ops: BTreeMap<String, OpReport>,
}

/// One opcode in the JSON report: its number (as the `io_uring:*` tracepoints print it)
/// and its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpReport {
    pub opcode: u8,
    pub submitted: u64,
    pub calls: u64,
    pub bytes: u64,
    pub errors: u64,
    pub notifications: u64,
}

/// The kernel's name of the opcodes the demos use (`OP_<n>` for any other).
pub fn op_name(code: u8) -> String {
    match code {
        opcode::Read::CODE => "READ".into(),
        opcode::Write::CODE => "WRITE".into(),
        opcode::Splice::CODE => "SPLICE".into(),
        opcode::SendZc::CODE => "SEND_ZC".into(),
        other => format!("OP_{other}"),
    }
}

/// One reaped completion.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub opcode: u8,
    /// The caller's tag from `Ring::push`.
    pub tag: u64,
    pub res: i32,
    pub flags: u32,
}

impl Completion {
    /// A zero-copy send's notification rather than a request's completion.
    pub fn is_notification(&self) -> bool {
        cqueue::notif(self.flags)
    }

    /// The bytes moved, or the error the request failed with.
    pub fn bytes(&self) -> Result<usize, SysError> {
        usize::try_from(self.res).map_err(|_| SysError {
            call: opcode_call(self.opcode),
            error: io::Error::from_raw_os_error(-self.res),
        })
    }
}

/// A static name for errors ("io_uring READ").
fn opcode_call(code: u8) -> &'static str {
    match code {
        opcode::Read::CODE => "io_uring READ",
        opcode::Write::CODE => "io_uring WRITE",
        opcode::Splice::CODE => "io_uring SPLICE",
        opcode::SendZc::CODE => "io_uring SEND_ZC",
        _ => "io_uring request",
    }
}

/// `user_data` carries the opcode in its top byte (so a completion is tallied under the
/// opcode it completes) and the caller's tag in the rest.
const TAG_BITS: u32 = 56;

/// A tallied io_uring instance of one worker (no SQPOLL, so every submission and wait is
/// one `io_uring_enter` by the worker itself).
pub struct Ring {
    ring: IoUring,
    /// CQEs still to come: one per queued request, one more after each CQE flagged
    /// `IORING_CQE_F_MORE` (a notification or a further multishot CQE follows).
    outstanding: u64,
}

impl Ring {
    /// Sets up a ring with `entries` SQEs (one tallied `io_uring_setup`; the mmaps that
    /// follow are not counted syscalls).
    pub fn new(io: &mut Io<'_>, entries: u32) -> Result<Ring, SysError> {
        Ring::tallied(io, IoUring::new(entries))
    }

    /// The same with a SQPOLL thread (`IORING_SETUP_SQPOLL`, idle after `SQPOLL_IDLE_MS`):
    /// the kernel's `iou-sqp-PID` thread, not the caller, takes the SQEs off the ring.
    /// `submit_and_wait` with `want > 0` still makes exactly one `io_uring_enter` (to wait
    /// for the completion, and to wake the thread when it sleeps); its return value is
    /// then the SQEs handed over, as without SQPOLL.
    pub fn new_sqpoll(io: &mut Io<'_>, entries: u32) -> Result<Ring, SysError> {
        Ring::tallied(io, sqpoll_ring(entries))
    }

    fn tallied(io: &mut Io<'_>, built: io::Result<IoUring>) -> Result<Ring, SysError> {
        let tally = &mut io.tally().uring.setup;
        tally.calls += 1;
        match built {
            Ok(ring) => Ok(Ring {
                ring,
                outstanding: 0,
            }),
            Err(error) => {
                tally.errors += 1;
                Err(SysError {
                    call: "io_uring_setup",
                    error,
                })
            }
        }
    }

    /// Queues `entry` (of opcode `opcode`) tagged `tag`; it is submitted by the next
    /// `submit_and_wait`.
    ///
    /// # Safety
    /// Every buffer and descriptor the entry refers to must stay valid, and a buffer the
    /// kernel reads must stay unchanged, until its completion (and, for a zero-copy send,
    /// its notification) has been reaped.
    pub unsafe fn push(
        &mut self,
        io: &mut Io<'_>,
        entry: squeue::Entry,
        opcode: u8,
        tag: u64,
    ) -> Result<(), SysError> {
        let entry =
            entry.user_data((u64::from(opcode) << TAG_BITS) | (tag & ((1 << TAG_BITS) - 1)));
        // SAFETY: forwarded to the caller (see above).
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            return Err(SysError {
                call: "io_uring submission queue",
                error: io::Error::other("the submission queue is full"),
            });
        }
        io.tally().uring.ops[usize::from(opcode)].submitted += 1;
        self.outstanding += 1;
        Ok(())
    }

    /// Submits what is queued and waits for at least `want` completions: exactly one
    /// tallied `io_uring_enter`.
    pub fn submit_and_wait(&mut self, io: &mut Io<'_>, want: usize) -> Result<usize, SysError> {
        let result = self.ring.submitter().submit_and_wait(want);
        let ret = match &result {
            Ok(n) => *n as i64,
            Err(e) => -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        io.tally().uring.record_enter(ret);
        result.map_err(|error| SysError {
            call: "io_uring_enter",
            error,
        })
    }

    /// Takes every completion now in the completion queue, tallying each.
    pub fn reap(&mut self, io: &mut Io<'_>) -> Vec<Completion> {
        let uring = &mut io.tally().uring;
        let mut out = Vec::new();
        for cqe in self.ring.completion() {
            let data = cqe.user_data();
            let c = Completion {
                opcode: (data >> TAG_BITS) as u8,
                tag: data & ((1 << TAG_BITS) - 1),
                res: cqe.result(),
                flags: cqe.flags(),
            };
            uring.record_cqe(c.opcode, c.res, c.flags);
            self.outstanding = self.outstanding.saturating_sub(1);
            if cqueue::more(c.flags) {
                self.outstanding += 1;
            }
            out.push(c);
        }
        out
    }

    /// Waits (one enter per wait, EINTR retried as another call) until at least one
    /// completion has been reaped, and returns what was reaped.
    pub fn wait_some(&mut self, io: &mut Io<'_>) -> Result<Vec<Completion>, SysError> {
        loop {
            let reaped = self.reap(io);
            if !reaped.is_empty() {
                return Ok(reaped);
            }
            match self.submit_and_wait(io, 1) {
                Ok(_) => {}
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one request to completion: queue it, submit, wait for its CQE. Only for
    /// rings with nothing else in flight (any other CQE here is an error).
    ///
    /// # Safety
    /// As for `push`.
    pub unsafe fn run(
        &mut self,
        io: &mut Io<'_>,
        entry: squeue::Entry,
        opcode: u8,
    ) -> Result<usize, SysError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.push(io, entry, opcode, 0)? };
        let reaped = self.wait_some(io)?;
        match reaped.as_slice() {
            [c] if c.opcode == opcode && !c.is_notification() => c.bytes(),
            _ => Err(SysError {
                call: opcode_call(opcode),
                error: io::Error::other(format!("expected one completion, got {reaped:?}")),
            }),
        }
    }

    /// CQEs still expected: must be 0 before the ring is dropped, or the tally would miss
    /// completions the kernel posts (or cancels) later.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }
}

/// How long a SQPOLL thread polls an empty ring before it sleeps: short, so an idle demo
/// does not keep a core busy; a sleeping thread is woken by the next `io_uring_enter`.
const SQPOLL_IDLE_MS: u32 = 10;

fn sqpoll_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_sqpoll(SQPOLL_IDLE_MS)
        .build(entries)
}

/// Whether this kernel lets the caller set up a SQPOLL ring (Linux 5.11+ without
/// privileges; `EPERM` where io_uring or SQPOLL is restricted). Runs in the parent.
pub fn probe_sqpoll() -> Result<(), String> {
    sqpoll_ring(4)
        .map(drop)
        .map_err(|e| format!("io_uring_setup with IORING_SETUP_SQPOLL: {e}"))
}

/// Whether this kernel can run the io_uring modes: sets up a ring in the calling (parent,
/// untallied) process and asks which of `opcodes` it supports. `Err` is the reason in one
/// phrase, e.g. "io_uring_setup: Function not implemented (os error 38)".
pub fn probe(opcodes: &[u8]) -> Result<IoUring, String> {
    let ring = IoUring::new(4).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => format!("io_uring_setup: {e}: this kernel has no io_uring"),
        Some(libc::EPERM) => {
            format!("io_uring_setup: {e}: io_uring is disabled here (kernel.io_uring_disabled)")
        }
        _ => format!("io_uring_setup: {e}"),
    })?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("IORING_REGISTER_PROBE: {e}"))?;
    let missing: Vec<String> = opcodes
        .iter()
        .filter(|&&op| !probe.is_supported(op))
        .map(|&op| format!("IORING_OP_{}", op_name(op)))
        .collect();
    if !missing.is_empty() {
        return Err(format!("io_uring lacks {}", missing.join(", ")));
    }
    Ok(ring)
}

/// Whether `IORING_OP_SEND_ZC` takes `IORING_SEND_ZC_REPORT_USAGE` here. A
/// kernel without it rejects the flag when it prepares the request (`EINVAL`), before it
/// looks at the descriptor; one with it gets as far as the descriptor, which is `-1` here
/// (`EBADF`). Runs on a probe ring of the parent, which is dropped afterwards.
pub fn send_zc_reports_usage(ring: &mut IoUring) -> Result<(), String> {
    let entry = opcode::SendZc::new(io_uring::types::Fd(-1), std::ptr::null(), 0)
        .zc_flags(SEND_ZC_REPORT_USAGE)
        .build()
        .user_data(1);
    // SAFETY: the entry refers to no buffer (length 0) and an invalid descriptor.
    unsafe { ring.submission().push(&entry) }
        .map_err(|_| "the probe ring's submission queue is full".to_string())?;
    ring.submitter()
        .submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let res = ring
        .completion()
        .find(|c| c.user_data() == 1 && !cqueue::notif(c.flags()))
        .map(|c| c.result())
        .ok_or_else(|| "no completion for the SEND_ZC probe".to_string())?;
    usage_reports_from(res)
}

/// The decision of `send_zc_reports_usage` from the probe's `res` (pure, for tests).
pub fn usage_reports_from(res: i32) -> Result<(), String> {
    if res == -libc::EINVAL {
        Err(
            "io_uring SEND_ZC does not take IORING_SEND_ZC_REPORT_USAGE here (mainline 6.2), \
             so it cannot say whether the kernel copied"
                .into(),
        )
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `IORING_CQE_F_MORE` and `IORING_CQE_F_NOTIF` (include/uapi/linux/io_uring.h).
    const CQE_F_MORE: u32 = 1 << 1;
    const CQE_F_NOTIF: u32 = 1 << 3;

    #[test]
    fn completions_follow_the_syscall_rule_and_notifications_stay_apart() {
        let mut t = UringTally::default();
        let read = opcode::Read::CODE;
        let send = opcode::SendZc::CODE;
        t.record_cqe(read, 4096, 0);
        t.record_cqe(read, 0, 0); // EOF: a call with 0 bytes
        t.record_cqe(read, -libc::EAGAIN, 0);
        t.record_cqe(send, 100, CQE_F_MORE);
        // A copied notification's res has the top bit set: negative as an i32, yet no error.
        t.record_cqe(send, NOTIF_USAGE_ZC_COPIED as i32, CQE_F_NOTIF);
        assert_eq!(
            t.op(read),
            OpCounter {
                submitted: 0,
                calls: 3,
                bytes: 4096,
                errors: 1,
                notifications: 0
            }
        );
        assert_eq!(t.op(send).calls, 1);
        assert_eq!(t.op(send).bytes, 100);
        assert_eq!(t.op(send).errors, 0);
        assert_eq!(t.op(send).notifications, 1);
        t.setup.calls = 1;
        t.record_enter(2);
        t.record_enter(-i64::from(libc::EINTR));
        let r = t.report().expect("a ring was set up");
        assert_eq!(
            r.enter,
            EnterCounter {
                calls: 2,
                submitted: 2,
                errors: 1
            }
        );
        assert_eq!(r.ops.keys().collect::<Vec<_>>(), ["READ", "SEND_ZC"]);
        assert_eq!(r.ops["SEND_ZC"].opcode, 47);
    }

    #[test]
    fn no_ring_no_section() {
        assert!(UringTally::default().report().is_none());
    }

    #[test]
    fn usage_report_probe_decision() {
        assert!(usage_reports_from(-libc::EINVAL).is_err());
        assert!(usage_reports_from(-libc::EBADF).is_ok());
    }
}
