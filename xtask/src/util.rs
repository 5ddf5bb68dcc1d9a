//! Small process helpers shared by the xtask commands.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// A command with arguments, not yet run.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Runs `program args` and reports whether it succeeded, printing nothing.
pub fn quiet_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command to completion; fails with `what` if it does not succeed.
pub fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `cargo …`, under `sudo -E` when not root (the tests and zcprof attach eBPF probes).
pub fn privileged_cargo(args: &[&str]) -> Command {
    if is_root() {
        cmd("cargo", args)
    } else {
        let mut c = Command::new("sudo");
        c.args([
            "-E",
            "env",
            &format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "cargo",
        ]);
        c.args(args);
        c
    }
}

/// The last non-empty line of a tool's stderr (raw or read into a string): apt and most
/// tools put their verdict there.
pub fn last_line(output: impl AsRef<[u8]>) -> String {
    String::from_utf8_lossy(output.as_ref())
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output")
        .trim()
        .to_string()
}

/// Runs a command and returns its stdout, failing with its stderr when it exits non-zero.
pub fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            last_line(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The repository root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo build --release` of `packages` (failing with `what`); returns the directory their
/// binaries are in.
pub fn build_release(packages: &[&str], what: &str) -> anyhow::Result<PathBuf> {
    let mut build = cmd("cargo", &["build", "--release"]);
    for package in packages {
        build.args(["--package", package]);
    }
    build.current_dir(workspace_root());
    run(build, what)?;
    Ok(target_dir().join("release"))
}
