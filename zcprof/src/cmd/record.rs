//! `zcprof record -o FILE [--duration D] [--pid P… | --comm C | -- CMD ARGS…]`: profile a
//! command and its descendants, chosen processes, processes by name, or the whole machine,
//! and write a recording (`zcprof.recording/v1`) for `zcprof diff`.
//!
//! The output path is checked before anything starts, and the file is written atomically
//! (mode 0600) once, at the end: an interrupted recording is still written, marked
//! `interrupted`, and a failed one leaves whatever was at the path untouched.

use std::{
    collections::HashSet,
    ffi::OsString,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use zcprof_recording::{Target, Workload, WorkloadKind};

use super::run::{NOT_FOUND, Waited, exit_code, members, outlivers, resolve, spawn_followed};
use crate::{
    atomic,
    host::cgroup,
    host::procfs,
    model::{Model, ProcId},
    probes::{LoadOptions, SyscallProbe},
    report::{
        recording::{self, Meta},
        run::Outcome,
        unix_time,
    },
    session::{Retention, Session, Signals},
    stdio::say,
};

/// What to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Run this command; record it and its descendants.
    Command(Vec<OsString>),
    /// These processes and their descendants.
    Pids(Vec<u32>),
    /// Processes whose name contains this.
    Comm(String),
    /// Every process.
    Machine,
}

pub struct RecordOptions {
    pub output: PathBuf,
    /// Stop after this long (a recorded command is sent SIGTERM).
    pub duration: Option<Duration>,
    pub subject: Subject,
    /// `--cgroup`: only processes in these cgroup v2 paths or below (checked to exist).
    pub cgroups: Vec<String>,
}

/// Collection period while recording; only the final flush matters for the figures.
const PERIOD: Duration = Duration::from_millis(500);
/// How long a command may take to exit after SIGTERM/SIGINT before zcprof writes without it.
const GRACE: Duration = Duration::from_secs(2);

/// How recording ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Exit,
    Duration,
    Signal,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Exit => "exit",
            End::Duration => "duration",
            End::Signal => "signal",
        }
    }
}

pub async fn run(load: &LoadOptions, opts: RecordOptions) -> anyhow::Result<ExitCode> {
    // Everything that can be checked is checked before the probes load.
    atomic::check_writable(&opts.output)?;
    match &opts.subject {
        Subject::Command(argv) => {
            let program = argv.first().ok_or_else(|| anyhow!("no command given"))?;
            if resolve(program).is_none() {
                say!(
                    "zcprof: cannot run `{}`: command not found",
                    program.to_string_lossy()
                );
                return Ok(ExitCode::from(NOT_FOUND));
            }
        }
        Subject::Pids(pids) => {
            for &pid in pids {
                if !procfs::exists(pid) {
                    bail!("no process with pid {pid} exists");
                }
            }
        }
        Subject::Comm(_) | Subject::Machine => {}
    }
    // A target's end is its exit (its pidfd turns readable), not its disappearance from
    // /proc: a zombie that its parent has not reaped yet stays there.
    let ends = match &opts.subject {
        Subject::Pids(pids) => Some(Ends::open(pids)?),
        _ => None,
    };
    let mut signals = Signals::new()?;
    let mut session = Session::start(load, PERIOD, Retention::KeepExited)?;
    if let Subject::Pids(pids) = &opts.subject {
        // Before anything of theirs can be missed: the kernel follows them and everything
        // they fork from here on; their existing descendants are followed from /proc.
        session.follow_trees(pids)?;
        for pid in pids {
            session.user_check(*pid);
        }
        vanished_while_attaching(&mut session, pids).await?;
    }
    let started = Instant::now();
    let started_unix = unix_time();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let sleep_until_deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until_deadline);

    let mut outcome = Outcome {
        exit_code: None,
        signal: None,
        interrupted: false,
    };
    let (end, workload, selection): (End, Workload, Selection) = match opts.subject {
        Subject::Command(argv) => {
            let Some((mut child, pid)) = spawn_followed(&mut session, &argv)? else {
                return Ok(ExitCode::from(NOT_FOUND));
            };
            let (mut end, status) = loop {
                tokio::select! {
                    status = child.wait() => {
                        break (End::Exit, Some(status.context("waiting for the command")?));
                    }
                    tick = session.next() => {
                        tick?;
                    }
                    sig = signals.recv() => {
                        // SAFETY: kill(2) on our own child, not yet reaped.
                        unsafe { libc::kill(pid as i32, sig) };
                        let status = tokio::time::timeout(GRACE, child.wait()).await;
                        break (End::Signal, status.ok().transpose()?);
                    }
                    () = &mut sleep_until_deadline => {
                        // SAFETY: as above.
                        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                        let status = tokio::time::timeout(GRACE, child.wait()).await;
                        break (End::Duration, status.ok().transpose()?);
                    }
                }
            };
            if end == End::Exit {
                let program = argv.first().map_or_else(Default::default, Clone::clone);
                end = match outlivers(
                    &mut session,
                    &mut signals,
                    &program,
                    &mut sleep_until_deadline,
                )
                .await?
                {
                    Waited::Done => End::Exit,
                    Waited::Signal => End::Signal,
                    Waited::Until => End::Duration,
                };
            }
            {
                use std::os::unix::process::ExitStatusExt as _;
                outcome.exit_code = status.and_then(|s| s.code());
                outcome.signal = status.and_then(|s| s.signal());
            }
            let command: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let workload = Workload {
                kind: WorkloadKind::Command,
                command: Some(command.clone()),
                targets: vec![Target { pid, command }],
                comm: None,
                cgroups: Vec::new(),
                exit_code: outcome.exit_code,
                signal: outcome.signal,
            };
            (end, workload, Selection::Command(pid))
        }
        subject => {
            let targets: Vec<Target> = match &subject {
                Subject::Pids(pids) => pids
                    .iter()
                    .map(|&pid| Target {
                        pid,
                        command: procfs::args(pid),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            // These processes run already: say when their load can start being counted.
            say!(
                "zcprof: probes attached; recording {}{} (Ctrl-C stops)",
                match &subject {
                    Subject::Pids(pids) => format!(
                        "pid {} and descendants",
                        pids.iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Subject::Comm(c) => format!("processes named *{c}*"),
                    _ => "the whole machine".into(),
                },
                opts.duration
                    .map(|d| format!(" for {:.1} s", d.as_secs_f64()))
                    .unwrap_or_default()
            );
            let targets_ended = async {
                match &ends {
                    Some(ends) => ends.all().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(targets_ended);
            let end = loop {
                tokio::select! {
                    tick = session.next() => {
                        tick?;
                    }
                    () = &mut targets_ended => break End::Exit,
                    _ = signals.recv() => break End::Signal,
                    () = &mut sleep_until_deadline => break End::Duration,
                }
            };
            let workload = Workload {
                kind: match subject {
                    Subject::Pids(_) => WorkloadKind::Pids,
                    Subject::Comm(_) => WorkloadKind::Comm,
                    _ => WorkloadKind::Machine,
                },
                command: None,
                targets,
                comm: match &subject {
                    Subject::Comm(c) => Some(c.clone()),
                    _ => None,
                },
                cgroups: opts.cgroups.clone(),
                exit_code: None,
                signal: None,
            };
            let selection = match subject {
                Subject::Pids(pids) => Selection::Pids(pids),
                Subject::Comm(c) => Selection::Comm(c),
                _ => Selection::All,
            };
            (end, workload, selection)
        }
    };
    let duration_s = started.elapsed().as_secs_f64();
    let ended_unix = unix_time();
    session.flush().await?;
    outcome.interrupted = end == End::Signal;

    let mut chosen = selection.members(&session);
    let cgroups = session.cgroups_of(&chosen);
    if !opts.cgroups.is_empty() {
        chosen.retain(|id| {
            cgroups
                .get(id)
                .and_then(|c| c.path.as_deref())
                .is_some_and(|path| {
                    opts.cgroups
                        .iter()
                        .any(|under| cgroup::is_under(path, under))
                })
        });
    }
    let stacks = session
        .stacks()
        .map(|report| crate::report::stacks::build(&report, &session.model, &chosen));
    let rec = recording::build(
        &session.model,
        &chosen,
        &cgroups,
        &session.layers,
        Meta {
            workload,
            syscall_probe: match load.syscall_probe {
                SyscallProbe::Btf => "btf",
                SyscallProbe::Raw => "raw",
                SyscallProbe::Tracepoint => "tracepoint",
            },
            started_unix,
            ended_unix,
            duration_s,
            ended_by: end.as_str(),
            stacks,
        },
    );
    atomic::write(&opts.output, recording::json(&rec).as_bytes())?;
    say!(
        "zcprof: recorded {} process{} for {duration_s:.2} s{} to {}",
        rec.processes.len(),
        if rec.processes.len() == 1 { "" } else { "es" },
        if outcome.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        opts.output.display()
    );
    let tgids: Vec<u32> = rec.processes.iter().map(|p| p.pid).collect();
    if let Some(coverage) = session.user_coverage(&tgids) {
        // A copy the layer cannot see is said where the user looks (the recording's layer
        // holds what it counted).
        let mut lines = String::new();
        crate::report::user::not_counted_lines(&mut lines, &coverage);
        for line in lines.lines() {
            say!("zcprof: {line}");
        }
    }
    Ok(match (&rec.workload.kind, end) {
        // Like `zcprof run`: the command's status, so `record` can stand in for it.
        (WorkloadKind::Command, End::Exit | End::Signal) => exit_code(&outcome),
        _ => ExitCode::SUCCESS,
    })
}

/// Checks the `--pid` targets once the probes are attached: one that exited meanwhile, of
/// which the probes saw nothing, is named in a warning; when that is every target, nothing
/// can be recorded and `record` stops with one line (status 1) instead of writing an empty
/// recording that would look like an idle process.
async fn vanished_while_attaching(session: &mut Session, pids: &[u32]) -> anyhow::Result<()> {
    // Whatever the probes saw of a target before it ended is in the model after this.
    session.flush().await?;
    let gone: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&pid| !procfs::exists(pid) && session.model.latest_instance(pid).is_none())
        .collect();
    let list = |pids: &[u32]| {
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if gone.len() == pids.len() {
        bail!(
            "{} {} exited while the probes attached: nothing was recorded and no file was written",
            if gone.len() == 1 {
                "process"
            } else {
                "processes"
            },
            list(&gone)
        );
    }
    for pid in gone {
        say!(
            "zcprof: warning: process {pid} exited while the probes attached: nothing of it is recorded"
        );
    }
    Ok(())
}

/// The `--pid` targets' pidfds: each turns readable when its process exits.
struct Ends(Vec<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>);

impl Ends {
    fn open(pids: &[u32]) -> anyhow::Result<Ends> {
        let fds = pids
            .iter()
            .map(|&pid| {
                let fd = rustix::process::Pid::from_raw(pid as i32)
                    .ok_or_else(|| anyhow!("no process with pid {pid} exists"))
                    .and_then(|p| {
                        rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                            .map_err(|err| match err {
                                rustix::io::Errno::SRCH => {
                                    anyhow!("no process with pid {pid} exists")
                                }
                                err => anyhow!("opening a pidfd for process {pid}: {err}"),
                            })
                    })?;
                // SAFETY: the AsyncFd owns the pidfd, which stays open and unchanged until
                // it is dropped.
                unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        fd,
                        tokio::io::Interest::READABLE,
                    )
                }
                .map_err(|err| anyhow!("watching process {pid}: {}", err))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Ends(fds))
    }

    /// Resolves once every target has exited (cancel-safe: readiness stays once set).
    async fn all(&self) {
        for fd in &self.0 {
            // An error would mean the pidfd cannot be polled: treat it as ended rather than
            // recording forever.
            let _ = fd.readable().await;
        }
    }
}

/// Which of the model's processes go into the recording.
enum Selection {
    /// The command zcprof started (this pid) and its descendants.
    Command(u32),
    Pids(Vec<u32>),
    Comm(String),
    All,
}

impl Selection {
    fn members(&self, session: &Session) -> Vec<ProcId> {
        let model = &session.model;
        match self {
            Selection::Command(pid) => members(session, *pid),
            // The kernel decided who descends from the targets, at each fork; without the
            // lifecycle programs, the model's guess from parent pids is all there is.
            Selection::Pids(_) if session.can_follow() => model.followed(),
            Selection::Pids(pids) => descendants(model, pids),
            Selection::Comm(c) => model
                .processes()
                .filter(|p| p.comm.contains(c.as_str()))
                .map(|p| p.id)
                .collect(),
            Selection::All => model.processes().map(|p| p.id).collect(),
        }
    }
}

/// Without the lifecycle programs: the latest instance of each of `pids`, and every
/// instance descended from them (by parent instance, or by parent pid for children forked
/// before their parent was seen).
fn descendants(model: &Model, pids: &[u32]) -> Vec<ProcId> {
    let mut members: Vec<ProcId> = pids
        .iter()
        .filter_map(|&pid| model.latest_instance(pid))
        .collect();
    let mut ids: HashSet<ProcId> = members.iter().copied().collect();
    let mut tgids: HashSet<u32> = pids.iter().copied().collect();
    loop {
        let before = members.len();
        for p in model.processes() {
            if ids.contains(&p.id) {
                continue;
            }
            let by_instance = p.parent.is_some_and(|parent| ids.contains(&parent));
            let by_pid = p.parent.is_none() && p.ppid.is_some_and(|pp| tgids.contains(&pp));
            if by_instance || by_pid {
                ids.insert(p.id);
                tgids.insert(p.tgid);
                members.push(p.id);
            }
        }
        if members.len() == before {
            break;
        }
    }
    members.sort();
    members
}
