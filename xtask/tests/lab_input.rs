//! The lab's bad input, through the real `xtask` binary: a kernel package the archive does
//! not have is reported as skipped with apt's reason (and fails the run with
//! `--require-all`), and an unknown series is one sentence and a non-zero exit.

use std::process::{Command, Output};

fn vmtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("vmtest")
        .args(args)
        .output()
        .expect("xtask runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Needs root (apt-get installs the lab's packages when they are missing); the whole suite
/// runs as root, as CI does.
fn root() -> bool {
    // SAFETY: a plain syscall without arguments.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI=true needs root");
        eprintln!("skipping: needs root");
    }
    root
}

#[test]
fn an_unfetchable_kernel_is_skipped_with_the_reason() {
    if !root() {
        return;
    }
    let package = "linux-image-0.0.0-0-nonexistent-amd64-unsigned";
    let args = ["--kernel", package, "--run", "true", "--quiet"];
    let out = vmtest(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "a skip alone is not a failure: {stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains(package))
        .unwrap_or_else(|| panic!("the summary names {package}: {stdout}"));
    assert!(
        line.contains("skipped: apt-get download failed"),
        "the summary says why: {line}"
    );

    let out = vmtest(&[&args[..], &["--require-all"]].concat());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "--require-all fails on a skip");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("xtask: ") && last.contains(package) && last.contains("--require-all"),
        "one closing sentence names the kernel: {stderr}"
    );
}

#[test]
fn an_unknown_series_is_one_sentence() {
    let out = vmtest(&["--kernel", "9.99", "--run", "true"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("vmtest: "))
        .collect();
    assert_eq!(
        lines,
        [
            "xtask: unknown kernel \"9.99\": give a Debian package name (linux-image-…) or one of 6.1, 6.12"
        ],
        "{stderr}"
    );
}
