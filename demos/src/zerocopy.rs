//! Zero-copy sends and whether the kernel copied anyway: the tally of sends requested
//! zero-copy and of their completion notifications, for `MSG_ZEROCOPY` (read from the
//! socket's error queue) and io_uring `SEND_ZC` (read from notification CQEs).
//!
//! The rule: every send requested zero-copy adds 1 to `requested.calls`, its return value
//! (or CQE `res`) to `requested.bytes` when `>= 0`, 1 to `requested.errors` when `< 0`. Every
//! notification read adds 1 to `notifications`; the sends it covers (one for `SEND_ZC`, the
//! range `ee_info..=ee_data` of send ids for `MSG_ZEROCOPY`) are added to `copied` when it
//! says the kernel copied (`SO_EE_CODE_ZEROCOPY_COPIED`, `IORING_NOTIF_USAGE_ZC_COPIED`),
//! else to `not_copied`, with their bytes: the demo remembers each successful send's length
//! by its id, so bytes are known exactly for both mechanisms. A failed send gets no id and
//! no notification (the kernel rolls its id back), so it is in neither.
//!
//! Over loopback the kernel always copies: the receiving socket cannot keep references to
//! the sender's pages (Documentation/networking/msg_zerocopy.rst, "Loopback").

use std::collections::VecDeque;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::io::Io;
use crate::syscalls::Counter;
use crate::worker::{WorkerError, WorkerResult};

/// `SO_ZEROCOPY` (include/uapi/asm-generic/socket.h); not in the libc crate.
pub const SO_ZEROCOPY: libc::c_int = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` and `SO_EE_CODE_ZEROCOPY_COPIED` (include/uapi/linux/errqueue.h).
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Which mechanism a role's zero-copy sends used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `send(MSG_ZEROCOPY)` on a socket with `SO_ZEROCOPY`; notifications on the error queue.
    MsgZerocopy,
    /// `IORING_OP_SEND_ZC` with usage reports; notifications as CQEs.
    IoUringSendZc,
}

/// Sends and their bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sends {
    pub sends: u64,
    pub bytes: u64,
}

impl Sends {
    fn add(&mut self, sends: u64, bytes: u64) {
        self.sends += sends;
        self.bytes += bytes;
    }
}

/// One worker's zero-copy tally; plain data in the worker's shared page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroCopyTally {
    /// 0: none yet, 1: MSG_ZEROCOPY, 2: io_uring SEND_ZC (an enum is not valid for every
    /// bit pattern, and this page starts zeroed).
    via: u32,
    pub requested: Counter,
    pub notifications: u64,
    pub copied: Sends,
    pub not_copied: Sends,
}

impl ZeroCopyTally {
    /// Records one send requested zero-copy through `via` that returned `ret`.
    pub fn record_send(&mut self, via: Via, ret: i64) {
        self.via = match via {
            Via::MsgZerocopy => 1,
            Via::IoUringSendZc => 2,
        };
        self.requested.record(ret);
    }

    /// Records one notification covering `sends` sends of `bytes` bytes.
    pub fn record_notification(&mut self, copied: bool, sends: u64, bytes: u64) {
        self.notifications += 1;
        if copied {
            self.copied.add(sends, bytes);
        } else {
            self.not_copied.add(sends, bytes);
        }
    }

    /// The JSON section, or `None` when the worker requested no zero-copy send.
    pub fn report(&self) -> Option<ZeroCopyReport> {
        let via = match self.via {
            1 => Via::MsgZerocopy,
            2 => Via::IoUringSendZc,
            _ => return None,
        };
        Some(ZeroCopyReport {
            via,
            requested: self.requested,
            notifications: self.notifications,
            copied: self.copied,
            not_copied: self.not_copied,
        })
    }
}

/// The `zerocopy` section of a role in the JSON report (rule in the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroCopyReport {
    pub via: Via,
    pub requested: Counter,
    pub notifications: u64,
    /// Sends (and their bytes) the kernel reported it copied anyway.
    pub copied: Sends,
    /// Sends (and their bytes) completed without a copy.
    pub not_copied: Sends,
}

/// Sends whose notification has not arrived yet, in id order, with their lengths.
#[derive(Debug, Default)]
pub struct Pending {
    sends: VecDeque<(u32, u64)>,
}

impl Pending {
    pub fn push(&mut self, id: u32, bytes: u64) {
        self.sends.push_back((id, bytes));
    }

    pub fn len(&self) -> usize {
        self.sends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// Removes the sends with ids `lo..=hi` (wrapping, as the kernel's 32-bit counter does)
    /// and returns how many there were and their bytes; `None` when one of them is not
    /// pending (a notification for a send this worker never made, or one reported twice).
    pub fn take(&mut self, lo: u32, hi: u32) -> Option<(u64, u64)> {
        let count = u64::from(hi.wrapping_sub(lo)) + 1;
        if count > self.sends.len() as u64 {
            return None;
        }
        let mut bytes = 0;
        let mut id = lo;
        for _ in 0..count {
            let at = self.sends.iter().position(|&(i, _)| i == id)?;
            bytes += self.sends.remove(at)?.1;
            id = id.wrapping_add(1);
        }
        Some((count, bytes))
    }
}

/// How many zero-copy sends may await their notification at once. Each holds pinned pages
/// and a notification buffer charged to the socket's option memory (`optmem_max`, 20 KiB on
/// Linux 6.1): past it a send fails with ENOBUFS, so a real sender bounds its window too.
pub const WINDOW: usize = 8;

/// A `MSG_ZEROCOPY` sender on a connected TCP socket that has `SO_ZEROCOPY` set.
pub struct MsgZerocopy {
    fd: RawFd,
    next_id: u32,
    pending: Pending,
}

impl MsgZerocopy {
    /// Checks (without a counted syscall) that `fd` has `SO_ZEROCOPY`: set on the listener
    /// in the parent, inherited by the accepted socket.
    pub fn new(fd: RawFd) -> Result<MsgZerocopy, WorkerError> {
        let mut on: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid out-pointers of the stated length.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_ZEROCOPY,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r != 0 || on == 0 {
            return Err(WorkerError::msg(
                "the accepted socket does not have SO_ZEROCOPY set",
            ));
        }
        Ok(MsgZerocopy {
            fd,
            next_id: 0,
            pending: Pending::default(),
        })
    }

    /// Sends all of `data` with `MSG_ZEROCOPY`, one tallied `sendto` per attempt, reading
    /// notifications as they come and waiting for one whenever `WINDOW` sends are pending.
    /// `data` must stay unchanged until `finish` returns.
    pub fn send_all(&mut self, io: &mut Io<'_>, mut data: &[u8]) -> WorkerResult {
        while !data.is_empty() {
            self.read_ready(io)?;
            while self.pending.len() >= WINDOW {
                self.wait(io)?;
            }
            let result = io.send(self.fd, data, libc::MSG_ZEROCOPY);
            let ret = match &result {
                Ok(n) => *n as i64,
                Err(e) => -i64::from(e.error.raw_os_error().unwrap_or(libc::EIO)),
            };
            io.tally().zerocopy.record_send(Via::MsgZerocopy, ret);
            match result {
                Ok(0) => return Err(WorkerError::msg("send(MSG_ZEROCOPY) sent nothing")),
                Ok(n) => {
                    // Each successful send takes the socket's next id (ee_info/ee_data).
                    self.pending.push(self.next_id, n as u64);
                    self.next_id = self.next_id.wrapping_add(1);
                    data = &data[n..];
                }
                Err(e) if e.interrupted() => {}
                // Too many notifications unread: wait for one, then retry (the failed
                // call stays in the tally as an error, as the profiler counts it).
                Err(e) if e.error.raw_os_error() == Some(libc::ENOBUFS) => self.wait(io)?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Waits until every send has been notified.
    pub fn finish(&mut self, io: &mut Io<'_>) -> WorkerResult {
        while !self.pending.is_empty() {
            self.wait(io)?;
        }
        Ok(())
    }

    /// Reads the notifications already queued, without blocking. `poll` (not a counted
    /// syscall) says whether there is one, so no `recvmsg` ever fails with EAGAIN.
    fn read_ready(&mut self, io: &mut Io<'_>) -> WorkerResult {
        while error_queue_ready(self.fd, 0)? {
            self.read_one(io)?;
        }
        Ok(())
    }

    /// Blocks until a notification is queued, then reads it (and any others queued).
    fn wait(&mut self, io: &mut Io<'_>) -> WorkerResult {
        const TIMEOUT_MS: i32 = 30_000;
        if !error_queue_ready(self.fd, TIMEOUT_MS)? {
            return Err(WorkerError::msg(format!(
                "no MSG_ZEROCOPY notification within {} s ({} sends pending)",
                TIMEOUT_MS / 1000,
                self.pending.len()
            )));
        }
        self.read_ready(io)
    }

    /// One tallied `recvmsg(MSG_ERRQUEUE)` and the notification it carries.
    fn read_one(&mut self, io: &mut Io<'_>) -> WorkerResult {
        // u64s: cmsg headers need their alignment.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid value (no name, no iovecs).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        loop {
            match io.recvmsg(self.fd, &mut msg, libc::MSG_ERRQUEUE) {
                Ok(_) => break,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (lo, hi, copied) = notification(&msg)?;
        let (sends, bytes) = self.pending.take(lo, hi).ok_or_else(|| {
            WorkerError::msg(format!(
                "MSG_ZEROCOPY notification for sends {lo}..={hi}, which are not pending"
            ))
        })?;
        io.tally()
            .zerocopy
            .record_notification(copied, sends, bytes);
        Ok(())
    }
}

/// Whether the socket reports POLLERR (its error queue holds something) within
/// `timeout_ms`.
fn error_queue_ready(fd: RawFd, timeout_ms: i32) -> Result<bool, WorkerError> {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(p.revents & libc::POLLERR != 0);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(WorkerError::msg(format!("poll: {e}")));
        }
    }
}

/// The zero-copy completion in a message read from the error queue: the id range and
/// whether the kernel copied. Anything else there (a real socket error) is an error.
fn notification(msg: &libc::msghdr) -> Result<(u32, u32, bool), WorkerError> {
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null cmsg pointers from CMSG_FIRSTHDR/NXTHDR point into the buffer.
        let h = unsafe { &*cmsg };
        let recverr = (h.cmsg_level == libc::SOL_IP && h.cmsg_type == libc::IP_RECVERR)
            || (h.cmsg_level == libc::SOL_IPV6 && h.cmsg_type == libc::IPV6_RECVERR);
        if recverr {
            // SAFETY: an IP(V6)_RECVERR cmsg carries a sock_extended_err (possibly
            // unaligned in the buffer, hence read_unaligned).
            let ee: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if ee.ee_errno != 0 || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY {
                return Err(WorkerError::msg(format!(
                    "error queue: not a zero-copy notification (errno {}, origin {})",
                    ee.ee_errno, ee.ee_origin
                )));
            }
            let copied = ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0;
            return Ok((ee.ee_info, ee.ee_data, copied));
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    Err(WorkerError::msg(
        "error queue: a message without a sock_extended_err",
    ))
}

/// Sets `SO_ZEROCOPY` on a listening socket in the parent (accepted sockets inherit it),
/// or says why this kernel cannot.
pub fn enable(listener: RawFd) -> Result<(), String> {
    let on: libc::c_int = 1;
    // SAFETY: a valid int option value of the stated length.
    let r = unsafe {
        libc::setsockopt(
            listener,
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "setsockopt(SO_ZEROCOPY): {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_pending_sends_with_their_bytes() {
        let mut p = Pending::default();
        for (id, n) in [(0, 100), (1, 200), (2, 300), (3, 400)] {
            p.push(id, n);
        }
        assert_eq!(p.take(0, 1), Some((2, 300)));
        assert_eq!(p.take(3, 3), Some((1, 400)), "out of order is fine");
        assert_eq!(p.take(3, 3), None, "reported twice");
        assert_eq!(p.take(2, 2), Some((1, 300)));
        assert!(p.is_empty());
        // The 32-bit id wraps.
        p.push(u32::MAX, 1);
        p.push(0, 2);
        assert_eq!(p.take(u32::MAX, 0), Some((2, 3)));
        assert_eq!(p.take(5, 4), None, "a range wider than what is pending");
    }

    #[test]
    fn notifications_split_copied_from_not_copied() {
        let mut t = ZeroCopyTally::default();
        assert!(t.report().is_none());
        t.record_send(Via::MsgZerocopy, 65536);
        t.record_send(Via::MsgZerocopy, 1000);
        t.record_send(Via::MsgZerocopy, -i64::from(libc::ENOBUFS));
        t.record_notification(true, 2, 66536);
        let r = t.report().expect("sends were requested");
        assert_eq!(r.via, Via::MsgZerocopy);
        assert_eq!(
            r.requested,
            Counter {
                calls: 3,
                bytes: 66536,
                errors: 1
            }
        );
        assert_eq!(r.notifications, 1);
        assert_eq!(
            r.copied,
            Sends {
                sends: 2,
                bytes: 66536
            }
        );
        assert_eq!(r.not_copied, Sends::default());
    }
}
