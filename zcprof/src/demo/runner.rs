//! Running one demo variant under a profiling session: find the `zcprof-demo` binary,
//! spawn it, keep the model current while it runs, flush, and match its workers.
//!
//! Variants run one after another, never side by side: their pids are told apart by
//! the fork tree either way, but concurrent runs would share two CPUs and make the
//! throughput comparison meaningless.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context as _, anyhow, bail};
use zcprof_demos::Report;

use super::measure::{Measured, measure};
use crate::session::Session;

/// The binary's file name; it is built from the `zcprof-demos` crate.
pub const BINARY: &str = "zcprof-demo";
/// Overrides where the binary is looked for.
pub const ENV: &str = "ZCPROF_DEMO";

/// `zcprof-demo`'s path: `$ZCPROF_DEMO`, else beside the running zcprof executable
/// (`cargo build` puts both in the same `target/<profile>/`). Errs with how to build it.
pub fn locate() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV) {
        let path = PathBuf::from(path);
        return check(&path, &format!("${ENV} names {}", path.display()));
    }
    let exe = std::env::current_exe().context("finding zcprof's own executable")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("zcprof's executable {} has no directory", exe.display()))?;
    beside(dir)
}

/// `zcprof-demo` in `dir`, or an error that says how to build it.
pub fn beside(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(BINARY);
    check(
        &path,
        &format!(
            "the demo workloads binary {} is missing: build it with `cargo build --release -p zcprof-demos` \
             (or `cargo build -p zcprof-demos` beside a debug zcprof), or set {ENV} to its path",
            path.display()
        ),
    )
}

fn check(path: &Path, missing: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    match path.metadata() {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path.to_path_buf()),
        _ => bail!("{missing}"),
    }
}

/// `zcprof-demo` itself failed; `usage` when it refused its input (exit 2: e.g. a size
/// larger than the free disk space), which zcprof reports as bad input too.
#[derive(Debug, thiserror::Error)]
#[error("{command} failed ({status}): {message}")]
pub struct DemoFailed {
    pub command: String,
    pub status: String,
    pub message: String,
    pub usage: bool,
}

/// What to ask of one demo run.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    /// `--bytes`; the demo's default (16 MiB) when `None`.
    pub bytes: Option<u64>,
}

/// Runs `scenario --mode mode` once, inside `session`, and returns its report with what
/// the profiler attributed to each of its workers. A demo that fails (exit 1 or 2) is an
/// error carrying its one-line message; one that finished without verifying its payload
/// (exit 3) is returned, with `verified: false` in its report.
pub async fn run_variant(
    session: &mut Session,
    exe: &Path,
    scenario: &str,
    mode: &str,
    args: &DemoArgs,
) -> anyhow::Result<Measured> {
    let mut command = tokio::process::Command::new(exe);
    command
        .args(["run", scenario, "--mode", mode, "--compact"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(bytes) = args.bytes {
        command.args(["--bytes", &bytes.to_string()]);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("{BINARY} exited before zcprof saw its pid"))?;
    let output = child.wait_with_output();
    tokio::pin!(output);
    // Keep applying batches while the demo runs, so the ring buffer never fills.
    let output = loop {
        tokio::select! {
            out = &mut output => break out.with_context(|| format!("waiting for {BINARY}"))?,
            batch = session.next() => {
                if batch.is_none() {
                    bail!("the collector stopped unexpectedly");
                }
            }
        }
    };
    session.flush().await?;

    let code = output.status.code();
    if !matches!(code, Some(0) | Some(3)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().last().unwrap_or("").trim();
        let line = line.strip_prefix("zcprof-demo: ").unwrap_or(line);
        return Err(DemoFailed {
            command: format!("{BINARY} {scenario} --mode {mode}"),
            status: code.map_or_else(|| "killed by a signal".into(), |c| format!("exit {c}")),
            message: if line.is_empty() { "no message" } else { line }.to_string(),
            usage: code == Some(2),
        }
        .into());
    }
    let report: Report = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the JSON report of {BINARY} {scenario} --mode {mode}"))?;
    let demo = session.model.child_of(std::process::id(), pid);
    Ok(measure(&session.model, demo, report))
}
