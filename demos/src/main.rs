//! `zcprof-demo`: list the bundled workloads, or run one and print its exact syscall
//! ground truth as JSON on stdout.
//!
//! Errors are one line on stderr and a non-zero exit: 2 for bad input (unknown
//! scenario or mode, bad size, not enough disk), 1 for a failed run, 3 when the run
//! finished but the payload did not verify (the JSON is still printed), 4 when this
//! kernel cannot run the mode at all (e.g. no io_uring, or SEND_ZC without usage reports).

use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use zcprof_demos::plan::{Amount, DEFAULT_BYTES, Plan};
use zcprof_demos::{DemoError, scenarios};
use zcprof_units::{DurationRule, parse_size};

#[derive(Parser)]
#[command(
    name = "zcprof-demo",
    version,
    about = "Workloads that do one job a copying way and zero-copy ways, with exact syscall ground truth",
    after_help = "Shorthand: `zcprof-demo SCENARIO --mode MODE ...` is `zcprof-demo run SCENARIO ...`.\n\
                  Sizes take binary suffixes: 64k, 4M, 1G."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List scenarios and their modes.
    List {
        /// Print the catalogue as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one scenario in one mode and print its ground truth as JSON.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Scenario name (see `zcprof-demo list`).
    scenario: String,
    /// How to do the job (see `zcprof-demo list`).
    #[arg(long, short)]
    mode: String,
    /// Stream length or file size [default: 16M].
    #[arg(long, value_name = "N", value_parser = parse_size, conflicts_with = "seconds")]
    bytes: Option<u64>,
    /// Run for this long instead, e.g. 30, 0.5, 250ms, 2m (file jobs repeat 16 MiB passes).
    #[arg(long, value_name = "S", value_parser = |t: &str| RUN_LENGTH.parse(t))]
    seconds: Option<Duration>,
    /// Bytes per read/write/splice request.
    #[arg(long, value_name = "N", value_parser = parse_size, default_value = "64k")]
    chunk: u64,
    /// Address that TCP scenarios bind to (always port 0).
    #[arg(long, value_name = "IP", default_value_t = Ipv4Addr::LOCALHOST)]
    bind: Ipv4Addr,
    /// Print the JSON on one line.
    #[arg(long)]
    compact: bool,
}

/// `--seconds`: any length above zero.
const RUN_LENGTH: DurationRule = DurationRule::positive("run length");

/// Inserts `run` when the first argument is not a subcommand or flag, so that
/// `zcprof-demo pipe --mode tee` works.
fn with_implicit_run(mut args: Vec<OsString>) -> Vec<OsString> {
    if let Some(first) = args.get(1).and_then(|a| a.to_str()) {
        let known = ["list", "run", "help"];
        if !first.starts_with('-') && !known.contains(&first) {
            args.insert(1, "run".into());
        }
    }
    args
}

/// Folds clap's multi-line message (text, then a blank line, usage and tips) into the
/// one line this tool promises on stderr.
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = words.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() {
        "invalid arguments".to_owned()
    } else {
        line.to_owned()
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(with_implicit_run(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("zcprof-demo: {}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let kind = e.downcast_ref::<DemoError>();
            let code = if kind.is_some_and(DemoError::is_usage) {
                2
            } else if kind.is_some_and(DemoError::is_unsupported) {
                zcprof_demos::error::EXIT_UNSUPPORTED
            } else {
                1
            };
            eprintln!("zcprof-demo: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::List { json } => list(json),
        Command::Run(args) => run_scenario(args),
    }
}

fn list(json: bool) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, scenarios()).context("write the catalogue")?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in scenarios() {
        writeln!(out, "{:<11} {}", s.name, s.description)?;
        for m in s.modes {
            let tag = if m.name == s.baseline {
                " (baseline)"
            } else {
                ""
            };
            writeln!(out, "    {:<16} {}{tag}", m.name, m.description)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_scenario(args: RunArgs) -> anyhow::Result<ExitCode> {
    let amount = match (args.bytes, args.seconds) {
        (_, Some(s)) => Amount::Seconds(s.as_secs_f64()),
        (Some(n), None) => Amount::Bytes(n),
        (None, None) => Amount::Bytes(DEFAULT_BYTES),
    };
    let chunk = usize::try_from(args.chunk).unwrap_or(usize::MAX);
    let plan = Plan {
        amount,
        chunk,
        bind: args.bind,
    };
    zcprof_demos::worker::install_interrupt_handler();
    let report = zcprof_demos::run(&args.scenario, &args.mode, &plan)?;
    let text = if args.compact {
        serde_json::to_string(&report)
    } else {
        serde_json::to_string_pretty(&report)
    }
    .context("serialize the report")?;
    println!("{text}");
    if !report.verified {
        eprintln!(
            "zcprof-demo: {} / {}: the payload did not verify",
            report.scenario, report.mode
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
