//! `cargo xtask setup`: installs what building and testing zcprof needs, skipping whatever
//! is already there, and stops with one sentence when something cannot be had.
//!
//! - Debian packages: LLVM 22 (bpf-linker links against it), strace (test ground truth),
//!   tmux (dashboard tests), prometheus (the `zcprof serve` scrape test);
//! - the nightly toolchain with `rust-src` (the eBPF crate is built with `-Z build-std=core`);
//! - bpf-linker, built against LLVM 22 (the LLVM that this nightly rustc uses).

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::util::{cmd, is_root, quiet_ok};

/// Debian packages the project needs on every machine.
pub const APT_PACKAGES: [&str; 5] = [
    "llvm-22-dev",
    "libpolly-22-dev",
    "strace",
    "tmux",
    "prometheus",
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

/// Installs the Debian packages of `wanted` that are missing (one `apt-get update` first,
/// only when something is missing).
pub fn apt(wanted: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the Debian packages {} are missing and installing them needs root: run `sudo apt-get install {}` or run this as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    let update = cmd("apt-get", &["update", "-qq"])
        .status()
        .context("running apt-get")?;
    if !update.success() {
        bail!(
            "`apt-get update` failed: the Debian package mirror is not reachable from this machine"
        );
    }
    let mut install = cmd(
        "apt-get",
        &["install", "-y", "-qq", "--no-install-recommends"],
    );
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    if !install.status().context("running apt-get")?.success() {
        bail!(
            "cannot install {} from Debian's packages (apt-get failed, see above)",
            missing.join(" ")
        );
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
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
