//! `cargo xtask test`: the whole suite, as CI runs it — set-up, formatting and lints (host
//! crates and the eBPF crate), then every test, as root, on this machine's kernel.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{
    setup,
    util::{cmd, privileged_cargo, run},
    vmtest,
};

/// The lab kernels the test command boots: every series of the lab's matrix.
const CI_KERNELS: &[&str] = &["6.1", "6.12"];

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
    let mut suite = privileged_cargo(&[
        "test",
        "--workspace",
        "--exclude",
        "zcprof-ebpf",
        "--no-fail-fast",
    ]);
    let counts = run_counting(&mut suite)?;
    // The same suite in the QEMU kernel lab, where kprobes and fentry attach (unlike on this
    // machine's kernel). `ZCPROF_LAB=0` leaves it out of a quick local run, and says so.
    let lab = if std::env::var_os("ZCPROF_LAB").is_some_and(|v| v == "0") {
        eprintln!("xtask test: the kernel lab is skipped (ZCPROF_LAB=0)");
        Ok(())
    } else {
        eprintln!("xtask test: the integration suite in the QEMU kernel lab");
        vmtest::suite::run(
            CI_KERNELS.iter().map(|k| k.to_string()).collect(),
            false,
            None,
        )
        .and_then(|report| {
            print!("{}", report.summary());
            vmtest::suite::explain_failures(&report);
            report.check(false)
        })
    };
    // One closing line for the host run: cargo prints one `test result:` per test binary,
    // and the last of those may be a doc-test run with nothing in it.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.ignored
    );
    if counts.failed > 0 || !counts.ok {
        bail!("the test suite failed");
    }
    if counts.passed == 0 {
        bail!("the test suite ran no test");
    }
    lab.context("the kernel lab")
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// cargo itself succeeded (a build error fails without any `test result:` line).
    ok: bool,
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_counting(command: &mut Command) -> anyhow::Result<Counts> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let mut counts = Counts::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        add_result_line(&mut counts, &line);
    }
    counts.ok = child.wait().context("waiting for cargo test")?.success();
    Ok(counts)
}

/// `test result: ok. 8 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`
fn add_result_line(counts: &mut Counts, line: &str) {
    let Some(rest) = line.strip_prefix("test result: ") else {
        return;
    };
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(what), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        match what {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.ignored += n,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_result_lines() {
        let mut c = Counts::default();
        add_result_line(
            &mut c,
            "test result: ok. 8 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 4.00s",
        );
        add_result_line(
            &mut c,
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s",
        );
        add_result_line(&mut c, "running 3 tests");
        assert_eq!((c.passed, c.failed, c.ignored), (11, 2, 1));
    }
}
