//! `zcprof record`, `diff`, `top --csv` and `serve` as a user runs them: demos recorded in
//! their copying and zero-copy modes and diffed against the demos' exact ground truth,
//! `--fail-if` exit statuses, round trips, the JSON Schema, signals, and one-line errors
//! for bad input. The real-Prometheus test is in `tests/prometheus.rs`.

mod common;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{
    NGINX_FETCHES, NGINX_FILE, Nginx, Reaped, demo_bin, fails, has_child_named, http_get,
    privileged, temp, wait_attached, zcprof,
};
use serde_json::{Value, json};
use zcprof_demos::Report;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Checks `doc` against the JSON Schema `schema` (its text), naming `what` on failure.
fn assert_valid(doc: &Value, schema: &str, what: &str) {
    let schema: Value = serde_json::from_str(schema).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what} violates its schema: {errors:?}");
}

/// Checks `doc` against `schema/recording.v1.json`.
fn assert_schema_valid(doc: &Value) {
    assert_valid(
        doc,
        include_str!("../../schema/recording.v1.json"),
        "a recording",
    );
}

/// Reads, schema-checks and parses a recording.
fn read_recording(path: &Path) -> (Value, zcprof_recording::Recording) {
    let bytes = std::fs::read(path).expect("the recording was written");
    let value: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_schema_valid(&value);
    let parsed = zcprof_recording::parse(&bytes).expect("zcprof parses its own recording");
    (value, parsed)
}

/// `zcprof record -o FILE -- zcprof-demo run SCENARIO --mode MODE ARGS…`: the demo's
/// report and the recording.
fn record_demo(scenario: &str, mode: &str, args: &[&str]) -> (Report, PathBuf) {
    let out = temp(&format!("{scenario}-{mode}"));
    let output = zcprof()
        .arg("record")
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(demo_bin())
        .args(["run", scenario, "--mode", mode])
        .args(args)
        .output()
        .expect("zcprof runs");
    assert!(output.status.success(), "record: {}", stderr(&output));
    let report: Report = serde_json::from_slice(&output.stdout).expect("the demo's report");
    assert!(report.verified, "{scenario}/{mode} did not verify");
    (report, out)
}

/// Every worker's figures in the recording equal the demo's own tally, syscall by syscall.
fn assert_workers_match(report: &Report, rec: &zcprof_recording::Recording) {
    for role in &report.roles {
        let p = rec
            .processes
            .iter()
            .find(|p| p.pid == role.pid as u32)
            .unwrap_or_else(|| panic!("worker {} ({}) not recorded", role.pid, role.role));
        let seen: BTreeMap<String, (u64, u64, u64)> = p.layers["syscall"]
            .syscalls
            .iter()
            .map(|(k, e)| (k.clone(), (e.calls, e.bytes, e.errors)))
            .collect();
        let truth: BTreeMap<String, (u64, u64, u64)> = role
            .syscalls
            .iter()
            .map(|(k, c)| (k.clone(), (c.calls, c.bytes, c.errors)))
            .collect();
        assert_eq!(
            seen, truth,
            "{} of {}/{}",
            role.role, report.scenario, report.mode
        );
    }
}

fn diff_json(before: &Path, after: &Path, extra: &[&str]) -> (Output, Value) {
    let output = zcprof()
        .arg("diff")
        .arg(before)
        .arg(after)
        .arg("--json")
        .args(extra)
        .output()
        .expect("zcprof diff runs");
    let doc = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}): {}", stderr(&output)));
    (output, doc)
}

/// Checks a `zcprof diff --json` document against `schema/diff.v1.json`.
fn assert_diff_schema(doc: &Value) {
    assert_valid(
        doc,
        include_str!("../../schema/diff.v1.json"),
        "diff --json",
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The issue's acceptance test: each demo's copying mode against its zero-copy mode. The
/// workers' figures equal the demo's ground truth exactly, the diff's worker group shows
/// the ground truth's copies per delivered byte, the verdict reports the fall with no new
/// copy path, and `--fail-if` gates in the right direction.
#[test]
fn demo_diffs_match_the_ground_truth() {
    if !privileged("demo_diffs_match_the_ground_truth") {
        return;
    }
    for (scenario, copying, zero_copy) in [
        ("file-copy", "read-write", "copy-file-range"),
        ("proxy", "reused-buffer", "splice"),
    ] {
        let (truth_b, before) = record_demo(scenario, copying, &["--bytes", "4M"]);
        let (truth_a, after) = record_demo(scenario, zero_copy, &["--bytes", "4M"]);
        let (_, rec_b) = read_recording(&before);
        let (_, rec_a) = read_recording(&after);
        assert_workers_match(&truth_b, &rec_b);
        assert_workers_match(&truth_a, &rec_a);
        assert_eq!(rec_b.lost.total, 0);
        assert_eq!(rec_b.workload.kind, zcprof_recording::WorkloadKind::Command);
        assert_eq!(rec_b.workload.exit_code, Some(0));

        let n = 4u64 << 20;
        let (output, d) = diff_json(&before, &after, &["--per-bytes-delivered", "4M"]);
        assert!(output.status.success(), "{}", stderr(&output));
        // The workers (children of the demo process) by ground truth, per delivered byte.
        let copied =
            |r: &Report| r.roles.iter().map(|w| w.copy_family.bytes).sum::<u64>() as f64 / n as f64;
        let zero = |r: &Report| {
            r.roles
                .iter()
                .map(|w| w.zero_copy_family.bytes)
                .sum::<u64>() as f64
                / n as f64
        };
        let workers = d["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .find(|s| s["name"] == "zcprof-demo > zcprof-demo")
            .unwrap_or_else(|| panic!("no worker group: {d:#}"));
        let m = &workers["metrics"];
        assert_eq!(num(&m["copied"]["before"]), copied(&truth_b), "{scenario}");
        assert_eq!(num(&m["copied"]["after"]), copied(&truth_a), "{scenario}");
        assert_eq!(num(&m["zero_copy"]["after"]), zero(&truth_a), "{scenario}");
        assert_eq!(num(&m["zero_copy"]["before"]), 0.0, "{scenario}");
        // The verdict is about the whole command (the demo process's own setup and
        // verification copy in both modes), names its unit, and its totals are recorded.
        let total =
            |r: &zcprof_recording::Recording| r.total.layers["syscall"].totals.copied_bytes();
        let copied = &d["total"]["metrics"]["copied"];
        assert_eq!(copied["before_total"], total(&rec_b), "{scenario}");
        assert_eq!(copied["after_total"], total(&rec_a), "{scenario}");
        assert_eq!(num(&copied["before"]), total(&rec_b) as f64 / n as f64);
        let verdict = d["verdict"].as_str().expect("verdict");
        assert!(
            verdict.starts_with("per delivered byte (4.0 MiB each): copies fell ")
                && verdict.contains(" B copied per B delivered (−")
                && verdict.ends_with("; no new copy path"),
            "{scenario}: {verdict}"
        );
        assert_eq!(d["regressions"], json!([]));
        assert_eq!(d["unit"]["per"], "delivered_byte");
        assert_diff_schema(&d);
        // The zero-copy syscall appeared in the workers.
        let changed = workers["changed"].as_array().expect("changed");
        let zc_name = truth_a
            .roles
            .iter()
            .flat_map(|r| r.syscalls.keys())
            .find(|k| ["copy_file_range", "splice"].contains(&k.as_str()))
            .expect("a zero-copy syscall");
        assert!(
            changed
                .iter()
                .any(|e| e["name"] == zc_name.as_str() && e["status"] == "appeared"),
            "{changed:#?}"
        );

        // By default two commands that ran to completion compare by totals: the verdict
        // needs no unit of work, and --fail-if gates in the right direction (per second,
        // the faster zero-copy run's fixed costs looked like more copies).
        let (plain, by_totals) = diff_json(&before, &after, &[]);
        assert!(plain.status.success(), "{}", stderr(&plain));
        assert_diff_schema(&by_totals);
        assert_eq!(by_totals["unit"]["per"], "run", "{by_totals:#}");
        let verdict = by_totals["verdict"].as_str().expect("verdict");
        assert!(
            verdict.starts_with(
                "per run (totals: both commands ran to completion): copied bytes fell "
            ) && verdict.ends_with("; no new copy path"),
            "{scenario}: {verdict}"
        );
        let copied = &by_totals["total"]["metrics"]["copied"];
        assert_eq!(copied["before"], total(&rec_b) as f64);
        assert_eq!(copied["after"], total(&rec_a) as f64);
        assert_eq!(by_totals["regressions"], json!([]));
        for unit in [&["--per-bytes-delivered", "4M"][..], &[][..]] {
            let mut gate = unit.to_vec();
            gate.extend([
                "--fail-if",
                "copied-increase>5%",
                "--fail-if",
                "regressions>0",
            ]);
            let (fwd, _) = diff_json(&before, &after, &gate);
            assert_eq!(fwd.status.code(), Some(0), "{unit:?}: {}", stderr(&fwd));
            let (back, back_doc) = diff_json(&after, &before, &gate);
            assert_eq!(back.status.code(), Some(1), "{}", stderr(&back));
            assert_eq!(back_doc["thresholds"][0]["held"], true);
            assert_eq!(back_doc["thresholds"][1]["held"], true);
            assert!(
                back_doc["verdict"]
                    .as_str()
                    .is_some_and(|v| v.contains("REGRESSION")),
                "{back_doc:#}"
            );
        }
        let verdict = d["verdict"].as_str().expect("verdict");
        // Text and Markdown lead with the same verdict.
        for (form, lead) in [(None, ""), (Some("--markdown"), "**")] {
            let out = zcprof()
                .arg("diff")
                .arg(&before)
                .arg(&after)
                .args(["--per-bytes-delivered", "4M"])
                .args(form)
                .output()
                .expect("diff");
            assert!(out.status.success(), "{}", stderr(&out));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.starts_with(&format!("{lead}{verdict}")),
                "{form:?}: {text}"
            );
        }
        let _ = std::fs::remove_file(&before);
        let _ = std::fs::remove_file(&after);
    }
}

/// record → parse → diff of a file with itself: no change, and no gate trips.
#[test]
fn a_recording_diffed_with_itself_shows_no_change() {
    if !privileged("a_recording_diffed_with_itself_shows_no_change") {
        return;
    }
    let (_, path) = record_demo("pipe", "read-write", &["--bytes", "1M"]);
    let (value, parsed) = read_recording(&path);
    // Parsing and writing again gives the same document.
    assert_eq!(serde_json::to_value(&parsed).expect("serialises"), value);
    for unit in [&[][..], &["--per-bytes-delivered", "1M"][..]] {
        let mut args = vec![
            "--fail-if",
            "copied-increase>0%",
            "--fail-if",
            "regressions>0",
        ];
        args.extend_from_slice(unit);
        let (output, d) = diff_json(&path, &path, &args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            d["verdict"]
                .as_str()
                .is_some_and(|v| v.contains(" unchanged at ") && v.ends_with("no new copy path")),
            "{d:#}"
        );
        assert_eq!(d["total"]["changed"], json!([]));
        assert!(
            d["processes"]
                .as_array()
                .expect("processes")
                .iter()
                .all(|s| s["changed"] == json!([]))
        );
        assert_eq!(d["total"]["metrics"]["copied"]["change_pct"], 0.0);
    }
    let _ = std::fs::remove_file(&path);
}

/// Ctrl-C (and SIGTERM) during a recording still writes it, marked interrupted.
#[test]
fn an_interrupted_recording_is_still_written() {
    if !privileged("an_interrupted_recording_is_still_written") {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let out = temp("interrupted");
        let mut child = zcprof()
            .args(["record", "-o"])
            .arg(&out)
            .args([
                "--",
                "sh",
                "-c",
                "dd if=/dev/zero of=/dev/null bs=1k count=5 status=none; exec sleep 30",
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("zcprof runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !has_child_named(child.id(), "sleep") {
            assert!(Instant::now() < deadline, "the command never started");
            sleep(Duration::from_millis(50));
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().expect("zcprof exits");
        assert_eq!(
            status.code(),
            Some(128 + sig),
            "the command died of the signal"
        );
        let (value, rec) = read_recording(&out);
        assert_eq!(value["interrupted"], true);
        assert_eq!(rec.ended_by, "signal");
        let dd = rec
            .processes
            .iter()
            .find(|p| p.comm == "dd")
            .expect("dd was recorded");
        let w = &dd.layers["syscall"].syscalls["write"];
        assert_eq!((w.calls, w.bytes), (5, 5120));
        let _ = std::fs::remove_file(&out);
    }
}

/// `--pid` with `--duration`: a running process is recorded for that long, with its
/// command line as the workload's identity; `--comm` picks processes by name.
#[test]
fn pid_and_comm_recordings() {
    if !privileged("pid_and_comm_recordings") {
        return;
    }
    let mut busy = Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=500000000",
            "status=none",
        ])
        .spawn()
        .expect("dd");
    let pid = busy.id().to_string();
    let by_pid = temp("pid");
    let by_comm = temp("comm");
    let a = zcprof()
        .args(["record", "--duration", "500ms", "--pid", &pid, "-o"])
        .arg(&by_pid)
        .output()
        .expect("record --pid");
    let b = zcprof()
        .args(["record", "-d", "500ms", "--comm", "dd", "-o"])
        .arg(&by_comm)
        .output()
        .expect("record --comm");
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let (_, rec) = read_recording(&by_pid);
    assert_eq!(rec.workload.kind, zcprof_recording::WorkloadKind::Pids);
    assert_eq!(rec.ended_by, "duration");
    assert!(!rec.interrupted);
    assert_eq!(rec.workload.targets[0].command[0], "dd");
    assert_eq!(rec.processes.len(), 1, "{:?}", rec.processes);
    let t = &rec.processes[0].layers["syscall"].totals;
    assert!(
        t.copy_u2k_bytes > 1 << 20 && t.copy_k2u_bytes > 1 << 20,
        "{t:?}"
    );
    assert!(
        rec.duration_s >= 0.5 && rec.duration_s < 5.0,
        "{}",
        rec.duration_s
    );
    let (_, rec) = read_recording(&by_comm);
    assert_eq!(rec.workload.comm.as_deref(), Some("dd"));
    assert!(rec.processes.iter().all(|p| p.comm.contains("dd")));
    assert!(rec.processes.iter().any(|p| p.pid == busy.id()));
    // A --pid and a --comm recording of one program compare, with a warning; both are
    // bounded by time, and of similar runtime, so per second (the verdict says so).
    let (out, d) = diff_json(&by_pid, &by_comm, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_diff_schema(&d);
    assert_eq!(d["unit"]["per"], "second", "{d:#}");
    assert!(
        d["verdict"].as_str().is_some_and(|v| v.starts_with(
            "per second (time-bounded recordings of similar runtime; assumes a steady load): "
        )),
        "{d:#}"
    );
    assert!(
        d["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w
                    .starts_with("BEFORE records chosen pids and AFTER processes chosen by name"))),
        "{d:#}"
    );
    let _ = std::fs::remove_file(&by_pid);
    let _ = std::fs::remove_file(&by_comm);
}

/// `zcprof record -o OUT ARGS…`, which must succeed.
fn record(out: &Path, args: &[&str]) {
    let o = zcprof()
        .args(["record", "-o"])
        .arg(out)
        .args(args)
        .output()
        .expect("zcprof record");
    assert!(o.status.success(), "record {args:?}: {}", stderr(&o));
}

/// `zcprof diff BEFORE AFTER ARGS…` as text: (exit status, stdout, stderr).
fn diff_text(before: &Path, after: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = zcprof()
        .arg("diff")
        .arg(before)
        .arg(after)
        .args(args)
        .output()
        .expect("zcprof diff");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    )
}

/// The syscall-layer totals of the processes named `comm` in a recording: (k2u, u2k).
fn copied_by(rec: &zcprof_recording::Recording, comm: &str) -> (u64, u64) {
    rec.processes
        .iter()
        .filter(|p| p.comm == comm)
        .map(|p| p.layers["syscall"].totals.clone())
        .fold((0, 0), |(k, u), t| {
            (k + t.copy_k2u_bytes, u + t.copy_u2k_bytes)
        })
}

/// Issue 12, point 3: the same work (dd copying 100 MiB, then idle) recorded for 2 s and
/// for 8 s. Per second it "fell 75 %" and `--fail-if 'copied-decrease<50%'` passed; the
/// recordings are bounded by time with runtimes 4× apart and no unit of work, so the diff
/// is inconclusive and the gate cannot judge it (exit 2). With the unit of work it is the
/// same job: unchanged.
#[test]
fn the_same_work_recorded_for_2_s_and_8_s_is_not_a_fall() {
    if !privileged("the_same_work_recorded_for_2_s_and_8_s_is_not_a_fall") {
        return;
    }
    const MIB100: u64 = 100 << 20;
    let work = "dd if=/dev/zero of=/dev/null bs=64k count=1600 status=none; exec sleep 60";
    let (short, long) = (temp("2s"), temp("8s"));
    for (out, d) in [(&short, "2s"), (&long, "8s")] {
        record(out, &["--duration", d, "--", "sh", "-c", work]);
    }
    let (_, rs) = read_recording(&short);
    let (_, rl) = read_recording(&long);
    for r in [&rs, &rl] {
        assert_eq!(r.ended_by, "duration");
        // dd's writes exactly (its reads add the loader's).
        assert_eq!(copied_by(r, "dd").1, MIB100);
    }
    // The same work in both.
    assert_eq!(copied_by(&rs, "dd"), copied_by(&rl, "dd"));
    assert!(
        rl.duration_s / rs.duration_s > 3.0,
        "{} {}",
        rs.duration_s,
        rl.duration_s
    );

    let (out, d) = diff_json(&short, &long, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_diff_schema(&d);
    let verdict = d["verdict"].as_str().expect("verdict");
    assert!(verdict.starts_with("inconclusive: time-bounded (BEFORE --duration, AFTER --duration), runtimes that differ by more than 25 %"), "{verdict}");
    assert!(verdict.contains("--per-bytes-delivered N"), "{verdict}");
    assert!(
        !verdict.contains("fell") && !verdict.contains('−'),
        "{verdict}"
    );
    assert_eq!(d["unit"]["per"], Value::Null);
    assert_eq!(d["total"]["metrics"]["copied"]["status"], "not_compared");
    assert_eq!(d["regressions"], json!([]));

    let (code, text, err) = diff_text(&short, &long, &["--fail-if", "copied-decrease<50%"]);
    assert_eq!(code, Some(2), "{text}{err}");
    assert!(text.starts_with("inconclusive: "), "{text}");
    assert!(
        text.contains("--fail-if copied-decrease<50%: cannot judge"),
        "{text}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zcprof: cannot judge --fail-if: the diff is inconclusive ("),
        "{err}"
    );
    let (code, md, _) = diff_text(&short, &long, &["--markdown", "--fail-if", "regressions>0"]);
    assert_eq!(code, Some(2));
    assert!(md.starts_with("**inconclusive: "), "{md}");

    // The unit of work makes it conclusive: the same job, the copies unchanged.
    let (out, d) = diff_json(
        &short,
        &long,
        &[
            "--per-bytes-delivered",
            "100M",
            "--fail-if",
            "copied-increase>1%",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(d["total"]["metrics"]["copied"]["status"], "same", "{d:#}");
    assert!(
        d["verdict"]
            .as_str()
            .is_some_and(|v| v.contains("copies unchanged at 2.00 B copied per B delivered")),
        "{d:#}"
    );
    let _ = std::fs::remove_file(&short);
    let _ = std::fs::remove_file(&long);
}

/// Issue 12 with Debian's nginx on loopback, `sendfile off`: `record --pid MASTER` for 2 s
/// and for 8 s around the same 16 fetches is inconclusive (per second it "fell 75 %"), and
/// `--fail-if` cannot judge it; with the unit of work it is unchanged. Two `-- nginx` runs
/// (shut down after their fetches: ran to completion) compare by totals, `sendfile off` →
/// `on` removes the copies with no new copy path; and a `--pid` recording compares with a
/// `-- CMD` recording of the same program, with a warning.
#[test]
fn nginx_diffs_compare_work_not_seconds() {
    if !privileged("nginx_diffs_compare_work_not_seconds") {
        return;
    }
    let Some(nginx) = Nginx::new() else {
        return;
    };
    let served = (NGINX_FILE * NGINX_FETCHES) as u64;
    let delivered = served.to_string();

    // --pid MASTER, 2 s and 8 s, around the same fetches.
    let argv = nginx.command(false);
    let server = Reaped(
        Command::new(&argv[0])
            .args(&argv[1..])
            .spawn()
            .expect("nginx"),
    );
    let master = nginx.master().to_string();
    let (short, long) = (temp("nginx-2s"), temp("nginx-8s"));
    for (out, d) in [(&short, "2s"), (&long, "8s")] {
        let mut rec = Reaped(
            zcprof()
                .args(["record", "--pid", &master, "--duration", d, "-o"])
                .arg(out)
                .stderr(Stdio::piped())
                .spawn()
                .expect("zcprof record"),
        );
        wait_attached(&mut rec.0);
        nginx.serve();
        assert!(rec.0.wait().expect("record ends").success());
    }
    nginx.quit();
    drop(server);
    for path in [&short, &long] {
        let (_, r) = read_recording(path);
        assert_eq!(r.workload.kind, zcprof_recording::WorkloadKind::Pids);
        // The worker read the file and wrote it to the sockets: the same copies in both.
        let (k2u, u2k) = copied_by(&r, "nginx");
        let seen: Vec<(u32, Option<u32>, &str, u64)> = r
            .processes
            .iter()
            .map(|p| {
                (
                    p.pid,
                    p.ppid,
                    p.comm.as_str(),
                    p.layers["syscall"].totals.copied_bytes(),
                )
            })
            .collect();
        assert!(
            k2u >= served && u2k >= served,
            "{k2u} {u2k} in {} ({} s): {seen:?}",
            path.display(),
            r.duration_s
        );
    }
    let (code, text, err) = diff_text(&short, &long, &["--fail-if", "copied-decrease<50%"]);
    assert_eq!(code, Some(2), "{text}{err}");
    assert!(
        text.starts_with("inconclusive: time-bounded (BEFORE --pid, AFTER --pid), runtimes that differ by more than 25 %"),
        "{text}"
    );
    assert!(
        !text.lines().next().is_some_and(|v| v.contains("fell")),
        "{text}"
    );
    assert!(text.contains("before: `pid "), "{text}");
    assert!(err.contains("cannot judge --fail-if"), "{err}");
    let (out, d) = diff_json(&short, &long, &["--per-bytes-delivered", &delivered]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_diff_schema(&d);
    let change = num(&d["total"]["metrics"]["copied"]["change_pct"]);
    assert!(change.abs() < 2.0, "the same fetches: {d:#}");

    // -- nginx, shut down after the fetches: ran to completion, compared by totals.
    let run = |sendfile: bool| {
        let out = temp(&format!("nginx-cmd-{sendfile}"));
        let argv = nginx.command(sendfile);
        let rec = Reaped(
            zcprof()
                .args(["record", "-o"])
                .arg(&out)
                .arg("--")
                .args(&argv)
                .stderr(Stdio::null())
                .spawn()
                .expect("zcprof record"),
        );
        nginx.serve();
        nginx.quit();
        let mut rec = rec;
        assert!(rec.0.wait().expect("record ends").success());
        let (_, r) = read_recording(&out);
        assert!(r.ran_to_completion(), "{:?} {}", r.workload, r.ended_by);
        out
    };
    let (off, on) = (run(false), run(true));
    let (out, d) = diff_json(
        &off,
        &on,
        &[
            "--fail-if",
            "copied-increase>5%",
            "--fail-if",
            "regressions>0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_diff_schema(&d);
    assert_eq!(d["unit"]["per"], "run");
    let verdict = d["verdict"].as_str().expect("verdict");
    assert!(
        verdict
            .starts_with("per run (totals: both commands ran to completion): copied bytes fell ")
            && verdict.ends_with("; no new copy path"),
        "{verdict}"
    );
    let workers = d["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|s| s["name"] == "nginx > nginx")
        .unwrap_or_else(|| panic!("no worker group: {d:#}"));
    let sendfile = workers["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .find(|e| e["name"] == "sendfile")
        .unwrap_or_else(|| panic!("no sendfile: {workers:#}"));
    assert_eq!(sendfile["status"], "appeared");
    assert!(
        sendfile["bytes"]["after_total"]
            .as_u64()
            .is_some_and(|b| b >= served)
    );
    let (code, _, _) = diff_text(&on, &off, &["--fail-if", "regressions>0"]);
    assert_eq!(code, Some(1), "sendfile on → off grows the copy paths");

    // --pid (sendfile off, 2 s) against -- CMD (sendfile on): compared, with a warning;
    // one side is bounded by time, so it needs the unit of work.
    let (code, text, _) = diff_text(&short, &on, &[]);
    assert_eq!(code, Some(0));
    assert!(
        text.starts_with("inconclusive: time-bounded (BEFORE --pid)"),
        "{text}"
    );
    let (out, d) = diff_json(&short, &on, &["--per-bytes-delivered", &delivered]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        d["warnings"].as_array().expect("warnings").iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.starts_with("BEFORE records chosen pids and AFTER a command"))),
        "{d:#}"
    );
    assert_eq!(d["total"]["metrics"]["copied"]["status"], "fell", "{d:#}");
    for f in [&short, &long, &off, &on] {
        let _ = std::fs::remove_file(f);
    }
}

/// `top --csv`: a header, then rows with as many fields as the header.
#[test]
fn top_csv_is_a_spreadsheet() {
    if !privileged("top_csv_is_a_spreadsheet") {
        return;
    }
    let output = zcprof()
        .args(["top", "--once", "--csv", "--interval", "200ms"])
        .output()
        .expect("zcprof top");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with("unix_time,interval_s,partial,scope,pid"));
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.last().is_some_and(|r| r.contains(",machine,")),
        "{text}"
    );
    for r in &rows {
        // No process name here holds a comma or a quote, so a plain split is exact.
        assert_eq!(r.split(',').count(), header.split(',').count(), "{r}");
    }
}

/// `serve` answers GET /metrics with OpenMetrics text that names a busy process.
#[test]
fn serve_exposes_live_counters() {
    if !privileged("serve_exposes_live_counters") {
        return;
    }
    let (mut server, port) = common::serve(&[]);
    let mut busy = Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=500000000",
            "status=none",
        ])
        .spawn()
        .expect("dd");
    let needle = format!("pid=\"{}\"", busy.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Some((200, body)) = http_get(port, "/metrics").filter(|(_, b)| b.contains(&needle)) {
            break body;
        }
        assert!(Instant::now() < deadline, "dd never appeared in /metrics");
        sleep(Duration::from_millis(100));
    };
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("zcprof_bytes_total{")
                && l.contains(&needle)
                && l.contains("syscall=\"write\"")
        })
        .unwrap_or_else(|| panic!("no write counter for dd: {body}"));
    assert!(line.contains("direction=\"u2k\"") && line.contains("kind=\"copy\""));
    assert!(line.contains("layer=\"syscall\"") && line.contains("comm=\"dd\""));
    assert!(body.contains("# TYPE zcprof_call_size_bytes histogram"));
    assert!(body.contains("zcprof_lost_events_total{reason=\"ringbuf_full\"}"));
    // Its own answers to these scrapes are not the machine's work: left out, as in `top`.
    let own = format!("pid=\"{}\"", server.0.id());
    for _ in 0..5 {
        let (_, body) = http_get(port, "/metrics").expect("a scrape");
        assert!(!body.contains(&own), "zcprof serve exported itself: {body}");
        sleep(Duration::from_millis(250));
    }
    assert_eq!(
        http_get(port, "/nope").map(|r| r.0),
        Some(404),
        "404 for other paths"
    );
    // SIGTERM stops it cleanly.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    let status = server.0.wait().expect("exits");
    assert!(status.success());

    // --include-self exports it like any other process: its writes of earlier answers.
    let (server, port) = common::serve(&["--include-self"]);
    let own = format!("pid=\"{}\"", server.0.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(port, "/metrics").is_some_and(|(_, b)| b.contains(&own)) {
        assert!(
            Instant::now() < deadline,
            "--include-self: zcprof never appeared"
        );
        sleep(Duration::from_millis(100));
    }
}

/// A valid recording, built without the probes.
fn fixture(kind: &str, bytes: u64) -> Value {
    json!({
        "schema": "zcprof.recording/v1", "zcprof_version": "0.1.0", "kernel": "6.18.0",
        "syscall_probe": "raw", "started_unix": 1.0, "ended_unix": 2.0, "duration_s": 1.0,
        "interrupted": false, "ended_by": "exit",
        "workload": {"kind": kind, "command": ["cat"], "targets": [], "comm": null,
                     "exit_code": 0, "signal": null},
        "probe_layers": [],
        "lost": {"ringbuf_full": 0, "stats_map_full": 0, "mmsg_unreadable": 0,
                 "mmsg_no_enter": 0, "malformed_records": 0, "total": 0},
        "processes": [],
        "total": {"layers": {"syscall": {
            "totals": {"copy_k2u_bytes": bytes, "copy_u2k_bytes": 0, "zero_copy_bytes": 0,
                       "calls": 1, "errors": 0, "zero_copy_ratio": 0.0},
            "syscalls": {"read": {"family": "copy", "direction": "k2u", "calls": 1,
                                  "bytes": bytes, "errors": 0, "hist": []}}}}}
    })
}

fn write_temp(name: &str, contents: &[u8]) -> String {
    let path = temp(name);
    std::fs::write(&path, contents).expect("write");
    path.to_string_lossy().into_owned()
}

/// Every kind of bad input: one line on stderr, a non-zero status, nothing overwritten.
#[test]
fn bad_input_gets_one_line_and_a_nonzero_exit() {
    let good_doc = fixture("command", 100);
    assert_schema_valid(&good_doc);
    let good_text = serde_json::to_vec_pretty(&good_doc).expect("json");
    let good = write_temp("good", &good_text);
    let truncated = write_temp("truncated", &good_text[..good_text.len() / 2]);
    let corrupt = write_temp("corrupt", b"{\"schema\": \"zcprof.recording/v1\", oops}");
    let empty = write_temp("empty", b"");
    let mut newer = good_doc.clone();
    newer["schema"] = "zcprof.recording/v7".into();
    let newer = write_temp("newer", &serde_json::to_vec(&newer).expect("json"));
    let run_summary = write_temp("run", br#"{"schema":"zcprof.run/v1","command":["x"]}"#);
    let machine = write_temp(
        "machine",
        &serde_json::to_vec(&fixture("machine", 100)).expect("json"),
    );
    let missing = temp("missing").to_string_lossy().into_owned();
    let dir = std::env::temp_dir().to_string_lossy().into_owned();

    fails(&["diff", &missing, &good], 2, "no such file");
    fails(&["diff", &good, &dir], 2, "it is a directory");
    fails(&["diff", &good, &truncated], 2, "cut short");
    fails(&["diff", &corrupt, &good], 2, "not valid JSON");
    fails(&["diff", &empty, &good], 2, "is empty");
    fails(&["diff", &good, &newer], 2, "newer than this zcprof reads");
    fails(&["diff", &run_summary, &good], 2, "`zcprof run` summary");
    fails(&["diff", &good, &machine], 2, "record both the same way");
    fails(
        &["diff", &good, &good, "--fail-if", "copied>>5"],
        2,
        "not a number",
    );
    fails(
        &["diff", &good, &good, "--fail-if", "amplification>1"],
        2,
        "--per-bytes-delivered",
    );
    fails(
        &["diff", &good, &good, "--per-bytes-delivered", "0"],
        2,
        "greater than 0",
    );
    // Nothing was written over any input.
    assert_eq!(std::fs::read(&good).expect("read"), good_text);

    fails(
        &[
            "record",
            "-o",
            "/nonexistent-zcprof-dir/x.json",
            "--",
            "true",
        ],
        1,
        "does not exist",
    );
    // A failed recording leaves what was at the path alone.
    let existing = write_temp("existing", b"keep me");
    fails(
        &[
            "record",
            "-o",
            &existing,
            "--",
            "definitely-not-a-command-zcprof",
        ],
        127,
        "command not found",
    );
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");

    // A port already taken.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    fails(&["serve", "--listen", &addr], 1, "already in use");

    // Unreadable files and unwritable directories, as an unprivileged user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let private = write_temp("private", &good_text);
        let as_nobody = |args: &[&str]| {
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--",
                ])
                .arg(env!("CARGO_BIN_EXE_zcprof"))
                .args(args)
                .output()
                .expect("setpriv runs")
        };
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let out = as_nobody(&["diff", &private, &private]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("permission denied"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().count(), 1);
        let locked = temp("locked-dir");
        std::fs::create_dir(&locked).expect("mkdir");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let target = locked.join("out.json").to_string_lossy().into_owned();
        let out = as_nobody(&["record", "-o", &target, "--", "true"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        let _ = std::fs::remove_dir_all(&locked);
        let _ = std::fs::remove_file(&private);
    }
    for f in [
        &good,
        &truncated,
        &corrupt,
        &empty,
        &newer,
        &run_summary,
        &machine,
        &existing,
    ] {
        let _ = std::fs::remove_file(f);
    }
}

/// `run --json` and `top --json` use the recording's figure objects: their layers, lost
/// events and per-process figures validate against the recording schema's definitions.
#[test]
fn run_and_top_json_share_the_recording_objects() {
    if !privileged("run_and_top_json_share_the_recording_objects") {
        return;
    }
    let schema: Value = serde_json::from_str(include_str!("../../schema/recording.v1.json"))
        .expect("the schema is JSON");
    let check = |def: &str, doc: &Value| {
        let sub = json!({"$ref": format!("#/$defs/{def}"), "$defs": schema["$defs"].clone()});
        let validator = jsonschema::validator_for(&sub).expect("a valid JSON Schema");
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{def}: {errors:?} in {doc:#}");
    };
    let out = temp("run");
    let status = zcprof()
        .args(["run", "--json", "-o"])
        .arg(&out)
        .args([
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1k",
            "count=3",
            "status=none",
        ])
        .status()
        .expect("zcprof run");
    assert!(status.success());
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("summary")).expect("JSON");
    let _ = std::fs::remove_file(&out);
    check("layers", &run["total"]);
    check("lost", &run["lost"]);
    for layer in run["layers"].as_array().expect("layers") {
        check("probe_layer", layer);
    }
    for p in run["processes"].as_array().expect("processes") {
        check("layers", &json!({"syscall": p["syscall"]}));
    }
    let output = zcprof()
        .args(["top", "--once", "--json", "--interval", "200ms"])
        .output()
        .expect("zcprof top");
    let frame: Value = serde_json::from_slice(&output.stdout).expect("a frame");
    check("lost", &frame["lost"]);
    for layer in frame["layers"].as_array().expect("layers") {
        check("probe_layer", layer);
    }
}

/// A server moved from `send` to `send(MSG_ZEROCOPY)` over loopback, where the kernel copies
/// every zero-copy send (its notifications say so): the diff must not claim the copies went
/// away, and says what the notifications said.
#[test]
fn a_move_to_msg_zerocopy_on_loopback_is_no_fall() {
    if !privileged("a_move_to_msg_zerocopy_on_loopback_is_no_fall") {
        return;
    }
    let (truth_b, before) = record_demo("file-serve", "read-write", &["--bytes", "4M"]);
    let (truth_a, after) = record_demo("file-serve", "msg-zerocopy", &["--bytes", "4M"]);
    let (_, rec_a) = read_recording(&after);
    let server = |r: &Report| {
        r.roles
            .iter()
            .find(|w| w.role == "server")
            .expect("a server")
            .clone()
    };
    let zc = server(&truth_a)
        .zerocopy
        .expect("the demo's zero-copy tally");
    assert_eq!(
        zc.not_copied.sends, 0,
        "loopback: the kernel copied every send"
    );
    let z = rec_a.total.layers["syscall"].totals.msg_zerocopy;
    assert_eq!(
        (
            z.requested_bytes,
            z.requested_sends,
            z.copied_sends,
            z.done_sends
        ),
        (zc.requested.bytes, zc.requested.calls, zc.copied.sends, 0),
        "the recording's MSG_ZEROCOPY figures are the demo's"
    );
    let (output, d) = diff_json(&before, &after, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_diff_schema(&d);
    let verdict = d["verdict"].as_str().expect("verdict");
    // The workers' copies after are what the demo tallied as copies, its MSG_ZEROCOPY sends
    // included: the mapping removed the server's read copy (a true fall, by half), the
    // zero-copy flag removed nothing.
    let workers = d["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|s| s["name"] == "zcprof-demo > zcprof-demo")
        .unwrap_or_else(|| panic!("no worker group: {d:#}"));
    let copied = |r: &Report| r.roles.iter().map(|w| w.copy_family.bytes).sum::<u64>();
    let m = &workers["metrics"]["copied"];
    assert_eq!(m["before_total"], copied(&truth_b), "{verdict}");
    assert_eq!(m["after_total"], copied(&truth_a), "{verdict}");
    assert!(
        copied(&truth_a) >= zc.requested.bytes + (4 << 20),
        "the client's reads and every zero-copy send are copies"
    );
    assert_eq!(
        workers["metrics"]["zero_copy"]["after_total"], 0,
        "{verdict}"
    );
    assert!(!verdict.contains("−100%"), "{verdict}");
    assert!(
        verdict.contains("copied by the kernel anyway"),
        "the verdict says why: {verdict}"
    );
}
