//! `cargo xtask setup`: installs what building and testing zcprof needs, skipping whatever
//! is already there, and stops with one sentence when something cannot be had.
//!
//! - Debian packages: LLVM 22 (bpf-linker links against it), strace (test ground truth),
//!   tmux (dashboard tests), prometheus (the `zcprof serve` scrape test), nginx (the
//!   `record`/`diff` tests serve files with it, from a configuration of their own on a
//!   loopback port), fio (the io_uring layer's ground truth: `--ioengine=io_uring` jobs),
//!   golang-go (the stacks layer's tests build a Go program: a runtime nobody here wrote);
//! - the nightly toolchain with `rust-src` (the eBPF crate is built with `-Z build-std=core`);
//! - bpf-linker, built against LLVM 22 (the LLVM that this nightly rustc uses).

use anyhow::{Context as _, bail};

use crate::util::{cmd, quiet_ok};

/// Debian packages the project needs on every machine.
pub const APT_PACKAGES: [&str; 8] = [
    "llvm-22-dev",
    "libpolly-22-dev",
    "strace",
    "tmux",
    "prometheus",
    "nginx",
    "fio",
    "golang-go",
];
/// Debian packages only `cargo xtask bench` needs (the tools zcprof is compared with).
pub const BENCH_APT_PACKAGES: [&str; 3] = ["bpftrace", "linux-perf", "strace"];
/// The bpf-linker release this project was verified with.
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

pub fn run() -> anyhow::Result<()> {
    apt(&APT_PACKAGES)?;
    nightly()?;
    bpf_linker()?;
    Ok(())
}

/// What `cargo xtask bench` needs on top of [`run`]: the tools it compares zcprof with.
pub fn bench() -> anyhow::Result<()> {
    apt(&BENCH_APT_PACKAGES)
}

/// Installs the Debian packages of `wanted` that are missing (refreshing the package lists
/// once if apt cannot find one), waiting for another apt that holds its locks.
pub fn apt(wanted: &[&str]) -> anyhow::Result<()> {
    crate::apt::ensure_installed(wanted, &mut crate::apt::Apt::default(), "setup")
}

fn nightly() -> anyhow::Result<()> {
    let toolchains = cmd("rustup", &["toolchain", "list"])
        .output()
        .context("rustup is not installed: install Rust with rustup first")?;
    if !String::from_utf8_lossy(&toolchains.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        eprintln!("setup: installing the nightly Rust toolchain");
        let ok = cmd(
            "rustup",
            &[
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ],
        )
        .status()
        .context("running rustup")?
        .success();
        if !ok {
            bail!(
                "cannot install the nightly Rust toolchain with rustup (needed to build the eBPF programs)"
            );
        }
        return Ok(());
    }
    let components = cmd(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .output()
    .context("running rustup")?;
    if !String::from_utf8_lossy(&components.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        eprintln!("setup: adding rust-src to the nightly toolchain");
        let ok = cmd(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", "nightly"],
        )
        .status()
        .context("running rustup")?
        .success();
        if !ok {
            bail!(
                "cannot add rust-src to the nightly toolchain with rustup (needed for -Z build-std=core)"
            );
        }
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if quiet_ok("bpf-linker", &["--version"]) {
        return Ok(());
    }
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
    let path = format!("{LLVM_BIN}:{}", std::env::var("PATH").unwrap_or_default());
    let ok = cmd(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            "llvm-22",
        ],
    )
    .env("PATH", path)
    .status()
    .context("running cargo install")?
    .success();
    if !ok {
        bail!(
            "cannot build bpf-linker {BPF_LINKER_VERSION} from crates.io (cargo install failed, see above)"
        );
    }
    if !quiet_ok("bpf-linker", &["--version"]) {
        bail!("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH");
    }
    Ok(())
}
