//! `zcprof demo` against the bundled workloads' own ground truth: every scenario in
//! every mode runs under the profiler (through the library, as `zcprof demo run` does),
//! and each worker process's calls, bytes and errors per syscall must equal what the
//! worker tallied itself, exactly; copy-free roles must show no copy-family syscall.
//! Then the command line: `demo run --json`, `demo report`, `demo list`, and bad input.
//!
//! The workloads are the `zcprof-demo` binary, which must sit beside the `zcprof` binary
//! under test: `cargo test --workspace` (and so `cargo xtask test`) builds it; a plain
//! `cargo test -p zcprof` does not, and these tests then fail saying so. No assertion here
//! depends on timing: throughput ratios belong in `zcprof demo report`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::privileged;
use serde_json::Value;
use zcprof::{
    demo::{
        compare::Comparison,
        measure::Measured,
        runner::{self, DemoArgs},
    },
    model::{Model, Origin},
    probes::{SyscallProbe, copy_source},
};
use zcprof_common::{
    io_uring,
    kernel::{self, Role},
    syscalls::{self, Family, Row},
};
use zcprof_demos::{Counter, ModeInfo, ScenarioInfo, uring::IoUringReport};

/// Small enough that all scenarios together take a few seconds, large enough for many
/// chunks (64 KiB each) per worker.
const BYTES: u64 = 512 << 10;

fn zcprof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zcprof"))
}

fn demo_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_zcprof"))
        .parent()
        .expect("target directory");
    runner::beside(dir).unwrap_or_else(|err| panic!("{err:#} (`cargo test --workspace` builds it)"))
}

/// A fresh path per call: tests run in parallel threads of one process.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zcprof-demos-{name}-{}", std::process::id()))
}

/// The model's counts for one syscall of the instance `parent` forked as `pid`.
fn measured(model: &Model, parent: u32, pid: u32, index: usize) -> Option<Counter> {
    let id = model.child_of(parent, pid)?;
    let s = &model.process(id)?.totals.syscall[index];
    Some(Counter {
        calls: s.calls,
        bytes: s.bytes,
        errors: s.errors,
    })
}

/// Checks one run straight against the model (not through `zcprof::demo`'s own
/// comparison, which is cross-checked afterwards).
fn assert_exact(model: &Model, info: &ScenarioInfo, mode: &ModeInfo, m: &Measured) {
    let what = format!("{}/{}", info.name, mode.name);
    let r = &m.report;
    assert!(r.verified, "{what}: the demo verified its payload");
    assert_eq!(r.payload_bytes, BYTES, "{what}: payload");
    assert_eq!(
        r.roles.len(),
        info.roles.len(),
        "{what}: one worker per role"
    );
    let demo = model
        .child_of(std::process::id(), r.parent_pid)
        .expect("the demo process was seen forked from the test");
    let tree = model.tree(demo);
    for role in &r.roles {
        let pid = role.pid as u32;
        let who = format!("{what}: {} (pid {pid})", role.role);
        for name in role.syscalls.keys() {
            assert!(
                syscalls::SYSCALLS.iter().any(|s| s.name == name),
                "{who}: the demo counted {name}, which zcprof does not count"
            );
        }
        let id = model
            .child_of(r.parent_pid, pid)
            .unwrap_or_else(|| panic!("{who}: no instance forked by the demo"));
        assert!(tree.contains(&id), "{who}: in the demo's fork tree");
        let p = model.process(id).expect("instance");
        assert_eq!(p.origin, Origin::Forked, "{who}: fork seen");
        assert!(p.exited, "{who}: exit seen");
        let mut copy = Counter::default();
        for (i, sc) in syscalls::SYSCALLS.iter().enumerate() {
            if !sc.is_syscall() {
                continue;
            }
            let want = role.syscalls.get(sc.name).copied().unwrap_or_default();
            // The demo tallies a syscall as strace names it: its MSG_ZEROCOPY calls, which
            // zcprof counts in the syscall's zero-copy-requested row, are among them.
            let mut got = measured(model, r.parent_pid, pid, i).expect("instance");
            for (j, sub) in syscalls::SYSCALLS.iter().enumerate() {
                if sub.row == Row::ZeroCopyFlag && sub.nr == sc.nr {
                    got.add(&measured(model, r.parent_pid, pid, j).expect("instance"));
                }
            }
            assert_eq!(got, want, "{who}: {} (calls, bytes, errors)", sc.name);
            if sc.family == Family::Copy {
                copy.add(&got);
            }
        }
        assert_io_uring_exact(&who, p, role.io_uring.as_ref());
        assert_send_zc_exact(&who, p, role.zerocopy.as_ref());
        if mode.copy_free_roles.contains(&role.role.as_str()) {
            assert_eq!(
                copy,
                Counter::default(),
                "{who}: a copy-free role made copy-family calls"
            );
        }
    }
}

/// The io_uring layer against the worker's own io_uring tally (issue 13): per opcode the
/// completions (calls), the bytes and the errors, and the zero-copy notifications, exactly;
/// a worker without a ring has no io_uring counts at all.
fn assert_io_uring_exact(who: &str, p: &zcprof::model::Process, tally: Option<&IoUringReport>) {
    let got = &p.totals.io_uring;
    let Some(tally) = tally else {
        assert!(got.is_zero(), "{who}: io_uring counts without a ring");
        return;
    };
    let mut notifications = 0;
    for op in tally.ops.values() {
        notifications += op.notifications;
    }
    for code in 0..io_uring::OPCODES {
        let want = tally
            .ops
            .values()
            .find(|op| usize::from(op.opcode) == code)
            .map(|op| Counter {
                calls: op.calls,
                bytes: op.bytes,
                errors: op.errors,
            })
            .unwrap_or_default();
        let s = &got[code];
        let have = Counter {
            calls: s.calls,
            bytes: s.bytes,
            errors: s.errors,
        };
        assert_eq!(
            have,
            want,
            "{who}: io_uring {} (calls, bytes, errors)",
            io_uring::OPS[code].name
        );
    }
    assert_eq!(
        got[io_uring::NOTIF as usize].calls,
        notifications,
        "{who}: SEND_ZC notifications"
    );
    assert!(
        tally.ops.values().any(|op| op.calls > 0),
        "{who}: the tally has completions"
    );
}

/// The mapped layer against the pages each worker touched through its one mapping of the
/// input file (issue 13), for that file's device and inode, where the layer attached
/// (Linux 6.12+; before, it must be unavailable, and the check is skipped with that
/// reason): never more than the pages touched, and some of them where the worker's own
/// loads read the mapping. Not exactly: the demo's file may sit in large folios, which a
/// 6.18 kernel maps at once while reporting part of them (tests/mapped.rs checks the
/// exact rule on a file in one-page folios).
fn assert_mapped_pages(
    session: &zcprof::session::Session,
    info: &ScenarioInfo,
    mode: &ModeInfo,
    m: &Measured,
) {
    let what = format!("{}/{}", info.name, mode.name);
    let files = session.mapped_files();
    for role in &m.report.roles {
        let Some(tally) = &role.mapped else {
            continue;
        };
        assert_eq!(
            tally.pages,
            BYTES.div_ceil(4096),
            "{what}: the demo's tally"
        );
        if !session.mapped_layer_attached() {
            let why = session
                .probes
                .iter()
                .find(|p| p.layer == zcprof::probes::Layer::Mapped)
                .and_then(|p| p.reason().map(str::to_string))
                .unwrap_or_default();
            eprintln!("skipping {what}'s mapped pages: the mapped layer is unavailable: {why}");
            continue;
        }
        let got: u64 = files
            .iter()
            .map(|(key, mark)| zcprof::report::run::MappedFile::of(key, mark))
            .filter(|f| f.tgid == role.pid as u32 && f.dev == tally.dev && f.ino == tally.ino)
            .map(|f| f.pages)
            .sum();
        let who = format!("{what}: {} (pid {})", role.role, role.pid);
        if tally.by_kernel {
            // The kernel reads the mapping itself: a lower bound (see `Reader::Kernel`).
            assert!(
                got <= tally.pages,
                "{who}: mapped pages {got} of {}",
                tally.pages
            );
        } else {
            assert!(
                (1..=tally.pages).contains(&got),
                "{who}: mapped pages {got} of {} (its input file)",
                tally.pages
            );
        }
    }
}

/// io_uring SEND_ZC sends against the worker's own tally: every notification the demo
/// read reports usage (the demo asks for reports; zcprof read `zc_report` through BTF), the
/// copied ones are exactly those the demo saw flagged, and the bytes split accordingly.
fn assert_send_zc_exact(
    who: &str,
    p: &zcprof::model::Process,
    tally: Option<&zcprof_demos::zerocopy::ZeroCopyReport>,
) {
    let Some(t) = tally.filter(|t| t.via == zcprof_demos::zerocopy::Via::IoUringSendZc) else {
        return;
    };
    let u = &p.totals.io_uring;
    assert_eq!(
        u[io_uring::NOTIF_REPORTED as usize].calls,
        t.notifications,
        "{who}: SEND_ZC notifications that report usage"
    );
    assert_eq!(u.unreported_notifications(), 0, "{who}");
    let z = u.figures().msg_zerocopy;
    assert_eq!(
        (z.requested_sends, z.requested_bytes),
        (t.requested.calls - t.requested.errors, t.requested.bytes),
        "{who}: SEND_ZC sends and bytes"
    );
    assert_eq!(
        (z.copied_sends, z.done_sends),
        (t.copied.sends, t.not_copied.sends),
        "{who}: SEND_ZC notifications, copied and not"
    );
}

/// The bytes a worker copied by its own tally, as `run` sums them: its copy-family
/// syscalls, its io_uring copy-family completions, and its SEND_ZC bytes that no usage
/// report said were sent without a copy.
fn demo_copied_bytes(r: &zcprof_demos::RoleReport) -> u64 {
    let ring: u64 = r.io_uring.as_ref().map_or(0, |u| {
        u.ops
            .values()
            .filter(|op| io_uring::OPS[usize::from(op.opcode)].family == Family::Copy)
            .map(|op| op.bytes)
            .sum()
    });
    let send_zc = r
        .zerocopy
        .filter(|z| z.via == zcprof_demos::zerocopy::Via::IoUringSendZc)
        .map_or(0, |z| z.requested.bytes - z.not_copied.bytes);
    r.copy_family.bytes + ring + send_zc
}

/// Runs every mode of `scenario` under one session and checks each exactly.
fn every_mode_is_exact(scenario: &str, probe: SyscallProbe) {
    if !privileged(scenario) {
        return;
    }
    let exe = demo_binary();
    let info = zcprof_demos::scenario(scenario).expect("in the catalogue");
    let (rt, mut session) = common::session(probe);
    rt.block_on(async {
        let mut signals = zcprof::session::Signals::new().expect("signal handlers");
        let mut runs = Vec::new();
        for mode in info.modes {
            let run = runner::run_variant(
                &mut session,
                &mut signals,
                &exe,
                scenario,
                mode.name,
                &DemoArgs { bytes: Some(BYTES) },
            )
            .await;
            let m = match run {
                Ok(m) => m,
                // A mode this kernel cannot run (e.g. SEND_ZC without usage reports) is
                // skipped with the demo's reason, never passed off as exact.
                Err(err) => match err.downcast::<runner::DemoUnsupported>() {
                    Ok(skip) => {
                        eprintln!("skipping {scenario}/{skip}");
                        continue;
                    }
                    Err(err) => panic!("{scenario}/{}: {err:#}", mode.name),
                },
            };
            assert_exact(&session.model, info, mode, &m);
            assert_mapped_pages(&session, info, mode, &m);
            runs.push(m);
        }
        // zcprof's own comparison agrees, and copy amplification is what the demo says.
        let c = Comparison::new(info, &runs, copy_source(&session.layers));
        assert_eq!(c.variants.len(), runs.len());
        assert!(c.all_exact(), "{c:#?}");
        for (v, m) in c.variants.iter().zip(&runs) {
            let copied: u64 = m.report.roles.iter().map(demo_copied_bytes).sum();
            assert_eq!(v.figures.copied_bytes(), copied, "{scenario}/{}", v.mode);
        }
    });
}

#[test]
fn file_serve_is_exact() {
    every_mode_is_exact("file-serve", SyscallProbe::Raw);
}

/// The MSG_ZEROCOPY server's flags and error-queue notifications are read from the saved
/// registers, which each probe mode finds its own way.
#[test]
fn file_serve_is_exact_with_tracepoint_probes() {
    every_mode_is_exact("file-serve", SyscallProbe::Tracepoint);
}

#[test]
fn file_serve_is_exact_with_btf_probes() {
    every_mode_is_exact("file-serve", SyscallProbe::Btf);
}

#[test]
fn proxy_is_exact() {
    every_mode_is_exact("proxy", SyscallProbe::Raw);
}

#[test]
fn pipe_is_exact() {
    every_mode_is_exact("pipe", SyscallProbe::Raw);
}

#[test]
fn pipe_is_exact_with_tracepoint_probes() {
    every_mode_is_exact("pipe", SyscallProbe::Tracepoint);
}

#[test]
fn file_copy_is_exact() {
    every_mode_is_exact("file-copy", SyscallProbe::Raw);
}

#[test]
fn file_read_is_exact() {
    every_mode_is_exact("file-read", SyscallProbe::Raw);
}

#[test]
fn in_process_is_exact() {
    every_mode_is_exact("in-process", SyscallProbe::Raw);
}

/// Exactly one error line on stderr, prefixed `zcprof: `; nothing on stdout. Warnings
/// naming unavailable probes may precede it (a missing probe is always reported; on a
/// kernel without kprobes the kernel layer's is).
fn assert_one_line_error(out: &Output, code: i32, mentions: &str) {
    let all = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {all}");
    let stderr: String = all
        .lines()
        .filter(|l| !l.starts_with("zcprof: warning: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(stderr.lines().count(), 1, "one line: {all}");
    assert!(stderr.starts_with("zcprof: "), "{stderr}");
    assert!(stderr.contains(mentions), "mentions {mentions}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn demo_run_json_compares_every_mode_exactly() {
    if !privileged("demo_run_json_compares_every_mode_exactly") {
        return;
    }
    let out = zcprof()
        .args(["demo", "run", "pipe", "--bytes", "256k", "--json"])
        .output()
        .expect("zcprof runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["schema"], "zcprof.demo/v1");
    assert_eq!(doc["layer"], "syscall+io_uring");
    assert_eq!(doc["exact"], true);
    let variants = doc["variants"].as_array().expect("variants");
    let modes: Vec<&str> = variants.iter().filter_map(|v| v["mode"].as_str()).collect();
    assert_eq!(modes, ["read-write", "tee", "vmsplice"]);
    // read-write: producer 1 + relay 3 + consumers 2 copies per byte; vmsplice: 2.
    assert_eq!(variants[0]["copy_amplification"], 6.0);
    assert_eq!(variants[2]["copy_amplification"], 2.0);
    assert_eq!(variants[0]["speedup"], 1.0);
    for v in variants {
        assert_eq!(v["payload_bytes"], 256 * 1024);
        for w in v["workers"].as_array().expect("workers") {
            assert_eq!(w["differences"], Value::Array(Vec::new()), "{w}");
        }
    }
    // The kernel copies name the copy role the same document's layers say attached (the
    // primitives before `__check_object_size`), and are null, never 0, when none did: read
    // from the JSON alone, as a consumer would, not from zcprof's own `copy_source`.
    let unavailable: Vec<&str> = doc["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["layer"] == "kernel")
        .map(|l| {
            l["unavailable"]
                .as_array()
                .expect("unavailable")
                .iter()
                .filter_map(Value::as_str)
                .collect()
        })
        .unwrap_or_else(|| kernel::PROBES.iter().map(|p| p.function).collect());
    let source = [Role::Primitive, Role::CrossCheck]
        .into_iter()
        .find(|&role| {
            kernel::PROBES
                .iter()
                .any(|p| p.role == role && !unavailable.contains(&p.function))
        });
    for v in variants {
        let k = &v["kernel"];
        assert_eq!(
            k["copy_source"],
            source.map_or(Value::Null, |r| r.name().into()),
            "{k}"
        );
        assert_eq!(k["copy_k2u_bytes"].is_null(), source.is_none(), "{k}");
        assert_eq!(k["copy_u2k_bytes"].is_null(), source.is_none(), "{k}");
    }
}

#[test]
fn demo_run_text_runs_the_baseline_too() {
    if !privileged("demo_run_text_runs_the_baseline_too") {
        return;
    }
    let out = zcprof()
        .args([
            "demo",
            "run",
            "file-read",
            "--modes",
            "mmap",
            "--bytes",
            "256k",
        ])
        .output()
        .expect("zcprof runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\nread *"), "{text}");
    assert!(text.contains("\nmmap "), "{text}");
    assert_eq!(text.matches("exact (1/1 workers)").count(), 2, "{text}");
    assert!(text.contains("syscall layer"), "{text}");
}

/// A `zcprof-demo` stand-in in a fresh directory (returned with it): a shell script whose
/// `case` is `CASE` (e.g. `"$2" in proxy) …;;`, on the demo's arguments) and that runs the
/// real demo binary otherwise. For `ZCPROF_DEMO`.
fn demo_wrapper(name: &str, case: &str) -> (PathBuf, PathBuf) {
    let dir = temp(name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wrapper = dir.join("zcprof-demo");
    let script = format!(
        "#!/bin/sh\ncase {case} esac\nexec {} \"$@\"\n",
        demo_binary().display()
    );
    // Written by `sh`, not this process: an open write descriptor inherited by a test
    // thread's fork would make exec fail with ETXTBSY.
    let written = Command::new("sh")
        .arg("-c")
        .arg(r#"printf '%s' "$1" > "$2" && chmod +x "$2""#)
        .args(["sh", &script])
        .arg(&wrapper)
        .status()
        .expect("sh runs");
    assert!(written.success());
    (dir, wrapper)
}

/// A scenario whose workload breaks costs only its own claims: they are marked not measured
/// with the reason, every other claim is still measured, the report is still written, and
/// the exit status is 1. The break is real: `ZCPROF_DEMO` points at a wrapper that fails
/// for `proxy` and runs the real demo binary otherwise.
#[test]
fn demo_report_survives_a_failing_scenario() {
    if !privileged("demo_report_survives_a_failing_scenario") {
        return;
    }
    let (dir, wrapper) = demo_wrapper(
        "broken-demo",
        r#""$2" in proxy) echo 'proxy: cannot bind: simulated breakage' >&2; exit 1;;"#,
    );
    let path = dir.join("report.md");
    let out = zcprof()
        .args(["demo", "report", "--bytes", "64k", "--repeat", "1", "-o"])
        .arg(&path)
        .env(runner::ENV, &wrapper)
        .output()
        .expect("zcprof runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let md = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("zcprof: demo proxy failed, its claims are marked not measured"),
        "{stderr}"
    );
    let claims = zcprof::demo::claims::claims();
    let rows: Vec<(&str, &str)> = md
        .lines()
        .filter_map(|l| {
            let scenario = l.strip_prefix("| ")?.split(" | ").next()?;
            claims
                .iter()
                .any(|c| c.scenario == scenario)
                .then_some((scenario, l))
        })
        .collect();
    assert_eq!(rows.len(), claims.len(), "a row per claim: {md}");
    assert!(rows.iter().any(|(s, _)| *s == "proxy"), "{md}");
    for (scenario, row) in rows {
        if scenario == "proxy" {
            assert!(
                row.contains("not measured: proxy failed:") && row.contains("simulated breakage"),
                "{row}"
            );
        } else {
            assert!(!row.contains("not measured"), "{row}");
        }
    }
}

/// A mode the kernel cannot run is skipped with the demo's one-line reason (stderr, text
/// and JSON), the rest is measured, and the exit status stays 0: not a mismatch. The kernel
/// here runs every mode, so `ZCPROF_DEMO` is a wrapper that answers as a kernel without SEND_ZC usage reports would
/// for SEND_ZC (exit 4, one line) and runs the real demo binary otherwise.
#[test]
fn demo_run_skips_a_mode_this_kernel_cannot_run() {
    if !privileged("demo_run_skips_a_mode_this_kernel_cannot_run") {
        return;
    }
    let reason = "file-serve/io-uring-send-zc is not supported by this kernel (Linux 6.0.0): \
                  io_uring SEND_ZC does not take IORING_SEND_ZC_REPORT_USAGE here";
    let (dir, wrapper) = demo_wrapper(
        "unsupported-demo",
        &format!(r#""$4" in io-uring-send-zc) echo 'zcprof-demo: {reason}' >&2; exit 4;;"#),
    );
    let run = |json: bool| {
        let mut cmd = zcprof();
        cmd.args([
            "demo",
            "run",
            "file-serve",
            "--modes",
            "io-uring-send-zc,msg-zerocopy",
            "--bytes",
            "64k",
        ]);
        if json {
            cmd.arg("--json");
        }
        cmd.env(runner::ENV, &wrapper)
            .output()
            .expect("zcprof runs")
    };
    let (json, text) = (run(true), run(false));
    let _ = std::fs::remove_dir_all(&dir);
    for out in [&json, &text] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "zcprof: demo file-serve/io-uring-send-zc: not supported here: {reason}"
            )),
            "{stderr}"
        );
    }
    let doc: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(doc["exact"], true);
    let modes: Vec<&str> = doc["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter_map(|v| v["mode"].as_str())
        .collect();
    assert_eq!(modes, ["read-write", "msg-zerocopy"]);
    assert_eq!(
        doc["unsupported"],
        serde_json::json!([{"mode": "io-uring-send-zc", "reason": reason}])
    );
    // The MSG_ZEROCOPY server carries the demo's tally beside the syscall layer's figures.
    let server = &doc["variants"][1]["workers"][0];
    assert_eq!(server["role"], "server");
    assert_eq!(server["demo_zerocopy"]["via"], "msg_zerocopy");
    assert_eq!(server["demo_zerocopy"]["copied"]["bytes"], 64 * 1024);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("not run here: io-uring-send-zc ({reason})")),
        "{text}"
    );
    assert!(
        text.contains("zero-copy requested (demo tally, MSG_ZEROCOPY)"),
        "{text}"
    );
}

#[test]
fn demo_report_sets_every_claim_beside_a_measurement() {
    if !privileged("demo_report_sets_every_claim_beside_a_measurement") {
        return;
    }
    let path = temp("report.md");
    let out = zcprof()
        .args(["demo", "report", "--bytes", "256k", "--repeat", "1", "-o"])
        .arg(&path)
        .output()
        .expect("zcprof runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("claims:"), "{stderr}");
    let md = std::fs::read_to_string(&path).expect("report written");
    let _ = std::fs::remove_file(&path);
    let claims = zcprof::demo::claims::claims();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| {
            claims
                .iter()
                .any(|c| l.starts_with(&format!("| {} | ", c.scenario)))
        })
        .collect();
    assert_eq!(rows.len(), claims.len(), "{md}");
    for row in &rows {
        // A claim about a mode this kernel cannot run (SEND_ZC without usage reports) says so.
        assert!(
            row.ends_with(" agrees |")
                || row.contains("| **disagrees**")
                || row.contains("| not measured: mode io-uring-send-zc is not supported here: "),
            "every claim measured: {row}"
        );
    }
    assert!(md.contains("equal the demo's own tally exactly"), "{md}");
    for s in zcprof_demos::scenarios() {
        assert!(
            md.contains(&format!("### {} (256.0 KiB per run)", s.name)),
            "{md}"
        );
    }
}

#[test]
fn demo_list_prints_the_catalogue() {
    let out = zcprof()
        .args(["demo", "list"])
        .output()
        .expect("zcprof runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for s in zcprof_demos::scenarios() {
        assert!(text.contains(s.name), "{text}");
        assert!(text.contains(&format!(
            "{} (baseline)",
            s.mode(s.baseline).expect("baseline").description
        )));
    }
    let out = zcprof()
        .args(["demo", "list", "--json"])
        .output()
        .expect("zcprof runs");
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let list = doc.as_array().expect("an array");
    assert_eq!(list.len(), zcprof_demos::scenarios().len());
    assert_eq!(list[0]["modes"][0]["name"], list[0]["baseline"]);
}

#[test]
fn bad_demo_input_is_one_line() {
    let run = |args: &[&str]| {
        zcprof()
            .arg("demo")
            .args(args)
            .output()
            .expect("zcprof runs")
    };
    assert_one_line_error(&run(&["run", "nope"]), 2, "unknown scenario `nope`");
    assert_one_line_error(
        &run(&["run", "pipe", "--modes", "tee,splice"]),
        2,
        "pipe has no mode `splice` (modes: read-write, tee, vmsplice)",
    );
    assert_one_line_error(&run(&["run", "pipe", "--bytes", "0"]), 2, "greater than 0");
    assert_one_line_error(&run(&["run", "pipe", "--repeat", "0"]), 2, "repeat");
    assert_one_line_error(&run(&["run"]), 2, "SCENARIO");
    assert_one_line_error(&run(&["frobnicate"]), 2, "frobnicate");
}

#[test]
fn too_large_a_size_is_bad_input() {
    if !privileged("too_large_a_size_is_bad_input") {
        return;
    }
    let out = zcprof()
        .args(["demo", "run", "file-copy", "--bytes", "1T"])
        .output()
        .expect("zcprof runs");
    assert_one_line_error(&out, 2, "free disk");
}

#[test]
fn a_missing_demo_binary_says_how_to_build_it() {
    // A copy of zcprof alone in a directory: `current_exe` resolves symlinks, so it must
    // be a copy.
    let dir = temp("lonely");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let lonely = dir.join("zcprof");
    // Copied by `cp`, not in this process: a thread of this test binary forking meanwhile
    // would inherit the open write descriptor, and exec would fail with ETXTBSY.
    let copied = Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_zcprof"))
        .arg(&lonely)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "copy zcprof");
    let out = Command::new(&lonely)
        .args(["demo", "run", "pipe"])
        .env_remove(runner::ENV)
        .output()
        .expect("zcprof runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_one_line_error(&out, 1, "cargo build --release -p zcprof-demos");
}

/// `top --json` carries what `run` reports of zero-copy sends and mapped pages (issue 13):
/// the servers of `file-serve msg-zerocopy` (syscall layer) and `io-uring-send-zc` (io_uring
/// layer), watched live, add up over the frames to their own tally — sends that asked for
/// zero copy, and the ones the kernel's notifications said it copied or did not — and show
/// the file pages they mapped wherever the mapped layer counts (at least one: the layer
/// is a lower bound), none where it is unavailable (before 6.12).
#[test]
fn top_json_carries_zero_copy_sends_and_mapped_pages() {
    use std::time::{Duration, Instant};

    let test = "top_json_carries_zero_copy_sends_and_mapped_pages";
    if !privileged(test) {
        return;
    }
    let (_top, frames) = common::lines_of(&["top", "--json", "--interval", "250ms"]);
    // The same frames as CSV rows: the mapped and zero-copy-send columns come last.
    let (_csv, rows) = common::lines_of(&["top", "--csv", "--interval", "250ms"]);
    // Generous: in the lab two zcprofs load their probes at once on one emulated CPU.
    let header = rows
        .recv_timeout(Duration::from_secs(120))
        .expect("the CSV header");
    let column = |name: &str| common::csv_column(&header, name);
    let csv_columns = [
        column("zero_copy_sends_requested_per_s"),
        column("zero_copy_sends_done_per_s"),
        column("zero_copy_sends_copied_per_s"),
    ];
    let first: Value = serde_json::from_str(
        &frames
            .recv_timeout(Duration::from_secs(30))
            .expect("top's first frame"),
    )
    .expect("top JSON");
    let mapped_live = first["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .any(|l| l["layer"] == "mapped" && l["state"] != "unavailable");
    let schema = common::top_schema();
    for (mode, layer) in [
        ("msg-zerocopy", "syscall"),
        ("io-uring-send-zc", "io_uring"),
    ] {
        let out = Command::new(demo_binary())
            .args(["run", "file-serve", "--mode", mode, "--compact"])
            .args(["--bytes", &BYTES.to_string()])
            .output()
            .expect("zcprof-demo runs");
        if out.status.code() == Some(4) {
            eprintln!(
                "{test}: {mode} skipped: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        }
        assert!(out.status.success(), "{mode}: {out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("demo JSON");
        let server = doc["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .find(|r| r["role"] == "server")
            .expect("a server");
        let pid = server["pid"].as_u64().expect("pid");
        let tally = &server["zerocopy"];
        let want = [
            tally["requested"]["calls"].as_u64().expect("requested") as f64,
            tally["not_copied"]["sends"].as_u64().expect("not copied") as f64,
            tally["copied"]["sends"].as_u64().expect("copied") as f64,
        ];
        let keys = [
            "requested_sends_per_s",
            "done_sends_per_s",
            "copied_sends_per_s",
        ];
        let (mut got, mut pages) = ([0.0f64; 3], 0.0);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = frames
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!("{mode}: top never added up to the tally {want:?}: {got:?}")
                });
            let frame: Value = serde_json::from_str(&line).expect("top JSON");
            assert!(schema.is_valid(&frame), "schema/top.v1.json: {frame:#}");
            let seconds = frame["interval_s"].as_f64().expect("interval");
            let mut exited = false;
            for p in frame["processes"].as_array().expect("processes") {
                if p["pid"] != pid {
                    continue;
                }
                if let Some(z) = p[layer].get("zero_copy_sends") {
                    for (g, key) in got.iter_mut().zip(keys) {
                        *g += z[key].as_f64().expect("rate") * seconds;
                    }
                }
                pages += p["mapped"]["pages_per_s"].as_f64().expect("pages") * seconds;
                exited = p["exited"] == true;
            }
            let round = got.map(f64::round);
            if exited || (round == want && (pages.round() >= 1.0 || !mapped_live)) {
                assert_eq!(round, want, "{mode}: {keys:?} in the {layer} layer");
                break;
            }
        }
        if mapped_live {
            assert!(pages.round() >= 1.0, "{mode}: the server's mapped pages");
        } else {
            assert_eq!(pages, 0.0, "{mode}: no mapped layer, no pages");
        }
        // CSV: both layers' sends in three columns, rate × interval per row.
        let mut from_csv = [0.0f64; 3];
        while from_csv.map(f64::round) != want {
            let row = rows
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{mode}: CSV never added up to {want:?}: {from_csv:?}"));
            let cols: Vec<&str> = row.split(',').collect();
            if cols.get(4) != Some(&pid.to_string().as_str()) {
                continue;
            }
            let seconds: f64 = cols[1].parse().expect("interval_s");
            for (sum, &at) in from_csv.iter_mut().zip(&csv_columns) {
                *sum += cols[at].parse::<f64>().expect("a rate") * seconds;
            }
        }
    }
}
