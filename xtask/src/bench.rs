//! `cargo xtask bench`: what zcprof costs, measured on this machine beside the tools people
//! use today (bpftrace, strace, perf trace), with the results written to `bench/results/`.
//!
//! Every workload runs under every condition, `--reps` times. Within a repetition the
//! conditions of a workload run back to back, in an order rotated from one repetition to
//! the next, so that drift (other load on the machine, thermal state) hits all of them
//! alike; each condition is compared with the baseline of its own repetition. Medians and
//! the min–max spread are reported. See `bench/README.md` for how to read the table.

mod conditions;
mod procfs;
mod progstats;
mod report;
mod scaling;
mod workloads;

use std::{path::PathBuf, time::Instant};

use anyhow::{Context as _, bail};
use conditions::{Condition, Sample, Tools};
use serde_json::Value;
use workloads::Workload;

use crate::{
    setup,
    util::{build_release, cmd, is_root, stdout_of, workspace_root},
};

#[derive(clap::Args)]
pub struct Args {
    /// Repetitions of every workload under every condition (interleaved)
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Seconds each storm run lasts; the other workloads run two thirds of it
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Only these workloads (comma-separated: storm, dd-bs1, uring, bulk, zerocopy,
    /// demo-pipe, and scaling: the daemon at --scaling live processes)
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Live processes the daemon-scaling part measures the daemon at (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    scaling: Vec<usize>,
    /// Only these conditions (comma-separated names as in the table, e.g. baseline,bpftrace)
    #[arg(long, value_delimiter = ',')]
    conditions: Vec<String>,
    /// Where to write the results [default: bench/results]
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Everything one `cargo xtask bench` measured.
pub struct Results {
    pub machine: Value,
    pub reps: usize,
    pub seconds: f64,
    pub workloads: Vec<Workload>,
    pub conditions: Vec<Condition>,
    /// Conditions that could not run here, and why.
    pub skipped: Vec<(Condition, String)>,
    /// (rep, workload, condition, result)
    pub runs: Vec<(usize, Workload, Condition, Result<Sample, String>)>,
    /// The statistics pass: each watching profiler's programs, per workload.
    pub prog_stats: Vec<(Workload, Condition, Result<Vec<progstats::ProgRun>, String>)>,
    /// Per mode: load + attach seconds, detach seconds.
    pub startup: Vec<(&'static str, Vec<f64>, Vec<f64>)>,
    /// The daemon at each number of live processes.
    pub scaling: Vec<scaling::Point>,
    pub wall_s: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let began = Instant::now();
    setup::run()?;
    setup::bench()?;
    if !is_root() {
        bail!("the benchmark attaches eBPF probes and tracers: run it as root");
    }
    let root = workspace_root();
    let bin = build_release(
        &["zcprof", "zcprof-demos", "zcprof-bench"],
        "building zcprof, the demos and the benchmark workloads",
    )?;
    let tools = Tools {
        bin,
        scratch: conditions::scratch_dir()?,
    };
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| args.workloads.is_empty() || args.workloads.iter().any(|n| n == w.name()))
        .collect();
    let mut conditions = Vec::new();
    let mut skipped = Vec::new();
    for c in Condition::ALL {
        if !args.conditions.is_empty() && !args.conditions.iter().any(|n| n == c.name()) {
            continue;
        }
        match conditions::available(c) {
            Ok(()) => conditions.push(c),
            Err(why) => {
                eprintln!("bench: skipping {}: {why}", c.name());
                skipped.push((c, why));
            }
        }
    }
    let scale = args.workloads.is_empty() || args.workloads.iter().any(|n| n == "scaling");
    if (workloads.is_empty() || conditions.is_empty()) && !scale {
        bail!("nothing to run: check --workloads and --conditions");
    }
    let mut machine = report::machine(&root);
    let reps = args.reps.max(1);

    let mut startup = vec![
        ("btf", Vec::new(), Vec::new()),
        ("raw", Vec::new(), Vec::new()),
        ("tracepoint", Vec::new(), Vec::new()),
    ];
    let mut runs = Vec::new();
    for rep in 0..reps {
        for (mode, attach, detach) in &mut startup {
            match time_startup(&tools, mode) {
                Ok((a, d)) => {
                    attach.push(a);
                    detach.push(d);
                }
                Err(err) => eprintln!("bench: startup ({mode}) failed: {err:#}"),
            }
        }
        for &workload in &workloads {
            let seconds = workload_seconds(workload, args.seconds);
            // Rotate the order each repetition so no condition always runs first or last.
            let n = conditions.len();
            for i in 0..n {
                let condition = conditions[(i + rep) % n];
                let result = conditions::run(condition, workload, seconds, &tools, false)
                    .map_err(|err| format!("{err:#}"));
                eprintln!(
                    "bench: [{}/{reps}] {:<10} {:<18} {}",
                    rep + 1,
                    workload.name(),
                    condition.name(),
                    report::progress(workload, &result)
                );
                runs.push((rep, workload, condition, result));
            }
        }
    }
    // One more run of each watching profiler with the kernel's BPF statistics on (they cost
    // ~20 ns per program run, so never during the timed repetitions): each program's own
    // run time per call, the hook apart from the program's work.
    let mut prog_stats = Vec::new();
    for &workload in &workloads {
        let seconds = workload_seconds(workload, args.seconds);
        for &condition in conditions.iter().filter(|c| c.watches()) {
            let result = conditions::run(condition, workload, seconds, &tools, true)
                .map_err(|err| format!("{err:#}"))
                .and_then(|s| s.progs.ok_or_else(|| "no statistics".to_string()));
            eprintln!(
                "bench: [stats] {:<10} {:<18} {}",
                workload.name(),
                condition.name(),
                match &result {
                    Ok(progs) => progs
                        .first()
                        .and_then(|p| p
                            .ns_per_run()
                            .map(|ns| format!("{} {ns:.0} ns/run", p.name)))
                        .unwrap_or_else(|| "no program ran".into()),
                    Err(err) => format!("FAILED: {err}"),
                }
            );
            prog_stats.push((workload, condition, result));
        }
    }
    let scaling = if scale {
        scaling::run(&args.scaling, &tools)
    } else {
        Vec::new()
    };
    // Removes the scratch directory.
    drop(tools);
    report::finish_machine(&mut machine);
    let results = Results {
        machine,
        reps,
        seconds: args.seconds,
        workloads,
        conditions,
        skipped,
        runs,
        prog_stats,
        startup,
        scaling,
        wall_s: began.elapsed().as_secs_f64(),
    };
    let out = args
        .out
        .unwrap_or_else(|| root.join("bench").join("results"));
    let (md, json) = report::write(&results, &out)?;
    println!("{}", std::fs::read_to_string(&md)?);
    eprintln!("bench: wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// How long `workload` runs: the storm `seconds`, the others two thirds of it.
fn workload_seconds(workload: Workload, seconds: f64) -> f64 {
    match workload {
        Workload::Storm => seconds,
        _ => (seconds * 2.0 / 3.0).max(0.5),
    }
}

/// zcprof's load + attach of every probe, and detach, timed in-process by `zcbench startup`.
fn time_startup(tools: &Tools, mode: &str) -> anyhow::Result<(f64, f64)> {
    let out = stdout_of(&mut cmd(
        &tools.bin.join("zcbench").display().to_string(),
        &["startup", "--reps", "1", "--syscall-probe", mode],
    ))?;
    let v: Value = serde_json::from_str(&out).context("zcbench startup output")?;
    let first = |key: &str| v[key][0].as_f64().unwrap_or(f64::NAN);
    Ok((first("load_attach_s"), first("detach_s")))
}
