//! `file-read`: read a file and checksum it.
//!
//! - `read`: `pread64` (Go's `ReadAt`) into one reused user buffer, then checksum the
//!   buffer. The kernel copies every byte from the page cache into the buffer.
//! - `mmap`: map the file and checksum the mapping in place; the page cache pages are
//!   read directly, no read-family syscall at all.
//!
//! The Go guide's benchmark does this on a 4 MiB file (`--bytes 4M`). Note that its
//! "mmap" code then calls `ReadAt` on the mapping, which memcpys the whole file into a
//! new slice; this demo reads the mapping in place, which is the zero-copy version.

use std::os::fd::RawFd;

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::Result;
use crate::mapping::{FileId, Mapping, Reader};
use crate::pattern::Checksum;
use crate::scenarios::{Ctx, Finished, bad_mode};
use crate::worker::{Worker, WorkerError};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "file-read",
    description: "Read a file and compute its checksum.",
    roles: &["worker"],
    modes: &[
        ModeInfo {
            name: "read",
            description: "pread64() (Go ReadAt) into a reused buffer, checksum the buffer",
            copy_free_roles: &[],
        },
        ModeInfo {
            name: "mmap",
            description: "mmap() the file and checksum the mapping in place",
            copy_free_roles: &["worker"],
        },
    ],
    baseline: "read",
    seed_claim: "Memory-mapping a file gives direct access to its contents without \
                 read copies; ~2x faster than ReadAt on a 4 MiB file (Go guide).",
    disk_files: 1,
};

#[derive(Clone, Copy)]
enum Mode {
    Read,
    Mmap,
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "read" => Mode::Read,
        "mmap" => Mode::Mmap,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let len = ctx.plan.pass_bytes();
    let chunk = ctx.plan.chunk;
    let (file, expected) = ctx.make_input_file("input.bin", len)?;
    let id = FileId::of(&file)?;
    let fd = ctx.spawner.register(file);

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("worker", &[fd], |w| {
        // One mapping for every pass (see `mapping`).
        let map = match mode {
            Mode::Mmap => Some(Mapping::tallied(w.stats, fd, id, len, Reader::Worker)?),
            Mode::Read => None,
        };
        let mut passes = 0;
        while budget.another_pass(passes) {
            let sum = match map.as_ref() {
                None => checksum_by_pread(w, fd, chunk)?,
                Some(map) => checksum_mapped(map),
            };
            if sum != expected {
                return Err(WorkerError::msg(format!(
                    "checksum {sum:#x} differs from the expected {expected:#x}"
                )));
            }
            passes += 1;
            w.stats.payload_bytes += len;
        }
        w.stats.verified = true;
        Ok(())
    })?;
    ctx.finish_by_worker()
}

fn checksum_by_pread(w: &mut Worker<'_>, fd: RawFd, chunk: usize) -> Result<u64, WorkerError> {
    let mut buf = vec![0u8; chunk];
    let mut sum = Checksum::new();
    let mut pos = 0i64;
    loop {
        // COPY: the kernel copies page-cache data into `buf`.
        let n = match w.io.pread(fd, &mut buf, pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        sum.update(&buf[..n]);
        pos += n as i64;
    }
    Ok(sum.finish())
}

fn checksum_mapped(map: &Mapping) -> u64 {
    // ZERO-COPY: the checksum reads the page cache pages through the mapping.
    let mut sum = Checksum::new();
    sum.update(map.data());
    sum.finish()
}
