//! Running one demo variant under a profiling session: find the `zcprof-demo` binary,
//! spawn it, keep the model current while it runs, flush, and match its workers. The
//! dashboard's demos tab finds, spawns and reads its runs with the same [`locate`],
//! [`spawn`] and [`outcome`].
//!
//! Variants run one after another, never side by side: their pids are told apart by
//! the fork tree either way, but concurrent runs would share two CPUs and make the
//! throughput comparison meaningless.
//!
//! A demo runs in a process group of its own and dies with zcprof ([`crate::children`]):
//! SIGINT/SIGTERM sent to zcprof is passed to the whole group, which gets [`GRACE`] to end
//! (`zcprof-demo` stops its workers and removes its files) before what is left is killed,
//! and the run ends as [`Interrupted`].

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use zcprof_demos::Report;

use super::measure::{Measured, measure};
use crate::{
    children::{self, Group},
    report::run::MappedFile,
    session::{Session, Signals},
};

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
#[error("{command} failed ({status}): {}", .message.as_deref().unwrap_or("no message"))]
pub struct DemoFailed {
    pub command: String,
    pub status: String,
    /// The last line the demo wrote on stderr, if any.
    pub message: Option<String>,
    pub usage: bool,
}

impl DemoFailed {
    /// Why, in a few words (for the dashboard's narrow columns): the demo's own message,
    /// else how it ended (`exit 1`, `killed by a signal`).
    pub fn reason(&self) -> &str {
        self.message.as_deref().unwrap_or(&self.status)
    }
}

/// `zcprof-demo` said this kernel cannot run the mode at all (its exit status 4, e.g. no
/// io_uring, or SEND_ZC without usage reports): the mode is skipped with `reason`, which is
/// not a failure of the demo or of the profile.
#[derive(Debug, thiserror::Error)]
#[error("{mode}: not supported here: {reason}")]
pub struct DemoUnsupported {
    pub mode: String,
    pub reason: String,
}

/// A demo run was stopped by SIGINT or SIGTERM sent to zcprof (passed on to the demo).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}: the demo and its workers were stopped", if *.signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" })]
pub struct Interrupted {
    pub signal: i32,
}

/// How long an interrupted demo may take to stop its workers and remove its temporary
/// files before its process group is killed.
pub const GRACE: Duration = Duration::from_secs(3);

/// What to ask of one demo run.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    /// `--bytes`; the demo's default (16 MiB) when `None`.
    pub bytes: Option<u64>,
}

/// How much one run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// The demo's default payload.
    Default,
    /// `--bytes N` of payload.
    Bytes(u64),
    /// `--seconds N`: as much payload as fits (the dashboard's demos tab).
    Seconds(u32),
}

/// Starts `exe run SCENARIO --mode MODE --compact`: stdin closed, the JSON report (stdout)
/// and the one-line error (stderr) piped, killed if the handle is dropped before it ends.
/// It leads a process group of its own (the terminal's Ctrl-C reaches zcprof alone, which
/// passes it on) and gets SIGTERM if zcprof dies, even by SIGKILL ([`crate::children`]);
/// its workers die with it (their own death signal).
pub fn spawn(
    exe: &Path,
    scenario: &str,
    mode: &str,
    length: Length,
) -> anyhow::Result<tokio::process::Child> {
    let mut command = tokio::process::Command::new(exe);
    command
        .args(["run", scenario, "--mode", mode, "--compact"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    children::die_with_zcprof(&mut command, rustix::process::Signal::TERM);
    match length {
        Length::Default => {}
        Length::Bytes(bytes) => {
            command.args(["--bytes", &bytes.to_string()]);
        }
        Length::Seconds(seconds) => {
            command.args(["--seconds", &seconds.to_string()]);
        }
    }
    command
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))
}

/// What an ended `zcprof-demo run SCENARIO --mode MODE` said: its report when it finished
/// (exit 0, or 3: finished without verifying its payload, which the report says),
/// [`DemoUnsupported`] when this kernel cannot run the mode (exit 4), else [`DemoFailed`]
/// with its one-line message.
pub fn outcome(scenario: &str, mode: &str, output: &Output) -> anyhow::Result<Report> {
    let code = output.status.code();
    if !matches!(code, Some(0) | Some(3)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().last().unwrap_or("").trim();
        let line = line.strip_prefix("zcprof-demo: ").unwrap_or(line);
        if code == Some(i32::from(zcprof_demos::error::EXIT_UNSUPPORTED)) {
            return Err(DemoUnsupported {
                mode: mode.to_string(),
                reason: line.to_string(),
            }
            .into());
        }
        return Err(DemoFailed {
            command: format!("{BINARY} {scenario} --mode {mode}"),
            status: code.map_or_else(|| "killed by a signal".into(), |c| format!("exit {c}")),
            message: (!line.is_empty()).then(|| line.to_string()),
            usage: code == Some(2),
        }
        .into());
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the JSON report of {BINARY} {scenario} --mode {mode}"))
}

/// Runs `scenario --mode mode` once, inside `session`, and returns its report with what
/// the profiler attributed to each of its workers. A demo that fails (exit 1 or 2) is an
/// error carrying its one-line message ([`DemoFailed`]); one this kernel cannot run (exit
/// 4) is a [`DemoUnsupported`]; one that finished without verifying its payload (exit 3) is
/// returned, with `verified: false` in its report. SIGINT or SIGTERM to zcprof
/// (`signals`) stops the demo's whole group and ends the run as [`Interrupted`].
pub async fn run_variant(
    session: &mut Session,
    signals: &mut Signals,
    exe: &Path,
    scenario: &str,
    mode: &str,
    args: &DemoArgs,
) -> anyhow::Result<Measured> {
    let length = args.bytes.map_or(Length::Default, Length::Bytes);
    let child = spawn(exe, scenario, mode, length)?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("{BINARY} exited before zcprof saw its pid"))?;
    // Killed on drop, so an error here (or zcprof's own end) takes the workers too.
    let group = Group::led_by(pid).ok_or_else(|| anyhow!("{BINARY} has no valid pid"))?;
    let output = child.wait_with_output();
    tokio::pin!(output);
    // Keep applying batches while the demo runs, so the ring buffer never fills.
    let output = loop {
        tokio::select! {
            out = &mut output => break out.with_context(|| format!("waiting for {BINARY}"))?,
            tick = session.next() => {
                tick?;
            }
            signal = signals.recv() => {
                // The demo has its own group, so the terminal's Ctrl-C reached zcprof alone.
                group.signal(children::signal_of(signal));
                if tokio::time::timeout(GRACE, &mut output).await.is_err() {
                    group.signal(rustix::process::Signal::KILL);
                    let _ = (&mut output).await;
                }
                // Its leader reaped, the group empties as its workers die.
                group.end_within(Duration::from_secs(1)).await;
                return Err(Interrupted { signal }.into());
            }
        }
    };
    session.flush().await?;
    let report = outcome(scenario, mode, &output)?;
    let demo = session.model.child_of(std::process::id(), pid);
    let mapped = session.mapped_layer_attached().then(|| {
        session
            .mapped_files()
            .iter()
            .map(|(key, mark)| MappedFile::of(key, mark))
            .collect::<Vec<_>>()
    });
    Ok(measure(&session.model, demo, report, mapped.as_deref()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn ended(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            // A wait(2) status: the exit code in the second byte.
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    fn failed(output: &Output) -> DemoFailed {
        match outcome("pipe", "tee", output) {
            Err(err) => err.downcast::<DemoFailed>().expect("a DemoFailed"),
            Ok(report) => panic!("not a failure: {report:?}"),
        }
    }

    #[test]
    fn a_failed_demo_is_its_last_stderr_line_or_its_status() {
        let f = failed(&ended(
            2,
            "",
            "starting\nzcprof-demo: 1 TiB is more than the free disk\n",
        ));
        assert!(f.usage);
        assert_eq!(f.reason(), "1 TiB is more than the free disk");
        assert_eq!(
            f.to_string(),
            "zcprof-demo pipe --mode tee failed (exit 2): 1 TiB is more than the free disk"
        );
        let f = failed(&ended(1, "", ""));
        assert!(!f.usage);
        assert_eq!(f.reason(), "exit 1");
        assert_eq!(
            f.to_string(),
            "zcprof-demo pipe --mode tee failed (exit 1): no message"
        );
        let killed = Output {
            status: std::process::ExitStatus::from_raw(libc::SIGKILL),
            ..ended(0, "", "")
        };
        assert_eq!(failed(&killed).reason(), "killed by a signal");
    }

    #[test]
    fn exit_4_is_a_mode_this_kernel_cannot_run_not_a_failure() {
        let line = "zcprof-demo: file-serve/io-uring-send-zc is not supported by this kernel \
                    (Linux 6.0.0): no usage reports";
        let err = outcome("file-serve", "io-uring-send-zc", &ended(4, "", line))
            .expect_err("not a report");
        assert!(err.downcast_ref::<DemoFailed>().is_none());
        let skip = err
            .downcast::<DemoUnsupported>()
            .expect("a DemoUnsupported");
        assert_eq!(skip.mode, "io-uring-send-zc");
        assert_eq!(
            skip.reason,
            line.strip_prefix("zcprof-demo: ").expect("prefixed")
        );
    }

    #[test]
    fn a_finished_demo_is_its_report_even_unverified() {
        let report = serde_json::json!({
            "scenario": "pipe", "mode": "tee", "baseline": false,
            "payload_bytes": 4096u64, "verified": false, "chunk_bytes": 4096,
            "requested_bytes": null, "requested_seconds": 1.0, "wall_seconds": 1.0,
            "throughput_bytes_per_sec": 4096.0, "parent_pid": 7, "roles": []
        })
        .to_string();
        for code in [0, 3] {
            let r = outcome("pipe", "tee", &ended(code, &report, "")).expect("a report");
            assert_eq!((r.payload_bytes, r.verified), (4096, false));
        }
        let err = outcome("pipe", "tee", &ended(0, "{", "")).expect_err("not JSON");
        assert!(
            format!("{err:#}")
                .starts_with("reading the JSON report of zcprof-demo pipe --mode tee"),
            "{err:#}"
        );
    }
}
