//! The kernel matrix: which Debian cloud kernels the lab boots, and the local cache of them.
//!
//! Debian renames its kernel packages with every ABI bump (`linux-image-6.1.0-56-…`), so the
//! matrix names series, and each run picks the newest package of a series that the local apt
//! lists know. A package is downloaded once with `apt-get download`, unpacked with
//! `dpkg-deb -x`, and only what QEMU needs is kept in `target/vmtest/kernels/<package>/`; a
//! `.complete` file written last marks a cache entry whole, so an interrupted download is redone.
//! When the network or the archive cannot provide a package, the newest cached one of the same
//! series stands in (said out loud), and if there is none the kernel is skipped with the reason.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{
    apt::Apt,
    util::{last_line, stdout_of},
};

/// One line of the matrix: every package named `<prefix><version><suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub label: &'static str,
    prefix: &'static str,
    suffix: &'static str,
}

/// Bookworm's own 6.1 LTS and the 6.12 backport built for bookworm. Both have BTF, kprobes and
/// fentry, and they are the two kernels Debian users of this release actually run.
pub const MATRIX: &[Series] = &[
    Series {
        label: "6.1",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
    },
    Series {
        label: "6.12",
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-amd64-unsigned",
    },
];

impl Series {
    pub fn matches(&self, package: &str) -> bool {
        package
            .strip_prefix(self.prefix)
            .and_then(|rest| rest.strip_suffix(self.suffix))
            .is_some_and(|middle| !middle.is_empty() && middle.bytes().all(|b| b.is_ascii_digit()))
    }

    pub fn by_label(label: &str) -> Option<&'static Series> {
        MATRIX.iter().find(|s| s.label == label)
    }
}

/// Ordering key for kernel package names: the numbers of the upstream version and ABI, so that
/// `6.1.0-56` sorts above `6.1.0-9` (a plain string sort gets that wrong).
pub fn version_key(package: &str) -> Vec<u64> {
    let version = package.strip_prefix("linux-image-").unwrap_or(package);
    version
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .next()
        .unwrap_or("")
        .split(['.', '-'])
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The newest package of `series` among `names`.
pub fn newest<'a>(names: impl IntoIterator<Item = &'a str>, series: &Series) -> Option<&'a str> {
    names
        .into_iter()
        .filter(|n| series.matches(n))
        .max_by_key(|n| version_key(n))
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub package: String,
    /// `uname -r` of the kernel, read from the name of its vmlinuz.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// The kernel's build config, kept so that people can check what is built in.
    pub config: PathBuf,
}

/// What resolving one `--kernel` request gave.
#[derive(Debug)]
pub enum Resolved {
    Ready(Kernel),
    /// Could not be had from outside the project; `what` is the request as given.
    Skipped {
        what: String,
        reason: String,
    },
}

/// Resolves requests against the apt lists and the cache, downloading what is missing.
pub struct KernelCache {
    root: PathBuf,
    apt: Apt,
    /// Names `apt-cache` knows, fetched once per run.
    known: Option<Vec<String>>,
}

impl KernelCache {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            apt: Apt::default(),
            known: None,
        }
    }

    pub fn apt(&mut self) -> &mut Apt {
        &mut self.apt
    }

    /// `request` is a package name or a series label from [`MATRIX`].
    pub fn resolve(&mut self, request: &str) -> anyhow::Result<Resolved> {
        // Only a series request may fall back to another cached package of its series: a
        // request for one exact package means exactly that package.
        let (package, series) = if request.starts_with("linux-image-") {
            (request.to_string(), None)
        } else {
            let Some(series) = Series::by_label(request) else {
                let labels: Vec<&str> = MATRIX.iter().map(|s| s.label).collect();
                bail!(
                    "unknown kernel {request:?}: give a Debian package name (linux-image-…) or one of {}",
                    labels.join(", ")
                );
            };
            match self.newest_available(series)? {
                Some(package) => (package, Some(series)),
                None => {
                    return Ok(self.fallback(
                        request,
                        series,
                        format!(
                            "apt knows no package matching {}*{}",
                            series.prefix, series.suffix
                        ),
                    ));
                }
            }
        };
        if let Some(kernel) = self.cached(&package)? {
            return Ok(Resolved::Ready(kernel));
        }
        match self.download(&package) {
            Ok(kernel) => Ok(Resolved::Ready(kernel)),
            Err(err) => {
                let reason = format!("{err:#}");
                Ok(match series {
                    Some(series) => self.fallback(&package, series, reason),
                    None => Resolved::Skipped {
                        what: package,
                        reason,
                    },
                })
            }
        }
    }

    /// The newest cached kernel of `series`, or a skip carrying `reason`.
    fn fallback(&self, what: &str, series: &Series, reason: String) -> Resolved {
        let cached = self.cached_packages();
        match newest(cached.iter().map(String::as_str), series).map(|p| self.cached(p)) {
            Some(Ok(Some(kernel))) => {
                eprintln!(
                    "vmtest: {what}: {reason}; using the cached {} instead",
                    kernel.package
                );
                Resolved::Ready(kernel)
            }
            _ => Resolved::Skipped {
                what: what.to_string(),
                reason,
            },
        }
    }

    fn newest_available(&mut self, series: &Series) -> anyhow::Result<Option<String>> {
        let found =
            newest(self.known_packages()?.iter().map(String::as_str), series).map(str::to_string);
        if found.is_some() || self.apt.updated {
            return Ok(found);
        }
        // An image's package lists can predate the series; refresh them once and look again.
        eprintln!("vmtest: apt-get update");
        self.apt.update()?;
        self.known = None;
        Ok(newest(self.known_packages()?.iter().map(String::as_str), series).map(str::to_string))
    }

    fn known_packages(&mut self) -> anyhow::Result<&[String]> {
        if self.known.is_none() {
            let text = stdout_of(Command::new("apt-cache").args([
                "search",
                "--names-only",
                r"^linux-image-[0-9].*-unsigned$",
            ]))?;
            let names = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect();
            self.known = Some(names);
        }
        Ok(self.known.as_deref().unwrap_or_default())
    }

    /// Package names with a complete cache entry.
    pub fn cached_packages(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(".complete").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort_by_key(|n| version_key(n));
        names
    }

    pub fn cached(&self, package: &str) -> anyhow::Result<Option<Kernel>> {
        let dir = self.root.join(package);
        if !dir.join(".complete").exists() {
            return Ok(None);
        }
        let release = fs::read_to_string(dir.join("release"))
            .with_context(|| format!("reading {}", dir.join("release").display()))?;
        Ok(Some(Kernel {
            package: package.to_string(),
            release: release.trim().to_string(),
            vmlinuz: dir.join("vmlinuz"),
            config: dir.join("config"),
        }))
    }

    fn download(&mut self, package: &str) -> anyhow::Result<Kernel> {
        let work = self.root.join(format!(".download-{package}"));
        if work.exists() {
            fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
        }
        fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let result = self.download_into(package, &work);
        // The unpacked tree holds every module; nothing in it is kept but what download_into
        // copied out (the lab needs no modules, and Debian's System.map is a placeholder that
        // points to the -dbg package).
        let _ = fs::remove_dir_all(&work);
        result
    }

    fn download_into(&mut self, package: &str, work: &Path) -> anyhow::Result<Kernel> {
        eprintln!("vmtest: downloading {package}");
        let mut out = self.apt.run_in(work, &["download", package])?;
        if !out.status.success() && !self.apt.updated {
            eprintln!("vmtest: apt-get update");
            self.apt.update()?;
            out = self.apt.run_in(work, &["download", package])?;
        }
        if !out.status.success() {
            bail!("apt-get download failed: {}", last_line(&out.stderr));
        }
        let deb = fs::read_dir(work)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .context("apt-get download succeeded but left no .deb")?;
        let tree = work.join("tree");
        stdout_of(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;

        let boot = tree.join("boot");
        let vmlinuz = fs::read_dir(&boot)
            .with_context(|| format!("{package} has no /boot"))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("vmlinuz-"))
            .with_context(|| format!("{package} has no /boot/vmlinuz-*"))?;
        let release = vmlinuz.trim_start_matches("vmlinuz-").to_string();

        let dest = self.root.join(package);
        fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        for (from, to) in [
            (format!("vmlinuz-{release}"), "vmlinuz"),
            (format!("config-{release}"), "config"),
        ] {
            fs::copy(boot.join(&from), dest.join(to))
                .with_context(|| format!("copying {from} out of {package}"))?;
        }
        fs::write(dest.join("release"), format!("{release}\n"))?;
        fs::write(dest.join(".complete"), b"")?;
        self.cached(package)?
            .context("the cache entry just written is incomplete")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "linux-image-6.1.0-9-cloud-amd64-unsigned",
        "linux-image-6.1.0-56-cloud-amd64-unsigned",
        "linux-image-6.1.0-47-cloud-amd64-unsigned",
        "linux-image-6.1.0-56-amd64-unsigned",
        "linux-image-6.1.0-56-cloud-arm64-unsigned",
        "linux-image-6.12.9+deb12-cloud-amd64-unsigned",
        "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
        "linux-image-6.12.107+deb12-cloud-amd64-unsigned",
        "linux-image-6.12.117+deb13-cloud-amd64-unsigned",
        "linux-image-6.12.117+deb12-cloud-amd64-unsigned-dbg",
    ];

    #[test]
    fn newest_compares_numbers_not_strings() {
        let s61 = Series::by_label("6.1").unwrap();
        let s612 = Series::by_label("6.12").unwrap();
        assert_eq!(
            newest(NAMES.iter().copied(), s61),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert_eq!(
            newest(NAMES.iter().copied(), s612),
            Some("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert_eq!(newest(std::iter::empty(), s61), None);
    }

    #[test]
    fn series_do_not_overlap() {
        assert!(
            !Series::by_label("6.1")
                .unwrap()
                .matches("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert!(
            !Series::by_label("6.12")
                .unwrap()
                .matches("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert!(
            Series::by_label("6.12")
                .unwrap()
                .matches("linux-image-6.12.107+deb12-cloud-amd64-unsigned")
        );
        assert!(
            !Series::by_label("6.1")
                .unwrap()
                .matches("linux-image-6.1.0-56-rt-amd64-unsigned")
        );
        assert!(
            !Series::by_label("6.1")
                .unwrap()
                .matches("linux-image-6.1.0--cloud-amd64-unsigned")
        );
    }

    #[test]
    fn version_keys() {
        assert_eq!(
            version_key("linux-image-6.1.0-56-cloud-amd64-unsigned"),
            [6, 1, 0, 56]
        );
        assert_eq!(
            version_key("linux-image-6.12.117+deb12-cloud-amd64-unsigned"),
            [6, 12, 117]
        );
        assert!(
            version_key("linux-image-6.1.0-9-cloud") < version_key("linux-image-6.1.0-10-cloud")
        );
    }
}
