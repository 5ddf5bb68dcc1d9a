//! `zcprof run -- CMD ARGS…`: start a command under the profiler, follow it and all its
//! descendants, and summarise what they copied when it exits. zcprof exits with the
//! command's status, so it can stand in for the command in scripts.

use std::{
    ffi::OsString,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};

use crate::{
    atomic,
    probes::LoadOptions,
    report::run::{self as summary, Outcome, Summary},
    session::{Retention, Session, Signals},
    stdio::{self, say},
};

pub struct RunOptions {
    pub json: bool,
    /// Write the summary here (atomically) instead of to stderr.
    pub output: Option<PathBuf>,
    pub command: Vec<OsString>,
}

/// Exit status for a command that cannot be found or started, as shells use.
pub(crate) const NOT_FOUND: u8 = 127;
/// How long a forwarded Ctrl-C/SIGTERM may take to end the command before zcprof reports
/// without it.
const GRACE: Duration = Duration::from_secs(2);
/// Collection period while the command runs (only the final flush matters for the summary;
/// this keeps the ring buffer and the model current).
const PERIOD: Duration = Duration::from_millis(500);

pub async fn run(load: &LoadOptions, opts: RunOptions) -> anyhow::Result<ExitCode> {
    let program = opts
        .command
        .first()
        .ok_or_else(|| anyhow!("no command given"))?;
    if resolve(program).is_none() {
        say!(
            "zcprof: cannot run `{}`: command not found",
            program.to_string_lossy()
        );
        return Ok(ExitCode::from(NOT_FOUND));
    }
    if let Some(path) = &opts.output {
        atomic::check_writable(path)?;
    }
    let mut signals = Signals::new()?;
    let mut session = Session::start(load, PERIOD, Retention::KeepExited)?;

    let started = Instant::now();
    let Some((mut child, pid)) = spawn(&opts.command) else {
        return Ok(ExitCode::from(NOT_FOUND));
    };

    let mut interrupted = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status.context("waiting for the command")?),
            tick = session.next() => {
                tick?;
            }
            sig = signals.recv() => {
                interrupted = true;
                // The terminal sent Ctrl-C to the command too; a SIGTERM was for us alone.
                // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
                unsafe { libc::kill(pid as i32, sig) };
                break tokio::time::timeout(GRACE, child.wait()).await.ok().transpose()?;
            }
        }
    };
    let duration_s = started.elapsed().as_secs_f64();
    session.flush().await?;

    let outcome = Outcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        interrupted,
    };
    let root = session
        .model
        .child_of(std::process::id(), pid)
        .or_else(|| session.model.latest_instance(pid));
    let command = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let s = Summary::new(
        &session.model,
        root,
        command,
        outcome.clone(),
        duration_s,
        &session.layers,
    );
    let rendered = if opts.json {
        summary::json(&s)
    } else {
        summary::text(&s)
    };
    match &opts.output {
        Some(path) => atomic::write(path, format!("{rendered}\n").as_bytes())?,
        // The summary is what `run` is for: if stderr cannot take it, the exit status says
        // so (1) instead of the command's.
        None => stdio::eprintln(&rendered)?,
    }
    Ok(exit_code(&outcome))
}

/// Starts `argv` (non-empty) and returns it with its pid, or tells the user why it could
/// not start and returns `None`.
pub(crate) fn spawn(argv: &[OsString]) -> Option<(tokio::process::Child, u32)> {
    let program = argv.first()?;
    let mut command = tokio::process::Command::new(program);
    command.args(&argv[1..]);
    // If zcprof is killed (even by SIGKILL), the command gets SIGTERM: it does not run on
    // unobserved under pid 1.
    crate::children::die_with_zcprof(&mut command, rustix::process::Signal::TERM);
    match command.spawn() {
        Ok(child) => {
            let pid = child.id()?;
            Some((child, pid))
        }
        Err(err) => {
            say!("zcprof: cannot run `{}`: {err}", program.to_string_lossy());
            None
        }
    }
}

/// The command's own status; 128+N when a signal ended it (as shells report it).
pub(crate) fn exit_code(outcome: &Outcome) -> ExitCode {
    let code = match (outcome.exit_code, outcome.signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 128 + libc::SIGTERM,
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Where `program` would be executed from: itself if it names a path, else the first
/// executable match on PATH.
pub(crate) fn resolve(program: &OsString) -> Option<PathBuf> {
    let path = Path::new(program);
    if path.components().count() > 1 || program.to_string_lossy().contains('/') {
        return is_executable(path).then(|| path.to_path_buf());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(path))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_path_and_bare_names() {
        assert!(resolve(&"sh".into()).is_some());
        assert!(resolve(&"/bin/sh".into()).is_some());
        assert!(resolve(&"definitely-not-a-command-zcprof".into()).is_none());
        assert!(resolve(&"./nope".into()).is_none());
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let o = |exit_code, signal| Outcome {
            exit_code,
            signal,
            interrupted: false,
        };
        assert_eq!(exit_code(&o(Some(3), None)), ExitCode::from(3));
        assert_eq!(exit_code(&o(None, Some(9))), ExitCode::from(137));
    }
}
