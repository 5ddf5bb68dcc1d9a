//! `file-copy`: copy a file to a new file.
//!
//! - `read-write`: read a chunk into a user buffer, write it out. Each byte crosses the
//!   user/kernel boundary twice.
//! - `copy-file-range`: the kernel copies between the two files' page caches (or
//!   shares extents, on filesystems that can); no user buffer.
//! - `sendfile`: the same with sendfile(2) file→file (the kernel splices through an
//!   internal pipe); no user buffer.
//!
//! One `worker` process does the copy; the parent verifies the output afterwards.

use std::fs::OpenOptions;

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::scenarios::{Ctx, Finished, bad_mode, rewind, role, verify_file};
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
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "read-write" => Mode::ReadWrite,
        "copy-file-range" => Mode::CopyFileRange,
        "sendfile" => Mode::Sendfile,
        other => return Err(bad_mode(INFO.name, other)),
    };
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
        let mut passes = 0;
        while budget.another_pass(passes) {
            match mode {
                Mode::ReadWrite => pass_read_write(w, src, dst, len, chunk)?,
                Mode::CopyFileRange => pass_copy_file_range(w, src, dst, len, chunk)?,
                Mode::Sendfile => pass_sendfile(w, src, dst, len, chunk)?,
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
