//! TCP loopback plumbing: a listener made in the parent, accept and connect in workers.
//!
//! Listeners are bound to port 0 before any worker starts, so the kernel picks a free
//! port (demos can run concurrently) and a client worker can connect at once (the
//! backlog holds the connection until the server worker accepts). Neither `accept` nor
//! `connect` is a counted syscall, and std's `TcpStream::connect` makes only `socket`
//! and `connect`, so the workers' tallies stay exact; the strace test checks this.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::error::{DemoError, Result};

/// Binds a listening socket to `ip:0`; returns it and the address clients use.
pub fn listen(ip: Ipv4Addr) -> Result<(OwnedFd, SocketAddr)> {
    let bind_err = |cause| DemoError::Bind {
        addr: format!("{ip}:0"),
        cause,
    };
    let listener = TcpListener::bind((ip, 0)).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    Ok((listener.into(), addr))
}

/// Accepts one connection on a listening socket.
pub fn accept(listener: RawFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: null address pointers are allowed (peer address not wanted).
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Connects to `addr`.
pub fn connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    TcpStream::connect(addr).map(OwnedFd::from)
}

/// Shuts down the sending side so the peer reads EOF even if another process still
/// holds the socket.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: plain call on a descriptor; failure (e.g. already closed by peer) is
    // harmless here.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}
