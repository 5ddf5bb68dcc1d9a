//! `cargo xtask test`: the whole suite, as CI runs it — set-up, formatting and lints (host
//! crates and the eBPF crate), then every test, as root, on this machine's kernel.

use crate::{
    setup,
    util::{cmd, privileged_cargo, run},
    vmtest,
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
    // The same suite in every kernel of the lab's matrix (kprobes and fentry attach there,
    // unlike on this machine's kernel). A kernel whose package cannot be downloaded is
    // reported as skipped with the reason; any test failing on any kernel fails.
    eprintln!("xtask test: the integration suite in the QEMU kernel lab");
    let report = vmtest::suite::run(Vec::new(), false)?;
    print!("{}", report.summary());
    vmtest::suite::explain_failures(&report);
    report.check(false)
}
