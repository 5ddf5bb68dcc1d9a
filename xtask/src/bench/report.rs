//! Turns the runs into the Markdown table and the JSON record under `bench/results/`:
//! medians and spread per workload and condition, and the issue's targets as PASS/MISS.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{
    Results,
    conditions::{Condition, Sample},
    procfs,
    workloads::Workload,
};

fn text_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Machine, kernel, commit and date, taken when the benchmark starts.
pub fn machine(root: &Path) -> Value {
    let root = root.display().to_string();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_default();
    let dirty = !text_of(
        "git",
        &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_empty();
    json!({
        "date_utc": text_of("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "kernel": text_of("uname", &["-r"]),
        "os": os,
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_mib": mem_total_mib(),
        "commit": text_of("git", &["-C", &root, "rev-parse", "--short=12", "HEAD"]),
        "branch": text_of("git", &["-C", &root, "rev-parse", "--abbrev-ref", "HEAD"]),
        "dirty": dirty,
        "loadavg_start": procfs::loadavg(),
        "tools": {
            "bpftrace": text_of("bpftrace", &["--version"]),
            "strace": text_of("strace", &["-V"]).lines().next().unwrap_or("").to_string(),
            "perf": text_of("perf", &["--version"]),
        },
    })
}

pub fn finish_machine(machine: &mut Value) {
    machine["loadavg_end"] = json!(procfs::loadavg());
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// One progress line for a finished run.
pub fn progress(workload: Workload, result: &Result<Sample, String>) -> String {
    match result {
        Ok(s) => {
            let mut line = format!("{} {}", human(s.outcome.throughput), workload.unit());
            if let Some(d) = s.daemon {
                let _ = write!(
                    line,
                    ", daemon {:.2}% CPU {:.1} MiB",
                    d.cpu_share * 100.0,
                    d.peak_rss_kib as f64 / 1024.0
                );
            }
            if let Some(lost) = s.lost {
                let _ = write!(line, ", lost {lost}");
            }
            if let Some(e) = &s.exact {
                let _ = write!(line, ", exact {}", if e.exact { "yes" } else { "NO" });
            }
            line
        }
        Err(err) => format!("FAILED: {err}"),
    }
}

/// 1234567 -> "1.23 M".
fn human(v: f64) -> String {
    let (scale, suffix) = if v >= 1e9 {
        (1e9, " G")
    } else if v >= 1e6 {
        (1e6, " M")
    } else if v >= 1e3 {
        (1e3, " k")
    } else {
        (1.0, " ")
    };
    format!("{:.2}{suffix}", v / scale).trim_end().to_string()
}

#[derive(Clone, Copy, Debug, Default)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// Aggregates of one workload under one condition.
#[derive(Default)]
struct Cell {
    ok: usize,
    failed: Vec<String>,
    throughput: Option<Spread>,
    cpu_throughput: Option<Spread>,
    ns_per_call: Option<Spread>,
    /// CPU ns per call minus the baseline's in the same repetition.
    added_ns: Option<Spread>,
    /// Throughput (per CPU-second) relative to the baseline of the same repetition.
    relative: Option<Spread>,
    hits: Option<Spread>,
    cpu: Option<Spread>,
    rss_kib_max: Option<u64>,
    lost_max: Option<u64>,
    exact: Option<(usize, usize, Option<String>)>,
}

impl Cell {
    /// Overhead: the share of baseline throughput lost (median).
    fn overhead(&self) -> Option<f64> {
        self.relative.map(|r| 1.0 - r.median)
    }

    /// Overhead per repetition as a spread (median, best, worst).
    fn overhead_spread(&self) -> Option<Spread> {
        self.relative.map(|r| Spread {
            median: 1.0 - r.median,
            min: 1.0 - r.max,
            max: 1.0 - r.min,
            n: r.n,
        })
    }
}

/// Overhead from the best repetition of each side (highest throughput per CPU-second):
/// other load on the machine only ever adds CPU time per call (cache misses, stolen
/// cycles), so the best of N estimates the intrinsic cost with less noise than the median.
fn best_overhead(results: &Results, workload: Workload, condition: Condition) -> Option<f64> {
    let base = cell(results, workload, Condition::Baseline).cpu_throughput?;
    let cond = cell(results, workload, condition).cpu_throughput?;
    Some(1.0 - cond.max / base.max)
}

fn cell(results: &Results, workload: Workload, condition: Condition) -> Cell {
    let mut c = Cell::default();
    let (mut thr, mut rel, mut hits, mut cpu) = (vec![], vec![], vec![], vec![]);
    let (mut cthr, mut ns, mut added) = (vec![], vec![], vec![]);
    let mut exact = None::<(usize, usize, Option<String>)>;
    for (rep, w, cond, result) in &results.runs {
        if *w != workload || *cond != condition {
            continue;
        }
        let s = match result {
            Ok(s) => s,
            Err(err) => {
                c.failed.push(err.clone());
                continue;
            }
        };
        c.ok += 1;
        thr.push(s.outcome.throughput);
        cthr.push(s.outcome.cpu_throughput);
        ns.push(s.outcome.ns_per_call);
        hits.push(s.outcome.calls_per_s);
        let baseline = results.runs.iter().find_map(|(r, w2, c2, res)| {
            (*r == *rep && *w2 == workload && *c2 == Condition::Baseline)
                .then(|| res.as_ref().ok().map(|b| b.outcome.clone()))
                .flatten()
        });
        if let Some(b) = baseline {
            rel.push(s.outcome.cpu_throughput / b.cpu_throughput);
            added.push(s.outcome.ns_per_call - b.ns_per_call);
        }
        if let Some(d) = s.daemon {
            cpu.push(d.cpu_share);
            c.rss_kib_max = Some(c.rss_kib_max.unwrap_or(0).max(d.peak_rss_kib));
        }
        if let Some(lost) = s.lost {
            c.lost_max = Some(c.lost_max.unwrap_or(0).max(lost));
        }
        if let Some(e) = &s.exact {
            let entry = exact.get_or_insert((0, 0, None));
            entry.1 += 1;
            if e.exact {
                entry.0 += 1;
            } else if entry.2.is_none() {
                entry.2.clone_from(&e.detail);
            }
        }
    }
    c.throughput = spread(&thr);
    c.cpu_throughput = spread(&cthr);
    c.ns_per_call = spread(&ns);
    c.added_ns = spread(&added);
    c.relative = spread(&rel);
    c.hits = spread(&hits);
    c.cpu = spread(&cpu);
    c.exact = exact;
    c
}

fn fmt_spread(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} [{}–{}]", f(s.median), f(s.min), f(s.max)),
        Some(s) => f(s.median),
        None => "—".into(),
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

struct Target {
    what: String,
    pass: Option<bool>,
    value: String,
}

/// The floor targets (issue 15), from the medians of added CPU ns per syscall in one run:
/// zcprof ≤ 1.5 × the empty hook's, and ≤ ¼ of the cheapest bpftrace peer's. No verdict
/// when a side is missing or not positive (noise can make a small added cost negative, and a
/// ratio to it means nothing).
fn floor_verdicts(
    zcprof: Option<f64>,
    empty: Option<f64>,
    peers: &[Option<f64>],
) -> (Option<bool>, Option<bool>) {
    let positive = |v: Option<f64>| v.filter(|v| *v > 0.0);
    let cheapest = peers
        .iter()
        .filter_map(|p| positive(*p))
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))));
    let z = zcprof.filter(|v| v.is_finite());
    (
        z.zip(positive(empty)).map(|(z, e)| z <= 1.5 * e),
        z.zip(cheapest).map(|(z, b)| z <= b / 4.0),
    )
}

fn targets(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let has = |w: Workload, c: Condition| {
        results.workloads.contains(&w) && results.conditions.contains(&c)
    };
    for w in Workload::ALL {
        if !(has(w, Condition::EmptyHook) && has(w, Condition::Zcprof)) {
            continue;
        }
        let added = |c: Condition| {
            has(w, c)
                .then(|| cell(results, w, c).added_ns.map(|s| s.median))
                .flatten()
        };
        let (z, e) = (added(Condition::Zcprof), added(Condition::EmptyHook));
        let peers = [added(Condition::Bpftrace), added(Condition::BpftraceRaw)];
        let (vs_floor, vs_peer) = floor_verdicts(z, e, &peers);
        let ns = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:+.0} ns"));
        out.push(Target {
            what: format!(
                "{}: zcprof added ns/call ≤ 1.5 × the empty hook's",
                w.name()
            ),
            pass: vs_floor,
            value: format!("{} vs empty hook {}", ns(z), ns(e)),
        });
        out.push(Target {
            what: format!(
                "{}: zcprof added ns/call ≤ ¼ of bpftrace's cheapest",
                w.name()
            ),
            pass: vs_peer,
            value: format!(
                "{} vs bpftrace {} (syscalls:sys_exit_*), {} (raw_syscalls)",
                ns(z),
                ns(peers[0]),
                ns(peers[1])
            ),
        });
    }
    if has(Workload::Storm, Condition::Zcprof) {
        let raw = cell(results, Workload::Storm, Condition::Zcprof);
        let overhead = raw.overhead();
        out.push(Target {
            what: "storm: syscall layer (default, tp_btf) overhead < 5% (per CPU-second)".into(),
            pass: overhead.map(|o| o < 0.05),
            value: format!(
                "{}; best of {}: {}",
                fmt_spread(raw.overhead_spread(), pct),
                results.reps,
                best_overhead(results, Workload::Storm, Condition::Zcprof).map_or("—".into(), pct)
            ),
        });
        if has(Workload::Storm, Condition::Bpftrace) {
            let bpf = cell(results, Workload::Storm, Condition::Bpftrace).overhead();
            for cond in Condition::ZCPROF {
                if !has(Workload::Storm, cond) {
                    continue;
                }
                let z = cell(results, Workload::Storm, cond).overhead();
                let pass = z.zip(bpf).map(|(z, b)| z <= b / 2.0);
                out.push(Target {
                    what: format!("storm: {} overhead ≤ ½ of bpftrace's", cond.name()),
                    pass,
                    value: match (z, bpf) {
                        (Some(z), Some(b)) => {
                            let best = best_overhead(results, Workload::Storm, cond)
                                .zip(best_overhead(results, Workload::Storm, Condition::Bpftrace))
                                .map_or("—".into(), |(z, b)| {
                                    format!("{} vs {} (ratio {:.2})", pct(z), pct(b), z / b)
                                });
                            format!(
                                "{} vs bpftrace {} (ratio {:.2}); best of {}: {best}",
                                pct(z),
                                pct(b),
                                z / b,
                                results.reps
                            )
                        }
                        _ => "—".into(),
                    },
                });
            }
        }
        let mut lost = 0;
        let (mut exact, mut total) = (0, 0);
        let mut hits = Vec::new();
        let mut detail = None;
        for cond in Condition::ZCPROF {
            if !has(Workload::Storm, cond) {
                continue;
            }
            let c = cell(results, Workload::Storm, cond);
            lost = lost.max(c.lost_max.unwrap_or(0));
            if let Some((e, t, d)) = c.exact {
                exact += e;
                total += t;
                if detail.is_none() {
                    detail = d;
                }
            }
            if let Some(h) = c.hits {
                hits.push(h.max);
            }
        }
        let peak = hits.iter().copied().fold(0.0, f64::max);
        out.push(Target {
            what: "storm (the highest probe-hit rate): zero lost events and exact totals, every zcprof run".into(),
            pass: (total > 0).then_some(lost == 0 && exact == total),
            value: format!(
                "lost {lost}; exact {exact}/{total} runs; up to {} hits/s{}",
                human(peak),
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        });
        out.push(Target {
            what: "storm: daemon (`zcprof top -i 1s`) CPU < 2% of one core".into(),
            pass: raw.cpu.map(|c| c.median < 0.02),
            value: fmt_spread(raw.cpu, pct),
        });
        out.push(Target {
            what: "storm: daemon peak RSS (VmHWM) < 50 MiB".into(),
            pass: raw.rss_kib_max.map(|k| k < 50 * 1024),
            value: raw.rss_kib_max.map_or("—".into(), |k| {
                format!("{:.1} MiB (max of runs)", k as f64 / 1024.0)
            }),
        });
    }
    if let Some((_, attach, _)) = results.startup.iter().find(|(m, _, _)| *m == "btf") {
        let s = spread(attach);
        out.push(Target {
            what: "startup: load + attach of every layer < 1 s (default tp_btf mode)".into(),
            pass: s.map(|s| s.median < 1.0),
            value: fmt_spread(s, |v| format!("{v:.3} s")),
        });
    }
    out.extend(scaling_targets(results));
    out
}

/// The daemon-scaling targets (issue 15), at the largest count measured: under 2 % of one
/// core and under 100 MiB, for `top` and for the dashboard's daemon.
fn scaling_targets(results: &Results) -> Vec<Target> {
    let Some(p) = results.scaling.iter().max_by_key(|p| p.processes) else {
        return Vec::new();
    };
    let n = p.processes;
    let dash = p.dashboard.as_ref().ok();
    let dash_share = dash
        .and_then(|v| v["cpu_ms_per_refresh"].as_f64())
        .map(|ms| ms / 1e3);
    let dash_kib = dash.and_then(|v| v["vm_hwm_kib"].as_u64());
    let top = p.top.as_ref().ok();
    let share = |what: &str, v: Option<f64>| Target {
        what: format!("{n} processes: {what} CPU < 2% of one core (1 s refresh)"),
        pass: v.map(|v| v < 0.02),
        value: v.map_or("—".into(), |v| format!("{:.2}%", v * 100.0)),
    };
    let rss = |what: &str, kib: Option<u64>| Target {
        what: format!("{n} processes: {what} peak RSS < 100 MiB"),
        pass: kib.map(|k| k < 100 * 1024),
        value: kib.map_or("—".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
    };
    vec![
        share("`zcprof top --json`", top.map(|t| t.cpu_share)),
        rss("`zcprof top --json`", top.map(|t| t.peak_rss_kib)),
        share("the dashboard's daemon", dash_share),
        rss("the dashboard's daemon", dash_kib),
    ]
}

/// The daemon-scaling table: one row per count of live processes.
fn scaling_table(results: &Results) -> String {
    use super::scaling::{floats, max, median};
    if results.scaling.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Daemon scaling (live processes, each reading and writing a byte a second)\n\n`zcbench sleepers` forks the processes; then `zcprof top --json -i 1s` runs 12 refreshes (CPU per refresh over the last 10, all threads, from /proc/PID/task/*/schedstat; peak RSS, VmHWM; the processes the last frame lists, i.e. active in its interval; lost events), and `zcbench frames` runs the dashboard's daemon — a real session, the dashboard's state fed from it every refresh (`App::apply`) and drawn on ratatui's test backend at 200×50 — for as many, timing each frame's update and draw (its CPU per refresh and memory too; the dashboard's terminal output is not included).\n\n| processes | top: CPU per refresh | top: share of one core | top: peak RSS | top: listed | lost | dashboard: update + draw (median, max) | dashboard: CPU per refresh | dashboard: peak RSS |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in &results.scaling {
        let top = match &p.top {
            Ok(t) => format!(
                "{:.1} ms | {:.2}% | {:.1} MiB | {} | {}",
                t.cpu_ms_per_refresh,
                t.cpu_share * 100.0,
                t.peak_rss_kib as f64 / 1024.0,
                t.listed,
                t.lost
            ),
            Err(err) => format!("failed: {err} | | | |"),
        };
        let dash = match &p.dashboard {
            Ok(v) => {
                let frame: Vec<f64> = floats(&v["apply_ms"])
                    .iter()
                    .zip(floats(&v["draw_ms"]))
                    .map(|(a, d)| a + d)
                    .collect();
                format!(
                    "{:.1} ms ({:.1} + {:.1}), {:.1} ms | {:.1} ms | {:.1} MiB",
                    median(&frame),
                    median(&floats(&v["apply_ms"])),
                    median(&floats(&v["draw_ms"])),
                    max(&frame),
                    v["cpu_ms_per_refresh"].as_f64().unwrap_or(f64::NAN),
                    v["vm_hwm_kib"].as_u64().unwrap_or(0) as f64 / 1024.0
                )
            }
            Err(err) => format!("failed: {err} | |"),
        };
        let _ = writeln!(md, "| {} | {top} | {dash} |", p.processes);
    }
    md
}

fn markdown(results: &Results) -> String {
    let m = &results.machine;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# zcprof benchmark — {}\n",
        m["date_utc"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        md,
        "Machine: {} × {}, {} MiB, {}; kernel {}. Commit `{}`{} on `{}`. {} repetitions, storm {} s (others {:.1} s); load average {:.2} at start, {:.2} at end; the run took {:.0} s. Made by `cargo xtask bench`.\n",
        m["cpus"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_mib"],
        m["os"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
        if m["dirty"] == true {
            " (with uncommitted changes)"
        } else {
            ""
        },
        m["branch"].as_str().unwrap_or("?"),
        results.reps,
        results.seconds,
        (results.seconds * 2.0 / 3.0).max(0.5),
        m["loadavg_start"].as_f64().unwrap_or(f64::NAN),
        m["loadavg_end"].as_f64().unwrap_or(f64::NAN),
        results.wall_s,
    );
    md.push_str("Figures are medians with the [min–max] over repetitions. Overheads are measured on CPU time, not wall time, because the machine is shared: *per CPU-s* is the workload's throughput per second of its own processes' CPU time (user + system, which includes every probe that runs inside their syscalls; ptrace-based tracers also cost context switches that land partly elsewhere, so their wall figures matter too), *overhead* is 1 − that divided by the baseline's in the same repetition, *best of N* compares the best repetition of each side (other load only ever adds CPU time per call, so this is the least noisy estimate of the intrinsic cost), and *added ns/call* is the extra CPU time per counted syscall. *Wall* is the plain throughput, for reference. *Probe hits/s* is the workload's counted syscalls per second under that condition (each is one run of a syscall-exit probe). *Daemon* is the watching profiler's process: CPU while the workload ran (share of one core, all threads, from /proc/PID/task/*/schedstat) and peak RSS (VmHWM). *Exact* compares the profiler's per-process totals (calls and bytes for zcprof, summed from its `top --json` frames; bytes for bpftrace) with each workload process's own count.\n\n");

    md.push_str("## Targets (issues 7 and 15)\n\n| target | result | measured |\n|---|---|---|\n");
    for t in targets(results) {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "**MISS**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {} | {verdict} | {} |", t.what, t.value);
    }

    md.push_str(&io_uring_cost(results));
    md.push_str(&opt_in_cost(
        results,
        "The flows layer's cost",
        "--flows",
        "the same with `--flows`, i.e. `zcprof all layers`: every counted syscall also looks its descriptors up in the task's file table",
        Condition::ZcprofAll,
    ));
    md.push_str(&opt_in_cost(
        results,
        "The threads layer's cost",
        "--threads",
        "the same with `--threads`: every counted syscall also updates a per-thread entry",
        Condition::ZcprofThreads,
    ));
    md.push_str(&opt_in_cost(
        results,
        "The stacks layer's cost",
        "--stacks",
        "the same with `--stacks` (one user stack per 1 MiB of a process's bytes of one syscall): every counted syscall also divides its byte counter by the period",
        Condition::ZcprofStacks,
    ));
    md.push_str(&opt_in_cost(
        results,
        "The user layer's cost",
        "--user-copies",
        "the same with `--user-copies`: every memcpy/memmove/mempcpy call of every process using this host's libc traps into a uprobe",
        Condition::ZcprofUserCopies,
    ));
    md.push_str(&opt_in_cost(
        results,
        "The cpu layer's cost",
        "--cpu",
        "the same with `--cpu` (cpu-clock sampling at 999 Hz per CPU): a cost per sample, so per second, whatever the syscall rate",
        Condition::ZcprofCpu,
    ));

    md.push_str(&scaling_table(results));

    md.push_str("\n## Startup (in-process `probes::load`: BTF, object load, verifier, every attach)\n\n| syscall probe mode | load + attach | detach (drop) |\n|---|---|---|\n");
    for (mode, attach, detach) in &results.startup {
        let secs = |v: f64| format!("{v:.3} s");
        let _ = writeln!(
            md,
            "| {mode} | {} | {} |",
            fmt_spread(spread(attach), secs),
            fmt_spread(spread(detach), secs)
        );
    }

    for &w in &results.workloads {
        let _ = writeln!(md, "\n## {} — {}\n", w.name(), w.describe());
        let _ = writeln!(
            md,
            "| condition | {} per CPU-s | overhead | overhead, best of N | CPU ns/call | added ns/call | wall {} | probe hits/s | daemon CPU | daemon peak RSS | lost events | exact totals |",
            w.unit().trim_end_matches("/s"),
            w.unit()
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for &c in &results.conditions {
            let x = cell(results, w, c);
            if x.ok == 0 {
                let _ = writeln!(
                    md,
                    "| {} | failed: {} | | | | | | | | | | |",
                    c.name(),
                    x.failed
                        .first()
                        .map_or("", String::as_str)
                        .replace('|', "/")
                );
                continue;
            }
            let overhead = x.overhead_spread();
            let exact = match &x.exact {
                Some((e, t, _)) if e == t => format!("yes ({e}/{t})"),
                Some((e, t, d)) => format!("**NO** ({e}/{t}): {}", d.as_deref().unwrap_or("")),
                None => "—".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{}",
                c.name(),
                fmt_spread(x.cpu_throughput, human),
                if c == Condition::Baseline {
                    "—".into()
                } else {
                    fmt_spread(overhead, pct)
                },
                if c == Condition::Baseline {
                    "—".into()
                } else {
                    best_overhead(results, w, c).map_or("—".into(), pct)
                },
                fmt_spread(x.ns_per_call, |v| format!("{v:.0}")),
                if c == Condition::Baseline {
                    "—".into()
                } else {
                    fmt_spread(x.added_ns, |v| format!("{v:+.0}"))
                },
                fmt_spread(x.throughput, human),
                fmt_spread(x.hits, human),
                fmt_spread(x.cpu, pct),
                x.rss_kib_max
                    .map_or("—".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                x.lost_max.map_or("—".into(), |l| l.to_string()),
                exact,
                if x.failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({} runs failed: {})", x.failed.len(), x.failed[0])
                },
            );
        }
    }

    md.push_str(&prog_table(results));

    md.push_str("\n## Conditions\n\n");
    for &c in &results.conditions {
        let _ = writeln!(md, "- **{}**: {}", c.name(), c.describe());
    }
    for (c, why) in &results.skipped {
        let _ = writeln!(md, "- **{}**: not run — {why}", c.name());
    }
    md
}

/// Whether workload `w` ran under condition `c` in this run.
fn ran(results: &Results, w: Workload, c: Condition) -> bool {
    results.workloads.contains(&w) && results.conditions.contains(&c)
}

/// The median added CPU ns per event of `w` under `c`, if it ran.
fn added_median(results: &Results, w: Workload, c: Condition) -> Option<f64> {
    ran(results, w, c)
        .then(|| cell(results, w, c).added_ns.map(|s| s.median))
        .flatten()
}

/// A signed ns figure, `—` when there is none.
fn ns(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:+.0} ns"))
}

/// The io_uring layer's cost beside the syscall layer's, from the medians of added CPU ns
/// per request on the uring workload (whose requests the syscall layer never sees: it only
/// pays its sys_exit hook on each `io_uring_enter`) and per syscall on the storm.
fn io_uring_cost(results: &Results) -> String {
    let has = |w: Workload, c: Condition| ran(results, w, c);
    if !has(Workload::Uring, Condition::Zcprof) {
        return String::new();
    }
    let added = |w: Workload, c: Condition| added_median(results, w, c);
    let mut md = String::from(
        "\n## The io_uring layer's cost, beside the syscall layer's\n\nAdded CPU ns per counted event (medians): per completed request on `uring` (two io_uring tracepoint hits each, and a sys_exit hit per 32 requests), per syscall on `storm` (one sys_exit hit each). The io_uring layer's own share is `zcprof` minus `zcprof no io_uring` on `uring`.\n\n| workload | empty hooks | zcprof | zcprof no io_uring | io_uring layer | bpftrace | bpftrace raw_syscalls |\n|---|---|---|---|---|---|---|\n",
    );
    for w in [Workload::Uring, Workload::Storm] {
        if !has(w, Condition::Zcprof) {
            continue;
        }
        let (z, off) = (
            added(w, Condition::Zcprof),
            added(w, Condition::ZcprofNoIoUring),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            w.name(),
            ns(added(w, Condition::EmptyHook)),
            ns(z),
            ns(off),
            ns(z.zip(off).map(|(z, o)| z - o)),
            ns(added(w, Condition::Bpftrace)),
            ns(added(w, Condition::BpftraceRaw)),
        );
    }
    md
}

/// An opt-in dimension's cost on the syscall-bound workloads: what `condition` (zcprof with
/// `flag`) adds per syscall over `zcprof`, against the rule that keeps such a dimension on by
/// default only if the added ns per syscall grow by at most 15 %.
fn opt_in_cost(
    results: &Results,
    title: &str,
    flag: &str,
    what: &str,
    condition: Condition,
) -> String {
    let added = |w: Workload, c: Condition| added_median(results, w, c);
    let mut md = format!(
        "\n## {title} (`{flag}`)\n\nAdded CPU ns per syscall (medians) of `zcprof` and of `{}` ({what}). A dimension may be on by default only if it adds at most 15 % to zcprof's added ns per syscall; otherwise it stays opt-in.\n\n| workload | zcprof | zcprof {flag} | the dimension | growth | on by default? |\n|---|---|---|---|---|---|\n",
        condition.name()
    );
    let mut rows = 0;
    for w in [Workload::Storm, Workload::DdBs1] {
        let (Some(z), Some(with)) = (added(w, Condition::Zcprof), added(w, condition)) else {
            continue;
        };
        rows += 1;
        let growth = (z > 0.0).then(|| (with - z) / z);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            w.name(),
            ns(Some(z)),
            ns(Some(with)),
            ns(Some(with - z)),
            growth.map_or("—".into(), |g| format!("{:+.0} %", g * 100.0)),
            match growth {
                Some(g) if g <= 0.15 => "yes (≤ 15 %)",
                Some(_) => "no: opt-in (> 15 %)",
                None => "—",
            },
        );
    }
    if rows == 0 {
        return String::new();
    }
    md
}

/// The statistics pass as a table: per workload and watching profiler, its busiest
/// program's own run time per call (the kernel's BPF statistics), and for zcprof what it
/// adds over the empty hook's program — its own work, the hook's entry and exit apart.
fn prog_table(results: &Results) -> String {
    if results.prog_stats.is_empty() {
        return String::new();
    }
    let runs = |n: u64| {
        if n < 1000 {
            n.to_string()
        } else {
            human(n as f64)
        }
    };
    let mut md = String::from(
        "\n## Program run time (the kernel's BPF statistics, a pass of its own)\n\nEach watching profiler ran each workload once more with `BPF_ENABLE_STATS` on (statistics cost ~20 ns per program run, so the timed repetitions above run without them). *ns/run* is the kernel's run time of the profiler's busiest program over its runs while the workload ran, the statistics' own cost included; *over the empty hook* is that minus the empty program's on the same workload: the profiler's own work. Runs count every process's syscalls, not only the workload's.\n\n| workload | condition | busiest program | runs | ns/run | over the empty hook | other programs that ran |\n|---|---|---|---|---|---|---|\n",
    );
    let busiest = |w: Workload, c: Condition| {
        results
            .prog_stats
            .iter()
            .find(|(pw, pc, _)| *pw == w && *pc == c)
            .and_then(|(_, _, r)| r.as_ref().ok())
            .and_then(|progs| progs.first())
            .and_then(|p| p.ns_per_run())
    };
    for (w, c, result) in &results.prog_stats {
        match result {
            Ok(progs) => {
                let Some(top) = progs.first() else {
                    let _ = writeln!(md, "| {} | {} | — | 0 | — | — | — |", w.name(), c.name());
                    continue;
                };
                let ns = top.ns_per_run();
                let floor = busiest(*w, Condition::EmptyHook);
                let over = match (ns, floor) {
                    (Some(ns), Some(f)) if *c != Condition::EmptyHook => {
                        format!("{:+.0} ns", ns - f)
                    }
                    _ => "—".into(),
                };
                let others: Vec<String> = progs[1..]
                    .iter()
                    .take(4)
                    .map(|p| format!("{} ×{}", p.name, runs(p.runs)))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | `{}` | {} | {} | {over} | {} |",
                    w.name(),
                    c.name(),
                    top.name,
                    runs(top.runs),
                    ns.map_or("—".into(), |v| format!("{v:.0}")),
                    if others.is_empty() {
                        "—".into()
                    } else {
                        others.join(", ")
                    },
                );
            }
            Err(err) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | failed: {err} | | | | |",
                    w.name(),
                    c.name()
                );
            }
        }
    }
    md
}

fn to_json(results: &Results) -> Value {
    let runs: Vec<Value> = results
        .runs
        .iter()
        .map(|(rep, w, c, r)| match r {
            Ok(s) => json!({
                "rep": rep, "workload": w.name(), "condition": c.name(), "ok": true,
                "throughput": s.outcome.throughput, "unit": w.unit(),
                "throughput_per_cpu_s": s.outcome.cpu_throughput,
                "cpu_ns_per_call": s.outcome.ns_per_call,
                "probe_hits_per_s": s.outcome.calls_per_s,
                "daemon_cpu_share": s.daemon.map(|d| d.cpu_share),
                "daemon_peak_rss_kib": s.daemon.map(|d| d.peak_rss_kib),
                "lost": s.lost,
                "exact": s.exact.as_ref().map(|e| e.exact),
                "exact_detail": s.exact.as_ref().and_then(|e| e.detail.clone()),
                "workload_truth": s.outcome.truth.iter().map(|(pid, t)| json!({"pid": pid, "calls": t.calls, "bytes": t.bytes})).collect::<Vec<_>>(),
            }),
            Err(err) => json!({"rep": rep, "workload": w.name(), "condition": c.name(), "ok": false, "error": err}),
        })
        .collect();
    let targets: Vec<Value> = targets(results)
        .into_iter()
        .map(|t| json!({"target": t.what, "pass": t.pass, "measured": t.value}))
        .collect();
    json!({
        "schema": "zcprof.bench/v1",
        "machine": results.machine,
        "reps": results.reps,
        "storm_seconds": results.seconds,
        "wall_s": results.wall_s,
        "targets": targets,
        "startup": results.startup.iter().map(|(m, a, d)| json!({"mode": m, "load_attach_s": a, "detach_s": d})).collect::<Vec<_>>(),
        "skipped": results.skipped.iter().map(|(c, why)| json!({"condition": c.name(), "reason": why})).collect::<Vec<_>>(),
        "runs": runs,
        "scaling": results.scaling.iter().map(|p| json!({
            "processes": p.processes,
            "top": match &p.top {
                Ok(t) => json!({
                    "ok": true, "cpu_ms_per_refresh": t.cpu_ms_per_refresh,
                    "cpu_share": t.cpu_share, "peak_rss_kib": t.peak_rss_kib,
                    "listed": t.listed, "lost": t.lost,
                }),
                Err(err) => json!({"ok": false, "error": err}),
            },
            "dashboard": match &p.dashboard {
                Ok(v) => v.clone(),
                Err(err) => json!({"ok": false, "error": err}),
            },
        })).collect::<Vec<_>>(),
        "prog_stats": results.prog_stats.iter().map(|(w, c, r)| match r {
            Ok(progs) => json!({
                "workload": w.name(), "condition": c.name(), "ok": true,
                "programs": progs.iter().map(|p| json!({
                    "id": p.id, "name": p.name, "runs": p.runs, "run_time_ns": p.run_time_ns,
                    "ns_per_run": p.ns_per_run(),
                })).collect::<Vec<_>>(),
            }),
            Err(err) => json!({"workload": w.name(), "condition": c.name(), "ok": false, "error": err}),
        }).collect::<Vec<_>>(),
    })
}

/// Writes `<date>.md` and `<date>.json`, and points `latest.md`/`latest.json` at them.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = results.machine["date_utc"]
        .as_str()
        .unwrap_or("unknown")
        .replace(':', "");
    let md = markdown(results);
    let json = serde_json::to_string_pretty(&to_json(results))? + "\n";
    let md_path = dir.join(format!("{stamp}.md"));
    let json_path = dir.join(format!("{stamp}.json"));
    for (path, text) in [(&md_path, &md), (&json_path, &json)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    for (latest, target) in [("latest.md", &md_path), ("latest.json", &json_path)] {
        point_at(&dir.join(latest), target)?;
    }
    Ok((md_path, json_path))
}

/// Makes `link` a relative symbolic link to `target` (a file in the same directory), replacing
/// whatever was there in one rename, so a reader sees the old result or the new one. A link
/// rather than a copy: the newest result exists once in the repository, under its date.
fn point_at(link: &Path, target: &Path) -> anyhow::Result<()> {
    let name = target
        .file_name()
        .with_context(|| format!("{} has no file name", target.display()))?;
    let dir = link.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.new-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(name, &temp)
        .with_context(|| format!("creating the link {}", temp.display()))?;
    std::fs::rename(&temp, link).with_context(|| format!("replacing {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_min_max_of_finite_values() {
        let s = spread(&[3.0, 1.0, f64::NAN, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(spread(&[]).is_none());
        assert_eq!(fmt_spread(spread(&[1.0]), |v| format!("{v}")), "1");
        assert_eq!(fmt_spread(None, |v| format!("{v}")), "—");
    }

    #[test]
    fn latest_points_at_the_newest_result() {
        let dir = tempfile::tempdir().expect("temp dir");
        let latest = dir.path().join("latest.md");
        // A byte copy, as results were kept before, is replaced by a link.
        std::fs::write(&latest, "old copy").expect("write");
        for stamp in ["2026-11-22T222906Z", "2026-11-23T001235Z"] {
            let dated = dir.path().join(format!("{stamp}.md"));
            std::fs::write(&dated, stamp).expect("write");
            point_at(&latest, &dated).expect("link");
            assert_eq!(
                std::fs::read_link(&latest).expect("a link"),
                Path::new(&format!("{stamp}.md")),
                "relative, so it holds in any checkout"
            );
            assert_eq!(std::fs::read_to_string(&latest).expect("read"), stamp);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 3, "no temporary link is left: {names:?}");
    }

    #[test]
    fn floor_targets_pass_at_the_bounds_and_give_no_verdict_without_both_sides() {
        // 1.5 × 40 = 60 and ¼ × min(240, 200) = 50.
        assert_eq!(
            floor_verdicts(Some(50.0), Some(40.0), &[Some(240.0), Some(200.0)]),
            (Some(true), Some(true))
        );
        assert_eq!(
            floor_verdicts(Some(60.0), Some(40.0), &[Some(200.0)]),
            (Some(true), Some(false))
        );
        assert_eq!(
            floor_verdicts(Some(61.0), Some(40.0), &[Some(400.0)]),
            (Some(false), Some(true))
        );
        // The cheaper peer decides; a missing or non-positive one is skipped.
        assert_eq!(
            floor_verdicts(Some(50.0), None, &[None, Some(-3.0), Some(199.0)]),
            (None, Some(false))
        );
        assert_eq!(
            floor_verdicts(None, Some(40.0), &[Some(200.0)]),
            (None, None)
        );
        assert_eq!(floor_verdicts(Some(50.0), Some(-1.0), &[]), (None, None));
    }

    #[test]
    fn human_scales() {
        assert_eq!(human(1_234_567.0), "1.23 M");
        assert_eq!(human(12.0), "12.00");
        assert_eq!(human(5.2e9), "5.20 G");
    }
}
