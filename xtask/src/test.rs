//! `cargo xtask test`: the whole suite, as CI runs it — set-up, formatting and lints (host
//! crates and the eBPF crate), then every test, as root, on this machine's kernel.

use crate::{
    setup,
    util::{cmd, privileged_cargo, run},
};

pub fn run_all() -> anyhow::Result<()> {
    setup::run()?;
    run(
        cmd("cargo", &["fmt", "--all", "--", "--check"]),
        "`cargo fmt --check` (run `cargo fmt --all`)",
    )?;
    run(
        cmd(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--exclude",
                "zcprof-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        "clippy on the host crates",
    )?;
    run(
        cmd(
            "cargo",
            &[
                "+nightly",
                "clippy",
                "--package",
                "zcprof-ebpf",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--",
                "-D",
                "warnings",
            ],
        ),
        "clippy on the eBPF crate",
    )?;
    run(
        privileged_cargo(&[
            "test",
            "--workspace",
            "--exclude",
            "zcprof-ebpf",
            "--no-fail-fast",
        ]),
        "the test suite",
    )?;
    Ok(())
}
