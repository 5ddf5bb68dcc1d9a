//! The tallying syscall layer: raw libc calls that record themselves in a `Tally`.
//!
//! A demo worker must make *every* read/write-family syscall through this type and no
//! other way, so that its tally is the exact ground truth for the profiler. That is why
//! these are thin libc calls and not `std::io` traits: std may retry, buffer or make
//! calls of its own. Each method records the raw return value first, then turns it into a
//! `Result`; retries (EINTR, partial transfers) are left to the caller so that each
//! retry is visibly one more call.

use std::io;
use std::os::fd::RawFd;
use std::ptr;

use crate::syscalls::{Syscall, Tally};

/// A failed syscall: which call, and the OS error it returned.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {error}")]
pub struct SysError {
    pub call: &'static str,
    pub error: io::Error,
}

impl SysError {
    /// True when the call was interrupted by a signal and may simply be retried.
    pub fn interrupted(&self) -> bool {
        self.error.kind() == io::ErrorKind::Interrupted
    }
}

/// Tallying wrappers around the syscalls demo workers use.
pub struct Io<'a> {
    tally: &'a mut Tally,
}

/// `libc` offset pointer for calls that take an optional in/out file offset.
fn offset_ptr(off: Option<&mut i64>) -> *mut libc::loff_t {
    off.map_or(ptr::null_mut(), |o| o as *mut i64)
}

impl<'a> Io<'a> {
    pub fn new(tally: &'a mut Tally) -> Self {
        Io { tally }
    }

    /// The tally itself, for the io_uring and zero-copy layers (`uring`, `zerocopy`) that
    /// record what no syscall return value says: completions and notifications.
    pub fn tally(&mut self) -> &mut Tally {
        self.tally
    }

    /// Records a return value and converts it. Must run before anything that could
    /// change `errno`; recording only touches memory.
    fn finish(&mut self, syscall: Syscall, ret: isize) -> Result<usize, SysError> {
        self.tally.record(syscall, ret as i64);
        usize::try_from(ret).map_err(|_| SysError {
            call: syscall.name(),
            error: io::Error::last_os_error(),
        })
    }

    pub fn read(&mut self, fd: RawFd, buf: &mut [u8]) -> Result<usize, SysError> {
        // SAFETY: `buf` is a live, writable region of exactly `buf.len()` bytes.
        let ret = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        self.finish(Syscall::Read, ret)
    }

    pub fn write(&mut self, fd: RawFd, buf: &[u8]) -> Result<usize, SysError> {
        // SAFETY: `buf` is a live, readable region of exactly `buf.len()` bytes.
        let ret = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        self.finish(Syscall::Write, ret)
    }

    pub fn pread(&mut self, fd: RawFd, buf: &mut [u8], offset: i64) -> Result<usize, SysError> {
        // SAFETY: `buf` is a live, writable region of exactly `buf.len()` bytes.
        let ret = unsafe { libc::pread64(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
        self.finish(Syscall::Pread64, ret)
    }

    /// `send(fd, buf, flags)`: glibc makes it the `sendto` syscall (no address), which is
    /// what strace and the profiler see and what is tallied.
    pub fn send(&mut self, fd: RawFd, buf: &[u8], flags: i32) -> Result<usize, SysError> {
        // SAFETY: `buf` is a live, readable region of exactly `buf.len()` bytes; with
        // MSG_ZEROCOPY the kernel pins its pages, which the caller keeps unchanged until
        // the completion notification (see `zerocopy`).
        let ret = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        self.finish(Syscall::Sendto, ret)
    }

    /// `recvmsg(fd, msg, flags)`. Its return value is the data length (0 for a
    /// zero-copy notification read with MSG_ERRQUEUE, which carries only control data).
    pub fn recvmsg(
        &mut self,
        fd: RawFd,
        msg: &mut libc::msghdr,
        flags: i32,
    ) -> Result<usize, SysError> {
        // SAFETY: the caller built `msg` from live buffers (iovecs, control buffer) that
        // outlive the call; the kernel writes only within their stated lengths.
        let ret = unsafe { libc::recvmsg(fd, msg, flags) };
        self.finish(Syscall::Recvmsg, ret)
    }

    /// `sendfile(out, in, offset, count)`; with `offset` the input file position is
    /// left alone and `*offset` advances instead.
    pub fn sendfile(
        &mut self,
        out_fd: RawFd,
        in_fd: RawFd,
        offset: Option<&mut i64>,
        count: usize,
    ) -> Result<usize, SysError> {
        // SAFETY: the offset pointer is null or points to a live i64 for the call.
        let ret = unsafe { libc::sendfile64(out_fd, in_fd, offset_ptr(offset), count) };
        self.finish(Syscall::Sendfile, ret)
    }

    pub fn splice(
        &mut self,
        fd_in: RawFd,
        fd_out: RawFd,
        len: usize,
        flags: u32,
    ) -> Result<usize, SysError> {
        // SAFETY: no pointers are passed (both offsets null: pipes and sockets).
        let ret =
            unsafe { libc::splice(fd_in, ptr::null_mut(), fd_out, ptr::null_mut(), len, flags) };
        self.finish(Syscall::Splice, ret)
    }

    /// Maps the pages behind `buf` into the pipe `fd` by reference. The caller must not
    /// change `buf` until the pipe's reader has consumed it (see `pipe.rs`).
    pub fn vmsplice(&mut self, fd: RawFd, buf: &[u8], flags: u32) -> Result<usize, SysError> {
        let iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: one iovec describing the live region `buf`; without SPLICE_F_GIFT the
        // kernel only reads it.
        let ret = unsafe { libc::vmsplice(fd, &iov, 1, flags) };
        self.finish(Syscall::Vmsplice, ret)
    }

    pub fn tee(
        &mut self,
        fd_in: RawFd,
        fd_out: RawFd,
        len: usize,
        flags: u32,
    ) -> Result<usize, SysError> {
        // SAFETY: no pointers are passed.
        let ret = unsafe { libc::tee(fd_in, fd_out, len, flags) };
        self.finish(Syscall::Tee, ret)
    }

    pub fn copy_file_range(
        &mut self,
        fd_in: RawFd,
        off_in: &mut i64,
        fd_out: RawFd,
        off_out: &mut i64,
        len: usize,
    ) -> Result<usize, SysError> {
        // SAFETY: both offset pointers point to live i64s for the duration of the call.
        let ret = unsafe {
            libc::copy_file_range(
                fd_in,
                off_in as *mut i64,
                fd_out,
                off_out as *mut i64,
                len,
                0,
            )
        };
        self.finish(Syscall::CopyFileRange, ret)
    }

    /// Writes all of `buf`, one tallied `write` per attempt (partial writes and EINTR
    /// retries are each a call, as the profiler sees them).
    pub fn write_all(&mut self, fd: RawFd, mut buf: &[u8]) -> Result<(), SysError> {
        while !buf.is_empty() {
            match self.write(fd, buf) {
                Ok(0) => {
                    return Err(SysError {
                        call: "write",
                        error: io::ErrorKind::WriteZero.into(),
                    });
                }
                Ok(n) => buf = &buf[n..],
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or EOF; returns how many bytes arrived.
    pub fn read_full(&mut self, fd: RawFd, buf: &mut [u8]) -> Result<usize, SysError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read(fd, &mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// Splices exactly `len` bytes that are already in pipe `fd_in` on to `fd_out`.
    pub fn splice_exact(
        &mut self,
        fd_in: RawFd,
        fd_out: RawFd,
        mut len: usize,
        flags: u32,
    ) -> Result<(), SysError> {
        while len > 0 {
            match self.splice(fd_in, fd_out, len, flags) {
                Ok(0) => {
                    return Err(SysError {
                        call: "splice",
                        error: io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                Ok(n) => len -= n,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::Counter;

    #[test]
    fn failed_call_is_an_error_in_tally_and_result() {
        let mut tally = Tally::default();
        let mut io = Io::new(&mut tally);
        let err = io.write(-1, b"x").unwrap_err();
        assert_eq!(err.error.raw_os_error(), Some(libc::EBADF));
        assert_eq!(
            tally.get(Syscall::Write),
            Counter {
                calls: 1,
                bytes: 0,
                errors: 1
            }
        );
    }

    #[test]
    fn pipe_round_trip_is_tallied() {
        let (r, w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let mut tally = Tally::default();
        let mut io = Io::new(&mut tally);
        io.write_all(w.as_raw_fd(), b"hello").unwrap();
        drop(w);
        let mut buf = [0u8; 16];
        assert_eq!(io.read_full(r.as_raw_fd(), &mut buf).unwrap(), 5);
        assert_eq!(tally.get(Syscall::Write).bytes, 5);
        // One read returned 5, the next returned 0 (EOF).
        assert_eq!(
            tally.get(Syscall::Read),
            Counter {
                calls: 2,
                bytes: 5,
                errors: 0
            }
        );
    }
}
