//! The io_uring layer (issue 13) against ground truth, as root, with real processes:
//! - Debian's fio with `--ioengine=io_uring`, write and read jobs under `zcprof run --json`
//!   (the summary is on stderr):
//!   the layer's WRITE and READ bytes equal fio's own `io_bytes`, and its calls fio's
//!   `total_ios` (host only: fio is not in the lab's initramfs); the same with a SQPOLL
//!   thread submitting and io-wq running every request (`--sqthread_poll=1 --force_async=1`);
//! - `zcprof-demo file-copy --mode io-uring` under `--disable-layer io_uring`: the run says
//!   that io_uring bytes are not counted (the caveat), never silence (host and lab);
//! - a recorded move from fio's psync engine to io_uring does not make `zcprof diff` say
//!   copies fell (host only);
//! - the join that kernels without BTF take (`ZCPROF_IO_URING_JOIN=submissions`) counts a
//!   demo's SQPOLL/io-wq requests exactly (host and lab).
//!
//! The demos' io_uring modes are checked opcode by opcode against their own tallies in
//! `demos.rs` (`assert_io_uring_exact`), on the host and in the lab.

mod common;

use std::{
    process::{Command, Output},
    sync::{Mutex, MutexGuard},
};

use common::{demo_bin, in_lab, privileged, run_schema, temp, zcprof};
use serde_json::Value;

/// fio's block size and file size: 1024 requests of 64 KiB.
const BS: &str = "64k";
const SIZE: u64 = 64 << 20;

/// One io_uring workload at a time: `io_uring_unmatched` is machine-wide (a completion
/// whose submission was not seen has no process), so another test's requests, submitted
/// before this test's zcprof attached and completed after, would be counted in it.
static ONE_RING_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_RING_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fio_available(test: &str) -> bool {
    if in_lab() {
        eprintln!(
            "skipping {test}: fio is not in the kernel lab's initramfs (Debian's fio pulls in ~60 shared libraries); the demos' io_uring modes run there instead"
        );
        return false;
    }
    assert!(
        Command::new("fio").arg("--version").output().is_ok(),
        "{test}: fio is missing (cargo xtask setup installs it)"
    );
    true
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fio` arguments for one job on `file`, its JSON report written to `report`.
fn fio_args(
    engine: &str,
    rw: &str,
    file: &std::path::Path,
    report: &std::path::Path,
) -> Vec<String> {
    vec![
        "fio".into(),
        "--name=zcprof".into(),
        format!("--filename={}", file.display()),
        format!("--ioengine={engine}"),
        format!("--rw={rw}"),
        format!("--bs={BS}"),
        format!("--size={SIZE}"),
        "--output-format=json".into(),
        format!("--output={}", report.display()),
    ]
}

/// fio's own count for `dir` (`read`/`write`): `(io_bytes, total_ios)`.
fn fio_truth(report: &std::path::Path, dir: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(report).expect("fio's report");
    let doc: Value = serde_json::from_str(&text).expect("fio JSON");
    let job = &doc["jobs"][0][dir];
    (
        job["io_bytes"].as_u64().expect("io_bytes"),
        job["total_ios"].as_u64().expect("total_ios"),
    )
}

/// The `run --json` summary on `out`'s stderr, after any warnings (a kernel's own, e.g. the
/// mapped layer's on 6.1) that precede it.
fn summary(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = &stderr[stderr.find("{\n").expect("a JSON summary")..];
    serde_json::from_str(json).unwrap_or_else(|err| panic!("run JSON: {err}: {stderr}"))
}

/// The total's io_uring entry `op` of a `run --json` document: `(calls, bytes, errors)`.
fn op(doc: &Value, op: &str) -> (u64, u64, u64) {
    let e = &doc["total"]["io_uring"]["probes"][op];
    let n = |k: &str| e[k].as_u64().unwrap_or(0);
    (n("calls"), n("bytes"), n("errors"))
}

#[test]
fn fio_io_uring_write_and_read_bytes_are_fios_own() {
    fio_counts_exactly("fio_io_uring_write_and_read_bytes_are_fios_own", &[]);
}

/// Requests that fio's process never submits or runs itself: a SQPOLL thread
/// (`iou-sqp-PID`) takes them off the ring and `IOSQE_ASYNC` sends every one to an io-wq
/// worker (`iou-wrk-PID`). Both are threads of fio's process, so `run`, which counts the
/// processes it follows, must find all of fio's bytes there (in the lab, the demos'
/// `file-copy io-uring-sqpoll` checks the same).
#[test]
fn fio_sqpoll_and_io_wq_requests_count_for_fio() {
    fio_counts_exactly(
        "fio_sqpoll_and_io_wq_requests_count_for_fio",
        &["--sqthread_poll=1", "--force_async=1"],
    );
}

/// fio write then read jobs (with `extra` options) under `zcprof run --json`: the io_uring
/// layer's WRITE and READ calls and bytes are fio's own, counted as copies, every
/// completion matched.
fn fio_counts_exactly(test: &str, extra: &[&str]) {
    let _alone = alone();
    if !privileged(test) || !fio_available(test) {
        return;
    }
    let file = temp("fio-data");
    for (rw, dir, opcode) in [("write", "write", "WRITE"), ("read", "read", "READ")] {
        let report = temp("fio-report");
        let out = zcprof()
            .args(["run", "--json", "--"])
            .args(fio_args("io_uring", rw, &file, &report))
            .args(extra)
            .output()
            .expect("zcprof runs");
        ok(&out, &format!("zcprof run -- fio {rw} {extra:?}"));
        let doc: Value = serde_json::from_slice(&out.stderr).expect("run JSON");
        let errors: Vec<String> = run_schema()
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let (bytes, ios) = fio_truth(&report, dir);
        assert_eq!(bytes, SIZE, "fio {rw}: its own count");
        let (calls, got, errs) = op(&doc, opcode);
        assert_eq!(
            got, bytes,
            "fio {rw} {extra:?}: io_uring {opcode} bytes = fio's io_bytes"
        );
        assert_eq!(
            calls, ios,
            "fio {rw} {extra:?}: io_uring {opcode} completions = fio's total_ios"
        );
        assert_eq!(errs, 0, "fio {rw}");
        let totals = &doc["total"]["io_uring"]["totals"];
        let key = if dir == "read" {
            "copy_k2u_bytes"
        } else {
            "copy_u2k_bytes"
        };
        assert_eq!(
            totals[key].as_u64(),
            Some(SIZE),
            "fio {rw}: counted as copies"
        );
        assert_eq!(
            doc["lost"]["io_uring_unmatched"].as_u64(),
            Some(0),
            "fio {rw}: every completion matched to its submission"
        );
        let _ = std::fs::remove_file(&report);
    }
    let _ = std::fs::remove_file(&file);
}

/// The join kernels without BTF take (each completion matched to its submission's map entry),
/// forced on a kernel with BTF: `file-copy io-uring-sqpoll` counts exactly the worker's own
/// READs and WRITEs, every completion matched (host and lab).
#[test]
fn completions_joined_to_submissions_count_exactly_too() {
    let test = "completions_joined_to_submissions_count_exactly_too";
    let _alone = alone();
    if !privileged(test) {
        return;
    }
    let out = zcprof()
        .env("ZCPROF_IO_URING_JOIN", "submissions")
        .args(["run", "--json", "--"])
        .arg(demo_bin())
        .args(["run", "file-copy", "--mode", "io-uring-sqpoll", "--compact"])
        .args(["--bytes", "1000000"])
        .output()
        .expect("zcprof runs");
    ok(&out, "zcprof run -- zcprof-demo file-copy io-uring-sqpoll");
    let demo: Value = serde_json::from_slice(&out.stdout).expect("the demo's JSON");
    let doc = summary(&out);
    let ops = &demo["roles"][0]["io_uring"]["ops"];
    for opcode in ["READ", "WRITE"] {
        let want = &ops[opcode];
        let n = |k: &str| want[k].as_u64().expect("the demo's tally");
        assert_eq!(
            op(&doc, opcode),
            (n("calls"), n("bytes"), n("errors")),
            "{opcode}: zcprof's (calls, bytes, errors) against the demo's"
        );
    }
    assert_eq!(doc["lost"]["io_uring_unmatched"].as_u64(), Some(0));
}

#[test]
fn io_uring_with_the_layer_off_gets_a_caveat() {
    let test = "io_uring_with_the_layer_off_gets_a_caveat";
    let _alone = alone();
    if !privileged(test) {
        return;
    }
    let demo = demo_bin();
    let run = |extra: &[&str], json: bool| {
        let mut cmd = zcprof();
        cmd.args(extra).arg("run");
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .arg("--")
            .arg(&demo)
            .args(["run", "file-copy", "--mode", "io-uring", "--compact"])
            .args(["--bytes", "262144"])
            .output()
            .expect("zcprof runs");
        ok(&out, "zcprof run -- zcprof-demo file-copy io-uring");
        out
    };
    let caveat = "io_uring_enter seen, io_uring layer unavailable: its bytes are not counted";
    let off = run(&["--disable-layer", "io_uring"], false);
    let text = String::from_utf8_lossy(&off.stderr);
    assert!(text.contains(caveat), "{text}");
    let off = run(&["--disable-layer", "io_uring"], true);
    // A layer the user turned off is no warning (its state is in the summary's layers);
    // other warnings (a kernel's own) may precede the summary.
    let stderr = String::from_utf8_lossy(&off.stderr);
    assert!(
        !stderr.contains("(io_uring layer) is unavailable"),
        "{stderr}"
    );
    let doc = summary(&off);
    let layer = doc["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["layer"] == "io_uring")
        .expect("the io_uring layer");
    assert_eq!(layer["state"], "unavailable", "{layer}");
    let seen = op(&doc, "io_uring_enter (layer unavailable)");
    assert!(seen.0 >= 2, "setup and enter calls seen: {seen:?}");
    assert_eq!(
        op(&doc, "READ"),
        (0, 0, 0),
        "nothing counted with the layer off"
    );
    // With the layer on: counted, and no caveat.
    let on = run(&[], false);
    let text = String::from_utf8_lossy(&on.stderr);
    assert!(!text.contains(caveat), "{text}");
    assert!(text.contains("io_uring layer (per opcode"), "{text}");
}

#[test]
fn a_move_to_io_uring_does_not_make_copies_fall() {
    let test = "a_move_to_io_uring_does_not_make_copies_fall";
    let _alone = alone();
    if !privileged(test) || !fio_available(test) {
        return;
    }
    let file = temp("fio-move");
    let record = |engine: &str| {
        let path = temp(&format!("rec-{engine}"));
        let report = temp("fio-report");
        let out = zcprof()
            .args(["record", "-o"])
            .arg(&path)
            .arg("--")
            .args(fio_args(engine, "write", &file, &report))
            .output()
            .expect("zcprof record runs");
        ok(&out, &format!("zcprof record -- fio {engine}"));
        let _ = std::fs::remove_file(&report);
        path
    };
    let before = record("psync");
    let after = record("io_uring");
    let out = zcprof()
        .args(["diff", "--json"])
        .arg(&before)
        .arg(&after)
        .output()
        .expect("zcprof diff runs");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "diff JSON: {err}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let verdict = doc["verdict"].as_str().expect("verdict");
    assert!(!verdict.contains("fell"), "{verdict}");
    let copied = &doc["total"]["metrics"]["copied"];
    let (b, a) = (
        copied["before_total"].as_u64().expect("before"),
        copied["after_total"].as_u64().expect("after"),
    );
    assert!(
        b >= SIZE && a >= SIZE,
        "both sides copied the 64 MiB: {b} → {a}"
    );
    for p in [&before, &after, &file] {
        let _ = std::fs::remove_file(p);
    }
}

/// fio's io_uring writes in the live views, exactly: `serve` exposes them as the fio
/// process's `opcode="WRITE"` series (layer io_uring) in the syscall layer's families, and
/// the `top --json` frames carry them in each process's `io_uring` rates, whose rates ×
/// intervals add up to fio's own byte count (host only: fio).
#[test]
fn serve_and_top_show_fios_io_uring_writes() {
    use std::{
        thread::sleep,
        time::{Duration, Instant},
    };

    use common::{http_get, top_schema};

    let test = "serve_and_top_show_fios_io_uring_writes";
    let _alone = alone();
    if !privileged(test) || !fio_available(test) {
        return;
    }
    let (_server, port) = common::serve(&[]);
    let (_top, frames) = common::lines_of(&["top", "--json", "--interval", "250ms"]);
    // Both attached: serve answers and top printed its first frame.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/metrics").is_none() {
        assert!(Instant::now() < deadline, "zcprof serve never answered");
        sleep(Duration::from_millis(100));
    }
    frames
        .recv_timeout(Duration::from_secs(30))
        .expect("top's first frame");

    // `--thread`: the job runs in fio's own process, so its pid is the one to look for.
    let file = temp("fio-live");
    let report = temp("fio-report");
    let mut args = fio_args("io_uring", "write", &file, &report);
    args.push("--thread".into());
    let fio = Command::new(&args[0])
        .args(&args[1..])
        .spawn()
        .expect("fio");
    let pid = fio.id();
    let out = fio.wait_with_output().expect("fio ends");
    ok(&out, "fio");
    let (bytes, ios) = fio_truth(&report, "write");
    assert_eq!(bytes, SIZE);

    let labels =
        format!(r#"pid="{pid}",opcode="WRITE",direction="u2k",kind="copy",layer="io_uring""#);
    let value = |body: &str, family: &str| -> Option<u64> {
        body.lines()
            .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http_get(port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        if value(&body, "zcprof_bytes_total") == Some(bytes) {
            assert_eq!(value(&body, "zcprof_calls_total"), Some(ios), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve never showed fio's {bytes} B of io_uring WRITE ({labels}): {body}"
        );
        sleep(Duration::from_millis(200));
    }

    // top: every frame after fio started, until fio's exit has been reported.
    let mut written = 0.0;
    let mut calls = 0.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exited = false;
    while !exited {
        let line = frames
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("top frames until fio's exit is reported");
        let frame: Value = serde_json::from_str(&line).expect("top JSON");
        assert!(
            top_schema().is_valid(&frame),
            "schema/top.v1.json: {frame:#}"
        );
        let seconds = frame["interval_s"].as_f64().expect("interval");
        for p in frame["processes"].as_array().expect("processes") {
            if p["pid"] == pid {
                let u = &p["io_uring"];
                written += u["copy_u2k_bytes_per_s"].as_f64().expect("rate") * seconds;
                calls += u["calls_per_s"].as_f64().expect("rate") * seconds;
                assert_eq!(u["unseen_calls_per_s"], 0.0, "{p:#}");
                exited |= p["exited"] == true;
            }
        }
        // fio may end before a frame saw it run; its counts then come in the frame that
        // reports its exit. Stop waiting once everything is in.
        exited |= written.round() as u64 == bytes && calls.round() as u64 == ios;
    }
    assert_eq!(written.round() as u64, bytes, "top's io_uring WRITE bytes");
    assert_eq!(
        calls.round() as u64,
        ios,
        "top's io_uring WRITE completions"
    );
    for p in [&file, &report] {
        let _ = std::fs::remove_file(p);
    }
}
