//! The io_uring layer (issue 13) against ground truth, as root, with real processes:
//! - Debian's fio with `--ioengine=io_uring`, write and read jobs under `zcprof run --json`
//!   (the summary is on stderr):
//!   the layer's WRITE and READ bytes equal fio's own `io_bytes`, and its calls fio's
//!   `total_ios` (host only: fio is not in the lab's initramfs);
//! - `zcprof-demo file-copy --mode io-uring` under `--disable-layer io_uring`: the run says
//!   that io_uring bytes are not counted (the caveat), never silence (host and lab);
//! - a recorded move from fio's psync engine to io_uring does not make `zcprof diff` say
//!   copies fell (host only).
//!
//! The demos' io_uring modes are checked opcode by opcode against their own tallies in
//! `demos.rs` (`assert_io_uring_exact`), on the host and in the lab.

mod common;

use std::process::{Command, Output};

use common::{demo_bin, in_lab, privileged, run_schema, temp, zcprof};
use serde_json::Value;

/// fio's block size and file size: 1024 requests of 64 KiB.
const BS: &str = "64k";
const SIZE: u64 = 64 << 20;

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

/// The total's io_uring entry `op` of a `run --json` document: `(calls, bytes, errors)`.
fn op(doc: &Value, op: &str) -> (u64, u64, u64) {
    let e = &doc["total"]["io_uring"]["probes"][op];
    let n = |k: &str| e[k].as_u64().unwrap_or(0);
    (n("calls"), n("bytes"), n("errors"))
}

#[test]
fn fio_io_uring_write_and_read_bytes_are_fios_own() {
    let test = "fio_io_uring_write_and_read_bytes_are_fios_own";
    if !privileged(test) || !fio_available(test) {
        return;
    }
    let file = temp("fio-data");
    for (rw, dir, opcode) in [("write", "write", "WRITE"), ("read", "read", "READ")] {
        let report = temp("fio-report");
        let out = zcprof()
            .args(["run", "--json", "--"])
            .args(fio_args("io_uring", rw, &file, &report))
            .output()
            .expect("zcprof runs");
        ok(&out, &format!("zcprof run -- fio {rw}"));
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
            "fio {rw}: io_uring {opcode} bytes = fio's io_bytes"
        );
        assert_eq!(
            calls, ios,
            "fio {rw}: io_uring {opcode} completions = fio's total_ios"
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
        assert_eq!(doc["lost"]["io_uring_unmatched"].as_u64(), Some(0));
        let _ = std::fs::remove_file(&report);
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn io_uring_with_the_layer_off_gets_a_caveat() {
    let test = "io_uring_with_the_layer_off_gets_a_caveat";
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
    // The summary follows zcprof's warnings about the disabled layer's probes.
    let stderr = String::from_utf8_lossy(&off.stderr);
    let json = &stderr[stderr.find("{\n").expect("a JSON summary")..];
    let doc: Value =
        serde_json::from_str(json).unwrap_or_else(|err| panic!("run JSON: {err}: {stderr}"));
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
