//! `zcbench`: the workloads `cargo xtask bench` measures zcprof with, and a startup timer.
//!
//! Each workload forks one worker per core, runs for a fixed time as fast as it can, and
//! prints one JSON object with every worker's PID and the exact calls and bytes it made (io_uring
//! requests counted as calls)
//! (tallied from each return value, in shared memory, like `zcprof-demo`): that is the
//! ground truth a profiler's totals must equal. The parent's own syscalls (printing the
//! report) are not part of it.

mod floor;
mod scaling;
mod startup;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "zcbench", about = "zcprof benchmark workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// 64 B and 4 KiB write/read pairs through a private pipe, per worker
    Storm(workload::Args),
    /// 1 MiB reads from a page-cached file and 1 MiB writes to a tmpfs file, per worker
    Bulk(workload::Args),
    /// sendfile from a page-cached file into a pipe, splice from it to /dev/null, per worker
    Zerocopy(workload::Args),
    /// `dd if=/dev/zero of=/dev/null bs=1`'s loop: 1 B reads and writes, per worker
    DdBs1(workload::Args),
    /// io_uring: batches of 16 READs (4 KiB, page-cached file) and 16 WRITEs (4 KiB, /dev/null)
    /// per `io_uring_enter`, per worker
    Uring(workload::Args),
    /// Time zcprof's load + attach of every probe (and the detach), in this process
    Startup(startup::Args),
    /// Fork this many processes that each read and write a byte once a second, until stdin closes
    Sleepers(scaling::SleepersArgs),
    /// The dashboard's daemon without a terminal: time each refresh's update and draw
    Frames(scaling::FramesArgs),
    /// Attach only an empty program on the syscall layer's default hook, until a signal
    /// (the benchmark's floor)
    EmptyHook,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Storm(args) => workload::run(workload::Kind::Storm, &args),
        Command::Bulk(args) => workload::run(workload::Kind::Bulk, &args),
        Command::Zerocopy(args) => workload::run(workload::Kind::Zerocopy, &args),
        Command::DdBs1(args) => workload::run(workload::Kind::DdBs1, &args),
        Command::Uring(args) => workload::run(workload::Kind::Uring, &args),
        Command::Startup(args) => startup::run(&args),
        Command::EmptyHook => floor::run(),
        Command::Sleepers(args) => scaling::sleepers(&args),
        Command::Frames(args) => scaling::frames(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zcbench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
