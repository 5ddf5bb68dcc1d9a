//! The scenarios, one module each, and what they share: the run context handed to
//! them and the stream sender/receiver jobs several of them use.
//!
//! A scenario module exports `INFO` (its catalogue entry) and
//! `run(ctx, mode) -> Result<Finished>`: it does its setup in the parent (files,
//! listening sockets, pipes), forks one worker per role through `ctx.spawner`, waits,
//! and says how many payload bytes were delivered and whether they were verified.

pub mod file_copy;
pub mod file_read;
pub mod file_serve;
pub mod in_process;
pub mod pipe;
pub mod proxy;
pub mod stream;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{DemoError, Result};
use crate::pattern::Pattern;
use crate::plan::{Amount, Plan};
use crate::worker::{RoleOutcome, Spawner};

/// What a scenario gets from the runner.
pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub pattern: &'a Pattern,
    pub spawner: Spawner,
    /// The run's private temporary directory (only for scenarios that write files).
    pub tmp: Option<&'a Path>,
}

/// What a scenario reports back to the runner.
pub struct Finished {
    pub outcomes: Vec<RoleOutcome>,
    pub payload_bytes: u64,
    pub verified: bool,
}

impl Ctx<'_> {
    /// Waits for the workers of a single-worker scenario, whose `worker` role both counts
    /// the payload and verifies it.
    pub fn finish_by_worker(&mut self) -> Result<Finished> {
        let outcomes = self.wait()?;
        let worker = role(&outcomes, "worker")?;
        let (payload_bytes, verified) = (worker.stats.payload_bytes, worker.stats.verified);
        Ok(Finished {
            outcomes,
            payload_bytes,
            verified,
        })
    }

    /// A path inside the temporary directory.
    pub fn tmp_file(&self, name: &str) -> Result<PathBuf> {
        self.tmp
            .map(|d| d.join(name))
            .ok_or_else(|| DemoError::Run("scenario needs a temporary directory".into()))
    }

    /// Writes the first `len` bytes of the pattern to a new file (setup, untallied, in
    /// the parent) and returns it opened for reading plus its checksum.
    pub fn make_input_file(&self, name: &str, len: u64) -> Result<(File, u64)> {
        let path = self.tmp_file(name)?;
        let what = || format!("create input file {}", path.display());
        let file = File::create(&path).map_err(|e| DemoError::setup(what(), e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let sum = self
            .pattern
            .write_to(&mut out, len)
            .map_err(|e| DemoError::setup(what(), e))?;
        let file = out
            .into_inner()
            .map_err(|e| DemoError::setup(what(), e.into_error()))?;
        file.sync_all().map_err(|e| DemoError::setup(what(), e))?;
        drop(file);
        let file = File::open(&path).map_err(|e| DemoError::setup(what(), e))?;
        Ok((file, sum))
    }

    /// How long to wait for workers before killing them: a hang is a bug, but a
    /// generous limit keeps large `--bytes` runs possible.
    pub fn timeout(&self) -> Duration {
        let extra = match self.plan.amount {
            Amount::Seconds(s) => Duration::from_secs_f64(s),
            Amount::Bytes(_) => Duration::ZERO,
        };
        Duration::from_secs(600) + extra
    }

    /// Waits for the workers started so far.
    pub fn wait(&mut self) -> Result<Vec<RoleOutcome>> {
        let timeout = self.timeout();
        self.spawner.wait(timeout)
    }
}

/// The outcome of the role called `role`.
pub fn role<'o>(outcomes: &'o [RoleOutcome], role: &str) -> Result<&'o RoleOutcome> {
    outcomes
        .iter()
        .find(|o| o.role == role)
        .ok_or_else(|| DemoError::Run(format!("no outcome for role {role}")))
}

/// Runs the scenario called `name` in mode `mode` (both already validated).
pub fn dispatch(name: &str, ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    match name {
        "file-serve" => file_serve::run(ctx, mode),
        "proxy" => proxy::run(ctx, mode),
        "pipe" => pipe::run(ctx, mode),
        "file-copy" => file_copy::run(ctx, mode),
        "file-read" => file_read::run(ctx, mode),
        "in-process" => in_process::run(ctx, mode),
        other => Err(DemoError::Run(format!(
            "scenario {other} is not implemented"
        ))),
    }
}

/// The error for a mode name a module does not know (the runner validates first, so
/// this only fires if the catalogue and a module disagree).
pub fn bad_mode(scenario: &str, mode: &str) -> DemoError {
    DemoError::Run(format!(
        "scenario {scenario} does not implement mode {mode}"
    ))
}

/// Moves a descriptor's file position back to the start (lseek is not a counted
/// syscall, so repeated passes stay comparable across modes).
pub fn rewind(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: plain call on a descriptor number; an invalid one yields EBADF.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Checks, in the parent after the workers are done, that the file at `path` holds
/// exactly the first `len` bytes of the pattern. The parent's own reads are not part
/// of the ground truth.
pub fn verify_file(path: &Path, pattern: &Pattern, len: u64) -> Result<bool> {
    use std::io::Read;
    let what = || format!("verify {}", path.display());
    let mut file = File::open(path).map_err(|e| DemoError::setup(what(), e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DemoError::setup(what(), e))?;
        if n == 0 {
            return Ok(pos == len);
        }
        if !pattern.matches(pos, &buf[..n]) {
            return Ok(false);
        }
        pos += n as u64;
    }
}
