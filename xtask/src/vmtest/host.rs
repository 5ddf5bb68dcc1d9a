//! Host tools the lab needs, installed from Debian's packages when missing.
//!
//! Every machine of this project is a fresh Debian with root, so the lab installs what it uses
//! instead of asking people to: that is what keeps `cargo xtask vmtest` working on a new machine
//! and in CI. Installing is idempotent: packages already present cost one `dpkg-query`.

use std::process::{Command, Output};

use anyhow::{Context as _, bail};

/// Packages the lab itself runs: QEMU, and a static busybox that becomes the guest's userland.
pub const LAB_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static"];

/// Where busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";
pub const QEMU: &str = "qemu-system-x86_64";

/// Whether dpkg has `package` installed (status "ii").
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", package])
        .output()
        .map(|out| out.status.success() && out.stdout.starts_with(b"ii"))
        .unwrap_or(false)
}

/// Installs whichever of `packages` are missing; fails with one sentence naming them if apt
/// cannot provide them even after refreshing its lists.
pub fn ensure_installed(packages: &[&str], apt: &mut Apt) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("vmtest: installing {}", missing.join(" "));
    let install = |apt: &Apt| {
        apt.run(&[&["install", "-y", "--no-install-recommends"], &missing[..]].concat())
    };
    let mut out = install(apt)?;
    if !out.status.success() && !apt.updated {
        // The usual cause is stale package lists on a machine image made long ago.
        apt.update()?;
        out = install(apt)?;
    }
    if !out.status.success() {
        bail!(
            "cannot install {} with apt-get: {}",
            missing.join(", "),
            last_line(&out.stderr)
        );
    }
    Ok(())
}

/// apt-get, remembering whether this process already refreshed the package lists so that it
/// does so at most once (and only when a package was not found).
#[derive(Default)]
pub struct Apt {
    pub updated: bool,
}

impl Apt {
    pub fn update(&mut self) -> anyhow::Result<()> {
        eprintln!("vmtest: apt-get update");
        let out = self.run(&["update"])?;
        self.updated = true;
        if !out.status.success() {
            bail!("apt-get update failed: {}", last_line(&out.stderr));
        }
        Ok(())
    }

    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .with_context(|| format!("running apt-get {}", args.join(" ")))
    }
}

/// The last non-empty line of a tool's stderr: apt puts its verdict there.
pub fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A lab package apt cannot provide (as QEMU would be on a machine without the Debian
    /// archive) ends the lab with one sentence naming it and apt's reason. Real apt-get, so
    /// root only, like the rest of the suite.
    #[test]
    fn an_uninstallable_package_is_named() {
        // SAFETY: a plain syscall without arguments.
        if unsafe { libc::geteuid() } != 0 {
            assert!(std::env::var_os("CI").is_none(), "CI=true needs root");
            eprintln!("skipping: apt-get install needs root");
            return;
        }
        let err = ensure_installed(&["zcprof-no-such-package"], &mut Apt::default())
            .expect_err("no such package");
        let text = format!("{err:#}");
        assert!(
            text.starts_with("cannot install zcprof-no-such-package with apt-get: ")
                && text.contains("zcprof-no-such-package")
                && !text.contains('\n'),
            "{text}"
        );
    }
}
