//! `pipe`: deliver one generated stream through a pipe to two consumers, like
//! `producer | tee copy > out`.
//!
//! "Same job" here means: every byte the producer generates reaches *both* consumers,
//! verified, and passes through one pipe on the way. Duplication is part of the job so
//! that `tee(2)` has something to replace. Roles: `producer` → pipe → `relay` → two
//! pipes → `consumer-a` and `consumer-b`.
//!
//! - `read-write`: the producer `write`s; the relay `read`s each chunk into a buffer and
//!   `write`s it twice, once per consumer (three user/kernel copies per byte in the
//!   relay, one in the producer).
//! - `tee`: the producer still `write`s, but the relay duplicates with `tee` (the second
//!   pipe gets references to the same pipe buffers) and moves the original on with
//!   `splice`: the relay never touches the data.
//! - `vmsplice`: as `tee`, and the producer `vmsplice`s its pages into the pipe instead
//!   of writing them, so no byte is copied until the consumers' `read`s.
//!
//! The consumers `read` in every mode (they must look at the bytes to verify them).

use std::os::fd::{AsRawFd, RawFd};

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::pattern::Pattern;
use crate::plan::Budget;
use crate::scenarios::stream::{NO_PERIOD, receive_verify, send_pattern};
use crate::scenarios::{Ctx, Finished, bad_mode, role};
use crate::worker::{Worker, WorkerError, WorkerResult};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "pipe",
    description: "Deliver a generated stream through a pipe to two consumers (like `| tee`).",
    roles: &["producer", "relay", "consumer-a", "consumer-b"],
    modes: &[
        ModeInfo {
            name: "read-write",
            description: "producer write()s; relay read()s and write()s each chunk twice",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "tee",
            description: "producer write()s; relay duplicates with tee() and forwards with splice()",
            copy_free_roles: &["relay"],
        },
        ModeInfo {
            name: "vmsplice",
            description: "producer vmsplice()s its pages into the pipe; relay tee() + splice()",
            copy_free_roles: &["producer", "relay"],
        },
    ],
    baseline: "read-write",
    seed_claim: "Pass references, not copies: several consumers can share one buffer \
                 instead of each getting a copy (C# guide, 'Zero-Copy with References').",
    disk_files: 0,
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    ReadWrite,
    Tee,
    Vmsplice,
}

/// Pipe capacity: at least one chunk, so one vmsplice/tee can move a whole chunk.
fn set_pipe_size(fd: RawFd, chunk: usize) {
    let size = chunk.clamp(64 << 10, 1 << 20);
    // SAFETY: fcntl on a pipe descriptor; failure just keeps the default capacity.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size as libc::c_int) };
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "read-write" => Mode::ReadWrite,
        "tee" => Mode::Tee,
        "vmsplice" => Mode::Vmsplice,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let chunk = ctx.plan.chunk;
    let pattern = ctx.pattern;
    let mut pipe = || -> Result<(RawFd, RawFd)> {
        let (r, w) = std::io::pipe().map_err(|e| DemoError::setup("create a pipe", e))?;
        set_pipe_size(w.as_raw_fd(), chunk);
        Ok((ctx.spawner.register(r), ctx.spawner.register(w)))
    };
    let (main_r, main_w) = pipe()?;
    let (a_r, a_w) = pipe()?;
    let (b_r, b_w) = pipe()?;

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("consumer-a", &[a_r], |w| {
        receive_verify(w, a_r, pattern, NO_PERIOD, chunk)
    })?;
    ctx.spawner.spawn("consumer-b", &[b_r], |w| {
        receive_verify(w, b_r, pattern, NO_PERIOD, chunk)
    })?;
    ctx.spawner
        .spawn("relay", &[main_r, a_w, b_w], |w| match mode {
            Mode::ReadWrite => relay_read_write(w, main_r, a_w, b_w, chunk),
            Mode::Tee | Mode::Vmsplice => relay_tee(w, main_r, a_w, b_w, chunk),
        })?;
    ctx.spawner.spawn("producer", &[main_w], |w| match mode {
        Mode::Vmsplice => produce_vmsplice(w, main_w, pattern, budget, chunk),
        Mode::ReadWrite | Mode::Tee => send_pattern(w, main_w, pattern, budget, chunk),
    })?;
    let outcomes = ctx.wait()?;

    let sent = role(&outcomes, "producer")?.stats.payload_bytes;
    let a = role(&outcomes, "consumer-a")?.stats;
    let b = role(&outcomes, "consumer-b")?.stats;
    let verified = a.verified && b.verified && a.payload_bytes == sent && b.payload_bytes == sent;
    Ok(Finished {
        outcomes,
        payload_bytes: a.payload_bytes.min(b.payload_bytes),
        verified,
    })
}

/// The copying relay: one copy in, two copies out per byte.
fn relay_read_write(
    w: &mut Worker<'_>,
    input: RawFd,
    a: RawFd,
    b: RawFd,
    chunk: usize,
) -> WorkerResult {
    let mut buf = vec![0u8; chunk];
    loop {
        // COPY: pipe buffer -> user buffer.
        let n = match w.io.read(input, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // COPY twice: user buffer -> each consumer's pipe.
        w.io.write_all(a, &buf[..n])?;
        w.io.write_all(b, &buf[..n])?;
        w.stats.payload_bytes += n as u64;
    }
}

/// The zero-copy relay: `tee` gives consumer A references to the bytes in the input
/// pipe without consuming them; `splice` then moves those same bytes to consumer B.
fn relay_tee(w: &mut Worker<'_>, input: RawFd, a: RawFd, b: RawFd, chunk: usize) -> WorkerResult {
    loop {
        // ZERO-COPY: duplicate up to a chunk of pipe buffers into A's pipe.
        let n = match w.io.tee(input, a, chunk, 0) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // ZERO-COPY: move exactly those n bytes (already in the pipe) to B's pipe.
        w.io.splice_exact(input, b, n, 0)?;
        w.stats.payload_bytes += n as u64;
    }
}

/// Hands the pattern's pages to the pipe by reference. Safe to reuse the block at once
/// only because it is never modified: a vmsplice'd page is read by the consumer later,
/// so changing the buffer before then would change what the consumer sees.
fn produce_vmsplice(
    w: &mut Worker<'_>,
    pipe: RawFd,
    pattern: &Pattern,
    budget: Budget,
    chunk: usize,
) -> WorkerResult {
    let mut sent = 0u64;
    loop {
        let want = budget.next_len(sent, chunk);
        if want == 0 {
            return Ok(());
        }
        let mut part = pattern.slice_at(sent, want);
        while !part.is_empty() {
            // ZERO-COPY: the pipe gets references to these user pages.
            match w.io.vmsplice(pipe, part, 0) {
                Ok(0) => return Err(WorkerError::msg("vmsplice accepted no bytes")),
                Ok(n) => {
                    part = &part[n..];
                    sent += n as u64;
                    w.stats.payload_bytes = sent;
                }
                Err(e) if e.interrupted() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
