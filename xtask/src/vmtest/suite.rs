//! The integration suite inside the lab's kernels: `cargo xtask vmtest` without `--run`, and
//! the lab step of `cargo xtask test`.
//!
//! Builds zcprof's integration-test binaries (the same debug build the host step uses, so
//! nothing is rebuilt) and zcprof's release binary, strips their debug info into
//! `target/vmtest/suite/` (it would make the initramfs ten times larger), and boots the
//! kernels of the matrix with them, side by side (one single-vCPU VM per host core:
//! [`super::default_jobs`]), the release `zcprof` at the path the tests were compiled to
//! expect (`CARGO_BIN_EXE_zcprof`), and the tools the tests call (strace, setpriv).
//!
//! The release build is what users run, and under TCG it starts in 3.4 s where the debug
//! build takes 6.5 (12 before its start-up was trimmed): most lab tests run zcprof several
//! times, and the lab's time is CI's largest part. The host step tests the debug build.
//!
//! Each binary runs with `--test-threads=1` and `CI=true` (a test that cannot attach fails
//! instead of skipping); its exit status and output come back over the serial console, and
//! any failure on any kernel fails the run.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::{ExtraFile, LabReport, LabRun, lab_dir, run_lab};

/// The test targets of the `zcprof` package that run in the lab (the unit tests and the
/// demos' strace comparisons are kernel-independent and run on the host only). `demos` runs
/// every demo under the profiler: splice, tee, vmsplice and sendfile take other kernel paths
/// on other kernels; `follow` runs its sh/dd workloads (its nginx and Python ones skip);
/// `io_uring` runs its demo-based test (its fio ones skip: fio is not in the initramfs);
/// `mapped` counts mapped file pages exactly on 6.12 and finds the layer unavailable, with
/// its reason, on 6.1; `flows` finds every descriptor kind through each kernel's own struct
/// layout; `cgroups` mounts cgroup2 (the initramfs has none) and counts per cgroup;
/// `threads` counts named threads exactly and flushes each at its own exit; `files` reads
/// each kernel's `struct file` layout for `run --files`; `probe_stats` turns on each kernel's
/// BPF run-time statistics (`BPF_ENABLE_STATS`) and reads the programs' cost; `stacks`
/// samples the demos' user stacks with each kernel's `bpf_get_stack` (build-ID frames) and
/// names their call sites; `user_copies` attaches the user layer's uprobes and counts the
/// in-process demo's memcpy calls exactly; `cpu` samples with each kernel's perf_event
/// program and names user copies by build ID (`bpf_get_stack`) and kernel copies by each
/// kernel's symbols.
const TESTS: &[&str] = &[
    "kernel_layer",
    "syscall_layer",
    "cli",
    "demos",
    "follow",
    "io_uring",
    "mapped",
    "flows",
    "cgroups",
    "threads",
    "files",
    "probe_stats",
    "stacks",
    "user_copies",
    "cpu",
];
/// Tests of those targets that the kernel cannot change (argument checks, one-line errors,
/// the demo reports' assembly from runs the per-mode exactness tests already make in the
/// lab), left to the host run: under TCG, one vCPU per kernel, the lab is the largest part
/// of CI's time, and it is there for what differs between kernels.
const HOST_ONLY: &[(&str, &str)] = &[
    ("cli", "bad_input_gets_one_line_and_a_nonzero_exit"),
    ("cli", "unprivileged_users_are_told_to_use_sudo"),
    ("cli", "a_closed_stdout_ends_quietly"),
    ("cli", "version_names_the_commit"),
    // Every demo and mode once more, each beside its baseline: the per-mode tests
    // (`*_is_exact`) run the same kernel paths and check them exactly.
    ("demos", "demo_report_sets_every_claim_beside_a_measurement"),
    ("demos", "demo_report_survives_a_failing_scenario"),
    ("demos", "demo_run_json_compares_every_mode_exactly"),
    ("demos", "demo_run_text_runs_the_baseline_too"),
    ("demos", "demo_run_skips_a_mode_this_kernel_cannot_run"),
    ("demos", "demo_list_prints_the_catalogue"),
    ("demos", "bad_demo_input_is_one_line"),
    ("demos", "too_large_a_size_is_bad_input"),
    ("demos", "a_missing_demo_binary_says_how_to_build_it"),
    // What run, record and diff make of the flows (the exactness tests check the kernel's).
    ("flows", "run_record_and_diff_carry_flows"),
    (
        "flows",
        "time_bounded_recordings_compare_per_delivered_byte",
    ),
    ("flows", "top_csv_carries_each_process_biggest_flow"),
    ("flows", "top_text_shows_each_process_biggest_flow"),
    // The same for threads: how run, record and top spell the split.
    ("threads", "run_and_record_carry_threads"),
    ("threads", "top_json_lists_active_threads"),
    // `top --json` shows each kernel's statistics; how run and serve spell them is not the
    // kernel's.
    (
        "probe_stats",
        "run_summarises_the_probes_cost_with_probe_stats",
    ),
    (
        "probe_stats",
        "serve_exports_the_probes_cost_with_probe_stats",
    ),
    // The programs these build need gcc and Go, which the initramfs does not have; flame
    // graphs, the diff and argument checks are the kernel's no more than the demos' stacks.
    (
        "stacks",
        "a_process_that_exits_right_after_copying_is_still_symbolized",
    ),
    (
        "stacks",
        "a_binary_deleted_while_it_runs_is_still_symbolized",
    ),
    (
        "stacks",
        "a_stripped_binary_gives_module_and_offset_frames_counted_as_unresolved",
    ),
    (
        "stacks",
        "a_go_program_is_named_at_its_own_function_past_the_runtime",
    ),
    (
        "stacks",
        "flame_graphs_and_the_diff_name_the_call_sites_a_change_removed",
    ),
    ("stacks", "bad_input_gets_one_line_and_exit_2"),
    // The programs these build need gcc and Go; the demo-based tests run in the lab.
    (
        "user_copies",
        "a_c_programs_memcpy_memmove_and_mempcpy_are_counted_exactly",
    ),
    (
        "user_copies",
        "a_go_programs_copy_is_counted_and_its_slicing_is_not",
    ),
    (
        "user_copies",
        "a_static_binary_without_symbols_is_reported_not_fatal",
    ),
    // Under TCG libc's memcpy is cheap next to the debug demo's byte loops: 2-3 samples of
    // 3,200 in copy mode on 6.1 and 6.12, too few to compare; the helper's memcpy test
    // checks the same build-ID path there.
    (
        "cpu",
        "the_in_process_demo_copies_through_libc_in_copy_mode_only",
    ),
];

/// ` --exact --skip NAME …` for the [`HOST_ONLY`] tests of the test binary `file` (cargo names it
/// `TARGET-HASH`).
fn skips(file: &str) -> String {
    let target = file.rsplit_once('-').map_or(file, |(t, _)| t);
    let skips: String = HOST_ONLY
        .iter()
        .filter(|(t, _)| *t == target)
        .map(|(_, test)| format!(" --skip {test}"))
        .collect();
    // `--exact` once (libtest refuses it twice): whole names, not substrings.
    if skips.is_empty() {
        skips
    } else {
        format!(" --exact{skips}")
    }
}

/// Host tools the tests run, copied with their libraries.
const TOOLS: &[&str] = &["/usr/bin/strace", "/usr/bin/setpriv"];
/// The guest's /bin/sh (Debian's dash; it needs only libc, which the tests bring).
const DASH: &str = "/usr/bin/dash";
/// Per kernel, boot to power-off (TCG runs the suite several times slower than the host).
const TIMEOUT: Duration = Duration::from_secs(1200);

/// Runs the suite on `kernels` (empty: the whole matrix), `jobs` kernels at once (default:
/// one per host core, each guest having one vCPU), and returns the lab's report.
pub fn run(kernels: Vec<String>, echo: bool, jobs: Option<usize>) -> anyhow::Result<LabReport> {
    let built = build()?;
    let dir = lab_dir().join("suite");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut lab = LabRun::new(Vec::new());
    lab.kernels = kernels;
    lab.timeout = TIMEOUT;
    // One vCPU: a 6.12 guest with two took an `Oops: int3` while probes were attached and
    // detached (kernel text patching across TCG vCPUs), once, in a fresh-clone CI run.
    lab.smp = 1;
    // With one vCPU each, the matrix's kernels boot side by side, one per host core (the
    // suite's 6.1 and 6.12 runs took 569 s + 445 s one after the other).
    lab.jobs = jobs.unwrap_or_else(|| super::default_jobs(lab.smp));
    lab.echo = echo;
    for test in &built.tests {
        let stripped = strip(test, &dir)?;
        let name = file_name(&stripped);
        lab.commands.push(format!(
            // ZCPROF_LAB_GUEST: tests whose workloads are not in the initramfs (nginx,
            // Python) skip themselves with that reason.
            "CI=true ZCPROF_LAB_GUEST=1 RUST_BACKTRACE=1 /bin/{name} --test-threads=1 --nocapture{}",
            skips(&name)
        ));
        lab.bins.push(stripped);
    }
    for tool in TOOLS {
        let tool = PathBuf::from(tool);
        if !tool.is_file() {
            bail!(
                "{} is missing on this machine (cargo xtask setup installs it)",
                tool.display()
            );
        }
        lab.bins.push(tool);
    }
    // busybox sh runs its own applets without exec, so a `sh -c "dd …"` child would keep
    // the name `sh` (the tests follow processes by name, as users do): dash execs them.
    lab.files.push(ExtraFile {
        host: PathBuf::from(DASH),
        guest: "/bin/sh".into(),
    });
    // The tests run `env!("CARGO_BIN_EXE_zcprof")`, the debug build's host path: put the
    // release build there, and the demo binary beside it, where `demos.rs` looks for it.
    // (Stripped apart: both are named `zcprof`.)
    let release_dir = dir.join("release");
    fs::create_dir_all(&release_dir)
        .with_context(|| format!("creating {}", release_dir.display()))?;
    for (host, guest) in [
        (strip(&built.release, &release_dir)?, &built.zcprof),
        (strip(&built.demo, &dir)?, &built.demo),
    ] {
        lab.files.push(ExtraFile {
            host,
            guest: guest.to_string_lossy().into_owned(),
        });
    }
    run_lab(&lab)
}

/// Prints the lines that explain each failed test binary (the report keeps only a tail).
pub fn explain_failures(report: &LabReport) {
    for k in &report.kernels {
        for c in k
            .commands
            .iter()
            .filter(|c| c.status.is_some_and(|s| s != 0))
        {
            eprintln!("vmtest: {} failed on {}:", c.command, k.label());
            for line in c.output.iter().filter(|l| {
                l.contains("panicked at")
                    || l.contains("FAILED")
                    || l.contains("left:")
                    || l.contains("right:")
                    || l.starts_with("test result")
                    || l.contains("assertion")
            }) {
                eprintln!("  | {line}");
            }
        }
    }
}

struct Built {
    tests: Vec<PathBuf>,
    /// The debug `zcprof`: where the tests expect it.
    zcprof: PathBuf,
    /// The release `zcprof`, which the lab runs there.
    release: PathBuf,
    /// `zcprof-demo`, built into the same directory as `zcprof`.
    demo: PathBuf,
}

/// `cargo test --no-run` for the lab's test targets, `cargo build` for the demo binary and
/// `cargo build --release` for zcprof; their executables and the debug zcprof's, from
/// cargo's JSON messages.
fn build() -> anyhow::Result<Built> {
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--no-run", "--message-format=json", "-p", "zcprof"]);
    for t in TESTS {
        cmd.args(["--test", t]);
    }
    let (tests, zcprof) = artifacts(&mut cmd, |name, is| {
        (is("test") && TESTS.contains(&name)) || (is("bin") && name == "zcprof")
    })?
    .into_iter()
    .partition::<Vec<_>, _>(|(name, _)| name != "zcprof");
    let demo = artifacts(
        Command::new("cargo").args([
            "build",
            "--message-format=json",
            "-p",
            "zcprof-demos",
            "--bin",
            "zcprof-demo",
        ]),
        |name, is| is("bin") && name == "zcprof-demo",
    )?;
    let release = artifacts(
        Command::new("cargo").args([
            "build",
            "--release",
            "--message-format=json",
            "-p",
            "zcprof",
            "--bin",
            "zcprof",
        ]),
        |name, is| is("bin") && name == "zcprof",
    )?;
    if tests.len() != TESTS.len() {
        bail!(
            "cargo built {} of the {} lab test binaries",
            tests.len(),
            TESTS.len()
        );
    }
    let one = |found: Vec<(String, PathBuf)>, what: &str| {
        found
            .into_iter()
            .next()
            .map(|(_, exe)| exe)
            .with_context(|| format!("cargo did not report the {what} binary"))
    };
    Ok(Built {
        tests: tests.into_iter().map(|(_, exe)| exe).collect(),
        zcprof: one(zcprof, "zcprof")?,
        release: one(release, "release zcprof")?,
        demo: one(demo, "zcprof-demo")?,
    })
}

/// Runs a cargo command with `--message-format=json` and returns `(target name, executable)`
/// of each artifact `wanted(name, is_kind)` accepts.
fn artifacts(
    cmd: &mut Command,
    wanted: impl Fn(&str, &dyn Fn(&str) -> bool) -> bool,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("building the lab's binaries failed (see above)");
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let name = msg["target"]["name"].as_str().unwrap_or("");
        let kinds = msg["target"]["kind"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let is = |k: &str| kinds.iter().any(|v| v == k);
        if wanted(name, &is) {
            found.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    Ok(found)
}

/// A copy of `bin` without debug info in `dir`, remade only when `bin` is newer.
fn strip(bin: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join(file_name(bin));
    let newer = |a: &Path, b: &Path| -> bool {
        let m = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        match (m(a), m(b)) {
            (Some(a), Some(b)) => a > b,
            _ => true,
        }
    };
    if newer(bin, &out) {
        let status = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&out)
            .arg(bin)
            .status()
            .context("running strip (binutils)")?;
        if !status.success() {
            bail!("strip {} failed", bin.display());
        }
    }
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_only_tests_are_skipped_in_their_own_binary_only() {
        let demos = super::skips("demos-b5994efacf9a3b75");
        assert!(demos.starts_with(" --exact --skip "), "{demos}");
        assert!(demos.contains(" --skip demo_list_prints_the_catalogue"));
        assert!(!demos.contains("version_names_the_commit"));
        assert_eq!(super::skips("kernel_layer-d0011db95a183779"), "");
        // Every name is a test of its binary's source file (a renamed test would run again).
        for (target, test) in super::HOST_ONLY {
            let path = format!("{}/../zcprof/tests/{target}.rs", env!("CARGO_MANIFEST_DIR"));
            let source = std::fs::read_to_string(&path).expect("test source");
            assert!(source.contains(&format!("fn {test}()")), "{test} in {path}");
            assert!(super::TESTS.contains(target), "{target}");
        }
    }
}
