//! Comparisons and claims for people (text, Markdown) and programs (JSON).
//!
//! Every column says where its figure comes from: the **syscall layer** (zcprof's counts
//! for the variant's worker processes), the **kernel layer** (its copy role's probes, for
//! the same processes), the demo's **wall clock** and rusage, or the demo's own **tally**.
//! Whether the profiler matched the ground truth is always shown.

use std::fmt::Write as _;

use serde::Serialize;
use zcprof_demos::ScenarioInfo;

use super::{
    claims::{Evaluated, Verdict},
    compare::{Comparison, KernelCopies, Variant, WorkerRow},
};
use crate::{
    probes::LayerSummary,
    report::{Lost, layers_line},
    units,
};

/// Schema name of `demo run --json` output.
pub const SCHEMA: &str = "zcprof.demo/v1";

/// The session facts every rendering states.
pub struct Context<'a> {
    pub layers: &'a [LayerSummary],
    pub lost: Lost,
}

/// `3.00`, or `-` when undefined.
fn per_byte(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn speedup(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

/// `exact (2/2 workers)` or `MISMATCH (1/2 workers exact)`; a payload that did not
/// verify or a copy-free role that copied is named too.
fn truth(v: &Variant) -> String {
    let exact = v
        .workers
        .iter()
        .filter(|w| w.differences.is_empty())
        .count();
    let mut s = if v.exact() {
        format!("exact ({exact}/{} workers)", v.workers.len())
    } else {
        format!("MISMATCH ({exact}/{} workers exact)", v.workers.len())
    };
    if !v.copy_free_ok() {
        s.push_str(", copy-free role copied");
    }
    if !v.verified {
        s.push_str(", payload NOT verified");
    }
    s
}

/// The kernel column: both directions from the copy role, or `-` when none attached.
fn kernel_cell(k: &KernelCopies) -> String {
    k.copied_bytes()
        .map_or_else(|| "-".into(), |b| units::bytes(b as f64))
}

/// `; kernel copies k→u X, u→k Y (cross_check)` for a worker line, or nothing when no copy
/// role attached (the footnote says so once, rather than every line).
fn kernel_suffix(k: &KernelCopies) -> String {
    match (k.copy_source, k.copy_k2u_bytes, k.copy_u2k_bytes) {
        (Some(role), Some(k2u), Some(u2k)) => format!(
            "; kernel copies k→u {}, u→k {} ({role})",
            units::bytes(k2u as f64),
            units::bytes(u2k as f64)
        ),
        _ => String::new(),
    }
}

/// The demo's own tallies under a worker's line: its io_uring requests per opcode, and its
/// zero-copy sends with what the kernel reported (the ground truth of the figures).
fn demo_tally_lines(w: &WorkerRow) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(u) = &w.demo_io_uring {
        let ops: Vec<String> = u
            .ops
            .iter()
            .map(|(name, o)| {
                format!(
                    "{name} {} calls {}{}",
                    units::count(o.calls),
                    units::bytes(o.bytes as f64),
                    match o.errors {
                        0 => String::new(),
                        n => format!(" {n} errors"),
                    }
                )
            })
            .collect();
        out.push(format!(
            "io_uring (demo tally, which the io_uring layer's counts in the figures are checked \
             against): {} in {} io_uring_enter",
            ops.join(", "),
            units::count(u.enter.calls)
        ));
    }
    if let Some(m) = &w.mapped {
        let faults = format!(
            "; the worker's page faults, every mapping: {} minor, {} major (getrusage)",
            units::count(m.minor_faults),
            units::count(m.major_faults)
        );
        out.push(match m.profiler_pages {
            Some(pages) => format!(
                "mapped instead of read: {} pages ({}) of the file mapped in (mapped layer), {} \
                 touched (demo tally{}){faults}",
                units::count(pages),
                units::bytes((pages * 4096) as f64),
                units::count(m.demo_pages),
                if m.by_kernel {
                    "; the kernel read the mapping itself, and some of the pages it maps \
                     there fire no tracepoint: a lower bound"
                } else {
                    ""
                }
            ),
            None => format!(
                "mapped instead of read: {} pages of the file touched (demo tally; the mapped \
                 layer is unavailable on this kernel){faults}",
                units::count(m.demo_pages)
            ),
        });
    }
    if let Some(z) = &w.demo_zerocopy {
        let via = match z.via {
            zcprof_demos::zerocopy::Via::MsgZerocopy => "MSG_ZEROCOPY",
            zcprof_demos::zerocopy::Via::IoUringSendZc => "io_uring SEND_ZC",
        };
        out.push(format!(
            "zero-copy requested (demo tally, {via}): {} sends {}; the kernel reported {} \
             sends ({}) copied anyway and {} ({}) sent without a copy, in {} notifications",
            units::count(z.requested.calls),
            units::bytes(z.requested.bytes as f64),
            units::count(z.copied.sends),
            units::bytes(z.copied.bytes as f64),
            units::count(z.not_copied.sends),
            units::bytes(z.not_copied.bytes as f64),
            units::count(z.notifications)
        ));
    }
    out
}

/// `not run here: MODE (REASON)`, one per mode this kernel cannot run.
fn unsupported_lines(c: &Comparison) -> Vec<String> {
    c.unsupported
        .iter()
        .map(|u| format!("not run here: {} ({})", u.mode, u.reason))
        .collect()
}

/// What the kernel column is, or why it is empty.
fn kernel_note(c: &Comparison) -> String {
    match c.copy_source {
        Some(role) => format!(
            "kernel: kernel layer, bytes copied k→u + u→k as its {} probes counted them \
             (probes of other roles see the same bytes and are not added), summed over the \
             mode's worker processes; no demo tally checks it{}.",
            role.name(),
            role.blind_spot()
                .map(|(_, long)| format!("; {long}"))
                .unwrap_or_default()
        ),
        None => "kernel: kernel layer, but no kernel copy probe (primitive or cross_check \
                 role) attached here, so it shows - (`zcprof doctor` says why)."
            .into(),
    }
}

/// The `demo run` table, with one line per worker under each mode.
pub fn text(info: &ScenarioInfo, c: &Comparison, ctx: &Context) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "zcprof demo {}: {}", c.scenario, info.description);
    let _ = writeln!(out, "{} · {}", layers_line(ctx.layers), ctx.lost.line());
    // Narrower mode, throughput and CPU columns than the values could ever need make room
    // for the kernel column without widening the line much (longest mode: 16 characters).
    let _ = writeln!(
        out,
        "\n{:<16} {:>10} {:>10} {:>8} {:>9} {:>7} {:>10} {:>12} {:>8} {:>6}  profiler vs demo",
        "mode",
        "payload",
        "copied",
        "copies/B",
        "zero-copy",
        "calls",
        "kernel",
        "throughput",
        "speed-up",
        "CPU s"
    );
    for v in &c.variants {
        let name = if v.baseline {
            format!("{} *", v.mode)
        } else {
            v.mode.clone()
        };
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>10} {:>8} {:>9} {:>7} {:>10} {:>12} {:>8} {:>6.3}  {}",
            name,
            units::bytes(v.payload_bytes as f64),
            units::bytes(v.figures.copied_bytes() as f64),
            per_byte(v.copy_amplification),
            units::percent(v.zero_copy_ratio),
            units::count(v.figures.calls),
            kernel_cell(&v.kernel),
            units::rate(v.throughput_bytes_per_sec),
            speedup(v.speedup),
            v.cpu_seconds,
            truth(v)
        );
        for w in &v.workers {
            let _ = writeln!(
                out,
                "    {:<12} pid {:<8} copied {} (k→u {}, u→k {}), zero-copy {}, {} calls{}{}",
                w.role,
                w.pid,
                units::bytes(w.figures.copied_bytes() as f64),
                units::bytes(w.figures.copy_k2u_bytes as f64),
                units::bytes(w.figures.copy_u2k_bytes as f64),
                units::bytes(w.figures.zero_copy_bytes as f64),
                units::count(w.figures.calls),
                kernel_suffix(&w.kernel),
                if w.differences.is_empty() {
                    String::new()
                } else {
                    format!(" — MISMATCH: {}", w.differences.join("; "))
                }
            );
            for line in demo_tally_lines(w) {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    for line in unsupported_lines(c) {
        let _ = writeln!(out, "{line}");
    }
    let free: Vec<String> = c
        .variants
        .iter()
        .flat_map(|v| {
            v.copy_free.iter().map(move |f| {
                format!(
                    "{}/{} {} copy calls{}",
                    v.mode,
                    f.role,
                    f.copy_calls,
                    if f.ok { "" } else { " (expected none)" }
                )
            })
        })
        .collect();
    if !free.is_empty() {
        let _ = writeln!(
            out,
            "\ncopy-free roles (syscall and io_uring layers, copy family): {}",
            free.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n* baseline ({}). copied, copies/B (bytes copied between user and kernel space per \
         payload byte), zero-copy (share of moved bytes) and calls: syscall and io_uring layers, summed \
         over the mode's worker processes. {} payload, throughput and CPU: the demo (wall clock, \
         workers' rusage). speed-up: throughput over the baseline's. profiler vs demo: \
         every worker's per-syscall and per-opcode calls, bytes and errors against its own \
         tally.",
        c.baseline,
        kernel_note(c)
    );
    out
}

#[derive(Serialize)]
struct RunJson<'a> {
    schema: &'static str,
    scenario: &'a str,
    baseline: &'a str,
    /// The layers that produced bytes, calls, amplification and ratios (`syscall+io_uring`:
    /// summed, as `run` sums them); each `kernel`
    /// object is the kernel layer's and names its role in `copy_source`.
    layer: &'static str,
    layers: &'a [LayerSummary],
    lost: Lost,
    /// Every worker exact and every copy-free role copy-free, in every mode.
    exact: bool,
    variants: &'a [Variant],
    /// Modes this kernel cannot run, with the demo's reason.
    unsupported: &'a [super::compare::Unsupported],
}

/// `demo run --json`: one object, schema [`SCHEMA`].
pub fn json(c: &Comparison, ctx: &Context) -> String {
    let doc = RunJson {
        schema: SCHEMA,
        scenario: &c.scenario,
        baseline: &c.baseline,
        layer: "syscall+io_uring",
        layers: ctx.layers,
        lost: ctx.lost,
        exact: c.all_exact(),
        variants: &c.variants,
        unsupported: &c.unsupported,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

/// How the report's runs were made, for its header.
pub struct ReportMeta {
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub date_utc: String,
    /// `release` or `debug` (of zcprof; the demo is built alongside).
    pub profile: &'static str,
    pub repeats: usize,
    pub seconds: f64,
}

/// One scenario of the report: its catalogue entry, size, and comparison.
pub struct ReportScenario<'a> {
    pub info: &'a ScenarioInfo,
    pub bytes: u64,
    pub comparison: Comparison,
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report of `zcprof demo report`.
pub fn markdown(
    meta: &ReportMeta,
    scenarios: &[ReportScenario],
    claims: &[Evaluated],
    ctx: &Context,
) -> String {
    let mut out = String::new();
    // Per round of runs (one run of every mode); every round has the same workers.
    let runs: usize = scenarios.iter().map(|s| s.comparison.variants.len()).sum();
    let workers: usize = scenarios
        .iter()
        .flat_map(|s| &s.comparison.variants)
        .map(|v| v.workers.len())
        .sum();
    let inexact: Vec<String> = scenarios
        .iter()
        .flat_map(|s| {
            s.comparison
                .variants
                .iter()
                .filter(|v| !(v.exact() && v.copy_free_ok()))
                .map(move |v| format!("{}/{}", s.comparison.scenario, v.mode))
        })
        .collect();
    let _ = writeln!(out, "# zcprof demo report\n");
    let _ = writeln!(
        out,
        "Measured on `{}` (Linux {}, {} CPUs) on {}, in one run of `zcprof demo report` \
         ({:.1} s, {} build): every scenario in every mode, {} run(s) each, one after another; \
         each table shows the median run by throughput.\n",
        meta.host, meta.kernel, meta.cpus, meta.date_utc, meta.seconds, meta.profile, meta.repeats
    );
    if meta.profile == "debug" {
        let _ = writeln!(
            out,
            "**Debug build**: timings of unoptimised code say little about the copies; \
             `cargo xtask run -- demo report` measures a release build.\n"
        );
    }
    let _ = writeln!(
        out,
        "Where each figure comes from: **syscall and io_uring layers** = zcprof's eBPF counts \
         (syscalls, io_uring completions) for the demo's worker processes ({}; {}); **wall clock** = the demo's own timing, first worker start \
         to last worker end; **CPU time** = the workers' CPU time (perf task-clock; rusage user + system where perf events are not permitted); **demo tally** = bytes the demo copied in user space, which no \
         syscall shows.\n",
        layers_line(ctx.layers),
        ctx.lost.line()
    );
    if inexact.is_empty() {
        let _ = writeln!(
            out,
            "Profiler vs ground truth: in all {runs} runs, every one of the {workers} worker \
             processes' calls, bytes and errors per syscall equal the demo's own tally \
             exactly, and every copy-free role made no copy-family syscall.\n",
            runs = runs * meta.repeats,
            workers = workers * meta.repeats,
        );
    } else {
        let _ = writeln!(
            out,
            "Profiler vs ground truth: **MISMATCH** in {} — figures from the syscall and \
             io_uring layers for those modes are not used below.\n",
            inexact.join(", ")
        );
    }

    let agree = claims
        .iter()
        .filter(|e| e.verdict == Verdict::Agrees)
        .count();
    let disagree = claims
        .iter()
        .filter(|e| e.verdict == Verdict::Disagrees)
        .count();
    let _ = writeln!(out, "## Seed claims beside this machine\n");
    let _ = writeln!(
        out,
        "{agree} of {} claims agree with this machine, {disagree} disagree{}.\n",
        claims.len(),
        match claims.len() - agree - disagree {
            0 => String::new(),
            n => format!(", {n} could not be measured"),
        }
    );
    let _ = writeln!(
        out,
        "| scenario | claim (source) | claimed | measured here | from | verdict |\n|---|---|---|---|---|---|"
    );
    for e in claims {
        let verdict = match &e.verdict {
            Verdict::Agrees => "agrees".to_string(),
            Verdict::Disagrees if e.claim.note.is_empty() => "**disagrees**".to_string(),
            Verdict::Disagrees => format!("**disagrees**: {}", e.claim.note),
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
        };
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} |",
            e.claim.scenario,
            cell(e.claim.text),
            cell(e.claim.source),
            cell(e.claim.claimed),
            e.measured_text(),
            e.claim.metric.source(),
            cell(&verdict)
        );
    }

    let _ = writeln!(out, "\n## Scenarios\n");
    let _ = writeln!(
        out,
        "copied, copies/B (bytes copied between user and kernel space per payload byte), \
         zero-copy (share of moved bytes) and calls: syscall and io_uring layers, summed over \
         the mode's workers. throughput, speed-up (over the baseline, marked \\*) and CPU (workers' \
         user + system time): the demo. user copies/B: demo tally.\n"
    );
    for s in scenarios {
        let c = &s.comparison;
        let _ = writeln!(
            out,
            "### {} ({} per run)\n\n{}\n\nSeed claim: {}\n",
            c.scenario,
            units::bytes(s.bytes as f64),
            cell(s.info.description),
            cell(s.info.seed_claim)
        );
        let _ = writeln!(
            out,
            "| mode | payload | copied | copies/B | zero-copy | calls | user copies/B | throughput | speed-up | CPU s | profiler vs demo |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for v in &c.variants {
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} |",
                v.mode,
                if v.baseline { " \\*" } else { "" },
                units::bytes(v.payload_bytes as f64),
                units::bytes(v.figures.copied_bytes() as f64),
                per_byte(v.copy_amplification),
                units::percent(v.zero_copy_ratio),
                units::count(v.figures.calls),
                per_byte(super::compare::ratio(
                    v.user_copy_bytes as f64,
                    v.payload_bytes as f64
                )),
                units::rate(v.throughput_bytes_per_sec),
                speedup(v.speedup),
                v.cpu_seconds,
                truth(v)
            );
        }
        let _ = writeln!(out);
        // What the table cannot show: the demo's tally of io_uring and zero-copy sends, and
        // the modes this kernel could not run.
        let mut notes = Vec::new();
        for v in &c.variants {
            for w in &v.workers {
                for line in demo_tally_lines(w) {
                    notes.push(format!("- {} {}: {}", v.mode, w.role, cell(&line)));
                }
            }
        }
        notes.extend(
            unsupported_lines(c)
                .iter()
                .map(|l| format!("- {}", cell(l))),
        );
        if !notes.is_empty() {
            let _ = writeln!(out, "{}\n", notes.join("\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use zcprof_common::kernel::{Role, id};

    use super::*;
    use crate::demo::{
        claims::{claims, evaluate},
        compare::WorkerRow,
    };
    use crate::model::{Figures, KernelCounters, KernelProbes, Totals};

    fn ctx() -> Context<'static> {
        Context {
            layers: &[],
            lost: Lost {
                kernel: KernelCounters::default(),
                malformed_records: 0,
                total: 0,
            },
        }
    }

    fn comparison(exact: bool) -> Comparison {
        let figures = Figures {
            copy_k2u_bytes: 2048,
            copy_u2k_bytes: 1024,
            calls: 3,
            ..Figures::default()
        };
        Comparison {
            scenario: "file-serve".into(),
            baseline: "read-write".into(),
            variants: vec![Variant {
                mode: "read-write".into(),
                baseline: true,
                payload_bytes: 1024,
                verified: true,
                chunk_bytes: 1024,
                figures,
                kernel: KernelCopies::default(),
                copy_amplification: Some(3.0),
                zero_copy_ratio: Some(0.0),
                user_copy_bytes: 0,
                wall_seconds: 0.001,
                throughput_bytes_per_sec: 1_024_000.0,
                cpu_seconds: 0.002,
                speedup: Some(1.0),
                workers: vec![WorkerRow {
                    role: "server".into(),
                    pid: 42,
                    figures,
                    kernel: KernelCopies::default(),
                    differences: if exact {
                        Vec::new()
                    } else {
                        vec!["read: profiler 1, demo 2".into()]
                    },
                    demo_io_uring: None,
                    demo_zerocopy: None,
                    mapped: None,
                }],
                copy_free: Vec::new(),
            }],
            unsupported: Vec::new(),
            copy_source: None,
        }
    }

    /// `comparison(true)` in a session whose copy role is `source`, the server's kernel
    /// counters saying `__check_object_size` saw 4 KiB copied to user and 1 KiB from user.
    fn with_kernel(source: Option<Role>) -> Comparison {
        let mut k = Totals::<KernelProbes>::zero();
        k[id::CHECK_OBJECT_SIZE_TO_USER as usize].calls = 2;
        k[id::CHECK_OBJECT_SIZE_TO_USER as usize].bytes = 4096;
        k[id::CHECK_OBJECT_SIZE_FROM_USER as usize].calls = 1;
        k[id::CHECK_OBJECT_SIZE_FROM_USER as usize].bytes = 1024;
        let copies = KernelCopies::of(&k, source);
        let mut c = comparison(true);
        c.copy_source = source;
        c.variants[0].kernel = copies;
        c.variants[0].workers[0].kernel = copies;
        c
    }

    /// The kernel column's cell in the first mode's row: it is right-aligned under its title.
    fn kernel_column(t: &str) -> String {
        let lines: Vec<Vec<char>> = t.lines().map(|l| l.chars().collect()).collect();
        let title = lines
            .iter()
            .position(|l| l.starts_with(&['m', 'o', 'd', 'e']))
            .expect("column titles");
        let titles: String = lines[title].iter().collect();
        let end = titles.find(" kernel ").expect("kernel column") + " kernel".len();
        let row = &lines[title + 1];
        row[end - 10..end]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    }

    #[test]
    fn text_shows_kernel_copies_from_the_copy_role() {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let t = text(info, &with_kernel(Some(Role::CrossCheck)), &ctx());
        // 4 KiB + 1 KiB from the kernel layer, beside the syscall layer's 3 KiB.
        assert_eq!(kernel_column(&t), "5.0 KiB", "{t}");
        assert!(t.contains("    3.0 KiB "), "{t}");
        assert!(
            t.contains(", 3 calls; kernel copies k→u 4.0 KiB, u→k 1.0 KiB (cross_check)\n"),
            "{t}"
        );
        assert!(
            t.contains("kernel: kernel layer, bytes copied k→u + u→k as its cross_check probes"),
            "{t}"
        );
        assert!(!t.contains("no kernel copy probe"), "{t}");
    }

    #[test]
    fn text_without_a_copy_role_says_so_rather_than_zero() {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let t = text(info, &with_kernel(None), &ctx());
        assert_eq!(kernel_column(&t), "-", "{t}");
        assert!(!t.contains("kernel copies"), "{t}");
        assert!(
            t.contains(
                "kernel: kernel layer, but no kernel copy probe (primitive or cross_check \
                 role) attached here, so it shows - (`zcprof doctor` says why)."
            ),
            "{t}"
        );
    }

    #[test]
    fn json_kernel_objects_name_their_role_or_are_null() {
        let doc: serde_json::Value =
            serde_json::from_str(&json(&with_kernel(Some(Role::CrossCheck)), &ctx()))
                .expect("JSON");
        let want = serde_json::json!({
            "copy_source": "cross_check",
            "copy_k2u_bytes": 4096,
            "copy_u2k_bytes": 1024,
        });
        assert_eq!(doc["variants"][0]["kernel"], want);
        assert_eq!(doc["variants"][0]["workers"][0]["kernel"], want);
        // The syscall layer's figures stay its own.
        assert_eq!(doc["variants"][0]["figures"]["copy_k2u_bytes"], 2048);

        let doc: serde_json::Value =
            serde_json::from_str(&json(&with_kernel(None), &ctx())).expect("JSON");
        let nulls = serde_json::json!({
            "copy_source": null,
            "copy_k2u_bytes": null,
            "copy_u2k_bytes": null,
        });
        assert_eq!(doc["variants"][0]["kernel"], nulls);
        assert_eq!(doc["variants"][0]["workers"][0]["kernel"], nulls);
    }

    #[test]
    fn text_names_sources_and_the_verdict() {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let t = text(info, &comparison(true), &ctx());
        assert!(t.contains("read-write *"), "{t}");
        assert!(t.contains("3.00"), "{t}");
        assert!(t.contains("exact (1/1 workers)"), "{t}");
        assert!(t.contains("syscall and io_uring layers"), "{t}");
        let bad = text(info, &comparison(false), &ctx());
        assert!(bad.contains("MISMATCH: read: profiler 1, demo 2"), "{bad}");
    }

    #[test]
    fn json_is_one_document_with_the_schema() {
        let doc: serde_json::Value =
            serde_json::from_str(&json(&comparison(true), &ctx())).expect("JSON");
        assert_eq!(doc["schema"], SCHEMA);
        assert_eq!(doc["layer"], "syscall+io_uring");
        assert_eq!(doc["exact"], true);
        assert_eq!(doc["variants"][0]["copy_amplification"], 3.0);
        assert_eq!(doc["variants"][0]["workers"][0]["pid"], 42);
    }

    #[test]
    fn markdown_has_a_row_per_claim_and_states_disagreement() {
        let info = zcprof_demos::scenario("file-serve").expect("catalogue");
        let c = comparison(true);
        let evaluated: Vec<_> = claims()
            .iter()
            .filter(|cl| cl.scenario == "file-serve")
            .map(|cl| evaluate(cl, Some(&c)))
            .collect();
        let meta = ReportMeta {
            host: "h".into(),
            kernel: "6.18".into(),
            cpus: 2,
            date_utc: "2026-11-22".into(),
            profile: "release",
            repeats: 3,
            seconds: 1.0,
        };
        let scenarios = [ReportScenario {
            info,
            bytes: 1024,
            comparison: c,
        }];
        let md = markdown(&meta, &scenarios, &evaluated, &ctx());
        let rows = md
            .lines()
            .filter(|l| l.starts_with("| file-serve |"))
            .count();
        assert_eq!(rows, evaluated.len());
        // read-write copies 3 B per payload B here; the guide says 4.
        assert!(
            md.contains("| 3.00 B per payload B | syscall layer | **disagrees**"),
            "{md}"
        );
        assert!(
            md.contains("not measured: mode sendfile was not run"),
            "{md}"
        );
        assert!(md.contains("exactly"), "{md}");
    }
}
