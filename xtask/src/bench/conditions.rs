//! The conditions a workload runs under — nothing, zcprof in its probe modes, bpftrace,
//! strace, perf trace — and how each is started, measured and stopped.
//!
//! A profiler that watches the machine (zcprof, bpftrace) is started first and the workload
//! only once it has said it is attached; its CPU time is read just before and just after the
//! workload, so the share of a core it reports is what it used while the workload ran.
//! Tracers that wrap a command (strace, perf trace) are simply put in front of it.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use super::{
    procfs,
    progstats::{self, ProgRun},
    workloads::{Outcome, Truth, Workload},
};
use crate::util::last_line;

/// Arguments that make zcprof attach every layer it has: the default attaches every layer
/// this kernel allows (syscall, lifecycle, io_uring, mapped, and the kernel layer where
/// fentry or kprobes work) but the opt-in ones, which are asked for here (`--flows`: beside
/// `zcprof` it shows what the descriptor-kind lookups cost).
const ALL_LAYERS_ARGS: &[&str] = &["--flows"];
/// The default with the per-thread split: beside `zcprof` it shows what `--threads` costs.
pub const THREADS_ARGS: &[&str] = &["--threads"];
/// The default with stack sampling at the default period (1 MiB): beside `zcprof` it shows
/// what `--stacks` costs.
pub const STACKS_ARGS: &[&str] = &["--stacks"];
/// The default with the user layer (uprobes on this host's libc copy routines): beside
/// `zcprof` it shows what `--user-copies` costs the workloads' own memcpy calls (a trap
/// per call, in every process using the libc).
pub const USER_COPIES_ARGS: &[&str] = &["--user-copies"];

/// The default with CPU sampling at the default 999 Hz per CPU: beside `zcprof` it shows
/// what `--cpu` costs (a cost per sample, not per syscall: the same on every workload).
pub const CPU_ARGS: &[&str] = &["--cpu"];
/// The default without the io_uring layer: beside `zcprof` it shows what that layer costs.
const NO_IO_URING_ARGS: &[&str] = &["--disable-layer", "io_uring"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Baseline,
    /// The floor: an empty program on zcprof's default hook (`zcbench empty-hook`).
    EmptyHook,
    /// The default: BTF raw tracepoint.
    Zcprof,
    ZcprofRaw,
    ZcprofTracepoint,
    ZcprofAll,
    /// The default with `--disable-layer io_uring`.
    ZcprofNoIoUring,
    /// The default with `--threads`.
    ZcprofThreads,
    /// The default with `--stacks`.
    ZcprofStacks,
    /// The default with `--user-copies`.
    ZcprofUserCopies,
    /// The default with `--cpu`.
    ZcprofCpu,
    Bpftrace,
    /// bpftrace on the one `raw_syscalls:sys_exit` tracepoint, filtering the syscall numbers.
    BpftraceRaw,
    Strace,
    PerfTrace,
}

impl Condition {
    pub const ALL: [Condition; 15] = [
        Condition::Baseline,
        Condition::EmptyHook,
        Condition::Zcprof,
        Condition::ZcprofRaw,
        Condition::ZcprofTracepoint,
        Condition::ZcprofAll,
        Condition::ZcprofNoIoUring,
        Condition::ZcprofThreads,
        Condition::ZcprofStacks,
        Condition::ZcprofUserCopies,
        Condition::ZcprofCpu,
        Condition::Bpftrace,
        Condition::BpftraceRaw,
        Condition::Strace,
        Condition::PerfTrace,
    ];

    /// zcprof in each of its probe modes.
    pub const ZCPROF: [Condition; 9] = [
        Condition::Zcprof,
        Condition::ZcprofRaw,
        Condition::ZcprofTracepoint,
        Condition::ZcprofAll,
        Condition::ZcprofNoIoUring,
        Condition::ZcprofThreads,
        Condition::ZcprofStacks,
        Condition::ZcprofUserCopies,
        Condition::ZcprofCpu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Baseline => "baseline",
            Condition::EmptyHook => "empty hook",
            Condition::Zcprof => "zcprof",
            Condition::ZcprofRaw => "zcprof raw_tp",
            Condition::ZcprofTracepoint => "zcprof tracepoint",
            Condition::ZcprofAll => "zcprof all layers",
            Condition::ZcprofNoIoUring => "zcprof no io_uring",
            Condition::ZcprofThreads => "zcprof threads",
            Condition::ZcprofStacks => "zcprof stacks",
            Condition::ZcprofUserCopies => "zcprof user-copies",
            Condition::ZcprofCpu => "zcprof cpu",
            Condition::Bpftrace => "bpftrace",
            Condition::BpftraceRaw => "bpftrace raw_syscalls",
            Condition::Strace => "strace -c -f",
            Condition::PerfTrace => "perf trace -s",
        }
    }

    /// A profiler that watches the machine with BPF programs of its own process: the
    /// statistics pass measures those programs' run time.
    pub fn watches(self) -> bool {
        matches!(
            self,
            Condition::EmptyHook
                | Condition::Zcprof
                | Condition::ZcprofRaw
                | Condition::ZcprofTracepoint
                | Condition::ZcprofAll
                | Condition::ZcprofNoIoUring
                | Condition::ZcprofThreads
                | Condition::ZcprofStacks
                | Condition::ZcprofUserCopies
                | Condition::ZcprofCpu
                | Condition::Bpftrace
                | Condition::BpftraceRaw
        )
    }

    pub fn describe(self) -> String {
        match self {
            Condition::Baseline => "no profiler".into(),
            Condition::EmptyHook => "the floor: empty programs on the hooks zcprof's default layers run on at every event (tp_btf sys_exit; io_uring:io_uring_submit_req and io_uring_complete), attached by `zcbench empty-hook`; what zcprof adds beyond them is its own work".into(),
            Condition::Zcprof => "`zcprof top --json -i 1s`, the default: syscall layer on one BTF raw tracepoint (tp_btf) on sys_exit, the io_uring layer on io_uring:io_uring_submit_req and io_uring_complete, the mapped layer on filemap:mm_filemap_fault and map_pages, lifecycle tracepoints".into(),
            Condition::ZcprofRaw => "`zcprof --syscall-probe raw top --json -i 1s`: the same on a plain raw tracepoint (the default before tuning)".into(),
            Condition::ZcprofTracepoint => "`zcprof --syscall-probe tracepoint top --json -i 1s` (one syscalls:sys_exit_* per counted syscall)".into(),
            Condition::ZcprofAll => if ALL_LAYERS_ARGS.is_empty() {
                "every layer that attaches: the same command as `zcprof` (the default attaches every layer this kernel allows), so the two rows also show the run-to-run noise".into()
            } else {
                format!("`zcprof {} top --json -i 1s`", ALL_LAYERS_ARGS.join(" "))
            },
            Condition::ZcprofNoIoUring => format!("`zcprof {} top --json -i 1s`: the default without the io_uring layer; beside `zcprof` it shows that layer's cost (and on the uring workload its bytes are then counted nowhere, so not exact)", NO_IO_URING_ARGS.join(" ")),
            Condition::ZcprofThreads => format!("`zcprof {} top --json -i 1s`: the default with the per-thread split; beside `zcprof` it shows that split's cost", THREADS_ARGS.join(" ")),
            Condition::ZcprofStacks => format!("`zcprof {} top --json -i 1s`: the default with user stacks sampled every 1 MiB of a process's bytes of one syscall; beside `zcprof` it shows the sampling's cost", STACKS_ARGS.join(" ")),
            Condition::ZcprofUserCopies => format!("`zcprof {} top --json -i 1s`: the default with uprobes on this host's libc memcpy/memmove/mempcpy; beside `zcprof` it shows what a trap per copy call costs the workloads", USER_COPIES_ARGS.join(" ")),
            Condition::ZcprofCpu => format!("`zcprof {} top --json -i 1s`: the default with the cpu layer sampling every CPU at 999 Hz (cpu-clock); beside `zcprof` it shows the sampling's cost, which is per sample, not per syscall", CPU_ARGS.join(" ")),
            Condition::Bpftrace => "bpftrace: `@bytes[pid] = sum(args->ret)` on the same syscalls:sys_exit_* tracepoints, and `sum(args->res)` on io_uring:io_uring_complete".into(),
            Condition::BpftraceRaw => "bpftrace: the same sums on the one `raw_syscalls:sys_exit` tracepoint, with a filter on the counted syscall numbers (bpftrace 0.17 has no `rawtracepoint` probe), and on io_uring:io_uring_complete".into(),
            Condition::Strace => "`strace -c -f` wrapping the workload".into(),
            Condition::PerfTrace => "`perf trace -s` wrapping the workload".into(),
        }
    }
}

/// Where the tools are.
pub struct Tools {
    /// Directory of the release binaries (zcprof, zcbench, zcprof-demo).
    pub bin: PathBuf,
    /// Scratch directory for tracer output, removed when the run ends.
    pub scratch: tempfile::TempDir,
}

/// One run of one workload under one condition.
#[derive(Clone, Debug)]
pub struct Sample {
    pub outcome: Outcome,
    /// The watching profiler's own cost, when there is one.
    pub daemon: Option<DaemonCost>,
    /// Events the profiler says it lost (zcprof: `lost.total` of its last frame; perf
    /// trace: the LOST lines it printed).
    pub lost: Option<u64>,
    /// Whether the profiler's per-process totals equal the workload's own count.
    pub exact: Option<Exactness>,
    /// The profiler's BPF programs that ran during the workload, most runs first (the
    /// statistics pass only).
    pub progs: Option<Vec<ProgRun>>,
}

#[derive(Clone, Copy, Debug)]
pub struct DaemonCost {
    /// CPU time used while the workload ran, as a share of one core.
    pub cpu_share: f64,
    pub peak_rss_kib: u64,
}

#[derive(Clone, Debug)]
pub struct Exactness {
    pub exact: bool,
    /// The first difference, when not exact.
    pub detail: Option<String>,
}

/// Runs `workload` under `condition`; with `stats`, the kernel's BPF statistics are on
/// around the workload and the profiler's programs' run times come back in `progs` (its
/// timings are then not comparable with the other runs').
pub fn run(
    condition: Condition,
    workload: Workload,
    seconds: f64,
    tools: &Tools,
    stats: bool,
) -> anyhow::Result<Sample> {
    let command = workload.command(&tools.bin, seconds);
    let timeout = Duration::from_secs_f64(seconds * 20.0 + 60.0);
    match condition {
        Condition::Baseline => Ok(Sample {
            outcome: workload.parse(&run_workload(&command, timeout)?)?,
            daemon: None,
            lost: None,
            exact: None,
            progs: None,
        }),
        Condition::Zcprof
        | Condition::ZcprofRaw
        | Condition::ZcprofTracepoint
        | Condition::ZcprofAll
        | Condition::ZcprofNoIoUring
        | Condition::ZcprofThreads
        | Condition::ZcprofStacks
        | Condition::ZcprofUserCopies
        | Condition::ZcprofCpu => {
            let zcprof = tools.bin.join("zcprof").display().to_string();
            let mut args = vec![zcprof];
            match condition {
                Condition::ZcprofRaw => args.extend(["--syscall-probe".into(), "raw".into()]),
                Condition::ZcprofTracepoint => {
                    args.extend(["--syscall-probe".into(), "tracepoint".into()]);
                }
                Condition::ZcprofAll => args.extend(ALL_LAYERS_ARGS.iter().map(|s| s.to_string())),
                Condition::ZcprofNoIoUring => {
                    args.extend(NO_IO_URING_ARGS.iter().map(|s| s.to_string()));
                }
                Condition::ZcprofThreads => args.extend(THREADS_ARGS.iter().map(|s| s.to_string())),
                Condition::ZcprofStacks => args.extend(STACKS_ARGS.iter().map(|s| s.to_string())),
                Condition::ZcprofUserCopies => {
                    args.extend(USER_COPIES_ARGS.iter().map(|s| s.to_string()));
                }
                Condition::ZcprofCpu => args.extend(CPU_ARGS.iter().map(|s| s.to_string())),
                _ => {}
            }
            args.extend(["top", "--json", "-i", "1s"].map(String::from));
            // The first frame comes one interval after the probes attached.
            let daemon = Daemon::start(&args, |line| line.contains("zcprof.top/v1"), tools)?;
            let Watched {
                outcome,
                cost,
                lines,
                progs,
            } = daemon.around(workload, &command, timeout, libc::SIGTERM, stats)?;
            let (totals, lost) = zcprof_totals(&lines, &outcome.truth)?;
            let exact = compare(&outcome.truth, &totals, true);
            Ok(Sample {
                outcome,
                daemon: Some(cost),
                lost: Some(lost),
                exact: Some(exact),
                progs,
            })
        }
        Condition::EmptyHook => {
            let args = vec![
                tools.bin.join("zcbench").display().to_string(),
                "empty-hook".into(),
            ];
            let daemon = Daemon::start(&args, |line| line.contains(EMPTY_HOOK_READY), tools)?;
            let Watched {
                outcome,
                cost,
                progs,
                ..
            } = daemon.around(workload, &command, timeout, libc::SIGTERM, stats)?;
            Ok(Sample {
                outcome,
                daemon: Some(cost),
                lost: None,
                exact: None,
                progs,
            })
        }
        Condition::Bpftrace | Condition::BpftraceRaw => {
            let script = if condition == Condition::Bpftrace {
                bpftrace_script()
            } else {
                bpftrace_raw_script()
            };
            let args = vec!["bpftrace".into(), "-e".into(), script];
            let daemon = Daemon::start(&args, |line| line.contains(READY), tools)?;
            let Watched {
                outcome,
                cost,
                lines,
                progs,
            } = daemon.around(workload, &command, timeout, libc::SIGINT, stats)?;
            let totals = bpftrace_totals(&lines);
            Ok(Sample {
                exact: Some(compare(&outcome.truth, &totals, false)),
                outcome,
                daemon: Some(cost),
                lost: None,
                progs,
            })
        }
        Condition::Strace => {
            let out = tools.scratch.path().join("strace.txt");
            let mut wrapped: Vec<String> = ["strace", "-c", "-f", "-o"].map(String::from).into();
            wrapped.push(out.display().to_string());
            wrapped.push("--".into());
            wrapped.extend(command);
            Ok(Sample {
                outcome: workload.parse(&run_workload(&wrapped, timeout)?)?,
                daemon: None,
                lost: None,
                exact: None,
                progs: None,
            })
        }
        Condition::PerfTrace => {
            let out = tools.scratch.path().join("perf-trace.txt");
            let mut wrapped: Vec<String> = ["perf", "trace", "-s", "-o"].map(String::from).into();
            wrapped.push(out.display().to_string());
            wrapped.push("--".into());
            wrapped.extend(command);
            let stdout = run_workload(&wrapped, timeout)?;
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            Ok(Sample {
                outcome: workload.parse(&stdout)?,
                daemon: None,
                lost: Some(perf_lost(&text)),
                exact: None,
                progs: None,
            })
        }
    }
}

/// Runs a command to completion and returns its stdout; fails with its stderr.
fn run_workload(command: &[String], timeout: Duration) -> anyhow::Result<String> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", command[0]))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = wait_with_timeout(&mut child, timeout)?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "`{}` failed ({status}): {}",
            command.join(" "),
            last_line(&stderr)
        );
    }
    Ok(stdout)
}

fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a run under a watching profiler gave: the workload's outcome, the profiler's cost,
/// everything it printed, and (statistics pass) what its programs did.
struct Watched {
    outcome: Outcome,
    cost: DaemonCost,
    lines: Vec<String>,
    progs: Option<Vec<ProgRun>>,
}

/// A profiler watching the machine, with its stdout lines arriving on a channel.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: PathBuf,
}

/// How long a profiler may take to say it is attached.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Daemon {
    fn start(args: &[String], ready: impl Fn(&str) -> bool, tools: &Tools) -> anyhow::Result<Self> {
        let stderr = tools.scratch.path().join("daemon-stderr.txt");
        let mut child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {}", args[0]))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match daemon.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = ready(&line);
                    daemon.seen.push(line);
                    if done {
                        return Ok(daemon);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = daemon.child.kill();
                    let _ = daemon.child.wait();
                    let why = std::fs::read_to_string(&daemon.stderr).unwrap_or_default();
                    bail!("`{}` did not become ready: {}", args[0], last_line(&why));
                }
            }
        }
    }

    /// Runs the workload while the daemon watches, then stops the daemon with `signal`
    /// and returns everything it printed; with `stats`, also what its BPF programs did
    /// while the workload ran (statistics on just around it).
    fn around(
        mut self,
        workload: Workload,
        command: &[String],
        timeout: Duration,
        signal: i32,
        stats: bool,
    ) -> anyhow::Result<Watched> {
        let pid = self.child.id();
        let enabled = stats.then(progstats::enable).transpose()?;
        let before = stats.then(|| progstats::snapshot(pid));
        let cpu0 = procfs::cpu_time(pid).ok_or_else(|| anyhow!("profiler {pid} vanished"))?;
        let t0 = Instant::now();
        let result = run_workload(command, timeout);
        let cpu1 = procfs::cpu_time(pid).unwrap_or(cpu0);
        let wall = t0.elapsed();
        let progs = before.map(|b| progstats::runs(&b, &progstats::snapshot(pid), progstats::name));
        drop(enabled);
        let peak_rss_kib = procfs::peak_rss_kib(pid).unwrap_or(0);
        // SAFETY: signalling our own child, which has not been waited for yet.
        unsafe { libc::kill(pid as i32, signal) };
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(30));
        self.seen.extend(self.lines.iter());
        let stdout = result?;
        let status = status?;
        if !status.success() {
            let why = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            bail!("the profiler failed ({status}): {}", last_line(&why));
        }
        let cost = DaemonCost {
            cpu_share: (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64(),
            peak_rss_kib,
        };
        Ok(Watched {
            outcome: workload.parse(&stdout)?,
            cost,
            lines: self.seen,
            progs,
        })
    }
}

/// Reconstructs per-process totals from `top --json` frames: each rate times its interval
/// is the integer the model counted (exact in f64 below 2^52), summed over frames.
fn zcprof_totals(
    lines: &[String],
    wanted: &BTreeMap<u32, Truth>,
) -> anyhow::Result<(BTreeMap<u32, Truth>, u64)> {
    let mut totals: BTreeMap<u32, Truth> = BTreeMap::new();
    let mut lost = 0;
    let mut frames = 0;
    for line in lines {
        let Ok(frame) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if frame["schema"] != "zcprof.top/v1" {
            continue;
        }
        frames += 1;
        let secs = frame["interval_s"].as_f64().unwrap_or(0.0);
        lost = lost.max(frame["lost"]["total"].as_u64().unwrap_or(0));
        for p in frame["processes"].as_array().into_iter().flatten() {
            let pid = p["pid"].as_u64().unwrap_or(0) as u32;
            if !wanted.contains_key(&pid) {
                continue;
            }
            let t = totals.entry(pid).or_default();
            // Both counting layers: io_uring requests are the uring workload's calls.
            for r in [&p["syscall"], &p["io_uring"]] {
                let count = |key: &str| (r[key].as_f64().unwrap_or(0.0) * secs).round() as u64;
                t.calls += count("calls_per_s");
                t.bytes += count("copy_k2u_bytes_per_s")
                    + count("copy_u2k_bytes_per_s")
                    + count("zero_copy_bytes_per_s");
            }
        }
    }
    if frames == 0 {
        bail!("zcprof printed no frame");
    }
    Ok((totals, lost))
}

const READY: &str = "zcbench-bpftrace-ready";
/// What `zcbench empty-hook` prints once its program is attached (bench/src/floor.rs).
const EMPTY_HOOK_READY: &str = "zcbench-empty-hook-ready";

/// Per-process sum of bytes on the same tracepoints zcprof's tracepoint mode uses.
fn bpftrace_script() -> String {
    let probes: Vec<String> = zcprof_common::syscalls::SYSCALLS
        .iter()
        .filter(|s| s.is_syscall())
        .map(|s| format!("tracepoint:syscalls:sys_exit_{}", s.event))
        .collect();
    // The interval probe fires only once every probe is attached and bpftrace is reading
    // its output: the workload may start when its line arrives.
    format!(
        "interval:ms:100 /@ready == 0/ {{ @ready = 1; printf(\"{READY}\\n\"); }}\n{} /args->ret > 0/ {{ @bytes[pid] = sum(args->ret); }}{}",
        probes.join(",\n"),
        io_uring_probe()
    )
}

/// The peers' io_uring part: completions' results summed per process (the completing
/// task's: for requests that complete inline, as the uring workload's do, the submitter),
/// where this kernel has the tracepoint (bpftrace refuses a script naming a missing one).
fn io_uring_probe() -> &'static str {
    let has = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| {
            std::path::Path::new(root)
                .join("events/io_uring/io_uring_complete")
                .is_dir()
        });
    if has {
        "\ntracepoint:io_uring:io_uring_complete /args->res > 0/ { @bytes[pid] = sum(args->res); }"
    } else {
        ""
    }
}

/// The same sum on the one `raw_syscalls:sys_exit` tracepoint (every syscall's exit), kept
/// to the counted syscalls by their numbers.
fn bpftrace_raw_script() -> String {
    let ids: Vec<String> = zcprof_common::syscalls::SYSCALLS
        .iter()
        .filter(|s| s.is_syscall())
        .map(|s| format!("$id == {}", s.nr))
        .collect();
    // The fields go into variables first: bpftrace 0.17 compiles a predicate that reads
    // `args` in a long `||` chain into a ctx access the verifier refuses.
    format!(
        "interval:ms:100 /@ready == 0/ {{ @ready = 1; printf(\"{READY}\\n\"); }}\ntracepoint:raw_syscalls:sys_exit {{ $id = args->id; $ret = args->ret; if ($ret > 0 && ({})) {{ @bytes[pid] = sum($ret); }} }}{}",
        ids.join(" || "),
        io_uring_probe()
    )
}

/// `@bytes[PID]: N` lines that bpftrace prints at exit.
fn bpftrace_totals(lines: &[String]) -> BTreeMap<u32, Truth> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("@bytes[")?;
            let (pid, value) = rest.split_once("]: ")?;
            Some((
                pid.parse().ok()?,
                Truth {
                    calls: 0,
                    bytes: value.trim().parse().ok()?,
                },
            ))
        })
        .collect()
}

/// perf trace reports dropped events as `LOST N events!` lines.
fn perf_lost(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("LOST ")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

fn compare(truth: &BTreeMap<u32, Truth>, seen: &BTreeMap<u32, Truth>, calls: bool) -> Exactness {
    for (pid, want) in truth {
        let got = seen.get(pid).copied().unwrap_or_default();
        if got.bytes != want.bytes || (calls && got.calls != want.calls) {
            return Exactness {
                exact: false,
                detail: Some(format!(
                    "pid {pid}: counted {} calls / {} B, the workload made {} / {} B",
                    got.calls, got.bytes, want.calls, want.bytes
                )),
            };
        }
    }
    Exactness {
        exact: true,
        detail: None,
    }
}

/// Checks the condition's tool is present; `Err` says why it cannot run here.
pub fn available(condition: Condition) -> Result<(), String> {
    let probe = crate::util::quiet_ok;
    match condition {
        Condition::Bpftrace | Condition::BpftraceRaw if !probe("bpftrace", &["--version"]) => {
            Err("bpftrace is not installed".into())
        }
        Condition::Strace if !probe("strace", &["-V"]) => Err("strace is not installed".into()),
        Condition::PerfTrace if !probe("perf", &["trace", "-s", "--", "true"]) => {
            Err("`perf trace -s -- true` does not run on this machine".into())
        }
        _ => Ok(()),
    }
}

pub fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("zcprof-bench-")
        .tempdir()
        .context("creating a scratch directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(pid: u32, calls: u64, bytes: u64) -> BTreeMap<u32, Truth> {
        BTreeMap::from([(pid, Truth { calls, bytes })])
    }

    #[test]
    fn zcprof_frames_add_up_to_exact_integers() {
        // 3 calls and 1000 bytes over 0.3 s, then 7 calls / 64+4096 bytes over a partial
        // 0.123 s: rates are not round numbers, the rebuilt totals must be.
        let secs1: f64 = 0.3;
        let secs2: f64 = 0.123;
        let frame = |secs: f64, calls: f64, k2u: f64, u2k: f64, lost: u64| {
            format!(
                r#"{{"schema":"zcprof.top/v1","interval_s":{secs},"lost":{{"total":{lost}}},"processes":[{{"pid":42,"syscall":{{"calls_per_s":{},"copy_k2u_bytes_per_s":{},"copy_u2k_bytes_per_s":{},"zero_copy_bytes_per_s":0.0}}}},{{"pid":7,"syscall":{{"calls_per_s":1.0}}}}]}}"#,
                calls / secs,
                k2u / secs,
                u2k / secs
            )
        };
        let lines = vec![
            "not json".to_string(),
            frame(secs1, 3.0, 600.0, 400.0, 0),
            frame(secs2, 7.0, 64.0, 4096.0, 2),
        ];
        let (totals, lost) = zcprof_totals(&lines, &truth(42, 0, 0)).unwrap();
        assert_eq!(
            totals[&42],
            Truth {
                calls: 10,
                bytes: 5160
            }
        );
        assert!(!totals.contains_key(&7), "only the workload's processes");
        assert_eq!(lost, 2);
        assert!(compare(&truth(42, 10, 5160), &totals, true).exact);
        let off = compare(&truth(42, 10, 5161), &totals, true);
        assert!(!off.exact);
        // io_uring requests are counted like syscalls (the uring workload's calls).
        let secs = 0.25;
        let uring = format!(
            r#"{{"schema":"zcprof.top/v1","interval_s":{secs},"lost":{{"total":0}},"processes":[{{"pid":42,"syscall":{{"calls_per_s":0.0}},"io_uring":{{"calls_per_s":{},"copy_k2u_bytes_per_s":{},"copy_u2k_bytes_per_s":{},"zero_copy_bytes_per_s":0.0}}}}]}}"#,
            64.0 / secs,
            32.0 * 4096.0 / secs,
            32.0 * 4096.0 / secs
        );
        let (totals, _) = zcprof_totals(&[uring], &truth(42, 0, 0)).unwrap();
        assert_eq!(
            totals[&42],
            Truth {
                calls: 64,
                bytes: 64 * 4096
            }
        );
        assert!(off.detail.unwrap().contains("pid 42"));
        assert!(zcprof_totals(&["{}".into()], &truth(42, 0, 0)).is_err());
    }

    #[test]
    fn bpftrace_and_perf_outputs_are_read() {
        let lines: Vec<String> = [
            "Attaching 22 probes...",
            "",
            "@bytes[123]: 4567",
            "@ready: 1",
        ]
        .map(String::from)
        .into();
        let totals = bpftrace_totals(&lines);
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[&123].bytes, 4567);
        // Without calls, bpftrace is compared on bytes only.
        assert!(compare(&truth(123, 99, 4567), &totals, false).exact);
        assert_eq!(perf_lost("LOST 10 events!\n  x\nLOST 5 events!\n"), 15);
        assert_eq!(perf_lost(" Summary of events:\n"), 0);
    }

    #[test]
    fn bpftrace_script_covers_every_counted_syscall() {
        let script = bpftrace_script();
        for sc in &zcprof_common::syscalls::SYSCALLS {
            // Sub-rows (MSG_ZEROCOPY) share their syscall's tracepoint, listed once.
            let listed = |end: &str| {
                script
                    .matches(&format!("sys_exit_{}{end}", sc.event))
                    .count()
            };
            assert_eq!(listed(",") + listed(" "), 1, "{}", sc.event);
            assert!(
                script.contains(&format!("sys_exit_{},", sc.event))
                    || script.contains(&format!("sys_exit_{} ", sc.event)),
                "{}",
                sc.event
            );
        }
        assert!(script.contains(READY));
    }
}
