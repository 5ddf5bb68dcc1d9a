//! `cargo xtask`: project chores that are not plain cargo builds — installing the toolchain
//! zcprof needs, running it as root, running the whole test suite, the QEMU kernel lab, the
//! benchmark, and the release directory (`dist`).
//! (The eBPF object itself is built by `zcprof/build.rs`, not here.)

mod apt;
mod bench;
mod dist;
mod run;
mod setup;
mod test;
mod util;
mod vmtest;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "zcprof project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and testing needs (Debian packages, nightly + rust-src,
    /// bpf-linker); skips what is there
    Setup,
    /// Set up, then run the whole suite as CI does (fmt, clippy, tests as root)
    Test,
    /// Set up, build zcprof in release mode and run it as root: `cargo xtask run -- top`
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot real kernels in QEMU and run commands inside them
    Vmtest(vmtest::Args),
    /// Measure what zcprof costs beside bpftrace, strace and perf trace; writes bench/results/
    Bench(bench::Args),
    /// Build the release binaries and write them, the man pages and the bash, zsh and fish
    /// completions into target/dist/ (laid out as an installation prefix)
    Dist(dist::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run().map(|()| ExitCode::SUCCESS),
        Command::Test => test::run_all().map(|()| ExitCode::SUCCESS),
        Command::Run { args } => run::run_zcprof(&args),
        Command::Vmtest(args) => vmtest::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Dist(args) => dist::run_dist(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
