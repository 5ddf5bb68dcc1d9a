//! The command line: parsing, validation, and dispatch to the subcommands.
//!
//! Bad input gets one line on stderr and exit status 2, before anything else happens.

use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, error::ErrorKind};
use zcprof_units::{DurationRule, ParseError};

use crate::{
    cmd::{
        demo::{self, DemoCommand},
        diff::{self, DiffOptions},
        flame::{self, FlameOptions},
        record::{self, RecordOptions, Subject},
        run::{self, RunOptions},
        serve::{self, ServeOptions},
        top::{self, TopOptions},
    },
    probes::{LoadOptions, SyscallProbe},
    report::top::Filter,
};

mod generate;

/// `zcprof --version`: the version and the commit it was built from (zcprof/build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ZCPROF_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "zcprof",
    version = VERSION,
    about = "Shows which processes copy bytes between user space and the kernel, and proves when a zero-copy change removed the copies.",
    after_help = "Run as root (or with CAP_BPF and CAP_PERFMON). Without a subcommand, `top` runs."
)]
pub struct Cli {
    /// BTF to load the probes against [default: /sys/kernel/btf/vmlinux]
    #[arg(long, global = true, value_name = "PATH")]
    btf: Option<PathBuf>,

    /// How the syscall layer sees syscall exits
    #[arg(long, global = true, value_enum, default_value_t = SyscallProbe::Btf)]
    syscall_probe: SyscallProbe,

    /// Leave a layer off (its figures are then not counted; a process that uses io_uring
    /// with the io_uring layer off gets a caveat)
    #[arg(long, global = true, value_enum, value_name = "LAYER")]
    disable_layer: Vec<OptionalLayer>,

    /// Also split each process's bytes by the kinds of descriptor they moved between
    /// (file, TCP, UDP, Unix socket, pipe, …): the flows layer. Costs a few kernel reads per
    /// counted syscall, so it is off unless asked for
    #[arg(long, global = true)]
    flows: bool,

    /// Also split each process's syscall-layer figures by thread (tid and thread name): the
    /// threads layer. One more map update per counted syscall, so it is off unless asked for
    #[arg(long, global = true)]
    threads: bool,

    /// Also sample the user call stacks that move the bytes, weighted by bytes: one stack
    /// each time a process's bytes of one syscall cross a multiple of --stack-period (the
    /// stacks layer; `run`, `record`, `zcprof flame`)
    #[arg(long, global = true)]
    stacks: bool,

    /// Bytes per stack sample with --stacks (512B to 1GiB; e.g. 64KiB, 4MiB): smaller
    /// periods see smaller call sites and cost more
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_stack_period, default_value = "1MiB")]
    stack_period: u32,

    /// With --stacks, also sample at the kernel layer's copy probes, with the kernel stack
    /// at the copy above the user stack: which kernel path copies (needs the kernel layer's
    /// probes: fentry or kprobes, or the skb_copy_datagram_iovec tracepoint)
    #[arg(long, global = true, requires = "stacks")]
    kernel_stacks: bool,

    /// Also count the copies processes make inside their own memory through their copy
    /// routines (glibc's memcpy/memmove/mempcpy, Go's runtime.memmove): the user layer.
    /// A uprobe traps into the kernel at every copy call (about 1 µs on hardware, some 20 µs
    /// in a VM), so it is off unless asked for
    #[arg(long, global = true)]
    user_copies: bool,

    /// Also sample where each process's CPU time goes (the cpu layer): the share spent in
    /// kernel and user-space copy routines, from a software cpu-clock event on every CPU
    #[arg(long, global = true)]
    cpu: bool,

    /// Samples per second per CPU with --cpu (1 to the kernel's
    /// perf_event_max_sample_rate): more samples, smaller error, more cost
    #[arg(long, global = true, value_name = "HZ", value_parser = parse_cpu_frequency, default_value_t = zcprof_common::cpu::DEFAULT_FREQUENCY)]
    cpu_frequency: u64,

    /// Also say what only matters when asking why (e.g. how many kernel-layer probes are
    /// unavailable; `zcprof doctor` lists each with its reason)
    #[arg(long, short = 'v', global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

/// A layer `--disable-layer` can leave off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OptionalLayer {
    #[value(name = "io_uring")]
    IoUring,
    #[value(name = "mapped")]
    Mapped,
}

/// `--probe-stats`, for the commands that watch live (`top`, `run`, `serve`).
#[derive(Debug, Default, clap::Args)]
struct ProbeStatsArg {
    /// Also show the probes' own cost (ns per program run, share of one CPU) from the
    /// kernel's BPF run-time statistics, on while zcprof runs; they add about 20 ns to
    /// every program run, so they are off unless asked for
    #[arg(long)]
    probe_stats: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show processes ranked by copied bytes per second, every interval (the full-screen
    /// dashboard on a terminal; text lines otherwise or with --once/--json)
    Top(TopArgs),
    /// Run a command under the profiler and summarise what it and its children copied
    Run(RunArgs),
    /// Run the bundled demo workloads under the profiler and compare their modes
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Record a command, chosen processes or the machine to a file, for `zcprof diff`
    Record(RecordArgs),
    /// Compare two recordings: did copying go down, by how much, where?
    Diff(DiffArgs),
    /// Draw a flame graph of a recording's copied bytes by call stack (`record --stacks`)
    Flame(FlameArgs),
    /// Expose live per-process counters to Prometheus (OpenMetrics over HTTP)
    Serve(ServeArgs),
    /// Show what this kernel allows: BTF, lockdown, privileges, tracefs, and how each probe
    /// attaches (or why it cannot)
    Doctor(DoctorArgs),
}

#[derive(Debug, clap::Args)]
struct RecordArgs {
    /// Write the recording here (atomically, mode 0600)
    #[arg(long, short = 'o', value_name = "FILE", required = true)]
    output: PathBuf,
    /// Stop after this long (a recorded command is sent SIGTERM), e.g. 500ms, 30s, 5m, 1h
    #[arg(long, short = 'd', value_parser = parse_duration, value_name = "D")]
    duration: Option<Duration>,
    /// Record this process and its descendants (repeatable)
    #[arg(long, short = 'p', value_name = "PID", conflicts_with_all = ["comm", "command"])]
    pid: Vec<u32>,
    /// Record processes whose name contains this
    #[arg(
        long,
        short = 'c',
        value_name = "SUBSTRING",
        value_parser = parse_comm,
        conflicts_with = "command"
    )]
    comm: Option<String>,
    /// Record only processes in this cgroup v2 (a path such as /system.slice/nginx.service,
    /// or its directory under the cgroup2 mount) or below it (repeatable)
    #[arg(
        long,
        value_name = "PATH",
        value_parser = crate::host::cgroup::parse_path,
        conflicts_with_all = ["command", "pid"]
    )]
    cgroup: Vec<String>,
    /// The command to run and record, after `--`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
struct DiffArgs {
    /// The recording from before the change
    before: PathBuf,
    /// The recording from after the change
    after: PathBuf,
    /// Compare per delivered byte: both runs delivered N bytes (default: totals when both
    /// commands ran to completion, per second for time-bounded recordings of similar
    /// runtime, otherwise inconclusive)
    #[arg(long, value_name = "N", value_parser = zcprof_units::parse_size)]
    per_bytes_delivered: Option<u64>,
    /// Compare only these processes: a cgroup path (`/system.slice/nginx.service`: the
    /// processes in it or below), or a command as the diff names it (`nginx > nginx`) or a
    /// process name; totals and the verdict are theirs
    #[arg(long, value_name = "COMMAND|CGROUP")]
    only: Option<String>,
    /// Exit 1 when this holds, e.g. copied-increase>5%, regressions>0 (repeatable)
    #[arg(long, value_name = "CONDITION")]
    fail_if: Vec<zcprof_recording::diff::threshold::Threshold>,
    /// Print JSON (schema zcprof.diff/v1)
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print Markdown, for a pull-request comment
    #[arg(long)]
    markdown: bool,
    /// Refuse a recording larger than this, e.g. 1G [default: 256M]
    #[arg(long, value_name = "SIZE", value_parser = zcprof_units::parse_size)]
    max_size: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct FlameArgs {
    /// The recording (made with `record --stacks`); with --diff, BEFORE and AFTER
    #[arg(value_name = "RECORDING", required = true, num_args = 1..=2)]
    recordings: Vec<PathBuf>,
    /// Write the graph here (atomically, mode 0600)
    #[arg(long, short = 'o', value_name = "FILE", required = true)]
    output: PathBuf,
    /// A differential flame graph of two recordings, BEFORE AFTER: the after stacks,
    /// coloured by how their bytes changed (red: more, blue: fewer)
    #[arg(long)]
    diff: bool,
    /// The zero-copy bytes (sendfile, splice, MSG_ZEROCOPY, …) instead of the copied ones
    #[arg(long)]
    zero_copy: bool,
    /// The kernel layer's stacks (`record --stacks --kernel-stacks`) instead of the
    /// syscall layer's: each user stack continued by the kernel stack at the copy (frames
    /// marked _[k])
    #[arg(long)]
    kernel: bool,
    /// Write the folded stacks (`a;b;c BYTES` lines, as flamegraph.pl and inferno read
    /// them; with --diff, `a;b;c BEFORE AFTER`) instead of an SVG
    #[arg(long)]
    folded: bool,
    /// Refuse a recording larger than this, e.g. 1G [default: 256M]
    #[arg(long, value_name = "SIZE", value_parser = zcprof_units::parse_size)]
    max_size: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to serve /metrics on (loopback unless told otherwise)
    #[arg(long, value_name = "ADDR:PORT", default_value = serve::DEFAULT_LISTEN)]
    listen: std::net::SocketAddr,
    /// How often counters are refreshed from the kernel
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Export zcprof's own process like any other (by default its answers to scrapes and
    /// its reads of /proc are left out, as in `top` and recordings)
    #[arg(long)]
    include_self: bool,
    /// Only processes in this cgroup v2 (a path, or its directory under the cgroup2 mount)
    /// or below it (repeatable)
    #[arg(long, value_name = "PATH", value_parser = crate::host::cgroup::parse_path)]
    cgroup: Vec<String>,
    #[command(flatten)]
    stats: ProbeStatsArg,
}

#[derive(Debug, clap::Args)]
struct DoctorArgs {
    /// Print the report as JSON (schema zcprof.doctor/v1)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, clap::Args)]
struct TopArgs {
    /// Print one interval and exit
    #[arg(long)]
    once: bool,
    /// Length of an interval, e.g. 1, 0.5, 250ms, 2s, 1m
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_interval)]
    interval: Option<Duration>,
    /// One JSON object per interval (schema zcprof.top/v1, see README)
    #[arg(long)]
    json: bool,
    /// CSV: a header, then one row per process and a machine row per interval
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Only this process (repeatable)
    #[arg(long, short = 'p', value_name = "PID")]
    pid: Vec<u32>,
    /// Only processes whose name contains this
    #[arg(long, short = 'c', value_name = "SUBSTRING", value_parser = parse_comm)]
    comm: Option<String>,
    /// Only processes in this cgroup v2 (a path, or its directory under the cgroup2 mount)
    /// or below it (repeatable)
    #[arg(long, value_name = "PATH", value_parser = crate::host::cgroup::parse_path)]
    cgroup: Vec<String>,
    /// At most this many processes per text frame
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// List and count zcprof's own process like any other (by default it is left out of
    /// the table and the machine total, and its cost is shown apart in the header)
    #[arg(long)]
    include_self: bool,
    #[command(flatten)]
    stats: ProbeStatsArg,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Print the summary as JSON (schema zcprof.run/v1, see README)
    #[arg(long)]
    json: bool,
    /// Write the summary to this file (atomically) instead of stderr
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also list each process's busiest files and sockets, named best-effort from /proc
    /// while it runs (else by the kernel's last path component); turns --flows on
    #[arg(long)]
    files: bool,
    #[command(flatten)]
    stats: ProbeStatsArg,
    /// The command to run, after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// `top -i` and `serve -i`: refreshing faster than every 10 ms costs more than it shows.
const INTERVAL: DurationRule = DurationRule::between(
    "interval",
    Duration::from_millis(10),
    Duration::from_secs(86_400),
);
/// `record -d`.
const RECORDING: DurationRule = DurationRule::between(
    "duration",
    Duration::from_millis(10),
    Duration::from_secs(86_400),
);

/// `1`, `0.5`, `250ms`, `2s`, `5m`, `1h`: from 10 ms to a day.
fn parse_interval(text: &str) -> Result<Duration, ParseError> {
    INTERVAL.parse(text)
}

/// A recording length: the same grammar and range as an interval; the messages say
/// "duration".
fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    RECORDING.parse(text)
}

/// A `--comm` substring: not empty, which every name contains.
fn parse_comm(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("an empty name would match every process (leave --comm out for all)".into());
    }
    Ok(text.to_string())
}

/// `--stack-period`: a size from 512 bytes to 1 GiB (the kernel side keeps it in 32 bits;
/// below 512 bytes a sample would cost more than the copy it stands for).
fn parse_stack_period(text: &str) -> Result<u32, String> {
    const MIN: u64 = 512;
    const MAX: u64 = 1 << 30;
    let size = zcprof_units::parse_size(text).map_err(|err| err.to_string())?;
    if !(MIN..=MAX).contains(&size) {
        return Err(format!(
            "{text} is not a usable stack period: give 512B to 1GiB"
        ));
    }
    Ok(size as u32)
}

/// The binaries the user layer probes from the start besides the host's libc: the program
/// of `run -- CMD` / `record -- CMD`, the executables of `record --pid` (the Go ones among
/// them get a probe on `runtime.memmove`).
fn user_binaries(command: &Option<Command>) -> Vec<PathBuf> {
    let program = |cmd: &[OsString]| cmd.first().and_then(run::resolve);
    match command {
        Some(Command::Run(args)) => program(&args.command).into_iter().collect(),
        Some(Command::Record(args)) => program(&args.command)
            .into_iter()
            .chain(
                args.pid
                    .iter()
                    .map(|pid| PathBuf::from(format!("/proc/{pid}/exe"))),
            )
            .collect(),
        _ => Vec::new(),
    }
}

/// `--cpu-frequency`: a whole number of samples per second, from 1 to the kernel's
/// `perf_event_max_sample_rate` (above it perf_event_open fails; 0 samples nothing).
fn parse_cpu_frequency(text: &str) -> Result<u64, String> {
    let hz: u64 = text
        .parse()
        .map_err(|_| format!("{text} is not a sampling frequency: give a whole number of Hz"))?;
    let max = crate::host::perf_event_max_sample_rate();
    if hz == 0 {
        return Err("a sampling frequency of 0 Hz samples nothing: give 1 Hz or more".into());
    }
    if let Some(max) = max.filter(|&max| hz > max) {
        return Err(format!(
            "{hz} Hz is above this kernel's limit (kernel.perf_event_max_sample_rate = {max})"
        ));
    }
    Ok(hz)
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<ExitCode> {
    // The user-facing command line plus the hidden `generate`, which is added here rather
    // than to `Cli` so that the man pages and completions made from `Cli` do not list it.
    let matches = match Cli::command()
        .subcommand(generate::command())
        .try_get_matches()
    {
        Ok(matches) => matches,
        Err(err) => return Ok(report_usage_error(err)),
    };
    if let Some((generate::NAME, args)) = matches.subcommand() {
        return generate::run(args);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return Ok(report_usage_error(err)),
    };
    crate::stdio::set_verbose(cli.verbose);
    let load = LoadOptions {
        btf: cli.btf,
        syscall_probe: cli.syscall_probe,
        disabled: cli
            .disable_layer
            .iter()
            .map(|l| match l {
                OptionalLayer::IoUring => crate::probes::Layer::IoUring,
                OptionalLayer::Mapped => crate::probes::Layer::Mapped,
            })
            .collect(),
        flows: cli.flows,
        threads: cli.threads,
        stacks: cli.stacks.then_some(cli.stack_period),
        kernel_stacks: cli.kernel_stacks,
        user_copies: cli.user_copies,
        user_binaries: if cli.user_copies {
            user_binaries(&cli.command)
        } else {
            Vec::new()
        },
        // `run`, `record -- CMD` and `record --pid` report only the processes they follow:
        // sampling the rest of the machine would cost for stacks nobody sees.
        stacks_followed: match &cli.command {
            Some(Command::Run(_)) => true,
            Some(Command::Record(args)) => !args.command.is_empty() || !args.pid.is_empty(),
            _ => false,
        },
        files: matches!(&cli.command, Some(Command::Run(args)) if args.files),
        cpu: cli.cpu.then_some(cli.cpu_frequency),
        probe_stats: match &cli.command {
            Some(Command::Top(TopArgs { stats, .. }))
            | Some(Command::Run(RunArgs { stats, .. }))
            | Some(Command::Serve(ServeArgs { stats, .. })) => stats.probe_stats,
            _ => false,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command.unwrap_or(Command::Top(TopArgs {
        limit: 20,
        ..TopArgs::default()
    })) {
        Command::Top(args) => {
            let opts = TopOptions {
                interval: args.interval.unwrap_or(Duration::from_secs(1)),
                once: args.once,
                json: args.json,
                csv: args.csv,
                filter: Filter {
                    pids: args.pid,
                    comm: args.comm,
                    cgroups: args.cgroup,
                },
                limit: args.limit,
                include_self: args.include_self,
            };
            runtime.block_on(top::run(&load, opts))
        }
        Command::Doctor(args) => {
            runtime.block_on(async { crate::cmd::doctor::run(&load, args.json) })
        }
        Command::Run(args) => runtime.block_on(run::run(
            &load,
            RunOptions {
                json: args.json,
                output: args.output,
                command: args.command,
            },
        )),
        Command::Demo(command) => runtime.block_on(demo::run(&load, command)),
        Command::Record(args) => {
            let subject = if !args.command.is_empty() {
                Subject::Command(args.command)
            } else if !args.pid.is_empty() {
                Subject::Pids(args.pid)
            } else if let Some(comm) = args.comm {
                Subject::Comm(comm)
            } else {
                Subject::Machine
            };
            runtime.block_on(record::run(
                &load,
                RecordOptions {
                    output: args.output,
                    duration: args.duration,
                    subject,
                    cgroups: args.cgroup,
                },
            ))
        }
        Command::Diff(args) => Ok(diff::run(DiffOptions {
            before: args.before,
            after: args.after,
            per_bytes_delivered: args.per_bytes_delivered,
            fail_if: args.fail_if,
            max_size: args.max_size.unwrap_or(diff::DEFAULT_MAX_SIZE),
            only: args.only,
            format: if args.json {
                diff::Format::Json
            } else if args.markdown {
                diff::Format::Markdown
            } else {
                diff::Format::Text
            },
        })),
        Command::Flame(args) => {
            if args.diff != (args.recordings.len() == 2) {
                return Ok(report_usage_error(Cli::command().error(
                    ErrorKind::WrongNumberOfValues,
                    "give one RECORDING, or BEFORE and AFTER with --diff",
                )));
            }
            Ok(flame::run(FlameOptions {
                recordings: args.recordings,
                diff: args.diff,
                zero_copy: args.zero_copy,
                kernel: args.kernel,
                folded: args.folded,
                output: args.output,
                max_size: args.max_size.unwrap_or(diff::DEFAULT_MAX_SIZE),
            }))
        }
        Command::Serve(args) => runtime.block_on(serve::run(
            &load,
            ServeOptions {
                listen: args.listen,
                interval: args.interval,
                include_self: args.include_self,
                cgroups: args.cgroup,
            },
        )),
    }
}

/// Help and version go to stdout with status 0; anything else is one line on stderr and
/// status 2.
fn report_usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            match crate::stdio::print(&err.render().to_string()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => crate::stdio::exit_on_error(&err.into()),
            }
        }
        _ => {
            crate::stdio::say!("zcprof: {}", first_line(&err.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// Clap's message without its usage block, on one line: the first line, joined with the
/// next when it only introduces it ("…were not provided:" / "  <CMD>...").
fn first_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match lines.next() {
        Some(next) if first.ends_with(':') => format!("{first} {next}"),
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("abc").is_err());
        assert!(parse_interval("NaN").is_err());
        assert!(parse_interval("1e9").is_err());
    }

    /// Issue 18: `--duration` took no minutes or hours, and its errors said "interval".
    #[test]
    fn record_durations_take_minutes_and_hours_and_say_duration() {
        let duration = |d: &str| match Cli::try_parse_from(["zcprof", "record", "-o", "x", "-d", d])
        {
            Ok(Cli {
                command: Some(Command::Record(args)),
                ..
            }) => Ok(args.duration),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(first_line(&err.render().to_string())),
        };
        assert_eq!(duration("1m"), Ok(Some(Duration::from_secs(60))));
        assert_eq!(duration("1h"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(duration("90s"), Ok(Some(Duration::from_secs(90))));
        let err = duration("0").expect_err("0 is too short");
        assert!(
            err.contains("the duration must be at least 10ms") && !err.contains("interval"),
            "{err}"
        );
        let err = duration("2d").expect_err("no days");
        assert!(err.contains("`2d` is not a duration"), "{err}");
        let err = Cli::try_parse_from(["zcprof", "top", "-i", "25h"]).expect_err("too long");
        let line = first_line(&err.render().to_string());
        assert!(line.contains("the interval must be at most 24h"), "{line}");
    }

    #[test]
    fn usage_errors_are_one_line() {
        let err = Cli::try_parse_from(["zcprof", "top", "--interval", "0"]).unwrap_err();
        let line = first_line(&err.render().to_string());
        assert!(line.contains("at least 10ms"), "{line}");
        assert!(!line.contains('\n'));
        let err = Cli::try_parse_from(["zcprof", "run"]).unwrap_err();
        let line = first_line(&err.render().to_string());
        assert!(line.contains("not provided: <CMD>"), "{line}");
    }

    #[test]
    fn delivered_bytes_are_a_size() {
        let delivered = |n: &str| {
            Cli::try_parse_from(["zcprof", "diff", "a", "b", "--per-bytes-delivered", n])
                .map(|cli| match cli.command {
                    Some(Command::Diff(args)) => args.per_bytes_delivered,
                    other => panic!("{other:?}"),
                })
                .map_err(|err| first_line(&err.render().to_string()))
        };
        assert_eq!(delivered("4M"), Ok(Some(4 << 20)));
        assert_eq!(delivered("4194304"), Ok(Some(4 << 20)));
        let err = delivered("0").expect_err("0 bytes");
        assert!(err.contains("greater than 0"), "{err}");
        let err = delivered("4X").expect_err("no such suffix");
        assert!(err.contains("`4X` is not a size"), "{err}");
    }

    #[test]
    fn record_subjects_exclude_each_other() {
        let ok = |args: &[&str]| Cli::try_parse_from(args).map(|_| ()).map_err(|e| e.kind());
        assert!(ok(&["zcprof", "record", "-o", "x", "--", "dd", "-x"]).is_ok());
        assert!(ok(&["zcprof", "record", "-o", "x", "--pid", "1", "--pid", "2"]).is_ok());
        assert!(ok(&["zcprof", "record", "-o", "x", "--comm", "nginx", "-d", "5s"]).is_ok());
        assert!(ok(&["zcprof", "record", "-o", "x"]).is_ok());
        assert!(
            ok(&["zcprof", "record", "--pid", "1"]).is_err(),
            "-o is required"
        );
        assert!(ok(&["zcprof", "record", "-o", "x", "--pid", "1", "--", "ls"]).is_err());
        assert!(ok(&["zcprof", "record", "-o", "x", "--pid", "1", "--comm", "a"]).is_err());
        assert!(
            ok(&[
                "zcprof",
                "diff",
                "a",
                "b",
                "--fail-if",
                "copied-increase>5%"
            ])
            .is_ok()
        );
        assert!(ok(&["zcprof", "diff", "a", "b", "--fail-if", "nonsense"]).is_err());
        assert!(ok(&["zcprof", "diff", "a", "b", "--json", "--markdown"]).is_err());
        assert!(ok(&["zcprof", "serve", "--listen", "127.0.0.1:0"]).is_ok());
        assert!(ok(&["zcprof", "serve", "--listen", "localhost"]).is_err());
        assert!(ok(&["zcprof", "top", "--csv", "--json"]).is_err());
    }

    #[test]
    fn run_takes_the_rest_of_the_line() {
        let cli =
            Cli::try_parse_from(["zcprof", "run", "--", "dd", "--help", "-x"]).expect("parses");
        match cli.command {
            Some(Command::Run(args)) => assert_eq!(args.command, ["dd", "--help", "-x"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["zcprof", "run"]).is_err());
    }
}
