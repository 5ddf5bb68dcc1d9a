//! `file-serve`: a server sends a file to a client over TCP loopback.
//!
//! - `read-write`: the server `read`s the file into a user buffer and `write`s it to the
//!   socket: page cache → user buffer → socket buffer, two copies per byte.
//! - `mmap-write`: the server maps the file and `write`s straight from the mapping:
//!   one copy per byte (mapping → socket buffer), no read. (The C# guide's version of
//!   this copies the mapping into a 64 KiB buffer first; that extra copy is avoided.)
//! - `sendfile`: the server hands the kernel the file and the socket; no user buffer.
//!
//! The client is the same in every mode: it `read`s the stream and verifies each byte.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::Result;
use crate::net;
use crate::scenarios::stream::receive_verify;
use crate::scenarios::{Ctx, Finished, bad_mode, rewind, role};
use crate::worker::{Worker, WorkerError, WorkerResult};

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
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "read-write" => Mode::ReadWrite,
        "mmap-write" => Mode::MmapWrite,
        "sendfile" => Mode::Sendfile,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let len = ctx.plan.pass_bytes();
    let chunk = ctx.plan.chunk;
    let pattern = ctx.pattern;
    let (file, _) = ctx.make_input_file("served.bin", len)?;
    let (listener, addr) = net::listen(ctx.plan.bind)?;
    let file = ctx.spawner.register(file);
    let listener = ctx.spawner.register(listener);

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("server", &[file, listener], |w| {
        let conn = net::accept(listener)?;
        let sock = conn.as_raw_fd();
        let mut passes = 0;
        while budget.another_pass(passes) {
            match mode {
                Mode::ReadWrite => serve_read_write(w, file, sock, len, chunk)?,
                Mode::MmapWrite => serve_mmap_write(w, file, sock, len, chunk)?,
                Mode::Sendfile => serve_sendfile(w, file, sock, len, chunk)?,
            }
            passes += 1;
            w.stats.payload_bytes += len;
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

fn serve_mmap_write(
    w: &mut Worker<'_>,
    file: RawFd,
    sock: RawFd,
    len: u64,
    chunk: usize,
) -> WorkerResult {
    let map_len = usize::try_from(len).map_err(|_| WorkerError::msg("file too large to map"))?;
    // SAFETY: a fresh read-only private mapping of an open file; checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(WorkerError::msg(format!(
            "mmap: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `map_len` readable bytes; the file is not modified while mapped.
    let data = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), map_len) };
    let result = data
        .chunks(chunk)
        // COPY (one, not two): mapping -> socket buffer; there is no read into a buffer.
        .try_for_each(|part| w.io.write_all(sock, part));
    // SAFETY: unmapping exactly what was mapped; `data` is not used afterwards.
    unsafe { libc::munmap(p, map_len) };
    Ok(result?)
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
