//! What a lab run found: per kernel, whether it booted and how long that took; per command, its
//! exit status and output. [`LabReport::check`] folds every failure of every kernel into one
//! error, so one bad kernel never hides another.

use std::{fmt::Write as _, time::Duration};

use anyhow::bail;

use super::qemu;

/// Lines of a failed command's output repeated in the summary.
const FAILURE_TAIL_LINES: usize = 5;

/// Results for every kernel, in the order of the request (the matrix's order), however many
/// booted at once: each kernel's console lines are kept in its own report, never mixed.
#[derive(Debug, Clone, Default)]
pub struct LabReport {
    pub kernels: Vec<KernelReport>,
    /// Host wall time from the first boot to the last power-off.
    pub wall: Duration,
    /// How many VMs ran at once.
    pub jobs: usize,
}

#[derive(Debug, Clone)]
pub struct KernelReport {
    /// The package booted, or the request that could not be resolved.
    pub name: String,
    /// `uname -r` in the guest.
    pub release: Option<String>,
    pub outcome: KernelOutcome,
    pub commands: Vec<CommandReport>,
    /// Host wall time from starting QEMU to /init's first line.
    pub boot_to_init: Option<Duration>,
    /// The guest's /proc/uptime when /init started (kernel boot alone, guest clock).
    pub guest_uptime_at_init: Option<f64>,
    /// Host wall time for the whole VM.
    pub wall: Duration,
    /// Kernel `WARNING:` lines seen on the console.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KernelOutcome {
    /// The guest ran every command and powered off; see the commands for pass/fail.
    Finished,
    /// Could not be had from outside the project (reason given).
    Skipped(String),
    /// Did not boot, timed out, or the kernel died.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct CommandReport {
    pub command: String,
    pub started: bool,
    /// Exit status; `None` if it never finished.
    pub status: Option<i32>,
    /// Console lines printed while it ran (stdout and stderr, plus any kernel messages).
    pub output: Vec<String>,
    pub duration: Option<Duration>,
}

impl CommandReport {
    pub(super) fn new(command: String) -> Self {
        Self {
            command,
            started: false,
            status: None,
            output: Vec::new(),
            duration: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.status == Some(0)
    }
}

impl KernelReport {
    pub(super) fn new(name: String) -> Self {
        Self {
            name,
            release: None,
            outcome: KernelOutcome::Finished,
            commands: Vec::new(),
            boot_to_init: None,
            guest_uptime_at_init: None,
            wall: Duration::ZERO,
            warnings: Vec::new(),
        }
    }

    pub(super) fn skipped(name: String, reason: String) -> Self {
        Self {
            outcome: KernelOutcome::Skipped(reason),
            ..Self::new(name)
        }
    }

    /// What to call this kernel in messages: its release once known.
    pub fn label(&self) -> String {
        self.release
            .as_deref()
            .map_or_else(|| self.name.clone(), qemu::short_name)
    }
}

impl LabReport {
    /// One sentence per failure across all kernels.
    pub fn failures(&self, require_all: bool) -> Vec<String> {
        let mut out = Vec::new();
        for k in &self.kernels {
            match &k.outcome {
                KernelOutcome::Skipped(reason) if require_all => {
                    out.push(format!(
                        "{}: skipped ({reason}) and --require-all is set",
                        k.label()
                    ));
                }
                KernelOutcome::Skipped(_) | KernelOutcome::Finished => {}
                KernelOutcome::Failed(reason) => out.push(format!("{}: {reason}", k.label())),
            }
            for (i, c) in k.commands.iter().enumerate() {
                // A kernel failure already explains commands that never ended.
                if let (false, Some(rc)) = (c.passed(), c.status) {
                    out.push(format!(
                        "{}: command {} `{}` exited {rc}",
                        k.label(),
                        i + 1,
                        c.command
                    ));
                }
            }
        }
        out
    }

    /// Ok if every kernel finished and every command passed (skips allowed unless
    /// `require_all`); otherwise one error listing every failure.
    pub fn check(&self, require_all: bool) -> anyhow::Result<()> {
        let failures = self.failures(require_all);
        match failures.as_slice() {
            [] => return Ok(()),
            [one] => bail!("{one}"),
            _ => {}
        }
        bail!(
            "{} failure(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        )
    }

    /// A table for people: one block per kernel, one line per command.
    pub fn summary(&self) -> String {
        let mut s = String::from("vmtest summary:\n");
        for k in &self.kernels {
            if k.label() == k.name {
                let _ = write!(s, "  {}: ", k.name);
            } else {
                let _ = write!(s, "  {} ({}): ", k.label(), k.name);
            }
            match &k.outcome {
                KernelOutcome::Finished => s.push_str("booted"),
                KernelOutcome::Skipped(r) => {
                    let _ = write!(s, "skipped: {r}");
                }
                KernelOutcome::Failed(r) => {
                    let _ = write!(s, "FAILED: {r}");
                }
            }
            if let Some(boot) = k.boot_to_init {
                let _ = write!(s, "; /init after {:.1}s", boot.as_secs_f64());
                if let Some(up) = k.guest_uptime_at_init {
                    let _ = write!(s, " (guest uptime {up:.2}s)");
                }
            }
            if !matches!(k.outcome, KernelOutcome::Skipped(_)) {
                let _ = write!(s, "; VM total {:.1}s", k.wall.as_secs_f64());
            }
            s.push('\n');
            for (i, c) in k.commands.iter().enumerate() {
                let verdict = match c.status {
                    Some(0) => "pass".to_string(),
                    Some(rc) => format!("FAIL status={rc}"),
                    None if c.started => "DID NOT FINISH".to_string(),
                    None => "not run".to_string(),
                };
                let time = c
                    .duration
                    .map(|d| format!(" {:.1}s", d.as_secs_f64()))
                    .unwrap_or_default();
                let _ = writeln!(s, "    {}. {verdict}{time}  {}", i + 1, c.command);
                if c.status.is_some_and(|rc| rc != 0) {
                    // The tail is what explains a failure, and with --quiet it is the only copy.
                    let skip = c.output.len().saturating_sub(FAILURE_TAIL_LINES);
                    for line in &c.output[skip..] {
                        let _ = writeln!(s, "         | {line}");
                    }
                }
            }
            if !k.warnings.is_empty() {
                let _ = writeln!(s, "    kernel warnings: {}", k.warnings.len());
            }
        }
        let booted = self
            .kernels
            .iter()
            .filter(|k| !matches!(k.outcome, KernelOutcome::Skipped(_)))
            .count();
        if booted > 0 {
            let _ = writeln!(
                s,
                "  lab: {booted} kernel{} in {:.1}s, {} at a time",
                if booted == 1 { "" } else { "s" },
                self.wall.as_secs_f64(),
                self.jobs.max(1)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(outcome: KernelOutcome, statuses: &[Option<i32>]) -> KernelReport {
        let mut k = KernelReport::new("linux-image-x".into());
        k.release = Some("6.1.0-56-cloud-amd64".into());
        k.outcome = outcome;
        k.commands = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| CommandReport {
                status: *s,
                ..CommandReport::new(format!("cmd{i}"))
            })
            .collect();
        k
    }

    #[test]
    fn failures_collect_across_kernels() {
        let report = LabReport {
            kernels: vec![
                kernel(KernelOutcome::Finished, &[Some(0), Some(1)]),
                kernel(KernelOutcome::Failed("timed out".into()), &[Some(0), None]),
                kernel(KernelOutcome::Skipped("no network".into()), &[]),
            ],
            ..LabReport::default()
        };
        let f = report.failures(false);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("`cmd1` exited 1"));
        assert!(f[1].contains("timed out"));
        assert_eq!(report.failures(true).len(), 3);
        assert!(report.check(false).is_err());
    }

    #[test]
    fn all_passing_is_ok() {
        let report = LabReport {
            kernels: vec![
                kernel(KernelOutcome::Finished, &[Some(0)]),
                kernel(KernelOutcome::Skipped("gone".into()), &[]),
            ],
            ..LabReport::default()
        };
        assert!(report.check(false).is_ok());
        assert!(report.check(true).is_err());
        assert!(report.summary().contains("skipped: gone"));
    }

    /// Kernels booted side by side keep their own blocks, in the matrix's order, and the
    /// summary says how long the lab took and how many ran at once.
    #[test]
    fn the_summary_keeps_kernels_apart_and_times_the_lab() {
        let mut a = kernel(KernelOutcome::Finished, &[Some(0)]);
        a.commands[0].output = vec!["from a".into()];
        let mut b = kernel(KernelOutcome::Finished, &[Some(1)]);
        b.release = Some("6.12.118+deb12-cloud-amd64".into());
        b.commands[0].output = vec!["from b".into()];
        let report = LabReport {
            kernels: vec![a, b, kernel(KernelOutcome::Skipped("gone".into()), &[])],
            wall: Duration::from_secs(700),
            jobs: 2,
        };
        let s = report.summary();
        assert!(s.contains("  lab: 2 kernels in 700.0s, 2 at a time"), "{s}");
        let (first, second) = (
            s.find("6.1.0-56").expect("a"),
            s.find("6.12.118").expect("b"),
        );
        assert!(first < second, "{s}");
        // Only the failed command's tail is repeated, under its own kernel.
        assert!(
            !s.contains("from a") && s[second..].contains("| from b"),
            "{s}"
        );
    }
}
