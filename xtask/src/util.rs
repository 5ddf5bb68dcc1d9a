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

/// Makes the kernel SIGKILL `command`'s process when the thread that spawns it ends, so
/// that a killed or crashed xtask (Ctrl-C, a CI timeout's SIGKILL) leaves no QEMU behind,
/// burning a core for its whole timeout. (The thread, not the process: run the child's wait
/// on the thread that spawned it.)
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as i32;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        })
    }
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
    build(packages, true, what)
}

/// `cargo build` of `packages`, optimised or not; returns the directory their binaries are in.
pub fn build(packages: &[&str], release: bool, what: &str) -> anyhow::Result<PathBuf> {
    let mut build = cmd("cargo", &["build"]);
    if release {
        build.arg("--release");
    }
    for package in packages {
        build.args(["--package", package]);
    }
    build.current_dir(workspace_root());
    run(build, what)?;
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn a_child_dies_with_the_thread_that_spawned_it() {
        let child = std::thread::spawn(|| {
            die_with_parent(Command::new("sleep").arg("60").stdin(Stdio::null()))
                .spawn()
                .expect("sleep")
        })
        .join()
        .expect("the spawning thread");
        let mut child = child;
        // The thread has ended: the kernel sent SIGKILL, well before the 60 s.
        let status = child.wait().expect("reaped");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}
