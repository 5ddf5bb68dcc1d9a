//! The QEMU kernel lab: boot real Debian kernels (which have kprobes and fentry, unlike the
//! Firecracker kernel our machines run) and run commands inside them.
//!
//! `cargo xtask vmtest --bin target/release/zcprof --run "zcprof selftest"` resolves the kernel
//! matrix ([`kernels::MATRIX`]), builds one initramfs holding busybox, the binaries with their
//! shared libraries and a generated `/init`, boots the kernels under QEMU TCG — as many at once
//! as the host's cores allow for the guests' vCPUs ([`LabRun::jobs`]) — and reports per kernel
//! and per command, each kernel's console in its own report. Other xtask code calls [`run_lab`] with a [`LabRun`] and
//! gets a [`LabReport`] back; [`LabReport::check`] turns it into one error listing every failure.
//!
//! Without `--run`, `cargo xtask vmtest` runs zcprof's integration suite in every kernel
//! ([`suite`]); `cargo xtask test` does the same as its last step.
//!
//! A kernel that cannot be had from outside (no such package, no network) is reported as
//! skipped with its reason; `--require-all` makes that a failure too.

mod cpio;
mod host;
mod initramfs;
mod kernels;
mod markers;
mod qemu;
mod report;
pub mod suite;

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

pub use initramfs::ExtraFile;
pub use kernels::MATRIX;
pub use report::{CommandReport, KernelOutcome, KernelReport, LabReport};

/// `cargo xtask vmtest` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kernel to boot: a Debian package (linux-image-…) or a matrix series ("6.1", "6.12").
    /// Repeatable; default: the whole matrix.
    #[arg(long = "kernel", value_name = "PKG")]
    kernels: Vec<String>,
    /// Binary to put in the guest's /bin, with its shared libraries. A bare name is looked up
    /// in PATH. Repeatable.
    #[arg(long = "bin", value_name = "PATH")]
    bins: Vec<String>,
    /// Extra file or directory, HOST[:GUEST]; GUEST defaults to the absolute host path.
    /// Repeatable.
    #[arg(long = "file", value_name = "HOST[:GUEST]")]
    files: Vec<String>,
    /// Shell command to run in the guest (busybox sh, cwd /root). Repeatable; run in order.
    #[arg(long = "run", value_name = "CMD")]
    commands: Vec<String>,
    /// Seconds each kernel may take, boot to power-off.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB)]
    memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = DEFAULT_SMP)]
    smp: u32,
    /// Kernels booted at once [default: the host's cores / --smp, at least 1]
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Extra kernel command-line argument. Repeatable.
    #[arg(long = "append", value_name = "ARG")]
    append: Vec<String>,
    /// Show the matrix and what is cached, then exit.
    #[arg(long)]
    list: bool,
    /// Keep the initramfs, its /init and a manifest under target/vmtest/runs/ for debugging.
    #[arg(long)]
    keep: bool,
    /// Treat a skipped kernel as a failure.
    #[arg(long)]
    require_all: bool,
    /// Do not echo the guest console (the summary still prints).
    #[arg(long)]
    quiet: bool,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_MEMORY_MIB: u32 = 2048;
/// Two vCPUs: QEMU runs x86 TCG multi-threaded, so on the 2-core host this boots a little
/// faster than one (6.12 to /init: 2.8-3.0 s vs 3.2-3.5 s; bpftrace runs took the same) and it
/// lets per-CPU maps and cross-CPU paths be exercised.
pub const DEFAULT_SMP: u32 = 2;

/// One lab session: the same initramfs booted under each kernel, `jobs` at a time.
#[derive(Debug, Clone)]
pub struct LabRun {
    /// Package names or matrix series labels; empty means every series of [`MATRIX`].
    pub kernels: Vec<String>,
    /// Host binaries to copy into the guest's /bin (with their shared libraries).
    pub bins: Vec<PathBuf>,
    pub files: Vec<ExtraFile>,
    /// Shell commands, run in order; each one's exit status is reported.
    pub commands: Vec<String>,
    /// Per kernel, boot to power-off.
    pub timeout: Duration,
    pub memory_mib: u32,
    pub smp: u32,
    /// Extra kernel command-line arguments.
    pub append: Vec<String>,
    /// Keep the work directory (initramfs, manifest) instead of deleting it.
    pub keep: bool,
    /// Print the guest console live (each line prefixed with its kernel).
    pub echo: bool,
    /// How many kernels boot at once. TCG runs each vCPU on a host thread of its own, so
    /// VMs beyond the host's cores / `smp` only slow each other down (and stretch the
    /// timing-sensitive tests inside them).
    pub jobs: usize,
}

/// The host's cores over `smp` vCPUs per guest, at least 1.
pub fn default_jobs(smp: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / smp.max(1) as usize).max(1)
}

impl LabRun {
    pub fn new(commands: Vec<String>) -> Self {
        Self {
            kernels: Vec::new(),
            bins: Vec::new(),
            files: Vec::new(),
            commands,
            timeout: DEFAULT_TIMEOUT,
            memory_mib: DEFAULT_MEMORY_MIB,
            smp: DEFAULT_SMP,
            append: Vec::new(),
            keep: false,
            echo: true,
            jobs: default_jobs(DEFAULT_SMP),
        }
    }
}

/// Boots every requested kernel with one shared initramfs, `lab.jobs` at a time. Errors only for problems of
/// the lab itself (QEMU missing and uninstallable, unreadable binaries); kernel and command
/// failures are in the report.
pub fn run_lab(lab: &LabRun) -> anyhow::Result<LabReport> {
    let root = lab_dir();
    let mut cache = kernels::KernelCache::new(root.join("kernels"));
    crate::apt::ensure_installed(host::LAB_PACKAGES, cache.apt(), "vmtest")?;

    let requests: Vec<String> = if lab.kernels.is_empty() {
        MATRIX.iter().map(|s| s.label.to_string()).collect()
    } else {
        lab.kernels.clone()
    };
    let mut resolved = Vec::new();
    for request in &requests {
        resolved.push(cache.resolve(request)?);
    }

    let work = root.join("runs").join(std::process::id().to_string());
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = boot_all(lab, &resolved, &work);
    if lab.keep {
        eprintln!("vmtest: kept {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    result
}

fn boot_all(
    lab: &LabRun,
    resolved: &[kernels::Resolved],
    work: &Path,
) -> anyhow::Result<LabReport> {
    let started = Instant::now();
    let kernel_configs: Vec<(String, PathBuf)> = resolved
        .iter()
        .filter_map(|r| match r {
            kernels::Resolved::Ready(k) => Some((k.release.clone(), k.config.clone())),
            kernels::Resolved::Skipped { .. } => None,
        })
        .collect();
    if kernel_configs.is_empty() {
        // Nothing to boot: report the skips without building an initramfs for nobody.
        return Ok(skipped_only(resolved));
    }
    let tree = initramfs::build(&initramfs::Contents {
        kernel_configs: &kernel_configs,
        bins: &lab.bins,
        files: &lab.files,
        commands: &lab.commands,
    })?;
    let initrd = work.join("initramfs.cpio");
    let size = tree.write(&initrd)?;
    eprintln!(
        "vmtest: initramfs {:.1} MiB built in {:.1}s",
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    if lab.keep {
        fs::write(work.join("manifest.txt"), tree.manifest())?;
        fs::write(
            work.join("init"),
            initramfs::init_script(lab.commands.len()),
        )?;
    }

    let machine = qemu::Machine {
        initrd: &initrd,
        memory_mib: lab.memory_mib,
        smp: lab.smp,
        append: &lab.append,
        timeout: lab.timeout,
        echo: lab.echo,
    };
    let ready: Vec<&kernels::Kernel> = resolved
        .iter()
        .filter_map(|r| match r {
            kernels::Resolved::Ready(k) => Some(k),
            kernels::Resolved::Skipped { .. } => None,
        })
        .collect();
    let jobs = lab.jobs.clamp(1, ready.len().max(1));
    if jobs > 1 {
        eprintln!(
            "vmtest: booting {} kernels, {jobs} at a time (console lines prefixed with the kernel)",
            ready.len()
        );
    }
    let booting = Instant::now();
    let mut booted = boot_concurrently(&ready, jobs, &machine, &lab.commands).into_iter();
    let mut report = LabReport {
        jobs,
        ..LabReport::default()
    };
    for r in resolved {
        match r {
            kernels::Resolved::Skipped { what, reason } => {
                eprintln!("vmtest: {what}: skipped: {reason}");
                report
                    .kernels
                    .push(KernelReport::skipped(what.clone(), reason.clone()));
            }
            kernels::Resolved::Ready(_) => {
                let kernel = booted
                    .next()
                    .context("a booted kernel's report is missing")??;
                report.kernels.push(kernel);
            }
        }
    }
    report.wall = booting.elapsed();
    Ok(report)
}

/// Boots each of `kernels`, at most `jobs` at once, and returns their reports in the order of
/// `kernels`. Each VM is followed by its own thread ([`qemu::boot`]): its console lines go to
/// its own report, and echoed lines carry its kernel's name, so two VMs never mix.
fn boot_concurrently(
    kernels: &[&kernels::Kernel],
    jobs: usize,
    machine: &qemu::Machine,
    commands: &[String],
) -> Vec<anyhow::Result<KernelReport>> {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<KernelReport>>>> =
        Mutex::new(kernels.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(kernel) = kernels.get(i) else {
                        break;
                    };
                    eprintln!("vmtest: booting {} ({})", kernel.release, kernel.package);
                    let result = qemu::boot(kernel, machine, commands);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(anyhow::anyhow!(
                    "a kernel's boot thread ended without a report"
                ))
            })
        })
        .collect()
}

fn skipped_only(resolved: &[kernels::Resolved]) -> LabReport {
    let mut report = LabReport::default();
    for r in resolved {
        if let kernels::Resolved::Skipped { what, reason } = r {
            eprintln!("vmtest: {what}: skipped: {reason}");
            report
                .kernels
                .push(KernelReport::skipped(what.clone(), reason.clone()));
        }
    }
    report
}

/// `target/vmtest` of the workspace, whatever CARGO_TARGET_DIR says: the kernel cache should
/// outlive switching target directories.
pub(crate) fn lab_dir() -> PathBuf {
    crate::util::workspace_root().join("target").join("vmtest")
}

/// Entry point of `cargo xtask vmtest`. Without `--run` or `--bin` it runs the integration
/// suite in every kernel (see [`suite`]).
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        return list();
    }
    if args.commands.is_empty() && args.bins.is_empty() && args.files.is_empty() {
        let report = suite::run(args.kernels, !args.quiet, args.jobs)?;
        print!("{}", report.summary());
        suite::explain_failures(&report);
        return report.check(args.require_all);
    }
    let mut lab = LabRun::new(args.commands);
    lab.kernels = args.kernels;
    lab.bins = args
        .bins
        .iter()
        .map(|b| find_bin(b))
        .collect::<anyhow::Result<_>>()?;
    lab.files = args
        .files
        .iter()
        .map(|f| ExtraFile::parse(f))
        .collect::<anyhow::Result<_>>()?;
    lab.timeout = Duration::from_secs(args.timeout);
    lab.memory_mib = args.memory;
    lab.smp = args.smp;
    lab.jobs = args.jobs.unwrap_or_else(|| default_jobs(args.smp));
    lab.append = args.append;
    lab.keep = args.keep;
    lab.echo = !args.quiet;
    let report = run_lab(&lab)?;
    print!("{}", report.summary());
    report.check(args.require_all)
}

/// A path as given, or a bare name looked up in PATH (so `--bin bpftrace` works).
fn find_bin(spec: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(spec);
    if spec.contains('/') {
        if !path.is_file() {
            bail!("--bin {spec}: no such file");
        }
        return Ok(path.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(spec))
        .find(|p| p.is_file())
        .with_context(|| format!("--bin {spec}: not a file and not found in PATH"))
}

fn list() -> anyhow::Result<()> {
    let cache = kernels::KernelCache::new(lab_dir().join("kernels"));
    let known = crate::util::stdout_of(std::process::Command::new("apt-cache").args([
        "search",
        "--names-only",
        r"^linux-image-[0-9].*-unsigned$",
    ]))?;
    let known: Vec<&str> = known
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let cached = cache.cached_packages();
    println!("matrix (newest package per series in the local apt lists):");
    for series in MATRIX {
        let newest = kernels::newest(known.iter().copied(), series);
        let state = match newest {
            Some(p) if cached.iter().any(|c| c == p) => format!("{p} [cached]"),
            Some(p) => format!("{p} [not cached: the next run downloads it]"),
            None => "no package in the apt lists (apt-get update may find one)".to_string(),
        };
        println!("  {:<5} {state}", series.label);
    }
    println!("cached in {}:", lab_dir().join("kernels").display());
    if cached.is_empty() {
        println!("  (nothing)");
    }
    for package in &cached {
        if let Some(kernel) = cache.cached(package)? {
            println!(
                "  {package}  release {}  config {}",
                kernel.release,
                kernel.config.display()
            );
        }
    }
    Ok(())
}
