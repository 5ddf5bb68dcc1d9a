//! `file-serve`: a server sends a file to a client over TCP loopback.
//!
//! - `read-write`: the server `read`s the file into a user buffer and `write`s it to the
//!   socket: page cache → user buffer → socket buffer, two copies per byte.
//! - `mmap-write`: the server maps the file and `write`s straight from the mapping:
//!   one copy per byte (mapping → socket buffer), no read. (The C# guide's version of
//!   this copies the mapping into a 64 KiB buffer first; that extra copy is avoided.)
//! - `sendfile`: the server hands the kernel the file and the socket; no user buffer.
//! - `io-uring-splice`: io_uring's zero-copy file serving: `IORING_OP_SPLICE` file → pipe,
//!   then pipe → socket; no user buffer, and no counted syscall (only `io_uring_enter`).
//! - `msg-zerocopy`: the server maps the file and `send`s from the mapping with
//!   `MSG_ZEROCOPY` on a socket with `SO_ZEROCOPY`, reading the completion notifications
//!   from the socket's error queue (`recvmsg(MSG_ERRQUEUE)`). Over loopback every
//!   notification says `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel copied anyway.
//! - `io-uring-send-zc`: the same through io_uring: `IORING_OP_SEND_ZC` from the mapping
//!   with `IORING_SEND_ZC_REPORT_USAGE`; each send's notification CQE says whether the
//!   kernel copied (`IORING_NOTIF_USAGE_ZC_COPIED`; again, always over loopback). Needs
//!   usage reports (mainline 6.2, in 6.1 stable too); kernels without them report the mode
//!   unsupported.
//!
//! The client is the same in every mode: it `read`s the stream and verifies each byte.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{opcode, types::Fd};

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::mapping::{FileId, Mapping, Reader};
use crate::net;
use crate::scenarios::stream::receive_verify;
use crate::scenarios::{Ctx, Finished, bad_mode, rewind, role};
use crate::uring::{self, NOTIF_USAGE_ZC_COPIED, Ring, SEND_ZC_REPORT_USAGE};
use crate::worker::{Worker, WorkerError, WorkerResult};
use crate::zerocopy::{self, MsgZerocopy, Pending, Via, WINDOW};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "file-serve",
    description: "Serve a file to a client over TCP loopback; the client verifies it.",
    roles: &["server", "client"],
    modes: &[
        ModeInfo {
            name: "read-write",
            description: "server read()s the file into a buffer and write()s it to the socket",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "mmap-write",
            description: "server mmap()s the file and write()s from the mapping (no read copy)",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "sendfile",
            description: "server sendfile()s from the file to the socket, no user buffer",
            copy_free_roles: &["server"],
        },
        ModeInfo {
            name: "io-uring-splice",
            description: "server splices file -> pipe -> socket with io_uring SPLICE requests",
            copy_free_roles: &["server"],
        },
        // Not copy-free: `send` is a copy-family syscall, and over loopback the kernel
        // copies every zero-copy send anyway (its notifications say so).
        ModeInfo {
            name: "msg-zerocopy",
            description: "server send()s from an mmap with MSG_ZEROCOPY, reads the error-queue notifications",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "io-uring-send-zc",
            description: "server sends from an mmap with io_uring SEND_ZC and usage reports",
            copy_free_roles: &[],
        },
    ],
    baseline: "read-write",
    seed_claim: "A web server sending a file: read+send copies disk->kernel->user->socket; \
                 sendfile() goes disk->kernel->NIC with no user copy (C# guide, Scenario 1).",
    disk_files: 1,
};

#[derive(Clone, Copy)]
enum Mode {
    ReadWrite,
    MmapWrite,
    Sendfile,
    IoUringSplice,
    MsgZerocopy,
    IoUringSendZc,
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "read-write" => Mode::ReadWrite,
        "mmap-write" => Mode::MmapWrite,
        "sendfile" => Mode::Sendfile,
        "io-uring-splice" => Mode::IoUringSplice,
        "msg-zerocopy" => Mode::MsgZerocopy,
        "io-uring-send-zc" => Mode::IoUringSendZc,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let unsupported = |why| DemoError::unsupported(INFO.name, mode_name(mode), why);
    match mode {
        Mode::IoUringSplice => drop(uring::probe(&[opcode::Splice::CODE]).map_err(unsupported)?),
        Mode::IoUringSendZc => {
            let mut ring = uring::probe(&[opcode::SendZc::CODE]).map_err(unsupported)?;
            uring::send_zc_reports_usage(&mut ring).map_err(unsupported)?;
        }
        _ => {}
    }
    let len = ctx.plan.pass_bytes();
    let chunk = ctx.plan.chunk;
    let pattern = ctx.pattern;
    let (file, _) = ctx.make_input_file("served.bin", len)?;
    let id = FileId::of(&file)?;
    let (listener, addr) = net::listen(ctx.plan.bind)?;
    if let Mode::MsgZerocopy = mode {
        // In the parent, so that a kernel without SO_ZEROCOPY is reported before any fork.
        zerocopy::enable(listener.as_raw_fd()).map_err(unsupported)?;
    }
    // The splice mode's pipe (pipe2 is not a counted syscall).
    let pipe = match mode {
        Mode::IoUringSplice => {
            let (r, w) = std::io::pipe().map_err(|e| DemoError::setup("create a pipe", e))?;
            Some((ctx.spawner.register(r), ctx.spawner.register(w)))
        }
        _ => None,
    };
    let file = ctx.spawner.register(file);
    let listener = ctx.spawner.register(listener);
    let mut keep = vec![file, listener];
    keep.extend(pipe.iter().flat_map(|&(r, w)| [r, w]));

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("server", &keep, |w| {
        let conn = net::accept(listener)?;
        let sock = conn.as_raw_fd();
        // The ring is the worker's own (one set up before fork would be shared).
        let mut ring = match mode {
            Mode::IoUringSplice | Mode::IoUringSendZc => Some(Ring::new(&mut w.io, 16)?),
            _ => None,
        };
        let map = match mode {
            // One mapping for every pass (see `mapping`).
            Mode::MmapWrite | Mode::MsgZerocopy | Mode::IoUringSendZc => {
                Some(Mapping::tallied(w.stats, file, id, len, Reader::Kernel)?)
            }
            _ => None,
        };
        let mut msg_zc = match mode {
            Mode::MsgZerocopy => Some(MsgZerocopy::new(sock)?),
            _ => None,
        };
        let mut passes = 0;
        while budget.another_pass(passes) {
            match (mode, ring.as_mut(), pipe, map.as_ref(), msg_zc.as_mut()) {
                (Mode::ReadWrite, ..) => serve_read_write(w, file, sock, len, chunk)?,
                (Mode::MmapWrite, _, _, Some(map), _) => serve_mmap_write(w, sock, map, chunk)?,
                (Mode::Sendfile, ..) => serve_sendfile(w, file, sock, len, chunk)?,
                (Mode::IoUringSplice, Some(ring), Some(pipe), ..) => {
                    serve_io_uring_splice(w, ring, file, pipe, sock, len, chunk)?;
                }
                (Mode::MsgZerocopy, _, _, Some(map), Some(zc)) => {
                    // ZERO-COPY requested: the kernel pins the mapping's pages ...
                    map.data()
                        .chunks(chunk)
                        .try_for_each(|part| zc.send_all(&mut w.io, part))?;
                }
                (Mode::IoUringSendZc, Some(ring), _, Some(map), _) => {
                    serve_send_zc(w, ring, sock, map.data(), chunk)?;
                }
                _ => return Err(WorkerError::msg("mode set-up missing")),
            }
            passes += 1;
            w.stats.payload_bytes += len;
        }
        // ... and says, in each notification, whether it copied them after all.
        if let Some(zc) = msg_zc.as_mut() {
            zc.finish(&mut w.io)?;
        }
        if ring.as_ref().is_some_and(|r| r.outstanding() != 0) {
            return Err(WorkerError::msg(
                "io_uring completions outstanding at the end",
            ));
        }
        Ok(())
    })?;
    ctx.spawner.spawn("client", &[], |w| {
        let conn = connect(addr)?;
        // The stream is the file repeated once per pass.
        receive_verify(w, conn.as_raw_fd(), pattern, len, chunk)
    })?;
    let outcomes = ctx.wait()?;

    let sent = role(&outcomes, "server")?.stats.payload_bytes;
    let client = role(&outcomes, "client")?.stats;
    Ok(Finished {
        outcomes,
        payload_bytes: client.payload_bytes,
        verified: client.verified && client.payload_bytes == sent,
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::ReadWrite => "read-write",
        Mode::MmapWrite => "mmap-write",
        Mode::Sendfile => "sendfile",
        Mode::IoUringSplice => "io-uring-splice",
        Mode::MsgZerocopy => "msg-zerocopy",
        Mode::IoUringSendZc => "io-uring-send-zc",
    }
}

fn connect(addr: SocketAddr) -> Result<std::os::fd::OwnedFd, WorkerError> {
    net::connect(addr).map_err(|e| WorkerError::msg(format!("connect to {addr}: {e}")))
}

fn serve_read_write(
    w: &mut Worker<'_>,
    file: RawFd,
    sock: RawFd,
    len: u64,
    chunk: usize,
) -> WorkerResult {
    rewind(file)?;
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    loop {
        // COPY: page cache -> user buffer ...
        let n = match w.io.read(file, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // COPY: ... user buffer -> socket buffer.
        w.io.write_all(sock, &buf[..n])?;
        sent += n as u64;
    }
    if sent != len {
        return Err(WorkerError::msg(format!(
            "file ended after {sent} of {len} bytes"
        )));
    }
    Ok(())
}

fn serve_mmap_write(w: &mut Worker<'_>, sock: RawFd, map: &Mapping, chunk: usize) -> WorkerResult {
    // COPY (one, not two): mapping -> socket buffer; there is no read into a buffer.
    Ok(map
        .data()
        .chunks(chunk)
        .try_for_each(|part| w.io.write_all(sock, part))?)
}

fn serve_sendfile(
    w: &mut Worker<'_>,
    file: RawFd,
    sock: RawFd,
    len: u64,
    chunk: usize,
) -> WorkerResult {
    let mut offset = 0i64;
    let mut sent = 0u64;
    while sent < len {
        let want = usize::try_from(len - sent).map_or(chunk, |left| left.min(chunk));
        // ZERO-COPY: page cache -> socket inside the kernel.
        match w.io.sendfile(sock, file, Some(&mut offset), want) {
            Ok(0) => {
                return Err(WorkerError::msg(format!(
                    "file ended after {sent} of {len} bytes"
                )));
            }
            Ok(n) => sent += n as u64,
            Err(e) if e.interrupted() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// File → pipe → socket with io_uring SPLICE requests, one in flight at a time: each chunk
/// is spliced into the pipe at its file offset, then out of the pipe until it is empty.
fn serve_io_uring_splice(
    w: &mut Worker<'_>,
    ring: &mut Ring,
    file: RawFd,
    (pipe_r, pipe_w): (RawFd, RawFd),
    sock: RawFd,
    len: u64,
    chunk: usize,
) -> WorkerResult {
    let mut sent = 0u64;
    while sent < len {
        let want = u32::try_from((len - sent).min(chunk as u64)).unwrap_or(u32::MAX);
        // ZERO-COPY: page cache -> pipe (page references; the pipe holds at most its
        // capacity, so a large chunk moves in several requests).
        let into_pipe = opcode::Splice::new(Fd(file), sent as i64, Fd(pipe_w), -1, want).build();
        // SAFETY: the request refers to descriptors only, open for the whole call.
        let n = match unsafe { ring.run(&mut w.io, into_pipe, opcode::Splice::CODE) } {
            Ok(0) => {
                return Err(WorkerError::msg(format!(
                    "file ended after {sent} of {len} bytes"
                )));
            }
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        let mut out = 0;
        while out < n {
            // ZERO-COPY: pipe -> socket.
            let left = (n - out) as u32;
            let to_sock = opcode::Splice::new(Fd(pipe_r), -1, Fd(sock), -1, left).build();
            // SAFETY: as above.
            match unsafe { ring.run(&mut w.io, to_sock, opcode::Splice::CODE) } {
                Ok(0) => {
                    return Err(WorkerError::msg(
                        "io_uring SPLICE to the socket moved nothing",
                    ));
                }
                Ok(m) => out += m,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e.into()),
            }
        }
        sent += n as u64;
    }
    Ok(())
}

/// Sends `data` with io_uring SEND_ZC and usage reports: one send in flight at a time (a
/// short send is resubmitted for the rest, keeping the stream in order), up to `WINDOW`
/// notifications outstanding, all of them reaped before returning.
fn serve_send_zc(
    w: &mut Worker<'_>,
    ring: &mut Ring,
    sock: RawFd,
    data: &[u8],
    chunk: usize,
) -> WorkerResult {
    // A request's tag is its number; its bytes wait in `pending` for its notification.
    let mut pending = Pending::default();
    let mut tag = 0u32;
    let mut pos = 0usize;
    loop {
        if pos < data.len() && pending.len() < WINDOW {
            let part = &data[pos..data.len().min(pos + chunk)];
            let entry = opcode::SendZc::new(Fd(sock), part.as_ptr(), part.len() as u32)
                .zc_flags(SEND_ZC_REPORT_USAGE)
                .build();
            // SAFETY: `data` is the served file's mapping, unchanged and mapped until after
            // every notification (the kernel's release of its pages) has been reaped here.
            unsafe { ring.push(&mut w.io, entry, opcode::SendZc::CODE, u64::from(tag))? };
            let done = loop {
                let reaped = ring.wait_some(&mut w.io)?;
                let mut done = None;
                for c in reaped {
                    if let Some(sent) = absorb_send_zc(w, &mut pending, c)? {
                        done = Some(sent);
                    }
                }
                if let Some(sent) = done {
                    break sent;
                }
            };
            match done {
                Ok(0) => return Err(WorkerError::msg("io_uring SEND_ZC sent nothing")),
                Ok(n) => pos += n,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e.into()),
            }
            tag = tag.wrapping_add(1);
        } else if !pending.is_empty() {
            for c in ring.wait_some(&mut w.io)? {
                if absorb_send_zc(w, &mut pending, c)?.is_some() {
                    return Err(WorkerError::msg("a SEND_ZC completion with none in flight"));
                }
            }
        } else {
            return Ok(());
        }
    }
}

/// Tallies one SEND_ZC CQE: a notification settles its send in `pending` (copied or not);
/// a send's completion is returned (and, when a notification will follow, remembered).
fn absorb_send_zc(
    w: &mut Worker<'_>,
    pending: &mut Pending,
    c: uring::Completion,
) -> Result<Option<Result<usize, crate::io::SysError>>, WorkerError> {
    let id = c.tag as u32;
    if c.is_notification() {
        let copied = (c.res as u32) & NOTIF_USAGE_ZC_COPIED != 0;
        let (sends, bytes) = pending.take(id, id).ok_or_else(|| {
            WorkerError::msg(format!("SEND_ZC notification for send {id}, not pending"))
        })?;
        w.io.tally()
            .zerocopy
            .record_notification(copied, sends, bytes);
        return Ok(None);
    }
    w.io.tally()
        .zerocopy
        .record_send(Via::IoUringSendZc, i64::from(c.res));
    // IORING_CQE_F_MORE: a notification follows (also after a failed send).
    if io_uring::cqueue::more(c.flags) {
        pending.push(id, u64::try_from(c.res).unwrap_or(0));
    }
    Ok(Some(c.bytes()))
}
