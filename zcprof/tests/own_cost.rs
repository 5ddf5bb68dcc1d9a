//! zcprof's own process (issue 12 point 6): it reads the kernel's BTF and /proc like any
//! program, and its own probes count those reads (5 MiB and more in `top`'s first interval).
//! `top` (text, `--once`, `--json`, `--csv`) leaves it out of the table and the machine total
//! and shows its cost apart; `--include-self` lists and counts it. A machine-wide or
//! `--comm zcprof` recording never contains it. Real zcprof runs, its pid known from the
//! spawn; the dashboard's side is in `dashboard.rs`.

mod common;

use std::process::{Command, Stdio};

use common::{privileged, temp, zcprof};
use serde_json::Value;

/// Runs zcprof with `args` to completion; returns its pid, stdout and stderr.
fn run(args: &[&str]) -> (u32, String, String) {
    let child = zcprof()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zcprof starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("zcprof ends");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (pid, stdout, stderr)
}

/// A busy neighbour, so the machine total has something besides zcprof: dd copying.
fn busy() -> common::Reaped {
    common::Reaped(
        Command::new("dd")
            .args([
                "if=/dev/zero",
                "of=/dev/null",
                "bs=4k",
                "count=50000000",
                "status=none",
            ])
            .spawn()
            .expect("dd"),
    )
}

fn rate(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// The frame's machine total of bytes copied kernel → user is the sum of its rows'.
fn assert_machine_is_the_rows_sum(frame: &Value, rows: &[Value]) {
    let sum: f64 = rows
        .iter()
        .map(|p| rate(&p["syscall"], "copy_k2u_bytes_per_s"))
        .sum();
    let machine = rate(&frame["machine"]["syscall"], "copy_k2u_bytes_per_s");
    assert!(
        (machine - sum).abs() <= 1e-6 * machine.max(1.0),
        "machine {machine} ≠ the rows' sum {sum}"
    );
}

/// `top --json` frames: zcprof is never a row, the machine total is the sum of the rows
/// (nothing hidden in it), and `self` carries zcprof's own cost — non-zero in the first
/// interval, where it read the BTF. With `--include-self` it is a row and in the total.
#[test]
fn top_json_leaves_zcprof_out_and_shows_its_cost_apart() {
    if !privileged("top_json_leaves_zcprof_out_and_shows_its_cost_apart") {
        return;
    }
    let _dd = busy();
    let (pid, stdout, _) = run(&["top", "--once", "--json", "-i", "1s"]);
    let frame: Value = serde_json::from_str(stdout.trim()).expect("one JSON frame");
    let errors: Vec<String> = common::top_schema()
        .iter_errors(&frame)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema/top.v1.json: {errors:?}");
    let rows = frame["processes"].as_array().expect("processes");
    assert!(
        rows.iter().all(|p| p["pid"] != pid),
        "zcprof (pid {pid}) is listed: {frame:#}"
    );
    assert!(rows.iter().any(|p| p["comm"] == "dd"), "{frame:#}");
    let own = &frame["self"];
    assert_eq!(own["pid"], pid, "{frame:#}");
    assert_eq!(own["listed"], false);
    let own_read = rate(&own["syscall"], "copy_k2u_bytes_per_s");
    assert!(own_read > 0.0, "zcprof read nothing? {own}");
    assert!(own["cpu_percent"].as_f64().is_some(), "{own}");
    // Every active process is a row (no filter), so the machine total is their sum: zcprof's
    // own reads are in neither.
    assert_machine_is_the_rows_sum(&frame, rows);

    let (pid, stdout, _) = run(&["top", "--once", "--json", "-i", "1s", "--include-self"]);
    let frame: Value = serde_json::from_str(stdout.trim()).expect("one JSON frame");
    assert!(common::top_schema().is_valid(&frame));
    assert_eq!(frame["self"]["listed"], true);
    let rows = frame["processes"].as_array().expect("processes");
    let me = rows
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("--include-self lists zcprof (pid {pid}): {frame:#}"));
    assert_eq!(me["syscall"], frame["self"]["syscall"]);
    assert_machine_is_the_rows_sum(&frame, rows);
}

/// The text frame names zcprof's cost in its header and has no row for it; `--csv` has a
/// `self` row and no `process` row for it, the machine row without it.
#[test]
fn top_text_and_csv_leave_zcprof_out() {
    if !privileged("top_text_and_csv_leave_zcprof_out") {
        return;
    }
    let _dd = busy();
    let (pid, text, _) = run(&["top", "--once", "-i", "500ms", "--limit", "100"]);
    let own = format!("zcprof itself (pid {pid}): copied k→u ");
    assert!(text.contains(&own), "no `{own}` in:\n{text}");
    assert!(
        text.contains("not in the table or the machine total (--include-self lists it)"),
        "{text}"
    );
    let me = pid.to_string();
    assert!(
        !text
            .lines()
            .any(|l| l.split_whitespace().next() == Some(me.as_str())),
        "zcprof (pid {pid}) has a row:\n{text}"
    );
    let (_, text, _) = run(&["top", "--once", "-i", "500ms", "--include-self"]);
    assert!(
        text.contains("listed and counted like any process"),
        "{text}"
    );

    let (pid, csv, _) = run(&["top", "--once", "--csv", "-i", "500ms"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    // New columns go last: the io_uring layer's came after cpu_percent, then the mapped
    // layer's, the zero-copy sends' and the flows layer's.
    assert_eq!(col("cpu_percent"), col("errno") + 1, "{header:?}");
    assert_eq!(
        col("mapped_pages_per_s"),
        col("io_uring_unseen_calls_per_s") + 1,
        "{header:?}"
    );
    assert_eq!(
        col("delivered_bytes_per_s"),
        col("zero_copy_sends_copied_per_s") + 1,
        "{header:?}"
    );
    assert_eq!(header.last(), Some(&"top_flow_bytes_per_s"), "{header:?}");
    let (scope, pid_col, cpu) = (col("scope"), col("pid"), col("cpu_percent"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let me = pid.to_string();
    assert!(
        !rows
            .iter()
            .any(|r| r[scope] == "process" && r[pid_col] == me),
        "zcprof is a process row:\n{csv}"
    );
    let own: Vec<&Vec<&str>> = rows.iter().filter(|r| r[scope] == "self").collect();
    assert_eq!(own.len(), 1, "one self row:\n{csv}");
    assert_eq!(own[0][pid_col], me);
    assert!(own[0][cpu].parse::<f64>().is_ok(), "{csv}");
    assert_eq!(rows.iter().filter(|r| r[scope] == "machine").count(), 1);
}

/// A machine-wide recording and a `--comm zcprof` one hold every process but zcprof itself
/// (today's main records zcprof's own 5 MiB of BTF and /proc reads in both).
#[test]
fn recordings_never_contain_zcprof_itself() {
    if !privileged("recordings_never_contain_zcprof_itself") {
        return;
    }
    let _dd = busy();
    for subject in [&[][..], &["--comm", "zcprof"][..]] {
        let out = temp("own-cost-record");
        let path = out.to_str().expect("utf-8 path");
        let mut args = vec!["record", "-o", path, "--duration", "1s"];
        args.extend_from_slice(subject);
        let (pid, _, stderr) = run(&args);
        let rec: Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("the recording"))
                .expect("JSON");
        let _ = std::fs::remove_file(&out);
        let processes = rec["processes"].as_array().expect("processes");
        assert!(
            processes.iter().all(|p| p["pid"] != pid),
            "{subject:?}: zcprof (pid {pid}) is in the recording:\n{stderr}"
        );
        if subject.is_empty() {
            assert!(
                processes.iter().any(|p| p["comm"] == "dd"),
                "the machine recording has the busy dd"
            );
        }
    }
    // `run` reports the command's tree, which never held zcprof.
    let (pid, _, summary) = run(&["run", "--json", "--", "true"]);
    let doc: Value = serde_json::from_str(&summary).expect("run --json on stderr");
    assert!(
        doc["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .all(|p| p["pid"] != pid)
    );
}
