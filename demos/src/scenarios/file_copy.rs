//! `file-copy`: copy a file to a new file.
//!
//! - `read-write`: read a chunk into a user buffer, write it out. Each byte crosses the
//!   user/kernel boundary twice.
//! - `copy-file-range`: the kernel copies between the two files' page caches (or
//!   shares extents, on filesystems that can); no user buffer.
//! - `sendfile`: the same with sendfile(2) file→file (the kernel splices through an
//!   internal pipe); no user buffer.
//! - `io-uring`: `read-write` through io_uring (`IORING_OP_READ` into a user buffer, then
//!   `IORING_OP_WRITE` from it): no read/write syscall at all, yet both copies remain. The
//!   syscall layer sees only `io_uring_enter`, which it does not count: the demo's
//!   `io_uring` tally is the ground truth for these bytes.
//! - `io-uring-sqpoll`: the same copies, but the worker never submits a request itself: a
//!   SQPOLL thread (`iou-sqp-PID`) takes them off the ring, and every WRITE is punted to an
//!   io-wq worker (`IOSQE_ASYNC`, `iou-wrk-PID`), so requests are submitted, run and
//!   completed on the kernel's threads. They are the worker's threads (same thread group),
//!   and a profiler must count them for the worker.
//!
//! One `worker` process does the copy; the parent verifies the output afterwards.

use std::fs::OpenOptions;

use io_uring::{opcode, squeue, types::Fd};

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::scenarios::{Ctx, Finished, bad_mode, rewind, role, verify_file};
use crate::uring::{self, Ring};
use crate::worker::{Worker, WorkerError, WorkerResult};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "file-copy",
    description: "Copy a file to another file on the same filesystem.",
    roles: &["worker"],
    modes: &[
        ModeInfo {
            name: "read-write",
            description: "read() into a user buffer, write() it out (copy in, copy out)",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "copy-file-range",
            description: "copy_file_range(): the kernel copies file to file, no user buffer",
            copy_free_roles: &["worker"],
        },
        ModeInfo {
            name: "sendfile",
            description: "sendfile() file to file: the kernel moves pages, no user buffer",
            copy_free_roles: &["worker"],
        },
        ModeInfo {
            name: "io-uring",
            description: "io_uring READ into a user buffer, WRITE it out (no read/write syscall, same copies)",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "io-uring-sqpoll",
            description: "io-uring with a SQPOLL thread submitting and io-wq workers writing (IOSQE_ASYNC): the kernel's threads do the same copies",
            copy_free_roles: &[],
        },
    ],
    baseline: "read-write",
    seed_claim: "OS-level zero-copy removes the kernel->user and user->kernel copies: \
                 the data stays in the kernel (C# guide, 'OS-Level Zero-Copy').",
    disk_files: 2,
};

#[derive(Clone, Copy)]
enum Mode {
    ReadWrite,
    CopyFileRange,
    Sendfile,
    IoUring,
    /// `IoUring` submitted by a SQPOLL thread, its WRITEs run by io-wq.
    IoUringSqpoll,
}

pub fn run(ctx: &mut Ctx<'_>, name: &str) -> Result<Finished> {
    let mode = match name {
        "read-write" => Mode::ReadWrite,
        "copy-file-range" => Mode::CopyFileRange,
        "sendfile" => Mode::Sendfile,
        "io-uring" => Mode::IoUring,
        "io-uring-sqpoll" => Mode::IoUringSqpoll,
        other => return Err(bad_mode(INFO.name, other)),
    };
    if let Mode::IoUring | Mode::IoUringSqpoll = mode {
        uring::probe(&[opcode::Read::CODE, opcode::Write::CODE])
            .map_err(|why| DemoError::unsupported(INFO.name, name, why))?;
        if let Mode::IoUringSqpoll = mode {
            uring::probe_sqpoll().map_err(|why| DemoError::unsupported(INFO.name, name, why))?;
        }
    }
    let len = ctx.plan.pass_bytes();
    let chunk = ctx.plan.chunk;
    let (src, _) = ctx.make_input_file("input.bin", len)?;
    let out_path = ctx.tmp_file("output.bin")?;
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out_path)
        .map_err(|e| DemoError::setup(format!("create {}", out_path.display()), e))?;
    let src = ctx.spawner.register(src);
    let dst = ctx.spawner.register(dst);

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("worker", &[src, dst], |w| {
        // The ring is the worker's own (a ring set up before fork would be shared).
        let mut ring = match mode {
            Mode::IoUring => Some(Ring::new(&mut w.io, 4)?),
            Mode::IoUringSqpoll => Some(Ring::new_sqpoll(&mut w.io, 4)?),
            _ => None,
        };
        let mut passes = 0;
        while budget.another_pass(passes) {
            match (mode, ring.as_mut()) {
                (Mode::ReadWrite, _) => pass_read_write(w, src, dst, len, chunk)?,
                (Mode::CopyFileRange, _) => pass_copy_file_range(w, src, dst, len, chunk)?,
                (Mode::Sendfile, _) => pass_sendfile(w, src, dst, len, chunk)?,
                (Mode::IoUring, Some(ring)) => {
                    pass_io_uring(w, ring, src, dst, len, chunk, squeue::Flags::empty())?
                }
                (Mode::IoUringSqpoll, Some(ring)) => {
                    pass_io_uring(w, ring, src, dst, len, chunk, squeue::Flags::ASYNC)?
                }
                (Mode::IoUring | Mode::IoUringSqpoll, None) => {
                    return Err(WorkerError::msg("no ring"));
                }
            }
            passes += 1;
            w.stats.payload_bytes += len;
        }
        Ok(())
    })?;
    let outcomes = ctx.wait()?;
    let payload_bytes = role(&outcomes, "worker")?.stats.payload_bytes;
    let verified = verify_file(&out_path, ctx.pattern, len)?;
    Ok(Finished {
        outcomes,
        payload_bytes,
        verified,
    })
}

fn short_copy(copied: u64, len: u64) -> WorkerError {
    WorkerError::msg(format!("input ended after {copied} of {len} bytes"))
}

/// The copying baseline: each chunk is copied into `buf` and back out of it.
fn pass_read_write(w: &mut Worker<'_>, src: i32, dst: i32, len: u64, chunk: usize) -> WorkerResult {
    rewind(src)?;
    rewind(dst)?;
    let mut buf = vec![0u8; chunk];
    let mut copied = 0u64;
    loop {
        // COPY: kernel page cache -> user buffer ...
        let n = match w.io.read(src, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // COPY: ... and user buffer -> the output file's page cache.
        w.io.write_all(dst, &buf[..n])?;
        copied += n as u64;
    }
    if copied != len {
        return Err(short_copy(copied, len));
    }
    Ok(())
}

fn pass_copy_file_range(
    w: &mut Worker<'_>,
    src: i32,
    dst: i32,
    len: u64,
    chunk: usize,
) -> WorkerResult {
    let (mut off_in, mut off_out) = (0i64, 0i64);
    let mut copied = 0u64;
    while copied < len {
        let want = usize::try_from(len - copied).map_or(chunk, |left| left.min(chunk));
        // ZERO-COPY: file to file inside the kernel; explicit offsets, so no lseek.
        match w
            .io
            .copy_file_range(src, &mut off_in, dst, &mut off_out, want)
        {
            Ok(0) => return Err(short_copy(copied, len)),
            Ok(n) => copied += n as u64,
            Err(e) if e.interrupted() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn pass_sendfile(w: &mut Worker<'_>, src: i32, dst: i32, len: u64, chunk: usize) -> WorkerResult {
    rewind(dst)?;
    let mut offset = 0i64;
    let mut copied = 0u64;
    while copied < len {
        let want = usize::try_from(len - copied).map_or(chunk, |left| left.min(chunk));
        // ZERO-COPY: sendfile reads the input at `offset` and writes the output at its
        // file position, page by page inside the kernel.
        match w.io.sendfile(dst, src, Some(&mut offset), want) {
            Ok(0) => return Err(short_copy(copied, len)),
            Ok(n) => copied += n as u64,
            Err(e) if e.interrupted() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The copying baseline through io_uring: each chunk is read into `buf` by an
/// `IORING_OP_READ` and written out of it by `IORING_OP_WRITE`, one request in flight at a
/// time (a short write is resubmitted for the rest, as one more request). `write_flags`
/// go on every WRITE (`IOSQE_ASYNC`: run it on an io-wq worker).
fn pass_io_uring(
    w: &mut Worker<'_>,
    ring: &mut Ring,
    src: i32,
    dst: i32,
    len: u64,
    chunk: usize,
    write_flags: squeue::Flags,
) -> WorkerResult {
    let mut buf = vec![0u8; chunk];
    let want = u32::try_from(chunk).unwrap_or(u32::MAX);
    let mut offset = 0u64;
    loop {
        // COPY: page cache -> user buffer, by the kernel on the worker's behalf.
        let read = opcode::Read::new(Fd(src), buf.as_mut_ptr(), want)
            .offset(offset)
            .build();
        // SAFETY: `buf` outlives the request, which completes before `run` returns.
        let n = match unsafe { ring.run(&mut w.io, read, opcode::Read::CODE) } {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        let mut done = 0;
        while done < n {
            // COPY: user buffer -> the output file's page cache.
            let part = &buf[done..n];
            let write = opcode::Write::new(Fd(dst), part.as_ptr(), part.len() as u32)
                .offset(offset + done as u64)
                .build()
                .flags(write_flags);
            // SAFETY: as above; `buf` is not changed while the write is in flight.
            match unsafe { ring.run(&mut w.io, write, opcode::Write::CODE) } {
                Ok(0) => return Err(WorkerError::msg("io_uring WRITE wrote nothing")),
                Ok(m) => done += m,
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e.into()),
            }
        }
        offset += n as u64;
    }
    if offset != len {
        return Err(short_copy(offset, len));
    }
    if ring.outstanding() != 0 {
        return Err(WorkerError::msg(
            "io_uring completions outstanding at the end",
        ));
    }
    Ok(())
}
