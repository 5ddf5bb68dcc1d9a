//! `proxy`: forward a TCP stream from one socket to another, like a reverse proxy.
//!
//! Roles: `source` → TCP → `proxy` → TCP → `sink`. The source `write`s a generated
//! stream and the sink `read`s and verifies it in every mode; only the proxy changes.
//!
//! - `fresh-buffer`: `read` into a newly allocated (zeroed) buffer per chunk, `write` it.
//! - `reused-buffer`: the same with one buffer for the whole stream (Go's
//!   `io.CopyBuffer`). At the syscall level this is identical to `fresh-buffer`: two
//!   kernel copies per byte either way. Reusing the buffer saves allocation and page
//!   faults, not copies; the profiler should show the same copy bytes for both.
//! - `splice`: socket → pipe → socket with `splice`; the proxy never maps the bytes.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::Result;
use crate::net;
use crate::scenarios::stream::{NO_PERIOD, receive_verify, send_pattern};
use crate::scenarios::{Ctx, Finished, bad_mode, role};
use crate::worker::{Worker, WorkerError, WorkerResult};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "proxy",
    description: "Forward a TCP stream between two sockets; the sink verifies it.",
    roles: &["source", "proxy", "sink"],
    modes: &[
        ModeInfo {
            name: "fresh-buffer",
            description: "proxy allocates a new buffer per chunk, read()s into it, write()s it",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "reused-buffer",
            description: "proxy read()s and write()s through one reused buffer (Go io.CopyBuffer)",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "splice",
            description: "proxy splice()s socket -> pipe -> socket, no user buffer",
            copy_free_roles: &["proxy"],
        },
    ],
    baseline: "fresh-buffer",
    seed_claim: "io.CopyBuffer reuses a provided buffer, avoiding repeated allocations \
                 (Go guide) -- but each byte is still copied in and out; splice() removes \
                 the copies (C# guide, Scenario 2: processing network data).",
    disk_files: 0,
};

#[derive(Clone, Copy)]
enum Mode {
    FreshBuffer,
    ReusedBuffer,
    Splice,
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "fresh-buffer" => Mode::FreshBuffer,
        "reused-buffer" => Mode::ReusedBuffer,
        "splice" => Mode::Splice,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let chunk = ctx.plan.chunk;
    let pattern = ctx.pattern;
    let (front, front_addr) = net::listen(ctx.plan.bind)?;
    let (back, back_addr) = net::listen(ctx.plan.bind)?;
    let front = ctx.spawner.register(front);
    let back = ctx.spawner.register(back);

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("sink", &[back], |w| {
        let conn = net::accept(back)?;
        receive_verify(w, conn.as_raw_fd(), pattern, NO_PERIOD, chunk)
    })?;
    ctx.spawner.spawn("proxy", &[front], |w| {
        let inbound = net::accept(front)?;
        let outbound = connect(back_addr)?;
        let (i, o) = (inbound.as_raw_fd(), outbound.as_raw_fd());
        match mode {
            Mode::FreshBuffer => forward_fresh(w, i, o, chunk),
            Mode::ReusedBuffer => forward_reused(w, i, o, chunk),
            Mode::Splice => forward_splice(w, i, o, chunk),
        }
    })?;
    ctx.spawner.spawn("source", &[], |w| {
        let conn = connect(front_addr)?;
        send_pattern(w, conn.as_raw_fd(), pattern, budget, chunk)
    })?;
    let outcomes = ctx.wait()?;

    let sent = role(&outcomes, "source")?.stats.payload_bytes;
    let sink = role(&outcomes, "sink")?.stats;
    Ok(Finished {
        outcomes,
        payload_bytes: sink.payload_bytes,
        verified: sink.verified && sink.payload_bytes == sent,
    })
}

fn connect(addr: SocketAddr) -> Result<OwnedFd, WorkerError> {
    net::connect(addr).map_err(|e| WorkerError::msg(format!("connect to {addr}: {e}")))
}

/// Reads one chunk, retrying EINTR; 0 means EOF.
fn read_chunk(w: &mut Worker<'_>, fd: RawFd, buf: &mut [u8]) -> Result<usize, WorkerError> {
    loop {
        match w.io.read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.interrupted() => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn forward_fresh(w: &mut Worker<'_>, input: RawFd, output: RawFd, chunk: usize) -> WorkerResult {
    loop {
        // The wasteful part: a new zero-filled buffer for every chunk.
        let mut buf = vec![0u8; chunk];
        // COPY: socket -> user buffer, then user buffer -> socket.
        let n = read_chunk(w, input, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.io.write_all(output, &buf[..n])?;
        w.stats.payload_bytes += n as u64;
    }
}

fn forward_reused(w: &mut Worker<'_>, input: RawFd, output: RawFd, chunk: usize) -> WorkerResult {
    let mut buf = vec![0u8; chunk];
    loop {
        // COPY: socket -> user buffer, then user buffer -> socket (same two copies).
        let n = read_chunk(w, input, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.io.write_all(output, &buf[..n])?;
        w.stats.payload_bytes += n as u64;
    }
}

fn forward_splice(w: &mut Worker<'_>, input: RawFd, output: RawFd, chunk: usize) -> WorkerResult {
    // splice needs a pipe on one side; pipe2 is not a counted syscall.
    let (pipe_r, pipe_w) = std::io::pipe()?;
    let size = chunk.clamp(64 << 10, 1 << 20);
    // SAFETY: fcntl on our pipe; failure keeps the default 64 KiB capacity.
    unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    loop {
        // ZERO-COPY: socket receive queue -> pipe (page references move, no user copy).
        let n = match w
            .io
            .splice(input, pipe_w.as_raw_fd(), chunk, libc::SPLICE_F_MOVE)
        {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // ZERO-COPY: pipe -> outbound socket.
        w.io.splice_exact(pipe_r.as_raw_fd(), output, n, libc::SPLICE_F_MOVE)?;
        w.stats.payload_bytes += n as u64;
    }
}
