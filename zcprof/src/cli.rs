//! The command line: parsing, validation, and dispatch to the subcommands.
//!
//! Bad input gets one line on stderr and exit status 2, before anything else happens.

use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand, error::ErrorKind};

use crate::{
    cmd::{
        demo::{self, DemoCommand},
        diff::{self, DiffOptions},
        record::{self, RecordOptions, Subject},
        run::{self, RunOptions},
        serve::{self, ServeOptions},
        top::{self, TopOptions},
    },
    probes::{LoadOptions, SyscallProbe},
    report::top::Filter,
};

#[derive(Debug, Parser)]
#[command(
    name = "zcprof",
    version,
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

    #[command(subcommand)]
    command: Option<Command>,
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
    /// Stop after this long (a recorded command is sent SIGTERM), e.g. 30s, 500ms
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
        conflicts_with = "command"
    )]
    comm: Option<String>,
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
    /// Normalise per delivered byte: both runs delivered N bytes (default: per second)
    #[arg(long, value_name = "N", value_parser = crate::cli::parse_size)]
    per_bytes_delivered: Option<u64>,
    /// Exit 1 when this holds, e.g. copied-increase>5%, regressions>0 (repeatable)
    #[arg(long, value_name = "CONDITION")]
    fail_if: Vec<zcprof_recording::diff::threshold::Threshold>,
    /// Print JSON (schema zcprof.diff/v1)
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print Markdown, for a pull-request comment
    #[arg(long)]
    markdown: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to serve /metrics on (loopback unless told otherwise)
    #[arg(long, value_name = "ADDR:PORT", default_value = serve::DEFAULT_LISTEN)]
    listen: std::net::SocketAddr,
    /// How often counters are refreshed from the kernel
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
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
    /// Length of an interval, e.g. 1, 0.5, 250ms, 2s
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
    #[arg(long, short = 'c', value_name = "SUBSTRING")]
    comm: Option<String>,
    /// At most this many processes per text frame
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Print the summary as JSON (schema zcprof.run/v1, see README)
    #[arg(long)]
    json: bool,
    /// Write the summary to this file (atomically) instead of stderr
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// The command to run, after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// Parses `1`, `0.5`, `250ms`, `2s`: a positive duration of at least 10 ms.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 1, 0.5, 250ms or 2s)"))?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds < 0.01 {
        return Err(format!("the interval must be at least 10ms, not `{text}`"));
    }
    if seconds > 86_400.0 {
        return Err(format!("the interval must be at most a day, not `{text}`"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses the command line and runs the subcommand.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return Ok(report_usage_error(err)),
    };
    let load = LoadOptions {
        btf: cli.btf,
        syscall_probe: cli.syscall_probe,
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
                },
                limit: args.limit,
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
                },
            ))
        }
        Command::Diff(args) => Ok(diff::run(DiffOptions {
            before: args.before,
            after: args.after,
            per_bytes_delivered: args.per_bytes_delivered,
            fail_if: args.fail_if,
            format: if args.json {
                diff::Format::Json
            } else if args.markdown {
                diff::Format::Markdown
            } else {
                diff::Format::Text
            },
        })),
        Command::Serve(args) => runtime.block_on(serve::run(
            &load,
            ServeOptions {
                listen: args.listen,
                interval: args.interval,
            },
        )),
    }
}

/// A recording length: like an interval, up to a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_interval(text)
}

/// A byte count: `4194304`, `4M`, `64k`, `1G`, `16MiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{text}` is not a size (try 4194304, 64k, 4M or 1G)"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 4194304, 64k, 4M or 1G)"))?;
    let n = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if n == 0 {
        return Err("the number of delivered bytes must be more than 0".into());
    }
    Ok(n)
}

/// Help and version go to stdout with status 0; anything else is one line on stderr and
/// status 2.
fn report_usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("zcprof: {}", first_line(&err.render().to_string()));
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
    fn sizes() {
        assert_eq!(parse_size("4194304"), Ok(4_194_304));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("4X").is_err());
        assert!(parse_size("99999999999T").is_err());
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
