//! `zcprof run -- CMD ARGS…`: start a command under the profiler, follow it and all its
//! descendants (the kernel follows every process the command forks, and theirs, the way
//! `strace -f` does), and summarise what they copied once the command **and** every
//! descendant have exited (a daemon that outlives its command is waited for, and `run` says
//! so once), or on Ctrl-C. zcprof exits with the command's status, so it can stand in for
//! the command in scripts.

use std::{
    ffi::{OsStr, OsString},
    future::Future,
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
/// The same with `--files`: the files of a process are named from /proc at a batch while it
/// lives, so short-lived processes are named more often when batches come faster.
const FILES_PERIOD: Duration = Duration::from_millis(100);

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
    let period = if load.files { FILES_PERIOD } else { PERIOD };
    let mut session = Session::start(load, period, Retention::KeepExited)?;

    let started = Instant::now();
    let Some((mut child, pid)) = spawn_followed(&mut session, &opts.command)? else {
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
    if !interrupted {
        let waited = outlivers(
            &mut session,
            &mut signals,
            program,
            std::future::pending::<()>(),
        )
        .await?;
        interrupted = waited == Waited::Signal;
    }
    let duration_s = started.elapsed().as_secs_f64();
    session.flush().await?;

    let outcome = Outcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        interrupted,
    };
    let members = members(&session, pid);
    let cgroups = session.cgroups_of(&members);
    let command = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut s = Summary::new(
        &session.model,
        &members,
        command,
        outcome.clone(),
        duration_s,
        &session.layers,
    );
    s.mapped_files = session
        .mapped_files()
        .iter()
        .map(|(key, mark)| summary::MappedFile::of(key, mark))
        .collect();
    s.cgroups = cgroups;
    s.files = session.files().map(|files| {
        s.processes
            .iter()
            .flat_map(|p| files.of(p.tgid))
            .map(|(key, file)| summary::FileRow::of(key, file))
            .collect()
    });
    s.cgroups_unavailable = session.cgroups.unavailable().map(String::from);
    s.probe_stats = session.probe_total();
    s.stacks = session
        .stacks()
        .map(|report| crate::report::stacks::build(&report, &session.model, &members));
    s.user_coverage =
        session.user_coverage(&s.processes.iter().map(|p| p.tgid).collect::<Vec<_>>());
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

/// The command zcprof started (`pid`) and its descendants: the processes the kernel
/// followed, or, when this kernel cannot follow, the command's fork tree as the model saw it.
pub(crate) fn members(session: &Session, pid: u32) -> Vec<crate::model::ProcId> {
    let model = &session.model;
    if session.can_follow() {
        return model.followed();
    }
    model
        .child_of(std::process::id(), pid)
        .or_else(|| model.latest_instance(pid))
        .map(|root| model.tree(root))
        .unwrap_or_default()
}

/// [`spawn`] with the kernel following the command from its fork on: zcprof follows itself
/// for the length of the fork (zcprof's runtime is single-threaded, so it forks nothing
/// else meanwhile), so `task_newtask` adds the child before it can run, let alone fork.
pub(crate) fn spawn_followed(
    session: &mut Session,
    argv: &[OsString],
) -> anyhow::Result<Option<(tokio::process::Child, u32)>> {
    let me = std::process::id();
    session.follow(me, 0)?;
    // The stacks layer reads a process's mappings at its first sample; a command that
    // copies and exits at once can be gone by then. So they are read as soon as spawn
    // returns (once the command has exec'd), before the sampler may look at a sample.
    let program = argv.first().and_then(resolve);
    let spawned = session.stacks_observe_spawned(program.as_deref(), || spawn(argv));
    session.unfollow(me);
    if let Some((_, pid)) = &spawned {
        session.user_check(*pid);
    }
    Ok(spawned)
}

/// How waiting for a command's outliving descendants ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// None is left (or this kernel cannot follow them).
    Done,
    /// SIGINT/SIGTERM: stop now, with what was collected.
    Signal,
    /// `until` resolved (`record --duration`).
    Until,
}

/// Once the command has exited: waits until every process the kernel follows for it has
/// exited too, saying once how many outlived it, or until a signal or `until`.
pub(crate) async fn outlivers(
    session: &mut Session,
    signals: &mut Signals,
    program: &OsStr,
    until: impl Future<Output = ()>,
) -> anyhow::Result<Waited> {
    if !session.can_follow() {
        return Ok(Waited::Done);
    }
    tokio::pin!(until);
    // Everything up to the command's exit is in the model after this, and so is the
    // number of followed processes still alive.
    session.flush().await?;
    let mut told = false;
    loop {
        let n = session.followed_alive.unwrap_or(0);
        if n == 0 {
            return Ok(Waited::Done);
        }
        if !told {
            told = true;
            let name = Path::new(program)
                .file_name()
                .unwrap_or(program)
                .to_string_lossy();
            say!(
                "zcprof: following {n} process{} that outlived {name}; Ctrl-C to stop",
                if n == 1 { "" } else { "es" }
            );
        }
        tokio::select! {
            tick = session.next() => {
                tick?;
            }
            _ = signals.recv() => return Ok(Waited::Signal),
            () = &mut until => return Ok(Waited::Until),
        }
    }
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
