//! Small process helpers shared by the xtask commands.

use std::process::{Command, Stdio};

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
