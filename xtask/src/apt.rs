//! Debian packages through apt-get, for `cargo xtask setup`, the bench and the kernel lab.
//!
//! Every machine of this project is a fresh Debian with root, so xtask installs what it uses
//! instead of asking people to. Installing is idempotent: packages already present cost one
//! `dpkg-query`. Another apt may be running at the same time (unattended upgrades on a user's
//! machine, a second test installing at once): apt-get then waits for its locks, for up to
//! [`LOCK_WAIT`], instead of failing. `DPkg::Lock::Timeout` makes apt-get wait for the dpkg
//! lock itself; `apt-get update` ignores it for its lists lock (apt 2.6), so a run that failed
//! only for a lock is retried here until the same deadline.

use std::{
    path::Path,
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::util::last_line;

/// How long apt-get waits for another apt to finish: a large upgrade takes minutes.
pub const LOCK_WAIT: Duration = Duration::from_secs(600);
/// How often a run that found a lock held is retried.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// Whether dpkg has `package` installed (status "ii").
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", package])
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"ii"))
}

/// Installs whichever of `packages` are missing; fails with one sentence naming them if apt
/// cannot provide them even after refreshing its lists. `who` prefixes the progress lines.
pub fn ensure_installed(packages: &[&str], apt: &mut Apt, who: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::util::is_root() {
        bail!(
            "the Debian packages {} are missing and installing them needs root: run `sudo apt-get install {}` or run this as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("{who}: installing {}", missing.join(" "));
    let install = |apt: &Apt| {
        apt.run(&[&["install", "-y", "--no-install-recommends"], &missing[..]].concat())
    };
    let mut out = install(apt)?;
    if !out.status.success() && !apt.updated {
        // The usual cause is stale package lists on a machine image made long ago.
        eprintln!("{who}: apt-get update");
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
        let out = self.run(&["update"])?;
        self.updated = true;
        if !out.status.success() {
            bail!("apt-get update failed: {}", last_line(&out.stderr));
        }
        Ok(())
    }

    /// `apt-get ARGS` in the current directory.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.run_in(Path::new("."), args)
    }

    /// `apt-get ARGS` in `dir` (where `apt-get download` leaves its .deb), waiting for apt's
    /// locks as the module header says.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
        let deadline = Instant::now() + LOCK_WAIT;
        let timeout = format!("DPkg::Lock::Timeout={}", LOCK_WAIT.as_secs());
        let mut said = false;
        loop {
            let out = Command::new("apt-get")
                .args(["-o", &timeout])
                .args(args)
                .current_dir(dir)
                .env("DEBIAN_FRONTEND", "noninteractive")
                // apt's messages in English, so that a held lock is recognised below.
                .env("LC_ALL", "C")
                .output()
                .with_context(|| format!("running apt-get {}", args.join(" ")))?;
            if out.status.success() || !held_lock(&out.stderr) || Instant::now() >= deadline {
                return Ok(out);
            }
            if !said {
                eprintln!(
                    "apt: another apt holds a lock ({}); waiting up to {} s",
                    last_line(&out.stderr),
                    LOCK_WAIT.as_secs()
                );
                said = true;
            }
            thread::sleep(RETRY_EVERY);
        }
    }
}

/// apt's "E: Could not get lock /var/lib/apt/lists/lock. It is held by process N (apt-get)".
fn held_lock(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr)
        .lines()
        .any(|l| l.starts_with("E: Could not get lock "))
}

#[cfg(test)]
mod tests {
    use std::{fs::File, os::fd::AsRawFd as _};

    use super::*;

    fn root() -> bool {
        let root = crate::util::is_root();
        if !root {
            assert!(std::env::var_os("CI").is_none(), "CI=true needs root");
            eprintln!("skipping: apt-get install needs root");
        }
        root
    }

    /// A lab package apt cannot provide (as QEMU would be on a machine without the Debian
    /// archive) ends the lab with one sentence naming it and apt's reason. Real apt-get, so
    /// root only, like the rest of the suite.
    #[test]
    fn an_uninstallable_package_is_named() {
        if !root() {
            return;
        }
        let err = ensure_installed(&["zcprof-no-such-package"], &mut Apt::default(), "test")
            .expect_err("no such package");
        let text = format!("{err:#}");
        assert!(
            text.starts_with("cannot install zcprof-no-such-package with apt-get: ")
                && text.contains("zcprof-no-such-package")
                && !text.contains('\n'),
            "{text}"
        );
    }

    #[test]
    fn only_a_held_lock_is_waited_for() {
        assert!(held_lock(
            b"E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n"
        ));
        assert!(!held_lock(
            b"E: Unable to locate package zcprof-no-such-package\n"
        ));
    }

    /// Issue 12: set-up and the lab failed when another apt-get held its lock. Here the
    /// dpkg frontend lock, then the lists lock that `apt-get update` takes, are held for 3 s
    /// each while real apt-get runs: both runs wait, then do their work. apt-get runs on a
    /// private copy of the machine's apt state (dpkg status, package lists, cache), where its
    /// locks are too, so this test never stops another apt on the machine, nor races one.
    #[test]
    fn apt_waits_for_another_apt_s_locks() {
        if !root() {
            return;
        }
        let state = tempfile::tempdir().expect("temp dir");
        let dir = |name: &str| {
            let d = state.path().join(name);
            std::fs::create_dir_all(d.join("partial")).expect("mkdir");
            d
        };
        let (dpkg, lists, cache) = (dir("dpkg"), dir("lists"), dir("cache"));
        std::fs::copy("/var/lib/dpkg/status", dpkg.join("status")).expect("dpkg status");
        for entry in std::fs::read_dir("/var/lib/apt/lists").expect("apt lists") {
            let path = entry.expect("entry").path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "lock") {
                std::fs::copy(&path, lists.join(path.file_name().expect("name"))).expect("copy");
            }
        }
        let settings = [
            format!("Dir::State::status={}", dpkg.join("status").display()),
            format!("Dir::State::lists={}/", lists.display()),
            format!("Dir::Cache={}/", cache.display()),
        ];
        let apt_get = |args: &[&str]| {
            let mut all: Vec<&str> = settings.iter().flat_map(|s| ["-o", s.as_str()]).collect();
            all.extend_from_slice(args);
            let started = Instant::now();
            let out = Apt::default().run(&all).expect("apt-get runs");
            (out, started.elapsed())
        };
        let hold = Duration::from_secs(3);

        let release = hold_lock(&dpkg.join("lock-frontend"), hold);
        let (out, took) = apt_get(&["install", "-y", "zcprof-no-such-package"]);
        release.join().expect("lock holder");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Unable to locate package zcprof-no-such-package")
                && !stderr.contains("lock")
                && took >= hold - Duration::from_millis(500),
            "apt-get waited {took:?} for the dpkg lock, then looked for the package: {stderr}"
        );

        let release = hold_lock(&lists.join("lock"), hold);
        let (out, took) = apt_get(&["update"]);
        release.join().expect("lock holder");
        assert!(
            out.status.success() && took >= hold - Duration::from_millis(500),
            "apt-get update waited {took:?} for the lists lock: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Takes apt's kind of lock on `path` (a POSIX record lock on the whole file, held by this
    /// process, so apt-get children see it) and releases it after `hold`.
    fn hold_lock(path: &Path, hold: Duration) -> thread::JoinHandle<()> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open the lock");
        // SAFETY: flock is plain data; all-zero is a valid value to fill in.
        let mut whole: libc::flock = unsafe { std::mem::zeroed() };
        whole.l_type = libc::F_WRLCK as libc::c_short;
        whole.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: fcntl on a descriptor we own, with a valid flock on our stack.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &whole) };
        assert_eq!(rc, 0, "lock {}", path.display());
        thread::spawn(move || {
            thread::sleep(hold);
            // Closing the descriptor releases the lock.
            drop(file);
        })
    }
}
