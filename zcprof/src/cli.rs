//! The command line: parsing, validation, and dispatch to the subcommands.
//!
//! Bad input gets one line on stderr and exit status 2, before anything else happens.

use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand, error::ErrorKind};

use crate::{
    cmd::{
        run::{self, RunOptions},
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
    #[arg(long, global = true, value_enum, default_value_t = SyscallProbe::Raw)]
    syscall_probe: SyscallProbe,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show processes ranked by copied bytes per second, every interval
    Top(TopArgs),
    /// Run a command under the profiler and summarise what it and its children copied
    Run(RunArgs),
    /// Show what this kernel allows: BTF, lockdown, privileges, tracefs, and how each probe
    /// attaches (or why it cannot)
    Doctor(DoctorArgs),
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
    }
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
